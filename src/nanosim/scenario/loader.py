"""Loading scenarios: files or mappings, command-line overrides, validation, cross-field checks.

:func:`load_scenario` is the one way in. It reads TOML (``tomllib``) or YAML
(``yaml.safe_load``; nothing in the file is executed), applies ``key=value`` overrides, validates
against :class:`~nanosim.scenario.schema.Scenario`, runs the checks that relate several fields,
and reports every problem at once as a :class:`~nanosim.scenario.errors.ScenarioError`.

The returned scenario keeps its provenance (see :class:`~nanosim.scenario.schema.Scenario`):
``scenario.source_text`` (the file's text, or a JSON dump of a mapping), ``scenario.source_path``
(or None) and ``scenario.overrides``.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import ValidationError

from nanosim.scenario.errors import (
    ErrorItem,
    ScenarioError,
    field_type,
    is_model,
    join_path,
    kind_members,
    sequence_item,
    translate_validation_error,
    unwrap,
)
from nanosim.scenario.schema import EllipsoidTumour, GaussianInitial, Scenario, SphereTumour
from nanosim.units import format_number, format_vector

__all__ = [
    "load_scenario",
    "parse_override",
    "check_scenario",
    "estimate_memory_bytes",
    "available_memory_bytes",
    "schema_json",
    "SUFFIXES",
]

SUFFIXES = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}
"""Scenario file types by extension."""

_GIB = 1024**3
_FIELDS_PER_VOXEL = 10  # working field arrays per voxel budgeted by estimate_memory_bytes
_BYTES_PER_VOXEL_MASKS = 2  # one-byte region and vessel maps


# --------------------------------------------------------------------------------------------
# reading files


def _file_error(path: Path, message: str, hint: str = "", line: int | None = None) -> ScenarioError:
    where = f"{path}:{line}" if line is not None else str(path)
    return ScenarioError([ErrorItem(where, message, hint)], source=str(path))


def _read_file(path: Path) -> tuple[dict[str, Any], str]:
    kinds = ", ".join(SUFFIXES)
    if not path.exists():
        raise _file_error(path, "file not found", "check the path and the file name")
    if path.is_dir():
        raise _file_error(path, "is a directory, not a scenario file", f"give a scenario file ({kinds})")
    file_type = SUFFIXES.get(path.suffix.lower())
    if file_type is None:
        raise _file_error(
            path, f'unknown scenario file type "{path.suffix}"', f"scenario files end in {kinds}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _file_error(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})", "save it as UTF-8") from None
    except OSError as exc:
        raise _file_error(path, f"cannot be read: {exc.strerror or exc}", "check the file's permissions") from None
    empty_hint = "a scenario needs at least [grid], [drug.normal] and [time]; see the files in scenarios/"
    if not text.strip():
        raise _file_error(path, "file is empty", empty_hint)

    if file_type == "TOML":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            m = re.search(r"\(at line (\d+), column (\d+)\)", message)
            line = int(m.group(1)) if m else None
            reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message) or "invalid TOML"
            where = f" at line {m.group(1)}, column {m.group(2)}" if m else ""
            raise _file_error(
                path,
                f"TOML syntax error{where}: {reason}",
                'TOML needs key = value, strings in quotes ("20 um"), [table] headers; '
                "look at this line and the one before",
                line,
            ) from None
    elif file_type == "YAML":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            where = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
            raise _file_error(
                path,
                f"YAML syntax error{where}: {problem}",
                "YAML needs key: value with consistent indentation (spaces, not tabs)",
                line,
            ) from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _file_error(
                path, f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}", "", exc.lineno
            ) from None

    if data is None or data == {}:
        raise _file_error(path, "file has no settings (only comments or blank lines)", empty_hint)
    if not isinstance(data, dict):
        raise _file_error(
            path, f"must hold a table of settings at the top level, not a {type(data).__name__}", empty_hint
        )
    return data, text


# --------------------------------------------------------------------------------------------
# overrides

_KEY_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


class _OverrideError(Exception):
    def __init__(self, item: ErrorItem):
        super().__init__(item.format())
        self.item = item


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Split ``"path.to.key=value"`` into key parts and a value.

    The value is read as a TOML value (``3``, ``2.5``, ``"20 um"``, ``[1, 2, 3]``, ``true``,
    ``{kind = "sphere", ...}``); anything that is not valid TOML is taken as a string, so
    ``grid.voxel_size_m=20 um`` works without quotes.

    Parameters
    ----------
    text : str
        The override, ``key=value``; keys may index lists: ``vessels[0].radius_m=5e-6``.

    Returns
    -------
    parts : list of str and int
        The key path (``["vessels", 0, "radius_m"]``).
    value : object
        The parsed value.

    Raises
    ------
    ScenarioError
        If the text has no ``=`` or the key is malformed.
    """
    try:
        return _parse_override(text)
    except _OverrideError as exc:
        raise ScenarioError([exc.item]) from None


def _parse_override(text: str) -> tuple[list[str | int], Any]:
    label = f"--set {text}"
    if not isinstance(text, str) or "=" not in text:
        raise _OverrideError(
            ErrorItem(label, "an override must have the form key=value", 'e.g. --set grid.voxel_size_m="20 um"')
        )
    key, raw = text.split("=", 1)
    key = key.strip()
    parts: list[str | int] = []
    for piece in key.split("."):
        m = _KEY_PART.match(piece.strip())
        if m is None:
            raise _OverrideError(
                ErrorItem(
                    label,
                    f'"{key}" is not a key path',
                    "write keys separated by dots, list items as name[index], e.g. vessels[0].radius_m",
                )
            )
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare words such as sphere or 20 um
    return parts, value


def _shorthand(value: str, next_part: str | int) -> Any:
    # A string standing for a table is expanded when a key below it is overridden:
    # boundary = "periodic" then boundary.z=... ; tumour = "sphere" then tumour.radius_m=...
    if next_part in ("x", "y", "z"):
        return {"x": value, "y": value, "z": value}
    return {"kind": value}


def _default_table(parts: list[str | int]) -> dict[str, Any]:
    """The values of the table at ``parts`` when the schema fills it with a default model
    (e.g. ``extravasation.sinusoid``); ``{}`` where there is none."""
    from pydantic import BaseModel

    from nanosim.scenario.schema import Scenario

    model: Any = Scenario
    value: Any = None
    for part in parts:
        if not (isinstance(part, str) and isinstance(model, type) and issubclass(model, BaseModel)):
            return {}
        field = model.model_fields.get(part)
        if field is None:
            return {}
        if value is None:
            value = field.get_default(call_default_factory=True)
        else:
            value = getattr(value, part, None)
        if not isinstance(value, BaseModel):
            return {}
        model = type(value)
    return value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else {}


def _apply_override(data: dict[str, Any], text: str, parts: list[str | int], value: Any) -> None:
    label = f"--set {text}"
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = join_path(parts[: i + 1])
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise _OverrideError(
                    ErrorItem(
                        label,
                        f"{where}: there is no item {part} (the list has {size})",
                        "only existing list items can be overridden",
                    )
                )
            if last:
                node[part] = value
                return
            child = node[part]
        else:
            if not isinstance(node, dict):
                raise _OverrideError(
                    ErrorItem(label, f'{join_path(parts[:i])} holds {type(node).__name__}, not a table', "")
                )
            if last:
                node[part] = value
                return
            child = node.get(part)
            if child is None:
                # a table the file leaves to its default: start from the default's values, so that
                # one field can be overridden without restating the others
                child = [] if isinstance(parts[i + 1], int) else _default_table(parts[: i + 1])
                node[part] = child
        if isinstance(child, str) and isinstance(parts[i + 1], str):
            child = _shorthand(child, parts[i + 1])
            node[part] = child
        node = child


def _check_override_path(data: dict[str, Any], text: str, parts: list[str | int]) -> None:
    """Check that an override's key exists in the schema, given the (overridden) data."""
    label = f"--set {text}"
    tp: Any = Scenario
    node: Any = data
    default_kind: str | None = None
    for i, part in enumerate(parts):
        where = join_path(parts[:i]) or "the scenario"
        core, _ = unwrap(tp)
        if isinstance(part, int):
            if get_origin(core) not in (list, tuple):
                raise _OverrideError(ErrorItem(label, f"{where} is not a list", ""))
            tp = sequence_item(core, part)
            node = node[part] if isinstance(node, list) and part < len(node) else None
            default_kind = None
            continue
        members = kind_members(core)
        scope = ""
        if members:
            kind = node.get("kind") if isinstance(node, dict) else None
            if kind is None:
                kind = default_kind
            if kind not in members:
                raise _OverrideError(
                    ErrorItem(
                        label,
                        f'cannot tell which kind {where} is (kind = {kind!r})',
                        f"set {where}.kind too; allowed kinds: {', '.join(members)}",
                    )
                )
            core = members[kind]
            scope = f' (kind "{kind}")'
        if get_origin(core) is dict:
            return  # a free-form table (e.g. network.parameters): its keys are checked on validation
        if not is_model(core):
            raise _OverrideError(
                ErrorItem(label, f'{where} is a single value, it has no key "{part}"', f"set {where}=... instead")
            )
        if part not in core.model_fields:
            keys = list(core.model_fields)
            close = difflib.get_close_matches(part, keys, n=1, cutoff=0.6)
            suggestion = f'did you mean "{close[0]}"? ' if close else ""
            raise _OverrideError(
                ErrorItem(
                    label,
                    f'names a key that does not exist: no "{part}" in {where}{scope}',
                    f"{suggestion}Keys there: {', '.join(keys)}",
                )
            )
        info = core.model_fields[part]
        default = info.get_default(call_default_factory=True)
        default_kind = getattr(default, "kind", None)
        tp = field_type(info)
        node = node.get(part) if isinstance(node, dict) else None


def _apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> tuple[dict[str, Any], list[ErrorItem]]:
    """Apply overrides; returns the new data (only good overrides applied) and the bad ones' errors."""
    parsed: list[tuple[str, list[str | int], Any]] = []
    errors: list[ErrorItem] = []
    for text in overrides:
        try:
            parts, value = _parse_override(text)
        except _OverrideError as exc:
            errors.append(exc.item)
            continue
        parsed.append((text, parts, value))

    # First apply all, so that an override may set a kind that another one relies on,
    # whatever their order; then check each key against the schema.
    trial = copy.deepcopy(data)
    applicable = []
    for text, parts, value in parsed:
        try:
            _apply_override(trial, text, parts, value)
            applicable.append((text, parts, value))
        except _OverrideError as exc:
            errors.append(exc.item)
    good = []
    for text, parts, value in applicable:
        try:
            _check_override_path(trial, text, parts)
            good.append((text, parts, value))
        except _OverrideError as exc:
            errors.append(exc.item)
    if len(good) == len(applicable):
        return trial, errors
    # Re-apply only the good ones, so a bad key is reported once (as a bad override).
    result = copy.deepcopy(data)
    for text, parts, value in good:
        _apply_override(result, text, parts, value)
    return result, errors


# --------------------------------------------------------------------------------------------
# cross-field checks


def estimate_memory_bytes(scenario: Scenario) -> int:
    """Memory a run of `scenario` is budgeted to need, in bytes.

    nx·ny·nz·(10·itemsize + 2): ten floating-point fields per voxel (drug fields, their
    updates and work arrays) plus two one-byte maps (region, vessel); itemsize is 4 for
    float32 and 8 for float64 and "auto" (the CPU choice, the larger of the two).
    """
    itemsize = 4 if scenario.precision == "float32" else 8
    return scenario.grid.n_voxels * (_FIELDS_PER_VOXEL * itemsize + _BYTES_PER_VOXEL_MASKS)


def available_memory_bytes() -> int | None:
    """Memory available to a new run in bytes: MemAvailable from /proc/meminfo, else sysconf.

    Returns None when neither source is readable.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_scenario(scenario: Scenario, *, check_memory: bool = True) -> list[ErrorItem]:
    """Checks that relate several fields of a schema-valid scenario.

    Parameters
    ----------
    scenario : Scenario
        A scenario that passed schema validation.
    check_memory : bool
        Also refuse grids larger than the available memory.

    Returns
    -------
    list of ErrorItem
        Every problem found (empty if none).
    """
    errors: list[ErrorItem] = []
    dt = scenario.transport.dt_s
    stop = scenario.time.stop_s
    if dt != "auto" and stop < dt:
        errors.append(
            ErrorItem(
                "time.stop_s",
                f"shorter than one step ({format_number(stop)} s < transport.dt_s = {format_number(dt)} s)",
                "increase time.stop_s or reduce transport.dt_s (or set it to \"auto\")",
            )
        )

    drug = scenario.drug
    errors += check_carriers(scenario)
    exchange = [i for i, v in enumerate(scenario.vessels) if v.wall == "exchange"]
    if exchange and drug is not None and drug.permeability_m_per_s is None:
        which = ", ".join(f"vessels[{i}]" for i in exchange)
        errors.append(
            ErrorItem(
                "drug.permeability_m_per_s",
                f'required because {which} {"has" if len(exchange) == 1 else "have"} wall = "exchange"',
                'give the wall permeability in m/s, e.g. "1e-7 m/s", or use wall = "fixed_concentration"',
            )
        )

    net = scenario.network
    if net is not None and drug is not None and drug.permeability_m_per_s is None:
        errors.append(
            ErrorItem(
                "drug.permeability_m_per_s",
                f'required because the scenario has a network (kind = "{net.kind}") through whose walls '
                "the drug exchanges with plasma",
                'give the wall permeability in m/s, e.g. "1e-7 m/s"',
            )
        )
    if scenario.interstitial.vascular_pressure_pa == "network" and (
            net is None or net.kind in ("uniform_perfusion", "mask")):
        errors.append(
            ErrorItem(
                "interstitial.vascular_pressure_pa",
                '"network" needs a vessel network with blood flow'
                + ("" if net is None else f' (network.kind = "{net.kind}" has none)'),
                'give a pressure (e.g. "15.6 mmHg") or a [network] of kind straight, bifurcation, '
                "liver_tumour or file",
            )
        )
    if scenario.interstitial.solve and net is None:
        errors.append(
            ErrorItem(
                "interstitial.solve",
                "needs a source of fluid: the scenario has no [network]",
                'add a [network] (kind = "uniform_perfusion" for the Baxter–Jain uniformly perfused tissue)',
            )
        )
    if net is not None and net.kind == "liver_tumour":
        from ..vasculature.build import liver_tumour_params

        try:
            liver_tumour_params(scenario)
        except ValueError as exc:
            where, _, what = str(exc).partition(": ")
            errors.append(ErrorItem(where if where.startswith(("network.", "tissue.")) else "network.parameters",
                                    what or str(exc), "see nanosim.vasculature.generate.LiverTumourParams for "
                                    "the parameters, their units and defaults"))
    for key in ("path",):
        path = getattr(net, key, None)
        if path is not None:
            base = scenario.source_path.parent if scenario.source_path is not None else Path.cwd()
            full = Path(path) if Path(path).is_absolute() else base / path
            if not full.exists():
                errors.append(ErrorItem(f"network.{key}", f"{full} does not exist",
                                        "give a path relative to the scenario file's folder, or an absolute one"))

    grid = scenario.grid
    box = (
        f"{format_vector(grid.origin_m, 'length')} to "
        f"{format_vector(tuple(o + e for o, e in zip(grid.origin_m, grid.extent_m)), 'length')}"
    )
    tumour = scenario.tissue.tumour
    if isinstance(tumour, (SphereTumour, EllipsoidTumour)) and not grid.contains(tumour.center_m):
        # A centre outside the box is allowed while the tumour reaches into the box: the box then
        # samples part of a larger tumour (e.g. its rim and the liver beyond). Refused only when the
        # tumour misses the box: the box point nearest the centre lies outside the tumour.
        axes = (tumour.radius_m,) * 3 if isinstance(tumour, SphereTumour) else tuple(tumour.semi_axes_m)
        upper = tuple(o + e for o, e in zip(grid.origin_m, grid.extent_m))
        nearest = tuple(min(max(c, o), u) for c, o, u in zip(tumour.center_m, grid.origin_m, upper))
        if sum(((p - c) / a) ** 2 for p, c, a in zip(nearest, tumour.center_m, axes)) >= 1.0:
            from nanosim.units import format_quantity

            size = (f"radius_m {format_quantity(tumour.radius_m, 'length')}" if isinstance(tumour, SphereTumour)
                    else f"semi_axes_m {format_vector(axes, 'length')}")
            errors.append(
                ErrorItem(
                    "tissue.tumour.center_m",
                    f"{format_vector(tumour.center_m, 'length')} lies outside the grid box ({box}) and the tumour "
                    f"({size}) does not reach the box: the box point nearest the centre, "
                    f"{format_vector(nearest, 'length')}, lies outside it",
                    "move the centre into the box, or close enough that the tumour overlaps the box (a centre "
                    "outside the box is allowed when the box samples part of a larger tumour), or enlarge the "
                    "tumour or grid.shape / grid.voxel_size_m / grid.origin_m",
                )
            )
    initial = drug.initial if drug is not None else None
    if isinstance(initial, GaussianInitial) and not grid.contains(initial.center_m):
        errors.append(
            ErrorItem(
                "drug.initial.center_m",
                f"{format_vector(initial.center_m, 'length')} lies outside the grid box ({box})",
                "move the centre into the box",
            )
        )

    if check_memory:
        needed = estimate_memory_bytes(scenario)
        available = available_memory_bytes()
        if available is not None and needed > available:
            nx, ny, nz = grid.shape
            hint = "use fewer or larger voxels (grid.shape, grid.voxel_size_m)"
            if scenario.precision != "float32":
                hint += ', or precision = "float32"'
            errors.append(
                ErrorItem(
                    "grid.shape",
                    f"{nx}×{ny}×{nz} voxels need about {needed / _GIB:.3g} GiB of memory, "
                    f"more than the {available / _GIB:.3g} GiB available",
                    hint,
                )
            )
    return errors


def check_carriers(scenario: Scenario) -> list[ErrorItem]:
    """Cross-field checks of the carrier tables (carrier, body, route, network)."""
    errors: list[ErrorItem] = []
    if scenario.carrier is None:
        if scenario.drug is None:
            errors.append(ErrorItem("drug", "missing: a scenario needs a [drug] table, a [carrier] table, or both",
                                    "add a [drug] table (free drug) or a [carrier] table with [body] and [route]"))
        if scenario.route is not None:
            errors.append(ErrorItem("route", "given without a [carrier]",
                                    "add a [carrier] table (e.g. preset = \"peg_liposome\") or remove [route]"))
        errors += _check_systemic_drug(scenario)
        return errors
    for key, example in (("body", 'species = "mouse" and tumour_volume_m3 = "300 mm^3"'),
                         ("route", 'kind = "intravenous" and dose_drug_mg_per_kg = 5')):
        if getattr(scenario, key) is None:
            errors.append(ErrorItem(key, "required with a [carrier]", f"add a [{key}] table, e.g. {example}"))
    net = scenario.network
    if net is None or net.kind in ("uniform_perfusion", "mask"):
        what = "no [network]" if net is None else f'network.kind = "{net.kind}", which has no segments'
        errors.append(ErrorItem("network", f"carriers travel through vessel segments; the scenario has {what}",
                                'use a network of kind "liver_tumour", "straight", "bifurcation" or "file"'))
    if scenario.body is not None and scenario.body.tumour_volume_m3 is None:
        errors.append(ErrorItem("body.tumour_volume_m3", "required with a [carrier]: % injected dose in the tumour "
                                "is the box's tumour amount scaled to the whole tumour", 'e.g. "300 mm^3"'))
    errors += _check_systemic_drug(scenario)
    if scenario.tissue.tumour.kind == "none" and scenario.body is not None:
        errors.append(ErrorItem("tissue.tumour", "the box has no tumour, so % injected dose in the tumour "
                                "cannot be scaled to body.tumour_volume_m3", "add a [tissue.tumour]"))
    return errors


def _check_systemic_drug(scenario: Scenario) -> list[ErrorItem]:
    drug = scenario.drug
    if drug is not None and drug.plasma.kind == "systemic" and scenario.body is None:
        return [ErrorItem("body", 'required with drug.plasma.kind = "systemic" (body mass and species scale the '
                          "drug's pharmacokinetics)", 'add [body] with species = "mouse" (or rat, rabbit, human)')]
    return []


# --------------------------------------------------------------------------------------------
# carrier presets


def preset_names() -> list[str]:
    """Names of the bundled carrier presets (scenarios/carriers/*.toml)."""
    from importlib import resources

    return sorted(p.name[:-5] for p in resources.files("nanosim.carrier_presets").iterdir()
                  if p.name.endswith(".toml"))


def read_preset(name: str) -> dict[str, Any]:
    """The carrier table of preset ``name`` (raises KeyError with the known names)."""
    from importlib import resources

    res = resources.files("nanosim.carrier_presets") / f"{name}.toml"
    if not res.is_file():
        raise KeyError(name)
    return tomllib.loads(res.read_text(encoding="utf-8"))["carrier"]


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and \
                value.get("kind", out[key].get("kind")) == out[key].get("kind"):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _apply_preset(data: dict[str, Any]) -> list[ErrorItem]:
    """Replace ``carrier`` by its preset overridden field by field (nested tables merged)."""
    carrier = data.get("carrier")
    if not isinstance(carrier, Mapping) or carrier.get("preset") is None:
        return []
    name = carrier["preset"]
    try:
        base = read_preset(str(name))
    except KeyError:
        close = difflib.get_close_matches(str(name), preset_names(), n=1)
        hint = (f'did you mean "{close[0]}"? ' if close else "") + "presets: " + ", ".join(preset_names())
        return [ErrorItem("carrier.preset", f"unknown preset {name!r}", hint)]
    data["carrier"] = _deep_merge(base, carrier)
    return []


# --------------------------------------------------------------------------------------------
# public entry points


def load_scenario(
    source: str | os.PathLike[str] | Mapping[str, Any] | Scenario,
    overrides: Sequence[str] | None = None,
) -> Scenario:
    """Read, override and validate a scenario.

    Parameters
    ----------
    source : str, path-like, mapping or Scenario
        A scenario file (``.toml``, ``.yaml``/``.yml`` or ``.json``), a mapping with the same
        structure, or a Scenario to re-validate with `overrides`.
    overrides : sequence of str, optional
        ``"path.to.key=value"`` strings applied in order on top of the source (values are TOML
        values; bare words are strings), e.g. ``["grid.voxel_size_m=20 um", "seed=3"]``.

    Returns
    -------
    Scenario
        The validated scenario, with ``source_text``, ``source_path`` and ``overrides`` set.

    Raises
    ------
    ScenarioError
        With every problem found: unreadable or malformed file, unknown keys (with the closest
        valid key), wrong types or units, out-of-range values, bad overrides, and the
        cross-field checks of :func:`check_scenario`.

    Examples
    --------
    >>> sc = load_scenario({"grid": {"shape": [8, 8, 1], "voxel_size_m": "10 um"},
    ...                     "drug": {"normal": {"diffusivity_m2_per_s": 2e-10}},
    ...                     "time": {"stop_s": "1 h"}}, overrides=["seed=7"])
    >>> sc.grid.voxel_size_m, sc.time.stop_s, sc.seed
    (1e-05, 3600.0, 7)
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    overrides = list(overrides or [])
    source_path: Path | None = None
    if isinstance(source, Scenario):
        data = source.model_dump(mode="json")
        text = source.source_text
        source_path = source.source_path
        overrides = list(source.overrides) + overrides
        label = str(source_path) if source_path else ""
    elif isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        label = ""
    elif isinstance(source, (str, os.PathLike)):
        source_path = Path(source)
        data, text = _read_file(source_path)
        label = str(source_path)
    else:
        raise TypeError(f"load_scenario expects a file path or a mapping, got {type(source).__name__}")

    data, errors = _apply_overrides(data, overrides)
    errors += _apply_preset(data)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(errors + translate_validation_error(exc, Scenario), source=label) from None
    errors += check_scenario(scenario)
    if errors:
        raise ScenarioError(errors, source=label)
    scenario._source_text = text
    scenario._source_path = source_path
    scenario._overrides = tuple(overrides)
    return scenario


def schema_json() -> dict[str, Any]:
    """The JSON Schema of scenario files (draft 2020-12), for editors and other tools."""
    schema = Scenario.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "nanosim scenario",
        **{k: v for k, v in schema.items() if k != "title"},
    }
