"""``nanosim validate``: check a scenario file and print it as a tree.

Example::

    $ nanosim validate scenarios/quickstart.toml
    ok: Quickstart
    Scenario "Quickstart" (schema 1, seed 1)
    ├── grid: 160×160×4 voxels of 1 µm, origin (0, 0, 0) m, boundary x no_flux, y no_flux, z periodic
    ...
    memory: about 1.3 MiB for fields (21.6 GiB available)

    $ nanosim validate bad.toml
    invalid scenario bad.toml: 1 error
    grid.voxel_size_m: must be > 0 (got -1). Hint: a length > 0 in m, e.g. "20 um".
    $ echo $?
    3

With ``--json`` the result goes to stdout as ``{"valid": true, ...}`` or
``{"valid": false, "errors": [{"path": ..., "message": ..., "hint": ...}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nanosim.scenario import ScenarioError, available_memory_bytes, estimate_memory_bytes, load_scenario

EXIT_OK = 0
EXIT_INVALID_SCENARIO = 3


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``validate SCENARIO [--set KEY=VALUE ...] [--json]`` on `subparsers`."""
    parser = subparsers.add_parser(
        "validate",
        help="check a scenario file and print it as a tree",
        description="Check a scenario file against the schema and the cross-field rules; "
        "list every problem with its path, or print the scenario as a tree. "
        "Exit status 0 if valid, 3 if not.",
    )
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario file (.toml, .yaml, .yml or .json)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='override a setting, e.g. --set grid.voxel_size_m="20 um" (repeatable; values are TOML values)',
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.set_defaults(func=main)
    return parser


def _size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def main(args: argparse.Namespace) -> int:
    """Run ``validate``; returns the exit status (0 valid, 3 invalid)."""
    overrides = list(getattr(args, "overrides", None) or [])
    try:
        scenario = load_scenario(args.scenario, overrides)
    except ScenarioError as err:
        if args.json:
            payload = {"valid": False, "errors": [item.to_dict() for item in err.errors]}
            print(json.dumps(payload, indent=2, ensure_ascii=False))
        else:
            print(err.summary(), file=sys.stderr)
            print(err.format(), file=sys.stderr)
        return EXIT_INVALID_SCENARIO

    needed = estimate_memory_bytes(scenario)
    available = available_memory_bytes()
    if args.json:
        payload = {
            "valid": True,
            "title": scenario.title,
            "memory_bytes": needed,
            "scenario": scenario.model_dump(mode="json"),
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"ok: {scenario.title or Path(args.scenario).name}")
    print(scenario.describe())
    memory = f"memory: about {_size(needed)} for fields"
    if available is not None:
        memory += f" ({_size(available)} available)"
    print(memory)
    return EXIT_OK
