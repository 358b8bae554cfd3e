"""Runs whose step changes: Simulation phases, and particles.dt_after_infusion_s end to end."""

import math
from pathlib import Path

import numpy as np
import pytest

import nanosim
from nanosim.backends import get_backend
from nanosim.model import build
from nanosim.scenario import ScenarioError
from nanosim.simulation import Simulation


class Clock:
    def __init__(self):
        self.time_s, self.step_index, self.dts = 0.0, 0, []

    def step(self, dt):
        self.dts.append(dt)
        self.step_index += 1


def test_two_phases_hit_their_boundary_and_every_output_time_exactly():
    """2 s steps to t = 125 s, then 60 s steps to 1 h, outputs every 10 min: phase 1 takes the grid
    points 2, 4, …, 124 and ends on 125 (a 1 s step); phase 2 starts with the step to the next
    grid point, 180 s, and takes 60-s steps to 3600 s: 63 + 58 steps."""
    sim = Simulation(Clock(), 60.0, 3600.0, align_s=600.0, phases=[(125.0, 2.0), (3600.0, 60.0)])
    assert sim.n_steps == 63 + 58
    times = [sim.time_at(k) for k in range(sim.n_steps + 1)]
    assert times[0] == 0.0 and times[62] == 124.0 and times[63] == 125.0 and times[64] == 180.0
    assert times[-1] == 3600.0
    assert all(b > a for a, b in zip(times, times[1:]))
    for t_out in range(600, 3601, 600):
        assert float(t_out) in times  # exactly, not to rounding
    assert sim.phases == [(125.0, 2.0, 63), (3600.0, 60.0, 58)]
    sim.run()
    assert math.fsum(sim.model.dts) == pytest.approx(3600.0, rel=1e-15)


@pytest.mark.parametrize("dt, stop, align", [(0.3, 10.0, 1.2), (7.0, 100.0, None), (0.1, 1.0, 0.5)])
def test_one_phase_is_the_plain_step_count(dt, stop, align):
    """Without phases the times are k·dt counted from the last multiple of align_s, as before."""
    a = Simulation(Clock(), dt, stop, align_s=align)
    b = Simulation(Clock(), dt, stop, align_s=align, phases=[(stop, dt)])
    assert a.n_steps == b.n_steps == math.ceil(stop / dt - 1e-9)
    n = round(align / dt) if align else None
    for k in range(a.n_steps):
        expected = (k // n) * align + (k % n) * dt if n else k * dt
        assert a.time_at(k) == b.time_at(k) == expected
    assert a.time_at(a.n_steps) == stop


def test_bad_phases_are_refused():
    with pytest.raises(ValueError, match="last phase must end at stop_s"):
        Simulation(Clock(), 1.0, 10.0, phases=[(5.0, 1.0)])
    with pytest.raises(ValueError, match="not a whole number of steps"):
        Simulation(Clock(), 1.0, 10.0, align_s=2.0, phases=[(5.0, 0.7), (10.0, 1.0)])


SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "hcc_liposome_iv_release.toml"
PHASED = ["grid.shape=[40, 40, 40]", "grid.voxel_size_m=40 um", "time.stop_s=10 min", "output.every_s=5 min",
          "route.infusion_duration_s=1 min", "particles.dt_s=5 s", "particles.dt_after_infusion_s=60 s"]


def test_a_phased_run_is_the_model_stepped_with_the_same_steps(tmp_path):
    """5 s steps during the 1-min infusion, 60 s after it: the run reports both phases, and its final
    fields equal those of the model stepped by hand with the same steps (bitwise: one backend)."""
    sc = nanosim.load_scenario(SCENARIO, overrides=PHASED)
    m = build(sc, get_backend("numba"), np.float64)
    for dt in [5.0] * 12 + [60.0] * 9:
        m.step(dt)
    with nanosim.run(sc, tmp_path / "phased.vtkhdf", backend="numba") as res:
        assert res.summary["dt_phases"] == [{"until_s": 60.0, "dt_s": 5.0, "steps": 12},
                                            {"until_s": 600.0, "dt_s": 60.0, "steps": 9}]
        assert res.provenance["dt_phases"] == [{"until_s": 60.0, "dt_s": 5.0}, {"until_s": 600.0, "dt_s": 60.0}]
        assert res.summary["steps"] == 21
        np.testing.assert_array_equal(res.field("free_drug", time_s=600.0), np.asarray(m.drug.op.c))
        np.testing.assert_array_equal(res.field("carrier_free", time_s=600.0), m.fields()["carrier_free"])
        for key in ("ledger_body_rel_error", "ledger_box_rel_error"):
            assert np.max(res.metrics[key]) < 1e-12


def test_a_negative_step_after_the_infusion_is_refused():
    with pytest.raises(ScenarioError) as info:
        nanosim.load_scenario(SCENARIO, overrides=["particles.dt_after_infusion_s=-1 s"])
    assert "particles.dt_after_infusion_s" in info.value.format()
