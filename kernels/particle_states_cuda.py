"""CUDA twin of the tissue state transitions of :mod:`nanosim.kernels.particle_states`.

One thread per particle calls the ``.cuda`` form of
:func:`nanosim.kernels.particle_states.update_state`, the same function the Numba kernel calls,
on the same Philox streams, so the two backends make identical decisions. The counts per
transition kind are gathered with one atomic add per particle that changes state. Arrays may be
CuPy arrays or Numba device arrays (anything with the CUDA array interface); under
``NUMBA_ENABLE_CUDASIM=1`` NumPy arrays run in Numba's CUDA simulator.

Importing it imports ``numba.cuda``: :func:`nanosim.kernels.particle_states.transition` loads it
only for ``backend_name="cupy"`` (tests and benchmarks may import it directly).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import particle_states
# device arrays pass through (NumPy arrays too under the simulator); host arrays are copied
from .particles_cuda import _device_asarray

__all__ = ["transition", "THREADS_PER_BLOCK"]

#: Default block size of the transition kernel.
THREADS_PER_BLOCK = 256

_update = particle_states.update_state.cuda


@cuda.jit
def _kernel(x, y, z, state, ids, region, rates, iv, has_iv, ox, oy, oz, h, nx, ny, nz, dt, seed,
            step, counts):
    i = cuda.grid(1)
    if i < x.shape[0]:
        kind = _update(i, x, y, z, state, ids, region, rates, iv, has_iv, ox, oy, oz, h, nx, ny,
                       nz, dt, seed, step)
        if kind >= 0:
            cuda.atomic.add(counts, kind, 1)


_IV_DUMMY = []


def _device_dummy():
    """A 1×1×1 placeholder for an absent intravasation map (made once per process)."""
    if not _IV_DUMMY:
        _IV_DUMMY.append(cuda.to_device(np.zeros((1, 1, 1))))
    return _IV_DUMMY[0]


def transition(x, y, z, state, ids, step, *, dt_s, seed, grid, region, rates_per_s,
               intravasation_per_s=None, counts=None, threads_per_block=THREADS_PER_BLOCK,
               stream=0):
    """One step of tissue state transitions on the device (``state`` in place).

    Arguments as :func:`nanosim.kernels.particle_states.numba_transition`, with device arrays
    (CuPy or Numba; NumPy arrays under the CUDA simulator). ``region``, ``rates_per_s`` and
    ``intravasation_per_s`` given as host arrays are copied to the device on every call.

    Parameters
    ----------
    counts : device array of int64, shape (6,), optional
        Where the kernel adds its counts (zeroed first); allocated when not given.
    threads_per_block : int, optional
        CUDA block size.
    stream : int or numba stream, optional
        A Numba stream, or a raw ``cudaStream_t`` pointer (e.g.
        ``cupy.cuda.get_current_stream().ptr``); 0 is the default stream.

    Returns
    -------
    device array of int64, shape (6,)
        The counts, indexed as :data:`~nanosim.kernels.particle_states.TRANSITIONS`; the launch
        is asynchronous with respect to the host.

    Notes
    -----
    Shapes and dtypes are checked; value checks that need a device-to-host copy (ids, region
    codes and rates in range) are done only for host arrays.
    """
    kw = dict(dt_s=dt_s, seed=seed, grid=grid, region=region, rates_per_s=rates_per_s,
              intravasation_per_s=intravasation_per_s)
    ids, args = particle_states._prepare(x, y, z, state, ids, step, asarray=_device_asarray,
                                         dummy=_device_dummy, **kw)
    if isinstance(stream, int):
        stream = cuda.external_stream(stream) if stream else cuda.default_stream()
    if counts is None:
        counts = cuda.to_device(np.zeros(particle_states.N_TRANSITIONS, np.int64), stream=stream)
    else:
        counts[:] = 0
    n = x.shape[0]
    if n == 0:
        return counts
    blocks = (n + threads_per_block - 1) // threads_per_block
    _kernel[blocks, threads_per_block, stream](x, y, z, state, ids, *args, counts)
    return counts
