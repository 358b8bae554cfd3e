"""``nanosim bench``: measured performance as fractions of the machine's memory-bandwidth roof."""

from __future__ import annotations

import json


def add_parser(sub):
    p = sub.add_parser("bench", help="benchmark kernels against the memory-bandwidth roof",
                       description=__doc__)
    p.add_argument("--json", action="store_true", help="print a list of records as JSON")
    p.add_argument("--backend", action="append", choices=["numpy", "numba", "cupy"],
                   help="backend(s) to measure (default: every usable one)")
    p.add_argument("--quick", action="store_true", help="small grids only (a smoke test)")
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    import sys

    from ..backends import BackendUnavailable
    from ..bench import format_table, run_benchmarks
    from . import EXIT_BACKEND

    try:
        records = run_benchmarks(backends=args.backend, quick=args.quick, progress=not args.json)
    except BackendUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(format_table(records))
    return 0
