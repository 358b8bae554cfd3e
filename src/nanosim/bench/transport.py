r"""Voxel-updates per second of the transport steps, and their fraction of the bandwidth roof.

One *voxel-update* is one voxel advanced by one time step. Each kernel is run on its own
output (ping-pong for the explicit step, in place for the implicit one), so every repeat streams
the whole grid through memory once the grid is larger than the caches.

Minimum traffic per voxel-update (``s`` = itemsize of the field: 4 for float32, 8 for float64;
masks are uint8; each array is counted once per pass, neighbours are assumed to come from cache):

``explicit_uniform`` — the uniform fast path (one diffusivity, one loss rate, 7-point stencil)
    read ``c`` + write ``c_out``: ``2s`` bytes. Its ledger needs Σc (the loss is k dt Σc): the
    numba step is timed as the operator runs its second and later sub-steps, taking Σc from the
    total the previous step returned; ``first_substep_value`` is the rate of a first sub-step,
    which sums its input beside the stencil (same traffic, more arithmetic).
``explicit_uniform_pair`` — two uniform steps in one pass (numba; temporal blocking, the path
    the model takes for two or more sub-steps): read ``c`` + write ``c_out`` once per two
    updates, ``s`` bytes per update. Its ``single_step_roof_fraction`` counts ``2s`` (what one
    step per pass must move for the same updates): the rate as a fraction of what the roof
    allows single steps.
``explicit_general`` — regions, binding, wall exchange and fixed (vessel) voxels
    read ``c``, ``cb``, ``ps``, ``region``, ``fixed``; write ``c_out``, ``cb_out``: ``5s + 2``.
``implicit`` — LOD backward Euler, uniform diffusivity (the precomputed-factorisation path)
    three directional sweeps, each a separate pass that must read and write ``c`` once (a
    sweep needs the whole line of the previous sweep's result, so it cannot start before that
    pass is over): ``3 × 2s``; then the reaction pass reads ``c``, ``cb``, ``region`` and writes
    ``c``, ``cb``: ``4s + 1``. In all ``10s + 1``.
``implicit_general`` — the same with regions, binding, wall exchange and fixed voxels
    each sweep reads ``c``, ``region``, ``fixed`` and writes ``c``: ``3 × (2s + 2)``; the
    reaction reads ``c``, ``cb``, ``ps``, ``region``, ``fixed`` and writes ``c``, ``cb``:
    ``5s + 2``. In all ``11s + 8``.

With ordinary (write-allocate) stores a CPU also reads every line of a freshly written output
array before writing it: ``s`` more bytes per output array (``c_out``, ``cb_out``), so the
explicit uniform step really moves ``3s`` and can reach at most 2/3 of a roof measured with
non-temporal stores. Records of such kernels also carry ``roof_fraction_with_write_allocate``.
In-place passes (the implicit sweeps and reaction) write lines they have just read and pay no
such read.

Scratch lines the kernels keep in cache (the transposed plane of the x-sweep, the Thomas
forward pass) are not counted. The implicit figures are the traffic of the pass structure the
solver has; a solver fusing the x- and y-sweeps of each z-plane in cache and the reaction into
the z-sweep could go down to ``6s + 1`` (see benchmarks/README.md).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..kernels import explicit, implicit
from ..kernels.transport import LEDGER_SIZE
from .memory import paired_fractions
from .record import Record, Skip, benchmark
from .report import GOALS

#: Voxel edge (m), diffusivity (m²/s) and loss rate (1/s) of the benchmark problems.
H_M = 10e-6
D_M2_PER_S = 1e-10
K_PER_S = 1e-3
#: Explicit step (s): D·dt/h² = 0.1, inside the stability limit 1/6.
DT_EXPLICIT_S = 0.1 * H_M**2 / D_M2_PER_S
#: Implicit step (s): 100 times the explicit one (D·dt/h² = 10 per sweep).
DT_IMPLICIT_S = 100 * DT_EXPLICIT_S
#: No-flux walls on every axis.
BC_KIND = (0, 0, 0)

#: Minimum bytes per voxel-update as a function of the itemsize, its description, and the
#: number of field arrays written without being read first (each costs a write-allocate read of
#: ``itemsize`` bytes per update with ordinary stores).
BYTES = {
    "explicit_uniform": (lambda s: 2 * s, "read c, write c_out", 1),
    "explicit_uniform_pair": (lambda s: s, "read c, write c_out, once per two steps", 1),
    "explicit_general": (lambda s: 5 * s + 2,
                         "read c, cb, ps, region (u8), fixed (u8); write c_out, cb_out", 2),
    "implicit": (lambda s: 10 * s + 1,
                 "3 sweeps x (read c, write c) + reaction (read c, cb, region (u8); write c, cb)",
                 0),
    "implicit_general": (lambda s: 11 * s + 8,
                         "3 sweeps x (read c, region, fixed; write c) + reaction (read c, cb, ps, "
                         "region, fixed; write c, cb)", 0),
}


def _kernel_record(ctx, name, be, dtype, shape, step, **extra) -> Record:
    per, model, fresh = BYTES[name]
    s = np.dtype(dtype).itemsize
    timing = ctx.time(step, be)
    return ctx.throughput(name, be, dtype, shape, timing, items=int(np.prod(shape)),
                          unit="voxel-updates/s", bytes_per_item=per(s),
                          write_allocate_bytes=fresh * s, bytes_model=model, **extra)


def _with_paired(ctx, rec, fn, be, items, bytes_per_item):
    """For a record that a goal judges against the bandwidth: measure the bandwidth in rounds
    beside the kernel (:func:`~nanosim.bench.memory.paired_fractions`), which adds those
    samples to the run's roof and copy bandwidth and the per-round fractions to the record.

    The kernel is then judged as the bandwidth is: the copy bandwidth is the best sample of the
    whole run, so the record's ``value`` becomes the best repeat of all the kernel's timing
    windows (its own and the rounds'); ``value_first_window`` keeps its own window's figure. On
    a shared machine one window can fall wholly into a slow spell (2-core Xeon: 3.08 G/s in the
    first window, 3.81-3.90 in each of the five rounds of the same run)."""
    key = (rec.name, rec.backend, rec.dtype, tuple(rec.shape))
    if ctx.quick or be.is_gpu or not any(
            g.field.endswith("fraction") and (g.name, g.backend, g.dtype, g.shape) == key for g in GOALS):
        return rec
    paired = paired_fractions(ctx, fn, be, items, bytes_per_item)
    rec.extra.update(paired)
    rec.extra["value_first_window"] = rec.value
    best = max(r["value"] for r in paired["paired_rounds"])
    if best > rec.value:
        rec.value = best
        rec.extra["seconds"] = items / best
        if "bytes_per_update" in rec.extra:
            rec.extra["achieved_GBps"] = best * rec.extra["bytes_per_update"] / 1e9
        ctx.apply_roof(rec)
    return rec


def _ledger(be):
    return be.zeros(LEDGER_SIZE, np.float64)


def _field(be, shape, dtype, seed=0, explicit=True):
    """A random field in [0.5, 1.5) on the backend: no denormals, no zeros to skip; allocated as
    the model allocates its fields for that scheme (TransportOperator: ``field_zeros`` for the
    explicit stencils, ``zeros`` for the implicit solver)."""
    host = np.random.default_rng(seed).random(shape, dtype=np.dtype(dtype).type)
    host += np.dtype(dtype).type(0.5)
    out = be.field_zeros(shape, dtype) if explicit else be.zeros(shape, dtype)
    out[...] = be.asarray(host)
    return out


def _tissue(shape, dtype, seed=1):
    """Host arrays of a liver-tumour-like grid: three regions, wall exchange, straight vessels.

    Regions: 0 liver, 1 tumour (a ball of radius 0.3·n), 2 necrotic core (radius 0.1·n).
    Vessels (fixed voxels at the plasma value) are straight lines along the three axes at random
    positions, about 2 % of the voxels; ``ps`` (PS/V, 1/s) is non-zero everywhere.
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    n = min(shape)
    z, y, x = np.ogrid[:nz, :ny, :nx]
    r = np.sqrt((z - nz / 2) ** 2 + (y - ny / 2) ** 2 + (x - nx / 2) ** 2)
    region = np.where(r < 0.1 * n, 2, np.where(r < 0.3 * n, 1, 0)).astype(np.uint8)
    fixed = np.zeros(shape, np.uint8)
    lines = max(1, int(0.02 * n * n / 3))
    for _ in range(lines):
        a, b, c = (int(v) for v in rng.integers(0, n, 3))
        fixed[:, a, b] = 1
        fixed[a, :, c] = 1
        fixed[a, b, :] = 1
    ps = np.where(region == 2, 0.0, np.where(region == 1, 2e-3, 1e-3)).astype(dtype)
    tables = (np.array([D_M2_PER_S, 0.6 * D_M2_PER_S, 0.3 * D_M2_PER_S]),  # d (m²/s)
              np.array([K_PER_S, 2 * K_PER_S, 0.0]),  # k (1/s)
              np.array([1e-2, 2e-2, 0.0]),  # kon (1/s)
              np.array([1e-3, 2e-3, 0.0]))  # koff (1/s)
    return region, tables, ps, fixed


def _explicit_kernels(name):
    if name == "cupy":
        from ..kernels import explicit_cuda

        return explicit_cuda.uniform_step, explicit_cuda.explicit_step
    if name == "numba":
        return explicit.numba_uniform_step, explicit.numba_explicit_step
    return explicit.numpy_uniform_step, explicit.numpy_explicit_step


def _implicit_kernels(name):
    if name == "cupy":
        if importlib.util.find_spec("nanosim.kernels.implicit_cuda") is None:
            raise Skip("this install has no CUDA implicit kernel")
        from ..kernels import implicit_cuda

        return implicit_cuda.cuda_implicit_step, implicit_cuda.make_cuda_workspace
    step = implicit.numba_implicit_step if name == "numba" else implicit.numpy_implicit_step
    return step, implicit.make_workspace


def _explicit_uniform_case(ctx, be, dtype, shape):
    uniform_step, _ = _explicit_kernels(be.name)
    bufs = [_field(be, shape, dtype), be.field_zeros(shape, dtype)]
    bc_kind = np.array(BC_KIND, np.int64)  # host: the uniform drivers take wall codes as scalars
    bc_value = np.zeros(3)  # host array: the drivers convert it to the field dtype themselves
    ledger = _ledger(be)
    if be.name != "numba":
        def step():
            uniform_step(bufs[0], bufs[1], D_M2_PER_S, K_PER_S, bc_kind, bc_value, H_M,
                         DT_EXPLICIT_S, ledger)
            bufs.reverse()

        return _kernel_record(ctx, "explicit_uniform", be, dtype, shape, step,
                              path="uniform fast path, 7-point stencil, no-flux walls")

    partial = np.zeros((shape[0], LEDGER_SIZE))
    total = [None]

    def step_summing_input():
        # an operator call's first sub-step: the kernel also sums its input for the loss k dt Σc
        uniform_step(bufs[0], bufs[1], D_M2_PER_S, K_PER_S, bc_kind, bc_value, H_M,
                     DT_EXPLICIT_S, ledger, partial=partial)
        bufs.reverse()

    def step():
        # every later sub-step: Σc is the total the previous step returned
        total[0] = uniform_step(bufs[0], bufs[1], D_M2_PER_S, K_PER_S, bc_kind, bc_value, H_M,
                                DT_EXPLICIT_S, ledger, partial=partial, total_in=total[0])
        bufs.reverse()

    first = ctx.time(step_summing_input, be)
    rec = _kernel_record(ctx, "explicit_uniform", be, dtype, shape, step,
                         path="uniform fast path, 7-point stencil, no-flux walls; input total from "
                              "the previous step (an operator's second and later sub-steps)",
                         first_substep_value=int(np.prod(shape)) / first.best_s,
                         first_substep_note="an operator call's first sub-step, which also sums its "
                                            "input: voxel-updates/s")
    return _with_paired(ctx, rec, step, be, int(np.prod(shape)), BYTES["explicit_uniform"][0](
        np.dtype(dtype).itemsize))


def _explicit_pair_case(ctx, be, dtype, shape):
    bufs = [_field(be, shape, dtype), be.field_zeros(shape, dtype)]
    bc_kind, bc_value = np.array(BC_KIND, np.int64), np.zeros(3)
    ledgers = (_ledger(be), _ledger(be))
    partial = np.zeros((shape[0], LEDGER_SIZE))
    total = [None]

    def pair():
        # the input total from the previous pair, as the operator chains its sub-steps
        total[0] = explicit.numba_uniform_pair_step(bufs[0], bufs[1], D_M2_PER_S, K_PER_S, bc_kind,
                                                    bc_value, H_M, DT_EXPLICIT_S, *ledgers,
                                                    partial=partial, total_in=total[0])
        bufs.reverse()

    per, model, fresh = BYTES["explicit_uniform_pair"]
    s = np.dtype(dtype).itemsize
    timing = ctx.time(pair, be)
    # two voxel-updates per voxel and call
    single = BYTES["explicit_uniform"][0](s)
    rec = ctx.throughput("explicit_uniform_pair", be, dtype, shape, timing, items=2 * int(np.prod(shape)),
                         unit="voxel-updates/s", bytes_per_item=per(s), write_allocate_bytes=fresh * s / 2,
                         bytes_model=model, single_step_bytes_per_update=single,
                         path="two uniform steps per pass (z wavefront, ring of three planes), no-flux walls")
    # judged as single steps: the bytes one step per pass would have to move for these updates
    return _with_paired(ctx, rec, pair, be, 2 * int(np.prod(shape)), single)


def _step_args(be, dtype, region, tables, dt, ps=None, fixed=None, small_on_host=False):
    """The kernels' arguments from ``region`` to ``dt`` on the backend (no source, no flow).

    ``small_on_host``: the per-region tables and the wall codes and values stay host arrays (the
    implicit drivers take them so on every backend); grid-sized arrays always live on the backend.
    """
    dev = be.asarray
    small = np.asarray if small_on_host else dev
    dummy = dev(np.zeros(1, dtype))
    return (dev(region), *(small(np.asarray(t, np.float64)) for t in tables),
            dummy if ps is None else dev(ps), ps is not None,
            dummy, False,  # volumetric source
            dev(np.zeros(1, np.uint8)) if fixed is None else dev(fixed), fixed is not None,
            1.0,  # plasma concentration held by fixed voxels (mol/m³)
            dev(np.zeros((3, 1, 1, 1), dtype)), False,  # face velocities
            small(np.array(BC_KIND, np.int64)), small(np.zeros(3)), H_M, dt)


def _explicit_general_case(ctx, be, dtype, shape):
    _, general_step = _explicit_kernels(be.name)
    region, tables, ps, fixed = _tissue(shape, dtype)
    k_max = float(np.max(tables[1] + tables[2] + tables[3]) + ps.max())
    dt = 0.9 * explicit.explicit_dt_limit(H_M, float(tables[0].max()), k_max_per_s=k_max)
    args = _step_args(be, dtype, region, tables, dt, ps, fixed)
    c = [_field(be, shape, dtype), be.field_zeros(shape, dtype)]
    cb = [_field(be, shape, dtype, seed=2), be.field_zeros(shape, dtype)]
    ledger = _ledger(be)
    extra = {"partial": np.zeros((shape[0] * shape[1], LEDGER_SIZE))} if be.name == "numba" else {}

    def step():
        general_step(c[0], cb[0], c[1], cb[1], *args, ledger, **extra)
        c.reverse()
        cb.reverse()

    return _kernel_record(ctx, "explicit_general", be, dtype, shape, step,
                          path="general kernel: 3 regions, binding, wall exchange, fixed voxels",
                          fixed_fraction=float(fixed.mean()))


def _implicit_record(ctx, name, be, dtype, shape, args, cb, **extra):
    step_fn, make_workspace = _implicit_kernels(be.name)
    c = _field(be, shape, dtype, explicit=False)
    work = make_workspace(shape, dtype)
    ledger = np.zeros(LEDGER_SIZE)  # the implicit drivers sum their ledger on the host
    limit = explicit.explicit_dt_limit(H_M, D_M2_PER_S)
    return _kernel_record(ctx, name, be, dtype, shape, lambda: step_fn(c, cb, *args, work, ledger),
                          dt_over_explicit_limit=DT_IMPLICIT_S / limit, **extra)


def _implicit_case(ctx, be, dtype, shape):
    args = _step_args(be, dtype, np.zeros(shape, np.uint8), ([D_M2_PER_S], [K_PER_S], [0.0], [0.0]),
                      DT_IMPLICIT_S, small_on_host=True)
    return _implicit_record(ctx, "implicit", be, dtype, shape, args, be.zeros(shape, dtype),
                            path="LOD backward Euler, uniform diffusivity, no-flux walls")


def _implicit_general_case(ctx, be, dtype, shape):
    region, tables, ps, fixed = _tissue(shape, dtype)
    args = _step_args(be, dtype, region, tables, DT_IMPLICIT_S, ps, fixed, small_on_host=True)
    return _implicit_record(ctx, "implicit_general", be, dtype, shape, args,
                            _field(be, shape, dtype, seed=2, explicit=False),
                            path="LOD backward Euler: 3 regions, binding, exchange, fixed voxels",
                            fixed_fraction=float(fixed.mean()))


@benchmark("explicit_uniform")
def explicit_uniform(ctx):
    """Explicit 7-point step, uniform fast path, every grid size."""
    yield from ctx.cases("explicit_uniform", _explicit_uniform_case)


@benchmark("explicit_uniform_pair")
def explicit_uniform_pair(ctx):
    """Two explicit uniform steps per pass over memory (numba), every grid size."""
    yield from ctx.cases("explicit_uniform_pair", _explicit_pair_case, backends=("numba",))


@benchmark("explicit_general")
def explicit_general(ctx):
    """Explicit step, general kernel (regions, binding, exchange, fixed voxels), smallest grid."""
    yield from ctx.cases("explicit_general", _explicit_general_case, ctx.shapes[:1])


@benchmark("implicit")
def implicit_uniform(ctx):
    """Implicit LOD step, uniform diffusivity (precomputed factorisation), every grid size."""
    yield from ctx.cases("implicit", _implicit_case)


@benchmark("implicit_general")
def implicit_general(ctx):
    """Implicit LOD step, general path (regions, binding, exchange, fixed voxels), smallest grid."""
    yield from ctx.cases("implicit_general", _implicit_general_case, ctx.shapes[:1])


@benchmark("speedup")
def speedup(ctx):
    """Numba over NumPy speed ratio of each transport step measured on both."""
    for rec in list(ctx.records):
        if rec.backend != "numba" or rec.name not in BYTES:
            continue
        base = ctx.find(rec.name, "numpy", rec.dtype, rec.shape)
        if base is None:
            continue
        yield Record(f"{rec.name}_speedup", "numba", rec.dtype, rec.shape, rec.value / base.value,
                     "x", extra={"baseline": "numpy", "numba_value": rec.value,
                                 "numpy_value": base.value, "value_unit": rec.unit})
