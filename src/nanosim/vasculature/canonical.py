"""Canonical validation geometries: a straight vessel, a bifurcation and a binary arterial tree.

Each function returns a :class:`~nanosim.vasculature.network.VesselNetwork` with boundary
conditions that make the flow problem well posed: a pressure (Pa) at the inlet and at every
outlet. The geometries are simple enough that flow, pressure and transit times have closed-form
answers (Poiseuille's law, Murray's law), which makes them the reference cases for the flow and
transport solvers.

Default pressures are physiological orders of magnitude, not fitted values: a capillary runs
from 4000 Pa (30 mmHg) to 1333 Pa (10 mmHg); the arterial geometries run from 12000 Pa
(90 mmHg) to 4000 Pa (30 mmHg).

>>> net = straight_vessel(1e-3, 5e-6, n_segments=4)
>>> net.n_nodes, net.n_segments
(5, 4)
>>> r1, r2 = murray_child_radius(10e-6)
>>> round(r1 * 1e6, 3)
7.937
"""

from __future__ import annotations

import math

import numpy as np

from .network import BCKind, NetworkError, VesselNetwork, WallType

__all__ = ["bifurcation", "binary_tree", "murray_child_radius", "straight_vessel"]

#: default capillary inlet and outlet pressures, Pa (30 and 10 mmHg)
CAPILLARY_P_IN_PA = 4000.0
CAPILLARY_P_OUT_PA = 1333.0
#: default arteriolar inlet and outlet pressures, Pa (90 and 30 mmHg)
ARTERIAL_P_IN_PA = 12000.0
ARTERIAL_P_OUT_PA = 4000.0


def _positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NetworkError(f"{name} = {value!r} is not a number: give a finite number > 0") from None
    if not (math.isfinite(v) and v > 0):
        raise NetworkError(f"{name} = {value!r}: must be a finite number > 0")
    return v


def _finite(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NetworkError(f"{name} = {value!r} is not a number: give a finite number") from None
    if not math.isfinite(v):
        raise NetworkError(f"{name} = {value!r}: must be finite")
    return v


def _vec3(value, name: str, unit: bool = False) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64).reshape(3)
    except (TypeError, ValueError):
        raise NetworkError(f"{name} = {value!r}: give three numbers (x, y, z)") from None
    if not np.isfinite(v).all():
        raise NetworkError(f"{name} = {value!r}: give three finite numbers (x, y, z)")
    if unit:
        norm = np.linalg.norm(v)
        if norm == 0:
            raise NetworkError(f"{name} = {value!r} is the zero vector: give a non-zero direction")
        v = v / norm
    return v


def _wall_code(wall) -> int:
    return int(WallType.parse(wall))


def _haematocrit(h) -> float:
    h = _finite(h, "haematocrit")
    if not 0 <= h < 1:
        raise NetworkError(f"haematocrit = {h!r}: must be in [0, 1)")
    return h


def _perpendicular(d: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to the unit vector ``d``: ``z × d`` (so a vessel along x
    branches in the x-y plane), or ``y × d`` when ``d`` is along z."""
    u = np.cross(np.array([0.0, 0.0, 1.0]), d)
    if np.linalg.norm(u) < 1e-12:
        u = np.cross(np.array([0.0, 1.0, 0.0]), d)
    return u / np.linalg.norm(u)


def straight_vessel(
    length_m: float,
    radius_m: float,
    *,
    start_m=(0.0, 0.0, 0.0),
    direction=(1.0, 0.0, 0.0),
    p_in_pa: float = CAPILLARY_P_IN_PA,
    p_out_pa: float = CAPILLARY_P_OUT_PA,
    wall="capillary",
    n_segments: int = 1,
    pore_radius_m: float = 0.0,
    permeability_m_per_s: float = 0.0,
    haematocrit: float = 0.45,
) -> VesselNetwork:
    """A straight cylindrical vessel with a pressure at each end.

    Parameters
    ----------
    length_m, radius_m : float
        Vessel length and lumen radius, m.
    start_m : (3,) array_like
        Position of the inlet node, m.
    direction : (3,) array_like
        Direction from inlet to outlet (normalised here).
    p_in_pa, p_out_pa : float
        Inlet (node 0) and outlet (last node) pressures, Pa.
    wall : str or int
        :class:`WallType` name or code of every segment.
    n_segments : int
        Number of equal collinear pieces; nodes 0..n_segments run from inlet to outlet.
    pore_radius_m, permeability_m_per_s : float
        Wall pore radius (m) and free-drug wall permeability (m/s) of every segment.
    haematocrit : float
        Discharge haematocrit given at both boundary nodes (only the inflow one matters).

    Returns
    -------
    VesselNetwork
    """
    length_m = _positive(length_m, "length_m")
    radius_m = _positive(radius_m, "radius_m")
    if not isinstance(n_segments, (int, np.integer)) or isinstance(n_segments, bool) or n_segments < 1:
        raise NetworkError(f"n_segments = {n_segments!r}: give a whole number >= 1")
    start = _vec3(start_m, "start_m")
    d = _vec3(direction, "direction", unit=True)
    p_in, p_out = _finite(p_in_pa, "p_in_pa"), _finite(p_out_pa, "p_out_pa")
    h = _haematocrit(haematocrit)
    n = int(n_segments)
    t = np.linspace(0.0, length_m, n + 1)
    pos = start[None, :] + t[:, None] * d[None, :]
    seg = np.stack([np.arange(n), np.arange(1, n + 1)], axis=1)
    return VesselNetwork(
        node_pos_m=pos,
        seg_nodes=seg,
        seg_radius_m=np.full(n, radius_m),
        seg_length_m=np.diff(t),
        seg_wall=np.full(n, _wall_code(wall)),
        seg_pore_radius_m=np.full(n, _finite(pore_radius_m, "pore_radius_m")),
        seg_permeability_m_per_s=np.full(n, _finite(permeability_m_per_s, "permeability_m_per_s")),
        bc_nodes=np.array([0, n]),
        bc_kind=np.array([BCKind.PRESSURE, BCKind.PRESSURE]),
        bc_value=np.array([p_in, p_out]),
        bc_haematocrit=np.array([h, h]),
        meta={"generator": "straight_vessel",
              "params": {"length_m": length_m, "radius_m": radius_m, "start_m": start.tolist(),
                         "direction": d.tolist(), "p_in_pa": p_in, "p_out_pa": p_out,
                         "wall": WallType(_wall_code(wall)).name.lower(), "n_segments": n}},
    )


def murray_child_radius(parent_radius_m: float, fraction: float = 0.5, exponent: float = 3.0) -> tuple[float, float]:
    """Radii of the two children of a vessel under Murray's law ``r_p^x = r_1^x + r_2^x``.

    Parameters
    ----------
    parent_radius_m : float
        Parent radius, m.
    fraction : float
        Share of ``r_p^x`` taken by the first child, in (0, 1). With the classical exponent 3,
        Murray's law makes flow proportional to r³, so this is the share of the parent's flow
        entering the first child.
    exponent : float
        Murray exponent x (3 for Murray's optimum; 2 to 3 is observed).

    Returns
    -------
    (r1_m, r2_m) : tuple of float
        ``r1 = r_p fraction^(1/x)``, ``r2 = r_p (1 - fraction)^(1/x)``, m.
    """
    rp = _positive(parent_radius_m, "parent_radius_m")
    x = _positive(exponent, "exponent")
    f = _finite(fraction, "fraction")
    if not 0 < f < 1:
        raise NetworkError(f"fraction = {fraction!r}: must be strictly between 0 and 1")
    return rp * f ** (1.0 / x), rp * (1.0 - f) ** (1.0 / x)


def _two_outlets(p_out_pa) -> tuple[float, float]:
    arr = np.atleast_1d(np.asarray(p_out_pa, dtype=np.float64)) if not isinstance(p_out_pa, str) else None
    if arr is None or arr.ndim != 1 or len(arr) not in (1, 2):
        raise NetworkError(f"p_out_pa = {p_out_pa!r}: give one pressure (Pa) for both outlets or one per outlet")
    if not np.isfinite(arr).all():
        raise NetworkError(f"p_out_pa = {p_out_pa!r}: pressures must be finite")
    return (float(arr[0]), float(arr[-1]))


def bifurcation(
    parent_radius_m: float,
    child_radii_m=None,
    lengths_m=(1e-3, 1e-3, 1e-3),
    angle_deg: float = 60.0,
    *,
    p_in_pa: float = ARTERIAL_P_IN_PA,
    p_out_pa=ARTERIAL_P_OUT_PA,
    start_m=(0.0, 0.0, 0.0),
    direction=(1.0, 0.0, 0.0),
    wall="artery",
    haematocrit: float = 0.45,
) -> VesselNetwork:
    """A parent vessel splitting into two children (a Y), symmetric or not.

    Node 0 is the inlet, node 1 the branching point, nodes 2 and 3 the ends of children 1 and
    2; segment 0 is the parent and segments 1 and 2 the children. The children lie in the plane
    of ``direction`` and a perpendicular (the x-y plane for the default +x direction), at
    ``+angle_deg / 2`` and ``-angle_deg / 2`` from the parent axis.

    Parameters
    ----------
    parent_radius_m : float
        Parent radius, m.
    child_radii_m : (r1, r2) or None
        Child radii, m; None gives the symmetric Murray children
        (:func:`murray_child_radius` with fraction 0.5).
    lengths_m : (Lp, L1, L2)
        Parent and child lengths, m. The bifurcation is symmetric when r1 == r2 and L1 == L2.
    angle_deg : float
        Angle between the two children, degrees, in (0, 180).
    p_in_pa : float
        Inlet pressure, Pa.
    p_out_pa : float or (p1, p2)
        Outlet pressure(s), Pa: one value for both outlets or one per outlet.
    start_m, direction : (3,) array_like
        Inlet position (m) and parent direction.
    wall : str or int
        :class:`WallType` of the three segments.
    haematocrit : float
        Discharge haematocrit at the boundary nodes.

    Returns
    -------
    VesselNetwork
    """
    rp = _positive(parent_radius_m, "parent_radius_m")
    if child_radii_m is None:
        r1, r2 = murray_child_radius(rp)
    else:
        try:
            r1, r2 = child_radii_m
        except (TypeError, ValueError):
            raise NetworkError(f"child_radii_m = {child_radii_m!r}: give two radii (r1, r2) in m") from None
        r1, r2 = _positive(r1, "child_radii_m[0]"), _positive(r2, "child_radii_m[1]")
    try:
        lp, l1, l2 = lengths_m
    except (TypeError, ValueError):
        raise NetworkError(f"lengths_m = {lengths_m!r}: give three lengths (parent, child 1, child 2) in m") from None
    lp, l1, l2 = (_positive(v, f"lengths_m[{i}]") for i, v in enumerate((lp, l1, l2)))
    angle = _finite(angle_deg, "angle_deg")
    if not 0 < angle < 180:
        raise NetworkError(f"angle_deg = {angle_deg!r}: the angle between the children must be in (0, 180) degrees")
    p_in = _finite(p_in_pa, "p_in_pa")
    p1, p2 = _two_outlets(p_out_pa)
    h = _haematocrit(haematocrit)
    start = _vec3(start_m, "start_m")
    d = _vec3(direction, "direction", unit=True)
    u = _perpendicular(d)
    half = math.radians(angle) / 2.0
    c1 = math.cos(half) * d + math.sin(half) * u
    c2 = math.cos(half) * d - math.sin(half) * u
    junction = start + lp * d
    pos = np.array([start, junction, junction + l1 * c1, junction + l2 * c2])
    code = _wall_code(wall)
    return VesselNetwork(
        node_pos_m=pos,
        seg_nodes=np.array([[0, 1], [1, 2], [1, 3]]),
        seg_radius_m=np.array([rp, r1, r2]),
        seg_length_m=np.array([lp, l1, l2]),
        seg_wall=np.full(3, code),
        bc_nodes=np.array([0, 2, 3]),
        bc_kind=np.full(3, BCKind.PRESSURE),
        bc_value=np.array([p_in, p1, p2]),
        bc_haematocrit=np.full(3, h),
        meta={"generator": "bifurcation",
              "params": {"parent_radius_m": rp, "child_radii_m": [r1, r2], "lengths_m": [lp, l1, l2],
                         "angle_deg": angle, "p_in_pa": p_in, "p_out_pa": [p1, p2],
                         "wall": WallType(code).name.lower()}},
    )


def binary_tree(
    generations: int,
    root_radius_m: float,
    root_length_m: float,
    murray_exponent: float = 3.0,
    length_ratio: float | None = None,
    branching_angle_deg: float = 60.0,
    seed: int | None = None,
    *,
    flow_fraction: float = 0.5,
    fraction_jitter: float = 0.0,
    p_in_pa: float = ARTERIAL_P_IN_PA,
    p_out_pa: float = ARTERIAL_P_OUT_PA,
    start_m=(0.0, 0.0, 0.0),
    direction=(1.0, 0.0, 0.0),
    wall="artery",
    haematocrit: float = 0.45,
) -> VesselNetwork:
    """A binary arterial tree obeying Murray's law at every branching point.

    The root runs from node 0 (the inlet) along ``direction``; each of ``generations`` levels
    of branching splits every terminal vessel into two children, so the tree has
    ``2**(generations + 1) - 1`` segments and ``2**generations`` leaves. Segments are numbered
    breadth first: segment k belongs to generation ``floor(log2(k + 1))`` (the root is
    generation 0) and its children are segments ``2k + 1`` and ``2k + 2``; the far node of
    segment k is node ``k + 1``.

    Parameters
    ----------
    generations : int
        Number of branching levels (0 gives the root alone).
    root_radius_m, root_length_m : float
        Radius and length of the root segment, m.
    murray_exponent : float
        Exponent x of Murray's law ``r_p^x = r_1^x + r_2^x``.
    length_ratio : float or None
        Child length / parent length. None keeps length proportional to radius (each child's
        length ratio equals its radius ratio).
    branching_angle_deg : float
        Angle between the two children of a branching point, degrees, in (0, 180).
    seed : int or None
        None: a deterministic tree whose successive branching planes are turned by 90° about
        the parent axis. An integer: the planes are turned by random angles and, when
        ``fraction_jitter`` > 0, the flow fractions are drawn at random (reproducibly).
    flow_fraction : float
        Share of the parent's ``r^x`` taken by the first child (0.5: symmetric tree).
    fraction_jitter : float
        With a seed, each branching point draws its fraction uniformly from
        ``flow_fraction ± fraction_jitter`` (kept inside (0, 1)).
    p_in_pa, p_out_pa : float
        Pressure at the inlet and at every leaf, Pa.
    start_m, direction : (3,) array_like
        Inlet position (m) and root direction.
    wall : str or int
        :class:`WallType` of every segment.
    haematocrit : float
        Discharge haematocrit at the boundary nodes.

    Returns
    -------
    VesselNetwork
    """
    if not isinstance(generations, (int, np.integer)) or isinstance(generations, bool) or not 0 <= generations <= 20:
        raise NetworkError(f"generations = {generations!r}: give a whole number from 0 to 20")
    g = int(generations)
    r0 = _positive(root_radius_m, "root_radius_m")
    l0 = _positive(root_length_m, "root_length_m")
    x = _positive(murray_exponent, "murray_exponent")
    if length_ratio is not None:
        length_ratio = _positive(length_ratio, "length_ratio")
    angle = _finite(branching_angle_deg, "branching_angle_deg")
    if not 0 < angle < 180:
        raise NetworkError(f"branching_angle_deg = {branching_angle_deg!r}: must be in (0, 180) degrees")
    f0 = _finite(flow_fraction, "flow_fraction")
    if not 0 < f0 < 1:
        raise NetworkError(f"flow_fraction = {flow_fraction!r}: must be strictly between 0 and 1")
    jitter = _finite(fraction_jitter, "fraction_jitter")
    if jitter < 0 or jitter >= min(f0, 1 - f0):
        raise NetworkError(f"fraction_jitter = {fraction_jitter!r}: must be >= 0 and smaller than "
                           f"{min(f0, 1 - f0):g}, so that every fraction stays inside (0, 1)")
    p_in, p_out = _finite(p_in_pa, "p_in_pa"), _finite(p_out_pa, "p_out_pa")
    h = _haematocrit(haematocrit)
    start = _vec3(start_m, "start_m")
    d0 = _vec3(direction, "direction", unit=True)
    rng = np.random.default_rng(seed) if seed is not None else None

    m = 2 ** (g + 1) - 1
    pos = np.empty((m + 1, 3))
    radius = np.empty(m)
    length = np.empty(m)
    dirs = np.empty((m, 3))
    planes = np.empty((m, 3))  # unit vector perpendicular to each segment: its branching plane
    pos[0] = start
    radius[0], length[0], dirs[0] = r0, l0, d0
    planes[0] = _perpendicular(d0)
    pos[1] = start + l0 * d0
    half = math.radians(angle) / 2.0
    n_internal = 2**g - 1
    for k in range(n_internal):
        f = f0 if rng is None or jitter == 0 else rng.uniform(f0 - jitter, f0 + jitter)
        r1, r2 = murray_child_radius(radius[k], f, x)
        d, u = dirs[k], planes[k]
        normal = np.cross(d, u)  # perpendicular to the branching plane
        for j, (r, sign) in enumerate(((r1, 1.0), (r2, -1.0))):
            c = 2 * k + 1 + j
            cdir = math.cos(half) * d + sign * math.sin(half) * u
            cdir /= np.linalg.norm(cdir)
            if rng is None:
                cu = normal  # turn the next branching plane by 90° about the axis
            else:
                phi = rng.uniform(0.0, 2.0 * math.pi)
                cu = math.cos(phi) * normal + math.sin(phi) * np.cross(cdir, normal)
            radius[c] = r
            length[c] = length[k] * (r / radius[k] if length_ratio is None else length_ratio)
            dirs[c] = cdir
            planes[c] = cu / np.linalg.norm(cu)
            pos[c + 1] = pos[k + 1] + length[c] * cdir
    seg = np.empty((m, 2), dtype=np.int64)
    seg[:, 1] = np.arange(1, m + 1)
    seg[0, 0] = 0
    if m > 1:
        parents = (np.arange(1, m) - 1) // 2
        seg[1:, 0] = parents + 1
    leaves = np.arange(n_internal, m) + 1
    bc_nodes = np.concatenate([[0], leaves])
    code = _wall_code(wall)
    return VesselNetwork(
        node_pos_m=pos,
        seg_nodes=seg,
        seg_radius_m=radius,
        seg_length_m=length,
        seg_wall=np.full(m, code),
        bc_nodes=bc_nodes,
        bc_kind=np.full(len(bc_nodes), BCKind.PRESSURE),
        bc_value=np.concatenate([[p_in], np.full(len(leaves), p_out)]),
        bc_haematocrit=np.full(len(bc_nodes), h),
        meta={"generator": "binary_tree",
              "params": {"generations": g, "root_radius_m": r0, "root_length_m": l0, "murray_exponent": x,
                         "length_ratio": length_ratio, "branching_angle_deg": angle, "seed": seed,
                         "flow_fraction": f0, "fraction_jitter": jitter, "p_in_pa": p_in, "p_out_pa": p_out,
                         "wall": WallType(code).name.lower()}},
    )
