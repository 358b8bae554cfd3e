"""Steady drug around a vessel with uptake and tissue binding: Krogh's K₀ profile, retarded approach.

The quickstart's single vessel held at the plasma concentration, on a 90 × 90 grid of 2 µm with
uptake k = 0.889 1/s (ℓ = √(D/k) = 15 µm; the no-flux box walls 80 µm ≥ 5ℓ from the wall). With
fast linear binding (k_on = (R − 1) k_off, k_off = 40 1/s ≫ k) the steady free profile is still
C_w K₀(r/ℓ)/K₀(r_w/ℓ) and the bound pool is (R − 1) C everywhere; the approach to it is slower by
the retardation factor R: every mode's rate is divided by R (PHYSICS.md §8 "fast linear binding
can be folded into a retardation factor"), up to O(k/k_off) = 2 %.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy.special import k0

import nanosim
from nanosim.backends import get_backend
from nanosim.drug import build_model

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml"
GRID = ["grid.shape=[90, 90, 1]", "drug.normal.uptake_rate_per_s=0.8888889 1/s",
        'vessels=[{kind="cylinder", start_m=["90 um", "90 um", "-1 mm"], end_m=["90 um", "90 um", "1 mm"], '
        'radius_m="10 um", wall="fixed_concentration"}]']
K_OFF, R = 40.0, 3.0


def run(binding: bool, stop_s: float, every_s: float = 1.0):
    """The model and the profile's worst radius-binned error against K₀ after every ``every_s``."""
    over = GRID + ([f"drug.normal.binding_off_rate_per_s={K_OFF} 1/s",
                    f"drug.normal.binding_on_rate_per_s={K_OFF * (R - 1)} 1/s"] if binding else [])
    sc = nanosim.load_scenario(SCENARIO, overrides=over)
    m = build_model(sc, get_backend("numba"), np.float64)
    v, h = sc.vessels[0], sc.grid.voxel_size_m
    ny, nx = sc.grid.shape[1], sc.grid.shape[0]
    x, y = (np.arange(nx) + 0.5) * h, (np.arange(ny) + 0.5) * h
    r = np.hypot(x[None, :] - v.start_m[0], y[:, None] - v.start_m[1])
    ell = np.sqrt(sc.drug.normal.diffusivity_m2_per_s / sc.drug.normal.uptake_rate_per_s)
    exact = sc.drug.plasma.concentration_mol_per_m3 * k0(r / ell) / k0(v.radius_m / ell)
    edges = np.arange(v.radius_m, 60e-6 + 1e-12, 5e-6)  # 5 µm bins from the wall out to 4ℓ
    bins = [(r >= lo) & (r < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    errors = []
    for _ in range(round(stop_s / every_s)):
        m.step(every_s)
        c = np.asarray(m.op.c)[0]
        errors.append(max(abs(c[b].mean() / exact[b].mean() - 1) for b in bins))
    return m, np.asarray(errors), bins


def test_bound_steady_profile_is_krogh_and_the_approach_is_slower_by_r():
    plain, e1, _ = run(False, 8.0, every_s=1.0)
    bound, e3, bins = run(True, 8.0 * R, every_s=R)
    # steady: the free profile is K₀ with or without binding (1 %: second-order discretisation,
    # h/ℓ = 0.13, and the sub-voxel wall; measured 0.62 % in both), and C_b = (R − 1) C
    assert e1[-1] < 0.01 and e3[-1] < 0.01
    assert abs(e3[-1] - e1[-1]) < 1e-4  # the same steady state
    c, cb = np.asarray(bound.op.c)[0], np.asarray(bound.op.cb)[0]
    tissue = np.any(bins, axis=0)
    # (the bound pool trails the still-rising free drug by ≈ λ/k_off × the remaining transient)
    np.testing.assert_allclose(cb[tissue], (R - 1) * c[tissue], rtol=1e-3)
    # the transient: with fast binding the whole approach runs R times slower, C_R(x, Rt) = C_1(x, t),
    # so the profile's error at Rt with binding is the error at t without it. Each mode's rate is
    # off by O(k/k_off) = 2 %, i.e. the error by 2 % × λt ≤ 10 % while λt ≤ 5 (e ≥ 0.6 %)
    transient = e1 > 2 * e1[-1]
    np.testing.assert_allclose(e3[transient], e1[transient], rtol=0.1)
    assert transient.sum() >= 3  # t = 1, 2, 3, … s: the comparison covers the approach
