"""Schedules: when a callback fires (every N steps, every T seconds of simulated or wall time)."""

from __future__ import annotations

import math
import time


class Schedule:
    """Base class: ``due(sim)`` says whether the callback runs after the current step."""

    def due(self, sim) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def reset(self, sim) -> None:
        """Re-arm after a resume (state is derived from the simulation, never stored)."""


class IterationInterval(Schedule):
    """Every ``n`` steps (and at step 0)."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError("IterationInterval needs n >= 1")
        self.n = int(n)

    def due(self, sim) -> bool:
        return sim.step_index % self.n == 0

    def __repr__(self) -> str:
        return f"IterationInterval({self.n})"


class TimeInterval(Schedule):
    """Every ``interval_s`` of simulated time: fires on the first step at or past each multiple.

    The simulation aligns its step so that multiples of the output interval are hit exactly; the
    small tolerance absorbs the rounding of ``step·dt``.
    """

    def __init__(self, interval_s: float):
        if not interval_s > 0:
            raise ValueError("TimeInterval needs interval_s > 0")
        self.interval_s = float(interval_s)
        self._next = 0.0

    def reset(self, sim) -> None:
        k = math.floor(sim.time_s / self.interval_s + 1e-9)
        # a resumed run already wrote the output at the checkpoint time
        self._next = (k + 1) * self.interval_s if sim.step_index > 0 else 0.0

    def due(self, sim) -> bool:
        if sim.time_s >= self._next - 1e-9 * self.interval_s:
            k = math.floor(sim.time_s / self.interval_s + 1e-9)
            self._next = (k + 1) * self.interval_s
            return True
        return False

    def __repr__(self) -> str:
        return f"TimeInterval({self.interval_s:g} s)"


class WallTimeInterval(Schedule):
    """Every ``interval_s`` seconds of wall-clock time."""

    def __init__(self, interval_s: float):
        self.interval_s = float(interval_s)
        self._last = time.monotonic()

    def reset(self, sim) -> None:
        self._last = time.monotonic()

    def due(self, sim) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            return True
        return False

    def __repr__(self) -> str:
        return f"WallTimeInterval({self.interval_s:g} s)"


class Always(Schedule):
    """After every step."""

    def due(self, sim) -> bool:
        return True

    def __repr__(self) -> str:
        return "Always()"
