"""Depth-resolved scaling of the box's tumour to the whole tumour (carriers' % injected dose)."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from nanosim.geometry import Grid, region_map
from nanosim.geometry.tissue import normalised_radius, whole_tumour_weights


def _sphere(center, radius, core=0.0):
    return NS(kind="sphere", center_m=center, radius_m=radius, necrotic_radius_m=core)


def test_whole_tumour_in_the_box_is_plain_volume_scaling():
    h = 1e-5
    grid = Grid((40, 40, 40), h)
    tum = _sphere((2e-4, 2e-4, 2e-4), 1.5e-4, core=0.5e-4)
    whole = 3.0e-10  # the body's tumour: larger than the box's sphere
    w, info = whole_tumour_weights(grid, tum, whole)
    reg = region_map(grid, tum)
    assert np.all(w[reg == 0] == 0) and np.all(w[reg > 0] > 0)
    # every layer of the whole tumour is sampled: the weights account for all of its volume
    assert w.sum() * h**3 == pytest.approx(whole, rel=1e-12)
    assert info["borrowed_m3"] == 0 and info["unsampled_necrotic_m3"] == 0
    # a uniform amount per voxel scales exactly like volume scaling
    plain = whole / ((reg > 0).sum() * h**3)
    assert np.sum(w) / (reg > 0).sum() == pytest.approx(plain, rel=1e-12)


def test_rim_sample_integrates_a_radial_profile():
    """The box holds the outer 1.2 mm of a 4 mm tumour with a 2.5 mm necrotic core (unsampled).

    The carriers per volume follow c(ρ): 0 in the core, c_d from the core to ρ₁ (0.8 mm deep,
    inside the box), rising linearly to 4 c_d at the surface. The exact whole-tumour amount is
    ∫ c dV = 3V ∫ c(ρ) ρ² dρ. Each layer of thickness Δρ uses the mean of c over its voxels for
    its whole volume: on the linear part the error is at most c'·Δρ/2 per unit volume, which
    bounds the tolerance.
    """
    h, R, core = 20e-6, 4e-3, 2.5e-3
    grid = Grid((60, 60, 60), h)
    tum = _sphere((-(R - 1.2e-3), 0.6e-3, 0.6e-3), R, core)
    w, info = whole_tumour_weights(grid, tum, 4 / 3 * np.pi * R**3)
    rho = normalised_radius(grid, tum)
    rc, r1, cd = core / R, 1 - 0.8e-3 / R, 1.0
    slope = 3 * cd / (1 - r1)

    def c(r):
        return np.where(r < rc, 0.0, np.where(r < r1, cd, cd + slope * (r - r1)))

    amount = c(rho) * h**3 * (rho <= 1)
    estimate = float(np.sum(amount * w))
    rr = np.linspace(rc, 1, 200001)
    V = 4 / 3 * np.pi * R**3
    exact = float(np.trapezoid(c(rr) * 3 * V * rr**2, rr))
    d_rho = 2 * h / R
    bound = slope * d_rho / 2 * V * (1 - r1**3)
    assert abs(estimate - exact) <= bound, (estimate, exact, bound)
    assert info["unsampled_necrotic_m3"] == pytest.approx(4 / 3 * np.pi * core**3, rel=1e-12)
    assert info["borrowed_m3"] > 0  # the viable tumour between the box and the core
    assert info["sampled_m3"] + info["borrowed_m3"] + info["unsampled_necrotic_m3"] == pytest.approx(V, rel=1e-12)
    # plain volume scaling would weigh the box's deep voxels like its shallow ones
    plain = amount.sum() * V / ((rho <= 1).sum() * h**3)
    assert abs(plain - exact) > 3 * bound
