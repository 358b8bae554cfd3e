"""Drug inside the body's circulating carriers with first-order release (nanosim.carriers.payload)."""

import math

import pytest

from nanosim.carriers.payload import CirculatingPayload
from nanosim.carriers.systemic import SystemicPK


def _pk():
    # mouse PEG liposome curve of the preset: 2 h (20 %) and 24 h, plasma 1 mL, 80 % to the liver
    return SystemicPK.from_half_lives(2 * 3600.0, 24 * 3600.0, 0.2, 1e-6, liver_uptake_fraction=0.8)


def test_bolus_payload_follows_the_carriers_times_exp_minus_kt():
    """Every carrier releases at the same rate wherever it circulates, so after a bolus the drug
    in the plasma's carriers is d·N_c(t)·e^{−kt} and in the peripheral ones d·N_p(t)·e^{−kt}; the
    drug leaving with eliminated carriers is k10 d ∫ N_c e^{−kt}, whose integral is analytic from
    the biexponential N_c(t) = D V (A e^{−αt} + B e^{−βt}). Both sides are exact: the tolerance is
    round-off accumulated over the steps."""
    pk = _pk()
    par = pk.parameters()
    k = math.log(2) / (6 * 3600.0)
    pay = CirculatingPayload(par["k12_per_s"], par["k21_per_s"], par["k10_per_s"], k)
    dose, d = 1e13, 1.1e-20
    pk.bolus(dose)
    pay.bolus(dose * d)
    t = 0.0
    for dt in [60.0] * 100 + [600.0] * 100 + [1800.0] * 40:
        pk.step(dt)
        pay.step(dt)
        t += dt
        decay = math.exp(-k * t)
        assert pay.central == pytest.approx(d * pk.central * decay, rel=1e-11)
        assert pay.peripheral == pytest.approx(d * pk.peripheral * decay, rel=1e-11)
        assert pay.ledger_error() < 1e-14
    a, alpha, b, beta = pk.biexponential()
    v = par["volume_m3"]
    integral = dose * v * (a * -math.expm1(-(alpha + k) * t) / (alpha + k) + b * -math.expm1(-(beta + k) * t) / (beta + k))
    assert pay.eliminated == pytest.approx(par["k10_per_s"] * d * integral, rel=1e-11)


@pytest.mark.parametrize("infusion_s", [0.0, 120.0, 3600.0])
def test_an_infusion_releases_the_same_payload_as_a_bolus(infusion_s):
    """One compartment, release k = 1/min, elimination t½ 20 h: whatever the infusion, the
    released share of the payload is k/(k + k10) once the carriers are empty (6 h later:
    e^{−(k+k10)·6 h} ≈ e^{−360}). Exact integration: round-off tolerance."""
    k10, k = math.log(2) / (20 * 3600.0), 1.0 / 60.0
    pay = CirculatingPayload(0.0, 0.0, k10, k)
    given = 1e-9
    if infusion_s == 0.0:
        pay.bolus(given)
    released = 0.0
    t, dt = 0.0, 30.0
    while t < 6 * 3600.0 + infusion_s:
        covered = max(0.0, min(dt, infusion_s - t))
        rate = given / infusion_s if infusion_s else 0.0
        if 0.0 < covered < dt:
            released += pay.step(covered, rate) + pay.step(dt - covered)
        else:
            released += pay.step(dt, rate if covered else 0.0)
        t += dt
    assert released == pytest.approx(given * k / (k + k10), rel=1e-12)
    assert pay.released == pytest.approx(released, rel=1e-14)
    assert pay.ledger_error() < 1e-14


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="release_rate_per_s"):
        CirculatingPayload(0.0, 0.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="k10_per_s"):
        CirculatingPayload(0.0, 0.0, float("nan"), 1.0)


def test_liver_macrophages_hold_and_release_their_carriers_drug():
    """One compartment, bolus D: L_c = D e^{−a t} (a = k10 + k); macrophages take the share f of
    the eliminated carriers and release at k_m, so M = f k10 D (e^{−a t} − e^{−k_m t})/(k_m − a)
    and R_m = (taken up) − M with taken up = f k10 D (1 − e^{−a t})/a; cleared otherwise is the
    (1 − f) share. All exact: round-off tolerance."""
    k10, k, km, f = math.log(2) / (10 * 3600.0), math.log(2) / (30 * 3600.0), math.log(2) / (3 * 3600.0), 0.8
    pay = CirculatingPayload(0.0, 0.0, k10, k, liver_uptake_fraction=f, macrophage_release_rate_per_s=km)
    dose = 2e-9
    pay.bolus(dose)
    a, t = k10 + k, 0.0
    for dt in [300.0] * 50 + [3600.0] * 40:
        pay.step(dt)
        t += dt
        m = f * k10 * dose * (math.exp(-a * t) - math.exp(-km * t)) / (km - a)
        assert pay.macrophages == pytest.approx(m, rel=1e-11)
        taken_up = f * k10 * dose * -math.expm1(-a * t) / a
        assert pay.released_in_macrophages == pytest.approx(taken_up - m, rel=1e-11)
        assert pay.cleared == pytest.approx((1 - f) / f * taken_up, rel=1e-11)
        assert pay.ledger_error() < 1e-14


def test_a_time_shaped_law_after_a_bolus_follows_the_shared_clock():
    """After a bolus every circulating carrier has the same clock τ = t, so its drug is
    d·N(t)·S(τ) for any law (here Weibull): the mean hazard held over each step,
    −ln(S(τ₁)/S(τ₀))/Δt, reproduces it at every step end to round-off, on a two-compartment PK."""
    from nanosim.carriers.payload import law_survival, mean_hazard
    from nanosim.kernels import release as rk

    pk = _pk()
    par = pk.parameters()
    law, p0, p1 = rk.LAW_WEIBULL, 5 * 3600.0, 0.7
    pay = CirculatingPayload(par["k12_per_s"], par["k21_per_s"], par["k10_per_s"], 0.0)
    dose, d = 1e13, 1.1e-20
    pk.bolus(dose)
    pay.bolus(dose * d)
    t = 0.0
    for dt in [60.0] * 60 + [1800.0] * 60:
        pay.step(dt, release_rate_per_s=mean_hazard(law, p0, p1, t, dt, dt))
        pk.step(dt)
        t += dt
        s = law_survival(law, p0, p1, t)
        assert pay.central == pytest.approx(d * pk.central * s, rel=1e-11)
        assert pay.peripheral == pytest.approx(d * pk.peripheral * s, rel=1e-11)
        assert pay.ledger_error() < 1e-14


@pytest.mark.parametrize("law, p0, p1", [(1, 1e-4, 0.0), (2, 3e-3, 0.0), (3, 2e-3, 0.6), (4, 3600.0, 0.8),
                                         (5, 2e-5, 0.0)])
def test_clock_at_survival_inverts_the_law(law, p0, p1):
    from nanosim.carriers.payload import clock_at_survival, law_survival

    for target in (0.99, 0.7, 0.41, 0.05):
        tau = clock_at_survival(law, p0, p1, target)
        assert law_survival(law, p0, p1, tau) == pytest.approx(target, abs=1e-12)
    assert clock_at_survival(law, p0, p1, 1.0) == 0.0


def test_bad_macrophage_parameters_are_refused():
    with pytest.raises(ValueError, match="liver_uptake_fraction"):
        CirculatingPayload(0.0, 0.0, 1e-5, 1e-5, liver_uptake_fraction=1.5)
    with pytest.raises(ValueError, match="macrophage_release_rate_per_s"):
        CirculatingPayload(0.0, 0.0, 1e-5, 1e-5, macrophage_release_rate_per_s=-1.0)
