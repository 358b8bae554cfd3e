"""Per-particle release step (nanosim.kernels.release): histories, burst, compartments, backends.

Nothing is random, so every comparison is deterministic. Tolerances: the clock is a sum of
``c h Δt`` over steps, so a history split into different steps gives the same clock to a few
ulp per step (1e-13 relative over ≤ 60 steps); laws evaluated at that clock agree to the same
order. NumPy and Numba use different math libraries (``pow``, ``expm1``, ``erfc``), so they
agree to a few ulp (checked at 1e-14 relative, 1e-15 absolute on fractions).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nanosim.kernels import compartments as C
from nanosim.kernels import release as R

STEPPERS = {"numpy": R.numpy_release_step, "numba": R.numba_release_step}


def _hill(ph, pka, n, h_min):
    return h_min + (1 - h_min) / (1 + 10 ** (n * (ph - pka)))


def _particles(n, state=C.TISSUE, payload=3e-18, weight=2e5):
    return (np.zeros(n), np.zeros(n), np.full(n, payload), np.full(n, weight),
            np.full(n, state, np.uint8))


def _run(step, arrays, schedule, params, ph_fn=None):
    """Apply ``schedule`` [(dt, pH), ...] to ``arrays``; return the total released per particle."""
    n = arrays[0].shape[0]
    total = np.zeros(n)
    for dt, ph in schedule:
        phl = None if ph is None else np.full(n, ph)
        total += step(*arrays, phl, dt_s=dt, params=params)
    return total


def _split(rs, t0, t1, ph, pieces):
    """``pieces`` random steps covering [t0, t1] at pH ``ph``."""
    cuts = np.sort(np.concatenate([[t0, t1], t0 + (t1 - t0) * rs.random(pieces - 1)]))
    return [(b - a, ph) for a, b in zip(cuts[:-1], cuts[1:])]


T1, T_END = 6 * 3600.0, 30 * 3600.0
PH1, PH2 = 7.4, 5.5
HILL = dict(pka=6.5, hill_n=1.0, h_min=0.05)


def _schedules():
    rs = np.random.default_rng(7)
    even = [(T1 / 6, PH1)] * 6 + [((T_END - T1) / 24, PH2)] * 24
    return {"even": even, "one step each": [(T1, PH1), (T_END - T1, PH2)],
            "random": _split(rs, 0.0, T1, PH1, 9) + _split(rs, T1, T_END, PH2, 23)}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("law", ["first_order", "weibull", "sphere_diffusion", "korsmeyer_peppas"])
def test_ph_step_change_follows_the_analytic_piecewise_solution(backend, law):
    # pH 7.4 for t < t1, then 5.5: the clock is τ(t) = c (h1 min(t, t1) + h2 (t − t1)⁺)
    c = 0.8
    make = {"first_order": lambda kw: R.ReleaseParams.first_order(2e-5, **kw),
            "weibull": lambda kw: R.ReleaseParams.weibull(20 * 3600.0, 1.7, **kw),
            "sphere_diffusion": lambda kw: R.ReleaseParams.sphere_diffusion(1e-18, 1e-6, **kw),
            "korsmeyer_peppas": lambda kw: R.ReleaseParams.korsmeyer_peppas(2e-3, 0.43, **kw)}[law]
    params = make(dict(HILL, factors={"tissue": c}))
    h1, h2 = _hill(PH1, 6.5, 1.0, 0.05), _hill(PH2, 6.5, 1.0, 0.05)
    tau_end = c * (h1 * T1 + h2 * (T_END - T1))
    if law == "first_order":  # dM/dt = −k c h(pH) M, integrated exactly
        want = 1 - np.exp(-2e-5 * tau_end)
    else:  # the time-shaped law run on the pH-scaled clock
        want = params.fraction(tau_end)
    results = []
    for name, sched in _schedules().items():
        arrays = _particles(3)
        total = _run(STEPPERS[backend], arrays, sched, params)
        tau, frac, pay, w, _ = arrays
        np.testing.assert_allclose(tau, tau_end, rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(frac, want, rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(total, pay * w * want, rtol=1e-12, err_msg=name)
        results.append(frac[0])
    assert np.ptp(results) <= 1e-13 * max(results)
    assert 0.05 < want < 0.99  # the test sees the curve, not a limit


def test_first_order_midway_matches_the_rate_law_at_every_step():
    # dM/dt = −k c h(pH(t)) M along a pH history that changes every step
    k, c = 1e-4, 1.0
    params = R.ReleaseParams.first_order(k, pka=6.2, hill_n=2.0, h_min=0.1)
    phs = 5.5 + 2.0 * np.random.default_rng(1).random(40)
    dt = 120.0
    arrays = _particles(1)
    m = 1.0
    for ph in phs:
        R.numba_release_step(*arrays, np.array([ph]), dt_s=dt, params=params)
        m *= np.exp(-k * c * _hill(ph, 6.2, 2.0, 0.1) * dt)
        assert arrays[1][0] == pytest.approx(1 - m, rel=1e-13)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_burst_at_injection(backend):
    fb, k, dt = 0.2, 1e-4, 50.0
    params = R.ReleaseParams.first_order(k, burst_fraction=fb)
    arrays = _particles(4)
    tau, frac, pay, w, state = arrays
    r1 = STEPPERS[backend](*arrays, dt_s=dt, params=params)
    want1 = fb + (1 - fb) * (1 - np.exp(-k * dt))
    np.testing.assert_allclose(frac, want1, rtol=1e-14)
    np.testing.assert_allclose(r1, pay * w * want1, rtol=1e-14)
    total = r1 + _run(STEPPERS[backend], arrays, [(dt, None)] * 9, params)
    want = fb + (1 - fb) * (1 - np.exp(-k * 10 * dt))  # the burst happened once
    np.testing.assert_allclose(frac, want, rtol=1e-14)
    np.testing.assert_allclose(total, pay * w * want, rtol=1e-13)
    # the burst with no law, and with a zero step
    arrays = _particles(2)
    r = STEPPERS[backend](*arrays, dt_s=0.0, params=R.ReleaseParams.none(burst_fraction=0.3))
    np.testing.assert_allclose(arrays[1], 0.3, rtol=1e-15)
    np.testing.assert_allclose(r, arrays[2] * arrays[3] * 0.3, rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_burst_on_entering_tissue_or_cells(backend):
    fb, k, dt = 0.25, 2e-4, 100.0
    step = STEPPERS[backend]
    for states, where in (((C.TISSUE, C.BOUND, C.INTERNALISED, C.LODGED), C.TISSUE),
                          ((C.INTERNALISED,), C.INTERNALISED)):
        params = R.ReleaseParams.first_order(k, burst_fraction=fb, burst_states=states,
                                             ph_endosome=7.4)
        arrays = _particles(2, state=C.VESSEL)
        tau, frac, pay, w, state = arrays
        released = [step(*arrays, dt_s=dt, params=params).copy() for _ in range(3)]  # in blood
        np.testing.assert_allclose(frac, (1 - fb) * (1 - np.exp(-k * 3 * dt)), rtol=1e-14)
        state[:] = where
        released.append(step(*arrays, dt_s=dt, params=params).copy())  # enters: the burst
        state[:] = C.INTERNALISED if where == C.TISSUE else C.VESSEL  # moves on: no second burst
        released += [step(*arrays, dt_s=dt, params=params).copy() for _ in range(3)]
        F = lambda n: 1 - np.exp(-k * n * dt)
        np.testing.assert_allclose(frac, fb + (1 - fb) * F(7), rtol=1e-14)
        np.testing.assert_allclose(released[3], pay * w * (fb + (1 - fb) * (F(4) - F(3))), rtol=1e-13)
        np.testing.assert_allclose(np.sum(released, axis=0), pay * w * frac, rtol=1e-13)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_compartments_see_their_own_ph_and_speed(backend):
    k, dt = 1e-3, 10.0
    hill = dict(pka=6.5, hill_n=1.0, h_min=0.1)
    params = R.ReleaseParams.first_order(
        k, factors={"vessel": 0.5, "bound": 2.0, "lodged": 0.0}, ph_blood=7.3, ph_endosome=5.2,
        ph_tissue=6.0, **hill)
    codes = np.array([C.INACTIVE, C.TISSUE, C.VESSEL, C.BOUND, C.INTERNALISED, C.LODGED,
                      C.EXITED, C.CLEARED, C.INTRAVASATED], np.uint8)
    ph_local = np.full(codes.size, 6.8)
    h = lambda ph: _hill(ph, 6.5, 1.0, 0.1)
    want_tau = np.array([0, h(6.8), 0.5 * h(7.3), 2 * h(6.8), h(5.2), 0, 0, 0, 0]) * dt
    tau, frac, pay, w, _ = _particles(codes.size)
    r = STEPPERS[backend](tau, frac, pay, w, codes, ph_local, dt_s=dt, params=params)
    np.testing.assert_allclose(tau, want_tau, rtol=1e-14, atol=0)
    np.testing.assert_allclose(r, pay * w * -np.expm1(-k * want_tau), rtol=1e-14, atol=0)
    # without ph_local tissue-like compartments see ph_tissue; blood and cells are unchanged
    tau2, frac2, *_ = arrays2 = _particles(codes.size)
    STEPPERS[backend](tau2, frac2, pay, w, codes, dt_s=dt, params=params)
    want_tau[[1, 3]] = np.array([1, 2]) * h(6.0) * dt
    np.testing.assert_allclose(tau2, want_tau, rtol=1e-14, atol=0)
    # per-compartment sums for the ledgers
    by = R.released_by_compartment(r, codes)
    assert by.shape == (len(C.NAMES),) and by[C.VESSEL] == r[2] and by[C.INACTIVE] == 0.0
    assert by.sum() == pytest.approx(r.sum(), rel=1e-15)


def _mixed_case(law, ph_dtype, sdtype, n=3000, seed=5):
    rs = np.random.default_rng(seed)
    params = {"first_order": R.ReleaseParams.first_order(3e-4, burst_fraction=0.1, **HILL),
              "higuchi": R.ReleaseParams.higuchi(4e-3, burst_fraction=0.05,
                                                 burst_states=(C.TISSUE, C.BOUND)),
              "korsmeyer_peppas": R.ReleaseParams.korsmeyer_peppas(1e-2, 0.45, pka=6.0, hill_n=2,
                                                                   h_min=0.2),
              "weibull": R.ReleaseParams.weibull(2000.0, 0.7, factors={"vessel": 0.2}, **HILL),
              "sphere_diffusion": R.ReleaseParams.sphere_diffusion(
                  1e-17, 2e-7, burst_fraction=0.3, burst_states=(C.INTERNALISED,), **HILL),
              "none": R.ReleaseParams.none(burst_fraction=0.2)}[law]
    state = rs.integers(-1 if sdtype == np.int8 else 0, 10, n).astype(sdtype)  # a few invalid codes
    tau = np.where(rs.random(n) < 0.5, 0.0, rs.random(n) * 5000.0)
    frac = np.zeros(n)
    arrays = [tau, frac, rs.random(n) * 1e-18, (1 + rs.random(n) * 1e4).astype(np.float32), state]
    ph = None if ph_dtype is None else (5.0 + 2.6 * rs.random(n)).astype(ph_dtype)
    return arrays, ph, params


@pytest.mark.parametrize("law", R.LAW_NAMES)
@pytest.mark.parametrize("ph_dtype,sdtype", [(np.float64, np.uint8), (np.float32, np.int8),
                                             (None, np.uint8)])
def test_numpy_reference_equals_numba(law, ph_dtype, sdtype):
    arrays, ph, params = _mixed_case(law, ph_dtype, sdtype)
    a = [x.copy() for x in arrays]
    b = [x.copy() for x in arrays]
    for n, dt in enumerate((30.0, 400.0, 0.0, 2500.0)):
        if n == 2:  # particles move between compartments
            a[4][::7] = b[4][::7] = C.INTERNALISED
        ra = R.numpy_release_step(*a, ph, dt_s=dt, params=params)
        rb = R.numba_release_step(*b, ph, dt_s=dt, params=params)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-14, atol=0)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-14, atol=1e-15)
        scale = float(np.max(a[2] * a[3]))
        np.testing.assert_allclose(ra, rb, rtol=1e-13, atol=1e-14 * scale)
    assert np.all(a[1] >= 0) and np.all(a[1] <= 1)
    if law != "none":
        assert np.count_nonzero(a[1]) > len(a[1]) // 4
    # the plain-Python form of the physics source agrees with both
    c = [x[:50].copy() for x in arrays]
    out, args = R._host_prepare(c, None if ph is None else ph[:50], 400.0, params, None)
    for i in range(50):
        R.release_particle.py(i, *c, *args, out)
    d = [x[:50].copy() for x in arrays]
    rd = R.numba_release_step(*d, None if ph is None else ph[:50], dt_s=400.0, params=params)
    np.testing.assert_allclose(c[1], d[1], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(out, rd, rtol=1e-13, atol=1e-14 * float(np.max(c[2] * c[3])))


def test_dispatch_and_released_drug_closes_the_balance():
    arrays, ph, params = _mixed_case("first_order", np.float64, np.uint8)
    pay, w, state = arrays[2], arrays[3], arrays[4]
    frac0 = arrays[1].copy()
    total = np.zeros(len(pay))
    for dt in (100.0, 200.0, 400.0):
        out = np.empty(len(pay))
        res = R.release_step("numba", *arrays, ph, dt_s=dt, params=params, out=out)
        assert res is out
        total += res
    np.testing.assert_allclose(total, pay * w.astype(np.float64) * (arrays[1] - frac0), rtol=1e-12,
                               atol=1e-30)
    live = np.isin(state, R.LIVE_STATES)
    assert not total[~live].any() and total[live].min() > 0
    with pytest.raises(ValueError, match="unknown backend"):
        R.release_step("fortran", *arrays, ph, dt_s=1.0, params=params)


def test_argument_errors_name_the_argument():
    arrays, ph, params = _mixed_case("first_order", np.float64, np.uint8, n=10)
    f = R.numba_release_step
    tau, frac, pay, w, state = arrays
    with pytest.raises(TypeError, match="tau and released_fraction must be float64"):
        f(tau.astype(np.float32), frac, pay, w, state, dt_s=1.0, params=params)
    with pytest.raises(ValueError, match="weight must be 1-D of length 10"):
        f(tau, frac, pay, w[:3], state, dt_s=1.0, params=params)
    with pytest.raises(TypeError, match="state must be an int8 or uint8"):
        f(tau, frac, pay, w, state.astype(np.int32), dt_s=1.0, params=params)
    with pytest.raises(ValueError, match="ph_local must be 1-D"):
        f(tau, frac, pay, w, state, ph[:2], dt_s=1.0, params=params)
    with pytest.raises(ValueError, match="dt_s"):
        f(tau, frac, pay, w, state, dt_s=-1.0, params=params)
    with pytest.raises(TypeError, match="params must be a ReleaseParams"):
        f(tau, frac, pay, w, state, dt_s=1.0, params={"law": 1})
    with pytest.raises(TypeError, match="NumPy array"):
        f(list(tau), frac, pay, w, state, dt_s=1.0, params=params)
    with pytest.raises(TypeError, match="out must be float64"):
        f(tau, frac, pay, w, state, dt_s=1.0, params=params, out=np.empty(10, np.float32))
    e = np.zeros(0)
    assert R.numba_release_step(e, e.copy(), e, e, np.zeros(0, np.uint8), dt_s=1.0,
                                params=params).shape == (0,)


def test_cuda_kernel_matches_numba_in_simulator_and_import_leaves_cuda_alone():
    script = Path(__file__).with_name("cudasim_release.py")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}, timeout=300)
    report = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0 and run.stdout.count(" ok") == 9, report


@pytest.mark.gpu
def test_cupy_backend_matches_numba():
    import cupy

    for law in R.LAW_NAMES:
        arrays, ph, params = _mixed_case(law, np.float32, np.int8, n=20_000)
        a = [x.copy() for x in arrays]
        d = [cupy.asarray(x) for x in arrays]
        dph = cupy.asarray(ph)
        for dt in (30.0, 400.0, 2500.0):
            ra = R.numba_release_step(*a, ph, dt_s=dt, params=params)
            rd = R.release_step("cupy", *d, dph, dt_s=dt, params=params)
            scale = float(np.max(a[2] * a[3]))
            np.testing.assert_allclose(cupy.asnumpy(rd), ra, rtol=1e-12, atol=1e-13 * scale)
            np.testing.assert_allclose(cupy.asnumpy(d[1]), a[1], rtol=1e-13, atol=1e-14)
            np.testing.assert_allclose(cupy.asnumpy(d[0]), a[0], rtol=1e-13)
        by_dev = R.released_by_compartment(rd, d[4])
        np.testing.assert_allclose(by_dev, R.released_by_compartment(ra, a[4]), rtol=1e-12,
                                   atol=1e-13 * scale)
