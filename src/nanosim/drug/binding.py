r"""Binding of sorafenib to plasma proteins and to tissue (PHYSICS.md §8).

Plasma
------
Sorafenib in plasma is bound to albumin and α1-acid glycoprotein (AAG). With one class of
independent sites per protein (``n_i`` sites per molecule, total protein concentration
:math:`P_i`, association constant :math:`K_i`) and free drug :math:`u`, mass action gives the
total drug

.. math::

    C_{tot} = u + \sum_i \frac{n_i P_i K_i u}{1 + K_i u}.

The right side is increasing and concave in :math:`u`, so for each :math:`C_{tot} \ge 0` there is
one root :math:`u \in [C_{tot}/(1 + \sum_i n_i P_i K_i),\ C_{tot}]` (the lower end is the linear,
drug ≪ protein answer; saturation can only free more drug). :meth:`PlasmaBinding.unbound_concentration`
solves it by Brent's method on that bracket. When :math:`K_i u \ll 1` it reduces to the linear
unbound fraction

.. math::

    f_u = \frac{1}{1 + \sum_i n_i K_i P_i}.

With the defaults below (albumin 600 µM, AAG 20 µM, one site each, K from PHYSICS.md §8) the
linear formula gives :math:`f_u = 1/747.8 = 0.134\,\%` (99.87 % bound), tighter than the
99.5 % the label reports; the constants are kept as given, not tuned to the label (the label's
figure corresponds to :math:`\sum n_i K_i P_i \approx 199`).

Tissue
------
Fast, linear binding to an immobile pool with capacity :math:`B_{max}` and dissociation
constant :math:`K_d` (:math:`C_b = B_{max} C/(K_d + C) \approx (B_{max}/K_d) C`) folds into a
retardation factor :math:`R = 1 + B_{max}/K_d`: every term of the free-drug equation
(diffusion, convection, loss, wall exchange, sources) is divided by :math:`R`. The kinetic
alternative is the foundation operator's own pair of terms (:mod:`nanosim.transport.operator`)

.. math::

    \partial_t C = \dots - k_{on} C + k_{off} C_b, \qquad \partial_t C_b = k_{on} C - k_{off} C_b,

with, for binding kinetics :math:`\partial_t C_b = k_a (B_{max} - C_b) C - k_{off} C_b`
linearised at :math:`C_b \ll B_{max}`,

.. math::

    k_{on} = k_a B_{max} = k_{off} B_{max} / K_d \quad (\text{1/s}), \qquad k_{off}\ (\text{1/s}),

i.e. ``RegionDrug.binding_on_rate_per_s`` and ``binding_off_rate_per_s``. Their equilibrium
:math:`C_b/C = k_{on}/k_{off} = R - 1`, and for :math:`k_{off} \to \infty` at fixed ratio the
kinetic model tends to the retardation model. No tissue-binding constants for sorafenib are
documented in PHYSICS.md: :class:`TissueBinding` has no defaults.

Units are SI: concentrations in mol/m³ (= mM), association constants in m³/mol
(1 M⁻¹ = 10⁻³ m³/mol).

Examples
--------
>>> b = human_plasma_binding()
>>> print(f"{100 * b.unbound_fraction_linear():.4f} %")
0.1337 %
>>> total = 3.2e-3 / 0.4648  # 3.2 µg/mL of sorafenib in mol/m³
>>> print(f"{100 * b.unbound_fraction(total):.4f} %")
0.1353 %
>>> TissueBinding(b_max_mol_per_m3=0.1, k_d_mol_per_m3=0.01).retardation_factor()
11.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scipy.optimize import brentq

from ..carriers.systemic import BODIES, _check_number, _tree
from ..units import format_number, format_quantity

__all__ = [
    "BindingProtein",
    "PlasmaBinding",
    "TissueBinding",
    "human_plasma_binding",
    "plasma_binding_for",
    "retardation_factor",
    "SORAFENIB_ALBUMIN_ASSOCIATION_M3_PER_MOL",
    "SORAFENIB_AAG_ASSOCIATION_M3_PER_MOL",
    "HUMAN_ALBUMIN_MOL_PER_M3",
    "HUMAN_AAG_MOL_PER_M3",
    "SORAFENIB_LABEL_BOUND_FRACTION",
]

_PER_MOLAR_M3_PER_MOL = 1e-3  # 1 M⁻¹ = 1 L/mol = 1e-3 m³/mol

SORAFENIB_ALBUMIN_ASSOCIATION_M3_PER_MOL = 1.24e6 * _PER_MOLAR_M3_PER_MOL
"""Association constant of sorafenib with human serum albumin, m³/mol: 1.24×10⁶ M⁻¹
(PHYSICS.md §8; primary source not given there, unconfirmed). One site per molecule assumed."""

SORAFENIB_AAG_ASSOCIATION_M3_PER_MOL = 1.40e5 * _PER_MOLAR_M3_PER_MOL
"""Association constant of sorafenib with human α1-acid glycoprotein, m³/mol: 1.40×10⁵ M⁻¹
(PHYSICS.md §8; unconfirmed). One site per molecule assumed."""

HUMAN_ALBUMIN_MOL_PER_M3 = 0.6
"""Human plasma albumin, mol/m³: ≈ 600 µM (textbook 35–50 g/L at 66.5 kDa ≈ 0.53–0.75 mM;
unconfirmed round value)."""

HUMAN_AAG_MOL_PER_M3 = 0.02
"""Human plasma α1-acid glycoprotein, mol/m³: ≈ 20 µM (textbook 0.5–1 g/L at ≈ 41–44 kDa
≈ 12–24 µM; higher in cancer and inflammation, AAG being an acute-phase protein; unconfirmed)."""

SORAFENIB_LABEL_BOUND_FRACTION = 0.995
"""Bound fraction of sorafenib in human plasma in vitro: 99.5 % (Nexavar label, PHYSICS.md §8).
A reported figure to compare with, not a parameter of the model."""


# --------------------------------------------------------------------------------------------
# plasma


@dataclass(frozen=True)
class BindingProtein:
    """One binding protein of plasma.

    Parameters
    ----------
    name : str
        Name, for reports.
    concentration_mol_per_m3 : float
        Total protein concentration :math:`P`, mol/m³, ≥ 0.
    association_m3_per_mol : float
        Association constant :math:`K` of the drug with one site, m³/mol, ≥ 0.
    sites : float
        Independent sites per protein molecule :math:`n`, > 0 (default 1).
    """

    name: str
    concentration_mol_per_m3: float
    association_m3_per_mol: float
    sites: float = 1.0

    def __post_init__(self):
        _check_number(f"{self.name}.concentration_mol_per_m3", self.concentration_mol_per_m3)
        _check_number(f"{self.name}.association_m3_per_mol", self.association_m3_per_mol)
        _check_number(f"{self.name}.sites", self.sites, strict=True)

    @property
    def site_concentration_mol_per_m3(self) -> float:
        """Binding sites per volume :math:`n P`, mol/m³ (the capacity of this protein)."""
        return self.sites * self.concentration_mol_per_m3

    @property
    def linear_ratio(self) -> float:
        """Bound/free ratio of this protein at low drug, :math:`n K P` (dimensionless)."""
        return self.sites * self.association_m3_per_mol * self.concentration_mol_per_m3

    def bound(self, unbound_mol_per_m3: float) -> float:
        """Drug bound to this protein at free drug ``u``: :math:`n P K u / (1 + K u)`, mol/m³."""
        ku = self.association_m3_per_mol * unbound_mol_per_m3
        return self.site_concentration_mol_per_m3 * ku / (1.0 + ku)


@dataclass(frozen=True)
class PlasmaBinding:
    """Drug binding to plasma proteins, linear and saturable (see the module docstring).

    Parameters
    ----------
    proteins : tuple of BindingProtein
        The binding proteins (may be empty: no binding, f_u = 1).
    note : str
        Where the values come from, for reports.
    """

    proteins: tuple[BindingProtein, ...]
    note: str = ""
    _linear: float = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "proteins", tuple(self.proteins))
        object.__setattr__(self, "_linear", math.fsum(p.linear_ratio for p in self.proteins))

    @property
    def capacity_mol_per_m3(self) -> float:
        """All binding sites per volume, :math:`\\sum n_i P_i`, mol/m³."""
        return math.fsum(p.site_concentration_mol_per_m3 for p in self.proteins)

    def unbound_fraction_linear(self) -> float:
        """:math:`f_u = 1/(1 + \\sum n_i K_i P_i)`: the limit for drug ≪ protein."""
        return 1.0 / (1.0 + self._linear)

    def bound_concentration(self, unbound_mol_per_m3: float) -> float:
        """Total bound drug at free drug ``u`` (mol/m³), all proteins."""
        return math.fsum(p.bound(unbound_mol_per_m3) for p in self.proteins)

    def total_concentration(self, unbound_mol_per_m3: float) -> float:
        """Total drug :math:`u + \\sum_i n_i P_i K_i u/(1 + K_i u)` at free drug ``u`` (mol/m³)."""
        u = _check_number("unbound_mol_per_m3", unbound_mol_per_m3)
        return u + self.bound_concentration(u)

    def unbound_concentration(self, total_mol_per_m3: float) -> float:
        """Free drug (mol/m³) at total drug ``total_mol_per_m3``: the mass-action root, exact.

        Brent's method on the bracket ``[C/(1 + Σ n K P), C]`` (module docstring), to a relative
        tolerance of 4 ulp.
        """
        c = _check_number("total_mol_per_m3", total_mol_per_m3)
        lo = c / (1.0 + self._linear)
        if c == 0.0 or lo == c:
            return lo

        def excess(u: float) -> float:
            return u + self.bound_concentration(u) - c

        if excess(lo) >= 0.0:  # binding far from saturation: the linear answer is exact to round-off
            return lo
        return brentq(excess, lo, c, xtol=1e-300, rtol=4 * 2.0**-52, maxiter=200)

    def unbound_fraction(self, total_mol_per_m3: float) -> float:
        """Exact unbound fraction at total drug ``total_mol_per_m3``; the linear value at 0."""
        c = _check_number("total_mol_per_m3", total_mol_per_m3)
        return self.unbound_concentration(c) / c if c > 0 else self.unbound_fraction_linear()

    def __repr__(self) -> str:
        rows = [f"{p.name}: {format_quantity(p.concentration_mol_per_m3, 'concentration')} × "
                f"{format_number(p.sites)} site(s), "
                f"K {format_number(p.association_m3_per_mol / _PER_MOLAR_M3_PER_MOL)} /M "
                f"(n K P = {format_number(p.linear_ratio)})" for p in self.proteins]
        rows.append(f"linear unbound fraction {format_number(100 * self.unbound_fraction_linear())} % "
                    f"(capacity {format_quantity(self.capacity_mol_per_m3, 'concentration')})")
        if self.note:
            rows.append(self.note)
        return "PlasmaBinding\n" + _tree(rows)


def human_plasma_binding(albumin_mol_per_m3: float = HUMAN_ALBUMIN_MOL_PER_M3,
                         aag_mol_per_m3: float = HUMAN_AAG_MOL_PER_M3,
                         albumin_association_m3_per_mol: float = SORAFENIB_ALBUMIN_ASSOCIATION_M3_PER_MOL,
                         aag_association_m3_per_mol: float = SORAFENIB_AAG_ASSOCIATION_M3_PER_MOL,
                         note: str = "human plasma; albumin, AAG and K unconfirmed defaults") -> PlasmaBinding:
    """Sorafenib binding in human plasma: albumin and AAG, one site each (defaults unconfirmed)."""
    return PlasmaBinding((BindingProtein("albumin", albumin_mol_per_m3, albumin_association_m3_per_mol),
                          BindingProtein("AAG", aag_mol_per_m3, aag_association_m3_per_mol)), note)


def plasma_binding_for(species: str) -> PlasmaBinding:
    """Plasma binding preset for a species of :data:`nanosim.carriers.systemic.BODIES`.

    No species-specific protein levels or association constants are documented in PHYSICS.md:
    every species gets the human values, and the returned object's ``note`` says so.
    """
    if species not in BODIES:
        raise ValueError(f"unknown species {species!r}; allowed: {', '.join(BODIES)}")
    if species == "human":
        return human_plasma_binding()
    return human_plasma_binding(note=f"{species}: human protein levels and K reused (no {species} values documented)")


# --------------------------------------------------------------------------------------------
# tissue


def retardation_factor(b_max_mol_per_m3: float, k_d_mol_per_m3: float) -> float:
    """Linear fast-equilibrium retardation factor :math:`R = 1 + B_{max}/K_d` (dimensionless)."""
    b = _check_number("b_max_mol_per_m3", b_max_mol_per_m3)
    k = _check_number("k_d_mol_per_m3", k_d_mol_per_m3, strict=True)
    return 1.0 + b / k


@dataclass(frozen=True)
class TissueBinding:
    """Saturable binding of free drug to an immobile tissue pool (module docstring).

    Parameters
    ----------
    b_max_mol_per_m3 : float
        Binding capacity :math:`B_{max}`, mol per m³ of tissue, ≥ 0.
    k_d_mol_per_m3 : float
        Dissociation constant :math:`K_d`, mol/m³, > 0.
    k_off_per_s : float or None
        Dissociation rate, 1/s, > 0; needed only for :meth:`operator_rates`.
    """

    b_max_mol_per_m3: float
    k_d_mol_per_m3: float
    k_off_per_s: float | None = None

    def __post_init__(self):
        retardation_factor(self.b_max_mol_per_m3, self.k_d_mol_per_m3)  # validates both
        if self.k_off_per_s is not None:
            _check_number("k_off_per_s", self.k_off_per_s, strict=True)

    def retardation_factor(self) -> float:
        """:math:`R = 1 + B_{max}/K_d`: the linear (C ≪ K_d) fast-equilibrium factor."""
        return retardation_factor(self.b_max_mol_per_m3, self.k_d_mol_per_m3)

    def local_retardation_factor(self, free_mol_per_m3: float) -> float:
        """:math:`1 + dC_b/dC = 1 + B_{max} K_d/(K_d + C)^2` at free drug ``C`` (saturable, fast)."""
        c = _check_number("free_mol_per_m3", free_mol_per_m3)
        k = self.k_d_mol_per_m3
        return 1.0 + self.b_max_mol_per_m3 * k / (k + c) ** 2

    def bound_concentration(self, free_mol_per_m3: float) -> float:
        """Bound drug at equilibrium, :math:`B_{max} C/(K_d + C)`, mol/m³."""
        c = _check_number("free_mol_per_m3", free_mol_per_m3)
        return self.b_max_mol_per_m3 * c / (self.k_d_mol_per_m3 + c)

    def operator_rates(self) -> tuple[float, float]:
        """``(binding_on_rate_per_s, binding_off_rate_per_s)`` of the transport operator.

        :math:`k_{on} = k_{off} B_{max}/K_d`, :math:`k_{off}`: linearised kinetics (module docstring).
        """
        if self.k_off_per_s is None:
            raise ValueError("k_off_per_s is needed for the kinetic binding rates (only R = 1 + B_max/K_d "
                             "follows from B_max and K_d alone)")
        return self.k_off_per_s * self.b_max_mol_per_m3 / self.k_d_mol_per_m3, self.k_off_per_s

    def __repr__(self) -> str:
        koff = "none (fast equilibrium)" if self.k_off_per_s is None else format_quantity(self.k_off_per_s, "rate")
        return ("TissueBinding\n" + _tree([
            f"B_max {format_quantity(self.b_max_mol_per_m3, 'concentration')}, "
            f"K_d {format_quantity(self.k_d_mol_per_m3, 'concentration')}",
            f"retardation R = {format_number(self.retardation_factor())}, k_off {koff}"]))
