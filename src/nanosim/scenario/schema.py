"""The scenario schema: one pydantic model tree describing a simulation.

Every model forbids unknown keys, physical values are SI floats with the unit in the key, and
values may be given with units as strings (``voxel_size_m = "20 um"``), converted on
validation (see :mod:`nanosim.units`). Alternatives are discriminated unions keyed on ``kind``.

Load scenarios with :func:`nanosim.scenario.load_scenario`, which also runs the cross-field
checks (stop time against time step, memory, objects inside the box) and turns every problem
into one :class:`~nanosim.scenario.errors.ScenarioError`. ``Scenario.model_validate`` alone
checks each field but not those relations.

A minimal scenario in TOML::

    [grid]
    shape = [64, 64, 1]
    voxel_size_m = "10 um"

    [drug.normal]
    diffusivity_m2_per_s = "2e-10 m^2/s"

    [time]
    stop_s = "1 h"
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    Strict,
    field_validator,
    model_validator,
)

from nanosim.units import format_number, format_quantity, format_vector, quantity

__all__ = [
    "SCHEMA_VERSION",
    "Scenario",
    "Grid",
    "Boundaries",
    "BoundaryCondition",
    "Tissue",
    "NoTumour",
    "SphereTumour",
    "EllipsoidTumour",
    "Tumour",
    "CylinderVessel",
    "Vessel",
    "Drug",
    "RegionDrug",
    "ConstantPlasma",
    "ExponentialPlasma",
    "TablePlasma",
    "Plasma",
    "UniformInitial",
    "GaussianInitial",
    "InitialCondition",
    "Transport",
    "TimeSettings",
    "OutputSettings",
    "OUTPUT_FIELDS",
]

from .schema_base import (  # noqa: E402  (shared with the vasculature models)
    OUTPUT_FIELDS, SCHEMA_VERSION, Count, PositiveAmount, NonNegativeConcentration, NonNegativeDiffusivity,
    NonNegativeLength, NonNegativeRate, NonNegativeVelocity, PositiveLength, PositiveTime, Time,
    TimeStep, UnitFraction, Vec3Length, Vec3PositiveLength, Vec3Velocity, _Model, _tree,
    nanosim_error,
)

# --------------------------------------------------------------------------------------------
# grid


class BoundaryCondition(_Model):
    """Condition for the drug fields on both faces of the box along one axis.

    ``no_flux``: zero normal gradient (sealed face). ``periodic``: the two faces join.
    ``fixed``: Dirichlet value ``value_mol_per_m3`` on both faces.
    """

    kind: Literal["no_flux", "periodic", "fixed"] = Field(
        "no_flux", description='"no_flux" (sealed face), "periodic" (faces join) or "fixed" (Dirichlet value).'
    )
    value_mol_per_m3: Optional[NonNegativeConcentration] = Field(
        None, description="Free-drug concentration on the faces in mol/m^3; only, and always, for kind = \"fixed\"."
    )

    @model_validator(mode="after")
    def _value_matches_kind(self) -> "BoundaryCondition":
        if self.kind == "fixed" and self.value_mol_per_m3 is None:
            raise nanosim_error(
                'a "fixed" boundary needs a value', 'set value_mol_per_m3, e.g. {kind = "fixed", value_mol_per_m3 = 0}',
                "value_mol_per_m3",
            )
        if self.kind != "fixed" and self.value_mol_per_m3 is not None:
            raise nanosim_error(
                f'a "{self.kind}" boundary takes no value', 'remove value_mol_per_m3 or use kind = "fixed"',
                "value_mol_per_m3",
            )
        return self

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {format_quantity(self.value_mol_per_m3, 'concentration')}"
        return self.kind


def _boundary_condition_input(value: Any) -> Any:
    if isinstance(value, str):
        return {"kind": value}
    return value


_AxisBoundary = Annotated[
    BoundaryCondition,
    BeforeValidator(
        _boundary_condition_input, json_schema_input_type=Union[Literal["no_flux", "periodic"], BoundaryCondition]
    ),
]


class Boundaries(_Model):
    """Boundary conditions of the box, one per axis (x, y, z), each applying to both faces.

    In a scenario file either one string for every axis (``boundary = "periodic"``) or a table
    ``{x = "no_flux", y = "no_flux", z = "periodic"}``; missing axes are ``no_flux``. A periodic
    axis of one voxel makes a 2-D problem.
    """

    x: _AxisBoundary = Field(default_factory=BoundaryCondition, description="Condition on the two x faces.")
    y: _AxisBoundary = Field(default_factory=BoundaryCondition, description="Condition on the two y faces.")
    z: _AxisBoundary = Field(default_factory=BoundaryCondition, description="Condition on the two z faces.")

    def axis(self, index: int) -> BoundaryCondition:
        """Condition along physical axis `index` (x=0, y=1, z=2)."""
        return (self.x, self.y, self.z)[index]

    def describe(self) -> str:
        return f"x {self.x.describe()}, y {self.y.describe()}, z {self.z.describe()}"


def _boundaries_input(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, dict) and "kind" in value):
        return {"x": value, "y": value, "z": value}
    return value


class Grid(_Model):
    """The box of tissue, divided into cubic voxels.

    Voxels are typically 5–20 µm (PHYSICS.md §2). Arrays inside the code have shape
    (nz, ny, nx), index [z, y, x]; here ``shape`` is given as (nx, ny, nz). Voxel centres lie at
    ``origin_m + (i + 1/2) * voxel_size_m`` along each axis, so the box spans
    ``[origin_m, origin_m + shape * voxel_size_m]``.
    """

    shape: tuple[Count, Count, Count] = Field(
        description="Number of voxels (nx, ny, nz) along x, y, z."
    )
    voxel_size_m: PositiveLength = Field(description="Edge of a cubic voxel in m, typically 5–20 µm (PHYSICS.md §2).")
    origin_m: Vec3Length = Field((0.0, 0.0, 0.0), description="Position of the box's lower corner (x, y, z) in m.")
    boundary: Annotated[
        Boundaries,
        BeforeValidator(
            _boundaries_input, json_schema_input_type=Union[Literal["no_flux", "periodic"], Boundaries]
        ),
    ] = Field(
        default_factory=Boundaries,
        description='Boundary conditions: one string for all axes or a table {x = ..., y = ..., z = ...}.',
    )

    @property
    def nx(self) -> int:
        """Number of voxels along x."""
        return self.shape[0]

    @property
    def ny(self) -> int:
        """Number of voxels along y."""
        return self.shape[1]

    @property
    def nz(self) -> int:
        """Number of voxels along z."""
        return self.shape[2]

    @property
    def array_shape(self) -> tuple[int, int, int]:
        """Shape of voxel arrays, (nz, ny, nx)."""
        return (self.shape[2], self.shape[1], self.shape[0])

    @property
    def n_voxels(self) -> int:
        """Total number of voxels."""
        return self.shape[0] * self.shape[1] * self.shape[2]

    @property
    def extent_m(self) -> tuple[float, float, float]:
        """Edge lengths of the box (x, y, z) in m."""
        return tuple(n * self.voxel_size_m for n in self.shape)  # type: ignore[return-value]

    def contains(self, point_m: tuple[float, float, float]) -> bool:
        """Whether a point (x, y, z) in m lies in the closed box."""
        return all(o <= p <= o + e for p, o, e in zip(point_m, self.origin_m, self.extent_m))

    def describe(self) -> str:
        nx, ny, nz = self.shape
        return (
            f"{nx}×{ny}×{nz} voxels of {format_quantity(self.voxel_size_m, 'length')}, "
            f"origin {format_vector(self.origin_m, 'length')}, boundary {self.boundary.describe()}"
        )


# --------------------------------------------------------------------------------------------
# tissue


class NoTumour(_Model):
    """No tumour: the whole box is normal liver."""

    kind: Literal["none"] = "none"

    def describe(self) -> str:
        return "none"


class SphereTumour(_Model):
    """A spherical tumour with an optional concentric necrotic core (PHYSICS.md §2)."""

    kind: Literal["sphere"] = "sphere"
    center_m: Vec3Length = Field(description="Centre (x, y, z) in m; the tumour must reach into the grid box (a centre outside it makes the box a sample of a larger tumour).")
    radius_m: PositiveLength = Field(description="Outer radius in m.")
    necrotic_radius_m: NonNegativeLength = Field(
        0.0, description="Radius of the necrotic core in m, smaller than radius_m; 0 for none."
    )

    @model_validator(mode="after")
    def _core_inside(self) -> "SphereTumour":
        if self.necrotic_radius_m >= self.radius_m:
            raise nanosim_error(
                f"must be smaller than radius_m ({format_number(self.radius_m)} m), "
                f"got {format_number(self.necrotic_radius_m)} m",
                "the necrotic core lies inside the tumour; use 0 for no core",
                "necrotic_radius_m",
            )
        return self

    def describe(self) -> str:
        core = (
            f", necrotic core {format_quantity(self.necrotic_radius_m, 'length')}" if self.necrotic_radius_m else ""
        )
        return (
            f"sphere at {format_vector(self.center_m, 'length')}, "
            f"radius {format_quantity(self.radius_m, 'length')}{core}"
        )


class EllipsoidTumour(_Model):
    """An axis-aligned ellipsoidal tumour; the necrotic core is the same ellipsoid scaled down."""

    kind: Literal["ellipsoid"] = "ellipsoid"
    center_m: Vec3Length = Field(description="Centre (x, y, z) in m; the tumour must reach into the grid box (a centre outside it makes the box a sample of a larger tumour).")
    semi_axes_m: Vec3PositiveLength = Field(description="Semi-axes along x, y, z in m.")
    necrotic_fraction: UnitFraction = Field(
        0.0, description='Necrotic core semi-axes as a fraction of semi_axes_m, in [0, 1) ("20 %" also works).'
    )

    def describe(self) -> str:
        core = f", necrotic fraction {format_number(self.necrotic_fraction)}" if self.necrotic_fraction else ""
        return (
            f"ellipsoid at {format_vector(self.center_m, 'length')}, "
            f"semi-axes {format_vector(self.semi_axes_m, 'length')}{core}"
        )


Tumour = Annotated[Union[NoTumour, SphereTumour, EllipsoidTumour], Field(discriminator="kind")]


class Tissue(_Model):
    """The tissue in the box: normal liver, with a tumour if one is given."""

    tumour: Tumour = Field(
        default_factory=NoTumour, description='The tumour: kind = "none", "sphere" or "ellipsoid".'
    )

    def describe(self) -> str:
        return f"tumour: {self.tumour.describe()}"


# --------------------------------------------------------------------------------------------
# vessels


class CylinderVessel(_Model):
    """A straight vessel segment of constant radius.

    With ``wall = "fixed_concentration"`` the voxels inside the vessel hold the plasma drug
    concentration. With ``wall = "exchange"`` they exchange drug with plasma at the rate
    P·(S/V), P = ``drug.permeability_m_per_s`` and S/V the wall area per voxel volume
    (PHYSICS.md §5, §8).
    """

    kind: Literal["cylinder"] = "cylinder"
    start_m: Vec3Length = Field(description="One end (x, y, z) in m; may lie outside the box.")
    end_m: Vec3Length = Field(description="Other end (x, y, z) in m; may lie outside the box.")
    radius_m: PositiveLength = Field(
        description="Radius in m; tumour vessels are 10–50 µm in diameter, capillaries 5–8 µm (PHYSICS.md §2)."
    )
    wall: Literal["fixed_concentration", "exchange"] = Field(
        "fixed_concentration",
        description='"fixed_concentration": vessel voxels hold the plasma concentration; '
        '"exchange": they exchange with plasma at permeability × wall area / volume.',
    )

    @model_validator(mode="after")
    def _distinct_ends(self) -> "CylinderVessel":
        if tuple(self.start_m) == tuple(self.end_m):
            raise nanosim_error(
                "must differ from start_m (a vessel needs a length)", "give the two ends of the segment", "end_m"
            )
        return self

    @property
    def length_m(self) -> float:
        """Length of the segment in m."""
        return math.dist(self.start_m, self.end_m)

    def describe(self) -> str:
        return (
            f"cylinder {format_vector(self.start_m, 'length')} → {format_vector(self.end_m, 'length')}, "
            f"radius {format_quantity(self.radius_m, 'length')}, wall {self.wall}"
        )


Vessel = Annotated[Union[CylinderVessel], Field(discriminator="kind")]


# --------------------------------------------------------------------------------------------
# drug


class RegionDrug(_Model):
    """Transport and reaction constants of free drug in one tissue region (PHYSICS.md §8).

    ∂C/∂t = ∇·(D ∇C) − k_uptake C + k_efflux C_i − k_on C + k_off C_b, ∂C_b/∂t = k_on C − k_off C_b,
    ∂C_i/∂t = k_uptake C − (k_efflux + k_met) C_i (C_i: drug inside the cells, mol per m³ of tissue).
    """

    diffusivity_m2_per_s: NonNegativeDiffusivity = Field(
        description="Effective diffusivity D in m^2/s; sorafenib in tissue 1–3e-10 m^2/s (PHYSICS.md §8)."
    )
    uptake_rate_per_s: NonNegativeRate = Field(
        0.0, description="First-order cellular uptake k_uptake in 1/s: free drug enters the cells' pool C_i.")
    efflux_rate_per_s: NonNegativeRate = Field(
        0.0, description="First-order efflux k_efflux from the cells back to the free drug in 1/s (no value in "
        "PHYSICS.md: 0, unconfirmed, overridable).")
    intracellular_elimination_rate_per_s: NonNegativeRate = Field(
        0.0, description="First-order elimination k_met of the drug inside the cells (metabolism) in 1/s (no value "
        "in PHYSICS.md: 0, unconfirmed, overridable).")
    binding_on_rate_per_s: NonNegativeRate = Field(0.0, description="Binding rate k_on (free → bound) in 1/s.")
    binding_off_rate_per_s: NonNegativeRate = Field(0.0, description="Unbinding rate k_off (bound → free) in 1/s.")

    def describe(self) -> str:
        return (
            f"D {format_quantity(self.diffusivity_m2_per_s, 'diffusivity')}, "
            f"uptake {format_quantity(self.uptake_rate_per_s, 'rate')}, "
            + (f"efflux {format_quantity(self.efflux_rate_per_s, 'rate')}, " if self.efflux_rate_per_s else "")
            + (f"intracellular elimination {format_quantity(self.intracellular_elimination_rate_per_s, 'rate')}, "
               if self.intracellular_elimination_rate_per_s else "")
            + f"binding on {format_quantity(self.binding_on_rate_per_s, 'rate')}, "
            f"off {format_quantity(self.binding_off_rate_per_s, 'rate')}"
        )


class ConstantPlasma(_Model):
    """Plasma drug concentration held constant."""

    kind: Literal["constant"] = "constant"
    concentration_mol_per_m3: NonNegativeConcentration = Field(
        description="Plasma concentration in mol/m^3 (1 mol/m^3 = 1 mM)."
    )

    def concentration_at(self, time_s: float) -> float:
        """Plasma concentration in mol/m^3 at `time_s`."""
        return self.concentration_mol_per_m3

    def describe(self) -> str:
        return f"constant {format_quantity(self.concentration_mol_per_m3, 'concentration')}"


class ExponentialPlasma(_Model):
    """Plasma concentration decaying exponentially: C_p(t) = C_0 · 2^(−t / t½)."""

    kind: Literal["exponential"] = "exponential"
    initial_mol_per_m3: NonNegativeConcentration = Field(description="C_0 at t = 0 in mol/m^3.")
    half_life_s: PositiveTime = Field(description="Half-life t½ in s; sorafenib 25–48 h (PHYSICS.md §8).")

    def concentration_at(self, time_s: float) -> float:
        """Plasma concentration in mol/m^3 at `time_s`."""
        return self.initial_mol_per_m3 * 2.0 ** (-time_s / self.half_life_s)

    def describe(self) -> str:
        return (
            f"exponential from {format_quantity(self.initial_mol_per_m3, 'concentration')}, "
            f"half-life {format_quantity(self.half_life_s, 'time')}"
        )


class TablePlasma(_Model):
    """Plasma concentration interpolated linearly in a table, held at the end values outside it."""

    kind: Literal["table"] = "table"
    times_s: list[Time] = Field(min_length=1, description="Times in s, strictly increasing.")
    concentrations_mol_per_m3: list[NonNegativeConcentration] = Field(
        min_length=1, description="Plasma concentrations in mol/m^3 at times_s (same length)."
    )

    @field_validator("times_s")
    @classmethod
    def _increasing(cls, times: list[float]) -> list[float]:
        for i in range(1, len(times)):
            if not times[i] > times[i - 1]:
                raise nanosim_error(
                    f"must be strictly increasing (entry {i}, {format_number(times[i])} s, "
                    f"follows {format_number(times[i - 1])} s)",
                    "list the times in increasing order without repeats",
                )
        return times

    @model_validator(mode="after")
    def _same_length(self) -> "TablePlasma":
        if len(self.times_s) != len(self.concentrations_mol_per_m3):
            raise nanosim_error(
                f"has {len(self.concentrations_mol_per_m3)} entries but times_s has {len(self.times_s)}",
                "give one concentration per time",
                "concentrations_mol_per_m3",
            )
        return self

    def concentration_at(self, time_s: float) -> float:
        """Plasma concentration in mol/m^3 at `time_s` (linear interpolation)."""
        times, values = self.times_s, self.concentrations_mol_per_m3
        if time_s <= times[0]:
            return values[0]
        if time_s >= times[-1]:
            return values[-1]
        i = bisect.bisect_right(times, time_s)
        w = (time_s - times[i - 1]) / (times[i] - times[i - 1])
        return (1.0 - w) * values[i - 1] + w * values[i]

    def describe(self) -> str:
        return (
            f"table of {len(self.times_s)} points over "
            f"{format_quantity(self.times_s[0], 'time')} – {format_quantity(self.times_s[-1], 'time')}"
        )


class SystemicPlasma(_Model):
    """Plasma concentration from a systemic model of the free drug (PHYSICS.md §8): clearance,
    plasma protein binding, oral dosing, and the drug carriers leak in the blood. The tissue
    sees the unbound plasma concentration."""

    kind: Literal["systemic"] = "systemic"
    pk: "DrugPK" = Field(default_factory=lambda: _drug_pk(), description="Systemic pharmacokinetics of the free drug.")
    oral: Optional["OralRoute"] = Field(None, description="Oral dosing into the systemic compartment (optional).")
    intravenous: Optional["IntravenousDrug"] = Field(
        None, description="Free drug injected or infused into a vein, into the systemic compartment (optional).")

    def describe(self) -> str:
        routes = [r.describe() for r in (self.oral, self.intravenous) if r is not None]
        return "systemic: " + self.pk.describe() + "".join(f"; {r}" for r in routes)


def _drug_pk():
    from .drug_pk import DrugPK

    return DrugPK()


Plasma = Annotated[Union[ConstantPlasma, ExponentialPlasma, TablePlasma, SystemicPlasma], Field(discriminator="kind")]


class UniformInitial(_Model):
    """Free drug initially uniform over the box."""

    kind: Literal["uniform"] = "uniform"
    concentration_mol_per_m3: NonNegativeConcentration = Field(0.0, description="Initial concentration in mol/m^3.")

    def describe(self) -> str:
        return f"uniform {format_quantity(self.concentration_mol_per_m3, 'concentration')}"


class GaussianInitial(_Model):
    """Free drug initially in a Gaussian cloud: C = N / (2πσ²)^(3/2) · exp(−|x − c|² / 2σ²)."""

    kind: Literal["gaussian"] = "gaussian"
    center_m: Vec3Length = Field(description="Centre (x, y, z) in m; must lie inside the grid box.")
    sigma_m: PositiveLength = Field(description="Standard deviation σ in m along each axis.")
    amount_mol: PositiveAmount = Field(description="Total amount N in mol.")

    def describe(self) -> str:
        return (
            f"gaussian at {format_vector(self.center_m, 'length')}, σ {format_quantity(self.sigma_m, 'length')}, "
            f"{format_quantity(self.amount_mol, 'amount')}"
        )


InitialCondition = Annotated[Union[UniformInitial, GaussianInitial], Field(discriminator="kind")]


class Drug(_Model):
    """The free drug (default sorafenib, PHYSICS.md §8): plasma input, initial state, region constants.

    ``tumour`` defaults to a copy of ``normal``, and ``necrotic`` to a copy of ``tumour``; after
    validation all three are set.
    """

    name: str = Field("sorafenib", min_length=1, description="Drug name, for reports.")
    molar_mass_g_per_mol: quantity("molar mass", gt=0, unit="g/mol") = Field(  # type: ignore[valid-type]
        464.8, description="Molar mass in g/mol; sorafenib 464.8 g/mol (PHYSICS.md §8)."
    )
    decay_rate_per_s: NonNegativeRate = Field(
        0.0, description="First-order decay (metabolism) everywhere in 1/s; 0 for none."
    )
    permeability_m_per_s: Optional[NonNegativeVelocity] = Field(
        None,
        description='Vessel wall permeability P in m/s; required when a vessel has wall = "exchange".',
    )
    threshold_mol_per_m3: NonNegativeConcentration = Field(
        7.5e-3, description="Exposure threshold for the unbound drug in mol/m³ (default the IC50 of sorafenib in "
        "Hep3B and PLC/PRF/5 cells, 7.5 µM, PHYSICS.md §8).")
    plasma: Plasma = Field(
        default_factory=lambda: ConstantPlasma(concentration_mol_per_m3=0.0),
        description='Plasma concentration over time: kind = "constant", "exponential" or "table".',
    )
    initial: InitialCondition = Field(
        default_factory=UniformInitial, description='Initial free drug: kind = "uniform" or "gaussian".'
    )
    normal: RegionDrug = Field(description="Constants in normal liver.")
    tumour: Optional[RegionDrug] = Field(None, description="Constants in viable tumour; default: those of normal.")
    necrotic: Optional[RegionDrug] = Field(
        None, description="Constants in the necrotic core; default: those of tumour."
    )

    @model_validator(mode="after")
    def _fill_regions(self) -> "Drug":
        # Written through __dict__: assignment would re-run this validator (validate_assignment).
        if self.tumour is None:
            self.__dict__["tumour"] = self.normal.model_copy()
        if self.necrotic is None:
            self.__dict__["necrotic"] = self.tumour.model_copy()
        return self

    def region(self, name: Literal["normal", "tumour", "necrotic"]) -> RegionDrug:
        """Constants of region `name`."""
        return {"normal": self.normal, "tumour": self.tumour, "necrotic": self.necrotic}[name]

    def describe(self) -> str:
        perm = (
            "none" if self.permeability_m_per_s is None else format_quantity(self.permeability_m_per_s, "velocity")
        )
        head = (
            f"{self.name} ({format_number(self.molar_mass_g_per_mol)} g/mol), "
            f"decay {format_quantity(self.decay_rate_per_s, 'rate')}, permeability {perm}"
        )
        children = [
            f"plasma: {self.plasma.describe()}",
            f"initial: {self.initial.describe()}",
            f"normal: {self.normal.describe()}",
            f"tumour: {self.tumour.describe()}",
            f"necrotic: {self.necrotic.describe()}",
        ]
        return head + "\n" + _tree(children)


# --------------------------------------------------------------------------------------------
# transport, time, output


class Transport(_Model):
    """Numerical scheme and interstitial convection for the free-drug equation."""

    scheme: Literal["explicit", "implicit"] = Field(
        "explicit", description='"explicit" (forward Euler, step limited by stability) or "implicit".'
    )
    dt_s: TimeStep = Field(
        "auto", description='Time step in s, or "auto" to choose it from the stability limit.'
    )
    velocity_m_per_s: Vec3Velocity = Field(
        (0.0, 0.0, 0.0), description="Uniform interstitial fluid velocity (x, y, z) in m/s; any sign."
    )

    def describe(self) -> str:
        dt = "auto" if self.dt_s == "auto" else format_quantity(self.dt_s, "time")
        return f"{self.scheme}, dt {dt}, velocity {format_vector(self.velocity_m_per_s, 'velocity')}"


class TimeSettings(_Model):
    """Simulated time span."""

    stop_s: PositiveTime = Field(description='Simulated time to stop at, in s (e.g. "72 h").')

    def describe(self) -> str:
        return f"stop at {format_quantity(self.stop_s, 'time')}"


class OutputSettings(_Model):
    """What is written to the results file, and how often."""

    every_s: Optional[PositiveTime] = Field(
        None, description="Simulated time between field outputs in s; default: a tenth of time.stop_s."
    )
    fields: Optional[list[Literal["free_drug", "bound_drug", "intracellular_drug", "region", "vessel", "carrier_free", "carrier_bound",
                                  "carrier_internalised", "carrier_vessel", "carrier_lodged", "released_drug",
                                  "auc_unbound", "cmax_unbound", "time_above_threshold"]]] = Field(
        None, description="Fields to write; default: every field of the model (free_drug, bound_drug, and "
        "intracellular_drug where cells take up drug, with a [drug]; "
        "the carrier_* concentrations, carriers per m³ of tissue, with a [carrier])."
    )
    checkpoint_every_wall_s: PositiveTime = Field(300.0, description="Wall-clock time between checkpoints in s.")
    checkpoint_every_s: Optional[PositiveTime] = Field(
        None, description="Simulated time between checkpoints in s; default: none on simulated time."
    )

    @field_validator("fields")
    @classmethod
    def _unique(cls, fields):
        if fields is None:
            return fields
        repeated = sorted({f for f in fields if fields.count(f) > 1})
        if repeated:
            raise nanosim_error(f"lists {', '.join(repeated)} more than once", "list each field once")
        return fields

    def describe(self) -> str:
        every = "stop/10" if self.every_s is None else format_quantity(self.every_s, "time")
        ckpt = f"checkpoint every {format_quantity(self.checkpoint_every_wall_s, 'time')} wall"
        if self.checkpoint_every_s is not None:
            ckpt += f" and {format_quantity(self.checkpoint_every_s, 'time')} simulated"
        return f"every {every}, fields {'all' if self.fields is None else (', '.join(self.fields) or 'none')}, {ckpt}"


from .vasculature import BloodFlow, Interstitial, Network, Voxelisation  # noqa: E402
from .carriers import Body, Carrier, Extravasation, Particles, Route  # noqa: E402
from .drug_pk import DrugPK, IntravenousDrug, OralRoute  # noqa: E402
from .microenv import PH, Oxygen  # noqa: E402

SystemicPlasma.model_rebuild()
Drug.model_rebuild()

# --------------------------------------------------------------------------------------------
# scenario


class Scenario(_Model):
    """A complete simulation scenario (schema version 1).

    Load one with :func:`nanosim.scenario.load_scenario`, which also keeps where it came from:
    :attr:`source_text`, :attr:`source_path` and :attr:`overrides` (provenance, not part of
    the model: not dumped and not compared by ``==``).

    Printing a scenario shows a tree::

        Scenario "Quickstart" (schema 1, seed 1)
        ├── grid: 160×160×4 voxels of 1 µm, origin (0, 0, 0) m, boundary x no_flux, y no_flux, z periodic
        ├── tumour: none
        ├── vessels: none
        ├── drug: sorafenib (464.8 g/mol), decay 0 1/s, permeability none
        │   ├── plasma: constant 0 mol/m^3
        │   ...
        ├── transport: explicit, dt auto, velocity (0, 0, 0) m/s
        ├── time: stop at 1 h
        ├── output: every stop/10, fields free_drug, bound_drug, checkpoint every 5 min wall
        └── backend: auto, precision auto
    """

    schema_version: Literal[1] = Field(1, description="Version of this schema; 1.")
    title: str = Field("", description="Free-text title, for reports.")
    seed: Annotated[int, Strict()] = Field(
        0, ge=0, le=2**64 - 1, description="Seed of the counter-based random generator (0 ≤ seed < 2^64)."
    )
    backend: Literal["auto", "numpy", "numba", "cupy"] = Field(
        "auto", description='Compute backend; "auto" picks cupy when a CUDA device is usable, else numba.'
    )
    precision: Literal["auto", "float32", "float64"] = Field(
        "auto", description='Floating-point precision of fields; "auto" is float32 on the GPU, float64 on the CPU.'
    )
    grid: Grid = Field(description="The voxel box.")
    tissue: Tissue = Field(default_factory=Tissue, description="Tissue regions.")
    vessels: list[Vessel] = Field(default_factory=list, description="Vessel segments (may be empty).")
    drug: Optional[Drug] = Field(None, description="The free drug (required unless the scenario has a [carrier]).")
    transport: Transport = Field(default_factory=Transport, description="Numerical scheme and convection.")
    time: TimeSettings = Field(description="Simulated time span.")
    output: OutputSettings = Field(default_factory=OutputSettings, description="Results file contents.")
    network: Optional[Network] = Field(
        None, description="Vessel network (PHYSICS.md §2): generated, imported, canonical, or uniform perfusion.")
    voxelisation: Voxelisation = Field(default_factory=Voxelisation, description="How the network becomes voxel maps.")
    blood_flow: BloodFlow = Field(default_factory=BloodFlow, description="Blood flow in the network (PHYSICS.md §3).")
    interstitial: Interstitial = Field(
        default_factory=Interstitial, description="Interstitial fluid pressure and velocity (PHYSICS.md §4).")
    carrier: Optional[Carrier] = Field(None, description="The nanocarrier design (PHYSICS.md §5, §10).")
    body: Optional[Body] = Field(None, description="Species and whole-tumour volume (required with a carrier).")
    route: Optional[Route] = Field(None, description="How the carriers are given (required with a carrier).")
    extravasation: Extravasation = Field(default_factory=Extravasation, description="Vessel wall pores (PHYSICS.md §5).")
    particles: Particles = Field(default_factory=Particles, description="The particle method for carriers.")
    oxygen: Oxygen = Field(default_factory=Oxygen, description="Steady oxygen field (PHYSICS.md §6); off by default.")
    ph: PH = Field(default_factory=PH, description="Extracellular pH field (PHYSICS.md §6); off by default.")

    _source_text: Optional[str] = PrivateAttr(None)
    _source_path: Optional[Path] = PrivateAttr(None)
    _overrides: tuple[str, ...] = PrivateAttr(())

    @property
    def source_text(self) -> str:
        """The scenario file's original text, or a JSON dump when it was built from a mapping."""
        if self._source_text is None:
            return self.model_dump_json(indent=2)
        return self._source_text

    @property
    def source_path(self) -> Optional[Path]:
        """Path of the scenario file, or None when it was built from a mapping."""
        return self._source_path

    @property
    def overrides(self) -> tuple[str, ...]:
        """The ``key=value`` overrides applied on top of the source, in order."""
        return self._overrides

    @property
    def output_every_s(self) -> float:
        """Simulated time between field outputs in s (``output.every_s`` or stop/10)."""
        return self.output.every_s if self.output.every_s is not None else self.time.stop_s / 10.0

    def __eq__(self, other: object) -> bool:
        # Provenance is deliberately ignored: the same scenario from TOML and YAML compares equal.
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def describe(self) -> str:
        """The scenario as a readable tree."""
        title = f'"{self.title}"' if self.title else "(untitled)"
        head = f"Scenario {title} (schema {self.schema_version}, seed {self.seed})"
        if self.vessels:
            kinds = sorted({v.kind for v in self.vessels})
            vessels = f"vessels: {len(self.vessels)} ({', '.join(kinds)})\n" + _tree(
                [f"[{i}] {v.describe()}" for i, v in enumerate(self.vessels)]
            )
        else:
            vessels = "vessels: none"
        children = [
            f"grid: {self.grid.describe()}",
            self.tissue.describe(),
            vessels,
            f"drug: {self.drug.describe() if self.drug is not None else 'none'}",
            f"transport: {self.transport.describe()}",
            f"time: {self.time.describe()}",
            f"output: {self.output.describe()}",
            f"network: {self.network.describe() if self.network is not None else 'none'}"
            + (f"; blood flow {self.blood_flow.describe()}" if self.network is not None else ""),
            f"interstitial fluid: {self.interstitial.describe()}",
            *([f"oxygen: {self.oxygen.describe()}"] if self.oxygen.enabled else []),
            *([f"pH: {self.ph.describe()}"] if self.ph.enabled else []),
            *([f"carrier: {self.carrier.describe()}", f"body: {self.body.describe() if self.body else 'none'}",
               f"route: {self.route.describe() if self.route else 'none'}",
               f"extravasation:\n{self.extravasation.describe()}", f"particles: {self.particles.describe()}"]
              if self.carrier is not None else []),
            f"backend: {self.backend}, precision {self.precision}",
        ]
        return head + "\n" + _tree(children)

    def __repr__(self) -> str:
        return self.describe()
