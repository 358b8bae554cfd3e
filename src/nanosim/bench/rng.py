"""Normal random numbers per second of the counter-based generator (Philox-4x32-10 + Box–Muller).

The generator is compute-bound (ten rounds of 32×32-bit multiplications, a ``log``, a ``sqrt``
and a ``cos`` per number, against 8 bytes written), so its records carry no roof fraction.
"""

from __future__ import annotations

from ..kernels import rng
from .record import benchmark

#: Numbers per fill (full run and quick run).
COUNT = 2**22
COUNT_QUICK = 2**14


def _normal_case(ctx, be, dtype, shape):
    out = be.zeros(shape, dtype)
    timing = ctx.time(lambda: rng.fill_normal(be.name, out, 1234, 0, 0), be)
    return ctx.throughput("rng_normal", be, dtype, shape, timing, items=out.size, unit="normals/s",
                          generator="Philox-4x32-10, Box-Muller", bound="compute")


@benchmark("rng_normal")
def rng_normal(ctx):
    """Standard normals per second filled by the counter-based generator (float64)."""
    n = COUNT_QUICK if ctx.quick else COUNT
    yield from ctx.cases("rng_normal", _normal_case, shapes=((n,),), dtypes=("float64",))
