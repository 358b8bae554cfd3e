"""Systemic two-compartment carrier pharmacokinetics (nanosim.carriers.systemic), PHYSICS.md §5.

References are analytic: the biexponential plasma curve, its AUC, the infusion steady state,
and, for the general and degenerate cases, the matrix exponential of the (augmented) rate
matrix summed as a Taylor series in 80-digit decimal arithmetic. Unless said otherwise the
tolerances follow from round-off: each exact step is accurate to a few ulp (≈ 1e-16 relative)
and the system is contractive, so N steps stay within about N·4e-16.
"""

import doctest
import json
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

from nanosim.carriers import systemic as S
from nanosim.carriers.systemic import BODIES, SystemicPK, body_from, hepatic_arterial_split

H = 3600.0
LN2 = math.log(2.0)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def _pk(**kw):
    args = dict(t_half_fast_s=2 * H, t_half_slow_s=45 * H, fast_fraction=0.4, volume_m3=4e-3)
    args.update(kw)
    return SystemicPK.from_half_lives(**args)


def _reference(pk, x1, x2, rate, t):
    """Exact (to ~1e-60) central, peripheral and ∫central dt after t from (x1, x2) with infusion rate.

    exp of the 4×4 augmented matrix [[M, e1, 0], [0, 0, 0], [e1ᵀ, 0, 0]] on (x1, x2, R, 0), by
    Taylor series in 80-digit decimals (|M t| ≤ 40 here, so terms stay far above 1e-80).
    """
    with localcontext() as ctx:
        ctx.prec = 80
        k12, k21, k10 = (Decimal(v) for v in (pk.k12_per_s, pk.k21_per_s, pk.k10_per_s))
        tt = Decimal(t)
        a = [[-(k10 + k12) * tt, k21 * tt, tt, 0], [k12 * tt, -k21 * tt, 0, 0], [0, 0, 0, 0], [tt, 0, 0, 0]]
        a = [[Decimal(v) for v in row] for row in a]
        y = [Decimal(x1), Decimal(x2), Decimal(rate), Decimal(0)]
        term, total = y[:], y[:]
        for n in range(1, 400):
            term = [sum(a[i][j] * term[j] for j in range(4)) / n for i in range(4)]
            total = [s + v for s, v in zip(total, term)]
            if n > 20 and max(abs(v) for v in term) < Decimal(10) ** -70 * max(abs(v) for v in total):
                break
        return float(total[0]), float(total[1]), float(total[3])


# --------------------------------------------------------------------------------------------
# analytic curves


def test_bolus_recovers_the_biexponential_whatever_the_step():
    t1, t2, f, v = 2 * H, 45 * H, 0.4, 4e-3
    pk = SystemicPK.from_half_lives(t1, t2, f, v)
    a, alpha, b, beta = f / v, LN2 / t1, (1 - f) / v, LN2 / t2
    dose = 1e13
    for t_end in (600.0, 3 * H, 40 * H, 450 * H):
        for n in (1, 7, 1000):
            model = SystemicPK.from_half_lives(t1, t2, f, v)
            model.bolus(dose)
            for _ in range(n):
                model.step(t_end / n)
            t = model.time_s
            expected = dose * (a * math.exp(-alpha * t) + b * math.exp(-beta * t))
            # ≤ 1000 steps of a few ulp each, plus αt·ulp from the recomputed eigenvalues
            assert model.plasma_concentration() == pytest.approx(expected, rel=1e-12), (t_end, n)
    curve = pk.concentration_curve(np.array([0.0, H, 100 * H]), dose)
    np.testing.assert_allclose(curve, dose * (a * np.exp(-alpha * np.array([0, H, 100 * H]))
                                              + b * np.exp(-beta * np.array([0, H, 100 * H]))), rtol=1e-14)


@pytest.mark.parametrize("k12, k21, k10", [
    (3e-5, 6e-5, 7e-6),  # PEG-liposome-like
    (1e-3, 1e-6, 1e-4),  # slow return
    (1e-6, 1e-2, 1e-3),  # barely distributing
    (2e-4, 1e-4 + 2e-4 * 1e-9, 1e-4),  # k10 + k12 ≈ k21: close eigenvalues, large coupling
    (1e-14, 1e-4 * (1 + 1e-9), 1e-4),  # α − β ≈ 1e-13: near-repeated eigenvalues
])
def test_one_step_is_exact_against_a_high_precision_reference(k12, k21, k10):
    pk = SystemicPK(k12, k21, k10, 3e-3)
    for dt in (1e-3, 1.0, 1e3, 3e4, 2e5):
        if max(k12 + k10, k21) * dt > 40:
            continue
        for x1, x2, rate in ((1e12, 0.0, 0.0), (0.0, 5e11, 0.0), (3e11, 2e11, 1e7), (0.0, 0.0, 1e7)):
            pk.load_state({"time_s": 0.0, "auc_s_per_m3": 0.0, "central": x1, "peripheral": x2, "mps": 0.0,
                           "other_cleared": 0.0, "injected": x1 + x2, "external_in": 0.0, "external_out": 0.0})
            auc = pk.step(dt, rate)
            c_ref, p_ref, i_ref = _reference(pk, x1, x2, rate, dt)
            # one step: a few ulp, times ≤ 40 for the conditioning of exp at |z| ≤ 40
            scale = max(abs(c_ref), abs(p_ref), 1e-300)
            assert abs(pk.central - c_ref) <= 1e-13 * scale, (dt, x1, x2, rate)
            assert abs(pk.peripheral - p_ref) <= 1e-13 * scale, (dt, x1, x2, rate)
            assert auc * pk.volume_m3 == pytest.approx(i_ref, rel=1e-13)
            assert pk.ledger_error() < 1e-14


def test_infusion_is_the_same_in_one_step_and_in_many():
    rate = 1e8
    one, many = _pk(), _pk()
    one.step(30 * H, rate)
    for _ in range(1000):
        many.step(30 * H / 1000, rate)
    # 1000 steps of a few ulp each
    for name in ("central", "peripheral", "mps", "other_cleared"):
        assert getattr(many, name) == pytest.approx(getattr(one, name), rel=1e-12), name
    assert many.auc() == pytest.approx(one.auc(), rel=1e-12)


def test_infusion_reaches_steady_state_r_over_k10_v():
    pk = _pk()
    rate = 2.5e9
    for _ in range(200):
        pk.step(12 * H, rate)  # 2400 h = 53 slow half-lives: the transient is below 1e-15
    c_ss = rate / (pk.k10_per_s * pk.volume_m3)
    # the k10, k21 round trip through the macro constants costs a few ulp each
    assert pk.plasma_concentration() == pytest.approx(c_ss, rel=1e-12)
    # and the peripheral compartment is in equilibrium: k12 x1 = k21 x2
    assert pk.k12_per_s * pk.central == pytest.approx(pk.k21_per_s * pk.peripheral, rel=1e-12)


def test_auc_to_infinity_is_dose_over_clearance():
    pk = _pk()
    dose = 7e12
    pk.bolus(dose)
    for dt in (60.0, 600.0, 3600.0, 36000.0):
        for _ in range(50):
            pk.step(dt)
    while pk.time_s < 60 * 45 * H:  # 60 slow half-lives: the tail is 2^-60 of the AUC
        pk.step(1e5)
    assert pk.auc() == pytest.approx(dose / pk.clearance_m3_per_s, rel=1e-9)
    assert pk.clearance_m3_per_s == pytest.approx(pk.k10_per_s * pk.volume_m3, rel=1e-15)


def test_auc_between_step_boundaries_is_exact_and_additive():
    t1, t2, f, v = 2 * H, 45 * H, 0.3, 5e-3
    pk = SystemicPK.from_half_lives(t1, t2, f, v)
    dose = 1e12
    pk.bolus(dose)
    steps = [pk.step(dt) for dt in [10.0] * 30 + [600.0] * 30 + [3600.0] * 40]
    a, alpha, b, beta = f / v, LN2 / t1, (1 - f) / v, LN2 / t2

    def analytic(t):
        return dose * (a / alpha * -math.expm1(-alpha * t) + b / beta * -math.expm1(-beta * t))

    t_mid, t_end = 300.0 + 18000.0, pk.time_s
    # 100 steps of a few ulp
    assert pk.auc(0.0, t_end) == pytest.approx(analytic(t_end), rel=1e-12)
    assert pk.auc(t_mid, t_end) == pytest.approx(analytic(t_end) - analytic(t_mid), rel=1e-12)
    assert pk.auc(0.0, t_mid) + pk.auc(t_mid) == pytest.approx(pk.auc(), rel=1e-15)
    assert math.fsum(steps) == pytest.approx(pk.auc(), rel=1e-14)
    # a difference of two cumulative sums ~100× the step: ~100 ulp of the step
    assert pk.auc(t_end - 3600.0, t_end) == pytest.approx(steps[-1], rel=1e-13)
    with pytest.raises(ValueError, match="not a step boundary"):
        pk.auc(0.0, 15.0)


# --------------------------------------------------------------------------------------------
# conversions


def test_micro_macro_round_trip(rng):
    for _ in range(200):
        k12, k21, k10 = 10.0 ** rng.uniform(-8, -2, 3)
        v = 10.0 ** rng.uniform(-6, -2)
        pk = SystemicPK(k12, k21, k10, v, liver_uptake_fraction=0.7)
        a, alpha, b, beta = pk.biexponential()
        # macro constants satisfy their defining identities
        assert alpha + beta == pytest.approx(k10 + k12 + k21, rel=1e-14)
        assert alpha * beta == pytest.approx(k10 * k21, rel=1e-14)
        assert a + b == pytest.approx(1 / v, rel=1e-14)
        assert (a * beta + b * alpha) / (a + b) == pytest.approx(k21, rel=1e-11)
        back = SystemicPK.from_half_lives(*pk.half_lives(), pk.fast_fraction, v, liver_uptake_fraction=0.7)
        # each micro constant is a rational function of α, β, f: conditioning ~ α/(α − β) ulp at worst
        for name in ("k12_per_s", "k21_per_s", "k10_per_s"):
            assert getattr(back, name) == pytest.approx(getattr(pk, name), rel=1e-9), name
        assert back.volume_m3 == v


def test_macro_to_micro_matches_the_textbook_formulas():
    t1, t2, f, v = 1.5 * H, 30 * H, 0.65, 2e-3
    pk = SystemicPK.from_half_lives(t1, t2, f, v)
    a, b, alpha, beta = f / v, (1 - f) / v, LN2 / t1, LN2 / t2
    k21 = (a * beta + b * alpha) / (a + b)
    k10 = alpha * beta / k21
    assert pk.k21_per_s == pytest.approx(k21, rel=1e-14)
    assert pk.k10_per_s == pytest.approx(k10, rel=1e-14)
    assert pk.k12_per_s == pytest.approx(alpha + beta - k21 - k10, rel=1e-12)
    assert pk.half_lives() == pytest.approx((t1, t2), rel=1e-14)
    assert pk.fast_fraction == pytest.approx(f, rel=1e-13)


def test_peg_liposome_human_preset_matches_gabizon():
    pk = S.peg_liposome_human()
    assert pk.half_lives() == pytest.approx((2 * H, 45 * H), rel=1e-13)
    assert pk.clearance_m3_per_s * 1e3 * H == pytest.approx(0.1, rel=1e-13)  # L/h
    assert pk.volume_m3 * 1e3 == pytest.approx(4.0, rel=1e-15)  # L
    assert 0 < pk.fast_fraction < 1
    assert S.DOXIL_TERMINAL_T_HALF_S == 55 * H
    assert S.MOUSE_PEG_LIPOSOME_T_HALF_RANGE_S == (20 * H, 30 * H)
    text = repr(pk)
    assert "2 h" in text and "4 L" in text and "80 % liver macrophages" in text


# --------------------------------------------------------------------------------------------
# ledger, elimination split, checkpoints


def _random_run(pk, rng, n):
    for _ in range(n):
        u = rng.random()
        if u < 0.05:
            pk.bolus(rng.uniform(0, 1e12))
        elif u < 0.15:
            pk.draw(rng.uniform(0, 1) * pk.central)
        elif u < 0.25:
            pk.give(rng.uniform(0, 1e11))
        rate = rng.uniform(0, 1e8) if rng.random() < 0.5 else 0.0
        pk.step(10.0 ** rng.uniform(-3, 6), rate)


def test_ledger_closes_after_many_random_steps(rng):
    pk = _pk(liver_uptake_fraction=0.85)
    pk.bolus(1e12)
    worst = 0.0
    for _ in range(100):
        _random_run(pk, rng, 100)
        worst = max(worst, pk.ledger_error())
    led = pk.ledger()
    assert led["mps"] > 0 and led["other_cleared"] > 0 and led["external_out"] > 0 and led["external_in"] > 0
    # 10 000 steps, each closing to a few ulp of the largest term
    assert worst < 1e-12
    assert led["error"] == pk.ledger_error()
    assert led["injected"] + led["external_in"] - led["external_out"] == pytest.approx(
        led["central"] + led["peripheral"] + led["mps"] + led["other_cleared"], rel=1e-12)


def test_ledger_does_not_drift_over_many_equal_steps():
    # the same cached propagator on every step: its column sums miss 1 by ~1e-16 the same way each
    # time, which uncorrected drifts the ledger linearly (≈ 1.5e-17 per step here, 3e-12 after
    # 200 000 steps); corrected, only the rounding of the cumulative sums remains (~√N ulp)
    pk = _pk()
    pk.bolus(1e12)
    for _ in range(200_000):
        pk.step(1.0, 1e5)
    assert pk.ledger_error() < 1e-12


def test_elimination_split_between_liver_macrophages_and_other(rng):
    for frac in (0.0, 0.3, 0.8, 1.0):
        pk = _pk(liver_uptake_fraction=frac)
        pk.bolus(1e12)
        _random_run(pk, rng, 300)
        eliminated = pk.mps + pk.other_cleared
        assert eliminated > 0
        # each increment is split exactly (two roundings); the sums stay within a few ulp
        assert pk.mps / eliminated == pytest.approx(frac, rel=1e-14, abs=1e-16)


def test_draw_and_give_are_ledgered_and_bounded():
    pk = _pk()
    pk.bolus(100.0)
    assert pk.draw(30.0) == 30.0
    pk.give(5.0)
    assert pk.central == 75.0 and pk.external_out == 30.0 and pk.external_in == 5.0
    assert pk.draw(75.0 * (1 + 1e-14)) == 75.0  # round-off above the content is clipped
    with pytest.raises(ValueError, match="exceeds the plasma content"):
        pk.draw(1.0)
    assert pk.ledger_error() == 0.0


def test_resume_from_a_checkpoint_is_bit_identical(rng):
    seed = int(rng.integers(1 << 31))
    whole, first = _pk(), _pk()
    for m in (whole, first):
        m.bolus(3e12)
    _random_run(whole, np.random.default_rng(seed), 600)

    _random_run(first, np.random.default_rng(seed), 0)
    r = np.random.default_rng(seed)
    _random_run(first, r, 300)
    saved = json.loads(json.dumps(first.state()))
    resumed = _pk()
    resumed.load_state(saved)
    _random_run(resumed, r, 300)
    assert resumed.state() == whole.state()  # every float equal, bit for bit
    assert resumed.auc(0.0, saved["time_s"]) == first.auc()

    other = _pk(fast_fraction=0.5)
    with pytest.raises(ValueError, match="k12_per_s"):
        other.load_state(saved)
    with pytest.raises(ValueError, match="central"):
        resumed.load_state({k: v for k, v in saved.items() if k != "central"})


# --------------------------------------------------------------------------------------------
# degenerate cases


def test_one_compartment_k12_zero():
    k10 = LN2 / (25 * H)
    pk = SystemicPK(0.0, 1e-4, k10, 1e-6)
    dose = 1e11
    pk.bolus(dose)
    for dt in (1.0, 100.0, 1e4, 1e5):
        for _ in range(10):
            pk.step(dt)
    t = pk.time_s
    # 40 steps of a few ulp; k10 t ≈ 30
    assert pk.central == pytest.approx(dose * math.exp(-k10 * t), rel=1e-13)
    assert pk.peripheral == 0.0
    assert pk.auc() == pytest.approx(dose / (k10 * 1e-6) * -math.expm1(-k10 * t), rel=1e-13)
    mono = SystemicPK.one_compartment(25 * H, 1e-6)
    assert mono.half_lives()[0] == pytest.approx(25 * H, rel=1e-15)
    assert math.isinf(mono.half_lives()[1]) and "one compartment" in repr(mono)


def test_equal_half_lives_are_one_compartment():
    pk = SystemicPK.from_half_lives(10 * H, 10 * H, 0.3, 2e-3)
    assert pk.k12_per_s == 0.0
    assert pk.k10_per_s == pytest.approx(LN2 / (10 * H), rel=1e-15)
    pk.bolus(1.0)
    pk.step(7 * H)
    assert pk.plasma_concentration() == pytest.approx(math.exp(-LN2 * 0.7) / 2e-3, rel=1e-14)


def test_repeated_eigenvalue_jordan_block():
    # k12 = 0 and k10 = k21 = k: M is a Jordan block, central(t) = k x2(0) t e^{−kt}
    k = 1e-4
    pk = SystemicPK(0.0, k, k, 1e-3)
    for n in (1, 10, 1000):
        pk.load_state({"time_s": 0.0, "auc_s_per_m3": 0.0, "central": 0.0, "peripheral": 1e9, "mps": 0.0,
                       "other_cleared": 0.0, "injected": 1e9, "external_in": 0.0, "external_out": 0.0})
        for _ in range(n):
            pk.step(5e4 / n)
        t = pk.time_s
        assert np.isfinite([pk.central, pk.peripheral, pk.auc()]).all()
        # ≤ 1000 steps of a few ulp
        assert pk.central == pytest.approx(k * 1e9 * t * math.exp(-k * t), rel=1e-12), n
        assert pk.peripheral == pytest.approx(1e9 * math.exp(-k * t), rel=1e-12), n
        # ∫ k x2 t e^{−kt} dt = (x2 / k) (1 − (1 + kt) e^{−kt})
        expected_auc = 1e9 / k * -math.expm1(math.log1p(k * t) - k * t) / 1e-3
        assert pk.auc() == pytest.approx(expected_auc, rel=1e-12), n
        assert pk.ledger_error() < 1e-13


def test_near_repeated_eigenvalues_match_the_reference_over_many_steps():
    # α − β = 2e-10 α: eigen-decomposition formulas, (α − k21)/(α − β) etc., would lose 10 digits
    k = 1e-4
    pk = SystemicPK(1e-24, k * (1 + 2e-12), k, 1e-3)
    t_fast, t_slow = pk.half_lives()
    assert 0 < 1 - t_fast / t_slow < 1e-9
    pk.bolus(1e12)
    for _ in range(500):
        pk.step(400.0, 1e6)
    c_ref, p_ref, i_ref = _reference(pk, 1e12, 0.0, 1e6, pk.time_s)
    # 500 steps of a few ulp
    assert pk.central == pytest.approx(c_ref, rel=1e-12)
    assert pk.auc() * pk.volume_m3 == pytest.approx(i_ref, rel=1e-12)
    assert abs(pk.peripheral - p_ref) <= 1e-12 * pk.central


# --------------------------------------------------------------------------------------------
# inputs


@pytest.mark.parametrize("kwargs, field", [
    (dict(t_half_fast_s=-1.0), "t_half_fast_s"),
    (dict(t_half_slow_s=0.0), "t_half_slow_s"),
    (dict(t_half_fast_s=50 * H), "t_half_fast_s"),
    (dict(fast_fraction=0.0), "fast_fraction"),
    (dict(fast_fraction=1.0), "fast_fraction"),
    (dict(fast_fraction=1.5), "fast_fraction"),
    (dict(volume_m3=-4e-3), "volume_m3"),
    (dict(liver_uptake_fraction=1.2), "liver_uptake_fraction"),
    (dict(liver_uptake_fraction=float("nan")), "liver_uptake_fraction"),
])
def test_bad_half_life_inputs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _pk(**kwargs)


def test_bad_micro_and_step_inputs_name_the_field():
    for i, name in enumerate(("k12_per_s", "k21_per_s", "k10_per_s")):
        args = [1e-5, 1e-5, 1e-5]
        args[i] = -1e-6
        with pytest.raises(ValueError, match=name):
            SystemicPK(*args, 1e-3)
    pk = _pk()
    with pytest.raises(ValueError, match="dt_s"):
        pk.step(-1.0)
    with pytest.raises(ValueError, match="infusion_rate_per_s"):
        pk.step(1.0, -5.0)
    with pytest.raises(ValueError, match="amount"):
        pk.bolus(float("inf"))
    with pytest.raises(ValueError, match="clearance_m3_per_s"):
        SystemicPK.from_clearance(2 * H, 45 * H, 1.0, 4e-3)


# --------------------------------------------------------------------------------------------
# bodies and routes


def test_body_presets_are_physiological():
    for name, body in BODIES.items():
        assert body.name == name
        assert 0 < body.plasma_volume_m3 < body.blood_volume_m3
        assert body.hepatic_blood_flow_m3_per_s < body.cardiac_output_m3_per_s
        assert body.liver_mass_kg < 0.1 * body.body_mass_kg
        # blood volume 5–10 % of body mass (1000 kg/m³): a units slip would be orders off
        assert 0.05 < body.blood_volume_m3 * 1000 / body.body_mass_kg < 0.1, name
    assert 0.020 <= BODIES["mouse"].body_mass_kg <= 0.025
    assert 2.5 <= BODIES["rabbit"].body_mass_kg <= 3.0
    assert BODIES["human"].body_mass_kg == 70.0
    assert BODIES["human"].plasma_volume_m3 == pytest.approx(3.0e-3, rel=1e-12)  # 3000 mL
    assert BODIES["human"].hepatic_arterial_fraction == S.DEFAULT_HEPATIC_ARTERIAL_FRACTION
    assert "Body(mouse)" in repr(BODIES["mouse"]) and "mL/min" in repr(BODIES["mouse"])


def test_body_from_overrides_and_errors():
    b = body_from("rat", body_mass_kg=0.3, plasma_volume_m3=8e-6, hepatic_arterial_flow_m3_per_s=5e-8)
    assert b.body_mass_kg == 0.3 and BODIES["rat"].body_mass_kg == 0.25
    assert b.plasma_volume_m3 == pytest.approx(8e-6, rel=1e-14)
    assert b.hepatic_arterial_flow_m3_per_s == pytest.approx(5e-8, rel=1e-14)
    with pytest.raises(ValueError, match=r"unknown species 'dog'; allowed: mouse, rat, rabbit, human"):
        body_from("dog")
    with pytest.raises(ValueError, match=r"unknown Body field 'weight_kg'; allowed: .*body_mass_kg"):
        body_from("mouse", weight_kg=0.02)
    with pytest.raises(ValueError, match="haematocrit"):
        body_from("mouse", haematocrit=1.2)
    with pytest.raises(ValueError, match="liver_mass_kg"):
        body_from("mouse", liver_mass_kg=-1.0)
    with pytest.raises(ValueError, match="plasma_volume_m3 or haematocrit"):
        body_from("mouse", plasma_volume_m3=1e-6, haematocrit=0.4)


def test_hepatic_arterial_split():
    rabbit = BODIES["rabbit"]
    q_ha = rabbit.hepatic_blood_flow_m3_per_s * 0.25
    assert rabbit.hepatic_arterial_flow_m3_per_s == pytest.approx(q_ha, rel=1e-15)
    assert hepatic_arterial_split(rabbit, 0.2 * q_ha) == pytest.approx(0.2, rel=1e-15)
    assert hepatic_arterial_split(rabbit, 0.0) == 0.0
    assert hepatic_arterial_split(rabbit, q_ha) == 1.0
    with pytest.raises(ValueError, match="tumour_arterial_flow_m3_per_s"):
        hepatic_arterial_split(rabbit, 1.5 * q_ha)
    with pytest.raises(ValueError, match="tumour_arterial_flow_m3_per_s"):
        hepatic_arterial_split(rabbit, -1e-9)


def test_docstring_examples():
    assert doctest.testmod(S).failed == 0
