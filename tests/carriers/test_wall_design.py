"""Two-pore filtration share and the sinusoids' clearance bound (nanosim.carriers.design)."""

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from nanosim.carriers import design as D
from nanosim.carriers.systemic import SystemicPK, body_from
from nanosim.kernels import carriers as ck
from nanosim.scenario.carriers import Carrier, Extravasation
from nanosim.scenario.loader import read_preset
from nanosim.vasculature.network import WallType


def _network(walls, radius=5e-6, length=100e-6):
    m = len(walls)
    return NS(n_segments=m, seg_wall=np.array(walls), seg_radius_m=np.full(m, radius),
              seg_length_m=np.full(m, length), seg_pore_radius_m=np.full(m, 200e-9))


def _carrier():
    return Carrier.model_validate(read_preset("peg_liposome"))


@pytest.mark.parametrize("share, small_sigma, expected_share", [
    (None, None, 1 - 0.82),                  # small pores reflecting proteins completely: the bound
    (None, 0.91, (0.91 - 0.82) / 0.91),      # the tumour default: small pores like a normal wall
    (None, 0.5, 0.0),                        # σ_T above σ_S: no share
    (1.0, 0.91, 1.0), (0.05, None, 0.05)])   # given shares win
def test_peclet_uses_the_share_of_filtration_through_the_carriers_pores(share, small_sigma, expected_share):
    """Pe = s J_v W / P with s = (σ_S − σ_T)/σ_S by default (two-pore wall) or as given."""
    net = _network([WallType.TUMOUR] * 3)
    tumour = {"pore_area_fraction": 1e-4, "wall_thickness_m": 1e-6}
    if share is not None:
        tumour["filtration_share"] = share
    if small_sigma is not None:
        tumour["small_pore_protein_reflection"] = small_sigma
    ex = Extravasation(tumour=tumour)
    jv = np.array([1e-9, 3e-9, -2e-9])
    sc = D.build_classes(_carrier(), ex, net, None, jv, protein_sigma=np.full(3, 0.82))[0]
    lam = sc.radius_m / 200e-9
    perm = 1e-4 * ck.dechadilok_deen_h.py(lam) * sc.d0_plasma_m2_per_s / 1e-6
    pe = expected_share * jv * ck.dechadilok_deen_w.py(lam) / perm
    np.testing.assert_allclose(sc.seg_peclet, pe, rtol=1e-12)
    np.testing.assert_allclose(sc.seg_out_rate_per_s, 2.0 / 5e-6 * perm * D.bernoulli(-pe), rtol=1e-12)


def test_two_pore_share_reproduces_the_walls_protein_reflection():
    # σ_T of the whole wall = (1 − s)·σ_S + s·0: the share inverts the mixture exactly
    sig_t = np.array([0.0, 0.3, 0.82, 0.91, 1.0])
    for sig_s in (0.91, 1.0):
        s = D.filtration_share(sig_t, np.full(5, sig_s))
        ok = sig_t <= sig_s
        np.testing.assert_allclose((1 - s[ok]) * sig_s, sig_t[ok], rtol=0, atol=1e-15)
        assert np.all(s[~ok] == 0) and np.all((0 <= s) & (s <= 1))
    # σ_S not given: the bound 1 − σ_T
    np.testing.assert_allclose(D.filtration_share(sig_t, np.full(5, np.nan)), 1 - sig_t, atol=1e-15)


def test_default_tumour_wall_passes_a_tenth_of_its_filtration_through_large_pores():
    ex = Extravasation()
    assert ex.tumour.small_pore_protein_reflection == 0.91 and ex.tumour.filtration_share is None
    assert ex.sinusoid.small_pore_protein_reflection is None  # sinusoids keep the bound 1 − σ_T
    net = _network([WallType.TUMOUR, WallType.SINUSOID])
    *_, small = D.wall_pores_per_segment(net, ex)
    s = D.filtration_share(np.array([0.82, 0.91]), small)
    np.testing.assert_allclose(s, [0.09 / 0.91, 0.09], rtol=1e-12)


def test_sinusoid_bound_is_the_livers_share_of_the_clearance_per_wall_area():
    """P_max = f_liver k10 V_1 / ((S/V) V_liver): with it, the box's sinusoids spread over the
    whole liver clear exactly the liver's share of the carrier's clearance."""
    net = _network([WallType.SINUSOID] * 4 + [WallType.TUMOUR] * 2, radius=4e-6, length=50e-6)
    region = np.zeros((10, 10, 10), np.uint8)
    region[:5] = 1  # half the box is tumour
    vox = (20e-6) ** 3
    pk = SystemicPK.one_compartment(24 * 3600.0, 1e-6, liver_uptake_fraction=0.8)
    body = body_from("mouse")
    bound, info = D.sinusoid_permeability_bound(net, region, vox, pk, body)
    area = 4 * 2 * math.pi * 4e-6 * 50e-6
    v_normal = 500 * vox
    v_liver = body.liver_mass_kg / D.LIVER_DENSITY_KG_PER_M3
    cl_liver = 0.8 * math.log(2) / (24 * 3600.0) * 1e-6
    assert bound == pytest.approx(cl_liver / (area / v_normal * v_liver), rel=1e-12)
    assert bound * info["sinusoid_surface_per_volume_per_m"] * v_liver == pytest.approx(cl_liver, rel=1e-12)
    # applied to sinusoid walls only, and only where the pore model exceeds it
    ex = Extravasation(sinusoid={"pore_area_fraction": 0.07, "wall_thickness_m": 0.1e-6, "pore_radius_m": 70e-9})
    free = D.build_classes(_carrier(), ex, net, None, None)[0]
    capped = D.build_classes(_carrier(), ex, net, None, None, sinusoid_bound_m_per_s=bound)[0]
    sin = net.seg_wall == WallType.SINUSOID
    assert np.all(free.seg_permeability_m_per_s[sin] > bound)
    np.testing.assert_array_equal(capped.seg_permeability_m_per_s[sin], bound)
    np.testing.assert_array_equal(capped.seg_permeability_m_per_s[~sin], free.seg_permeability_m_per_s[~sin])
    # no sinusoids in the box: no bound
    assert D.sinusoid_permeability_bound(_network([WallType.TUMOUR]), region, vox, pk, body)[0] == math.inf


def _calibration_case(effective=1.5e-10, radius=45e-9, share=None):
    walls = [WallType.TUMOUR] * 5 + [WallType.SINUSOID]
    net = NS(n_segments=6, seg_wall=np.array(walls), seg_radius_m=np.array([4, 5, 6, 8, 10, 5]) * 1e-6,
             seg_length_m=np.array([50, 80, 120, 60, 200, 100]) * 1e-6,
             seg_pore_radius_m=np.array([200, 250, 300, 220, 280, 70]) * 1e-9)
    tumour = {"pore_area_fraction": 9e-5, "wall_thickness_m": 1e-6, "small_pore_protein_reflection": 0.91,
              "effective_permeability_m_per_s": effective, "effective_permeability_radius_m": radius}
    if share is not None:
        tumour["filtration_share"] = share
    ex = Extravasation(tumour=tumour)
    carrier = Carrier.model_validate({**read_preset("peg_liposome"), "radius_m": 45e-9})
    jv = np.array([1e-9, 3e-9, -2e-9, 1.1e-8, 0.0, 1e-9])  # m/s: filtering, absorbing and still walls
    return net, ex, carrier, jv


def test_calibrated_tumour_walls_reproduce_the_measured_effective_permeability():
    """An intravital measurement reports the whole flux per wall area per plasma concentration.
    Measured on the calibrated walls with the reference particle (k_out · V_plasma / A = P·B(−Pe),
    area-weighted over the tumour walls), it gives back the value the walls were calibrated to."""
    net, ex, carrier, jv = _calibration_case()
    cal = {}
    sc = D.build_classes(carrier, ex, net, None, jv, protein_sigma=np.full(6, 0.82), calibration=cal)[0]
    t = net.seg_wall == WallType.TUMOUR
    area = 2 * np.pi * net.seg_radius_m * net.seg_length_m
    p_eff = sc.seg_out_rate_per_s / (2.0 / net.seg_radius_m)  # haematocrit 0: S/V_plasma = 2/r
    assert np.sum(area[t] * p_eff[t]) / np.sum(area[t]) == pytest.approx(1.5e-10, rel=1e-12)
    # what was scaled: γ and the share by one factor, so Pe (the split between diffusion and
    # convection on each wall) is unchanged; the sinusoid is untouched
    ex0 = ex.model_copy(update={"tumour": ex.tumour.model_copy(update={"effective_permeability_m_per_s": 0.0})})
    sc0 = D.build_classes(carrier, ex0, net, None, jv, protein_sigma=np.full(6, 0.82))[0]
    c = cal["tumour"]["factor"]
    np.testing.assert_allclose(sc.seg_permeability_m_per_s[t], c * sc0.seg_permeability_m_per_s[t], rtol=1e-12)
    np.testing.assert_allclose(sc.seg_filtration_share[t], c * sc0.seg_filtration_share[t], rtol=1e-12)
    np.testing.assert_allclose(sc.seg_peclet, sc0.seg_peclet, rtol=1e-12)
    assert sc.seg_permeability_m_per_s[5] == sc0.seg_permeability_m_per_s[5]
    p_eff0 = sc0.seg_out_rate_per_s / (2.0 / net.seg_radius_m)
    assert cal["tumour"]["effective_before_m_per_s"] == pytest.approx(
        np.sum(area[t] * p_eff0[t]) / np.sum(area[t]), rel=1e-12)
    assert c == pytest.approx(1.5e-10 / cal["tumour"]["effective_before_m_per_s"], rel=1e-12)
    assert "sinusoid" not in cal


def test_without_filtration_the_calibration_sets_the_diffusive_permeability():
    net, ex, carrier, _ = _calibration_case()
    sc = D.build_classes(carrier, ex, net, None, None)[0]
    t = net.seg_wall == WallType.TUMOUR
    area = 2 * np.pi * net.seg_radius_m * net.seg_length_m
    assert np.sum(area[t] * sc.seg_permeability_m_per_s[t]) / np.sum(area[t]) == pytest.approx(1.5e-10, rel=1e-12)
    assert np.all(sc.seg_peclet == 0)


def test_default_tumour_walls_are_calibrated_and_explicit_ones_are_not():
    ex = Extravasation()
    assert ex.tumour.effective_permeability_m_per_s == 1.5e-10
    assert ex.tumour.effective_permeability_radius_m == 45e-9
    assert ex.sinusoid.effective_permeability_m_per_s is None
    given = Extravasation(tumour={"pore_area_fraction": 1e-4, "wall_thickness_m": 1e-6})
    assert given.tumour.effective_permeability_m_per_s is None


@pytest.mark.parametrize("kwargs, words", [
    ({"radius": 400e-9}, ["extravasation.tumour.effective_permeability_m_per_s", "no tumour wall", "pore_radius_m"]),
    ({"effective": 1e-6, "share": 0.5}, ["extravasation.tumour.effective_permeability_m_per_s", "at most 1"]),
])
def test_calibration_that_cannot_be_met_names_the_field(kwargs, words):
    net, ex, carrier, jv = _calibration_case(**kwargs)
    with pytest.raises(ValueError) as err:
        D.build_classes(carrier, ex, net, None, jv, protein_sigma=np.full(6, 0.82))
    for w in words:
        assert w in str(err.value)
