"""Performance goals and the readable table of records."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    """A figure to compare one record with (shown, never asserted).

    The record is selected by ``name``, ``backend``, ``dtype`` and ``shape``; it meets the goal
    when ``record[field] >= minimum``.
    """

    name: str
    backend: str
    dtype: str
    shape: tuple
    field: str
    minimum: float
    text: str

    def matches(self, rec: dict) -> bool:
        return (rec["name"], rec["backend"], rec["dtype"], tuple(rec["shape"])) == (
            self.name, self.backend, self.dtype, self.shape)


#: Goals on a 2-core CPU (BioFVM's implicit LOD solver: 21-26 M voxel-updates/s for one
#: substrate on such a machine).
GOALS = (
    # the copy bandwidth, as the goal is set: the best copy measured at any time in the run,
    # including rounds beside these kernels (memory.paired_fractions), because a shared
    # machine's bandwidth drifts by a third within minutes; the stricter roof (fastest of copy,
    # scale, triad) is in every record beside it (roof_fraction)
    Goal("explicit_uniform", "numba", "float32", (256, 256, 256), "copy_fraction", 0.60,
         ">= 60% of best copy"),
    Goal("explicit_uniform_pair", "numba", "float32", (256, 256, 256), "copy_fraction", 0.60,
         ">= 60% of best copy as single steps"),
    Goal("explicit_uniform_speedup", "numba", "float32", (256, 256, 256), "value", 15.0,
         ">= 15x numpy"),
    Goal("implicit", "numba", "float64", (128, 128, 128), "value", 1e8, ">= 1e8 /s"),
)


def apply_goals(records: list[dict], goals=GOALS) -> list[dict]:
    """Add ``goal`` (its text) and ``goal_met`` to the records a goal applies to (in place)."""
    for goal in goals:
        for rec in records:
            if goal.matches(rec) and goal.field in rec:
                rec["goal"] = goal.text
                rec["goal_met"] = bool(rec[goal.field] >= goal.minimum)
    return records


_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_value(v: float) -> str:
    """Three significant digits with an SI prefix: ``1.65 G``, ``24.3``, ``0.512``."""
    if not math.isfinite(v):
        return str(v)
    for scale, prefix in _PREFIXES:
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}"
    return f"{v:.3g}"


def format_shape(shape) -> str:
    """``256³`` for cubes, ``2^22`` for long 1-D arrays, ``a×b×c`` otherwise."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3 and len(set(shape)) == 1:
        return f"{shape[0]}³"
    if len(shape) == 1 and shape[0] >= 1024 and shape[0] & (shape[0] - 1) == 0:
        return f"2^{shape[0].bit_length() - 1}"
    return "×".join(map(str, shape))


def format_table(records: list[dict]) -> str:
    """An aligned text table of records: one line each, roof fraction and goal where they apply.

    >>> print(format_table([{"name": "implicit", "backend": "numba", "dtype": "float64",
    ...                      "shape": [128, 128, 128], "value": 1.2e8, "unit": "voxel-updates/s",
    ...                      "roof_fraction": 0.41, "goal": ">= 1e8 /s", "goal_met": True}]))
    benchmark  backend  dtype    shape  value  unit             roof  goal
    ---------  -------  -------  -----  -----  ---------------  ----  --------------
    implicit   numba    float64  128³   120 M  voxel-updates/s   41%  >= 1e8 /s: met
    """
    head = ("benchmark", "backend", "dtype", "shape", "value", "unit", "roof", "goal")
    rows = []
    for r in records:
        frac = r.get("roof_fraction")
        goal = ""
        if "goal" in r:
            goal = f"{r['goal']}: {'met' if r.get('goal_met') else 'MISSED'}"
        rows.append((r["name"], r["backend"], r["dtype"], format_shape(r["shape"]),
                     format_value(r["value"]), r["unit"], "" if frac is None else f"{frac:.0%}",
                     goal))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    right = {6}  # the roof column reads best right-aligned

    def line(cells):
        out = [str(c).rjust(w) if i in right else str(c).ljust(w)
               for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    sep = tuple("-" * w for w in widths)
    return "\n".join([line(head), line(sep)] + [line(r) for r in rows])
