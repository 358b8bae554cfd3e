"""Tests of the implicit LOD transport step (kernels/implicit.py and kernels/implicit_cuda.py).

Analytic cases of PHYSICS.md §11 (cosine mode, periodic decay, steady profiles, convection),
positivity at 100× the explicit limit, mass balance to round-off, NumPy/numba/CUDA-simulator
agreement and bitwise reproducibility.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nanosim.kernels import implicit as im

H = 1e-5  # voxel edge (m)
D = 1e-9  # diffusivity (m²/s)


def shape_along(axis, n, other=3):
    """Grid shape (nz, ny, nx) with ``n`` voxels along physical ``axis``, ``other`` elsewhere."""
    s = [other, other, other]
    s[2 - axis] = n
    return tuple(s)


def along(axis, profile, shape):
    """Broadcast a 1-D profile along physical ``axis`` to ``shape``."""
    view = [1, 1, 1]
    view[2 - axis] = profile.size
    return np.array(np.broadcast_to(profile.reshape(view), shape), order="C")  # writable


def problem(shape, dtype=np.float64, **kw):
    """Keyword arguments of one step: pure diffusion with uniform D, everything else off."""
    p = dict(
        c=np.zeros(shape, dtype), cb=np.zeros(shape, dtype), region=np.zeros(shape, np.uint8),
        d_table=np.array([D]), k_table=np.zeros(1), kon_table=np.zeros(1),
        koff_table=np.zeros(1), ps=np.zeros(1, dtype), has_ps=False, src=np.zeros(1, dtype),
        has_src=False, fixed=np.zeros(1, np.uint8), has_fixed=False, cp=0.0,
        u=np.zeros(1, dtype), has_u=False, bc_kind=np.zeros(3, np.int64),
        bc_value=np.zeros(3), h=H, dt=1.0)
    p.update(kw)
    nreg = p["d_table"].size
    for name in ("k_table", "kon_table", "koff_table"):
        if p[name].size != nreg:  # one entry per region
            p[name] = np.resize(p[name], nreg)
    return p


def full_problem(shape, dtype=np.float64, bc_kind=(2, 1, 0), seed=0):
    """Every term on: 3 regions, fixed voxels, velocity, exchange, loss, binding, source."""
    rng = np.random.default_rng(seed)
    f = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    return problem(
        shape, dtype, c=f(rng.random(shape)), cb=f(0.2 * rng.random(shape)),
        region=rng.integers(0, 3, shape).astype(np.uint8),
        d_table=np.array([1e-9, 3e-10, 6e-10]), k_table=np.array([1e-3, 0.0, 4e-3]),
        kon_table=np.array([2e-2, 1e-2, 0.0]), koff_table=np.array([5e-3, 1e-3, 0.0]),
        ps=f(2e-3 * rng.random(shape)), has_ps=True, src=f(1e-3 * rng.random(shape)),
        has_src=True, fixed=(rng.random(shape) < 0.08).astype(np.uint8), has_fixed=True,
        cp=1.7, u=f(4e-6 * (rng.random((3,) + shape) - 0.5)), has_u=True,
        bc_kind=np.array(bc_kind), bc_value=np.array([[0.3, 1.2], [0.8, 0.1], [0.5, 0.9]]),
        dt=2.0)


def all_terms_on(p):
    """Turn every optional input on, with zero arrays where it was off (same physics).

    Tests use two compiled variants of each kernel (all optional inputs off, or all on) to
    keep numba compile time low; this maps a problem onto the second one.
    """
    shape = p["c"].shape
    dtype = p["c"].dtype
    zeros = {"ps": np.zeros(shape, dtype), "src": np.zeros(shape, dtype),
             "fixed": np.zeros(shape, np.uint8), "u": np.zeros((3,) + shape, dtype)}
    for name, z in zeros.items():
        if not p["has_" + name]:
            p[name] = z
            p["has_" + name] = True
    return p


def copy(p):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in p.items()}


class Stepper:
    """One backend: ``numpy``, ``numba`` (fast path allowed) or ``numba-general``."""

    def __init__(self, name):
        self.name = name

    def __call__(self, p, nsteps=1, ledger=None):
        ledger = np.zeros(im.LEDGER_SIZE) if ledger is None else ledger
        if self.name == "numpy":
            work, step = None, im.numpy_implicit_step
        else:
            work = im.make_workspace(p["c"].shape, p["c"].dtype,
                                     fast_path=self.name == "numba")
            step = im.numba_implicit_step
        for _ in range(nsteps):
            step(**p, work=work, ledger_out=ledger)
        return ledger

    def __repr__(self):
        return self.name


BACKENDS = [Stepper("numpy"), Stepper("numba"), Stepper("numba-general")]


# --------------------------------------------------------------------------------------------
# Cosine mode with no-flux ends (PHYSICS.md §11.1)
# --------------------------------------------------------------------------------------------


def cosine_amplitude(step, axis, n, nsteps, t_end):
    """Amplitude at ``t_end`` of 1 + cos(πx/L) after ``nsteps`` equal steps, L = n·h."""
    shape = shape_along(axis, n)
    x = (np.arange(n) + 0.5) * H
    mode = np.cos(np.pi * x / (n * H))
    p = problem(shape, c=along(axis, 1.0 + mode, shape), dt=t_end / nsteps)
    step(p, nsteps)
    line = np.moveaxis(p["c"], 2 - axis, 0)[:, 1, 1]
    # Project on the mode (an exact eigenvector of the discrete no-flux operator).
    return float(np.dot(line - 1.0, mode) / np.dot(mode, mode)), p["c"]


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("step", BACKENDS, ids=repr)
def test_cosine_mode_is_the_discrete_backward_euler_solution(step, axis):
    n, nsteps = 32, 10
    t_end = (n * H) ** 2 / (D * np.pi**2)  # one e-folding of the continuous mode
    amp, c = cosine_amplitude(step, axis, n, nsteps, t_end)
    # The mode is an eigenvector of A with λ = −(4D/h²) sin²(π/2n); every sweep but the one
    # along `axis` sees a constant field. So the amplitude is (1 − Δt λ)^−m to round-off.
    lam = -4.0 * D / H**2 * np.sin(np.pi / (2 * n)) ** 2
    assert amp == pytest.approx((1.0 - t_end / nsteps * lam) ** -nsteps, rel=1e-12)
    # The other axes stay uniform, and the mean (mass) is unchanged.
    assert np.ptp(c, axis=tuple(a for a in range(3) if a != 2 - axis)).max() < 1e-14
    assert c.mean() == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cosine_mode_converges_first_order_in_time(axis):
    n = 128
    t_end = (n * H) ** 2 / (D * np.pi**2)
    exact = math.exp(-1.0)
    errors = [abs(cosine_amplitude(BACKENDS[1], axis, n, m, t_end)[0] - exact)
              for m in (8, 16, 32, 64)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    # Backward Euler: error = (Δt/2T)e^{-1}(1 + O(Δt/T)); the O(Δt/T) term and the fixed
    # spatial error (≈ 2e-5 at n = 128, < 1 % of the smallest error here) keep the observed
    # orders within 0.08 of 1 for Δt ≤ T/8.
    assert np.all(np.abs(orders - 1.0) < 0.08), orders


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cosine_mode_converges_second_order_in_space(axis):
    errors = []
    for n in (8, 16, 32, 64):
        L = 64 * H  # fixed domain; h = L/n
        h = L / n
        t_end = L**2 / (D * np.pi**2)
        m = 4
        shape = shape_along(axis, n)
        x = (np.arange(n) + 0.5) * h
        mode = np.cos(np.pi * x / L)
        p = problem(shape, c=along(axis, 1.0 + mode, shape), h=h, dt=t_end / m)
        BACKENDS[1](p, m)
        line = np.moveaxis(p["c"], 2 - axis, 0)[:, 1, 1]
        amp = np.dot(line - 1.0, mode) / np.dot(mode, mode)
        # Spatial error alone: the same backward-Euler factor applied to the continuous
        # eigenvalue −Dπ²/L²; the difference is the O(h²) error of the discrete eigenvalue.
        errors.append(abs(amp - (1.0 + t_end / m * D * np.pi**2 / L**2) ** -m))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    # λ_h = λ(1 − (πh/L)²/12 + O(h⁴)): observed orders within 0.02 of 2 from n = 8 on.
    assert np.all(np.abs(orders - 2.0) < 0.02), orders


# --------------------------------------------------------------------------------------------
# Periodic axis, fixed values, convection
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("step", BACKENDS, ids=repr)
def test_periodic_sinusoid_decays_at_the_discrete_rate(step, axis):
    n, k, nsteps, dt = 24, 3, 5, 0.2  # D·dt/h² = 2 per step
    shape = shape_along(axis, n, other=2)
    x = (np.arange(n) + 0.5) * H
    mode = np.sin(2 * np.pi * k * x / (n * H) + 0.3)
    bc = np.zeros(3, np.int64)
    bc[axis] = im.BC_PERIODIC
    p = problem(shape, c=along(axis, 2.0 + mode, shape), bc_kind=bc, dt=dt)
    step(p, nsteps)
    line = np.moveaxis(p["c"], 2 - axis, 0)[:, 0, 0]
    # Discrete eigenvalue of the periodic Laplacian: −(4D/h²) sin²(πk/n); every Fourier mode
    # is an eigenvector, so mean and phase are exact and the amplitude is (1 − Δtλ)^−m.
    factor = (1.0 + 4.0 * D * dt / H**2 * np.sin(np.pi * k / n) ** 2) ** -nsteps
    np.testing.assert_allclose(line, 2.0 + factor * mode, rtol=0, atol=1e-13)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("step", BACKENDS, ids=repr)
def test_steady_profile_between_fixed_values_is_exact(step, axis):
    # Layered medium (D varies along the axis): the steady flux J is uniform and the exact
    # profile is piecewise linear; the harmonic face mean and the half-voxel ghost flux make
    # the discrete steady state reproduce it at the voxel centres.
    # The other axes have length 1: with no-flux walls the matrices of their sweeps would have
    # condition number ~ Δt·D/h², here 1e9, and round-off ε·1e9 would dominate.
    n = 12
    shape = shape_along(axis, n, other=1)
    d_layer = np.array([1e-9, 2e-10, 5e-10])
    layer = (np.arange(n) * 3 // n).astype(np.uint8)
    v_lo, v_hi = 2.0, 0.5
    resist = np.concatenate([[0.5 / d_layer[layer[0]]],
                             0.5 / d_layer[layer[:-1]] + 0.5 / d_layer[layer[1:]]]) * H
    total = resist.sum() + 0.5 * H / d_layer[layer[-1]]
    profile = v_lo + (v_hi - v_lo) * np.cumsum(resist) / total
    bc = np.zeros(3, np.int64)
    bc[axis] = im.BC_FIXED
    values = np.zeros((3, 2))
    values[axis] = v_lo, v_hi
    if step.name == "numba":  # uniform D takes the fast path: a linear profile
        d_layer = np.full(3, 1e-9)
        profile = v_lo + (v_hi - v_lo) * (np.arange(n) + 0.5) / n
    # From rest, with Δt = 1e9 × h²/D every step is a steady solve up to O(1e-9).
    p = problem(shape, region=along(axis, layer, shape), d_table=d_layer, bc_kind=bc,
                bc_value=values, dt=1e9 * H**2 / D)
    ledger = step(p, 3)
    np.testing.assert_allclose(np.moveaxis(p["c"], 2 - axis, 0)[:, 0, 0], profile, rtol=1e-12)
    # A step from the steady state changes nothing, and what enters leaves: the net inflow is
    # round-off of the one-way flux Δt·J/h per line.
    before = p["c"].copy()
    ledger = step(p, 1, ledger=np.zeros(6))
    np.testing.assert_allclose(p["c"], before, rtol=1e-13)
    one_way = p["dt"] * abs(v_lo - v_hi) / total / H * (p["c"].size // n)
    assert abs(ledger[0]) < 1e-12 * one_way


@pytest.mark.parametrize("step", BACKENDS[::2], ids=repr)
def test_fixed_voxel_holds_cp_and_feeds_a_linear_profile(step):
    # A vessel voxel (fixed at cp) in the middle of a line with fixed-value ends: the steady
    # state is linear on each side, exact at the voxel centres.
    n, mid, cp, v = 11, 5, 3.0, 1.0
    shape = (1, 1, n)
    fixed = np.zeros(shape, np.uint8)
    fixed[0, 0, mid] = 1
    p = all_terms_on(problem(shape, fixed=fixed, has_fixed=True, cp=cp,
                             bc_kind=np.array([2, 0, 0]), bc_value=np.array([v, 0.0, 0.0]),
                             dt=1e9 * H**2 / D))
    ledger = step(p, 2)
    x = np.arange(n) + 0.5
    side = np.where(x < mid, x / (mid + 0.5), (n - x) / (n - mid - 0.5))
    np.testing.assert_allclose(p["c"][0, 0], v + (cp - v) * side, rtol=1e-12)
    # Steady: the vessel supplies exactly what leaves through the two ends.
    ledger = step(p, 1, ledger=np.zeros(6))
    assert ledger[1] > 0
    assert ledger[0] + ledger[1] == pytest.approx(0.0, abs=1e-12 * ledger[1])


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("step", BACKENDS[::2], ids=repr)
def test_uniform_convection_moves_the_pulse_at_speed_u(step, axis):
    n, speed, nsteps, d_small = 192, 2e-7, 80, 1e-12
    dt = 0.5 * H / speed  # Courant number ν = 0.5 (the implicit step does not need ν ≤ 1)
    mu = d_small * dt / H**2  # some diffusion too: μ = 0.25 per step
    shape = shape_along(axis, n, other=2)
    i = np.arange(n) + 0.5
    pulse = np.exp(-0.5 * ((i - 48.0) / 4.0) ** 2)
    u = np.zeros((3,) + shape)
    u[axis] = speed
    bc = np.zeros(3, np.int64)
    bc[axis] = im.BC_PERIODIC
    p = all_terms_on(problem(shape, c=along(axis, pulse, shape), u=u, has_u=True, bc_kind=bc,
                             d_table=np.array([d_small]), dt=dt))
    step(p, nsteps)
    line = np.moveaxis(p["c"], 2 - axis, 0)[:, 0, 0]

    def moments(c):
        m0 = c.sum()
        m1 = (i * c).sum() / m0
        return m0, m1, (((i - m1) ** 2) * c).sum() / m0

    m0a, m1a, m2a = moments(pulse)
    m0b, m1b, m2b = moments(line)
    nu = speed * dt / H
    # Mass is conserved; one implicit upwind step convolves with a kernel of mean ν and
    # variance ν(1 + ν) + 2μ (cells) on an unbounded line, so the centre moves u·t exactly
    # and the spread grows by the first-order upwind (numerical diffusion) amount. The
    # periodic seam stays > 8 standard deviations (~88 cells) from the pulse.
    assert m0b == pytest.approx(m0a, rel=1e-13)
    assert (m1b - m1a) * H == pytest.approx(speed * dt * nsteps, rel=1e-10)
    assert m2b - m2a == pytest.approx(nsteps * (nu * (1 + nu) + 2 * mu), rel=1e-10)


# --------------------------------------------------------------------------------------------
# Stability, mass balance, agreement between backends
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", BACKENDS, ids=repr)
def test_100x_the_explicit_limit_stays_positive_and_bounded(step):
    rng = np.random.default_rng(1)
    shape = (10, 12, 14)
    # Uniform D for the fast path of the "numba" backend, three regions otherwise.
    d_table = np.full(3, 1e-9) if step.name == "numba" else np.array([1e-9, 1e-10, 4e-10])
    dt = 100 * H**2 / (6 * d_table.max())  # explicit limit of 3-D diffusion: h²/(6D)
    c0 = rng.random(shape) ** 4  # positive, spiky start
    p = problem(shape, c=c0.copy(), region=rng.integers(0, 3, shape).astype(np.uint8),
                d_table=d_table, bc_kind=np.array([0, 2, 0]), bc_value=np.array([0.0, 0.5, 0]),
                dt=dt)
    hi = max(c0.max(), 0.5)
    for _ in range(10):
        step(p)
        # Thomas on a tridiagonal M-matrix adds only non-negative terms: no negative value at
        # all; and rows summing to ≥ 1 give a discrete maximum principle.
        assert p["c"].min() >= 0.0
        assert p["c"].max() <= hi * (1 + 1e-14)
    # With a velocity field and a periodic axis the step stays positive up to the round-off
    # of the Sherman–Morrison correction (a subtraction), and mass stays bounded by the start.
    p = all_terms_on(problem(shape, c=c0.copy(), region=p["region"], d_table=d_table, dt=dt,
                             u=1e-5 * (rng.random((3,) + shape) - 0.5), has_u=True,
                             bc_kind=np.array([1, 0, 0])))
    for _ in range(10):
        step(p)
        assert p["c"].min() >= -1e-14 * c0.max()
    assert p["c"].sum() == pytest.approx(c0.sum(), rel=1e-12)


@pytest.mark.parametrize("bc_kind", [(2, 1, 0), (1, 0, 2), (0, 2, 1), (2, 2, 2), (1, 1, 1)])
@pytest.mark.parametrize("step", BACKENDS[::2], ids=repr)
def test_mass_balance_closes_to_round_off(step, bc_kind):
    p = full_problem((7, 9, 11), bc_kind=bc_kind)
    before = float(p["c"].sum() + p["cb"].sum())
    for _ in range(4):
        ledger = step(p, 1)
        change = ledger[0] + ledger[1] - ledger[2] + ledger[3] + ledger[4]
        scale = before + np.abs(ledger[:5]).sum()
        # Each term comes from its own flux; the residual is solver round-off (~1e-15).
        assert ledger[5] - before - change == pytest.approx(0.0, abs=1e-13 * scale)
        assert ledger[5] == pytest.approx(float(p["c"].sum() + p["cb"].sum()), rel=1e-14)
        before = ledger[5]
    assert np.all(p["c"][p["fixed"] == 1] == p["cp"])


def test_numba_step_is_bitwise_reproducible():
    p = full_problem((6, 10, 9), bc_kind=(1, 2, 0))
    runs = []
    for _ in range(2):
        q = copy(p)
        ledger = BACKENDS[2](q, 2)
        runs.append((q["c"], q["cb"], ledger))
    for a, b in zip(runs[0], runs[1]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("bc_kind", [(2, 1, 0), (1, 2, 2)])
@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_and_numba_agree(dtype, full, bc_kind):
    p = full_problem((5, 7, 9), dtype=dtype, bc_kind=bc_kind, seed=3)
    if not full:  # uniform D, no velocity, no fixed voxels: numba takes the fast path
        p.update(has_u=False, has_fixed=False, has_ps=False, has_src=False,
                 d_table=np.full(3, 1e-9))
    results = []
    for step in (BACKENDS[0], BACKENDS[1]):
        q = copy(p)
        ledger = step(q, 3)
        results.append((q["c"], q["cb"], ledger))
    (c0, cb0, l0), (c1, cb1, l1) = results
    # Both compute in float64 and store in the field precision: float64 agrees to a few ulp of
    # the O(1) values; float32 to one rounding per step (3 steps) of the stored values.
    tol = 1e-13 if dtype == np.float64 else 4 * np.finfo(np.float32).eps
    np.testing.assert_allclose(c1, c0, rtol=0, atol=tol * np.abs(c0).max())
    np.testing.assert_allclose(cb1, cb0, rtol=0, atol=tol * np.abs(c0).max())
    np.testing.assert_allclose(l1, l0, rtol=0, atol=tol * l0[5])


@pytest.mark.parametrize("shape", [(1, 1, 8), (1, 6, 1), (5, 1, 1), (1, 1, 1)])
def test_axes_of_length_one_are_skipped(shape):
    p = full_problem(shape, bc_kind=(1, 2, 0), seed=5)
    results = []
    for step in (BACKENDS[0], BACKENDS[2]):
        q = copy(p)
        before = float(q["c"].sum() + q["cb"].sum())
        ledger = step(q, 2)
        results.append(q["c"])
        change = ledger[0] + ledger[1] - ledger[2] + ledger[3] + ledger[4]
        assert ledger[5] - before == pytest.approx(change, abs=1e-13 * (before + ledger[1]))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-13)


def test_workspace_must_match_the_grid():
    p = problem((4, 4, 4))
    with pytest.raises(ValueError, match="workspace"):
        im.numba_implicit_step(**p, work=im.make_workspace((4, 4, 5), np.float64),
                               ledger_out=np.zeros(6))
    with pytest.raises(ValueError, match="bc_value"):
        im.numpy_implicit_step(**dict(p, bc_value=np.zeros(4)), work=None,
                               ledger_out=np.zeros(6))


def test_cuda_kernels_match_numba_in_the_simulator():
    script = Path(__file__).with_name("_implicit_cudasim_check.py")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(" ok") == 11, res.stdout  # 10 step cases + the reduction
