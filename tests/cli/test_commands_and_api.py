"""The other commands (info, schema, validate), the Python interface, VTK, and the quickstart."""

import json

import numpy as np
import pytest
from _cli_helpers import REPO, nanosim_cli, vtk_steps

import nanosim as ns
from nanosim.cli import main
from nanosim.io import Results


def test_info_lists_the_backends(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nanosim {ns.__version__} on Python ")
    assert "└── backends" in out
    for name in ("numpy: ok: cpu", "numba: ok: cpu", "cupy: "):
        assert name in out


def test_info_json_lists_the_backends_from_the_command_line():
    p = nanosim_cli("info", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["nanosim"] == ns.__version__
    assert set(doc["backends"]) == {"numpy", "numba", "cupy"}
    assert doc["backends"]["numpy"] == "ok: cpu"
    assert doc["packages"]["numpy"] == np.__version__


def test_schema_output_is_the_shipped_schema_file(capsys):
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads((REPO / "scenarios" / "scenario.schema.json").read_text())


def test_validate_the_quickstart_scenario(capsys):
    assert main(["validate", str(REPO / "scenarios" / "quickstart.toml")]) == 0
    assert capsys.readouterr().out.startswith("ok: Quickstart")


def test_python_interface(scenario, tmp_path):
    sc = ns.load_scenario(scenario)
    res = ns.run(sc, tmp_path / "r.h5", backend="numpy")
    assert isinstance(res, Results)
    with res:
        assert res.status == "completed"
        np.testing.assert_array_equal(res.times_s, [0.1 * k for k in range(11)])
        c = res.field("free_drug", time_s=0.5)
        assert c.shape == (1, 24, 24) and c.dtype == np.float64
        assert res.provenance["backend"] == "numpy"
        assert res.summary["steps"] == 20
    with ns.open_results(tmp_path / "r.h5") as again:
        np.testing.assert_array_equal(again.field("free_drug", step=5), c)
        np.testing.assert_array_equal(again.metrics["total_drug_mol"], res.metrics["total_drug_mol"])
    # a mapping and no output path work too (a temporary file)
    with ns.run({"grid": {"shape": [6, 6, 1], "voxel_size_m": "10 um"},
                 "drug": {"normal": {"diffusivity_m2_per_s": "2e-10 m^2/s"}},
                 "time": {"stop_s": "1 s"}}, backend="numpy") as tmp_res:
        assert tmp_res.n_steps == 11 and tmp_res.times_s[-1] == 1.0


def test_results_of_a_real_run_open_in_vtk(reference_runs):
    path = reference_runs("numpy")
    n, times, fields = vtk_steps(path)
    with ns.open_results(path) as res:
        assert n == res.n_steps == 21
        np.testing.assert_array_equal(times, res.times_s)
        for k in range(n):
            np.testing.assert_array_equal(fields[k], res.field("free_drug", step=k).ravel())
        assert np.any(fields[-1] != fields[1])


def test_quickstart_runs_end_to_end(tmp_path):
    p = nanosim_cli("run", REPO / "scenarios" / "quickstart.toml", "--json", cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["output"] == "quickstart.vtkhdf"
    m = doc["final_metrics"]
    assert m["time_s"] == 30.0
    assert abs(m["mass_balance_rel_error"]) < 1e-10
    with ns.open_results(tmp_path / "quickstart.vtkhdf") as res:
        assert res.status == "completed"
        np.testing.assert_array_equal(res.times_s, [3.0 * k for k in range(11)])
        assert res.field("free_drug").shape == (1, 180, 180)
        assert res.static("vessel").sum() > 0
        assert res.field("free_drug").max() > 0
