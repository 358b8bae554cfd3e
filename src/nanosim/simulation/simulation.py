"""The simulation loop: a model, a time step, a stop time, and scheduled callbacks.

>>> sim = Simulation(model, dt_s=0.01, stop_s=10.0, align_s=1.0)  # doctest: +SKIP
>>> sim.add_callback("output", writer, TimeInterval(1.0))           # doctest: +SKIP
>>> sim.run()                                                       # doctest: +SKIP

Time is ``step_index · dt`` (no accumulated rounding), except that the last step is shortened to
land exactly on ``stop_s``. With ``align_s`` (a whole number of steps long), time is counted from
the last multiple of ``align_s``, ``q·align_s + r·dt``, so that the multiples of ``align_s`` (the
output times) are hit exactly, not just to rounding. The model must provide ``step(dt)``,
``time_s`` and ``step_index``; the loop sets ``time_s`` after each step.
Callbacks are called as ``fn(sim)`` after each step whose schedule is due (and once at the start
of a fresh run), in the order they were added, and once more after the last step (``at_end``).

Ctrl-C (SIGINT) while :meth:`Simulation.run` runs in the main thread is deferred to the end of the
current step and its callbacks, so that the state is consistent when ``KeyboardInterrupt`` leaves
``run`` (:attr:`Simulation.consistent` is True) and a checkpoint taken then resumes exactly. A second
Ctrl-C before that raises at once, possibly mid-step or before the start callbacks finished
(``consistent`` is then False: do not checkpoint).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
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

    def __init__(self, model, dt_s: float, stop_s: float, align_s: float | None = None):
        if not dt_s > 0:
            raise ValueError("dt_s must be > 0")
        self.model = model
        self.dt_s = float(dt_s)
        self.stop_s = float(stop_s)
        self.callbacks: list[Callback] = []
        self.wall_start = None
        self.wall_time_s = 0.0
        ratio = self.stop_s / self.dt_s
        # the tolerance grows with the number of steps, as the rounding of stop/dt does
        self.n_steps = max(1, math.ceil(ratio - (1e-9 + 1e-12 * ratio)))
        self.align_s = None
        self._align_n = 0
        if align_s is not None:
            n = round(float(align_s) / self.dt_s)
            if n < 1 or abs(n * self.dt_s - float(align_s)) > 1e-9 * float(align_s):
                raise ValueError(f"align_s = {align_s!r} s is not a whole number of steps of {self.dt_s!r} s")
            self.align_s = float(align_s)
            self._align_n = n
        self.consistent = True
        self._sigint_pending = False

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

    def time_at(self, k: int) -> float:
        """Simulated time after ``k`` steps (s)."""
        if k >= self.n_steps:
            return self.stop_s
        if self._align_n:
            q, r = divmod(k, self._align_n)
            return q * self.align_s + r * self.dt_s
        return k * self.dt_s

    def _next_dt(self) -> float:
        k = self.model.step_index
        return self.time_at(k + 1) - self.time_at(k)

    @contextlib.contextmanager
    def _deferred_sigint(self):
        """Hold Ctrl-C until the end of the step (only where Python's own handler is installed)."""
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            yield
            return

        def handler(signum, frame):
            if self._sigint_pending:  # second Ctrl-C: stop now
                signal.default_int_handler(signum, frame)
            self._sigint_pending = True

        self._sigint_pending = False
        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _check_interrupt(self) -> None:
        if self._sigint_pending:
            self._sigint_pending = False
            raise KeyboardInterrupt

    def run(self) -> None:
        """Run to ``stop_s``. A Ctrl-C raises KeyboardInterrupt between steps (see the module doc)."""
        self.wall_start = time.monotonic()
        fresh = self.model.step_index == 0
        with self._deferred_sigint():
            self.consistent = False
            for cb in self.callbacks:
                cb.schedule.reset(self)
                if fresh:
                    cb.schedule.due(self)  # consume the t = 0 firing, also of callbacks not run at start
                    if cb.at_start:
                        cb.fn(self)
            self.consistent = True
            # a pending Ctrl-C is honoured after the first step, so a checkpoint never holds step 0
            while not self.done:
                self.consistent = False
                self.model.step(self._next_dt())
                # time from the step count (exact at multiples of align_s, exactly stop_s at the end)
                self.model.time_s = self.time_at(self.model.step_index)
                for cb in self.callbacks:
                    if cb.schedule.due(self) or (self.done and cb.at_end):
                        cb.fn(self)
                self.consistent = True
                self._check_interrupt()
        self.wall_time_s = time.monotonic() - self.wall_start

    def __repr__(self) -> str:
        lines = [f"Simulation: t = {self.time_s:g} s of {self.stop_s:g} s, dt = {self.dt_s:g} s, "
                 f"step {self.step_index} of {self.n_steps}"]
        for i, cb in enumerate(self.callbacks):
            lines.append(f"{'└' if i == len(self.callbacks) - 1 else '├'}── {cb.name}: {cb.schedule!r}")
        return "\n".join(lines)
