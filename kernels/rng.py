r"""Counter-based random numbers: Philox-4x32-10, written once for every backend.

A counter-based generator has no state: the random numbers are a pure function of a *key* and
a *counter*. Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
SC'11; the Random123 library) maps a 128-bit counter and a 64-bit key to 128 random bits with
ten rounds of 32×32→64-bit multiplications and XORs. Any number can be computed on its own,
in any order, on any device, which is what makes particle histories identical on every backend
and lets a resumed run continue exactly the same streams.

Key and counter layout
----------------------
Every random number in nanosim is addressed by four integers:

- ``seed``   the scenario seed, 64 bits (``key = (seed & 0xffffffff, seed >> 32)``; a negative
  seed is read as its 64-bit two's-complement pattern),
- ``entity`` the id of the particle (or voxel, vessel segment, ...), ``0 <= entity < 2**63``
  (``counter[0:2] = (entity & 0xffffffff, entity >> 32)``),
- ``step``   the time-step index, taken modulo ``2**32`` (``counter[2]``),
- ``draw``   which random block of that entity in that step, modulo ``2**32`` (``counter[3]``).

One ``(seed, entity, step, draw)`` is one Philox block of four 32-bit words ``x0..x3``, turned
into numbers as follows:

- :func:`uniform_pair` → ``(u0, u1)`` with ``u0`` from ``(x0, x1)`` and ``u1`` from
  ``(x2, x3)``, each made of 53 random bits by :func:`u01_from_words`, strictly inside (0, 1);
- :func:`normal_pair` → ``(z0, z1)``, the Box–Muller transform of that same ``(u0, u1)``:
  ``z0 = sqrt(-2 ln u0) cos(2π u1)``, ``z1 = sqrt(-2 ln u0) sin(2π u1)``;
- :func:`uniform` is ``u0`` and :func:`normal` is ``z0``.

A uniform pair and a normal pair with the same ``draw`` come from the same bits, so a kernel
that needs several kinds of random numbers gives each its own ``draw`` index. The convention
for particle kernels: the three Brownian normals of particle ``p`` at step ``n`` are
``normal_pair(seed, p, n, 0)`` (x and y) and ``normal(seed, p, n, 1)`` (z); further numbers in
the same step use ``draw = 2, 3, ...`` (one index per pair).

Backends
--------
The scalar functions here are compiled with :func:`nanosim.kernels._compile.pointwise`
(``.py``, ``.cpu``, ``.cuda`` forms). All integer work stays in signed 64-bit integers without
overflow: each 32×32-bit product is formed as ``M·b = 2·(⌊M/2⌋·b) + b`` (both Philox
multipliers are odd), so every intermediate is below ``2**63`` and plain Python, ``numba.njit``
and CUDA device code produce the same bits. Array drivers fill ``out[i]`` with the number of
entity ``first_entity + i``:

- :func:`numpy_fill_uniform`, :func:`numpy_fill_normal`: vectorised NumPy with ``uint64``
  arrays, the reference;
- :func:`numba_fill_uniform`, :func:`numba_fill_normal`: ``prange`` loops over the ``.cpu``
  forms;
- ``nanosim.kernels.rng_cuda.fill_uniform`` / ``fill_normal``: CUDA kernels, one thread per
  entity, over the ``.cuda`` forms (imported lazily);
- :func:`fill_uniform`, :func:`fill_normal`: dispatch on a backend name.

Uniforms are bitwise identical on every backend. Normals go through ``log``, ``cos`` and
``sin``, whose last bit may depend on the math library; they agree to a few units in the last
place. Outputs may be float32 or float64; a float32 uniform is the float64 value rounded to
nearest and then kept below 1 (at most ``1 - 2**-24``).

Examples
--------
>>> from nanosim.kernels import rng
>>> [hex(w) for w in rng.philox4x32_10(0, 0, 0, 0, 0, 0)]
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
>>> u0, u1 = rng.uniform_pair(42, 7, 0, 0)
>>> 0.0 < u0 < 1.0 and 0.0 < u1 < 1.0
True
>>> import numpy as np
>>> out = rng.fill_uniform("numba", np.empty(4), seed=42, step=0, draw=0, first_entity=7)
>>> float(out[0]) == u0
True
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._compile import NJIT_OPTIONS, pointwise

__all__ = [
    "BACKENDS",
    "seed64",
    "philox4x32_10",
    "u01_from_words",
    "uniform_pair",
    "normal_pair",
    "uniform",
    "normal",
    "numpy_philox4x32_10",
    "numpy_fill_uniform",
    "numpy_fill_normal",
    "numba_fill_uniform",
    "numba_fill_normal",
    "fill_uniform",
    "fill_normal",
]

#: Backend names accepted by :func:`fill_uniform` and :func:`fill_normal`.
BACKENDS = ("numpy", "numba", "cupy")

# Philox-4x32 round multipliers and Weyl key increments (Random123, philox.h).
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10

_MASK32 = 0xFFFFFFFF
_MASK31 = 0x7FFFFFFF
# Both multipliers are odd: M·b = 2·(M >> 1)·b + b, with (M >> 1)·b < 2**63.
_M0_HALF = PHILOX_M0 >> 1
_M1_HALF = PHILOX_M1 >> 1

_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53, exact
_TWO_M54 = 0.5 * _TWO_M53
_TWO_PI = 2.0 * math.pi
#: Largest float32 below 1 (``1 - 2**-24``): the upper clamp of float32 uniforms.
_F32_BELOW_ONE = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


# --------------------------------------------------------------------------------------------
# Pointwise functions
# --------------------------------------------------------------------------------------------


@pointwise
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox-4x32-10 block function: four 32-bit counter words and two key words → four words.

    Parameters
    ----------
    c0, c1, c2, c3 : int
        Counter words; only the low 32 bits are used.
    k0, k1 : int
        Key words; only the low 32 bits are used.

    Returns
    -------
    tuple of 4 int
        The random words, each in ``[0, 2**32)``, equal to Random123's ``philox4x32(ctr, key)``
        with 10 rounds.

    Notes
    -----
    One round maps ``(c0, c1, c2, c3)`` to
    ``(hi(M1·c2) ^ c1 ^ k0, lo(M1·c2), hi(M0·c0) ^ c3 ^ k1, lo(M0·c0))`` and the key is bumped
    by ``(W0, W1)`` between rounds. ``hi``/``lo`` are the upper/lower 32 bits of the 64-bit
    product, computed without leaving the signed 64-bit range (module docstring).
    """
    c0 = c0 & _MASK32
    c1 = c1 & _MASK32
    c2 = c2 & _MASK32
    c3 = c3 & _MASK32
    k0 = k0 & _MASK32
    k1 = k1 & _MASK32
    for r in range(PHILOX_ROUNDS):
        if r > 0:
            k0 = (k0 + PHILOX_W0) & _MASK32
            k1 = (k1 + PHILOX_W1) & _MASK32
        # M0·c0 = 2·p0 + c0 with p0 = (M0 >> 1)·c0 < 2**63.
        p0 = _M0_HALF * c0
        t0 = ((p0 & _MASK31) << 1) + c0
        hi0 = (p0 >> 31) + (t0 >> 32)
        lo0 = t0 & _MASK32
        p1 = _M1_HALF * c2
        t1 = ((p1 & _MASK31) << 1) + c2
        hi1 = (p1 >> 31) + (t1 >> 32)
        lo1 = t1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


@pointwise
def u01_from_words(w_hi, w_lo):
    """Float64 strictly inside (0, 1) from 53 random bits of two 32-bit words.

    Parameters
    ----------
    w_hi, w_lo : int
        Random 32-bit words (``[0, 2**32)``).

    Returns
    -------
    float
        ``k · 2**-53`` with ``k = (w_hi << 21) | (w_lo >> 11)`` (all 32 bits of ``w_hi`` and the
        top 21 of ``w_lo``), except ``k = 0``, which gives ``2**-54``. Values lie in
        ``[2**-54, 1 - 2**-53]``: never 0 (``log`` is finite) and never 1.
    """
    k = ((w_hi & _MASK32) << 21) | ((w_lo & _MASK32) >> 11)
    if k == 0:
        return _TWO_M54
    return k * _TWO_M53


@pointwise
def uniform_pair(seed, entity, step, draw):
    """Two independent uniforms in (0, 1) for one ``(seed, entity, step, draw)``.

    Parameters
    ----------
    seed : int
        Scenario seed (64 bits; negative values read as two's complement).
    entity : int
        Entity id, ``0 <= entity < 2**63``.
    step : int
        Time-step index (modulo ``2**32``).
    draw : int
        Block index within the step (modulo ``2**32``).

    Returns
    -------
    tuple of 2 float
        ``(u0, u1)`` in ``[2**-54, 1 - 2**-53]``, built from words ``(x0, x1)`` and ``(x2, x3)``
        of ``philox4x32_10(entity_lo, entity_hi, step, draw, seed_lo, seed_hi)``.
    """
    x0, x1, x2, x3 = philox4x32_10(
        entity & _MASK32,
        (entity >> 32) & _MASK32,
        step & _MASK32,
        draw & _MASK32,
        seed & _MASK32,
        (seed >> 32) & _MASK32,
    )
    return u01_from_words(x0, x1), u01_from_words(x2, x3)


@pointwise
def normal_pair(seed, entity, step, draw):
    """Two independent standard normals for one ``(seed, entity, step, draw)`` (Box–Muller).

    Parameters
    ----------
    seed, entity, step, draw : int
        As in :func:`uniform_pair`.

    Returns
    -------
    tuple of 2 float
        ``(z0, z1) = r (cos θ, sin θ)`` with ``r = sqrt(-2 ln u0)``, ``θ = 2π u1`` and
        ``(u0, u1) = uniform_pair(seed, entity, step, draw)``; ``|z| < 8.7``.
    """
    u0, u1 = uniform_pair(seed, entity, step, draw)
    r = math.sqrt(-2.0 * math.log(u0))
    theta = _TWO_PI * u1
    return r * math.cos(theta), r * math.sin(theta)


@pointwise
def uniform(seed, entity, step, draw):
    """First uniform of :func:`uniform_pair` (the one :func:`fill_uniform` writes)."""
    u0, u1 = uniform_pair(seed, entity, step, draw)
    return u0


@pointwise
def normal(seed, entity, step, draw):
    """First normal of :func:`normal_pair` (the one :func:`fill_normal` writes).

    Computes only the cosine branch: bitwise equal to ``normal_pair(...)[0]``.
    """
    u0, u1 = uniform_pair(seed, entity, step, draw)
    return math.sqrt(-2.0 * math.log(u0)) * math.cos(_TWO_PI * u1)


# --------------------------------------------------------------------------------------------
# Argument handling shared by the drivers
# --------------------------------------------------------------------------------------------


def seed64(seed):
    """The signed 64-bit integer with the same low 64 bits as ``seed`` (fits numba's int64)."""
    s = int(seed) & 0xFFFFFFFFFFFFFFFF
    return s - (1 << 64) if s >= (1 << 63) else s


def _check_out(out, first_entity):
    if out.ndim != 1:
        raise ValueError(f"out must be one-dimensional, got shape {out.shape}")
    if out.dtype not in (np.float32, np.float64):
        raise TypeError(f"out must be float32 or float64, got {out.dtype}")
    first_entity = int(first_entity)
    if first_entity < 0 or first_entity + out.shape[0] > (1 << 63):
        raise ValueError(f"entity ids must lie in [0, 2**63), got first_entity={first_entity}")
    return first_entity


def _uniform_upper(dtype):
    """Upper clamp for uniforms stored as ``dtype`` (1.0 is never reached by float64 values)."""
    return _F32_BELOW_ONE if dtype == np.float32 else 1.0


# --------------------------------------------------------------------------------------------
# NumPy reference
# --------------------------------------------------------------------------------------------

_U32 = np.uint64(_MASK32)
_S32 = np.uint64(32)
_NUMPY_CHUNK = 1 << 16


def numpy_philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Vectorised Philox-4x32-10 on ``uint64`` arrays holding 32-bit words.

    Parameters
    ----------
    c0, c1, c2, c3 : array_like of uint64
        Counter words (broadcast together), values in ``[0, 2**32)``.
    k0, k1 : int
        Key words in ``[0, 2**32)``.

    Returns
    -------
    tuple of 4 ndarray of uint64
        The random words; the products are formed directly in unsigned 64-bit arithmetic.
    """
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in (c0, c1, c2, c3))
    m0 = np.uint64(PHILOX_M0)
    m1 = np.uint64(PHILOX_M1)
    key0, key1 = int(k0) & _MASK32, int(k1) & _MASK32
    for r in range(PHILOX_ROUNDS):
        if r > 0:
            key0 = (key0 + PHILOX_W0) & _MASK32
            key1 = (key1 + PHILOX_W1) & _MASK32
        p0 = m0 * c0
        p1 = m1 * c2
        c0, c1, c2, c3 = (
            (p1 >> _S32) ^ c1 ^ np.uint64(key0),
            p1 & _U32,
            (p0 >> _S32) ^ c3 ^ np.uint64(key1),
            p0 & _U32,
        )
    return c0, c1, c2, c3


def _numpy_u01(w_hi, w_lo):
    k = (w_hi << np.uint64(21)) | (w_lo >> np.uint64(11))
    u = k.astype(np.float64) * _TWO_M53
    u[k == 0] = _TWO_M54
    return u


def _numpy_uniform_pairs(n, seed, step, draw, first_entity):
    s = seed64(seed) & 0xFFFFFFFFFFFFFFFF
    ids = np.arange(first_entity, first_entity + n, dtype=np.uint64)
    x0, x1, x2, x3 = numpy_philox4x32_10(
        ids & _U32,
        ids >> _S32,
        np.uint64(int(step) & _MASK32),
        np.uint64(int(draw) & _MASK32),
        s & _MASK32,
        s >> 32,
    )
    return _numpy_u01(x0, x1), _numpy_u01(x2, x3)


def numpy_fill_uniform(out, seed, step, draw, first_entity=0):
    """Fill ``out[i]`` with ``uniform(seed, first_entity + i, step, draw)`` (NumPy reference).

    Parameters
    ----------
    out : ndarray, 1-D, float32 or float64
        Output array, written in place.
    seed, step, draw : int
        Stream address, see the module docstring.
    first_entity : int, optional
        Entity id of ``out[0]``.

    Returns
    -------
    ndarray
        ``out``.
    """
    first_entity = _check_out(out, first_entity)
    upper = _uniform_upper(out.dtype)
    for start in range(0, out.shape[0], _NUMPY_CHUNK):
        stop = min(start + _NUMPY_CHUNK, out.shape[0])
        u0, _ = _numpy_uniform_pairs(stop - start, seed, step, draw, first_entity + start)
        out[start:stop] = np.minimum(u0, upper)
    return out


def numpy_fill_normal(out, seed, step, draw, first_entity=0):
    """Fill ``out[i]`` with ``normal(seed, first_entity + i, step, draw)`` (NumPy reference).

    Parameters and return value as in :func:`numpy_fill_uniform`.
    """
    first_entity = _check_out(out, first_entity)
    for start in range(0, out.shape[0], _NUMPY_CHUNK):
        stop = min(start + _NUMPY_CHUNK, out.shape[0])
        u0, u1 = _numpy_uniform_pairs(stop - start, seed, step, draw, first_entity + start)
        out[start:stop] = np.sqrt(-2.0 * np.log(u0)) * np.cos(_TWO_PI * u1)
    return out


# --------------------------------------------------------------------------------------------
# Numba (CPU) drivers
# --------------------------------------------------------------------------------------------

_uniform = uniform.cpu
_normal = normal.cpu


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _numba_uniform_kernel(out, seed, step, draw, first_entity, upper):
    for i in numba.prange(out.shape[0]):
        out[i] = min(_uniform(seed, first_entity + i, step, draw), upper)


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _numba_normal_kernel(out, seed, step, draw, first_entity):
    for i in numba.prange(out.shape[0]):
        out[i] = _normal(seed, first_entity + i, step, draw)


def numba_fill_uniform(out, seed, step, draw, first_entity=0):
    """Numba ``prange`` twin of :func:`numpy_fill_uniform` (bitwise identical output)."""
    first_entity = _check_out(out, first_entity)
    _numba_uniform_kernel(
        out, seed64(seed), int(step), int(draw), first_entity, _uniform_upper(out.dtype)
    )
    return out


def numba_fill_normal(out, seed, step, draw, first_entity=0):
    """Numba ``prange`` twin of :func:`numpy_fill_normal`."""
    first_entity = _check_out(out, first_entity)
    _numba_normal_kernel(out, seed64(seed), int(step), int(draw), first_entity)
    return out


# --------------------------------------------------------------------------------------------
# Dispatch by backend name
# --------------------------------------------------------------------------------------------


def _cupy_fill(kind, out, seed, step, draw, first_entity):
    import cupy

    from . import rng_cuda

    stream = cupy.cuda.get_current_stream().ptr
    fill = rng_cuda.fill_uniform if kind == "uniform" else rng_cuda.fill_normal
    return fill(out, seed, step, draw, first_entity, stream=stream)


def _dispatch(kind, backend_name, out, seed, step, draw, first_entity):
    if backend_name == "numpy":
        fill = numpy_fill_uniform if kind == "uniform" else numpy_fill_normal
    elif backend_name == "numba":
        fill = numba_fill_uniform if kind == "uniform" else numba_fill_normal
    elif backend_name == "cupy":
        return _cupy_fill(kind, out, seed, step, draw, first_entity)
    else:
        raise ValueError(f"unknown backend {backend_name!r}; expected one of {BACKENDS}")
    return fill(out, seed, step, draw, first_entity)


def fill_uniform(backend_name, out, seed, step, draw, first_entity=0):
    """Fill ``out[i]`` with ``uniform(seed, first_entity + i, step, draw)`` on a backend.

    Parameters
    ----------
    backend_name : {"numpy", "numba", "cupy"}
        ``"cupy"`` runs the CUDA kernel of :mod:`nanosim.kernels.rng_cuda` on a CuPy array,
        on CuPy's current stream.
    out : array, 1-D, float32 or float64
        NumPy array (``numpy``, ``numba``) or CuPy array (``cupy``), written in place.
    seed, step, draw : int
        Stream address, see the module docstring.
    first_entity : int, optional
        Entity id of ``out[0]``.

    Returns
    -------
    array
        ``out``.
    """
    return _dispatch("uniform", backend_name, out, seed, step, draw, first_entity)


def fill_normal(backend_name, out, seed, step, draw, first_entity=0):
    """Fill ``out[i]`` with ``normal(seed, first_entity + i, step, draw)`` on a backend.

    Parameters and return value as in :func:`fill_uniform`.
    """
    return _dispatch("normal", backend_name, out, seed, step, draw, first_entity)
