r"""Performance of nanosim's kernels, measured against this machine's memory-bandwidth roof.

:func:`run_benchmarks` measures, in one run,

1. the memory-bandwidth roof (:mod:`.memory`): large copies (NumPy, Numba's threads, a triad;
   a device-to-device copy on the GPU);
2. voxel-updates per second of the transport steps (:mod:`.transport`): the explicit step
   (uniform fast path on every grid size, general kernel on the smallest), the implicit LOD step
   (uniform and general), each with the minimum bytes it must move per update and the fraction
   of the roof that this makes; and the Numba/NumPy speed ratio of each;
3. normals per second of the counter-based random generator (:mod:`.rng`),
4. particle-steps per second of the interstitial particle step (:mod:`.particles`): free
   diffusion and field lookups, Gaussian and variance-matched uniform steps, and (where
   ``import smoldyn`` works) Smoldyn on the same free-diffusion problem,

and returns a list of records (:class:`Record`, as dicts)::

    {"name": "explicit_uniform", "backend": "numba", "dtype": "float32",
     "shape": [256, 256, 256], "value": 1.6e9, "unit": "voxel-updates/s",
     "roof_fraction": 0.55, "bytes_per_update": 8, "seconds": 0.0102, "repeats": 49, ...}

Timing (:func:`time_call`): one warm-up call (Numba compilation and page faults excluded), then
repeats until at least 3 repeats and 0.5 s; the best (shortest) repeat is reported, the median
is kept as ``seconds_median``/``value_median``. GPU work is synchronised inside each repeat.

Goals (:data:`GOALS`) are shown next to the figures they concern, never asserted.

Adding a benchmark: write a generator ``fn(ctx)`` yielding :class:`Record` objects (usually via
``ctx.cases(...)`` and ``ctx.throughput(...)``), decorate it with ``@benchmark("name")`` and import
its module here; it runs after the ones registered before it.

>>> from nanosim.bench import REGISTRY
>>> list(REGISTRY)[:2]
['memory', 'explicit_uniform']
"""

from __future__ import annotations

import sys

import numpy as np

from ..backends import NAMES, BackendUnavailable, get_backend
from .record import REGISTRY, BenchContext, Benchmark, Record, Skip, benchmark, roof_key
from .report import GOALS, Goal, apply_goals, format_shape, format_table, format_value
from .timing import Timing, time_call

# Registration order is run order: the roof first, derived records (speedups) after the kernels.
from . import memory, transport, rng, vasculature, particles, intravascular  # noqa: E402,F401  isort: skip

__all__ = [
    "GOALS", "REGISTRY", "BenchContext", "Benchmark", "Goal", "Record", "Skip", "Timing",
    "apply_goals", "benchmark", "format_table", "resolve_backends", "roof_key", "run_benchmarks",
    "time_call",
]

#: Grid shapes (nz, ny, nx) and timing rule of a full run and of a quick (smoke-test) run.
SHAPES = ((128, 128, 128), (256, 256, 256))
SHAPES_QUICK = ((32, 32, 32),)
TIMING = dict(min_time_s=0.5, min_repeats=3)
TIMING_QUICK = dict(min_time_s=0.02, min_repeats=3)


def resolve_backends(names=None) -> dict:
    """Backends to measure by name: the ones named, or every usable one when ``names`` is None.

    Raises
    ------
    BackendUnavailable
        If a backend named explicitly cannot run here.
    """
    if names is None:
        out = {}
        for n in NAMES:
            try:
                out[n] = get_backend(n)
            except BackendUnavailable:
                pass
        return out
    return {n: get_backend(n) for n in dict.fromkeys(names)}


def _progress_line(rec: Record) -> str:
    frac = "" if rec.roof_fraction is None else f"  ({rec.roof_fraction:.0%} of roof)"
    return (f"nanosim bench: {rec.name:<25} {rec.backend:<6} {rec.dtype:<8} "
            f"{format_shape(rec.shape):>6}  {format_value(rec.value)} {rec.unit}{frac}")


def run_benchmarks(backends=None, quick=False, *, progress=False, only=None) -> list[dict]:
    """Run the registered benchmarks; return their records as dicts (goals applied).

    Parameters
    ----------
    backends : list of str or None
        ``numpy``, ``numba``, ``cupy``; None measures every usable backend.
    quick : bool
        32³ grids, small arrays and short timing: a smoke test of a few seconds.
    progress : bool
        Print one line per measured case on stderr.
    only : list of str or None
        Names of the benchmarks (keys of :data:`REGISTRY`) to run; None runs them all. The
        ``memory`` benchmark always runs when a kernel is compared with the roof.

    Raises
    ------
    BackendUnavailable
        If a backend named in ``backends`` cannot run here.
    """
    ctx = BenchContext(
        backends=resolve_backends(backends), quick=quick,
        shapes=SHAPES_QUICK if quick else SHAPES, dtypes=(np.float32, np.float64),
        **(TIMING_QUICK if quick else TIMING))
    unknown = set(only or ()) - set(REGISTRY)
    if unknown:
        raise ValueError(f"unknown benchmark(s) {sorted(unknown)}: choose from {list(REGISTRY)}")
    names = list(REGISTRY) if only is None else [n for n in REGISTRY if n in set(only) | {"memory"}]
    for name in names:
        for rec in REGISTRY[name].fn(ctx):
            ctx.records.append(rec)
            if progress:
                print(_progress_line(rec), file=sys.stderr, flush=True)
    for name in names:
        if REGISTRY[name].finish is not None:
            REGISTRY[name].finish(ctx)
    ctx.apply_roofs()
    return apply_goals([r.as_dict() for r in ctx.records])
