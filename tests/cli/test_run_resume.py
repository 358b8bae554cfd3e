"""Ctrl-C, SIGKILL and ``run --resume``: a stopped run continues to the very same result."""

import signal

import numpy as np
import pytest
from _cli_helpers import announced_outputs, assert_same_results, have_vtk, start_paced, vtk_steps

from nanosim.cli import main
from nanosim.io import load_checkpoint, open_results


def test_ctrl_c_checkpoints_marks_the_file_and_exits_130_then_resume_completes(long_scenario, tmp_path,
                                                                             reference_runs, capsys):
    out = tmp_path / "r.h5"
    ref_path = reference_runs("numba")
    proc, reader = start_paced(0.03, long_scenario, "-o", out, "--backend", "numba", "--quiet")
    try:
        reader.wait_for(lambda line: line == "pausing 8")
        proc.send_signal(signal.SIGINT)  # mid-step 8, before its output (t = 0.4 s) is written
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    err = proc.stderr.read().decode()
    lines = reader.rest()
    assert code == 130, err
    assert "interrupted at t = " in err and "--resume" in err
    assert "Traceback" not in err
    _, attrs = load_checkpoint(tmp_path / "r.h5.ckpt")
    with open_results(out) as res, open_results(ref_path) as ref:
        assert res.status == "interrupted"
        # every output up to the interrupt is there, and the checkpoint is the state at the last step
        assert res.times_s[-1] <= attrs["time_s"] < res.times_s[-1] + 0.1
        assert list(res.times_s) == announced_outputs(lines)
        assert_same_results(res, ref, n=res.n_steps)
    assert 0.3 <= attrs["time_s"] < 2.0

    code = main(["run", str(long_scenario), "-o", str(out), "--resume", "--backend", "numba"])
    assert code == 0
    assert f"resuming from the checkpoint at t = {attrs['time_s']:g} s" in capsys.readouterr().err
    with open_results(out) as res, open_results(ref_path) as ref:
        assert res.status == "completed"
        assert res.n_steps == ref.n_steps == 21
        assert_same_results(res, ref)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_resume_after_sigkill_is_bitwise_identical(long_scenario, tmp_path, reference_runs, backend):
    out = tmp_path / "r.h5"
    ref_path = reference_runs(backend)
    proc, reader = start_paced(0.03, long_scenario, "-o", out, "--backend", backend, "--quiet")
    try:
        reader.wait_for(lambda line: line == "checkpoint 10")  # t = 0.5 s, from checkpoint_every_s
        reader.wait_for(lambda line: line.startswith("output 0.7"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    announced = announced_outputs(reader.rest())
    assert len(announced) >= 8

    # the killed file opens, still "running", and holds every output announced before the kill
    _, attrs = load_checkpoint(tmp_path / "r.h5.ckpt")
    assert attrs["step_index"] in (10, 20, 30)
    with open_results(out) as res, open_results(ref_path) as ref:
        assert res.status == "running"
        assert res.n_steps in (len(announced), len(announced) + 1)  # + one written, not yet announced
        np.testing.assert_array_equal(res.times_s[: len(announced)], announced)
        assert_same_results(res, ref, n=res.n_steps)
        killed_fields = [res.field("free_drug", step=k) for k in range(res.n_steps)]
        killed_times = res.times_s.copy()
    if have_vtk():
        n, times, fields = vtk_steps(out)
        assert n == len(killed_times)
        np.testing.assert_array_equal(times, killed_times)
        for a, b in zip(fields, killed_fields):
            np.testing.assert_array_equal(a, b.ravel())

    code = main(["run", str(long_scenario), "-o", str(out), "--resume", "--backend", backend, "--quiet"])
    assert code == 0
    with open_results(out) as res, open_results(ref_path) as ref:
        assert res.status == "completed"
        assert res.n_steps == ref.n_steps == 21
        assert_same_results(res, ref)
        assert res.summary["resumed_from_s"] == attrs["time_s"]
        assert res.summary["steps"] == ref.summary["steps"] == 40


def test_resume_needs_a_checkpoint_and_the_same_scenario(long_scenario, tmp_path, capsys):
    out = tmp_path / "r.h5"
    code = main(["run", str(long_scenario), "-o", str(out), "--resume", "--backend", "numpy"])
    assert code == 1
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main(["run", str(long_scenario), "-o", str(out), "--backend", "numpy", "--quiet"]) == 0
    code = main(["run", str(long_scenario), "-o", str(out), "--resume", "--backend", "numpy",
                 "--set", "drug.normal.uptake_rate_per_s=0.3"])
    assert code == 1
    assert "belongs to a different scenario" in capsys.readouterr().err
    code = main(["run", str(long_scenario), "-o", str(out), "--resume", "--backend", "numba"])
    assert code == 1
    assert "resume with --backend numpy" in capsys.readouterr().err
    (tmp_path / "r.h5").unlink()
    code = main(["run", str(long_scenario), "-o", str(out), "--resume", "--backend", "numpy"])
    assert code == 1
    err = capsys.readouterr().err
    assert "r.h5 does not exist" in err and "Traceback" not in err


def test_a_fresh_run_drops_the_checkpoint_of_the_file_it_replaces(long_scenario, tmp_path, capsys):
    out = tmp_path / "r.h5"
    assert main(["run", str(long_scenario), "-o", str(out), "--backend", "numpy", "--quiet"]) == 0
    assert (tmp_path / "r.h5.ckpt").exists()  # the final state, t = 2 s
    # a new run into the same file, killed before its first checkpoint
    proc, reader = start_paced(0.03, long_scenario, "-o", out, "--backend", "numpy", "--quiet", "--overwrite")
    try:
        reader.wait_for(lambda line: line.startswith("output 0.1"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert "checkpoint" not in " ".join(reader.rest())
    # resuming must not pick up the old run's final state as if this run had reached it
    code = main(["run", str(long_scenario), "-o", str(out), "--resume", "--backend", "numpy"])
    assert code == 1
    assert "no checkpoint to resume from" in capsys.readouterr().err
    with open_results(out) as res:
        assert res.status == "running" and res.times_s[-1] < 0.5
