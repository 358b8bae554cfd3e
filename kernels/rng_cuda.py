"""CUDA kernels for the Philox-4x32-10 random numbers of :mod:`nanosim.kernels.rng`.

One thread per entity: thread ``i`` writes the number of entity ``first_entity + i`` by calling
the ``.cuda`` form of the pointwise functions, so the streams are those of the NumPy and Numba
drivers. The kernels take any array exposing the CUDA array interface (CuPy, Numba device
arrays); under ``NUMBA_ENABLE_CUDASIM=1`` they run in Numba's CUDA simulator on NumPy arrays.

This module imports ``numba.cuda`` and is therefore only imported on demand (by
:func:`nanosim.kernels.rng.fill_uniform` with ``backend_name="cupy"``, or directly).
"""

from __future__ import annotations

from numba import cuda

from . import rng

__all__ = ["fill_uniform", "fill_normal", "philox4x32_10_kernel", "THREADS_PER_BLOCK"]

#: Default block size of the fill kernels.
THREADS_PER_BLOCK = 256

_philox = rng.philox4x32_10.cuda
_uniform = rng.uniform.cuda
_normal = rng.normal.cuda


@cuda.jit
def _uniform_kernel(out, seed, step, draw, first_entity, upper):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = min(_uniform(seed, first_entity + i, step, draw), upper)


@cuda.jit
def _normal_kernel(out, seed, step, draw, first_entity):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = _normal(seed, first_entity + i, step, draw)


@cuda.jit
def philox4x32_10_kernel(words, ctr, key):
    """Raw Philox blocks: ``words[i, :] = philox4x32_10(*ctr[i, :], *key[i, :])`` (int64 arrays).

    Used to check the device form against the Random123 known answers.
    """
    i = cuda.grid(1)
    if i < ctr.shape[0]:
        x0, x1, x2, x3 = _philox(ctr[i, 0], ctr[i, 1], ctr[i, 2], ctr[i, 3], key[i, 0], key[i, 1])
        words[i, 0] = x0
        words[i, 1] = x1
        words[i, 2] = x2
        words[i, 3] = x3


def _launch(kernel, out, args, threads_per_block, stream):
    n = out.shape[0]
    if n == 0:
        return out
    blocks = (n + threads_per_block - 1) // threads_per_block
    if not isinstance(stream, int):
        kernel[blocks, threads_per_block, stream](out, *args)
    elif stream:
        kernel[blocks, threads_per_block, cuda.external_stream(stream)](out, *args)
    else:
        kernel[blocks, threads_per_block](out, *args)
    return out


def fill_uniform(
    out, seed, step, draw, first_entity=0, *, threads_per_block=THREADS_PER_BLOCK, stream=0
):
    """Fill device array ``out[i]`` with ``rng.uniform(seed, first_entity + i, step, draw)``.

    Parameters
    ----------
    out : device array, 1-D, float32 or float64
        CuPy array or Numba device array (a NumPy array under the CUDA simulator).
    seed, step, draw : int
        Stream address, see :mod:`nanosim.kernels.rng`.
    first_entity : int, optional
        Entity id of ``out[0]``.
    threads_per_block : int, optional
        CUDA block size.
    stream : int or numba stream, optional
        Stream to launch on: a Numba stream object, or a raw ``cudaStream_t`` pointer as an
        integer (e.g. ``cupy.cuda.get_current_stream().ptr``); 0 is the default stream.

    Returns
    -------
    device array
        ``out``; the launch is asynchronous with respect to the host.
    """
    first_entity = rng._check_out(out, first_entity)
    upper = rng._uniform_upper(out.dtype)
    args = (rng.seed64(seed), int(step), int(draw), first_entity, upper)
    return _launch(_uniform_kernel, out, args, threads_per_block, stream)


def fill_normal(
    out, seed, step, draw, first_entity=0, *, threads_per_block=THREADS_PER_BLOCK, stream=0
):
    """Fill device array ``out[i]`` with ``rng.normal(seed, first_entity + i, step, draw)``.

    Parameters and return value as in :func:`fill_uniform`.
    """
    first_entity = rng._check_out(out, first_entity)
    args = (rng.seed64(seed), int(step), int(draw), first_entity)
    return _launch(_normal_kernel, out, args, threads_per_block, stream)
