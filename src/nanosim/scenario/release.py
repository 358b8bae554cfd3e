"""Scenario models of drug release from carriers (PHYSICS.md §7).

A ``[carrier.release]`` table (wired into the carrier by the scenario schema) holds

- ``law``: the release curve at the fastest conditions, a table with ``kind`` =
  ``first_order``, ``higuchi``, ``korsmeyer_peppas``, ``weibull``, ``sphere_diffusion`` or ``none``;
- ``burst_fraction`` and ``burst_on``: a fraction released at once, at injection or on
  entering tissue or a cell, the law acting on the rest;
- ``ph_trigger``: an optional Hill pH trigger ``k(pH) = k_min + (k_max − k_min)/(1 + 10^(n(pH − pKa)))``;
- ``compartment_factors``: how fast the release clock runs in blood, free in tissue, bound,
  internalised (endosome) and lodged (embolic spheres);
- ``blood_ph`` and ``endosomal_ph``: the pH carriers see there (tissue pH comes from the pH field).

Release is integrated along each carrier's own history with an internal release clock that
runs at ``factor × h(pH)`` (:mod:`nanosim.kernels.release`): exact for the first-order law, the
documented generalisation of PHYSICS.md §7 for the time-shaped laws.

No fitted release constants of the sorafenib carriers were confirmed (PHYSICS.md §7): every
default here is labelled unconfirmed.

Example: the 13 µm PLGA microspheres of Chen 2015 released sorafenib "within 72 h"; read as
90 % at 72 h (an assumption), first order with ``k = ln 10 / 72 h = 0.032 1/h``
(:func:`chen_2015_plga_microspheres`)::

    [carrier.release]
    law = { kind = "first_order", rate_per_s = "0.032 1/h" }   # ln 10 / 72 h
    compartment_factors = { lodged = 1.0 }
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional, Union

from pydantic import Field

from nanosim.kernels.compartments import BOUND, INTERNALISED, LODGED, TISSUE, VESSEL
from nanosim.units import format_quantity, quantity

from .schema_base import NonNegativeRate, PositiveLength, PositiveTime, UnitFraction, _Model

PositiveDiffusivity = quantity("diffusivity", gt=0)

HOUR_S = 3600.0
CHEN_2015_RATE_PER_S = math.log(10.0) / (72.0 * HOUR_S)
"""ln 10 / 72 h = 8.88e-6 1/s (0.032 1/h): Chen 2015 PLGA microspheres read as 90 % at 72 h (assumption)."""
PLACEHOLDER_TIME_S = 72.0 * HOUR_S
"""72 h: the placeholder time scale of the time-shaped laws (Chen 2015's "within 72 h"; unconfirmed)."""

_PH = dict(ge=0.0, le=14.0)

#: Compartments whose first step triggers the burst, by ``burst_on``.
BURST_STATES = {"injection": (VESSEL, TISSUE, BOUND, INTERNALISED, LODGED),
                "tissue": (TISSUE, BOUND, INTERNALISED, LODGED),
                "internalised": (INTERNALISED,)}


def _time(t_s: float) -> str:
    return format_quantity(t_s, "time")


# --------------------------------------------------------------------------------------------
# release laws


class NoRelease(_Model):
    """No release by a law (only a burst, if any)."""

    kind: Literal["none"] = "none"

    def kernel_law(self) -> tuple[str, float, float]:
        """``(law name, p0, p1)`` of :class:`nanosim.kernels.release.ReleaseParams`."""
        return "none", 0.0, 0.0

    def describe(self) -> str:
        return "none"


class FirstOrderRelease(_Model):
    """``F = 1 − e^(−kτ)``: the rate law; with a pH trigger, ``k`` is the fastest rate k_max."""

    kind: Literal["first_order"] = "first_order"
    rate_per_s: NonNegativeRate = Field(
        CHEN_2015_RATE_PER_S, description="k (k_max with a pH trigger) in 1/s; default ln 10 / 72 h = 0.032 1/h "
        "(Chen 2015 PLGA microspheres, \"within 72 h\" read as 90 % at 72 h; unconfirmed for other carriers).")

    def kernel_law(self) -> tuple[str, float, float]:
        return "first_order", self.rate_per_s, 0.0

    def describe(self) -> str:
        if self.rate_per_s == 0:
            return "first order, k 0"
        return (f"first order, k {self.rate_per_s * HOUR_S:.3g} 1/h "
                f"(t½ {_time(math.log(2.0) / self.rate_per_s)})")


class HiguchiRelease(_Model):
    """``F = min(1, k_H √τ)`` with ``k_H = T^(−1/2)``: matrix diffusion, an early-time law."""

    kind: Literal["higuchi"] = "higuchi"
    full_release_time_s: PositiveTime = Field(
        PLACEHOLDER_TIME_S, description="T, the time at which √τ growth reaches F = 1, in s "
        "(k_H = 1/√T); default 72 h, an unconfirmed placeholder.")

    def kernel_law(self) -> tuple[str, float, float]:
        return "higuchi", 1.0 / math.sqrt(self.full_release_time_s), 0.0

    def describe(self) -> str:
        return f"Higuchi, F = √(τ/T), T {_time(self.full_release_time_s)}"


class KorsmeyerPeppasRelease(_Model):
    """``F = min(1, (τ/T)ⁿ)``, i.e. ``k = T^(−n)``: an empirical fit valid for F ≤ 0.6."""

    kind: Literal["korsmeyer_peppas"] = "korsmeyer_peppas"
    exponent: float = Field(0.43, gt=0.0, le=2.0, description="n: 0.43 Fickian sphere, 0.85 case II "
                            "(PHYSICS.md §7, unconfirmed); default 0.43.")
    full_release_time_s: PositiveTime = Field(
        PLACEHOLDER_TIME_S, description="T, the time at which (τ/T)ⁿ extrapolates to F = 1, in s; "
        "default 72 h, an unconfirmed placeholder. The law is only valid for F ≤ 0.6.")

    def kernel_law(self) -> tuple[str, float, float]:
        n = self.exponent
        return "korsmeyer_peppas", self.full_release_time_s ** (-n), n

    def describe(self) -> str:
        return (f"Korsmeyer–Peppas, F = (τ/T)^{self.exponent:g}, T {_time(self.full_release_time_s)} "
                f"(valid for F ≤ 0.6)")


class WeibullRelease(_Model):
    """``F = 1 − exp(−(τ/τ_d)^b)``: b = 1 is first order with k = 1/τ_d."""

    kind: Literal["weibull"] = "weibull"
    scale_time_s: PositiveTime = Field(
        PLACEHOLDER_TIME_S / math.log(10.0), description="τ_d in s (F = 63 % at τ_d); default 72 h / ln 10 "
        "(the Chen 2015 reading for b = 1; unconfirmed).")
    shape: float = Field(1.0, gt=0.0, le=10.0, description="b (1: exponential; < 1 fast start, slow tail; "
                         "unconfirmed default 1).")

    def kernel_law(self) -> tuple[str, float, float]:
        return "weibull", self.scale_time_s, self.shape

    def describe(self) -> str:
        return f"Weibull, τ_d {_time(self.scale_time_s)}, b {self.shape:g}"


class SphereDiffusionRelease(_Model):
    """Diffusion out of a sphere of radius a (Crank 1975): F = 0.5 at Dτ/a² = 0.03055, 0.9 at 0.1830."""

    kind: Literal["sphere_diffusion"] = "sphere_diffusion"
    diffusivity_m2_per_s: PositiveDiffusivity = Field(  # type: ignore[valid-type]
        description="D of the drug in the carrier matrix, m²/s (no confirmed value).")
    radius_m: PositiveLength = Field(description="Radius a of the releasing sphere (the carrier's matrix), m.")

    def kernel_law(self) -> tuple[str, float, float]:
        return "sphere_diffusion", self.diffusivity_m2_per_s / self.radius_m**2, 0.0

    def half_time_s(self) -> float:
        """Time to release half the drug at the fastest conditions (Dτ/a² = 0.03055)."""
        return 0.03055 * self.radius_m**2 / self.diffusivity_m2_per_s

    def describe(self) -> str:
        return (f"diffusion out of a sphere, a {format_quantity(self.radius_m, 'length')}, "
                f"D {format_quantity(self.diffusivity_m2_per_s, 'diffusivity')} "
                f"(50 % at {_time(self.half_time_s())})")


ReleaseLaw = Annotated[Union[FirstOrderRelease, HiguchiRelease, KorsmeyerPeppasRelease, WeibullRelease,
                             SphereDiffusionRelease, NoRelease], Field(discriminator="kind")]


# --------------------------------------------------------------------------------------------
# modulation


class PhTrigger(_Model):
    """Hill pH trigger: the clock speed is ``h(pH) = k(pH)/k_max`` (PHYSICS.md §7)."""

    pka: float = Field(6.5, **_PH, description="pKa of the trigger; no fitted value for the sorafenib carriers "
                       "(PHYSICS.md §7: scan 6.0–6.8); default 6.5, unconfirmed.")
    hill_n: float = Field(1.0, gt=0.0, le=10.0, description="Hill coefficient n (default 1, unconfirmed).")
    min_rate_fraction: float = Field(
        0.01, gt=0.0, le=1.0, description="h_min = k_min/k_max, the speed at high pH as a fraction of the "
        "fastest (PHYSICS.md §7: scan a 5–50-fold rate change between pH 7.4 and 5.5); default 0.01 "
        "(7.5-fold with pKa 6.5, n 1), unconfirmed.")

    def factor(self, ph: float) -> float:
        """``h(pH) = h_min + (1 − h_min)/(1 + 10^(n(pH − pKa)))``."""
        h = self.min_rate_fraction
        return h + (1.0 - h) / (1.0 + 10.0 ** min(self.hill_n * (ph - self.pka), 300.0))

    def fold_change(self, ph_acid: float = 5.5, ph_neutral: float = 7.4) -> float:
        """Rate ratio ``k(ph_acid)/k(ph_neutral)`` (PHYSICS.md §7 asks for 5–50 between 5.5 and 7.4)."""
        return self.factor(ph_acid) / self.factor(ph_neutral)

    def describe(self) -> str:
        return (f"pH trigger pKa {self.pka:g}, n {self.hill_n:g}, k_min/k_max {self.min_rate_fraction:g} "
                f"(×{self.fold_change():.3g} from pH 7.4 to 5.5)")


class CompartmentFactors(_Model):
    """Speed of the release clock per compartment, relative to the law (1: as in the law)."""

    blood: float = Field(1.0, ge=0.0, description="In blood (premature leak, systemic exposure; unconfirmed 1).")
    tissue: float = Field(1.0, ge=0.0, description="Free in the interstitium (unconfirmed 1).")
    bound: float = Field(1.0, ge=0.0, description="Bound to cells or matrix (unconfirmed 1).")
    internalised: float = Field(1.0, ge=0.0, description="Inside cells (endosome; unconfirmed 1; the pH "
                                "trigger acts at endosomal_ph on top of it).")
    lodged: float = Field(1.0, ge=0.0, description="Embolic spheres lodged in a segment (unconfirmed 1).")

    def kernel_factors(self) -> dict:
        """Factors by compartment name of :mod:`nanosim.kernels.compartments`."""
        return {"vessel": self.blood, "tissue": self.tissue, "bound": self.bound,
                "internalised": self.internalised, "lodged": self.lodged}

    def describe(self) -> str:
        vals = self.model_dump()
        if all(v == 1.0 for v in vals.values()):
            return "clock speed 1 in every compartment"
        return "clock speed " + ", ".join(f"{k} {v:g}" for k, v in vals.items())


class Release(_Model):
    """Drug release from the carriers along each carrier's history (PHYSICS.md §7)."""

    law: ReleaseLaw = Field(default_factory=FirstOrderRelease,
                            description="Release curve at the fastest conditions (default: first order, "
                            "ln 10 / 72 h, unconfirmed).")
    burst_fraction: UnitFraction = Field(  # type: ignore[valid-type]
        0.0, description="f_b: fraction released at once; the law acts on the rest, F = f_b + (1 − f_b) F_law "
        "(default 0, unconfirmed).")
    burst_on: Literal["injection", "tissue", "internalised"] = Field(
        "injection", description="When the burst happens: at injection (t = 0 of the carrier), on first "
        "leaving the blood (tissue, bound, internalised or lodged), or on internalisation.")
    ph_trigger: Optional[PhTrigger] = Field(None, description="Hill pH trigger (default none: pH has no effect).")
    compartment_factors: CompartmentFactors = Field(default_factory=CompartmentFactors,
                                                    description="Clock speed per compartment.")
    blood_ph: float = Field(7.4, **_PH, description="pH of blood (PHYSICS.md §6: 7.4).")
    endosomal_ph: float = Field(5.5, **_PH, description="pH internalised carriers see (PHYSICS.md §6: late "
                                "endosome 5.0–6.0, early 6.0–6.5, lysosome 4.5–5.0; default 5.5, unconfirmed).")

    def kernel_params(self, tissue_ph: float = 7.4):
        """The :class:`nanosim.kernels.release.ReleaseParams` of this table.

        ``tissue_ph`` is used only where the caller gives the kernel no local pH.
        """
        from nanosim.kernels.release import ReleaseParams

        name, p0, p1 = self.law.kernel_law()
        trig = self.ph_trigger
        hill = dict(pka=trig.pka, hill_n=trig.hill_n, h_min=trig.min_rate_fraction) if trig else {}
        return ReleaseParams(name, p0, p1, burst_fraction=self.burst_fraction,
                             burst_states=BURST_STATES[self.burst_on],
                             factors=self.compartment_factors.kernel_factors(), ph_blood=self.blood_ph,
                             ph_endosome=self.endosomal_ph, ph_tissue=tissue_ph, **hill)

    def describe(self) -> str:
        parts = [self.law.describe()]
        if self.burst_fraction > 0:
            parts.append(f"burst {100 * self.burst_fraction:.3g} % at {self.burst_on}")
        if self.ph_trigger:
            parts.append(self.ph_trigger.describe())
        if any(v != 1.0 for v in self.compartment_factors.model_dump().values()):
            parts.append(self.compartment_factors.describe())
        parts.append(f"pH blood {self.blood_ph:g}, endosome {self.endosomal_ph:g}")
        return "; ".join(parts)


def chen_2015_plga_microspheres() -> Release:
    """Sorafenib PLGA microspheres (13 µm) of Chen 2015: first order, 90 % at 72 h (assumption)."""
    return Release(law=FirstOrderRelease(rate_per_s=CHEN_2015_RATE_PER_S))


__all__ = ["Release", "ReleaseLaw", "PhTrigger", "CompartmentFactors", "FirstOrderRelease", "HiguchiRelease",
           "KorsmeyerPeppasRelease", "WeibullRelease", "SphereDiffusionRelease", "NoRelease",
           "chen_2015_plga_microspheres", "CHEN_2015_RATE_PER_S", "BURST_STATES"]
