"""The cupy backend on a real device against the numba backend (marked ``gpu``; skipped without one).

CI checks every CUDA kernel through Numba's CUDA simulator; these tests run the same kernels
compiled for the device, with real device memory, launch geometry and float rounding.
"""

from pathlib import Path

import numpy as np
import pytest

import nanosim
from nanosim.backends import get_backend
from nanosim.geometry import Grid
from nanosim.transport import TransportOperator

pytestmark = pytest.mark.gpu


def _general_case(backend_name, scheme, dtype, steps=20):
    grid = Grid((40, 33, 27), 4e-6)  # odd sizes: partial thread blocks on every axis
    region = np.random.default_rng(1).integers(0, 3, grid.shape_zyx).astype(np.uint8)
    fixed = np.zeros(grid.shape_zyx, np.uint8)
    fixed[2:4, 5, 5] = 1
    be = get_backend(backend_name)
    op = TransportOperator(be, grid, region, [1e-10, 2e-10, 5e-11], [0.01, 0.05, 0.0],
                           [0.1, 0.0, 0.02], [0.01, 0.0, 0.05], [0, 1, 2], [0, 0, 0.2], dtype,
                           scheme=scheme, ps=np.full(grid.shape_zyx, 0.01), fixed=fixed,
                           velocity_m_per_s=(1e-6, -2e-6, 0.5e-6))
    op.c[...] = be.asarray(np.random.default_rng(2).random(grid.shape_zyx), dtype)
    ledgers = [op.step(0.01, 0.4) for _ in range(steps)]
    return be.to_host(op.c).astype(np.float64), np.array(ledgers)


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_general_operator_matches_numba_float64(scheme):
    c_gpu, led_gpu = _general_case("cupy", scheme, np.float64)
    c_cpu, led_cpu = _general_case("numba", scheme, np.float64)
    # float64 with a different summation order (and FMA contraction on the device): round-off only
    np.testing.assert_allclose(c_gpu, c_cpu, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(led_gpu, led_cpu, rtol=1e-9, atol=1e-20)


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_general_operator_matches_numba_float32(scheme):
    c_gpu, _ = _general_case("cupy", scheme, np.float32)
    c_cpu, _ = _general_case("numba", scheme, np.float32)
    # 20 steps of float32 rounding (ε = 6e-8 per operation, tens of operations per voxel and step)
    np.testing.assert_allclose(c_gpu, c_cpu, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_fast_path_matches_numba(dtype):
    out = []
    for name in ("cupy", "numba"):
        be = get_backend(name)
        grid = Grid((64, 48, 40), 5e-6)
        op = TransportOperator(be, grid, np.zeros(grid.shape_zyx, np.uint8), [2e-10] * 3, [0.05] * 3,
                               [0.0] * 3, [0.0] * 3, [0, 2, 1], [0.0, 0.0, 0.3], dtype)
        assert op.uniform
        op.c[...] = be.asarray(np.random.default_rng(4).random(grid.shape_zyx), dtype)
        led = [op.step(0.05, 0.0) for _ in range(10)]
        out.append((be.to_host(op.c).astype(np.float64), np.array(led)))
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=tol, atol=tol * 1e-2)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=max(tol, 1e-9), atol=1e-20)


def _krogh_error(sc, c):
    """Mean of the field over the ring from two voxels off the wall to 120 µm, relative to Krogh."""
    from scipy.special import k0

    v = sc.vessels[0]
    h = sc.grid.voxel_size_m
    ny, nx = c.shape
    r = np.hypot((np.arange(nx) + 0.5)[None, :] * h - v.start_m[0],
                 (np.arange(ny) + 0.5)[:, None] * h - v.start_m[1])
    ell = np.sqrt(sc.drug.normal.diffusivity_m2_per_s / sc.drug.normal.uptake_rate_per_s)
    exact = sc.drug.plasma.concentration_mol_per_m3 * k0(r / ell) / k0(v.radius_m / ell)
    m = (r > v.radius_m + 2 * h) & (r < 120e-6)
    return abs(c[m].mean() / exact[m].mean() - 1)


QUICKSTART = Path(__file__).parents[2] / "scenarios" / "quickstart.toml"


def test_quickstart_on_the_device_in_float64_matches_numba(tmp_path):
    sc = nanosim.load_scenario(QUICKSTART, overrides=["precision=float64"])
    gpu = nanosim.run(sc, tmp_path / "g.vtkhdf", backend="cupy")
    cpu = nanosim.run(sc, tmp_path / "c.vtkhdf", backend="numba")
    assert gpu.status == "completed"
    cg, cc = gpu.field("free_drug")[0], cpu.field("free_drug")[0]
    # 15 000 float64 steps with another summation order: round-off stays far below 1e-9
    np.testing.assert_allclose(cg, cc, rtol=1e-9, atol=1e-15)
    assert np.nanmax(np.abs(gpu.metrics["mass_balance_rel_error"])) < 1e-12


def test_quickstart_on_the_device_default_float32_reaches_krogh(tmp_path):
    sc = nanosim.load_scenario(QUICKSTART)
    res = nanosim.run(sc, tmp_path / "g.vtkhdf", backend="cupy")
    assert res.status == "completed"
    # "auto" precision is float32 on the GPU: same 1 % bound and reasons as tests/test_quickstart.py
    assert _krogh_error(sc, res.field("free_drug")[0]) < 0.01
    # float32 fields: each step can shift the total by at most a few ε = 6e-8 relative, and the
    # shifts need not cancel, so 15 210 steps bound the cumulative imbalance by 15 210 ε ≈ 9e-4
    # (measured 1.1e-5 on an H200)
    assert np.nanmax(np.abs(res.metrics["mass_balance_rel_error"])) < 15210 * 6e-8
