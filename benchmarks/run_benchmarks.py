#!/usr/bin/env python
"""Run ``nanosim bench`` and keep a dated JSON record of it in benchmarks/results/.

Usage::

    python benchmarks/run_benchmarks.py                 # every usable backend, full sizes
    python benchmarks/run_benchmarks.py --backend numba --only explicit_uniform
    python benchmarks/run_benchmarks.py --quick         # smoke test, written as *-quick.json

The record is ``results/<date>-<cpu|gpu>-<label>.json`` (label from the CPU model and core count,
never the host name; a later run the same day gets ``-2``, ``-3``, ... rather than overwrite it)
holding ``machine`` (CPU model, cores, caches, Numba threads, versions, load averages, date),
``records`` (the list ``nanosim bench --json`` prints), the run time and the peak memory of the
run. The table is printed on stdout, one progress line per case on stderr.

Measure on a quiet machine: the script warns when the 1-minute load average is above
``--max-load`` (0.5) and, with ``--wait S``, first waits up to S seconds for it to drop.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import sys
import time
from pathlib import Path

from nanosim.bench import REGISTRY, format_table, resolve_backends, run_benchmarks
from nanosim.bench.machine import label, loadavg, machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def _wait_for_quiet(max_load, wait_s):
    deadline = time.monotonic() + wait_s
    while True:
        load = loadavg()
        if load is None or load[0] <= max_load or time.monotonic() >= deadline:
            return load
        time.sleep(5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", action="append", choices=["numpy", "numba", "cupy"],
                   help="backend(s) to measure (default: every usable one)")
    p.add_argument("--only", action="append", choices=list(REGISTRY),
                   help="benchmark(s) to run (default: all)")
    p.add_argument("--quick", action="store_true", help="small grids only (a smoke test)")
    p.add_argument("--output-dir", type=Path, default=RESULTS, help=f"default {RESULTS}")
    p.add_argument("--label", help="file-name label (default: from the CPU model and cores)")
    p.add_argument("--max-load", type=float, default=0.5,
                   help="warn when the 1-minute load average is above this (default 0.5)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for the load to drop below --max-load")
    args = p.parse_args(argv)

    load = _wait_for_quiet(args.max_load, args.wait)
    if load is not None and load[0] > args.max_load:
        print(f"warning: load average {load[0]:.2f} > {args.max_load}: figures will be low "
              "and noisy", file=sys.stderr)
    backends = resolve_backends(args.backend)
    t0 = time.perf_counter()
    records = run_benchmarks(backends=args.backend, quick=args.quick, progress=True,
                             only=args.only)
    elapsed = time.perf_counter() - t0
    info = machine_info(backends)  # after the run: Numba's threading layer is known by then
    info["loadavg_before"] = load
    info["loadavg_after"] = info.pop("loadavg")
    doc = {
        "machine": info,
        "quick": args.quick,
        "run_seconds": round(elapsed, 1),
        "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "records": records,
    }
    day = datetime.date.today().isoformat()
    kind = "gpu" if "cupy" in backends else "cpu"
    stem = f"{day}-{kind}-{args.label or label(info)}{'-quick' if args.quick else ''}"
    args.output_dir.mkdir(parents=True, exist_ok=True)
    out = args.output_dir / f"{stem}.json"
    n = 1
    while out.exists():  # a second run the same day keeps the first record
        n += 1
        out = args.output_dir / f"{stem}-{n}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(format_table(records))
    print(f"\nwritten {out} ({elapsed:.0f} s; load averages before {load}, after "
          f"{info['loadavg_after']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
