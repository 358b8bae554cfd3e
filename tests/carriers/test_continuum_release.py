"""Drug release in the continuum carrier model (PHYSICS.md §7; module docstring of
:mod:`nanosim.carriers.continuum`).

What is checked, and where each tolerance comes from
----------------------------------------------------
- *Well-mixed, constant pH* (a uniform field with no transport: every carrier's clock is
  ``c_pool h(pH) t``): the first-order law is integrated exactly per step, so the released
  fraction equals ``f_b + (1 − f_b) F(τ)`` to round-off (1e-13). The time-shaped laws use the
  clock classes, which converge at first order in the class width: the error over the range
  ``F ≤ 0.6`` (Korsmeyer–Peppas's range; near ``F = 1`` the capped laws have a corner, see the
  module docstring) is measured at ``K = 16, 32, 64`` and its order ``log2(e_K / e_2K)`` must
  lie in [0.8, 1.25] for both pairs; the error itself is below ``1/K`` (the scheme misplaces
  a clock by about one class: measured ``K e_K`` ≈ 0.14–0.32).
- *A pH step in time*: the particle kernel's clock (``dτ/dt = c h(pH(t))``) gives the analytic
  piecewise curve; the kernel itself matches it to round-off, the first-order continuum to
  round-off and the Weibull continuum within ``1/K`` with the first-order decrease from
  ``K = 16`` to ``32``.
- *A pH field with diffusion, binding, internalisation and drainage* against the particle method
  (see :func:`_particles`): drug released per pool and region and drug drained in carriers.
  Each particle's amounts are independent draws, so a category's particle total has the
  standard error ``√N · sd`` (the sample standard deviation of the per-particle amounts over
  the ``N`` particles); the continuum's discretisation error is estimated by the difference
  between two resolutions (``h`` and ``Δt`` halved, the geometry refined so that both see the
  same staircase) and, for Weibull, the class error of ``K = 32`` by ``|c_16 − c_32|`` (first
  order: ``e_32 ≈ e_16 − e_32``). ``z = (particles − continuum) / √(se² + Δ_h² + Δ_K²)`` must
  satisfy ``|z| < 4`` in every category (7 categories: a false alarm below 1e-3 for Gaussian
  ``z``). A negative control (pKa 6.6 instead of 6.8) fails by far.
- *Ledger, backends, checkpoints*: the drug ledger closes to round-off (1e-13) with every
  transport term on, in both schemes; with no release the drug in carriers stays
  ``payload × carriers`` to round-off (it moves exactly as the carriers do); numpy and numba
  agree to the operator's own 1e-11; a checkpoint continues bit-identically.
- *Burst*: at injection, on entering the tissue (plasma carriers carry the reserve) and on
  internalisation, each exactly where the particle kernel bursts.
"""

import math

import numpy as np
import pytest
from scipy.special import ndtr

from nanosim.backends import get_backend
from nanosim.carriers.continuum import (DRUG_LEDGER_NAMES, POOLS, ContinuumCarrierModel, clock_classes,
                                        gaussian_cell_averages)
from nanosim.geometry.grid import Grid
from nanosim.kernels import compartments as C
from nanosim.kernels import particle_states as PS
from nanosim.kernels import particles as P
from nanosim.kernels import release as rk

from test_continuum_vs_particles import K_SE  # same directory

ROUND_OFF = 1e-13
TRIGGER = dict(pka=6.5, h_min=0.1)
PAYLOAD = 2e-19  # mol per carrier


def _well_mixed(params, ph=6.8, backend="numpy", **kw):
    """One voxel per pool with 1e15 carriers/m³ in each pool and no transport or transitions."""
    g = Grid((1, 1, 1), 10e-6)
    m = ContinuumCarrierModel(backend, g, np.zeros(g.shape_zyx, np.uint8), np.zeros((1, 5)), 0.0,
                              boundary=("periodic",) * 3, release=params, payload_mol=PAYLOAD, ph=ph, **kw)
    one = np.full(g.shape_zyx, 1e15)
    m.set_initial(one, bound=one, internalised=one)
    return m


def _released_fractions(m):
    """Released fraction of each pool's initial drug (the pools do not exchange here)."""
    d = m.drug_ledger_dict()
    dose = PAYLOAD * 1e15 * m.grid.voxel_volume_m3
    return np.array([d[f"released_{p}"] for p in POOLS]) / dose


def _clocks(params, m, t):
    """Release clock (s) of each pool after ``t`` at the model's constant pH."""
    h = rk.numpy_ph_factor(np.array([m.ph, m.ph, m.ph_endosome]), params.pka, params.hill_n, params.h_min)
    f = np.array([params.factor(n) for n in ("tissue", "bound", "internalised")])
    return f * h * t


# --------------------------------------------------------------------------------------------
# Well mixed: the law itself
# --------------------------------------------------------------------------------------------


def test_first_order_is_exact_with_the_burst_at_injection():
    p = rk.ReleaseParams.first_order(1e-3, burst_fraction=0.15, factors={"bound": 0.3, "internalised": 2.0},
                                     ph_endosome=5.2, **TRIGGER)
    m = _well_mixed(p, release_classes=16)
    assert m.classes.n == 1  # a constant hazard: one class is exact
    for n in range(1, 41):
        m.step(50.0 if n % 2 else 25.0)  # steps of any length
        want = p.fraction(_clocks(p, m, m.time_s))
        np.testing.assert_allclose(_released_fractions(m), want, rtol=0, atol=ROUND_OFF)
    assert abs(m.drug_balance_error()) < ROUND_OFF


LAWS = {
    "higuchi": rk.ReleaseParams.higuchi(1.0 / math.sqrt(2000.0), **TRIGGER),
    "korsmeyer_peppas": rk.ReleaseParams.korsmeyer_peppas(0.6 / 1000.0**0.43, 0.43, **TRIGGER),
    "weibull": rk.ReleaseParams.weibull(600.0, 1.5, **TRIGGER),
    "weibull_b<1": rk.ReleaseParams.weibull(600.0, 0.6, **TRIGGER),
    "sphere_diffusion": rk.ReleaseParams.sphere_diffusion(1e-16, 1e-6, **TRIGGER),
}


def _class_error(params, k, f_max=0.6, dt=20.0):
    """Largest |released fraction − F(τ)| of the free pool while ``F(τ) ≤ f_max`` (well mixed)."""
    m = _well_mixed(params, release_classes=k)
    speed = _clocks(params, m, 1.0)[0]
    t_end = float(clock_classes(params, 10, None).edges_s[7]) / speed  # F = 0.7
    err = 0.0
    while m.time_s < t_end:
        m.step(dt)
        want = params.fraction(speed * m.time_s)
        if want <= f_max:
            err = max(err, abs(_released_fractions(m)[0] - want))
    assert abs(m.drug_balance_error()) < ROUND_OFF
    return err


@pytest.mark.parametrize("law", sorted(LAWS))
def test_time_shaped_laws_converge_at_first_order_in_the_class_width(law):
    ks = (16, 32, 64)
    errs = [_class_error(LAWS[law], k) for k in ks]
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    print(law, errs, orders)
    assert all(0.8 < o < 1.25 for o in orders), (errs, orders)
    assert all(e < 1.0 / k for e, k in zip(errs, ks)), errs


def test_clock_classes_divide_the_release_equally():
    p = LAWS["weibull"]
    cc = clock_classes(p, 8)
    f = p.fraction(cc.edges_s[:-1])
    np.testing.assert_allclose(f, np.arange(8) / 8, atol=1e-14)
    # the mean hazard keeps exactly S(τ_j+1)/S(τ_j) across each class
    s = 1.0 - f
    np.testing.assert_allclose(np.exp(-cc.hazard_per_s[:-1] * cc.width_s[:-1]), s[1:] / s[:-1], rtol=1e-12)
    # the open class: the e-folding time of what is left
    tau_e = cc.edges_s[-2] + 1.0 / cc.hazard_per_s[-1]
    assert 1.0 - p.fraction(tau_e) == pytest.approx(s[-1] / math.e, rel=1e-9)
    assert cc.index(0.0) == 0 and cc.index(cc.edges_s[3]) == 3 and cc.index(1e30) == 7
    # given edges, the laws with one class
    assert clock_classes(p, None, [10.0, 20.0]).n == 3
    assert clock_classes(rk.ReleaseParams.first_order(1e-3), 64).n == 1
    assert clock_classes(rk.ReleaseParams.none(burst_fraction=0.2), 64).hazard_per_s[0] == 0.0


# --------------------------------------------------------------------------------------------
# A pH step in time
# --------------------------------------------------------------------------------------------

PH_STEP = ((7.4, 1500.0), (6.0, 1500.0))  # (pH, duration in s), in turn


def _ph_step_run(params, dt=25.0, **kw):
    """Free-pool released fraction of the well-mixed model through the pH step, at each step end."""
    m = _well_mixed(params, ph=PH_STEP[0][0], **kw)
    out = []
    for ph, duration in PH_STEP:
        m.set_ph(ph)
        for _ in range(int(round(duration / dt))):
            m.step(dt)
            out.append(_released_fractions(m)[0])
    assert abs(m.drug_balance_error()) < ROUND_OFF
    return np.array(out)


def _ph_step_exact(params, dt=25.0):
    """The analytic curve ``F_total(τ(t))``, ``τ`` piecewise linear; and the particle kernel's."""
    tau, t_all = [], []
    clock = 0.0
    tau_p = np.zeros(1)
    frac = np.zeros(1)
    kernel = []
    for ph, duration in PH_STEP:
        h = float(rk.numpy_ph_factor(ph, params.pka, params.hill_n, params.h_min))
        for _ in range(int(round(duration / dt))):
            clock += h * dt
            tau.append(clock)
            rk.numpy_release_step(tau_p, frac, np.ones(1), np.ones(1), np.array([C.TISSUE], np.uint8),
                                  np.array([ph]), dt_s=dt, params=params)
            kernel.append(frac[0])
    return params.fraction(np.array(tau)), np.array(kernel)


def test_ph_step_first_order_follows_the_particle_clock_exactly():
    p = rk.ReleaseParams.first_order(2e-3, burst_fraction=0.1, pka=6.5, hill_n=2.0, h_min=0.05)
    exact, kernel = _ph_step_exact(p)
    np.testing.assert_allclose(kernel, exact, rtol=0, atol=ROUND_OFF)
    np.testing.assert_allclose(_ph_step_run(p), exact, rtol=0, atol=ROUND_OFF)


def test_ph_step_weibull_converges_to_the_particle_clock():
    p = rk.ReleaseParams.weibull(800.0, 1.5, pka=6.5, hill_n=2.0, h_min=0.05)
    exact, kernel = _ph_step_exact(p)
    np.testing.assert_allclose(kernel, exact, rtol=0, atol=ROUND_OFF)
    errs = [np.abs(_ph_step_run(p, release_classes=k) - exact).max() for k in (16, 32)]
    print(errs)
    assert errs[0] < 1.0 / 16 and errs[1] < 1.0 / 32
    assert 0.8 < math.log2(errs[0] / errs[1]) < 1.25, errs
    # the slow half barely releases: the curve must show the step
    n_slow = int(round(PH_STEP[0][1] / 25.0))
    assert exact[n_slow - 1] < 0.05 < 0.9 < exact[-1]


# --------------------------------------------------------------------------------------------
# A pH field with diffusion and state changes, against the particle method
# --------------------------------------------------------------------------------------------

BOX = 640e-6  # periodic 1-D box along x
H_BASE = 20e-6
D = 3e-12  # m²/s
T_CROSS = 1000.0
DT_PARTICLES = 2.0
N_PARTICLES = 10_000
BLOB = (160e-6, 50e-6)  # centre, σ (m): on the tumour's lower edge
# [k_bind, k_unbind, k_internalise_free, k_internalise_bound, k_lymph] (1/s): normal, tumour
RATES = np.array([[1.0e-3, 2.0e-3, 3.0e-4, 5.0e-4, 1.0e-3],
                  [3.0e-3, 1.0e-3, 6.0e-4, 1.0e-3, 0.0]])
PH_REGION = (7.4, 6.6)
CROSS_TRIGGER = dict(pka=6.8, hill_n=2.0, h_min=0.05, ph_endosome=5.5,
                     factors={"tissue": 1.0, "bound": 0.5, "internalised": 1.5})
CROSS_LAWS = {"first_order": rk.ReleaseParams.first_order(2.4e-3, burst_fraction=0.1, **CROSS_TRIGGER),
              "weibull": rk.ReleaseParams.weibull(350.0, 1.5, **CROSS_TRIGGER)}
CATEGORIES = [(pool, r) for pool in POOLS for r in (0, 1)] + ["cleared"]


def _cross_geometry(refine=1):
    """The 1-D tumour slab [160, 480) µm (region 1, pH 6.6) in normal tissue (pH 7.4)."""
    n = int(round(BOX / H_BASE)) * refine
    x = (np.arange(n) + 0.5) * H_BASE / refine
    region = ((x >= 160e-6) & (x < 480e-6)).astype(np.uint8).reshape(1, 1, n)
    return Grid((n, 1, 1), H_BASE / refine), region, np.where(region == 1, *PH_REGION[::-1]).astype(float)


def _cross_continuum(params, refine, dt, k=None):
    """Released drug per category (fractions of the dose) of the continuum at ``H_BASE/refine``."""
    g, region, ph = _cross_geometry(refine)
    edges = g.voxel_size_m * np.arange(g.shape_xyz[0] + 1)
    cdf = sum(ndtr((edges - BLOB[0] - s) / BLOB[1]) for s in (-BOX, 0.0, BOX))
    m = ContinuumCarrierModel("numpy", g, region, RATES, D, boundary=("periodic",) * 3, release=params,
                              payload_mol=1.0, ph=ph, release_classes=k)
    m.set_initial((np.diff(cdf) / g.voxel_volume_m3).reshape(g.shape_zyx))  # one carrier, 1 mol
    for _ in range(int(round(T_CROSS / dt))):
        m.step(dt)
    f, reg = m.fields(), region.reshape(-1)
    out = {(pool, r): float(f[f"released_{pool}"].reshape(-1)[reg == r].sum()) for pool in POOLS for r in (0, 1)}
    out["cleared"] = m.drug_ledger_dict()["cleared"]
    assert abs(m.drug_balance_error()) < ROUND_OFF
    return out


def _particles(plist, n=N_PARTICLES, dt=DT_PARTICLES, seed=3):
    """Particles (one carrier each, payload 1/N mol) through the same case; per-particle amounts.

    Every step: Brownian move (``step_particles``), state changes (``transition``), then
    ``release_step`` with the pH of the particle's voxel, once per parameter set on the same
    trajectories (the NumPy kernels, the oracles of the compiled ones: fastest at this size).
    The one-jump-per-step bias of the transitions (largest exit rate 3.6e-3 1/s, ``K Δt`` =
    0.007) is well below the standard errors (tests/carriers/test_particle_states.py).
    Returns one array (n, categories) per parameter set: the drug each particle released per
    (pool, region) and the drug it holds if drained.
    """
    g, region, ph = _cross_geometry()
    rs = np.random.default_rng(seed)
    x = (BLOB[0] + BLOB[1] * rs.standard_normal(n)) % BOX
    y, z = rs.random(n) * H_BASE, rs.random(n) * H_BASE
    ids = np.arange(n, dtype=np.int64)
    state = np.full(n, C.TISSUE, np.uint8)
    payload, weight = np.full(n, 1.0 / n), np.ones(n)
    clocks = [(np.zeros(n), np.zeros(n)) for _ in plist]
    amounts = [np.zeros((n, len(CATEGORIES))) for _ in plist]
    ph_flat, reg_flat = ph.reshape(-1), region.reshape(-1).astype(np.int64)
    column = np.full(len(C.NAMES), -1)
    column[[C.TISSUE, C.BOUND, C.INTERNALISED]] = (0, 2, 4)
    rows = np.arange(n)
    for step in range(int(round(T_CROSS / dt))):
        P.step_particles("numpy", x, y, z, ids, state, step, dt_s=dt, seed=seed, grid=g,
                         diffusivity_m2_per_s=D, periodic=(True, True, True))
        PS.transition("numpy", x, y, z, state, ids, step, dt_s=dt, seed=seed, grid=g, region=region,
                      rates_per_s=RATES)
        ix = np.minimum((x / H_BASE).astype(np.int64), reg_flat.size - 1)
        col = column[state]
        live = col >= 0
        col = col + reg_flat[ix]
        for params, (tau, frac), acc in zip(plist, clocks, amounts):
            rel = rk.release_step("numpy", tau, frac, payload, weight, state, ph_flat[ix], dt_s=dt, params=params)
            acc[rows[live], col[live]] += rel[live]
    for (_, frac), acc in zip(clocks, amounts):
        acc[:, -1] = np.where(state == C.CLEARED, payload * (1.0 - frac), 0.0)
    return amounts


@pytest.fixture(scope="module")
def particle_amounts():
    return dict(zip(CROSS_LAWS, _particles(list(CROSS_LAWS.values()))))


def _z_scores(amounts, cont, coarse, classes=None):
    n = amounts.shape[0]
    z = {}
    for i, key in enumerate(CATEGORIES):
        got = amounts[:, i].sum()
        se = math.sqrt(n) * amounts[:, i].std()
        d_h = cont[key] - coarse[key]
        d_k = 0.0 if classes is None else cont[key] - classes[key]
        z[key] = (got - cont[key]) / math.sqrt(se**2 + d_h**2 + d_k**2)
        print(key, f"particles {got:.5f} ± {se:.5f}, continuum {cont[key]:.5f}, Δ_h {d_h:+.5f}, "
                   f"Δ_K {d_k:+.5f}, z {z[key]:+.2f}")
    return z


def test_first_order_release_in_a_ph_field_matches_particles(particle_amounts):
    p = CROSS_LAWS["first_order"]
    z = _z_scores(particle_amounts["first_order"], _cross_continuum(p, 2, 5.0), _cross_continuum(p, 1, 10.0))
    assert max(abs(v) for v in z.values()) < K_SE, z


def test_weibull_release_in_a_ph_field_matches_particles(particle_amounts):
    """Weibull at ``K = 32`` (class error estimated by ``|c_16 − c_32|``, measured ≤ 0.004 of the
    dose per category, i.e. ≤ 2 % of a category)."""
    p = CROSS_LAWS["weibull"]
    fine = _cross_continuum(p, 2, 5.0, k=32)
    classes = _cross_continuum(p, 2, 5.0, k=16)
    assert max(abs(fine[k] - classes[k]) for k in CATEGORIES) < 0.01  # the stated class error
    z = _z_scores(particle_amounts["weibull"], fine, _cross_continuum(p, 1, 10.0, k=32), classes)
    assert max(abs(v) for v in z.values()) < K_SE, z


def test_cross_check_detects_a_wrong_ph_trigger(particle_amounts):
    # negative control: the same particles against a continuum whose trigger sits 0.2 lower
    p = rk.ReleaseParams.first_order(2.4e-3, burst_fraction=0.1, **{**CROSS_TRIGGER, "pka": 6.6})
    z = _z_scores(particle_amounts["first_order"], _cross_continuum(p, 2, 5.0), _cross_continuum(p, 1, 10.0))
    assert max(abs(v) for v in z.values()) > 2 * K_SE, z


# --------------------------------------------------------------------------------------------
# Ledger, transport of the drug, backends, checkpoints
# --------------------------------------------------------------------------------------------


def _busy(backend, params, scheme="explicit", dtype=np.float64, **kw):
    """Every transport term: regions, drift, exchange with a decaying plasma, lumen voxels,
    a fixed-value wall, a periodic and a no-flux axis; a pH field; plasma carriers whose clock runs."""
    g = Grid((12, 10, 8), 10e-6, (1e-6, -2e-6, 0.0))
    rs = np.random.default_rng(4)
    region = rs.integers(0, 3, g.shape_zyx).astype(np.uint8)
    fixed = np.zeros(g.shape_zyx, np.uint8)
    fixed[3:5, 4, :] = 1
    kw = {"plasma_clock_s": lambda t: 0.5 * t, **kw}
    m = ContinuumCarrierModel(backend, g, region, rs.random((3, 5)) * 1e-2, [3e-12, 2e-12, 1e-12],
                              velocity_m_per_s=(1e-7, -2e-8, 0.0),
                              exchange_per_s=rs.random(g.shape_zyx) * 1e-2,
                              plasma_per_m3=lambda t: 1e15 * math.exp(-t / 100.0), fixed=fixed,
                              boundary=("fixed", "periodic", "no_flux"),
                              boundary_value_per_m3=(3e14, 0.0, 0.0), dtype=dtype, scheme=scheme,
                              release=params, payload_mol=PAYLOAD, ph=6.0 + rs.random(g.shape_zyx), **kw)
    m.set_initial(gaussian_cell_averages(g, 1e6, (60e-6, 50e-6, 40e-6), 20e-6),
                  bound=np.full(g.shape_zyx, 1e14))
    return m


BUSY_LAWS = {
    "none": rk.ReleaseParams.none(),
    "first_order": rk.ReleaseParams.first_order(1e-2, burst_fraction=0.2, h_min=0.2),
    "weibull_burst_inside": rk.ReleaseParams.weibull(100.0, 1.5, burst_fraction=0.2, h_min=0.2,
                                                     burst_states=(C.INTERNALISED,)),
}


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
@pytest.mark.parametrize("law", sorted(BUSY_LAWS))
def test_drug_ledger_closes_to_round_off(law, scheme):
    m = _busy("numpy", BUSY_LAWS[law], scheme, release_classes=8)
    deposited = 0.0
    for _ in range(10):
        m.step(10.0)
        deposited += float(m.take_release_deposit().sum())
    d = m.drug_ledger_dict()
    assert set(DRUG_LEDGER_NAMES) <= set(d)
    # every transport term moves drug
    assert all(abs(d[k]) > 1e-17 for k in DRUG_LEDGER_NAMES[:7]), d
    assert abs(m.drug_balance_error()) < ROUND_OFF
    assert abs(m.mass_balance_error()) < ROUND_OFF
    assert sum(m.drug_amounts().values()) == pytest.approx(d["held"], rel=1e-13)
    assert m.drug_operator_loss == pytest.approx(d["cleared"] + d["internalised_free"], rel=1e-12)
    assert deposited == pytest.approx(d["released"], rel=1e-12, abs=1e-300)
    assert float(m.take_release_deposit().sum()) == 0.0
    f = m.fields()
    assert sum(float(f[f"released_{p}"].sum()) for p in POOLS) == pytest.approx(d["released"], rel=1e-12,
                                                                                abs=1e-300)
    if law == "none":
        # no release: the drug moves exactly as the carriers do
        assert d["released"] == 0.0
        for pool in POOLS:
            np.testing.assert_allclose(f[f"drug_{pool}"], PAYLOAD * f[pool], rtol=1e-12,
                                       atol=1e-14 * PAYLOAD * np.abs(f[pool]).max())
    else:
        assert d["released"] > 0.1 * d["held"]


def test_float32_fields_close_the_drug_ledger_to_float32_round_off():
    m = _busy("numpy", BUSY_LAWS["weibull_burst_inside"], dtype=np.float32, release_classes=8)
    for _ in range(10):
        m.step(10.0)
    assert m.fields()["drug_free"].dtype == np.float64  # summed in float64
    assert abs(m.drug_balance_error()) < 1e-5


def _assert_backends_agree(name_a, name_b, rtol):
    """Three steps of the busy model (Weibull, 4 classes, burst on internalisation) on two backends."""
    a = _busy(name_a, BUSY_LAWS["weibull_burst_inside"], release_classes=4)
    b = _busy(name_b, BUSY_LAWS["weibull_burst_inside"], release_classes=4)
    for _ in range(3):
        a.step(10.0)
        b.step(10.0)
    fa, fb = a.state_arrays(), b.state_arrays()
    for key in fa:
        np.testing.assert_allclose(fa[key], fb[key], rtol=rtol, atol=rtol * np.abs(fa[key]).max())
    np.testing.assert_allclose(a.drug_ledger, b.drug_ledger, rtol=rtol)
    assert abs(b.drug_balance_error()) < ROUND_OFF


def test_numpy_and_numba_agree():
    _assert_backends_agree("numpy", "numba", 1e-11)  # the operator's own agreement


@pytest.mark.gpu
def test_cupy_release_matches_numba():
    get_backend("cupy")
    _assert_backends_agree("numba", "cupy", 1e-9)  # as the carriers (test_continuum_vs_particles.py)


def test_checkpoint_round_trip_continues_identically():
    law = BUSY_LAWS["weibull_burst_inside"]
    a = _busy("numpy", law, release_classes=4)
    for _ in range(2):
        a.step(10.0)
    a.set_ph(6.3)
    b = _busy("numpy", law, release_classes=4)
    b.load_state(a.state_arrays(), a.state_attrs())
    for m in (a, b):
        for _ in range(2):
            m.step(10.0)
    sa, sb = a.state_arrays(), b.state_arrays()
    assert set(sa) == set(sb)
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key])
    np.testing.assert_array_equal(a.drug_ledger, b.drug_ledger)
    np.testing.assert_array_equal(a.take_release_deposit(), b.take_release_deposit())
    assert b.drug_balance_error() == a.drug_balance_error()
    assert "release: weibull, 4 clock class(es)" in repr(b)


# --------------------------------------------------------------------------------------------
# Burst
# --------------------------------------------------------------------------------------------


def _burst_model(burst_states, exchange=True):
    """Uniform tissue, no diffusion; internalisation; optional wall exchange with the plasma."""
    g = Grid((2, 2, 2), 10e-6)
    rates = np.array([[2e-3, 1e-3, 1e-3, 2e-3, 0.0]])
    p = rk.ReleaseParams.none(burst_fraction=0.3, burst_states=burst_states)
    m = ContinuumCarrierModel("numpy", g, np.zeros(g.shape_zyx, np.uint8), rates, 0.0,
                              boundary=("periodic",) * 3, release=p, payload_mol=PAYLOAD,
                              exchange_per_s=np.full(g.shape_zyx, 1e-3) if exchange else None,
                              plasma_per_m3=2e14)
    m.set_initial(np.full(g.shape_zyx, 1e15))
    return m


def test_burst_at_injection_happens_in_the_first_step_only():
    m = _burst_model(rk.LIVE_STATES, exchange=False)
    dose = m.drug_in_carriers()
    m.step(5.0)
    assert m.drug_ledger_dict()["released"] == pytest.approx(0.3 * dose, rel=1e-13)
    for _ in range(5):
        m.step(5.0)
    assert m.drug_ledger_dict()["released"] == pytest.approx(0.3 * dose, rel=1e-13)
    assert m._reserve_done


def test_burst_on_entering_the_tissue_releases_what_arrives():
    # plasma carriers have not burst (no VESSEL flag): each carrier that extravasates bursts at once
    m = _burst_model((C.TISSUE, C.BOUND, C.INTERNALISED, C.LODGED))
    for _ in range(10):
        m.step(5.0)
    d = m.drug_ledger_dict()
    entered_carriers = m.ledger_dict()["extravasated"]
    assert d["extravasated"] == pytest.approx(PAYLOAD * entered_carriers, rel=1e-13)
    assert d["released"] == pytest.approx(0.3 * PAYLOAD * (m.initial_total + entered_carriers), rel=1e-12)
    assert d["held"] == pytest.approx(0.7 * PAYLOAD * m.total(), rel=1e-12)


def test_burst_on_internalisation_follows_the_internalised_carriers():
    m = _burst_model((C.INTERNALISED,))
    for _ in range(10):
        m.step(5.0)
    d, a = m.drug_ledger_dict(), m.amounts()
    assert d["released_free"] == 0.0 and d["released_bound"] == 0.0
    assert d["released_internalised"] == pytest.approx(0.3 * PAYLOAD * a["internalised"], rel=1e-12)
    assert a["internalised"] > 0.01 * m.total()
    assert abs(m.drug_balance_error()) < ROUND_OFF


def test_plasma_payload_and_clock_set_what_enters():
    # plasma carriers have burst (VESSEL is a burst state); free carriers' clocks stand still here
    p = rk.ReleaseParams.weibull(100.0, 1.5, burst_fraction=0.2, factors={"tissue": 0.0})
    g = Grid((2, 2, 2), 10e-6)
    for kw in ({"plasma_payload_mol": 0.5 * PAYLOAD}, {}):
        m = ContinuumCarrierModel("numpy", g, np.zeros(g.shape_zyx, np.uint8), np.zeros((1, 5)), 0.0,
                                  boundary=("periodic",) * 3, release=p, payload_mol=PAYLOAD,
                                  exchange_per_s=np.full(g.shape_zyx, 1e-3), plasma_per_m3=1e15,
                                  plasma_clock_s=150.0, release_classes=8, **kw)
        m.set_initial(np.zeros(g.shape_zyx))
        m.step(1.0)
        per_carrier = m.drug_ledger_dict()["extravasated"] / m.ledger_dict()["extravasated"]
        want = 0.5 * PAYLOAD if kw else PAYLOAD * (1.0 - p.fraction(150.0))
        assert per_carrier == pytest.approx(want, rel=1e-13), kw
        held = m.state_arrays()["drug_in_carriers_free"].sum(axis=(1, 2, 3))
        cls = m.classes.index(150.0)
        assert 0 < cls < 7 and held[cls] > 0 and np.count_nonzero(held) == 1, held


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


def test_argument_errors_name_the_argument():
    g = Grid((2, 2, 2), 10e-6)
    reg = np.zeros(g.shape_zyx, np.uint8)
    p = rk.ReleaseParams.weibull(100.0, 1.5)

    def make(**kw):
        kw = {"release": p, "payload_mol": PAYLOAD, **kw}
        return ContinuumCarrierModel("numpy", g, reg, np.zeros((1, 5)), 0.0, **kw)

    with pytest.raises(ValueError, match="payload_mol .* is needed with release"):
        make(payload_mol=None)
    with pytest.raises(ValueError, match="payload_mol must be a finite number > 0"):
        make(payload_mol=-1.0)
    with pytest.raises(ValueError, match="release must be a ReleaseParams"):
        make(release="weibull")
    with pytest.raises(ValueError, match="payload_mol, ph given without release"):
        ContinuumCarrierModel("numpy", g, reg, np.zeros((1, 5)), 0.0, payload_mol=1.0, ph=7.0)
    with pytest.raises(ValueError, match="ph must be a finite float or a finite field of shape"):
        make(ph=np.full((3, 2, 2), 7.0))
    with pytest.raises(ValueError, match="ph must be finite"):
        make(ph=float("nan"))
    with pytest.raises(ValueError, match="ph_endosome must be a finite pH"):
        make(ph_endosome=float("inf"))
    with pytest.raises(ValueError, match="release_classes must be an integer >= 1"):
        make(release_classes=0)
    with pytest.raises(ValueError, match="release_classes must be an integer >= 1"):
        make(release_classes=2.5)
    with pytest.raises(ValueError, match="release_clock_edges_s must be finite, > 0"):
        make(release_clock_edges_s=[20.0, 10.0])
    with pytest.raises(ValueError, match=r"release_classes \(5\) must be one more than"):
        make(release_classes=5, release_clock_edges_s=[10.0, 20.0])
    with pytest.raises(ValueError, match="plasma_clock_s must be a finite number >= 0"):
        make(plasma_clock_s=-1.0)
    with pytest.raises(ValueError, match="plasma_payload_mol must be a finite number >= 0"):
        make(plasma_payload_mol=float("nan"))
    m = make(plasma_payload_mol=2.0 * PAYLOAD, plasma_per_m3=1.0)
    with pytest.raises(ValueError, match="plasma_payload_mol must lie in"):
        m.step(1.0)
    m = make(plasma_clock_s=lambda t: -t, plasma_per_m3=1.0)
    with pytest.raises(ValueError, match="plasma_clock_s must be finite and >= 0"):
        m.step(1.0)
    with pytest.raises(ValueError, match="set_ph needs a model with release"):
        ContinuumCarrierModel("numpy", g, reg, np.zeros((1, 5)), 0.0).set_ph(7.0)
