"""CUDA twin of the release step of :mod:`nanosim.kernels.release`.

One thread per particle calls the ``.cuda`` form of
:func:`nanosim.kernels.release.release_particle`, the same function the Numba kernel calls, so
the two backends compute the same numbers (to the last bits of the device math library).
Arrays may be CuPy arrays or Numba device arrays (anything with the CUDA array interface);
under ``NUMBA_ENABLE_CUDASIM=1`` NumPy arrays run in Numba's CUDA simulator.

Importing it imports ``numba.cuda``: :func:`nanosim.kernels.release.release_step` loads it only
for ``backend_name="cupy"`` (tests and benchmarks may import it directly).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from . import release
# device arrays pass through (NumPy arrays too under the simulator); host arrays are copied
from .particles_cuda import _device_asarray

__all__ = ["release_step", "THREADS_PER_BLOCK"]

#: Default block size of the release kernel.
THREADS_PER_BLOCK = 256

_release = release.release_particle.cuda


@cuda.jit
def _kernel(tau, frac, payload, weight, state, ph_local, speed, burst, ph, law, p0, p1, fb, pka,
            hill_n, h_min, dt, out):
    i = cuda.grid(1)
    if i < tau.shape[0]:
        _release(i, tau, frac, payload, weight, state, ph_local, speed, burst, ph, law, p0, p1, fb,
                 pka, hill_n, h_min, dt, out)


_DUMMY = []


def _device_dummy():
    """A length-1 placeholder for an absent ``ph_local`` (made once per process)."""
    if not _DUMMY:
        _DUMMY.append(cuda.to_device(np.zeros(1)))
    return _DUMMY[0]


def _device_empty(n):
    if numba.config.ENABLE_CUDASIM:  # the simulator's device arrays are NumPy arrays
        return np.empty(n)
    return cuda.device_array(n, np.float64)


def release_step(tau, released_fraction, payload_mol, weight, state, ph_local=None, *, dt_s,
                 params, out=None, threads_per_block=THREADS_PER_BLOCK, stream=0):
    """One release step on the device (``tau`` and ``released_fraction`` in place).

    Arguments as :func:`nanosim.kernels.release.numba_release_step`, with device arrays (CuPy
    or Numba; NumPy arrays under the CUDA simulator).

    ``out`` (float64 device array) receives the drug released per particle (mol) and is
    returned; a Numba device array is allocated when it is not given. ``threads_per_block`` and
    ``stream`` (a Numba stream or a raw ``cudaStream_t`` pointer such as
    ``cupy.cuda.get_current_stream().ptr``; 0: the default stream) are as for
    :func:`nanosim.kernels.particle_states_cuda.transition`. The launch is asynchronous with
    respect to the host.
    """
    out, args = release._prepare(tau, released_fraction, payload_mol, weight, state, ph_local,
                                 dt_s, params, out, asarray=_device_asarray, empty=_device_empty,
                                 dummy=_device_dummy)
    if isinstance(stream, int):
        stream = cuda.external_stream(stream) if stream else cuda.default_stream()
    n = tau.shape[0]
    if n == 0:
        return out
    blocks = (n + threads_per_block - 1) // threads_per_block
    _kernel[blocks, threads_per_block, stream](tau, released_fraction, payload_mol, weight, state,
                                               *args, out)
    return out
