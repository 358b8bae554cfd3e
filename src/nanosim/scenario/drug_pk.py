"""Scenario models of the free drug in the whole body: systemic PK and the oral route (PHYSICS.md §8, §10).

- ``DrugPK``: one- or two-compartment disposition of free sorafenib (drug not in carriers):
  half-life, clearance or volume, peripheral exchange, plasma protein binding. Defaults are for
  a human and scale to other body masses allometrically (:mod:`nanosim.drug.systemic`).
- ``OralRoute``: oral dosing (``kind = "oral"``): dose in mg or mg/kg, interval, number of
  doses, bioavailability, t_max or k_a.

Not yet part of :class:`~nanosim.scenario.schema.Scenario`; :func:`nanosim.drug.systemic.build_systemic_drug`
turns them into a :class:`~nanosim.drug.systemic.SystemicDrugPK`. Every default that PHYSICS.md
marks unconfirmed, or that has no source there, is labelled so in its description.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

from pydantic import Field, model_validator

from nanosim.drug.binding import (HUMAN_AAG_MOL_PER_M3, HUMAN_ALBUMIN_MOL_PER_M3, PlasmaBinding,
                                  human_plasma_binding)
from nanosim.drug.systemic import (SORAFENIB_APPARENT_CLEARANCE_M3_PER_S, SORAFENIB_BIOAVAILABILITY,
                                   SORAFENIB_T_HALF_S, SORAFENIB_T_MAX_S, absorption_rate_from_t_max, dose_mol)
from nanosim.units import format_number, format_quantity, quantity

from .carriers import PositiveMass, PositiveVolume, PositiveVolumeFlow
from .schema_base import Count, NonNegativeConcentration, NonNegativeRate, PositiveTime, _Model, nanosim_error

PositiveRate = quantity("rate", gt=0)
NonNegativeTime = quantity("time", ge=0)
Bioavailability = quantity("dimensionless", gt=0, le=1)
DoseMg = quantity("mass", gt=0, unit="mg")
DoseMgPerKg = quantity("dimensionless", gt=0, unit="mg/kg")

_L_PER_MOL_M3_PER_MOL = 1e-3  # association constants: 1 L/mol (= 1/M) is 1e-3 m³/mol

_DEFAULT_CLEARANCE_M3_PER_S = SORAFENIB_BIOAVAILABILITY * SORAFENIB_APPARENT_CLEARANCE_M3_PER_S


class PlasmaProteinBinding(_Model):
    """Sorafenib binding to albumin and α1-acid glycoprotein in plasma, one site each (PHYSICS.md §8)."""

    albumin_mol_per_m3: NonNegativeConcentration = Field(
        HUMAN_ALBUMIN_MOL_PER_M3, description="Plasma albumin in mol/m³ (e.g. \"600 uM\"); human ≈ 600 µM "
        "(textbook 35–50 g/L; unconfirmed; also used for other species, none documented).")
    aag_mol_per_m3: NonNegativeConcentration = Field(
        HUMAN_AAG_MOL_PER_M3, description="Plasma α1-acid glycoprotein in mol/m³; human ≈ 20 µM (textbook "
        "0.5–1 g/L, higher in cancer; unconfirmed; also used for other species).")
    albumin_association_l_per_mol: float = Field(
        1.24e6, ge=0,
        description="Association constant with albumin in L/mol (= 1/M): 1.24e6 (PHYSICS.md §8; unconfirmed).")
    aag_association_l_per_mol: float = Field(
        1.40e5, ge=0,
        description="Association constant with AAG in L/mol (= 1/M): 1.40e5 (PHYSICS.md §8; unconfirmed).")

    def build(self) -> PlasmaBinding:
        """The :class:`~nanosim.drug.binding.PlasmaBinding` of these values."""
        return human_plasma_binding(self.albumin_mol_per_m3, self.aag_mol_per_m3,
                                    self.albumin_association_l_per_mol * _L_PER_MOL_M3_PER_MOL,
                                    self.aag_association_l_per_mol * _L_PER_MOL_M3_PER_MOL, note="scenario values")

    def describe(self) -> str:
        return (f"albumin {format_quantity(self.albumin_mol_per_m3, 'concentration')} (K "
                f"{format_number(self.albumin_association_l_per_mol)}/M), AAG "
                f"{format_quantity(self.aag_mol_per_m3, 'concentration')} "
                f"(K {format_number(self.aag_association_l_per_mol)}/M): "
                f"{100 * self.build().unbound_fraction_linear():.3g} % unbound")


class DrugPK(_Model):
    """Disposition of free drug in the body: C_p = central/V, first-order elimination k10 = ln 2/t½.

    Give ``clearance_m3_per_s`` or ``volume_m3`` (with ``half_life_s`` either fixes the other:
    V = CL t½/ln 2). With ``k12_per_s`` > 0 a peripheral compartment exchanges with the central
    one and ``half_life_s`` is that of k10 alone, not the terminal half-life.
    """

    half_life_s: PositiveTime = Field(
        SORAFENIB_T_HALF_S, description="Elimination half-life ln 2/k10 in s; sorafenib 25–48 h (PHYSICS.md §8), "
        "default 35 h (a chosen value, unconfirmed).")
    clearance_m3_per_s: PositiveVolumeFlow = Field(
        _DEFAULT_CLEARANCE_M3_PER_S, description="Plasma clearance CL = k10 V in m³/s (e.g. \"3.5 L/h\"); default "
        "0.43 × CL/F 8.13 L/h = 3.50 L/h (CL/F: Jain 2011 Table 3 via nlmixr2lib, F: label 38–49 % taken as "
        "absolute; unconfirmed).")
    volume_m3: Optional[PositiveVolume] = Field(
        None, description="Apparent central volume of distribution in m³ (e.g. \"180 L\"); default CL t½/ln 2 "
        "(177 L with the defaults). Give this or clearance_m3_per_s, not both.")
    k12_per_s: NonNegativeRate = Field(0.0, description="Central → peripheral rate in 1/s (0: one compartment; "
                                       "no two-compartment values documented for sorafenib).")
    k21_per_s: NonNegativeRate = Field(0.0, description="Peripheral → central rate in 1/s.")
    reference_body_mass_kg: PositiveMass = Field(
        70.0, description="Body mass in kg the values above are for (human 70 kg); another body scales V ∝ mass and "
        "rates ∝ mass^-0.25 (allometry, unconfirmed for sorafenib).")
    plasma_binding: PlasmaProteinBinding = Field(default_factory=PlasmaProteinBinding,
                                                 description="Plasma protein binding (unbound fraction).")

    @model_validator(mode="after")
    def _consistent(self) -> "DrugPK":
        if self.volume_m3 is not None and "clearance_m3_per_s" in self.model_fields_set:
            raise nanosim_error("give clearance_m3_per_s or volume_m3, not both",
                                "with half_life_s either one fixes the other (V = CL t½/ln 2)", "volume_m3")
        if self.k12_per_s > 0 and self.k21_per_s == 0:
            raise nanosim_error("must be > 0 when k12_per_s > 0 (the peripheral compartment would never return drug)",
                                "set k21_per_s, or k12_per_s = 0 for one compartment", "k21_per_s")
        return self

    @property
    def k10_per_s(self) -> float:
        """Elimination rate constant ln 2/t½, 1/s."""
        return math.log(2.0) / self.half_life_s

    def volume_at_reference_m3(self) -> float:
        """Central volume at the reference body mass, m³ (given or CL t½/ln 2)."""
        return self.volume_m3 if self.volume_m3 is not None else self.clearance_m3_per_s / self.k10_per_s

    def describe(self) -> str:
        v = self.volume_at_reference_m3()
        comp = "one compartment" if self.k12_per_s == 0 else \
            (f"two compartments (k12 {format_quantity(self.k12_per_s, 'rate')}, "
             f"k21 {format_quantity(self.k21_per_s, 'rate')})")
        fu = 100 * self.plasma_binding.build().unbound_fraction_linear()
        return (f"{comp}, t½ {format_quantity(self.half_life_s, 'time')}, V {format_number(v * 1e3)} L, "
                f"CL {format_number(self.k10_per_s * v * 3.6e6)} L/h at "
                f"{format_number(self.reference_body_mass_kg)} kg, "
                f"{fu:.3g} % unbound in plasma")


class OralRoute(_Model):
    """Oral dosing: a dose every interval, absorbed first-order from the gut (PHYSICS.md §8, §10).

    Give ``t_max_s`` (default 3 h) or ``absorption_rate_per_s``; from t_max, k_a solves
    t_max = ln(k_a/k_el)/(k_a − k_el) for the body's k_el.
    """

    kind: Literal["oral"] = "oral"
    dose_mg: Optional[DoseMg] = Field(None, description="Dose per administration in mg (e.g. 400 for a patient).")
    dose_mg_per_kg: Optional[DoseMgPerKg] = Field(None, description="Dose per administration in mg per kg body mass.")
    interval_s: PositiveTime = Field(12 * 3600.0, description="Time between doses in s (sorafenib 400 mg twice daily: "
                                     "12 h, PHYSICS.md §1).")
    doses: Count = Field(1, description="Number of doses.")
    start_s: NonNegativeTime = Field(0.0, description="Time of the first dose in s.")
    lag_s: NonNegativeTime = Field(0.0, description="Absorption lag after each dose in s.")
    bioavailability: Bioavailability = Field(
        SORAFENIB_BIOAVAILABILITY, description="Fraction F of the dose absorbed; sorafenib 38–49 % relative to an "
        "oral solution (PHYSICS.md §8), default 0.43 taken as absolute (unconfirmed).")
    t_max_s: Optional[PositiveTime] = Field(
        None, description="Time of the plasma peak after one dose in s, sets k_a; sorafenib ≈ 3 h (PHYSICS.md §8), "
        "the default when absorption_rate_per_s is not given.")
    absorption_rate_per_s: Optional[PositiveRate] = Field(None, description="Absorption rate k_a in 1/s "
                                                          "(instead of t_max_s).")

    @model_validator(mode="after")
    def _one_of_each(self) -> "OralRoute":
        if (self.dose_mg is None) == (self.dose_mg_per_kg is None):
            raise nanosim_error("give exactly one of dose_mg and dose_mg_per_kg", "e.g. dose_mg = 400", "dose_mg")
        if self.t_max_s is not None and self.absorption_rate_per_s is not None:
            raise nanosim_error("give t_max_s or absorption_rate_per_s, not both",
                                "t_max_s fixes k_a through the elimination rate", "absorption_rate_per_s")
        if self.t_max_s is None and self.absorption_rate_per_s is None:
            self.__dict__["t_max_s"] = SORAFENIB_T_MAX_S  # not by assignment: that would re-run this validator
        return self

    def dose_mol(self, body_mass_kg: float, molar_mass_kg_per_mol: float) -> float:
        """One dose in mol."""
        return dose_mol(self.dose_mg, self.dose_mg_per_kg, body_mass_kg, molar_mass_kg_per_mol)

    def absorption_rate(self, elimination_rate_per_s: float) -> float:
        """k_a in 1/s: given, or from t_max for elimination rate ``elimination_rate_per_s``."""
        if self.absorption_rate_per_s is not None:
            return self.absorption_rate_per_s
        return absorption_rate_from_t_max(self.t_max_s, elimination_rate_per_s)

    def describe(self) -> str:
        dose = f"{format_number(self.dose_mg)} mg" if self.dose_mg is not None else \
            f"{format_number(self.dose_mg_per_kg)} mg/kg"
        every = f" every {format_quantity(self.interval_s, 'time')} × {self.doses}" if self.doses > 1 else ""
        absorb = f"t_max {format_quantity(self.t_max_s, 'time')}" if self.t_max_s is not None else \
            f"k_a {format_quantity(self.absorption_rate_per_s, 'rate')}"
        lag = f", lag {format_quantity(self.lag_s, 'time')}" if self.lag_s else ""
        return f"oral {dose}{every}, F {format_number(self.bioavailability)}, {absorb}{lag}"


class IntravenousDrug(_Model):
    """Free drug given into a vein: a bolus, or an infusion at a constant rate, into the systemic
    compartment (PHYSICS.md §10 routes). A solution given into the hepatic artery reaches the same
    plasma after one pass through the liver; sorafenib's hepatic extraction is small (plasma
    clearance 3.5 L/h against a human liver blood flow of ≈ 90 L/h, ≈ 4 %), so this route also
    stands for a hepatic arterial infusion of the solution as far as the plasma is concerned (the
    box's first-pass exposure to the arterial concentration is not modelled)."""

    kind: Literal["intravenous"] = "intravenous"
    dose_mg: Optional[DoseMg] = Field(None, description="Dose in mg.")
    dose_mg_per_kg: Optional[DoseMgPerKg] = Field(None, description="Dose in mg per kg body mass (e.g. 3 mg/kg).")
    infusion_duration_s: NonNegativeTime = Field(0.0, description="Infusion time in s (0: a bolus).")
    start_s: NonNegativeTime = Field(0.0, description="Start of the injection in s.")

    @model_validator(mode="after")
    def _one_dose(self) -> "IntravenousDrug":
        if (self.dose_mg is None) == (self.dose_mg_per_kg is None):
            raise nanosim_error("give exactly one of dose_mg and dose_mg_per_kg", "e.g. dose_mg_per_kg = 3", "dose_mg")
        return self

    def dose_mol(self, body_mass_kg: float, molar_mass_kg_per_mol: float) -> float:
        """The dose in mol."""
        return dose_mol(self.dose_mg, self.dose_mg_per_kg, body_mass_kg, molar_mass_kg_per_mol)

    def describe(self) -> str:
        dose = f"{format_number(self.dose_mg)} mg" if self.dose_mg is not None else \
            f"{format_number(self.dose_mg_per_kg)} mg/kg"
        how = f"infused over {format_quantity(self.infusion_duration_s, 'time')}" if self.infusion_duration_s else "bolus"
        return f"intravenous {dose} {how}" + (f" at {format_quantity(self.start_s, 'time')}" if self.start_s else "")


__all__ = ["DrugPK", "IntravenousDrug", "OralRoute", "PlasmaProteinBinding"]
