"""Apparent viscosity of blood in microvessels and red-cell phase separation at bifurcations.

All functions take vessel diameters in **metres** (SI, like the rest of the package) and convert
them to micrometres internally, because the empirical laws below are fitted with the diameter
``D`` expressed in µm. Haematocrits are discharge haematocrits ``H_D`` (dimensionless volume
fractions in [0, 1)).

Laws
----
- :func:`pries_in_vivo_relative_viscosity`: Pries et al. 1994, in vivo viscosity law (with the
  two ``(D/(D−1.1))²`` factors of the published formula, which account for the endothelial
  surface layer and the cell-free layer).
- :func:`pries_in_vitro_relative_viscosity`: Pries et al. 1992, glass-tube (in vitro) law.
- :func:`pries_phase_separation_fraction`: fraction of the parent's red-cell flux entering one
  daughter of a diverging bifurcation (Pries, Ley, Claassen & Gaehtgens 1989; Pries, Secomb,
  Gaehtgens et al. 1990; coefficients of Pries & Secomb 2005).

References
----------
Pries AR, Neuhaus D, Gaehtgens P (1992). Blood viscosity in tube flow: dependence on diameter
and hematocrit. Am J Physiol 263: H1770–H1778.

Pries AR, Secomb TW, Gessner T, Sperandio MB, Gross JF, Gaehtgens P (1994). Resistance to
blood flow in microvessels in vivo. Circ Res 75: 904–915.

Pries AR, Secomb TW, Gaehtgens P, Gross JF (1990). Blood flow in microvascular networks:
experiments and simulation. Circ Res 67: 826–834.

Pries AR, Secomb TW (2005). Microvascular blood viscosity in vivo and the endothelial surface
layer. Am J Physiol Heart Circ Physiol 289: H2657–H2664.
"""

from __future__ import annotations

import math

import numpy as np

#: Viscosity of blood plasma at 37 °C in Pa·s (1.2 mPa·s). Unconfirmed default (PHYSICS.md §3;
#: typical human plasma value, Pries et al. 1992 use 1.2–1.3 mPa·s); override where known.
PLASMA_VISCOSITY_PA_S = 1.2e-3

#: Smallest diameter (µm) at which the Pries laws are defined: the factor D/(D − 1.1) of the in
#: vivo law diverges at 1.1 µm (Pries et al. 1994). Inputs must be larger than this.
PRIES_MIN_DIAMETER_UM = 1.1

_UM_PER_M = 1e6


def _check(d_m, hd, name: str):
    """Diameters (m) → µm as float arrays, with haematocrit broadcast; clear errors on bad input."""
    d_um = np.asarray(d_m, dtype=np.float64) * _UM_PER_M
    hd = np.asarray(hd, dtype=np.float64)
    if not np.all(np.isfinite(d_um)) or np.any(d_um <= PRIES_MIN_DIAMETER_UM):
        bad = d_um[~(np.isfinite(d_um) & (d_um > PRIES_MIN_DIAMETER_UM))].ravel()[0]
        raise ValueError(f"{name}: vessel diameter {bad / _UM_PER_M!r} m ({bad:g} µm) is outside the law's "
                         f"range: give diameters in metres, larger than {PRIES_MIN_DIAMETER_UM} µm "
                         f"({PRIES_MIN_DIAMETER_UM * 1e-6:g} m)")
    if not np.all(np.isfinite(hd)) or np.any((hd < 0) | (hd >= 1)):
        bad = hd[~(np.isfinite(hd) & (hd >= 0) & (hd < 1))].ravel()[0]
        raise ValueError(f"{name}: discharge haematocrit {bad!r} must be a volume fraction in [0, 1)")
    return np.broadcast_arrays(d_um, hd)


def _shape_exponent_c(d_um):
    """Exponent C(D) of the haematocrit dependence (Pries et al. 1992, 1994), D in µm."""
    q = 1.0 / (1.0 + 1e-11 * d_um**12)
    return (0.8 + np.exp(-0.075 * d_um)) * (-1.0 + q) + q


def pries_in_vivo_relative_viscosity(d_m, hd):
    """Relative apparent viscosity of blood in vessels in vivo (Pries et al. 1994).

    ``μ_rel = [1 + (μ*₀.₄₅ − 1)·((1 − H_D)^C − 1)/((1 − 0.45)^C − 1)·(D/(D − 1.1))²]·(D/(D − 1.1))²``
    with ``μ*₀.₄₅ = 6 e^(−0.085 D) + 3.2 − 2.44 e^(−0.06 D^0.645)`` and
    ``C = (0.8 + e^(−0.075 D))·(−1 + 1/(1 + 10⁻¹¹ D¹²)) + 1/(1 + 10⁻¹¹ D¹²)``, D in µm.

    Parameters
    ----------
    d_m : array_like
        Vessel (lumen) diameter in metres; converted to µm inside. Must exceed 1.1 µm.
    hd : array_like
        Discharge haematocrit (volume fraction, [0, 1)); broadcast against ``d_m``.

    Returns
    -------
    numpy.ndarray
        Apparent viscosity relative to plasma (dimensionless), e.g. 3.231 at 20 µm and H_D 0.45.

    Raises
    ------
    ValueError
        If a diameter is not finite or not above 1.1 µm, or a haematocrit is outside [0, 1).

    References
    ----------
    Pries AR et al. (1994) Circ Res 75: 904–915 (equations as in PHYSICS.md §3).
    """
    d, h = _check(d_m, hd, "pries_in_vivo_relative_viscosity")
    c = _shape_exponent_c(d)
    mu45 = 6.0 * np.exp(-0.085 * d) + 3.2 - 2.44 * np.exp(-0.06 * d**0.645)
    w = (d / (d - 1.1)) ** 2
    return (1.0 + (mu45 - 1.0) * ((1.0 - h) ** c - 1.0) / ((1.0 - 0.45) ** c - 1.0) * w) * w


def pries_in_vitro_relative_viscosity(d_m, hd):
    """Relative apparent viscosity of blood in glass tubes (Pries et al. 1992).

    ``μ_rel = 1 + (μ*₀.₄₅ − 1)·((1 − H_D)^C − 1)/((1 − 0.45)^C − 1)`` with
    ``μ*₀.₄₅ = 220 e^(−1.3 D) + 3.2 − 2.44 e^(−0.06 D^0.645)`` and the same C(D) as the in vivo law,
    D in µm.

    Parameters
    ----------
    d_m : array_like
        Tube diameter in metres; converted to µm inside. Must exceed 1.1 µm.
    hd : array_like
        Discharge haematocrit (volume fraction, [0, 1)); broadcast against ``d_m``.

    Returns
    -------
    numpy.ndarray
        Apparent viscosity relative to plasma (dimensionless), e.g. 1.328 at 10 µm and H_D 0.45.

    Raises
    ------
    ValueError
        If a diameter is not finite or not above 1.1 µm, or a haematocrit is outside [0, 1).

    References
    ----------
    Pries AR, Neuhaus D, Gaehtgens P (1992) Am J Physiol 263: H1770–H1778.
    """
    d, h = _check(d_m, hd, "pries_in_vitro_relative_viscosity")
    c = _shape_exponent_c(d)
    mu45 = 220.0 * np.exp(-1.3 * d) + 3.2 - 2.44 * np.exp(-0.06 * d**0.645)
    return 1.0 + (mu45 - 1.0) * ((1.0 - h) ** c - 1.0) / ((1.0 - 0.45) ** c - 1.0)


# ------------------------------------------------------------------------------------------------
# phase separation (plasma skimming)


def phase_separation_fraction_scalar(fq_b: float, d_alpha_um: float, d_beta_um: float, d_parent_um: float,
                                     h_parent: float) -> float:
    """Scalar form of :func:`pries_phase_separation_fraction` (diameters already in µm).

    Written with the ``math`` module only, so that it can also be compiled with Numba.
    """
    x0 = 0.964 * (1.0 - h_parent) / d_parent_um
    if fq_b <= x0:
        return 0.0
    if fq_b >= 1.0 - x0:
        return 1.0
    r = (d_alpha_um * d_alpha_um) / (d_beta_um * d_beta_um)
    a = -13.29 * ((r - 1.0) / (r + 1.0)) * (1.0 - h_parent) / d_parent_um
    b = 1.0 + 6.98 * (1.0 - h_parent) / d_parent_um
    x = (fq_b - x0) / (1.0 - 2.0 * x0)
    z = a + b * math.log(x / (1.0 - x))
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def pries_phase_separation_fraction(fq_b, d_alpha_m, d_beta_m, d_parent_m, h_parent):
    """Fraction of the parent's red-cell flux that enters daughter α of a diverging bifurcation.

    Phase-separation (plasma-skimming) law of Pries et al. 1990 in the form of Pries & Secomb
    2005: with FQ_B the fraction of the parent's blood flow entering daughter α,

    - ``FQ_E = 0`` if ``FQ_B ≤ X0``, ``FQ_E = 1`` if ``FQ_B ≥ 1 − X0``,
    - otherwise ``logit(FQ_E) = A + B·logit((FQ_B − X0)/(1 − 2 X0))``,

    with ``A = −13.29·((D_α²/D_β² − 1)/(D_α²/D_β² + 1))·(1 − H_F)/D_F``,
    ``B = 1 + 6.98·(1 − H_F)/D_F`` and ``X0 = 0.964·(1 − H_F)/D_F`` (diameters in µm). The law is
    antisymmetric: swapping α and β gives ``1 − FQ_E``, so red cells are conserved.

    Parameters
    ----------
    fq_b : array_like
        Fraction of the parent's blood flow entering daughter α, in [0, 1].
    d_alpha_m, d_beta_m, d_parent_m : array_like
        Diameters in metres of daughter α, daughter β and the parent (feeding) vessel; converted
        to µm inside.
    h_parent : array_like
        Discharge haematocrit of the parent vessel, in [0, 1).

    Returns
    -------
    numpy.ndarray
        FQ_E, the fraction of the parent's red-cell flux entering daughter α, in [0, 1].

    Raises
    ------
    ValueError
        If a fraction is outside [0, 1], a diameter is not finite and positive, or a haematocrit
        is outside [0, 1).

    References
    ----------
    Pries AR, Secomb TW, Gaehtgens P, Gross JF (1990) Circ Res 67: 826–834;
    Pries AR, Secomb TW (2005) Am J Physiol Heart Circ Physiol 289: H2657–H2664.
    """
    fq_b, da, db, df, hf = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                                  (fq_b, d_alpha_m, d_beta_m, d_parent_m, h_parent)))
    if not np.all(np.isfinite(fq_b) & (fq_b >= 0) & (fq_b <= 1)):
        raise ValueError("pries_phase_separation_fraction: the blood-flow fraction FQ_B must be in [0, 1]")
    for name, d in (("d_alpha_m", da), ("d_beta_m", db), ("d_parent_m", df)):
        if not np.all(np.isfinite(d) & (d > 0)):
            raise ValueError(f"pries_phase_separation_fraction: {name} must be finite and > 0 (metres)")
    if not np.all(np.isfinite(hf) & (hf >= 0) & (hf < 1)):
        raise ValueError("pries_phase_separation_fraction: parent haematocrit must be in [0, 1)")
    da, db, df = da * _UM_PER_M, db * _UM_PER_M, df * _UM_PER_M
    x0 = 0.964 * (1.0 - hf) / df
    r = da**2 / db**2
    a = -13.29 * ((r - 1.0) / (r + 1.0)) * (1.0 - hf) / df
    b = 1.0 + 6.98 * (1.0 - hf) / df
    inside = (fq_b > x0) & (fq_b < 1.0 - x0)
    x = np.where(inside, (fq_b - x0) / np.where(inside, 1.0 - 2.0 * x0, 1.0), 0.5)
    z = a + b * np.log(x / (1.0 - x))
    fqe = 0.5 * (1.0 + np.tanh(0.5 * z))  # logistic function, overflow-free
    return np.where(fq_b <= x0, 0.0, np.where(fq_b >= 1.0 - x0, 1.0, fqe))
