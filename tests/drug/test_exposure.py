"""Exposure metrics of the unbound drug against closed forms (PHYSICS.md §8)."""

import math

import numpy as np
import pytest

import nanosim
from nanosim.backends import get_backend
from nanosim.drug.exposure import ExposureTracker


def _decay_scenario(c0, k, stop, dt):
    return nanosim.load_scenario({
        "grid": {"shape": [4, 4, 4], "voxel_size_m": "10 um"},
        "tissue": {"tumour": {"kind": "sphere", "center_m": ["20 um", "20 um", "20 um"], "radius_m": "12 um"}},
        "drug": {"normal": {"diffusivity_m2_per_s": "2e-10 m^2/s", "uptake_rate_per_s": k},
                 "initial": {"kind": "uniform", "concentration_mol_per_m3": c0},
                 "plasma": {"kind": "constant", "concentration_mol_per_m3": 0.0}},
        "transport": {"scheme": "implicit", "dt_s": dt},
        "time": {"stop_s": stop}, "output": {"every_s": stop}})


@pytest.mark.parametrize("dt", [20.0, 10.0])
def test_auc_cmax_and_time_above_for_exponential_decay(tmp_path, dt):
    """c(t) = c₀ e^(−kt) in every voxel: AUC = c₀(1 − e^(−kT))/k, C_max = c₀, time above the IC50
    t* = ln(c₀/θ)/k. The implicit step itself is first order in dt (its own error is what the
    comparison sees: relative 0.5 k dt ≈ 1 % at k dt = 0.02), so the tolerance is 1.5 k dt."""
    c0, k, stop = 0.03, 1e-3, 1000.0
    res = nanosim.run(_decay_scenario(c0, k, stop, dt), tmp_path / "e.vtkhdf", backend="numba")
    auc = res.field("auc_unbound", time_s=stop)
    exact = c0 * (1 - math.exp(-k * stop)) / k
    np.testing.assert_allclose(auc, exact, rtol=1.5 * k * dt)
    assert np.allclose(res.field("cmax_unbound", time_s=stop), c0)
    t_star = math.log(c0 / 7.5e-3) / k
    tab = res.field("time_above_threshold", time_s=stop)
    assert np.allclose(tab, min(t_star, stop), rtol=1.5 * k * dt)
    m = res.metrics
    # c(1000 s) = 0.011 mol/m³ is still above 7.5e-3 everywhere
    assert m["exposure_tumour_all_fraction_above"][-1] == 1.0 and m["exposure_normal_fraction_above"][-1] == 1.0
    assert m["exposure_tumour_to_normal_auc_ratio"][-1] == pytest.approx(1.0, rel=1e-9)


def test_fraction_above_interpolates_the_crossing():
    be = get_backend("numpy")
    region = np.zeros((1, 1, 4), np.uint8)
    tr = ExposureTracker(be, region, threshold_mol_per_m3=1.0)
    tr.start(np.array([[[0.0, 2.0, 0.5, 3.0]]]))
    tr.update(np.array([[[2.0, 0.0, 0.5, 3.0]]]), dt=10.0)
    # rising 0→2 crosses at half the step; falling 2→0 likewise; 0.5 never; 3 always
    np.testing.assert_allclose(tr.time_above[0, 0], [5.0, 5.0, 0.0, 10.0])
    np.testing.assert_allclose(tr.auc[0, 0], [10.0, 10.0, 5.0, 30.0])
    assert tr.metrics()["exposure_normal_fraction_above"] == 0.5


def test_systemic_plasma_feeds_the_tissue_its_unbound_concentration(tmp_path):
    """With drug.plasma.kind = "systemic", the walls see the unbound plasma concentration: with a
    fast wall exchange (P·S/V = 0.1 1/s) and no uptake, the tissue follows the unbound plasma
    level (≈ 0.13 % of the total), never the total."""
    sc = nanosim.load_scenario({
        "grid": {"shape": [4, 4, 4], "voxel_size_m": "10 um"},
        "network": {"kind": "uniform_perfusion", "normal_surface_per_volume_per_m": 1e4,
                    "tumour_surface_per_volume_per_m": 1e4},
        "body": {"species": "mouse"},
        "drug": {"permeability_m_per_s": "1e-5 m/s", "normal": {"diffusivity_m2_per_s": "2e-10 m^2/s"},
                 "plasma": {"kind": "systemic", "oral": {"dose_mg_per_kg": 30, "doses": 1}}},
        "transport": {"scheme": "implicit", "dt_s": "60 s"},
        "time": {"stop_s": "6 h"}, "output": {"every_s": "1 h"}})
    res = nanosim.run(sc, tmp_path / "s.vtkhdf", backend="numba")
    m = res.metrics
    unbound = np.asarray(m["plasma_mol_per_m3"])[1:]
    total = np.asarray(m["plasma_total_mol_per_m3"])[1:]
    tissue = np.asarray(m["normal_mean_free_mol_per_m3"])[1:]
    assert np.all(unbound < 0.01 * total)
    # P·S/V = 0.1 1/s against hours of plasma change: the tissue lags by ≈ 10 s of plasma history
    np.testing.assert_allclose(tissue, unbound, rtol=0.02)
    assert np.all(np.abs(m["systemic_drug_balance_rel_error"]) < 1e-12)


def test_the_compiled_update_equals_the_numpy_reference(monkeypatch):
    # random histories with crossings both ways, values on the threshold, constant stretches,
    # float32 and float64 fields: the numba backend's one-pass update and the NumPy form agree
    # bitwise (same operations in the same order on float64 values)
    from nanosim.kernels import exposure as kernels

    calls = []
    compiled = kernels.numba_update
    monkeypatch.setattr(kernels, "numba_update", lambda *a: calls.append(1) or compiled(*a))
    rng = np.random.default_rng(4)
    region = rng.integers(0, 3, (6, 7, 9)).astype(np.uint8)
    for dtype in (np.float32, np.float64):
        ref = ExposureTracker(get_backend("numpy"), region, threshold_mol_per_m3=0.5)
        fast = ExposureTracker(get_backend("numba"), region, threshold_mol_per_m3=0.5)
        c = rng.random(region.shape).astype(dtype)
        ref.start(c)
        fast.start(c)
        for step in range(12):
            c = rng.random(region.shape).astype(dtype)
            c[0, 0, :3] = dtype(0.5)  # exactly on the threshold
            if step % 4 == 3:
                c[1] = c[1] * 0 + dtype(0.25)  # flat below
            dt = 0.5 + step
            ref.update(c, dt)
            fast.update(c, dt)
        for name in ("auc", "cmax", "time_above", "prev"):
            assert np.array_equal(getattr(ref, name), getattr(fast, name)), (dtype, name)
        assert ref.metrics() == fast.metrics()
    assert len(calls) == 24  # every update of the numba tracker took the compiled pass
