"""Run the cupy cases of the particle benchmark in Numba's CUDA simulator (tiny sizes).

Executed in a subprocess with NUMBA_ENABLE_CUDASIM=1 by tests/bench/test_particles_bench.py.
A stand-in for the cupy backend holds NumPy arrays (the simulator's device arrays), so the
benchmark's GPU path — device arrays, ``particles_cuda.step_particles`` on CuPy's current
stream (0 here), a device synchronisation per repeat — runs without CuPy or a GPU. Prints the
records as JSON on stdout.
"""

import json
import sys

import numpy as np

from nanosim.bench import particles as PB
from nanosim.bench.record import BenchContext


class SimulatedCupy:
    """The parts of :class:`nanosim.backends.Backend` the benchmark uses, for "cupy"."""

    name = "cupy"
    is_gpu = True
    xp = np
    device = "Numba CUDA simulator"

    def asarray(self, a, dtype=None):
        return np.ascontiguousarray(np.asarray(a, dtype=dtype))

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def synchronize(self):
        pass


def main():
    PB.COUNT_QUICK = 48  # the simulator runs each thread in Python
    PB.EDGE_QUICK = 4
    warnings = []
    ctx = BenchContext(backends={"cupy": SimulatedCupy()}, quick=True, shapes=(),
                       dtypes=(np.float32,), min_time_s=0.0, min_repeats=1, warn=warnings.append)
    records = [r.as_dict() for r in PB.particle_steps(ctx)]
    if warnings:
        print("\n".join(warnings), file=sys.stderr)
        return 1
    json.dump(records, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
