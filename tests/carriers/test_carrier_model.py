"""The carrier model end to end: extravasation against Patlak, weight conservation, embolisation, resume."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from nanosim.backends import get_backend
from nanosim.carriers import design as D
from nanosim.kernels import carriers as ck
from nanosim.kernels import compartments as C
from nanosim.model import build
from nanosim.scenario import load_scenario

MMHG = 133.322387415


def _scenario(**over):
    """A straight tumour vessel through a 200 µm box, constant plasma carriers (very long half-life)."""
    base = {
        "seed": 3,
        "grid": {"shape": [20, 10, 10], "voxel_size_m": "10 um"},
        "tissue": {"tumour": {"kind": "sphere", "center_m": ["100 um", "50 um", "50 um"], "radius_m": "300 um"}},
        "network": {"kind": "straight", "start_m": ["0 um", "50 um", "50 um"], "end_m": ["200 um", "50 um", "50 um"],
                    "radius_m": "8 um", "wall": "tumour", "segments": 4,
                    "inlet_pressure_pa": "16 mmHg", "outlet_pressure_pa": "15 mmHg"},
        "carrier": {"preset": "peg_liposome",
                    "blood": {"half_life_fast_s": "1e9 s", "half_life_slow_s": "1e9 s", "fast_fraction": 0.0}},
        "extravasation": {"tumour": {"pore_area_fraction": 0.1, "wall_thickness_m": "1 um",
                                     "pore_radius_m": "200 nm"}},
        "body": {"species": "mouse", "tumour_volume_m3": "100 mm^3"},
        "route": {"kind": "intravenous", "dose_carriers": "1 nmol"},
        "particles": {"tissue_particles": 20000, "vessel_packets_per_step": 50, "dt_s": "5 s"},
        "time": {"stop_s": "100 s"},
    }
    for key, value in over.items():
        node = base
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return load_scenario(base)


def _model(sc, backend="numba"):
    return build(sc, get_backend(backend), np.float64)


def test_extravasated_fraction_matches_patlak_through_a_single_vessel():
    """Packets cross the 200 µm vessel in well under a step, so each step the box's vessel passes on
    ``1 − exp(−J_s A / (Q_p C))`` of what entered: the Patlak flux (independent implementation in
    nanosim.kernels.carriers) over the wall area, against the plasma flow. Deterministic: exact to
    round-off."""
    sc = _scenario()
    m = _model(sc)
    cm = m.carriers
    net, flow = cm.network, cm.flow
    r, area = net.seg_radius_m[0], 2 * math.pi * net.seg_radius_m[0] * net.seg_length_m.sum()
    lam = 50e-9 / 200e-9
    d0 = ck.stokes_einstein_diffusivity.py(310.15, 1.2e-3, 50e-9)
    perm = 0.1 * ck.dechadilok_deen_h.py(lam) * d0 / 1e-6
    js = ck.patlak_flux.py(0.0, 1.0 - ck.dechadilok_deen_w.py(lam), perm, 1.0, 0.0)  # per unit C_v, m/s
    qp = abs(flow.seg_flow_m3_per_s[0]) * (1 - flow.seg_haematocrit[0])
    expected = 1.0 - math.exp(-js * area / qp)
    assert 1e-4 < expected < 0.5, "the test case should extravasate a measurable but partial fraction"
    transit = net.seg_length_m.sum() / abs(flow.seg_velocity_m_per_s[0])
    assert transit < 0.2 * 5.0
    for _ in range(20):
        m.step(5.0)
    # packets enter at the start of a step and move for the whole step: all have crossed
    assert cm.compartment_weights()["vessel"] == 0.0
    fraction = cm.ledger["extravasated"] / cm.ledger["entered"]
    assert fraction == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("pe", [-3.0, -0.1, 0.0, 0.5, 5.0, 40.0])
def test_wall_rates_are_the_two_halves_of_the_patlak_flux(pe):
    """k_out·C_v/(S/V_plasma) − k_in·C_i/(S/V) = J_s for any Péclet number (Kedem–Katchalsky)."""
    perm = 2e-10
    sigma = 0.3
    jv = pe * perm / (1 - sigma)
    cv, ci = 3.0, 1.2
    js = ck.patlak_flux.py(jv, sigma, perm, cv, ci)
    out = perm * D.bernoulli(-pe) * cv
    back = perm * D.bernoulli(pe) * ci
    assert out - back == pytest.approx(js, rel=1e-12, abs=1e-30)


def test_weight_is_conserved_across_all_compartments():
    """Entered = vessel + wall + free + bound + internalised + lodged + exited + intravasated + cleared,
    to float64 round-off, with every transition switched on and fast."""
    sc = _scenario(**{"carrier.tumour.binding_rate_per_s": 0.02, "carrier.tumour.unbinding_rate_per_s": 0.01,
                      "carrier.tumour.internalisation_rate_per_s": 0.01,
                      "carrier.tumour.bound_internalisation_rate_per_s": 0.01,
                      "carrier.tumour.lymphatic_clearance_rate_per_s": 0.005, "particles.dt_s": "2 s"})
    m = _model(sc)
    cm = m.carriers
    for _ in range(50):
        m.step(2.0)
        assert abs(cm.balance_error()) < 1e-13
    cw = cm.compartment_weights()
    for name in ("tissue", "bound", "internalised"):
        assert cw[name] > 0, name
    assert cm.ledger["cleared"] > 0 and cm.ledger["intravasated"] > 0


def test_numpy_and_numba_give_the_same_histories():
    sc = _scenario(**{"particles.dt_s": "5 s"})
    a, b = _model(sc, "numpy"), _model(sc, "numba")
    for _ in range(8):
        a.step(5.0)
        b.step(5.0)
    pa, pb = a.carriers.pops[0], b.carriers.pops[0]
    assert pa.n == pb.n
    np.testing.assert_array_equal(pa.view("ids"), pb.view("ids"))
    np.testing.assert_array_equal(pa.view("state"), pb.view("state"))
    # positions: the same Philox normals; libm differences of a few ulp only
    np.testing.assert_allclose(pa.view("x"), pb.view("x"), rtol=0, atol=1e-15)
    np.testing.assert_allclose(pa.view("weight"), pb.view("weight"), rtol=1e-13)


def test_resume_continues_bit_for_bit():
    sc = _scenario()
    full = _model(sc)
    for _ in range(10):
        full.step(5.0)
    half = _model(sc)
    for _ in range(5):
        half.step(5.0)
    arrays, attrs = copy.deepcopy(half.state_arrays()), copy.deepcopy(half.state_attrs())
    resumed = _model(sc)
    resumed.load_state(arrays, attrs)
    for _ in range(5):
        resumed.step(5.0)
    fa, fb = full.carriers.pops[0], resumed.carriers.pops[0]
    for name in fa.ARRAYS:
        np.testing.assert_array_equal(fa.view(name), fb.view(name), err_msg=name)
    assert full.carriers.ledger == resumed.carriers.ledger


def _emb_scenario(**over):
    base = {
        "seed": 5,
        "grid": {"shape": [30, 20, 10], "voxel_size_m": "10 um"},
        "tissue": {"tumour": {"kind": "sphere", "center_m": ["150 um", "100 um", "50 um"], "radius_m": "80 um"}},
        "network": {"kind": "bifurcation", "inlet_m": ["0 um", "100 um", "50 um"], "parent_radius_m": "9 um",
                    "child_radii_m": ["5 um", "8 um"], "lengths_m": ["100 um", "150 um", "150 um"],
                    "wall": "artery"},
        "carrier": {"preset": "plga_microsphere_iron"},
        "body": {"species": "rabbit", "tumour_volume_m3": "1000 mm^3", "hepatic_arterial_flow_m3_per_s": "400 nl/min"},
        "route": {"kind": "embolisation", "dose_carriers": 1e-21, "infusion_duration_s": "60 s"},
        "particles": {"vessel_packets_per_step": 50, "dt_s": "1 s"},
        "time": {"stop_s": "60 s"},
    }
    base.update(over)
    return load_scenario(base)


def test_embolisation_lodges_in_the_narrow_branch_and_redistributes_the_flow():
    """Spheres of 6.5 µm radius split by flow at the bifurcation: those entering the 5 µm child lodge
    there (it is narrower than they are) and occlude it; the flow is recomputed, the whole parent
    flow then goes down the 8 µm child, and no later sphere enters the occluded branch."""
    sc = _emb_scenario()
    m = _model(sc)
    cm = m.carriers
    net = cm.network
    narrow = int(np.argmin(np.where(np.arange(net.n_segments) == 0, np.inf, net.seg_radius_m)))
    wide = 3 - narrow
    q0 = np.abs(cm.flow.seg_flow_m3_per_s).copy()
    assert q0[narrow] > 0.05 * q0[0], "both branches carry flow before embolisation"
    occluded_at = None
    for k in range(60):
        m.step(1.0)
        if occluded_at is None and cm.occluded.any():
            occluded_at = k
            n_lodged_then = int(np.count_nonzero(cm.pops[0].view("state") == C.LODGED))
    assert occluded_at is not None, "a sphere should have lodged in the narrow branch"
    assert cm.occluded[narrow] and not cm.occluded[wide] and not cm.occluded[0]
    q1 = np.abs(cm.flow.seg_flow_m3_per_s)
    assert q1[narrow] == 0.0
    assert q1[wide] == pytest.approx(q1[0], rel=1e-9)
    # parent and wide child in series (same viscosity: constant haematocrit) carry the whole drop
    g = cm.flow.seg_conductance_m3_per_pa_s
    dp = (40.0 - 15.0) * MMHG
    assert q1[wide] == pytest.approx(dp * g[0] * g[wide] / (g[0] + g[wide]), rel=1e-9)
    assert q1[wide] > q0[wide]
    pop = cm.pops[0]
    st = pop.view("state")
    lodged_segs = pop.view("seg")[st == C.LODGED]
    # lodged only in the narrow child; at most the spheres already on their way when it closed
    assert set(np.unique(lodged_segs)) == {narrow}
    assert int(np.count_nonzero(st == C.LODGED)) == n_lodged_then
    assert cm.ledger["exited"] > 0  # later spheres pass the wide child (8 µm > 6.5 µm) and leave
    assert abs(cm.balance_error()) < 1e-13


def test_a_scenario_without_drug_or_carrier_is_refused():
    from nanosim.scenario import ScenarioError

    with pytest.raises(ScenarioError) as err:
        load_scenario({"grid": {"shape": [4, 4, 4], "voxel_size_m": "10 um"}, "time": {"stop_s": "1 h"}})
    assert "drug" in str(err.value)


def test_carrier_needs_body_route_and_network():
    from nanosim.scenario import ScenarioError

    with pytest.raises(ScenarioError) as err:
        load_scenario({"grid": {"shape": [4, 4, 4], "voxel_size_m": "10 um"}, "time": {"stop_s": "1 h"},
                       "carrier": {"preset": "peg_liposome"}})
    text = str(err.value)
    for key in ("body", "route", "network"):
        assert key in text


def test_hepatic_arterial_infusion_adds_the_first_pass_to_the_arterial_inlet():
    """During a hepatic arterial infusion the box's arterial inlet receives, on top of the systemic
    plasma, its share Q_inlet/Q_hepatic-artery (plasma flows) of the carriers infused in the step."""
    over = {"network": {"kind": "straight", "start_m": ["0 um", "50 um", "50 um"],
                        "end_m": ["200 um", "50 um", "50 um"], "radius_m": "8 um", "wall": "artery",
                        "inlet_pressure_pa": "16 mmHg", "outlet_pressure_pa": "15 mmHg"},
            "route": {"kind": "hepatic_arterial", "dose_carriers": "1 nmol", "infusion_duration_s": "50 s"}}
    sc_iv = _scenario(**{"route": {"kind": "intravenous", "dose_carriers": "1 nmol", "infusion_duration_s": "50 s"},
                         "network": over["network"]})
    sc_ha = _scenario(**over)
    iv, ha = _model(sc_iv), _model(sc_ha)
    for _ in range(10):  # the 50 s infusion
        iv.step(5.0)
        ha.step(5.0)
    cm = ha.carriers
    q_inlet = cm.inlet_q.sum()
    q_ha = cm.body.hepatic_arterial_flow_m3_per_s * (1 - cm.body.haematocrit)
    dose = cm.dose_carriers
    # the systemic part is the same for both routes (the infusion also reaches the plasma)
    assert ha.carriers.systemic.central == iv.carriers.systemic.central
    first_pass = ha.carriers.ledger["entered"] - iv.carriers.ledger["entered"]
    assert first_pass == pytest.approx(dose * q_inlet / q_ha, rel=1e-12)
    # mouse: plasma flow of the hepatic artery ≈ 0.27 mL/min against 1 mL of plasma: the infused
    # stream is ≈ 9× richer than the mixed plasma, averaged over a 50 s infusion
    assert first_pass > 5 * iv.carriers.ledger["entered"], "the first pass dominates during the infusion"


def test_size_classes_split_the_dose_by_number():
    """A log-normal size distribution runs as equal-number classes: each class receives its share
    of what enters, and smaller classes diffuse faster (Stokes–Einstein, D ∝ 1/r)."""
    sc = _scenario(**{"carrier.radius_gsd": 1.5, "carrier.size_classes": 3})
    m = _model(sc)
    cm = m.carriers
    assert len(cm.classes) == 3
    r = np.array([c.radius_m for c in cm.classes])
    assert r[0] < r[1] < r[2] and r[1] == pytest.approx(50e-9)
    d = np.array([c.d0_water_m2_per_s for c in cm.classes])
    np.testing.assert_allclose(d * r, d[1] * r[1], rtol=1e-12)
    for _ in range(5):
        m.step(5.0)
    entered = [float(p.view("weight")[p.view("state") != C.INACTIVE].sum()) for p in cm.pops]
    assert all(e >= 0 for e in entered)
    assert abs(cm.balance_error()) < 1e-13
    out = cm.ledger["extravasated"]
    assert out > 0


def test_embolisation_resume_restores_the_occluded_network():
    """A checkpoint taken after occlusions reloads into a fresh model: the flow of the occluded
    network is recomputed and the run continues exactly as an uninterrupted one."""
    sc = _emb_scenario()
    full = _model(sc)
    for _ in range(30):
        full.step(1.0)
    half = _model(sc)
    for _ in range(15):
        half.step(1.0)
    assert half.carriers.occluded.any(), "the checkpoint should hold an occluded segment"
    arrays, attrs = copy.deepcopy(half.state_arrays()), copy.deepcopy(half.state_attrs())
    resumed = _model(sc)
    resumed.load_state(arrays, attrs)
    np.testing.assert_array_equal(resumed.carriers.flow.seg_flow_m3_per_s, half.carriers.flow.seg_flow_m3_per_s)
    for _ in range(15):
        resumed.step(1.0)
    a, b = full.carriers.pops[0], resumed.carriers.pops[0]
    for name in a.ARRAYS:
        np.testing.assert_array_equal(a.view(name), b.view(name), err_msg=name)
    assert full.carriers.ledger == resumed.carriers.ledger


def test_release_feeds_the_free_drug_and_the_drug_ledger_closes():
    """With a release law, drug leaves the carriers where they are: the box's drug ledger (entered in
    carriers = still in carriers + released + left in carriers) closes to round-off, and every mol
    released in tissue is added to the free-drug field (its own ledger closes too)."""
    sc = _scenario(**{
        "carrier.release": {"law": {"kind": "first_order", "rate_per_s": "2e-3 1/s"}, "burst_fraction": 0.2,
                            "burst_on": "tissue"},
        "drug": {"permeability_m_per_s": "1e-7 m/s", "normal": {"diffusivity_m2_per_s": "2e-10 m^2/s"},
                 "plasma": {"kind": "constant", "concentration_mol_per_m3": 0.0}},
        "transport": {"scheme": "implicit"}})
    m = _model(sc)
    cm = m.carriers
    for _ in range(20):
        m.step(5.0)
        assert abs(cm.drug_balance_error()) < 1e-13
        assert abs(m.drug.mass_balance_error()) < 1e-12
    released_tissue = sum(cm.drug[k] for k in ("released_free", "released_bound", "released_internalised",
                                               "released_lodged"))
    assert released_tissue > 0
    assert m.drug.ledger_mol[5] == pytest.approx(released_tissue, rel=1e-12)
    # the pool's clock: carriers from plasma arrive having released part of their payload already
    t = m.time_s
    assert cm.pool_released_fraction() == pytest.approx((1 - 0.2) * -math.expm1(-2e-3 * t), rel=1e-12)
