"""The ``validate`` and ``schema`` commands, driven through a parser built here."""

import argparse
import json

from nanosim.cli import schema as schema_cli
from nanosim.cli import validate as validate_cli
from nanosim.scenario import schema_json


def run(capsys, *argv):
    parser = argparse.ArgumentParser(prog="nanosim")
    sub = parser.add_subparsers(dest="command", required=True)
    validate_cli.add_parser(sub)
    schema_cli.add_parser(sub)
    args = parser.parse_args(list(argv))
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_ok_prints_title_and_tree(capsys, data_dir):
    code, out, err = run(capsys, "validate", str(data_dir / "minimal.toml"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "ok: Minimal"
    assert lines[1] == 'Scenario "Minimal" (schema 1, seed 1)'
    assert lines[-1].startswith("memory: about ")
    assert err == ""


def test_validate_with_overrides(capsys, data_dir):
    code, out, _ = run(capsys, "validate", str(data_dir / "minimal.toml"), "--set", "seed=7", "--set", "title=Other")
    assert code == 0
    assert out.splitlines()[:2] == ["ok: Other", 'Scenario "Other" (schema 1, seed 7)']


def test_validate_invalid_lists_every_error_and_returns_3(capsys, data_dir):
    path = data_dir / "many_errors.toml"
    code, out, err = run(capsys, "validate", str(path))
    assert code == 3
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"invalid scenario {path}: 5 errors"
    assert lines[1].startswith("grid.shape[2]: must be >= 1 (got 0).")
    assert len(lines) == 6
    assert "Traceback" not in err


def test_validate_json_invalid(capsys, data_dir):
    code, out, err = run(capsys, "validate", str(data_dir / "many_errors.toml"), "--json")
    assert code == 3
    payload = json.loads(out)
    assert payload["valid"] is False
    assert len(payload["errors"]) == 5
    assert payload["errors"][3] == {
        "path": "tissue.tumour.kind",
        "message": 'unknown kind "spere"',
        "hint": 'did you mean "sphere"? allowed kinds: "none", "sphere", "ellipsoid"',
    }


def test_validate_json_valid(capsys, data_dir):
    code, out, _ = run(capsys, "validate", str(data_dir / "minimal.yaml"), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["valid"] is True
    assert payload["title"] == "Minimal"
    assert payload["scenario"]["grid"]["voxel_size_m"] == 1e-5
    assert payload["memory_bytes"] == 16 * 16 * 1 * 82


def test_validate_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "validate", str(tmp_path / "none.toml"))
    assert code == 3
    assert "file not found" in err


def test_validate_bad_override_key(capsys, data_dir):
    code, _, err = run(capsys, "validate", str(data_dir / "minimal.toml"), "--set", "grid.nope=1")
    assert code == 3
    assert '--set grid.nope=1: names a key that does not exist: no "nope" in grid' in err


def test_schema_to_stdout(capsys):
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert json.loads(out) == schema_json()


def test_schema_to_file(capsys, tmp_path):
    target = tmp_path / "scenario.schema.json"
    code, out, err = run(capsys, "schema", "-o", str(target))
    assert code == 0
    assert out == ""
    assert json.loads(target.read_text(encoding="utf-8")) == schema_json()


def test_schema_to_unwritable_place(capsys, tmp_path):
    code, _, err = run(capsys, "schema", "-o", str(tmp_path / "missing-dir" / "s.json"))
    assert code == 1
    assert err.startswith("cannot write ")
