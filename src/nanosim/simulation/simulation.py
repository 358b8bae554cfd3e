"""The simulation loop: a model, a time step, a stop time, and scheduled callbacks.

>>> sim = Simulation(model, dt_s=0.01, stop_s=10.0, align_s=1.0)  # doctest: +SKIP
>>> sim.add_callback("output", writer, TimeInterval(1.0))           # doctest: +SKIP
>>> sim.run()                                                       # doctest: +SKIP

Time is ``step_index · dt`` (no accumulated rounding), except that the last step is shortened to
land exactly on ``stop_s``. With ``align_s`` (a whole number of steps long), time is counted from
the last multiple of ``align_s``, ``q·align_s + r·dt``, so that the multiples of ``align_s`` (the
output times) are hit exactly, not just to rounding.

A run may change its step: ``phases`` is a list of ``(end_s, dt_s)``, the last ending at
``stop_s``, each ``dt_s`` a divisor of ``align_s``. A phase takes the grid points
``q·align_s + r·dt_s`` strictly inside it and ends exactly on its ``end_s`` (a shorter step where
the end is not a grid point), so the output times are hit in every phase and the time after ``k``
steps is a function of ``k`` alone: a resumed run continues bit-identically. The model must provide ``step(dt)``,
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

    def __init__(self, model, dt_s: float, stop_s: float, align_s: float | None = None, phases=None):
        if not dt_s > 0:
            raise ValueError("dt_s must be > 0")
        self.model = model
        self.dt_s = float(dt_s)
        self.stop_s = float(stop_s)
        self.callbacks: list[Callback] = []
        self.wall_start = None
        self.wall_time_s = 0.0
        #: wall time (s) of the first step this run took (compilation of the kernels included)
        self.first_step_wall_s = None
        self.align_s = None if align_s is None else float(align_s)
        phases = [(self.stop_s, self.dt_s)] if not phases else [(float(e), float(d)) for e, d in phases]
        if abs(phases[-1][0] - self.stop_s) > 1e-12 * self.stop_s:
            raise ValueError(f"the last phase must end at stop_s = {self.stop_s!r} s, not {phases[-1][0]!r} s")
        phases[-1] = (self.stop_s, phases[-1][1])
        # per phase: (first step index, start, end, dt, steps per align_s, first grid index, steps)
        self._phases = []
        k, start = 0, 0.0
        for end, dt in phases:
            if not (dt > 0 and end > start):
                raise ValueError(f"phases must have dt_s > 0 and increasing ends, got ({end!r}, {dt!r})")
            n_align = 0
            if self.align_s is not None:
                n_align = round(self.align_s / dt)
                if n_align < 1 or abs(n_align * dt - self.align_s) > 1e-9 * self.align_s:
                    raise ValueError(f"align_s = {align_s!r} s is not a whole number of steps of {dt!r} s")
            # grid points strictly inside (start, end); the tolerance grows with the number of steps,
            # as the rounding of a time over dt does
            j0 = math.floor(start / dt * (1 + 1e-12) + 1e-9) + 1
            ratio = end / dt
            j1 = math.ceil(ratio - (1e-9 + 1e-12 * ratio)) - 1
            steps = max(j1 - j0 + 1, 0) + 1
            self._phases.append((k, start, end, dt, n_align, j0, steps))
            k, start = k + steps, end
        self.n_steps = k
        self._align_n = self._phases[-1][4]
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
        if k <= 0:
            return 0.0
        for k0, start, end, dt, n_align, j0, steps in self._phases:
            if k < k0 + steps:
                j = j0 + (k - k0 - 1)  # the phase's (k − k0)-th grid point
                if n_align:
                    q, r = divmod(j, n_align)
                    return q * self.align_s + r * dt
                return j * dt
            if k == k0 + steps:
                return end
        return self.stop_s

    @property
    def phases(self) -> list[tuple[float, float, int]]:
        """``(end_s, dt_s, steps)`` of each phase."""
        return [(end, dt, steps) for _, _, end, dt, _, _, steps in self._phases]

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
                tic = time.monotonic()
                self.model.step(self._next_dt())
                if self.first_step_wall_s is None:
                    self.first_step_wall_s = time.monotonic() - tic
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
