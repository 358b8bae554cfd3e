"""Timings of the vessel-network and fluid solvers: blood flow, interstitial pressure, voxelisation.

These solvers run once per scenario (in ``build()``), so they are timed per call, on a size a
user meets: a network of 10⁵ and 10⁶ segments (:func:`~nanosim.flow.network_flow.flow_benchmark_network`),
the interstitial pressure of a tumour sphere in normal tissue at 64³ and 128³ voxels
(:func:`~nanosim.flow.interstitial.interstitial_benchmark_case`), and the voxelisation of a
random network of 10⁴ segments on a 128³ grid. Sparse solves are limited by irregular memory
access and iteration counts rather than by a stream of bytes, so these records carry no roof
fraction; the CuPy records measure the same solvers on the GPU.

Each case is timed once after one untimed warm-up on a small case (compilation, imports), since
a single large solve takes seconds.
"""

from __future__ import annotations

import numpy as np

from .record import Record, Skip, benchmark
from .timing import time_call

FLOW_SEGMENTS = (100_000, 1_000_000)
FLOW_SEGMENTS_QUICK = (2_000,)
PRESSURE_SHAPES = (64, 128)
PRESSURE_SHAPES_QUICK = (16,)
VOXELISE_CASE = (128, 10_000)  # grid edge (voxels), segments
VOXELISE_CASE_QUICK = (24, 100)
VOXEL_SIZE_M = 4e-6


def _once(ctx, fn, be):
    return time_call(fn, sync=be.synchronize, min_time_s=0.0, min_repeats=1)


def _timing_fields(timing) -> dict:
    return {"seconds": timing.best_s, "seconds_median": timing.median_s, "repeats": timing.repeats}


def _solver_backends(ctx):
    """The backends whose sparse solvers differ: SciPy for numpy/numba (one record), CuPy."""
    out = {}
    for name, be in ctx.backends.items():
        key = "cupy" if be.is_gpu else "cpu"
        out.setdefault(key, be)
    return out.values()


@benchmark("network_flow")
def network_flow(ctx):
    """Blood flow in a network (Pries in vivo viscosity, constant haematocrit): segments per second."""
    from ..flow.network_flow import flow_benchmark_network, solve_flow

    sizes = FLOW_SEGMENTS_QUICK if ctx.quick else FLOW_SEGMENTS
    for be in _solver_backends(ctx):
        name = "cupy" if be.is_gpu else "numpy"
        solve_flow(flow_benchmark_network(500, seed=1), backend=name)  # warm-up
        for n in sizes:
            label = f"network_flow {name} {n}"
            try:
                net = flow_benchmark_network(n, seed=0)
                sol = {}
                timing = _once(ctx, lambda: sol.setdefault("s", solve_flow(net, backend=name)), be)
            except Exception as exc:  # one failing size must not hide the others
                ctx.warn(f"{label}: failed ({type(exc).__name__}: {exc})")
                continue
            yield Record("network_flow", name, "float64", [int(net.n_segments)],
                         net.n_segments / timing.best_s, "segments/s",
                         extra={**_timing_fields(timing), "nodes": int(net.n_nodes), "conservation_error": float(sol["s"].conservation_error),
                                "solver": "sparse pressure solve, Pries in vivo viscosity"})


@benchmark("interstitial_pressure")
def interstitial_pressure(ctx):
    """Interstitial fluid pressure (Jacobi-PCG on the voxel grid): voxels per second of the whole solve."""
    from ..flow.interstitial import interstitial_benchmark_case, solve_interstitial_pressure

    sizes = PRESSURE_SHAPES_QUICK if ctx.quick else PRESSURE_SHAPES
    for be in _solver_backends(ctx):
        name = "cupy" if be.is_gpu else "numpy"
        warm = interstitial_benchmark_case(8)
        solve_interstitial_pressure(**warm, backend=name)
        for n in sizes:
            label = f"interstitial_pressure {name} {n}^3"
            try:
                case = interstitial_benchmark_case(n)
                sol = {}
                timing = _once(ctx, lambda: sol.setdefault("s", solve_interstitial_pressure(**case, backend=name)), be)
            except Exception as exc:
                ctx.warn(f"{label}: failed ({type(exc).__name__}: {exc})")
                continue
            s = sol["s"]
            yield Record("interstitial_pressure", name, "float64", [n, n, n], n**3 / timing.best_s, "voxels/s",
                         extra={**_timing_fields(timing), "iterations": int(s.iterations), "residual": float(s.residual),
                                "balance_error": float(s.balance_error), "solve_s": float(s.solve_s),
                                "assemble_s": float(s.assemble_s)})


def random_network(n_segments: int, box_m: float, seed: int = 0):
    """Random straight segments of 2–8 µm radius inside a cube (a voxelisation load, not physiology)."""
    from ..vasculature import VesselNetwork

    rng = np.random.default_rng(seed)
    a = rng.random((n_segments, 3)) * box_m
    d = rng.normal(size=(n_segments, 3))
    d /= np.linalg.norm(d, axis=1)[:, None]
    length = rng.uniform(20e-6, 60e-6, n_segments)
    b = np.clip(a + d * length[:, None], 0, box_m)
    pos = np.empty((2 * n_segments, 3))
    pos[0::2], pos[1::2] = a, b
    nodes = np.arange(2 * n_segments).reshape(-1, 2)
    keep = np.linalg.norm(b - a, axis=1) > 1e-6
    return VesselNetwork(node_pos_m=pos, seg_nodes=nodes[keep], seg_radius_m=rng.uniform(2e-6, 8e-6, n_segments)[keep])


@benchmark("voxelise")
def voxelise_network(ctx):
    """Voxel maps of a random network (volume fraction, wall area, nearest segment, distance)."""
    from ..geometry import Grid
    from ..vasculature.voxelise import voxelise

    n, segs = VOXELISE_CASE_QUICK if ctx.quick else VOXELISE_CASE
    grid = Grid((n, n, n), VOXEL_SIZE_M)
    net = random_network(segs, n * VOXEL_SIZE_M, seed=0)
    small = random_network(20, 8 * VOXEL_SIZE_M, seed=1)
    for be in ctx.backends.values():
        label = f"voxelise {be.name} {n}^3"
        if be.name == "numpy" and not ctx.quick:
            ctx.warn(f"{label}: skipped (the NumPy reference is for tests, too slow at this size)")
            continue
        try:
            voxelise(small, Grid((8, 8, 8), VOXEL_SIZE_M), backend=be)  # warm-up (compilation)
            timing = _once(ctx, lambda: voxelise(net, grid, backend=be), be)
        except Skip:
            continue
        except Exception as exc:
            ctx.warn(f"{label}: failed ({type(exc).__name__}: {exc})")
            continue
        yield Record("voxelise", be.name, "float64", [n, n, n], n**3 / timing.best_s, "voxels/s",
                     extra={**_timing_fields(timing), "segments": int(net.n_segments)})
