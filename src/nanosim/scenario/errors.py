"""Scenario errors: every problem in a scenario, each with its path, what is wrong and a fix.

:class:`ScenarioError` carries a list of :class:`ErrorItem`; :func:`translate_validation_error`
turns pydantic's errors into them, writing paths the way a user writes keys
(``vessels[0].radius_m``) and phrasing messages in terms of the scenario file.

Example of :meth:`ScenarioError.format` output (one line per problem)::

    grid.voxel_size_m: must be > 0 (got -1). Hint: a length > 0 in m, e.g. "20 um".
    grid.voxl_size_m: unknown key "voxl_size_m". Hint: did you mean "voxel_size_m"? Keys here: ...
    tissue.tumour.kind: unknown kind "spere". Hint: did you mean "sphere"? allowed kinds: ...
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import asdict, dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from nanosim.units import QuantitySpec, format_number

__all__ = ["ErrorItem", "ScenarioError", "translate_validation_error"]


@dataclass(frozen=True)
class ErrorItem:
    """One problem in a scenario.

    Parameters
    ----------
    path : str
        Where: a dotted key path with list indices (``vessels[0].radius_m``), or the file
        (``scenario.toml:12`` for a syntax error on line 12).
    message : str
        What is wrong, without a final full stop.
    hint : str
        How to fix it (may be empty).
    """

    path: str
    message: str
    hint: str = ""

    def format(self) -> str:
        """``path: message. Hint: hint.``"""
        text = f"{self.path}: {self.message}" if self.path else self.message
        if not text.endswith((".", "?", "!")):
            text += "."
        if self.hint:
            hint = self.hint if self.hint.endswith((".", "?", "!")) else self.hint + "."
            text += f" Hint: {hint}"
        return text

    def to_dict(self) -> dict[str, str]:
        """``{"path": ..., "message": ..., "hint": ...}`` for JSON output."""
        return asdict(self)

    def __str__(self) -> str:
        return self.format()


class ScenarioError(Exception):
    """A scenario that cannot be used, with every problem found.

    Parameters
    ----------
    errors : list of ErrorItem
        The problems, in the order they were found.
    source : str, optional
        Where the scenario came from (a file name), for the summary line.
    """

    def __init__(self, errors: list[ErrorItem], source: str = ""):
        self.errors = list(errors)
        self.source = source
        super().__init__(self.format())

    def format(self) -> str:
        """One line per problem: ``path: message. Hint: hint.``"""
        return "\n".join(item.format() for item in self.errors)

    def summary(self) -> str:
        """A heading line: ``invalid scenario x.toml: 3 errors``."""
        n = len(self.errors)
        where = f" {self.source}" if self.source else ""
        return f"invalid scenario{where}: {n} error{'s' if n != 1 else ''}"

    def __str__(self) -> str:
        return self.format()


# --------------------------------------------------------------------------------------------
# walking the model tree along a pydantic location


def unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` and ``Optional`` from a type, collecting the annotation metadata."""
    metadata: list[Any] = []
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            args = get_args(tp)
            tp, metadata = args[0], metadata + list(args[1:])
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp, metadata


def is_model(tp: Any) -> bool:
    """Whether `tp` is a pydantic model class."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def kind_members(tp: Any) -> dict[str, type[BaseModel]]:
    """The models of a union discriminated on ``kind``, by kind (empty for anything else)."""
    tp, _ = unwrap(tp)
    members = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)
    out: dict[str, type[BaseModel]] = {}
    for member in members:
        member, _ = unwrap(member)
        if is_model(member) and "kind" in member.model_fields:
            kind_type, _ = unwrap(member.model_fields["kind"].annotation)
            if get_origin(kind_type) is Literal and len(get_args(kind_type)) == 1:
                out[get_args(kind_type)[0]] = member
    # A single model whose kind has several values (a boundary condition) is not a union.
    if len(members) == 1 and not out:
        return {}
    return out


def field_type(info: FieldInfo) -> Any:
    """The full type of a model field, with its metadata re-attached."""
    if info.metadata:
        return typing.Annotated[(info.annotation, *info.metadata)]
    return info.annotation


def sequence_item(tp: Any, index: int) -> Any:
    """Type of item `index` of a list or tuple type (``Any`` when unknown)."""
    args = get_args(tp)
    if get_origin(tp) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[index] if 0 <= index < len(args) else Any
    return args[0] if args else Any


@dataclass
class _Location:
    path: str
    tp: Any  # type at the end of the walk (None when it ran off the schema)
    field: FieldInfo | None  # the field the walk ended on, if it ended on one
    parent: type[BaseModel] | None  # the model holding the last key
    kind: str | None  # discriminator value of that model, if it came from a union


def join_path(parts: list[str | int]) -> str:
    """Join keys and list indices: ``["vessels", 0, "radius_m"]`` → ``vessels[0].radius_m``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def locate(root: type[BaseModel], loc: tuple[Any, ...]) -> _Location:
    """Follow a pydantic error location through the model tree.

    Discriminator tags and union-member labels in `loc` are dropped from the path; keys the
    schema does not know are kept (they are what the user wrote).
    """
    parts: list[str | int] = []
    tp: Any = root
    field: FieldInfo | None = None
    parent: type[BaseModel] | None = None
    kind: str | None = None
    for element in loc:
        core, _ = unwrap(tp) if tp is not None else (None, [])
        if isinstance(element, bool) or not isinstance(element, (int, str)):
            element = str(element)
        if isinstance(element, int) and get_origin(core) in (list, tuple):
            parts.append(element)
            tp, field = sequence_item(core, element), None
            continue
        if is_model(core):
            parent = core
            kind_type = core.model_fields.get("kind")
            kind = None
            if kind_type is not None:
                kinds = get_args(unwrap(kind_type.annotation)[0])
                kind = kinds[0] if len(kinds) == 1 else None
            if element == kind and element not in core.model_fields:
                continue  # the tag of a one-member discriminated union
            parts.append(element if isinstance(element, (str, int)) else str(element))
            if isinstance(element, str) and element in core.model_fields:
                field = core.model_fields[element]
                tp = field_type(field)
            else:
                tp, field = None, None  # an unknown key
            continue
        members = kind_members(core) if core is not None else {}
        if isinstance(element, str) and element in members:
            tp = members[element]
            continue
        # a union-member label such as "literal['auto']": not part of the user's path
    return _Location(join_path(parts), tp, field, parent, kind)


# --------------------------------------------------------------------------------------------
# messages


def show(value: Any) -> str:
    """A value as the user would write it in a scenario file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.1f}"  # keep "3.0" distinct from the integer 3
        return format_number(value, 12)
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _quantity_spec(tp: Any) -> QuantitySpec | None:
    if tp is None:
        return None
    core, metadata = unwrap(tp)
    for item in metadata:
        if isinstance(item, QuantitySpec):
            return item
    return None


def _literal_values(tp: Any) -> tuple[Any, ...]:
    core, _ = unwrap(tp) if tp is not None else (None, [])
    if get_origin(core) is Literal:
        return get_args(core)
    if get_origin(core) in (Union, types.UnionType):
        values: tuple[Any, ...] = ()
        for arg in get_args(core):
            values += _literal_values(arg)
        return values
    return ()


def describe_type(tp: Any) -> str:
    """What a value of type `tp` looks like, in scenario-file words."""
    if tp is None:
        return "a value"
    spec = _quantity_spec(tp)
    if spec is not None:
        return spec.hint
    core, _ = unwrap(tp)
    literals = _literal_values(tp)
    if literals:
        return "one of " + ", ".join(show(v) for v in literals)
    if is_model(core):
        return "a table with keys " + ", ".join(core.model_fields)
    members = kind_members(core)
    if members:
        return "a table with kind = " + " or ".join(show(k) for k in members)
    origin = get_origin(core)
    if origin is tuple:
        items = get_args(core)
        if items and all(i == items[0] for i in items):
            inner = describe_type(items[0])
            return f"a list of {len(items)} values ({inner})"
        return f"a list of {len(items)} values"
    if origin is list:
        return f"a list (each {describe_type(sequence_item(core, 0))})"
    if core is int:
        return "a whole number"
    if core is float:
        return "a number"
    if core is str:
        return "a string"
    if core is bool:
        return "true or false"
    return "a value of another type"


def _closest(word: Any, choices: list[str] | tuple[str, ...]) -> str | None:
    if not isinstance(word, str):
        return None
    match = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return match[0] if match else None


def _suggest(word: Any, choices: list[str] | tuple[str, ...]) -> str:
    close = _closest(word, choices)
    return f'did you mean "{close}"? ' if close else ""


def _first_sentence(text: str | None) -> str:
    if not text:
        return ""
    return re.split(r"(?<=[.;])\s", text.strip(), maxsplit=1)[0].rstrip(".;")


_TYPE_ERRORS = {
    "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing", "string_type",
    "bool_type", "bool_parsing", "list_type", "tuple_type", "model_type", "model_attributes_type",
    "dict_type", "is_instance_of", "string_sub_type",
}
_BOUND_WORDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_BOUND_KEYS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def _translate_one(root: type[BaseModel], error: dict[str, Any]) -> ErrorItem:
    where = locate(root, tuple(error["loc"]))
    path, tp, field = where.path, where.tp, where.field
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    field_hint = describe_type(tp)

    if kind == "nanosim":
        extra = ctx.get("field") or ""
        full = f"{path}.{extra}" if path and extra else (path or extra)
        return ErrorItem(full, ctx["message"], ctx.get("hint", ""))

    if kind == "quantity":
        return ErrorItem(path, ctx["message"], ctx.get("hint", field_hint))

    if kind == "extra_forbidden":
        key = error["loc"][-1]
        keys = list(where.parent.model_fields) if where.parent is not None else []
        scope = f' for kind "{where.kind}"' if where.kind and keys else ""
        hint = _suggest(key, keys) + (f"Keys here{scope}: {', '.join(keys)}" if keys else "")
        return ErrorItem(path, f'unknown key "{key}"', hint)

    if kind == "missing":
        if error["loc"] and isinstance(error["loc"][-1], int):
            # a tuple with too few items reports the first missing index
            parent = locate(root, tuple(error["loc"][:-1]))
            n = len(get_args(unwrap(parent.tp)[0])) if parent.tp is not None else "more"
            got = len(value) if isinstance(value, (list, tuple)) else "fewer"
            return ErrorItem(parent.path, f"must have {n} values (got {got})", describe_type(parent.tp))
        description = _first_sentence(field.description if field else "")
        hint = description + (f" ({field_hint})" if description and field_hint else field_hint)
        return ErrorItem(path, "required key is missing", hint)

    if kind in ("union_tag_invalid", "union_tag_not_found"):
        members = kind_members(tp)
        allowed = list(members) or re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        allowed_text = "allowed kinds: " + ", ".join(show(k) for k in allowed)
        kind_path = f"{path}.kind" if path else "kind"
        if kind == "union_tag_invalid":
            tag = ctx.get("tag")
            return ErrorItem(kind_path, f"unknown kind {show(tag)}", _suggest(tag, allowed) + allowed_text)
        if not isinstance(value, dict):
            return ErrorItem(path, f"must be a table with a kind key (got {show(value)})", allowed_text)
        return ErrorItem(kind_path, "required key is missing", allowed_text)

    if kind == "invalid_key":
        parent_path = locate(root, tuple(error["loc"][:-1])).path
        key = show(value).strip('"')
        return ErrorItem(
            f"{parent_path}.{key}" if parent_path else key,
            f"key {show(value)} is not a string",
            'YAML reads unquoted on, off, yes, no, true and false as booleans; quote such keys',
        )

    if kind in _BOUND_WORDS:
        bound = ctx.get(_BOUND_KEYS[kind])
        bound_text = format_number(bound, 12) if isinstance(bound, (int, float)) else str(bound)
        return ErrorItem(path, f"must be {_BOUND_WORDS[kind]} {bound_text} (got {show(value)})", field_hint)

    if kind == "finite_number":
        return ErrorItem(path, f"must be a finite number (got {show(value)})", field_hint)

    if kind == "literal_error":
        allowed = _literal_values(tp)
        if len(allowed) == 1:
            return ErrorItem(path, f"must be {show(allowed[0])} (got {show(value)})", "")
        expected = ", ".join(show(v) for v in allowed) if allowed else ctx.get("expected", "")
        return ErrorItem(
            path, f"must be one of {expected} (got {show(value)})", _suggest(value, [str(a) for a in allowed]).strip()
        )

    if kind in ("too_short", "too_long"):
        actual = ctx.get("actual_length")
        core, _ = unwrap(tp) if tp is not None else (None, [])
        if get_origin(core) is tuple:
            n = len(get_args(core))
            return ErrorItem(path, f"must have {n} values (got {actual})", field_hint)
        if kind == "too_short":
            return ErrorItem(path, f"must have at least {ctx.get('min_length')} entries (got {actual})", field_hint)
        return ErrorItem(path, f"must have at most {ctx.get('max_length')} entries (got {actual})", field_hint)

    if kind in _TYPE_ERRORS:
        if kind == "int_from_float":
            return ErrorItem(path, f"must be a whole number (got {show(value)})", "")
        return ErrorItem(path, f"has the wrong type: expected {field_hint} (got {show(value)})", "")

    if kind in ("value_error", "assertion_error"):
        message = re.sub(r"^(Value|Assertion) error, ", "", error.get("msg", ""))
        return ErrorItem(path, message, field_hint)

    return ErrorItem(path, error.get("msg", "invalid value"), field_hint)


def translate_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[ErrorItem]:
    """Turn a pydantic ``ValidationError`` raised by `root` into scenario error items.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error from ``root.model_validate``.
    root : type of BaseModel
        The model that was validated (normally :class:`~nanosim.scenario.schema.Scenario`).

    Returns
    -------
    list of ErrorItem
        One item per problem, duplicates removed, in pydantic's order.
    """
    items: list[ErrorItem] = []
    for error in exc.errors(include_url=False):
        item = _translate_one(root, error)
        if item not in items:
            items.append(item)
    return items


class ScenarioBuildError(ValueError):
    """A scenario that passed validation but cannot be built into a model (found while building:
    a calibration that cannot be met, a network that does not fit the tissue, ...). The message
    names the field and the fix; a ``ValueError`` for callers that catch those."""

