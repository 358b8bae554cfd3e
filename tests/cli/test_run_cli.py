"""``nanosim run``: the results file, what goes to stdout and stderr, and the exit codes."""

import io
import json
import sys

import numpy as np
import pytest
from _cli_helpers import nanosim_cli, write_scenario

from nanosim.backends import available_backends
from nanosim.cli import main
from nanosim.io import open_results


def test_run_writes_the_results_file_and_a_summary_table(scenario, tmp_path):
    out = tmp_path / "r.h5"
    p = nanosim_cli("run", scenario, "-o", out, "--backend", "numba")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"{out}: numba float64 explicit, 20 steps of 0.05 s")
    assert lines[1].split() == ["metric", "final", "value"]
    table = dict(line.split(None, 1) for line in lines[3:])
    assert set(table) >= {"time_s", "free_drug_mol", "total_drug_mol", "mass_balance_rel_error"}
    assert float(table["time_s"]) == 1.0
    # stderr is a pipe here: no progress bar
    assert "█" not in p.stderr and "\r" not in p.stderr
    with open_results(out) as res:
        assert res.status == "completed"
        np.testing.assert_array_equal(res.times_s, [0.1 * k for k in range(11)])
        assert res.field("free_drug").shape == (1, 24, 24)
        assert res.static("vessel").sum() > 0
        assert float(table["free_drug_mol"]) == pytest.approx(res.metrics["free_drug_mol"][-1], rel=1e-5)
        assert res.provenance["backend"] == "numba"


def test_json_prints_exactly_one_document_and_nothing_else(scenario, tmp_path):
    out = tmp_path / "r.h5"
    p = nanosim_cli("run", scenario, "-o", out, "--json", "--backend", "numpy")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)  # the whole of stdout is one JSON document
    assert doc["ok"] is True
    assert doc["output"] == str(out)
    assert doc["steps"] == 20
    assert doc["wall_time_s"] > 0
    assert doc["backend"] == "numpy"
    assert "█" not in p.stderr
    with open_results(out) as res:
        for name, value in doc["final_metrics"].items():
            assert value == res.metrics[name][-1], name
        assert res.summary["final_metrics"] == doc["final_metrics"]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("flags, bar", [((), True), (("--quiet",), False), (("--json",), False)])
def test_progress_bar_only_on_a_terminal_and_not_when_quiet(scenario, tmp_path, monkeypatch, capsys, flags, bar):
    capsys.readouterr()
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    code = main(["run", str(scenario), "-o", str(tmp_path / "r.h5"), "--backend", "numpy", *flags])
    err = sys.stderr.getvalue()
    out = capsys.readouterr().out
    assert code == 0
    assert ("█" in err and "100.0%" in err and "step 20/20" in err) is bar
    if "--quiet" in flags:
        assert out == ""
    if "--json" in flags:
        assert json.loads(out)["ok"] is True


def test_existing_results_file_is_never_overwritten(scenario, tmp_path):
    out = tmp_path / "r.h5"
    out.write_bytes(b"precious results")
    for extra in ((), ("--json",)):
        p = nanosim_cli("run", scenario, "-o", out, "--backend", "numpy", *extra)
        assert p.returncode == 1
        assert "already exists" in p.stderr and "--overwrite" in p.stderr
        assert "Traceback" not in p.stderr
        assert out.read_bytes() == b"precious results"
        assert not (tmp_path / "r.h5.ckpt").exists()
    assert json.loads(p.stdout)["ok"] is False
    p = nanosim_cli("run", scenario, "-o", out, "--backend", "numpy", "--overwrite", "--quiet")
    assert p.returncode == 0, p.stderr
    with open_results(out) as res:
        assert res.status == "completed" and res.n_steps == 11


def test_missing_output_folder_is_a_clean_error(scenario, tmp_path):
    p = nanosim_cli("run", scenario, "-o", tmp_path / "absent" / "r.h5", "--backend", "numpy")
    assert p.returncode == 1
    assert p.stderr.strip() == f"error: cannot write results file {tmp_path / 'absent' / 'r.h5'}: " \
                               f"folder {tmp_path / 'absent'} does not exist"


def test_invalid_scenario_exits_3_listing_every_error_with_its_path(tmp_path):
    bad = write_scenario(tmp_path / "bad.toml").read_text()
    bad = bad.replace('voxel_size_m = "10 um"', 'voxel_size_m = "-10 um"').replace("seed = 1", "seed = 1\ncolour = 3")
    (tmp_path / "bad.toml").write_text(bad)
    p = nanosim_cli("run", tmp_path / "bad.toml", "-o", tmp_path / "r.h5")
    assert p.returncode == 3
    assert "grid.voxel_size_m: must be > 0" in p.stderr
    assert 'colour: unknown key "colour"' in p.stderr
    assert "Traceback" not in p.stderr
    assert p.stdout == ""
    assert not (tmp_path / "r.h5").exists()


def test_unknown_set_key_exits_3_naming_the_key(scenario, tmp_path, capsys):
    code = main(["run", str(scenario), "-o", str(tmp_path / "r.h5"), "--set", "time.stopp_s=3"])
    err = capsys.readouterr().err
    assert code == 3
    assert 'no "stopp_s" in time' in err and 'did you mean "stop_s"' in err
    code = main(["validate", str(scenario), "--set", "output.evry_s=1"])
    assert code == 3
    assert 'no "evry_s" in output' in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()


@pytest.mark.skipif(available_backends()["cupy"].startswith("ok"), reason="a CUDA device is usable here")
def test_cupy_without_a_gpu_exits_4_with_a_clear_message(scenario, tmp_path):
    p = nanosim_cli("run", scenario, "-o", tmp_path / "r.h5", "--backend", "cupy")
    assert p.returncode == 4
    assert p.stderr.startswith("error: cupy backend unavailable:")
    assert "--backend numba" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "r.h5").exists()


@pytest.mark.parametrize("argv", [["run"], ["run", "x.toml", "--bogus"], ["run", "x.toml", "--backend", "tpu"],
                                  ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: nanosim" in capsys.readouterr().err


def test_usage_errors_exit_2_from_the_command_line():
    p = nanosim_cli("run", "--bogus")
    assert p.returncode == 2
    assert "usage: nanosim run" in p.stderr
    p = nanosim_cli()
    assert p.returncode == 2
    assert "usage: nanosim" in p.stderr
