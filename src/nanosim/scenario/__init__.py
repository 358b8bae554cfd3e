"""Scenario files: the schema, loading with overrides, and error reporting.

>>> from nanosim.scenario import load_scenario
>>> sc = load_scenario({"grid": {"shape": [8, 8, 1], "voxel_size_m": "10 um"},
...                     "drug": {"normal": {"diffusivity_m2_per_s": "2e-10 m^2/s"}},
...                     "time": {"stop_s": "1 h"}})
>>> print(sc.grid)
8×8×1 voxels of 10 µm, origin (0, 0, 0) m, boundary x no_flux, y no_flux, z no_flux
"""

from nanosim.scenario.errors import ErrorItem, ScenarioBuildError, ScenarioError
from nanosim.scenario.loader import (
    available_memory_bytes,
    check_scenario,
    estimate_memory_bytes,
    load_scenario,
    parse_override,
    schema_json,
)
from nanosim.scenario.schema import (
    OUTPUT_FIELDS,
    SCHEMA_VERSION,
    Boundaries,
    BoundaryCondition,
    ConstantPlasma,
    CylinderVessel,
    Drug,
    EllipsoidTumour,
    ExponentialPlasma,
    GaussianInitial,
    Grid,
    NoTumour,
    OutputSettings,
    RegionDrug,
    Scenario,
    SphereTumour,
    TablePlasma,
    Tissue,
    TimeSettings,
    Transport,
    UniformInitial,
)

__all__ = [
    "ErrorItem",
    "ScenarioBuildError",
    "ScenarioError",
    "load_scenario",
    "parse_override",
    "check_scenario",
    "estimate_memory_bytes",
    "available_memory_bytes",
    "schema_json",
    "SCHEMA_VERSION",
    "OUTPUT_FIELDS",
    "Scenario",
    "Grid",
    "Boundaries",
    "BoundaryCondition",
    "Tissue",
    "NoTumour",
    "SphereTumour",
    "EllipsoidTumour",
    "CylinderVessel",
    "Drug",
    "RegionDrug",
    "ConstantPlasma",
    "ExponentialPlasma",
    "TablePlasma",
    "UniformInitial",
    "GaussianInitial",
    "Transport",
    "TimeSettings",
    "OutputSettings",
]
