"""Plasma protein and tissue binding of sorafenib (nanosim.drug.binding), PHYSICS.md §8.

References are the mass-action equations themselves (checked by substituting the root back) and
the closed-form root for one protein (a quadratic). Tolerances follow from round-off: the root is
found to 4 ulp, so substituting it back reproduces the total to about 1e-15 relative.
"""

import doctest
import math

import numpy as np
import pytest

from nanosim.drug import binding as B
from nanosim.drug.binding import (BindingProtein, PlasmaBinding, TissueBinding, human_plasma_binding,
                                  plasma_binding_for, retardation_factor)

UG_PER_ML_TO_MOL_PER_M3 = 1e-3 / 0.4648  # 1 µg/mL = 1 g/m³ of sorafenib (464.8 g/mol)


def test_doctests():
    assert doctest.testmod(B).failed == 0


def test_linear_unbound_fraction_formula():
    b = human_plasma_binding()
    expected = 1.0 / (1.0 + 1.24e6 * 600e-6 + 1.40e5 * 20e-6)  # 1/(1 + K_alb[Alb] + K_aag[AAG]) in molar units
    assert b.unbound_fraction_linear() == pytest.approx(expected, rel=1e-15)
    assert b.capacity_mol_per_m3 == pytest.approx(0.62, rel=1e-15)


def test_default_proteins_bind_about_99_5_percent(capsys):
    # Reported, not tuned: the label says 99.5 % bound (0.5 % unbound). With albumin 600 µM,
    # AAG 20 µM and the association constants of PHYSICS.md §8 (one site each) the model binds
    # more tightly: 0.134 % unbound at low drug and 0.135 % at the median HCC trough 3.2 µg/mL.
    b = human_plasma_binding()
    trough = 3.2 * UG_PER_ML_TO_MOL_PER_M3
    fu_lin, fu_trough = b.unbound_fraction_linear(), b.unbound_fraction(trough)
    with capsys.disabled():
        print(f"\n  sorafenib bound in human plasma: {100 * (1 - fu_lin):.3f} % (linear), "
              f"{100 * (1 - fu_trough):.3f} % at 3.2 µg/mL; label {100 * B.SORAFENIB_LABEL_BOUND_FRACTION:.1f} %")
    assert 1 - fu_lin == pytest.approx(0.998663, abs=1e-6)
    assert 1 - fu_trough == pytest.approx(0.998647, abs=1e-6)
    # "≈ 99.5 %": same side of 99 %, unbound within a factor 4 of the label's 0.5 %
    assert 0.99 < 1 - fu_trough < 1 and 0.25 < fu_trough / (1 - B.SORAFENIB_LABEL_BOUND_FRACTION) < 4


def test_exact_root_satisfies_mass_action():
    b = human_plasma_binding()
    for c in np.logspace(-12, 4, 81):
        u = b.unbound_concentration(c)
        assert c / (1 + 744 + 2.8) * (1 - 1e-15) <= u <= c
        assert b.total_concentration(u) == pytest.approx(c, rel=2e-15)
    assert b.unbound_concentration(0.0) == 0.0
    assert b.unbound_fraction(0.0) == b.unbound_fraction_linear()


def test_one_protein_matches_quadratic_root():
    # C = u + nPKu/(1 + Ku)  ⇔  K u² + (1 + K(nP − C)) u − C = 0; the positive root written
    # without cancellation: u = 2C / (b + √(b² + 4KC)), b = 1 + K(nP − C)
    p = BindingProtein("albumin", 0.6, 1240.0, sites=2.0)
    b = PlasmaBinding((p,))
    for c in np.logspace(-9, 3, 49):
        bb = 1 + p.association_m3_per_mol * (p.site_concentration_mol_per_m3 - c)
        disc = math.sqrt(bb * bb + 4 * p.association_m3_per_mol * c)
        u = 2 * c / (bb + disc) if bb > 0 else (disc - bb) / (2 * p.association_m3_per_mol)
        assert b.unbound_concentration(c) == pytest.approx(u, rel=1e-14)


def test_linear_and_exact_agree_at_low_drug_and_part_near_saturation():
    b = human_plasma_binding()
    f0 = b.unbound_fraction_linear()
    k_max = 1240.0  # the larger association constant, m³/mol
    for c in (1e-9, 1e-7, 1e-5, 1e-3):
        # saturation frees at most K u ≤ K f0 C extra relative (first order); 10× margin
        assert 0 <= b.unbound_fraction(c) / f0 - 1 <= 10 * k_max * f0 * c
    fu = [b.unbound_fraction(c) for c in np.logspace(-6, 2, 33)]
    assert all(a <= b_ for a, b_ in zip(fu, fu[1:]))  # rises with total drug
    cap = b.capacity_mol_per_m3
    assert b.unbound_fraction(cap) > 10 * f0  # near saturation the linear formula fails
    big = 1e3 * cap
    assert b.unbound_fraction(big) == pytest.approx(1 - cap / big, rel=1e-5)  # sites full


def test_no_proteins_means_all_unbound():
    b = PlasmaBinding(())
    assert b.unbound_fraction_linear() == 1.0 and b.unbound_fraction(0.3) == 1.0


def test_species_reuse_human_values():
    for species in ("mouse", "rat", "rabbit"):
        b = plasma_binding_for(species)
        assert b.unbound_fraction_linear() == human_plasma_binding().unbound_fraction_linear()
        assert "human" in b.note and species in b.note
    with pytest.raises(ValueError, match="unknown species 'dog'"):
        plasma_binding_for("dog")
    assert "albumin: 600 µM" in repr(plasma_binding_for("human"))


def test_tissue_retardation_and_operator_rates():
    t = TissueBinding(b_max_mol_per_m3=0.2, k_d_mol_per_m3=0.05, k_off_per_s=0.01)
    assert t.retardation_factor() == 5.0 == retardation_factor(0.2, 0.05)
    assert t.local_retardation_factor(0.0) == 5.0
    assert t.local_retardation_factor(0.05) == pytest.approx(1 + 0.2 * 0.05 / 0.1**2, rel=1e-15)
    assert t.bound_concentration(0.05) == pytest.approx(0.1, rel=1e-15)
    k_on, k_off = t.operator_rates()
    assert k_off == 0.01 and k_on / k_off == pytest.approx(t.retardation_factor() - 1, rel=1e-15)
    assert "retardation R = 5" in repr(t)


def test_kinetic_binding_tends_to_retardation():
    # 0-D pool with loss k: C' = −kC − k_on C + k_off C_b, C_b' = k_on C − k_off C_b. Its slow
    # eigenvalue tends to −k/R as k_off → ∞ at fixed k_on/k_off = R − 1, with an O(k/k_off) gap.
    k, r = 1e-3, 5.0
    for k_off in (1e-1, 1e0, 1e1):
        t = TissueBinding(b_max_mol_per_m3=(r - 1) * 0.05, k_d_mol_per_m3=0.05, k_off_per_s=k_off)
        k_on, k_off = t.operator_rates()
        m = np.array([[-k - k_on, k_off], [k_on, -k_off]])
        slow = max(np.linalg.eigvals(m).real)
        assert slow == pytest.approx(-k / r, rel=3 * k / k_off)


def test_errors_name_the_field():
    with pytest.raises(ValueError, match="albumin.concentration_mol_per_m3"):
        BindingProtein("albumin", -1.0, 1240.0)
    with pytest.raises(ValueError, match="AAG.sites"):
        BindingProtein("AAG", 0.02, 140.0, sites=0.0)
    with pytest.raises(ValueError, match="total_mol_per_m3"):
        human_plasma_binding().unbound_concentration(-1e-3)
    with pytest.raises(ValueError, match="k_d_mol_per_m3"):
        TissueBinding(b_max_mol_per_m3=0.1, k_d_mol_per_m3=0.0)
    with pytest.raises(ValueError, match="b_max_mol_per_m3"):
        retardation_factor(float("nan"), 1.0)
    with pytest.raises(ValueError, match="k_off_per_s"):
        TissueBinding(b_max_mol_per_m3=0.1, k_d_mol_per_m3=0.01).operator_rates()
