r"""Carriers in the whole body: a two-compartment pharmacokinetic model with body presets.

The systemic pool of PHYSICS.md §5 ("a pharmacokinetic compartment with clearance"): amounts of
real carriers (float64 numbers, not moles) in the plasma (central, volume :math:`V_1`) and in a
peripheral compartment, with first-order exchange and elimination from the plasma,

.. math::

    \dot x_1 = -(k_{10} + k_{12})\,x_1 + k_{21}\,x_2 + R(t) + \text{given} - \text{drawn},
    \qquad \dot x_2 = k_{12}\,x_1 - k_{21}\,x_2,

    \dot x_{mps} = f_{liver}\,k_{10}\,x_1, \qquad \dot x_{other} = (1 - f_{liver})\,k_{10}\,x_1,

where :math:`R` is an infusion rate (carriers/s), :math:`f_{liver}` the fraction of elimination
taken up by liver macrophages (Kupffer cells, the mononuclear phagocyte system; PHYSICS.md §5)
and the rest is renal or other clearance. After a unit bolus the plasma concentration is the
biexponential :math:`C(t) = A e^{-\alpha t} + B e^{-\beta t}` with
:math:`\alpha + \beta = k_{10} + k_{12} + k_{21}`, :math:`\alpha\beta = k_{10} k_{21}`,
:math:`A + B = 1/V_1`, and

.. math::

    k_{21} = \frac{A\beta + B\alpha}{A + B}, \quad k_{10} = \frac{\alpha\beta}{k_{21}}, \quad
    k_{12} = \alpha + \beta - k_{21} - k_{10} = \frac{(\alpha - k_{21})(k_{21} - \beta)}{k_{21}}.

:meth:`SystemicPK.step` integrates exactly over a step with a constant infusion: with
:math:`M` the 2×2 rate matrix, :math:`\varphi_0 = \exp`, :math:`\varphi_1(z) = (e^z - 1)/z`,
:math:`\varphi_2(z) = (e^z - 1 - z)/z^2`,

.. math::

    x(t) = \varphi_0(Mt)\,x_0 + t\,\varphi_1(Mt)\,r, \qquad
    \int_0^t x\,ds = t\,\varphi_1(Mt)\,x_0 + t^2\varphi_2(Mt)\,r, \qquad r = (R, 0),

and each :math:`\varphi_k(Mt)` is written in Newton form on the eigenvalues
:math:`-\alpha \le -\beta \le 0`: :math:`\varphi_k(Mt) = \varphi_k(-\alpha t)\,I +
t\,\varphi_k[-\alpha t, -\beta t]\,(M + \alpha I)`. Every entry of :math:`M + \alpha I` and every
divided difference is non-negative, so the sums never cancel; the divided differences are
evaluated stably for well separated, close and equal eigenvalues (one-compartment
:math:`k_{12} = 0` and repeated-eigenvalue cases included). The eliminated amounts and the
plasma AUC come from the same exact integral, so the ledger

    injected + external_in − external_out = central + peripheral + mps + other_cleared

closes to round-off after any number of steps of any size (the rounded propagator misses exact
conservation by an ulp or so per step; that imbalance, computed exactly, is put on the largest
part, so it cannot drift with the step count).

Examples
--------
>>> pk = peg_liposome_human()
>>> [round(t / 3600, 6) for t in pk.half_lives()]
[2.0, 45.0]
>>> pk.bolus(1e12)
>>> auc = pk.step(24 * 3600.0)  # carriers·s/m³ over the step
>>> print(f"{pk.plasma_concentration():.4e}")  # carriers per m³
1.0337e+14
>>> pk.ledger_error() < 1e-15
True
"""

from __future__ import annotations

import math
import operator
from array import array
from dataclasses import dataclass, fields, replace

import numpy as np

from ..units import format_number, format_quantity

__all__ = [
    "Body",
    "BODIES",
    "body_from",
    "SystemicPK",
    "hepatic_arterial_split",
    "peg_liposome_human",
    "DEFAULT_LIVER_UPTAKE_FRACTION",
    "DEFAULT_HEPATIC_ARTERIAL_FRACTION",
    "PEG_LIPOSOME_HUMAN_T_HALF_FAST_S",
    "PEG_LIPOSOME_HUMAN_T_HALF_SLOW_S",
    "PEG_LIPOSOME_HUMAN_CLEARANCE_M3_PER_S",
    "PEG_LIPOSOME_HUMAN_VOLUME_M3",
    "DOXIL_TERMINAL_T_HALF_S",
    "IN111_PEG_LIPOSOME_TERMINAL_T_HALF_S",
    "MOUSE_PEG_LIPOSOME_T_HALF_RANGE_S",
]

_HOUR_S = 3600.0
_ML_M3 = 1e-6
_ML_PER_MIN_M3_PER_S = 1e-6 / 60.0

# --------------------------------------------------------------------------------------------
# helpers


def _check_number(name: str, value: float, low: float = 0.0, *, strict: bool = False, high: float = math.inf) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    bad = not math.isfinite(value) or value < low or (strict and value == low) or value > high
    if bad:
        bounds = ([f"> {low:g}" if strict else f">= {low:g}"] if low > -math.inf else []) + \
            ([f"<= {high:g}"] if high < math.inf else [])
        raise ValueError(f"{name} must be a finite number {' and '.join(bounds)}".rstrip() + f", got {value!r}")
    return value


def _read_only(attr: str, doc: str) -> property:
    return property(operator.attrgetter(attr), doc=doc)


def _duration(t_s: float) -> str:
    return format_quantity(t_s, "time") if math.isfinite(t_s) else "∞"


def _tree(rows: list[str]) -> str:
    return "\n".join(("└── " if i == len(rows) - 1 else "├── ") + r for i, r in enumerate(rows))


# --------------------------------------------------------------------------------------------
# named defaults (PHYSICS.md §5)

DEFAULT_LIVER_UPTAKE_FRACTION = 0.8
"""Fraction of carrier elimination taken up by liver macrophages (Kupffer cells), dimensionless.

Unconfirmed default, overridable. Motivated by PHYSICS.md §5: Kupffer cells take up most carriers
passing the liver (Tsoi 2016: 84.8 ± 6.4 % of Kupffer cells carrier-positive; that figure is a
fraction of cells, not of the dose, so 0.8 is a round value, not a measurement)."""

DEFAULT_HEPATIC_ARTERIAL_FRACTION = 0.25
"""Hepatic arterial share of total liver blood flow (the rest is portal venous), dimensionless.

Textbook physiology (≈ 25 %); unconfirmed default, overridable."""

PEG_LIPOSOME_HUMAN_T_HALF_FAST_S = 2.0 * _HOUR_S
"""PEG-liposome (Doxil) first disposition half-life in patients, s: 2 h (Gabizon 1994, via
PHYSICS.md §5)."""

PEG_LIPOSOME_HUMAN_T_HALF_SLOW_S = 45.0 * _HOUR_S
"""PEG-liposome (Doxil) second disposition half-life in patients, s: 45 h (Gabizon 1994, via
PHYSICS.md §5)."""

PEG_LIPOSOME_HUMAN_CLEARANCE_M3_PER_S = 0.1e-3 / _HOUR_S
"""PEG-liposome plasma clearance in patients, m³/s: 0.1 L/h (Gabizon 1994, via PHYSICS.md §5)."""

PEG_LIPOSOME_HUMAN_VOLUME_M3 = 4.0e-3
"""PEG-liposome central volume of distribution in patients, m³: 4 L (Gabizon 1994, via
PHYSICS.md §5)."""

DOXIL_TERMINAL_T_HALF_S = 55.0 * _HOUR_S
"""Doxil terminal plasma half-life, s: 55 h (Doxil prescribing label, via PHYSICS.md §5)."""

IN111_PEG_LIPOSOME_TERMINAL_T_HALF_S = 76.0 * _HOUR_S
"""Terminal half-life of ¹¹¹In-labelled PEG-liposomes in patients, s: 76 h (Harrington 2001, via
PHYSICS.md §5)."""

MOUSE_PEG_LIPOSOME_T_HALF_RANGE_S = (20.0 * _HOUR_S, 30.0 * _HOUR_S)
"""PEG-liposome circulation half-life range in mice, s: 20–30 h (PHYSICS.md §5, no primary source
given there; unconfirmed default, overridable)."""


# --------------------------------------------------------------------------------------------
# bodies


@dataclass(frozen=True)
class Body:
    """Whole-body physiology of one species (SI units).

    Parameters
    ----------
    name : str
        Species name.
    body_mass_kg : float
        Body mass, kg.
    blood_volume_m3 : float
        Total blood volume, m³.
    haematocrit : float
        Volume fraction of red cells in blood, in [0, 1); plasma volume is derived from it.
    cardiac_output_m3_per_s : float
        Cardiac output, m³/s.
    hepatic_blood_flow_m3_per_s : float
        Total liver blood flow (hepatic artery + portal vein), m³/s.
    liver_mass_kg : float
        Liver mass, kg.
    hepatic_arterial_fraction : float
        Share of liver blood flow that comes from the hepatic artery, in [0, 1]
        (default :data:`DEFAULT_HEPATIC_ARTERIAL_FRACTION`).
    """

    name: str
    body_mass_kg: float
    blood_volume_m3: float
    haematocrit: float
    cardiac_output_m3_per_s: float
    hepatic_blood_flow_m3_per_s: float
    liver_mass_kg: float
    hepatic_arterial_fraction: float = DEFAULT_HEPATIC_ARTERIAL_FRACTION

    def __post_init__(self):
        for f in fields(self):
            if f.name == "name":
                continue
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"Body.{f.name} must be a finite number, got {v!r}")
        for name in ("body_mass_kg", "blood_volume_m3", "cardiac_output_m3_per_s",
                     "hepatic_blood_flow_m3_per_s", "liver_mass_kg"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Body.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 <= self.haematocrit < 1:
            raise ValueError(f"Body.haematocrit must be in [0, 1), got {self.haematocrit!r}")
        if not 0 <= self.hepatic_arterial_fraction <= 1:
            raise ValueError(f"Body.hepatic_arterial_fraction must be in [0, 1], got {self.hepatic_arterial_fraction!r}")
        if self.hepatic_blood_flow_m3_per_s > self.cardiac_output_m3_per_s:
            raise ValueError(f"Body.hepatic_blood_flow_m3_per_s ({self.hepatic_blood_flow_m3_per_s:g} m³/s) exceeds "
                             f"Body.cardiac_output_m3_per_s ({self.cardiac_output_m3_per_s:g} m³/s)")
        if self.liver_mass_kg >= self.body_mass_kg:
            raise ValueError(f"Body.liver_mass_kg ({self.liver_mass_kg:g} kg) must be below "
                             f"Body.body_mass_kg ({self.body_mass_kg:g} kg)")

    @property
    def plasma_volume_m3(self) -> float:
        """Plasma volume, m³: blood volume × (1 − haematocrit)."""
        return self.blood_volume_m3 * (1.0 - self.haematocrit)

    @property
    def hepatic_arterial_flow_m3_per_s(self) -> float:
        """Hepatic arterial blood flow, m³/s: liver blood flow × hepatic arterial fraction."""
        return self.hepatic_blood_flow_m3_per_s * self.hepatic_arterial_fraction

    def __repr__(self) -> str:
        ml, ml_min = _ML_M3, _ML_PER_MIN_M3_PER_S
        rows = [f"body mass        {format_number(self.body_mass_kg)} kg, liver {format_number(self.liver_mass_kg * 1e3)} g",
                f"blood volume     {format_number(self.blood_volume_m3 / ml)} mL (haematocrit "
                f"{format_number(self.haematocrit, 3)}, plasma {format_number(self.plasma_volume_m3 / ml)} mL)",
                f"cardiac output   {format_number(self.cardiac_output_m3_per_s / ml_min)} mL/min",
                f"liver blood flow {format_number(self.hepatic_blood_flow_m3_per_s / ml_min)} mL/min "
                f"({format_number(100 * self.hepatic_arterial_fraction, 3)} % hepatic arterial)"]
        return f"Body({self.name})\n" + _tree(rows)


def _davies_morris(name, mass_kg, blood_ml, plasma_ml, cardiac_ml_min, liver_flow_ml_min, liver_g) -> Body:
    # haematocrit = 1 − plasma/blood so the derived plasma volume reproduces the tabulated one
    return Body(name=name, body_mass_kg=mass_kg, blood_volume_m3=blood_ml * _ML_M3,
                haematocrit=1.0 - plasma_ml / blood_ml,
                cardiac_output_m3_per_s=cardiac_ml_min * _ML_PER_MIN_M3_PER_S,
                hepatic_blood_flow_m3_per_s=liver_flow_ml_min * _ML_PER_MIN_M3_PER_S,
                liver_mass_kg=liver_g * 1e-3)


BODIES: dict[str, Body] = {
    # Columns: body mass (kg), blood volume (mL), plasma volume (mL), cardiac output (mL/min),
    # liver blood flow (mL/min), liver mass (g). Source for every value: Davies & Morris 1993,
    # Pharm Res 10:1093 ("Physiological parameters in laboratory animals and humans"), as
    # recalled, not checked against the paper: unconfirmed defaults, overridable through
    # body_from(). Haematocrit is derived (1 − plasma/blood); the hepatic arterial fraction is
    # DEFAULT_HEPATIC_ARTERIAL_FRACTION for every species (unconfirmed default, overridable).
    "mouse": _davies_morris("mouse", 0.02, 1.7, 1.0, 8.0, 1.8, 1.75),
    "rat": _davies_morris("rat", 0.25, 13.5, 7.8, 74.0, 13.8, 10.0),
    "rabbit": _davies_morris("rabbit", 2.5, 165.0, 110.0, 530.0, 177.0, 100.0),
    "human": _davies_morris("human", 70.0, 5200.0, 3000.0, 5600.0, 1450.0, 1800.0),
}
"""Body presets by species (Davies & Morris 1993; unconfirmed defaults, overridable)."""

_DERIVED_OVERRIDES = {"plasma_volume_m3": "haematocrit", "hepatic_arterial_flow_m3_per_s": "hepatic_arterial_fraction"}


def body_from(name: str, **overrides: float) -> Body:
    """The preset body of species ``name`` with some values replaced.

    Parameters
    ----------
    name : str
        One of ``BODIES`` ("mouse", "rat", "rabbit", "human").
    **overrides : float
        Any :class:`Body` field (SI units, e.g. ``body_mass_kg=0.025``), or one of the derived
        values ``plasma_volume_m3`` (sets the haematocrit) and ``hepatic_arterial_flow_m3_per_s``
        (sets the hepatic arterial fraction), which are applied after the fields.

    Raises
    ------
    ValueError
        Unknown species, unknown field (the message lists the allowed names), a derived value
        given together with the field it sets, or a value out of range (named).

    Examples
    --------
    >>> body_from("mouse", body_mass_kg=0.025).body_mass_kg
    0.025
    >>> body_from("dog")
    Traceback (most recent call last):
    ...
    ValueError: unknown species 'dog'; allowed: mouse, rat, rabbit, human
    """
    if name not in BODIES:
        raise ValueError(f"unknown species {name!r}; allowed: {', '.join(BODIES)}")
    allowed = [f.name for f in fields(Body) if f.name != "name"] + list(_DERIVED_OVERRIDES)
    for key in overrides:
        if key not in allowed:
            raise ValueError(f"unknown Body field {key!r}; allowed: {', '.join(allowed)}")
    for derived, base in _DERIVED_OVERRIDES.items():
        if derived in overrides and base in overrides:
            raise ValueError(f"give either {derived} or {base}, not both (the first sets the second)")
    plain = {k: v for k, v in overrides.items() if k not in _DERIVED_OVERRIDES}
    body = replace(BODIES[name], **plain)
    if "plasma_volume_m3" in overrides:
        v = overrides["plasma_volume_m3"]
        if not 0 < v <= body.blood_volume_m3:
            raise ValueError(f"plasma_volume_m3 must be in (0, blood_volume_m3 = {body.blood_volume_m3:g}], got {v!r}")
        body = replace(body, haematocrit=1.0 - v / body.blood_volume_m3)
    if "hepatic_arterial_flow_m3_per_s" in overrides:
        q = overrides["hepatic_arterial_flow_m3_per_s"]
        if not 0 <= q <= body.hepatic_blood_flow_m3_per_s:
            raise ValueError(f"hepatic_arterial_flow_m3_per_s must be in [0, hepatic_blood_flow_m3_per_s = "
                             f"{body.hepatic_blood_flow_m3_per_s:g}], got {q!r}")
        body = replace(body, hepatic_arterial_fraction=q / body.hepatic_blood_flow_m3_per_s)
    return body


def hepatic_arterial_split(body: Body, tumour_arterial_flow_m3_per_s: float) -> float:
    """Fraction of a hepatic arterial infusion that enters a tumour on its first pass.

    Carriers split at bifurcations in proportion to blood flow (PHYSICS.md §5), and a liver
    tumour is fed almost entirely by the hepatic artery, so the tumour's arterial inflow is taken
    to be part of the body's hepatic arterial flow: the tumour receives
    ``Q_tumour / Q_hepatic_artery``; the remainder passes the normal liver, where Kupffer cells
    take up most of it, and then reaches the systemic pool.

    Parameters
    ----------
    body : Body
        Gives ``Q_hepatic_artery = hepatic_blood_flow_m3_per_s × hepatic_arterial_fraction``.
    tumour_arterial_flow_m3_per_s : float
        Arterial blood flow into the tumour, m³/s, in [0, Q_hepatic_artery].

    Returns
    -------
    float
        The fraction in [0, 1].

    Examples
    --------
    >>> human = BODIES["human"]
    >>> round(hepatic_arterial_split(human, 0.1 * human.hepatic_arterial_flow_m3_per_s), 12)
    0.1
    """
    q_ha = body.hepatic_arterial_flow_m3_per_s
    q = tumour_arterial_flow_m3_per_s
    if not (math.isfinite(q) and 0 <= q <= q_ha):
        raise ValueError(f"tumour_arterial_flow_m3_per_s must be in [0, {q_ha:g}] (the {body.name}'s hepatic "
                         f"arterial flow, m³/s), got {q!r}")
    return q / q_ha if q_ha > 0 else 0.0


# --------------------------------------------------------------------------------------------
# φ functions and their divided differences, stable for real z ≤ 0


_INV_FACT = tuple(1.0 / math.factorial(n) for n in range(40))
_GL_X, _GL_W = (tuple(float(v) for v in a) for a in np.polynomial.legendre.leggauss(16))


def _series(coeffs, z: float) -> float:
    s = 0.0
    for c in reversed(coeffs):
        s = s * z + c
    return s


# Taylor coefficients: φ_k(z) = Σ z^j/(j+k)!  (|z| < 1: 21 terms reach 1/21! ≈ 2e-20), and
# φ_k'(z) = Σ (j+1) z^j/(j+k+1)!  (|z| < 2: 29 terms reach 2^28·29/30! ≈ 3e-23).
_PHI_SERIES = tuple(tuple(_INV_FACT[j + k] for j in range(21)) for k in range(4))
_DPHI_SERIES = tuple(tuple((j + 1) * _INV_FACT[j + k + 1] for j in range(29)) for k in range(3))


def _phi(k: int, z: float) -> float:
    """φ_k(z) = Σ_j z^j / (j + k)! for k = 0, 1, 2."""
    if abs(z) < 1.0:
        return _series(_PHI_SERIES[k], z)
    if k == 0:
        return math.exp(z)
    f = math.expm1(z) / z
    for m in range(1, k):  # φ_{m+1} = (φ_m − 1/m!)/z: |z| ≥ 1 keeps the cancellation to a few ulp
        f = (f - _INV_FACT[m]) / z
    return f


def _dphi(k: int, z: float) -> float:
    """φ_k'(z) = φ_k(z) − k φ_{k+1}(z) for k = 0, 1, 2, without that difference's cancellation."""
    if k == 0:
        return math.exp(z)
    if abs(z) < 2.0:
        return _series(_DPHI_SERIES[k], z)
    e = math.exp(z)
    if k == 1:
        return (e * (z - 1.0) + 1.0) / (z * z)
    return (e * (z - 2.0) + z + 2.0) / (z * z * z)


def _phi_dd(k: int, a: float, b: float) -> float:
    """Divided difference φ_k[a, b] = (φ_k(a) − φ_k(b)) / (a − b), φ_k'(a) when a = b."""
    if a == b:
        return _dphi(k, a)
    if k == 0:  # exp[a, b] = e^max φ_1(min − max): no cancellation, no overflow
        return math.exp(max(a, b)) * _phi(1, -abs(a - b))
    fa, fb = _phi(k, a), _phi(k, b)
    if abs(fa - fb) >= 0.5 * max(abs(fa), abs(fb)):
        return (fa - fb) / (a - b)  # at most one bit lost to cancellation
    h, c = 0.5 * (a - b), 0.5 * (a + b)
    # φ_k changes by less than a factor 2 over [b, a]: the mean of φ_k' over the interval by
    # 16-point Gauss–Legendre, exact to round-off there (φ_k' is entire and, on such an
    # interval, analytic well beyond it: the error bound is below 1e-20 relative)
    return 0.5 * sum(w * _dphi(k, c + h * x) for x, w in zip(_GL_X, _GL_W))


# --------------------------------------------------------------------------------------------
# the two-compartment model


_STATE_NAMES = ("central", "peripheral", "mps", "other_cleared", "injected", "external_in", "external_out")


class SystemicPK:
    r"""Two-compartment linear pharmacokinetics of carriers in the body (see the module docstring).

    Parameters
    ----------
    k12_per_s : float
        Central → peripheral rate constant, 1/s, ≥ 0.
    k21_per_s : float
        Peripheral → central rate constant, 1/s, ≥ 0.
    k10_per_s : float
        Elimination rate constant from the central compartment, 1/s, ≥ 0.
    volume_m3 : float
        Central (plasma) volume of distribution :math:`V_1`, m³, > 0.
    liver_uptake_fraction : float
        Share of elimination taken up by liver macrophages (the ``mps`` pool), in [0, 1];
        the rest is ``other_cleared`` (default :data:`DEFAULT_LIVER_UPTAKE_FRACTION`, unconfirmed).

    Notes
    -----
    Amounts are numbers of real carriers (float64). ``central``, ``peripheral``, ``mps`` and
    ``other_cleared`` are the state; ``injected`` (bolus and infusion), ``external_in`` and
    ``external_out`` (:meth:`give` and :meth:`draw`) are cumulative inputs; the plasma AUC
    (carriers·s/m³) is accumulated exactly by :meth:`step`.
    """

    def __init__(self, k12_per_s: float, k21_per_s: float, k10_per_s: float, volume_m3: float,
                 liver_uptake_fraction: float = DEFAULT_LIVER_UPTAKE_FRACTION):
        self._k12 = _check_number("k12_per_s", k12_per_s)
        self._k21 = _check_number("k21_per_s", k21_per_s)
        self._k10 = _check_number("k10_per_s", k10_per_s)
        self._v1 = _check_number("volume_m3", volume_m3, strict=True)
        self._f_liver = _check_number("liver_uptake_fraction", liver_uptake_fraction, high=1.0)
        k10, k12, k21 = self._k10, self._k12, self._k21
        # eigenvalues −α ≤ −β ≤ 0 of M; disc = α − β without cancellation
        p = k10 + k12 - k21
        disc = math.sqrt(p * p + 4.0 * k12 * k21)
        self._alpha = 0.5 * (k10 + k12 + k21 + disc)
        self._beta = k10 * k21 / self._alpha if self._alpha > 0 else 0.0
        # M + αI = [[u, k21], [k12, v]], all entries ≥ 0: u = (disc − p)/2, v = (disc + p)/2
        # (the smaller of the two written as 2 k12 k21 / (disc + |p|) to avoid cancelling)
        small = 2.0 * k12 * k21 / (disc + abs(p)) if disc > 0 else 0.0
        self._u, self._v = (small, disc - small) if p >= 0 else (disc - small, small)
        self._fast = self._v / disc if disc > 0 else 1.0
        self._cache_dt = None
        self._cache = None
        self._reset()

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_half_lives(cls, t_half_fast_s: float, t_half_slow_s: float, fast_fraction: float, volume_m3: float,
                        liver_uptake_fraction: float = DEFAULT_LIVER_UPTAKE_FRACTION) -> "SystemicPK":
        """From the biexponential plasma curve ``C(t) = A e^{−αt} + B e^{−βt}`` after a unit bolus.

        Parameters
        ----------
        t_half_fast_s, t_half_slow_s : float
            Disposition half-lives ln 2/α ≤ ln 2/β, s, > 0.
        fast_fraction : float
            ``A / (A + B)``, in (0, 1).
        volume_m3 : float
            Central volume ``V_1 = 1 / (A + B)``, m³.
        liver_uptake_fraction : float
            See :class:`SystemicPK`.
        """
        t1 = _check_number("t_half_fast_s", t_half_fast_s, strict=True)
        t2 = _check_number("t_half_slow_s", t_half_slow_s, strict=True)
        if t1 > t2:
            raise ValueError(f"t_half_fast_s ({t1:g} s) must not exceed t_half_slow_s ({t2:g} s)")
        f = _check_number("fast_fraction", fast_fraction, low=-math.inf)
        if not 0.0 < f < 1.0:
            raise ValueError(f"fast_fraction must be in (0, 1) (A/(A+B) of the biexponential), got {fast_fraction!r}")
        alpha, beta = math.log(2.0) / t1, math.log(2.0) / t2
        k21 = f * beta + (1.0 - f) * alpha
        k10 = alpha * beta / k21
        k12 = f * (1.0 - f) * (alpha - beta) ** 2 / k21  # = (α − k21)(k21 − β)/k21, ≥ 0 by construction
        return cls(k12, k21, k10, volume_m3, liver_uptake_fraction)

    @classmethod
    def from_clearance(cls, t_half_fast_s: float, t_half_slow_s: float, clearance_m3_per_s: float, volume_m3: float,
                       liver_uptake_fraction: float = DEFAULT_LIVER_UPTAKE_FRACTION) -> "SystemicPK":
        """From the two disposition half-lives, the plasma clearance ``CL = k10 V_1`` and ``V_1``.

        The fast fraction follows: ``k21 = α β V_1 / CL`` and ``A/(A+B) = (α − k21)/(α − β)``,
        which must lie in (0, 1) (otherwise the four numbers are inconsistent and the error says so).
        """
        t1 = _check_number("t_half_fast_s", t_half_fast_s, strict=True)
        t2 = _check_number("t_half_slow_s", t_half_slow_s, strict=True)
        cl = _check_number("clearance_m3_per_s", clearance_m3_per_s, strict=True)
        v1 = _check_number("volume_m3", volume_m3, strict=True)
        alpha, beta = math.log(2.0) / t1, math.log(2.0) / t2
        if not alpha > beta:
            raise ValueError(f"t_half_fast_s ({t1:g} s) must be below t_half_slow_s ({t2:g} s)")
        f = (alpha - alpha * beta * v1 / cl) / (alpha - beta)
        if not 0.0 < f < 1.0:
            raise ValueError(f"clearance_m3_per_s = {cl:g} is inconsistent with the half-lives and volume_m3: "
                             f"it must lie between β V_1 = {beta * v1:g} and α V_1 = {alpha * v1:g} m³/s")
        return cls.from_half_lives(t1, t2, f, v1, liver_uptake_fraction)

    @classmethod
    def one_compartment(cls, t_half_s: float, volume_m3: float,
                        liver_uptake_fraction: float = DEFAULT_LIVER_UPTAKE_FRACTION) -> "SystemicPK":
        """Monoexponential plasma curve: ``k12 = k21 = 0``, ``k10 = ln 2 / t_half_s``."""
        t = _check_number("t_half_s", t_half_s, strict=True)
        return cls(0.0, 0.0, math.log(2.0) / t, volume_m3, liver_uptake_fraction)

    # -- parameters ----------------------------------------------------------------------------
    k12_per_s = _read_only("_k12", "Central → peripheral rate constant, 1/s.")
    k21_per_s = _read_only("_k21", "Peripheral → central rate constant, 1/s.")
    k10_per_s = _read_only("_k10", "Elimination rate constant, 1/s.")
    volume_m3 = _read_only("_v1", "Central (plasma) volume of distribution, m³.")
    liver_uptake_fraction = _read_only("_f_liver", "Share of elimination going to liver macrophages (``mps``).")
    fast_fraction = _read_only("_fast", "``A / (A + B)`` of the plasma curve after a bolus (1 when α = β).")

    @property
    def clearance_m3_per_s(self) -> float:
        """Plasma clearance ``k10 V_1``, m³/s."""
        return self._k10 * self._v1

    @property
    def peripheral_volume_m3(self) -> float:
        """Apparent peripheral volume ``V_1 k12 / k21``, m³ (∞ if k21 = 0 < k12)."""
        if self._k12 == 0:
            return 0.0
        return self._v1 * self._k12 / self._k21 if self._k21 > 0 else math.inf

    def biexponential(self) -> tuple[float, float, float, float]:
        """``(A, α, B, β)`` of ``C(t) = A e^{−αt} + B e^{−βt}`` after a unit bolus (1/m³, 1/s)."""
        a = self._fast / self._v1
        return a, self._alpha, (1.0 - self._fast) / self._v1, self._beta

    def half_lives(self) -> tuple[float, float]:
        """Disposition half-lives ``(ln 2/α, ln 2/β)``, s (∞ for a zero rate)."""
        return tuple(math.log(2.0) / r if r > 0 else math.inf for r in (self._alpha, self._beta))

    def parameters(self) -> dict[str, float]:
        """The micro constants, volume and liver fraction, by name (SI)."""
        return {"k12_per_s": self._k12, "k21_per_s": self._k21, "k10_per_s": self._k10,
                "volume_m3": self._v1, "liver_uptake_fraction": self._f_liver}

    # -- state ---------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.time_s = 0.0
        self._x = dict.fromkeys(_STATE_NAMES, 0.0)
        self._auc = 0.0
        self._hist_t = array("d", [0.0])
        self._hist_auc = array("d", [0.0])

    central = property(lambda self: self._x["central"], doc="Carriers in the plasma.")
    peripheral = property(lambda self: self._x["peripheral"], doc="Carriers in the peripheral compartment.")
    mps = property(lambda self: self._x["mps"], doc="Cumulative carriers taken up by liver macrophages.")
    other_cleared = property(lambda self: self._x["other_cleared"], doc="Cumulative carriers cleared otherwise.")
    injected = property(lambda self: self._x["injected"], doc="Cumulative carriers injected (bolus + infusion).")
    external_in = property(lambda self: self._x["external_in"], doc="Cumulative carriers given back to the plasma.")
    external_out = property(lambda self: self._x["external_out"], doc="Cumulative carriers drawn from the plasma.")

    def plasma_concentration(self) -> float:
        """Carriers per m³ of plasma now: ``central / V_1``."""
        return self._x["central"] / self._v1

    def bolus(self, amount: float) -> None:
        """Inject ``amount`` carriers into the plasma at once."""
        amount = _check_number("amount", amount)
        self._x["central"] += amount
        self._x["injected"] += amount

    def give(self, amount: float) -> None:
        """Return ``amount`` carriers to the plasma (e.g. from the simulated tissue box)."""
        amount = _check_number("amount", amount)
        self._x["central"] += amount
        self._x["external_in"] += amount

    def draw(self, amount: float) -> float:
        """Take ``amount`` carriers from the plasma (e.g. into the simulated tissue box).

        An amount above the plasma content by no more than 1e-12 relative (round-off in the
        caller) is clipped to it; more raises ValueError. Returns the amount drawn.
        """
        amount = _check_number("amount", amount)
        have = self._x["central"]
        if amount > have:
            if amount > have * (1.0 + 1e-12):
                raise ValueError(f"amount ({amount:g} carriers) exceeds the plasma content ({have:g} carriers)")
            amount = have
        self._x["central"] = have - amount
        self._x["external_out"] += amount
        return amount

    # -- integration ---------------------------------------------------------------------------
    def _propagator(self, dt: float) -> tuple[float, ...]:
        """Entries of φ_0(M dt), dt φ_1(M dt) and dt² φ_2(M dt) that a step uses (cached per dt)."""
        if dt == self._cache_dt:
            return self._cache
        k12, k21, u, v = self._k12, self._k21, self._u, self._v
        z1, z2 = -self._alpha * dt, -self._beta * dt
        g0, d0 = _phi(0, z1), dt * _phi_dd(0, z1, z2)
        g1, d1 = dt * _phi(1, z1), dt * dt * _phi_dd(1, z1, z2)
        g2, d2 = dt * dt * _phi(2, z1), dt * dt * dt * _phi_dd(2, z1, z2)
        prop = (g0 + d0 * u, d0 * k21, d0 * k12, g0 + d0 * v,  # φ_0(M dt): 11, 12, 21, 22
                g1 + d1 * u, d1 * k21, d1 * k12,  # dt φ_1(M dt): 11, 12, 21
                g2 + d2 * u)  # dt² φ_2(M dt): 11
        self._cache_dt, self._cache = dt, prop
        return prop

    def step(self, dt_s: float, infusion_rate_per_s: float = 0.0) -> float:
        """Advance exactly by ``dt_s`` with a constant infusion into the plasma.

        Parameters
        ----------
        dt_s : float
            Step, s, ≥ 0 (0 does nothing).
        infusion_rate_per_s : float
            Carriers per second infused into the plasma during the step, ≥ 0.

        Returns
        -------
        float
            The plasma AUC over the step, carriers·s/m³ (divide by ``dt_s`` for the exact mean
            plasma concentration, which is what an explicit tissue step should see).
        """
        dt = _check_number("dt_s", dt_s)
        rate = _check_number("infusion_rate_per_s", infusion_rate_per_s)
        if dt == 0.0:
            return 0.0
        e11, e12, e21, e22, p11, p12, p21, q11 = self._propagator(dt)
        x = self._x
        x1, x2 = x["central"], x["peripheral"]
        integral = p11 * x1 + p12 * x2 + q11 * rate  # ∫ central dt over the step, carriers·s
        eliminated = self._k10 * integral
        added = rate * dt
        parts = [e11 * x1 + e12 * x2 + p11 * rate, e21 * x1 + e22 * x2 + p21 * rate,
                 self._f_liver * eliminated, (1.0 - self._f_liver) * eliminated]
        # Each propagator entry is right to a few ulp, but their column sums miss 1 by an ulp or
        # so, the same way on every step of a given size: left alone, the ledger would drift
        # linearly with the number of steps. The imbalance (exact, by fsum) is round-off sized
        # and goes to the largest part, where it is below that part's own rounding.
        imbalance = math.fsum((x1, x2, added, -parts[0], -parts[1], -parts[2], -parts[3]))
        big = max(range(4), key=lambda i: parts[i])
        parts[big] += imbalance
        x["central"], x["peripheral"] = parts[0], parts[1]
        x["mps"] += parts[2]
        x["other_cleared"] += parts[3]
        x["injected"] += added
        step_auc = integral / self._v1
        self._auc += step_auc
        self.time_s += dt
        self._hist_t.append(self.time_s)
        self._hist_auc.append(self._auc)
        return step_auc

    def auc(self, t0_s: float = 0.0, t1_s: float | None = None) -> float:
        """Exact plasma AUC between two step boundaries, carriers·s/m³.

        Parameters
        ----------
        t0_s, t1_s : float
            Times the model stood at (0 or the end of a step), matched to 1e-9 of the run time
            (exactly where boundaries lie closer than that); ``t1_s`` defaults to now. Times
            inside a step raise ValueError. The history costs 16 bytes per step and is part of
            :meth:`state`.
        """
        t1 = self.time_s if t1_s is None else t1_s
        if t0_s > t1:
            raise ValueError(f"t0_s ({t0_s:g} s) must not exceed t1_s ({t1:g} s)")
        return self._auc_at(t1) - self._auc_at(t0_s)

    def _auc_at(self, t: float) -> float:
        times = np.frombuffer(self._hist_t, dtype=np.float64)
        tol = 1e-9 * self.time_s  # summed step sizes carry round-off; boundaries closer than this need t exact
        lo, hi = np.searchsorted(times, t - tol, "left"), np.searchsorted(times, t + tol, "right")
        if hi - lo == 1:
            return self._hist_auc[lo]
        exact = np.flatnonzero(times[lo:hi] == t)
        if exact.size:
            return self._hist_auc[lo + int(exact[-1])]
        if hi == lo:
            raise ValueError(f"t = {t!r} s is not a step boundary of this run (0 … {self.time_s!r} s); "
                             "AUC is recorded at the end of each step")
        raise ValueError(f"t = {t!r} s is within {tol:g} s of {hi - lo} step boundaries; give one exactly")

    def concentration_curve(self, t_s, dose: float) -> np.ndarray:
        """Analytic plasma concentration (carriers/m³) at times ``t_s`` (s) after a bolus ``dose``
        into an empty body: ``dose (A e^{−αt} + B e^{−βt})``. Independent of the current state."""
        t = np.asarray(t_s, dtype=np.float64)
        a, alpha, b, beta = self.biexponential()
        return dose * (a * np.exp(-alpha * t) + b * np.exp(-beta * t))

    # -- ledger and checkpoints ----------------------------------------------------------------
    def ledger(self) -> dict[str, float]:
        """Cumulative inputs and where the carriers are, by name, plus ``error`` (relative)."""
        out = dict(self._x)
        out["auc_s_per_m3"] = self._auc
        out["error"] = self.ledger_error()
        return out

    def ledger_error(self) -> float:
        """(inputs − outputs − contents) / the largest term: round-off only."""
        x = self._x
        inputs = x["injected"] + x["external_in"] - x["external_out"]
        held = x["central"] + x["peripheral"] + x["mps"] + x["other_cleared"]
        scale = max(abs(v) for v in x.values())
        return abs(inputs - held) / scale if scale > 0 else 0.0

    def state(self) -> dict:
        """Checkpoint: JSON-able floats (and the AUC history) that :meth:`load_state` restores."""
        return {"time_s": self.time_s, "auc_s_per_m3": self._auc, **self._x,
                "auc_history_time_s": self._hist_t.tolist(), "auc_history_s_per_m3": self._hist_auc.tolist(),
                "parameters": self.parameters()}

    def load_state(self, state: dict) -> None:
        """Restore a checkpoint from :meth:`state`; the run continues bit-identically.

        Raises ValueError if a value is missing or the checkpoint's parameters differ from this
        model's (the message names the field).
        """
        missing = [k for k in ("time_s", "auc_s_per_m3", *_STATE_NAMES) if k not in state]
        if missing:
            raise ValueError(f"checkpoint lacks {', '.join(missing)}")
        saved = state.get("parameters", {})
        for name, value in self.parameters().items():
            if name in saved and float(saved[name]) != value:
                raise ValueError(f"checkpoint {name} = {saved[name]!r} differs from this model's {value!r}")
        self.time_s = float(state["time_s"])
        self._auc = float(state["auc_s_per_m3"])
        self._x = {k: float(state[k]) for k in _STATE_NAMES}
        self._hist_t = array("d", state.get("auc_history_time_s", [self.time_s]))
        self._hist_auc = array("d", state.get("auc_history_s_per_m3", [self._auc]))

    def __repr__(self) -> str:
        t1, t2 = self.half_lives()
        x = self._x
        if self._k12 == 0:
            t_el = math.log(2.0) / self._k10 if self._k10 > 0 else math.inf
            head = f"half-life        {_duration(t_el)} (one compartment: k12 = 0)"
        else:
            head = f"half-lives       {_duration(t1)} and {_duration(t2)} (fast fraction {format_number(self._fast)})"
        rows = [head,
                f"volumes          central {format_number(self._v1 * 1e3)} L, peripheral "
                f"{format_number(self.peripheral_volume_m3 * 1e3)} L",
                f"rate constants   k12 {format_number(self._k12)}/s, k21 {format_number(self._k21)}/s, "
                f"k10 {format_number(self._k10)}/s (clearance {format_number(self.clearance_m3_per_s * 3.6e6)} L/h)",
                f"elimination      {format_number(100 * self._f_liver)} % liver macrophages (mps), "
                f"{format_number(100 * (1 - self._f_liver))} % other",
                f"at t = {format_quantity(self.time_s, 'time')}: central {x['central']:.4g}, peripheral "
                f"{x['peripheral']:.4g}, mps {x['mps']:.4g}, other {x['other_cleared']:.4g} carriers "
                f"(ledger error {self.ledger_error():.1e})"]
        return "SystemicPK (two-compartment, carriers in the body)\n" + _tree(rows)


def peg_liposome_human(liver_uptake_fraction: float = DEFAULT_LIVER_UPTAKE_FRACTION) -> SystemicPK:
    """PEG-liposomes in patients: t½ 2 h and 45 h, CL 0.1 L/h, V 4 L (Gabizon 1994, PHYSICS.md §5).

    The fast fraction is derived (≈ 0.40) so that ``k10 V_1`` equals the clearance; it is not a
    reported value.
    """
    return SystemicPK.from_clearance(PEG_LIPOSOME_HUMAN_T_HALF_FAST_S, PEG_LIPOSOME_HUMAN_T_HALF_SLOW_S,
                                     PEG_LIPOSOME_HUMAN_CLEARANCE_M3_PER_S, PEG_LIPOSOME_HUMAN_VOLUME_M3,
                                     liver_uptake_fraction)
