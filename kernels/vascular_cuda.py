"""CUDA twin of the intravascular packet step of :mod:`nanosim.kernels.vascular`.

One thread per packet calls the ``.cuda`` form of :func:`nanosim.kernels.vascular.move_packet`,
the function the Numba kernel calls, on the same Philox streams: paths (segments, positions,
states) equal the CPU kernel's up to FMA contraction of ``s + v·t`` by the device compiler, and
weights up to the device ``exp`` (a few ulp). Per-segment losses are added to the float64 ledger
with ``cuda.atomic.add`` (:func:`atomic_deposit`, the ``.cuda`` form of
:data:`nanosim.kernels.vascular.deposit`), so they agree with the CPU sums to round-off
(summation order). The per-call totals are summed in shared memory per block and added to a
five-entry float64 array with one atomic per block and entry.

Works on CuPy arrays (CUDA array interface) and Numba device arrays; under
``NUMBA_ENABLE_CUDASIM=1`` on NumPy arrays in Numba's simulator. This module imports
``numba.cuda`` and is therefore imported only on demand.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from . import vascular as V

__all__ = ["traverse", "atomic_deposit", "THREADS_PER_BLOCK"]

#: Block size of the packet kernel (fixed: it sizes the shared-memory reduction).
THREADS_PER_BLOCK = 128
_N_TOTALS = len(V.TOTALS)


@cuda.jit(device=True, inline=True)
def atomic_deposit(acc, row, j, x):
    """``acc[j] += x`` atomically (float64; ``row`` is ignored: one shared ledger)."""
    cuda.atomic.add(acc, j, x)


_move = V.move_packet.cuda


@cuda.jit
def _kernel(seg, s, weight, state, ids, radius, per_packet, r_scalar, down, speed, length,
            seg_radius, node_exit, ptr, out_seg, out_cum, rate, dt, seed, step, max_cross, acc,
            totals):
    part = cuda.shared.array((_N_TOTALS, THREADS_PER_BLOCK), numba.float64)
    i = cuda.grid(1)
    t = cuda.threadIdx.x
    for r in range(_N_TOTALS):
        part[r, t] = 0.0
    if i < seg.shape[0]:
        e, c, o = _move(i, seg, s, weight, state, ids, radius, per_packet, r_scalar, down, speed,
                        length, seg_radius, node_exit, ptr, out_seg, out_cum, rate, dt, seed,
                        step, max_cross, acc, 0)
        part[0, t] = e
        part[1, t] = c
        if o == V.OUTCOME_LODGED:
            part[2, t] = 1.0
        elif o == V.OUTCOME_STUCK:
            part[3, t] = 1.0
        elif o == V.OUTCOME_CAPPED:
            part[4, t] = 1.0
    cuda.syncthreads()
    half = THREADS_PER_BLOCK // 2
    while half > 0:
        if t < half:
            for r in range(_N_TOTALS):
                part[r, t] += part[r, t + half]
        cuda.syncthreads()
        half //= 2
    if t < _N_TOTALS and part[t, 0] != 0.0:
        cuda.atomic.add(totals, t, part[t, 0])


def _device_asarray(a):
    """Device arrays pass through; host arrays are copied to the device (under the simulator
    NumPy arrays pass through as well)."""
    if hasattr(a, "__cuda_array_interface__") or (numba.config.ENABLE_CUDASIM
                                                   and isinstance(a, np.ndarray)):
        return a
    return cuda.to_device(np.ascontiguousarray(a))


def _device_graph(graph):
    """The graph's kernel arrays on the device, copied once per graph."""
    if "cuda" not in graph._device:
        graph._device["cuda"] = tuple(_device_asarray(a) for a in graph.kernel_arrays())
    return graph._device["cuda"]


def traverse(seg, s, weight, state, ids, radius, step, *, dt_s, seed, graph, rate_per_s,
             extravasated, max_crossings=V.MAX_CROSSINGS, stream=0):
    """One step of intravascular transport on the device (in place); arguments and result as
    :func:`nanosim.kernels.vascular.numba_traverse`.

    Parameters
    ----------
    seg, s, weight, state, ids, extravasated : device arrays
        CuPy or Numba device arrays (NumPy arrays under the CUDA simulator). ``ids`` of another
        dtype than int64 are converted (a copy).
    radius, rate_per_s : scalar or array
        Arrays should be on the device; host arrays are copied on every call.
    stream : int or numba stream
        A Numba stream or a raw ``cudaStream_t`` pointer (0: the default stream).

    Returns
    -------
    dict
        The totals of :data:`nanosim.kernels.vascular.TOTALS`; reading them synchronises the
        stream (one 40-byte copy).

    Notes
    -----
    The graph is copied to the device on first use and cached on the :class:`FlowGraph`; a
    rebuilt graph is copied again. Value checks needing a device-to-host copy (ids and segments
    in range, non-negative rates) are done only for host arrays.
    """
    kw = dict(dt_s=dt_s, seed=seed, graph=graph, rate_per_s=rate_per_s,
              extravasated=extravasated, max_crossings=max_crossings)
    ids, radius, per_packet, r_scalar, rate, dt, seed64, step, max_cross = V._prepare(
        seg, s, weight, state, ids, radius, step, asarray=_device_asarray, **kw)
    n = seg.shape[0]
    if n == 0:
        return V._totals(0.0, 0, 0, 0, 0)
    if not isinstance(stream, int):
        st = stream
    elif stream:
        st = cuda.external_stream(stream)
    else:
        st = cuda.default_stream()
    totals = cuda.to_device(np.zeros(_N_TOTALS), stream=st)
    blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    _kernel[blocks, THREADS_PER_BLOCK, st](seg, s, weight, state, ids, radius, per_packet,
                                           r_scalar, *_device_graph(graph), rate, dt, seed64,
                                           step, max_cross, extravasated, totals)
    out = totals.copy_to_host(stream=st)
    st.synchronize()
    return V._totals(*out)
