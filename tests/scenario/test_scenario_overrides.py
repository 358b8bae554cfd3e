"""Command-line style overrides: ``path.to.key=value`` applied before validation."""

import pytest

from nanosim.scenario import ScenarioError, load_scenario, parse_override


@pytest.mark.parametrize(
    ("text", "parts", "value"),
    [
        ("seed=3", ["seed"], 3),
        ("time.stop_s=2.5", ["time", "stop_s"], 2.5),
        ('grid.voxel_size_m="20 um"', ["grid", "voxel_size_m"], "20 um"),
        ("grid.voxel_size_m=20 um", ["grid", "voxel_size_m"], "20 um"),  # bare words: a string
        ("grid.shape=[1,2,3]", ["grid", "shape"], [1, 2, 3]),
        ("title=My run", ["title"], "My run"),
        ("flag=true", ["flag"], True),
        ("vessels[0].radius_m=5e-6", ["vessels", 0, "radius_m"], 5e-6),
        ("a.b = {kind = \"sphere\"}", ["a", "b"], {"kind": "sphere"}),
        ("title=a=b", ["title"], "a=b"),
    ],
)
def test_parse_override(text, parts, value):
    assert parse_override(text) == (parts, value)


@pytest.mark.parametrize("text", ["seed", "grid..shape=1", "grid.shape[x]=1", "=3"])
def test_malformed_overrides(text):
    with pytest.raises(ScenarioError) as info:
        parse_override(text)
    assert info.value.errors[0].path == f"--set {text}"


def test_overrides_are_applied_in_order(base):
    sc = load_scenario(base, ["seed=3", "grid.voxel_size_m=20 um", "grid.shape[0]=16", "seed=4"])
    assert sc.seed == 4
    assert sc.grid.voxel_size_m == 2e-5
    assert sc.grid.shape == (16, 8, 1)
    assert sc.overrides == ("seed=3", "grid.voxel_size_m=20 um", "grid.shape[0]=16", "seed=4")


def test_override_does_not_change_the_callers_mapping(base):
    load_scenario(base, ["grid.shape[0]=16", "drug.decay_rate_per_s=1e-5"])
    assert base["grid"]["shape"] == [8, 8, 1]
    assert "decay_rate_per_s" not in base["drug"]


def test_override_creates_missing_tables_and_expands_shorthands(base):
    base["grid"]["boundary"] = "periodic"
    sc = load_scenario(
        base, ["grid.boundary.z=no_flux", "transport.dt_s=1 s", "drug.tumour.diffusivity_m2_per_s=1e-10"]
    )
    assert [sc.grid.boundary.axis(i).kind for i in range(3)] == ["periodic", "periodic", "no_flux"]
    assert sc.transport.dt_s == 1.0
    assert sc.drug.tumour.diffusivity_m2_per_s == 1e-10


def test_override_inside_a_union_after_its_kind_is_known(base):
    # the kind is set by a later override: order does not matter
    sc = load_scenario(base, [
        "tissue.tumour.radius_m=10 um",
        "tissue.tumour.center_m=[4e-5, 4e-5, 5e-6]",
        "tissue.tumour.kind=sphere",
    ])
    assert sc.tissue.tumour.kind == "sphere"
    assert sc.tissue.tumour.radius_m == 1e-5


def test_override_with_a_key_that_does_not_exist(base):
    with pytest.raises(ScenarioError) as info:
        load_scenario(base, ["grid.voxl_size_m=20 um"])
    (item,) = info.value.errors
    assert item.path == "--set grid.voxl_size_m=20 um"
    assert item.message == 'names a key that does not exist: no "voxl_size_m" in grid'
    assert item.hint.startswith('did you mean "voxel_size_m"?')


def test_override_key_checked_against_the_chosen_kind(base):
    with pytest.raises(ScenarioError) as info:
        load_scenario(base, ["tissue.tumour.radius_m=1e-5"])  # the default tumour is kind "none"
    (item,) = info.value.errors
    assert item.message == 'names a key that does not exist: no "radius_m" in tissue.tumour (kind "none")'


def test_override_below_a_single_value(base):
    with pytest.raises(ScenarioError) as info:
        load_scenario(base, ["title.x=1"])
    assert info.value.errors[0].message == 'title is a single value, it has no key "x"'


def test_override_of_a_missing_list_item(base):
    with pytest.raises(ScenarioError) as info:
        load_scenario(base, ["vessels[0].radius_m=1e-6"])
    assert "there is no item 0 (the list has 0)" in info.value.errors[0].message


def test_bad_overrides_and_bad_values_are_reported_together(base):
    with pytest.raises(ScenarioError) as info:
        load_scenario(base, ["grid.voxl_size_m=1", "grid.voxel_size_m=-1 um", "seed=-2"])
    paths = [e.path for e in info.value.errors]
    # the bad key is reported once, as an override, not again as an unknown key
    assert paths == ["--set grid.voxl_size_m=1", "seed", "grid.voxel_size_m"]


def test_reload_a_scenario_with_overrides(base):
    sc = load_scenario(base, ["seed=2"])
    again = load_scenario(sc, ["title=again"])
    assert again.seed == 2
    assert again.title == "again"
    assert again.overrides == ("seed=2", "title=again")


def test_single_string_override_is_one_override(base):
    assert load_scenario(base, "seed=9").seed == 9


def test_source_of_the_wrong_type():
    with pytest.raises(TypeError, match="expects a file path or a mapping"):
        load_scenario(42)


def test_override_of_one_field_of_a_defaulted_table_keeps_the_other_defaults():
    """``[extravasation]`` is absent from the file: setting one field of its sinusoid pores starts
    from the schema's default values, so the others need not be restated."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scenarios" / "hcc_liposome_iv_rim.toml"
    default = load_scenario(path).extravasation
    sc = load_scenario(path, ["extravasation.sinusoid.pore_area_fraction=0.01"])
    assert sc.extravasation.sinusoid.pore_area_fraction == 0.01
    assert sc.extravasation.sinusoid.wall_thickness_m == default.sinusoid.wall_thickness_m
    assert sc.extravasation.tumour == default.tumour
    with pytest.raises(ScenarioError, match="no_such_field"):
        load_scenario(path, ["extravasation.sinusoid.no_such_field=1"])
