"""CUDA twin of the particle step of :mod:`nanosim.kernels.particles`.

One thread per particle calls the ``.cuda`` form of
:func:`nanosim.kernels.particles.update_particle`, the same function the Numba kernel calls, so
the two backends share one physics source and the same Philox streams. Arrays may be CuPy
arrays or Numba device arrays (anything with the CUDA array interface); under
``NUMBA_ENABLE_CUDASIM=1`` NumPy arrays run in Numba's CUDA simulator.

This module imports ``numba.cuda`` and is therefore only imported on demand (by
:func:`nanosim.kernels.particles.step_particles` with ``backend_name="cupy"``, or directly).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

from . import particles

__all__ = ["step_particles", "THREADS_PER_BLOCK"]

#: Default block size of the particle kernel.
THREADS_PER_BLOCK = 256

_update = particles.update_particle.cuda


@cuda.jit
def _kernel(x, y, z, ids, state, moving, d_uniform, d_part, d_mode, region, code_bytes, d_table,
            u, has_u, trilinear, ox, oy, oz, h, nx, ny, nz, per_x, per_y, per_z, dt, seed, step,
            uniform):
    i = cuda.grid(1)
    if i < x.shape[0]:
        _update(i, x, y, z, ids, state, moving, d_uniform, d_part, d_mode, region, code_bytes,
                d_table, u, has_u, trilinear, ox, oy, oz, h, nx, ny, nz, per_x, per_y, per_z, dt,
                seed, step, uniform)


_DEVICE_DUMMIES = {}


def _device_dummy(kind):
    """Small placeholder device arrays for absent optional inputs (made once per process)."""
    if kind not in _DEVICE_DUMMIES:
        _DEVICE_DUMMIES[kind] = cuda.to_device(particles._host_dummy(kind))
    return _DEVICE_DUMMIES[kind]


def _device_asarray(a):
    """Device arrays pass through; host arrays are copied to the device.

    Under the CUDA simulator NumPy arrays are the device arrays and pass through as well (so
    they also get the host-side value checks).
    """
    if hasattr(a, "__cuda_array_interface__") or (numba.config.ENABLE_CUDASIM
                                                   and isinstance(a, np.ndarray)):
        return a
    return cuda.to_device(np.ascontiguousarray(a))


def step_particles(x, y, z, ids, state, step, *, dt_s, seed, grid, diffusivity_m2_per_s=None,
                   region=None, region_diffusivity_m2_per_s=None, velocity_m_per_s=None,
                   velocity_interpolation="nearest", periodic=(False, False, False),
                   moving_state=particles.STATE_TISSUE, step_distribution="gaussian",
                   threads_per_block=THREADS_PER_BLOCK, stream=0):
    """One particle step on the device (in place); arguments as
    :func:`nanosim.kernels.particles.numba_step_particles`.

    Parameters
    ----------
    x, y, z, ids, state : device arrays
        As for the CPU driver, on the device (CuPy or Numba device arrays; NumPy arrays under
        the CUDA simulator). ``ids`` of a dtype other than int64 are converted (a copy).
    region, region_diffusivity_m2_per_s, velocity_m_per_s, diffusivity_m2_per_s : optional
        Device arrays; host arrays are accepted but copied to the device on every call.
    threads_per_block : int, optional
        CUDA block size.
    stream : int or numba stream, optional
        A Numba stream, or a raw ``cudaStream_t`` pointer (e.g.
        ``cupy.cuda.get_current_stream().ptr``); 0 is the default stream.

    Returns
    -------
    (device array, device array, device array)
        ``x, y, z``; the launch is asynchronous with respect to the host.

    Notes
    -----
    Shapes and dtypes are checked; value checks that would need a device-to-host copy (ids in
    range, region codes within the table, non-negative diffusivities) are done only for host
    arrays. The choices (diffusivity mode, velocity lookup, step distribution) are kernel
    arguments here, not constants: they are the same for every thread, so the branches cost
    next to nothing on the GPU.
    """
    args = particles._prepare(x, y, z, ids, state, step, asarray=_device_asarray,
                              dummy=_device_dummy, **particles._options(locals()))
    n = x.shape[0]
    if n == 0:
        return x, y, z
    blocks = (n + threads_per_block - 1) // threads_per_block
    if not isinstance(stream, int):
        launch = _kernel[blocks, threads_per_block, stream]
    elif stream:
        launch = _kernel[blocks, threads_per_block, cuda.external_stream(stream)]
    else:
        launch = _kernel[blocks, threads_per_block]
    launch(x, y, z, *args)
    return x, y, z
