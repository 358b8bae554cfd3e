r"""Per-voxel exposure accounting of the unbound drug, compiled for the CPU (see
:mod:`nanosim.drug.exposure` for the quantities and PHYSICS.md §8).

:func:`fraction_above` is the one formula for the part of a step spent above the threshold;
:func:`numba_update` applies a whole step's update in one pass over the voxels (the NumPy form
in :mod:`nanosim.drug.exposure` makes about fifteen passes through temporaries and is the
reference the tests compare with).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._compile import NJIT_OPTIONS, pointwise


@pointwise
def fraction_above(c0, c1, thr):
    """Part of a step during which the linear interpolation from ``c0`` to ``c1`` is ≥ ``thr``."""
    above0 = c0 >= thr
    above1 = c1 >= thr
    if above0 and above1:
        return 1.0
    if above0 == above1:
        return 0.0
    s = (thr - c0) / (c1 - c0)  # where the line meets the threshold, in [0, 1]
    if above1:
        return 1.0 - s  # rising: after the crossing
    return s  # falling: before it


_fraction_above = fraction_above.cpu


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _update_kernel(c, prev, auc, cmax, time_above, dt, thr):
    for i in prange(c.size):
        c0 = prev[i]
        c1 = np.float64(c[i])
        auc[i] += 0.5 * (c0 + c1) * dt
        m = cmax[i]
        if c1 > m or c1 != c1:  # np.maximum: the larger value, NaN wins
            cmax[i] = c1
        time_above[i] += dt * _fraction_above(c0, c1, thr)
        prev[i] = c1


def numba_update(c, prev, auc, cmax, time_above, dt: float, thr: float) -> None:
    """One step of length ``dt`` ending with concentration ``c`` (any float dtype), in place on the
    float64 arrays ``prev`` (the concentration at the step's start, becomes ``c``), ``auc``,
    ``cmax`` and ``time_above`` (all C-contiguous, the shape of ``c``)."""
    _update_kernel(np.ascontiguousarray(c).reshape(-1), prev.reshape(-1), auc.reshape(-1),
                   cmax.reshape(-1), time_above.reshape(-1), float(dt), float(thr))
