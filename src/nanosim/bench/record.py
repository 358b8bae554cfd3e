"""Benchmark records, the registry of benchmark functions, and the context they run in.

A benchmark is a generator function ``fn(ctx)`` registered with :func:`benchmark`; it yields
:class:`Record` objects, one per measured case, and reads what earlier benchmarks found (the
bandwidth roof, earlier records) from the :class:`BenchContext`. Benchmarks run in registration
order, so the roof is measured before the kernels that are compared with it.
"""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass, field

import numpy as np

from .timing import Timing, time_call


@dataclass
class Record:
    """One measured figure.

    Attributes
    ----------
    name : str
        What was measured (``explicit_uniform``, ``memory_copy``, ...).
    backend : str
        ``numpy``, ``numba`` or ``cupy``.
    dtype : str
        Element type of the data moved (``float32``, ``float64``).
    shape : tuple of int
        Grid or array shape, (nz, ny, nx) for grids.
    value : float
        The figure, in ``unit``.
    unit : str
        Unit of ``value``: ``voxel-updates/s``, ``GB/s`` (1 GB = 1e9 bytes), ``normals/s``, ``x``.
    roof_fraction : float or None
        Bytes moved per second at the minimum traffic of the kernel, divided by the measured
        memory-bandwidth roof of the backend's device; None where no roof applies.
    extra : dict
        Free-form JSON-serialisable fields (``bytes_per_update``, ``repeats``, ``seconds``, ...).
    """

    name: str
    backend: str
    dtype: str
    shape: tuple
    value: float
    unit: str
    roof_fraction: float | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The JSON form: the fixed fields, ``roof_fraction`` where it applies, then ``extra``."""
        d = {"name": self.name, "backend": self.backend, "dtype": str(self.dtype),
             "shape": [int(s) for s in self.shape], "value": float(self.value), "unit": self.unit}
        if self.roof_fraction is not None:
            d["roof_fraction"] = float(self.roof_fraction)
        d.update(self.extra)
        return d


class Skip(Exception):
    """A case that cannot run here (e.g. a kernel this install lacks); reported, not an error."""


def _warn(message: str) -> None:
    print(f"nanosim bench: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: a generator of records, run with a :class:`BenchContext`.

    ``finish``, if given, is called with the context once every benchmark has run (e.g. to
    measure the roof again at the end of the run).
    """

    name: str
    fn: object
    description: str
    finish: object = None


#: Registered benchmarks by name, in registration (= run) order.
REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, *, finish=None):
    """Decorator: register a generator function ``fn(ctx) -> Iterator[Record]`` under ``name``.

    The first line of the function's docstring is its description; ``finish(ctx)`` runs after
    all benchmarks (see :class:`Benchmark`).
    """

    def decorate(fn):
        doc = (fn.__doc__ or name).strip().splitlines()[0]
        REGISTRY[name] = Benchmark(name, fn, doc, finish)
        return fn

    return decorate


def roof_key(backend_name: str) -> str:
    """Which memory the backend's arrays live in: ``cpu`` (numpy, numba) or ``gpu`` (cupy)."""
    return "gpu" if backend_name == "cupy" else "cpu"


@dataclass
class BenchContext:
    """What a benchmark needs: the backends to measure, the sizes, and what was found so far.

    Attributes
    ----------
    backends : dict of str to Backend
        The backends to measure, by name.
    quick : bool
        Smoke-test sizes (32³ grids, small arrays, short timing).
    shapes : tuple of tuple of int
        Grid shapes (nz, ny, nx) of the transport benchmarks.
    dtypes : tuple of numpy dtypes
        Field precisions.
    min_time_s, min_repeats : float, int
        Timing rule of :func:`~nanosim.bench.timing.time_call`.
    roofs : dict of str to float
        Memory-bandwidth roof (bytes/s) of each memory (:func:`roof_key`), set by the bandwidth
        benchmark; roof fractions are computed again (:meth:`apply_roofs`) once it is final.
    copy_bandwidth : dict of str to float
        The plain copy's bandwidth (bytes/s) of each memory (the compiled backend's copy), for
        ``copy_fraction``.
    bandwidth_samples : list of (str, float, float)
        ``(roof key, roof, copy)`` in bytes/s measured between kernels (beside the goal kernels,
        :func:`~nanosim.bench.memory.paired_fractions`); the final roof and copy bandwidth are
        the best of these and of the bandwidth benchmark's own samples.
    records : list of Record
        Records yielded so far, in order.
    warn : callable
        Reports a case that was skipped or failed (to stderr by default).
    """

    backends: dict
    quick: bool
    shapes: tuple
    dtypes: tuple
    min_time_s: float
    min_repeats: int
    roofs: dict = field(default_factory=dict)
    copy_bandwidth: dict = field(default_factory=dict)
    bandwidth_samples: list = field(default_factory=list)
    records: list = field(default_factory=list)
    warn: object = _warn

    def time(self, fn, backend) -> Timing:
        """Time ``fn()`` with the context's rule, synchronising ``backend`` after each call."""
        return time_call(fn, sync=backend.synchronize, min_time_s=self.min_time_s,
                         min_repeats=self.min_repeats)

    def throughput(self, name, backend, dtype, shape, timing: Timing, *, items, unit,
                   bytes_per_item=None, write_allocate_bytes=0, **extra) -> Record:
        """Record ``items`` processed per call as a rate, with its fraction of the roof.

        ``bytes_per_item`` is the least traffic to memory one item needs; with it, the record
        gets ``roof_fraction = rate × bytes_per_item / roof`` (when the roof is known).
        ``write_allocate_bytes`` per item are the extra reads that ordinary stores to freshly
        written output arrays cause on a CPU (see :mod:`nanosim.bench.transport`).
        """
        rate = items / timing.best_s
        ex = {}
        if bytes_per_item is not None:
            ex["bytes_per_update"] = bytes_per_item
            ex["achieved_GBps"] = rate * bytes_per_item / 1e9
            if write_allocate_bytes and not backend.is_gpu:
                ex["write_allocate_bytes_per_update"] = write_allocate_bytes
        ex.update(extra)
        ex.update(seconds=timing.best_s, seconds_median=timing.median_s, repeats=timing.repeats,
                  value_median=items / timing.median_s)
        rec = Record(name, backend.name, np.dtype(dtype).name, tuple(shape), rate, unit, None, ex)
        self.apply_roof(rec)
        return rec

    def apply_roof(self, rec: Record) -> None:
        """Set the roof fraction (and ``roof_GBps``) of ``rec`` from its bytes per update."""
        roof = self.roofs.get(roof_key(rec.backend))
        per = rec.extra.get("bytes_per_update")
        if not roof or per is None:
            return
        rec.roof_fraction = rec.value * per / roof
        rec.extra["roof_GBps"] = roof / 1e9
        wa = rec.extra.get("write_allocate_bytes_per_update")
        if wa:
            rec.extra["roof_fraction_with_write_allocate"] = rec.value * (per + wa) / roof
        single = rec.extra.get("single_step_bytes_per_update")
        if single:
            # a fused kernel's rate against what one step per pass would have to move for it
            rec.extra["single_step_roof_fraction"] = rec.value * single / roof
        copy = self.copy_bandwidth.get(roof_key(rec.backend))
        if copy:
            # against the plain copy alone (the roof is the fastest of copy, scale and triad)
            rec.extra["copy_GBps"] = copy / 1e9
            rec.extra["copy_fraction"] = rec.value * (single or per) / copy

    def apply_roofs(self) -> None:
        """Recompute every record's roof fraction with the final roofs."""
        for rec in self.records:
            self.apply_roof(rec)

    def cases(self, name, case_fn, shapes=None, dtypes=None, backends=None):
        """Yield the record of ``case_fn(ctx, backend, dtype, shape)`` for every combination.

        ``shapes`` and ``dtypes`` default to the context's, ``backends`` (names) to all of the
        context's. A case that raises is reported through
        :attr:`warn` with the reason and left out, so that one broken or missing kernel does not
        hide the others.
        """
        for be in self.backends.values():
            if backends is not None and be.name not in backends:
                continue
            for dtype in dtypes or self.dtypes:
                for shape in shapes or self.shapes:
                    label = f"{name} {be.name} {np.dtype(dtype).name} {'x'.join(map(str, shape))}"
                    rec = None
                    try:
                        rec = case_fn(self, be, dtype, shape)
                    except Skip as exc:
                        self.warn(f"{label}: skipped ({exc})")
                    except Exception as exc:  # noqa: BLE001 - reported, and the run goes on
                        self.warn(f"{label}: failed ({type(exc).__name__}: {exc})")
                    gc.collect()  # free this case's arrays before the next one allocates
                    if rec is not None:
                        yield rec

    def find(self, name, backend, dtype, shape):
        """The latest record of (name, backend, dtype, shape), or None."""
        dtype = np.dtype(dtype).name
        for r in reversed(self.records):
            if (r.name, r.backend, r.dtype, tuple(r.shape)) == (name, backend, dtype, tuple(shape)):
                return r
        return None
