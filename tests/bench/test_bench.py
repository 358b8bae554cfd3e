"""``nanosim bench``: record form, timing rule, table, goals, and the command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from nanosim.backends import BackendUnavailable, available_backends
from nanosim.bench import (GOALS, REGISTRY, Record, apply_goals, benchmark, format_table,
                           run_benchmarks, time_call)

REQUIRED = {"name": str, "backend": str, "dtype": str, "shape": list, "value": float, "unit": str}
KERNELS = ("explicit_uniform", "explicit_general", "implicit", "implicit_general", "rng_normal")


@pytest.fixture(scope="module")
def quick_records():
    """One quick run on the two CPU backends, shared by the tests below."""
    return run_benchmarks(backends=["numpy", "numba"], quick=True)


def test_quick_records_have_the_required_form(quick_records):
    assert quick_records
    for rec in quick_records:
        for key, typ in REQUIRED.items():
            assert isinstance(rec[key], typ), (key, rec)
        assert rec["backend"] in ("numpy", "numba", "smoldyn")
        assert all(isinstance(n, int) and n > 0 for n in rec["shape"])
        assert math.isfinite(rec["value"]) and rec["value"] > 0, rec
        if "roof_fraction" in rec:
            assert 0 < rec["roof_fraction"] <= 1.5, rec
    json.dumps(quick_records, allow_nan=False)  # plain JSON, no NaN/inf


def test_quick_run_measures_every_kernel_on_both_cpu_backends(quick_records):
    seen = {(r["name"], r["backend"], r["dtype"], tuple(r["shape"])) for r in quick_records}
    for name in ("explicit_uniform", "explicit_general", "implicit", "implicit_general"):
        for backend in ("numpy", "numba"):
            for dtype in ("float32", "float64"):
                assert (name, backend, dtype, (32, 32, 32)) in seen
        assert (f"{name}_speedup", "numba", "float32", (32, 32, 32)) in seen
    for backend in ("numpy", "numba"):
        assert ("rng_normal", backend, "float64", (2**14,)) in seen


def test_roof_is_the_best_measured_bandwidth(quick_records):
    mem = [r for r in quick_records if r["name"].startswith("memory_")]
    assert {(r["name"], r["backend"]) for r in mem} == {
        ("memory_copy", "numpy"), ("memory_copy", "numba"), ("memory_scale", "numba"),
        ("memory_triad", "numba")}
    best = max(mem, key=lambda r: r["value"])
    assert best["roof"] and best["roof_fraction"] == 1.0
    assert sum(r["roof"] for r in mem) == 1
    assert all(r["samples"] == 2 for r in mem)  # before and after the kernels
    for rec in quick_records:
        if rec["name"] in KERNELS[:-1]:
            assert rec["roof_GBps"] == pytest.approx(best["value"])
            # the fraction is the bytes it must move at its rate, over the roof
            moved = rec["value"] * rec["bytes_per_update"] / 1e9
            assert rec["roof_fraction"] == pytest.approx(moved / best["value"])


def test_bytes_per_update_follow_the_stated_model(quick_records):
    expected = {"explicit_uniform": (8, 16), "explicit_general": (22, 42), "implicit": (41, 81),
                "implicit_general": (52, 96)}
    for rec in quick_records:
        if rec["name"] in expected:
            f32, f64 = expected[rec["name"]]
            assert rec["bytes_per_update"] == (f32 if rec["dtype"] == "float32" else f64)
            assert rec["bytes_model"]
    # outputs written without being read first cost a write-allocate read each on a CPU
    outputs = {"explicit_uniform": 1, "explicit_general": 2}
    for rec in quick_records:
        if rec["name"] in outputs:
            wa = outputs[rec["name"]] * (4 if rec["dtype"] == "float32" else 8)
            assert rec["write_allocate_bytes_per_update"] == wa
            ratio = (rec["bytes_per_update"] + wa) / rec["bytes_per_update"]
            assert rec["roof_fraction_with_write_allocate"] == pytest.approx(
                rec["roof_fraction"] * ratio)
        elif rec["name"] in expected:
            assert "write_allocate_bytes_per_update" not in rec


def test_timing_fields(quick_records):
    for rec in quick_records:
        if "_speedup" in rec["name"]:
            assert rec["unit"] == "x" and rec["baseline"] == "numpy"
            assert rec["value"] == pytest.approx(rec["numba_value"] / rec["numpy_value"])
            continue
        if rec["name"].endswith("_vs_smoldyn"):  # a ratio (tests/bench/test_particles_bench.py)
            continue
        # kernels repeat until the timing rule is met; the one-off solvers (and Smoldyn's
        # timed steps) run once per case
        once = rec["name"] in ("network_flow", "interstitial_pressure", "voxelise",
                               "particles_free_smoldyn", "intravascular")  # intravascular: one run of n steps
        assert rec["repeats"] >= (1 if once else 3)
        assert 0 < rec["seconds"] <= rec["seconds_median"]


def test_time_call_repeats_until_both_minimums():
    calls = []
    t = time_call(lambda: calls.append(1), min_time_s=0.0, min_repeats=5)
    assert t.repeats == 5 and len(calls) == 6  # one untimed warm-up
    t = time_call(lambda: sum(range(10_000)), min_time_s=0.05, min_repeats=1)
    assert t.total_s >= 0.05 and t.best_s <= t.median_s


def test_record_as_dict():
    rec = Record("x", "numba", "float32", (4, 4, 4), 2.5, "voxel-updates/s", 0.5, {"seconds": 1.0})
    assert rec.as_dict() == {"name": "x", "backend": "numba", "dtype": "float32",
                             "shape": [4, 4, 4], "value": 2.5, "unit": "voxel-updates/s",
                             "roof_fraction": 0.5, "seconds": 1.0}
    assert "roof_fraction" not in Record("y", "numpy", "float64", (8,), 1.0, "x").as_dict()


def test_goals_are_marked_not_asserted():
    g = {goal.name: goal for goal in GOALS}
    shape = list(g["implicit"].shape)
    recs = [{"name": "implicit", "backend": "numba", "dtype": "float64", "shape": shape,
             "value": 2e7, "unit": "voxel-updates/s"},
            {"name": "implicit", "backend": "numpy", "dtype": "float64", "shape": shape,
             "value": 2e7, "unit": "voxel-updates/s"}]
    apply_goals(recs)
    assert recs[0]["goal_met"] is False and "goal" in recs[0]
    assert "goal" not in recs[1]
    assert "MISSED" in format_table(recs)


def test_format_table_is_aligned(quick_records):
    lines = format_table(quick_records).splitlines()
    assert len(lines) == len(quick_records) + 2
    header = lines[0]
    for col in ("benchmark", "backend", "dtype", "shape", "value", "unit", "roof"):
        assert col in header
    # every column starts at the same offset in every row
    starts = [i for i in range(1, len(lines[1])) if lines[1][i] == "-" and lines[1][i - 1] == " "]
    for line in lines[2:]:
        for s in starts:
            assert s > len(line) or line[s - 1] == " ", (s, line)


def test_registry_accepts_new_benchmarks():
    @benchmark("test_constant")
    def constant(ctx):
        """A benchmark yielding one fixed record."""
        yield Record("test_constant", "numpy", "float64", (1,), 1.0, "x")

    try:
        recs = run_benchmarks(backends=["numpy"], quick=True, only=["test_constant"])
        assert recs[-1]["name"] == "test_constant"
        assert {r["name"] for r in recs} <= {"memory_copy", "memory_scale", "memory_triad",
                                             "test_constant"}
    finally:
        del REGISTRY["test_constant"]
    with pytest.raises(ValueError, match="unknown benchmark"):
        run_benchmarks(backends=["numpy"], quick=True, only=["no_such_benchmark"])


@pytest.mark.skipif(available_backends()["cupy"].startswith("ok"), reason="a GPU is usable here")
def test_unavailable_backend_asked_for_raises():
    with pytest.raises(BackendUnavailable):
        run_benchmarks(backends=["cupy"], quick=True)


def test_cli_quick_json():
    proc = subprocess.run([sys.executable, "-m", "nanosim", "bench", "--quick", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    recs = json.loads(proc.stdout)
    assert isinstance(recs, list) and recs
    assert all(set(REQUIRED) <= set(r) for r in recs)
    assert {"numpy", "numba"} <= {r["backend"] for r in recs}


def test_solver_records_present(quick_records):
    recs = {r["name"]: r for r in quick_records}
    assert {"network_flow", "interstitial_pressure", "voxelise"} <= set(recs)
    assert recs["network_flow"]["unit"] == "segments/s" and recs["network_flow"]["conservation_error"] < 1e-10
    assert recs["interstitial_pressure"]["balance_error"] < 1e-3


def test_paired_fractions_divide_each_round_by_the_bandwidth_measured_beside_it(monkeypatch):
    # a kernel timed minutes away from the roof would be judged against another machine state:
    # each round takes the better of the bandwidths timed just before and just after it
    from nanosim.backends import get_backend
    from nanosim.bench import memory
    from nanosim.bench.record import BenchContext

    roofs = iter([(50e9, 30e9), (40e9, 35e9), (60e9, 20e9), (45e9, 25e9)])
    monkeypatch.setattr(memory, "_roof_now", lambda ctx, n: next(roofs))
    ctx = BenchContext(backends={}, quick=True, shapes=(), dtypes=(), min_time_s=0.0, min_repeats=1)
    out = memory.paired_fractions(ctx, lambda: None, get_backend("numpy"), items=1000, bytes_per_item=8,
                                  rounds=3)
    rows = out["paired_rounds"]
    assert len(rows) == 3
    # rounds (roof, copy): (50, 35), (60, 35), (60, 25) GB/s, each the better of before and after
    assert sorted((r["roof_GBps"], r["copy_GBps"]) for r in rows) == [(50, 35), (60, 25), (60, 35)]
    for r in rows:
        assert r["roof_fraction"] == pytest.approx(r["value"] * 8 / (r["roof_GBps"] * 1e9))
        assert r["copy_fraction"] == pytest.approx(r["value"] * 8 / (r["copy_GBps"] * 1e9))
    # the record takes the median round
    assert out["paired_roof_fraction"] == sorted(r["roof_fraction"] for r in rows)[1]


def test_the_explicit_goals_are_judged_against_the_copy_bandwidth():
    fields = {(g.name, g.field) for g in GOALS}
    assert ("explicit_uniform", "copy_fraction") in fields
    assert ("explicit_uniform_pair", "copy_fraction") in fields


def test_the_roof_and_copy_are_the_best_bandwidth_measured_at_any_time():
    # samples taken beside the goal kernels raise the run's roof and copy bandwidth (never
    # lower them), so every fraction is taken against the best the machine showed
    from nanosim.bench import memory
    from nanosim.bench.record import BenchContext, Record, roof_key

    key = roof_key("numba")
    recs = [Record("memory_copy", "numba", "float64", (8,), 30.0, "GB/s", None, {}),
            Record("memory_triad", "numba", "float64", (8,), 40.0, "GB/s", None, {})]
    ctx = BenchContext(backends={}, quick=False, shapes=(), dtypes=(), min_time_s=0.0, min_repeats=1)
    ctx.bandwidth_samples = [(key, 35e9, 45e9), (key, 50e9, 20e9)]
    memory._set_roofs(ctx, [(key, r) for r in recs])
    assert ctx.roofs[key] == 50e9 and ctx.copy_bandwidth[key] == 45e9
    assert recs[1].roof_fraction == pytest.approx(40 / 50)
    assert not any(r.extra["roof"] for r in recs)  # the roof is a sample, not one of the records
    kernel = Record("explicit_uniform", "numba", "float32", (8, 8, 8), 3e9, "voxel-updates/s", None,
                    {"bytes_per_update": 8})
    ctx.apply_roof(kernel)
    assert kernel.roof_fraction == pytest.approx(24 / 50)
    assert kernel.extra["copy_fraction"] == pytest.approx(24 / 45)
    ctx.bandwidth_samples = []  # without samples beside the kernels: the records alone
    memory._set_roofs(ctx, [(key, r) for r in recs])
    assert ctx.roofs[key] == 40e9 and ctx.copy_bandwidth[key] == 30e9
    assert recs[1].extra["roof"] and not recs[0].extra["roof"]


@pytest.mark.parametrize("round_rates, expected", [((3.8e9, 3.9e9, 3.85e9), 3.9e9), ((2e9, 2.5e9, 2.9e9), 3.08e9)])
def test_a_goal_kernel_is_judged_by_its_best_window_as_the_copy_is(monkeypatch, round_rates, expected):
    # the copy bandwidth is the best sample of the run; the kernel's value is likewise the best
    # of its own timing window and the rounds beside the bandwidth, never lower than its own
    from nanosim.backends import get_backend
    from nanosim.bench import transport
    from nanosim.bench.record import BenchContext, roof_key

    rows = [{"value": v, "roof_fraction": 0.0, "copy_fraction": 0.0, "roof_GBps": 50.0, "copy_GBps": 50.0}
            for v in round_rates]
    monkeypatch.setattr(transport, "paired_fractions", lambda *a, **k: {
        "paired_roof_fraction": 0.5, "paired_copy_fraction": 0.5, "paired_rounds": rows})
    ctx = BenchContext(backends={}, quick=False, shapes=(), dtypes=(), min_time_s=0.0, min_repeats=1)
    ctx.roofs[roof_key("numba")] = 50e9
    ctx.copy_bandwidth[roof_key("numba")] = 50e9
    shape = (256, 256, 256)
    n = 256 ** 3
    rec = Record("explicit_uniform", "numba", "float32", shape, 3.08e9, "voxel-updates/s", None,
                 {"bytes_per_update": 8, "seconds": n / 3.08e9})
    out = transport._with_paired(ctx, rec, lambda: None, get_backend("numba"), n, 8)
    assert out.value == expected
    assert out.extra["value_first_window"] == 3.08e9
    assert out.extra["seconds"] == pytest.approx(n / expected)
    ctx.apply_roof(out)  # as the run does for every record once its roofs are final
    assert out.extra["copy_fraction"] == pytest.approx(expected * 8 / 50e9)
    # a record that no bandwidth goal judges is left as it was
    other = Record("explicit_uniform", "numba", "float64", shape, 1e9, "voxel-updates/s", None, {})
    assert transport._with_paired(ctx, other, lambda: None, get_backend("numba"), n, 16).value == 1e9
    assert "value_first_window" not in other.extra
