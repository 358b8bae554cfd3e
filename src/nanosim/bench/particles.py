r"""Particle-steps per second of the interstitial particle step, and Smoldyn side by side.

One *particle-step* is one carrier particle advanced by one time step
(:func:`nanosim.kernels.particles.step_particles`). The problems (full run; quick run in
brackets):

``particles_free_<distribution>``
    free diffusion of 10⁷ [2·10⁴] particles in a box of 1.28 mm [0.32 mm] with reflecting walls,
    one diffusivity (D₀ = 6.57·10⁻¹² m²/s, a 100 nm carrier in water at 37 °C, PHYSICS.md §5),
    Δt = 0.5 s (σ = √(2D₀Δt) = 2.6 µm per axis), no velocity; particles start uniformly
    spread, in random order (the order does not matter here).
``particles_field_<distribution>``
    the same particles in a tissue on a 128³ [32³] grid of 10 µm voxels: a region map (liver,
    a tumour ball of radius 0.3·n, its necrotic core of radius 0.1·n) with a diffusivity per
    region (D₀ × 0.5, 0.2, 0.8), and an interstitial velocity field (float32, radial outflow
    from the tumour, 0.1 µm/s at its rim), read at each particle's voxel. The particles are
    kept in voxel-row order (:func:`~nanosim.kernels.particles.voxel_row_order`), as a
    simulation that re-sorts them every few tens of steps does.
``particles_field_unsorted_uniform``
    the same in random particle order: every lookup is a random read of the 24 MiB field
    (the worst case, where the caches do not help).
``particles_field_trilinear_uniform``
    the same in row order with trilinear interpolation of the velocity (eight voxels per
    particle; what the carrier model uses).
``particles_sort``
    particles per second re-sorted into row order: :func:`voxel_row_order` plus applying the
    permutation to x, y, z, ids and state.
``particles_free_smoldyn`` and ``particles_free_uniform_vs_smoldyn``
    (benchmark ``smoldyn``, only where ``import smoldyn`` works) the free-diffusion problem in
    Smoldyn (same molecule count, D, Δt, box with reflecting walls, uniform initial spread)
    through its Python API, and nanosim's speed (uniform steps, float32, the best backend
    measured) over Smoldyn's.

Each timed call is one step (the step index advances, so each draws new random numbers).
Positions are float32 or float64 (the record's ``dtype``); ids int64, state uint8.

Minimum traffic per particle-step (``s`` = itemsize of the positions): read and write x, y, z
(``6s``), read the id (8) and the state (1): ``6s + 9`` bytes, 33 for float32 and 57 for
float64; the particle arrays are updated in place, so no write-allocate read is added. The
field lookups are not counted (in row order they come from cache, like a stencil's
neighbours). With uniform steps and a field lookup the step is compute-bound on a CPU (about
40 instructions per particle, AVX-512), so the roof fraction says how far it is from the
memory limit, not how well it uses the cores.

Goals (shown, not asserted): ``particles_field_uniform`` with Numba ≥ 2·10⁸ particle-steps/s
on 2 CPU cores, and with CuPy ≥ 10¹⁰ on an H100-class GPU. The NumPy reference runs the free
problems only, at 10⁶ [2·10⁴] particles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import os
import sys
import time

import numpy as np

from ..geometry.grid import Grid
from ..kernels import particles as P
from .record import Record, Skip, benchmark

#: Particles of the full and the quick run, and of the NumPy reference in a full run.
COUNT = 10_000_000
COUNT_QUICK = 20_000
COUNT_NUMPY = 1_000_000
#: Grid edge (voxels) of the full and the quick run, voxel size (m).
EDGE = 128
EDGE_QUICK = 32
VOXEL_M = 10e-6
#: Diffusivity (m²/s), time step (s), region factors (liver, tumour, necrotic core).
D0_M2_PER_S = 6.57e-12
DT_S = 0.5
REGION_FACTORS = (0.5, 0.2, 0.8)
#: Interstitial velocity at the tumour rim (m/s).
U_RIM_M_PER_S = 1e-7
SEED = 2026
#: Smoldyn: timed steps after one untimed step (its set-up).
SMOLDYN_STEPS = 3

UNIT = "particle-steps/s"
GOALS = {("particles_field_uniform", "numba", "float32"): (2e8, ">= 2e8 /s (2 CPU cores)"),
         ("particles_field_uniform", "cupy", "float32"): (1e10, ">= 1e10 /s (H100-class GPU)")}


def bytes_per_step(dtype) -> int:
    """Minimum bytes one particle-step moves: x, y, z read and written, id and state read."""
    return 6 * np.dtype(dtype).itemsize + 8 + 1


def problem_sizes(quick: bool, backend_name: str) -> tuple[int, int]:
    """(particles, grid edge) of a run."""
    if quick:
        return COUNT_QUICK, EDGE_QUICK
    return (COUNT_NUMPY if backend_name == "numpy" else COUNT), EDGE


@functools.lru_cache(maxsize=4)
def tissue(edge: int):
    """Host arrays of the field problem: grid, region map (uint8), D table, velocity (float32)."""
    grid = Grid((edge, edge, edge), VOXEL_M)
    zc, yc, xc = grid.mesh_m()
    centre = 0.5 * edge * VOXEL_M
    dx, dy, dz = (np.broadcast_to(c - centre, grid.shape_zyx) for c in (xc, yc, zc))
    r = np.sqrt(dx**2 + dy**2 + dz**2)
    rim = 0.3 * edge * VOXEL_M
    region = np.where(r < 0.1 * edge * VOXEL_M, 2, np.where(r < rim, 1, 0)).astype(np.uint8)
    table = D0_M2_PER_S * np.array(REGION_FACTORS)
    # outflow: grows linearly inside the tumour, falls off as 1/r² outside it
    speed = U_RIM_M_PER_S * np.where(r < rim, r / rim, (rim / np.maximum(r, 1e-30)) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = [np.where(r > 0, d / r, 0.0) for d in (dx, dy, dz)]
    velocity = np.stack([speed * e for e in unit]).astype(np.float32)
    return grid, region, table, velocity


def initial_positions(n: int, grid, seed: int = SEED) -> np.ndarray:
    """(3, n) float64 positions spread uniformly in the box (host)."""
    lo, hi = np.array(grid.origin_m), np.array(grid.upper_m)
    return lo[:, None] + np.random.default_rng(seed).random((3, n)) * (hi - lo)[:, None]


def _cupy_stream() -> int:
    """CuPy's current stream, or 0 where CuPy is absent (the CUDA simulator in the tests)."""
    if importlib.util.find_spec("cupy") is None:
        return 0
    import cupy

    return cupy.cuda.get_current_stream().ptr


def stepper(be):
    """The step function of a backend: ``f(x, y, z, ids, state, step, **options)``."""
    if be.is_gpu:
        from ..kernels import particles_cuda

        return functools.partial(particles_cuda.step_particles, stream=_cupy_stream())
    return functools.partial(P.step_particles, be.name)


def _particle_arrays(be, pos, dtype):
    n = pos.shape[1]
    xyz = [be.asarray(pos[k], dtype) for k in range(3)]
    ids = be.asarray(np.arange(n, dtype=np.int64))
    return xyz, ids, be.asarray(np.full(n, P.STATE_TISSUE, np.uint8))


def _step_record(ctx, name, be, dtype, n, options, pos, **extra) -> Record:
    """Time one step per call of ``n`` particles at ``pos`` and make the record."""
    xyz, ids, state = _particle_arrays(be, pos, dtype)
    step = stepper(be)
    counter = iter(range(1 << 62))

    def call():
        step(*xyz, ids, state, next(counter), dt_s=DT_S, seed=SEED, **options)

    timing = ctx.time(call, be)
    rec = ctx.throughput(name, be, dtype, (n,), timing, items=n, unit=UNIT,
                         bytes_per_item=bytes_per_step(dtype),
                         bytes_model="read+write x, y, z; read id (int64), state (uint8)",
                         dt_s=DT_S, diffusivity_m2_per_s=D0_M2_PER_S, **extra)
    goal = GOALS.get((name, be.name, np.dtype(dtype).name))
    if goal is not None and not ctx.quick:
        rec.extra["goal"] = goal[1]
        rec.extra["goal_met"] = bool(rec.value >= goal[0])
    return rec


def _free_case(ctx, be, dtype, dist):
    n, edge = problem_sizes(ctx.quick, be.name)
    grid = Grid((edge, edge, edge), VOXEL_M)
    options = dict(grid=grid, diffusivity_m2_per_s=D0_M2_PER_S, step_distribution=dist)
    return _step_record(ctx, f"particles_free_{dist}", be, dtype, n, options,
                        initial_positions(n, grid), step_distribution=dist,
                        problem=(f"free diffusion, {edge * VOXEL_M * 1e3:g} mm box, "
                                 "reflecting walls"),
                        box_m=edge * VOXEL_M)


def _field_options(be, edge, dist, interpolation="nearest"):
    grid, region, table, velocity = tissue(edge)
    return grid, dict(grid=grid, region=be.asarray(region), region_diffusivity_m2_per_s=table,
                      velocity_m_per_s=be.asarray(velocity), velocity_interpolation=interpolation,
                      step_distribution=dist)


def _field_case(ctx, be, dtype, dist, order="rows", interpolation="nearest"):
    n, edge = problem_sizes(ctx.quick, be.name)
    grid, options = _field_options(be, edge, dist, interpolation)
    pos = initial_positions(n, grid)
    if order == "rows":
        pos = pos[:, P.voxel_row_order(*pos, grid)]
    name = {("rows", "nearest"): f"particles_field_{dist}",
            ("random", "nearest"): f"particles_field_unsorted_{dist}",
            ("rows", "trilinear"): f"particles_field_trilinear_{dist}"}[(order, interpolation)]
    return _step_record(ctx, name, be, dtype, n, options, pos, step_distribution=dist,
                        particle_order="voxel rows" if order == "rows" else "random",
                        velocity_interpolation=interpolation,
                        problem=(f"{edge}^3 grid of {VOXEL_M * 1e6:g} um voxels: 3-region D table "
                                 "(uint8 map) + float32 velocity field"))


def _sort_case(ctx, be, dtype):
    n, edge = problem_sizes(ctx.quick, be.name)
    grid = tissue(edge)[0]
    pos = initial_positions(n, grid)
    xyz = [np.ascontiguousarray(pos[k], dtype) for k in range(3)]
    ids = np.arange(n, dtype=np.int64)
    state = np.full(n, P.STATE_TISSUE, np.uint8)

    def resort():  # from the same random order every time
        order = P.voxel_row_order(*xyz, grid)
        for a in (*xyz, ids, state):
            a.take(order)

    timing = ctx.time(resort, be)
    return ctx.throughput("particles_sort", be, dtype, (n,), timing, items=n, unit="particles/s",
                          path="voxel_row_order + take() of x, y, z, ids, state",
                          grid_rows=edge * edge)


def _on(ctx, names):
    """The context restricted to the backends in ``names`` (records and warnings shared)."""
    return dataclasses.replace(ctx, backends={k: v for k, v in ctx.backends.items() if k in names})


@benchmark("particles")
def particle_steps(ctx):
    """Interstitial particle steps: free diffusion and field lookups, Gaussian and uniform steps."""
    one = ((0,),)  # the particle count depends on the backend (problem_sizes)
    for dist in ("uniform", "gaussian"):
        yield from ctx.cases(f"particles_free_{dist}", lambda c, b, d, s: _free_case(c, b, d, dist),
                             shapes=one, dtypes=(np.float32, np.float64))
    compiled = _on(ctx, ("numba", "cupy"))  # the NumPy reference: free problems only
    for dist in ("uniform", "gaussian"):
        yield from compiled.cases(f"particles_field_{dist}",
                                  lambda c, b, d, s: _field_case(c, b, d, dist),
                                  shapes=one, dtypes=(np.float32,))
    yield from compiled.cases("particles_field_unsorted_uniform",
                              lambda c, b, d, s: _field_case(c, b, d, "uniform", order="random"),
                              shapes=one, dtypes=(np.float32,))
    yield from compiled.cases("particles_field_trilinear_uniform",
                              lambda c, b, d, s: _field_case(c, b, d, "uniform",
                                                             interpolation="trilinear"),
                              shapes=one, dtypes=(np.float32,))
    yield from _on(ctx, ("numba",)).cases("particles_sort", lambda c, b, d, s: _sort_case(c, b, d),
                                          shapes=one, dtypes=(np.float32,))


# --------------------------------------------------------------------------------------------
# Smoldyn side by side
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet():
    """Send what C code writes to file descriptors 1 and 2 to /dev/null for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(devnull, fd)
        yield
    finally:
        for fd, old in zip((1, 2), saved):
            os.dup2(old, fd)
            os.close(old)
        os.close(devnull)


def smoldyn_free_rate(n: int, steps: int = SMOLDYN_STEPS, *, edge: int = EDGE, seed: int = SEED):
    """Smoldyn's particle-steps per second on the free-diffusion problem (Python API).

    Builds a Smoldyn simulation in µm and s (Smoldyn is unit-free): a cube of
    ``edge × 10 µm`` with reflecting boundaries (``boundary_type="r"``), one species with
    ``difc = D₀`` in µm²/s, ``n`` molecules placed uniformly in the box by Smoldyn; runs one
    untimed step (Smoldyn sets up its structures on the first), then ``steps`` timed steps of
    ``Δt``. Graphics off.

    Returns
    -------
    dict
        ``rate`` (particle-steps/s), ``seconds`` (the timed steps), ``setup_s``, ``version``.

    Raises
    ------
    Skip
        Where ``import smoldyn`` fails.
    """
    try:
        import smoldyn
    except Exception as exc:  # noqa: BLE001 - an import that fails in any way means "absent"
        raise Skip(f"Smoldyn is not importable ({type(exc).__name__}: {exc}); install it with "
                   "pip install 'smoldyn<=2.74' (2.76's wheel only works on CPython 3.10)") from exc
    side_um = edge * VOXEL_M * 1e6
    d_um2 = D0_M2_PER_S * 1e12
    with _quiet():  # Smoldyn's C library prints progress on stdout (it would spoil --json)
        t0 = time.perf_counter()
        sim = smoldyn.Simulation(low=[0.0] * 3, high=[side_um] * 3, boundary_type="r",
                                 log_level=5, seed=seed)
        species = sim.addSpecies("carrier", difc=d_um2, color="red")
        species.addToSolution(n, lowpos=[0.0] * 3, highpos=[side_um] * 3)
        sim.run(stop=DT_S, dt=DT_S, display=False, quit_at_end=True, log_level=5)
        t1 = time.perf_counter()
        sim.runUntil(stop=(1 + steps) * DT_S, dt=DT_S, display=False)
        t2 = time.perf_counter()
    version = getattr(smoldyn, "__version__", None) or str(smoldyn._smoldyn.getVersion())
    return {"rate": n * steps / (t2 - t1), "seconds": t2 - t1, "setup_s": t1 - t0,
            "version": version}


@benchmark("smoldyn")
def smoldyn_side_by_side(ctx):
    """Smoldyn on the free-diffusion problem (optional), and nanosim's speed over it."""
    n = COUNT_QUICK if ctx.quick else COUNT
    edge = EDGE_QUICK if ctx.quick else EDGE
    try:
        res = smoldyn_free_rate(n, 1 if ctx.quick else SMOLDYN_STEPS, edge=edge)
    except Skip as exc:
        ctx.warn(f"particles_free_smoldyn: skipped ({exc})")
        return
    steps = 1 if ctx.quick else SMOLDYN_STEPS
    rec = Record("particles_free_smoldyn", "smoldyn", "float64", (n,), res["rate"], UNIT,
                 extra={"seconds": res["seconds"], "seconds_median": res["seconds"], "repeats": 1,
                        "value_median": res["rate"], "timed_steps": steps,
                        "setup_s": res["setup_s"], "smoldyn_version": res["version"],
                        "threads": 1, "dt_s": DT_S, "diffusivity_m2_per_s": D0_M2_PER_S,
                        "box_m": edge * VOXEL_M,
                        "problem": "free diffusion, reflecting walls, uniform initial spread"})
    yield rec
    ours = [r for r in ctx.records if r.name == "particles_free_uniform" and r.dtype == "float32"
            and tuple(r.shape) == (n,)]
    if ours:
        best = max(ours, key=lambda r: r.value)
        yield Record("particles_free_uniform_vs_smoldyn", best.backend, best.dtype, (n,),
                     best.value / rec.value, "x",
                     extra={"baseline": "smoldyn", "nanosim_value": best.value,
                            "smoldyn_value": rec.value, "value_unit": UNIT,
                            "note": "nanosim uniform steps on all cores; Smoldyn one thread, "
                                    "Gaussian steps drawn from its lookup table (gtable)"})
