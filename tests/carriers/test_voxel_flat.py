"""The voxel of each particle: the compiled twin gives NumPy's indices bit for bit."""

import numpy as np
import pytest

from nanosim.geometry.grid import Grid
from nanosim.kernels import particles


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("origin", [(0.0, 0.0, 0.0), (-1.3e-3, 2.7e-4, 1e-5)])
def test_numba_voxel_flat_equals_the_numpy_reference(dtype, origin):
    grid = Grid(shape_xyz=(37, 21, 13), voxel_size_m=2e-5 / 3, origin_m=origin)
    rng = np.random.default_rng(7)
    lo = np.array(origin) - 3 * grid.voxel_size_m
    hi = np.array(grid.upper_m) + 3 * grid.voxel_size_m
    pts = [rng.uniform(lo[a], hi[a], 20000) for a in range(3)]
    # points on voxel faces (where the rounding of (p − o)/h decides) and a few odd values
    for a in range(3):
        n = grid.shape_xyz[a]
        faces = origin[a] + np.arange(-1, n + 2) * grid.voxel_size_m
        pts[a][: faces.size] = faces
        pts[a][faces.size: faces.size + 3 * faces.size] = np.concatenate(
            [np.nextafter(faces.astype(dtype), -np.inf), np.nextafter(faces.astype(dtype), np.inf), faces])
        # and far out: beyond int64 (NumPy's cast gives INT64_MIN, clipped to 0), just inside it
        h = grid.voxel_size_m
        pts[a][-8:] = [np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, 9.2e18 * h, -9.2e18 * h]
    x, y, z = (p.astype(dtype) for p in pts)
    with np.errstate(invalid="ignore"):  # NumPy's cast of NaN and ±inf to int64
        want = particles.numpy_voxel_flat(x, y, z, grid)
    got = particles.numba_voxel_flat(x, y, z, grid)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert got.min() >= 0 and got.max() < np.prod(grid.shape_xyz)
    assert np.array_equal(particles.voxel_flat("numba", x, y, z, grid), want)


def test_voxel_flat_keeps_the_precision_of_the_positions():
    # a float32 position just below a face is in the lower voxel only in float32 arithmetic
    grid = Grid(shape_xyz=(4, 1, 1), voxel_size_m=0.1, origin_m=(0.0, 0.0, 0.0))
    x32 = np.array([np.nextafter(np.float32(0.2), np.float32(0))], np.float32)
    zero = np.zeros(1, np.float32)
    want = int(np.floor(x32 / np.float32(0.1))[0])
    assert particles.numba_voxel_flat(x32, zero, zero, grid)[0] == want
    assert particles.numpy_voxel_flat(x32, zero, zero, grid)[0] == want
