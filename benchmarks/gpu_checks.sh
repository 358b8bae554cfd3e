#!/usr/bin/env bash
# The checks that need a CUDA device, in one go, most important first, each under its own time
# limit so that a slow step does not cost the ones after it:
#   1. the gpu-marked tests of the vasculature and flow (voxelisation, network and tissue solves);
#   2. the particle benchmarks on the device and on the CPU's cores (particle-steps/s, goal 1e10);
#   3. the other gpu-marked tests (transport, carriers, release, rng, microenvironment);
#   4. the quickstart on the device and the CPU, a carrier scenario on the device, the
#      liver-tumour scenario on the device;
#   5. where the uniform explicit step's time goes (benchmarks/gpu_launch_probe.py);
#   6. the kernel benchmarks of every usable backend.
#
#   bash benchmarks/gpu_checks.sh OUTDIR
#
# Writes into OUTDIR: gpu.txt (nvidia-smi), info.json, pytest-gpu-*.txt, scenario-*.json, the
# dated benchmark records (benchmarks/run_benchmarks.py) and bench-*.txt (progress lines). Needs
# nanosim installed with CuPy and numba-cuda (the cuda12 or cuda13 extra).
set -u
out=${1:?usage: gpu_checks.sh OUTDIR}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
step() { echo; echo "== $* ($(date -u +%T))"; }

step gpu
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv \
    | tee "$out/gpu.txt"
$py -m nanosim info --json > "$out/info.json"; echo "info: exit $?"

step "gpu tests: vasculature and flow"
timeout 180 $py -m pytest -m gpu -q -n 4 -p no:cacheprovider -o addopts="" -rs tests/vasculature tests/flow \
    2>&1 | tee "$out/pytest-gpu-vasculature.txt" | tail -8

step "particle benchmarks"
timeout 150 $py benchmarks/run_benchmarks.py --backend "${PARTICLE_BACKENDS:-cupy}" --only particles --only intravascular \
    --output-dir "$out" --max-load 100 2>"$out/bench-particles.txt" | tail -30
echo "particle bench: exit ${PIPESTATUS[0]}"

step "other gpu tests"
timeout 200 $py -m pytest -m gpu -q -n 4 -p no:cacheprovider -o addopts="" -rs \
    --ignore=tests/vasculature --ignore=tests/flow 2>&1 | tee "$out/pytest-gpu-other.txt" | tail -12

step scenarios
run_scenario() {  # name backend limit_s [--set KEY=VALUE ...]
    timeout "$3" $py -m nanosim run "scenarios/$1.toml" -o "/tmp/$1-$2.vtkhdf" --backend "$2" \
        --json --quiet "${@:4}" > "$out/scenario-$1-$2.json"
    echo "$1 $2: exit $?"
    $py -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: d.get(k) for k in d if 'time' in k or 'first' in k or k in ('ok', 'steps', 'message')})" \
        "$out/scenario-$1-$2.json" 2>/dev/null
    rm -f "/tmp/$1-$2.vtkhdf" "/tmp/$1-$2.vtkhdf.ckpt"
}
run_scenario quickstart cupy 60
run_scenario quickstart numba 60
run_scenario hcc_spion_micelle_iv cupy 100 --set time.stop_s="2 h"  # the scenario runs 24 h since 2026-11-27
run_scenario liver_tumour_fluid cupy 90

step "launch probe"
timeout 60 $py benchmarks/gpu_launch_probe.py > "$out/launch-probe.json"; echo "launch probe: exit $?"
tail -c 1500 "$out/launch-probe.json"

step "kernel benchmarks"
timeout 120 $py benchmarks/run_benchmarks.py --backend cupy --output-dir "$out" --max-load 100 \
    2>"$out/bench-progress.txt" | tail -40
echo "bench: exit ${PIPESTATUS[0]}"
