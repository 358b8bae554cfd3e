"""Tests of nanosim.units: unit parsing, dimension checks, messages, pydantic types.

Conversions are compared with ``==``: the parser works in exact rational arithmetic and rounds
once, so the result is the double nearest the exact SI value, which is also what Python makes
of the decimal literal on the right-hand side. No tolerance is needed.
"""

import doctest
import json
import math

import pytest
from pydantic import BaseModel, ValidationError

import nanosim.units as units
from nanosim.units import (
    DIMENSIONS,
    Concentration,
    Diffusivity,
    Length,
    Time,
    UnitError,
    format_number,
    format_quantity,
    format_vector,
    parse_quantity,
    parse_unit,
    quantity,
)


@pytest.mark.parametrize(
    ("text", "dimension", "expected"),
    [
        ("20 um", "length", 2e-5),
        ("20 µm", "length", 2e-5),  # U+00B5 micro sign
        ("20 μm", "length", 2e-5),  # U+03BC Greek mu
        ("20um", "length", 2e-5),
        ("100 nm", "length", 1e-7),
        ("1.5 mm", "length", 1.5e-3),
        ("2 cm", "length", 0.02),
        ("-3 um", "length", -3e-6),
        (".5 um", "length", 5e-7),
        ("1e-5", "length", 1e-5),  # YAML 1.1 loads 1e-5 as this string
        ("2.5", "length", 2.5),
        ("5e-10 m^2/s", "diffusivity", 5e-10),
        ("5e-10 m2/s", "diffusivity", 5e-10),
        ("5e-10 m**2/s", "diffusivity", 5e-10),
        ("5e-10 m²/s", "diffusivity", 5e-10),
        ("1 um^2/s", "diffusivity", 1e-12),
        ("1e-6 cm^2/s", "diffusivity", 1e-10),
        ("72 h", "time", 259200.0),
        ("30 min", "time", 1800.0),
        ("2 d", "time", 172800.0),
        ("250 ms", "time", 0.25),
        ("0.1 1/s", "rate", 0.1),
        ("0.1 /s", "rate", 0.1),
        ("0.1 s^-1", "rate", 0.1),
        ("0.1 s^(-1)", "rate", 0.1),
        ("0.1 s-1", "rate", 0.1),
        ("0.1 s⁻¹", "rate", 0.1),
        ("1 1/h", "rate", 1 / 3600),
        ("36 1/h", "rate", 0.01),
        ("1 um/s", "velocity", 1e-6),
        ("0.55 mm/s", "velocity", 5.5e-4),
        ("3 uM", "concentration", 3e-3),
        ("2 mM", "concentration", 2.0),
        ("1 M", "concentration", 1000.0),
        ("1 mol/m^3", "concentration", 1.0),
        ("1 mol/L", "concentration", 1000.0),
        ("5 nmol/mL", "concentration", 5e-3),
        ("1 nmol", "amount", 1e-9),
        ("1.2 mPa*s", "viscosity", 1.2e-3),
        ("1.2 mPa s", "viscosity", 1.2e-3),
        ("1.2 mPa·s", "viscosity", 1.2e-3),
        ("15.6 mmHg", "pressure", 2079.829243674),  # 15.6 × 133.322387415 Pa, exact
        ("2 kPa", "pressure", 2000.0),
        ("310.15 K", "temperature", 310.15),
        ("1 mg", "mass", 1e-6),
        ("2 kg/(m*s)", "viscosity", 2.0),
        ("1 uL", "volume", 1e-9),
        ("50 %", "dimensionless", 0.5),
        ("0.5", "dimensionless", 0.5),
        ("464.8 g/mol", "molar mass", 0.4648),
    ],
)
def test_conversions_to_si(text, dimension, expected):
    assert parse_quantity(text, dimension) == expected


@pytest.mark.parametrize("value", [0, 3, 2.5, -1e-10, 1e300])
def test_numbers_are_taken_as_si(value):
    result = parse_quantity(value, "length")
    assert result == value
    assert isinstance(result, float)


def test_parse_unit_returns_size_and_dimension():
    assert parse_unit("m^2/s") == (1.0, (2, -1, 0, 0, 0))
    assert parse_unit("uM") == (1e-3, (-3, 0, 1, 0, 0))
    assert parse_unit("J/mol/K".replace("J", "kg*m^2/s^2")) == (1.0, (2, -2, -1, 1, -1))
    assert parse_unit("") == (1.0, (0, 0, 0, 0, 0))


def test_whole_symbols_win_over_prefix_splitting():
    # "min" is minutes, not milli-"in"; "mmHg" is not milli-mHg; "Mm" is megametres.
    assert parse_quantity("1 min", "time") == 60.0
    assert parse_quantity("1 mmHg", "pressure") == 133.322387415
    assert parse_quantity("1 Mm", "length") == 1e6
    assert parse_quantity("1 mM", "concentration") == 1.0


def test_wrong_dimension_names_both_dimensions():
    with pytest.raises(UnitError) as info:
        parse_quantity("5 kg", "length")
    assert str(info.value) == '"5 kg" has dimension mass, expected a length (e.g. "20 um" or a number in m)'


@pytest.mark.parametrize(
    ("text", "dimension", "found"),
    [
        ("5 m^2", "length", "dimension area"),
        ("1 s", "rate", "dimension time"),
        ("2e-10 m/s", "diffusivity", "dimension velocity"),
        ("3 umol", "concentration", "dimension amount"),
        ("50 %", "length", "no dimension"),
        ("1 m/s^2", "velocity", "dimension length time^-2"),
    ],
)
def test_dimension_errors(text, dimension, found):
    with pytest.raises(UnitError) as info:
        parse_quantity(text, dimension)
    assert f'"{text}" has {found},' in str(info.value)
    assert f"expected {DIMENSIONS[dimension].noun}" in str(info.value)


def test_field_name_prefixes_the_message():
    with pytest.raises(UnitError, match=r"^grid\.voxel_size_m: \"5 kg\" has dimension mass"):
        parse_quantity("5 kg", "length", field="grid.voxel_size_m")


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, "nan", "inf", "-Infinity", "inf m", "1e999", "1e999 m"]
)
def test_non_finite_values_are_errors(value):
    with pytest.raises(UnitError, match="not a finite number"):
        parse_quantity(value, "length")


def test_huge_exponents_do_not_hang():
    with pytest.raises(UnitError, match="not a finite number"):
        parse_quantity("1e99999999 m", "length")
    with pytest.raises(UnitError, match="exponent 99999 is too large"):
        parse_quantity("1 m^99999", "length")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("abc", '"abc" is not a quantity'),
        ("", '"" is not a quantity'),
        ("m 5", '"m 5" is not a quantity'),
        ("5 foo", 'unknown unit "foo"'),
        ("5 dm", 'unknown unit "dm"'),  # "d" (day) takes no prefixes; deci is not supported
        ("5 m^", "ends too early"),
        ("5 m^x", "integer exponent"),
        ("5 m^0.5", "exponents must be integers"),
        ("5 (m", "ends too early"),
        ("5 m)", 'unexpected ")"'),
        ("5 m$", 'unexpected character "$"'),
        ("5 m2^2", "two exponents"),
        (True, "got bool True"),
        (None, "got NoneType None"),
        ([1, 2], "got list [1, 2]"),
    ],
)
def test_junk_is_refused_with_the_expectation(value, fragment):
    with pytest.raises(UnitError) as info:
        parse_quantity(value, "length")
    message = str(info.value)
    assert fragment in message
    assert 'a length (e.g. "20 um" or a number in m)' in message


def test_unit_error_is_a_value_error():
    assert issubclass(UnitError, ValueError)


def test_unknown_dimension_name_is_a_programming_error():
    with pytest.raises(KeyError, match="unknown dimension 'lenght'"):
        parse_quantity(1.0, "lenght")


def test_formatting():
    assert format_number(1e-5) == "1e-5"
    assert format_number(20.0) == "20"
    assert format_quantity(2e-5, "length") == "20 µm"
    assert format_quantity(0.0, "length") == "0 m"
    assert format_quantity(1800.0, "time") == "30 min"
    assert format_quantity(3e-3, "concentration") == "3 µM"
    assert format_quantity(5e-10, "diffusivity") == "5e-10 m²/s"
    assert format_vector((0.0, 1e-4, 2e-4), "length") == "(0, 100, 200) µm"
    assert format_vector((0.0, 0.0, 0.0), "length") == "(0, 0, 0) m"


class _Example(BaseModel):
    radius_m: quantity("length", gt=0)
    depth_m: Length = 0.0
    dt_s: quantity("time", gt=0, special=("auto",)) = "auto"
    diffusivity_m2_per_s: Diffusivity = 1e-10
    level_mol_per_m3: Concentration = 0.0
    stop_s: Time = 1.0
    molar_mass_g_per_mol: quantity("molar mass", gt=0, unit="g/mol") = 464.8


def test_pydantic_types_convert_and_check_bounds():
    model = _Example(radius_m="5 um", depth_m="1e-5", dt_s="10 ms", level_mol_per_m3="3 uM",
                     molar_mass_g_per_mol="0.4648 kg/mol")
    assert model.radius_m == 5e-6
    assert model.depth_m == 1e-5
    assert model.dt_s == 0.01
    assert model.level_mol_per_m3 == 3e-3
    assert model.molar_mass_g_per_mol == 464.8  # a number in the field's own unit, g/mol
    assert _Example(radius_m=1.0, molar_mass_g_per_mol=100).molar_mass_g_per_mol == 100.0
    assert _Example(radius_m=1.0).dt_s == "auto"
    with pytest.raises(ValidationError) as info:
        _Example(radius_m="-5 um", dt_s="automatic", stop_s="5 kg")
    errors = {e["loc"][0]: e for e in info.value.errors()}
    assert errors["radius_m"]["type"] == "greater_than"
    assert errors["dt_s"]["type"] == "quantity"
    assert "has dimension mass, expected a time" in errors["stop_s"]["msg"]
    assert json.loads(_Example(radius_m="5 um").model_dump_json())["radius_m"] == 5e-6


def test_json_schema_is_number_or_string_with_unit():
    schema = _Example.model_json_schema()["properties"]
    radius = schema["radius_m"]["anyOf"]
    assert radius[0] == {"type": "number", "exclusiveMinimum": 0, "description": "length in m"}
    assert radius[1]["type"] == "string"
    assert "pattern" in radius[1]
    assert {"const": "auto"} in schema["dt_s"]["anyOf"]
    assert schema["diffusivity_m2_per_s"]["anyOf"][0]["description"] == "diffusivity in m^2/s"
    assert schema["molar_mass_g_per_mol"]["anyOf"][0]["description"] == "molar mass in g/mol"


def test_quantity_pattern_accepts_what_the_parser_accepts():
    import re

    pattern = re.compile(units.QUANTITY_PATTERN)
    for text in ("20 um", "1e-5", "5e-10 m^2/s", "0.1 1/s", "-3 um", ".5 um"):
        assert pattern.match(text), text
    for text in ("abc", "um 20", ""):
        assert not pattern.match(text), text


def test_docstring_examples():
    result = doctest.testmod(units)
    assert result.attempted > 0
    assert result.failed == 0
