"""Fused conjugate-gradient passes for a CSR matrix on the CPU (Numba ``prange``).

The Jacobi-preconditioned conjugate gradients of :mod:`nanosim.flow.interstitial` written as
three passes over the vectors per iteration instead of NumPy's nine or ten (a matrix product, two
dot products, a norm and four vector updates, each a pass of its own):

1. :func:`matvec_dot` — ``q = A d`` and ``d·q``;
2. :func:`update` — ``x += α d``, ``r −= α q``, ``z = r / diag`` and the sums ``r·z``, ``r·r``;
3. :func:`direction` — ``d = z + β d``.

The iterates are those of the NumPy loop up to the order of the floating-point sums (here one
partial sum per thread, there NumPy's pairwise sums), so the two solutions agree within the
solver's tolerance, not bit for bit.
"""

from __future__ import annotations

import numba
from numba import prange

from ._compile import NJIT_OPTIONS


@numba.njit(parallel=True, **NJIT_OPTIONS)
def matvec_dot(indptr, indices, data, d, q):
    """``q = A d`` for the CSR matrix ``(indptr, indices, data)``; returns ``d·q``."""
    s = 0.0
    for i in prange(q.shape[0]):
        acc = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            acc += data[k] * d[indices[k]]
        q[i] = acc
        s += d[i] * acc
    return s


@numba.njit(parallel=True, **NJIT_OPTIONS)
def update(x, r, z, d, q, dinv, alpha):
    """``x += α d``, ``r −= α q``, ``z = r·dinv``; returns ``(r·z, r·r)``."""
    rz = 0.0
    rr = 0.0
    for i in prange(x.shape[0]):
        x[i] += alpha * d[i]
        ri = r[i] - alpha * q[i]
        r[i] = ri
        zi = ri * dinv[i]
        z[i] = zi
        rz += ri * zi
        rr += ri * ri
    return rz, rr


@numba.njit(parallel=True, **NJIT_OPTIONS)
def direction(d, z, beta):
    """``d = z + β d`` in place."""
    for i in prange(d.shape[0]):
        d[i] = z[i] + beta * d[i]
