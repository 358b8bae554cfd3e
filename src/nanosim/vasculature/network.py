"""The vessel network: nodes, segments and the boundary conditions of blood flow.

A :class:`VesselNetwork` is a graph stored as flat NumPy arrays (SI units throughout):

- nodes: ``node_pos_m`` (n, 3) positions (x, y, z) in metres;
- segments: ``seg_nodes`` (m, 2) node indices, ``seg_radius_m`` (m,) lumen radius,
  ``seg_length_m`` (m,) centreline length (≥ the straight distance between the end nodes: a
  tortuous vessel is longer than its chord), ``seg_wall`` (m,) :class:`WallType` codes,
  ``seg_pore_radius_m`` (m,) wall pore radius (0 = no pores: continuous wall) and
  ``seg_permeability_m_per_s`` (m,) free-drug wall permeability;
- boundary conditions: ``bc_nodes`` (k,) node indices, ``bc_kind`` (k,) :class:`BCKind` codes
  (pressure in Pa, or inflow in m³/s — positive into the network), ``bc_value`` (k,) and
  ``bc_haematocrit`` (k,) discharge haematocrit of blood entering there.

Every array is validated on construction (:meth:`VesselNetwork.validate`); a bad network raises
:class:`NetworkError` naming the element and the fix. The object is immutable in spirit: derived
arrays are computed on demand, and :meth:`with_` returns a modified copy.

>>> import numpy as np
>>> net = VesselNetwork(node_pos_m=np.array([[0, 0, 0], [1e-3, 0, 0]], float),
...                     seg_nodes=np.array([[0, 1]]), seg_radius_m=np.array([10e-6]),
...                     bc_nodes=np.array([0, 1]), bc_kind=np.array([BCKind.PRESSURE] * 2),
...                     bc_value=np.array([2000.0, 1000.0]))
>>> net.n_nodes, net.n_segments
(2, 1)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace

import numpy as np


class NetworkError(ValueError):
    """A vessel network that cannot be used, with the element at fault and the fix."""


class WallType(enum.IntEnum):
    """Kind of vessel wall (PHYSICS.md §2); stored as uint8 codes in ``seg_wall``."""

    ARTERY = 0
    VEIN = 1
    PORTAL = 2
    CAPILLARY = 3
    SINUSOID = 4
    TUMOUR = 5

    @classmethod
    def parse(cls, value) -> "WallType":
        """A WallType from its code or (case-insensitive) name."""
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                names = ", ".join(w.name.lower() for w in cls)
                raise NetworkError(f"unknown wall type {value!r}: use one of {names}") from None
        try:
            return cls(int(value))
        except ValueError:
            raise NetworkError(f"unknown wall type code {value!r}: use 0..{len(cls) - 1}") from None


class BCKind(enum.IntEnum):
    """Kind of flow boundary condition at a node."""

    PRESSURE = 0  #: node pressure, Pa
    FLOW = 1  #: volumetric inflow into the network at the node, m³/s (negative: outflow)


def _arr(a, dtype, shape_tail=()):
    a = np.asarray(a, dtype=dtype)
    return np.ascontiguousarray(a.reshape((-1,) + shape_tail)) if a.size or shape_tail else a.reshape(0)


@dataclass(eq=False)
class VesselNetwork:
    """A vessel network (see the module docstring for the arrays and their units).

    Parameters left as None get defaults: ``seg_length_m`` the straight node-to-node distance,
    ``seg_wall`` capillary, ``seg_pore_radius_m`` and ``seg_permeability_m_per_s`` zero, no
    boundary conditions, ``bc_haematocrit`` 0.45.
    """

    node_pos_m: np.ndarray
    seg_nodes: np.ndarray
    seg_radius_m: np.ndarray
    seg_length_m: np.ndarray | None = None
    seg_wall: np.ndarray | None = None
    seg_pore_radius_m: np.ndarray | None = None
    seg_permeability_m_per_s: np.ndarray | None = None
    bc_nodes: np.ndarray | None = None
    bc_kind: np.ndarray | None = None
    bc_value: np.ndarray | None = None
    bc_haematocrit: np.ndarray | None = None
    #: free-form provenance (generator name and parameters, source file); stored with the network
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.node_pos_m = _arr(self.node_pos_m, np.float64, (3,))
        self.seg_nodes = _arr(self.seg_nodes, np.int64, (2,))
        m = len(self.seg_nodes)
        self.seg_radius_m = _arr(self.seg_radius_m, np.float64)
        if self.seg_length_m is None:
            self.seg_length_m = self.chord_length_m() if self._nodes_ok() else np.zeros(m)
        self.seg_length_m = _arr(self.seg_length_m, np.float64)
        self.seg_wall = _arr(np.full(m, WallType.CAPILLARY) if self.seg_wall is None else self.seg_wall, np.uint8)
        self.seg_pore_radius_m = _arr(np.zeros(m) if self.seg_pore_radius_m is None else self.seg_pore_radius_m,
                                      np.float64)
        self.seg_permeability_m_per_s = _arr(
            np.zeros(m) if self.seg_permeability_m_per_s is None else self.seg_permeability_m_per_s, np.float64)
        self.bc_nodes = _arr([] if self.bc_nodes is None else self.bc_nodes, np.int64)
        k = len(self.bc_nodes)
        self.bc_kind = _arr(np.zeros(k) if self.bc_kind is None else self.bc_kind, np.uint8)
        self.bc_value = _arr(np.zeros(k) if self.bc_value is None else self.bc_value, np.float64)
        self.bc_haematocrit = _arr(np.full(k, 0.45) if self.bc_haematocrit is None else self.bc_haematocrit,
                                   np.float64)
        self.meta = dict(self.meta)
        self.validate()

    # ------------------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.node_pos_m)

    @property
    def n_segments(self) -> int:
        return len(self.seg_nodes)

    def _nodes_ok(self) -> bool:
        s = self.seg_nodes
        return s.size == 0 or (s.min() >= 0 and s.max() < len(self.node_pos_m))

    def chord_length_m(self) -> np.ndarray:
        """Straight distance between each segment's end nodes (m)."""
        p = self.node_pos_m
        return np.linalg.norm(p[self.seg_nodes[:, 1]] - p[self.seg_nodes[:, 0]], axis=1)

    def node_degree(self) -> np.ndarray:
        """Number of segments at each node."""
        return np.bincount(self.seg_nodes.reshape(-1), minlength=self.n_nodes)

    def seg_volume_m3(self) -> np.ndarray:
        """Lumen volume of each segment, π r² L (m³)."""
        return np.pi * self.seg_radius_m**2 * self.seg_length_m

    def seg_surface_m2(self) -> np.ndarray:
        """Lateral wall area of each segment, 2π r L (m²)."""
        return 2.0 * np.pi * self.seg_radius_m * self.seg_length_m

    def components(self) -> np.ndarray:
        """Connected-component label of each node (0, 1, ...), by segments."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = self.n_nodes
        s = self.seg_nodes
        g = coo_matrix((np.ones(len(s)), (s[:, 0], s[:, 1])), shape=(n, n))
        return connected_components(g, directed=False)[1]

    def bounds_m(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners of the box holding every vessel (centrelines ± radius)."""
        if self.n_segments == 0:
            return self.node_pos_m.min(axis=0), self.node_pos_m.max(axis=0)
        rmax = np.zeros(self.n_nodes)
        np.maximum.at(rmax, self.seg_nodes[:, 0], self.seg_radius_m)
        np.maximum.at(rmax, self.seg_nodes[:, 1], self.seg_radius_m)
        return (self.node_pos_m - rmax[:, None]).min(axis=0), (self.node_pos_m + rmax[:, None]).max(axis=0)

    def with_(self, **changes) -> "VesselNetwork":
        """A copy with some arrays replaced (validated again)."""
        return replace(self, **changes)

    def copy(self) -> "VesselNetwork":
        kw = {f.name: (getattr(self, f.name).copy() if isinstance(getattr(self, f.name), np.ndarray)
                       else dict(getattr(self, f.name)) if f.name == "meta" else getattr(self, f.name))
              for f in fields(self)}
        return VesselNetwork(**kw)

    # ------------------------------------------------------------------------------------------
    def validate(self, require_bc: bool = False) -> None:
        """Raise :class:`NetworkError` on the first problem found, naming the element and the fix.

        Checks shapes, finite positions, node references, positive radii and lengths, no segment
        joining a node to itself, known wall types, non-negative pore radii and permeabilities,
        valid boundary conditions; with ``require_bc``, that every connected piece carries at
        least one pressure condition (else its pressures are undetermined).
        """
        m, n = self.n_segments, self.n_nodes
        for name in ("seg_radius_m", "seg_length_m", "seg_wall", "seg_pore_radius_m", "seg_permeability_m_per_s"):
            if len(getattr(self, name)) != m:
                raise NetworkError(f"{name} has {len(getattr(self, name))} entries for {m} segments: give one per segment")
        for name in ("bc_kind", "bc_value", "bc_haematocrit"):
            if len(getattr(self, name)) != len(self.bc_nodes):
                raise NetworkError(f"{name} has {len(getattr(self, name))} entries for {len(self.bc_nodes)} "
                                   "boundary nodes: give one per boundary node")
        bad = np.flatnonzero(~np.isfinite(self.node_pos_m).all(axis=1))
        if bad.size:
            raise NetworkError(f"node {bad[0]} has a non-finite position {self.node_pos_m[bad[0]].tolist()}: "
                               "give finite coordinates in metres")
        if m:
            lo, hi = self.seg_nodes.min(axis=1), self.seg_nodes.max(axis=1)
            bad = np.flatnonzero((lo < 0) | (hi >= n))
            if bad.size:
                raise NetworkError(f"segment {bad[0]} refers to node {self.seg_nodes[bad[0]].tolist()} but the "
                                   f"network has nodes 0..{n - 1}: fix the node index or add the node")
            bad = np.flatnonzero(self.seg_nodes[:, 0] == self.seg_nodes[:, 1])
            if bad.size:
                raise NetworkError(f"segment {bad[0]} joins node {self.seg_nodes[bad[0], 0]} to itself: remove it")
        for name, arr in (("seg_radius_m", self.seg_radius_m), ("seg_length_m", self.seg_length_m)):
            bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
            if bad.size:
                raise NetworkError(f"segment {bad[0]} has {name} = {float(arr[bad[0]])!r}: must be a finite number > 0"
                                   + (" (two nodes at the same position?)" if name == "seg_length_m" else ""))
        bad = np.flatnonzero(self.seg_wall >= len(WallType))
        if bad.size:
            raise NetworkError(f"segment {bad[0]} has wall type code {int(self.seg_wall[bad[0]])}: use 0..{len(WallType) - 1} "
                               f"({', '.join(w.name.lower() for w in WallType)})")
        for name in ("seg_pore_radius_m", "seg_permeability_m_per_s"):
            arr = getattr(self, name)
            bad = np.flatnonzero(~(np.isfinite(arr) & (arr >= 0)))
            if bad.size:
                raise NetworkError(f"segment {bad[0]} has {name} = {float(arr[bad[0]])!r}: must be finite and >= 0")
        if len(self.bc_nodes):
            bad = np.flatnonzero((self.bc_nodes < 0) | (self.bc_nodes >= n))
            if bad.size:
                raise NetworkError(f"boundary condition {bad[0]} is on node {self.bc_nodes[bad[0]]}, which does not "
                                   f"exist (nodes 0..{n - 1})")
            u, counts = np.unique(self.bc_nodes, return_counts=True)
            if (counts > 1).any():
                raise NetworkError(f"node {u[counts > 1][0]} has more than one boundary condition: keep one")
            bad = np.flatnonzero(self.bc_kind > max(BCKind))
            if bad.size:
                raise NetworkError(f"boundary condition {bad[0]} has kind code {int(self.bc_kind[bad[0]])}: "
                                   "use 0 (pressure, Pa) or 1 (inflow, m³/s)")
            bad = np.flatnonzero(~np.isfinite(self.bc_value))
            if bad.size:
                raise NetworkError(f"boundary condition {bad[0]} (node {self.bc_nodes[bad[0]]}) has a non-finite value")
            bad = np.flatnonzero(~((self.bc_haematocrit >= 0) & (self.bc_haematocrit < 1)))
            if bad.size:
                raise NetworkError(f"boundary condition {bad[0]} has haematocrit {float(self.bc_haematocrit[bad[0]])!r}: "
                                   "must be in [0, 1)")
        if require_bc and n:
            comp = self.components()
            has_p = np.zeros(comp.max() + 1, bool)
            has_p[comp[self.bc_nodes[self.bc_kind == BCKind.PRESSURE]]] = True
            deg = self.node_degree()
            for c in np.flatnonzero(~has_p):
                nodes = np.flatnonzero((comp == c) & (deg > 0))
                if nodes.size:
                    raise NetworkError(
                        f"the connected piece holding node {nodes[0]} ({nodes.size} nodes) has no pressure "
                        "boundary condition, so its pressures are undetermined: give one of its nodes a "
                        "pressure condition, or remove the piece")

    # ------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        """Counts, total length, volume and wall area, radius range, per wall type."""
        out = {"nodes": self.n_nodes, "segments": self.n_segments,
               "boundary_nodes": int(len(self.bc_nodes)),
               "total_length_m": float(self.seg_length_m.sum()),
               "total_volume_m3": float(self.seg_volume_m3().sum()),
               "total_surface_m2": float(self.seg_surface_m2().sum()), "by_wall": {}}
        for w in WallType:
            sel = self.seg_wall == w
            if sel.any():
                out["by_wall"][w.name.lower()] = {
                    "segments": int(sel.sum()), "length_m": float(self.seg_length_m[sel].sum()),
                    "radius_min_m": float(self.seg_radius_m[sel].min()),
                    "radius_max_m": float(self.seg_radius_m[sel].max())}
        return out

    def __repr__(self) -> str:
        s = self.summary()
        lines = [f"VesselNetwork: {s['nodes']} nodes, {s['segments']} segments, "
                 f"{s['boundary_nodes']} boundary nodes, total length {s['total_length_m'] * 1e3:.4g} mm"]
        items = list(s["by_wall"].items())
        for i, (name, d) in enumerate(items):
            branch = "└──" if i == len(items) - 1 else "├──"
            lines.append(f"{branch} {name}: {d['segments']} segments, {d['length_m'] * 1e3:.4g} mm, "
                         f"radius {d['radius_min_m'] * 1e6:.3g}–{d['radius_max_m'] * 1e6:.3g} µm")
        return "\n".join(lines)
