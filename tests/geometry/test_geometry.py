"""Grid, tissue regions and vessel voxel sets."""

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from nanosim.geometry import NECROTIC, NORMAL, TUMOUR, THETA_MIN, Grid, cylinder_mask, region_map, wall_correction


def test_grid_centres_shapes_and_repr():
    g = Grid((4, 3, 2), 5e-6, (1e-6, 0.0, -1e-6))
    assert g.shape_zyx == (2, 3, 4) and g.n_voxels == 24
    np.testing.assert_allclose(g.centers_m(0), 1e-6 + (np.arange(4) + 0.5) * 5e-6)
    z, y, x = g.mesh_m()
    assert z.shape == (2, 1, 1) and y.shape == (1, 3, 1) and x.shape == (1, 1, 4)
    assert g.upper_m == pytest.approx((21e-6, 15e-6, 9e-6))
    assert "4×3×2 voxels (24) of 5 µm" in repr(g)


def test_sphere_tumour_volume_and_necrotic_core():
    h = 2e-6
    g = Grid((60, 60, 60), h)
    R, Rn = 40e-6, 20e-6
    reg = region_map(g, NS(kind="sphere", center_m=(60e-6,) * 3, radius_m=R, necrotic_radius_m=Rn))
    v_tum = ((reg == TUMOUR) | (reg == NECROTIC)).sum() * h**3
    v_nec = (reg == NECROTIC).sum() * h**3
    # voxel-centre counting: relative volume error ~ (h/R)^(3/2)-scale lattice noise, < 2 % here
    assert v_tum == pytest.approx(4 / 3 * math.pi * R**3, rel=0.02)
    assert v_nec == pytest.approx(4 / 3 * math.pi * Rn**3, rel=0.03)
    assert reg[0, 0, 0] == NORMAL


def test_ellipsoid_tumour():
    g = Grid((50, 40, 30), 2e-6)
    axes = (40e-6, 30e-6, 20e-6)
    reg = region_map(g, NS(kind="ellipsoid", center_m=(50e-6, 40e-6, 30e-6), semi_axes_m=axes,
                           necrotic_fraction=0.5))
    v = (reg > 0).sum() * 8e-18
    assert v == pytest.approx(4 / 3 * math.pi * np.prod(axes), rel=0.02)
    assert (reg == NECROTIC).sum() * 8e-18 == pytest.approx(4 / 3 * math.pi * np.prod(axes) / 8, rel=0.05)


def test_cylinder_voxel_volume_within_two_percent():
    # at >= 4 voxels per radius the voxel count matches π r² L within 2 %
    h = 2.5e-6
    g = Grid((40, 40, 40), h)
    r = 10e-6
    m = cylinder_mask(g, (50e-6, 50e-6, -1.0), (50e-6, 50e-6, 1.0), r)
    assert m.sum() * h**3 == pytest.approx(math.pi * r**2 * 100e-6, rel=0.02)


def test_wall_correction_gives_exact_wall_distance():
    # a vessel along z: for a tissue voxel whose x-neighbour is inside, the wall crosses the
    # segment between their centres at θ = (distance − r)/h along x when the neighbour row is on the
    # vessel's axis line (y = axis)
    h = 1e-6
    g = Grid((41, 41, 1), h)
    c = 20.5e-6  # the centre of voxel 20
    r = 4.3e-6
    ves = [NS(start_m=(c, c, -1.0), end_m=(c, c, 1.0), radius_m=r, wall="fixed_concentration")]
    fixed = cylinder_mask(g, ves[0].start_m, ves[0].end_m, r).astype(np.uint8)
    corr = wall_correction(g, ves, fixed)
    # voxel x = 25 (distance 5 h) has its −x neighbour (4 h) inside: θ = (5 − 4.3) = 0.7
    assert corr[0, 20, 25] == pytest.approx(1 / 0.7 - 1, rel=1e-12)
    # the wall just outside a centre: θ below THETA_MIN is capped
    r2 = 3.95e-6
    ves2 = [NS(start_m=(c, c, -1.0), end_m=(c, c, 1.0), radius_m=r2, wall="fixed_concentration")]
    fixed2 = cylinder_mask(g, ves2[0].start_m, ves2[0].end_m, r2).astype(np.uint8)
    corr2 = wall_correction(g, ves2, fixed2)
    assert corr2[0, 20, 24] == pytest.approx(1 / (4 - 3.95) - 1 if 0.05 >= THETA_MIN else 1 / THETA_MIN - 1)
    assert np.all(corr[fixed.astype(bool)] == 0)
