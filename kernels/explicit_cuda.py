"""CUDA drivers of the explicit transport step (twins of :mod:`nanosim.kernels.explicit`).

The general kernel runs one thread per voxel; the uniform fast path one thread per (x, y) column
and a few z-planes. The physics is the same pointwise source as the CPU kernels
(:mod:`nanosim.kernels.transport`, :mod:`nanosim.kernels.physics`) compiled for the device. The
ledger is reduced per block in shared memory and added to a float64 device array with one atomic
add per block and slot: fields are bitwise reproducible, the float64 ledger sums may differ in the
last bits between runs (atomic order).

Works on CuPy arrays (CUDA array interface) and numba device arrays; under
``NUMBA_ENABLE_CUDASIM=1`` on host arrays in Numba's simulator.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from . import transport
from .transport import LEDGER_SIZE

_axis_rate = transport.axis_rate.cuda
_voxel_update = transport.explicit_voxel_update.cuda
_uniform_update = transport.uniform_update.cuda

THREADS = 256


@cuda.jit(device=True)
def _block_reduce_add(sh, tid, ledger):
    """Tree-reduce ``sh[slot, :]`` over the block and atomically add the block totals."""
    stride = THREADS // 2
    while stride > 0:
        cuda.syncthreads()
        if tid < stride:
            for k in range(LEDGER_SIZE):
                sh[k, tid] += sh[k, tid + stride]
        stride //= 2
    cuda.syncthreads()
    if tid == 0:
        for k in range(LEDGER_SIZE):
            cuda.atomic.add(ledger, k, sh[k, 0])


@cuda.jit
def _general_kernel(cf, cbf, of, obf, reg, d_table, k_table, kon_table, koff_table,
                    psf, has_ps, srcf, has_src, fxf, has_fixed, cp, uf, has_u, bc_kind, bc_value,
                    nx, ny, nz, h, dt, ledger):
    sh = cuda.shared.array((LEDGER_SIZE, THREADS), float64)
    tid = cuda.threadIdx.x
    i = cuda.grid(1)
    for k in range(LEDGER_SIZE):
        sh[k, tid] = 0.0
    if i < nx * ny * nz:
        x = i % nx
        y = (i // nx) % ny
        z = i // (nx * ny)
        inv_h = 1.0 / h
        rx, qx = _axis_rate(cf, reg, d_table, uf, has_u, i, x, nx, 1, 0, bc_kind[0], bc_value[0], inv_h)
        ry, qy = _axis_rate(cf, reg, d_table, uf, has_u, i, y, ny, nx, 1, bc_kind[1], bc_value[1], inv_h)
        rz, qz = _axis_rate(cf, reg, d_table, uf, has_u, i, z, nz, nx * ny, 2, bc_kind[2], bc_value[2],
                            inv_h)
        t = rx + ry + rz
        ci = cf[i]
        bi = cbf[i]
        sh[0, tid] = dt * (qx + qy + qz)
        if has_fixed and fxf[i] != 0:
            of[i] = cp
            obf[i] = bi
            sh[1, tid] = cp - (ci + dt * t)
            sh[5, tid] = float64(cp) + float64(bi)
        else:
            r = reg[i]
            k = k_table[r]
            kon = kon_table[r]
            koff = koff_table[r]
            p = psf[i] if has_ps else 0.0
            s = srcf[i] if has_src else 0.0
            cn, bn, sh[2, tid], sh[3, tid], sh[4, tid] = _voxel_update(ci, bi, t, k, kon, koff, p, cp, s, dt)
            of[i] = cn
            obf[i] = bn
            sh[5, tid] = float64(cn) + float64(bn)
    _block_reduce_add(sh, tid, ledger)


def _flat(a):
    return a.reshape(-1)


def explicit_step(c, cb, c_out, cb_out, region, d_table, k_table, kon_table, koff_table,
                  ps, has_ps, src, has_src, fixed, has_fixed, cp, u, has_u, bc_kind, bc_value,
                  h, dt, ledger):
    """One explicit step on the device (arguments as :func:`~nanosim.kernels.explicit.numba_explicit_step`).

    ``ledger`` is a float64 device array of LEDGER_SIZE that the step adds to; all other arrays
    are device arrays (or host arrays under the simulator).
    """
    nz, ny, nx = c.shape
    n = nx * ny * nz
    blocks = (n + THREADS - 1) // THREADS
    uf = u.reshape(3, -1)
    _general_kernel[blocks, THREADS](
        _flat(c), _flat(cb), _flat(c_out), _flat(cb_out), _flat(region), d_table, k_table,
        kon_table, koff_table, _flat(ps), bool(has_ps), _flat(src), bool(has_src), _flat(fixed),
        bool(has_fixed), c.dtype.type(cp), uf, bool(has_u), bc_kind, bc_value, nx, ny, nz,
        float(h), float(dt), ledger)


#: Threads of the uniform kernel's blocks along x and y, and z-planes each thread walks.
UNIFORM_BLOCK = (32, 8)
UNIFORM_Z_CHUNK = 8
UNIFORM_THREADS = UNIFORM_BLOCK[0] * UNIFORM_BLOCK[1]  # a power of two (tree reduction)


@cuda.jit(device=True, inline=True)
def _neighbour(c, z, y, x, axis, step, n, q, kind, v, cc, two):
    """Value seen across one face, and 2(v − c) for a fixed wall (0 otherwise).

    Same wall rule as the CPU kernel: inside → the neighbour; periodic (kind 1) → the wrapped
    neighbour; fixed (kind 2) → the ghost 2v − c; no-flux (kind 0) → c itself.
    """
    qn = q + step
    inside = qn >= 0 and qn < n
    if inside or kind == 1:
        if not inside:
            qn = n - 1 if step < 0 else 0
        if axis == 0:
            return c[z, y, qn], 0.0
        if axis == 1:
            return c[z, qn, x], 0.0
        return c[qn, y, x], 0.0
    if kind == 2:
        return two * v - cc, 2.0 * (float64(v) - float64(cc))
    return cc, 0.0


@cuda.jit(device=True, inline=True)
def _block_sum3(a, b, c, ledger):
    """Add three float64 per-thread values over the block into ledger slots 0, 2 and 5.

    A shared-memory tree over the block's UNIFORM_THREADS threads (Numba's CUDA simulator has no
    warp shuffles, and the tree keeps simulator and device on one code path), then three atomics.
    """
    sh = cuda.shared.array((3, UNIFORM_THREADS), float64)
    tid = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    sh[0, tid] = a
    sh[1, tid] = b
    sh[2, tid] = c
    stride = UNIFORM_THREADS // 2
    while stride > 0:
        cuda.syncthreads()
        if tid < stride:
            sh[0, tid] += sh[0, tid + stride]
            sh[1, tid] += sh[1, tid + stride]
            sh[2, tid] += sh[2, tid + stride]
        stride //= 2
    cuda.syncthreads()
    if tid == 0:
        cuda.atomic.add(ledger, 0, sh[0, 0])
        cuda.atomic.add(ledger, 2, sh[1, 0])
        cuda.atomic.add(ledger, 5, sh[2, 0])


@cuda.jit
def _uniform_kernel(c, c_out, alpha, kdt, beta, kind0, kind1, kind2, v0, v1, v2, zchunk, ledger):
    # 3-D launch: (x, y) from the block grid, each thread walks ``zchunk`` planes of its column
    # (no integer division, neighbours along z come from the planes just read, mostly in cache)
    nz, ny, nx = c.shape
    x = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    y = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    z0 = cuda.blockIdx.z * zchunk
    bnd = 0.0
    loss = 0.0
    tot = 0.0
    if x < nx and y < ny:
        two = alpha * 0 + 2
        z1 = min(z0 + zchunk, nz)
        for z in range(z0, z1):
            cc = c[z, y, x]
            # same order as the CPU kernel: x−, x+, y−, y+, z−, z+
            s6, b = _neighbour(c, z, y, x, 0, -1, nx, x, kind0, v0, cc, two)
            w, bb = _neighbour(c, z, y, x, 0, 1, nx, x, kind0, v0, cc, two)
            s6 += w
            b += bb
            w, bb = _neighbour(c, z, y, x, 1, -1, ny, y, kind1, v1, cc, two)
            s6 += w
            b += bb
            w, bb = _neighbour(c, z, y, x, 1, 1, ny, y, kind1, v1, cc, two)
            s6 += w
            b += bb
            w, bb = _neighbour(c, z, y, x, 2, -1, nz, z, kind2, v2, cc, two)
            s6 += w
            b += bb
            w, bb = _neighbour(c, z, y, x, 2, 1, nz, z, kind2, v2, cc, two)
            s6 += w
            b += bb
            cn = _uniform_update(cc, s6, alpha, beta)
            c_out[z, y, x] = cn
            bnd += float64(alpha) * b
            loss += float64(kdt) * float64(cc)
            tot += float64(cn)
    _block_sum3(bnd, loss, tot, ledger)


def uniform_step(c, c_out, d_m2_per_s, k_per_s, bc_kind, bc_value, h, dt, ledger):
    """Uniform-coefficient explicit step on the device (see :func:`~nanosim.kernels.explicit.numba_uniform_step`).

    ``bc_kind`` and ``bc_value`` may be host or device arrays of 3; they travel to the kernel as
    scalars (no host-device copy per step). Adds the step's boundary inflow, loss and total to
    ledger slots 0, 2 and 5.
    """
    nz, ny, nx = c.shape
    bx, by = UNIFORM_BLOCK
    blocks = ((nx + bx - 1) // bx, (ny + by - 1) // by, (nz + UNIFORM_Z_CHUNK - 1) // UNIFORM_Z_CHUNK)
    alpha = d_m2_per_s * dt / h**2
    t = c.dtype.type
    bc_kind, bc_value = (a.get() if hasattr(a, "get") else a for a in (bc_kind, bc_value))
    kind = [int(k) for k in np.asarray(bc_kind).reshape(-1)[:3]]
    val = [t(v) for v in np.asarray(bc_value, dtype=np.float64).reshape(-1)[:3]]
    _uniform_kernel[blocks, (bx, by, 1)](c, c_out, t(alpha), t(k_per_s * dt), t(1.0 - 6.0 * alpha - k_per_s * dt),
                                         *kind, *val, UNIFORM_Z_CHUNK, ledger)
