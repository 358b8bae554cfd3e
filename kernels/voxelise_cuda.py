"""CUDA drivers of the voxelisation (twins of :mod:`nanosim.kernels.voxelise`).

The voxel kernel runs one thread per voxel, the wall kernel one thread per wall sample point
(the point's segment found by binary search in the point offsets). The geometry is the same
pointwise source as the CPU kernels compiled for the device. Voxel fields are bitwise those of
the CPU kernel up to FMA contraction; the wall area per voxel is summed with float64 atomics, so
it can differ from the CPU result in the last bits (summation order).

Works on CuPy arrays (CUDA array interface) and numba device arrays; under
``NUMBA_ENABLE_CUDASIM=1`` on host arrays in Numba's simulator.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, int64

from . import voxelise as vx

_sdf = vx.prim_sdf.cuda
_contains = vx.prim_contains.cuda
_wall_point = vx.wall_point.cuda
CAND_MAX = vx.CAND_MAX
THREADS = 128


@cuda.jit
def _voxel_kernel(prims, cell_start, cell_items, k, ncx, ncy, nx, ny, nz, ox, oy, oz, h,
                  search_r, nsamp, vf, sdf_out, prim_out):
    i = cuda.grid(1)
    if i >= nx * ny * nz:
        return
    cand = cuda.local.array(CAND_MAX, int64)
    x = i % nx
    y = (i // nx) % ny
    z = i // (nx * ny)
    half_diag = 0.5 * math.sqrt(3.0) * h
    px = ox + (x + 0.5) * h
    py = oy + (y + 0.5) * h
    pz = oz + (z + 0.5) * h
    cell = ((z // k) * ncy + y // k) * ncx + x // k
    e0 = cell_start[cell]
    e1 = cell_start[cell + 1]
    best = math.inf
    bp = -1
    nc = 0
    for e in range(e0, e1):
        p = cell_items[e]
        d = _sdf(px, py, pz, prims[p, 0], prims[p, 1], prims[p, 2], prims[p, 3], prims[p, 4],
                 prims[p, 5], prims[p, 6], prims[p, 7], prims[p, 8])
        if d < best:
            best = d
            bp = p
        if d <= half_diag:
            if nc < CAND_MAX:
                cand[nc] = p
            nc += 1
    sdf_out[i] = best
    prim_out[i] = bp if best <= search_r else -1
    if best > half_diag:
        vf[i] = 0.0
    elif best < -half_diag:
        vf[i] = 1.0
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
                        if _contains(qx, qy, qz, prims[p, 0], prims[p, 1], prims[p, 2], prims[p, 3],
                                     prims[p, 4], prims[p, 5], prims[p, 6], prims[p, 7], prims[p, 8],
                                     0.0):
                            inside += 1
                            break
        vf[i] = inside * (1.0 / (nsamp * nsamp * nsamp))


def voxel_fields(prims, cell_start, cell_items, k, ncell_zyx, shape_zyx, origin_m, h_m,
                 search_radius_m, samples_per_axis, vf, sdf, prim):
    """Fill ``vf``, ``sdf`` (float64) and ``prim`` (int64), each flat (nz·ny·nx,) on the device.

    Same meaning as :func:`nanosim.kernels.voxelise.numba_voxel_fields`; ``prims``, ``cell_start``
    and ``cell_items`` are device arrays (host arrays under the simulator).
    """
    nz, ny, nx = shape_zyx
    n = nx * ny * nz
    blocks = (n + THREADS - 1) // THREADS
    ox, oy, oz = (float(v) for v in origin_m)
    _voxel_kernel[blocks, THREADS](prims, cell_start, cell_items, int(k), int(ncell_zyx[2]),
                                   int(ncell_zyx[1]), nx, ny, nz, ox, oy, oz, float(h_m),
                                   float(search_radius_m), int(samples_per_axis), vf, sdf, prim)


@cuda.jit
def _surface_kernel(prims, n_seg, nr, nphi, offsets, weight, t0, dt, cell_start, cell_items, k, ncx, ncy,
                    nx, ny, nz, ox, oy, oz, h, shrink, out):
    q = cuda.grid(1)
    if q >= offsets[n_seg]:
        return
    # segment s with offsets[s] <= q < offsets[s + 1]
    lo = 0
    hi = n_seg
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offsets[mid] <= q:
            lo = mid
        else:
            hi = mid
    s = lo
    loc = q - offsets[s]
    nps = nphi[s]
    kk = loc // nps
    jj = loc - kk * nps
    px, py, pz = _wall_point(prims[s, 0], prims[s, 1], prims[s, 2], prims[s, 3], prims[s, 4],
                             prims[s, 5], t0[s], dt[s], prims[s, 7], kk, jj, nps)
    ix = int(math.floor((px - ox) / h))
    iy = int(math.floor((py - oy) / h))
    iz = int(math.floor((pz - oz) / h))
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx or iy >= ny or iz >= nz:
        return
    cell = ((iz // k) * ncy + iy // k) * ncx + ix // k
    for e in range(cell_start[cell], cell_start[cell + 1]):
        p = cell_items[e]
        if p != s and _contains(px, py, pz, prims[p, 0], prims[p, 1], prims[p, 2], prims[p, 3],
                                prims[p, 4], prims[p, 5], prims[p, 6], prims[p, 7], prims[p, 8],
                                shrink):
            return
    cuda.atomic.add(out, (iz * ny + iy) * nx + ix, weight[s])


def surface_area(prims, n_segments, nr, nphi, offsets, weight, t0, dt, cell_start, cell_items, k,
                 ncell_zyx, shape_zyx, origin_m, h_m, n_points, out):
    """Add the visible wall area (m²) of every segment into ``out`` (flat float64, zeroed by the caller).

    ``n_points`` is ``offsets[n_segments]`` as a host integer (the launch size).
    """
    nz, ny, nx = shape_zyx
    if n_segments == 0 or n_points == 0:
        return
    blocks = (int(n_points) + THREADS - 1) // THREADS
    ox, oy, oz = (float(v) for v in origin_m)
    _surface_kernel[blocks, THREADS](prims, int(n_segments), nr, nphi, offsets, weight, t0, dt, cell_start,
                                     cell_items, int(k), int(ncell_zyx[2]), int(ncell_zyx[1]), nx, ny,
                                     nz, ox, oy, oz, float(h_m), vx.HIDDEN_SHRINK, out)


@cuda.jit
def _far_kernel(prims, prim, ind, nx, ny, nz, ox, oy, oz, h, dist):
    i = cuda.grid(1)
    if i >= nx * ny * nz:
        return
    x = i % nx
    y = (i // nx) % ny
    z = i // (nx * ny)
    if prim[z, y, x] >= 0:
        return
    px = ox + (x + 0.5) * h
    py = oy + (y + 0.5) * h
    pz = oz + (z + 0.5) * h
    best = math.inf
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
                d = _sdf(px, py, pz, prims[p, 0], prims[p, 1], prims[p, 2], prims[p, 3], prims[p, 4],
                         prims[p, 5], prims[p, 6], prims[p, 7], prims[p, 8])
                if d < best:
                    best = d
    dist[z, y, x] = best


def far_field(prims, prim, ind, origin_m, h_m, dist):
    """Device twin of :func:`nanosim.kernels.voxelise.numba_far_field` (3-D ``prim``, ``dist``; ``ind`` (3, nz, ny, nx))."""
    nz, ny, nx = prim.shape
    n = nx * ny * nz
    ox, oy, oz = (float(v) for v in origin_m)
    _far_kernel[(n + THREADS - 1) // THREADS, THREADS](prims, prim, ind, nx, ny, nz, ox, oy, oz,
                                                        float(h_m), dist)
