"""``nanosim bench`` particle records: problems, byte model, goals, Smoldyn, and the CuPy path."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nanosim.bench import REGISTRY, run_benchmarks
from nanosim.bench import particles as PB
from nanosim.bench.record import BenchContext, Skip

HAS_SMOLDYN = importlib.util.find_spec("smoldyn") is not None


@pytest.fixture(scope="module")
def records():
    """One quick run of the particle and Smoldyn benchmarks on the two CPU backends."""
    return run_benchmarks(backends=["numpy", "numba"], quick=True, only=["particles", "smoldyn"])


def _by_key(records):
    return {(r["name"], r["backend"], r["dtype"]): r for r in records}


def test_particle_records_cover_the_problems(records):
    recs = _by_key(records)
    n = PB.COUNT_QUICK
    for dist in ("uniform", "gaussian"):
        for backend in ("numpy", "numba"):
            for dtype in ("float32", "float64"):
                rec = recs[(f"particles_free_{dist}", backend, dtype)]
                assert rec["shape"] == [n] and rec["unit"] == "particle-steps/s"
                assert rec["step_distribution"] == dist
        field = recs[(f"particles_field_{dist}", "numba", "float32")]
        assert field["particle_order"] == "voxel rows"
    unsorted = recs[("particles_field_unsorted_uniform", "numba", "float32")]
    assert unsorted["particle_order"] == "random"
    tri = recs[("particles_field_trilinear_uniform", "numba", "float32")]
    assert tri["velocity_interpolation"] == "trilinear"
    assert recs[("particles_sort", "numba", "float32")]["unit"] == "particles/s"
    # the NumPy reference runs the free problems only
    assert not any(r["backend"] == "numpy" and r["name"].startswith("particles_field")
                   for r in records)
    for rec in records:
        if rec["name"].startswith("particles") and rec["unit"] != "x":
            assert rec["value"] > 0 and rec["repeats"] >= (1 if rec["backend"] == "smoldyn" else 3)


def test_particle_bytes_and_roof(records):
    roof = max(r["value"] for r in records if r["name"].startswith("memory_"))
    seen = 0
    for rec in records:
        if rec.get("unit") != "particle-steps/s" or rec["backend"] == "smoldyn":
            continue
        assert rec["bytes_per_update"] == (33 if rec["dtype"] == "float32" else 57)
        assert rec["roof_fraction"] == pytest.approx(rec["value"] * rec["bytes_per_update"]
                                                     / 1e9 / roof)
        assert "write_allocate_bytes_per_update" not in rec  # in-place updates
        seen += 1
    assert seen >= 12
    assert PB.bytes_per_step(np.float32) == 33 and PB.bytes_per_step(np.float64) == 57


def test_goal_is_marked_on_full_runs_only(records):
    assert not any("goal" in r for r in records if r["name"].startswith("particles"))
    ctx = BenchContext(backends={}, quick=False, shapes=(), dtypes=(), min_time_s=0.0,
                       min_repeats=1)

    class FakeTiming:
        best_s = median_s = 0.01
        repeats = 3

    from nanosim.backends import get_backend

    be = get_backend("numba")
    grid = PB.tissue(PB.EDGE_QUICK)[0]
    xyz = PB.initial_positions(16, grid)
    ctx.time = lambda fn, backend: (fn(), FakeTiming)[1]
    rec = PB._step_record(ctx, "particles_field_uniform", be, np.float32, 16,
                          dict(grid=grid, diffusivity_m2_per_s=PB.D0_M2_PER_S), xyz)
    assert rec.extra["goal"].startswith(">= 2e8") and rec.extra["goal_met"] is False  # 1600 /s


def test_field_problem_is_the_documented_tissue():
    grid, region, table, velocity = PB.tissue(PB.EDGE_QUICK)
    assert region.dtype == np.uint8 and set(np.unique(region)) == {0, 1, 2}
    np.testing.assert_allclose(table, PB.D0_M2_PER_S * np.array(PB.REGION_FACTORS))
    assert velocity.shape == (3,) + grid.shape_zyx and velocity.dtype == np.float32
    speed = np.sqrt((velocity.astype(np.float64) ** 2).sum(axis=0))
    assert speed.max() <= PB.U_RIM_M_PER_S * (1 + 1e-6)
    assert speed.max() > 0.9 * PB.U_RIM_M_PER_S
    # σ per axis below half a voxel (the scenario's dt="auto" rule)
    assert np.sqrt(2 * PB.D0_M2_PER_S * PB.DT_S) < 0.5 * PB.VOXEL_M


@pytest.mark.skipif(not HAS_SMOLDYN, reason="smoldyn is not installed (optional)")
def test_smoldyn_side_by_side(records):
    recs = _by_key(records)
    sm = recs[("particles_free_smoldyn", "smoldyn", "float64")]
    assert sm["shape"] == [PB.COUNT_QUICK] and sm["value"] > 0 and sm["smoldyn_version"]
    assert sm["dt_s"] == PB.DT_S and sm["box_m"] == pytest.approx(PB.EDGE_QUICK * PB.VOXEL_M)
    ratio = next(r for r in records if r["name"] == "particles_free_uniform_vs_smoldyn")
    assert ratio["unit"] == "x" and ratio["baseline"] == "smoldyn"
    assert ratio["value"] == pytest.approx(ratio["nanosim_value"] / sm["value"])
    ours = [r["value"] for r in records
            if r["name"] == "particles_free_uniform" and r["dtype"] == "float32"]
    assert ratio["nanosim_value"] == max(ours)


def test_smoldyn_missing_is_skipped_with_a_note(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_smoldyn(name, *args, **kwargs):
        if name == "smoldyn" or name.startswith("smoldyn."):
            raise ImportError("No module named 'smoldyn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_smoldyn)
    with pytest.raises(Skip, match="pip install"):
        PB.smoldyn_free_rate(10, 1, edge=4)
    warnings = []
    ctx = BenchContext(backends={}, quick=True, shapes=(), dtypes=(), min_time_s=0.0,
                       min_repeats=1, warn=warnings.append)
    assert list(REGISTRY["smoldyn"].fn(ctx)) == []
    assert len(warnings) == 1 and "particles_free_smoldyn: skipped" in warnings[0]
    assert "pip install" in warnings[0]


def test_cupy_path_runs_in_the_cuda_simulator():
    # the cupy cases of the benchmark (device arrays, the CUDA kernel on CuPy's stream) on tiny
    # sizes in Numba's CUDA simulator, with NumPy arrays standing in for CuPy's
    script = Path(__file__).with_name("cudasim_particles_bench.py")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    recs = json.loads(res.stdout)
    names = {r["name"] for r in recs}
    assert {"particles_free_uniform", "particles_free_gaussian", "particles_field_uniform",
            "particles_field_gaussian", "particles_field_unsorted_uniform",
            "particles_field_trilinear_uniform"} <= names
    assert all(r["backend"] == "cupy" and r["value"] > 0 for r in recs)
