"""Route comparisons: the same sorafenib dose given by different routes (PHYSICS.md §5, §10).

Every run uses a bundled scenario (scenarios/hcc_ph_nanocomposite_hai.toml,
scenarios/hcc_plga_microspheres_tace.toml) with the parameters of PHYSICS.md and the carrier
presets; only the route changes between the arms of a comparison (the embolisation's comparator
infuses the same dose of sorafenib solution, free drug, instead of the spheres). Nothing is tuned to the published numbers. Where the model
reproduces the direction a published comparison shows, the direction is asserted; where it does
not, the assertion is an ``xfail(strict=True)`` whose docstring gives the measured numbers and
the reason.

Published (PHYSICS.md §10):

- rabbit normal liver (Ning & Wang 2020, dose not reported): embolisation vs hepatic arterial
  infusion plasma C_max 2.46 ± 0.10 vs 3.78 ± 0.18 µg/mL (ratio 0.65 ± 0.04);
- rabbit VX2 lipiodol–sorafenib TACE, 3 mg/kg: tumour 3.53 vs normal liver 0.75 µg/mL at t = 0
  (≈ 5:1).

The runs take minutes on 2 CPU cores: they are marked slow (``python -m pytest -m slow
tests/test_route_comparisons.py``). Numbers quoted below were measured with the numba backend.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

import nanosim
from nanosim.backends import get_backend
from nanosim.kernels import compartments as C
from nanosim.model import build

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
HAI = SCENARIOS / "hcc_ph_nanocomposite_hai.toml"
TACE = SCENARIOS / "hcc_plga_microspheres_tace.toml"

SORAFENIB_G_PER_MOL = 464.8  # PHYSICS.md §8; mol/m³ × g/mol = g/m³ = µg/mL
HOUR = 3600.0

# Ning & Wang 2020 (PHYSICS.md §10): plasma C_max, µg/mL, mean ± SD
CMAX_EMBOLISATION = (2.46, 0.10)
CMAX_HEPATIC_ARTERIAL = (3.78, 0.18)
# rabbit VX2 lipiodol–sorafenib TACE, 3 mg/kg, t = 0 (PHYSICS.md §10), µg/mL
TACE_TUMOUR, TACE_NORMAL = 3.53, 0.75


# --------------------------------------------------------------------------------------------
# fast: the scenarios the comparisons use


@pytest.mark.parametrize("name, preset, route, species", [
    ("hcc_liposome_iv_release", "peg_liposome", "intravenous", "mouse"),
    ("hcc_spion_micelle_iv", "folate_micelle_spion", "intravenous", "mouse"),
    ("hcc_ph_nanocomposite_hai", "ph_nanocomposite_spion", "hepatic_arterial", "rat"),
    ("hcc_plga_microspheres_tace", "plga_microsphere_iron", "embolisation", "rabbit"),
])
def test_route_scenarios_load_with_their_carrier_route_and_drug(name, preset, route, species):
    """Each bundled route scenario validates, releases drug into a systemic free-drug model, and an
    arterial route has an infusion (a hepatic arterial bolus gets no first pass in the model)."""
    sc = nanosim.load_scenario(SCENARIOS / f"{name}.toml")
    assert sc.carrier.preset == preset and sc.route.kind == route and sc.body.species == species
    assert sc.carrier.release is not None
    assert sc.drug is not None and sc.drug.plasma.kind == "systemic"
    if route != "intravenous":
        assert sc.route.infusion_duration_s > 0
    if route == "hepatic_arterial":
        assert sc.ph.enabled and sc.carrier.release.ph_trigger is not None
    if route == "embolisation":
        # spheres must enter a few at a time: a fixed particle step far below the infusion
        assert sc.particles.dt_s != "auto" and float(sc.particles.dt_s) <= sc.route.infusion_duration_s / 30


# --------------------------------------------------------------------------------------------
# hepatic arterial infusion vs intravenous injection (first pass)


@pytest.fixture(scope="module")
def hai_and_iv(tmp_path_factory):
    """The pH-nanocomposite scenario for 6 h by its hepatic arterial infusion and, with everything
    else the same (dose, 1-min infusion, network, seed), by intravenous infusion."""
    tmp = tmp_path_factory.mktemp("hai_iv")
    out = {}
    for kind in ("hepatic_arterial", "intravenous"):
        sc = nanosim.load_scenario(HAI, overrides=[f"route.kind={kind}", "time.stop_s=6 h", "output.every_s=1 h"])
        metrics = dict(nanosim.run(sc, tmp / f"{kind}.vtkhdf", backend="numba").metrics)
        # the weight of one tissue particle, for the counting error of the tumour's carriers
        metrics["tissue_particle_weight"] = float(build(sc, get_backend("numba"), np.float64).carriers.tissue_weight[0])
        out[kind] = metrics
    return out


@pytest.mark.slow
def test_hepatic_arterial_infusion_gives_the_tumour_more_than_intravenous_injection(hai_and_iv):
    """First pass: during a hepatic arterial infusion the box's arterial inlet receives its share
    Q_box/Q_hepatic artery of the infused carriers on top of the systemic plasma, so more carriers
    enter the tumour's vessels than after the same intravenous dose, and the tumour holds more
    carriers (%ID) and sees more released drug (unbound AUC) at every output time.

    The model's systemic carrier pool is the same for both routes (the whole infused dose also
    reaches the body's blood: no first-pass liver extraction is subtracted), so the gain is the
    first pass alone, and it is small once the circulating carriers dominate. The tumour's
    carriers are counted by particles (≈ 1 000 in the tumour at 1 h: 4.6 % counting error on the
    difference, 2.3 % at 6 h), which does not resolve a gain of a few per cent, so the tumour's
    gain is tested against the gain in carriers entering the box (exact) within 3 SD of counting
    error. Measured (rat, 3 mg/kg, seed 1, hourly to 6 h, two-pore tumour walls): tumour %ID
    +3.0 % at 1 h, −0.4 to +2.3 % at 2–6 h. (With the whole filtration
    through the carriers' pores, before the two-pore wall: carriers entering the box +2.8 %, tumour
    %ID +11 % at 1 h falling to +1.8–3 % at 4–6 h, tumour unbound AUC +26 % at 1 h, +5 % at 6 h.)
    No published number for this comparison is in PHYSICS.md: only the direction is tested."""
    ha, iv = hai_and_iv["hepatic_arterial"], hai_and_iv["intravenous"]
    np.testing.assert_array_equal(ha["time_s"], iv["time_s"])
    np.testing.assert_allclose(ha["carrier_blood_pct_id"], iv["carrier_blood_pct_id"], rtol=1e-12)
    later = np.asarray(ha["time_s"]) > 0
    assert np.all(np.asarray(ha["carrier_box_entered"])[later] > np.asarray(iv["carrier_box_entered"])[later])
    tumour_ha, tumour_iv = np.asarray(ha["carrier_tumour_pct_id"]), np.asarray(iv["carrier_tumour_pct_id"])
    # each run's tumour amount is a count of N tissue particles: relative counting error 1/√N
    def count(m):
        box = sum(np.asarray(m[f"carrier_box_tumour_{k}"]) for k in ("tissue", "bound", "internalised"))
        return box[later] / m["tissue_particle_weight"]
    sigma = np.sqrt(1.0 / count(ha) + 1.0 / count(iv))  # relative SD of the difference
    gain = tumour_ha[later] / tumour_iv[later] - 1.0
    # the first pass adds carriers entering the box (deterministic); the tumour takes its share
    entering_gain = np.asarray(ha["carrier_box_entered"])[later] / np.asarray(iv["carrier_box_entered"])[later] - 1.0
    assert np.all(np.abs(gain - entering_gain) < 3.0 * sigma), (gain, entering_gain, sigma)
    auc_ha = np.asarray(ha["exposure_tumour_all_auc_mean_mol_s_per_m3"])
    auc_iv = np.asarray(iv["exposure_tumour_all_auc_mean_mol_s_per_m3"])
    assert np.all(auc_ha[later] > auc_iv[later]), (auc_ha, auc_iv)
    for m in (ha, iv):
        assert abs(m["carrier_drug_balance_rel_error"][-1]) < 1e-12
        assert abs(m["mass_balance_rel_error"][-1]) < 1e-12
        assert abs(m["systemic_drug_balance_rel_error"][-1]) < 1e-12


# --------------------------------------------------------------------------------------------
# embolisation vs hepatic arterial infusion (rabbit, 3 mg/kg)


def _step_until(model, t_end: float, dt: float) -> None:
    while model.time_s < t_end - 1e-9:
        model.step(min(dt, t_end - model.time_s))


def _regional_drug_ug_per_ml(model) -> dict:
    """Mean sorafenib per tissue volume in the box's tumour (viable + necrotic) and normal liver,
    µg/mL: unbound (free field), bound, and still inside lodged spheres (located, as their release,
    at the upstream node of their segment) — the total is what a tissue homogenate measures."""
    to_host = model.drug.backend.to_host
    c, cb = np.asarray(to_host(model.drug.op.c)), np.asarray(to_host(model.drug.op.cb))
    region = np.asarray(model.region_host)
    cm = model.carriers
    pop = cm.pops[0]
    lodged = np.asarray(to_host(pop.view("state"))) == C.LODGED
    released = np.asarray(to_host(pop.view("released")))
    remaining = float(np.mean(1.0 - released[lodged])) if lodged.any() else 0.0
    metrics = cm.metrics()
    vox = model.grid.voxel_size_m ** 3
    out = {}
    for name, mask in (("tumour", region >= 1), ("normal", region == 0)):
        in_spheres = metrics[f"carrier_box_{name}_lodged"] * cm.carrier.drug_per_carrier_mol * remaining
        free = float(c[mask].mean()) * SORAFENIB_G_PER_MOL
        bound = float(cb[mask].mean()) * SORAFENIB_G_PER_MOL
        carriers = in_spheres / (mask.sum() * vox) * SORAFENIB_G_PER_MOL
        out[name] = {"free": free, "bound": bound, "carriers": carriers, "total": free + bound + carriers}
    return out


def _plasma(model) -> dict:
    s = model.drug.systemic
    return {"cmax_ug_per_ml": s.c_max_mol_per_m3 * SORAFENIB_G_PER_MOL, "t_cmax_s": s.t_c_max_s,
            "auc_ug_min_per_ml": s.auc() * SORAFENIB_G_PER_MOL / 60.0}


@pytest.fixture(scope="module")
def embolisation_run():
    """The TACE scenario, stepped as a run steps it: at its particle step (1 s) over the 2-min
    infusion, while the spheres enter and occlude, then at its step after the infusion (60 s:
    the spheres are lodged and the drug field is implicit) to 72 h; regional drug at the end of the infusion
    ("t = 0" of the published TACE) and at 1 h."""
    sc = nanosim.load_scenario(TACE)
    m = build(sc, get_backend("numba"), np.float64)
    t_inf = float(sc.route.infusion_duration_s)
    _step_until(m, t_inf, float(sc.particles.dt_s))
    out = {"end_of_infusion": _regional_drug_ug_per_ml(m)}
    after = float(sc.particles.dt_after_infusion_s)
    _step_until(m, 1 * HOUR, after)
    out["1 h"] = _regional_drug_ug_per_ml(m)
    out["auc_ratio_1h"] = m.metrics()["exposure_tumour_to_normal_auc_ratio"]
    _step_until(m, float(sc.time.stop_s), after)
    out["plasma"] = _plasma(m)
    out["metrics"] = m.metrics()
    return out


@pytest.fixture(scope="module")
def infusion_run():
    """Hepatic arterial infusion of the same dose (3 mg/kg, 2 min) of sorafenib solution into the
    same rabbit: free drug infused into the systemic compartment ([drug.plasma.intravenous], which
    stands for a hepatic arterial infusion as far as the plasma is concerned: sorafenib's hepatic
    extraction is ≈ 4 %, nanosim.scenario.drug_pk.IntravenousDrug), in the same box (network,
    seed), no carriers. Stepped at 60 s to 6 h: the plasma peaks at the end of the infusion."""
    d = tomllib.loads(TACE.read_text(encoding="utf-8"))
    infusion_s = d["route"]["infusion_duration_s"]
    for table in ("carrier", "route", "particles"):
        d.pop(table)
    d["drug"]["plasma"]["intravenous"] = {"dose_mg_per_kg": 3, "infusion_duration_s": infusion_s}
    d["time"]["stop_s"] = "6 h"
    sc = nanosim.load_scenario(d)
    m = build(sc, get_backend("numba"), np.float64)
    _step_until(m, float(sc.time.stop_s), 60.0)
    return {"plasma": _plasma(m), "metrics": m.metrics(), "ledger": m.drug_ledger()}


@pytest.mark.slow
def test_embolisation_gives_a_lower_plasma_cmax_than_hepatic_arterial_infusion(embolisation_run, infusion_run):
    """Embolic spheres hold the drug in the liver and release it over days (first order,
    ln 10 / 72 h), so the plasma sees a slow input and peaks late and low; the infused drug reaches
    the plasma within minutes. Published (Ning & Wang 2020, rabbit, dose not reported): 2.46 vs
    3.78 µg/mL. Measured (3 mg/kg): embolisation 0.363 µg/mL at 26 h, infusion 1.19 µg/mL at 2 min.
    The absolute values depend on the dose, which the study does not report; their ratio is
    tested below."""
    emb, inf = embolisation_run["plasma"], infusion_run["plasma"]
    assert inf["t_cmax_s"] < 1 * HOUR, "the infused drug peaks within the hour"
    assert emb["t_cmax_s"] > 12 * HOUR, "the embolised drug peaks after hours of release"
    assert emb["cmax_ug_per_ml"] < inf["cmax_ug_per_ml"], (emb, inf)
    assert abs(embolisation_run["metrics"]["systemic_drug_balance_rel_error"]) < 1e-12
    assert abs(infusion_run["metrics"]["systemic_drug_balance_rel_error"]) < 1e-12
    # the same dose on both arms, and both bodies' drug accounts close
    emb_led, inf_led = embolisation_run["metrics"], infusion_run["ledger"]
    assert inf_led["body_dosed_iv_mol"] == pytest.approx(emb_led["ledger_body_given_in_carriers_mol"], rel=1e-12)
    assert inf_led["body_rel_error"] < 1e-12 and emb_led["ledger_body_rel_error"] < 1e-12


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="model C_max ratio embolisation/infusion 0.31 against the published "
                   "0.65 ± 0.04 (Ning & Wang 2020)")
def test_embolisation_to_infusion_cmax_ratio_matches_ning_wang_2020(embolisation_run, infusion_run):
    """The plasma PK is linear in the dose, so the C_max ratio is comparable although the study gives
    no dose: published 2.46/3.78 = 0.651 ± 0.041 (SDs propagated); asserted within 2 SD.

    Measured: 0.363/1.19 = 0.31. The model's embolisation releases first order at 0.032 1/h into a
    body whose sorafenib half-life is 15 h (35 h scaled allometrically to 2.5 kg), so its plasma
    peak is ≈ 0.3 of the dose/V a bolus would give; the infusion arm puts the dose into the plasma
    within its 2 minutes, so its peak is nearly that of a bolus (1.19 µg/mL). The published ratio
    implies a faster release from the spheres or a slower elimination (unconfirmed constants,
    PHYSICS.md §7, §8). (Before the body carriers' drug was tracked exactly, the infusion arm — then
    a carrier releasing within minutes — lost 36 % of its payload and the ratio read 0.48.)"""
    ratio = embolisation_run["plasma"]["cmax_ug_per_ml"] / infusion_run["plasma"]["cmax_ug_per_ml"]
    published = CMAX_EMBOLISATION[0] / CMAX_HEPATIC_ARTERIAL[0]
    sd = published * math.hypot(CMAX_EMBOLISATION[1] / CMAX_EMBOLISATION[0],
                                CMAX_HEPATIC_ARTERIAL[1] / CMAX_HEPATIC_ARTERIAL[0])
    assert abs(ratio - published) <= 2 * sd, f"C_max ratio {ratio:.3f}, published {published:.3f} ± {sd:.3f}"


@pytest.mark.slow
def test_tace_puts_more_drug_in_the_tumour_than_in_normal_liver_at_t0(embolisation_run):
    """Published (rabbit VX2, lipiodol–sorafenib TACE, 3 mg/kg, t = 0): tumour 3.53 vs normal liver
    0.75 µg/mL (4.7:1), tissue homogenates, i.e. total drug including what is still in the embolic
    agent. The model's counterpart: free + bound + still-in-spheres drug per tissue volume, at the
    end of the 2-min infusion. The direction is asserted.

    The scenario's tumour arteries branch inside the viable rim (``arterial_branch_rho = 0.925``,
    the middle of the 75 µm rim; HCC's intratumoral arteries, and 100–300 µm particles found inside
    VX2 tumours on histology: nanosim.vasculature.generate, "Sources"), so the 13 µm spheres lodge
    in the rim, where the tumour's arteries narrow below their diameter. Measured (80³ × 20 µm, 1 s
    steps while the spheres enter): 69 spheres enter the box, 65 lodge, all at ρ = 0.925 in tumour
    voxels (4 stay in dead-end vessels; 64 narrow arterial segments occluded); tumour 9.18 vs
    normal 0.00057 µg/mL (ratio ≈ 1.6e4; 1.6e3 at 1 h), almost all of the tumour's in the spheres, the normal liver's only the free drug that has
    diffused out of the tumour. The direction is the published one, the size is not: the box's
    normal liver (the margin within 0.6 mm of the tumour) gets arterial blood only through the 10 %
    of the tree's terminals that end in it, and the 64 segments where the tree first narrows below
    13 µm all start at tumour-feeding branch points in the rim, those leading to normal-liver
    terminals too, so no sphere lodges in the liver; published normal liver is sampled away from
    the tumour and holds drug that reached it through its own arteries (non-target deposition),
    which the box does not represent. (At 40³ × 40 µm with 2 s steps: with the branch points 5 µm
    below the tumour surface, ρ = 0.99, 22 of the 71 lodged spheres fall into normal-labelled
    voxels and the ratio reads 15; with them on the former shell just outside the tumour, ρ = 1.05,
    the spheres lodge in the normal-liver margin and it reads 0.20.)"""
    r = embolisation_run["end_of_infusion"]
    assert r["tumour"]["total"] > r["normal"]["total"], r


@pytest.mark.slow
def test_tace_released_unbound_drug_is_higher_in_the_tumour_than_in_normal_liver_early(embolisation_run):
    """The unbound drug the spheres release (the model's exposure quantity) is higher in the tumour
    than in the box's normal liver at early times, the direction of the published ≈ 5:1 (total drug,
    t = 0), though smaller than the total-drug ratio: the spheres sit in the tumour's viable rim,
    37.5 µm inside its surface, and the released drug spreads into the margin liver as well
    (uptake length √(D/k) ≈ 0.4 mm). Measured (80³ × 20 µm): mean unbound 7.3:1 at the end of the
    infusion, 2.1:1 at 1 h, tumour/normal unbound AUC 2.4:1 at 1 h (2.09 at 72 h). (With the
    spheres on the former shell just outside the tumour, 40 µm voxels: 2.7:1, 1.6:1, 1.7:1 and
    1.64.)"""
    for when in ("end_of_infusion", "1 h"):
        r = embolisation_run[when]
        assert r["tumour"]["free"] > r["normal"]["free"], (when, r)
    assert embolisation_run["auc_ratio_1h"] > 1.0
