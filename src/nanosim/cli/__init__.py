"""The ``nanosim`` command line: one module per command, each a thin layer over the library.

Exit codes: 0 success; 1 run failed; 2 usage error; 3 invalid scenario; 4 requested backend
unavailable; 130 interrupted (state checkpointed).
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_BACKEND = 4
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from . import bench, info, run, schema, validate

    parser = argparse.ArgumentParser(
        prog="nanosim",
        description="Simulate nanoparticle drug delivery to liver tumours.",
        epilog="Exit codes: 0 ok, 1 run failed, 2 usage error, 3 invalid scenario, "
        "4 backend unavailable, 130 interrupted (checkpointed).",
    )
    parser.add_argument("--version", action="version", version=f"nanosim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in (run, validate, schema, info, bench):
        mod.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
