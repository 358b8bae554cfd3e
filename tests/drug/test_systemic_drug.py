"""Systemic PK of free sorafenib (nanosim.drug.systemic) and its scenario models, PHYSICS.md §8, §10.

References are analytic: the Bateman function, its peak time, superposition of repeated doses,
the steady state, AUC = F·D/CL, infusion plateaus, and for the general two-compartment case with
a gut depot the exponential of the augmented rate matrix summed as a Taylor series in 80-digit
decimals. Unless said otherwise tolerances follow from round-off: each exact piece is right to a
few ulp (≈ 1e-15 relative) and the system is contractive, so N steps stay within about N·1e-15;
1e-12 covers the ≤ 10³ steps used against references.
"""

import doctest
import json
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

from nanosim.drug import systemic as S
from nanosim.drug.binding import human_plasma_binding
from nanosim.drug.systemic import (SystemicDrugPK, _exp_dd, absorption_rate_from_t_max, build_systemic_drug, dose_mol,
                                   oral_t_max, sorafenib_pk)
from nanosim.scenario import drug_pk as scenario_drug_pk
from nanosim.scenario.drug_pk import DrugPK, OralRoute, PlasmaProteinBinding

H = 3600.0
LN2 = math.log(2.0)
T_HALF = 35 * H
K_EL = LN2 / T_HALF
V = 0.1765  # m³
F = 0.43


@pytest.fixture
def rng():
    return np.random.default_rng(20240612)


def one_compartment(ka_per_h=1.45, **kw):
    return SystemicDrugPK(K_EL, V, absorption_rate_per_s=ka_per_h / H, bioavailability=F, **kw)


def bateman(t, dose, ka, k=K_EL, f=F, v=V):
    """C(t) = F D k_a/(V (k_a − k)) (e^(−k t) − e^(−k_a t)), without cancellation; 0 before the dose."""
    t = np.asarray(t, float)
    tt = np.maximum(t, 0.0)
    if ka == k:
        c = f * dose * k * tt * np.exp(-k * tt) / v
    else:
        c = f * dose * ka / (v * (ka - k)) * np.exp(-min(k, ka) * tt) * -np.expm1(-abs(ka - k) * tt)
    return np.where(t > 0, c, 0.0)


def random_steps(rng, total, low, high):
    steps = []
    while sum(steps) < total:
        steps.append(float(rng.uniform(low, high)))
    return steps


def _reference(pk, g, x1, x2, rate, t):
    """Exact (to ~1e-60) gut, central, peripheral and ∫central dt after t, by exp of the 5×5
    augmented matrix on (g, x1, x2, R, ∫x1), Taylor series in 80-digit decimals."""
    with localcontext() as ctx:
        ctx.prec = 80
        ka, k10, k12, k21 = (Decimal(v) for v in (pk.absorption_rate_per_s, pk.k10_per_s, pk.k12_per_s, pk.k21_per_s))
        tt = Decimal(t)
        a = [[-ka, 0, 0, 0, 0], [ka, -(k10 + k12), k21, 1, 0], [0, k12, -k21, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]
        a = [[Decimal(v) * tt for v in row] for row in a]
        y = [Decimal(v) for v in (g, x1, x2, rate, 0.0)]
        term, total = y[:], y[:]
        for n in range(1, 600):
            term = [sum(a[i][j] * term[j] for j in range(5)) / n for i in range(5)]
            total = [s + v for s, v in zip(total, term)]
            if n > 30 and max(abs(v) for v in term) < Decimal(10) ** -70 * max(abs(v) for v in total):
                break
        return float(total[0]), float(total[1]), float(total[2]), float(total[4])


# --------------------------------------------------------------------------------------------
# pieces


def test_doctests():
    for module in (S, scenario_drug_pk):
        assert doctest.testmod(module).failed == 0


def test_exp_divided_differences_against_decimal(rng):
    def ref(points):
        with localcontext() as ctx:
            ctx.prec = 120
            z = sorted(Decimal(float(p)) for p in points)

            def dd(p):
                return p[0].exp() if len(p) == 1 else (dd(p[1:]) - dd(p[:-1])) / (p[-1] - p[0])
            return float(dd(z))

    for _ in range(300):
        n = int(rng.integers(2, 5))
        z = -rng.uniform(0, 40) - 10 ** rng.uniform(-3, 1.5) * rng.random(n)
        if rng.random() < 0.3:
            z[1] = z[0] + 1e-9 * rng.random()  # near-coincident points
        assert _exp_dd(*z) == pytest.approx(ref(z), rel=1e-14)
    a = -3.7
    assert _exp_dd(a, a) == pytest.approx(math.exp(a), rel=1e-15)
    assert _exp_dd(a, a, a) == pytest.approx(math.exp(a) / 2, rel=1e-15)
    assert _exp_dd(0.0, a, a, a) == pytest.approx((math.exp(a) * (a * a - 2 * a + 2) - 2) / (2 * a**3), rel=1e-14)


def test_dose_conversions():
    assert dose_mol(dose_mg=400.0) == pytest.approx(400e-6 / 0.4648, rel=1e-15)
    assert dose_mol(dose_mg_per_kg=10.0, body_mass_kg=0.02) == pytest.approx(0.2e-6 / 0.4648, rel=1e-15)
    with pytest.raises(ValueError, match="exactly one of dose_mg and dose_mg_per_kg"):
        dose_mol(dose_mg=1.0, dose_mg_per_kg=1.0, body_mass_kg=1.0)
    with pytest.raises(ValueError, match="body_mass_kg"):
        dose_mol(dose_mg_per_kg=1.0)


# --------------------------------------------------------------------------------------------
# oral dosing against analytic curves


@pytest.mark.parametrize("ka_per_h", [1.45, 0.3, K_EL * H, K_EL * H * (1 + 1e-9), 30.0])
def test_single_oral_dose_is_bateman_at_any_step_split(rng, ka_per_h):
    dose = 1e-3
    ka = ka_per_h / H
    for low, high in ((1.0, 600.0), (600.0, 10 * H), (5 * H, 40 * H)):
        pk = one_compartment(ka_per_h)
        pk.oral_dose(dose)
        times, conc = [], []
        for dt in random_steps(rng, 6 * 24 * H, low, high)[:400]:
            pk.step(dt)
            times.append(pk.time_s)
            conc.append(pk.plasma_concentration())
        np.testing.assert_allclose(conc, bateman(times, dose, ka), rtol=1e-12, atol=0)
        assert pk.ledger_error() < 1e-15


def test_lag_time_shifts_the_curve():
    pk = one_compartment()
    pk.oral_doses(1e-3, interval_s=H, n_doses=1, lag_s=1234.5)
    times, conc = [], []
    for _ in range(48):
        pk.step(1800.0)
        times.append(pk.time_s)
        conc.append(pk.plasma_concentration())
    np.testing.assert_allclose(conc, bateman(np.array(times) - 1234.5, 1e-3, 1.45 / H), rtol=1e-12, atol=1e-300)


def test_t_max_from_derived_absorption_rate():
    ka = absorption_rate_from_t_max(3 * H, K_EL)
    assert ka * H == pytest.approx(1.4512, abs=1e-4)
    assert oral_t_max(ka, K_EL) == pytest.approx(3 * H, rel=1e-13)
    assert math.log(ka / K_EL) / (ka - K_EL) == pytest.approx(3 * H, rel=1e-13)
    # flip-flop: t_max beyond 1/k_el needs k_a < k_el; t_max = 1/k_el needs k_a = k_el
    slow = absorption_rate_from_t_max(2 / K_EL, K_EL)
    assert slow < K_EL and oral_t_max(slow, K_EL) == pytest.approx(2 / K_EL, rel=1e-13)
    assert absorption_rate_from_t_max(1 / K_EL, K_EL) == pytest.approx(K_EL, rel=1e-12)
    # the model finds the peak inside a step: hourly steps, peak at 3 h exactly, C_max = Bateman(3 h).
    # The peak time comes from Brent's method on the sign of dC/dt (xtol 1e-12 of the step);
    # 1e-9 relative is a loose bound on it.
    pk = SystemicDrugPK(K_EL, V, absorption_rate_per_s=ka, bioavailability=F)
    pk.oral_dose(1e-3)
    for _ in range(7):
        pk.step(1700.0)
    assert pk.t_c_max_s == pytest.approx(3 * H, rel=1e-9)
    assert pk.c_max_mol_per_m3 == pytest.approx(float(bateman(3 * H, 1e-3, ka)), rel=1e-13)
    assert pk.unbound_c_max_mol_per_m3() == pytest.approx(
        human_plasma_binding().unbound_concentration(pk.c_max_mol_per_m3), rel=1e-15)


def test_repeated_dosing_superposition_and_steady_state(rng):
    dose, tau, n = 1e-3, 12 * H, 60
    ka = 1.45 / H
    pk = one_compartment()
    pk.oral_doses(dose, interval_s=tau, n_doses=n)
    troughs = []
    for _ in range(n):
        for dt in (1000.0, 3 * H - 1000.0, tau - 3 * H):
            pk.step(dt)
        troughs.append(pk.plasma_concentration())  # just before the next dose
    # superposition of the doses given so far
    for i in (0, 9, n - 1):
        t = (i + 1) * tau
        expected = sum(float(bateman(t - j * tau, dose, ka)) for j in range(i + 1))
        assert troughs[i] == pytest.approx(expected, rel=1e-12)
    # steady state: trough C_ss(τ) = A (e^(−kτ)/(1 − e^(−kτ)) − e^(−k_a τ)/(1 − e^(−k_a τ))), reached
    # from below with the remainder A e^(−kτ) e^(−nkτ)/(1 − e^(−kτ)) (the absorption term's is smaller)
    a = F * dose * ka / (V * (ka - K_EL))
    ek, ea = math.exp(-K_EL * tau), math.exp(-ka * tau)
    trough_ss = a * (ek / (1 - ek) - ea / (1 - ea))
    remainder = a * ek * math.exp(-n * K_EL * tau) / (1 - ek)
    assert 0 < trough_ss - troughs[-1] <= remainder * (1 + 1e-9)
    # steady-state peak at t* = ln(k_a (1 − e^(−kτ)) / (k (1 − e^(−k_a τ)))) / (k_a − k) after a dose
    t_star = math.log(ka * (1 - ek) / (K_EL * (1 - ea))) / (ka - K_EL)
    peak_ss = a * (math.exp(-K_EL * t_star) / (1 - ek) - math.exp(-ka * t_star) / (1 - ea))
    remainder_at_peak = remainder * math.exp(K_EL * (tau - t_star))  # A e^(−kt*) e^(−nkτ)/(1 − e^(−kτ))
    assert 0 < peak_ss - pk.c_max_mol_per_m3 <= remainder_at_peak * (1 + 1e-9)
    assert pk.t_c_max_s - (n - 1) * tau == pytest.approx(t_star, rel=1e-3)  # the remainder shifts t* slightly


def test_human_defaults_trough_is_plausible(capsys):
    # Not a fit: CL/F, t½, F and t_max are literature defaults; the trough is compared with the
    # median HCC trough of PHYSICS.md §8 (3.2 µg/mL, IQR 2.2–4.5) as a plausibility check.
    pk = sorafenib_pk("human")
    assert pk.volume_m3 * 1e3 == pytest.approx(0.43 * 8.13 * 35 / LN2, rel=1e-12)
    pk.oral_doses(dose_mol(dose_mg=400.0), interval_s=12 * H, n_doses=56)
    for _ in range(28 * 2):
        pk.step(12 * H)
    trough = pk.plasma_concentration_ug_per_ml()
    with capsys.disabled():
        print(f"\n  400 mg twice daily, day 28 trough {trough:.2f} µg/mL total, "
              f"{1e3 * 0.4648 * pk.unbound_plasma_concentration() * 1e3:.2f} ng/mL unbound "
              f"(HCC median 3.2, IQR 2.2–4.5 µg/mL)")
    low, high = S.SORAFENIB_HCC_TROUGH_UG_PER_ML[1:]
    assert low <= trough <= high


def test_auc_is_F_dose_over_clearance(rng):
    dose = 2e-3
    ka = 1.45 / H
    pk = one_compartment()
    pk.oral_dose(dose)
    for dt in random_steps(rng, 60 * T_HALF, 0.1 * H, 30 * H):
        pk.step(dt)
    t = pk.time_s
    a = F * dose * ka / (V * (ka - K_EL))
    exact = a * (-math.expm1(-K_EL * t) / K_EL + math.expm1(-ka * t) / ka)
    assert pk.auc() == pytest.approx(exact, rel=1e-12)
    assert pk.auc() == pytest.approx(F * dose / (K_EL * V), rel=1e-12)  # remainder 2⁻⁶⁰
    assert pk.unbound_auc() == pytest.approx(pk.auc() * human_plasma_binding().unbound_fraction_linear(), rel=1e-15)
    # IV bolus: D/CL; and AUC between two boundaries
    iv = one_compartment()
    iv.iv_bolus(dose)
    for _ in range(100):
        iv.step(0.6 * T_HALF)
    assert iv.auc() == pytest.approx(dose / (K_EL * V) * (1 - 2.0**-60), rel=1e-12)
    t1, t2 = 6 * T_HALF, 12 * T_HALF
    assert iv.auc(t1, t2) == pytest.approx(dose / (K_EL * V) * (2.0**-6 - 2.0**-12), rel=1e-11)


def test_infusion_plateau_and_dose_inside_a_step():
    rate, dur = 1e-8, 50 * H
    pk = one_compartment()
    pk.iv_infusion(rate, dur, start_s=10 * H)
    for _ in range(10):
        pk.step(7 * H)  # the infusion starts and ends inside steps
    t = pk.time_s
    c_end = rate / (K_EL * V) * -math.expm1(-K_EL * dur)
    assert pk.plasma_concentration() == pytest.approx(c_end * math.exp(-K_EL * (t - 60 * H)), rel=1e-12)
    assert pk.ledger()["dosed_iv"] == pytest.approx(rate * dur, rel=1e-14)
    # a dose scheduled inside a step gives what splitting the step at the dose gives
    a, b = one_compartment(), one_compartment()
    a.oral_dose(1e-3, at_s=1234.0)
    b.oral_dose(1e-3, at_s=1234.0)
    a.step(5000.0)
    b.step(1234.0)
    b.step(5000.0 - 1234.0)
    assert a.plasma_concentration() == pytest.approx(b.plasma_concentration(), rel=1e-14)
    assert a.gut == pytest.approx(b.gut, rel=1e-14)


def test_two_compartments_with_gut_match_decimal_reference(rng):
    cases = [  # (ka, k10, k12, k21) in 1/h: generic, k_a = α, k_a = β, k_a close to α
        (1.45, 0.05, 0.3, 0.1), (None, 0.05, 0.3, 0.1), ("beta", 0.05, 0.3, 0.1), ("alpha+", 0.2, 0.05, 0.5),
    ]
    for ka, k10, k12, k21 in cases:
        probe = SystemicDrugPK(k10 / H, V, k12_per_s=k12 / H, k21_per_s=k21 / H)
        _, alpha, _, beta = probe._disp.biexponential()
        ka_s = {None: alpha, "beta": beta, "alpha+": alpha * (1 + 1e-7)}.get(ka, None) or ka / H
        pk = SystemicDrugPK(k10 / H, V, k12_per_s=k12 / H, k21_per_s=k21 / H, absorption_rate_per_s=ka_s)
        for _ in range(4):
            g, x1, x2 = (float(v) for v in rng.uniform(0, 1e-3, 3))
            rate = float(rng.uniform(0, 1e-8))
            dt = float(10 ** rng.uniform(1, 5.5))
            got = pk._advance(dt, g, x1, x2, rate)
            want = _reference(pk, g, x1, x2, rate, dt)
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * max(want))


# --------------------------------------------------------------------------------------------
# ledger, checkpoints, coupling


def _busy_model():
    return SystemicDrugPK(0.05 / H, V, k12_per_s=0.3 / H, k21_per_s=0.1 / H, absorption_rate_per_s=1.45 / H,
                          bioavailability=F)


def _drive(pk, rng, n):
    """n random steps with every input: oral doses, boluses, infusions, leak, return, draw, give."""
    for i in range(n):
        if i % 500 == 0:
            pk.oral_doses(1e-3, interval_s=12 * H, n_doses=3, start_s=pk.time_s + float(rng.uniform(0, 5 * H)),
                          lag_s=float(rng.uniform(0, 1800)))
            pk.iv_bolus(2e-4, at_s=pk.time_s + float(rng.uniform(0, H)))
            pk.iv_infusion(1e-9, float(rng.uniform(H, 10 * H)), start_s=pk.time_s + float(rng.uniform(0, 3 * H)))
        if i % 97 == 0:
            pk.give(float(rng.uniform(0, 1e-6)), source="carrier" if i % 2 else "tissue")
            pk.draw(0.1 * pk.central)
        pk.step(float(rng.uniform(1.0, 600.0)), carrier_leak_rate_mol_per_s=float(rng.uniform(0, 1e-10)),
                tissue_return_rate_mol_per_s=float(rng.uniform(0, 1e-10)),
                tissue_draw_rate_mol_per_s=float(rng.uniform(0, 1e-11)))


def test_ledger_closes_over_many_random_steps(rng):
    pk = _busy_model()
    _drive(pk, rng, 10_000)
    led = pk.ledger()
    assert led["error"] < 1e-12
    assert min(led[k] for k in ("dosed_oral", "dosed_iv", "carrier_leak", "tissue_return", "tissue_draw")) > 0
    assert "ledger error" in repr(pk) and "two compartments" in repr(pk)


def test_resume_is_bitwise(rng):
    a = _busy_model()
    _drive(a, rng, 700)
    saved = json.loads(json.dumps(a.state()))
    b = _busy_model()
    b.load_state(saved)
    tail = np.random.default_rng(7)
    _drive(a, tail, 900)
    _drive(b, np.random.default_rng(7), 900)
    assert json.dumps(a.state()) == json.dumps(b.state())
    changed = SystemicDrugPK(0.06 / H, V, k12_per_s=0.3 / H, k21_per_s=0.1 / H, absorption_rate_per_s=1.45 / H,
                             bioavailability=F)
    with pytest.raises(ValueError, match="k10_per_s"):
        changed.load_state(saved)
    del saved["gut"]
    with pytest.raises(ValueError, match="lacks gut"):
        b.load_state(saved)


def test_unbound_concentration_and_plasma_view():
    pk = one_compartment()
    pk.iv_bolus(1e-3)
    pk.step(H)
    c = pk.plasma_concentration()
    assert pk.unbound_plasma_concentration() == human_plasma_binding().unbound_concentration(c)
    view, total = pk.plasma_curve(), pk.plasma_curve(unbound=False)
    assert view(H) == pk.unbound_plasma_concentration() and total(H) == c
    with pytest.raises(ValueError, match="stands at 3600"):
        view(0.0)
    assert "unbound" in repr(view)


def test_draw_that_empties_the_plasma_is_refused_and_leaves_the_model():
    pk = one_compartment()
    pk.iv_bolus(1e-6)
    pk.oral_dose(1e-3, at_s=100.0)
    before = json.dumps(pk.state())
    with pytest.raises(ValueError, match="tissue_draw_rate_mol_per_s"):
        pk.step(H, tissue_draw_rate_mol_per_s=1e-6)
    assert json.dumps(pk.state()) == before
    with pytest.raises(ValueError, match="exceeds the plasma content"):
        pk.draw(2e-6)


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="k10_per_s"):
        SystemicDrugPK(-1.0, V)
    with pytest.raises(ValueError, match="volume_m3"):
        SystemicDrugPK(K_EL, 0.0)
    with pytest.raises(ValueError, match="bioavailability"):
        SystemicDrugPK(K_EL, V, bioavailability=1.5)
    with pytest.raises(ValueError, match="absorption_rate_per_s"):
        SystemicDrugPK(K_EL, V, absorption_rate_per_s=0.0)
    with pytest.raises(ValueError, match="absorption_rate_per_s is not set"):
        SystemicDrugPK(K_EL, V).oral_dose(1.0)
    pk = one_compartment()
    pk.step(10.0)
    with pytest.raises(ValueError, match="n_doses"):
        pk.oral_doses(1.0, H, 0)
    with pytest.raises(ValueError, match="at_s = 5.0 s is before the model time"):
        pk.oral_dose(1.0, at_s=5.0)
    with pytest.raises(ValueError, match="dt_s"):
        pk.step(-1.0)
    with pytest.raises(ValueError, match="carrier_leak_rate_mol_per_s"):
        pk.step(1.0, carrier_leak_rate_mol_per_s=float("nan"))
    with pytest.raises(ValueError, match="source must be"):
        pk.give(1.0, source="gut")
    with pytest.raises(ValueError, match="t_max_s"):
        absorption_rate_from_t_max(0.0, K_EL)
    with pytest.raises(ValueError, match="exactly one of clearance_m3_per_s and volume_m3"):
        SystemicDrugPK.one_compartment(T_HALF)
    with pytest.raises(ValueError, match="unknown species 'dog'"):
        sorafenib_pk("dog")


# --------------------------------------------------------------------------------------------
# scenario models


def _error_locs(exc):
    """Each error's location, with the field a model validator names (nanosim_error) appended."""
    out = []
    for e in exc.value.errors():
        loc = [str(p) for p in e["loc"]] + ([e["ctx"]["field"]] if e.get("ctx", {}).get("field") else [])
        out.append(".".join(loc))
    return out


def test_scenario_models_defaults_units_and_build():
    pk = DrugPK()
    assert pk.half_life_s == T_HALF and pk.clearance_m3_per_s == pytest.approx(0.43 * 8.13e-3 / H, rel=1e-15)
    assert "one compartment, t½ 1.458 d, V 176.5 L, CL 3.496 L/h at 70 kg" in pk.describe()
    oral = OralRoute(dose_mg="0.4 g", doses=56, interval_s="12 h")
    assert oral.dose_mg == 400.0 and oral.t_max_s == 3 * H
    assert oral.describe() == "oral 400 mg every 12 h × 56, F 0.43, t_max 3 h"
    model = build_systemic_drug(pk, oral, body_mass_kg=70.0)
    ref = sorafenib_pk("human")
    assert model.parameters() == ref.parameters()
    assert model.ledger()["dosed_oral"] == dose_mol(dose_mg=400.0)  # the first dose, at t = 0
    # a 20 g mouse at 10 mg/kg: allometric scaling, t½ = 35 h × (0.02/70)^0.25
    mouse = build_systemic_drug(pk, OralRoute(dose_mg_per_kg="10 mg/kg"), body_mass_kg=0.02)
    assert mouse.elimination_half_life_s() == pytest.approx(T_HALF * (0.02 / 70) ** 0.25, rel=1e-14)
    assert mouse.volume_m3 == pytest.approx(pk.volume_at_reference_m3() * 0.02 / 70, rel=1e-14)
    assert mouse.ledger()["dosed_oral"] == pytest.approx(dose_mol(dose_mg=0.2), rel=1e-15)
    assert OralRoute(dose_mg=1, absorption_rate_per_s="1 1/h").t_max_s is None
    assert DrugPK(volume_m3="200 L").volume_at_reference_m3() == pytest.approx(0.2, rel=1e-15)
    b = PlasmaProteinBinding().build()
    assert b.unbound_fraction_linear() == human_plasma_binding().unbound_fraction_linear()


def test_scenario_errors_name_the_field():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as exc:
        OralRoute(dose_mg=400, dose_mg_per_kg=5)
    assert "exactly one of dose_mg and dose_mg_per_kg" in str(exc.value) and _error_locs(exc) == ["dose_mg"]
    with pytest.raises(ValidationError) as exc:
        OralRoute(dose_mg=400, t_max_s="3 h", absorption_rate_per_s=1e-4)
    assert "t_max_s or absorption_rate_per_s" in str(exc.value) and _error_locs(exc) == ["absorption_rate_per_s"]
    with pytest.raises(ValidationError) as exc:
        OralRoute(dose_mg=400, bioavailability=0)
    assert any(loc.startswith("bioavailability") for loc in _error_locs(exc))
    with pytest.raises(ValidationError) as exc:
        OralRoute(dose_mg="400 mL")
    assert any(loc.startswith("dose_mg") for loc in _error_locs(exc))
    with pytest.raises(ValidationError) as exc:
        DrugPK(volume_m3="200 L", clearance_m3_per_s="3 L/h")
    assert "give clearance_m3_per_s or volume_m3, not both" in str(exc.value) and _error_locs(exc) == ["volume_m3"]
    with pytest.raises(ValidationError) as exc:
        DrugPK(k12_per_s=1e-5)
    assert _error_locs(exc) == ["k21_per_s"]
    with pytest.raises(ValidationError) as exc:
        DrugPK(half_life_s=-1)
    assert any(loc.startswith("half_life_s") for loc in _error_locs(exc))
