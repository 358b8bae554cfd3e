"""The simulation loop: a model, a time step, a stop time, and scheduled callbacks.

>>> sim = Simulation(model, dt_s=0.01, stop_s=10.0)           # doctest: +SKIP
>>> sim.add_callback("output", writer, TimeInterval(1.0))     # doctest: +SKIP
>>> sim.run()                                                 # doctest: +SKIP

Time is ``step_index · dt`` (no accumulated rounding), except that the last step is shortened to
land exactly on ``stop_s``. The model must provide ``step(dt)``, ``time_s`` and ``step_index``.
Callbacks are called as ``fn(sim)`` after each step whose schedule is due (and once at the start
of a fresh run), in the order they were added; ``finalizers`` run at the end whatever happens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .schedules import Schedule


@dataclass
class Callback:
    name: str
    fn: object
    schedule: Schedule
    at_start: bool = True
    at_end: bool = True


class Simulation:
    """Drive ``model`` from its current time to ``stop_s`` in steps of ``dt_s``."""

    def __init__(self, model, dt_s: float, stop_s: float):
        if not dt_s > 0:
            raise ValueError("dt_s must be > 0")
        self.model = model
        self.dt_s = float(dt_s)
        self.stop_s = float(stop_s)
        self.callbacks: list[Callback] = []
        self.wall_start = None
        self.wall_time_s = 0.0
        self.n_steps = math.ceil(self.stop_s / self.dt_s - 1e-9)

    @property
    def time_s(self) -> float:
        return self.model.time_s

    @property
    def step_index(self) -> int:
        return self.model.step_index

    @property
    def done(self) -> bool:
        return self.model.step_index >= self.n_steps

    def add_callback(self, name, fn, schedule: Schedule, at_start=True, at_end=True) -> None:
        self.callbacks.append(Callback(name, fn, schedule, at_start, at_end))

    def _next_dt(self) -> float:
        k = self.model.step_index
        return (k + 1) * self.dt_s - k * self.dt_s if k + 1 < self.n_steps else self.stop_s - k * self.dt_s

    def run(self) -> None:
        """Run to ``stop_s``. KeyboardInterrupt propagates after the callbacks' ``interrupt``."""
        self.wall_start = time.monotonic()
        fresh = self.model.step_index == 0
        for cb in self.callbacks:
            cb.schedule.reset(self)
            if fresh and cb.at_start:
                cb.schedule.due(self)  # consume the t = 0 firing
                cb.fn(self)
        while not self.done:
            self.model.step(self._next_dt())
            if self.done:
                # land exactly on the stop time (the last step may be shorter)
                self.model.time_s = self.stop_s
            for cb in self.callbacks:
                if cb.schedule.due(self) or (self.done and cb.at_end):
                    cb.fn(self)
        self.wall_time_s = time.monotonic() - self.wall_start

    def __repr__(self) -> str:
        lines = [f"Simulation: t = {self.time_s:g} s of {self.stop_s:g} s, dt = {self.dt_s:g} s, "
                 f"step {self.step_index} of {self.n_steps}"]
        for i, cb in enumerate(self.callbacks):
            lines.append(f"{'└' if i == len(self.callbacks) - 1 else '├'}── {cb.name}: {cb.schedule!r}")
        return "\n".join(lines)
