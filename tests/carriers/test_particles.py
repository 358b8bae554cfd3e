"""Interstitial particle step (nanosim.kernels.particles): statistics, walls, backends, resume.

Statistical tests use fixed seeds, so each either always passes or always fails; their
tolerances are k standard errors of the estimator for the sample size used (k = 4 unless
stated: a correct kernel would fail with probability 6e-5 for a random seed), derived in each
test. The Euler–Maruyama step with constant D and u is exact in distribution for any Δt, so no
time-discretisation error enters.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nanosim.geometry.grid import Grid
from nanosim.kernels import particles as P

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


def test_free_msd_is_6dt():
    ids, state = _ids_state(N)
    c = (500e-6, 500e-6, 500e-6)
    xyz = _run(P.numba_step_particles, _cloud(N, c), ids, state, 10, dt_s=0.5, seed=1,
               grid=BIG, diffusivity_m2_per_s=D0)
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


@pytest.mark.parametrize("periodic", [(False, False, False), (True, False, True)])
def test_walls_keep_particles_inside_and_uniform_density_uniform(periodic):
    g = Grid((10, 10, 10), 10e-6, (-20e-6, 5e-6, 0.0))  # box of 100 µm
    lo, hi = np.array(g.origin_m), np.array(g.upper_m)
    rs = np.random.default_rng(8)
    p0 = lo + rs.random((N, 3)) * (hi - lo)
    xyz = [p0[:, k].copy() for k in range(3)]
    ids, state = _ids_state(N)
    # σ = √(2 D dt) = 30 µm per step (0.3 box): many wall hits, some multiple
    d = (30e-6) ** 2 / 2
    _run(P.numba_step_particles, xyz, ids, state, 20, dt_s=1.0, seed=9, grid=g,
         diffusivity_m2_per_s=d, periodic=periodic)
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_reference_equals_numba(dtype):
    xyz, ids, state, kw, g = _mixed_case(dtype)
    a = [c.copy() for c in xyz]
    b = [c.copy() for c in xyz]
    steps = 5
    _run(P.numpy_step_particles, a, ids, state, steps, **kw)
    _run(P.numba_step_particles, b, ids, state, steps, **kw)
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


def test_same_seed_same_paths_and_order_independence():
    xyz, ids, state, kw, _ = _mixed_case(np.float64)
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_resume_continues_the_same_paths(dtype):
    xyz, ids, state, kw, _ = _mixed_case(dtype)
    n = 4
    whole = _run(P.numba_step_particles, [c.copy() for c in xyz], ids, state, 2 * n, **kw)
    first = _run(P.numba_step_particles, [c.copy() for c in xyz], ids, state, n, **kw)
    saved = [np.array(c) for c in first]  # what a checkpoint would hold
    resumed = _run(P.numba_step_particles, saved, ids.copy(), state.copy(), n, first_step=n, **kw)
    for p, q in zip(whole, resumed):
        np.testing.assert_array_equal(p, q)


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
    with pytest.raises(ValueError, match="unknown backend"):
        P.step_particles("fortran", *xyz, ids, state, 0, **kw)


def test_cuda_kernel_matches_numba_in_simulator():
    script = Path(__file__).with_name("cudasim_particles.py")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert res.stdout.count(" ok") == 7, res.stdout


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
