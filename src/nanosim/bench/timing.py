"""Wall-clock timing of one benchmark case: warm up, then repeat, keep the best and the median."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Timings of the repeats of one call (s).

    Attributes
    ----------
    best_s : float
        Shortest repeat: the least disturbed by other work on the machine; the reported figure.
    median_s : float
        Median repeat: how steady the measurement was (close to ``best_s`` on a quiet machine).
    repeats : int
        Number of timed repeats (the warm-up is not counted).
    total_s : float
        Sum of the timed repeats.
    """

    best_s: float
    median_s: float
    repeats: int
    total_s: float


def time_call(fn, *, sync=None, min_time_s=0.5, min_repeats=3, warmup=1) -> Timing:
    """Time ``fn()`` after ``warmup`` untimed calls (JIT compilation, first-touch page faults).

    Repeats until at least ``min_repeats`` calls *and* at least ``min_time_s`` seconds have been
    timed. ``sync`` (e.g. a device synchronisation) is called after every call, inside the timed
    interval, so that asynchronous work is counted.

    >>> t = time_call(lambda: sum(range(1000)), min_time_s=0.01, min_repeats=3)
    >>> t.repeats >= 3 and 0 < t.best_s <= t.median_s
    True
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
        sync()
    times = []
    total = 0.0
    while len(times) < min_repeats or total < min_time_s:
        t0 = time.perf_counter()
        fn()
        sync()
        dt = time.perf_counter() - t0
        times.append(dt)
        total += dt
    return Timing(min(times), statistics.median(times), len(times), total)
