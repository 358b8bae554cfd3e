"""Shared pieces of the scenario models: the base model, quantity types, error helper, tree text."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from nanosim.units import quantity

SCHEMA_VERSION = 1

# Constrained quantity types; bounds are checked on the SI value after unit conversion.
PositiveLength = quantity("length", gt=0)
NonNegativeLength = quantity("length", ge=0)
Length = quantity("length")
PositiveTime = quantity("time", gt=0)
Time = quantity("time")
TimeStep = quantity("time", gt=0, special=("auto",))
NonNegativeRate = quantity("rate", ge=0)
NonNegativeDiffusivity = quantity("diffusivity", ge=0)
Velocity = quantity("velocity")
NonNegativeVelocity = quantity("velocity", ge=0)
NonNegativeConcentration = quantity("concentration", ge=0)
PositiveAmount = quantity("amount", gt=0)
UnitFraction = quantity("dimensionless", ge=0, lt=1)
# Strict: a YAML/TOML true must not pass as the integer 1.
Count = Annotated[int, Strict(), Field(ge=1)]

Vec3Length = tuple[Length, Length, Length]
Vec3PositiveLength = tuple[PositiveLength, PositiveLength, PositiveLength]
Vec3Velocity = tuple[Velocity, Velocity, Velocity]

OUTPUT_FIELDS = ("free_drug", "bound_drug", "intracellular_drug", "region", "vessel", "carrier_free", "carrier_bound",
                 "carrier_internalised", "carrier_vessel", "carrier_lodged", "released_drug", "auc_unbound",
                 "cmax_unbound", "time_above_threshold")
"""Field names that ``output.fields`` may list."""

_TREE_MID, _TREE_END, _TREE_PIPE, _TREE_GAP = "├── ", "└── ", "│   ", "    "


def nanosim_error(message: str, hint: str = "", field: str = "") -> PydanticCustomError:
    """An error raised from a model validator, carrying a hint and the offending field.

    Parameters
    ----------
    message : str
        What is wrong, without a trailing full stop.
    hint : str
        How to fix it.
    field : str
        Key (relative to the model) the error belongs to; appended to the model's path.
    """
    return PydanticCustomError("nanosim", "{message}", {"message": message, "hint": hint, "field": field})


def _tree(lines: list[str]) -> str:
    """Join child descriptions (which may span several lines) as branches of a tree."""
    out = []
    for i, text in enumerate(lines):
        last = i == len(lines) - 1
        head, *rest = text.split("\n")
        out.append((_TREE_END if last else _TREE_MID) + head)
        out.extend((_TREE_GAP if last else _TREE_PIPE) + r for r in rest)
    return "\n".join(out)


class _Model(BaseModel):
    """Base of every scenario model: unknown keys and non-finite floats are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

    def describe(self) -> str:
        """One line (or a small tree) describing this part of the scenario."""
        return repr(self)

    def __str__(self) -> str:
        return self.describe()
