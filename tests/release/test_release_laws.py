"""Release laws, the Hill pH trigger, the scenario models and the continuum release (PHYSICS.md §7).

Tolerances come from the numerics: the closed-form laws are compared with the same formula
written independently (1e-15 absolute: a few ulp of values ≤ 1); the Crank series with a
20 000-term direct sum (1e-12: the direct sum's own cancellation for small F); the tabulated
Crank points (x = Dτ/a² given to 4 significant digits) to 1e-4 in F and to their printed digits
in x; the Hill factors to the 3 printed decimals.
"""

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.optimize import brentq

from nanosim.kernels import release as R
from nanosim.scenario import release as S

TAUS = np.concatenate([[0.0, 1e-9], np.logspace(-3, 7, 41)])


def _forms(law, p0, p1, tau):
    """F(τ) from the Python, CPU-compiled and NumPy forms."""
    py = np.array([R.fraction_released.py(law, p0, p1, float(t)) for t in tau])
    cpu = np.array([R.fraction_released.cpu(law, p0, p1, float(t)) for t in tau])
    return py, cpu, R.numpy_fraction_released(law, p0, p1, tau)


def _check_law(law, p0, p1, want, atol=1e-15):
    for got in _forms(law, p0, p1, TAUS):
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)
        assert np.all((got >= 0) & (got <= 1)) and np.all(np.diff(got) >= 0)


@pytest.mark.parametrize("k", [1e-6, 3.2e-4, 0.5])
def test_first_order(k):
    _check_law(R.LAW_FIRST_ORDER, k, 0.0, 1.0 - np.exp(-k * TAUS))


@pytest.mark.parametrize("scale,b", [(3600.0, 0.5), (1e4, 1.0), (250.0, 2.5)])
def test_weibull(scale, b):
    _check_law(R.LAW_WEIBULL, scale, b, 1.0 - np.exp(-((TAUS / scale) ** b)))
    if b == 1.0:  # b = 1 is first order with k = 1/τ_d
        np.testing.assert_allclose(R.numpy_fraction_released("weibull", scale, 1.0, TAUS),
                                   R.numpy_fraction_released("first_order", 1 / scale, 0.0, TAUS),
                                   rtol=0, atol=1e-15)


@pytest.mark.parametrize("k_h", [1e-4, 3e-3])
def test_higuchi(k_h):
    _check_law(R.LAW_HIGUCHI, k_h, 0.0, np.minimum(1.0, k_h * np.sqrt(TAUS)))
    assert R.fraction_released.py(R.LAW_HIGUCHI, k_h, 0.0, 1.0 / k_h**2 * 1.0001) == 1.0


@pytest.mark.parametrize("k,n", [(1e-3, 0.43), (2e-5, 0.85), (1e-2, 0.3)])
def test_korsmeyer_peppas(k, n):
    _check_law(R.LAW_KORSMEYER_PEPPAS, k, n, np.minimum(1.0, k * TAUS**n), atol=2e-15)


def test_none_releases_nothing():
    for got in _forms(R.LAW_NONE, 1.0, 1.0, TAUS):
        assert not got.any()


def _crank_direct(x, terms=20_000):
    n2 = np.arange(1, terms + 1, dtype=np.float64) ** 2
    return 1.0 - 6.0 / math.pi**2 * float(np.sum(np.exp(-n2 * math.pi**2 * x) / n2))


def test_crank_sphere_tabulated_points():
    f = lambda x: R.fraction_released.py(R.LAW_SPHERE_DIFFUSION, 1.0, 0.0, x)  # D/a² = 1/s
    assert abs(f(0.03055) - 0.5) < 1e-4 and abs(f(0.1830) - 0.9) < 1e-4
    # and the other way: the x of F = 0.5 and 0.9 round to the printed 0.03055 and 0.1830
    assert round(brentq(lambda x: f(x) - 0.5, 0.01, 0.1, xtol=1e-14), 5) == 0.03055
    assert round(brentq(lambda x: f(x) - 0.9, 0.1, 0.3, xtol=1e-14), 4) == 0.1830


def test_crank_sphere_against_the_direct_series_and_limits():
    xs = np.concatenate([np.logspace(-6, 1, 57), [R.SPHERE_SWITCH]])
    want = np.array([_crank_direct(x) for x in xs])
    for got in _forms(R.LAW_SPHERE_DIFFUSION, 1.0, 0.0, xs):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # short-time asymptote 6√(x/π) − 3x (the ierfc terms vanish) and the limit 1
    for x in (1e-8, 1e-5, 1e-3):
        assert R.sphere_fraction_short.py(x) == pytest.approx(6 * math.sqrt(x / math.pi) - 3 * x, abs=1e-15)
    assert R.fraction_released.py(R.LAW_SPHERE_DIFFUSION, 1.0, 0.0, 50.0) == 1.0
    # D/a² scales time: p0 = D/a²
    p = R.ReleaseParams.sphere_diffusion(2e-16, 100e-9)
    assert p.p0 == pytest.approx(2e-16 / 1e-14)
    assert R.fraction_released.py(p.law, p.p0, 0.0, 0.03055 / p.p0) == pytest.approx(0.5, abs=1e-4)


def test_crank_series_switch_is_continuous():
    sw = R.SPHERE_SWITCH
    # both branches are series of the same function, each converged on its side of the switch
    # and beyond it (long: 8 terms, error < e^(-π²·0.05·81) ≈ 4e-18 for x ≥ 0.05; short: 3 ierfc
    # terms, error < e^(-16/0.4) for x ≤ 0.4): they agree around the switch
    for x in np.linspace(0.05, 0.4, 36):
        assert abs(R.sphere_fraction_short.py(x) - R.sphere_fraction_long.py(x)) < 2e-15, x
    below = R.fraction_released.py(R.LAW_SPHERE_DIFFUSION, 1.0, 0.0, math.nextafter(sw, 0.0))
    at = R.fraction_released.py(R.LAW_SPHERE_DIFFUSION, 1.0, 0.0, sw)
    assert 0.0 <= at - below < 2e-15
    # the CPU form switches at the same place with the same values
    for x in (math.nextafter(sw, 0.0), sw):
        assert R.fraction_released.cpu(R.LAW_SPHERE_DIFFUSION, 1.0, 0.0, x) == pytest.approx(
            R.fraction_released.py(R.LAW_SPHERE_DIFFUSION, 1.0, 0.0, x), abs=4e-16)


# PHYSICS.md §7: fraction of k_max at pH 7.4, 6.8, 6.5, 5.5 (k_min = 0)
HILL_TABLE = {(6.5, 1.0): (0.112, 0.334, 0.500, 0.909),
              (6.5, 2.0): (0.016, 0.201, 0.500, 0.990),
              (6.0, 1.0): (0.038, 0.137, 0.240, 0.760)}
HILL_PH = (7.4, 6.8, 6.5, 5.5)


@pytest.mark.parametrize("pka,n", list(HILL_TABLE))
def test_hill_table_of_physics_md(pka, n):
    for ph, want in zip(HILL_PH, HILL_TABLE[(pka, n)]):
        for h in (R.ph_factor.py(ph, pka, n, 0.0), R.ph_factor.cpu(ph, pka, n, 0.0),
                  float(R.numpy_ph_factor(ph, pka, n, 0.0)),
                  S.PhTrigger(pka=pka, hill_n=n, min_rate_fraction=1e-300).factor(ph)):
            assert round(h, 3) == want, (pka, n, ph, h)


def test_hill_limits_and_k_min():
    h_min = 0.04
    k = lambda ph: R.ph_factor.py(ph, 6.5, 2.0, h_min)
    assert k(3.0) == pytest.approx(1.0, abs=1e-6) and k(10.0) == pytest.approx(h_min, abs=1e-6)
    # k(pH) = k_min + (k_max − k_min)/(1 + 10^(n(pH − pKa))) with k = k_max h
    k_max = 2e-4
    for ph in HILL_PH:
        want = h_min * k_max + (k_max - h_min * k_max) / (1 + 10 ** (2.0 * (ph - 6.5)))
        assert k_max * k(ph) == pytest.approx(want, rel=1e-14)
    # no trigger: exactly 1; extreme exponents neither overflow nor leave [h_min, 1]
    assert R.ph_factor.py(9.0, 6.5, 1.0, 1.0) == 1.0
    assert R.ph_factor.py(14.0, 0.0, 10.0, h_min) == h_min
    assert R.ph_factor.py(0.0, 14.0, 10.0, h_min) == 1.0
    assert float(R.numpy_ph_factor(np.array([14.0]), 0.0, 10.0, h_min)[0]) == h_min


# --------------------------------------------------------------------------------------------
# Scenario models
# --------------------------------------------------------------------------------------------


def test_chen_2015_example_is_90_percent_at_72_h():
    rel = S.chen_2015_plga_microspheres()
    assert rel.law.rate_per_s == pytest.approx(math.log(10) / (72 * 3600), rel=1e-15)
    assert rel.law.rate_per_s * 3600 == pytest.approx(0.032, abs=5e-4)  # 0.032 1/h of PHYSICS.md §7
    p = rel.kernel_params()
    assert p.fraction(72 * 3600.0) == pytest.approx(0.9, abs=1e-14)
    assert "first order" in rel.describe() and "\n" not in rel.describe()
    # the documented TOML form
    toml_like = {"law": {"kind": "first_order", "rate_per_s": "0.032 1/h"}}
    assert S.Release.model_validate(toml_like).law.rate_per_s == pytest.approx(0.032 / 3600)


def test_scenario_laws_map_to_kernel_parameters():
    T = 48 * 3600.0
    cases = [({"kind": "higuchi", "full_release_time_s": "48 h"}, T, 1.0),
             ({"kind": "korsmeyer_peppas", "exponent": 0.85, "full_release_time_s": "48 h"},
              T * 0.6 ** (1 / 0.85), 0.6),
             ({"kind": "weibull", "scale_time_s": "48 h", "shape": 2.0}, T, 1 - math.exp(-1)),
             ({"kind": "sphere_diffusion", "diffusivity_m2_per_s": "1e-18 m^2/s", "radius_m": "1 um"},
              0.1830 * 1e-12 / 1e-18, 0.9),
             ({"kind": "first_order", "rate_per_s": "0.1 1/h"}, 3600 * math.log(2) / 0.1, 0.5)]
    for law, tau, want in cases:
        rel = S.Release(law=law)
        p = rel.kernel_params()
        assert p.law == R.LAW_NAMES.index(law["kind"])
        assert p.fraction(tau) == pytest.approx(want, abs=1e-4), law
        assert "\n" not in rel.describe()
    assert S.Release(law={"kind": "none"}).kernel_params().fraction(1e9) == 0.0
    assert S.SphereDiffusionRelease(diffusivity_m2_per_s=1e-18, radius_m=1e-6).half_time_s() == \
        pytest.approx(0.03055e6)


def test_scenario_release_options_reach_the_kernel():
    rel = S.Release.model_validate({
        "burst_fraction": "15 %", "burst_on": "tissue",
        "ph_trigger": {"pka": 6.2, "hill_n": 2, "min_rate_fraction": 0.05},
        "compartment_factors": {"blood": 0.1, "internalised": 3.0},
        "blood_ph": 7.35, "endosomal_ph": 5.0})
    p = rel.kernel_params(tissue_ph=6.9)
    assert (p.burst_fraction, p.pka, p.hill_n, p.h_min) == (0.15, 6.2, 2.0, 0.05)
    assert p.burst_states == S.BURST_STATES["tissue"]
    speed, burst, ph = p.tables(has_ph_local=False)
    from nanosim.kernels import compartments as C

    assert speed[C.VESSEL] == 0.1 and speed[C.INTERNALISED] == 3.0 and speed[C.TISSUE] == 1.0
    assert speed[C.INACTIVE] == speed[C.EXITED] == 0.0
    assert burst[C.VESSEL] == 0.0 and burst[C.TISSUE] == burst[C.LODGED] == 1.0
    assert (ph[C.VESSEL], ph[C.INTERNALISED], ph[C.TISSUE]) == (7.35, 5.0, 6.9)
    assert np.isnan(p.tables(has_ph_local=True)[2][C.BOUND])
    trig = rel.ph_trigger
    assert trig.fold_change() == pytest.approx(trig.factor(5.5) / trig.factor(7.4))
    assert 5 <= S.PhTrigger().fold_change() <= 50  # the default lies in the range to scan
    text = rel.describe()
    assert "burst 15 %" in text and "pKa 6.2" in text and "blood 0.1" in text and "\n" not in text


@pytest.mark.parametrize("bad", [{"burst_fraction": 1.0}, {"law": {"kind": "weibull", "shape": 0}},
                                 {"law": {"kind": "sphere_diffusion", "radius_m": "1 um"}},
                                 {"ph_trigger": {"min_rate_fraction": 0}}, {"endosomal_ph": 15},
                                 {"compartment_factors": {"blood": -1}}, {"law": {"kind": "zero"}},
                                 {"burst_on": "never"}, {"extra": 1}])
def test_scenario_refuses_bad_values(bad):
    with pytest.raises(ValidationError):
        S.Release.model_validate(bad)


def test_release_params_refuse_bad_values():
    with pytest.raises(ValueError, match="unknown release law"):
        R.ReleaseParams("zero_order")
    with pytest.raises(ValueError, match="burst_fraction"):
        R.ReleaseParams.first_order(1e-3, burst_fraction=1.0)
    with pytest.raises(ValueError, match="h_min"):
        R.ReleaseParams.first_order(1e-3, h_min=0.0)
    with pytest.raises(ValueError, match="exponent"):
        R.ReleaseParams.korsmeyer_peppas(1e-3, 0.0)
    with pytest.raises(ValueError, match="time scale"):
        R.ReleaseParams.weibull(0.0, 1.0)
    with pytest.raises(ValueError, match="unknown compartment"):
        R.ReleaseParams.first_order(1e-3, factors={"blood": 1.0})
    with pytest.raises(ValueError, match="burst_states"):
        R.ReleaseParams.first_order(1e-3, burst_states=(0,))
    with pytest.raises(ValueError, match="finite"):
        R.ReleaseParams.first_order(float("nan"))


# --------------------------------------------------------------------------------------------
# Continuum (finite-volume) first-order release
# --------------------------------------------------------------------------------------------


def test_continuum_first_order_is_exact_and_conserves_drug():
    rs = np.random.default_rng(3)
    ph1, ph2 = 7.0 + 0.4 * rs.random((3, 4, 5)), 5.5 + 0.5 * rs.random((3, 4, 5))
    m0 = rs.random((3, 4, 5))
    kw = dict(rate_per_s=3e-5, pka=6.3, hill_n=1.5, h_min=0.02, factor=0.8)
    k1 = R.first_order_rate_map(ph1, **kw)
    np.testing.assert_allclose(k1, 3e-5 * 0.8 * np.vectorize(R.ph_factor.py)(ph1, 6.3, 1.5, 0.02),
                               rtol=1e-14)
    m = m0.copy()
    released = np.zeros_like(m)
    t1, t2 = 4000.0, 10000.0
    for dt, ph in [(1000.0, ph1)] * 4 + [(500.0, ph2)] * 6 + [(3000.0, ph2)]:
        released += R.continuum_first_order_release(m, ph, dt_s=dt, **kw)
    k2 = R.first_order_rate_map(ph2, **kw)
    want = m0 * np.exp(-k1 * t1 - k2 * (t2 - t1))
    np.testing.assert_allclose(m, want, rtol=1e-13)
    np.testing.assert_allclose(m + released, m0, rtol=1e-14)
    # a constant pH (the internalised pool at endosomal pH) works as a scalar
    m = m0.copy()
    r = R.continuum_first_order_release(m, 5.5, dt_s=100.0, **kw)
    np.testing.assert_allclose(r, m0 * -np.expm1(-R.first_order_rate_map(5.5, **kw) * 100.0), rtol=1e-14)


def test_continuum_matches_particle_clocks_in_a_voxel():
    # particles that stay in one voxel release exactly what the voxel's M loses
    params = R.ReleaseParams.first_order(2e-4, pka=6.5, hill_n=1.0, h_min=0.1,
                                         factors={"tissue": 0.7})
    n = 5
    ph = np.linspace(5.6, 7.3, n)
    tau, frac = np.zeros(n), np.zeros(n)
    pay, w = np.full(n, 2e-18), np.full(n, 1e6)
    state = np.full(n, 1, np.uint8)  # TISSUE
    m = pay * w
    tot_p, tot_c = np.zeros(n), np.zeros(n)
    for step in range(20):
        phs = ph if step < 8 else ph[::-1].copy()
        tot_p += R.numba_release_step(tau, frac, pay, w, state, phs, dt_s=300.0, params=params)
        tot_c += R.continuum_first_order_release(m, phs, dt_s=300.0, rate_per_s=2e-4, pka=6.5,
                                                 hill_n=1.0, h_min=0.1, factor=0.7)
    np.testing.assert_allclose(tot_p, tot_c, rtol=1e-13)
