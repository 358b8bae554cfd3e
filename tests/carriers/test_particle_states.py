"""Tissue state transitions of carrier particles (nanosim.kernels.particle_states).

Statistical tests use fixed seeds, so each always passes or always fails. Particles are
independent, so the number in each state after n steps is exactly binomial with the
probability of the one-jump-per-step Markov chain (``p0 @ M^n``); the tolerance is
K_SE = 4 binomial standard errors (a correct kernel fails with probability 6e-5 per
comparison for a random seed). Against the continuous-time solution ``p0 @ expm(Q t)`` the
tolerance adds the chain's own O((K Δt)²)-per-step bias, computed exactly as |M^n − expm(Q t)|.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import expm

from nanosim.geometry.grid import Grid
from nanosim.kernels import compartments as C
from nanosim.kernels import particle_states as PS

K_SE = 4

# rates (1/s): [k_bind, k_unbind, k_internalise_free, k_internalise_bound, k_lymph]
RATES = np.array([[1.0e-3, 2.0e-3, 3.0e-4, 5.0e-4, 1.5e-3],   # normal: lymphatic drain
                  [4.0e-3, 1.0e-3, 6.0e-4, 2.0e-3, 0.0],      # tumour: binds, internalises
                  [5.0e-4, 5.0e-3, 0.0, 0.0, 0.0]])           # necrotic: weak binding only
IV_NORMAL = 4.0e-3  # intravasation rate in the normal slab (1/s)

# three slabs along x of 4 voxels each: normal, tumour, necrotic
SLABS = Grid((12, 2, 2), 10e-6)


def _slab_maps():
    region = np.zeros(SLABS.shape_zyx, np.uint8)
    region[:, :, 4:8] = 1
    region[:, :, 8:] = 2
    iv = np.where(region == 0, IV_NORMAL, 0.0)
    return region, iv


def _slab_particles(n_per, start_state, rs):
    """``n_per`` particles in each slab, uniform inside it."""
    x = np.concatenate([(4 * r + 4 * rs.random(n_per)) * 10e-6 for r in range(3)])
    y = rs.random(3 * n_per) * 20e-6
    z = rs.random(3 * n_per) * 20e-6
    ids = np.arange(3 * n_per, dtype=np.int64)
    return [x, y, z], ids, np.full(3 * n_per, start_state, np.uint8)


def _run(fn, xyz, state, ids, n_steps, first=0, **kw):
    counts = np.zeros(6, np.int64)
    for s in range(first, first + n_steps):
        counts += fn(*xyz, state, ids, s, **kw)
    return counts


def _fractions(state, sel):
    return np.array([np.mean(state[sel] == code) for code in PS.CHAIN_STATES])


# --------------------------------------------------------------------------------------------
# Statistics against the Markov chains
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [C.TISSUE, C.BOUND])
def test_fractions_match_the_one_jump_chain_and_the_matrix_exponential(start):
    n_per, dt, n_steps = 40_000, 1.0, 300
    region, iv = _slab_maps()
    xyz, ids, state = _slab_particles(n_per, start, np.random.default_rng(1))
    _run(PS.numba_transition, xyz, state, ids, n_steps, dt_s=dt, seed=3, grid=SLABS,
         region=region, rates_per_s=RATES, intravasation_per_s=iv)
    p0 = np.zeros(5)
    p0[PS.CHAIN_STATES.index(start)] = 1.0
    for r in range(3):
        k_iv = IV_NORMAL if r == 0 else 0.0
        # largest total exit rate × Δt: the step-size condition of the module docstring
        kb, ku, kif, kib, kl = RATES[r]
        assert max(kb + kif + kl + k_iv, ku + kib) * dt <= 0.01
        chain = p0 @ np.linalg.matrix_power(PS.transition_matrix(RATES[r], k_iv, dt), n_steps)
        exact = p0 @ expm(PS.rate_matrix(RATES[r], k_iv) * n_steps * dt)
        got = _fractions(state, slice(r * n_per, (r + 1) * n_per))
        se = np.sqrt(chain * (1 - chain) / n_per)
        assert np.all(np.abs(got - chain) <= K_SE * se + 1e-12), (r, got, chain, se)
        bias = np.abs(chain - exact)
        # at K Δt ≤ 0.007 the one-jump bias stays below half the sampling error
        assert np.all(bias <= 0.5 * se + 1e-12), (r, bias, se)
        assert np.all(np.abs(got - exact) <= K_SE * se + bias + 1e-12), (r, got, exact)
        # something happened along every path the region allows
        assert np.all(got[chain > 0.01] > 0)


def test_large_steps_follow_the_one_jump_chain_not_the_exponential():
    # K Δt ≈ 0.6: the chain defers second jumps to the next step; the kernel is exactly that
    # chain, which differs from expm(Q t) by far more than the sampling error
    n, dt, n_steps = 100_000, 120.0, 5
    g = Grid((1, 1, 1), 10e-6)
    region = np.ones(g.shape_zyx, np.uint8)
    x = np.full(n, 5e-6)
    ids = np.arange(n, dtype=np.int64)
    state = np.full(n, C.TISSUE, np.uint8)
    _run(PS.numba_transition, [x, x, x], state, ids, n_steps, dt_s=dt, seed=4, grid=g,
         region=region, rates_per_s=RATES)
    p0 = np.eye(5)[0]
    chain = p0 @ np.linalg.matrix_power(PS.transition_matrix(RATES[1], 0.0, dt), n_steps)
    exact = p0 @ expm(PS.rate_matrix(RATES[1]) * n_steps * dt)
    got = _fractions(state, slice(None))
    se = np.sqrt(chain * (1 - chain) / n) + 1e-12
    assert np.all(np.abs(got - chain) <= K_SE * se), (got, chain)
    assert np.max(np.abs(got - exact) / se) > 10, (got, exact)


@pytest.mark.parametrize("start", [C.TISSUE, C.BOUND])
def test_first_jump_destinations_split_by_rate(start):
    # Δt → ∞: every particle leaves in the step; destination j with probability k_j / K.
    # Pearson chi-square against the multinomial split, threshold at the 1 − 1e-4 quantile.
    n = 60_000
    g = Grid((1, 1, 1), 10e-6)
    region = np.zeros(g.shape_zyx, np.uint8)
    iv = np.full(g.shape_zyx, IV_NORMAL)
    x = np.full(n, 5e-6)
    state = np.full(n, start, np.uint8)
    counts = PS.numba_transition(x, x, x, state, np.arange(n, dtype=np.int64), 0, dt_s=1e9,
                                 seed=5, grid=g, region=region, rates_per_s=RATES,
                                 intravasation_per_s=iv)
    kb, ku, kif, kib, kl = RATES[0]
    if start == C.TISSUE:
        kinds, k = [PS.T_BIND, PS.T_INTERNALISE_FREE, PS.T_LYMPH, PS.T_INTRAVASATE], [kb, kif, kl, IV_NORMAL]
    else:
        kinds, k = [PS.T_UNBIND, PS.T_INTERNALISE_BOUND], [ku, kib]
    assert counts.sum() == n == counts[kinds].sum()
    want = n * np.array(k) / sum(k)
    chi2 = float(((counts[kinds] - want) ** 2 / want).sum())
    assert chi2 < stats.chi2.ppf(1 - 1e-4, len(k) - 1), (counts, want)
    for kind, (src, dst) in enumerate(PS.TRANSITIONS):
        if kind in kinds:
            assert np.sum(state == dst) == counts[kind]


def test_region_and_intravasation_are_looked_up_at_the_particle_voxel():
    # region 1 voxels: certain binding; region 0: nothing; the intravasation map makes one
    # voxel certain to return TISSUE particles to blood. Exact, no statistics.
    h = 2.0**-16  # about 15 µm; binary voxel size and origin: corners are exact
    g = Grid((4, 3, 2), h, (3 * h, -2 * h, 0.0))
    region = np.zeros(g.shape_zyx, np.uint8)
    region[1, 2, 3] = 1
    region[0, 0, 0] = 1
    iv = np.zeros(g.shape_zyx)
    iv[1, 1, 1] = 1e6
    rates = np.array([[0.0] * 5, [1e6, 0.0, 0.0, 0.0, 0.0]])
    o = np.array(g.origin_m)
    # voxel (ix, iy, iz) centres, two exact lower corners, and points outside the box
    pts = np.array([[3.5, 2.5, 1.5], [0.5, 0.5, 0.5], [1.5, 1.5, 1.5], [1.0, 1.0, 1.0],
                    [3.0, 2.0, 1.0], [9.0, 9.0, 9.0], [-3.0, -1.0, -2.0], [2.5, 0.5, 1.5]])
    xyz = [o[k] + pts[:, k] * h for k in range(3)]
    state = np.full(len(pts), C.TISSUE, np.uint8)
    counts = PS.numba_transition(*xyz, state, np.arange(len(pts), dtype=np.int64), 0, dt_s=1.0,
                                 seed=0, grid=g, region=region, rates_per_s=rates,
                                 intravasation_per_s=iv)
    want = [C.BOUND, C.BOUND, C.INTRAVASATED, C.INTRAVASATED, C.BOUND, C.BOUND, C.BOUND, C.TISSUE]
    assert state.tolist() == want
    assert counts.tolist() == [5, 0, 0, 2, 0, 0]


def test_only_tissue_and_bound_change_and_counts_match():
    xyz, ids, state, kw = _mixed_case(np.float64, np.uint8)
    before = [a.copy() for a in xyz]
    s0 = state.copy()
    counts = PS.numba_transition(*xyz, state, ids, 0, **dict(kw, dt_s=200.0))
    for a, b in zip(xyz, before):
        np.testing.assert_array_equal(a, b)
    other = (s0 != C.TISSUE) & (s0 != C.BOUND)
    np.testing.assert_array_equal(state[other], s0[other])
    for kind, (src, dst) in enumerate(PS.TRANSITIONS):
        assert np.sum((s0 == src) & (state == dst)) == counts[kind] > 0
    assert counts.sum() == np.sum(state != s0)
    # zero rates and no map: nothing happens
    state2 = s0.copy()
    zero = PS.numba_transition(*xyz, state2, ids, 0, **dict(kw, rates_per_s=np.zeros((3, 5)),
                                                            intravasation_per_s=None))
    assert not zero.any() and np.array_equal(state2, s0)


# --------------------------------------------------------------------------------------------
# Backends, determinism, resume
# --------------------------------------------------------------------------------------------


def _mixed_case(dtype, sdtype, n=5000, seed=31):
    rs = np.random.default_rng(seed)
    g = Grid((7, 6, 5), 8e-6, (2e-6, -4e-6, 1e-6))
    lo, hi = np.array(g.origin_m), np.array(g.upper_m)
    pos = lo - 4e-6 + rs.random((n, 3)) * (hi - lo + 8e-6)  # a few outside the box
    xyz = [np.ascontiguousarray(pos[:, k], dtype=dtype) for k in range(3)]
    ids = rs.choice(2**50, n, replace=False).astype(np.int64)
    state = rs.integers(0, 9, n).astype(sdtype)
    kw = dict(dt_s=15.0, seed=2**64 - 9, grid=g,
              region=rs.integers(0, 3, g.shape_zyx).astype(np.uint8),
              rates_per_s=rs.random((3, 5)) * 0.02,
              intravasation_per_s=rs.random(g.shape_zyx) * 0.02)
    return xyz, ids, state, kw


@pytest.mark.parametrize("dtype,sdtype", [(np.float64, np.uint8), (np.float32, np.int8)])
def test_numpy_reference_equals_numba_exactly(dtype, sdtype):
    xyz, ids, state, kw = _mixed_case(dtype, sdtype)
    a, b = state.copy(), state.copy()
    ca = _run(PS.numpy_transition, xyz, a, ids, 6, **kw)
    cb = _run(PS.numba_transition, xyz, b, ids, 6, **kw)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ca, cb)
    assert ca.sum() > 1000
    # the physics source in plain Python (the .py form) makes the same decisions
    c = state[:200].copy()
    ids_, args = PS._host_prepare(*[v[:200] for v in xyz], c, ids[:200], 0, kw)
    kinds = [PS.update_state.py(i, *[v[:200] for v in xyz], c, ids_, *args) for i in range(200)]
    d = state[:200].copy()
    counts = PS.numba_transition(*[v[:200] for v in xyz], d, ids[:200], 0, **kw)
    np.testing.assert_array_equal(c, d)
    np.testing.assert_array_equal(np.bincount([k for k in kinds if k >= 0], minlength=6), counts)
    # and without the intravasation map
    e, f = state.copy(), state.copy()
    kw0 = dict(kw, intravasation_per_s=None)
    np.testing.assert_array_equal(_run(PS.numpy_transition, xyz, e, ids, 2, **kw0),
                                  _run(PS.numba_transition, xyz, f, ids, 2, **kw0))
    np.testing.assert_array_equal(e, f)


def test_dispatch_order_independence_and_resume():
    xyz, ids, state, kw = _mixed_case(np.float64, np.uint8)
    whole = state.copy()
    _run(lambda *a, **k: PS.transition("numba", *a, **k), xyz, whole, ids, 6, **kw)
    # paths belong to ids, not array slots
    perm = np.random.default_rng(0).permutation(ids.size)
    p = state[perm].copy()
    _run(PS.numba_transition, [v[perm] for v in xyz], p, ids[perm], 6, **kw)
    np.testing.assert_array_equal(p, whole[perm])
    # a run split in two (a checkpoint in between) continues the same streams
    r = state.copy()
    _run(PS.numba_transition, xyz, r, ids, 3, **kw)
    r = np.array(r)
    _run(lambda *a, **k: PS.transition("numpy", *a, **k), xyz, r, ids, 3, first=3, **kw)
    np.testing.assert_array_equal(r, whole)
    # another seed, other decisions
    q = state.copy()
    _run(PS.numba_transition, xyz, q, ids, 6, **dict(kw, seed=1))
    assert not np.array_equal(q, whole)


def test_argument_errors_name_the_argument():
    xyz, ids, state, kw = _mixed_case(np.float64, np.uint8, n=10)
    f = PS.numba_transition
    with pytest.raises(TypeError, match="x, y and z must share one dtype"):
        f(xyz[0], xyz[1].astype(np.float32), xyz[2], state, ids, 0, **kw)
    with pytest.raises(ValueError, match="ids must have shape"):
        f(*xyz, state, ids[:4], 0, **kw)
    with pytest.raises(TypeError, match="state must be an int8 or uint8"):
        f(*xyz, state.astype(np.int16), ids, 0, **kw)
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        f(*xyz, state, ids, -1, **kw)
    with pytest.raises(ValueError, match="dt_s"):
        f(*xyz, state, ids, 0, **dict(kw, dt_s=-1.0))
    with pytest.raises(ValueError, match="rates_per_s must have shape"):
        f(*xyz, state, ids, 0, **dict(kw, rates_per_s=np.zeros((3, 4))))
    with pytest.raises(TypeError, match="rates_per_s must be float64"):
        f(*xyz, state, ids, 0, **dict(kw, rates_per_s=np.zeros((3, 5), np.float32)))
    with pytest.raises(ValueError, match="finite and >= 0"):
        f(*xyz, state, ids, 0, **dict(kw, rates_per_s=-np.ones((3, 5))))
    with pytest.raises(ValueError, match="region codes must lie in"):
        f(*xyz, state, ids, 0, **dict(kw, rates_per_s=np.zeros((2, 5))))
    with pytest.raises(ValueError, match="region must have shape"):
        f(*xyz, state, ids, 0, **dict(kw, region=np.zeros((1, 2, 3), np.uint8)))
    with pytest.raises(ValueError, match="intravasation_per_s must have shape"):
        f(*xyz, state, ids, 0, **dict(kw, intravasation_per_s=np.zeros(3)))
    with pytest.raises(ValueError, match="ids must lie in"):
        f(*xyz, state, -ids - 1, 0, **kw)
    with pytest.raises(TypeError, match="NumPy array"):
        f(list(xyz[0]), *xyz[1:], state, ids, 0, **kw)
    with pytest.raises(ValueError, match="unknown backend"):
        PS.transition("fortran", *xyz, state, ids, 0, **kw)
    # empty arrays are fine
    e = np.zeros(0)
    assert not PS.numba_transition(e, e, e, np.zeros(0, np.uint8), np.zeros(0, np.int64), 0, **kw).any()


def test_cuda_kernel_matches_numba_in_simulator():
    script = Path(__file__).with_name("cudasim_particle_states.py")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert res.stdout.count(" ok") == 6, res.stdout


def test_import_does_not_load_cuda():
    code = ("import sys, nanosim.kernels.particle_states, nanosim.carriers.continuum\n"
            "bad = [m for m in sys.modules if m.startswith(('numba.cuda', 'cupy'))]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.gpu
def test_cupy_backend_matches_numba():
    import cupy

    for dtype, sdtype in ((np.float64, np.uint8), (np.float32, np.int8)):
        xyz, ids, state, kw = _mixed_case(dtype, sdtype, n=20_000)
        a = state.copy()
        ca = _run(PS.numba_transition, xyz, a, ids, 5, **kw)
        dev_kw = dict(kw, region=cupy.asarray(kw["region"]),
                      rates_per_s=cupy.asarray(kw["rates_per_s"]),
                      intravasation_per_s=cupy.asarray(kw["intravasation_per_s"]))
        b = cupy.asarray(state)
        cb = _run(lambda *args, **k: PS.transition("cupy", *args, **k),
                  [cupy.asarray(v) for v in xyz], b, cupy.asarray(ids), 5, **dev_kw)
        np.testing.assert_array_equal(a, cupy.asnumpy(b))
        np.testing.assert_array_equal(ca, cb)
