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
