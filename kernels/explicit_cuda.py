"""CUDA drivers of the explicit transport step (twins of :mod:`nanosim.kernels.explicit`).

One thread per voxel; the physics is the same pointwise source as the CPU kernels
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


@cuda.jit
def _uniform_kernel(c, c_out, alpha, kdt, beta, kind0, kind1, kind2, v0, v1, v2, ledger):
    sh = cuda.shared.array((LEDGER_SIZE, THREADS), float64)
    tid = cuda.threadIdx.x
    nz, ny, nx = c.shape
    i = cuda.grid(1)
    for k in range(LEDGER_SIZE):
        sh[k, tid] = 0.0
    if i < nx * ny * nz:
        x = i % nx
        y = (i // nx) % ny
        z = i // (nx * ny)
        cc = c[z, y, x]
        two = alpha * 0 + 2
        s6 = cc * 0
        bnd = 0.0
        # neighbours along x, y, z with the wall rule of the CPU kernel
        for a in range(3):
            n = nx if a == 0 else (ny if a == 1 else nz)
            q = x if a == 0 else (y if a == 1 else z)
            kind = kind0 if a == 0 else (kind1 if a == 1 else kind2)
            v = v0 if a == 0 else (v1 if a == 1 else v2)
            for side in range(2):
                if side == 0:
                    qn = q - 1
                    inside = q > 0
                    wrap = n - 1
                else:
                    qn = q + 1
                    inside = q < n - 1
                    wrap = 0
                if inside or kind == 1:
                    if not inside:
                        qn = wrap
                    if a == 0:
                        s6 += c[z, y, qn]
                    elif a == 1:
                        s6 += c[z, qn, x]
                    else:
                        s6 += c[qn, y, x]
                elif kind == 2:
                    s6 += two * v - cc
                    bnd += 2.0 * float64(alpha) * (float64(v) - float64(cc))
                else:
                    s6 += cc
        cn = _uniform_update(cc, s6, alpha, beta)
        c_out[z, y, x] = cn
        sh[0, tid] = bnd
        sh[2, tid] = float64(kdt) * float64(cc)
        sh[5, tid] = float64(cn)
    _block_reduce_add(sh, tid, ledger)


def uniform_step(c, c_out, d_m2_per_s, k_per_s, bc_kind, bc_value, h, dt, ledger):
    """Uniform-coefficient explicit step on the device (see :func:`~nanosim.kernels.explicit.numba_uniform_step`)."""
    nz, ny, nx = c.shape
    n = nx * ny * nz
    blocks = (n + THREADS - 1) // THREADS
    alpha = d_m2_per_s * dt / h**2
    # coefficients and wall codes travel as kernel arguments (scalars): no host-device copy per step
    t = c.dtype.type
    bc_kind, bc_value = (a.get() if hasattr(a, "get") else a for a in (bc_kind, bc_value))
    kind = [int(k) for k in np.asarray(bc_kind).reshape(-1)[:3]]
    val = [t(v) for v in np.asarray(bc_value, dtype=np.float64).reshape(-1)[:3]]
    _uniform_kernel[blocks, THREADS](c, c_out, t(alpha), t(k_per_s * dt), t(1.0 - 6.0 * alpha - k_per_s * dt),
                                     *kind, *val, ledger)
