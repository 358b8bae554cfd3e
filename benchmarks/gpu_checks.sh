#!/usr/bin/env bash
# The checks that need a CUDA device, in one go: the gpu-marked tests, the quickstart scenario on
# the device and on the CPU, the liver-tumour scenario on the device, and the benchmarks of every usable backend.
#
#   bash benchmarks/gpu_checks.sh OUTDIR
#
# Writes into OUTDIR: gpu.txt (nvidia-smi), info.json, pytest-gpu.txt, quickstart-*.json and the
# dated benchmark record (benchmarks/run_benchmarks.py). Needs nanosim installed with CuPy and
# numba-cuda (the cuda12 or cuda13 extra).
set -u
out=${1:?usage: gpu_checks.sh OUTDIR}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv \
    | tee "$out/gpu.txt"
$py -m nanosim info --json > "$out/info.json"; echo "info: exit $?"
$py -m pytest -m gpu -q -p no:cacheprovider -o addopts="" -rs 2>&1 | tee "$out/pytest-gpu.txt" | tail -25
for be in cupy numba; do
    $py -m nanosim run scenarios/quickstart.toml -o "$out/q-$be.vtkhdf" --backend "$be" --json --quiet \
        > "$out/quickstart-$be.json"; echo "quickstart $be: exit $?"
    $py -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: d[k] for k in d if 'wall' in k or k=='steps'})" \
        "$out/quickstart-$be.json"
    rm -f "$out/q-$be.vtkhdf" "$out/q-$be.vtkhdf.ckpt"
done
$py -m nanosim run scenarios/liver_tumour_fluid.toml -o "$out/lt.vtkhdf" --backend cupy --json --quiet \
    > "$out/liver-cupy.json"; echo "liver_tumour_fluid cupy: exit $?"
$py -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: d.get(k) for k in ('ok', 'wall_time_s', 'steps', 'message')})" \
    "$out/liver-cupy.json"
rm -f "$out/lt.vtkhdf" "$out/lt.vtkhdf.ckpt"
$py benchmarks/run_benchmarks.py --backend cupy --backend numba --output-dir "$out" --max-load 100 2>"$out/bench-progress.txt"
echo "bench: exit $?"
