r"""Explicit (forward-Euler) transport step on the voxel grid, CPU drivers and NumPy reference.

.. math::

    c^{n+1} = c^n + Δt\Big[-\tfrac{1}{h}\sum_{\text{faces}} F(c^n) + r(c^n, c_b^n)\Big],\qquad
    c_b^{n+1} = c_b^n + Δt\,(k_{on} c^n - k_{off} c_b^n)

with the face fluxes and reactions of :mod:`nanosim.kernels.physics`. Stable for
``Δt ≤ 1 / (Σ_axes 2D/h² + Σ_axes |u|/h + k_total)`` (the model sub-steps inside that limit).

Data layout (shared with :mod:`nanosim.kernels.implicit`)
--------------------------------------------------------
``c, cb, c_out, cb_out`` (nz, ny, nx) float arrays; ``region`` uint8 (nz, ny, nx) indexing float64
tables ``d_table`` (m²/s), ``k_table``, ``kon_table``, ``koff_table`` (1/s); ``ps`` P·S/V (1/s),
``src`` (mol m⁻³ s⁻¹), ``fixed`` (uint8 mask of voxels held at the plasma value ``cp``) and ``u``
(3, nz, ny, nx) face velocities (m/s, component a on the voxel's +a face) — each optional with a
``has_*`` flag and a 1-element dummy when absent; ``bc_kind``/``bc_value`` per physical axis
(x, y, z; kinds 0 no-flux, 1 periodic, 2 fixed). ``ledger`` is a float64 array of
:data:`~nanosim.kernels.transport.LEDGER_SIZE` that the step *adds* its amounts to (slots in
:mod:`nanosim.kernels.transport`), each computed directly from the terms of the update, so that
the change of Σ(c + cb) minus the ledger's sources is a real test that closes to round-off.

Fixed voxels hold ``cp`` (the plasma value at the new time) and carry no reactions; their supply
to the tissue is ``cp − (c + Δt·T)`` where ``T`` is the transport rate they would have had.
"""

from __future__ import annotations

import numpy as np
import numba
from numba import prange

from ._compile import NJIT_OPTIONS
from . import physics, transport
from .transport import LEDGER_SIZE

_axis_rate = transport.axis_rate.cpu
_interior_face_rate = transport.interior_face_rate.cpu_inline
_face_diffusivity = physics.face_diffusivity.cpu
_voxel_update = transport.explicit_voxel_update.cpu_inline
_uniform_update = transport.uniform_update.cpu


def explicit_dt_limit(h_m, d_max_m2_per_s, u_max_m_per_s=(0.0, 0.0, 0.0), k_max_per_s=0.0, ndim=3):
    """Largest stable forward-Euler step (s): ``1 / (2·ndim·D/h² + Σ|u_a|/h + k)``.

    ``k_max_per_s`` is the largest total local rate (loss + exchange + binding on/off).
    """
    rate = 2.0 * ndim * d_max_m2_per_s / h_m**2 + sum(abs(u) for u in u_max_m_per_s) / h_m + k_max_per_s
    return np.inf if rate == 0.0 else 1.0 / rate


# ----------------------------------------------------------------------------------------------
# General step (numba)
# ----------------------------------------------------------------------------------------------
@numba.njit(**NJIT_OPTIONS)
def _general_voxel(cf, cbf, of, obf, reg, d_table, k_table, kon_table, koff_table, psf, has_ps, srcf,
                   has_src, fxf, has_fixed, cp, uf, has_u, bx, by, bz, vx, vy, vz, x, y, z, i, nx, ny, nz,
                   sy, sz, inv_h, dt):
    """One voxel with the wall rule on every axis; writes ``of[i], obf[i]`` and returns its ledger
    terms ``(boundary, vessel, loss, exchange, source, total)``."""
    rx, qx = _axis_rate(cf, reg, d_table, uf, has_u, i, x, nx, 1, 0, bx, vx, inv_h)
    ry, qy = _axis_rate(cf, reg, d_table, uf, has_u, i, y, ny, sy, 1, by, vy, inv_h)
    rz, qz = _axis_rate(cf, reg, d_table, uf, has_u, i, z, nz, sz, 2, bz, vz, inv_h)
    t = rx + ry + rz
    ci = cf[i]
    bi = cbf[i]
    bnd = dt * (qx + qy + qz)
    if has_fixed and fxf[i] != 0:
        of[i] = cp
        obf[i] = bi
        return bnd, cp - (ci + dt * t), 0.0, 0.0, 0.0, np.float64(cp + bi)
    r = reg[i]
    p = np.float64(psf[i]) if has_ps else 0.0  # float64 either way (a float32 product differs)
    s = np.float64(srcf[i]) if has_src else 0.0
    cn, bn, loss, exch, srcd = _voxel_update(ci, bi, t, k_table[r], kon_table[r], koff_table[r], p, cp, s, dt)
    of[i] = cn
    obf[i] = bn
    return bnd, 0.0, loss, exch, srcd, np.float64(cn) + np.float64(bn)


@numba.njit(**NJIT_OPTIONS)
def _face_table(d_table):
    """``f[a, b]``: the face diffusivity (m²/s) between voxels of regions ``a`` and ``b``, computed
    as the kernels compute it (:func:`~nanosim.kernels.physics.face_diffusivity`, same argument
    order), so a lookup gives the same bits as the division it replaces (six per voxel)."""
    n = d_table.shape[0]
    f = np.empty((n, n))
    for a in range(n):
        for b in range(n):
            f[a, b] = _face_diffusivity(d_table[a], d_table[b])
    return f


@numba.njit(inline="always", **NJIT_OPTIONS)
def _interior_term(cf, reg, face_d, uf, has_u, axis, i, s, c0, r0, inv_h):
    """Transport rate into interior voxel ``i`` (unsigned) along ``axis`` (stride ``s``, unsigned),
    its face diffusivities from the region-pair table ``face_d``; velocities in float64, as the
    wall rule reads them."""
    return _interior_face_rate(cf[i - s], c0, cf[i + s], face_d[reg[i - s], r0], face_d[r0, reg[i + s]],
                               np.float64(uf[axis, i - s]) if has_u else 0.0,
                               np.float64(uf[axis, i]) if has_u else 0.0, inv_h)


#: Compiled general kernels, one per combination of the choices they are specialised on.
_GENERAL_KERNELS = {}


def _general_kernel(has_ps, has_src, has_fixed, has_u, has_y, has_z, fast_rows=True):
    """The general ``prange`` kernel specialised on which optional fields exist and which axes have
    more than one voxel (compiled on first use, cached on disk). ``fast_rows=False`` sends every
    voxel through the wall rule (the tests' check that the interior path gives the same bits)."""
    key = (bool(has_ps), bool(has_src), bool(has_fixed), bool(has_u), bool(has_y), bool(has_z),
           bool(fast_rows))
    if key not in _GENERAL_KERNELS:
        _GENERAL_KERNELS[key] = _make_general_kernel(*key)
    return _GENERAL_KERNELS[key]


def _make_general_kernel(HAS_PS, HAS_SRC, HAS_FIXED, HAS_U, HAS_Y, HAS_Z, FAST_ROWS):
    # The closure holds only these constants: they fold the optional terms away at compile time
    # and make up the on-disk cache key.
    @numba.njit(parallel=True, **NJIT_OPTIONS)
    def kernel(c, cb, c_out, cb_out, region, d_table, face_d, k_table, kon_table, koff_table, ps, src,
               fixed, cp, u, bc_kind, bc_value, h, dt, partial):
        nz, ny, nx = c.shape
        cf = c.reshape(-1)
        cbf = cb.reshape(-1)
        of = c_out.reshape(-1)
        obf = cb_out.reshape(-1)
        reg = region.reshape(-1)
        uf = u.reshape(3, -1)
        psf = ps.reshape(-1)
        srcf = src.reshape(-1)
        fxf = fixed.reshape(-1)
        inv_h = 1.0 / h
        bx, by, bz = bc_kind[0], bc_kind[1], bc_kind[2]
        vx, vy, vz = bc_value[0], bc_value[1], bc_value[2]
        sy = nx
        sz = nx * ny
        # one work item per (z, y) row: parallel even for a single z-plane
        for zy in prange(nz * ny):
            z = zy // ny
            y = zy - z * ny
            row = z * sz + y * sy
            # rows away from the y/z walls (or along a flat periodic/no-flux axis) take the
            # direct-neighbour path for interior x; the row's ends and every other row the
            # general wall rule
            z_in = (0 < z < nz - 1) or (nz == 1 and bz != 2)
            y_in = (0 < y < ny - 1) or (ny == 1 and by != 2)
            fast = FAST_ROWS and y_in and z_in and nx >= 3
            l_bnd = 0.0
            l_ves = 0.0
            l_loss = 0.0
            l_exch = 0.0
            l_src = 0.0
            l_tot = 0.0
            # a fast row in three parts: x = 0, the interior, x = nx − 1; any other row voxel by voxel
            for e in range(3 if fast else nx):
                if fast and e == 1:
                    # the interior in one loop: face diffusivities from the table of region pairs
                    # (no division), no wall tests, unsigned indices (Numba adds no wrap-around
                    # test for them); the ledger terms are added in the same order as voxel by
                    # voxel. (The table lookups keep LLVM from vectorising it: it cannot prove
                    # that they do not alias the outputs.)
                    one = np.uint64(1)
                    uy = np.uint64(sy)
                    uz = np.uint64(sz)
                    for xi in range(1, nx - 1):
                        i = np.uint64(row + xi)
                        c0 = cf[i]
                        r0 = reg[i]
                        t = _interior_term(cf, reg, face_d, uf, HAS_U, 0, i, one, c0, r0, inv_h)
                        if HAS_Y:
                            t = t + _interior_term(cf, reg, face_d, uf, HAS_U, 1, i, uy, c0, r0, inv_h)
                        else:
                            t = t + 0.0 * c0
                        if HAS_Z:
                            t = t + _interior_term(cf, reg, face_d, uf, HAS_U, 2, i, uz, c0, r0, inv_h)
                        else:
                            t = t + 0.0 * c0
                        bi = cbf[i]
                        if HAS_FIXED and fxf[i] != 0:
                            of[i] = cp
                            obf[i] = bi
                            l_ves += cp - (c0 + dt * t)
                            l_tot += cp + bi
                            continue
                        # float64 as with the wall rule's runtime flags (a float32 product differs)
                        p = np.float64(psf[i]) if HAS_PS else 0.0
                        s = np.float64(srcf[i]) if HAS_SRC else 0.0
                        cn, bn, loss, exch, srcd = _voxel_update(c0, bi, t, k_table[r0], kon_table[r0],
                                                                 koff_table[r0], p, cp, s, dt)
                        of[i] = cn
                        obf[i] = bn
                        l_loss += loss
                        l_exch += exch
                        l_src += srcd
                        l_tot += np.float64(cn) + np.float64(bn)
                    continue
                x = nx - 1 if fast and e == 2 else e
                terms = _general_voxel(cf, cbf, of, obf, reg, d_table, k_table, kon_table, koff_table,
                                       psf, HAS_PS, srcf, HAS_SRC, fxf, HAS_FIXED, cp, uf, HAS_U, bx, by,
                                       bz, vx, vy, vz, x, y, z, row + x, nx, ny, nz, sy, sz, inv_h, dt)
                l_bnd += terms[0]
                l_ves += terms[1]
                l_loss += terms[2]
                l_exch += terms[3]
                l_src += terms[4]
                l_tot += terms[5]
            partial[zy, 0] = l_bnd
            partial[zy, 1] = l_ves
            partial[zy, 2] = l_loss
            partial[zy, 3] = l_exch
            partial[zy, 4] = l_src
            partial[zy, 5] = l_tot

    return kernel


def numba_explicit_step(c, cb, c_out, cb_out, region, d_table, k_table, kon_table, koff_table,
                        ps, has_ps, src, has_src, fixed, has_fixed, cp, u, has_u, bc_kind, bc_value,
                        h, dt, ledger, partial=None):
    """One explicit step with the numba CPU kernel (see module docstring for the arguments).

    ``partial`` is an optional (nz·ny, LEDGER_SIZE) float64 scratch array for the per-row sums
    (summed in a fixed order, so the ledger is deterministic).
    """
    if partial is None or partial.shape[0] != c.shape[0] * c.shape[1]:
        partial = np.zeros((c.shape[0] * c.shape[1], LEDGER_SIZE))
    nz, ny, _ = c.shape
    kernel = _general_kernel(has_ps, has_src, has_fixed, has_u, ny > 1, nz > 1)
    kernel(c, cb, c_out, cb_out, region, d_table, _face_table(d_table), k_table, kon_table, koff_table, ps,
           src, fixed, c.dtype.type(cp), u, bc_kind, bc_value, float(h), float(dt), partial)
    ledger += partial.sum(axis=0)


# ----------------------------------------------------------------------------------------------
# Uniform fast path (numba): one diffusivity and one loss rate everywhere, nothing else.
# ----------------------------------------------------------------------------------------------
def _row_neighbours(n, kind, v, dtype):
    """Neighbour rows of every row along an axis and their ghost coefficients.

    Returns ``(lo, hi, coef)``: int64 arrays of the lower/upper neighbour row index and a
    ``(n, 6)`` array ``[la, lb, lg, ha, hb, hg]`` in the field dtype such that the neighbour value is
    ``a·c_nb + b·c + g`` (identity ``(1, 0, 0)`` inside; mirror ghost ``(0, −1, 2v)`` on a fixed wall;
    the row itself on a no-flux wall; wrap-around on a periodic axis).
    """
    q = np.arange(n)
    lo, hi = q - 1, q + 1
    coef = np.zeros((n, 6))
    coef[:, 0] = 1.0
    coef[:, 3] = 1.0
    for end, idx, col in ((0, lo, 0), (n - 1, hi, 3)):
        if kind == 1:
            idx[end] = n - 1 - end
        else:
            idx[end] = end
            if kind == 2:
                coef[end, col:col + 3] = (0.0, -1.0, 2.0 * v)
    return lo, hi, coef.astype(dtype)


# The uniform kernels index the 3-D arrays with (plane, row, x) all the way down instead of
# taking row views: every view made inside a parallel loop increments and decrements the
# parent array's reference count, an atomic operation on a counter that all threads share, and
# that contention made two threads only 1.5x as fast as one where a bare loop was 3x (32 planes
# of 256² float32 in cache: 4.0 against 6.3 G/s).
@numba.njit(fastmath={"reassoc", "nsz"}, **NJIT_OPTIONS)
def _row_sum(a, p, y):
    """Float64 sum of row ``a[p, y]``; reassociation lets it vectorise (fixed order for a given
    build)."""
    acc = 0.0
    for x in range(a.shape[2]):
        acc += np.float64(a[p, y, x])
    return acc


@numba.njit(fastmath={"reassoc", "nsz"}, **NJIT_OPTIONS)
def _row_sums(a, pa, b, pb, y):
    """Float64 sums of rows ``a[pa, y]`` and ``b[pb, y]`` in one pass (both vectorised)."""
    sa = 0.0
    sb = 0.0
    for x in range(a.shape[2]):
        sa += np.float64(a[pa, y, x])
        sb += np.float64(b[pb, y, x])
    return sa, sb


@numba.njit(inline="always", **NJIT_OPTIONS)
def _x_ghost_lo(a, p, y, x, nx, kind, v, two):
    if x > 0:
        return a[p, y, x - 1]
    if kind == 1:
        return a[p, y, nx - 1]
    if kind == 2:
        return two * v - a[p, y, x]
    return a[p, y, x]


@numba.njit(inline="always", **NJIT_OPTIONS)
def _x_ghost_hi(a, p, y, x, nx, kind, v, two):
    if x < nx - 1:
        return a[p, y, x + 1]
    if kind == 1:
        return a[p, y, 0]
    if kind == 2:
        return two * v - a[p, y, x]
    return a[p, y, x]


@numba.njit(inline="always", **NJIT_OPTIONS)
def _uniform_row(a, pa, ym, y, yp, b, pb, c, pc, out, po, nx, bulk, a1, b1, g1, a2, b2, g2, a3, b3, g3,
                 a4, b4, g4, alpha, beta, kind_x, v_x, two):
    """One row of the uniform step: ``out[po, y]`` from row ``y`` of plane ``a[pa]``, its y
    neighbours ``ym``, ``yp`` there and row ``y`` of the z neighbours ``b[pb]`` (below) and
    ``c[pc]`` (above).

    ``(a, b, g)`` are the y/z ghost coefficients of :func:`_row_neighbours`; ``bulk`` says that no
    y/z wall touches the row, so the plain 7-point stencil applies.
    """
    if nx == 1:
        cc = a[pa, y, 0]
        s6 = (_x_ghost_lo(a, pa, y, 0, nx, kind_x, v_x, two) + _x_ghost_hi(a, pa, y, 0, nx, kind_x, v_x, two)
              + (a1 * a[pa, ym, 0] + b1 * cc + g1) + (a2 * a[pa, yp, 0] + b2 * cc + g2)
              + (a3 * b[pb, y, 0] + b3 * cc + g3) + (a4 * c[pc, y, 0] + b4 * cc + g4))
        out[po, y, 0] = _uniform_update(cc, s6, alpha, beta)
        return
    # x = 0 and x = nx-1 with the wall rule; the interior loop is branch-free (SIMD)
    if bulk:
        # plain 7-point stencil in y and z (the identity ghost coefficients (1, 0, 0) left out:
        # the same sums, a few percent faster on every row)
        for x in (0, nx - 1):
            s6 = (_x_ghost_lo(a, pa, y, x, nx, kind_x, v_x, two) + _x_ghost_hi(a, pa, y, x, nx, kind_x, v_x, two)
                  + a[pa, ym, x] + a[pa, yp, x] + b[pb, y, x] + c[pc, y, x])
            out[po, y, x] = _uniform_update(a[pa, y, x], s6, alpha, beta)
        for x in range(1, nx - 1):
            s6 = a[pa, y, x - 1] + a[pa, y, x + 1] + a[pa, ym, x] + a[pa, yp, x] + b[pb, y, x] + c[pc, y, x]
            out[po, y, x] = _uniform_update(a[pa, y, x], s6, alpha, beta)
        return
    for x in (0, nx - 1):
        cc = a[pa, y, x]
        xm = _x_ghost_lo(a, pa, y, x, nx, kind_x, v_x, two)
        xp = _x_ghost_hi(a, pa, y, x, nx, kind_x, v_x, two)
        s6 = (xm + xp + (a1 * a[pa, ym, x] + b1 * cc + g1) + (a2 * a[pa, yp, x] + b2 * cc + g2)
              + (a3 * b[pb, y, x] + b3 * cc + g3) + (a4 * c[pc, y, x] + b4 * cc + g4))
        out[po, y, x] = _uniform_update(cc, s6, alpha, beta)
    for x in range(1, nx - 1):
        cc = a[pa, y, x]
        s6 = (a[pa, y, x - 1] + a[pa, y, x + 1] + (a1 * a[pa, ym, x] + b1 * cc + g1)
              + (a2 * a[pa, yp, x] + b2 * cc + g2) + (a3 * b[pb, y, x] + b3 * cc + g3)
              + (a4 * c[pc, y, x] + b4 * cc + g4))
        out[po, y, x] = _uniform_update(cc, s6, alpha, beta)


@numba.njit(inline="always", **NJIT_OPTIONS)
def _uniform_plane(a, pa, b, pb, c, pc, p, out, po, ny, nx, nz, coef, bc_kind, bc_value, ylo, yhi, yco, zco,
                   two, sums, mode):
    """Plane ``p`` of one uniform step from plane ``a[pa]`` and its z neighbours ``b[pb]``
    (below) and ``c[pc]`` (above) into ``out[po]``. Row sums in float64, each right after its row
    (still in cache): ``mode`` 1 puts Σ out in ``sums[0, y]`` and Σ in in ``sums[1, y]``, 2 only
    Σ out, 0 none."""
    a3 = zco[p, 0]
    b3 = zco[p, 1]
    g3 = zco[p, 2]
    a4 = zco[p, 3]
    b4 = zco[p, 4]
    g4 = zco[p, 5]
    interior_z = 0 < p < nz - 1
    for y in range(ny):
        _uniform_row(a, pa, ylo[y], y, yhi[y], b, pb, c, pc, out, po, nx,
                     interior_z and 0 < y < ny - 1, yco[y, 0], yco[y, 1], yco[y, 2], yco[y, 3], yco[y, 4],
                     yco[y, 5], a3, b3, g3, a4, b4, g4, coef[0], coef[2], bc_kind[0], bc_value[0], two)
        if mode == 1:
            sums[0, y], sums[1, y] = _row_sums(out, po, a, pa, y)
        elif mode == 2:
            sums[0, y] = _row_sum(out, po, y)


@numba.njit(inline="always", **NJIT_OPTIONS)
def _plane_sums(sums, ny, sum_in, partial, p):
    """A plane's totals from its row sums, rows in order: Σ out into ``partial[p, 5]`` and, with
    ``sum_in``, Σ in into ``partial[p, 2]``."""
    l_in = 0.0
    l_tot = 0.0
    for y in range(ny):
        l_tot += sums[0, y]
        if sum_in:
            l_in += sums[1, y]
    partial[p, 2] = l_in
    partial[p, 5] = l_tot


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _uniform_kernel(c, c_out, coef, bc_kind, bc_value, ylo, yhi, yco, zlo, zhi, zco, partial, sum_in):
    # coef = [α = D dt/h², k dt, β = 1 − 6α − k dt] in the field dtype (float32 stays float32).
    # partial[z, 5] = Σ c_out over plane z; with ``sum_in`` also partial[z, 2] = Σ c over it.
    nz, ny, nx = c.shape
    two = coef[0] * 0 + 2
    mode = 1 if sum_in else 2
    for z in prange(nz):
        sums = np.empty((2, ny))
        _uniform_plane(c, z, c, zlo[z], c, zhi[z], z, c_out, z, ny, nx, nz, coef, bc_kind, bc_value,
                       ylo, yhi, yco, zco, two, sums, mode)
        _plane_sums(sums, ny, sum_in, partial, z)


@numba.njit(inline="always", **NJIT_OPTIONS)
def _row_aligned_empty(nz, ny, nx, dtype):
    """An uninitialised C-contiguous ``(nz, ny, nx)`` array whose element ``[0, 0, 1]`` lies on a
    64-byte boundary (the layout of :func:`nanosim.backends.aligned_zeros` with ``lead=1``)."""
    n = nz * ny * nx
    buf = np.empty(n + 64, dtype)
    item = buf.itemsize
    off = 0
    if 64 % item == 0 and buf.ctypes.data % item == 0:
        off = ((64 - (buf.ctypes.data + item) % 64) % 64) // item
    return buf[off:off + n].reshape((nz, ny, nx))


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _uniform_pair_kernel(c, c_out, coef, bc_kind, bc_value, ylo, yhi, yco, zlo, zhi, zco, partial, chunks,
                         sum_in):
    """Two uniform steps in one pass over memory (temporal blocking, a wavefront in z).

    Each of ``chunks`` z-ranges keeps the first step's planes in a ring of three and writes the
    second step's plane ``q`` as soon as the first step's planes ``zlo[q], q, zhi[q]`` exist; a
    chunk recomputes the first step on the planes beside it (its halo). Every value and every
    sum is formed as in two calls of :func:`_uniform_kernel` (bitwise the same results).
    ``partial[z, 5]``: Σ over plane z after the first step, ``[z, 4]``: after the second;
    with ``sum_in``, ``[z, 2]``: Σ of the input. z must not be periodic (the ring holds
    neighbours only).
    """
    nz, ny, nx = c.shape
    two = coef[0] * 0 + 2
    for ch in prange(chunks):
        z0 = ch * nz // chunks
        z1 = (ch + 1) * nz // chunks
        ring = _row_aligned_empty(3, ny, nx, c.dtype)
        ring_sum = np.empty((2, ny))
        out_sum = np.empty((2, ny))
        for p in range(max(z0 - 1, 0), min(z1 + 1, nz)):
            owned = z0 <= p < z1  # a halo plane's sums belong to the chunk that owns it
            mode = (1 if sum_in else 2) if owned else 0
            _uniform_plane(c, p, c, zlo[p], c, zhi[p], p, ring, p % 3, ny, nx, nz, coef, bc_kind,
                           bc_value, ylo, yhi, yco, zco, two, ring_sum, mode)
            if owned:
                _plane_sums(ring_sum, ny, sum_in, partial, p)
            # the second step on the chunk's planes whose first-step neighbours are now complete
            for q in (p - 1, p):
                zl = zlo[q]
                zh = zhi[q]
                if q < z0 or q >= z1 or max(zl, max(q, zh)) != p:
                    continue
                _uniform_plane(ring, q % 3, ring, zl % 3, ring, zh % 3, q, c_out, q, ny, nx, nz, coef,
                               bc_kind, bc_value, ylo, yhi, yco, zco, two, out_sum, 2)
                l_tot = 0.0
                for y in range(ny):
                    l_tot += out_sum[0, y]
                partial[q, 4] = l_tot


@numba.njit(**NJIT_OPTIONS)
def _uniform_boundary_inflow(c, alpha, bc_kind, bc_value):
    """Σ over fixed-value walls of ``2α(v − c)`` (α = D dt/h²): the wall inflow of one step."""
    nz, ny, nx = c.shape
    total = 0.0
    if bc_kind[0] == 2 and nx > 0:
        v = bc_value[0]
        for z in range(nz):
            for y in range(ny):
                total += 2.0 * alpha * (v - c[z, y, 0]) + 2.0 * alpha * (v - c[z, y, nx - 1])
    if bc_kind[1] == 2:
        v = bc_value[1]
        for z in range(nz):
            for x in range(nx):
                total += 2.0 * alpha * (v - c[z, 0, x]) + 2.0 * alpha * (v - c[z, ny - 1, x])
    if bc_kind[2] == 2:
        v = bc_value[2]
        for y in range(ny):
            for x in range(nx):
                total += 2.0 * alpha * (v - c[0, y, x]) + 2.0 * alpha * (v - c[nz - 1, y, x])
    return total


def _uniform_args(c, d_m2_per_s, k_per_s, bc_kind, bc_value, h, dt):
    """``(α, kernel arguments coef … zco)`` of the uniform kernels for one step of ``dt``."""
    alpha = d_m2_per_s * dt / h**2
    coef = np.array([alpha, k_per_s * dt, 1.0 - 6.0 * alpha - k_per_s * dt], dtype=c.dtype)
    nz, ny, _ = c.shape
    ylo, yhi, yco = _row_neighbours(ny, int(bc_kind[1]), float(bc_value[1]), c.dtype)
    zlo, zhi, zco = _row_neighbours(nz, int(bc_kind[2]), float(bc_value[2]), c.dtype)
    return alpha, (coef, bc_kind, np.asarray(bc_value).astype(c.dtype), ylo, yhi, yco, zlo, zhi, zco)


def numba_uniform_step(c, c_out, d_m2_per_s, k_per_s, bc_kind, bc_value, h, dt, ledger, partial=None,
                       total_in=None):
    """Explicit step for uniform diffusivity and loss (the bandwidth-bound fast path).

    Moves the minimum data: reads ``c`` once, writes ``c_out`` once (2 × itemsize bytes per
    voxel-update, neighbours reused from cache). The step's loss is ``k dt Σc``: ``total_in`` is
    ``Σc`` when the caller knows it (the total this function returned for the step that made
    ``c``; the operator passes it from one sub-step to the next), otherwise the kernel sums ``c``
    row by row beside the stencil. Returns ``Σ c_out`` (float64, in the field's unit), the
    ``total_in`` of a following step on ``c_out``.
    """
    if partial is None or partial.shape[0] != c.shape[0]:
        partial = np.zeros((c.shape[0], LEDGER_SIZE))
    alpha, args = _uniform_args(c, d_m2_per_s, k_per_s, bc_kind, bc_value, h, dt)
    if np.any(np.asarray(bc_kind) == 2):
        ledger[transport.LEDGER_BOUNDARY] += _uniform_boundary_inflow(c, alpha, bc_kind, bc_value)
    _uniform_kernel(c, c_out, *args, partial, total_in is None)
    sum_in = partial[:, 2].sum() if total_in is None else float(total_in)
    total = partial[:, 5].sum()
    ledger[transport.LEDGER_LOSS] += float(args[0][1]) * sum_in
    ledger[transport.LEDGER_TOTAL] += total
    return total


def pair_supported(bc_kind) -> bool:
    """Whether :func:`numba_uniform_pair_step` applies: no fixed-value wall (its inflow needs each
    step's wall values) and no periodic z (the pair's ring holds z-neighbours only)."""
    kinds = [int(k) for k in bc_kind]
    return 2 not in kinds and kinds[2] != 1


def numba_uniform_pair_step(c, c_out, d_m2_per_s, k_per_s, bc_kind, bc_value, h, dt, ledger_a, ledger_b,
                            partial=None, total_in=None):
    """Two explicit uniform steps of ``dt`` in one pass over memory: ``c_out``, the two ledgers
    and the returned total are bitwise those of :func:`numba_uniform_step` called twice
    (``c → tmp → c_out``, the second call given the first's total; ``total_in`` as there).

    The field is read once and written once for two voxel-updates (4·itemsize bytes of traffic
    per pair instead of 8·itemsize with two calls, counting write-allocate); the first step's
    planes live in a per-thread ring of three. Needs :func:`pair_supported` walls.
    """
    if not pair_supported(bc_kind):
        raise ValueError("the pair step needs no fixed-value walls and a non-periodic z axis "
                         "(use numba_uniform_step)")
    nz = c.shape[0]
    if partial is None or partial.shape[0] != nz:
        partial = np.zeros((nz, LEDGER_SIZE))
    _, args = _uniform_args(c, d_m2_per_s, k_per_s, bc_kind, bc_value, h, dt)
    # a chunk per thread, at least 8 planes each (each chunk recomputes two halo planes)
    chunks = max(1, min(numba.get_num_threads(), nz // 8))
    _uniform_pair_kernel(c, c_out, *args, partial, chunks, total_in is None)
    kdt = float(args[0][1])
    sum_in = partial[:, 2].sum() if total_in is None else float(total_in)
    total_a = partial[:, 5].sum()
    total_b = partial[:, 4].sum()
    ledger_a[transport.LEDGER_LOSS] += kdt * sum_in
    ledger_a[transport.LEDGER_TOTAL] += total_a
    ledger_b[transport.LEDGER_LOSS] += kdt * total_a
    ledger_b[transport.LEDGER_TOTAL] += total_b
    return total_b


# ----------------------------------------------------------------------------------------------
# NumPy reference (vectorised slicing; the test oracle)
# ----------------------------------------------------------------------------------------------
def _shift_faces(c, reg_d, u, has_u, axis_arr, axis_phys, kind, v, h):
    """Flux-form transport rate along one array axis with NumPy slicing, and the wall inflow."""
    n = c.shape[axis_arr]
    rate = np.zeros_like(c)
    wall = np.zeros_like(c)

    def sl(a, b):
        idx = [slice(None)] * 3
        idx[axis_arr] = slice(a, b)
        return tuple(idx)

    zero = c.dtype.type(0)
    uface = u[axis_phys] if has_u else None
    # interior faces between q and q+1
    if n > 1:
        ca, cb_ = c[sl(0, n - 1)], c[sl(1, n)]
        df = _hm(reg_d[sl(0, n - 1)], reg_d[sl(1, n)])
        uf = uface[sl(0, n - 1)] if has_u else zero
        f = _np_face_flux(ca, cb_, df, uf, 1.0 / h)
        rate[sl(0, n - 1)] -= f / h
        rate[sl(1, n)] += f / h
    if kind == 1:
        ca, cb_ = c[sl(n - 1, n)], c[sl(0, 1)]
        df = _hm(reg_d[sl(n - 1, n)], reg_d[sl(0, 1)])
        uf = uface[sl(n - 1, n)] if has_u else zero
        f = _np_face_flux(ca, cb_, df, uf, 1.0 / h)
        rate[sl(n - 1, n)] -= f / h
        rate[sl(0, 1)] += f / h
    elif kind == 2:
        # lower wall: from the ghost into voxel 0, velocity of voxel 0's +face
        c0 = c[sl(0, 1)]
        ul = uface[sl(0, 1)] if has_u else zero
        f_in = _np_face_flux(c.dtype.type(v), c0, 2.0 * reg_d[sl(0, 1)], ul, 1.0 / h)
        rate[sl(0, 1)] += f_in / h
        wall[sl(0, 1)] += f_in / h
        cn = c[sl(n - 1, n)]
        uu = uface[sl(n - 1, n)] if has_u else zero
        f_out = _np_face_flux(cn, c.dtype.type(v), 2.0 * reg_d[sl(n - 1, n)], uu, 1.0 / h)
        rate[sl(n - 1, n)] -= f_out / h
        wall[sl(n - 1, n)] -= f_out / h
    return rate, wall


def _hm(a, b):
    s = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, 2.0 * a * b / np.where(s > 0, s, 1.0), 0.0)


def _np_face_flux(ca, cb, d, u, inv_h):
    up = np.maximum(u, 0)
    un = np.maximum(-u, 0)
    return d * (ca - cb) * inv_h + up * ca - un * cb


def numpy_explicit_step(c, cb, c_out, cb_out, region, d_table, k_table, kon_table, koff_table,
                        ps, has_ps, src, has_src, fixed, has_fixed, cp, u, has_u, bc_kind, bc_value,
                        h, dt, ledger, partial=None):
    """NumPy reference of :func:`numba_explicit_step` (same arguments and semantics)."""
    dt_ = c.dtype.type(dt)
    reg_d = np.asarray(d_table)[region].astype(c.dtype)
    t = np.zeros_like(c)
    wall = np.zeros_like(c)
    # array axes (z=0, y=1, x=2) ↔ physical axes (x=0, y=1, z=2)
    for axis_arr, axis_phys in ((2, 0), (1, 1), (0, 2)):
        r, w = _shift_faces(c, reg_d, u, has_u, axis_arr, axis_phys, int(bc_kind[axis_phys]),
                            float(bc_value[axis_phys]), h)
        t += r
        wall += w
    k = np.asarray(k_table)[region].astype(c.dtype)
    kon = np.asarray(kon_table)[region].astype(c.dtype)
    koff = np.asarray(koff_table)[region].astype(c.dtype)
    p = ps.astype(c.dtype) if has_ps else c.dtype.type(0)
    s = src.astype(c.dtype) if has_src else c.dtype.type(0)
    cp_ = c.dtype.type(cp)
    rate = t + (-k * c + p * (cp_ - c) + s - kon * c + koff * cb)
    c_out[...] = c + dt_ * rate
    cb_out[...] = cb + dt_ * (kon * c - koff * cb)
    free = np.ones(c.shape, bool) if not has_fixed else fixed == 0
    if has_fixed:
        fx = ~free
        ledger[transport.LEDGER_VESSEL] += np.sum(cp_ - (c[fx] + dt_ * t[fx]), dtype=np.float64)
        c_out[fx] = cp_
        cb_out[fx] = cb[fx]
    ledger[transport.LEDGER_BOUNDARY] += np.sum(dt_ * wall, dtype=np.float64)
    ledger[transport.LEDGER_LOSS] += np.sum((dt_ * k * c)[free], dtype=np.float64)
    if has_ps:
        ledger[transport.LEDGER_EXCHANGE] += np.sum((dt_ * p * (cp_ - c))[free], dtype=np.float64)
    if has_src:
        ledger[transport.LEDGER_SOURCE] += np.sum((dt_ * s * np.ones_like(c))[free], dtype=np.float64)
    ledger[transport.LEDGER_TOTAL] += np.sum(c_out, dtype=np.float64) + np.sum(cb_out, dtype=np.float64)


def numpy_uniform_step(c, c_out, d_m2_per_s, k_per_s, bc_kind, bc_value, h, dt, ledger, partial=None):
    """NumPy-slicing version of :func:`numba_uniform_step` (the speed baseline)."""
    alpha = c.dtype.type(d_m2_per_s * dt / h**2)
    kdt = c.dtype.type(k_per_s * dt)
    p = c
    # pad one ghost layer per axis with the boundary rule
    for ax, axis_phys in ((0, 2), (1, 1), (2, 0)):
        kind = int(bc_kind[axis_phys])
        p = np.pad(p, [(1, 1) if a == ax else (0, 0) for a in range(3)],
                   mode={0: "edge", 1: "wrap", 2: "edge"}[kind])
        if kind == 2:
            v = c.dtype.type(bc_value[axis_phys])
            lo = [slice(None)] * 3
            lo[ax] = slice(0, 1)
            inner_lo = [slice(None)] * 3
            inner_lo[ax] = slice(1, 2)
            hi = [slice(None)] * 3
            hi[ax] = slice(-1, None)
            inner_hi = [slice(None)] * 3
            inner_hi[ax] = slice(-2, -1)
            p[tuple(lo)] = 2 * v - p[tuple(inner_lo)]
            p[tuple(hi)] = 2 * v - p[tuple(inner_hi)]
    core = p[1:-1, 1:-1, 1:-1]
    s6 = (p[:-2, 1:-1, 1:-1] + p[2:, 1:-1, 1:-1] + p[1:-1, :-2, 1:-1] + p[1:-1, 2:, 1:-1]
          + p[1:-1, 1:-1, :-2] + p[1:-1, 1:-1, 2:])
    beta = c.dtype.type(1.0 - 6.0 * float(alpha) - float(kdt))
    c_out[...] = beta * core + alpha * s6
    if np.any(np.asarray(bc_kind) == 2):
        ledger[transport.LEDGER_BOUNDARY] += _uniform_boundary_inflow.py_func(c, float(alpha), bc_kind, bc_value)
    ledger[transport.LEDGER_LOSS] += np.sum(kdt * c, dtype=np.float64)
    ledger[transport.LEDGER_TOTAL] += np.sum(c_out, dtype=np.float64)
