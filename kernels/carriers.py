r"""Carrier (nanoparticle) transport coefficients: diffusivity, hindrance and wall flux.

Scalar physics, written once as :func:`~nanosim.kernels._compile.pointwise` functions (``.py``,
``.cpu`` and ``.cuda`` forms), plus NumPy-array wrappers that validate their arguments and
broadcast.

Functions (SI units throughout)
-------------------------------
- :func:`stokes_einstein_diffusivity` — free diffusivity ``D₀ = k_B T / (6 π η r_h)`` (m²/s).
- :func:`ogston_factor` — fibre-matrix hindrance ``f = exp[−φ^½ (1 + r_s/r_f)]`` (Ogston 1958
  form as used for tumour interstitium; the choice of model is *unconfirmed* for this
  project: ``D_eff = D₀ · f`` may equally be given as a measured ratio — tumour matrix slows
  large particles 5–10×, Pluen et al. 2001, PNAS 98:4628, qualitative).
- :func:`dechadilok_deen_h`, :func:`dechadilok_deen_w` — diffusive (H) and convective (W)
  hindrance factors for a sphere in a cylindrical pore, ``λ = r_s / r_p``
  (Dechadilok & Deen 2006, Ind. Eng. Chem. Res. 45:6953). Both already include the
  equilibrium partition coefficient ``Φ = (1 − λ)²``.
- :func:`renkin_h` — Renkin (1954, J. Gen. Physiol. 38:225) diffusive factor, for comparison.
- :func:`pore_permeability` — wall permeability ``P = γ H D₀ / L_wall`` (m/s).
- :func:`patlak_flux` — solute flux across the wall (Patlak et al. 1963; Kedem & Katchalsky
  1958), ``J_s = J_v (1 − σ_f) C_v + P S (C_v − C_i) Pe / (e^Pe − 1)``,
  ``Pe = J_v (1 − σ_f) / (P S)``, ``σ_f = 1 − W``; evaluated stably for every Pe.

The pointwise forms do not raise (they also run as CUDA device code): arguments outside the
physical range give ``nan`` where documented. The array wrappers (``*_array``) check their
arguments and raise :class:`ValueError` naming the offending one.

Constants
---------
:data:`BOLTZMANN_J_PER_K` is exact in the 2019 SI. :data:`BODY_TEMPERATURE_K` and the two
viscosities are the reference conditions of PHYSICS.md §5 (see each constant for its source).

Examples
--------
>>> from nanosim.kernels import carriers
>>> d0 = carriers.stokes_einstein_diffusivity(310.15, carriers.WATER_VISCOSITY_310K_PA_S, 50e-9)
>>> round(d0 * 1e12, 2)
6.57
>>> round(carriers.dechadilok_deen_h(0.25), 4), round(carriers.dechadilok_deen_w(0.25), 4)
(0.2724, 0.7265)
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ._compile import pointwise

__all__ = [
    "BOLTZMANN_J_PER_K",
    "BODY_TEMPERATURE_K",
    "WATER_VISCOSITY_310K_PA_S",
    "PLASMA_VISCOSITY_310K_PA_S",
    "DD_ASYMPTOTIC_LAMBDA",
    "stokes_einstein_diffusivity",
    "ogston_factor",
    "dechadilok_deen_h",
    "dechadilok_deen_w",
    "renkin_h",
    "pore_permeability",
    "reflection_coefficient",
    "bernoulli_factor",
    "patlak_flux",
    "stokes_einstein_diffusivity_array",
    "ogston_factor_array",
    "dechadilok_deen_h_array",
    "dechadilok_deen_w_array",
    "renkin_h_array",
    "pore_permeability_array",
    "patlak_flux_array",
]

#: Boltzmann constant (J/K), exact by definition of the 2019 SI (BIPM SI Brochure, 9th ed.).
BOLTZMANN_J_PER_K = 1.380649e-23

#: Body temperature (K), 37 °C: the reference temperature of PHYSICS.md §5.
BODY_TEMPERATURE_K = 310.15

#: Dynamic viscosity of water at 310.15 K (Pa·s): 0.692 mPa·s, the value PHYSICS.md §5 uses
#: for its Stokes–Einstein figure (D₀ = 6.57×10⁻¹² m²/s at r_h = 50 nm); tabulated water
#: viscosity at 37 °C is 0.691–0.692 mPa·s (e.g. CRC Handbook of Chemistry and Physics).
WATER_VISCOSITY_310K_PA_S = 0.692e-3

#: Dynamic viscosity of blood plasma at 310.15 K (Pa·s). Derived so that Stokes–Einstein gives
#: PHYSICS.md §5's plasma figure 3.79×10⁻¹² m²/s at r_h = 50 nm:
#: η = k_B T / (6 π r_h D) = 1.1988 mPa·s. Unconfirmed overridable default (within the
#: commonly quoted healthy range of about 1.1–1.3 mPa·s at 37 °C).
PLASMA_VISCOSITY_310K_PA_S = BOLTZMANN_J_PER_K * BODY_TEMPERATURE_K / (6.0 * math.pi * 50e-9 * 3.79e-12)

#: λ above which Dechadilok & Deen's H switches from the polynomial fit to the lubrication
#: (centre-line) asymptote.
DD_ASYMPTOTIC_LAMBDA = 0.95


# --------------------------------------------------------------------------------------------
# Pointwise functions
# --------------------------------------------------------------------------------------------


@pointwise
def stokes_einstein_diffusivity(temperature_k, viscosity_pa_s, radius_m):
    """Free diffusivity of a sphere, Stokes–Einstein: ``D₀ = k_B T / (6 π η r_h)``.

    Parameters
    ----------
    temperature_k : float
        Absolute temperature T (K), > 0.
    viscosity_pa_s : float
        Dynamic viscosity η of the fluid (Pa·s), > 0.
    radius_m : float
        Hydrodynamic radius r_h (m), > 0.

    Returns
    -------
    float
        D₀ (m²/s). Example: 310.15 K, water (0.692 mPa·s), 50 nm → 6.57×10⁻¹² m²/s.
    """
    return BOLTZMANN_J_PER_K * temperature_k / (6.0 * math.pi * viscosity_pa_s * radius_m)


@pointwise
def ogston_factor(volume_fraction, solute_radius_m, fibre_radius_m):
    """Fibre-matrix (Ogston) diffusive hindrance ``f = exp[−φ^½ (1 + r_s/r_f)]``.

    Parameters
    ----------
    volume_fraction : float
        Fibre volume fraction φ of the matrix, in [0, 1).
    solute_radius_m : float
        Carrier (solute) radius r_s (m), ≥ 0.
    fibre_radius_m : float
        Fibre radius r_f (m), > 0.

    Returns
    -------
    float
        ``D_eff / D₀`` in (0, 1]; ``nan`` for φ < 0.

    Notes
    -----
    The model choice for tumour interstitium is unconfirmed (PHYSICS.md §5); the factor is an
    overridable default and a measured ratio may be used instead.
    """
    if volume_fraction < 0.0:
        return math.nan
    return math.exp(-math.sqrt(volume_fraction) * (1.0 + solute_radius_m / fibre_radius_m))


@pointwise
def dechadilok_deen_h(lam):
    """Diffusive hindrance factor H(λ) of Dechadilok & Deen (2006), partition included.

    Parameters
    ----------
    lam : float
        λ = r_s / r_p, carrier radius over pore radius (dimensionless).

    Returns
    -------
    float
        For ``0 ≤ λ ≤ 0.95``:
        ``H = 1 + (9/8) λ ln λ − 1.56034 λ + 0.528155 λ² + 1.91521 λ³ − 2.81903 λ⁴
        + 0.270788 λ⁵ + 1.10115 λ⁶ − 0.435933 λ⁷`` (H(0) = 1);
        for ``0.95 < λ < 1``: ``H = (1 − λ)² · 0.984 ((1 − λ)/λ)^{5/2}``;
        for ``λ ≥ 1``: 0 (no passage); ``nan`` for λ < 0 or λ = nan.
        λ = 0.25 → 0.2724, λ = 0.5 → 0.0474.
    """
    if not lam >= 0.0:  # also catches nan
        return math.nan
    if lam == 0.0:
        return 1.0
    if lam >= 1.0:
        return 0.0
    if lam > DD_ASYMPTOTIC_LAMBDA:
        q = 1.0 - lam
        return q * q * 0.984 * (q / lam) ** 2.5
    poly = -1.56034 + lam * (0.528155 + lam * (1.91521 + lam * (-2.81903 + lam * (
        0.270788 + lam * (1.10115 + lam * -0.435933)))))
    return 1.0 + 1.125 * lam * math.log(lam) + lam * poly


@pointwise
def dechadilok_deen_w(lam):
    """Convective hindrance factor W(λ) of Dechadilok & Deen (2006), partition included.

    Parameters
    ----------
    lam : float
        λ = r_s / r_p (dimensionless).

    Returns
    -------
    float
        ``W = (1 − λ)² (1 + 3.867 λ − 1.907 λ² − 0.834 λ³) / (1 + 1.867 λ − 0.741 λ²)`` for
        ``0 ≤ λ < 1``; 0 for ``λ ≥ 1``; ``nan`` for λ < 0. λ = 0.25 → 0.7265, λ = 0.5 → 0.3364.
        The reflection coefficient is ``σ_f = 1 − W``.
    """
    if not lam >= 0.0:
        return math.nan
    if lam >= 1.0:
        return 0.0
    q = 1.0 - lam
    num = 1.0 + lam * (3.867 + lam * (-1.907 + lam * -0.834))
    den = 1.0 + lam * (1.867 + lam * -0.741)
    return q * q * num / den


@pointwise
def renkin_h(lam):
    """Renkin (1954) diffusive hindrance ``H = (1 − λ)² (1 − 2.104 λ + 2.09 λ³ − 0.95 λ⁵)``.

    Parameters
    ----------
    lam : float
        λ = r_s / r_p (dimensionless).

    Returns
    -------
    float
        H for ``0 ≤ λ < 1``; 0 for ``λ ≥ 1``; ``nan`` for λ < 0. Kept for comparison with
        :func:`dechadilok_deen_h` (Renkin's centre-line approximation overestimates H at
        moderate λ).
    """
    if not lam >= 0.0:
        return math.nan
    if lam >= 1.0:
        return 0.0
    q = 1.0 - lam
    l2 = lam * lam
    return q * q * (1.0 - 2.104 * lam + 2.09 * l2 * lam - 0.95 * l2 * l2 * lam)


@pointwise
def pore_permeability(gamma, h, d0, wall_thickness_m):
    """Diffusive wall permeability of a pore population, ``P = γ H D₀ / L_wall``.

    Parameters
    ----------
    gamma : float
        Pore area fraction γ of the wall (pore area / wall area), in [0, 1].
    h : float
        Diffusive hindrance factor H (e.g. :func:`dechadilok_deen_h`).
    d0 : float
        Free diffusivity D₀ (m²/s).
    wall_thickness_m : float
        Wall (pore) length L_wall (m), > 0.

    Returns
    -------
    float
        P (m/s).
    """
    return gamma * h * d0 / wall_thickness_m


@pointwise
def reflection_coefficient(lam):
    """Solvent-drag reflection coefficient ``σ_f = 1 − W(λ)`` (Dechadilok & Deen 2006)."""
    return 1.0 - dechadilok_deen_w(lam)


@pointwise
def bernoulli_factor(pe):
    """``B(Pe) = Pe / (e^Pe − 1)`` for ``Pe ≥ 0``, without overflow or cancellation.

    Parameters
    ----------
    pe : float
        Péclet number, ≥ 0 (use ``B(−x) = x + B(x)`` for negative values).

    Returns
    -------
    float
        1 at Pe = 0, ``1 − Pe/2 + …`` for small Pe (accurate to round-off through ``expm1``),
        ``Pe e^{−Pe}`` for large Pe and 0 once ``e^{−Pe}`` underflows (Pe ≳ 745).
    """
    if pe == 0.0:
        return 1.0
    e = math.exp(-pe)
    return pe * e / -math.expm1(-pe)


@pointwise
def patlak_flux(jv, sigma_f, ps, c_v, c_i):
    """Transvascular solute flux, Patlak / Kedem–Katchalsky, stable for every Péclet number.

    ``J_s = J_v (1 − σ_f) C_v + P S (C_v − C_i) Pe / (e^Pe − 1)``, ``Pe = J_v (1 − σ_f) / (P S)``.

    Parameters
    ----------
    jv : float
        Fluid flux J_v out of the vessel (positive = vessel → tissue). Either per wall area
        (m/s, i.e. J_v / S) or per tissue volume (1/s, i.e. J_v / V); ``ps`` must use the same
        measure.
    sigma_f : float
        Solvent-drag reflection coefficient σ_f = 1 − W, in [0, 1].
    ps : float
        Diffusive conductance, ≥ 0: the permeability P (m/s) when ``jv`` is per wall area, or
        P S/V (1/s) when ``jv`` is per volume.
    c_v, c_i : float
        Vascular and interstitial concentrations (any unit, e.g. mol/m³ or particles/m³).

    Returns
    -------
    float
        J_s, vessel → tissue positive: per wall area (``c`` unit × m/s, e.g. mol m⁻² s⁻¹) or
        per tissue volume (``c`` unit / s, e.g. mol m⁻³ s⁻¹), following ``jv``/``ps``.
        ``nan`` for ``ps < 0``.

    Notes
    -----
    Written in the equivalent upwind form ``J_s = a C_up + P S B(|Pe|) (C_v − C_i)`` with
    ``a = J_v (1 − σ_f)``, ``C_up = C_v`` if ``a ≥ 0`` else ``C_i`` and
    ``B(x) = x / (e^x − 1)`` (identity ``B(−x) = x + B(x)``): no overflow at large ``|Pe|``,
    no cancellation at small ``|Pe|``, and ``P S = 0`` gives pure convection ``a C_up``.
    Limits: ``Pe → 0`` gives ``a C_v + P S (C_v − C_i)`` → ``P S ΔC`` when ``a = 0``;
    ``Pe → +∞`` gives ``a C_v``; ``Pe → −∞`` gives ``a C_i``.
    """
    if not ps >= 0.0:
        return math.nan
    a = jv * (1.0 - sigma_f)
    c_up = c_v if a >= 0.0 else c_i
    if ps == 0.0:
        return a * c_up
    return a * c_up + ps * bernoulli_factor(abs(a) / ps) * (c_v - c_i)


# --------------------------------------------------------------------------------------------
# NumPy wrappers: validate, broadcast, evaluate the compiled pointwise forms
# --------------------------------------------------------------------------------------------


@functools.cache
def _ufunc(name, nargs):
    """A float64 NumPy ufunc over the ``.cpu`` form of pointwise function ``name`` (built once)."""
    fn = globals()[name].cpu
    sig = "float64(" + ", ".join(["float64"] * nargs) + ")"
    if nargs == 1:
        def body(a):
            return fn(a)
    elif nargs == 3:
        def body(a, b, c):
            return fn(a, b, c)
    elif nargs == 4:
        def body(a, b, c, d):
            return fn(a, b, c, d)
    else:
        def body(a, b, c, d, e):
            return fn(a, b, c, d, e)
    return numba.vectorize([sig])(body)


def _as_float(name, value):
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number or an array of them, got {value!r}") from exc
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; pass finite values")
    return arr


def _require(name, arr, ok, what):
    if not np.all(ok):
        bad = arr[~np.broadcast_to(ok, arr.shape)] if arr.ndim else arr
        raise ValueError(f"{name} must be {what}; got {float(np.ravel(bad)[0])!r}")


def _result(out):
    return out if np.ndim(out) else float(out)


def stokes_einstein_diffusivity_array(temperature_k, viscosity_pa_s, radius_m):
    """Array form of :func:`stokes_einstein_diffusivity` (broadcasting; m²/s).

    Raises
    ------
    ValueError
        If any temperature, viscosity or radius is not positive (pass SI units: K, Pa·s, m).
    """
    t = _as_float("temperature_k", temperature_k)
    eta = _as_float("viscosity_pa_s", viscosity_pa_s)
    r = _as_float("radius_m", radius_m)
    _require("temperature_k", t, t > 0, "> 0 K (absolute temperature)")
    _require("viscosity_pa_s", eta, eta > 0, "> 0 Pa·s (e.g. 0.692e-3 for water at 37 °C)")
    _require("radius_m", r, r > 0, "> 0 m (e.g. 50e-9 for a 100 nm carrier)")
    return _result(_ufunc("stokes_einstein_diffusivity", 3)(t, eta, r))


def ogston_factor_array(volume_fraction, solute_radius_m, fibre_radius_m):
    """Array form of :func:`ogston_factor` (broadcasting; dimensionless).

    Raises
    ------
    ValueError
        If the volume fraction is outside [0, 1), a radius is negative or a fibre radius is 0.
    """
    phi = _as_float("volume_fraction", volume_fraction)
    rs = _as_float("solute_radius_m", solute_radius_m)
    rf = _as_float("fibre_radius_m", fibre_radius_m)
    _require("volume_fraction", phi, (phi >= 0) & (phi < 1), "in [0, 1) (a fraction, not percent)")
    _require("solute_radius_m", rs, rs >= 0, ">= 0 m")
    _require("fibre_radius_m", rf, rf > 0, "> 0 m")
    return _result(_ufunc("ogston_factor", 3)(phi, rs, rf))


def _lam_array(fn_name, lam):
    lam = _as_float("lam", lam)
    _require("lam", lam, lam >= 0, ">= 0 (λ = carrier radius / pore radius)")
    return _result(_ufunc(fn_name, 1)(lam))


def dechadilok_deen_h_array(lam):
    """Array form of :func:`dechadilok_deen_h`; raises ValueError for λ < 0 or NaN."""
    return _lam_array("dechadilok_deen_h", lam)


def dechadilok_deen_w_array(lam):
    """Array form of :func:`dechadilok_deen_w`; raises ValueError for λ < 0 or NaN."""
    return _lam_array("dechadilok_deen_w", lam)


def renkin_h_array(lam):
    """Array form of :func:`renkin_h`; raises ValueError for λ < 0 or NaN."""
    return _lam_array("renkin_h", lam)


def pore_permeability_array(gamma, h, d0, wall_thickness_m):
    """Array form of :func:`pore_permeability` (broadcasting; m/s).

    Raises
    ------
    ValueError
        If γ is outside [0, 1], H is outside [0, 1], D₀ is negative or the wall thickness is not
        positive.
    """
    g = _as_float("gamma", gamma)
    hh = _as_float("h", h)
    d = _as_float("d0", d0)
    lw = _as_float("wall_thickness_m", wall_thickness_m)
    _require("gamma", g, (g >= 0) & (g <= 1), "in [0, 1] (pore area / wall area)")
    _require("h", hh, (hh >= 0) & (hh <= 1), "in [0, 1] (a hindrance factor)")
    _require("d0", d, d >= 0, ">= 0 m²/s")
    _require("wall_thickness_m", lw, lw > 0, "> 0 m")
    return _result(_ufunc("pore_permeability", 4)(g, hh, d, lw))


def patlak_flux_array(jv, sigma_f, ps, c_v, c_i):
    """Array form of :func:`patlak_flux` (broadcasting).

    Raises
    ------
    ValueError
        If σ_f is outside [0, 1] or ``ps`` is negative.
    """
    j = _as_float("jv", jv)
    s = _as_float("sigma_f", sigma_f)
    p = _as_float("ps", ps)
    cv = _as_float("c_v", c_v)
    ci = _as_float("c_i", c_i)
    _require("sigma_f", s, (s >= 0) & (s <= 1), "in [0, 1] (σ_f = 1 − W)")
    _require("ps", p, p >= 0, ">= 0 (P in m/s, or P·S/V in 1/s)")
    return _result(_ufunc("patlak_flux", 5)(j, s, p, cv, ci))
