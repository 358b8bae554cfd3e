"""``nanosim schema``: write the JSON Schema of scenario files, for editors.

Example::

    $ nanosim schema -o scenarios/scenario.schema.json

Without ``-o`` the schema is printed on stdout. The copy in ``scenarios/`` is regenerated with
``python -m nanosim.cli.schema -o scenarios/scenario.schema.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nanosim.scenario import schema_json


def schema_text() -> str:
    """The JSON Schema as text: indented, UTF-8, with a final newline."""
    return json.dumps(schema_json(), indent=2, ensure_ascii=False) + "\n"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``schema [-o FILE]`` on `subparsers`."""
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of scenario files",
        description="Write the JSON Schema of scenario files (for editor completion and checks).",
    )
    _add_arguments(parser)
    parser.set_defaults(func=main)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", default=None, help="write to FILE instead of stdout")


def main(args: argparse.Namespace) -> int:
    """Run ``schema``; returns the exit status (0 written, 1 the file could not be written)."""
    text = schema_text()
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m nanosim.cli.schema", description=__doc__.splitlines()[0])
    _add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
