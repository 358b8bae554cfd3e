"""Reading and writing vessel networks: tables (CSV, JSON), VTK centrelines, Secomb files, HDF5.

:func:`read_network` picks the reader from the file name (or, failing that, the content):

``*.csv`` or a folder -- node/segment tables
    Either a folder (or a file prefix) with ``nodes.csv``, ``segments.csv`` and an optional
    ``boundary.csv`` (``net_nodes.csv``, ``net_segments.csv``, ``net_boundary.csv`` when
    ``net_nodes.csv`` or ``net_segments.csv`` is named), or one ``.csv`` file holding the three
    tables, each after a section line ``[nodes]``, ``[segments]`` or ``[boundary]``. Each table
    starts with a header row; blank lines and lines starting with ``#`` are skipped.

    =========  ============================================================================
    table      columns (``[...]`` optional)
    =========  ============================================================================
    nodes      ``[id], x_<u>, y_<u>, z_<u>``
    segments   ``[id], node_a, node_b, radius_<u> | diameter_<u>, [length_<u>], [wall],
               [pore_radius_<u>], [permeability_<u>]``
    boundary   ``node, kind, value_<u> | value [+ unit], [haematocrit]``
    =========  ============================================================================

    ``<u>`` is the unit of the column (``x_um``, ``radius_m``, ``permeability_m_per_s``,
    ``value_mmHg``, ``value_nl_per_min``; ``_per_`` stands for ``/``). A column without a unit
    (``x``, ``radius``) is in ``length_unit`` (default m) for lengths and SI otherwise. Ids are
    matched as text; without an ``id`` column a row's id is its number from 0. ``node_a`` and
    ``node_b`` may be called ``from`` and ``to``. ``wall`` is a :class:`WallType` name or code
    (default ``wall=`` option, capillary). ``kind`` is ``pressure`` or ``flow`` (0 or 1); a
    flow is an inflow (negative: outflow). A ``value`` column without a unit is in Pa for
    pressures and m³/s for flows, unless a ``unit`` column gives each row's unit.

``*.json`` -- the same tables as lists of objects with the same keys::

    {"nodes": [{"id": 0, "x_um": 0, "y_um": 0, "z_um": 0}, ...],
     "segments": [{"id": 0, "node_a": 0, "node_b": 1, "radius_um": 5, "wall": "capillary"}],
     "boundary": [{"node": 0, "kind": "pressure", "value_mmHg": 30}],
     "meta": {...}}

``*.vtp`` -- VTK XML PolyData centrelines
    ASCII, inline base64 ("binary"), appended raw or base64 data; uncompressed, zlib- or
    lzma-compressed; UInt32 or UInt64 headers; either byte order. Every line cell (poly-lines
    included: intermediate points become degree-2 nodes) gives segments; points used by no line
    are dropped. The radius comes from a cell or point array (cell data preferred) named by
    ``radius_array`` or, by default, the first of ``radius_m``, ``radius_um``, ``radius_mm``,
    ``radius``, ``Radius``, ``MaximumInscribedSphereRadius``, ``diameter_m``, ``diameter_um``,
    ``diameter_mm``, ``diameter``, ``Diameter`` found (a diameter is halved); a point radius gives each segment the mean of its two end
    values. Coordinates, and radii whose array name has no unit suffix, are in ``length_unit``.
    Cell arrays ``wall``, ``length_m``, ``pore_radius_m``, ``permeability_m_per_s`` and point
    arrays ``bc_kind`` (-1 none, 0 pressure, 1 flow), ``bc_value`` (Pa or m³/s) and
    ``bc_haematocrit``, as written by :func:`write_vtp`, are read back when present.

``*.vtk`` -- legacy VTK ASCII POLYDATA (file versions up to 5.1), with the same arrays from
    ``SCALARS`` or ``FIELD`` data.

``*.dat``, ``*.txt`` -- T. W. Secomb's network files (NetFlow, Greens)
    A title line; header lines each starting with numbers (box size in µm, tissue points,
    outer bound, maximum segment length, segments per node, number of segments); a header line
    and one row per segment ``name type from to diam flow hd`` (µm; flow and hd are ignored);
    a line starting with the number of nodes, a header line and one row per node
    ``name x y z`` (µm); a line starting with the number of boundary nodes, a header line and
    one row per boundary node ``name bctyp press/flow hd [solutes...]``. ``bctyp`` 0 is a
    pressure in mmHg, 1 or 2 an inflow in nl/min. Only segments of the types in
    ``segment_types`` (default 4 and 5, as NetFlow) are kept. Lengths are the straight
    node-to-node distances; every segment gets the ``wall`` option.

``*.h5``, ``*.hdf5`` -- a group written by :func:`save_network_h5` (``group=`` option).

Every reader raises :class:`NetworkFileError` naming the file, the line (or element) and the
fix, for malformed rows, unknown or missing columns, dangling node references, non-positive
radii and duplicated ids.

Writers: :func:`write_vtp` (for ParaView and for reading back), :func:`write_network_csv`,
:func:`write_network_json`, :func:`write_secomb`, and :func:`save_network_h5` /
:func:`load_network_h5` for exact storage in HDF5. Files are written atomically (to a temporary
file in the same folder, then renamed).
"""

from __future__ import annotations

import base64
import csv
import io as _io
import json
import lzma
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..units import UnitError, parse_unit
from .network import BCKind, NetworkError, VesselNetwork, WallType

__all__ = [
    "NetworkFileError",
    "load_network_h5",
    "read_network",
    "save_network_h5",
    "write_network_csv",
    "write_network_json",
    "write_secomb",
    "write_vtp",
]

FORMAT_NAME = "nanosim.vessel_network"
FORMAT_VERSION = 1

_LENGTH = (1, 0, 0, 0, 0)
_VELOCITY = (1, -1, 0, 0, 0)
_PRESSURE = (-1, -2, 0, 1, 0)
_FLOW = (3, -1, 0, 0, 0)
_NONE = (0, 0, 0, 0, 0)
_MMHG_PA = parse_unit("mmHg")[0]
_NL_PER_MIN_M3_PER_S = parse_unit("nl/min")[0]


class NetworkFileError(NetworkError):
    """A network file that cannot be read: names the file, the line or element, and the fix.

    Attributes
    ----------
    path : str
        The file.
    where : str
        The line or element at fault ("line 12", "segments[3]", "cell 5"), or "" for the
        whole file.
    """

    def __init__(self, path, where: str, problem: str):
        self.path = str(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.path}{', ' + where if where else ''}: {problem}")


# ----------------------------------------------------------------------------------------------
# Units of column names
# ----------------------------------------------------------------------------------------------
_UNIT_ALIASES = {"mmhg": "mmHg", "pa": "Pa", "kpa": "kPa", "mpa": "MPa", "mum": "um", "micron": "um",
                 "microns": "um"}


def _parse_unit_text(text: str) -> tuple[float, tuple]:
    """SI factor and dimension of a unit written in a column name (``m3_per_s`` = m³/s)."""
    unit = text.replace("_per_", "/").replace("_", " ").strip()
    try:
        return parse_unit(unit)
    except (UnitError, ValueError):
        alias = _UNIT_ALIASES.get(unit.lower())
        if alias is None:
            raise
        return parse_unit(alias)


def _length_factor(length_unit) -> float:
    try:
        factor, dim = _parse_unit_text(str(length_unit))
    except (UnitError, ValueError):
        raise NetworkError(f"length_unit = {length_unit!r} is not a unit: give a length unit such as "
                           "'m', 'mm' or 'um'") from None
    if dim != _LENGTH:
        raise NetworkError(f"length_unit = {length_unit!r} is not a length unit: give 'm', 'mm' or 'um'")
    return float(factor)


#: per table: column -> (kind, dimension). kind "id"/"ref"/"text" columns take no unit.
_COLUMNS = {
    "nodes": {"id": ("id", None), "x": ("num", _LENGTH), "y": ("num", _LENGTH), "z": ("num", _LENGTH)},
    "segments": {"id": ("id", None), "node_a": ("ref", None), "node_b": ("ref", None),
                 "radius": ("num", _LENGTH), "diameter": ("num", _LENGTH), "length": ("num", _LENGTH),
                 "wall": ("text", None), "pore_radius": ("num", _LENGTH),
                 "permeability": ("num", _VELOCITY)},
    "boundary": {"node": ("ref", None), "kind": ("text", None), "value": ("num", None),
                 "unit": ("text", None), "haematocrit": ("num", _NONE)},
}
_ALIASES = {"from": "node_a", "to": "node_b", "hematocrit": "haematocrit", "hd": "haematocrit"}
_REQUIRED = {"nodes": (("x",), ("y",), ("z",)),
             "segments": (("node_a",), ("node_b",), ("radius", "diameter")),
             "boundary": (("node",), ("kind",), ("value",))}
_DIM_NAMES = {_LENGTH: "a length", _VELOCITY: "a velocity (m/s)", _NONE: "dimensionless",
              _PRESSURE: "a pressure", _FLOW: "a volume flow"}


def _column_help(table: str) -> str:
    cols = []
    for name, (kind, dim) in _COLUMNS[table].items():
        cols.append(f"{name}_<unit>" if kind == "num" and dim not in (None, _NONE) else name)
    return ", ".join(cols)


def _resolve_column(name: str, table: str, path, where: str, length_factor: float):
    """(quantity, SI factor or None, dimension or None) of a column name of ``table``."""
    raw = str(name).strip()
    low = raw.lower()
    low = _ALIASES.get(low, low)
    cols = _COLUMNS[table]
    if low in cols:
        kind, dim = cols[low]
        if kind == "num":
            if dim == _LENGTH:
                return low, length_factor, dim
            return low, 1.0, dim  # SI (value: by kind)
        return low, None, None
    for q in sorted(cols, key=len, reverse=True):
        kind, dim = cols[q]
        if kind == "num" and low.startswith(q + "_"):
            unit = raw[len(q) + 1:]
            try:
                factor, udim = _parse_unit_text(unit)
            except (UnitError, ValueError):
                raise NetworkFileError(path, where, f"column {raw!r}: {unit!r} is not a unit I know: "
                                       f"write the unit after the quantity, e.g. {q}_um, {q}_m, "
                                       "value_mmHg, value_nl_per_min") from None
            if q == "value":
                if udim not in (_PRESSURE, _FLOW):
                    raise NetworkFileError(path, where, f"column {raw!r}: a boundary value must be a pressure "
                                           "(e.g. value_Pa, value_mmHg) or a flow (value_m3_per_s, value_nl_per_min)")
            elif udim != dim:
                raise NetworkFileError(path, where, f"column {raw!r}: {unit!r} is not {_DIM_NAMES[dim]} unit: "
                                       f"use e.g. {q}_{'m_per_s' if dim == _VELOCITY else 'um'}")
            return q, float(factor), udim
    raise NetworkFileError(path, where, f"unknown column {raw!r} in the {table} table: use "
                           f"{_column_help(table)} (units in the name, e.g. x_um, radius_um)")


# ----------------------------------------------------------------------------------------------
# Tables -> network
# ----------------------------------------------------------------------------------------------
@dataclass
class _Tables:
    """Rows read from a file, before ids are resolved (all values SI)."""

    node_ids: list = field(default_factory=list)
    node_pos: list = field(default_factory=list)
    node_where: list = field(default_factory=list)
    seg_ids: list = field(default_factory=list)
    seg_a: list = field(default_factory=list)
    seg_b: list = field(default_factory=list)
    seg_radius: list = field(default_factory=list)
    seg_length: list = field(default_factory=list)  # nan: the chord
    seg_wall: list = field(default_factory=list)
    seg_pore: list = field(default_factory=list)
    seg_perm: list = field(default_factory=list)
    seg_where: list = field(default_factory=list)
    bc_node: list = field(default_factory=list)
    bc_kind: list = field(default_factory=list)
    bc_value: list = field(default_factory=list)
    bc_hct: list = field(default_factory=list)
    bc_where: list = field(default_factory=list)


def _assemble(path, t: _Tables, meta: dict) -> VesselNetwork:
    """Resolve ids, check every row (naming its line or element), build the network."""
    index: dict = {}
    for i, (nid, where) in enumerate(zip(t.node_ids, t.node_where)):
        if nid in index:
            raise NetworkFileError(path, where, f"node id {nid!r} appears again (first at "
                                   f"{t.node_where[index[nid]]}): give each node a unique id")
        index[nid] = i
    seen: dict = {}
    for sid, where in zip(t.seg_ids, t.seg_where):
        if sid is None:
            continue
        if sid in seen:
            raise NetworkFileError(path, where, f"segment id {sid!r} appears again (first at {seen[sid]}): "
                                   "give each segment a unique id")
        seen[sid] = where
    pos = np.asarray(t.node_pos, dtype=np.float64).reshape(-1, 3)
    for i in np.flatnonzero(~np.isfinite(pos).all(axis=1)):
        raise NetworkFileError(path, t.node_where[i], f"node {t.node_ids[i]!r} has a non-finite position: "
                               "give finite coordinates")
    m = len(t.seg_a)
    seg = np.empty((m, 2), dtype=np.int64)
    for k in range(m):
        where = t.seg_where[k]
        for j, ref in enumerate((t.seg_a[k], t.seg_b[k])):
            if ref not in index:
                raise NetworkFileError(path, where, f"{'node_a' if j == 0 else 'node_b'} = {ref!r} is not a node "
                                       "id of this file: add that node or fix the reference")
            seg[k, j] = index[ref]
        if seg[k, 0] == seg[k, 1]:
            raise NetworkFileError(path, where, f"the segment joins node {t.seg_a[k]!r} to itself: remove it")
        r = t.seg_radius[k]
        if not (math.isfinite(r) and r > 0):
            raise NetworkFileError(path, where, f"radius {r!r} m: a vessel radius must be a finite number > 0 "
                                   "(fix the value, or remove the segment)")
        for name, arr in (("pore radius", t.seg_pore), ("permeability", t.seg_perm)):
            if not (math.isfinite(arr[k]) and arr[k] >= 0):
                raise NetworkFileError(path, where, f"{name} {arr[k]!r}: must be a finite number >= 0")
    length = np.asarray(t.seg_length, dtype=np.float64).reshape(m)
    chord = np.linalg.norm(pos[seg[:, 1]] - pos[seg[:, 0]], axis=1) if m else np.zeros(0)
    for k in range(m):
        if math.isnan(length[k]):
            if not chord[k] > 0:
                raise NetworkFileError(path, t.seg_where[k], f"nodes {t.seg_a[k]!r} and {t.seg_b[k]!r} are at the "
                                       "same position, so the segment has no length: move a node, merge the "
                                       "two nodes, or give the length")
            length[k] = chord[k]
        elif not (math.isfinite(length[k]) and length[k] > 0):
            raise NetworkFileError(path, t.seg_where[k], f"length {float(length[k])!r} m: must be a finite number > 0")
    bc_nodes = np.empty(len(t.bc_node), dtype=np.int64)
    first: dict = {}
    for i, (ref, where) in enumerate(zip(t.bc_node, t.bc_where)):
        if ref not in index:
            raise NetworkFileError(path, where, f"boundary node {ref!r} is not a node id of this file: "
                                   "add that node or fix the reference")
        if ref in first:
            raise NetworkFileError(path, where, f"node {ref!r} already has a boundary condition "
                                   f"({first[ref]}): keep one")
        first[ref] = where
        bc_nodes[i] = index[ref]
        h = t.bc_hct[i]
        if not (0 <= h < 1):
            raise NetworkFileError(path, where, f"haematocrit {h!r}: must be in [0, 1)")
        if not math.isfinite(t.bc_value[i]):
            raise NetworkFileError(path, where, "the boundary value is not finite: give a number")
    try:
        return VesselNetwork(
            node_pos_m=pos, seg_nodes=seg, seg_radius_m=np.asarray(t.seg_radius, np.float64),
            seg_length_m=length, seg_wall=np.asarray(t.seg_wall, np.uint8).reshape(m),
            seg_pore_radius_m=np.asarray(t.seg_pore, np.float64).reshape(m),
            seg_permeability_m_per_s=np.asarray(t.seg_perm, np.float64).reshape(m),
            bc_nodes=bc_nodes, bc_kind=np.asarray(t.bc_kind, np.uint8).reshape(-1),
            bc_value=np.asarray(t.bc_value, np.float64).reshape(-1),
            bc_haematocrit=np.asarray(t.bc_hct, np.float64).reshape(-1), meta=meta)
    except NetworkError as exc:
        raise NetworkFileError(path, "", f"{exc} (element numbers count from 0 in file order)") from None


# ----------------------------------------------------------------------------------------------
# Records (CSV rows, JSON objects)
# ----------------------------------------------------------------------------------------------
def _num(value, path, where: str, column: str) -> float:
    if isinstance(value, bool):
        raise NetworkFileError(path, where, f"column {column!r}: {value!r} is not a number: give a number")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise NetworkFileError(path, where, f"column {column!r}: {value!r} is not a number: give a number") from None


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _id(value):
    """Ids are matched as text (JSON numbers and CSV text alike); 3.0 and 3 are the same id."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _parse_kind(value, path, where) -> int:
    text = str(value).strip().lower()
    if text in ("pressure", "p", "0"):
        return int(BCKind.PRESSURE)
    if text in ("flow", "q", "inflow", "1"):
        return int(BCKind.FLOW)
    raise NetworkFileError(path, where, f"kind {value!r}: use 'pressure' (or 0) or 'flow' (or 1)")


class _RecordReader:
    """Turns records (dicts of column -> value) of one table into :class:`_Tables` rows."""

    def __init__(self, path, tables: _Tables, wall: int, haematocrit: float, length_factor: float):
        self.path, self.t, self.wall, self.h, self.lf = path, tables, wall, haematocrit, length_factor
        self._cache: dict = {}

    def columns(self, table: str, keys, where: str) -> dict:
        """Resolve column names (cached by key set); check required and repeated columns."""
        keys = tuple(keys)
        ck = (table, keys)
        if ck in self._cache:
            return self._cache[ck]
        spec = {}
        seen = {}
        for k in keys:
            q, factor, dim = _resolve_column(k, table, self.path, where, self.lf)
            if q in seen:
                raise NetworkFileError(self.path, where, f"columns {seen[q]!r} and {k!r} both give {q}: keep one")
            seen[q] = k
            spec[k] = (q, factor, dim)
        for options in _REQUIRED[table]:
            if not any(o in seen for o in options):
                need = " or ".join(f"{o}_<unit>" if _COLUMNS[table][o][0] == "num" and o != "value" else o
                                   for o in options)
                raise NetworkFileError(self.path, where, f"the {table} table has no {need} column: add it "
                                       f"(columns: {_column_help(table)})")
        if "radius" in seen and "diameter" in seen:
            raise NetworkFileError(self.path, where, "both a radius and a diameter column: keep one")
        self._cache[ck] = spec
        return spec

    def _values(self, table: str, record: dict, where: str) -> dict:
        spec = self.columns(table, record.keys(), where)
        out = {}
        for k, v in record.items():
            q, factor, dim = spec[k]
            if _blank(v):
                continue
            if factor is None:
                out[q] = v
            else:
                out[q] = _num(v, self.path, where, k) * factor
                if q == "value":
                    out["_value_dim"] = dim
                    out["_value_col"] = k
        return out

    def node(self, record: dict, where: str, row: int) -> None:
        v = self._values("nodes", record, where)
        for c in ("x", "y", "z"):
            if c not in v:
                raise NetworkFileError(self.path, where, f"the {c} coordinate is empty: give a number")
        self.t.node_ids.append(_id(v["id"]) if "id" in v else str(row))
        self.t.node_pos.append((v["x"], v["y"], v["z"]))
        self.t.node_where.append(where)

    def segment(self, record: dict, where: str, row: int) -> None:
        v = self._values("segments", record, where)
        for c in ("node_a", "node_b"):
            if c not in v:
                raise NetworkFileError(self.path, where, f"{c} is empty: give the id of a node")
        if "radius" in v:
            r = v["radius"]
        elif "diameter" in v:
            r = v["diameter"] / 2.0
        else:
            raise NetworkFileError(self.path, where, "the radius is empty: give the lumen radius")
        sid = _id(v["id"]) if "id" in v else None
        if sid is not None:
            where = f"{where} (segment {sid})"
        try:
            wall = int(WallType.parse(v["wall"])) if "wall" in v else self.wall
        except NetworkError as exc:
            raise NetworkFileError(self.path, where, str(exc)) from None
        t = self.t
        t.seg_ids.append(sid)
        t.seg_a.append(_id(v["node_a"]))
        t.seg_b.append(_id(v["node_b"]))
        t.seg_radius.append(r)
        t.seg_length.append(v.get("length", math.nan))
        t.seg_wall.append(wall)
        t.seg_pore.append(v.get("pore_radius", 0.0))
        t.seg_perm.append(v.get("permeability", 0.0))
        t.seg_where.append(where)

    def boundary(self, record: dict, where: str, row: int) -> None:
        v = self._values("boundary", record, where)
        for c in ("node", "kind", "value"):
            if c not in v:
                raise NetworkFileError(self.path, where, f"{c} is empty: give it")
        kind = _parse_kind(v["kind"], self.path, where)
        want = _PRESSURE if kind == BCKind.PRESSURE else _FLOW
        value = v["value"]
        if "unit" in v:
            if v["_value_dim"] is not None:
                raise NetworkFileError(self.path, where, f"both a unit column and a unit in {v['_value_col']!r}: "
                                       "use a plain 'value' column with a 'unit' column, or drop the unit column")
            try:
                factor, dim = _parse_unit_text(str(v["unit"]))
            except (UnitError, ValueError):
                raise NetworkFileError(self.path, where, f"unit {v['unit']!r} is not a unit I know: use e.g. Pa, "
                                       "mmHg, m^3/s, nl/min") from None
            if dim != want:
                raise NetworkFileError(self.path, where, f"unit {v['unit']!r} does not fit a {_kind_name(kind)} "
                                       f"condition: give {'a pressure unit (Pa, mmHg)' if kind == 0 else 'a flow unit (m^3/s, nl/min)'}")
            value *= factor
        elif v["_value_dim"] is not None and v["_value_dim"] != want:
            raise NetworkFileError(self.path, where, f"a {_kind_name(kind)} condition given in column "
                                   f"{v['_value_col']!r}, whose unit is not a {_kind_name(kind)} unit: put "
                                   "mixed kinds in a plain 'value' column with a 'unit' column")
        h = v.get("haematocrit", self.h)
        t = self.t
        t.bc_node.append(_id(v["node"]))
        t.bc_kind.append(kind)
        t.bc_value.append(value)
        t.bc_hct.append(h)
        t.bc_where.append(where)


def _kind_name(kind: int) -> str:
    return "pressure" if kind == BCKind.PRESSURE else "flow"


# ----------------------------------------------------------------------------------------------
# CSV
# ----------------------------------------------------------------------------------------------
_SECTIONS = ("nodes", "segments", "boundary")


def _csv_rows(path: Path, lines: list[tuple[int, str]]):
    """(line number, cells) for non-blank, non-comment lines."""
    for ln, text in lines:
        s = text.strip()
        if not s or s.startswith("#"):
            continue
        cells = next(csv.reader([text]))
        yield ln, [c.strip() for c in cells]


def _read_csv_table(path: Path, table: str, lines: list[tuple[int, str]], reader: _RecordReader,
                    header_hint: int, label: str = "") -> None:
    """Read one table; ``label`` (a file name) prefixes the line numbers of the rows."""
    rows = list(_csv_rows(path, lines))
    if not rows:
        raise NetworkFileError(path, f"line {header_hint}", f"the {table} table has no header row: start it with "
                               f"a row of column names ({_column_help(table)})")
    hln, header = rows[0]
    reader.columns(table, header, f"line {hln}")
    add = getattr(reader, {"nodes": "node", "segments": "segment", "boundary": "boundary"}[table])
    for row, (ln, cells) in enumerate(rows[1:]):
        if len(cells) != len(header):
            raise NetworkFileError(path, f"line {ln}", f"{len(cells)} values for {len(header)} columns "
                                   f"({', '.join(header)}): give one value per column")
        add(dict(zip(header, cells)), f"{label}line {ln}", row)


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NetworkFileError(path, "", f"not a text file ({exc.reason}): give a UTF-8 text file") from None
    return list(enumerate(text.splitlines(), start=1))


def _read_csv(path: Path, reader: _RecordReader) -> None:
    if path.is_dir():
        files = {s: path / f"{s}.csv" for s in _SECTIONS}
    else:
        m = re.fullmatch(r"(.*?)(nodes|segments|boundary)\.csv", path.name, flags=re.IGNORECASE)
        files = {s: path.with_name(f"{m.group(1)}{s}.csv") for s in _SECTIONS} if m else None
    if files is not None:
        for s in ("nodes", "segments"):
            if not files[s].is_file():
                raise NetworkFileError(files[s], "", f"missing: a table network needs {files['nodes'].name} and "
                                       f"{files['segments'].name} side by side (and optionally {files['boundary'].name})")
        for s in _SECTIONS:
            if files[s].is_file():
                _read_csv_table(files[s], s, _read_lines(files[s]), _with_path(reader, files[s]), 1,
                                label=f"{files[s].name} ")
        return
    lines = _read_lines(path)
    sections: dict[str, list] = {}
    current = None
    starts = {}
    for ln, text in lines:
        s = text.strip()
        mm = re.fullmatch(r"\[\s*(\w+)\s*\]", s)
        if mm:
            name = mm.group(1).lower()
            if name not in _SECTIONS:
                raise NetworkFileError(path, f"line {ln}", f"unknown section [{mm.group(1)}]: use [nodes], "
                                       "[segments] and [boundary]")
            if name in sections:
                raise NetworkFileError(path, f"line {ln}", f"section [{name}] appears twice: merge them")
            current = name
            sections[name] = []
            starts[name] = ln
            continue
        if current is None:
            if s and not s.startswith("#"):
                raise NetworkFileError(path, f"line {ln}", "data before the first section: a one-file CSV network "
                                       "starts each table with a line [nodes], [segments] or [boundary]")
            continue
        sections[current].append((ln, text))
    for s in ("nodes", "segments"):
        if s not in sections:
            raise NetworkFileError(path, "", f"no [{s}] section: a one-file CSV network needs [nodes] and "
                                   "[segments] sections (and optionally [boundary]), each with a header row")
    for s in _SECTIONS:
        if s in sections:
            _read_csv_table(path, s, sections[s], reader, starts[s])


def _with_path(reader: _RecordReader, path) -> _RecordReader:
    r = _RecordReader(path, reader.t, reader.wall, reader.h, reader.lf)
    return r


# ----------------------------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------------------------
def _read_json(path: Path, reader: _RecordReader) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise NetworkFileError(path, f"line {exc.lineno}, column {exc.colno}", f"invalid JSON ({exc.msg}): "
                               "fix the syntax") from None
    except UnicodeDecodeError as exc:
        raise NetworkFileError(path, "", f"not a text file ({exc.reason})") from None
    if not isinstance(doc, dict):
        raise NetworkFileError(path, "", 'the file must hold one object {"nodes": [...], "segments": [...], '
                               '"boundary": [...]}')
    for key in doc:
        if key not in ("nodes", "segments", "boundary", "meta", "format", "version"):
            raise NetworkFileError(path, "", f"unknown top-level key {key!r}: use nodes, segments, boundary, meta")
    for s in ("nodes", "segments"):
        if s not in doc:
            raise NetworkFileError(path, "", f'no "{s}" list: give "nodes" and "segments" (and optionally '
                                   '"boundary") as lists of objects')
    add = {"nodes": reader.node, "segments": reader.segment, "boundary": reader.boundary}
    for s in _SECTIONS:
        items = doc.get(s, [])
        if not isinstance(items, list):
            raise NetworkFileError(path, s, f'"{s}" must be a list of objects')
        for i, rec in enumerate(items):
            where = f"{s}[{i}]"
            if not isinstance(rec, dict):
                raise NetworkFileError(path, where, f"must be an object with keys ({_column_help(s)})")
            for k, v in rec.items():
                if isinstance(v, (list, dict)):
                    raise NetworkFileError(path, where, f"key {k!r} holds a {type(v).__name__}: give a number or text")
            add[s](rec, where, i)
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise NetworkFileError(path, "meta", '"meta" must be an object')
    return meta


# ----------------------------------------------------------------------------------------------
# VTK: centrelines to tables
# ----------------------------------------------------------------------------------------------
_RADIUS_NAMES = ("radius_m", "radius_um", "radius_mm", "radius", "Radius", "MaximumInscribedSphereRadius",
                 "diameter_m", "diameter_um", "diameter_mm", "diameter", "Diameter")


def _radius_unit(name: str, length_factor: float) -> tuple[float, bool]:
    """(SI factor, is_diameter) of a radius or diameter array, from a unit suffix in its name."""
    low = name.lower()
    diameter = low.startswith("diam")
    m = re.fullmatch(r"(?:radius|diameter|diam|r|d)_(.+)", name, flags=re.IGNORECASE)
    if m:
        try:
            factor, dim = _parse_unit_text(m.group(1))
            if dim == _LENGTH:
                return float(factor), diameter
        except (UnitError, ValueError):
            pass
    return length_factor, diameter


def _polylines_to_network(path, points: np.ndarray, lines: list[np.ndarray], cell_data: dict,
                          point_data: dict, *, length_factor: float, radius_array, wall: int,
                          haematocrit: float, merge_tol_m, meta: dict, cell_label: str = "cell") -> VesselNetwork:
    n_cells = len(lines)
    n_pts = len(points)
    for name, arr in cell_data.items():
        if len(arr) != n_cells:
            raise NetworkFileError(path, f"cell array {name!r}", f"{len(arr)} values for {n_cells} line cells: "
                                   "give one value per cell")
    for name, arr in point_data.items():
        if len(arr) != n_pts:
            raise NetworkFileError(path, f"point array {name!r}", f"{len(arr)} values for {n_pts} points: "
                                   "give one value per point")
    # radius
    names = (radius_array,) if radius_array else _RADIUS_NAMES
    rad_name, rad_cell = None, None
    for nm in names:
        if nm in cell_data:
            rad_name, rad_cell = nm, True
            break
        if nm in point_data:
            rad_name, rad_cell = nm, False
            break
    if rad_name is None:
        have = sorted(set(cell_data) | set(point_data))
        raise NetworkFileError(path, "", f"no radius array {'named ' + repr(radius_array) if radius_array else '(' + ', '.join(_RADIUS_NAMES) + ')'}"
                               f" among the point and cell arrays {have}: name the radius array with "
                               "radius_array=...")
    factor, is_diam = _radius_unit(rad_name, length_factor)
    rad = (cell_data if rad_cell else point_data)[rad_name]
    if rad.ndim > 1 and rad.shape[1] != 1:
        raise NetworkFileError(path, f"array {rad_name!r}", f"has {rad.shape[1]} components: a radius array needs one")
    rad = rad.reshape(-1).astype(np.float64) * factor * (0.5 if is_diam else 1.0)

    pos = np.asarray(points, np.float64) * length_factor
    seg_a, seg_b, seg_cell = [], [], []
    for c, ids in enumerate(lines):
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) < 2:
            raise NetworkFileError(path, f"{cell_label} {c}", f"a line cell with {len(ids)} point: a vessel needs at "
                                   "least 2 points; remove the cell")
        bad = ids[(ids < 0) | (ids >= n_pts)]
        if bad.size:
            raise NetworkFileError(path, f"{cell_label} {c}", f"refers to point {int(bad[0])} but there are points "
                                   f"0..{n_pts - 1}: fix the connectivity")
        seg_a.append(ids[:-1])
        seg_b.append(ids[1:])
        seg_cell.append(np.full(len(ids) - 1, c))
    a = np.concatenate(seg_a) if seg_a else np.zeros(0, np.int64)
    b = np.concatenate(seg_b) if seg_b else np.zeros(0, np.int64)
    cell = np.concatenate(seg_cell) if seg_cell else np.zeros(0, np.int64)
    # merge points
    rep = np.arange(n_pts)
    if merge_tol_m is not None:
        from scipy.spatial import cKDTree

        pairs = cKDTree(pos).query_pairs(max(float(merge_tol_m), 0.0) + 1e-300, output_type="ndarray")
        if len(pairs):
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components

            g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_pts, n_pts))
            labels = connected_components(g, directed=False)[1]
            first = np.full(labels.max() + 1, n_pts)
            np.minimum.at(first, labels, np.arange(n_pts))
            rep = first[labels]
    a, b = rep[a], rep[b]
    if rad_cell:
        seg_r = rad[cell]
    else:
        seg_r = 0.5 * (rad[a] + rad[b])
    keep = a != b  # segments collapsed by merging
    used = np.zeros(n_pts, bool)
    used[a[keep]] = used[b[keep]] = True
    t = _Tables()
    t.node_ids = [int(i) for i in np.flatnonzero(used)]
    t.node_pos = pos[used]
    t.node_where = [f"point {i}" for i in t.node_ids]
    chord = np.linalg.norm(pos[b] - pos[a], axis=1)
    length = np.full(len(a), math.nan)
    if "length_m" in cell_data:
        cl = cell_data["length_m"].reshape(-1).astype(np.float64)
        tot = np.bincount(cell, weights=chord, minlength=n_cells)
        nseg = np.bincount(cell, minlength=n_cells)
        share = np.where(nseg[cell] == 1, 1.0, chord / np.where(tot[cell] > 0, tot[cell], 1.0))
        length = cl[cell] * share
    walls = cell_data["wall"].reshape(-1)[cell].astype(np.int64) if "wall" in cell_data else np.full(len(a), wall)
    pore = cell_data["pore_radius_m"].reshape(-1)[cell] if "pore_radius_m" in cell_data else np.zeros(len(a))
    perm = (cell_data["permeability_m_per_s"].reshape(-1)[cell] if "permeability_m_per_s" in cell_data
            else np.zeros(len(a)))
    for k in np.flatnonzero(keep):
        where = f"{cell_label} {cell[k]}" + (f" (points {a[k]}-{b[k]})" if len(lines[cell[k]]) > 2 else "")
        if walls[k] < 0 or walls[k] >= len(WallType):
            raise NetworkFileError(path, where, f"wall code {walls[k]}: use 0..{len(WallType) - 1} "
                                   f"({', '.join(w.name.lower() for w in WallType)})")
        if not (math.isfinite(seg_r[k]) and seg_r[k] > 0):
            raise NetworkFileError(path, where, f"radius {float(seg_r[k])!r} m (from array {rad_name!r}): a vessel radius "
                                   "must be > 0; fix the array or remove the cell")
        t.seg_ids.append(None)
        t.seg_a.append(int(a[k]))
        t.seg_b.append(int(b[k]))
        t.seg_radius.append(float(seg_r[k]))
        t.seg_length.append(float(length[k]))
        t.seg_wall.append(int(walls[k]))
        t.seg_pore.append(float(pore[k]))
        t.seg_perm.append(float(perm[k]))
        t.seg_where.append(where)
    if "bc_kind" in point_data:
        kinds = point_data["bc_kind"].reshape(-1)
        vals = point_data.get("bc_value", np.zeros((n_pts, 1))).reshape(-1)
        hcts = point_data.get("bc_haematocrit", np.full((n_pts, 1), haematocrit)).reshape(-1)
        for i in np.flatnonzero(kinds >= 0):
            if kinds[i] > 1:
                raise NetworkFileError(path, f"point {i}", f"bc_kind {kinds[i]}: use -1 (none), 0 (pressure, Pa) "
                                       "or 1 (inflow, m^3/s)")
            if not used[i]:
                continue
            t.bc_node.append(int(i))
            t.bc_kind.append(int(kinds[i]))
            t.bc_value.append(float(vals[i]))
            t.bc_hct.append(float(hcts[i]))
            t.bc_where.append(f"point {i}")
    meta = dict(meta, radius_array=rad_name)
    return _assemble(path, t, meta)


# ----------------------------------------------------------------------------------------------
# VTK XML PolyData
# ----------------------------------------------------------------------------------------------
_VTK_TYPES = {"Int8": "i1", "UInt8": "u1", "Int16": "i2", "UInt16": "u2", "Int32": "i4", "UInt32": "u4",
              "Int64": "i8", "UInt64": "u8", "Float32": "f4", "Float64": "f8", "Char": "i1",
              "UnsignedChar": "u1", "Short": "i2", "UnsignedShort": "u2", "Int": "i4", "UnsignedInt": "u4",
              "Long": "i8", "UnsignedLong": "u8", "Float": "f4", "Double": "f8", "IdType": "i8"}


@dataclass
class _XmlContext:
    path: Path
    order: str  # "<" or ">"
    header: np.dtype
    compressor: str | None
    appended: bytes | str | None = None  # raw bytes, or base64 text


def _decompress(ctx: _XmlContext, blob: bytes, where: str) -> bytes:
    try:
        if ctx.compressor == "vtkZLibDataCompressor":
            return zlib.decompress(blob)
        return lzma.decompress(blob)
    except (zlib.error, lzma.LZMAError) as exc:
        raise NetworkFileError(ctx.path, where, f"compressed data cannot be decompressed ({exc}): the file is "
                               "damaged; save it again") from None


def _b64(text: str, ctx: _XmlContext, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (ValueError, base64.binascii.Error) as exc:
        raise NetworkFileError(ctx.path, where, f"invalid base64 data ({exc}): the file is damaged; save it again") from None


def _read_b64_block(text: str, start: int, ctx: _XmlContext, where: str) -> bytes:
    """Data of one array encoded in base64 from ``text[start:]``, header and all.

    VTK encodes the header and the data either as one base64 stream or as two (header, then
    data); both are accepted.
    """
    isz = ctx.header.itemsize
    if ctx.compressor is None:
        hchars = 4 * math.ceil(isz / 3)
        nbytes = int(np.frombuffer(_b64(text[start:start + hchars], ctx, where)[:isz], ctx.header)[0])
        separate = isz % 3 == 0 or text[start + hchars - 1:start + hchars] == "="
        if separate:
            data = _b64(text[start + hchars:start + hchars + 4 * math.ceil(nbytes / 3)], ctx, where)[:nbytes]
        else:
            data = _b64(text[start:start + 4 * math.ceil((isz + nbytes) / 3)], ctx, where)[isz:isz + nbytes]
        if len(data) != nbytes:
            raise NetworkFileError(ctx.path, where, f"holds {len(data)} bytes of data, its header says {nbytes}: "
                                   "the file is truncated or damaged")
        return data
    first = np.frombuffer(_b64(text[start:start + 4 * isz], ctx, where)[:3 * isz], ctx.header)
    if len(first) < 3:
        raise NetworkFileError(ctx.path, where, "the compressed-data header is truncated: the file is damaged")
    nblocks = int(first[0])
    hbytes = (3 + nblocks) * isz
    hchars = 4 * math.ceil(hbytes / 3)
    head = np.frombuffer(_b64(text[start:start + hchars], ctx, where)[:hbytes], ctx.header).astype(np.int64)
    sizes = head[3:]
    total = int(sizes.sum())
    separate = hbytes % 3 == 0 or text[start + hchars - 1:start + hchars] == "="
    if separate:
        blob = _b64(text[start + hchars:start + hchars + 4 * math.ceil(total / 3)], ctx, where)[:total]
    else:
        blob = _b64(text[start:start + 4 * math.ceil((hbytes + total) / 3)], ctx, where)[hbytes:hbytes + total]
    return _join_blocks(blob, head, ctx, where)


def _join_blocks(blob: bytes, head: np.ndarray, ctx: _XmlContext, where: str) -> bytes:
    nblocks, sizes = int(head[0]), head[3:]
    if len(blob) != int(sizes.sum()) or len(sizes) != nblocks:
        raise NetworkFileError(ctx.path, where, "compressed data shorter than its header says: the file is "
                               "truncated or damaged")
    out, off = [], 0
    for s in sizes:
        out.append(_decompress(ctx, blob[off:off + int(s)], where))
        off += int(s)
    return b"".join(out)


def _read_raw_block(buf: bytes, start: int, ctx: _XmlContext, where: str) -> bytes:
    isz = ctx.header.itemsize
    if ctx.compressor is None:
        nbytes = int(np.frombuffer(buf[start:start + isz], ctx.header)[0])
        data = buf[start + isz:start + isz + nbytes]
        if len(data) != nbytes:
            raise NetworkFileError(ctx.path, where, "appended data shorter than its header says: the file is "
                                   "truncated")
        return data
    nblocks = int(np.frombuffer(buf[start:start + isz], ctx.header)[0])
    hbytes = (3 + nblocks) * isz
    head = np.frombuffer(buf[start:start + hbytes], ctx.header).astype(np.int64)
    if len(head) != 3 + nblocks:
        raise NetworkFileError(ctx.path, where, "appended data header truncated: the file is damaged")
    total = int(head[3:].sum())
    return _join_blocks(buf[start + hbytes:start + hbytes + total], head, ctx, where)


def _data_array(el: ET.Element, ctx: _XmlContext, where: str) -> np.ndarray:
    typ = el.get("type")
    if typ not in _VTK_TYPES:
        raise NetworkFileError(ctx.path, where, f"DataArray type {typ!r} is not supported: use one of "
                               f"{', '.join(list(_VTK_TYPES)[:10])}")
    dtype = np.dtype(ctx.order + _VTK_TYPES[typ])
    ncomp = int(el.get("NumberOfComponents", "1") or 1)
    fmt = (el.get("format") or "ascii").lower()
    if fmt == "ascii":
        tokens = (el.text or "").split()
        try:
            arr = np.array(tokens, dtype=np.float64 if dtype.kind == "f" else np.int64).astype(dtype.newbyteorder("="))
        except ValueError:
            bad = next((tok for tok in tokens if not re.fullmatch(r"[-+0-9.eEinfaINFA]+", tok)), tokens[0] if tokens else "")
            raise NetworkFileError(ctx.path, where, f"ASCII data holds {bad!r}, which is not a number of type {typ}: "
                                   "fix the value") from None
    elif fmt == "binary":
        text = "".join((el.text or "").split())
        arr = np.frombuffer(_read_b64_block(text, 0, ctx, where), dtype)
    elif fmt == "appended":
        if ctx.appended is None:
            raise NetworkFileError(ctx.path, where, "refers to appended data but the file has no <AppendedData>: "
                                   "the file is truncated or damaged")
        try:
            offset = int(el.get("offset"))
        except (TypeError, ValueError):
            raise NetworkFileError(ctx.path, where, "appended DataArray without a valid offset") from None
        if isinstance(ctx.appended, str):
            arr = np.frombuffer(_read_b64_block(ctx.appended, offset, ctx, where), dtype)
        else:
            arr = np.frombuffer(_read_raw_block(ctx.appended, offset, ctx, where), dtype)
    else:
        raise NetworkFileError(ctx.path, where, f"DataArray format {fmt!r}: use ascii, binary or appended")
    if arr.size % ncomp:
        raise NetworkFileError(ctx.path, where, f"{arr.size} values are not a whole number of {ncomp}-component tuples")
    return arr.astype(arr.dtype.newbyteorder("="), copy=False).reshape(-1, ncomp)


def _split_appended(data: bytes) -> tuple[bytes, bytes | str | None]:
    i = data.find(b"<AppendedData")
    if i < 0:
        return data, None
    j = data.find(b">", i)
    end = data.rfind(b"</AppendedData>")
    u = data.find(b"_", j)
    if j < 0 or end < 0 or u < 0 or u > end:
        return data, None
    tag = data[i:j].decode("ascii", "replace")
    enc = re.search(r'encoding\s*=\s*"([^"]*)"', tag)
    payload = data[u + 1:end]
    xml = data[:j + 1] + data[end:]
    if enc and enc.group(1).lower() == "base64":
        return xml, payload.decode("ascii", "replace")
    return xml, payload


def _read_vtp(path: Path, opts: dict) -> VesselNetwork:
    data = path.read_bytes()
    xml, appended = _split_appended(data)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        line = exc.position[0] if hasattr(exc, "position") else "?"
        raise NetworkFileError(path, f"line {line}", f"not valid XML ({exc}): fix the file or export it again") from None
    if root.tag != "VTKFile" or root.get("type") != "PolyData":
        raise NetworkFileError(path, "", f"a VTK XML file of type {root.get('type')!r}: give PolyData centrelines "
                               "(.vtp), e.g. from VMTK or ParaView's Extract Edges")
    comp = root.get("compressor")
    if comp and comp not in ("vtkZLibDataCompressor", "vtkLZMADataCompressor"):
        raise NetworkFileError(path, "", f"compressed with {comp}: save it again uncompressed or with zlib "
                               "(ParaView: File > Save Data, Compressor Type: ZLib)")
    header = root.get("header_type", "UInt32")
    if header not in ("UInt32", "UInt64"):
        raise NetworkFileError(path, "", f"header_type {header!r}: use UInt32 or UInt64")
    order = ">" if root.get("byte_order", "LittleEndian") == "BigEndian" else "<"
    ctx = _XmlContext(path, order, np.dtype(order + _VTK_TYPES[header]), comp or None, appended)
    poly = root.find("PolyData")
    pieces = poly.findall("Piece") if poly is not None else []
    if not pieces:
        raise NetworkFileError(path, "", "no <PolyData><Piece>: the file holds no data")
    all_pts, all_lines, cdata, pdata = [], [], {}, {}
    offset = 0
    for ip, piece in enumerate(pieces):
        where = f"Piece {ip}"
        npts = int(piece.get("NumberOfPoints", "0"))
        nverts = int(piece.get("NumberOfVerts", "0"))
        nlines = int(piece.get("NumberOfLines", "0"))
        pts_el = piece.find("Points/DataArray")
        if pts_el is None:
            if npts:
                raise NetworkFileError(path, where, "no <Points> array: the file is damaged")
            pts = np.zeros((0, 3))
        else:
            pts = _data_array(pts_el, ctx, f"{where} Points")
        if pts.shape != (npts, 3):
            raise NetworkFileError(path, f"{where} Points", f"{pts.size} values for {npts} points of 3 coordinates")
        lines = []
        lel = piece.find("Lines")
        if nlines:
            arrays = {a.get("Name"): a for a in lel.findall("DataArray")} if lel is not None else {}
            if "connectivity" not in arrays or "offsets" not in arrays:
                raise NetworkFileError(path, f"{where} Lines", "needs DataArrays named connectivity and offsets")
            conn = _data_array(arrays["connectivity"], ctx, f"{where} Lines connectivity").reshape(-1)
            offs = _data_array(arrays["offsets"], ctx, f"{where} Lines offsets").reshape(-1)
            if len(offs) == nlines + 1 and offs[0] == 0:  # VTK >= 9.? files may store a leading 0
                offs = offs[1:]
            if len(offs) != nlines or (len(offs) and offs[-1] != len(conn)) or (np.diff(offs) < 0).any():
                raise NetworkFileError(path, f"{where} Lines", "offsets do not match the connectivity: the file is damaged")
            starts = np.concatenate([[0], offs[:-1]])
            lines = [conn[s:e].astype(np.int64) + offset for s, e in zip(starts, offs)]
        all_pts.append(pts)
        all_lines.extend(lines)
        for section, store, n_expected, first in (("PointData", pdata, npts, 0), ("CellData", cdata, None, nverts)):
            sel = piece.find(section)
            if sel is None:
                continue
            for el in sel.findall("DataArray"):
                name = el.get("Name") or ""
                arr = _data_array(el, ctx, f"{where} {section} {name!r}")
                if section == "CellData":
                    arr = arr[first:first + nlines]
                store.setdefault(name, []).append(arr)
        offset += npts
    points = np.concatenate(all_pts) if all_pts else np.zeros((0, 3))
    cdata = {k: np.concatenate(v) for k, v in cdata.items() if len(v) == len(pieces)}
    pdata = {k: np.concatenate(v) for k, v in pdata.items() if len(v) == len(pieces)}
    return _polylines_to_network(path, points, all_lines, cdata, pdata, meta={"source": str(path), "format": "vtp"},
                                 **opts)


# ----------------------------------------------------------------------------------------------
# Legacy VTK
# ----------------------------------------------------------------------------------------------
class _Tokens:
    def __init__(self, path, lines: list[tuple[int, str]]):
        self.path = path
        self.toks: list[tuple[str, int]] = [(tok, ln) for ln, text in lines for tok in text.split()]
        self.i = 0
        self.last_line = lines[-1][0] if lines else 1

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def line(self) -> int:
        return self.toks[self.i][1] if self.i < len(self.toks) else self.last_line

    def next(self, what: str) -> str:
        if self.i >= len(self.toks):
            raise NetworkFileError(self.path, f"line {self.last_line}", f"the file ends where {what} was expected: "
                                   "the file is truncated")
        tok = self.toks[self.i][0]
        self.i += 1
        return tok

    def int(self, what: str) -> int:
        ln = self.line()
        tok = self.next(what)
        try:
            return int(tok)
        except ValueError:
            raise NetworkFileError(self.path, f"line {ln}", f"{tok!r} where {what} (a whole number) was expected") from None

    def floats(self, n: int, what: str) -> np.ndarray:
        ln = self.line()
        if self.i + n > len(self.toks):
            raise NetworkFileError(self.path, f"line {ln}", f"{what}: {n} numbers expected but the file ends first "
                                   "(truncated, or a count in the file is wrong)")
        chunk = [t for t, _ in self.toks[self.i:self.i + n]]
        try:
            arr = np.array(chunk, dtype=np.float64)
        except ValueError:
            for k, tok in enumerate(chunk):
                try:
                    float(tok)
                except ValueError:
                    raise NetworkFileError(self.path, f"line {self.toks[self.i + k][1]}", f"{what}: {tok!r} is not a "
                                           "number (or a count in the file is wrong)") from None
            raise
        self.i += n
        return arr


def _read_legacy_vtk(path: Path, opts: dict) -> VesselNetwork:
    lines = _read_lines(path)
    if len(lines) < 4 or not lines[0][1].lower().startswith("# vtk datafile"):
        raise NetworkFileError(path, "line 1", "not a legacy VTK file (it must start with '# vtk DataFile Version'): "
                               "give a .vtk POLYDATA file or a .vtp file")
    if lines[2][1].strip().upper() != "ASCII":
        raise NetworkFileError(path, "line 3", f"legacy VTK encoding {lines[2][1].strip()!r}: only ASCII is read; "
                               "save the file as ASCII or as XML .vtp")
    body, skipping = [], False
    for ln, text in lines[3:]:
        s = text.strip()
        if s.upper() == "METADATA":
            skipping = True
            continue
        if skipping:
            if not s:
                skipping = False
            continue
        body.append((ln, text))
    tk = _Tokens(path, body)
    ln = tk.line()
    if tk.next("DATASET").upper() != "DATASET" or tk.next("POLYDATA").upper() != "POLYDATA":
        raise NetworkFileError(path, f"line {ln}", "expected 'DATASET POLYDATA': only POLYDATA centrelines are read")
    points = np.zeros((0, 3))
    counts = {"VERTICES": 0, "LINES": 0, "POLYGONS": 0, "TRIANGLE_STRIPS": 0}
    line_cells: list[np.ndarray] = []
    cdata: dict = {}
    pdata: dict = {}
    mode = None
    n_mode = 0
    while not tk.done():
        ln = tk.line()
        kw = tk.next("a keyword").upper()
        if kw == "POINTS":
            n = tk.int("the number of points")
            tk.next("the data type")
            points = tk.floats(3 * n, "POINTS").reshape(n, 3)
        elif kw in counts:
            ncells = tk.int(f"the number of {kw}")
            size = tk.int(f"the size of {kw}")
            counts[kw] = ncells
            if tk.peek() and tk.peek().upper() == "OFFSETS":  # file version 5.1
                tk.next("OFFSETS"), tk.next("type")
                offs = tk.floats(ncells, f"{kw} OFFSETS").astype(np.int64)
                if tk.next("CONNECTIVITY").upper() != "CONNECTIVITY":
                    raise NetworkFileError(path, f"line {tk.line()}", f"{kw}: CONNECTIVITY expected after OFFSETS")
                tk.next("type")
                conn = tk.floats(size, f"{kw} CONNECTIVITY").astype(np.int64)
                counts[kw] = ncells - 1
                cells = [conn[offs[k]:offs[k + 1]] for k in range(ncells - 1)]
            else:
                flat = tk.floats(size, kw).astype(np.int64)
                cells, k = [], 0
                while k < size:
                    c = int(flat[k])
                    if c < 0 or k + 1 + c > size:
                        raise NetworkFileError(path, f"line {ln}", f"{kw}: a cell of {c} points overruns the "
                                               f"{size} numbers announced: fix the counts")
                    cells.append(flat[k + 1:k + 1 + c])
                    k += 1 + c
                if len(cells) != ncells:
                    raise NetworkFileError(path, f"line {ln}", f"{kw} announces {ncells} cells but holds {len(cells)}")
            if kw == "LINES":
                line_cells = cells
        elif kw in ("POINT_DATA", "CELL_DATA"):
            n_mode = tk.int(f"the number of {kw} values")
            mode = kw
        elif kw in ("SCALARS", "VECTORS", "NORMALS", "TENSORS", "FIELD", "COLOR_SCALARS", "TEXTURE_COORDINATES",
                    "LOOKUP_TABLE"):
            if mode is None:
                raise NetworkFileError(path, f"line {ln}", f"{kw} before POINT_DATA or CELL_DATA: the file is damaged")
            store = pdata if mode == "POINT_DATA" else cdata
            if kw == "FIELD":
                tk.next("field name")
                for _ in range(tk.int("the number of field arrays")):
                    name = tk.next("array name")
                    if name.upper() == "NULL_ARRAY":
                        continue
                    ncomp = tk.int("components")
                    ntup = tk.int("tuples")
                    tk.next("type")
                    store[name] = tk.floats(ncomp * ntup, f"FIELD array {name}").reshape(ntup, ncomp)
            elif kw == "LOOKUP_TABLE":
                tk.next("table name")
                tk.floats(4 * tk.int("table size"), "LOOKUP_TABLE")
            else:
                name = tk.next("array name")
                if kw == "COLOR_SCALARS":
                    ncomp = tk.int("components")
                elif kw == "TEXTURE_COORDINATES":
                    ncomp = tk.int("dimension")
                    tk.next("type")
                else:
                    tk.next("type")
                    ncomp = {"VECTORS": 3, "NORMALS": 3, "TENSORS": 9}.get(kw, 1)
                    if kw == "SCALARS" and tk.peek() is not None and tk.peek().isdigit():
                        ncomp = tk.int("components")
                if kw == "SCALARS" and tk.peek() and tk.peek().upper() == "LOOKUP_TABLE":
                    tk.next("LOOKUP_TABLE"), tk.next("table name")
                store[name] = tk.floats(ncomp * n_mode, f"{kw} {name}").reshape(n_mode, ncomp)
        else:
            raise NetworkFileError(path, f"line {ln}", f"unexpected {kw!r}: expected POINTS, LINES, POINT_DATA, "
                                   "CELL_DATA, SCALARS or FIELD")
    nverts = counts["VERTICES"]
    nlines = len(line_cells)
    cdata = {k: v[nverts:nverts + nlines] for k, v in cdata.items()}
    for name in ("wall", "bc_kind"):
        for store in (cdata, pdata):
            if name in store:
                store[name] = store[name].astype(np.int64)
    return _polylines_to_network(path, points, line_cells, cdata, pdata,
                                 meta={"source": str(path), "format": "vtk"}, **opts)


# ----------------------------------------------------------------------------------------------
# Secomb network.dat
# ----------------------------------------------------------------------------------------------
def _starts_with_number(text: str) -> bool:
    tok = text.split()[0] if text.split() else ""
    try:
        float(tok)
        return True
    except ValueError:
        return False


def _read_secomb(path: Path, reader: _RecordReader, segment_types) -> None:
    lines = [(ln, s) for ln, s in _read_lines(path) if s.strip()]
    if len(lines) < 3:
        raise NetworkFileError(path, "", "too short for a Secomb network file (title, header, segments, nodes, "
                               "boundary nodes)")
    # the header is numeric lines after the title; the last of them gives the number of segments
    i = 1
    while i < len(lines) and _starts_with_number(lines[i][1]):
        i += 1
    if i < 3 or i >= len(lines):
        raise NetworkFileError(path, f"line {lines[min(i, len(lines) - 1)][0]}", "expected the header lines (box "
                               "size, ..., number of segments) then a segment table header line")
    t = reader.t

    def count(k: int, what: str) -> int:
        ln, text = lines[k]
        tok = text.split()[0]
        try:
            v = float(tok)
        except ValueError:
            v = -1
        if v < 0 or not float(v).is_integer():
            raise NetworkFileError(path, f"line {ln}", f"{tok!r} where the number of {what} was expected: give a "
                                   "whole number first on the line")
        return int(v)

    def row(k: int, n: int, what: str, columns: str) -> list[str]:
        if k >= len(lines):
            raise NetworkFileError(path, f"line {lines[-1][0]}", f"the file ends inside the {what} table: "
                                   "it is truncated, or a count in the file is too large")
        ln, text = lines[k]
        toks = text.split()
        if len(toks) < n:
            raise NetworkFileError(path, f"line {ln}", f"{len(toks)} values where a {what} row needs {n} "
                                   f"({columns})")
        return toks

    def num(tok: str, ln: int, col: str) -> float:
        try:
            return float(tok)
        except ValueError:
            raise NetworkFileError(path, f"line {ln}", f"{col} {tok!r} is not a number: give a number") from None

    nseg = count(i - 1, "segments")
    pos = i + 1
    segs = []
    for _ in range(nseg):
        toks = row(pos, 5, "segment", "name type from to diam [flow hd]")
        ln = lines[pos][0]
        try:
            name, typ, a, b = (str(int(num(tk, ln, c))) for tk, c in zip(toks[:4], ("name", "type", "from", "to")))
        except (ValueError, OverflowError):
            raise NetworkFileError(path, f"line {ln}", "name, type, from and to must be whole numbers") from None
        segs.append((ln, name, int(typ), a, b, num(toks[4], ln, "diam")))
        pos += 1
    nnod = count(pos, "nodes")
    pos += 2
    for _ in range(nnod):
        toks = row(pos, 4, "node", "name x y z")
        ln = lines[pos][0]
        reader.node({"id": toks[0], "x_um": toks[1], "y_um": toks[2], "z_um": toks[3]}, f"line {ln}", 0)
        t.node_ids[-1] = _id(int(num(toks[0], ln, "name")))
        pos += 1
    nbc = count(pos, "boundary nodes") if pos < len(lines) else 0
    pos += 2
    for ln, name, typ, a, b, diam in segs:
        if typ not in segment_types:
            continue
        reader.segment({"id": name, "node_a": a, "node_b": b, "diameter_um": diam}, f"line {ln}", 0)
    for _ in range(nbc):
        toks = row(pos, 4, "boundary node", "name bctyp press/flow hd")
        ln = lines[pos][0]
        node = _id(int(num(toks[0], ln, "name")))
        bctyp = num(toks[1], ln, "bctyp")
        value = num(toks[2], ln, "press/flow")
        hd = num(toks[3], ln, "hd")
        if bctyp == 0:
            kind, value = BCKind.PRESSURE, value * _MMHG_PA
        elif bctyp in (1, 2):
            kind, value = BCKind.FLOW, value * _NL_PER_MIN_M3_PER_S
        else:
            raise NetworkFileError(path, f"line {ln}", f"bctyp {toks[1]}: use 0 (pressure, mmHg) or 1 or 2 "
                                   "(inflow, nl/min)")
        t.bc_node.append(node)
        t.bc_kind.append(int(kind))
        t.bc_value.append(value)
        t.bc_hct.append(hd)
        t.bc_where.append(f"line {ln}")
        pos += 1


# ----------------------------------------------------------------------------------------------
# read_network
# ----------------------------------------------------------------------------------------------
_FORMATS = ("csv", "json", "vtp", "vtk", "secomb", "h5")


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if head.startswith(b"\x89HDF"):
        return "h5"
    text = head.decode("utf-8", "replace").lstrip("\ufeff").lstrip()
    if text.startswith(("<?xml", "<VTKFile")):
        return "vtp"
    if text.lower().startswith("# vtk datafile"):
        return "vtk"
    if text.startswith("{"):
        return "json"
    if text.startswith("[") or re.match(r"[A-Za-z_]+\s*,", text):
        return "csv"
    return None


def read_network(
    path,
    *,
    format: str | None = None,
    length_unit: str = "m",
    radius_array: str | None = None,
    wall="capillary",
    haematocrit: float = 0.45,
    segment_types=(4, 5),
    merge_tol_m: float | None = None,
    group: str = "/",
) -> VesselNetwork:
    """Read a vessel network from a file (see the module docstring for the formats).

    Parameters
    ----------
    path : str or os.PathLike
        The file, or a folder of CSV tables.
    format : {"csv", "json", "vtp", "vtk", "secomb", "h5"} or None
        Force a reader; None picks it from the extension, else from the content.
    length_unit : str
        Unit of coordinates and radii given without a unit (VTK files, bare CSV/JSON columns),
        e.g. "um" for files in micrometres. Default metres.
    radius_array : str or None
        Name of the VTK array holding radii (or diameters, when the name starts with "diam").
    wall : str or int
        :class:`WallType` of segments whose file gives none.
    haematocrit : float
        Discharge haematocrit of boundary conditions whose file gives none.
    segment_types : tuple of int
        Secomb files: segment types kept.
    merge_tol_m : float or None
        VTK files: merge points closer than this (m; 0 merges identical points), e.g. for
        centrelines whose branches repeat the branching point. None keeps every point.
    group : str
        HDF5 files: the group holding the network.

    Returns
    -------
    VesselNetwork
        ``meta`` records the source file and format.

    Raises
    ------
    NetworkFileError
        The file cannot be read: the message names the file, line or element, and the fix.
    FileNotFoundError
        ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if format is None:
        ext = path.suffix.lower()
        format = ("csv" if path.is_dir() or ext == ".csv" else "json" if ext == ".json" else
                  "vtp" if ext == ".vtp" else "vtk" if ext == ".vtk" else "h5" if ext in (".h5", ".hdf5") else
                  "secomb" if ext in (".dat", ".txt") else None)
        sniffed = _sniff(path) if path.is_file() else None
        if format == "vtk" and sniffed == "vtp":  # XML content in a .vtk file
            format = "vtp"
        if format is None:
            format = sniffed
        if format is None:
            raise NetworkFileError(path, "", "cannot tell the format: use the extension .csv, .json, .vtp, .vtk, "
                                   ".dat (Secomb) or .h5, or pass format=...")
    if format not in _FORMATS:
        raise NetworkError(f"format = {format!r}: use one of {', '.join(_FORMATS)}")
    if format == "h5":
        return load_network_h5(path, group=group)
    lf = _length_factor(length_unit)
    wall_code = int(WallType.parse(wall))
    if not 0 <= float(haematocrit) < 1:
        raise NetworkError(f"haematocrit = {haematocrit!r}: must be in [0, 1)")
    if format in ("vtp", "vtk"):
        opts = {"length_factor": lf, "radius_array": radius_array, "wall": wall_code, "haematocrit": float(haematocrit),
                    "merge_tol_m": merge_tol_m}
        if format == "vtp":
            return _read_vtp(path, opts)
        return _read_legacy_vtk(path, opts)
    tables = _Tables()
    reader = _RecordReader(path, tables, wall_code, float(haematocrit), lf)
    meta = {"source": str(path), "format": format}
    if format == "csv":
        _read_csv(path, reader)
    elif format == "json":
        file_meta = _read_json(path, reader)
        meta = {**file_meta, **meta}
    else:
        _read_secomb(path, reader, tuple(int(s) for s in segment_types))
    return _assemble(path, tables, meta)


# ----------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------
def _atomic_write(path, data: bytes) -> None:
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(x: float) -> str:
    return repr(float(x))


_NP_TO_VTK = {"i1": "Int8", "u1": "UInt8", "i2": "Int16", "u2": "UInt16", "i4": "Int32", "u4": "UInt32",
              "i8": "Int64", "u8": "UInt64", "f4": "Float32", "f8": "Float64"}


def _encode_array(arr: np.ndarray, encoding: str, compress: bool) -> str:
    arr = np.ascontiguousarray(arr)
    if encoding == "ascii":
        if arr.dtype.kind == "f":
            return " ".join(repr(float(v)) for v in arr.reshape(-1))
        return " ".join(str(int(v)) for v in arr.reshape(-1))
    data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    if not compress:
        head = np.array([len(data)], dtype="<u8").tobytes()
        return base64.b64encode(head).decode() + base64.b64encode(data).decode()
    block = 1 << 15
    chunks = [data[i:i + block] for i in range(0, len(data), block)]
    comp = [zlib.compress(c) for c in chunks]
    last = len(chunks[-1]) if chunks else 0
    head = np.array([len(chunks), block, last if last != block else 0] + [len(c) for c in comp], dtype="<u8")
    return base64.b64encode(head.tobytes()).decode() + base64.b64encode(b"".join(comp)).decode()


def _check_extra(arrays, n: int, what: str, reserved) -> dict:
    out = {}
    for name, arr in (arrays or {}).items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name):
            raise NetworkError(f"{what} array name {name!r}: use letters, digits, '_', '.' or '-' (with the unit in "
                               "the name, e.g. flow_m3_per_s)")
        if name in reserved:
            raise NetworkError(f"{what} array {name!r} is written anyway: give it another name")
        a = np.asarray(arr)
        if a.dtype == bool:
            a = a.astype(np.uint8)
        if a.dtype.kind not in "iuf" or a.ndim not in (1, 2) or len(a) != n:
            raise NetworkError(f"{what} array {name!r} has shape {a.shape} and dtype {a.dtype}: give {n} numbers "
                               f"(one per {'segment' if what == 'cell' else 'node'}), or an ({n}, k) array")
        if a.dtype.itemsize > 8 or a.dtype.str[1:] not in _NP_TO_VTK:
            a = a.astype(np.float64)
        out[name] = a
    return out


def _node_radius_m(network: VesselNetwork) -> np.ndarray:
    r = np.zeros(network.n_nodes)
    np.maximum.at(r, network.seg_nodes[:, 0], network.seg_radius_m)
    np.maximum.at(r, network.seg_nodes[:, 1], network.seg_radius_m)
    return r


def write_vtp(network: VesselNetwork, path, point_data: dict | None = None, cell_data: dict | None = None, *,
              encoding: str = "ascii", compress: bool = False) -> None:
    """Write the network as VTK XML PolyData, one line cell per segment, atomically.

    Cell arrays: ``radius_m``, ``length_m``, ``wall`` (:class:`WallType` code),
    ``pore_radius_m``, ``permeability_m_per_s``. Point arrays: ``radius_m`` (largest radius of
    the segments at the node: ParaView's Tube filter, "Vary Radius: By Absolute Scalar", draws
    the vessels with it), ``bc_kind`` (-1 none, 0 pressure, 1 inflow), ``bc_value`` (Pa or
    m³/s) and ``bc_haematocrit``. :func:`read_network` reads the file back into the same
    network (``meta`` is not stored).

    Parameters
    ----------
    network : VesselNetwork
    path : str or os.PathLike
        Output file (``.vtp``).
    point_data, cell_data : dict of str to array, optional
        Extra per-node (n,) or (n, k) and per-segment (m,) or (m, k) arrays, e.g.
        ``{"pressure_pa": p}`` and ``{"flow_m3_per_s": q}``; put the unit in the name.
    encoding : {"ascii", "binary"}
        Plain text, or base64 inline binary (smaller, exact either way).
    compress : bool
        zlib-compress binary data.
    """
    if encoding not in ("ascii", "binary"):
        raise NetworkError(f"encoding = {encoding!r}: use 'ascii' or 'binary'")
    if compress and encoding != "binary":
        raise NetworkError("compress=True needs encoding='binary'")
    n, m = network.n_nodes, network.n_segments
    kind = np.full(n, -1, dtype=np.int8)
    val = np.zeros(n)
    hct = np.zeros(n)
    kind[network.bc_nodes] = network.bc_kind
    val[network.bc_nodes] = network.bc_value
    hct[network.bc_nodes] = network.bc_haematocrit
    pd = {"radius_m": _node_radius_m(network), "bc_kind": kind, "bc_value": val, "bc_haematocrit": hct}
    cd = {"radius_m": network.seg_radius_m, "length_m": network.seg_length_m, "wall": network.seg_wall,
          "pore_radius_m": network.seg_pore_radius_m, "permeability_m_per_s": network.seg_permeability_m_per_s}
    pd.update(_check_extra(point_data, n, "point", pd))
    cd.update(_check_extra(cell_data, m, "cell", cd))
    fmt = "ascii" if encoding == "ascii" else "binary"

    def da(name, arr, ncomp=None):
        arr = np.asarray(arr)
        k = ncomp or (arr.shape[1] if arr.ndim == 2 else 1)
        typ = _NP_TO_VTK[arr.dtype.str[1:]]
        attrs = f'type="{typ}" Name="{name}" NumberOfComponents="{k}" format="{fmt}"'
        return f"        <DataArray {attrs}>{_encode_array(arr, encoding, compress)}</DataArray>\n"

    comp = ' compressor="vtkZLibDataCompressor"' if compress else ""
    out = [
        '<?xml version="1.0"?>\n',
        f'<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64"{comp}>\n',
        "  <PolyData>\n",
        f'    <Piece NumberOfPoints="{n}" NumberOfVerts="0" NumberOfLines="{m}" NumberOfStrips="0" NumberOfPolys="0">\n',
        '      <PointData Scalars="radius_m">\n',
        *[da(k, v) for k, v in pd.items()],
        "      </PointData>\n",
        '      <CellData Scalars="radius_m">\n',
        *[da(k, v) for k, v in cd.items()],
        "      </CellData>\n",
        "      <Points>\n", da("Points", network.node_pos_m.astype(np.float64), 3), "      </Points>\n",
        "      <Lines>\n",
        da("connectivity", network.seg_nodes.astype(np.int64).reshape(-1), 1),
        da("offsets", 2 * np.arange(1, m + 1, dtype=np.int64), 1),
        "      </Lines>\n",
        "    </Piece>\n", "  </PolyData>\n", "</VTKFile>\n",
    ]
    _atomic_write(path, "".join(out).encode("ascii"))


def _csv_tables(network: VesselNetwork) -> dict[str, str]:
    def table(header, rows):
        buf = _io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()

    nodes = table(["id", "x_m", "y_m", "z_m"], ([i, *map(_fmt, p)] for i, p in enumerate(network.node_pos_m)))
    segs = table(["id", "node_a", "node_b", "radius_m", "length_m", "wall", "pore_radius_m", "permeability_m_per_s"],
                 ([k, int(a), int(b), _fmt(r), _fmt(length), WallType(int(w)).name.lower(), _fmt(pr), _fmt(pm)]
                  for k, ((a, b), r, length, w, pr, pm) in enumerate(zip(
                      network.seg_nodes, network.seg_radius_m, network.seg_length_m, network.seg_wall,
                      network.seg_pore_radius_m, network.seg_permeability_m_per_s))))
    bcs = table(["node", "kind", "value", "haematocrit"],
                ([int(nd), _kind_name(int(k)), _fmt(v), _fmt(h)] for nd, k, v, h in zip(
                    network.bc_nodes, network.bc_kind, network.bc_value, network.bc_haematocrit)))
    return {"nodes": nodes, "segments": segs, "boundary": bcs}


def write_network_csv(network: VesselNetwork, path) -> None:
    """Write the network as CSV tables (SI columns, exact decimal floats), atomically.

    A path ending in ``.csv`` gets one file with ``[nodes]``, ``[segments]`` and
    ``[boundary]`` sections; any other path is a folder (created if needed) that gets
    ``nodes.csv``, ``segments.csv`` and ``boundary.csv``. Boundary values are in Pa
    (pressure) or m³/s (flow). ``meta`` is not stored.
    """
    path = Path(path)
    tables = _csv_tables(network)
    if path.suffix.lower() == ".csv":
        text = "# vessel network: lengths in m, pressures in Pa, flows in m^3/s\n" + "".join(
            f"[{name}]\n{body}\n" for name, body in tables.items())
        _atomic_write(path, text.encode("utf-8"))
        return
    path.mkdir(parents=True, exist_ok=True)
    for name, body in tables.items():
        _atomic_write(path / f"{name}.csv", body.encode("utf-8"))


def write_network_json(network: VesselNetwork, path) -> None:
    """Write the network as JSON (SI keys, exact floats, ``meta`` included), atomically."""
    doc = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "meta": network.meta,
        "nodes": [{"id": i, "x_m": float(p[0]), "y_m": float(p[1]), "z_m": float(p[2])}
                  for i, p in enumerate(network.node_pos_m)],
        "segments": [{"id": k, "node_a": int(a), "node_b": int(b), "radius_m": float(r), "length_m": float(length),
                      "wall": WallType(int(w)).name.lower(), "pore_radius_m": float(pr),
                      "permeability_m_per_s": float(pm)}
                     for k, ((a, b), r, length, w, pr, pm) in enumerate(zip(
                         network.seg_nodes, network.seg_radius_m, network.seg_length_m, network.seg_wall,
                         network.seg_pore_radius_m, network.seg_permeability_m_per_s))],
        "boundary": [{"node": int(nd), "kind": _kind_name(int(k)), "value": float(v), "haematocrit": float(h)}
                     for nd, k, v, h in zip(network.bc_nodes, network.bc_kind, network.bc_value,
                                            network.bc_haematocrit)],
    }
    try:
        text = json.dumps(doc, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NetworkError(f"network meta cannot be written as JSON ({exc}): keep meta to numbers, text, lists "
                           "and dicts") from None
    _atomic_write(path, (text + "\n").encode("utf-8"))


def write_secomb(network: VesselNetwork, path, title: str = "vessel network") -> None:
    """Write the network in T. W. Secomb's network.dat layout (µm, mmHg, nl/min), atomically.

    Nodes and segments are named from 1 in array order; every segment gets type 5, flow 0 and
    haematocrit 0.45 (NetFlow computes them); flows are written with bctyp 2 (NetFlow's inflow
    code). Segment lengths, wall types, pore radii and permeabilities are not part of the
    format: reading the file back gives straight lengths and the default wall.
    """
    um = 1e6
    lo, hi = network.bounds_m()
    box = (hi - np.minimum(lo, 0)) * um if network.n_nodes else np.zeros(3)
    out = [f"{title}\n",
           f"{box[0]:.6g} {box[1]:.6g} {box[2]:.6g}\tbox dimensions in microns\n",
           "10 10 10\tnumber of tissue points in x,y,z directions\n",
           "100.\touter bound distance\n",
           "10.\tmax. segment length\n",
           f"{max(int(network.node_degree().max()) if network.n_nodes else 1, 1)}\tmaximum number of segments per node\n",
           f"{network.n_segments}\ttotal number of segments\n",
           "SegName Type StartNode EndNode Diam Flow[nl/min] Hd\n"]
    for k, ((a, b), r) in enumerate(zip(network.seg_nodes, network.seg_radius_m)):
        out.append(f"{k + 1} 5 {a + 1} {b + 1} {_fmt(2 * r * um)} 0.0 0.45\n")
    out += [f"{network.n_nodes}\ttotal number of nodes\n", "Name x y z\n"]
    for i, p in enumerate(network.node_pos_m):
        out.append(f"{i + 1} {_fmt(p[0] * um)} {_fmt(p[1] * um)} {_fmt(p[2] * um)}\n")
    out += [f"{len(network.bc_nodes)}\ttotal number of boundary nodes\n", "Name bctyp press/flow HD\n"]
    for nd, k, v, h in zip(network.bc_nodes, network.bc_kind, network.bc_value, network.bc_haematocrit):
        if k == BCKind.PRESSURE:
            out.append(f"{nd + 1} 0 {_fmt(v / _MMHG_PA)} {_fmt(h)}\n")
        else:
            out.append(f"{nd + 1} 2 {_fmt(v / _NL_PER_MIN_M3_PER_S)} {_fmt(h)}\n")
    _atomic_write(path, "".join(out).encode("ascii"))


# ----------------------------------------------------------------------------------------------
# HDF5
# ----------------------------------------------------------------------------------------------
_H5_ARRAYS = {
    "node_pos_m": "m", "seg_nodes": "1", "seg_radius_m": "m", "seg_length_m": "m", "seg_wall": "1",
    "seg_pore_radius_m": "m", "seg_permeability_m_per_s": "m/s", "bc_nodes": "1", "bc_kind": "1",
    "bc_value": "Pa (bc_kind 0, pressure) or m^3/s (bc_kind 1, inflow)", "bc_haematocrit": "1",
}


def _extra_items(extra, n: int, what: str):
    for name, item in (extra or {}).items():
        arr, units = (item if isinstance(item, tuple) else (item, ""))
        arr = np.asarray(arr)
        if arr.ndim < 1 or len(arr) != n or arr.dtype.kind not in "biuf":
            raise NetworkError(f"extra_{what} array {name!r} has shape {arr.shape} and dtype {arr.dtype}: give one "
                               f"number per {'segment' if what == 'seg' else 'node'} ({n})")
        yield str(name), arr, str(units)


def save_network_h5(network: VesselNetwork, h5group, extra_seg: dict | None = None,
                    extra_node: dict | None = None) -> None:
    """Store the network in an h5py group (exact round trip with :func:`load_network_h5`).

    Every array becomes a dataset with a ``units`` attribute; ``meta`` is stored as the JSON
    attribute ``meta_json``; the group is tagged ``format = "nanosim.vessel_network"``.

    Parameters
    ----------
    network : VesselNetwork
    h5group : h5py.Group
        An open, writable group (an ``h5py.File`` is a group); its existing network datasets
        are replaced.
    extra_seg, extra_node : dict, optional
        Extra per-segment / per-node arrays, stored in sub-groups ``extra_seg`` and
        ``extra_node``; a value may be an array or ``(array, units)``, e.g.
        ``{"flow": (q, "m^3/s")}``.
    """
    try:
        meta_json = json.dumps(network.meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NetworkError(f"network meta cannot be stored as JSON ({exc}): keep meta to numbers, text, lists "
                           "and dicts") from None
    segs = list(_extra_items(extra_seg, network.n_segments, "seg"))
    nodes = list(_extra_items(extra_node, network.n_nodes, "node"))
    for name, units in _H5_ARRAYS.items():
        if name in h5group:
            del h5group[name]
        ds = h5group.create_dataset(name, data=getattr(network, name))
        ds.attrs["units"] = units
    h5group["seg_wall"].attrs["codes"] = ", ".join(f"{w.value}={w.name.lower()}" for w in WallType)
    h5group["bc_kind"].attrs["codes"] = "0=pressure (Pa), 1=inflow (m^3/s)"
    h5group.attrs["format"] = FORMAT_NAME
    h5group.attrs["format_version"] = FORMAT_VERSION
    h5group.attrs["meta_json"] = meta_json
    for sub, items in (("extra_seg", segs), ("extra_node", nodes)):
        if sub in h5group:
            del h5group[sub]
        if items:
            g = h5group.create_group(sub)
            for name, arr, units in items:
                g.create_dataset(name, data=arr).attrs["units"] = units


def load_network_h5(h5group, *, group: str = "/", with_extra: bool = False):
    """Read a network stored by :func:`save_network_h5`.

    Parameters
    ----------
    h5group : h5py.Group, str or os.PathLike
        The group, or an HDF5 file name (then ``group`` names the group inside it).
    group : str
        Group inside the file, when ``h5group`` is a file name.
    with_extra : bool
        Also return the extra arrays as ``(network, extra_seg, extra_node)`` dicts of arrays.

    Returns
    -------
    VesselNetwork, or (VesselNetwork, dict, dict) with ``with_extra``
    """
    import h5py

    if isinstance(h5group, (str, os.PathLike)):
        path = Path(h5group)
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise NetworkFileError(path, "", f"cannot open as HDF5 ({exc}): give an HDF5 file written by "
                                   "save_network_h5") from None
        with f:
            if group not in f:
                raise NetworkFileError(path, f"group {group!r}", "no such group: give group=... naming the group "
                                       "that holds the network")
            return load_network_h5(f[group], with_extra=with_extra)
    fname, gname = h5group.file.filename, h5group.name
    where = f"group {gname!r}"
    if h5group.attrs.get("format") != FORMAT_NAME:
        raise NetworkFileError(fname, where, f"not a vessel network (attribute format is "
                               f"{h5group.attrs.get('format')!r}, expected {FORMAT_NAME!r}): name the group written "
                               "by save_network_h5")
    kw = {}
    for name in _H5_ARRAYS:
        if name not in h5group:
            raise NetworkFileError(fname, where, f"dataset {name!r} is missing: the network was not completely "
                                   "written; save it again")
        kw[name] = h5group[name][()]
    try:
        meta = json.loads(h5group.attrs.get("meta_json", "{}"))
    except json.JSONDecodeError as exc:
        raise NetworkFileError(fname, where, f"attribute meta_json is not valid JSON ({exc})") from None
    try:
        net = VesselNetwork(**kw, meta=meta)
    except NetworkError as exc:
        raise NetworkFileError(fname, where, str(exc)) from None
    if not with_extra:
        return net
    extras = []
    for sub in ("extra_seg", "extra_node"):
        extras.append({k: v[()] for k, v in h5group[sub].items()} if sub in h5group else {})
    return net, extras[0], extras[1]
