"""Pries viscosity laws and the phase-separation law against published values and limits."""

import numpy as np
import pytest

from nanosim.flow.viscosity import (
    PLASMA_VISCOSITY_PA_S,
    phase_separation_fraction_scalar,
    pries_in_vitro_relative_viscosity,
    pries_in_vivo_relative_viscosity,
    pries_phase_separation_fraction,
)

UM = 1e-6


@pytest.mark.parametrize("d_um, expected", [(10, 5.872), (20, 3.231), (50, 2.282)])
def test_in_vivo_values_at_045(d_um, expected):
    # values of Pries et al. 1994 at H_D = 0.45 (PHYSICS.md §3), quoted to 4 digits: 0.1 %
    assert pries_in_vivo_relative_viscosity(d_um * UM, 0.45) == pytest.approx(expected, rel=1e-3)


def test_in_vitro_value_at_10um():
    # Pries et al. 1992 glass-tube law, 1.328 at 10 µm and H_D = 0.45 (PHYSICS.md §3): 0.1 %
    assert pries_in_vitro_relative_viscosity(10 * UM, 0.45) == pytest.approx(1.328, rel=1e-3)


def test_vectorised_matches_scalar_calls():
    d = np.array([4.0, 10.0, 20.0, 50.0, 200.0]) * UM
    hd = np.array([0.1, 0.2, 0.45, 0.6, 0.3])
    vec = pries_in_vivo_relative_viscosity(d, hd)
    one = [float(pries_in_vivo_relative_viscosity(di, hi)) for di, hi in zip(d, hd)]
    np.testing.assert_allclose(vec, one, rtol=1e-15)  # same arithmetic, element by element
    assert vec.shape == (5,)
    # a scalar haematocrit broadcasts over an array of diameters
    assert pries_in_vitro_relative_viscosity(d, 0.45).shape == (5,)


@pytest.mark.parametrize("d_um", [3.0, 8.0, 30.0, 300.0])
def test_zero_haematocrit_limits(d_um):
    # H_D = 0: ((1-0)^C - 1) = 0 kills the bracket's haematocrit term, leaving the outer
    # (D/(D-1.1))² factor of the in vivo law (the endothelial surface layer), and plasma (1) for
    # the in vitro law; round-off only
    w = (d_um / (d_um - 1.1)) ** 2
    assert pries_in_vivo_relative_viscosity(d_um * UM, 0.0) == pytest.approx(w, rel=1e-14)
    assert pries_in_vitro_relative_viscosity(d_um * UM, 0.0) == pytest.approx(1.0, rel=1e-14)


def test_viscosity_rises_with_haematocrit():
    hd = np.linspace(0.0, 0.8, 17)
    for law in (pries_in_vivo_relative_viscosity, pries_in_vitro_relative_viscosity):
        mu = law(15 * UM, hd)
        assert np.all(np.diff(mu) > 0)


def test_large_tube_in_vitro_approaches_bulk_blood():
    # far above the Fåhræus–Lindqvist range the in vitro law at 0.45 tends to μ*₀.₄₅ → 3.2
    assert pries_in_vitro_relative_viscosity(5000 * UM, 0.45) == pytest.approx(3.2, rel=2e-3)


def test_bad_input_messages():
    # 1 µm is below the law's 1.1 µm singularity; the message names the unit expected
    with pytest.raises(ValueError, match="outside the law's range.*metres"):
        pries_in_vivo_relative_viscosity(1.0e-6, 0.45)
    with pytest.raises(ValueError, match="outside the law's range"):
        pries_in_vitro_relative_viscosity(np.array([10e-6, -5e-6]), 0.45)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        pries_in_vitro_relative_viscosity(10 * UM, 1.2)
    assert PLASMA_VISCOSITY_PA_S == pytest.approx(1.2e-3)


# ------------------------------------------------------------------------------------------------
# phase separation


def test_phase_separation_symmetric_and_antisymmetric():
    fq = np.linspace(0.0, 1.0, 41)
    # equal daughters: A = 0, and FQ_B = 1/2 maps to FQ_E = 1/2 exactly (logit 0)
    assert pries_phase_separation_fraction(0.5, 8 * UM, 8 * UM, 10 * UM, 0.45) == pytest.approx(0.5, abs=1e-15)
    # swapping the daughters gives the complement, so red cells are conserved (round-off)
    a = pries_phase_separation_fraction(fq, 6 * UM, 9 * UM, 10 * UM, 0.4)
    b = pries_phase_separation_fraction(1 - fq, 9 * UM, 6 * UM, 10 * UM, 0.4)
    np.testing.assert_allclose(a + b, 1.0, atol=1e-12)
    assert np.all(np.diff(a) >= 0)


def test_phase_separation_thresholds_and_skimming():
    d_f, h_f = 8.0, 0.45
    x0 = 0.964 * (1 - h_f) / d_f
    f = lambda q: float(pries_phase_separation_fraction(q, 6 * UM, 6 * UM, d_f * UM, h_f))  # noqa: E731
    assert f(0.99 * x0) == 0.0 and f(1 - 0.99 * x0) == 1.0
    # below an even split the smaller-flow daughter gets a smaller share of the red cells
    for q in (0.1, 0.2, 0.3, 0.4):
        assert f(q) < q
        assert f(1 - q) > 1 - q


def test_phase_separation_formula_and_scalar_form():
    # direct evaluation of the Pries & Secomb (2005) formula at one point (PHYSICS.md §3)
    da, db, df, hf, fqb = 5.0, 7.0, 9.0, 0.35, 0.3
    r = da**2 / db**2
    a = -13.29 * ((r - 1) / (r + 1)) * (1 - hf) / df
    b = 1 + 6.98 * (1 - hf) / df
    x0 = 0.964 * (1 - hf) / df
    x = (fqb - x0) / (1 - 2 * x0)
    expect = 1 / (1 + np.exp(-(a + b * np.log(x / (1 - x)))))
    got = pries_phase_separation_fraction(fqb, da * UM, db * UM, df * UM, hf)
    assert got == pytest.approx(expect, rel=1e-13)
    fq = np.linspace(0, 1, 23)
    vec = pries_phase_separation_fraction(fq, da * UM, db * UM, df * UM, hf)
    sca = [phase_separation_fraction_scalar(q, da, db, df, hf) for q in fq]
    np.testing.assert_allclose(vec, sca, rtol=1e-13, atol=1e-15)
