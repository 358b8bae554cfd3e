"""Guards: a broken mass ledger or a NaN total stops the run with a clear message (exit 1)."""

import json
import math

import numpy as np
import pytest

from nanosim.backends import get_backend
from nanosim.cli import main
from nanosim.drug import build_model
from nanosim.drug.free_drug import FreeDrugModel
from nanosim.io import open_results
from nanosim.scenario import load_scenario
from nanosim.simulation import GuardError, Guards, Simulation


def make_sim(tiny, steps=5):
    model = build_model(load_scenario(tiny), get_backend("numpy"), np.float64)
    sim = Simulation(model, dt_s=0.05, stop_s=1.0)
    for _ in range(steps):
        model.step(0.05)
    return model, sim


def test_guards_pass_on_an_honest_model(tiny):
    model, sim = make_sim(tiny, steps=20)
    assert model.total_mol > 0
    Guards(np.float64)(sim)


def test_broken_ledger_trips_the_mass_balance_guard(tiny):
    model, sim = make_sim(tiny)
    guards = Guards(np.float64)
    guards(sim)
    # one part in a million of the amount goes missing from the books
    model.ledger_mol[1] += 1e-6 * model.total_mol
    with pytest.raises(GuardError, match=r"mass balance failed at t = .* \(step 5\): relative error") as exc:
        guards(sim)
    assert "bug in nanosim" in str(exc.value)


def test_guard_tolerance_is_accumulated_round_off():
    g = Guards(np.float64)
    eps = np.finfo(np.float64).eps
    assert g.tolerance(0) == pytest.approx(10 * eps)
    assert g.tolerance(99) == pytest.approx(100 * eps)
    assert Guards(np.float32).tolerance(0) == pytest.approx(10 * np.finfo(np.float32).eps)


def test_nan_in_the_field_trips_the_nan_guard(tiny):
    model, sim = make_sim(tiny)
    model.op.c[0, 3, 3] = np.nan
    model.step(0.05)  # the kernels' total picks the NaN up
    assert math.isnan(model.total_mol)
    with pytest.raises(GuardError, match="NaN or infinite at t = .* s \\(step 6\\)"):
        Guards(np.float64)(sim)


def test_cli_run_with_a_broken_ledger_exits_1_and_marks_the_file_failed(tiny, tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny.json").write_text(json.dumps(tiny))
    honest_step = FreeDrugModel.step

    def leaky_step(self, dt):
        honest_step(self, dt)
        if self.step_index == 7:
            self.ledger_mol[2] += 1e-3 * abs(self.total_mol)  # a loss that never happened

    monkeypatch.setattr(FreeDrugModel, "step", leaky_step)
    out_path = tmp_path / "r.h5"
    code = main(["run", str(tmp_path / "tiny.json"), "-o", str(out_path), "--backend", "numpy"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "run stopped: mass balance failed at t = 0.35 s (step 7)" in err
    assert "Traceback" not in err
    assert out == ""
    with open_results(out_path) as res:
        assert res.status == "failed"
        assert "mass balance" in res.summary["error"]
        np.testing.assert_allclose(res.times_s, [0.0, 0.1, 0.2, 0.3])  # written before the failure
