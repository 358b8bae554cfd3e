"""Free-drug model: plasma curves, wall exchange, binding, initial fields (through build_model)."""

import math

import numpy as np
import pytest

from nanosim.backends import get_backend
from nanosim.drug import PlasmaCurve, build_model
from nanosim.scenario import load_scenario


def scenario(**extra):
    base = {
        "grid": {"shape": [8, 8, 1], "voxel_size_m": "5 um", "boundary": "no_flux"},
        "drug": {"normal": {"diffusivity_m2_per_s": "2e-10 m^2/s"}},
        "time": {"stop_s": "10 s"},
    }
    for key, value in extra.items():
        node = base
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return load_scenario(base)


def test_plasma_curves():
    sc = scenario(**{"drug.plasma": {"kind": "exponential", "initial_mol_per_m3": 2.0, "half_life_s": "1 h"}})
    p = PlasmaCurve(sc.drug.plasma)
    assert p(3600.0) == pytest.approx(1.0, rel=1e-14)
    assert p(7200.0) == pytest.approx(0.5, rel=1e-14)
    sc = scenario(**{"drug.plasma": {"kind": "table", "times_s": [0, 10, 20], "concentrations_mol_per_m3": [0, 1, 0.5]}})
    p = PlasmaCurve(sc.drug.plasma)
    assert [p(t) for t in (-1, 5, 10, 15, 30)] == pytest.approx([0, 0.5, 1, 0.75, 0.5])


@pytest.mark.parametrize("scheme,order_tol", [("explicit", 0.01), ("implicit", 0.02)])
def test_exchange_through_permeable_wall_matches_ode(scheme, order_tol):
    # an exchange vessel covering the whole box: dC/dt = PS/V (Cp − C) − k C with PS/V = P·2/r,
    # C(t) = Cp a/(a+k) (1 − e^(−(a+k) t)); both schemes are first order in time, so with
    # dt = 0.05/(a+k) their error is ~ dt(a+k)/2 ≈ 2.5 % of the transient at most — bounded here
    # by the stated tolerance on the final value, and the ledger closes
    P, r, k, cp = 1e-7, 1e-3, 0.02, 3.0
    sc = scenario(**{
        "vessels": [{"kind": "cylinder", "start_m": ["20 um", "20 um", "-1 mm"], "end_m": ["20 um", "20 um", "1 mm"],
                     "radius_m": r, "wall": "exchange"}],
        "drug.permeability_m_per_s": P,
        "drug.plasma": {"kind": "constant", "concentration_mol_per_m3": cp},
        "drug.normal.uptake_rate_per_s": k,
        "transport.scheme": scheme,
    })
    model = build_model(sc, get_backend("numba"), np.float64)
    a = P * 2 / r
    dt = 0.05 / (a + k)
    t_end = 40.0
    n = math.ceil(t_end / dt)
    for _ in range(n):
        model.step(t_end / n)
    c = np.asarray(model.op.c)
    exact = cp * a / (a + k) * (1 - math.exp(-(a + k) * t_end))
    assert c.std() < 1e-12 * c.mean()
    assert c.mean() == pytest.approx(exact, rel=order_tol)
    assert abs(model.mass_balance_error()) < 1e-12


def test_binding_equilibrium():
    # C + Cb conserved, C → C0 koff/(kon + koff) with rate kon + koff
    kon, koff = 0.3, 0.1
    sc = scenario(**{"drug.normal.binding_on_rate_per_s": kon, "drug.normal.binding_off_rate_per_s": koff,
                     "drug.initial": {"kind": "uniform", "concentration_mol_per_m3": 1.0}})
    model = build_model(sc, get_backend("numba"), np.float64)
    for _ in range(4000):
        model.step(0.005)
    c, cb = float(np.asarray(model.op.c).mean()), float(np.asarray(model.op.cb).mean())
    exact = koff / (kon + koff) + kon / (kon + koff) * math.exp(-(kon + koff) * 20.0)
    assert c + cb == pytest.approx(1.0, rel=1e-13)
    assert c == pytest.approx(exact, rel=2e-3)  # forward Euler, dt (kon+koff) = 2e-3
    assert abs(model.mass_balance_error()) < 1e-13


def test_gaussian_initial_amount_and_regions():
    sc = scenario(**{"grid.shape": [20, 20, 20],
                     "drug.initial": {"kind": "gaussian", "center_m": ["50 um"] * 3, "sigma_m": "10 um",
                                      "amount_mol": 1e-15},
                     "tissue.tumour": {"kind": "sphere", "center_m": ["50 um"] * 3, "radius_m": "30 um"},
                     "drug.tumour": {"diffusivity_m2_per_s": "1e-10 m^2/s", "uptake_rate_per_s": 0.1}})
    model = build_model(sc, get_backend("numpy"), np.float64)
    assert model.total_mol == pytest.approx(1e-15, rel=1e-12)
    m = model.metrics()
    assert "tumour_mean_free_mol_per_m3" in m and "normal_mean_free_mol_per_m3" in m
    assert not model.op.uniform  # two regions with different D: the general kernel
