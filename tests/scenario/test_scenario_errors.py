"""Bad scenarios: each problem is reported with its path, what is wrong and a hint.

Every test asserts the path and the important words of the message, since those are what a
user reads; the exact wording of hints is checked only where the hint carries the fix.
"""

import math
import time
import tracemalloc

import pytest

import nanosim.scenario.loader as loader
from nanosim.scenario import ErrorItem, ScenarioError, estimate_memory_bytes, load_scenario


def errors_of(source, overrides=None) -> list[ErrorItem]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(source, overrides)
    return info.value.errors


def only(source, overrides=None) -> ErrorItem:
    errors = errors_of(source, overrides)
    assert len(errors) == 1, [e.format() for e in errors]
    return errors[0]


# --------------------------------------------------------------------------------------------
# schema errors


def test_unknown_key_suggests_the_closest_valid_key(base):
    base["grid"]["voxl_size_m"] = base["grid"].pop("voxel_size_m")
    errors = errors_of(base)
    unknown = next(e for e in errors if e.path == "grid.voxl_size_m")
    assert unknown.message == 'unknown key "voxl_size_m"'
    assert unknown.hint.startswith('did you mean "voxel_size_m"?')
    # the real key is then missing, and that is said too
    missing = next(e for e in errors if e.path == "grid.voxel_size_m")
    assert missing.message == "required key is missing"


def test_unknown_key_inside_a_union_member_names_its_kind(base):
    base["tissue"] = {"tumour": {"kind": "sphere", "center_m": [0, 0, 0], "radius_m": 1e-5, "radus_m": 1}}
    item = only(base)
    assert item.path == "tissue.tumour.radus_m"
    assert 'Keys here for kind "sphere"' in item.hint


def test_misspelt_kind_lists_the_allowed_kinds(base):
    base["tissue"] = {"tumour": {"kind": "spere", "radius_m": 1e-5}}
    item = only(base)
    assert item.path == "tissue.tumour.kind"
    assert item.message == 'unknown kind "spere"'
    assert item.hint == 'did you mean "sphere"? allowed kinds: "none", "sphere", "ellipsoid"'


def test_misspelt_kind_in_a_list_item(base):
    base["vessels"] = [{"kind": "cilinder", "radius_m": 1e-6}]
    item = only(base)
    assert item.path == "vessels[0].kind"
    assert 'allowed kinds: "cylinder"' in item.hint


def test_missing_kind(base):
    base["drug"]["plasma"] = {"concentration_mol_per_m3": 1.0}
    item = only(base)
    assert item.path == "drug.plasma.kind"
    assert item.message == "required key is missing"
    assert '"constant", "exponential", "table"' in item.hint


@pytest.mark.parametrize(
    ("where", "value", "path", "expected"),
    [
        (("grid", "shape"), "100", "grid.shape", 'expected a list of 3 values (a whole number) (got "100")'),
        (("grid",), 5, "grid", "expected a table with keys shape, voxel_size_m"),
        (("title",), 5, "title", "expected a string (got 5)"),
        (("seed",), True, "seed", "expected a whole number (got true)"),
        (("vessels",), {"kind": "cylinder"}, "vessels", "expected a list"),
    ],
)
def test_wrong_type(base, where, value, path, expected):
    node = base
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    item = only(base)
    assert item.path == path
    assert item.message.startswith("has the wrong type")
    assert expected in item.message


def test_negative_size(base):
    base["grid"]["voxel_size_m"] = -1
    item = only(base)
    assert item.path == "grid.voxel_size_m"
    assert item.message == "must be > 0 (got -1)"
    assert item.hint == 'a length > 0 in m, e.g. "20 um"'


def test_zero_size(base):
    base["grid"]["shape"] = [8, 0, 1]
    item = only(base)
    assert item.path == "grid.shape[1]"
    assert item.message == "must be >= 1 (got 0)"


def test_negative_diffusivity_message_format(base):
    base["drug"]["normal"]["diffusivity_m2_per_s"] = -1e-10
    item = only(base)
    assert item.format() == (
        "drug.normal.diffusivity_m2_per_s: must be >= 0 (got -1e-10). "
        'Hint: a diffusivity >= 0 in m^2/s, e.g. "2e-10 m^2/s".'
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, "nan", "-inf s"])
def test_non_finite_number(base, value):
    base["time"]["stop_s"] = value
    item = only(base)
    assert item.path == "time.stop_s"
    assert "not a finite number" in item.message


def test_non_finite_plain_float(base):
    base["tissue"] = {"tumour": {"kind": "ellipsoid", "center_m": [0, 0, 0], "semi_axes_m": [1, 1, 1],
                                 "necrotic_fraction": math.nan}}
    item = only(base)
    assert item.path == "tissue.tumour.necrotic_fraction"
    assert "not a finite number" in item.message


def test_wrong_unit_dimension(base):
    base["grid"]["voxel_size_m"] = "5 kg"
    item = only(base)
    assert item.path == "grid.voxel_size_m"
    assert item.message == '"5 kg" has dimension mass, expected a length (e.g. "20 um" or a number in m)'


def test_unknown_unit(base):
    base["drug"]["decay_rate_per_s"] = "0.1 1/hr"
    item = only(base)
    assert item.path == "drug.decay_rate_per_s"
    assert 'unknown unit "hr"' in item.message


def test_literal_with_suggestion(base):
    base["backend"] = "numbaa"
    item = only(base)
    assert item.path == "backend"
    assert item.message == 'must be one of "auto", "numpy", "numba", "cupy" (got "numbaa")'
    assert item.hint == 'did you mean "numba"?'


def test_schema_version(base):
    base["schema_version"] = 2
    item = only(base)
    assert (item.path, item.message) == ("schema_version", "must be 1 (got 2)")


def test_vector_of_wrong_length(base):
    base["transport"] = {"velocity_m_per_s": [1e-6, 0]}
    item = only(base)
    assert item.path == "transport.velocity_m_per_s"
    assert item.message == "must have 3 values (got 2)"


def test_dt_must_be_auto_or_a_positive_time(base):
    base["transport"] = {"dt_s": "automatic"}
    item = only(base)
    assert item.path == "transport.dt_s"
    assert item.hint.endswith('or "auto"')
    base["transport"] = {"dt_s": "-1 s"}
    item = only(base)
    assert item.message == 'must be > 0 (got "-1 s")'


def test_necrotic_core_must_be_inside_the_tumour(base):
    base["tissue"] = {"tumour": {"kind": "sphere", "center_m": [0, 0, 0], "radius_m": "10 um",
                                 "necrotic_radius_m": "10 um"}}
    item = only(base)
    assert item.path == "tissue.tumour.necrotic_radius_m"
    assert item.message.startswith("must be smaller than radius_m")


def test_vessel_ends_must_differ(base):
    base["vessels"] = [{"kind": "cylinder", "start_m": [0, 0, 0], "end_m": [0, 0, 0], "radius_m": 1e-6}]
    item = only(base)
    assert item.path == "vessels[0].end_m"
    assert "must differ from start_m" in item.message


def test_fixed_boundary_needs_a_value_and_others_take_none(base):
    base["grid"]["boundary"] = {"x": {"kind": "fixed"}, "y": {"kind": "periodic", "value_mol_per_m3": 1}}
    errors = {e.path: e for e in errors_of(base)}
    assert set(errors) == {"grid.boundary.x.value_mol_per_m3", "grid.boundary.y.value_mol_per_m3"}
    assert errors["grid.boundary.x.value_mol_per_m3"].message == 'a "fixed" boundary needs a value'
    assert errors["grid.boundary.y.value_mol_per_m3"].message == 'a "periodic" boundary takes no value'


def test_plasma_table_must_increase(base):
    base["drug"]["plasma"] = {"kind": "table", "times_s": [0, "1 h", "1 h"], "concentrations_mol_per_m3": [0, 1, 2]}
    item = only(base)
    assert item.path == "drug.plasma.times_s"
    assert item.message.startswith("must be strictly increasing (entry 2")


def test_plasma_table_lengths_must_match(base):
    base["drug"]["plasma"] = {"kind": "table", "times_s": [0, 10], "concentrations_mol_per_m3": [1]}
    item = only(base)
    assert item.path == "drug.plasma.concentrations_mol_per_m3"
    assert item.message == "has 1 entries but times_s has 2"


def test_output_fields(base):
    base["output"] = {"fields": ["free_drug", "oxygen"]}
    item = only(base)
    assert item.path == "output.fields[1]"
    assert '(got "oxygen")' in item.message


def test_missing_required_sections(base):
    del base["time"]
    del base["drug"]["normal"]
    paths = {e.path: e for e in errors_of(base)}
    assert set(paths) == {"time", "drug.normal"}
    assert "stop_s" in paths["time"].hint


def test_non_string_key_from_yaml(tmp_path, base):
    path = tmp_path / "on.yaml"
    path.write_text(
        "grid: {shape: [8, 8, 1], voxel_size_m: 1e-5}\n"
        "drug: {normal: {diffusivity_m2_per_s: 2e-10}}\n"
        "time: {stop_s: 10}\n"
        "on: 1\n",
        encoding="utf-8",
    )
    item = only(path)
    assert item.path == "true"
    assert item.message == "key true is not a string"


def test_several_errors_are_reported_at_once(data_dir):
    with pytest.raises(ScenarioError) as info:
        load_scenario(data_dir / "many_errors.toml")
    err = info.value
    paths = [e.path for e in err.errors]
    assert paths == [
        "grid.shape[2]",
        "grid.voxel_size_m",
        "grid.voxl_size_m",
        "tissue.tumour.kind",
        "drug.normal.diffusivity_m2_per_s",
    ]
    lines = err.format().splitlines()
    assert len(lines) == len(paths)
    assert all(line.startswith(path + ": ") for line, path in zip(lines, paths))
    assert err.summary() == f"invalid scenario {data_dir / 'many_errors.toml'}: 5 errors"


# --------------------------------------------------------------------------------------------
# files


def test_yaml_1e_minus_5_loads_as_a_number(tmp_path, base):
    path = tmp_path / "s.yaml"
    path.write_text(
        "grid: {shape: [8, 8, 1], voxel_size_m: 1e-5}\n"
        "drug: {normal: {diffusivity_m2_per_s: 2e-10}, decay_rate_per_s: 1e-5}\n"
        "tissue: {tumour: {kind: ellipsoid, center_m: [0, 0, 0], semi_axes_m: [1e-5, 1e-5, 1e-5],"
        " necrotic_fraction: 1e-1}}\n"
        "time: {stop_s: 1e+3}\n",
        encoding="utf-8",
    )
    sc = load_scenario(path)
    assert sc.grid.voxel_size_m == 1e-5
    assert sc.drug.normal.diffusivity_m2_per_s == 2e-10
    assert sc.drug.decay_rate_per_s == 1e-5
    assert sc.tissue.tumour.necrotic_fraction == 0.1
    assert sc.time.stop_s == 1000.0


def test_empty_file(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    item = only(path)
    assert item.path == str(path)
    assert item.message == "file is empty"
    assert "[grid]" in item.hint


def test_file_with_only_comments(data_dir):
    item = only(data_dir / "comments_only.yaml")
    assert "no settings" in item.message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    item = only(path)
    assert (item.path, item.message) == (str(path), "file not found")


def test_directory_and_unknown_extension(tmp_path):
    assert "is a directory" in only(tmp_path).message
    path = tmp_path / "s.ini"
    path.write_text("x=1", encoding="utf-8")
    assert only(path).message == 'unknown scenario file type ".ini"'


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('title = "caf\xe9"\n'.encode("latin-1"))
    assert "is not UTF-8 text" in only(path).message


def test_toml_syntax_error_gives_the_line(data_dir):
    path = data_dir / "toml_syntax_error.toml"
    item = only(path)
    assert item.path == f"{path}:5"
    assert item.message.startswith("TOML syntax error at line 5, column ")


def test_yaml_syntax_error_gives_the_line(data_dir):
    path = data_dir / "yaml_syntax_error.yaml"
    item = only(path)
    assert item.path == f"{path}:4"
    assert item.message.startswith("YAML syntax error at line 4, column ")


def test_top_level_must_be_a_table(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    assert "not a list" in only(path).message


# --------------------------------------------------------------------------------------------
# cross-field checks


def test_stop_time_shorter_than_one_step(base):
    base["transport"] = {"dt_s": "2 h"}
    item = only(base)
    assert item.path == "time.stop_s"
    assert item.message.startswith("shorter than one step")
    assert "3600 s < transport.dt_s = 7200 s" in item.message


def test_exchange_vessels_need_a_permeability(base):
    base["vessels"] = [
        {"kind": "cylinder", "start_m": [0, 0, 0], "end_m": [1, 0, 0], "radius_m": 1e-6},
        {"kind": "cylinder", "start_m": [0, 0, 0], "end_m": [1, 0, 0], "radius_m": 1e-6, "wall": "exchange"},
    ]
    item = only(base)
    assert item.path == "drug.permeability_m_per_s"
    assert item.message == 'required because vessels[1] has wall = "exchange"'


def test_centres_must_lie_in_the_box_but_vessel_ends_need_not(base):
    base["tissue"] = {"tumour": {"kind": "sphere", "center_m": ["100 um", 0, 0], "radius_m": "10 um"}}
    base["drug"]["initial"] = {"kind": "gaussian", "center_m": [0, 0, "-1 um"], "sigma_m": 1e-6, "amount_mol": 1e-15}
    base["vessels"] = [{"kind": "cylinder", "start_m": ["-1 mm", 0, 0], "end_m": ["1 mm", 0, 0], "radius_m": 1e-6}]
    errors = errors_of(base)
    assert [e.path for e in errors] == ["tissue.tumour.center_m", "drug.initial.center_m"]
    assert "lies outside the grid box ((0, 0, 0) m to (80, 80, 10) µm)" in errors[0].message


def test_grid_too_large_for_memory_is_refused_before_allocating(base):
    base["grid"]["shape"] = [100_000, 100_000, 100_000]
    tracemalloc.start()
    try:
        start = time.perf_counter()
        item = only(base)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert item.path == "grid.shape"
    # 1e15 voxels × 82 B = 8.2e16 B = 7.64e7 GiB, printed with 3 significant digits
    assert item.message.startswith("100000×100000×100000 voxels need about 7.64e+07 GiB of memory, more than the ")
    assert item.message.endswith(" GiB available")
    assert peak < 50 * 1024**2  # nothing grid-sized was allocated (a 1e15-voxel array would not fit)
    assert elapsed < 5.0


def test_memory_limit_uses_the_precision(base, monkeypatch):
    monkeypatch.setattr(loader, "available_memory_bytes", lambda: 1024**3)
    base["grid"]["shape"] = [1024, 1024, 16]  # 16 Mi voxels
    item = only(base)  # float64: 16 Mi × (10·8 + 2) B = 1.28 GiB > 1 GiB
    assert item.message == "1024×1024×16 voxels need about 1.28 GiB of memory, more than the 1 GiB available"
    assert 'precision = "float32"' in item.hint
    base["precision"] = "float32"  # 16 Mi × (10·4 + 2) B = 0.656 GiB
    sc = load_scenario(base)
    assert estimate_memory_bytes(sc) == 1024 * 1024 * 16 * 42


def test_cross_field_errors_come_together(base):
    base["transport"] = {"dt_s": "2 h"}
    base["tissue"] = {"tumour": {"kind": "sphere", "center_m": [1, 1, 1], "radius_m": "10 um"}}
    assert [e.path for e in errors_of(base)] == ["time.stop_s", "tissue.tumour.center_m"]


def test_error_item_formatting():
    assert ErrorItem("a.b", "is bad", "fix it").format() == "a.b: is bad. Hint: fix it."
    assert ErrorItem("a.b", "is bad").format() == "a.b: is bad."
    assert ErrorItem("", "is bad", "did you mean x?").format() == "is bad. Hint: did you mean x?"
    assert ErrorItem("p", "m", "h").to_dict() == {"path": "p", "message": "m", "hint": "h"}
