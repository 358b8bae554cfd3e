"""The drug ledger of a whole run (nanosim.drug.ledger): body and box accounts, checked every step.

Runs use the bundled liposome-with-release scenario (scenarios/hcc_liposome_iv_release.toml)
on a coarse 40³ × 40 µm grid of the same box, for a few minutes of simulated time: enough for the
carriers to enter the box, extravasate, release in blood, tissue and the liver's macrophages.
"""

import tomllib
from pathlib import Path

import numpy as np
import pytest

import nanosim
from nanosim.drug.free_drug import FreeDrugModel
from nanosim.drug.ledger import ledger_rows
from nanosim.drug.systemic import SystemicDrugPK
from nanosim.simulation import GuardError

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "hcc_liposome_iv_release.toml"
COARSE = ["grid.shape=[40, 40, 40]", "grid.voxel_size_m=40 um", "time.stop_s=10 min", "output.every_s=5 min"]


def run(tmp_path, *overrides, name="r"):
    sc = nanosim.load_scenario(SCENARIO, overrides=COARSE + list(overrides))
    return nanosim.run(sc, tmp_path / f"{name}.vtkhdf", backend="numba").metrics


@pytest.mark.parametrize("law, release", [
    ("first_order", 'carrier.release.law={kind="first_order", rate_per_s="0.5 1/h"}'),
    ("weibull", 'carrier.release.law={kind="weibull", scale_time_s="2 h", shape=0.6}'),
    ("sphere_diffusion + burst", 'carrier.release={law={kind="sphere_diffusion", diffusivity_m2_per_s="1e-20 m^2/s", '
                                 'radius_m="50 nm"}, burst_fraction=0.1}'),
])
def test_the_body_and_box_accounts_close_on_every_step_for_every_law(tmp_path, law, release):
    """The run's guard checks both accounts after every step (a failure would raise); at the output
    times both closed to round-off: the body's amounts come from exact integrators (≲ 1e-15 of the
    dose), the box's from float64 fields (≲ 1e-15 of its largest term) — 1e-12 leaves a margin of
    accumulated round-off over the ~20 steps. Every part of the body account is used."""
    m = run(tmp_path, release)
    for key in ("ledger_body_rel_error", "ledger_box_rel_error"):
        assert np.max(np.abs(m[key])) < 1e-12, (key, m[key])
    given = m["ledger_body_given_mol"][-1]
    for key in ("ledger_body_in_circulating_carriers_mol", "ledger_body_in_liver_macrophages_mol",
                "ledger_body_with_cleared_carriers_mol", "ledger_body_free_central_mol", "ledger_box_in_carriers_mol"):
        assert m[key][-1] > 0, key
    # the carriers hand the systemic drug what they released (in blood and in the liver's macrophages)
    assert m["ledger_body_released_mol"][-1] == pytest.approx(
        m["carrier_drug_body_released_in_blood_mol"][-1] + m["carrier_drug_body_released_in_liver_macrophages_mol"][-1],
        rel=1e-12)
    assert 0 < m["ledger_body_released_mol"][-1] < given


def test_a_handover_lost_between_carriers_and_systemic_drug_stops_the_run(tmp_path, monkeypatch):
    """Each model's own balance still closes when the systemic drug receives only part of what the
    carriers released; the body's account, which joins them, does not, and the guard stops the run."""
    honest = SystemicDrugPK.step

    def lossy(self, dt_s, *, carrier_leak_rate_mol_per_s=0.0, **kw):
        return honest(self, dt_s, carrier_leak_rate_mol_per_s=0.9 * carrier_leak_rate_mol_per_s, **kw)

    monkeypatch.setattr(SystemicDrugPK, "step", lossy)
    with pytest.raises(GuardError, match="the body's drug ledger does not close at t = .* relative error"):
        run(tmp_path)


def test_a_deposit_lost_between_carriers_and_free_drug_stops_the_run(tmp_path, monkeypatch):
    """The free-drug field books exactly what it receives (its own balance closes) but receives 90 %
    of what the carriers released into the tissue: the box's account shows it."""
    honest = FreeDrugModel.deposit
    monkeypatch.setattr(FreeDrugModel, "deposit", lambda self, amount: honest(self, 0.9 * amount))
    with pytest.raises(GuardError, match="simulated tissue's drug ledger does not close"):
        run(tmp_path)


def test_oral_drug_alone_has_a_body_account(tmp_path):
    sc = nanosim.load_scenario(Path(SCENARIO).with_name("sorafenib_oral.toml"),
                               overrides=["grid.shape=[40, 40, 40]", "grid.voxel_size_m=40 um", "time.stop_s=2 h",
                                          "output.every_s=1 h"])
    m = nanosim.run(sc, tmp_path / "oral.vtkhdf", backend="numba").metrics
    assert np.max(m["ledger_body_rel_error"]) < 1e-12
    assert m["ledger_body_dosed_oral_mol"][-1] == pytest.approx(m["ledger_body_given_mol"][-1], rel=1e-15)
    rows = dict(ledger_rows({k[len("ledger_"):]: v[-1] for k, v in m.items() if k.startswith("ledger_")}))
    assert set(rows) >= {"free drug in the gut", "free drug in plasma (central)", "not absorbed"}
    assert rows["not absorbed"].endswith("%)")


@pytest.mark.parametrize("infusion_s", [0.0, 600.0])
def test_free_drug_given_intravenously_follows_the_one_compartment_solution(tmp_path, infusion_s):
    """[drug.plasma.intravenous] instead of the oral dose of scenarios/sorafenib_oral.toml: 3 mg/kg
    into a 2.5 kg rabbit, bolus or a 10-min infusion. With one compartment the total plasma
    concentration is D/V e^{−kt} (bolus) or (R/(kV))(1 − e^{−kt}) decaying after the infusion:
    exact integrators, so a round-off tolerance; the body's account holds the dose."""
    from nanosim.carriers.systemic import body_from
    from nanosim.drug.systemic import build_systemic_drug

    d = tomllib.loads(SCENARIO.with_name("sorafenib_oral.toml").read_text(encoding="utf-8"))
    del d["drug"]["plasma"]["oral"]
    d["drug"]["plasma"]["intravenous"] = {"dose_mg_per_kg": 3, "infusion_duration_s": infusion_s}
    d["body"] = {"species": "rabbit"}
    d["grid"].update(shape=[20, 20, 20], voxel_size_m="80 um")
    d["time"]["stop_s"], d.setdefault("output", {})["every_s"] = "2 h", "20 min"
    sc = nanosim.load_scenario(d)
    mass = body_from("rabbit").body_mass_kg
    ref = build_systemic_drug(sc.drug.plasma.pk, None, body_mass_kg=mass)  # the same body: k and V
    k, v = ref.k10_per_s, ref.volume_m3
    dose = sc.drug.plasma.intravenous.dose_mol(mass, 464.8e-3)
    m = nanosim.run(sc, tmp_path / "iv.vtkhdf", backend="numba").metrics
    t = np.asarray(m["time_s"])
    assert m["ledger_body_dosed_iv_mol"][-1] == pytest.approx(dose, rel=1e-14)
    assert m["ledger_body_given_mol"][-1] == pytest.approx(dose, rel=1e-14)
    assert np.max(m["ledger_body_rel_error"]) < 1e-12
    if infusion_s == 0:
        expected = dose / v * np.exp(-k * t)
    else:
        during = dose / infusion_s / (k * v) * -np.expm1(-k * np.minimum(t, infusion_s))
        expected = during * np.exp(-k * np.maximum(t - infusion_s, 0.0))
    np.testing.assert_allclose(m["plasma_total_mol_per_m3"][1:], expected[1:], rtol=1e-10)


@pytest.mark.parametrize("name", ["hcc_spion_micelle_iv", "hcc_ph_nanocomposite_hai", "hcc_plga_microspheres_tace"])
def test_the_ledger_closes_on_the_other_route_scenarios(tmp_path, name):
    """The bundled micelle, hepatic arterial and embolisation scenarios on a coarse grid of the same
    box for 5 minutes (the liposome and oral ones above): the guard checked every step; at the
    outputs both accounts closed to round-off and every route gave its dose."""
    sc = nanosim.load_scenario(SCENARIO.with_name(f"{name}.toml"), overrides=[
        "grid.shape=[20, 20, 20]", "grid.voxel_size_m=80 um", "time.stop_s=5 min", "output.every_s=150 s"])
    m = nanosim.run(sc, tmp_path / f"{name}.vtkhdf", backend="numba").metrics
    assert np.max(m["ledger_body_rel_error"]) < 1e-12 and np.max(m["ledger_box_rel_error"]) < 1e-12
    assert m["ledger_body_given_mol"][-1] > 0
