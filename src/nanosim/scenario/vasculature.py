"""Scenario models of the vessel network, blood flow and interstitial fluid (PHYSICS.md §2–4).

A scenario may carry a ``[network]`` table (one of the kinds below), a ``[blood_flow]`` table
(viscosity law, haematocrit) and an ``[interstitial]`` table (Starling exchange, Darcy flow and
lymphatics per region). Pressures accept ``"15.6 mmHg"`` or Pa; hydraulic conductivities
``"4.13e-8 cm^2/(mmHg*s)"``; surface densities ``"200 1/cm"``.

Defaults marked *unconfirmed* in PHYSICS.md are overridable defaults, labelled so in their
descriptions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, model_validator

from nanosim.units import format_quantity, format_vector, quantity

from .schema_base import Count, PositiveLength, UnitFraction, Vec3Length, _Model, nanosim_error

MMHG_PA = 133.322387415
Pressure = quantity("pressure")
NonNegativePressure = quantity("pressure", ge=0)
PositiveViscosity = quantity("viscosity", gt=0)
NonNegativeInverseLength = quantity("inverse length", ge=0)
PositiveHydraulicConductivity = quantity("hydraulic conductivity", gt=0)
NonNegativeHydraulicPermeability = quantity("hydraulic permeability", ge=0)
NonNegativeLymphatic = quantity("lymphatic coefficient", ge=0)
Fraction01 = quantity("dimensionless", ge=0, le=1)

WallName = Literal["artery", "vein", "portal", "capillary", "sinusoid", "tumour"]


# --------------------------------------------------------------------------------------------
# networks


class StraightNetwork(_Model):
    """One straight vessel between two points, with pressures at its ends (validation case)."""

    kind: Literal["straight"] = "straight"
    start_m: Vec3Length = Field(description="Inlet end (x, y, z) in m.")
    end_m: Vec3Length = Field(description="Outlet end (x, y, z) in m.")
    radius_m: PositiveLength = Field(description="Lumen radius in m.")
    wall: WallName = Field("tumour", description="Wall type of the vessel.")
    segments: Count = Field(1, description="Number of collinear segments it is split into.")
    inlet_pressure_pa: Pressure = Field(
        40 * MMHG_PA, description="Blood pressure at start_m in Pa (default 40 mmHg, an arteriolar value; unconfirmed).")
    outlet_pressure_pa: Pressure = Field(
        15 * MMHG_PA, description="Blood pressure at end_m in Pa (default 15 mmHg; unconfirmed).")

    @model_validator(mode="after")
    def _check(self) -> "StraightNetwork":
        if tuple(self.start_m) == tuple(self.end_m):
            raise nanosim_error("must differ from start_m (a vessel needs a length)", "give two distinct ends", "end_m")
        return self

    def describe(self) -> str:
        return (f"straight vessel {format_vector(self.start_m, 'length')} → {format_vector(self.end_m, 'length')}, "
                f"radius {format_quantity(self.radius_m, 'length')}, {self.wall}, "
                f"{format_quantity(self.inlet_pressure_pa, 'pressure')} → {format_quantity(self.outlet_pressure_pa, 'pressure')}")


class BifurcationNetwork(_Model):
    """A parent vessel splitting into two daughters (symmetric when their radii and lengths match)."""

    kind: Literal["bifurcation"] = "bifurcation"
    inlet_m: Vec3Length = Field(description="Inlet node of the parent (x, y, z) in m.")
    direction: tuple[float, float, float] = Field((1.0, 0.0, 0.0), description="Direction of the parent (unit vector, any length).")
    parent_radius_m: PositiveLength = Field(description="Parent radius in m.")
    child_radii_m: tuple[PositiveLength, PositiveLength] = Field(description="Daughter radii in m.")
    lengths_m: tuple[PositiveLength, PositiveLength, PositiveLength] = Field(
        description="Lengths of parent, first and second daughter in m.")
    angle_deg: float = Field(60.0, gt=0, lt=180, description="Angle between the two daughters in degrees.")
    wall: WallName = Field("tumour", description="Wall type of the three vessels.")
    inlet_pressure_pa: Pressure = Field(40 * MMHG_PA, description="Pressure at the inlet in Pa (unconfirmed default 40 mmHg).")
    outlet_pressure_pa: Pressure = Field(15 * MMHG_PA, description="Pressure at both outlets in Pa (unconfirmed default 15 mmHg).")

    def describe(self) -> str:
        r1, r2 = (format_quantity(r, "length") for r in self.child_radii_m)
        return (f"bifurcation at {format_vector(self.inlet_m, 'length')}, radius "
                f"{format_quantity(self.parent_radius_m, 'length')} → {r1} + {r2}")


class LiverTumourNetwork(_Model):
    """A generated liver-tumour network (hepatic arterial tree, sinusoids, tumour vessels).

    ``parameters`` sets fields of :class:`nanosim.vasculature.generate.LiverTumourParams` by
    name, with units (``murray_exponent = 2.7``, ``sinusoid_radius_m = "5 um"``); every other
    field keeps its documented default. The tumour's centre and radius are taken from
    ``tissue.tumour`` and the box from ``grid``.
    """

    kind: Literal["liver_tumour"] = "liver_tumour"
    parameters: dict[str, Any] = Field(default_factory=dict, description="Generator parameters to override, by name.")

    def describe(self) -> str:
        extra = ", ".join(f"{k} = {v}" for k, v in self.parameters.items())
        return "generated liver tumour network" + (f" ({extra})" if extra else "")


class FileNetwork(_Model):
    """A network read from a file: node/segment tables (.csv, .json), VTK centrelines (.vtp, .vtk)
    with a radius array, or a Secomb-style network text file (.txt, .dat)."""

    kind: Literal["file"] = "file"
    path: str = Field(min_length=1, description="Network file, relative to the scenario file's folder.")
    length_unit: Literal["m", "mm", "um"] = Field(
        "m", description="Unit of coordinates and radii in VTK files (tables carry units in their column names).")
    radius_array: Optional[str] = Field(None, description="Name of the radius array in VTK files (default: guessed).")

    def describe(self) -> str:
        return f"network file {self.path}"


class MaskNetwork(_Model):
    """A binary vessel mask on the scenario's grid (.npy, .h5 with ``dataset``, .nii/.nii.gz)."""

    kind: Literal["mask"] = "mask"
    path: str = Field(min_length=1, description="Mask file, relative to the scenario file's folder.")
    dataset: Optional[str] = Field(None, description="Dataset name inside an HDF5 file.")
    wall: WallName = Field("tumour", description="Wall type given to every vessel voxel.")

    def describe(self) -> str:
        return f"vessel mask {self.path}" + (f" [{self.dataset}]" if self.dataset else "")


class UniformPerfusion(_Model):
    """No explicit vessels: each region has a homogeneous vessel surface density S/V.

    The uniformly perfused tumour of Baxter & Jain (1989); S/V tumour ≈ 200 cm⁻¹, normal ≈ 70 cm⁻¹
    (PHYSICS.md §2).
    """

    kind: Literal["uniform_perfusion"] = "uniform_perfusion"
    normal_surface_per_volume_per_m: NonNegativeInverseLength = Field(
        7000.0, description="S/V in normal liver in 1/m (70 1/cm, Baxter & Jain 1989).")
    tumour_surface_per_volume_per_m: NonNegativeInverseLength = Field(
        20000.0, description="S/V in viable tumour in 1/m (200 1/cm, Baxter & Jain 1989).")
    necrotic_surface_per_volume_per_m: NonNegativeInverseLength = Field(
        0.0, description="S/V in a necrotic core in 1/m (none by default).")
    wall: WallName = Field("tumour", description="Wall type reported for perfused voxels.")

    def describe(self) -> str:
        f = lambda v: format_quantity(v, "inverse length")  # noqa: E731
        return (f"uniform perfusion, S/V normal {f(self.normal_surface_per_volume_per_m)}, "
                f"tumour {f(self.tumour_surface_per_volume_per_m)}, necrotic {f(self.necrotic_surface_per_volume_per_m)}")


Network = Annotated[
    Union[StraightNetwork, BifurcationNetwork, LiverTumourNetwork, FileNetwork, MaskNetwork, UniformPerfusion],
    Field(discriminator="kind"),
]


class Voxelisation(_Model):
    """How the network becomes voxel maps."""

    samples_per_axis: Count = Field(4, le=16, description="Sub-voxel samples per axis for the vessel volume fraction.")
    search_radius_m: Optional[PositiveLength] = Field(
        None, description="Distance within which a tissue voxel is tied to its nearest segment; default 4 voxels.")


# --------------------------------------------------------------------------------------------
# blood flow


class BloodFlow(_Model):
    """Poiseuille flow in the network with the Pries viscosity law (PHYSICS.md §3)."""

    viscosity_law: Literal["in_vivo", "in_vitro", "plasma"] = Field(
        "in_vivo", description='"in_vivo" (Pries 1994), "in_vitro" (Pries 1992), or "plasma" (constant).')
    plasma_viscosity_pa_s: PositiveViscosity = Field(
        1.2e-3, description="Plasma viscosity in Pa·s (1.2 mPa·s; unconfirmed).")
    haematocrit: UnitFraction = Field(0.45, description="Discharge haematocrit H_D (constant unless phase_separation).")
    phase_separation: bool = Field(False, description="Split haematocrit at bifurcations (Pries 1990 plasma skimming).")

    def describe(self) -> str:
        ps = ", phase separation" if self.phase_separation else ""
        return f"{self.viscosity_law} viscosity, H_D {self.haematocrit:g}{ps}"


# --------------------------------------------------------------------------------------------
# interstitial fluid


class RegionFluid(_Model):
    """Fluid properties of one tissue region (Baxter & Jain 1989, PHYSICS.md §4)."""

    hydraulic_conductivity_m2_per_pa_s: PositiveHydraulicConductivity = Field(
        description="Interstitial hydraulic conductivity K in m²/(Pa·s).")
    wall_hydraulic_permeability_m_per_pa_s: NonNegativeHydraulicPermeability = Field(
        description="Vessel wall hydraulic permeability L_p in m/(Pa·s).")
    reflection_coefficient: Fraction01 = Field(description="Osmotic reflection coefficient σ_T.")
    interstitial_oncotic_pressure_pa: NonNegativePressure = Field(description="Interstitial oncotic pressure π_i in Pa.")
    lymphatic_coefficient_per_pa_s: NonNegativeLymphatic = Field(
        0.0, description="Lymphatic drainage L_pL S_L/V in 1/(Pa·s) (0: none, as in tumour).")


def _normal_fluid() -> RegionFluid:
    # Baxter & Jain 1989 via PHYSICS.md §4; normal K unconfirmed; lymphatics 1.33e-5 /(mmHg s)
    return RegionFluid(hydraulic_conductivity_m2_per_pa_s=8.53e-9 * 1e-4 / MMHG_PA,
                       wall_hydraulic_permeability_m_per_pa_s=0.36e-7 * 1e-2 / MMHG_PA,
                       reflection_coefficient=0.91, interstitial_oncotic_pressure_pa=10 * MMHG_PA,
                       lymphatic_coefficient_per_pa_s=1.33e-5 / MMHG_PA)


def _tumour_fluid() -> RegionFluid:
    return RegionFluid(hydraulic_conductivity_m2_per_pa_s=4.13e-8 * 1e-4 / MMHG_PA,
                       wall_hydraulic_permeability_m_per_pa_s=2.8e-7 * 1e-2 / MMHG_PA,
                       reflection_coefficient=0.82, interstitial_oncotic_pressure_pa=15 * MMHG_PA,
                       lymphatic_coefficient_per_pa_s=0.0)


class Interstitial(_Model):
    """Steady interstitial fluid pressure and velocity (Starling, Darcy, lymphatics)."""

    solve: bool = Field(False, description="Solve for the interstitial pressure and velocity.")
    vascular_pressure_pa: Union[Literal["network"], Pressure] = Field(
        15.6 * MMHG_PA,
        description='Vascular pressure p_v in Pa (15.6 mmHg, Baxter & Jain 1989), or "network" for the '
        "nearest segment's blood pressure from the flow solution.")
    vascular_oncotic_pressure_pa: NonNegativePressure = Field(
        20 * MMHG_PA, description="Plasma oncotic pressure π_v in Pa (20 mmHg, Stohrer 2000).")
    box_boundary: Literal["no_flux", "fixed"] = Field(
        "fixed", description='Box faces: "fixed" pressure (boundary_pressure_pa) or "no_flux".')
    boundary_pressure_pa: Pressure = Field(0.0, description="Pressure held on fixed box faces in Pa.")
    convect_drug: bool = Field(True, description="Carry the free drug with the interstitial velocity.")
    normal: RegionFluid = Field(default_factory=_normal_fluid, description="Normal liver (Baxter & Jain 1989; K unconfirmed).")
    tumour: RegionFluid = Field(default_factory=_tumour_fluid, description="Viable tumour (Baxter & Jain 1989).")
    necrotic: Optional[RegionFluid] = Field(None, description="Necrotic core; default: that of the tumour.")

    def describe(self) -> str:
        if not self.solve:
            return "not solved"
        pv = self.vascular_pressure_pa
        pv = "from the network" if pv == "network" else format_quantity(pv, "pressure")
        return f"solved, p_v {pv}, box {self.box_boundary}"
