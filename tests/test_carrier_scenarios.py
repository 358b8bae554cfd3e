"""Carrier scenarios through the runner and the command line: results file, snapshots, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nanosim

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
seed = 2
[grid]
shape = [20, 10, 10]
voxel_size_m = "10 um"
[tissue.tumour]
kind = "sphere"
center_m = ["100 um", "50 um", "50 um"]
radius_m = "60 um"
[network]
kind = "straight"
start_m = ["0 um", "50 um", "50 um"]
end_m = ["200 um", "50 um", "50 um"]
radius_m = "8 um"
wall = "tumour"
segments = 4
inlet_pressure_pa = "16 mmHg"
outlet_pressure_pa = "15 mmHg"
[interstitial]
solve = true
vascular_pressure_pa = "network"
[carrier]
preset = "peg_liposome"
[extravasation.tumour]
pore_area_fraction = 0.1
wall_thickness_m = "1 um"
pore_radius_m = "200 nm"
[body]
species = "mouse"
tumour_volume_m3 = "100 mm^3"
[route]
kind = "intravenous"
dose_carriers = "1 nmol"
[particles]
tissue_particles = 5000
vessel_packets_per_step = 20
[particles.snapshots]
max_particles = 200
[time]
stop_s = "10 min"
[output]
every_s = "2 min"
"""


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_carrier_run_writes_fields_snapshots_and_metrics(small, tmp_path):
    res = nanosim.run(small, tmp_path / "out.vtkhdf", backend="numba")
    for name in ("carrier_free", "carrier_bound", "carrier_internalised", "carrier_vessel", "carrier_lodged"):
        f = res.field(name, time_s=600.0)
        assert f.shape == (10, 10, 20) and np.all(f >= 0), name
    assert res.field("carrier_free", time_s=600.0).sum() > 0
    snaps = res.particle_snapshots()
    assert [t for t, _ in snaps] == pytest.approx([0, 120, 240, 360, 480, 600])
    t, last = snaps[-1]
    assert 0 < len(last["id"]) <= 200 and set(np.unique(last["state"])) <= {1, 2, 3, 4}
    assert np.all((last["x_m"] >= 0) & (last["x_m"] <= 200e-6))
    m = res.metrics
    assert np.all(np.abs(m["carrier_balance_rel_error"]) < 1e-13)
    assert np.all(np.diff(m["carrier_box_entered"]) > 0)
    assert m["carrier_tumour_pct_id"][-1] > 0
    # field integral = box amount in tissue (carriers per m³ × voxel volume)
    vol = (10e-6) ** 3
    assert res.field("carrier_free", time_s=600.0).sum() * vol == pytest.approx(m["carrier_box_tissue"][-1], rel=1e-12)


def test_carrier_run_json_and_vtk_reader(small, tmp_path):
    out = tmp_path / "cli.vtkhdf"
    r = subprocess.run([sys.executable, "-m", "nanosim", "run", str(small), "-o", str(out), "--json",
                        "--backend", "numba"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["final_metrics"]["carrier_tumour_pct_id"] > 0
    vtk = pytest.importorskip("vtk")
    reader = vtk.vtkHDFReader()
    reader.SetFileName(str(out))
    reader.Update()
    names = [reader.GetOutput().GetCellData().GetArrayName(i)
             for i in range(reader.GetOutput().GetCellData().GetNumberOfArrays())]
    assert "carrier_free" in names


def test_bundled_carrier_scenarios_validate():
    for name in ("hcc_liposome_iv.toml",):
        sc = nanosim.load_scenario(ROOT / "scenarios" / name)
        assert sc.carrier is not None and sc.route is not None


def test_a_bad_carrier_field_is_a_clear_error(small):
    r = subprocess.run([sys.executable, "-m", "nanosim", "validate", str(small), "--set", "carrier.radius_m=-5 nm"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3
    assert "carrier.radius_m" in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "nanosim", "validate", str(small), "--set", "carrier.preset=peg_liposom"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3
    assert "peg_liposome" in r.stdout + r.stderr


def test_oxygen_and_ph_fields_reach_the_results_and_the_release(small, tmp_path):
    """[oxygen] and [ph] enabled: static pO2 and pH maps in the results, hypoxic fractions in the
    metrics, and a pH-triggered release that sees the tissue pH (acidic tumour voxels release
    faster than the pH 7.4 blood, so tissue particles are further released than the plasma pool)."""
    import tomllib

    d = tomllib.loads(SMALL)
    d["oxygen"] = {"enabled": True}
    d["ph"] = {"enabled": True, "prescribed": {"tumour_near_vessel_ph": 6.6, "tumour_far_ph": 6.4}}
    d["carrier"]["release"] = {"law": {"kind": "first_order", "rate_per_s": "1e-3 1/s"},
                               "ph_trigger": {"pka": 6.5, "hill_n": 2.0, "min_rate_fraction": 0.01}}
    sc = nanosim.load_scenario(d)
    res = nanosim.run(sc, tmp_path / "ph.vtkhdf", backend="numba")
    po2 = res.static("oxygen_po2_mmhg")
    ph = res.static("extracellular_ph")
    assert po2.shape == ph.shape == (10, 10, 20)
    assert np.all(np.isfinite(po2)) and 6.0 < ph.min() < ph.max() <= 7.4 + 1e-12
    assert "hypoxic_fraction_tumour" in res.metrics
    t, snap = res.particle_snapshots()[-1]
    m = res.metrics
    assert m["carrier_drug_released_free_mol"][-1] > 0
    assert abs(m["carrier_drug_balance_rel_error"][-1]) < 1e-13


def test_a_scenario_that_cannot_be_built_is_a_clear_error_without_a_results_file(small, tmp_path):
    """Found while building the model, not by validation: tumour pores narrower than the particle
    their measured permeability refers to leave nothing to calibrate."""
    out = tmp_path / "out.vtkhdf"
    r = subprocess.run([sys.executable, "-m", "nanosim", "run", str(small), "-o", str(out), "--quiet",
                        "--set", "extravasation.tumour.effective_permeability_m_per_s=1.5e-10 m/s",
                        "--set", "extravasation.tumour.pore_radius_m=30 nm"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 3
    assert "Traceback" not in r.stderr
    assert "extravasation.tumour.effective_permeability_m_per_s" in r.stderr
    assert "pore_radius_m" in r.stderr  # the fix
    assert not out.exists()


def test_the_wall_calibration_is_recorded_in_the_results(small, tmp_path):
    """The factor on the tumour walls' large pores and the effective permeability they reach are
    in the results file's provenance (a --quiet or --json run prints no log)."""
    sc = nanosim.load_scenario(small, ["extravasation.tumour.effective_permeability_m_per_s=1.5e-10 m/s",
                                       "time.stop_s=2 min"])
    res = nanosim.run(sc, tmp_path / "out.vtkhdf", backend="numpy")
    cal = res.provenance["wall_calibration"]["tumour"]
    assert cal["effective_m_per_s"] == pytest.approx(1.5e-10, rel=1e-12)
    assert cal["factor"] == pytest.approx(1.5e-10 / cal["effective_before_m_per_s"], rel=1e-12)
    assert cal["radius_m"] == 45e-9
    # an uncalibrated run records none
    res0 = nanosim.run(nanosim.load_scenario(small, ["time.stop_s=2 min"]), tmp_path / "out0.vtkhdf",
                       backend="numpy")
    assert "wall_calibration" not in res0.provenance
