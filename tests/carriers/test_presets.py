"""The carrier presets of scenarios/carriers/ (PHYSICS.md §10).

Each preset loads inside a minimal valid scenario, documents every number it sets (a comment with a
source or "unconfirmed" on the value's line or just above it), keeps its other fields when one is
overridden, and an unknown preset name is reported with the closest name. The galactosylated
micelle's log-normal size distribution reproduces the published mean and SD of its diameter.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from pathlib import Path

import pytest

from nanosim.scenario import ScenarioError, load_scenario
from nanosim.scenario.loader import preset_names, read_preset

PRESET_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "carriers"

EXPECTED = {
    "peg_liposome",
    "solid_lipid_spion",
    "folate_micelle_spion",
    "galactosylated_micelle",
    "peg_plga_nanoparticle",
    "ph_nanocomposite_spion",
    "plga_microsphere_iron",
    "plga_microsphere_catalase",
}

# every bundled preset, so that presets added later are checked too
ALL = sorted(preset_names())

# the route each design was given by in its source (PHYSICS.md §10)
ROUTES = {
    "ph_nanocomposite_spion": "hepatic_arterial",
    "plga_microsphere_iron": "embolisation",
    "plga_microsphere_catalase": "embolisation",
}

def scenario_with(carrier: dict, route_kind: str = "intravenous") -> dict:
    """A minimal valid carrier scenario (after scenarios/hcc_liposome_iv.toml, smaller box)."""
    return {
        "schema_version": 1,
        "title": "preset test",
        "grid": {"shape": [40, 40, 40], "voxel_size_m": "20 um"},
        "tissue": {"tumour": {"kind": "sphere", "center_m": ["400 um", "400 um", "400 um"],
                              "radius_m": "250 um", "necrotic_radius_m": "80 um"}},
        "network": {"kind": "liver_tumour"},
        "carrier": carrier,
        "body": {"species": "mouse" if route_kind == "intravenous" else "rabbit",
                 "tumour_volume_m3": "300 mm^3"},
        "route": {"kind": route_kind, "dose_drug_mg_per_kg": 5},
        "time": {"stop_s": "24 h"},
    }


def load_preset(name: str, **overrides):
    return load_scenario(scenario_with({"preset": name, **overrides}, ROUTES.get(name, "intravenous")))


# --------------------------------------------------------------------------------------------
# the set of presets


def test_every_preset_of_physics_md_section_10_is_bundled():
    assert EXPECTED <= set(ALL)
    assert {p.stem for p in PRESET_DIR.glob("*.toml")} == set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_preset_file_holds_only_a_carrier_table(name):
    data = tomllib.loads((PRESET_DIR / f"{name}.toml").read_text(encoding="utf-8"))
    assert set(data) == {"carrier"}
    assert "preset" not in data["carrier"]
    assert data["carrier"] == read_preset(name)


# --------------------------------------------------------------------------------------------
# (1) every preset validates inside a minimal scenario


@pytest.mark.parametrize("name", ALL)
def test_preset_loads_and_validates(name):
    sc = load_preset(name)
    c = sc.carrier
    assert c.preset == name
    assert c.radius_m > 0 and c.drug_per_carrier_mol > 0
    assert 0 < c.loading_efficiency <= 1
    assert c.blood.half_life_fast_s <= c.blood.half_life_slow_s
    for region in (c.normal, c.tumour):
        for rate in (region.binding_rate_per_s, region.internalisation_rate_per_s,
                     region.bound_internalisation_rate_per_s):
            # PHYSICS.md §5 placeholder range, or 0 for carriers that never reach the interstitium
            assert rate == 0 or 1e-5 <= rate <= 1e-3
    assert c.tumour.lymphatic_clearance_rate_per_s == 0  # tumours lack functional lymphatics
    assert name in sc.describe()


@pytest.mark.parametrize("name, kind", [
    ("peg_liposome", "gadolinium"),
    ("solid_lipid_spion", "spion"),
    ("folate_micelle_spion", "spion"),
    ("galactosylated_micelle", "none"),
    ("peg_plga_nanoparticle", "none"),
    ("ph_nanocomposite_spion", "spion"),
    ("plga_microsphere_iron", "spion"),
    ("plga_microsphere_catalase", "none"),
])
def test_imaging_agent_matches_the_source(name, kind):
    imaging = load_preset(name).carrier.imaging
    assert imaging.kind == kind
    assert (imaging.iron_mol_per_carrier() > 0) == (kind == "spion")


@pytest.mark.parametrize("name", ["plga_microsphere_iron", "plga_microsphere_catalase"])
def test_embolic_microspheres_are_13_um(name):
    c = load_preset(name).carrier
    assert c.radius_m == pytest.approx(6.5e-6)
    assert c.normal.ecm_hindrance == 0 and c.tumour.ecm_hindrance == 0


# --------------------------------------------------------------------------------------------
# (2) every number is documented

_ASSIGN = re.compile(r"""^\s*([A-Za-z0-9_."-]+)\s*=\s*(.*)$""")
_NUMBER = re.compile(r"^[+-]?(\d|\.\d|inf\b|nan\b)")
_SOURCE = re.compile(r"unconfirmed|PHYSICS\.md|\b(19|20)\d\d\b", re.IGNORECASE)


def _split_comment(rest: str) -> tuple[str, str]:
    """Value text and the trailing comment of one TOML line (``#`` outside strings)."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return rest[:i].strip(), rest[i + 1:].strip()
    return rest.strip(), ""


def _is_numeric(value: str) -> bool:
    """A bare number, or a quantity string such as "50 nm" (a string that starts with a number)."""
    if value[:1] in "\"'":
        return bool(_NUMBER.match(value[1:]))
    if value.startswith("["):
        return any(_is_numeric(v.strip()) for v in value.strip("[]").split(",") if v.strip())
    return bool(_NUMBER.match(value))


def undocumented_values(text: str) -> list[str]:
    """Lines that set a number without a source or "unconfirmed" in a comment on the line or above.

    "Above" is the block of whole-line comments directly over the value's line.
    """
    lines = text.splitlines()
    bad = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("#", "[")):
            continue
        m = _ASSIGN.match(line)
        if not m:
            continue
        value, comment = _split_comment(m.group(2))
        if not _is_numeric(value):
            continue
        block = []
        j = i - 1
        while j >= 0 and lines[j].lstrip().startswith("#"):
            block.append(lines[j].lstrip()[1:])
            j -= 1
        if not (_SOURCE.search(comment) or _SOURCE.search(" ".join(block))):
            bad.append(f"line {i + 1}: {line.strip()}")
    return bad


@pytest.mark.parametrize("name", ALL)
def test_every_number_has_a_source_or_is_marked_unconfirmed(name):
    text = (PRESET_DIR / f"{name}.toml").read_text(encoding="utf-8")
    assert undocumented_values(text) == []


def test_documentation_check_catches_a_bare_number():
    text = '[carrier]\nradius_m = "50 nm"   # Xiao 2016\nfast_fraction = 0.2\n'
    assert undocumented_values(text) == ["line 3: fast_fraction = 0.2"]
    text = '[carrier]\n# shape unconfirmed\nfast_fraction = 0.2\nname = "x"  # no number\n'
    assert undocumented_values(text) == []
    assert undocumented_values('a = "1 h"  # a comment without source\n') == ['line 1: a = "1 h"  # a comment without source']


# --------------------------------------------------------------------------------------------
# (3) overrides are field by field


@pytest.mark.parametrize("name", ALL)
def test_overriding_one_field_keeps_the_others(name):
    base = load_preset(name).carrier.model_dump()
    changed = load_preset(name, radius_m="60 nm").carrier.model_dump()
    assert changed["radius_m"] == pytest.approx(6e-8)
    assert base["radius_m"] != changed["radius_m"]
    changed["radius_m"] = base["radius_m"]
    assert changed == base


def test_overriding_a_nested_field_keeps_its_table():
    base = load_preset("solid_lipid_spion").carrier
    sc = load_preset("solid_lipid_spion", blood={"half_life_slow_s": "10 h"},
                     imaging={"cores_per_carrier": 50})
    c = sc.carrier
    assert c.blood.half_life_slow_s == pytest.approx(36000.0)
    assert c.blood.half_life_fast_s == base.blood.half_life_fast_s
    assert c.blood.fast_fraction == base.blood.fast_fraction
    assert c.imaging.kind == "spion" and c.imaging.cores_per_carrier == 50
    assert c.imaging.core_radius_m == base.imaging.core_radius_m
    assert c.tumour == base.tumour and c.drug_per_carrier_mol == base.drug_per_carrier_mol


def test_command_line_override_of_a_preset_field():
    data = scenario_with({"preset": "peg_plga_nanoparticle"})
    sc = load_scenario(data, ["carrier.tumour.ecm_hindrance=0.1"])
    base = load_preset("peg_plga_nanoparticle").carrier
    assert sc.carrier.tumour.ecm_hindrance == pytest.approx(0.1)
    assert sc.carrier.tumour.binding_rate_per_s == base.tumour.binding_rate_per_s
    assert sc.carrier.radius_m == base.radius_m


def test_loading_a_preset_does_not_change_the_mapping():
    data = scenario_with({"preset": "folate_micelle_spion", "radius_m": "30 nm"})
    before = copy.deepcopy(data)
    load_scenario(data)
    assert data == before


# --------------------------------------------------------------------------------------------
# (4) unknown preset names


@pytest.mark.parametrize("typo, close", [
    ("solid_lipid_spoin", "solid_lipid_spion"),
    ("galactosylated_micell", "galactosylated_micelle"),
    ("plga_microsphere_irn", "plga_microsphere_iron"),
])
def test_unknown_preset_names_carrier_preset_and_suggests_the_close_name(typo, close):
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario_with({"preset": typo}))
    errors = [e for e in info.value.errors if e.path == "carrier.preset"]
    assert len(errors) == 1, [e.format() for e in info.value.errors]
    assert repr(typo) in errors[0].message
    assert errors[0].hint.startswith(f'did you mean "{close}"?')
    for name in ALL:  # the hint lists every preset
        assert name in errors[0].hint
    assert "carrier.preset" in str(info.value)


# --------------------------------------------------------------------------------------------
# (5) the galactosylated micelle's size distribution


def test_galactosylated_micelle_lognormal_reproduces_mean_and_sd_of_diameter():
    c = load_preset("galactosylated_micelle").carrier
    sigma2 = math.log(c.radius_gsd) ** 2
    mean_d = 2.0 * c.radius_m * math.exp(sigma2 / 2.0)         # analytic log-normal mean
    sd_d = mean_d * math.sqrt(math.expm1(sigma2))               # analytic log-normal SD
    assert mean_d == pytest.approx(101.8e-9, rel=1e-6)
    assert sd_d == pytest.approx(64.3e-9, rel=1e-6)
    assert abs(mean_d * 1e9 - 101.8) < 1e-6 * 101.8 and abs(sd_d * 1e9 - 64.3) < 1e-6 * 64.3
    assert c.size_classes > 1
