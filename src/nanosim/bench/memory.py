r"""The memory-bandwidth roof: how many bytes per second this machine can stream.

A kernel that must move ``B`` bytes per voxel-update cannot do more than ``roof / B`` updates per
second; its *roof fraction* is ``updates/s × B / roof``. The roof is measured, not looked up:

- ``memory_copy`` numpy: ``np.copyto`` of two float64 arrays of 256 MiB (one thread);
- ``memory_copy`` numba: the same copy as a ``prange`` loop (all Numba threads);
- ``memory_scale`` numba: ``dst = s·src`` (STREAM's scale): the copy's traffic pattern with the
  ordinary stores that the kernels use;
- ``memory_triad`` numba: ``a = b + s·c`` over three 256 MiB arrays (STREAM's triad);
- ``memory_copy`` cupy: a device-to-device copy of two 256 MiB arrays.

Bytes counted are bytes read plus bytes written (2 per copied byte, 3 per triad element byte).
Both copies end up in ``memcpy`` (LLVM turns the ``prange`` loop into one call per thread),
whose non-temporal stores on large arrays write memory without first reading it; scale and
triad use ordinary stores, so they also move an uncounted write-allocate read of the output
(their true traffic is 3/2 and 4/3 of the figure). The CPU roof is the best of the CPU figures,
the GPU roof the cupy copy. Each is measured twice, before and after the
kernels, and the better figure is kept (``samples``: 2); on the CPU the kernels that a goal judges
against the bandwidth are also timed in rounds between bandwidth samples
(:func:`paired_fractions`), and the roof and copy bandwidth are the best figures of all samples
(a shared machine's bandwidth drifts; the best is the conservative reference).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ..backends import get_backend
from .record import benchmark, roof_key

#: Bytes of each array of the roof measurement (full run and quick run).
ARRAY_BYTES = 256 * 2**20
ARRAY_BYTES_QUICK = 64 * 2**20


@numba.njit(parallel=True, cache=True, nogil=True)
def _numba_copy(src, dst):
    for i in prange(src.size):
        dst[i] = src[i]


@numba.njit(parallel=True, cache=True, nogil=True)
def _numba_scale(dst, src, s):
    for i in prange(src.size):
        dst[i] = s * src[i]


@numba.njit(parallel=True, cache=True, nogil=True)
def _numba_triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


def _record(ctx, name, backend, arrays, bytes_per_call, fn, note):
    timing = ctx.time(fn, backend)
    a = arrays[0]
    return ctx.throughput(name, backend, a.dtype, (a.size,), timing, items=bytes_per_call / 1e9,
                          unit="GB/s", method=note, bytes_per_repeat=bytes_per_call,
                          array_MiB=a.nbytes / 2**20)


def _numba_methods(n):
    """The Numba bandwidth methods on fresh arrays of ``n`` float64: ``(name, arrays, bytes per
    call, call, note)`` for the copy, the scale and the triad."""
    src = np.full(n, 1.0)
    dst = np.zeros(n)
    c = np.full(n, 2.0)
    threads = numba.get_num_threads()
    return (("memory_copy", (src, dst), 2 * src.nbytes, lambda: _numba_copy(src, dst),
             f"prange copy loop, compiled to memcpy ({threads} threads)"),
            ("memory_scale", (src, dst), 2 * src.nbytes, lambda: _numba_scale(dst, src, 0.5),
             f"prange dst = s*src, ordinary stores ({threads} threads)"),
            ("memory_triad", (dst, src, c), 3 * src.nbytes, lambda: _numba_triad(dst, src, c, 0.5),
             f"prange a = b + s*c ({threads} threads)"))


def _cpu_cases(ctx, n):
    # the CPU roof is a property of the machine: every CPU method runs whichever CPU backend was
    # asked for, each filed under the backend whose code ran it
    np_be, nb_be = get_backend("numpy"), get_backend("numba")
    methods = _numba_methods(n)
    src, dst = methods[0][1]
    yield _record(ctx, "memory_copy", np_be, (src, dst), 2 * src.nbytes,
                  lambda: np.copyto(dst, src), "np.copyto (one thread)")
    for name, arrays, nbytes, call, note in methods:
        yield _record(ctx, name, nb_be, arrays, nbytes, call, note)


def _gpu_cases(ctx, n):
    be = ctx.backends["cupy"]
    xp = be.xp
    src = xp.full(n, 1.0)
    dst = xp.zeros(n)
    yield _record(ctx, "memory_copy", be, (src, dst), 2 * src.nbytes,
                  lambda: xp.copyto(dst, src), "cupy.copyto (device to device)")


def _roof_now(ctx, n):
    """``(roof, copy)`` in bytes/s measured now on the CPU: the fastest of the Numba copy, scale
    and triad, and the Numba copy alone (arrays allocated for the call and freed after it)."""
    nb_be = get_backend("numba")
    rates = [nbytes / ctx.time(call, nb_be).best_s for _, _, nbytes, call, _ in _numba_methods(n)]
    return max(rates), rates[0]


def paired_fractions(ctx, fn, backend, items, bytes_per_item, rounds=5) -> dict:
    """Roof and copy fractions of ``fn`` measured in ``rounds`` rounds of bandwidth–kernel–bandwidth.

    A virtual machine's bandwidth drifts from minute to minute (on the 2-core test machine the
    triad gave 52 GB/s and 35 GB/s ten minutes apart), so a kernel timed minutes away from the
    run's roof can look better or worse than it is. Here every round times the roof methods
    just before and just after the kernel and divides by the better of the two; the record gets
    the median round (CPU kernels only; ``items`` per call, ``bytes_per_item`` counted as in the
    record). Every bandwidth sample also joins ``ctx.bandwidth_samples``, so the run's roof and
    copy bandwidth are the best measured at any time (:func:`_set_roofs`).
    """
    n = (ARRAY_BYTES_QUICK if ctx.quick else ARRAY_BYTES) // 8
    rows = []
    before = _roof_now(ctx, n)
    ctx.bandwidth_samples.append((roof_key("numba"), *before))
    for _ in range(rounds):
        rate = items / ctx.time(fn, backend).best_s
        after = _roof_now(ctx, n)
        ctx.bandwidth_samples.append((roof_key("numba"), *after))
        roof = max(before[0], after[0])
        copy = max(before[1], after[1])
        rows.append((rate * bytes_per_item / roof, rate * bytes_per_item / copy, rate, roof / 1e9,
                     copy / 1e9))
        before = after
    rows.sort()
    mid = rows[len(rows) // 2]
    return {"paired_roof_fraction": mid[0], "paired_copy_fraction": mid[1],
            "paired_rounds": [dict(zip(("roof_fraction", "copy_fraction", "value", "roof_GBps",
                                        "copy_GBps"), r)) for r in rows]}


def _measure(ctx):
    """Yield ``(roof key, record)`` for every bandwidth method of every device in use."""
    n = (ARRAY_BYTES_QUICK if ctx.quick else ARRAY_BYTES) // 8
    if "numpy" in ctx.backends or "numba" in ctx.backends:
        for rec in _cpu_cases(ctx, n):
            yield roof_key("numba"), rec
    if "cupy" in ctx.backends:
        for rec in _gpu_cases(ctx, n):
            yield roof_key("cupy"), rec


def _set_roofs(ctx, found):
    """Make the best bandwidth of each device its roof; every record's fraction is value / roof.

    The roof (and the copy bandwidth) is the best figure measured at any time in the run: the
    bandwidth records' samples at its start and end and the samples taken beside the goal
    kernels (``ctx.bandwidth_samples``). Taking the best makes every fraction conservative.
    """
    for key in set(k for k, _ in found):
        recs = [r for k, r in found if k == key]
        best = max(recs, key=lambda r: r.value)
        beside = [(roof, copy) for k, roof, copy in ctx.bandwidth_samples if k == key]
        roof = max([best.value * 1e9] + [b[0] for b in beside])
        ctx.roofs[key] = roof
        # the plain copy of the device's compiled backend (numba on the CPU): the "copy
        # bandwidth" that kernels are also compared with (copy_fraction)
        copies = [r.value * 1e9 for r in recs if r.name == "memory_copy" and r.backend != "numpy"]
        if copies:
            ctx.copy_bandwidth[key] = max(copies + [b[1] for b in beside])
        for rec in recs:
            rec.roof_fraction = rec.value * 1e9 / roof
            rec.extra["roof"] = rec is best and best.value * 1e9 >= roof  # not if a sample beat it
            if beside:
                rec.extra["best_beside_kernels_GBps"] = {"roof": max(b[0] for b in beside) / 1e9,
                                                         "copy": max(b[1] for b in beside) / 1e9}


def _remeasure(ctx):
    """Measure the bandwidth again after the kernels and keep the better of the two figures.

    The bandwidth a virtual machine gets varies with its neighbours' load from minute to minute;
    two samples, at the start and at the end of the run, make an accidentally low roof (and so
    flattering roof fractions) less likely.
    """
    found = []
    for key, new in _measure(ctx):
        old = ctx.find(new.name, new.backend, new.dtype, new.shape)
        if old is None:
            continue
        samples = old.extra["samples"] + 1
        if new.value > old.value:
            old.value, old.extra = new.value, new.extra
        old.extra["samples"] = samples
        found.append((key, old))
    _set_roofs(ctx, found)


@benchmark("memory", finish=_remeasure)
def memory_bandwidth(ctx):
    """Memory-bandwidth roof: large copies (and a triad) on every device in use."""
    found = []
    for key, rec in _measure(ctx):
        rec.extra["samples"] = 1
        found.append((key, rec))
        _set_roofs(ctx, found)  # a provisional roof for the progress lines
        yield rec
