"""Tests of the scenario schema on valid input: defaults, normalisation, files, round trips."""

import doctest
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from nanosim.scenario import (
    BoundaryCondition,
    ConstantPlasma,
    CylinderVessel,
    ExponentialPlasma,
    GaussianInitial,
    NoTumour,
    SphereTumour,
    TablePlasma,
    UniformInitial,
    load_scenario,
    schema_json,
)

REPO = Path(__file__).resolve().parents[2]


def test_minimal_mapping_gets_the_documented_defaults(base):
    sc = load_scenario(base)
    assert sc.schema_version == 1
    assert sc.title == ""
    assert sc.seed == 0
    assert sc.backend == "auto"
    assert sc.precision == "auto"
    assert sc.grid.shape == (8, 8, 1)
    assert sc.grid.voxel_size_m == 1e-5
    assert sc.grid.origin_m == (0.0, 0.0, 0.0)
    for axis in (sc.grid.boundary.x, sc.grid.boundary.y, sc.grid.boundary.z):
        assert axis == BoundaryCondition(kind="no_flux")
    assert sc.tissue.tumour == NoTumour()
    assert sc.vessels == []
    assert sc.drug.name == "sorafenib"
    assert sc.drug.molar_mass_g_per_mol == 464.8
    assert sc.drug.decay_rate_per_s == 0.0
    assert sc.drug.permeability_m_per_s is None
    assert sc.drug.plasma == ConstantPlasma(concentration_mol_per_m3=0.0)
    assert sc.drug.initial == UniformInitial(concentration_mol_per_m3=0.0)
    assert sc.drug.tumour == sc.drug.normal
    assert sc.drug.necrotic == sc.drug.normal
    assert sc.drug.tumour is not sc.drug.normal  # a copy, not an alias
    assert sc.transport.scheme == "explicit"
    assert sc.transport.dt_s == "auto"
    assert sc.transport.velocity_m_per_s == (0.0, 0.0, 0.0)
    assert sc.time.stop_s == 3600.0
    assert sc.output.every_s is None
    assert sc.output_every_s == 360.0
    assert sc.output.fields is None  # every field of the model (free_drug, bound_drug here)
    assert sc.output.checkpoint_every_wall_s == 300.0
    assert sc.output.checkpoint_every_s is None


def test_necrotic_defaults_to_tumour_not_normal(base):
    base["drug"]["tumour"] = {"diffusivity_m2_per_s": 1e-10, "uptake_rate_per_s": "1e-4 1/s"}
    sc = load_scenario(base)
    assert sc.drug.tumour.diffusivity_m2_per_s == 1e-10
    assert sc.drug.necrotic == sc.drug.tumour
    assert sc.drug.region("normal").diffusivity_m2_per_s == 2e-10


def test_toml_and_yaml_files_load_to_equal_scenarios(data_dir):
    from_toml = load_scenario(data_dir / "minimal.toml")
    from_yaml = load_scenario(str(data_dir / "minimal.yaml"))
    assert from_toml == from_yaml
    # spot checks that the values are the intended ones, not merely equal to each other
    assert from_yaml.grid.voxel_size_m == 1e-5  # YAML's 1e-5 string
    assert from_yaml.drug.normal.diffusivity_m2_per_s == 2e-10
    assert from_yaml.drug.tumour.uptake_rate_per_s == 1e-4
    assert from_toml.tissue.tumour == SphereTumour(
        center_m=(8e-5, 8e-5, 5e-6), radius_m=5e-5, necrotic_radius_m=1e-5
    )
    assert from_toml.vessels == [
        CylinderVessel(start_m=(0, 8e-5, 5e-6), end_m=(1.6e-4, 8e-5, 5e-6), radius_m=5e-6, wall="exchange")
    ]
    assert from_toml.drug.plasma == ExponentialPlasma(initial_mol_per_m3=3e-3, half_life_s=129600.0)
    assert from_toml.grid.boundary.z.kind == "periodic"  # periodic on an axis of one voxel is allowed
    assert from_toml.transport.dt_s == 0.5


def test_provenance_is_kept(data_dir, base):
    path = data_dir / "minimal.toml"
    sc = load_scenario(path, overrides=["seed=5"])
    assert sc.source_text == path.read_text(encoding="utf-8")
    assert sc.source_path == path
    assert sc.overrides == ("seed=5",)
    from_mapping = load_scenario(base)
    assert from_mapping.source_path is None
    assert json.loads(from_mapping.source_text) == base
    assert from_mapping.overrides == ()


def test_model_dump_json_round_trips(data_dir):
    sc = load_scenario(data_dir / "minimal.toml")
    again = load_scenario(json.loads(sc.model_dump_json()))
    assert again == sc
    assert again.model_dump() == sc.model_dump()


def test_equality_sees_real_differences(base):
    a = load_scenario(base)
    b = load_scenario(base, overrides=["seed=1"])
    assert a != b


def test_boundary_forms_normalise_to_three_axes(base):
    base["grid"]["boundary"] = "periodic"
    sc = load_scenario(base)
    assert [sc.grid.boundary.axis(i).kind for i in range(3)] == ["periodic"] * 3
    base["grid"]["boundary"] = {"kind": "fixed", "value_mol_per_m3": "1 uM"}
    sc = load_scenario(base)
    assert sc.grid.boundary.y == BoundaryCondition(kind="fixed", value_mol_per_m3=1e-3)
    base["grid"]["boundary"] = {"x": {"kind": "fixed", "value_mol_per_m3": 0}, "z": "periodic"}
    sc = load_scenario(base)
    assert sc.grid.boundary.x.kind == "fixed"
    assert sc.grid.boundary.y.kind == "no_flux"
    assert sc.grid.boundary.z.kind == "periodic"


def test_grid_helpers(base):
    base["grid"] = {"shape": [4, 5, 6], "voxel_size_m": 2.0, "origin_m": [1, 0, 0]}
    grid = load_scenario(base).grid
    assert (grid.nx, grid.ny, grid.nz) == (4, 5, 6)
    assert grid.array_shape == (6, 5, 4)
    assert grid.n_voxels == 120
    assert grid.extent_m == (8.0, 10.0, 12.0)
    assert grid.contains((9.0, 10.0, 0.0))
    assert not grid.contains((0.5, 1.0, 1.0))


def test_plasma_curves():
    assert ConstantPlasma(concentration_mol_per_m3=2.0).concentration_at(1e6) == 2.0
    exp = ExponentialPlasma(initial_mol_per_m3=4.0, half_life_s=10.0)
    assert exp.concentration_at(0.0) == 4.0
    assert exp.concentration_at(20.0) == 1.0  # two half-lives; powers of two are exact
    table = TablePlasma(times_s=[0, 10, 30], concentrations_mol_per_m3=[0, 1, 3])
    assert table.concentration_at(-5) == 0.0
    assert table.concentration_at(5) == 0.5
    assert table.concentration_at(20) == 2.0
    assert table.concentration_at(99) == 3.0
    single = TablePlasma(times_s=["1 h"], concentrations_mol_per_m3=["3 uM"])
    assert single.concentration_at(0.0) == 3e-3


def test_other_union_members_validate(base):
    base["tissue"] = {"tumour": {"kind": "ellipsoid", "center_m": ["40 um"] * 3,
                                 "semi_axes_m": ["30 um", "20 um", "10 um"], "necrotic_fraction": "25 %"}}
    base["grid"]["shape"] = [8, 8, 8]
    base["drug"]["initial"] = {"kind": "gaussian", "center_m": ["40 um"] * 3, "sigma_m": "5 um",
                               "amount_mol": "1 pmol"}
    sc = load_scenario(base)
    assert sc.tissue.tumour.necrotic_fraction == 0.25
    assert sc.tissue.tumour.semi_axes_m == (3e-5, 2e-5, 1e-5)
    assert sc.drug.initial == GaussianInitial(center_m=(4e-5,) * 3, sigma_m=5e-6, amount_mol=1e-12)


def test_tree_printout(data_dir):
    text = str(load_scenario(data_dir / "minimal.toml"))
    lines = text.splitlines()
    assert lines[0] == 'Scenario "Minimal" (schema 1, seed 1)'
    assert lines[1] == (
        "├── grid: 16×16×1 voxels of 10 µm, origin (0, 0, 0) m, boundary x no_flux, y no_flux, z periodic"
    )
    assert lines[2] == "├── tumour: sphere at (80, 80, 5) µm, radius 50 µm, necrotic core 10 µm"
    assert lines[3] == "├── vessels: 1 (cylinder)"
    assert lines[4].startswith("│   └── [0] cylinder (0, 80, 5) µm → (160, 80, 5) µm, radius 5 µm, wall exchange")
    assert "│   ├── plasma: exponential from 3 µM, half-life 1.5 d" in lines
    assert lines[-1] == "└── backend: auto, precision auto"
    assert repr(load_scenario(data_dir / "minimal.toml")) == text


def test_schema_file_matches_the_code():
    path = REPO / "scenarios" / "scenario.schema.json"
    assert json.loads(path.read_text(encoding="utf-8")) == schema_json(), (
        "regenerate with: python -m nanosim.cli.schema -o scenarios/scenario.schema.json"
    )


def test_json_schema_shape():
    schema = schema_json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "nanosim scenario"
    assert set(schema["required"]) == {"grid", "time"}  # drug or carrier: checked by the loader
    assert schema["additionalProperties"] is False
    voxel = schema["$defs"]["Grid"]["properties"]["voxel_size_m"]
    assert [b["type"] for b in voxel["anyOf"]] == ["number", "string"]
    assert voxel["anyOf"][0]["exclusiveMinimum"] == 0
    tumour = schema["$defs"]["Tissue"]["properties"]["tumour"]
    assert tumour["discriminator"]["propertyName"] == "kind"
    assert set(tumour["discriminator"]["mapping"]) == {"none", "sphere", "ellipsoid"}
    # every model in the tree refuses unknown keys
    for name, definition in schema["$defs"].items():
        assert definition.get("additionalProperties") is False, name



def test_assignment_is_validated_and_converted(base):
    sc = load_scenario(base)
    sc.grid.voxel_size_m = "20 um"
    assert sc.grid.voxel_size_m == 2e-5
    with pytest.raises(ValidationError):
        sc.grid.voxel_size_m = "5 kg"


def test_docstring_examples():
    import nanosim.scenario
    import nanosim.scenario.loader

    for module in (nanosim.scenario, nanosim.scenario.loader):
        result = doctest.testmod(module)
        assert result.attempted > 0, module.__name__
        assert result.failed == 0, module.__name__
