"""Scenario models of the tumour microenvironment: oxygen and extracellular pH (PHYSICS.md §6).

Two tables, each off unless ``enabled = true``:

- ``[oxygen]``: steady oxygen partial pressure (:mod:`nanosim.microenv.oxygen`) — diffusivity,
  solubility, wall mass-transfer coefficient, blood P_O2 per vessel wall type, Michaelis–Menten
  consumption per region, the hypoxia threshold.
- ``[ph]``: extracellular pH (:mod:`nanosim.microenv.ph`), ``kind = "prescribed"`` (a function of
  region and distance to vessels) or ``"reaction_diffusion"`` (Gatenby & Gawlinski 1996), with
  intracellular and endosomal values in ``[ph.compartments]``.

Pressures accept ``"40 mmHg"`` or Pa; solubilities ``"1.39 uM/mmHg"``; consumption rates
``"22 uM/s"``; cell densities ``"5e7 1/cm^3"``; per-cell rates ``"2.2e-17 M*cm^3/s"``.
Every default that PHYSICS.md does not give is labelled *unconfirmed* in its description.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from nanosim.microenv import oxygen as _o2
from nanosim.microenv import ph as _ph
from nanosim.units import Dimension, format_quantity, quantity

from .schema_base import (NonNegativeDiffusivity, NonNegativeRate, NonNegativeVelocity, PositiveLength, _Model,
                          _tree)

MMHG_PA = _o2.MMHG_PA

# Dimensions the shared registry does not hold (exponents of length, time, amount, mass, temperature).
SOLUBILITY = Dimension("solubility", (-2, 2, 1, -1, 0), "mol/(m^3*Pa)", "1.39 uM/mmHg", (("mol/(m³·Pa)", 1.0),))
VOLUMETRIC_RATE = Dimension("volumetric reaction rate", (-3, -1, 1, 0, 0), "mol/(m^3*s)", "22 uM/s",
                            (("mM/s", 1.0), ("µM/s", 1e-3), ("nM/s", 1e-6)))
AMOUNT_RATE = Dimension("amount per time", (0, -1, 1, 0, 0), "mol/s", "2.2e-17 M*cm^3/s", (("mol/s", 1.0),))
NUMBER_DENSITY = Dimension("number density", (-3, 0, 0, 0, 0), "1/m^3", "5e7 1/cm^3", (("1/m³", 1.0),))

NonNegativePressure = quantity("pressure", ge=0)
PositiveDiffusivity = quantity("diffusivity", gt=0)
PositiveSolubility = quantity(SOLUBILITY, gt=0)
NonNegativeVolumetricRate = quantity(VOLUMETRIC_RATE, ge=0)
NonNegativeAmountRate = quantity(AMOUNT_RATE, ge=0)
NonNegativeNumberDensity = quantity(NUMBER_DENSITY, ge=0)


def _mmhg(p_pa: float) -> str:
    return f"{p_pa / MMHG_PA:.4g} mmHg"


# --------------------------------------------------------------------------------------------
# oxygen


class BloodPO2(_Model):
    """Blood oxygen partial pressure per vessel wall type (drives wall exchange; *unconfirmed* textbook values)."""

    artery_pa: NonNegativePressure = Field(_o2.BLOOD_PO2_PA["artery"], description="Arterial blood, Pa (95 mmHg).")
    vein_pa: NonNegativePressure = Field(_o2.BLOOD_PO2_PA["vein"], description="Venous blood, Pa (40 mmHg; unconfirmed).")
    portal_pa: NonNegativePressure = Field(
        _o2.BLOOD_PO2_PA["portal"], description="Portal venous blood, Pa (50 mmHg; unconfirmed).")
    capillary_pa: NonNegativePressure = Field(
        _o2.BLOOD_PO2_PA["capillary"], description="Normal capillaries, Pa (40 mmHg; unconfirmed).")
    sinusoid_pa: NonNegativePressure = Field(
        _o2.BLOOD_PO2_PA["sinusoid"], description="Liver sinusoids, Pa (45 mmHg, between periportal ≈ 60–65 and "
        "perivenous ≈ 30–35 mmHg, Jungermann & Kietzmann 2000; unconfirmed).")
    tumour_pa: NonNegativePressure = Field(
        _o2.BLOOD_PO2_PA["tumour"], description="Tumour vessels, Pa (35 mmHg; unconfirmed).")

    def table(self) -> dict:
        """``{wall type name: P_O2 in Pa}`` as :func:`nanosim.microenv.oxygen.blood_po2_map` takes it."""
        return {name: getattr(self, f"{name}_pa") for name in _o2.BLOOD_PO2_PA}

    def describe(self) -> str:
        return "blood P_O2 " + ", ".join(f"{k} {v / MMHG_PA:.4g}" for k, v in self.table().items()) + " mmHg"


class OxygenRegion(_Model):
    """Michaelis–Menten oxygen consumption M·P/(P + P_m) in one tissue region."""

    max_consumption_mol_per_m3_s: NonNegativeVolumetricRate = Field(
        description="Largest consumption rate M in mol/(m^3·s) (1 ml O2/100 cm^3/min ≈ 7.4e-3).")
    half_saturation_pa: NonNegativePressure = Field(
        1.0 * MMHG_PA, description="P_m in Pa (1 mmHg, Secomb et al. 2004; unconfirmed); 0 = zero-order consumption.")

    def describe(self) -> str:
        kind = "zero-order" if self.half_saturation_pa == 0 else f"P_m {_mmhg(self.half_saturation_pa)}"
        return f"M {format_quantity(self.max_consumption_mol_per_m3_s, VOLUMETRIC_RATE)}, {kind}"


def _region(m: float, pm: float, text: str):
    return Field(default_factory=lambda: OxygenRegion(max_consumption_mol_per_m3_s=m, half_saturation_pa=pm),
                 description=text)


class Oxygen(_Model):
    """Steady oxygen partial pressure in tissue (PHYSICS.md §6; :mod:`nanosim.microenv.oxygen`)."""

    enabled: bool = Field(False, description="Solve for the oxygen field.")
    diffusivity_m2_per_s: PositiveDiffusivity = Field(
        _o2.O2_DIFFUSIVITY_M2_PER_S, description="Oxygen diffusivity D in tissue, m^2/s (2e-9; unconfirmed).")
    solubility_mol_per_m3_pa: PositiveSolubility = Field(
        _o2.O2_SOLUBILITY_MOL_PER_M3_PA,
        description="Oxygen solubility α, mol/(m^3·Pa) (1.39 uM/mmHg = 1.04e-5; unconfirmed).")
    wall_permeability_m_per_s: NonNegativeVelocity = Field(
        _o2.O2_WALL_PERMEABILITY_M_PER_S,
        description="Wall plus intravascular mass-transfer coefficient P_w, m/s: exchange P_w·S/V·α(P_b − P) "
        "(5e-4, an unconfirmed estimate after Hellums 1977).")
    blood_po2_pa: BloodPO2 = Field(default_factory=BloodPO2, description="Blood P_O2 per wall type of the [network].")
    cylinder_vessel_po2_pa: NonNegativePressure = Field(
        40.0 * MMHG_PA, description="P_O2 of the [[vessels]] cylinders in Pa: held in the lumen of fixed-wall "
        "cylinders, the blood value of exchange cylinders (40 mmHg; unconfirmed).")
    normal: OxygenRegion = _region(_o2.CONSUMPTION_MOL_PER_M3_S[0], _o2.HALF_SATURATION_PA[0],
                                   "Normal liver (M 2.2e-2 mol/(m^3·s) ≈ 3 ml O2/100 g/min; unconfirmed estimate).")
    tumour: OxygenRegion = _region(_o2.CONSUMPTION_MOL_PER_M3_S[1], _o2.HALF_SATURATION_PA[1],
                                   "Viable tumour (M 7.4e-3 mol/(m^3·s) = 1 ml O2/100 cm^3/min, Secomb et al. 2004; "
                                   "unconfirmed).")
    necrotic: OxygenRegion = _region(_o2.CONSUMPTION_MOL_PER_M3_S[2], _o2.HALF_SATURATION_PA[2],
                                     "Necrotic core (no consumption).")
    boundary_po2_pa: Optional[NonNegativePressure] = Field(
        None, description="P_O2 held on the box faces in Pa; none (default): no-flux faces.")
    hypoxia_threshold_pa: NonNegativePressure = Field(
        _o2.HYPOXIA_THRESHOLD_PA, description="Tissue below this P_O2 counts as hypoxic, Pa (10 mmHg; unconfirmed).")
    tolerance: float = Field(1e-9, gt=0, lt=1, description="Relative residual at which the Newton solve stops.")

    def describe(self) -> str:
        if not self.enabled:
            return "oxygen: off"
        walls = "no-flux walls" if self.boundary_po2_pa is None else f"walls held at {_mmhg(self.boundary_po2_pa)}"
        head = (f"oxygen: D {format_quantity(self.diffusivity_m2_per_s, 'diffusivity')}, "
                f"α {self.solubility_mol_per_m3_pa * MMHG_PA * 1e3:.4g} µM/mmHg, "
                f"P_w {format_quantity(self.wall_permeability_m_per_s, 'velocity')}, {walls}, "
                f"hypoxic < {_mmhg(self.hypoxia_threshold_pa)}")
        return head + "\n" + _tree([self.blood_po2_pa.describe(), f"cylinders {_mmhg(self.cylinder_vessel_po2_pa)}",
                                    f"normal: {self.normal.describe()}", f"tumour: {self.tumour.describe()}",
                                    f"necrotic: {self.necrotic.describe()}"])


# --------------------------------------------------------------------------------------------
# pH

def _ph_field(default, text):
    return Field(default, ge=0, le=14, description=text)


class PrescribedPH(_Model):
    """pHe = far + (near − far)·exp(−d/λ) in tumour, d the distance to the nearest vessel wall."""

    normal_ph: float = _ph_field(_ph.NORMAL_EXTRACELLULAR_PH, "Normal liver pHe (7.4, PHYSICS.md §6).")
    tumour_near_vessel_ph: float = _ph_field(_ph.TUMOUR_NEAR_VESSEL_PH, "Tumour pHe at a vessel wall (7.2; unconfirmed).")
    tumour_far_ph: float = _ph_field(
        _ph.TUMOUR_FAR_PH, "Tumour pHe far from vessels (6.7, within the 6.5–7.0 of reviews, PHYSICS.md §6; unconfirmed).")
    decay_length_m: PositiveLength = Field(
        _ph.PH_DECAY_LENGTH_M, description="Decay length λ in m (100 µm; unconfirmed, after Helmlinger et al. 1997).")
    necrotic_ph: Optional[float] = Field(
        None, ge=0, le=14, description="Necrotic-core pHe; none (default): tumour_far_ph (unconfirmed).")

    def describe(self) -> str:
        nec = "" if self.necrotic_ph is None else f", necrotic {self.necrotic_ph:g}"
        return (f"prescribed: normal {self.normal_ph:g}, tumour {self.tumour_near_vessel_ph:g} at vessels → "
                f"{self.tumour_far_ph:g} (λ {format_quantity(self.decay_length_m, 'length')}){nec}")


class PHRegion(_Model):
    """Acid production and vascular removal in one tissue region (Gatenby & Gawlinski 1996)."""

    cell_density_per_m3: NonNegativeNumberDensity = Field(description="Acid-producing cells per volume ρ, 1/m^3.")
    removal_rate_per_s: NonNegativeRate = Field(description="Vascular removal rate d₃ in 1/s.")

    def describe(self) -> str:
        return f"ρ {self.cell_density_per_m3:.3g} 1/m³, d₃ {format_quantity(self.removal_rate_per_s, 'rate')}"


def _ph_region(i: int, text: str):
    return Field(default_factory=lambda: PHRegion(cell_density_per_m3=_ph.CELL_DENSITY_PER_M3[i],
                                                  removal_rate_per_s=_ph.PROTON_REMOVAL_RATE_PER_S[i]),
                 description=text)


class ReactionDiffusionPH(_Model):
    """Steady proton reaction–diffusion (Gatenby & Gawlinski 1996; PHYSICS.md §6)."""

    diffusivity_m2_per_s: NonNegativeDiffusivity = Field(
        _ph.PROTON_DIFFUSIVITY_M2_PER_S, description="Buffered proton diffusivity D_H, m^2/s (5e-6 cm^2/s, PHYSICS.md §6).")
    production_mol_per_cell_s: NonNegativeAmountRate = Field(
        _ph.PROTON_PRODUCTION_MOL_PER_CELL_S,
        description="Acid production per cell r₃, mol/s (2.2e-17 M·cm^3/s = 2.2e-20 mol/s, PHYSICS.md §6).")
    normal: PHRegion = _ph_region(0, "Normal liver (no production; d₃ 1.1e-4 1/s).")
    tumour: PHRegion = _ph_region(1, "Viable tumour (ρ 5e7 cells/cm^3, d₃ 1.1e-4 1/s, PHYSICS.md §6).")
    necrotic: PHRegion = _ph_region(2, "Necrotic core (no production, no vascular removal; an assumption).")
    wall_permeability_m_per_s: NonNegativeVelocity = Field(
        0.0, description="Proton exchange through vessel walls P_H in m/s, at P_H·S/V (0: removal by d₃ only).")
    hypoxia_gain: float = Field(
        1.0, ge=0, description="Production factor at anoxia G in 1 + (G − 1)·P_h/(P_h + P_O2) (1 = off; needs "
        "[oxygen]; unconfirmed form).")
    hypoxia_half_pa: NonNegativePressure = Field(
        5.0 * MMHG_PA, description="P_h of the hypoxia factor, Pa (5 mmHg; unconfirmed).")

    def describe(self) -> str:
        hyp = "" if self.hypoxia_gain == 1 else f", hypoxia gain {self.hypoxia_gain:g} (P_h {_mmhg(self.hypoxia_half_pa)})"
        return (f"reaction–diffusion: D_H {format_quantity(self.diffusivity_m2_per_s, 'diffusivity')}, "
                f"r₃ {self.production_mol_per_cell_s:.3g} mol/s per cell, tumour {self.tumour.describe()}{hyp}")


class CompartmentPH(_Model):
    """Intracellular and endosomal pH (PHYSICS.md §6; endosomal values unconfirmed)."""

    intracellular_ph: float = _ph_field(_ph.HEPATOCYTE_INTRACELLULAR_PH, "Hepatocyte cytosol (7.30 ± 0.06).")
    early_endosome_ph: float = _ph_field(_ph.EARLY_ENDOSOME_PH, "Early endosome (6.0–6.5; unconfirmed).")
    late_endosome_ph: float = _ph_field(_ph.LATE_ENDOSOME_PH, "Late endosome (5.0–6.0; unconfirmed).")
    lysosome_ph: float = _ph_field(_ph.LYSOSOME_PH, "Lysosome (4.5–5.0; unconfirmed).")

    def values(self) -> dict:
        """``{compartment: pH}`` as :func:`nanosim.microenv.ph.compartment_ph` takes it."""
        return {"intracellular": self.intracellular_ph, "early_endosome": self.early_endosome_ph,
                "late_endosome": self.late_endosome_ph, "lysosome": self.lysosome_ph}

    def describe(self) -> str:
        return "compartments: " + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in self.values().items())


class PH(_Model):
    """Extracellular pH field and compartment pH (PHYSICS.md §6; :mod:`nanosim.microenv.ph`)."""

    enabled: bool = Field(False, description="Compute the extracellular pH field.")
    kind: Literal["prescribed", "reaction_diffusion"] = Field(
        "prescribed", description='"prescribed": a function of region and distance to vessels; '
        '"reaction_diffusion": steady proton production, diffusion and removal.')
    blood_ph: float = _ph_field(_ph.BLOOD_PH, "Blood pH (7.4): lumen voxels and the removal target.")
    prescribed: PrescribedPH = Field(default_factory=PrescribedPH, description="Parameters of kind = \"prescribed\".")
    reaction_diffusion: ReactionDiffusionPH = Field(
        default_factory=ReactionDiffusionPH, description="Parameters of kind = \"reaction_diffusion\".")
    compartments: CompartmentPH = Field(default_factory=CompartmentPH, description="Intracellular and endosomal pH.")

    def describe(self) -> str:
        if not self.enabled:
            return f"pH: off; {self.compartments.describe()}"
        model = self.prescribed if self.kind == "prescribed" else self.reaction_diffusion
        return f"pH: blood {self.blood_ph:g}\n" + _tree([model.describe(), self.compartments.describe()])
