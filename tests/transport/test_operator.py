"""Analytic and convergence tests of the transport operator (PHYSICS.md §11 items 1, 2, 8)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nanosim.backends import get_backend
from nanosim.geometry import Grid
from nanosim.transport import TransportOperator

D = 2e-10  # m²/s, sorafenib tissue D_eff (PHYSICS.md §8)


def make_op(shape_xyz, h, backend="numba", dtype=np.float64, scheme="explicit", bc=(0, 0, 0), bcv=(0, 0, 0),
            d=D, k=0.0, **kw):
    grid = Grid(shape_xyz, h, (0.0, 0.0, 0.0))
    region = np.zeros(grid.shape_zyx, np.uint8)
    return TransportOperator(get_backend(backend), grid, region, [d] * 3, [k] * 3, [0.0] * 3, [0.0] * 3,
                             list(bc), list(bcv), dtype, scheme=scheme, **kw)


def run_to(op, t_end, dt, cp=0.0):
    n = max(1, math.ceil(t_end / dt - 1e-9))
    for _ in range(n):
        op.step(t_end / n, cp)


def cosine_error(n, axis, backend="numba", scheme="explicit", dt_factor=None):
    """Max error of the cosine mode u = 1 + cos(πx/L) e^(−Dπ²t/L²) with no-flux walls."""
    L = 100e-6
    h = L / n
    shape = [1, 1, 1]
    shape[axis] = n
    op = make_op(tuple(shape), h, backend=backend, scheme=scheme)
    x = (np.arange(n) + 0.5) * h
    arr_shape = [1, 1, 1]
    arr_shape[2 - axis] = n
    op.c[...] = (1 + np.cos(np.pi * x / L)).reshape(arr_shape)
    t = 0.2 * L**2 / (D * np.pi**2)  # decays to e^-0.2
    dt = op.explicit_dt_limit() * 0.5 if dt_factor is None else dt_factor * h**2 / D
    run_to(op, t, dt)
    exact = 1 + np.cos(np.pi * x / L) * np.exp(-D * np.pi**2 * t / L**2)
    return np.abs(np.asarray(op.c).reshape(-1) - exact).max()


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cosine_mode_second_order_in_space(axis):
    # explicit step with dt ∝ h² (half the stability limit): the time error scales like h² as well,
    # so the total error must fall by 4× per halving of h (order 2), measured on 16 → 32 → 64
    errs = [cosine_error(n, axis) for n in (16, 32, 64)]
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(1.9 < p < 2.1 for p in orders), (errs, orders)
    assert errs[-1] < 1e-3


def test_cosine_mode_numpy_equals_numba():
    a = cosine_error(32, 0, backend="numpy")
    b = cosine_error(32, 0, backend="numba")
    assert a == pytest.approx(b, rel=1e-9)


def test_explicit_first_order_in_time():
    # at fixed space (n = 64) compare with a 16× finer time step: forward Euler's error is ∝ dt
    n, L = 64, 100e-6
    h = L / n
    x = (np.arange(n) + 0.5) * h
    t = 0.2 * L**2 / (D * np.pi**2)

    def final(dt_frac):
        op = make_op((n, 1, 1), h)
        op.c[...] = 1 + np.cos(np.pi * x / L)
        run_to(op, t, dt_frac * h**2 / D)
        return np.asarray(op.c).reshape(-1).copy()

    ref = final(0.4 / 16)
    e1 = np.abs(final(0.4) - ref).max()
    e2 = np.abs(final(0.2) - ref).max()
    assert 0.85 < math.log2(e1 / e2) < 1.15, (e1, e2)


def test_gaussian_spreads_as_analytic_3d():
    # a 3-D Gaussian of variance s0² per axis stays Gaussian with s² = s0² + 2Dt; periodic box far
    # larger than the pulse; error second order in h (checked at two resolutions)
    def err(n):
        L = 200e-6
        h = L / n
        op = make_op((n, n, n), h, bc=(1, 1, 1))
        c = (np.arange(n) + 0.5) * h - L / 2
        s0 = 12e-6
        r2 = c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2
        op.c[...] = np.exp(-r2 / (2 * s0**2))
        t = 0.5
        run_to(op, t, op.explicit_dt_limit() * 0.5)
        s2 = s0**2 + 2 * D * t
        exact = (s0**2 / s2) ** 1.5 * np.exp(-r2 / (2 * s2))
        return np.abs(np.asarray(op.c) - exact).max()

    e1, e2 = err(32), err(64)
    assert math.log2(e1 / e2) > 1.8, (e1, e2)
    assert e2 < 5e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_uniform_convection_moves_centre_of_mass(dtype):
    # 1-D pulse in a periodic box advected at u: the centre of mass moves u·t exactly (the upwind
    # fluxes move the first moment at rate u while the pulse stays clear of the wrap-around;
    # small D keeps it so), mass is conserved
    n, h, u = 200, 1e-6, 2e-6
    op = make_op((n, 1, 1), h, dtype=dtype, bc=(1, 0, 0), d=1e-13, velocity_m_per_s=(u, 0.0, 0.0))
    x = (np.arange(n) + 0.5) * h
    op.c[...] = np.exp(-((x - 60e-6) ** 2) / (2 * (8e-6) ** 2))
    m0 = float(np.sum(op.c, dtype=np.float64))
    t = 30.0
    run_to(op, t, op.explicit_dt_limit() * 0.9)
    c = np.asarray(op.c, np.float64).reshape(-1)
    com = (c * x).sum() / c.sum()
    tol_mass = 1e-12 if dtype == np.float64 else 1e-5
    assert c.sum() == pytest.approx(m0, rel=tol_mass)
    assert com == pytest.approx(60e-6 + u * t, abs=0.02 * h)


def _mass_balance_case(backend_name, dtype, scheme):
    rng = np.random.default_rng(3)
    shape = (10, 9, 8)
    grid = Grid(shape, 5e-6)
    region = rng.integers(0, 3, grid.shape_zyx).astype(np.uint8)
    fixed = np.zeros(grid.shape_zyx, np.uint8)
    fixed[4, 4, 3:6] = 1
    ps = rng.random(grid.shape_zyx) * 0.05
    src = rng.random(grid.shape_zyx) * 1e-3
    u = (rng.random((3,) + grid.shape_zyx) - 0.5) * 2e-6
    be = get_backend(backend_name)
    op = TransportOperator(be, grid, region, [1e-10, 2e-10, 5e-11], [0.01, 0.05, 0.0],
                           [0.1, 0.0, 0.02], [0.01, 0.0, 0.05], [2, 1, 0], [0.3, 0.0, 0.0], dtype, scheme=scheme,
                           ps=ps, src=src, fixed=fixed, velocity_m_per_s=u)
    op.c[...] = be.asarray(rng.random(grid.shape_zyx), dtype)
    total0 = op.total_mol()
    inflow = 0.0
    worst = 0.0
    for i in range(200):
        led = op.step(0.02, 0.5 + 0.1 * math.sin(i / 10))
        inflow += led[0] + led[1] - led[2] + led[3] + led[4]
        err = (led[5] - total0 - inflow) / total0
        worst = max(worst, abs(err))
        # the kernel's own total equals an independent sum of the fields
        assert led[5] == pytest.approx(op.total_mol(), rel=1e-12 if dtype == np.float64 else 1e-6)
    return worst


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_mass_balance_closes_to_roundoff(backend, scheme):
    # every term on at once: fixed voxels, exchange, loss, binding, source, convection, fixed-value
    # and periodic walls. float64: round-off of ~1e3 voxels × 200 steps stays below 1e-12.
    assert _mass_balance_case(backend.name, np.float64, scheme) < 1e-12


def test_mass_balance_float32_bounded_by_rounding():
    # float32 fields: each step rounds every voxel (ε = 6e-8); 200 steps of random-walk rounding
    # over 720 voxels stays well below 1e-5 relative
    assert _mass_balance_case("numba", np.float32, "explicit") < 1e-5


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_numpy_and_numba_agree(scheme):
    rng = np.random.default_rng(5)
    res = []
    for backend in ("numpy", "numba"):
        grid = Grid((12, 10, 8), 4e-6)
        region = np.random.default_rng(1).integers(0, 3, grid.shape_zyx).astype(np.uint8)
        fixed = np.zeros(grid.shape_zyx, np.uint8)
        fixed[2:4, 5, 5] = 1
        op = TransportOperator(get_backend(backend), grid, region, [1e-10, 2e-10, 5e-11], [0.01, 0.05, 0.0],
                               [0.1, 0.0, 0.02], [0.01, 0.0, 0.05], [0, 1, 2], [0, 0, 0.2], np.float64,
                               scheme=scheme, ps=np.full(grid.shape_zyx, 0.01), fixed=fixed,
                               velocity_m_per_s=(1e-6, -2e-6, 0.5e-6))
        op.c[...] = np.random.default_rng(2).random(grid.shape_zyx)
        for _ in range(20):
            op.step(0.01, 0.4)
        res.append(np.asarray(op.c).copy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-12, atol=1e-14)


def test_explicit_and_implicit_agree():
    # same problem, both schemes with a small step: both are first order in time, so they differ
    # by O(dt·λ) of the change they compute (λ ≈ D(π/L)² + k ≈ 0.85 1/s, dt·λ ≈ 0.004 here);
    # halving dt halves the gap
    n, L = 24, 50e-6
    h = L / n
    x = (np.arange(n) + 0.5) * h
    c_init = (1 + np.cos(np.pi * x / L))[None, None, :] * np.ones((1, n, 1))

    def final(scheme, dt):
        op = make_op((n, n, 1), h, scheme=scheme, k=0.05, bc=(0, 2, 1), bcv=(0, 1.0, 0))
        op.c[...] = c_init
        run_to(op, 1.0, dt)
        return np.asarray(op.c).copy()

    dt = 0.2 * h**2 / D
    ex = final("explicit", dt)
    change = np.abs(ex - c_init).max()
    g1 = np.abs(ex - final("implicit", dt)).max()
    g2 = np.abs(final("explicit", dt / 2) - final("implicit", dt / 2)).max()
    assert g1 < 0.01 * change, (g1, change)
    assert 0.8 < math.log2(g1 / g2) < 1.2, (g1, g2)


def test_implicit_is_stable_far_beyond_the_explicit_limit():
    op = make_op((32, 32, 1), 2e-6, scheme="implicit", k=0.1, bc=(2, 0, 1), bcv=(1.0, 0, 0))
    op.c[...] = np.random.default_rng(0).random(op.grid.shape_zyx)
    dt = 100 * op.explicit_dt_limit()
    for _ in range(50):
        op.step(dt, 0.0)
    c = np.asarray(op.c)
    assert np.all(np.isfinite(c)) and c.min() >= 0 and c.max() <= 1.0 + 1e-12


def test_cuda_kernels_match_cpu_in_simulator():
    script = Path(__file__).parents[1] / "kernels" / "cudasim_explicit.py"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(" ok") == 17, res.stdout


def test_steady_point_source_with_uptake():
    # Q e^(−r/ℓ)/(4πDr) around a one-voxel source with first-order uptake (PHYSICS.md §11 item 2),
    # ℓ = 4h, periodic box of ±6ℓ (images change the profile by < 1e-3 for r ≤ 3ℓ), run to
    # k·t = 12 (transient < 1e-5). Radius-binned mean error for ℓ ≤ r < 3ℓ: the 7-point stencil's
    # error is second order, (h/ℓ)²-sized: 0.5 % at ℓ = 4h, 0.1 % at ℓ = 8h (measured once;
    # the finer case takes minutes, so only the coarse one runs here, against a 1 % bound)
    lh, h = 4, 2e-6
    n, ell = 12 * lh, lh * h
    k = D / ell**2
    grid = Grid((n, n, n), h)
    src = np.zeros(grid.shape_zyx)
    q = 1e-18  # mol/s
    c0 = n // 2
    src[c0, c0, c0] = q / h**3
    op = TransportOperator(get_backend("numba"), grid, np.zeros(grid.shape_zyx, np.uint8), [D] * 3, [k] * 3,
                           [0] * 3, [0] * 3, [1, 1, 1], [0, 0, 0], np.float64, src=src)
    run_to(op, 12 / k, op.explicit_dt_limit() * 0.9)
    z, y, x = grid.mesh_m()
    cc = (c0 + 0.5) * h
    r = np.sqrt((x - cc) ** 2 + (y - cc) ** 2 + (z - cc) ** 2)
    c = np.asarray(op.c)
    for lo, hi in ((1.0, 1.5), (1.5, 2.0), (2.0, 3.0)):
        m = (r >= lo * ell) & (r < hi * ell)
        exact = q * np.exp(-r[m] / ell) / (4 * np.pi * D * r[m])
        assert abs(np.mean(c[m] / exact) - 1) < 0.01, (lo, hi)


def test_operator_gpu_path_matches_numba_in_simulator():
    script = Path(__file__).parent / "cudasim_operator.py"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(" ok") == 4, res.stdout
