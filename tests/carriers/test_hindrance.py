"""Carrier transport coefficients (nanosim.kernels.carriers) against PHYSICS.md §5.

Reference values are the published figures, quoted to the digits printed there; the tests
compare at exactly that precision (``round(value, digits)``), so a wrong coefficient in the
last printed digit fails.
"""

import math

import numpy as np
import pytest

from nanosim.kernels import carriers as C

EPS = np.finfo(np.float64).eps


# --------------------------------------------------------------------------------------------
# Stokes–Einstein
# --------------------------------------------------------------------------------------------


def test_stokes_einstein_water_and_plasma_figures():
    # PHYSICS.md §5: 310.15 K, r_h = 50 nm: water (0.692 mPa·s) 6.57e-12, plasma 3.79e-12 m²/s
    d_water = C.stokes_einstein_diffusivity(C.BODY_TEMPERATURE_K, C.WATER_VISCOSITY_310K_PA_S, 50e-9)
    d_plasma = C.stokes_einstein_diffusivity(C.BODY_TEMPERATURE_K, C.PLASMA_VISCOSITY_310K_PA_S, 50e-9)
    assert round(d_water, 14) == 6.57e-12
    assert round(d_plasma, 14) == 3.79e-12
    # the plasma viscosity the figure implies is about 1.20 mPa·s
    assert round(C.PLASMA_VISCOSITY_310K_PA_S * 1e3, 2) == 1.20


def test_stokes_einstein_scaling_and_forms_agree():
    d = C.stokes_einstein_diffusivity(300.0, 1e-3, 10e-9)
    # D ∝ T / (η r): exact ratios up to a few roundings
    assert C.stokes_einstein_diffusivity(600.0, 1e-3, 10e-9) == pytest.approx(2 * d, rel=4 * EPS)
    assert C.stokes_einstein_diffusivity(300.0, 2e-3, 10e-9) == pytest.approx(d / 2, rel=4 * EPS)
    assert C.stokes_einstein_diffusivity(300.0, 1e-3, 40e-9) == pytest.approx(d / 4, rel=4 * EPS)
    assert C.stokes_einstein_diffusivity.cpu(300.0, 1e-3, 10e-9) == pytest.approx(d, rel=4 * EPS)
    arr = C.stokes_einstein_diffusivity_array(300.0, 1e-3, np.array([10e-9, 40e-9]))
    np.testing.assert_allclose(arr, [d, d / 4], rtol=4 * EPS)
    assert C.BOLTZMANN_J_PER_K == 1.380649e-23  # exact SI value


# --------------------------------------------------------------------------------------------
# Dechadilok–Deen and Renkin
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lam, h, w", [(0.25, 0.2724, 0.7265), (0.5, 0.0474, 0.3364)])
def test_dechadilok_deen_published_values(lam, h, w):
    for form in ("py", "cpu"):
        assert round(getattr(C.dechadilok_deen_h, form)(lam), 4) == h
        assert round(getattr(C.dechadilok_deen_w, form)(lam), 4) == w
    assert round(C.dechadilok_deen_h_array(lam), 4) == h
    assert round(C.dechadilok_deen_w_array(lam), 4) == w
    assert C.reflection_coefficient(lam) == pytest.approx(1 - w, abs=1e-4)


def test_dechadilok_deen_h_continuity_at_0_95():
    # The polynomial (λ ≤ 0.95) and the lubrication asymptote (λ > 0.95) are separate published
    # fits; with the published coefficients they meet to 0.58 % (1.5543e-6 vs 1.5633e-6). The
    # test allows 1 %: any error in one of the eight polynomial coefficients at the printed
    # digits moves H(0.95) ≈ 1.6e-6 by far more (a unit in the 6th decimal of the λ⁷
    # coefficient alone shifts it by 7e-7, i.e. 45 %).
    lam = C.DD_ASYMPTOTIC_LAMBDA
    below = C.dechadilok_deen_h(lam)
    above = C.dechadilok_deen_h(math.nextafter(lam, 1.0))
    jump = abs(above - below) / below
    assert jump < 0.01, jump
    assert round(below, 10) == 1.5543e-6 and round(above, 10) == 1.5633e-6


def test_hindrance_vanishes_at_full_pore_and_beyond():
    # λ → 1: W → (1 − λ)² · (1 + 3.867 − 1.907 − 0.834)/(1 + 1.867 − 0.741) = (1 − λ)² · 1,
    # and H → 0.984 (1 − λ)^4.5; the next corrections are O(1 − λ), so at 1 − λ = 1e-4 the
    # ratios are 1 within 1e-3.
    d = 1e-4
    assert C.dechadilok_deen_w(1 - d) / d**2 == pytest.approx(1.0, rel=1e-3)
    assert C.dechadilok_deen_h(1 - d) / (0.984 * d**4.5) == pytest.approx(1.0, rel=1e-3)
    for lam in (1.0, 1.0 + 1e-12, 1.5, 10.0):
        assert C.dechadilok_deen_h(lam) == 0.0
        assert C.dechadilok_deen_w(lam) == 0.0
        assert C.renkin_h(lam) == 0.0
        assert C.reflection_coefficient(lam) == 1.0
    # and at λ = 0 no hindrance
    assert C.dechadilok_deen_h(0.0) == 1.0 and C.dechadilok_deen_w(0.0) == 1.0
    assert C.renkin_h(0.0) == 1.0


def test_hindrance_decreases_with_lambda():
    # monotone on each fitted branch (the 0.6 % step at 0.95 is the branch joint, tested above)
    lo = np.linspace(0.0, 0.95, 2001)
    hi = np.linspace(0.9501, 1.0, 500)
    for grid in (lo, hi):
        h = C.dechadilok_deen_h_array(grid)
        assert np.all(np.diff(h) < 0)
    w = C.dechadilok_deen_w_array(np.linspace(0.0, 1.0, 2001))
    assert np.all(np.diff(w) < 0)
    assert np.all((C.dechadilok_deen_h_array(lo) > 0) & (C.dechadilok_deen_h_array(lo) <= 1))


def test_renkin_values_and_comparison():
    # hand expansion: λ = 0.25 → 0.5625 · (1 − 0.526 + 2.09/64 − 0.95/1024) = 0.28447229
    assert C.renkin_h(0.25) == pytest.approx(0.5625 * (1 - 0.526 + 2.09 / 64 - 0.95 / 1024), rel=4 * EPS)
    assert round(C.renkin_h(0.25), 4) == 0.2845
    assert round(C.renkin_h(0.5), 4) == 0.0449
    # Renkin and Dechadilok–Deen agree for small carriers and part ways as λ grows: their
    # leading terms differ by (9/8) λ ln λ + 2.54 λ, i.e. 0.5 % at λ = 1e-3 (allow 1 %), 7 % at
    # λ = 0.05
    assert C.renkin_h(1e-3) == pytest.approx(C.dechadilok_deen_h(1e-3), rel=0.01)
    assert abs(C.renkin_h(0.5) / C.dechadilok_deen_h(0.5) - 1) > 0.05
    np.testing.assert_array_equal(C.renkin_h_array([0.25, 2.0]), [C.renkin_h(0.25), 0.0])


def test_pointwise_nan_and_array_errors():
    assert math.isnan(C.dechadilok_deen_h(-0.1)) and math.isnan(C.dechadilok_deen_w(float("nan")))
    with pytest.raises(ValueError, match="lam"):
        C.dechadilok_deen_h_array([0.2, -0.1])
    with pytest.raises(ValueError, match="lam contains NaN"):
        C.dechadilok_deen_w_array(float("nan"))
    with pytest.raises(ValueError, match="radius_m"):
        C.stokes_einstein_diffusivity_array(310.15, 0.692e-3, -1e-9)
    with pytest.raises(ValueError, match="viscosity_pa_s"):
        C.stokes_einstein_diffusivity_array(310.15, 0.0, 1e-9)
    with pytest.raises(ValueError, match="volume_fraction"):
        C.ogston_factor_array(1.5, 50e-9, 5e-9)
    with pytest.raises(ValueError, match="gamma"):
        C.pore_permeability_array(2.0, 0.5, 1e-12, 1e-6)
    with pytest.raises(ValueError, match="sigma_f"):
        C.patlak_flux_array(1e-8, 1.2, 1e-8, 1.0, 0.0)
    with pytest.raises(ValueError, match="ps"):
        C.patlak_flux_array(1e-8, 0.5, -1e-8, 1.0, 0.0)


# --------------------------------------------------------------------------------------------
# Ogston, wall permeability
# --------------------------------------------------------------------------------------------


def test_ogston_factor():
    assert C.ogston_factor(0.0, 50e-9, 5e-9) == 1.0
    # φ = 0.04, r_s/r_f = 9: exp(−0.2 · 10) = e^−2
    assert C.ogston_factor(0.04, 45e-9, 5e-9) == pytest.approx(math.exp(-2.0), rel=4 * EPS)
    f = C.ogston_factor_array(0.04, np.array([1e-9, 10e-9, 50e-9]), 5e-9)
    assert np.all(np.diff(f) < 0) and np.all(f > 0)


def test_pore_permeability():
    d0 = C.stokes_einstein_diffusivity(310.15, 0.692e-3, 50e-9)
    h = C.dechadilok_deen_h(50 / 200)  # 100 nm carrier through a 400 nm pore
    p = C.pore_permeability(1e-3, h, d0, 1e-6)
    assert p == pytest.approx(1e-3 * h * d0 / 1e-6, rel=4 * EPS)
    assert C.pore_permeability_array(1e-3, h, d0, 1e-6) == pytest.approx(p, rel=4 * EPS)


# --------------------------------------------------------------------------------------------
# Patlak / Kedem–Katchalsky flux
# --------------------------------------------------------------------------------------------


def _patlak_textbook(jv, sigma, ps, cv, ci):
    """Patlak's closed form a (C_v − C_i e^−Pe)/(1 − e^−Pe), fine for moderate |Pe|."""
    a = jv * (1 - sigma)
    pe = a / ps
    return a * (cv - ci * math.exp(-pe)) / (1 - math.exp(-pe))


@pytest.mark.parametrize("pe", [-30.0, -2.0, -0.1, 0.1, 1.0, 5.0, 30.0])
def test_patlak_matches_textbook_form(pe):
    ps, sigma, cv, ci = 2e-8, 0.3, 1.7, 0.4
    jv = pe * ps / (1 - sigma)
    got = C.patlak_flux(jv, sigma, ps, cv, ci)
    # both evaluate the same function; the textbook form loses ~|Pe|·eps to exp(−Pe)
    assert got == pytest.approx(_patlak_textbook(jv, sigma, ps, cv, ci), rel=1e-13)
    assert C.patlak_flux.cpu(jv, sigma, ps, cv, ci) == pytest.approx(got, rel=4 * EPS)


def test_patlak_diffusive_limit_and_small_peclet():
    ps, sigma, cv, ci = 3e-8, 0.2, 2.0, 0.5
    assert C.patlak_flux(0.0, sigma, ps, cv, ci) == ps * (cv - ci)  # exactly P S ΔC
    for pe in (1e-12, -1e-12, 1e-8):
        jv = pe * ps / (1 - sigma)
        a = jv * (1 - sigma)
        # series: a C_v + P S ΔC (1 − Pe/2 + Pe²/12); the naive Pe/(e^Pe − 1) would be off by
        # ~eps/Pe ≈ 1e-4 relative at Pe = 1e-12
        series = a * cv + ps * (cv - ci) * (1 - pe / 2 + pe * pe / 12)
        assert C.patlak_flux(jv, sigma, ps, cv, ci) == pytest.approx(series, rel=4 * EPS)


def test_patlak_convective_limits_and_overflow():
    ps, sigma, cv, ci = 1e-9, 0.4, 3.0, 1.0
    for pe in (700.0, 800.0, 1e6):
        jv = pe * ps / (1 - sigma)
        a = jv * (1 - sigma)
        # outflow: carried at the vascular concentration; diffusive part P S ΔC·Pe e^−Pe < 1e-300
        assert C.patlak_flux(jv, sigma, ps, cv, ci) == pytest.approx(a * cv, rel=4 * EPS)
        # inflow: carried at the interstitial concentration
        assert C.patlak_flux(-jv, sigma, ps, cv, ci) == pytest.approx(-a * ci, rel=4 * EPS)
    # no diffusive permeability: pure convection, upwinded
    assert C.patlak_flux(1e-7, 0.5, 0.0, cv, ci) == pytest.approx(0.5e-7 * cv, rel=EPS)
    assert C.patlak_flux(-1e-7, 0.5, 0.0, cv, ci) == pytest.approx(-0.5e-7 * ci, rel=EPS)
    # full reflection (λ ≥ 1): only diffusion remains, and with P = 0 nothing passes
    assert C.patlak_flux(1e-7, 1.0, ps, cv, ci) == ps * (cv - ci)
    assert C.patlak_flux(1e-7, C.reflection_coefficient(1.2), 0.0, cv, ci) == 0.0


def test_patlak_antisymmetry_and_arrays():
    # reversing the flow and swapping the two sides reverses the flux
    for jv in (-3e-7, -1e-12, 0.0, 2e-9, 5e-6):
        j = C.patlak_flux(jv, 0.25, 1e-8, 1.3, 0.2)
        assert C.patlak_flux(-jv, 0.25, 1e-8, 0.2, 1.3) == pytest.approx(-j, rel=4 * EPS, abs=0)
    jv = np.array([-1e-6, 0.0, 1e-6])
    got = C.patlak_flux_array(jv, 0.25, 1e-8, 1.3, 0.2)
    np.testing.assert_allclose(got, [C.patlak_flux(v, 0.25, 1e-8, 1.3, 0.2) for v in jv], rtol=4 * EPS)


def test_module_examples():
    import doctest

    assert doctest.testmod(C).failed == 0
