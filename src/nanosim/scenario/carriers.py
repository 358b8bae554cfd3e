"""Scenario models of nanocarriers: the design, the body, the route, the particle method (PHYSICS.md §5, §10).

A scenario with carriers has four tables:

- ``[carrier]``: the design — size (and size distribution), material and surface, drug payload,
  imaging agent, blood clearance, behaviour in tissue. ``preset = "peg_liposome"`` starts from a
  preset of ``scenarios/carriers/`` and the other keys override it field by field.
- ``[body]``: the species (blood volume, blood flows) and the whole-tumour volume that the box's
  tumour stands for, which scales the box's amounts to % of the injected dose.
- ``[route]``: intravenous, hepatic arterial, or transarterial embolisation, with the dose.
- ``[particles]``: how many simulated particles, their time step, snapshots.

Wall pores for extravasation are a property of the vessels: ``[extravasation]``.
Every default that PHYSICS.md marks unconfirmed is labelled so in its description.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, model_validator

from nanosim.units import format_quantity, quantity

from .release import Release
from .schema_base import (Count, NonNegativeRate, NonNegativeVelocity, PositiveLength, PositiveTime, TimeStep,
                          _Model, _tree, nanosim_error)

PositiveAmount = quantity("amount", gt=0)
NonNegativeAmount = quantity("amount", ge=0)
PositiveMass = quantity("mass", gt=0)
PositiveVolume = quantity("volume", gt=0)
PositiveVolumeFlow = quantity("volume flow", gt=0)
Fraction = quantity("dimensionless", ge=0, le=1)
PositiveFraction = quantity("dimensionless", gt=0, le=1)
PositiveTemperature = quantity("temperature", gt=0)

MAGNETITE_DENSITY_KG_PER_M3 = 5170.0
"""Fe₃O₄ density, kg/m³ (5.17 g/cm³, PHYSICS.md §9)."""
MAGNETITE_MOLAR_MASS_KG_PER_MOL = 0.231533
"""Fe₃O₄ molar mass, kg/mol (3 Fe per formula unit)."""


# --------------------------------------------------------------------------------------------
# carrier design


class NoImaging(_Model):
    """No imaging agent."""

    kind: Literal["none"] = "none"

    def iron_mol_per_carrier(self) -> float:
        return 0.0

    def gadolinium_mol_per_carrier(self) -> float:
        return 0.0

    def describe(self) -> str:
        return "none"


class SpionImaging(_Model):
    """Iron oxide (magnetite) cores carried by each carrier, for T2/T2* MRI (PHYSICS.md §9)."""

    kind: Literal["spion"] = "spion"
    core_radius_m: PositiveLength = Field(description="Radius of one magnetite core in m (e.g. \"5 nm\").")
    cores_per_carrier: float = Field(gt=0, description="Mean number of cores per carrier.")

    def iron_mol_per_carrier(self) -> float:
        """Iron per carrier in mol: 3 Fe per Fe₃O₄ of the cores' volume at 5.17 g/cm³."""
        v = 4.0 / 3.0 * 3.141592653589793 * self.core_radius_m**3
        return 3.0 * self.cores_per_carrier * v * MAGNETITE_DENSITY_KG_PER_M3 / MAGNETITE_MOLAR_MASS_KG_PER_MOL

    def gadolinium_mol_per_carrier(self) -> float:
        return 0.0

    def describe(self) -> str:
        return (f"SPION, {self.cores_per_carrier:g} cores of {format_quantity(self.core_radius_m, 'length')} "
                f"({self.iron_mol_per_carrier():.3g} mol Fe per carrier)")


class GadoliniumImaging(_Model):
    """Gadolinium chelate carried by each carrier, for T1 MRI (PHYSICS.md §9)."""

    kind: Literal["gadolinium"] = "gadolinium"
    gadolinium_per_carrier_mol: PositiveAmount = Field(description="Gd per carrier in mol.")

    def iron_mol_per_carrier(self) -> float:
        return 0.0

    def gadolinium_mol_per_carrier(self) -> float:
        return self.gadolinium_per_carrier_mol

    def describe(self) -> str:
        return f"gadolinium, {self.gadolinium_per_carrier_mol:.3g} mol per carrier"


Imaging = Annotated[Union[NoImaging, SpionImaging, GadoliniumImaging], Field(discriminator="kind")]


class BloodClearance(_Model):
    """Carriers in blood: a biexponential plasma curve and the share taken up by the liver.

    The curve after a bolus, ``C(t) ∝ f e^(−ln2 t/t½,fast) + (1 − f) e^(−ln2 t/t½,slow)``, is turned
    into a two-compartment model (central = plasma) whose elimination is split between uptake by
    liver macrophages (Kupffer cells) and all other clearance.
    """

    half_life_fast_s: PositiveTime = Field(description="Distribution half-life in s.")
    half_life_slow_s: PositiveTime = Field(description="Terminal half-life in s.")
    fast_fraction: Fraction = Field(description="Share f of the fast phase in the bolus curve (0: one exponential).")
    liver_uptake_fraction: Fraction = Field(
        0.8, description="Share of elimination taken up by liver macrophages (Kupffer cells take up most "
        "carriers passing the liver, Tsoi 2016; 0.8 is an unconfirmed default).")

    @model_validator(mode="after")
    def _order(self) -> "BloodClearance":
        if self.fast_fraction > 0 and self.half_life_fast_s > self.half_life_slow_s:
            raise nanosim_error("must not be longer than half_life_slow_s",
                                "swap the two half-lives (fast ≤ slow)", "half_life_fast_s")
        return self

    def describe(self) -> str:
        return (f"t½ {format_quantity(self.half_life_fast_s, 'time')} ({100 * self.fast_fraction:.3g} %) and "
                f"{format_quantity(self.half_life_slow_s, 'time')}, liver macrophages take "
                f"{100 * self.liver_uptake_fraction:.3g} % of elimination")


class RegionCarrier(_Model):
    """Carrier behaviour in one tissue region: hindrance and first-order rates (PHYSICS.md §5)."""

    ecm_hindrance: Fraction = Field(
        1.0, description="f_ECM = D_eff/D₀ in this region's extracellular matrix (tumour ECM slows large "
        "particles 5–10×, Pluen 2001, qualitative).")
    binding_rate_per_s: NonNegativeRate = Field(0.0, description="Binding to cells/matrix, 1/s (PHYSICS.md §5: "
                                                "placeholder range 1e-5–1e-3, fitted per formulation).")
    unbinding_rate_per_s: NonNegativeRate = Field(0.0, description="Unbinding, 1/s.")
    internalisation_rate_per_s: NonNegativeRate = Field(
        0.0, description="Internalisation of free carriers by cells, 1/s (placeholder range 1e-5–1e-3).")
    bound_internalisation_rate_per_s: NonNegativeRate = Field(
        0.0, description="Internalisation of bound carriers, 1/s (placeholder range 1e-5–1e-3).")
    lymphatic_clearance_rate_per_s: NonNegativeRate = Field(
        0.0, description="Drainage of free carriers by lymphatics, 1/s (normal tissue; tumours lack "
        "functional lymphatics).")

    def describe(self) -> str:
        return (f"f_ECM {self.ecm_hindrance:g}, bind {self.binding_rate_per_s:g}/s, unbind {self.unbinding_rate_per_s:g}/s, "
                f"internalise {self.internalisation_rate_per_s:g}/s (bound {self.bound_internalisation_rate_per_s:g}/s), "
                f"lymph {self.lymphatic_clearance_rate_per_s:g}/s")


class Carrier(_Model):
    """A carrier design (``preset`` plus field-by-field overrides)."""

    preset: Optional[str] = Field(None, description="Name of a preset in scenarios/carriers/ to start from.")
    name: str = Field("carrier", min_length=1, description="Name, for reports.")
    material: Literal["lipid", "solid_lipid", "polymer_micelle", "plga", "iron_oxide", "nanocomposite"] = Field(
        "lipid", description="Material of the carrier.")
    surface: Literal["bare", "peg", "galactose", "folate", "other"] = Field(
        "peg", description="Surface coating (sets blood half-life and liver uptake through [carrier.blood]).")
    radius_m: PositiveLength = Field(description="Hydrodynamic radius in m (median of the size distribution).")
    radius_gsd: float = Field(1.0, ge=1.0, le=5.0, description="Geometric standard deviation of a log-normal "
                              "size distribution (1: all carriers the same size).")
    size_classes: Count = Field(1, le=16, description="Size classes that represent the distribution "
                                "(equal-number quantiles); 1 when radius_gsd = 1.")
    drug_per_carrier_mol: NonNegativeAmount = Field(description="Drug payload per carrier in mol.")
    loading_efficiency: Fraction = Field(
        1.0, description="Share of the drug offered that ended up in carriers (reported; a dose given as "
        "drug_offered_mg_per_kg is multiplied by it).")
    imaging: Imaging = Field(default_factory=NoImaging, description="Imaging agent per carrier.")
    blood: BloodClearance = Field(description="Blood clearance and liver uptake.")
    normal: RegionCarrier = Field(default_factory=RegionCarrier, description="Behaviour in normal liver tissue.")
    tumour: RegionCarrier = Field(default_factory=RegionCarrier, description="Behaviour in viable tumour.")
    necrotic: Optional[RegionCarrier] = Field(None, description="Behaviour in the necrotic core; default: tumour's.")
    release: Optional[Release] = Field(
        None, description="Drug release from the carriers (PHYSICS.md §7); none: the payload stays in the carriers.")

    @model_validator(mode="after")
    def _sizes(self) -> "Carrier":
        if self.radius_gsd == 1.0 and self.size_classes > 1:
            raise nanosim_error("more than one size class needs a size distribution",
                                "set radius_gsd > 1 or size_classes = 1", "size_classes")
        return self

    def describe(self) -> str:
        size = format_quantity(self.radius_m, "length")
        if self.radius_gsd > 1:
            size += f" (log-normal, GSD {self.radius_gsd:g}, {self.size_classes} classes)"
        head = f"{self.name}" + (f" (preset {self.preset})" if self.preset else "")
        head += f": {self.material}, {self.surface} surface, radius {size}, {self.drug_per_carrier_mol:.3g} mol drug"
        return head + "\n" + _tree([f"imaging: {self.imaging.describe()}", f"blood: {self.blood.describe()}",
                                    f"release: {self.release.describe() if self.release else 'none'}",
                                    f"normal: {self.normal.describe()}", f"tumour: {self.tumour.describe()}"])


# --------------------------------------------------------------------------------------------
# body


class Body(_Model):
    """The animal (or patient) and the tumour the simulated box is a sample of.

    Physiological values come from :mod:`nanosim.carriers.systemic` (Davies & Morris 1993) and
    can be overridden here.
    """

    species: Literal["mouse", "rat", "rabbit", "human"] = Field("mouse", description="Species preset.")
    body_mass_kg: Optional[PositiveMass] = Field(None, description="Body mass in kg (default: the species').")
    blood_volume_m3: Optional[PositiveVolume] = Field(None, description="Blood volume in m³ (default: the species').")
    hepatic_arterial_flow_m3_per_s: Optional[PositiveVolumeFlow] = Field(
        None, description="Hepatic arterial blood flow in m³/s (default: the species').")
    tumour_volume_m3: Optional[PositiveVolume] = Field(
        None, description="Volume of the whole tumour the box's tumour stands for, in m³ (e.g. \"300 mm^3\"; "
        "100–500 mm³ in a 20–25 g mouse): % injected dose is the box's tumour amount scaled to it, layer by "
        "depth (nanosim.geometry.tissue.whole_tumour_weights).")

    def describe(self) -> str:
        tumour = f", tumour {self.tumour_volume_m3 * 1e9:.4g} mm³" if self.tumour_volume_m3 is not None else ""
        return f"{self.species}{tumour}"


# --------------------------------------------------------------------------------------------
# routes


class _Dose(_Model):
    dose_carriers: Optional[PositiveAmount] = Field(
        None, description="Dose as an amount of carriers in mol (1 mol = 6.022e23 carriers).")
    dose_drug_mg_per_kg: Optional[quantity("dimensionless", gt=0)] = Field(  # type: ignore[valid-type]
        None, description="Dose as encapsulated drug per body mass, mg/kg.")
    infusion_duration_s: quantity("time", ge=0) = Field(  # type: ignore[valid-type]
        0.0, description="Infusion duration in s (0: bolus).")

    @model_validator(mode="after")
    def _one_dose(self) -> "_Dose":
        if (self.dose_carriers is None) == (self.dose_drug_mg_per_kg is None):
            raise nanosim_error("give exactly one of dose_carriers and dose_drug_mg_per_kg",
                                'e.g. dose_drug_mg_per_kg = 5', "dose_carriers")
        return self


class IntravenousRoute(_Dose):
    """Intravenous bolus or infusion into the systemic blood."""

    kind: Literal["intravenous"] = "intravenous"

    def describe(self) -> str:
        return "intravenous " + ("bolus" if self.infusion_duration_s == 0 else
                                 f"infusion over {format_quantity(self.infusion_duration_s, 'time')}")


class HepaticArterialRoute(_Dose):
    """Hepatic arterial infusion: a first pass through the liver and tumour, then the systemic pool."""

    kind: Literal["hepatic_arterial"] = "hepatic_arterial"

    def describe(self) -> str:
        return "hepatic arterial " + ("bolus" if self.infusion_duration_s == 0 else
                                      f"infusion over {format_quantity(self.infusion_duration_s, 'time')}")


class EmbolisationRoute(_Dose):
    """Transarterial embolisation with microspheres that lodge in narrow arterial segments."""

    kind: Literal["embolisation"] = "embolisation"
    recompute_flow_every: Count = Field(
        1, description="Recompute the blood flow after this many newly occluded segments (1: after each).")

    def describe(self) -> str:
        return "transarterial embolisation"


Route = Annotated[Union[IntravenousRoute, HepaticArterialRoute, EmbolisationRoute], Field(discriminator="kind")]


# --------------------------------------------------------------------------------------------
# wall pores


class WallPores(_Model):
    """Pores of one wall type: P = γ H(λ) D₀ / L (PHYSICS.md §5)."""

    pore_area_fraction: Fraction = Field(description="γ: pore area per wall area (with "
                                         "effective_permeability_m_per_s: the reference density the calibration scales).")
    wall_thickness_m: PositiveLength = Field(description="L: pore length (wall thickness) in m.")
    pore_radius_m: Optional[PositiveLength] = Field(
        None, description="Pore radius in m; default: the network's per-segment pore radius.")
    filtration_share: Optional[Fraction] = Field(
        None, description="Share s of the wall's fluid filtration J_v that passes through these pores (two-pore "
        "wall; it carries the carriers by convection). Default: from the wall's reflection of plasma proteins "
        "(σ_T of the tissue region) and small_pore_protein_reflection σ_S, s = (σ_S − σ_T)/σ_S (the "
        "carriers' pores pass plasma proteins freely, so σ_T = (1 − s) σ_S); without σ_S, s = 1 − σ_T, the "
        "bound for small pores that reflect proteins completely. 1 puts all filtration through them. With "
        "effective_permeability_m_per_s it is scaled with γ.")
    small_pore_protein_reflection: Optional[PositiveFraction] = Field(
        None, description="σ_S: reflection coefficient of the wall's other (small-pore) pathway for plasma "
        "proteins, which sets the default filtration_share; none: 1 (the bound s = 1 − σ_T).")
    effective_permeability_m_per_s: Optional[NonNegativeVelocity] = Field(
        None, description="Measured in-vivo permeability of these walls, m/s, to a particle of radius "
        "effective_permeability_radius_m: the whole carrier flux per wall area per plasma concentration, "
        "convection included (what an intravital measurement of extravasation reports). When given (> 0), the "
        "number of large pores is calibrated to it: γ and the filtration share, both proportional to that "
        "number, are scaled together so that the area-mean effective permeability P·B(−Pe) of the box's walls "
        "of this type to that particle, with their own J_v, equals it (nanosim.carriers.design."
        "calibrate_wall_pores). 0 or absent: γ and the share as given.")
    effective_permeability_radius_m: PositiveLength = Field(
        45e-9, description="Radius in m of the particle of effective_permeability_m_per_s (default 45 nm, the "
        "90 nm particles of PHYSICS.md §5).")

    def describe(self) -> str:
        r = "network" if self.pore_radius_m is None else format_quantity(self.pore_radius_m, "length")
        if self.filtration_share is not None:
            share = f"{self.filtration_share:.3g}"
        elif self.small_pore_protein_reflection is not None:
            share = f"(σ_S − σ_T)/σ_S, σ_S {self.small_pore_protein_reflection:.3g}"
        else:
            share = "1 − σ_T"
        text = (f"γ {self.pore_area_fraction:.3g}, L {format_quantity(self.wall_thickness_m, 'length')}, r_p {r}, "
                f"share of J_v {share}")
        if self.effective_permeability_m_per_s:
            text += (f"; γ and share scaled to an effective permeability of "
                     f"{format_quantity(self.effective_permeability_m_per_s, 'velocity')} for r "
                     f"{format_quantity(self.effective_permeability_radius_m, 'length')}")
        return text


def _tumour_pores() -> WallPores:
    # The permeability measured in vivo for 90 nm particles, 1.1–2e-7 mm/s (Dogra 2020, PHYSICS.md
    # §5), is the whole flux per wall area per plasma concentration that the measurement saw,
    # convection through the wall included. The walls reproduce it: the number of large pores is
    # calibrated so that the box's tumour walls, with their own J_v, have an area-mean effective
    # permeability of 1.5e-10 m/s (the middle of that range) to a particle of radius 45 nm.
    # The reference density the calibration scales: γ/L = 90 /m, at which a 45 nm particle (D₀
    # 4.2e-12 m²/s in plasma) through a 250 nm pore (λ 0.18, H 0.397) diffuses at P = 1.5e-10 m/s,
    # and at which the rest of a tumour wall (its endothelium between the large pores) reflects
    # plasma proteins as a normal wall does, σ_S = 0.91 (Baxter & Jain 1989, PHYSICS.md §4): with
    # the tumour's σ_T 0.82, s = (0.91 − 0.82)/0.91 = 0.099 of J_v passes the large pores.
    # Unconfirmed defaults; effective_permeability_m_per_s = 0 keeps γ and s as given.
    return WallPores(pore_area_fraction=9.0e-5, wall_thickness_m=1e-6, small_pore_protein_reflection=0.91,
                     effective_permeability_m_per_s=1.5e-10, effective_permeability_radius_m=45e-9)


def _sinusoid_pores() -> WallPores:
    # fenestrae cover 6–8 % of the sinusoidal surface and the endothelium is ≈ 0.1 µm thick
    # (Braet & Wisse 2002); radius from the network (default 70 nm, fenestrae 105–175 nm across)
    return WallPores(pore_area_fraction=0.07, wall_thickness_m=0.1e-6)


class Extravasation(_Model):
    """Wall pores per wall type; walls not listed (artery, vein, portal, capillary) have none."""

    tumour: WallPores = Field(default_factory=_tumour_pores,
                              description="Tumour vessels (large pores calibrated to Dogra 2020's in-vivo P for 90 nm particles; "
                              "unconfirmed).")
    sinusoid: WallPores = Field(default_factory=_sinusoid_pores,
                                description="Fenestrated liver sinusoids (Braet & Wisse 2002; unconfirmed).")
    capillary: Optional[WallPores] = Field(None, description="Continuous capillaries (default: no pores).")
    sinusoid_bounded_by_clearance: bool = Field(
        True, description="Cap the sinusoids' permeability to carriers so that the box's liver, taken as a "
        "sample of the body's, clears them from the plasma no faster than the liver's share of the carrier's "
        "blood clearance (nanosim.carriers.design.sinusoid_permeability_bound); false: the pore model alone.")
    temperature_k: PositiveTemperature = Field(310.15, description="Temperature in K (37 °C).")
    plasma_viscosity_pa_s: quantity("viscosity", gt=0) = Field(  # type: ignore[valid-type]
        1.2e-3, description="Viscosity of plasma in the pores, Pa·s (unconfirmed).")
    water_viscosity_pa_s: quantity("viscosity", gt=0) = Field(  # type: ignore[valid-type]
        0.692e-3, description="Viscosity of interstitial water, Pa·s (PHYSICS.md §5: 0.692 mPa·s at 37 °C).")

    def describe(self) -> str:
        return _tree([f"tumour: {self.tumour.describe()}", f"sinusoid: {self.sinusoid.describe()}"])


# --------------------------------------------------------------------------------------------
# particle method


class Snapshots(_Model):
    """Particle snapshots in the results file."""

    every_s: Optional[PositiveTime] = Field(None, description="Simulated time between snapshots; default output.every_s.")
    max_particles: int = Field(10000, ge=0, description="At most this many particles per snapshot (subsampled by id).")


class Particles(_Model):
    """How the carriers are simulated: particle numbers, time step, random steps."""

    tissue_particles: Count = Field(
        100000, description="Expected number of tissue particles at the end (sets the weight of one tissue particle).")
    vessel_packets_per_step: Count = Field(
        500, description="Intravascular packets injected into the box's inlets per step.")
    max_particles: Count = Field(5_000_000, description="Capacity of the particle arrays.")
    dt_s: TimeStep = Field("auto", description='Particle time step in s; "auto": the rms Brownian step in tissue '
                           "is at most half a voxel and every first-order rate times dt is at most 0.1.")
    dt_after_infusion_s: Optional[TimeStep] = Field(
        None, description='Particle time step once the infusion (route.infusion_duration_s) is over, in s, or "auto"; '
        "default: dt_s throughout. A short step while carriers or spheres enter, a longer one after (e.g. "
        "embolisation: the spheres are lodged and only the drug field moves).")
    step_distribution: Literal["gaussian", "uniform"] = Field(
        "gaussian", description="Brownian step: exact Gaussian, or variance-matched uniform (faster).")
    reflect_at_vessel_walls: bool = Field(
        True, description="Tissue particles cannot enter vessel lumens (a step into a lumen voxel is rejected).")
    snapshots: Snapshots = Field(default_factory=Snapshots, description="Particle snapshots.")

    def describe(self) -> str:
        dt = self.dt_s if self.dt_s == "auto" else format_quantity(self.dt_s, "time")
        return (f"{self.tissue_particles} tissue particles expected, {self.vessel_packets_per_step} packets/step, "
                f"dt {dt}, {self.step_distribution} steps")


__all__ = ["Carrier", "Body", "Route", "Extravasation", "Particles", "WallPores", "RegionCarrier",
           "BloodClearance", "IntravenousRoute", "HepaticArterialRoute", "EmbolisationRoute"]
