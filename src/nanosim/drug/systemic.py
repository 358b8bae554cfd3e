r"""Free sorafenib in the whole body: oral absorption and one- or two-compartment disposition.

The systemic compartment of the drug that is not inside carriers (PHYSICS.md §8, §10 "oral:
systemic PK only"). Amounts are in mol (float64): a gut depot :math:`g`, the central
compartment :math:`x_1` (apparent volume of distribution :math:`V`; the plasma concentration is
:math:`x_1/V`) and an optional peripheral compartment :math:`x_2`:

.. math::

    \dot g = -k_a g, \qquad
    \dot x_1 = k_a g - (k_{10} + k_{12}) x_1 + k_{21} x_2 + R(t), \qquad
    \dot x_2 = k_{12} x_1 - k_{21} x_2, \qquad \dot e = k_{10} x_1,

with the net rate into the plasma :math:`R` = IV infusion + drug leaking from carriers in blood
+ drug returning from the simulated tissue − drug drawn into it, constant over each step. An oral
dose :math:`D` puts :math:`F D` into the gut (after an optional lag) and books :math:`(1 - F) D`
at once as ``unabsorbed`` (not absorbed or lost to first-pass metabolism); an IV bolus goes into
the plasma. After one oral dose into an empty one-compartment body the plasma concentration is
the Bateman function :math:`C = \frac{F D k_a}{V (k_a - k_{el})}(e^{-k_{el} t} - e^{-k_a t})`,
peaking at :math:`t_{max} = \ln(k_a/k_{el})/(k_a - k_{el})`.

Exact integration
-----------------
The disposition part (:math:`x_1, x_2` with constant :math:`R`) is the carriers' two-compartment
model: :meth:`SystemicPK._propagator <nanosim.carriers.systemic.SystemicPK>` gives
:math:`\varphi_0(M h)`, :math:`h\varphi_1(M h)` and :math:`h^2\varphi_2(M h)` in Newton form on
the eigenvalues :math:`-\alpha \le -\beta \le 0` of the rate matrix :math:`M`. The gut adds the
input :math:`k_a g_0 e^{-k_a s} e_1`, whose exact response is

.. math::

    \int_0^h e^{M(h-s)} e^{-k_a s} ds = h\,e[z_1, z_3]\,I + h^2 e[z_1, z_2, z_3]\,(M + \alpha I),

    \int_0^h\!\!\int_0^\tau e^{M(\tau-s)} e^{-k_a s} ds\,d\tau
        = h^2 \varphi_1[z_1, z_3]\,I + h^3 \varphi_1[z_1, z_2, z_3]\,(M + \alpha I),

with :math:`z_1 = -\alpha h`, :math:`z_2 = -\beta h`, :math:`z_3 = -k_a h`, :math:`e[\cdot]` the
divided differences of :math:`\exp` and :math:`\varphi_1[\dots] = e[0, \dots]`. All divided
differences of :math:`\exp` are positive and :math:`M + \alpha I \ge 0` entrywise, so nothing
cancels; the second- and third-order ones come from :func:`_exp_dd` (positive series for
clustered points, recursion for spread ones), stable for equal and close rates
(:math:`k_a = k_{10}` included). Elimination and the plasma AUC come from the same exact
integral, and the round-off imbalance of a step is put on its largest part, as in the carriers'
model, so the ledger

    dosed_oral + dosed_iv + carrier_leak + tissue_return − tissue_draw
        = gut + central + peripheral + eliminated + unabsorbed

closes to round-off after any number of steps. Doses and infusions scheduled inside a step split
it at their times; the inputs given to :meth:`SystemicDrugPK.step` are constant over the step.

Defaults (human, all unconfirmed, overridable)
-----------------------------------------------
t½ 35 h (PHYSICS.md §8 gives 25–48 h); apparent oral clearance CL/F 8.13 L/h (Jain 2011,
Br J Clin Pharmacol 72:294, Table 3, as transcribed in nlmixr2lib's model file; not checked
against the paper; fitted there with transit absorption and enterohepatic recycling, which this
model leaves out); F 0.43 (label 38–49 %, a relative bioavailability taken as absolute), so
CL = 3.50 L/h and V = CL t½/ln 2 = 177 L; k_a = 1.45/h from t_max ≈ 3 h (PHYSICS.md §8). With
400 mg twice daily these give a trough of 3.68 µg/mL after 28 days against the median 3.2 µg/mL (IQR
2.2–4.5) in HCC (PHYSICS.md §8): a plausibility check, not a fit.

Examples
--------
>>> pk = sorafenib_pk("human")
>>> pk.oral_doses(dose_mol(dose_mg=400.0), interval_s=12 * 3600.0, n_doses=2)
>>> for _ in range(24):
...     _ = pk.step(3600.0)
>>> print(f"{pk.plasma_concentration_ug_per_ml():.3f} µg/mL, C_max {1e3 * pk.c_max_mol_per_m3 * 0.4648:.3f} µg/mL")
1.393 µg/mL, C_max 1.655 µg/mL
>>> pk.ledger_error() < 1e-15
True
"""

from __future__ import annotations

import bisect
import math
from array import array

from scipy.optimize import brentq

from ..carriers.design import SORAFENIB_MOLAR_MASS_KG_PER_MOL
from ..carriers.systemic import (BODIES, Body, SystemicPK, _check_number, _duration, _phi, _phi_dd, _read_only,
                                 _tree)
from ..units import format_number, format_quantity
from .binding import PlasmaBinding, human_plasma_binding

__all__ = [
    "SystemicDrugPK",
    "sorafenib_pk",
    "build_systemic_drug",
    "dose_mol",
    "absorption_rate_from_t_max",
    "oral_t_max",
    "SORAFENIB_T_HALF_S",
    "SORAFENIB_T_HALF_RANGE_S",
    "SORAFENIB_APPARENT_CLEARANCE_M3_PER_S",
    "SORAFENIB_BIOAVAILABILITY",
    "SORAFENIB_BIOAVAILABILITY_RANGE",
    "SORAFENIB_T_MAX_S",
    "SORAFENIB_HCC_TROUGH_UG_PER_ML",
    "ALLOMETRIC_CLEARANCE_EXPONENT",
]

_HOUR_S = 3600.0
_LN2 = math.log(2.0)

SORAFENIB_T_HALF_S = 35.0 * _HOUR_S
"""Default elimination half-life of sorafenib, s: 35 h, inside the 25–48 h of PHYSICS.md §8
(label); a chosen value, unconfirmed, overridable."""

SORAFENIB_T_HALF_RANGE_S = (25.0 * _HOUR_S, 48.0 * _HOUR_S)
"""Reported elimination half-life range, s: 25–48 h (PHYSICS.md §8)."""

SORAFENIB_APPARENT_CLEARANCE_M3_PER_S = 8.13e-3 / _HOUR_S
"""Apparent oral clearance CL/F of sorafenib in patients, m³/s: 8.13 L/h (Jain 2011, Br J Clin
Pharmacol 72:294, Table 3, typical value for an 80 kg patient, as transcribed in nlmixr2lib's
model file Jain_2011_sorafenib; not checked against the paper: unconfirmed)."""

SORAFENIB_BIOAVAILABILITY = 0.43
"""Default oral bioavailability F: 0.43, inside the 38–49 % of PHYSICS.md §8. The label's figure
is relative to an oral solution (absolute bioavailability unknown); taking it as absolute is an
assumption (unconfirmed)."""

SORAFENIB_BIOAVAILABILITY_RANGE = (0.38, 0.49)
"""Reported oral bioavailability range (relative to an oral solution), PHYSICS.md §8."""

SORAFENIB_T_MAX_S = 3.0 * _HOUR_S
"""Time of the plasma peak after an oral dose, s: ≈ 3 h (PHYSICS.md §8)."""

SORAFENIB_HCC_TROUGH_UG_PER_ML = (3.2, 2.2, 4.5)
"""Steady-state trough in HCC at 400 mg twice daily, µg/mL: median 3.2, IQR 2.2–4.5
(PHYSICS.md §8). A comparison figure, not a model parameter."""

ALLOMETRIC_CLEARANCE_EXPONENT = 0.75
"""Exponent b of clearance ∝ (body mass)^b used to scale the human defaults to other species
(volumes scale with mass^1). Textbook allometry, not measured for sorafenib: unconfirmed."""


# --------------------------------------------------------------------------------------------
# doses and absorption


def dose_mol(dose_mg: float | None = None, dose_mg_per_kg: float | None = None, body_mass_kg: float | None = None,
             molar_mass_kg_per_mol: float = SORAFENIB_MOLAR_MASS_KG_PER_MOL) -> float:
    """A dose in mol from mg, or from mg/kg and the body mass (exactly one of the two).

    >>> round(dose_mol(dose_mg=400.0) * 1e3, 6)  # mmol in 400 mg of sorafenib
    0.860585
    """
    m = _check_number("molar_mass_kg_per_mol", molar_mass_kg_per_mol, strict=True)
    if (dose_mg is None) == (dose_mg_per_kg is None):
        raise ValueError("give exactly one of dose_mg and dose_mg_per_kg")
    if dose_mg is not None:
        return _check_number("dose_mg", dose_mg) * 1e-6 / m
    if body_mass_kg is None:
        raise ValueError("body_mass_kg is needed with dose_mg_per_kg")
    return _check_number("dose_mg_per_kg", dose_mg_per_kg) * 1e-6 * _check_number("body_mass_kg", body_mass_kg,
                                                                                   strict=True) / m


def oral_t_max(absorption_rate_per_s: float, elimination_rate_per_s: float) -> float:
    """Peak time of the Bateman curve, :math:`\\ln(k_a/k_{el})/(k_a - k_{el})` (1/k when equal), s."""
    ka = _check_number("absorption_rate_per_s", absorption_rate_per_s, strict=True)
    k = _check_number("elimination_rate_per_s", elimination_rate_per_s, strict=True)
    s = math.log(ka / k)  # t_max k = s/(e^s − 1) = 1/φ₁(s)
    return 1.0 / (k * _phi(1, s))


def absorption_rate_from_t_max(t_max_s: float, elimination_rate_per_s: float) -> float:
    """The absorption rate :math:`k_a` (1/s) whose Bateman curve peaks at ``t_max_s``.

    Solves :math:`t_{max} = \\ln(k_a/k_{el})/(k_a - k_{el})` for :math:`k_a`. Writing
    :math:`k_a = k_{el} e^s`, it reads :math:`1/\\varphi_1(s) = k_{el} t_{max}`, whose left side
    falls strictly from ∞ to 0 over the real line: one root for every :math:`t_{max} > 0`,
    bracketed and found by Brent's method (:math:`k_a > k_{el}` when :math:`t_{max} < 1/k_{el}`,
    the usual case; :math:`k_a < k_{el}`, "flip-flop" kinetics, above).

    >>> k_el = math.log(2) / (35 * 3600)
    >>> print(f"{absorption_rate_from_t_max(3 * 3600, k_el) * 3600:.4f} /h")
    1.4512 /h
    """
    t = _check_number("t_max_s", t_max_s, strict=True)
    k = _check_number("elimination_rate_per_s", elimination_rate_per_s, strict=True)
    y = k * t

    def excess(s: float) -> float:
        return 1.0 / _phi(1, s) - y

    if y == 1.0:
        return k
    if y > 1.0:
        lo, hi = -y, 0.0  # 1/φ₁(−y) = y/(1 − e^−y) > y
    else:
        lo, hi = 0.0, 1.0
        while excess(hi) > 0.0:
            hi *= 2.0
    return k * math.exp(brentq(excess, lo, hi, xtol=1e-15, rtol=4 * 2.0**-52, maxiter=400))


# --------------------------------------------------------------------------------------------
# divided differences of exp of any order, for real points


_SERIES_SPREAD = 8.0
_INV_FACT = tuple(1.0 / math.factorial(n) for n in range(171))


def _exp_dd(*points: float) -> float:
    """Divided difference :math:`e[z_0, \\dots, z_n]` of exp (repeated points allowed).

    Sorted points :math:`z_0 \\le \\dots \\le z_n`. Spread :math:`z_n - z_0 \\le 8`:
    :math:`e^{z_0}\\sum_j h_j(w)/(j + n)!` with :math:`w_i = z_i - z_0 \\ge 0` and :math:`h_j` the
    complete homogeneous symmetric polynomials (:math:`w^m[w_0..w_n] = h_{m-n}(w)`): every term
    is positive, so the sum is accurate to a few ulp; it stops when a term is below 2⁻⁶⁰ of the
    sum past the largest term (≈ 45 terms at spread 8). Wider spread: the recursion
    :math:`(e[z_1..z_n] - e[z_0..z_{n-1}])/(z_n - z_0)`, whose two terms then differ by a large
    factor (little cancellation; within 1e-14 of 120-digit references in the tests).
    """
    z = sorted(points)
    n = len(z) - 1
    if n == 0:
        return math.exp(z[0])
    if z[-1] - z[0] > _SERIES_SPREAD:
        return (_exp_dd(*z[1:]) - _exp_dd(*z[:-1])) / (z[-1] - z[0])
    w = [zi - z[0] for zi in z[1:]]
    h = [1.0] * n  # h_j over the first k+1 points, k = 0..n-1 (all 1 at j = 0)
    total, j = _INV_FACT[n], 0
    while j + n < 170:
        j += 1
        prev = 0.0  # h_j over the point w_0 = 0 alone
        for k in range(n):
            prev = h[k] = prev + w[k] * h[k]
        term = prev * _INV_FACT[j + n]
        total += term
        if term < 2.0**-60 * total and j > w[-1]:
            break
    return math.exp(z[0]) * total


# --------------------------------------------------------------------------------------------
# the model


_STATE_NAMES = ("gut", "central", "peripheral", "eliminated", "unabsorbed",
                "dosed_oral", "dosed_iv", "carrier_leak", "tissue_return", "tissue_draw")
_HELD = ("gut", "central", "peripheral", "eliminated", "unabsorbed")
_INPUTS = ("dosed_oral", "dosed_iv", "carrier_leak", "tissue_return")


class SystemicDrugPK:
    r"""Free drug in the body: gut depot, central and peripheral compartments (module docstring).

    Parameters
    ----------
    k10_per_s : float
        Elimination rate constant from the central compartment, 1/s, ≥ 0.
    volume_m3 : float
        Apparent central volume of distribution :math:`V`, m³, > 0.
    k12_per_s, k21_per_s : float
        Central ⇄ peripheral rate constants, 1/s, ≥ 0 (0, 0: one compartment).
    absorption_rate_per_s : float or None
        First-order absorption rate :math:`k_a` from the gut, 1/s, > 0; None refuses oral doses.
    bioavailability : float
        Default oral bioavailability :math:`F` in [0, 1].
    binding : PlasmaBinding or None
        Plasma protein binding for the unbound concentration (default: human plasma).
    molar_mass_kg_per_mol : float
        For µg/mL output (default sorafenib, 464.8 g/mol).
    name : str
        Drug name, for reports.

    Notes
    -----
    The disposition is a :class:`~nanosim.carriers.systemic.SystemicPK` (``liver_uptake_fraction``
    1: all of the elimination is booked as ``eliminated``), whose exact propagator is reused.
    """

    def __init__(self, k10_per_s: float, volume_m3: float, *, k12_per_s: float = 0.0, k21_per_s: float = 0.0,
                 absorption_rate_per_s: float | None = None, bioavailability: float = SORAFENIB_BIOAVAILABILITY,
                 binding: PlasmaBinding | None = None,
                 molar_mass_kg_per_mol: float = SORAFENIB_MOLAR_MASS_KG_PER_MOL, name: str = "sorafenib"):
        self._disp = SystemicPK(k12_per_s, k21_per_s, k10_per_s, volume_m3, liver_uptake_fraction=1.0)
        self._ka = None if absorption_rate_per_s is None else _check_number(
            "absorption_rate_per_s", absorption_rate_per_s, strict=True)
        self._f = _check_number("bioavailability", bioavailability, high=1.0)
        self._binding = human_plasma_binding() if binding is None else binding
        self._molar_mass = _check_number("molar_mass_kg_per_mol", molar_mass_kg_per_mol, strict=True)
        self.name = str(name)
        self._gut_cache_dt = None
        self._gut_cache = None
        self._reset()

    @classmethod
    def one_compartment(cls, t_half_s: float, *, clearance_m3_per_s: float | None = None,
                        volume_m3: float | None = None, **kwargs) -> "SystemicDrugPK":
        """One compartment from the half-life and either the clearance or the volume
        (``V = CL t½ / ln 2``); other keywords as for the class."""
        t = _check_number("t_half_s", t_half_s, strict=True)
        if (clearance_m3_per_s is None) == (volume_m3 is None):
            raise ValueError("give exactly one of clearance_m3_per_s and volume_m3 (with t_half_s they fix the other)")
        if volume_m3 is None:
            volume_m3 = _check_number("clearance_m3_per_s", clearance_m3_per_s, strict=True) * t / _LN2
        return cls(_LN2 / t, volume_m3, **kwargs)

    # -- parameters ----------------------------------------------------------------------------
    k10_per_s = property(lambda self: self._disp.k10_per_s, doc="Elimination rate constant, 1/s.")
    k12_per_s = property(lambda self: self._disp.k12_per_s, doc="Central → peripheral rate constant, 1/s.")
    k21_per_s = property(lambda self: self._disp.k21_per_s, doc="Peripheral → central rate constant, 1/s.")
    volume_m3 = property(lambda self: self._disp.volume_m3, doc="Apparent central volume of distribution, m³.")
    clearance_m3_per_s = property(lambda self: self._disp.clearance_m3_per_s, doc="Clearance k10 V, m³/s.")
    absorption_rate_per_s = _read_only("_ka", "Absorption rate k_a from the gut, 1/s (None: no oral dosing).")
    bioavailability = _read_only("_f", "Default oral bioavailability F.")
    binding = _read_only("_binding", "Plasma protein binding (:class:`~nanosim.drug.binding.PlasmaBinding`).")
    molar_mass_kg_per_mol = _read_only("_molar_mass", "Molar mass of the drug, kg/mol.")

    def half_lives(self) -> tuple[float, float]:
        """Disposition half-lives ``(ln 2/α, ln 2/β)``, s (for one compartment β = 0: ∞)."""
        return self._disp.half_lives()

    def elimination_half_life_s(self) -> float:
        """ln 2 / k10, s: the half-life of a one-compartment body."""
        return _LN2 / self.k10_per_s if self.k10_per_s > 0 else math.inf

    def parameters(self) -> dict[str, float | None]:
        """Rate constants, volume, k_a, F and molar mass by name (SI)."""
        out = {k: v for k, v in self._disp.parameters().items() if k != "liver_uptake_fraction"}
        out.update(absorption_rate_per_s=self._ka, bioavailability=self._f, molar_mass_kg_per_mol=self._molar_mass)
        return out

    # -- state ---------------------------------------------------------------------------------
    def _reset(self) -> None:
        SystemicPK._reset(self)  # clock, AUC and its history, as the reused auc() expects them
        self._x = dict.fromkeys(_STATE_NAMES, 0.0)
        self._c_max, self._t_c_max = 0.0, 0.0
        self._events: list[list] = []  # [time_s, kind ("oral" | "iv"), amount_mol, F]
        self._infusions: list[list[float]] = []  # [start_s, end_s, rate_mol_per_s]

    gut = property(lambda self: self._x["gut"], doc="Drug in the gut depot, mol.")
    central = property(lambda self: self._x["central"], doc="Drug in the central compartment, mol.")
    peripheral = property(lambda self: self._x["peripheral"], doc="Drug in the peripheral compartment, mol.")
    eliminated = property(lambda self: self._x["eliminated"], doc="Cumulative drug eliminated, mol.")
    unabsorbed = property(lambda self: self._x["unabsorbed"], doc="Cumulative (1 − F) of oral doses, mol.")
    c_max_mol_per_m3 = _read_only("_c_max", "Largest total plasma concentration so far, mol/m³ (see :meth:`step`).")
    t_c_max_s = _read_only("_t_c_max", "Time of :attr:`c_max_mol_per_m3`, s.")

    def plasma_concentration(self) -> float:
        """Total (bound + unbound) plasma concentration now, mol/m³: ``central / V``."""
        return self._x["central"] / self.volume_m3

    def unbound_plasma_concentration(self) -> float:
        """Unbound plasma concentration now, mol/m³ (saturable binding, exact)."""
        return self._binding.unbound_concentration(max(self.plasma_concentration(), 0.0))

    def plasma_concentration_ug_per_ml(self) -> float:
        """Total plasma concentration now, µg/mL (= g/m³ = 10³ × mol/m³ × kg/mol)."""
        return self.plasma_concentration() * self._molar_mass * 1e3

    def unbound_c_max_mol_per_m3(self) -> float:
        """Unbound concentration at the total C_max, mol/m³ (unbound rises with total)."""
        return self._binding.unbound_concentration(self._c_max)

    # -- dosing --------------------------------------------------------------------------------
    def _when(self, name: str, at_s: float | None) -> float:
        if at_s is None:
            return self.time_s
        t = _check_number(name, at_s, low=-math.inf)
        if t < self.time_s:
            raise ValueError(f"{name} = {t!r} s is before the model time {self.time_s!r} s")
        return t

    def _schedule(self, time_s: float, kind: str, amount: float, f: float) -> None:
        bisect.insort(self._events, [time_s, kind, amount, f], key=lambda e: e[0])
        self._apply_due(self._x, self.time_s)

    def oral_dose(self, amount_mol: float, at_s: float | None = None, bioavailability: float | None = None) -> None:
        """Give ``amount_mol`` by mouth now (``at_s`` None) or at ``at_s`` ≥ now, s.

        ``F × amount`` enters the gut depot, the rest is booked as ``unabsorbed`` at that time.
        """
        if self._ka is None:
            raise ValueError("absorption_rate_per_s is not set: this model takes no oral doses")
        amount = _check_number("amount_mol", amount_mol)
        f = self._f if bioavailability is None else _check_number("bioavailability", bioavailability, high=1.0)
        self._schedule(self._when("at_s", at_s), "oral", amount, f)

    def oral_doses(self, amount_mol: float, interval_s: float, n_doses: int, start_s: float | None = None,
                   lag_s: float = 0.0, bioavailability: float | None = None) -> None:
        """Repeated oral dosing: ``n_doses`` of ``amount_mol`` every ``interval_s``, the first at
        ``start_s`` (default now), each absorbed after a lag ``lag_s`` (s)."""
        interval = _check_number("interval_s", interval_s, strict=True)
        lag = _check_number("lag_s", lag_s)
        if isinstance(n_doses, bool) or not isinstance(n_doses, int) or n_doses < 1:
            raise ValueError(f"n_doses must be an integer >= 1, got {n_doses!r}")
        start = self._when("start_s", start_s)
        for i in range(n_doses):
            self.oral_dose(amount_mol, start + i * interval + lag, bioavailability)

    def iv_bolus(self, amount_mol: float, at_s: float | None = None) -> None:
        """Inject ``amount_mol`` into the plasma now or at ``at_s`` ≥ now (s)."""
        self._schedule(self._when("at_s", at_s), "iv", _check_number("amount_mol", amount_mol), 1.0)

    def iv_infusion(self, rate_mol_per_s: float, duration_s: float, start_s: float | None = None) -> None:
        """Infuse ``rate_mol_per_s`` into the plasma for ``duration_s`` from ``start_s`` (default now)."""
        rate = _check_number("rate_mol_per_s", rate_mol_per_s)
        duration = _check_number("duration_s", duration_s)
        start = self._when("start_s", start_s)
        if duration > 0 and rate > 0:
            self._infusions.append([start, start + duration, rate])

    def give(self, amount_mol: float, source: str = "tissue") -> None:
        """Put ``amount_mol`` into the plasma now: ``source`` "tissue" (returning from the simulated
        tissue) or "carrier" (released from carriers in blood)."""
        key = {"tissue": "tissue_return", "carrier": "carrier_leak"}.get(source)
        if key is None:
            raise ValueError(f"source must be 'tissue' or 'carrier', got {source!r}")
        amount = _check_number("amount_mol", amount_mol)
        self._x["central"] += amount
        self._x[key] += amount
        self._note_peak(self.plasma_concentration(), self.time_s)

    def draw(self, amount_mol: float) -> float:
        """Take ``amount_mol`` from the plasma now (into the simulated tissue).

        An amount above the plasma content by no more than 1e-12 relative is clipped to it; more
        raises ValueError. Returns the amount drawn.
        """
        amount = _check_number("amount_mol", amount_mol)
        have = self._x["central"]
        if amount > have:
            if amount > have * (1.0 + 1e-12):
                raise ValueError(f"amount_mol ({amount:g} mol) exceeds the plasma content ({have:g} mol)")
            amount = have
        self._x["central"] = have - amount
        self._x["tissue_draw"] += amount
        return amount

    def _apply_due(self, x: dict, t: float) -> None:
        """Apply the scheduled doses due at or before ``t`` to the state ``x``."""
        while self._events and self._events[0][0] <= t:
            _, kind, amount, f = self._events.pop(0)
            if kind == "oral":
                absorbed = f * amount
                x["gut"] += absorbed
                x["unabsorbed"] += amount - absorbed
                x["dosed_oral"] += amount
            else:
                x["central"] += amount
                x["dosed_iv"] += amount
        self._note_peak(x["central"] / self.volume_m3, t)

    def _note_peak(self, c: float, t: float) -> None:
        if c > self._c_max:
            self._c_max, self._t_c_max = c, t

    # -- integration ---------------------------------------------------------------------------
    def _gut_response(self, h: float) -> tuple[float, float, float, float, float]:
        """Per mol in the gut at the start of a piece of length ``h``: (left in the gut, absorbed,
        into central, into peripheral, ∫central dt). Cached per ``h``."""
        if h == self._gut_cache_dt:
            return self._gut_cache
        ka = self._ka or 0.0
        _, alpha, _, beta = self._disp.biexponential()
        u, k12 = self._disp._u, self.k12_per_s  # (M + αI)₁₁ and ₂₁, computed there without cancellation
        z1, z2, z3 = -alpha * h, -beta * h, -ka * h
        e2 = _exp_dd(z1, z2, z3)
        p2 = _exp_dd(0.0, z1, z2, z3)
        out = (math.exp(z3), -math.expm1(z3),
               ka * h * (_phi_dd(0, z1, z3) + h * u * e2),
               ka * h * h * k12 * e2,
               ka * h * h * (_phi_dd(1, z1, z3) + h * u * p2))
        self._gut_cache_dt, self._gut_cache = h, out
        return out

    def _advance(self, h: float, g: float, x1: float, x2: float, rate: float) -> tuple[float, float, float, float]:
        """Exact (gut, central, peripheral, ∫central dt) after ``h`` s from (g, x1, x2) with net rate."""
        e11, e12, e21, e22, p11, p12, p21, q11 = self._disp._propagator(h)
        left, _, gc, gp, gi = self._gut_response(h)
        return (left * g, e11 * x1 + e12 * x2 + p11 * rate + gc * g, e21 * x1 + e22 * x2 + p21 * rate + gp * g,
                p11 * x1 + p12 * x2 + q11 * rate + gi * g)

    def _central_rate(self, g: float, x1: float, x2: float, rate: float) -> float:
        return (self._ka or 0.0) * g - (self.k10_per_s + self.k12_per_s) * x1 + self.k21_per_s * x2 + rate

    def _piece(self, x: dict, t0: float, h: float, inflows: tuple[float, ...], draw: float) -> float:
        """Advance the state ``x`` by one piece of constant inputs; returns ∫central dt (mol·s)."""
        g0, x10, x20 = x["gut"], x["central"], x["peripheral"]
        rate = math.fsum(inflows) - draw
        g1, x11, x21, integral = self._advance(h, g0, x10, x20, rate)
        if x11 < 0.0 or x21 < 0.0:
            raise ValueError(f"tissue_draw_rate_mol_per_s = {draw:g} mol/s empties the plasma within the step "
                             f"(from t = {t0:g} s over {h:g} s); draw less or take a shorter step")
        eliminated = self.k10_per_s * integral
        added = [r * h for r in inflows]
        parts = [g1, x11, x21, eliminated]
        # as in the carriers' model: the round-off imbalance (exact, by fsum) goes to the largest part
        imbalance = math.fsum((g0, x10, x20, *added, -draw * h, -g1, -x11, -x21, -eliminated))
        big = max(range(4), key=lambda i: parts[i])
        parts[big] += imbalance
        x["gut"], x["central"], x["peripheral"] = parts[:3]
        x["eliminated"] += parts[3]
        for key, amount in zip(("dosed_iv", "carrier_leak", "tissue_return"), added):
            x[key] += amount
        x["tissue_draw"] += draw * h
        self._find_peak(t0, h, (g0, x10, x20), rate)
        return integral

    def _find_peak(self, t0: float, h: float, start: tuple[float, float, float], rate: float) -> None:
        """C_max inside a piece: where the central rate turns from + to −, by Brent's method (the
        rate is a sum of at most three exponentials, so it has at most two roots: + at the start
        and − at the end means exactly one)."""
        if self._central_rate(*start, rate) <= 0.0:
            return
        end = self._advance(h, *start, rate)
        if self._central_rate(*end[:3], rate) >= 0.0:
            return

        def slope(s: float) -> float:
            return self._central_rate(*self._advance(s, *start, rate)[:3], rate)

        s = brentq(slope, 0.0, h, xtol=1e-12 * h, rtol=4 * 2.0**-52)
        self._note_peak(self._advance(s, *start, rate)[1] / self.volume_m3, t0 + s)

    def step(self, dt_s: float, *, carrier_leak_rate_mol_per_s: float = 0.0, tissue_return_rate_mol_per_s: float = 0.0,
             tissue_draw_rate_mol_per_s: float = 0.0) -> float:
        """Advance exactly by ``dt_s`` with constant external rates; scheduled doses split the step.

        Parameters
        ----------
        dt_s : float
            Step, s, ≥ 0.
        carrier_leak_rate_mol_per_s : float
            Drug released from carriers in blood into the plasma (premature leak), mol/s, ≥ 0.
        tissue_return_rate_mol_per_s : float
            Drug returning from the simulated tissue to the plasma, mol/s, ≥ 0.
        tissue_draw_rate_mol_per_s : float
            Drug drawn from the plasma into the simulated tissue, mol/s, ≥ 0 (ValueError if it
            would empty the plasma; the model is then left as it was).

        Returns
        -------
        float
            The total plasma AUC over the step, mol·s/m³ (divide by ``dt_s`` for the exact mean
            plasma concentration, which is what an explicit tissue step should see).

        Notes
        -----
        Doses scheduled at or before the end of the step are applied when the clock reaches them.
        :attr:`c_max_mol_per_m3` is exact: the piece ends are checked, and a peak inside a piece
        is located where the central rate changes sign from + to −. (A rate that goes +, −, +
        inside one piece, possible only with unusual inputs, would hide its interior peak.)
        """
        dt = _check_number("dt_s", dt_s)
        leak = _check_number("carrier_leak_rate_mol_per_s", carrier_leak_rate_mol_per_s)
        back = _check_number("tissue_return_rate_mol_per_s", tissue_return_rate_mol_per_s)
        draw = _check_number("tissue_draw_rate_mol_per_s", tissue_draw_rate_mol_per_s)
        if dt == 0.0:
            return 0.0
        t0, t_end = self.time_s, self.time_s + dt
        cuts = {e[0] for e in self._events if t0 < e[0] < t_end}
        cuts.update(b for inf in self._infusions for b in inf[:2] if t0 < b < t_end)
        saved = (dict(self._x), [e[:] for e in self._events], self._c_max, self._t_c_max)
        x = dict(self._x)
        integrals, t = [], t0
        try:
            for b in sorted(cuts) + [t_end]:
                mid = 0.5 * (t + b)
                infusion = math.fsum(r for s, e, r in self._infusions if s <= mid < e)
                integrals.append(self._piece(x, t, b - t, (infusion, leak, back), draw))
                t = b
                self._apply_due(x, t)
        except ValueError:
            self._x, self._events, self._c_max, self._t_c_max = saved
            raise
        self._x = x
        self._infusions = [inf for inf in self._infusions if inf[1] > t_end]
        step_auc = math.fsum(integrals) / self.volume_m3
        self._auc += step_auc
        self.time_s = t_end
        self._hist_t.append(t_end)
        self._hist_auc.append(self._auc)
        return step_auc

    # -- exposure ------------------------------------------------------------------------------
    def auc(self, t0_s: float = 0.0, t1_s: float | None = None) -> float:
        """Exact total plasma AUC between two step boundaries, mol·s/m³ (rules of
        :meth:`SystemicPK.auc <nanosim.carriers.systemic.SystemicPK.auc>`, whose code is reused)."""
        return SystemicPK.auc(self, t0_s, t1_s)

    _auc_at = SystemicPK._auc_at

    def unbound_auc(self, t0_s: float = 0.0, t1_s: float | None = None) -> float:
        """Unbound plasma AUC with the linear unbound fraction, mol·s/m³: ``f_u × auc``.

        Exact for linear binding; saturable binding frees relatively more drug at high
        concentration, by ``unbound_fraction(C)/unbound_fraction_linear() − 1`` at most
        (1.2 % at 3.2 µg/mL with the default proteins).
        """
        return self._binding.unbound_fraction_linear() * self.auc(t0_s, t1_s)

    def plasma_curve(self, unbound: bool = True) -> "PlasmaView":
        """A PlasmaCurve-like callable ``c_p(t)`` (mol/m³) for the free-drug field, see :class:`PlasmaView`."""
        return PlasmaView(self, unbound)

    # -- ledger and checkpoints ----------------------------------------------------------------
    def ledger(self) -> dict[str, float]:
        """Cumulative inputs and where the drug is (mol), the AUC, and ``error`` (relative)."""
        return {**self._x, "auc_mol_s_per_m3": self._auc, "error": self.ledger_error()}

    def ledger_error(self) -> float:
        """|inputs − tissue_draw − held| / the largest entry: round-off only."""
        x = self._x
        net = math.fsum([x[k] for k in _INPUTS] + [-x["tissue_draw"]] + [-x[k] for k in _HELD])
        scale = max(abs(v) for v in x.values())
        return abs(net) / scale if scale > 0 else 0.0

    def state(self) -> dict:
        """Checkpoint: JSON-able values that :meth:`load_state` restores bit for bit."""
        return {"time_s": self.time_s, "auc_mol_s_per_m3": self._auc, **self._x,
                "c_max_mol_per_m3": self._c_max, "t_c_max_s": self._t_c_max,
                "events": [e[:] for e in self._events], "infusions": [i[:] for i in self._infusions],
                "auc_history_time_s": self._hist_t.tolist(), "auc_history_mol_s_per_m3": self._hist_auc.tolist(),
                "parameters": self.parameters()}

    def load_state(self, state: dict) -> None:
        """Restore a checkpoint from :meth:`state`; the run continues bit-identically.

        Raises ValueError if a value is missing or the checkpoint's parameters differ (named).
        """
        needed = ("time_s", "auc_mol_s_per_m3", "c_max_mol_per_m3", "t_c_max_s", "events", "infusions",
                  *_STATE_NAMES)
        missing = [k for k in needed if k not in state]
        if missing:
            raise ValueError(f"checkpoint lacks {', '.join(missing)}")
        saved = state.get("parameters", {})
        for name, value in self.parameters().items():
            if name in saved and saved[name] != value:
                raise ValueError(f"checkpoint {name} = {saved[name]!r} differs from this model's {value!r}")
        self.time_s = float(state["time_s"])
        self._auc = float(state["auc_mol_s_per_m3"])
        self._x = {k: float(state[k]) for k in _STATE_NAMES}
        self._c_max, self._t_c_max = float(state["c_max_mol_per_m3"]), float(state["t_c_max_s"])
        self._events = [[float(t), str(kind), float(a), float(f)] for t, kind, a, f in state["events"]]
        self._infusions = [[float(v) for v in inf] for inf in state["infusions"]]
        self._hist_t = array("d", state.get("auc_history_time_s", [self.time_s]))
        self._hist_auc = array("d", state.get("auc_history_mol_s_per_m3", [self._auc]))

    def __repr__(self) -> str:
        x = self._x
        ml = self._molar_mass * 1e3  # mol/m³ → µg/mL
        if self.k12_per_s == 0:
            disp = f"one compartment, t½ {_duration(self.elimination_half_life_s())}"
        else:
            t1, t2 = self.half_lives()
            disp = (f"two compartments, t½ {_duration(t1)} and {_duration(t2)} "
                    f"(k12 {format_number(self.k12_per_s)}/s, k21 {format_number(self.k21_per_s)}/s)")
        oral = "no oral route" if self._ka is None else \
            f"k_a {format_number(self._ka * _HOUR_S)}/h, F {format_number(self._f)}"
        rows = [f"{disp}, V {format_number(self.volume_m3 * 1e3)} L, "
                f"CL {format_number(self.clearance_m3_per_s * 3.6e6)} L/h",
                f"{oral}; {len(self._events)} doses and {len(self._infusions)} infusions pending",
                f"binding: unbound fraction {format_number(100 * self._binding.unbound_fraction_linear())} % (linear)",
                f"at t = {format_quantity(self.time_s, 'time')}: plasma "
                f"{format_number(self.plasma_concentration() * ml)} µg/mL (C_max {format_number(self._c_max * ml)} "
                f"µg/mL at {format_quantity(self._t_c_max, 'time')}), "
                f"AUC {format_number(self._auc * ml / _HOUR_S)} µg·h/mL",
                f"mol: gut {x['gut']:.4g}, central {x['central']:.4g}, peripheral {x['peripheral']:.4g}, "
                f"eliminated {x['eliminated']:.4g}, unabsorbed {x['unabsorbed']:.4g} "
                f"(ledger error {self.ledger_error():.1e})"]
        return f"SystemicDrugPK ({self.name}, free drug in the body)\n" + _tree(rows)


class PlasmaView:
    """The model's plasma concentration as a PlasmaCurve-like callable ``c_p(t)`` (mol/m³).

    The model is stepped by its owner; calling the view with a time other than the model's
    current time (to 1e-9 relative) raises ValueError rather than guess. ``unbound`` chooses the
    unbound concentration (what crosses vessel walls and what PHYSICS.md §8 compares with IC50)
    or the total one.
    """

    def __init__(self, model: SystemicDrugPK, unbound: bool = True):
        self.model, self.unbound = model, bool(unbound)

    def __call__(self, t_s: float) -> float:
        t = self.model.time_s
        if abs(t_s - t) > 1e-9 * max(abs(t), 1.0):
            raise ValueError(f"plasma concentration asked at t = {t_s!r} s, but the systemic model stands at {t!r} s")
        m = self.model
        return m.unbound_plasma_concentration() if self.unbound else m.plasma_concentration()

    def __repr__(self) -> str:
        return f"PlasmaView({'unbound' if self.unbound else 'total'} plasma concentration of {self.model.name})"


# --------------------------------------------------------------------------------------------
# presets and scenario


def sorafenib_pk(body: Body | str = "human", *, t_half_s: float = SORAFENIB_T_HALF_S,
                 apparent_clearance_m3_per_s: float = SORAFENIB_APPARENT_CLEARANCE_M3_PER_S,
                 bioavailability: float = SORAFENIB_BIOAVAILABILITY, t_max_s: float | None = SORAFENIB_T_MAX_S,
                 reference_body_mass_kg: float | None = None, binding: PlasmaBinding | None = None) -> SystemicDrugPK:
    """Sorafenib in a body: one compartment from the human defaults (module docstring).

    CL = F × CL/F; V = CL t½/ln 2; for a body of mass M other than the reference
    (default: the human preset's 70 kg) CL scales by (M/M_ref)^0.75 and V by M/M_ref (so t½ by
    (M/M_ref)^0.25: ≈ 4.5 h for a 20 g mouse; unconfirmed). k_a from ``t_max_s`` with the scaled
    k_el (None: no oral route).
    """
    if isinstance(body, str):
        if body not in BODIES:
            raise ValueError(f"unknown species {body!r}; allowed: {', '.join(BODIES)}")
        body = BODIES[body]
    m_ref = BODIES["human"].body_mass_kg if reference_body_mass_kg is None else \
        _check_number("reference_body_mass_kg", reference_body_mass_kg, strict=True)
    ratio = body.body_mass_kg / m_ref
    cl = _check_number("bioavailability", bioavailability, high=1.0) * \
        _check_number("apparent_clearance_m3_per_s", apparent_clearance_m3_per_s, strict=True)
    if cl == 0.0:
        raise ValueError("bioavailability must be > 0 to turn the apparent clearance CL/F into CL")
    t = _check_number("t_half_s", t_half_s, strict=True) * ratio ** (1.0 - ALLOMETRIC_CLEARANCE_EXPONENT)
    ka = None if t_max_s is None else absorption_rate_from_t_max(t_max_s, _LN2 / t)
    return SystemicDrugPK.one_compartment(t, clearance_m3_per_s=cl * ratio**ALLOMETRIC_CLEARANCE_EXPONENT,
                                          absorption_rate_per_s=ka, bioavailability=bioavailability, binding=binding,
                                          name="sorafenib")


def build_systemic_drug(pk_spec, oral=None, *, body_mass_kg: float, intravenous=None,
                        molar_mass_kg_per_mol: float = SORAFENIB_MOLAR_MASS_KG_PER_MOL,
                        name: str = "sorafenib") -> SystemicDrugPK:
    """The model from a scenario's :class:`~nanosim.scenario.drug_pk.DrugPK` and optional
    :class:`~nanosim.scenario.drug_pk.OralRoute` and
    :class:`~nanosim.scenario.drug_pk.IntravenousDrug` (duck-typed), with their doses scheduled.

    The DrugPK values hold for ``reference_body_mass_kg``; a body of another mass gets volumes
    ∝ mass and rate constants ∝ mass^(0.75 − 1) (:data:`ALLOMETRIC_CLEARANCE_EXPONENT`).
    """
    ratio = _check_number("body_mass_kg", body_mass_kg, strict=True) / pk_spec.reference_body_mass_kg
    rate_scale = ratio ** (ALLOMETRIC_CLEARANCE_EXPONENT - 1.0)  # rate constants ∝ CL/V ∝ M^(b − 1)
    k10 = _LN2 / pk_spec.half_life_s * rate_scale
    volume = pk_spec.volume_at_reference_m3() * ratio
    ka = None if oral is None else oral.absorption_rate(k10)
    f = SORAFENIB_BIOAVAILABILITY if oral is None else oral.bioavailability
    model = SystemicDrugPK(k10, volume, k12_per_s=pk_spec.k12_per_s * rate_scale,
                           k21_per_s=pk_spec.k21_per_s * rate_scale,
                           absorption_rate_per_s=ka, bioavailability=f,
                           binding=pk_spec.plasma_binding.build(), molar_mass_kg_per_mol=molar_mass_kg_per_mol,
                           name=name)
    if oral is not None:
        model.oral_doses(oral.dose_mol(body_mass_kg, molar_mass_kg_per_mol), oral.interval_s, oral.doses,
                         oral.start_s, oral.lag_s)
    if intravenous is not None:
        amount = intravenous.dose_mol(body_mass_kg, molar_mass_kg_per_mol)
        if intravenous.infusion_duration_s > 0:
            model.iv_infusion(amount / intravenous.infusion_duration_s, intravenous.infusion_duration_s,
                              intravenous.start_s)
        else:
            model.iv_bolus(amount, intravenous.start_s)
    return model
