"""The simulation loop: step times, the last step, schedules and callbacks, Ctrl-C."""

import signal

import numpy as np
import pytest
from _loop_models import CountingModel, Recorder

from nanosim.runner import run_scenario
from nanosim.scenario import load_scenario
from nanosim.simulation import Always, IterationInterval, Simulation, TimeInterval, WallTimeInterval
from nanosim.simulation import schedules
from nanosim.io import open_results


def test_time_is_step_index_times_dt_and_the_last_step_lands_on_stop():
    model = CountingModel()
    sim = Simulation(model, dt_s=0.3, stop_s=1.0)
    rec = Recorder()
    sim.add_callback("every step", rec, Always(), at_end=False)
    sim.run()
    assert sim.n_steps == 4
    assert rec.steps == [0, 1, 2, 3, 4]
    assert rec.times[:4] == [0.0, 0.3, 2 * 0.3, 3 * 0.3]
    assert rec.times[-1] == 1.0 and model.time_s == 1.0  # exactly, not 0.3 + 0.3 + 0.3 + 0.1
    assert model.dts[:3] == pytest.approx([0.3] * 3, rel=1e-15)
    assert model.dts[3] == pytest.approx(0.1, rel=1e-12)  # the shortened last step


@pytest.mark.parametrize("dt, stop, n", [(3e-4, 7200.0, 24_000_000), (1e-3, 100.0, 100_000), (0.25, 1.0, 4)])
def test_stop_a_multiple_of_dt_takes_no_extra_sliver_step(dt, stop, n):
    # 7200 / 3e-4 is 24000000.000000004 in floating point; no step of ~1e-12 s may follow
    sim = Simulation(CountingModel(), dt_s=dt, stop_s=stop)
    assert sim.n_steps == n
    assert sim.time_at(n) == stop
    assert sim.time_at(n) - sim.time_at(n - 1) == pytest.approx(dt, rel=1e-6)


def test_aligned_outputs_land_exactly_on_multiples_of_the_interval():
    every, n = 0.3, 43  # dt = 0.3/43; stop 2.03 is a multiple of neither
    dt = every / n
    # without alignment some multiple is missed by rounding: 258·dt is not 6·0.3
    assert any((m * n) * dt != m * every for m in range(1, 7))
    model = CountingModel()
    sim = Simulation(model, dt_s=dt, stop_s=2.03, align_s=every)
    out = Recorder()
    sim.add_callback("output", out, TimeInterval(every))
    sim.run()
    assert out.times == [m * every for m in range(7)] + [2.03]
    assert out.steps == [m * n for m in range(7)] + [sim.n_steps]


def test_align_must_be_a_whole_number_of_steps():
    with pytest.raises(ValueError, match="whole number of steps"):
        Simulation(CountingModel(), dt_s=0.3, stop_s=1.0, align_s=1.0)


def test_run_output_times_are_exact_multiples_and_end_at_stop(tiny, tmp_path):
    tiny["transport"]["dt_s"] = "0.007 s"
    tiny["time"]["stop_s"] = "2.03 s"
    tiny["output"]["every_s"] = "0.3 s"
    info = run_scenario(load_scenario(tiny), tmp_path / "r.h5", "numpy")
    assert info.dt_s == pytest.approx(0.3 / 43, rel=1e-15)
    with open_results(tmp_path / "r.h5") as res:
        np.testing.assert_array_equal(res.times_s, [m * 0.3 for m in range(7)] + [2.03])
        np.testing.assert_array_equal(res.metrics["time_s"], res.times_s)
        assert res.status == "completed"


def test_iteration_interval_fires_every_n_steps_from_step_0_and_at_the_end():
    sim = Simulation(CountingModel(), dt_s=0.1, stop_s=1.0)
    with_end, without_end = Recorder(), Recorder()
    sim.add_callback("a", with_end, IterationInterval(3))
    sim.add_callback("b", without_end, IterationInterval(3), at_end=False)
    sim.run()
    assert with_end.steps == [0, 3, 6, 9, 10]
    assert without_end.steps == [0, 3, 6, 9]
    with pytest.raises(ValueError):
        IterationInterval(0)


def test_time_interval_not_run_at_start_still_skips_time_zero():
    # a checkpoint-like callback: first at 0.5 s, not after the first step
    sim = Simulation(CountingModel(), dt_s=0.1, stop_s=1.7)
    rec = Recorder()
    sim.add_callback("ckpt", rec, TimeInterval(0.5), at_start=False)
    sim.run()
    assert rec.steps == [5, 10, 15, 17]
    assert rec.times[:3] == pytest.approx([0.5, 1.0, 1.5], rel=1e-12)
    assert rec.times[-1] == 1.7


def test_time_interval_on_a_resumed_run_continues_after_the_checkpoint():
    # resumed at step 7 (t = 0.7 s): the output at 0.5 s was written before; the next is at 1.0 s
    sim = Simulation(CountingModel(step_index=7, time_s=0.7000000000000001), dt_s=0.1, stop_s=2.0)
    rec, start = Recorder(), Recorder()
    sim.add_callback("output", rec, TimeInterval(0.5))
    sim.add_callback("start only", start, IterationInterval(1000), at_end=False)
    sim.run()
    assert rec.steps == [10, 15, 20]
    assert start.calls == []  # at-start callbacks belong to fresh runs


def test_wall_time_interval_fires_each_interval_of_wall_time(monkeypatch):
    clock = {"now": 100.0}

    class FakeTime:
        @staticmethod
        def monotonic():
            return clock["now"]

    monkeypatch.setattr(schedules, "time", FakeTime)

    def tick(model):
        clock["now"] += 0.4  # every step takes 0.4 s of wall time

    sim = Simulation(CountingModel(on_step=tick), dt_s=0.1, stop_s=1.0)
    rec = Recorder()
    sim.add_callback("wall", rec, WallTimeInterval(1.0), at_start=False, at_end=False)
    sim.run()
    # fires at 1.2 s (step 3), then 1 s after that firing: 2.4 s (step 6), 3.6 s (step 9)
    assert rec.steps == [3, 6, 9]


def test_callbacks_run_in_order_and_at_start_only_on_fresh_runs():
    order = []
    sim = Simulation(CountingModel(), dt_s=0.5, stop_s=1.0)
    sim.add_callback("a", lambda s: order.append(("a", s.step_index)), Always())
    sim.add_callback("b", lambda s: order.append(("b", s.step_index)), Always(), at_start=False)
    sim.run()
    assert order == [("a", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert "a: Always()" in repr(sim)


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler, as in a terminal (a background job of a shell without job
    control starts with SIGINT ignored, which the loop deliberately leaves alone)."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_is_deferred_to_the_end_of_the_step():
    def interrupt_at_step_3(model):
        if model.step_index == 3:
            signal.raise_signal(signal.SIGINT)
            model.after_signal = model.step_index  # the step goes on after the signal

    model = CountingModel(on_step=interrupt_at_step_3)
    sim = Simulation(model, dt_s=0.1, stop_s=1.0)
    rec = Recorder()
    sim.add_callback("output", rec, Always())
    with pytest.raises(KeyboardInterrupt):
        sim.run()
    assert model.after_signal == 3 and model.step_index == 3
    assert rec.steps == [0, 1, 2, 3]  # the callbacks of step 3 ran before the interrupt
    assert sim.consistent
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.usefixtures("python_sigint")
def test_second_ctrl_c_stops_at_once_and_marks_the_state_inconsistent():
    def interrupt_twice(model):
        if model.step_index == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
            model.after_signal = True

    model = CountingModel(on_step=interrupt_twice)
    sim = Simulation(model, dt_s=0.1, stop_s=1.0)
    rec = Recorder()
    sim.add_callback("output", rec, Always())
    with pytest.raises(KeyboardInterrupt):
        sim.run()
    assert not hasattr(model, "after_signal")
    assert rec.steps == [0, 1]
    assert not sim.consistent
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
