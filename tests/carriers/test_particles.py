"""Interstitial particle step (nanosim.kernels.particles): statistics, walls, backends, resume.

Statistical tests use fixed seeds, so each either always passes or always fails; their
tolerances are k standard errors of the estimator for the sample size used (k = 4 unless
stated: a correct kernel would fail with probability 6e-5 for a random seed), derived in each
test. The Euler–Maruyama step with constant D and u is exact in distribution for any Δt, so no
time-discretisation error enters. The variance-matched uniform step (``step_distribution=
"uniform"``) has the same mean and covariance per step; the tests below check that, and that
its higher moments and density approach the Gaussian ones as the kernel's docstring states.
"""

import math
import os
from fractions import Fraction
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nanosim.geometry.grid import Grid
from nanosim.kernels import particles as P
from nanosim.kernels import rng

K_SE = 4  # standard errors allowed by the statistical tests
D0 = 6.57e-12  # m²/s, 100 nm carrier in water at 37 °C (PHYSICS.md §5)
N = 20_000


def _cloud(n, centre, dtype=np.float64):
    return [np.full(n, c, dtype=dtype) for c in centre]


def _run(step_fn, xyz, ids, state, n_steps, first_step=0, **kw):
    for s in range(first_step, first_step + n_steps):
        step_fn(*xyz, ids, state, s, **kw)
    return xyz


def _ids_state(n):
    return np.arange(n, dtype=np.int64), np.full(n, P.STATE_TISSUE, np.uint8)


# A 1 mm box of 100 µm voxels: walls ≥ 30 σ away from the clouds below ("free space").
BIG = Grid((10, 10, 10), 100e-6, (0.0, 0.0, 0.0))


# --------------------------------------------------------------------------------------------
# Free diffusion, hindrance, drift
# --------------------------------------------------------------------------------------------


def _msd_check(r2, d, t, n):
    # r² is a sum of three squared N(0, 2Dt) displacements: mean 6Dt, variance 3·2·(2Dt)²,
    # so the relative standard error of the sample mean is √(2/(3n))
    rel_se = math.sqrt(2.0 / (3.0 * n))
    assert abs(r2.mean() / (6 * d * t) - 1) < K_SE * rel_se, (r2.mean() / (6 * d * t), rel_se)


@pytest.mark.parametrize("dist", P.STEP_DISTRIBUTIONS)
def test_free_msd_is_6dt(dist):
    # for uniform steps Var(r²) = 3(2 − 1.2/n)(2Dt)² is below the Gaussian 3·2·(2Dt)², so the
    # Gaussian standard error of _msd_check bounds it
    ids, state = _ids_state(N)
    c = (500e-6, 500e-6, 500e-6)
    xyz = _run(P.numba_step_particles, _cloud(N, c), ids, state, 10, dt_s=0.5, seed=1,
               grid=BIG, diffusivity_m2_per_s=D0, step_distribution=dist)
    r2 = sum((a - c0) ** 2 for a, c0 in zip(xyz, c))
    _msd_check(r2, D0, 5.0, N)
    # and isotropy: each axis carries 2Dt (same relative error √(2/n) per axis, k = 4)
    for a, c0 in zip(xyz, c):
        assert abs(((a - c0) ** 2).mean() / (2 * D0 * 5.0) - 1) < K_SE * math.sqrt(2.0 / N)


def test_region_hindrance_sets_the_diffusivity():
    # left half: free (region 0); right half: ECM-hindered (region 1, f = 0.2); clouds start
    # 250 µm from the interface, which is > 30 σ of their 5 s of motion
    region = np.zeros(BIG.shape_zyx, np.uint8)
    region[:, :, 5:] = 1
    table = np.array([D0, 0.2 * D0])
    n = N // 2
    ids, state = _ids_state(2 * n)
    xyz = [np.concatenate([np.full(n, 250e-6), np.full(n, 750e-6)]),
           np.full(2 * n, 500e-6), np.full(2 * n, 500e-6)]
    start = [a.copy() for a in xyz]
    _run(P.numba_step_particles, xyz, ids, state, 10, dt_s=0.5, seed=2, grid=BIG, region=region,
         region_diffusivity_m2_per_s=table)
    r2 = sum((a - b) ** 2 for a, b in zip(xyz, start))
    _msd_check(r2[:n], D0, 5.0, n)
    _msd_check(r2[n:], 0.2 * D0, 5.0, n)


def test_per_particle_diffusivity():
    n = N // 2
    ids, state = _ids_state(2 * n)
    d = np.concatenate([np.full(n, D0), np.full(n, D0 / 7)])
    c = (500e-6,) * 3
    xyz = _run(P.numba_step_particles, _cloud(2 * n, c), ids, state, 4, dt_s=1.0, seed=3,
               grid=BIG, diffusivity_m2_per_s=d)
    r2 = sum((a - c0) ** 2 for a, c0 in zip(xyz, c))
    _msd_check(r2[:n], D0, 4.0, n)
    _msd_check(r2[n:], D0 / 7, 4.0, n)


@pytest.mark.parametrize("interp", ["nearest", "trilinear"])
def test_uniform_convection_drift(interp):
    u = np.array([1.0e-6, -2.0e-6, 0.5e-6])  # m/s, interstitial velocities are ~0.1–1 µm/s
    field = np.broadcast_to(u[:, None, None, None], (3,) + BIG.shape_zyx).copy()
    ids, state = _ids_state(N)
    c = (500e-6,) * 3
    t = 10 * 0.5
    xyz = _run(P.numba_step_particles, _cloud(N, c), ids, state, 10, dt_s=0.5, seed=4, grid=BIG,
               diffusivity_m2_per_s=D0, velocity_m_per_s=field, velocity_interpolation=interp)
    se = math.sqrt(2 * D0 * t / N)  # standard error of a mean displacement along one axis
    for a, c0, ua in zip(xyz, c, u):
        mean = (a - c0).mean()
        assert abs(mean - ua * t) < K_SE * se, (mean, ua * t, se)
    # spread about the drift is still 6 D t
    r2 = sum((a - c0 - ua * t) ** 2 for a, c0, ua in zip(xyz, c, u))
    _msd_check(r2, D0, t, N)


def test_trilinear_velocity_is_exact_for_a_linear_field_and_nearest_takes_the_voxel():
    g = Grid((6, 5, 4), 10e-6, (-5e-6, 2e-6, 1e-6))
    zc, yc, xc = g.mesh_m()
    grad = np.array([[0.02, -0.01, 0.005], [0.0, 0.03, -0.02], [0.01, 0.0, 0.04]])  # 1/s
    u = np.stack([np.broadcast_to(grad[k, 0] * xc + grad[k, 1] * yc + grad[k, 2] * zc, g.shape_zyx)
                  for k in range(3)]).copy()
    rs = np.random.default_rng(5)
    n = 500
    lo = np.array(g.origin_m) + 0.5 * g.voxel_size_m  # between the outermost voxel centres
    hi = np.array(g.upper_m) - 0.5 * g.voxel_size_m
    p0 = lo + rs.random((n, 3)) * (hi - lo)
    ids, state = _ids_state(n)
    dt = 1e-3
    for interp in ("trilinear", "nearest"):
        xyz = [p0[:, k].copy() for k in range(3)]
        P.numba_step_particles(*xyz, ids, state, 0, dt_s=dt, seed=6, grid=g,
                               diffusivity_m2_per_s=0.0, velocity_m_per_s=u,
                               velocity_interpolation=interp)
        if interp == "trilinear":
            want_u = p0 @ grad.T
        else:
            idx = np.floor((p0 - np.array(g.origin_m)) / g.voxel_size_m).astype(int)
            want_u = u[:, idx[:, 2], idx[:, 1], idx[:, 0]].T
        got_u = (np.stack(xyz, axis=1) - p0) / dt
        # positions ~1e-5 m lose ~1e-21 m to rounding, i.e. ~1e-18 m/s in u; u ~ 1e-6 m/s
        np.testing.assert_allclose(got_u, want_u, rtol=0, atol=1e-14)


def test_trilinear_wraps_on_a_periodic_axis_and_holds_at_walls():
    g = Grid((4, 1, 1), 10e-6)
    u = np.zeros((3, 1, 1, 4))
    u[0, 0, 0, :] = [1e-6, 2e-6, 3e-6, 5e-6]
    ids, state = _ids_state(2)
    dt = 1e-3
    kw = dict(dt_s=dt, seed=0, grid=g, diffusivity_m2_per_s=0.0, velocity_m_per_s=u,
              velocity_interpolation="trilinear")
    # x = 0 and x = 40 µm: half a voxel from the outermost centres
    x0 = np.array([0.0, 39e-6])
    for periodic, want in (((True, False, False), [3e-6, 0.6 * 5e-6 + 0.4 * 1e-6]),
                           ((False, False, False), [1e-6, 5e-6])):
        xyz = [x0.copy(), np.full(2, 5e-6), np.full(2, 5e-6)]
        P.numba_step_particles(*xyz, ids, state, 0, periodic=periodic, **kw)
        np.testing.assert_allclose((xyz[0] - x0) / dt, want, rtol=1e-9)


# --------------------------------------------------------------------------------------------
# The step's random numbers, and the variance-matched uniform step
# --------------------------------------------------------------------------------------------

MASK32 = 0xFFFFFFFF
SQRT3 = math.sqrt(3.0)


def test_philox_block_is_the_rng_philox():
    # the vectorisable form must give the words of rng.philox4x32_10 (itself checked against
    # Random123's known answers in tests/kernels/test_rng.py), in Python and compiled
    rs = np.random.default_rng(21)
    cases = [tuple(int(v) for v in row) for row in rs.integers(0, 2**32, (300, 6), dtype=np.uint64)]
    cases += [(0,) * 6, (MASK32,) * 6, (MASK32, 0, MASK32, 0, MASK32, 0), (1, 2, 3, 4, 5, 6)]
    cpu = P.philox_block.cpu
    for c in cases:
        want = rng.philox4x32_10.py(*c)
        assert P.philox_block.py(*c) == want, c
        assert cpu(*c) == want, c
    assert P.philox_block.py(0, 0, 0, 0, 0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    assert P.philox_block.py(*(np.int64(v) for v in cases[0])) == rng.philox4x32_10.py(*cases[0])


@pytest.mark.parametrize("seed", [0, 7, -3, 2**63 + 5])
def test_step_variates_follow_the_documented_streams(seed):
    s = rng.seed64(seed)
    for pid in (0, 1, 2**40 + 3, 2**63 - 1):
        for step in (0, 5, 2**32 + 1):
            g = P.gaussian_steps.py(s, pid, step)
            assert g[:2] == rng.normal_pair.py(s, pid, step, 0)
            assert g[2] == rng.normal.py(s, pid, step, 1)
            w = rng.philox4x32_10.py(pid & MASK32, pid >> 32, step & MASK32, 0, s & MASK32,
                                     (s >> 32) & MASK32)
            m = P.uniform_lattice.py(s, pid, step)
            assert m == tuple(float(2 * v + 1 - 2**32) for v in w[:3])
            assert P.uniform_lattice.cpu(s, pid, step) == m
            # ξ = m·√3·2⁻³² is the documented √3((w + ½)2⁻³¹ − 1)
            for v, mv in zip(w[:3], m):
                xi = SQRT3 * ((v + 0.5) * 2.0**-31 - 1.0)
                assert mv * P.UNIFORM_UNIT == pytest.approx(xi, rel=4e-16, abs=1e-15)
            # libm freedom only (|ξ| < 8.7, 4 ulp: tests/kernels/test_rng.py)
            np.testing.assert_allclose(P.gaussian_steps.cpu(s, pid, step), g, rtol=0,
                                       atol=4 * 8.7 * np.finfo(np.float64).eps)


def _one_axis_samples(n, n_steps, sigma, dist="uniform", seed=31):
    """(x − x0)/(σ√n) of ``n`` particles after ``n_steps`` free steps, the three axes pooled."""
    ids, state = _ids_state(n)
    c = (500e-6,) * 3
    d = sigma**2 / 2.0  # σ = √(2 D Δt) with Δt = 1 s
    xyz = _run(P.numba_step_particles, _cloud(n, c), ids, state, n_steps, dt_s=1.0, seed=seed,
               grid=BIG, diffusivity_m2_per_s=d, step_distribution=dist)
    return np.concatenate([(a - c0) / (sigma * math.sqrt(n_steps)) for a, c0 in zip(xyz, c)])


def test_uniform_step_is_uniform_with_unit_variance():
    n = 100_000
    sigma = 1e-6  # m; the box is 500 σ from the cloud
    xi = _one_axis_samples(n, 1, sigma).reshape(3, n)
    # positions ~5e-4 m carry ~1e-19 m of rounding: 1e-13 of σ
    assert np.abs(xi).max() <= SQRT3 * (1 + 1e-9)
    flat = xi.ravel()
    m = 3 * n
    assert stats.kstest(flat, stats.uniform(-SQRT3, 2 * SQRT3).cdf).pvalue > 1e-3
    assert abs(flat.mean()) < K_SE * math.sqrt(1.0 / m)
    # Var(ξ²) = E ξ⁴ − 1 = 9/5 − 1 for the uniform
    assert abs((flat**2).mean() - 1.0) < K_SE * math.sqrt(0.8 / m)
    # the three axes are uncorrelated (standard error of a correlation 1/√n)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert abs(np.mean(xi[a] * xi[b])) < K_SE / math.sqrt(n)


def _kurtosis_and_se(x):
    """Sample kurtosis m4/m2² about the known mean 0, and its delta-method standard error."""
    mu2, mu4, mu6, mu8 = (np.mean(x**k) for k in (2, 4, 6, 8))
    k = mu4 / mu2**2
    var = ((mu8 - mu4**2) / mu2**4 - 4 * mu4 * (mu6 - mu4 * mu2) / mu2**5
           + 4 * mu4**2 * (mu4 - mu2**2) / mu2**6) / x.size  # 24/N for a normal sample
    return k, math.sqrt(var)


@pytest.mark.parametrize("n_steps", [1, 2, 5])
def test_uniform_step_kurtosis_relaxes_as_one_over_n(n_steps):
    # the sum of n uniform steps has kurtosis 3 − 1.2/n (the excess −1.2 of one step, over n)
    k, se = _kurtosis_and_se(_one_axis_samples(100_000, n_steps, 1e-6))
    assert abs(k - (3 - 1.2 / n_steps)) < K_SE * se, (k, se)
    assert abs(k - 3) > 2 * K_SE * se  # and the sample resolves the difference from a Gaussian


def _irwin_hall_cdf(z, n):
    """CDF at z (in units of the sum's standard deviation) of the sum of n uniform steps."""
    # U_i uniform on [0, 1]: the sum S has mean n/2 and variance n/12; ξ-sum = (S − n/2)√12/√n
    s = np.clip(z * math.sqrt(n / 12.0) + n / 2.0, 0.0, n)
    return sum((-1) ** k * math.comb(n, k) * np.clip(s - k, 0.0, None) ** n
               for k in range(n + 1)) / math.factorial(n)


def _irwin_hall_pdf(z, n):
    """Density at z (standardised, as above) of the sum of n uniform steps, in exact rationals."""
    scale = Fraction(math.sqrt(n / 12.0))
    s = Fraction(float(z)) * scale + Fraction(n, 2)
    if not 0 < s < n:
        return 0.0
    total = sum((-1) ** k * math.comb(n, k) * (s - k) ** (n - 1) for k in range(math.floor(s) + 1))
    return float(total * scale / math.factorial(n - 1))


def _chi2_equiprobable(z, cdf, bins=40):
    """Chi-square of samples z in ``bins`` bins of equal probability under the normal law."""
    edges = stats.norm.ppf(np.linspace(0, 1, bins + 1))
    counts = np.histogram(np.clip(z, -50, 50), np.r_[-50, edges[1:-1], 50])[0]
    expected = z.size * np.diff(cdf(np.r_[-50, edges[1:-1], 50]))
    return ((counts - expected) ** 2 / expected).sum()


def test_uniform_steps_give_the_gaussian_density_after_many_steps():
    # 40 bins, threshold at the 1 − 1e-4 quantile of χ²(39): a correct kernel fails for 1 seed in
    # 10⁴. After n steps the density is φ·[1 − He₄/(20n)] (module docstring), a non-centrality of
    # N·E[He₄²]/(400 n²) = 0.06 N/n² in this statistic: 1.8 for N = 3e5 samples at n = 100 (far
    # below the threshold's margin), 1100 at n = 4.
    limit = stats.chi2.ppf(1 - 1e-4, 39)
    z100 = _one_axis_samples(100_000, 100, 1e-6, seed=41)
    assert _chi2_equiprobable(z100, stats.norm.cdf) < limit
    # after 4 steps: exactly the Irwin–Hall law of the sum, measurably not yet the Gaussian
    z4 = _one_axis_samples(100_000, 4, 1e-6, seed=42)
    assert _chi2_equiprobable(z4, lambda z: _irwin_hall_cdf(z, 4)) < limit
    assert _chi2_equiprobable(z4, stats.norm.cdf) > 5 * limit


def test_documented_uniform_step_density_error():
    # the module docstring's numbers: density of the n-step sum = φ·[1 − He₄/(20n)] + O(n⁻²),
    # the largest error 0.15/n of the peak, at the centre (checked against the exact law)
    for n in (10, 20, 40):
        z = np.linspace(-5, 5, 401)
        exact = np.array([_irwin_hall_pdf(v, n) for v in z])
        phi = stats.norm.pdf(z)
        he4 = z**4 - 6 * z**2 + 3
        err = exact - phi
        assert np.abs(err - (-phi * he4 / (20 * n))).max() < 2.0 / n**2 * phi.max()
        assert abs(np.abs(err).max() / phi.max() - 0.15 / n) < 2.0 / n**2
        assert abs(z[np.argmax(np.abs(err))]) < 0.01


# --------------------------------------------------------------------------------------------
# Walls
# --------------------------------------------------------------------------------------------


def test_specular_reflection_and_periodic_wrap_exact():
    g = Grid((10, 10, 10), 10e-6)  # box [0, 100 µm]³
    ids, state = _ids_state(4)
    # D = 0, velocity along x only: x + u dt lands at 110, −30, 330 and 95 µm
    x = np.array([90e-6, 10e-6, 90e-6, 85e-6])
    u = np.zeros((3,) + g.shape_zyx)
    disp = np.array([20e-6, -40e-6, 240e-6, 10e-6])
    for k in range(4):
        xyz = [x[k:k + 1].copy(), np.full(1, 50e-6), np.full(1, 50e-6)]
        u[0] = disp[k]
        for periodic, want in (((False,) * 3, [90e-6, 30e-6, 70e-6, 95e-6][k]),
                               ((True, False, False), [10e-6, 70e-6, 30e-6, 95e-6][k])):
            xyz = [x[k:k + 1].copy(), np.full(1, 50e-6), np.full(1, 50e-6)]
            P.numba_step_particles(*xyz, ids[:1], state[:1], 0, dt_s=1.0, seed=0, grid=g,
                                   diffusivity_m2_per_s=0.0, velocity_m_per_s=u,
                                   periodic=periodic)
            # a few roundings of numbers ~1e-4 m
            assert xyz[0][0] == pytest.approx(want, abs=1e-18), (k, periodic)
            assert xyz[1][0] == 50e-6 and xyz[2][0] == 50e-6


@pytest.mark.parametrize("periodic,dist", [((False, False, False), "gaussian"),
                                           ((True, False, True), "gaussian"),
                                           ((False, False, False), "uniform")])
def test_walls_keep_particles_inside_and_uniform_density_uniform(periodic, dist):
    g = Grid((10, 10, 10), 10e-6, (-20e-6, 5e-6, 0.0))  # box of 100 µm
    lo, hi = np.array(g.origin_m), np.array(g.upper_m)
    rs = np.random.default_rng(8)
    p0 = lo + rs.random((N, 3)) * (hi - lo)
    xyz = [p0[:, k].copy() for k in range(3)]
    ids, state = _ids_state(N)
    # σ = √(2 D dt) = 30 µm per step (0.3 box): many wall hits, some multiple
    d = (30e-6) ** 2 / 2
    _run(P.numba_step_particles, xyz, ids, state, 20, dt_s=1.0, seed=9, grid=g,
         diffusivity_m2_per_s=d, periodic=periodic, step_distribution=dist)
    pos = np.stack(xyz, axis=1)
    assert np.all((pos >= lo) & (pos <= hi))
    # the uniform density is invariant under reflecting (and periodic) walls: chi-square of
    # 10³ equal cells (expected 20 per cell) against uniform; the threshold is the 1 − 1e-4
    # quantile of χ²(999), so a correct kernel fails for 1 seed in 10⁴. Wall errors (sticking,
    # clamping, lost mirror images) pile particles into the outer cells and exceed it by far.
    cells = np.floor((pos - lo) / g.voxel_size_m).astype(int).clip(0, 9)
    counts = np.bincount(cells[:, 0] + 10 * cells[:, 1] + 100 * cells[:, 2], minlength=1000)
    expected = N / 1000
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < stats.chi2.ppf(1 - 1e-4, 999), chi2
    # the outermost cells in particular hold their share (4 SE of a binomial count)
    for k in range(3):
        edge = np.mean((cells[:, k] == 0) | (cells[:, k] == 9))
        assert abs(edge - 0.2) < K_SE * math.sqrt(0.2 * 0.8 / N), (k, edge)


# --------------------------------------------------------------------------------------------
# Backends, determinism, resume
# --------------------------------------------------------------------------------------------


def _mixed_case(dtype, n=3000, seed=12):
    rs = np.random.default_rng(seed)
    g = Grid((9, 7, 5), 8e-6, (1e-6, -3e-6, 2e-6))
    lo, hi = np.array(g.origin_m), np.array(g.upper_m)
    p0 = lo + rs.random((n, 3)) * (hi - lo)
    xyz = [np.ascontiguousarray(p0[:, k], dtype=dtype) for k in range(3)]
    ids = rs.choice(2**45, n, replace=False).astype(np.int64)
    state = rs.integers(0, 3, n).astype(np.uint8)
    kw = dict(dt_s=2.0, seed=2**63 + 5, grid=g, region=rs.integers(0, 3, g.shape_zyx).astype(np.uint8),
              region_diffusivity_m2_per_s=np.array([1e-12, D0, 2e-11]),
              velocity_m_per_s=(rs.random((3,) + g.shape_zyx) - 0.5) * 4e-6,
              velocity_interpolation="trilinear", periodic=(True, False, False))
    return xyz, ids, state, kw, g


@pytest.mark.parametrize("dtype,dist", [(np.float64, "gaussian"), (np.float32, "gaussian"),
                                        (np.float64, "uniform"), (np.float32, "uniform")])
def test_numpy_reference_equals_numba(dtype, dist):
    xyz, ids, state, kw, g = _mixed_case(dtype)
    kw = dict(kw, step_distribution=dist)
    a = [c.copy() for c in xyz]
    b = [c.copy() for c in xyz]
    steps = 5
    _run(P.numpy_step_particles, a, ids, state, steps, **kw)
    _run(P.numba_step_particles, b, ids, state, steps, **kw)
    if dist == "uniform":  # no math library involved: the same bits
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)
    # Same float64 operations in the same order; only log/cos/sin in the normals may differ by a
    # few ulp between NumPy's and LLVM's math libraries (≤ 4 ulp, tests/kernels/test_rng.py).
    # Bound per step: 4 ulp of |ξ| ≤ 8.7 times σ ≤ √(2·2e-11·2), plus one ulp of the position
    # (rounding may go the other way), summed over the steps.
    sigma = math.sqrt(2 * 2e-11 * 2.0)
    tol = steps * (4 * np.finfo(np.float64).eps * 8.7 * sigma
                   + np.finfo(dtype).eps * np.abs(g.upper_m).max())
    for p, q in zip(a, b):
        assert np.abs(p.astype(np.float64) - q).max() <= tol
    # the compiled physics source in plain Python (the .py form) gives the same update
    c = [v[:40].copy() for v in xyz]
    full_kw = dict(diffusivity_m2_per_s=None, moving_state=P.STATE_TISSUE, **kw)
    args = P._host_prepare(*c, ids[:40], state[:40], 0, full_kw)
    for i in range(40):
        P.update_particle.py(i, *c, *args)
    d = [v[:40].copy() for v in xyz]
    P.numba_step_particles(*d, ids[:40], state[:40], 0, **kw)
    for p, q in zip(c, d):
        assert np.abs(p.astype(np.float64) - q).max() <= tol / steps


def test_only_tissue_particles_move():
    xyz, ids, state, kw, _ = _mixed_case(np.float64)
    before = [c.copy() for c in xyz]
    P.numba_step_particles(*xyz, ids, state, 0, **kw)
    still = state != P.STATE_TISSUE
    for a, b in zip(xyz, before):
        np.testing.assert_array_equal(a[still], b[still])
        assert np.all(a[~still] != b[~still])  # a normal of exactly 0 has probability 0
    # another code can be chosen as the moving compartment
    P.numba_step_particles(*xyz, ids, state, 1, moving_state=2, **kw)
    np.testing.assert_array_equal(xyz[0][state == 0], before[0][state == 0])


@pytest.mark.parametrize("dist", P.STEP_DISTRIBUTIONS)
def test_same_seed_same_paths_and_order_independence(dist):
    xyz, ids, state, kw, _ = _mixed_case(np.float64)
    kw = dict(kw, step_distribution=dist)
    a = _run(P.numba_step_particles, [c.copy() for c in xyz], ids, state, 3, **kw)
    b = _run(P.numba_step_particles, [c.copy() for c in xyz], ids, state, 3, **kw)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    # paths belong to ids, not to array slots
    perm = np.random.default_rng(0).permutation(ids.size)
    c = _run(P.numba_step_particles, [v[perm].copy() for v in xyz], ids[perm], state[perm], 3, **kw)
    for p, q in zip(a, c):
        np.testing.assert_array_equal(p[perm], q)
    # another seed gives other paths
    kw2 = dict(kw, seed=kw["seed"] + 1)
    d = _run(P.numba_step_particles, [v.copy() for v in xyz], ids, state, 3, **kw2)
    moving = state == P.STATE_TISSUE
    assert np.all(d[0][moving] != a[0][moving])


@pytest.mark.parametrize("dtype,dist", [(np.float64, "gaussian"), (np.float32, "gaussian"),
                                        (np.float32, "uniform")])
def test_resume_continues_the_same_paths(dtype, dist):
    xyz, ids, state, kw, _ = _mixed_case(dtype)
    kw = dict(kw, step_distribution=dist)
    n = 4
    whole = _run(P.numba_step_particles, [c.copy() for c in xyz], ids, state, 2 * n, **kw)
    first = _run(P.numba_step_particles, [c.copy() for c in xyz], ids, state, n, **kw)
    saved = [np.array(c) for c in first]  # what a checkpoint would hold
    resumed = _run(P.numba_step_particles, saved, ids.copy(), state.copy(), n, first_step=n, **kw)
    for p, q in zip(whole, resumed):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("shape", [(8, 7, 5), (9, 7, 5)])
def test_region_maps_of_any_layout_give_the_same_steps(shape):
    # uint8/int8 maps of a size divisible by 4 are read in place as 32-bit words, others are
    # converted to int32: every layout must give the same steps (8·7·5 = 280, 9·7·5 = 315 voxels)
    rs = np.random.default_rng(3)
    g = Grid(shape, 8e-6, (1e-6, -3e-6, 2e-6))
    n = 2000
    lo, hi = np.array(g.origin_m), np.array(g.upper_m)
    p0 = lo + rs.random((n, 3)) * (hi - lo)
    ids, state = _ids_state(n)
    codes = rs.integers(0, 4, g.shape_zyx)
    table = np.array([1e-12, D0, 2e-11, 5e-12])
    maps = [codes.astype(t) for t in (np.uint8, np.int8, np.int16, np.int32, np.int64)]
    maps.append(np.asfortranarray(codes.astype(np.uint8)))  # not C-contiguous
    results = []
    for reg in maps:
        xyz = [p0[:, k].copy() for k in range(3)]
        P.numba_step_particles(*xyz, ids, state, 0, dt_s=2.0, seed=5, grid=g, region=reg,
                               region_diffusivity_m2_per_s=table, step_distribution="uniform")
        results.append(xyz)
    want = [p0[:, k].copy() for k in range(3)]
    P.numpy_step_particles(*want, ids, state, 0, dt_s=2.0, seed=5, grid=g, region=codes,
                           region_diffusivity_m2_per_s=table, step_distribution="uniform")
    for xyz in results:
        for a, b in zip(xyz, want):
            np.testing.assert_array_equal(a, b)


def test_voxel_row_order_sorts_by_row_and_keeps_the_paths():
    xyz, ids, state, kw, g = _mixed_case(np.float64, n=5000)
    xyz[1][:3] = [-1.0, 1.0, np.nan]  # outside the box: the nearest boundary row
    order = P.voxel_row_order(*xyz, g)
    assert np.array_equal(np.sort(order), np.arange(ids.size))
    (ox, oy, oz), h = g.origin_m, g.voxel_size_m
    nx, ny, nz = g.shape_xyz
    iy = np.clip(np.floor(np.nan_to_num((xyz[1] - oy) / h, nan=0.0)), 0, ny - 1)
    iz = np.clip(np.floor((xyz[2] - oz) / h), 0, nz - 1)
    row = (iz * ny + iy)[order]
    assert np.all(np.diff(row) >= 0)
    same_row = np.diff(row) == 0
    assert np.all(np.diff(order)[same_row] > 0)  # stable
    # the step does not depend on the order: ids carry the random numbers
    a = _run(P.numba_step_particles, [c.copy() for c in xyz], ids, state, 2, **kw)
    b = _run(P.numba_step_particles, [c[order].copy() for c in xyz], ids[order], state[order], 2,
             **kw)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p[order], q)


# --------------------------------------------------------------------------------------------
# Errors, CUDA twin, import hygiene
# --------------------------------------------------------------------------------------------


def test_argument_errors_name_the_argument():
    xyz, ids, state, kw, g = _mixed_case(np.float64, n=10)
    step = P.numba_step_particles
    with pytest.raises(TypeError, match="x, y and z must share one dtype"):
        step(xyz[0], xyz[1].astype(np.float32), xyz[2], ids, state, 0, **kw)
    with pytest.raises(ValueError, match="ids must have one entry per particle"):
        step(*xyz, ids[:5], state, 0, **kw)
    with pytest.raises(TypeError, match="state must be an int8 or uint8"):
        step(*xyz, ids, state.astype(np.int32), 0, **kw)
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        step(*xyz, ids, state, -1, **kw)
    with pytest.raises(ValueError, match="either as diffusivity_m2_per_s"):
        step(*xyz, ids, state, 0, diffusivity_m2_per_s=D0, **kw)
    with pytest.raises(ValueError, match="region must have the grid's shape"):
        step(*xyz, ids, state, 0, **dict(kw, region=np.zeros((2, 2, 2), np.uint8)))
    with pytest.raises(ValueError, match="region codes must lie in"):
        step(*xyz, ids, state, 0, **dict(kw, region_diffusivity_m2_per_s=np.array([D0])))
    with pytest.raises(ValueError, match=r"velocity_m_per_s must be voxel-centred"):
        step(*xyz, ids, state, 0, **dict(kw, velocity_m_per_s=np.zeros((3, 1, 1, 1))))
    with pytest.raises(ValueError, match="velocity_interpolation"):
        step(*xyz, ids, state, 0, **dict(kw, velocity_interpolation="cubic"))
    with pytest.raises(ValueError, match="dt_s"):
        step(*xyz, ids, state, 0, **dict(kw, dt_s=0.0))
    with pytest.raises(ValueError, match="ids must lie in"):
        step(*xyz, -ids - 1, state, 0, **kw)
    with pytest.raises(ValueError, match="step_distribution must be one of"):
        step(*xyz, ids, state, 0, **dict(kw, step_distribution="cauchy"))
    with pytest.raises(ValueError, match="unknown backend"):
        P.step_particles("fortran", *xyz, ids, state, 0, **kw)


def test_cuda_kernel_matches_numba_in_simulator():
    script = Path(__file__).with_name("cudasim_particles.py")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert res.stdout.count(" ok") == 8, res.stdout


def test_import_does_not_load_cuda():
    code = ("import sys, nanosim.kernels.particles, nanosim.kernels.carriers\n"
            "bad = [m for m in sys.modules if m.startswith(('numba.cuda', 'cupy'))]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.gpu
def test_cupy_backend_matches_numba():
    import cupy

    xyz, ids, state, kw, _ = _mixed_case(np.float64)
    a = _run(P.numba_step_particles, [c.copy() for c in xyz], ids, state, 3, **kw)
    dev_kw = dict(kw, region=cupy.asarray(kw["region"]),
                  region_diffusivity_m2_per_s=cupy.asarray(kw["region_diffusivity_m2_per_s"]),
                  velocity_m_per_s=cupy.asarray(kw["velocity_m_per_s"]))
    b = [cupy.asarray(c) for c in xyz]
    _run(lambda *args, **k: P.step_particles("cupy", *args, **k), b, cupy.asarray(ids),
         cupy.asarray(state), 3, **dev_kw)
    # as in the simulator check: libm freedom in the normals only
    tol = 3 * (16 * np.finfo(np.float64).eps * 8.7 * math.sqrt(2 * 2e-11 * 2.0) + 1e-20)
    for p, q in zip(a, b):
        assert np.abs(p - cupy.asnumpy(q)).max() <= tol
