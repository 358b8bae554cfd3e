r"""CUDA twin of :mod:`nanosim.kernels.implicit`: the LOD backward-Euler transport step on a GPU.

Same scheme, data layout, boundary conditions and ledger as the CPU step (see that module's
docstring). Each sweep runs one thread per grid line, which performs the whole Thomas solve
(and the Sherman–Morrison correction on periodic axes) along its line with float64 scratch in
global memory laid out like the field. Lines along y and z are numbered with x fastest, so that
neighbouring threads touch neighbouring x (coalesced); lines along x are read with a stride of
one line per thread. The reactions run one thread per (z, x) column, looping over y.

The physics comes from the same pointwise functions as the CPU kernels
(:func:`~nanosim.kernels.physics.face_diffusivity` and
:func:`~nanosim.kernels.physics.implicit_reaction`, compiled with ``cuda.jit(device=True)``).

Mass ledger: every thread writes its line's or column's partial sums into a float64 array
``part[slot, line]``; a reduction kernel sums fixed blocks of lines sequentially, and the host
adds the block sums with :func:`math.fsum`. No atomics, so the ledger, like the fields, is
bitwise reproducible on a given device.

API
---
``make_cuda_workspace(shape, dtype)`` allocates the device scratch once;
``cuda_implicit_step`` has the signature of :func:`~nanosim.kernels.implicit.numba_implicit_step`.
The arrays ``c``, ``cb``, ``region``, ``ps``, ``src``, ``fixed`` and ``u`` are device arrays
(CuPy arrays or Numba device arrays, C-contiguous); ``d_table`` … ``koff_table``, ``bc_kind``,
``bc_value`` and ``ledger_out`` are host NumPy arrays. The dummies passed with ``has_*=False``
are never read. The step synchronises once, when the ledger comes back to the host.

This module imports ``numba.cuda`` and is never imported by ``import nanosim``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from . import physics
from .implicit import bc_ends, check_arguments

__all__ = ["CudaImplicitWorkspace", "cuda_implicit_step", "make_cuda_workspace"]

# Device forms of the pointwise physics, bound to module names for the kernels.
_fd = physics.face_diffusivity.cuda
_react = physics.implicit_reaction.cuda

#: Threads per block of every kernel (lines are independent; 128 keeps occupancy high).
THREADS = 128
#: Lines summed sequentially by one thread of the ledger reduction.
REDUCE_BLOCK = 256
# Ledger slots of ``part``: sweep a -> (2a: boundary, 2a+1: vessel); then the reaction's
# vessel change, loss, exchange, source and total.
_N_SLOTS = 11
_R0 = 6


def sweep_geometry(shape, axis):
    """Flat-index layout of the lines of one sweep.

    Line ``ℓ = o·nv + v`` starts at ``o·so + v·sv`` and steps by ``sa`` along the sweep axis for
    ``n`` voxels. For the y- and z-sweeps ``v`` is x (``sv = 1``), so consecutive threads read
    consecutive addresses.

    Returns
    -------
    tuple of int
        ``(n, sa, nv, sv, no, so)``.
    """
    nz, ny, nx = shape
    if axis == 0:
        return nx, 1, ny, nx, nz, ny * nx
    if axis == 1:
        return ny, nx, nx, 1, nz, ny * nx
    return nz, ny * nx, nx, 1, ny, nx


@cuda.jit
def _sweep_kernel(c, reg, d_table, u, has_u, fix, has_fixed, cp, kind, v_lo, v_hi, r, rh,
                  n, sa, nv, sv, no, so, cm, dp, zz, part, slot):
    """One backward-Euler sweep, one thread per line (see the CPU ``_general_lines``).

    ``cm``, ``dp``, ``zz`` are float64 scratch with the layout of ``c``; ``part[slot, ℓ]`` and
    ``part[slot + 1, ℓ]`` receive the line's boundary inflow and vessel supply.
    """
    line = cuda.grid(1)
    if line >= no * nv:
        return
    o = line // nv
    v = line - o * nv
    base = o * so + v * sv
    last = base + (n - 1) * sa
    periodic = kind == 1
    fixed_bc = kind == 2
    ves = 0.0
    bnd = 0.0
    pb = 0.0
    rlo = 0.0
    fhi = 0.0
    rhi = 0.0
    alpha = 0.0
    beta = 0.0
    gamma = 0.0
    if periodic:
        dwh = rh * _fd(d_table[reg[last]], d_table[reg[base]])
        uw = r * u[last] if has_u else 0.0
        fw = dwh + max(uw, 0.0)
        bw = dwh + max(-uw, 0.0)
        pb = bw
        fhi = fw
        beta = -fw
        alpha = -bw
        if has_fixed:
            if fix[base] != 0:
                beta = 0.0
            if fix[last] != 0:
                alpha = 0.0
    elif fixed_bc:
        g_lo = 2.0 * rh * d_table[reg[base]]
        g_hi = 2.0 * rh * d_table[reg[last]]
        u_lo = r * u[base] if has_u else 0.0
        u_hi = r * u[last] if has_u else 0.0
        pb = g_lo + max(-u_lo, 0.0)
        rlo = (g_lo + max(u_lo, 0.0)) * v_lo
        fhi = g_hi + max(u_hi, 0.0)
        rhi = (g_hi + max(-u_hi, 0.0)) * v_hi
    # Forward elimination, row by row; the face above each row is assembled on the fly.
    pf = 0.0
    for j in range(n):
        i = base + j * sa
        if j < n - 1:
            f = rh * _fd(d_table[reg[i]], d_table[reg[i + sa]])
            b = f
            if has_u:
                uf = r * u[i]
                f = f + max(uf, 0.0)
                b = b + max(-uf, 0.0)
            diag = 1.0 + f + pb
            upc = -b
        else:
            f = 0.0
            b = 0.0
            diag = 1.0 + fhi + pb
            upc = 0.0
        low = -pf if j > 0 else 0.0
        rhs = c[i] + 0.0
        if j == 0:
            rhs += rlo
        if j == n - 1:
            rhs += rhi
        if has_fixed:
            if fix[i] != 0:
                ves += cp - c[i]
                diag = 1.0
                low = 0.0
                upc = 0.0
                rhs = cp
        if j == 0:
            if periodic:
                gamma = -diag
                diag -= gamma
            w = 1.0 / diag
            dp[i] = rhs * w
            zz[i] = gamma * w
        else:
            if j == n - 1 and periodic:
                diag -= alpha * beta / gamma
            w = 1.0 / (diag - low * cm[i - sa])
            dp[i] = (rhs - low * dp[i - sa]) * w
            e = alpha if j == n - 1 else 0.0
            zz[i] = (e - low * zz[i - sa]) * w
        cm[i] = upc * w
        pf = f
        pb = b
    # Back substitution (and the Sherman-Morrison correction on periodic axes).
    for j in range(n - 2, -1, -1):
        i = base + j * sa
        dp[i] -= cm[i] * dp[i + sa]
        if periodic:
            zz[i] -= cm[i] * zz[i + sa]
    if periodic:
        fact = (dp[base] + beta * dp[last] / gamma) / (1.0 + zz[base] + beta * zz[last] / gamma)
        for j in range(n):
            i = base + j * sa
            dp[i] -= fact * zz[i]
    for j in range(n):
        i = base + j * sa
        c[i] = dp[i]
    # Ledger from the fluxes of the solution.
    if fixed_bc:
        g_lo = 2.0 * rh * d_table[reg[base]]
        g_hi = 2.0 * rh * d_table[reg[last]]
        u_lo = r * u[base] if has_u else 0.0
        u_hi = r * u[last] if has_u else 0.0
        if not (has_fixed and fix[base] != 0):
            bnd += (g_lo + max(u_lo, 0.0)) * v_lo - (g_lo + max(-u_lo, 0.0)) * dp[base]
        if not (has_fixed and fix[last] != 0):
            bnd += (g_hi + max(-u_hi, 0.0)) * v_hi - (g_hi + max(u_hi, 0.0)) * dp[last]
    if has_fixed:
        nf = n if periodic else n - 1
        for j in range(nf):
            ia = base + j * sa
            ib = ia + sa if j + 1 < n else base
            fa = fix[ia] != 0
            fb = fix[ib] != 0
            if fa != fb:
                dfh = rh * _fd(d_table[reg[ia]], d_table[reg[ib]])
                uf = r * u[ia] if has_u else 0.0
                q = (dfh + max(uf, 0.0)) * dp[ia] - (dfh + max(-uf, 0.0)) * dp[ib]
                ves += q if fa else -q
    part[slot, line] = bnd
    part[slot + 1, line] = ves


@cuda.jit
def _reaction_kernel(c, cb, reg, k_table, kon_table, koff_table, ps, has_ps, src, has_src,
                     fix, has_fixed, cp, dt, nz, ny, nx, part, slot):
    """Pointwise backward-Euler reactions, one thread per (z, x) column looping over y.

    ``part[slot + m, column]`` receives the column's vessel change, loss, exchange, source and
    total ``Σ(c + c_b)`` (m = 0 … 4).
    """
    col = cuda.grid(1)
    if col >= nz * nx:
        return
    z = col // nx
    x = col - z * nx
    vessel = 0.0
    loss = 0.0
    exchange = 0.0
    source = 0.0
    total = 0.0
    for y in range(ny):
        i = (z * ny + y) * nx + x
        if has_fixed and fix[i] != 0:
            vessel += cp - c[i]
            c[i] = cp
        else:
            rg = reg[i]
            k = k_table[rg]
            psi = ps[i] if has_ps else 0.0
            si = src[i] if has_src else 0.0
            cn, cbn = _react(c[i], cb[i], k, kon_table[rg], koff_table[rg], psi, cp, si, dt)
            loss += dt * k * cn
            exchange += dt * psi * (cp - cn)
            source += dt * si
            c[i] = cn
            cb[i] = cbn
        total += float(c[i]) + float(cb[i])
    part[slot, col] = vessel
    part[slot + 1, col] = loss
    part[slot + 2, col] = exchange
    part[slot + 3, col] = source
    part[slot + 4, col] = total


@cuda.jit
def _reduce_kernel(part, nlines, block, out):
    """``out[s, k] = Σ part[s, ℓ]`` over lines ``ℓ`` of block ``k``, summed in order."""
    tid = cuda.grid(1)
    nb = out.shape[1]
    if tid >= out.shape[0] * nb:
        return
    s = tid // nb
    k = tid - s * nb
    acc = 0.0
    for line in range(k * block, min((k + 1) * block, nlines)):
        acc += part[s, line]
    out[s, k] = acc


class CudaImplicitWorkspace:
    """Device scratch of :func:`cuda_implicit_step` for one grid shape.

    Attributes
    ----------
    shape : tuple of int
        Grid shape (nz, ny, nx).
    dtype : numpy.dtype
        Field precision (scratch is float64).
    """

    def __init__(self, shape, dtype):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        nz, ny, nx = self.shape
        size = nz * ny * nx
        self.cm = cuda.device_array(size, np.float64)
        self.dp = cuda.device_array(size, np.float64)
        self.zz = cuda.device_array(size, np.float64)
        self.max_lines = max(nz * ny, nz * nx, ny * nx)
        # Zeroed once: slots of a skipped axis (length 1) are never written.
        self.part = cuda.to_device(np.zeros((_N_SLOTS, self.max_lines)))
        nblk = -(-self.max_lines // REDUCE_BLOCK)
        self.out = cuda.device_array((_N_SLOTS, nblk), np.float64)
        self.dummy_f = cuda.to_device(np.zeros(1))
        self.dummy_u8 = cuda.to_device(np.zeros(1, np.uint8))
        self._tables = None
        self._tables_host = None

    def __repr__(self) -> str:
        return f"CudaImplicitWorkspace(shape={self.shape}, dtype={self.dtype.name})"

    def tables(self, *tables):
        """Device copies of the per-region tables, uploaded again only when they change."""
        host = tuple(np.ascontiguousarray(t, dtype=np.float64) for t in tables)
        if self._tables_host is None or any(
                a.shape != b.shape or not np.array_equal(a, b)
                for a, b in zip(host, self._tables_host)):
            self._tables_host = tuple(a.copy() for a in host)
            self._tables = tuple(cuda.to_device(a) for a in host)
        return self._tables


def make_cuda_workspace(shape, dtype) -> CudaImplicitWorkspace:
    """Allocate the device scratch of :func:`cuda_implicit_step` for ``shape`` (nz, ny, nx)."""
    if len(shape) != 3:
        raise ValueError(f"shape must be (nz, ny, nx), not {shape}")
    return CudaImplicitWorkspace(shape, dtype)


def _blocks(n):
    return (n + THREADS - 1) // THREADS


def cuda_implicit_step(c, cb, region, d_table, k_table, kon_table, koff_table, ps, has_ps,
                       src, has_src, fixed, has_fixed, cp, u, has_u, bc_kind, bc_value, h, dt,
                       work, ledger_out):
    """Advance ``c`` and ``cb`` (device arrays) by one implicit LOD step on the GPU.

    Parameters are those of :func:`nanosim.kernels.implicit.numpy_implicit_step`, with the
    grid arrays on the device and ``work`` from :func:`make_cuda_workspace`.
    """
    check_arguments(c, cb, region, (d_table, k_table, kon_table, koff_table), ps, has_ps, src,
                    has_src, fixed, has_fixed, u, has_u, ledger_out)
    if tuple(c.shape) != work.shape:
        raise ValueError(f"workspace is for shape {work.shape}, field has {tuple(c.shape)}")
    nz, ny, nx = work.shape
    size = nz * ny * nx
    ends = bc_ends(bc_value)
    h = float(h)
    dt = float(dt)
    cp = float(cp)
    r = dt / h
    rh = dt / (h * h)
    d_tab, k_tab, kon_tab, koff_tab = work.tables(d_table, k_table, kon_table, koff_table)
    cf = c.reshape(size)
    cbf = cb.reshape(size)
    reg = region.reshape(size)
    fx = fixed.reshape(size) if has_fixed else work.dummy_u8
    psf = ps.reshape(size) if has_ps else work.dummy_f
    srcf = src.reshape(size) if has_src else work.dummy_f
    part = work.part
    for axis in range(3):
        n, sa, nv, sv, no, so = sweep_geometry(work.shape, axis)
        if n == 1:
            continue
        ua = u[axis].reshape(size) if has_u else work.dummy_f
        _sweep_kernel[_blocks(no * nv), THREADS](
            cf, reg, d_tab, ua, bool(has_u), fx, bool(has_fixed), cp, int(bc_kind[axis]),
            ends[axis, 0], ends[axis, 1], r, rh, n, sa, nv, sv, no, so, work.cm, work.dp,
            work.zz, part, 2 * axis)
    _reaction_kernel[_blocks(nz * nx), THREADS](
        cf, cbf, reg, k_tab, kon_tab, koff_tab, psf, bool(has_ps), srcf, bool(has_src), fx,
        bool(has_fixed), cp, dt, nz, ny, nx, part, _R0)
    out = work.out
    _reduce_kernel[_blocks(out.shape[0] * out.shape[1]), THREADS](
        part, work.max_lines, REDUCE_BLOCK, out)
    s = out.copy_to_host()
    ledger_out[0] += math.fsum(np.concatenate([s[0], s[2], s[4]]))
    ledger_out[1] += math.fsum(np.concatenate([s[1], s[3], s[5], s[_R0]]))
    ledger_out[2] += math.fsum(s[_R0 + 1])
    ledger_out[3] += math.fsum(s[_R0 + 2])
    ledger_out[4] += math.fsum(s[_R0 + 3])
    ledger_out[5] = math.fsum(s[_R0 + 4])
