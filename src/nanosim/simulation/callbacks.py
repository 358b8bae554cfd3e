"""Callbacks run by :class:`~nanosim.simulation.Simulation` on schedules.

Output writer, checkpointer, progress bar and guards are ordinary callbacks: ``fn(sim)``.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from ..io import save_checkpoint


class GuardError(RuntimeError):
    """A guard stopped the run (NaN/Inf, mass balance); the message says what and where."""


class OutputWriter:
    """Write the model's fields and metrics to a :class:`~nanosim.io.ResultsWriter`."""

    def __init__(self, writer, field_names):
        self.writer = writer
        self.field_names = list(field_names)
        self.last_time_s = None

    def __call__(self, sim) -> None:
        if self.last_time_s is not None and sim.time_s <= self.last_time_s:
            return  # already written (the end-of-run call after a due output)
        fields = sim.model.fields()
        self.writer.write_step(sim.time_s, {k: fields[k] for k in self.field_names}, sim.model.metrics())
        self.last_time_s = sim.time_s


class SnapshotWriter:
    """Write a subsample of the carrier particles to ``/nanosim/particles/NNNNN`` (positions, state, weight)."""

    def __init__(self, writer, max_particles: int):
        self.writer = writer
        self.max_particles = int(max_particles)
        self.last_time_s = None

    def __call__(self, sim) -> None:
        if self.last_time_s is not None and sim.time_s <= self.last_time_s:
            return
        snap = sim.model.carriers.snapshot(self.max_particles)
        self.writer.write_snapshot(sim.time_s, snap)
        self.last_time_s = sim.time_s


class Checkpointer:
    """Save the full model state atomically (write, fsync, rename) to ``path``."""

    def __init__(self, path, extra_attrs: dict):
        self.path = path
        self.extra_attrs = dict(extra_attrs)
        self.last_step = None

    def __call__(self, sim) -> None:
        if self.last_step == sim.step_index:
            return
        attrs = dict(self.extra_attrs)
        attrs.update(sim.model.state_attrs())
        save_checkpoint(self.path, sim.model.state_arrays(), attrs)
        self.last_step = sim.step_index


class Guards:
    """Stop the run when the state stops making sense.

    - the total amount (computed by the kernels every step) is NaN or infinite;
    - the mass ledger fails to close: ``|error| > 10·((ε + ε₆₄·√N)·√(steps + 1) + ε₆₄·(steps + 1))·s``, the size of
      accumulated round-off: each step rounds the fields at their precision ``ε`` and sums ``N``
      voxel terms into the float64 ledger (error growing like ``ε₆₄·√N``), and these per-step
      errors add up like a random walk — plus ``ε₆₄·(steps + 1)``, the worst case of a float64
      ledger summed step by step (recursive summation, whose rounding may be biased); ``s = 1 + k_max·Δt`` (the stiffness of the step: the
      largest first-order rate, wall exchange included, times the step) scales the round-off
      of the gross amounts exchanged in one step, which can exceed the net amount many times;
    - the drug ledger of the whole run (:mod:`nanosim.drug.ledger`) fails to close: the body's
      account (float64 scalars from exact integrators) beyond :attr:`BODY_LEDGER_TOLERANCE` (1e-9),
      the box's beyond :meth:`box_ledger_tolerance` (1e-9 with float64 fields).
    """

    #: Largest relative error of the body's drug account (float64 amounts, exact integrators: round-off ~1e-15).
    BODY_LEDGER_TOLERANCE = 1e-9

    def __init__(self, dtype, n_voxels: int = 1, stiffness: float = 1.0):
        self.eps = float(np.finfo(dtype).eps)
        self.sum_eps = float(np.finfo(np.float64).eps) * math.sqrt(max(int(n_voxels), 1))
        self.stiffness = max(float(stiffness), 1.0)

    def tolerance(self, steps: int) -> float:
        eps64 = float(np.finfo(np.float64).eps)
        return 10.0 * ((self.eps + self.sum_eps) * math.sqrt(steps + 1) + eps64 * (steps + 1)) * self.stiffness

    def carrier_tolerance(self, steps: int, n_particles: int) -> float:
        """Weight conservation of carriers, float64 throughout: each step adds a few ledger terms
        (error ε₆₄ each, a random walk over steps) and the live weight is a sum over particles
        (pairwise, error below ε₆₄·√N)."""
        eps = float(np.finfo(np.float64).eps)
        return 10.0 * eps * (math.sqrt(steps + 1) + math.sqrt(max(n_particles, 1))) * 4.0

    def __call__(self, sim) -> None:
        m = sim.model
        carriers = getattr(m, "carriers", None)
        if carriers is not None:
            err = carriers.balance_error()
            n = sum(p.n for p in carriers.pops)
            tol = self.carrier_tolerance(m.step_index, n)
            if not abs(err) <= tol:
                raise GuardError(
                    f"carrier weight is not conserved at t = {m.time_s:g} s (step {m.step_index}): relative error "
                    f"{err:.3e} exceeds {tol:.1e}. This is a bug in nanosim; please report it with the scenario file.")
        if getattr(m, "drug", m) is None:
            if getattr(m, "has_drug_ledger", False):
                self._check_ledger(m)
            return
        if not math.isfinite(m.total_mol):
            raise GuardError(
                f"the drug field became NaN or infinite at t = {m.time_s:g} s (step {m.step_index}). "
                "The time step is probably too large for the explicit scheme: set transport.dt_s = \"auto\" "
                "or transport.scheme = \"implicit\".")
        err = m.mass_balance_error()
        tol = self.tolerance(m.step_index)
        if not abs(err) <= tol:
            raise GuardError(
                f"mass balance failed at t = {m.time_s:g} s (step {m.step_index}): relative error {err:.3e} "
                f"exceeds {tol:.1e}. This is a bug in nanosim; please report it with the scenario file.")
        if getattr(m, "has_drug_ledger", False):
            self._check_ledger(m)

    def box_ledger_tolerance(self, steps: int) -> float:
        """The box's account: 1e-9 (:attr:`BODY_LEDGER_TOLERANCE`) with float64 fields, whose
        round-off is far below it; with float32 fields the accumulated round-off bound of
        :meth:`tolerance`, which a float32 field may legitimately reach."""
        tol = self.tolerance(steps)
        return min(tol, self.BODY_LEDGER_TOLERANCE) if self.eps <= float(np.finfo(np.float64).eps) else tol

    def _check_ledger(self, m) -> None:
        led = m.drug_ledger()
        where = f"at t = {m.time_s:g} s (step {m.step_index})"
        body, box = led["body_rel_error"], led["box_rel_error"]
        if not body <= self.BODY_LEDGER_TOLERANCE:
            raise GuardError(
                f"the body's drug ledger does not close {where}: relative error {body:.3e} exceeds "
                f"{self.BODY_LEDGER_TOLERANCE:.0e} (given {led.get('body_given_mol', 0.0):.6g} mol). This is a bug in "
                "nanosim; please report it with the scenario file.")
        tol = self.box_ledger_tolerance(m.step_index)
        if not box <= tol:
            raise GuardError(
                f"the simulated tissue's drug ledger does not close {where}: relative error {box:.3e} exceeds "
                f"{tol:.1e}. This is a bug in nanosim; please report it with the scenario file.")


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most every 0.2 s."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self._last = 0.0
        self._t0 = time.monotonic()
        self._step0 = None

    def __call__(self, sim) -> None:
        now = time.monotonic()
        if self._step0 is None:
            self._step0 = sim.step_index
            self._t0 = now
        if now - self._last < 0.2 and not sim.done:
            return
        self._last = now
        frac = sim.time_s / sim.stop_s if sim.stop_s else 1.0
        filled = int(round(frac * self.width))
        elapsed = now - self._t0
        done_steps = sim.step_index - self._step0
        left = sim.n_steps - sim.step_index
        eta = elapsed / done_steps * left if done_steps else float("nan")
        bar = "█" * filled + "░" * (self.width - filled)
        self.stream.write(f"\r{bar} {100 * frac:5.1f}%  t = {sim.time_s:.4g}/{sim.stop_s:.4g} s  "
                          f"step {sim.step_index}/{sim.n_steps}  {elapsed:.1f} s elapsed, ETA {eta:.1f} s ")
        if sim.done:
            self.stream.write("\n")
        self.stream.flush()
