r"""Voxelisation of a vessel network: pointwise geometry, CPU drivers and the NumPy reference.

Geometry
--------
The lumen is the union of *primitives*:

- one flat-ended cylinder per segment (the points within ``r`` of the axis whose projection
  falls on the segment; no hemispherical caps, so a lone straight vessel has exactly the volume
  ``πr²L`` and lateral area ``2πrL``);
- one sphere per interior node (a node shared by two or more segments) of the largest radius
  of the segments meeting there. It fills the wedge-shaped gaps between consecutive segments at
  bends and branch points, so junctions are seamless; for a straight vessel cut into collinear
  pieces of one radius it lies wholly inside the cylinders and changes nothing.

A primitive is stored as one row of a float64 table ``prims`` (P, PRIM_COLS):
``[ax, ay, az, ux, uy, uz, L, r, kind, seg]`` — start point (m), unit axis, length (m), radius
(m), kind (0 cylinder, 1 sphere; a sphere has its centre at ``a`` and ``L = 0``) and the index of
the segment that owns it (a sphere belongs to the widest segment at its node). Cylinders come
first, so primitive ``s`` is segment ``s``'s cylinder.

Signed distance
---------------
:func:`prim_sdf` is the exact signed distance to one primitive (negative inside). The distance
to the union is the minimum over the primitives: exact outside the lumen; inside it is minus the
depth within the deepest single primitive (exact for a lone vessel, a lower bound on the depth
where primitives overlap).

Spatial binning
---------------
The voxel grid is cut into cubic *cells* of ``k × k × k`` voxels. Each cell lists, in CSR form
(``cell_start``, ``cell_items``; items ascending), every primitive whose signed distance from the
cell centre is at most ``reach = search_radius + (√3/2)·k·h``. Because a signed distance is
1-Lipschitz, the list holds every primitive that comes within ``search_radius`` of any point of
the cell. A voxel then tests only its cell's list.

Wall sampling
-------------
The lateral wall of each cylinder (the part of it within reach of the grid box, [t0, t1] along
the axis) is covered by ``nr × nphi`` area-weighted points: rings at ``t = t0 + (k + ½)(t1 − t0)/nr``, angles ``φ = 2π(j + frac(kϕ))/nphi`` (ϕ the golden ratio: each ring is turned
against the previous one so the points do not line up along the axis). Each point carries
``2πr(t1 − t0)·scale/(nr·nphi)`` of area. A point that lies strictly inside another primitive is hidden
wall (a junction or an overlap) and dropped.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from ._compile import NJIT_OPTIONS, pointwise

#: Columns of the primitive table (see the module docstring).
PRIM_COLS = 10
#: Candidate primitives remembered per voxel for the sub-voxel sampling (more: the cell list is scanned).
CAND_MAX = 32
#: Relative shrink of the lumen when deciding whether a wall point is hidden inside another
#: primitive (so that walls touching exactly, e.g. two collinear pieces, are never dropped).
HIDDEN_SHRINK = 1e-9
_GOLDEN = 0.6180339887498949


# ----------------------------------------------------------------------------------------------
# Pointwise geometry
# ----------------------------------------------------------------------------------------------
@pointwise
def prim_sdf(px, py, pz, ax, ay, az, ux, uy, uz, length, r, kind):
    """Signed distance (m) from point ``p`` to a primitive: negative inside, exact everywhere.

    Cylinder (``kind == 0``): flat-ended, from ``a`` along unit ``u`` for ``length``, radius ``r``.
    Sphere (``kind != 0``): centre ``a``, radius ``r``.
    """
    dx = px - ax
    dy = py - ay
    dz = pz - az
    if kind != 0.0:
        return math.sqrt(dx * dx + dy * dy + dz * dz) - r
    t = dx * ux + dy * uy + dz * uz
    qx = dx - t * ux
    qy = dy - t * uy
    qz = dz - t * uz
    a = math.sqrt(qx * qx + qy * qy + qz * qz) - r
    b = math.fabs(t - 0.5 * length) - 0.5 * length
    oa = a if a > 0.0 else 0.0
    ob = b if b > 0.0 else 0.0
    inside = a if a > b else b
    if inside > 0.0:
        inside = 0.0
    return math.sqrt(oa * oa + ob * ob) + inside


@pointwise
def prim_contains(px, py, pz, ax, ay, az, ux, uy, uz, length, r, kind, shrink):
    """True if ``p`` is strictly inside the primitive shrunk by the relative amount ``shrink``.

    ``shrink = 0`` is the plain (open) lumen used for the volume fraction; a small positive
    ``shrink`` keeps points lying on a shared wall from counting as hidden.
    """
    dx = px - ax
    dy = py - ay
    dz = pz - az
    lim = r * r * (1.0 - shrink)
    if kind != 0.0:
        return dx * dx + dy * dy + dz * dz < lim
    t = dx * ux + dy * uy + dz * uz
    if t <= length * shrink or t >= length * (1.0 - shrink):
        return False
    qx = dx - t * ux
    qy = dy - t * uy
    qz = dz - t * uz
    return qx * qx + qy * qy + qz * qz < lim


@pointwise
def perp_frame(ux, uy, uz):
    """Two unit vectors ``e1, e2`` completing the unit axis ``u`` to a right-handed frame."""
    fx = math.fabs(ux)
    fy = math.fabs(uy)
    fz = math.fabs(uz)
    # cross u with the coordinate axis it is least aligned with
    if fx <= fy and fx <= fz:
        cx, cy, cz = 0.0, uz, -uy  # u × (1, 0, 0)
    elif fy <= fz:
        cx, cy, cz = -uz, 0.0, ux  # u × (0, 1, 0)
    else:
        cx, cy, cz = uy, -ux, 0.0  # u × (0, 0, 1)
    n = math.sqrt(cx * cx + cy * cy + cz * cz)
    e1x = cx / n
    e1y = cy / n
    e1z = cz / n
    e2x = uy * e1z - uz * e1y
    e2y = uz * e1x - ux * e1z
    e2z = ux * e1y - uy * e1x
    return e1x, e1y, e1z, e2x, e2y, e2z


@pointwise
def wall_point(ax, ay, az, ux, uy, uz, t0, dt, r, k, j, nphi):
    """Position (m) of wall sample ``(ring k, point j)`` of a cylinder (see the module docstring).

    Ring ``k`` sits at ``t = t0 + (k + ½)·dt`` along the axis.
    """
    e1x, e1y, e1z, e2x, e2y, e2z = perp_frame(ux, uy, uz)
    t = t0 + (k + 0.5) * dt
    off = k * 0.6180339887498949
    off = off - math.floor(off)
    phi = 2.0 * math.pi * (j + off) / nphi
    c = r * math.cos(phi)
    s = r * math.sin(phi)
    return (ax + t * ux + c * e1x + s * e2x,
            ay + t * uy + c * e1y + s * e2y,
            az + t * uz + c * e1z + s * e2z)


# ----------------------------------------------------------------------------------------------
# Host preparation (shared by every backend)
# ----------------------------------------------------------------------------------------------
def build_primitives(node_pos_m, seg_nodes, seg_radius_m):
    """Primitive table (P, PRIM_COLS) float64 of a network: cylinders, then interior-node spheres.

    Raises
    ------
    ValueError
        If a segment's end nodes coincide (a zero-length cylinder has no axis).
    """
    pos = np.asarray(node_pos_m, np.float64).reshape(-1, 3)
    sn = np.asarray(seg_nodes, np.int64).reshape(-1, 2)
    rad = np.asarray(seg_radius_m, np.float64).reshape(-1)
    m = len(sn)
    a = pos[sn[:, 0]]
    d = pos[sn[:, 1]] - a
    length = np.linalg.norm(d, axis=1)
    bad = np.flatnonzero(~(length > 0))
    if bad.size:
        raise ValueError(f"segment {bad[0]} joins nodes {sn[bad[0]].tolist()} at the same position "
                         f"{pos[sn[bad[0], 0]].tolist()} m: it has no axis to voxelise; move a node or "
                         "remove the segment")
    cyl = np.zeros((m, PRIM_COLS))
    cyl[:, 0:3] = a
    cyl[:, 3:6] = d / length[:, None]
    cyl[:, 6] = length
    cyl[:, 7] = rad
    cyl[:, 9] = np.arange(m)
    # interior nodes: sphere of the widest incident segment's radius
    n = len(pos)
    deg = np.bincount(sn.reshape(-1), minlength=n)
    ends = sn.reshape(-1)
    seg_of_end = np.repeat(np.arange(m), 2)
    order = np.lexsort((-rad[seg_of_end], ends))  # per node, widest segment first
    first = np.ones(order.size, bool)
    first[1:] = ends[order][1:] != ends[order][:-1]
    widest_node = ends[order][first]
    widest_seg = seg_of_end[order][first]
    keep = deg[widest_node] >= 2
    widest_node, widest_seg = widest_node[keep], widest_seg[keep]
    sph = np.zeros((widest_node.size, PRIM_COLS))
    sph[:, 0:3] = pos[widest_node]
    sph[:, 3] = 1.0
    sph[:, 7] = rad[widest_seg]
    sph[:, 8] = 1.0
    sph[:, 9] = widest_seg
    return np.ascontiguousarray(np.vstack([cyl, sph]))


def choose_cell_voxels(shape_zyx, h_m, search_radius_m, max_cells_per_axis=96):
    """Cell edge in voxels ``k``: about the search radius, at least 2, at most ``max_cells_per_axis`` cells per axis."""
    k = max(2, int(round(search_radius_m / h_m)))
    k = max(k, -(-max(shape_zyx) // max_cells_per_axis))
    return int(k)


@numba.njit(**NJIT_OPTIONS)
def _cell_pass(prims, k, ncx, ncy, ncz, ox, oy, oz, h, reach, counts, cursor, items, fill):
    c = k * h
    for p in range(prims.shape[0]):
        ax, ay, az = prims[p, 0], prims[p, 1], prims[p, 2]
        ux, uy, uz = prims[p, 3], prims[p, 4], prims[p, 5]
        length, r, kind = prims[p, 6], prims[p, 7], prims[p, 8]
        bx, by, bz = ax + length * ux, ay + length * uy, az + length * uz
        lo_x, hi_x = min(ax, bx) - r - reach, max(ax, bx) + r + reach
        lo_y, hi_y = min(ay, by) - r - reach, max(ay, by) + r + reach
        lo_z, hi_z = min(az, bz) - r - reach, max(az, bz) + r + reach
        i0 = max(0, int(math.floor((lo_x - ox) / c)))
        i1 = min(ncx - 1, int(math.floor((hi_x - ox) / c)))
        j0 = max(0, int(math.floor((lo_y - oy) / c)))
        j1 = min(ncy - 1, int(math.floor((hi_y - oy) / c)))
        k0 = max(0, int(math.floor((lo_z - oz) / c)))
        k1 = min(ncz - 1, int(math.floor((hi_z - oz) / c)))
        for cz in range(k0, k1 + 1):
            pz = oz + (cz + 0.5) * c
            for cy in range(j0, j1 + 1):
                py = oy + (cy + 0.5) * c
                for cx in range(i0, i1 + 1):
                    px = ox + (cx + 0.5) * c
                    if _sdf(px, py, pz, ax, ay, az, ux, uy, uz, length, r, kind) <= reach:
                        cell = (cz * ncy + cy) * ncx + cx
                        if fill:
                            items[cursor[cell]] = p
                            cursor[cell] += 1
                        else:
                            counts[cell] += 1


_sdf = prim_sdf.cpu
_contains = prim_contains.cpu
_wall_point = wall_point.cpu


def build_cell_lists(prims, shape_zyx, origin_m, h_m, k, search_radius_m):
    """CSR lists of the primitives near each cell of ``k³`` voxels.

    Returns
    -------
    cell_start : int64 (ncells + 1,)
    cell_items : int32 (cell_start[-1],) primitive indices, ascending within a cell
    ncell_zyx : (ncz, ncy, ncx)
    """
    nz, ny, nx = shape_zyx
    ncx, ncy, ncz = -(-nx // k), -(-ny // k), -(-nz // k)
    reach = float(search_radius_m) + 0.5 * math.sqrt(3.0) * k * h_m
    ox, oy, oz = (float(v) for v in origin_m)
    counts = np.zeros(ncx * ncy * ncz, np.int64)
    dummy = np.zeros(1, np.int64)
    _cell_pass(prims, k, ncx, ncy, ncz, ox, oy, oz, float(h_m), reach, counts, dummy,
               np.zeros(1, np.int32), False)
    start = np.zeros(counts.size + 1, np.int64)
    np.cumsum(counts, out=start[1:])
    items = np.empty(int(start[-1]), np.int32)
    cursor = start[:-1].copy()
    _cell_pass(prims, k, ncx, ncy, ncz, ox, oy, oz, float(h_m), reach, dummy, cursor, items, True)
    return start, items, (ncz, ncy, ncx)


def surface_layout(prims, n_segments, spacing_m, area_scale=None, box_lo_m=None, box_hi_m=None):
    """Wall sampling of each segment (see the module docstring).

    Only the part of each cylinder whose axis lies within the box ``[box_lo_m, box_hi_m]`` (m,
    x/y/z; the grid grown by the radius) is sampled, so vessels reaching far beyond the grid
    cost nothing.

    Returns ``(nr, nphi, offsets, weight_m2, t0, dt)``: rings and points per ring (int64), point
    offsets (int64, m + 1), area of one point (m², times ``area_scale`` when given), start of the
    sampled part along the axis and ring spacing (m, float64).
    """
    length = prims[:n_segments, 6]
    r = prims[:n_segments, 7]
    t0 = np.zeros(n_segments)
    t1 = length.copy()
    if box_lo_m is not None:
        a = prims[:n_segments, 0:3]
        u = prims[:n_segments, 3:6]
        for ax in range(3):
            lo = box_lo_m[ax] - r
            hi = box_hi_m[ax] + r
            with np.errstate(divide="ignore", invalid="ignore"):
                ta = (lo - a[:, ax]) / u[:, ax]
                tb = (hi - a[:, ax]) / u[:, ax]
            par = u[:, ax] == 0
            enter = np.where(par, np.where((a[:, ax] >= lo) & (a[:, ax] <= hi), -np.inf, np.inf),
                             np.minimum(ta, tb))
            leave = np.where(par, np.where((a[:, ax] >= lo) & (a[:, ax] <= hi), np.inf, -np.inf),
                             np.maximum(ta, tb))
            t0 = np.maximum(t0, enter)
            t1 = np.minimum(t1, leave)
        empty = ~(t1 > t0)
        t0 = np.where(empty, 0.0, t0)
        t1 = np.where(empty, 0.0, t1)
    span = t1 - t0
    nr = np.where(span > 0, np.maximum(1, np.ceil(span / spacing_m)), 0).astype(np.int64)
    nphi = np.maximum(6, np.ceil(2.0 * np.pi * r / spacing_m)).astype(np.int64)
    offsets = np.zeros(n_segments + 1, np.int64)
    np.cumsum(nr * nphi, out=offsets[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        dt = np.where(nr > 0, span / np.maximum(nr, 1), 0.0)
        w = np.where(nr > 0, 2.0 * np.pi * r * span / np.maximum(nr * nphi, 1), 0.0)
    if area_scale is not None:
        w = w * np.asarray(area_scale, np.float64)
    return nr, nphi, offsets, w, t0, dt


# ----------------------------------------------------------------------------------------------
# Numba CPU drivers
# ----------------------------------------------------------------------------------------------
@numba.njit(parallel=True, **NJIT_OPTIONS)
def _voxel_kernel(prims, cell_start, cell_items, k, ncx, ncy, nx, ny, nz, ox, oy, oz, h,
                  search_r, nsamp, vf, sdf_out, prim_out):
    half_diag = 0.5 * math.sqrt(3.0) * h
    inv_n3 = 1.0 / (nsamp * nsamp * nsamp)
    for z in prange(nz):
        cand = np.empty(CAND_MAX, np.int64)
        pz = oz + (z + 0.5) * h
        for y in range(ny):
            py = oy + (y + 0.5) * h
            for x in range(nx):
                px = ox + (x + 0.5) * h
                cell = ((z // k) * ncy + y // k) * ncx + x // k
                e0 = cell_start[cell]
                e1 = cell_start[cell + 1]
                best = np.inf
                bp = -1
                nc = 0
                for e in range(e0, e1):
                    p = cell_items[e]
                    d = _sdf(px, py, pz, prims[p, 0], prims[p, 1], prims[p, 2], prims[p, 3],
                             prims[p, 4], prims[p, 5], prims[p, 6], prims[p, 7], prims[p, 8])
                    if d < best:
                        best = d
                        bp = p
                    if d <= half_diag:
                        if nc < CAND_MAX:
                            cand[nc] = p
                        nc += 1
                sdf_out[z, y, x] = best
                prim_out[z, y, x] = bp if best <= search_r else -1
                if best > half_diag:
                    vf[z, y, x] = 0.0
                elif best < -half_diag:
                    vf[z, y, x] = 1.0
                else:
                    inside = 0
                    for sz in range(nsamp):
                        qz = pz + ((sz + 0.5) / nsamp - 0.5) * h
                        for sy in range(nsamp):
                            qy = py + ((sy + 0.5) / nsamp - 0.5) * h
                            for sx in range(nsamp):
                                qx = px + ((sx + 0.5) / nsamp - 0.5) * h
                                n_scan = nc if nc <= CAND_MAX else e1 - e0
                                for c in range(n_scan):
                                    p = cand[c] if nc <= CAND_MAX else cell_items[e0 + c]
                                    if _contains(qx, qy, qz, prims[p, 0], prims[p, 1], prims[p, 2],
                                                 prims[p, 3], prims[p, 4], prims[p, 5], prims[p, 6],
                                                 prims[p, 7], prims[p, 8], 0.0):
                                        inside += 1
                                        break
                    vf[z, y, x] = inside * inv_n3


def numba_voxel_fields(prims, cell_start, cell_items, k, ncell_zyx, shape_zyx, origin_m, h_m,
                       search_radius_m, samples_per_axis, vf_dtype=np.float64):
    """Per-voxel volume fraction, signed distance (m) and nearest primitive with the numba kernel.

    Returns ``(vf, sdf, prim)``: ``vf`` in [0, 1]; ``sdf`` the minimum signed distance over the
    cell's list (exact where ``prim >= 0``, i.e. within ``search_radius_m``; an upper bound
    elsewhere, ``inf`` if the list is empty); ``prim`` the nearest primitive or −1 beyond the
    search radius. Ties go to the lowest primitive index.
    """
    nz, ny, nx = shape_zyx
    vf = np.empty(shape_zyx, vf_dtype)
    sdf = np.empty(shape_zyx, np.float64)
    prim = np.empty(shape_zyx, np.int64)
    ox, oy, oz = (float(v) for v in origin_m)
    _voxel_kernel(prims, cell_start, cell_items, int(k), int(ncell_zyx[2]), int(ncell_zyx[1]),
                  nx, ny, nz, ox, oy, oz, float(h_m), float(search_radius_m), int(samples_per_axis),
                  vf, sdf, prim)
    return vf, sdf, prim


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _surface_points(prims, s0, s1, nr, nphi, offsets, weight, t0, dt, cell_start, cell_items, k, ncx, ncy,
                    nx, ny, nz, ox, oy, oz, h, shrink, idx_out, w_out):
    base = offsets[s0]
    for s in prange(s0, s1):
        ax, ay, az = prims[s, 0], prims[s, 1], prims[s, 2]
        ux, uy, uz = prims[s, 3], prims[s, 4], prims[s, 5]
        r = prims[s, 7]
        ts = t0[s]
        dts = dt[s]
        nrs = nr[s]
        nps = nphi[s]
        w = weight[s]
        o = offsets[s] - base
        for kk in range(nrs):
            for jj in range(nps):
                q = o + kk * nps + jj
                px, py, pz = _wall_point(ax, ay, az, ux, uy, uz, ts, dts, r, kk, jj, nps)
                ix = int(math.floor((px - ox) / h))
                iy = int(math.floor((py - oy) / h))
                iz = int(math.floor((pz - oz) / h))
                if ix < 0 or iy < 0 or iz < 0 or ix >= nx or iy >= ny or iz >= nz:
                    idx_out[q] = -1
                    w_out[q] = 0.0
                    continue
                cell = ((iz // k) * ncy + iy // k) * ncx + ix // k
                hidden = False
                for e in range(cell_start[cell], cell_start[cell + 1]):
                    p = cell_items[e]
                    if p != s and _contains(px, py, pz, prims[p, 0], prims[p, 1], prims[p, 2],
                                            prims[p, 3], prims[p, 4], prims[p, 5], prims[p, 6],
                                            prims[p, 7], prims[p, 8], shrink):
                        hidden = True
                        break
                if hidden:
                    idx_out[q] = -1
                    w_out[q] = 0.0
                else:
                    idx_out[q] = (iz * ny + iy) * nx + ix
                    w_out[q] = w


@numba.njit(**NJIT_OPTIONS)
def _scatter_add(out, idx, w):
    for q in range(idx.shape[0]):
        i = idx[q]
        if i >= 0:
            out[i] += w[q]


def numba_surface_area(prims, n_segments, nr, nphi, offsets, weight, t0, dt, cell_start, cell_items, k,
                       ncell_zyx, shape_zyx, origin_m, h_m, max_points_per_chunk=4_000_000):
    """Visible wall area (m²) in each voxel, float64 (nz, ny, nx), with the numba kernels.

    Segments are processed in chunks of at most ``max_points_per_chunk`` wall points (plus one
    segment) to bound the scratch memory; the scatter into voxels is serial, in point order, so
    the result is deterministic.
    """
    nz, ny, nx = shape_zyx
    out = np.zeros(nz * ny * nx, np.float64)
    ox, oy, oz = (float(v) for v in origin_m)
    s0 = 0
    while s0 < n_segments:
        s1 = int(np.searchsorted(offsets, offsets[s0] + max_points_per_chunk, side="right"))
        s1 = min(max(s1 - 1, s0 + 1), n_segments)
        npts = int(offsets[s1] - offsets[s0])
        idx = np.empty(npts, np.int64)
        w = np.empty(npts, np.float64)
        _surface_points(prims, s0, s1, nr, nphi, offsets, weight, t0, dt, cell_start, cell_items, int(k),
                        int(ncell_zyx[2]), int(ncell_zyx[1]), nx, ny, nz, ox, oy, oz, float(h_m),
                        HIDDEN_SHRINK, idx, w)
        _scatter_add(out, idx, w)
        s0 = s1
    return out.reshape(shape_zyx)


# ----------------------------------------------------------------------------------------------
# NumPy reference (loops over primitives, vectorised over voxels)
# ----------------------------------------------------------------------------------------------
def _np_sdf(p, P):
    """Vectorised :func:`prim_sdf` for points ``p`` (..., 3) and one primitive row ``P``."""
    d = p - P[0:3]
    if P[8] != 0.0:
        return np.sqrt(np.sum(d * d, axis=-1)) - P[7]
    u = P[3:6]
    t = d[..., 0] * u[0] + d[..., 1] * u[1] + d[..., 2] * u[2]
    q = d - t[..., None] * u
    a = np.sqrt(q[..., 0] * q[..., 0] + q[..., 1] * q[..., 1] + q[..., 2] * q[..., 2]) - P[7]
    b = np.abs(t - 0.5 * P[6]) - 0.5 * P[6]
    oa = np.maximum(a, 0.0)
    ob = np.maximum(b, 0.0)
    return np.sqrt(oa * oa + ob * ob) + np.minimum(np.maximum(a, b), 0.0)


def _np_contains(p, P, shrink):
    """Vectorised :func:`prim_contains`."""
    d = p - P[0:3]
    lim = P[7] * P[7] * (1.0 - shrink)
    if P[8] != 0.0:
        return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2] < lim
    u = P[3:6]
    t = d[..., 0] * u[0] + d[..., 1] * u[1] + d[..., 2] * u[2]
    q = d - t[..., None] * u
    ok = (t > P[6] * shrink) & (t < P[6] * (1.0 - shrink))
    return ok & (q[..., 0] * q[..., 0] + q[..., 1] * q[..., 1] + q[..., 2] * q[..., 2] < lim)


def _prim_box(P, shape_zyx, origin_m, h_m, grow):
    """Slices (z, y, x) of the voxels whose centres lie in the primitive's bounding box grown by ``grow``."""
    a = P[0:3]
    b = a + P[6] * P[3:6]
    lo = np.minimum(a, b) - P[7] - grow
    hi = np.maximum(a, b) + P[7] + grow
    o = np.asarray(origin_m, float)
    n = np.array(shape_zyx[::-1])
    i0 = np.clip(np.ceil((lo - o) / h_m - 0.5).astype(int), 0, n)
    i1 = np.clip(np.floor((hi - o) / h_m - 0.5).astype(int) + 1, 0, n)
    return tuple(slice(i0[a_], i1[a_]) for a_ in (2, 1, 0)), i0


def numpy_voxel_fields(prims, shape_zyx, origin_m, h_m, search_radius_m, samples_per_axis,
                       vf_dtype=np.float64):
    """NumPy reference of :func:`numba_voxel_fields` (same outputs within the search radius)."""
    nz, ny, nx = shape_zyx
    o = np.asarray(origin_m, float)
    sdf = np.full(shape_zyx, np.inf)
    prim = np.full(shape_zyx, -1, np.int64)
    for p in range(prims.shape[0]):
        P = prims[p]
        box, i0 = _prim_box(P, shape_zyx, o, h_m, search_radius_m)
        if any(s.stop <= s.start for s in box):
            continue
        z = o[2] + (np.arange(box[0].start, box[0].stop) + 0.5) * h_m
        y = o[1] + (np.arange(box[1].start, box[1].stop) + 0.5) * h_m
        x = o[0] + (np.arange(box[2].start, box[2].stop) + 0.5) * h_m
        pts = np.stack(np.broadcast_arrays(x[None, None, :], y[None, :, None], z[:, None, None]), -1)
        d = _np_sdf(pts, P)
        sub, psub = sdf[box], prim[box]
        better = d < sub
        sub[better] = d[better]
        psub[better] = p
    prim[sdf > search_radius_m] = -1
    half_diag = 0.5 * math.sqrt(3.0) * h_m
    vf = np.where(sdf < -half_diag, 1.0, 0.0)
    border = (sdf <= half_diag) & (sdf >= -half_diag)
    if border.any():
        bidx = np.full(shape_zyx, -1, np.int64)
        bz, by, bx = np.nonzero(border)
        bidx[bz, by, bx] = np.arange(bz.size)
        n = int(samples_per_axis)
        off = ((np.arange(n) + 0.5) / n - 0.5) * h_m
        sx, sy, sz = np.meshgrid(off, off, off, indexing="xy")  # any fixed order: only counts matter
        soff = np.stack([sx.ravel(), sy.ravel(), sz.ravel()], -1)
        inside = np.zeros((bz.size, n**3), bool)
        for p in range(prims.shape[0]):
            box, _ = _prim_box(prims[p], shape_zyx, o, h_m, half_diag)
            if any(s.stop <= s.start for s in box):
                continue
            ids = bidx[box]
            ids = ids[ids >= 0]
            if ids.size == 0:
                continue
            c = np.stack([o[0] + (bx[ids] + 0.5) * h_m, o[1] + (by[ids] + 0.5) * h_m,
                          o[2] + (bz[ids] + 0.5) * h_m], -1)
            inside[ids] |= _np_contains(c[:, None, :] + soff[None, :, :], prims[p], 0.0)
        vf[bz, by, bx] = inside.sum(axis=1) * (1.0 / n**3)
    return vf.astype(vf_dtype), sdf, prim


def numpy_wall_points(P, nr, nphi, t0, dt):
    """All wall sample positions (nr·nphi, 3) of one cylinder row ``P`` (NumPy form of :func:`wall_point`)."""
    k = np.repeat(np.arange(nr), nphi).astype(np.float64)
    j = np.tile(np.arange(nphi), nr).astype(np.float64)
    e1x, e1y, e1z, e2x, e2y, e2z = perp_frame.py(*P[3:6])
    t = t0 + (k + 0.5) * dt
    off = k * _GOLDEN
    off = off - np.floor(off)
    phi = 2.0 * np.pi * (j + off) / nphi
    c = P[7] * np.cos(phi)
    s = P[7] * np.sin(phi)
    e1 = np.array([e1x, e1y, e1z])
    e2 = np.array([e2x, e2y, e2z])
    return P[0:3] + t[:, None] * P[3:6] + c[:, None] * e1 + s[:, None] * e2


def numpy_surface_area(prims, n_segments, nr, nphi, offsets, weight, t0, dt, shape_zyx, origin_m, h_m):
    """NumPy reference of :func:`numba_surface_area` (area per voxel, m²)."""
    nz, ny, nx = shape_zyx
    o = np.asarray(origin_m, float)
    # bounding boxes of every primitive, for the hidden-point candidates
    a = prims[:, 0:3]
    b = a + prims[:, 6:7] * prims[:, 3:6]
    lo = np.minimum(a, b) - prims[:, 7:8]
    hi = np.maximum(a, b) + prims[:, 7:8]
    flats, ws = [], []
    for s in range(n_segments):
        if nr[s] == 0:
            continue
        pts = numpy_wall_points(prims[s], int(nr[s]), int(nphi[s]), t0[s], dt[s])
        ijk = np.floor((pts - o) / h_m).astype(np.int64)
        ok = np.all((ijk >= 0) & (ijk < np.array([nx, ny, nz])), axis=1)
        plo, phi_ = pts.min(axis=0), pts.max(axis=0)
        near = np.flatnonzero(np.all((lo <= phi_) & (hi >= plo), axis=1))
        for p in near:
            if p != s:
                ok &= ~_np_contains(pts, prims[p], HIDDEN_SHRINK)
        flats.append((ijk[ok, 2] * ny + ijk[ok, 1]) * nx + ijk[ok, 0])
        ws.append(np.full(flats[-1].size, weight[s]))
    if not flats:
        return np.zeros(shape_zyx)
    out = np.bincount(np.concatenate(flats), weights=np.concatenate(ws), minlength=nz * ny * nx)
    return out.reshape(shape_zyx)



# ----------------------------------------------------------------------------------------------
# Far field: exact distance to the primitives nearest the EDT seeds of the voxel and its 26 neighbours
# ----------------------------------------------------------------------------------------------
@numba.njit(parallel=True, **NJIT_OPTIONS)
def _far_kernel(prims, prim, ind, ox, oy, oz, h, dist):
    nz, ny, nx = prim.shape
    for z in prange(nz):
        pz = oz + (z + 0.5) * h
        for y in range(ny):
            py = oy + (y + 0.5) * h
            for x in range(nx):
                if prim[z, y, x] >= 0:
                    continue
                px = ox + (x + 0.5) * h
                best = np.inf
                last = -1
                for dz in range(-1, 2):
                    zz = z + dz
                    if zz < 0 or zz >= nz:
                        continue
                    for dy in range(-1, 2):
                        yy = y + dy
                        if yy < 0 or yy >= ny:
                            continue
                        for dx in range(-1, 2):
                            xx = x + dx
                            if xx < 0 or xx >= nx:
                                continue
                            p = prim[ind[0, zz, yy, xx], ind[1, zz, yy, xx], ind[2, zz, yy, xx]]
                            if p < 0 or p == last:
                                continue
                            last = p
                            d = _sdf(px, py, pz, prims[p, 0], prims[p, 1], prims[p, 2], prims[p, 3],
                                     prims[p, 4], prims[p, 5], prims[p, 6], prims[p, 7], prims[p, 8])
                            if d < best:
                                best = d
                dist[z, y, x] = best


def numba_far_field(prims, prim, ind, origin_m, h_m, dist):
    """Fill ``dist`` where ``prim < 0`` with the far-field distance (see :func:`numpy_far_field`)."""
    ox, oy, oz = (float(v) for v in origin_m)
    _far_kernel(prims, prim, ind, ox, oy, oz, float(h_m), dist)


def numpy_far_field(prims, prim, ind, origin_m, h_m, dist):
    """Far-field distance (m) for the voxels with ``prim < 0``, in place in ``dist``.

    ``ind`` (3, nz, ny, nx) holds, for every voxel, the [z, y, x] index of its nearest *seed* (a
    voxel with ``prim >= 0`` whose centre is within √3h/2 of a lumen), from the Euclidean distance
    transform. The distance of a far voxel is the least exact signed distance to the primitives of
    the seeds nearest to it and to its 26 neighbours: an upper bound of the true distance, equal
    to it whenever the nearest primitive is among these candidates.
    """
    nz, ny, nx = prim.shape
    far = np.nonzero(prim < 0)
    o = np.asarray(origin_m, float)
    pts = np.stack([o[0] + (far[2] + 0.5) * h_m, o[1] + (far[1] + 0.5) * h_m,
                    o[2] + (far[0] + 0.5) * h_m], -1)
    best = np.full(pts.shape[0], np.inf)
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                zz, yy, xx = far[0] + dz, far[1] + dy, far[2] + dx
                ok = (zz >= 0) & (zz < nz) & (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
                sel = np.flatnonzero(ok)
                p = prim[ind[0][zz[sel], yy[sel], xx[sel]], ind[1][zz[sel], yy[sel], xx[sel]],
                         ind[2][zz[sel], yy[sel], xx[sel]]]
                for q in np.unique(p[p >= 0]):
                    hit = sel[p == q]
                    best[hit] = np.minimum(best[hit], _np_sdf(pts[hit], prims[q]))
    dist[far] = best
