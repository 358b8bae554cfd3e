r"""Interstitial carrier particles: one Brownian–convective step, NumPy reference and Numba driver.

Each particle ``p`` in the moving (tissue) state advances by

.. math::

    \mathbf{x} \leftarrow \mathbf{x} + \mathbf{u}(\mathbf{x})\,Δt
        + \sqrt{2 D(\mathbf{x})\,Δt}\;\boldsymbol{ξ},\qquad \langle ξ_a \rangle = 0,\;
        \langle ξ_a ξ_b \rangle = δ_{ab},

(Euler–Maruyama, Itô: ``D`` and ``u`` are taken at the start-of-step position) and is then
folded back into the box by specular reflection at its faces, or wrapped on a periodic axis.
In free space this gives ``⟨|Δx|²⟩ = 6 D t`` exactly for any step size and either step
distribution (PHYSICS.md §5).

Step distributions
------------------
``step_distribution="gaussian"`` (the default) draws ``ξ_a ~ N(0, 1)``: with constant ``D`` and
``u`` the step is then exact in distribution for any ``Δt``.

``step_distribution="uniform"`` draws ``ξ_a`` uniform on ``[−√3, √3]`` (mean 0, variance 1):
the same mean and covariance per step, from one Philox block and no ``log``/``sin``/``cos``,
several times faster (benchmarks/README.md, "Particles"). It is equivalent to the Gaussian step
where the observable spans many steps:

- **Exactly the same**: the mean drift ``u t``, the mean squared displacement ``2 D t`` per axis
  (``6 D t`` in 3-D) after any number of steps, all odd moments (zero), and the
  cross-covariances (zero), in free space with constant ``D`` and ``u``.
- **Different per step, relaxing as 1/n**: a single step has kurtosis 9/5 = 1.8 (Gaussian: 3),
  is bounded by ``√3 σ`` (σ = √(2DΔt)) and is not isotropic (its support is a cube). The sum of
  ``n`` steps has kurtosis ``3 − 1.2/n`` per axis; by the Edgeworth expansion its density is
  ``φ_s(x) · [1 − He₄(x/s)/(20 n) + O(n⁻²)]`` with ``s = σ√n`` and
  ``He₄(z) = z⁴ − 6z² + 3``: the largest error is at the centre, ``0.15/n`` of the peak
  (1.5 % after 10 steps, 0.15 % after 100), and the density is exactly zero beyond
  ``√(3n) s`` (only far-tail events are lost: 5.5 s after 10 steps). The anisotropy of the
  fourth cumulant decays as 1/n too.
- **So use it** when what is measured (concentration profiles on the voxel grid, spreading,
  mean transit, delivery to regions several σ wide) builds up over ≥ 10 steps — which the
  ``dt="auto"`` rule of the scenario (rms step ≤ half a voxel) already implies for anything
  resolved on the grid. **Keep the Gaussian step** for quantities decided within one or a few
  steps: first passage to a plane within ~σ, absorption or rejection at walls and lumens per
  step, single-step jump statistics, or any test of the step's own distribution. There, both
  steps carry an O(√Δt) discretisation error of different size; reduce ``Δt`` and compare.

Random numbers
--------------
Keyed by ``(seed, p, n, draw)`` as in :mod:`nanosim.kernels.rng`, with the Brownian draws
:data:`~nanosim.kernels.compartments.DRAW_BROWNIAN` (0 and 1):

- Gaussian: ``(ξx, ξy) = normal_pair(seed, p, n, 0)`` and ``ξz = normal(seed, p, n, 1)``;
- uniform: the words ``(w0, w1, w2, w3) = philox4x32_10(p, n, 0; seed)`` give
  ``ξ_a = √3 · ((w_a + ½) · 2⁻³¹ − 1) = m_a · √3 · 2⁻³²`` with the odd integer
  ``m_a = 2 w_a + 1 − 2³²`` for ``a = x, y, z`` (``w3`` unused); these values are symmetric
  about 0 and their variance is ``1 − 2⁻⁶⁴``. The step is computed as
  ``m_a · (σ · √3 · 2⁻³²)`` (:func:`uniform_lattice`, :func:`step_scale`).

They depend only on ``(seed, p, n)``: the paths do not depend on the backend (NumPy, Numba,
CUDA agree to the last few bits of the normals; the uniform steps of NumPy and Numba agree
bit for bit), on the order or number of particles in the arrays, or on how a run is split
into calls — a run resumed at step ``n`` continues the same paths.

The kernels compute the Philox block with :func:`philox_block`, the function
:func:`nanosim.kernels.rng.philox4x32_10` written so that compilers vectorise it (plain
wrapping 64-bit products instead of the overflow-free split; the same bits, tested).

Inputs (SI units)
-----------------
- ``x, y, z``: positions (m), 1-D float32 or float64 arrays of one dtype, updated in place.
  Arithmetic is float64; float32 positions are the float64 result rounded to nearest (and may
  then lie up to half a float32 ulp outside the box).
- ``ids``: particle ids (int64, ``0 <= id < 2**63``; other integer dtypes are converted, a copy).
- ``state``: int8/uint8 compartment codes; only particles with ``state == moving_state``
  (default :data:`STATE_TISSUE`) move, all others are left bit-for-bit unchanged.
- ``step``: the step index ``n`` (≥ 0) that keys the random numbers.
- The box is the :class:`~nanosim.geometry.grid.Grid` (``origin_m``, ``voxel_size_m``,
  ``shape_xyz``): ``[origin, origin + n·h]`` per axis.
- Diffusivity (m²/s): either ``diffusivity_m2_per_s`` (a scalar or one value per particle) or a
  region map ``region`` (integer, shape ``(nz, ny, nx)``, indexed ``[z, y, x]``) with a table
  ``region_diffusivity_m2_per_s[region]`` — e.g. ``D₀ · f_ECM`` per tissue type — looked up at
  the voxel that contains the particle (``floor((x − origin) · (1/h))``, clamped to the
  grid).
  A C-contiguous uint8/int8 region map whose size is a multiple of 4 is read in place as
  32-bit words (which lets the lookup vectorise); other region maps are converted to int32
  on every call (a copy), so keep them uint8 or int32.
- Velocity (m/s, optional): interstitial velocity at voxel centres, shape ``(3, nz, ny, nx)``
  with components (u_x, u_y, u_z). ``velocity_interpolation="nearest"`` takes the value of the
  containing voxel; ``"trilinear"`` interpolates between the eight surrounding centres (exact
  for a linear field); on a non-periodic axis the value is held constant between the outermost
  centre and the wall, on a periodic axis the interpolation wraps around.
- ``step_distribution``: ``"gaussian"`` (default) or ``"uniform"`` (above).

Particles outside the box at the start of a step are folded in by that step (their lookups use
the nearest boundary voxel). On a jump of ``D`` between regions the plain Itô step is used: the
interface treatment (which decides whether the particle density follows ``∇·(D∇c)``) belongs
to the model that builds the region table.

Backends
--------
- :func:`numpy_step_particles`: vectorised NumPy, written independently of the pointwise
  functions, the test oracle;
- :func:`numba_step_particles`: ``prange`` over particles calling :func:`update_particle`,
  compiled once per kind of problem (diffusivity mode, region-code width, velocity lookup,
  periodic axes, step distribution) with those choices as constants and every pointwise function inlined, so that LLVM
  vectorises the whole step (AVX2/AVX-512 gathers for the lookups);
- ``nanosim.kernels.particles_cuda.step_particles``: one CUDA thread per particle calling the
  ``.cuda`` form of the same function (imported lazily);
- :func:`step_particles`: dispatch on a backend name.
"""

from __future__ import annotations

import math
import sys
from numbers import Integral

import numba
import numpy as np

from . import rng
from ._compile import NJIT_OPTIONS, pointwise
from .compartments import DRAW_BROWNIAN
from .rng import u01_from_words

__all__ = [
    "BACKENDS",
    "STATE_TISSUE",
    "INTERPOLATIONS",
    "STEP_DISTRIBUTIONS",
    "philox_block",
    "gaussian_steps",
    "uniform_lattice",
    "UNIFORM_UNIT",
    "voxel_index",
    "region_code",
    "lerp_index",
    "sample_velocity",
    "fold_position",
    "advance",
    "step_scale",
    "update_particle",
    "numpy_step_particles",
    "numba_step_particles",
    "step_particles",
]

#: Backend names accepted by :func:`step_particles`.
BACKENDS = ("numpy", "numba", "cupy")

#: Default compartment code of particles that move in the interstitium. Overridable default
#: (pass ``moving_state``); the codes of other compartments belong to the model layer.
STATE_TISSUE = 1

#: Accepted values of ``velocity_interpolation``.
INTERPOLATIONS = ("nearest", "trilinear")

#: Accepted values of ``step_distribution`` (module docstring).
STEP_DISTRIBUTIONS = ("gaussian", "uniform")

# Kernel modes for the diffusivity.
_D_UNIFORM, _D_PER_PARTICLE, _D_REGION = 0, 1, 2

_MASK32 = 0xFFFFFFFF
_PHILOX_M0 = rng.PHILOX_M0
_PHILOX_M1 = rng.PHILOX_M1
_PHILOX_W0 = rng.PHILOX_W0
_PHILOX_W1 = rng.PHILOX_W1
_PHILOX_ROUNDS = rng.PHILOX_ROUNDS
_TWO_PI = 2.0 * math.pi  # as rng._TWO_PI
#: ξ = UNIFORM_UNIT · m for the odd integers m of :func:`uniform_lattice`: √3 · 2⁻³².
UNIFORM_UNIT = math.sqrt(3.0) / 4294967296.0


# --------------------------------------------------------------------------------------------
# Pointwise functions: the one physics source of the Numba and CUDA kernels
# --------------------------------------------------------------------------------------------


@pointwise
def philox_block(c0, c1, c2, c3, k0, k1):
    """Philox-4x32-10: the same words as :func:`nanosim.kernels.rng.philox4x32_10`.

    Written with plain 64-bit products ``M·c`` (< 2**64) whose upper and lower halves are taken
    with ``(p >> 32) & 0xffffffff`` and ``p & 0xffffffff``: exact for Python integers, and
    correct for wrapping signed 64-bit integers (Numba on the CPU, CUDA) because the masks
    discard the sign extension. Unlike the overflow-free form of :mod:`~nanosim.kernels.rng`
    this compiles to one unsigned 32×32→64-bit multiply per product, which LLVM vectorises
    (``vpmuludq``): 1.4·10⁹ blocks/s on the two cores of the benchmark machine, against
    8.6·10⁷ for the overflow-free form (benchmarks/README.md, "Particles").
    """
    c0 = int(c0) & _MASK32
    c1 = int(c1) & _MASK32
    c2 = int(c2) & _MASK32
    c3 = int(c3) & _MASK32
    k0 = int(k0) & _MASK32
    k1 = int(k1) & _MASK32
    for _ in range(_PHILOX_ROUNDS):
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = (((p1 >> 32) & _MASK32) ^ c1 ^ k0, p1 & _MASK32,
                          ((p0 >> 32) & _MASK32) ^ c3 ^ k1, p0 & _MASK32)
        k0 = (k0 + _PHILOX_W0) & _MASK32
        k1 = (k1 + _PHILOX_W1) & _MASK32
    return c0, c1, c2, c3


@pointwise
def gaussian_steps(seed, pid, step):
    """The three standard normals of particle ``pid`` at ``step``.

    Bit for bit ``normal_pair(seed, pid, step, 0)`` and ``normal(seed, pid, step, 1)`` of
    :mod:`nanosim.kernels.rng` (the same Box–Muller expressions on the same words).
    """
    lo = pid & _MASK32
    hi = (pid >> 32) & _MASK32
    st = step & _MASK32
    k0 = seed & _MASK32
    k1 = (seed >> 32) & _MASK32
    x0, x1, x2, x3 = philox_block(lo, hi, st, DRAW_BROWNIAN, k0, k1)
    r = math.sqrt(-2.0 * math.log(u01_from_words(x0, x1)))
    theta = _TWO_PI * u01_from_words(x2, x3)
    y0, y1, y2, y3 = philox_block(lo, hi, st, DRAW_BROWNIAN + 1, k0, k1)
    rz = math.sqrt(-2.0 * math.log(u01_from_words(y0, y1)))
    return r * math.cos(theta), r * math.sin(theta), rz * math.cos(_TWO_PI * u01_from_words(y2, y3))


@pointwise
def uniform_lattice(seed, pid, step):
    """The three uniform steps of particle ``pid`` at ``step``, in units of ``UNIFORM_UNIT``.

    Returns ``m_a = 2 w_a + 1 − 2³²`` (as floats, exact) for the words
    ``(w0, w1, w2, w3) = philox_block`` of counter ``(pid, step, DRAW_BROWNIAN)`` (``w3`` is
    unused): odd integers spread evenly over ``(−2³², 2³²)``, so that
    ``ξ_a = m_a · √3 · 2⁻³²`` is uniform on ``[−√3, √3]`` with mean 0 (exactly: ``m`` and
    ``−m`` are equally likely) and variance ``1 − 2⁻⁶⁴``. The kernels multiply ``m_a`` by
    ``σ · √3 · 2⁻³²`` directly: one multiplication per axis.
    """
    w0, w1, w2, w3 = philox_block(pid & _MASK32, (pid >> 32) & _MASK32, step & _MASK32,
                                  DRAW_BROWNIAN, seed & _MASK32, (seed >> 32) & _MASK32)
    return (float(2 * w0 - _MASK32), float(2 * w1 - _MASK32), float(2 * w2 - _MASK32))


@pointwise
def voxel_index(s, n):
    """Index of the voxel containing grid coordinate ``s`` (in voxels), clamped to ``[0, n−1]``.

    Parameters
    ----------
    s : float
        ``(x − origin) · (1/h)``; NaN maps to 0.
    n : int
        Number of voxels along the axis.
    """
    s = s if s >= 0.0 else 0.0  # also NaN
    s = s if s < n else n - 1.0
    return int(s)  # s >= 0: truncation is floor


@pointwise
def region_code(words, f, code_bytes):
    """Region code of flat voxel index ``f`` from a region map read as 32-bit words.

    ``code_bytes`` 1: ``words`` is a uint8/int8 map viewed as little-endian int32 (four codes per
    word); 4: one code per word.
    """
    if code_bytes == 1:
        return (words[f >> 2] >> ((f & 3) << 3)) & 0xFF
    return words[f]


@pointwise
def lerp_index(s, n, periodic):
    """Neighbouring voxel-centre indices and weight for linear interpolation along one axis.

    Parameters
    ----------
    s : float
        ``(x − origin) · (1/h) − 1/2``: position in units of voxels, measured from the first centre.
    n : int
        Number of voxels along the axis.
    periodic : bool
        Wrap around (the last centre neighbours the first) instead of holding the end values.

    Returns
    -------
    (int, int, float)
        ``(i0, i1, w)``: the value is ``(1 − w) f[i0] + w f[i1]``. Outside the outermost
        centres of a non-periodic axis, and on an axis of one voxel, ``w = 0`` and ``i0`` is the
        end voxel (``i1`` is then a valid neighbour whose weight is zero).
    """
    # written with selects only (no early returns), so that vectorised loops need no branches
    if periodic:
        inside = s >= -1.0 and s < n  # false only outside the box (or NaN)
        t = s if inside else 0.0
        f = math.floor(t)
        i0 = int(f)
        i0 = i0 + n if i0 < 0 else i0
        i1 = i0 + 1
        i1 = i1 - n if i1 >= n else i1
    else:
        t = s if s > 0.0 else 0.0  # also NaN
        t = t if t < n - 1 else n - 1.0
        f = math.floor(t)
        i0 = int(f)
        i1 = i0 + 1 if i0 + 1 < n else i0
    w = t - f if n > 1 else 0.0
    return i0, i1, w


@pointwise
def sample_velocity(u, off, fx0, fx1, wx, fy0, fy1, wy, fz0, fz1, wz):
    """One component of a voxel-centred field, trilinear weights.

    ``u`` is the field flattened in C order (``u[comp, z, y, x]`` at
    ``comp·n_vox + (z·ny + y)·nx + x``), ``off = comp·n_vox``; ``fx* = x``, ``fy* = y·nx``,
    ``fz* = z·nx·ny`` are the flat offsets of the two neighbouring centres along each axis.
    Lerps along x, then y, then z (in float64); when all weights are zero the result is the
    value at ``(fz0, fy0, fx0)`` exactly (for a finite field).
    """
    ax = 1.0 - wx
    ay = 1.0 - wy
    az = 1.0 - wz
    c00 = u[off + fz0 + fy0 + fx0] * ax + u[off + fz0 + fy0 + fx1] * wx
    c01 = u[off + fz0 + fy1 + fx0] * ax + u[off + fz0 + fy1 + fx1] * wx
    c10 = u[off + fz1 + fy0 + fx0] * ax + u[off + fz1 + fy0 + fx1] * wx
    c11 = u[off + fz1 + fy1 + fx0] * ax + u[off + fz1 + fy1 + fx1] * wx
    c0 = c00 * ay + c01 * wy
    c1 = c10 * ay + c11 * wy
    return c0 * az + c1 * wz


@pointwise
def fold_position(x, lo, hi, periodic):
    """Bring a coordinate back into ``[lo, hi]``: specular reflection, or wrap if periodic.

    Parameters
    ----------
    x : float
        Coordinate after the move (m).
    lo, hi : float
        Box faces (m), ``lo < hi``.
    periodic : bool
        Wrap into ``[lo, hi)`` instead of reflecting.

    Returns
    -------
    float
        ``x`` itself when already inside (bit-for-bit); otherwise the image of ``x`` under the
        reflections at ``lo`` and ``hi`` (period ``2(hi − lo)``, any number of crossings), or
        ``lo + (x − lo) mod (hi − lo)`` on a periodic axis.
    """
    length = hi - lo
    if periodic:
        if x >= lo and x < hi:
            return x
        s = x - lo
        s = s - length * math.floor(s * (1.0 / length))
        r = lo + s
        if not (r >= lo and r < hi):  # rounding at the faces
            r = lo
        return r
    if x >= lo and x <= hi:
        return x
    s = x - lo if x > hi else lo - x
    period = 2.0 * length
    s = s - period * math.floor(s * (1.0 / period))
    if s > length:
        s = period - s
    r = lo + s
    if r > hi:
        r = hi
    if not r >= lo:
        r = lo
    return r


@pointwise
def advance(x, y, z, pid, scale, ux, uy, uz, dt, seed, step,
            lo_x, hi_x, lo_y, hi_y, lo_z, hi_z, per_x, per_y, per_z, uniform):
    """One Brownian–convective step of one particle, folded into the box.

    Parameters
    ----------
    x, y, z : float
        Position (m).
    pid : int
        Particle id (random-stream entity).
    scale : float
        The Brownian step per unit variate (m): ``σ = √(2 D Δt)`` for Gaussian steps,
        ``σ · UNIFORM_UNIT`` for uniform ones (see :func:`step_scale`).
    ux, uy, uz : float
        Velocity (m/s).
    dt : float
        Time step (s).
    seed, step : int
        Random-stream key and step index.
    lo_x, hi_x, lo_y, hi_y, lo_z, hi_z : float
        Box faces (m).
    per_x, per_y, per_z : bool
        Periodic axes.
    uniform : bool
        Variance-matched uniform steps (:func:`uniform_lattice`) instead of Gaussian ones
        (:func:`gaussian_steps`).

    Returns
    -------
    (float, float, float)
        ``fold(x + u_x Δt + scale · v_x)`` and likewise for y, z, with ``v`` the variates of
        :func:`gaussian_steps` or :func:`uniform_lattice`.
    """
    if uniform:
        vx, vy, vz = uniform_lattice(seed, pid, step)
    else:
        vx, vy, vz = gaussian_steps(seed, pid, step)
    xn = fold_position(x + ux * dt + scale * vx, lo_x, hi_x, per_x)
    yn = fold_position(y + uy * dt + scale * vy, lo_y, hi_y, per_y)
    zn = fold_position(z + uz * dt + scale * vz, lo_z, hi_z, per_z)
    return xn, yn, zn


@pointwise
def step_scale(d, dt, uniform):
    """The step per unit variate for diffusivity ``d`` (m²/s) and time step ``dt`` (s).

    ``σ = √(2 d Δt)`` for Gaussian steps, ``σ · UNIFORM_UNIT`` for uniform ones (evaluated in
    this order, in float64, by every backend).
    """
    sig = math.sqrt(2.0 * d * dt)
    if uniform:
        return sig * UNIFORM_UNIT
    return sig


@pointwise
def update_particle(i, x, y, z, ids, state, moving, scale_uniform, d_part, d_mode, region,
                    code_bytes, scale_table, u, has_u, trilinear, ox, oy, oz, h, nx, ny, nz,
                    per_x, per_y, per_z, dt, seed, step, uniform):
    """Advance particle ``i`` of the arrays in place (the body of every kernel).

    Finds the step's scale (:func:`step_scale`; ``d_mode`` 0: ``scale_uniform``; 1: from
    ``d_part[i]``; 2: ``scale_table[code]`` with ``code = region_code(region, f,
    code_bytes)`` at the flat index ``f`` of the containing voxel) and, if ``has_u``, the
    velocity (nearest voxel or trilinear) at the start-of-step position, then calls
    :func:`advance`. Particles whose ``state[i] != moving`` are not touched.

    ``scale_uniform`` and ``scale_table`` are :func:`step_scale` of the uniform diffusivity and
    of the region table, computed by the driver with the same float64 operations; ``region``
    is the region map as flat 32-bit words, ``u`` the velocity flattened in C order (see
    :func:`sample_velocity`), ``ox, oy, oz`` the grid origin (m), ``h`` the voxel size (m),
    ``nx, ny, nz`` the grid shape; the other arguments as in the module docstring.
    """
    if state[i] != moving:
        return
    xi = float(x[i])
    yi = float(y[i])
    zi = float(z[i])
    inv_h = 1.0 / h  # multiplications instead of divisions (hoisted out of the loops)
    sx = (xi - ox) * inv_h
    sy = (yi - oy) * inv_h
    sz = (zi - oz) * inv_h
    nxy = nx * ny
    if d_mode == 0:
        scale = scale_uniform
    elif d_mode == 1:
        scale = step_scale(float(d_part[i]), dt, uniform)
    else:
        f = voxel_index(sz, nz) * nxy + voxel_index(sy, ny) * nx + voxel_index(sx, nx)
        scale = float(scale_table[region_code(region, f, code_bytes)])
    ux = 0.0
    uy = 0.0
    uz = 0.0
    if has_u:
        nvox = nxy * nz
        if trilinear:
            ix0, ix1, wx = lerp_index(sx - 0.5, nx, per_x)
            iy0, iy1, wy = lerp_index(sy - 0.5, ny, per_y)
            iz0, iz1, wz = lerp_index(sz - 0.5, nz, per_z)
            fy0 = iy0 * nx
            fy1 = iy1 * nx
            fz0 = iz0 * nxy
            fz1 = iz1 * nxy
            ux = sample_velocity(u, 0, ix0, ix1, wx, fy0, fy1, wy, fz0, fz1, wz)
            uy = sample_velocity(u, nvox, ix0, ix1, wx, fy0, fy1, wy, fz0, fz1, wz)
            uz = sample_velocity(u, 2 * nvox, ix0, ix1, wx, fy0, fy1, wy, fz0, fz1, wz)
        else:
            f = voxel_index(sz, nz) * nxy + voxel_index(sy, ny) * nx + voxel_index(sx, nx)
            ux = float(u[f])
            uy = float(u[nvox + f])
            uz = float(u[2 * nvox + f])
    xn, yn, zn = advance(xi, yi, zi, ids[i], scale, ux, uy, uz, dt, seed, step,
                         ox, ox + nx * h, oy, oy + ny * h, oz, oz + nz * h, per_x, per_y, per_z,
                         uniform)
    x[i] = xn
    y[i] = yn
    z[i] = zn


# --------------------------------------------------------------------------------------------
# Argument checking shared by every driver
# --------------------------------------------------------------------------------------------


def _is_host(a):
    return isinstance(a, np.ndarray)


def _check_1d(name, a, n=None):
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"{name} must be an array (NumPy, or CuPy for the cupy backend), "
                        f"got {type(a).__name__}")
    if len(a.shape) != 1:
        raise ValueError(f"{name} must be one-dimensional (one entry per particle), "
                         f"got shape {tuple(a.shape)}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} must have one entry per particle ({n}), got {a.shape[0]}")


def _box(grid):
    try:
        shape = tuple(int(v) for v in grid.shape_xyz)
        h = float(grid.voxel_size_m)
        origin = tuple(float(v) for v in grid.origin_m)
    except (AttributeError, TypeError) as exc:
        raise TypeError("grid must be a nanosim.geometry.grid.Grid (or have shape_xyz, "
                        f"voxel_size_m and origin_m), got {type(grid).__name__}") from exc
    if len(shape) != 3 or len(origin) != 3 or min(shape) < 1:
        raise ValueError(f"grid must have three axes of at least one voxel, got {shape}")
    if not (h > 0 and math.isfinite(h)):
        raise ValueError(f"grid.voxel_size_m must be a positive length in m, got {h}")
    return origin, h, shape


def _region_words(reg):
    """The region map as flat 32-bit words and the bytes per code (see :func:`region_code`).

    A C-contiguous 1-byte map whose size is a multiple of 4 is viewed in place (four codes per
    little-endian word), a C-contiguous int32 map is used as it is; any other map is converted
    to int32 (a copy). Works on NumPy and CuPy arrays alike.
    """
    flat = reg.reshape(-1)  # a view of a contiguous map, else a copy
    if (reg.dtype.itemsize == 1 and flat.size % 4 == 0 and sys.byteorder == "little"
            and _is_contiguous(reg)):
        return flat.view(np.int32), 1
    return flat.astype(np.int32, copy=False), 4  # no copy for a contiguous int32 map


def _is_contiguous(a):
    flags = getattr(a, "flags", None)
    if flags is not None and hasattr(flags, "c_contiguous"):
        return bool(flags.c_contiguous)
    return bool(getattr(a, "is_c_contiguous", lambda: False)())


def _prepare(x, y, z, ids, state, step, dt_s, seed, grid, diffusivity_m2_per_s, region,
             region_diffusivity_m2_per_s, velocity_m_per_s, velocity_interpolation, periodic,
             moving_state, asarray, dummy, step_distribution="gaussian", check_ids=True):
    """Check the arguments and return the kernel argument tuple (after ``i``).

    ``check_ids=False`` leaves the range check of host ids to the caller (the Numba kernel
    counts negative ids as it reads them, which saves a pass over the ids).
    """
    _check_1d("x", x)
    n = x.shape[0]
    _check_1d("y", y, n)
    _check_1d("z", z, n)
    if x.dtype not in (np.float32, np.float64) or y.dtype != x.dtype or z.dtype != x.dtype:
        raise TypeError("x, y and z must share one dtype, float32 or float64; got "
                        f"{x.dtype}, {y.dtype}, {z.dtype}")
    _check_1d("ids", ids, n)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be an integer array (int64 preferred), got {ids.dtype}")
    if check_ids and _is_host(ids) and n:
        if ids.min() < 0 or (ids.dtype == np.uint64 and int(ids.max()) >= 2**63):
            raise ValueError("ids must lie in [0, 2**63) (they key the random streams)")
    if ids.dtype != np.int64:
        ids = ids.astype(np.int64)
    _check_1d("state", state, n)
    if state.dtype not in (np.int8, np.uint8):
        raise TypeError(f"state must be an int8 or uint8 array of compartment codes, got {state.dtype}")
    if not isinstance(step, Integral) or step < 0:
        raise ValueError(f"step must be a non-negative integer (the step index), got {step!r}")
    if not isinstance(seed, Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    dt = float(dt_s)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt_s must be a positive, finite time step in s, got {dt_s!r}")
    if not isinstance(moving_state, Integral):
        raise TypeError(f"moving_state must be an integer compartment code, got {moving_state!r}")
    (ox, oy, oz), h, (nx, ny, nz) = _box(grid)
    try:
        per = tuple(bool(p) for p in periodic)
    except TypeError:
        per = ()
    if len(per) != 3:
        raise ValueError(f"periodic must be three booleans (x, y, z), got {periodic!r}")

    # diffusivity: a scalar, one value per particle, or a region table
    has_d = diffusivity_m2_per_s is not None
    has_r = region is not None or region_diffusivity_m2_per_s is not None
    if has_d == has_r:
        raise ValueError("give the diffusivity either as diffusivity_m2_per_s (scalar or per "
                         "particle) or as region + region_diffusivity_m2_per_s, not both or neither")
    if step_distribution not in STEP_DISTRIBUTIONS:
        raise ValueError(f"step_distribution must be one of {STEP_DISTRIBUTIONS}, "
                         f"got {step_distribution!r}")
    uniform = step_distribution == "uniform"
    scale_uniform, d_part, d_mode = 0.0, dummy("d"), _D_UNIFORM
    words, code_bytes, scale_table = dummy("region"), 4, dummy("d")
    if has_d:
        if np.ndim(diffusivity_m2_per_s) == 0:
            d_uniform = float(diffusivity_m2_per_s)
            if not (d_uniform >= 0 and math.isfinite(d_uniform)):
                raise ValueError("diffusivity_m2_per_s must be finite and >= 0 (m²/s), got "
                                 f"{diffusivity_m2_per_s!r}")
            scale_uniform = step_scale.py(d_uniform, dt, uniform)
        else:
            d_part = asarray(diffusivity_m2_per_s)
            _check_1d("diffusivity_m2_per_s", d_part, n)
            if d_part.dtype not in (np.float32, np.float64):
                raise TypeError(f"diffusivity_m2_per_s must be float32 or float64, got {d_part.dtype}")
            if _is_host(d_part) and n and not (np.all(d_part >= 0) and np.all(np.isfinite(d_part))):
                raise ValueError("diffusivity_m2_per_s must be finite and >= 0 (m²/s) for every particle")
            d_mode = _D_PER_PARTICLE
    else:
        if region is None or region_diffusivity_m2_per_s is None:
            raise ValueError("region and region_diffusivity_m2_per_s must be given together")
        reg = asarray(region)
        table = _to_host(region_diffusivity_m2_per_s)
        if tuple(reg.shape) != (nz, ny, nx):
            raise ValueError(f"region must have the grid's shape (nz, ny, nx) = {(nz, ny, nx)}, "
                             f"got {tuple(reg.shape)}")
        if reg.dtype.kind not in "iu":
            raise TypeError(f"region must be an integer array (uint8 preferred), got {reg.dtype}")
        if len(table.shape) != 1 or table.dtype not in (np.float32, np.float64):
            raise TypeError("region_diffusivity_m2_per_s must be a 1-D float array (m²/s per region)")
        if not (np.all(table >= 0) and np.all(np.isfinite(table))):
            raise ValueError("region_diffusivity_m2_per_s must be finite and >= 0 (m²/s)")
        if _is_host(reg) and reg.size and (reg.min() < 0 or int(reg.max()) >= table.shape[0]):
            raise ValueError(f"region codes must lie in [0, {table.shape[0]}) to index "
                             f"region_diffusivity_m2_per_s (one entry per region code); got "
                             f"[{int(reg.min())}, {int(reg.max())}]")
        words, code_bytes = _region_words(reg)
        # the scale per region, with the float64 operations of the kernels (sqrt is correctly
        # rounded everywhere)
        scale_table = asarray(np.array([step_scale.py(float(d), dt, uniform) for d in table]))
        d_mode = _D_REGION

    if velocity_interpolation not in INTERPOLATIONS:
        raise ValueError(f"velocity_interpolation must be one of {INTERPOLATIONS}, "
                         f"got {velocity_interpolation!r}")
    has_u = velocity_m_per_s is not None
    if has_u:
        u = asarray(velocity_m_per_s)
        if tuple(u.shape) != (3, nz, ny, nx):
            raise ValueError("velocity_m_per_s must be voxel-centred with shape (3, nz, ny, nx) = "
                             f"{(3, nz, ny, nx)}, got {tuple(u.shape)}")
        if u.dtype not in (np.float32, np.float64):
            raise TypeError(f"velocity_m_per_s must be float32 or float64, got {u.dtype}")
        u = u.reshape(-1)  # a view of a C-contiguous field, else a copy
    else:
        u = dummy("u")
    return (ids, state, int(moving_state), scale_uniform, d_part, d_mode, words, code_bytes,
            scale_table, u, has_u, velocity_interpolation == "trilinear", ox, oy, oz, h, nx, ny, nz, per[0],
            per[1], per[2], dt, rng.seed64(seed), int(step), uniform)


_HOST_DUMMIES = {
    "d": np.zeros(1),
    "region": np.zeros(1, np.int32),
    "u": np.zeros(3),
}


def _to_host(a):
    """A small array (a table) as a NumPy array, from NumPy, CuPy or Numba device arrays."""
    if hasattr(a, "get"):
        return np.asarray(a.get())
    if hasattr(a, "copy_to_host"):
        return a.copy_to_host()
    return np.asarray(a)


def _host_dummy(kind):
    return _HOST_DUMMIES[kind]


def _host_asarray(a):
    return np.asarray(a)


def _host_prepare(x, y, z, ids, state, step, kw, check_ids=True):
    for name, a in (("x", x), ("y", y), ("z", z), ("ids", ids), ("state", state)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array for this backend, got {type(a).__name__}")
    return _prepare(x, y, z, ids, state, step, asarray=_host_asarray, dummy=_host_dummy,
                    check_ids=check_ids, **kw)


# --------------------------------------------------------------------------------------------
# Numba (CPU) driver
# --------------------------------------------------------------------------------------------

#: Keyword options of every driver, in their documented order.
_OPTIONS = ("dt_s", "seed", "grid", "diffusivity_m2_per_s", "region",
            "region_diffusivity_m2_per_s", "velocity_m_per_s", "velocity_interpolation",
            "periodic", "moving_state", "step_distribution")


def _options(local_vars):
    """The keyword options of a driver call, from the driver's ``locals()``."""
    return {k: local_vars[k] for k in _OPTIONS}


_NUMBA_KERNELS = {}

#: Particles per scheduling chunk of the Numba kernels.
_CHUNK = 1 << 16


#: Positions in the kernel argument tuple of :func:`_prepare` (after ``x, y, z``) of the
#: choices the Numba kernels are specialised on (compile-time constants there).
_ARG_CONSTANTS = (5, 7, 10, 11, 19, 20, 21, 25)


def _numba_kernel(d_mode, code_bytes, has_u, trilinear, per_x, per_y, per_z, uniform):
    """The ``prange`` kernel specialised on these choices (compiled on first use, cached)."""
    key = (d_mode, code_bytes if d_mode == _D_REGION else 4, has_u, has_u and trilinear,
           per_x, per_y, per_z, uniform)
    if key not in _NUMBA_KERNELS:
        _NUMBA_KERNELS[key] = _make_numba_kernel(*key)
    return _NUMBA_KERNELS[key]


_update_inline = update_particle.cpu_inline  # inlined: the loop vectorises


def _make_numba_kernel(D_MODE, CODE_BYTES, HAS_U, TRILINEAR, PER_X, PER_Y, PER_Z, UNIFORM):
    # The closure's constants are compile-time constants for Numba and make up its on-disk cache
    # key (so the closure must hold nothing else: a dispatcher would change the key every run).
    @numba.njit(parallel=True, **NJIT_OPTIONS)
    def kernel(x, y, z, ids, state, moving, scale_uniform, d_part, region, scale_table, u, ox, oy,
               oz,
               h, nx, ny, nz, dt, seed, step):
        negative = 0  # ids outside [0, 2**63): counted here instead of in a pass of their own
        for i in numba.prange(x.shape[0]):
            if ids[i] < 0:
                negative += 1
            else:
                _update_inline(i, x, y, z, ids, state, moving, scale_uniform, d_part, D_MODE,
                               region, CODE_BYTES, scale_table, u, HAS_U, TRILINEAR, ox, oy, oz, h,
                               nx, ny, nz, PER_X, PER_Y, PER_Z, dt, seed, step, UNIFORM)
        return negative

    return kernel


def numba_step_particles(x, y, z, ids, state, step, *, dt_s, seed, grid,
                         diffusivity_m2_per_s=None, region=None,
                         region_diffusivity_m2_per_s=None, velocity_m_per_s=None,
                         velocity_interpolation="nearest", periodic=(False, False, False),
                         moving_state=STATE_TISSUE, step_distribution="gaussian"):
    """One particle step with the Numba ``prange`` kernel (in place).

    Parameters
    ----------
    x, y, z : ndarray, 1-D, float32 or float64
        Positions (m), updated in place.
    ids : ndarray of int
        Particle ids in ``[0, 2**63)``; they key the random streams.
    state : ndarray of int8 or uint8
        Compartment codes; only ``state == moving_state`` particles move.
    step : int
        Step index ``n >= 0`` (the step's random numbers are ``(seed, id, n, draw)``).
    dt_s : float
        Time step (s).
    seed : int
        Scenario seed.
    grid : nanosim.geometry.grid.Grid
        The box (and the voxels of ``region`` and ``velocity_m_per_s``).
    diffusivity_m2_per_s : float or ndarray, optional
        Diffusivity (m²/s), uniform or one per particle. Give this or the region pair.
    region : ndarray of int, shape (nz, ny, nx), optional
        Region code of each voxel (uint8 or int32 read in place; other types copied).
    region_diffusivity_m2_per_s : ndarray of float, optional
        Diffusivity (m²/s) per region code.
    velocity_m_per_s : ndarray, shape (3, nz, ny, nx), optional
        Voxel-centred interstitial velocity (m/s).
    velocity_interpolation : {"nearest", "trilinear"}
        How the velocity is read at a particle position.
    periodic : three bools
        Periodic x, y, z axes; the others reflect specularly.
    moving_state : int
        Compartment code of the particles that move (default :data:`STATE_TISSUE`).
    step_distribution : {"gaussian", "uniform"}
        Gaussian steps (exact; the default) or variance-matched uniform steps (faster; see the
        module docstring for when they are equivalent).

    Returns
    -------
    (ndarray, ndarray, ndarray)
        ``x, y, z`` (the same arrays).

    Raises
    ------
    ValueError
        For invalid arguments, before anything moves; for ids outside ``[0, 2**63)`` (found by
        the kernel as it reads them) after the step, in which the particles with valid ids
        moved and the others did not.
    """
    args = _host_prepare(x, y, z, ids, state, step, _options(locals()), check_ids=False)
    if x.shape[0]:
        kernel = _numba_kernel(*(args[k] for k in _ARG_CONSTANTS))
        # dynamic scheduling in chunks: a core slowed by another process takes fewer chunks
        # (with the default static halves the step waits for it)
        with numba.parallel_chunksize(_CHUNK):
            negative = kernel(x, y, z, *(a for k, a in enumerate(args) if k not in _ARG_CONSTANTS))
        if negative:
            raise ValueError("ids must lie in [0, 2**63) (they key the random streams); the "
                             "particles with other ids were not moved, the others were")
    return x, y, z


# --------------------------------------------------------------------------------------------
# NumPy reference (independent vectorised code: the oracle of the compiled kernels)
# --------------------------------------------------------------------------------------------


def _np_steps(seed, pid, step, uniform):
    """The three Brownian variates of every id in ``pid`` (uint64) at ``step``.

    Gaussian: ``normal_pair(seed, p, step, 0)`` and ``normal(seed, p, step, 1)``; uniform:
    ``√3 ((w + ½) 2⁻³¹ − 1)`` of the first three words of the draw-0 block.
    """
    s = rng.seed64(seed) & 0xFFFFFFFFFFFFFFFF
    mask = np.uint64(0xFFFFFFFF)
    lo = pid & mask
    hi = pid >> np.uint64(32)
    st = np.uint64(int(step) & 0xFFFFFFFF)
    out = []
    for draw in (DRAW_BROWNIAN, DRAW_BROWNIAN + 1):
        x0, x1, x2, x3 = rng.numpy_philox4x32_10(lo, hi, st, np.uint64(draw), s & 0xFFFFFFFF, s >> 32)
        if uniform:
            return [(2 * w.astype(np.int64) - _MASK32).astype(np.float64) for w in (x0, x1, x2)]
        u0 = rng._numpy_u01(x0, x1)
        u1 = rng._numpy_u01(x2, x3)
        r = np.sqrt(-2.0 * np.log(u0))
        theta = rng._TWO_PI * u1
        out.append(r * np.cos(theta))
        if draw == DRAW_BROWNIAN:
            out.append(r * np.sin(theta))
    return out


def _np_voxel_index(s, n):
    i = np.floor(np.where(s >= 0.0, s, 0.0))
    i = np.where(s >= n, n - 1, i)
    return i.astype(np.int64)


def _np_lerp_index(s, n, periodic):
    zero_i = np.zeros(s.shape, np.int64)
    if n == 1:
        return zero_i, zero_i, np.zeros(s.shape)
    if not periodic:
        low = ~(s > 0.0)
        high = s >= n - 1
        mid = ~low & ~high
        f = np.floor(np.where(mid, s, 0.0))
        i0 = np.where(high, n - 1, f.astype(np.int64))
        i1 = np.where(mid, i0 + 1, i0)
        w = np.where(mid, s - f, 0.0)
        return i0, i1, w
    ok = (s >= -1.0) & (s < n)
    f = np.floor(np.where(ok, s, 0.0))
    i0 = f.astype(np.int64)
    i0 = np.where(i0 < 0, i0 + n, i0)
    i1 = i0 + 1
    i1 = np.where(i1 >= n, i1 - n, i1)
    i0 = np.where(ok, i0, 0)
    i1 = np.where(ok, i1, 0)
    w = np.where(ok, s - f, 0.0)
    return i0, i1, w


def _np_sample(u, ix0, ix1, wx, iy0, iy1, wy, iz0, iz1, wz):
    ax, ay, az = 1.0 - wx, 1.0 - wy, 1.0 - wz

    def g(iz, iy, ix):
        return u[:, iz, iy, ix].astype(np.float64)

    c00 = g(iz0, iy0, ix0) * ax + g(iz0, iy0, ix1) * wx
    c01 = g(iz0, iy1, ix0) * ax + g(iz0, iy1, ix1) * wx
    c10 = g(iz1, iy0, ix0) * ax + g(iz1, iy0, ix1) * wx
    c11 = g(iz1, iy1, ix0) * ax + g(iz1, iy1, ix1) * wx
    c0 = c00 * ay + c01 * wy
    c1 = c10 * ay + c11 * wy
    val = c0 * az + c1 * wz
    nearest = (wx == 0.0) & (wy == 0.0) & (wz == 0.0)
    return np.where(nearest, g(iz0, iy0, ix0), val)


def _np_fold(x, lo, hi, periodic):
    length = hi - lo
    if periodic:
        inside = (x >= lo) & (x < hi)
        s = x - lo
        s = s - length * np.floor(s * (1.0 / length))
        r = lo + s
        r = np.where((r >= lo) & (r < hi), r, lo)
        return np.where(inside, x, r)
    inside = (x >= lo) & (x <= hi)
    s = np.where(x > hi, x - lo, lo - x)
    period = 2.0 * length
    s = s - period * np.floor(s * (1.0 / period))
    s = np.where(s > length, period - s, s)
    r = lo + s
    r = np.where(r > hi, hi, r)
    r = np.where(r >= lo, r, lo)
    return np.where(inside, x, r)


def numpy_step_particles(x, y, z, ids, state, step, *, dt_s, seed, grid,
                         diffusivity_m2_per_s=None, region=None,
                         region_diffusivity_m2_per_s=None, velocity_m_per_s=None,
                         velocity_interpolation="nearest", periodic=(False, False, False),
                         moving_state=STATE_TISSUE, step_distribution="gaussian"):
    """NumPy reference of :func:`numba_step_particles` (same arguments; in place).

    Written with vectorised NumPy independently of the pointwise functions, in the same order
    of floating-point operations, so that it agrees with the compiled kernels to the last bits
    of the normals (``log``, ``cos``, ``sin`` may differ by a few ulp between math libraries);
    uniform steps agree with the Numba kernel bit for bit.
    """
    # only the checked scalars and modes are taken from the drivers' preparation: the lookups
    # below read the caller's arrays as given
    (ids, state, moving, _, d_part, d_mode, _, _, _, _, has_u, trilinear,
     ox, oy, oz, h, nx, ny, nz, per_x, per_y, per_z, dt, seed64, step, uniform) = _host_prepare(
        x, y, z, ids, state, step, _options(locals()))
    idx = np.flatnonzero(state == moving)
    if idx.size == 0:
        return x, y, z
    px = x[idx].astype(np.float64)
    py = y[idx].astype(np.float64)
    pz = z[idx].astype(np.float64)
    inv_h = 1.0 / h
    sx, sy, sz = (px - ox) * inv_h, (py - oy) * inv_h, (pz - oz) * inv_h
    if d_mode == _D_UNIFORM:
        d = np.full(idx.size, float(diffusivity_m2_per_s))
    elif d_mode == _D_PER_PARTICLE:
        d = d_part[idx].astype(np.float64)
    else:
        table = np.asarray(region_diffusivity_m2_per_s)
        d = table[np.asarray(region)[_np_voxel_index(sz, nz), _np_voxel_index(sy, ny),
                                     _np_voxel_index(sx, nx)]].astype(np.float64)
    if has_u:
        if trilinear:
            lx, ly, lz = (_np_lerp_index(sx - 0.5, nx, per_x), _np_lerp_index(sy - 0.5, ny, per_y),
                          _np_lerp_index(sz - 0.5, nz, per_z))
        else:
            zero = np.zeros(idx.size)
            ix, iy, iz = _np_voxel_index(sx, nx), _np_voxel_index(sy, ny), _np_voxel_index(sz, nz)
            lx, ly, lz = (ix, ix, zero), (iy, iy, zero), (iz, iz, zero)
        ux, uy, uz = _np_sample(np.asarray(velocity_m_per_s), *lx, *ly, *lz)
    else:
        ux = uy = uz = np.zeros(idx.size)
    zx, zy, zz = _np_steps(seed64, ids[idx].astype(np.uint64), step, uniform)
    scale = np.sqrt(2.0 * d * dt)
    if uniform:
        scale = scale * UNIFORM_UNIT
    x[idx] = _np_fold(px + ux * dt + scale * zx, ox, ox + nx * h, per_x)
    y[idx] = _np_fold(py + uy * dt + scale * zy, oy, oy + ny * h, per_y)
    z[idx] = _np_fold(pz + uz * dt + scale * zz, oz, oz + nz * h, per_z)
    return x, y, z


# --------------------------------------------------------------------------------------------
# Dispatch by backend name
# --------------------------------------------------------------------------------------------


def step_particles(backend_name, x, y, z, ids, state, step, **kwargs):
    """One particle step on a backend (in place); keyword arguments as :func:`numba_step_particles`.

    Parameters
    ----------
    backend_name : {"numpy", "numba", "cupy"}
        ``"cupy"`` runs ``nanosim.kernels.particles_cuda.step_particles`` on CuPy arrays, on
        CuPy's current stream.
    """
    if backend_name == "numpy":
        return numpy_step_particles(x, y, z, ids, state, step, **kwargs)
    if backend_name == "numba":
        return numba_step_particles(x, y, z, ids, state, step, **kwargs)
    if backend_name == "cupy":
        import cupy

        from . import particles_cuda

        stream = cupy.cuda.get_current_stream().ptr
        return particles_cuda.step_particles(x, y, z, ids, state, step, stream=stream, **kwargs)
    raise ValueError(f"unknown backend {backend_name!r}; expected one of {BACKENDS}")


# --------------------------------------------------------------------------------------------
# Particle order: keep the field lookups cache-friendly
# --------------------------------------------------------------------------------------------


_voxel_index_cpu = voxel_index.cpu


@numba.njit(**NJIT_OPTIONS)
def _row_order_kernel(x, y, z, oy, oz, h, ny, nz, order):
    rows = np.zeros(ny * nz + 1, np.int64)
    key = np.empty(x.shape[0], np.int32)
    for i in range(x.shape[0]):
        k = (_voxel_index_cpu((float(z[i]) - oz) * (1.0 / h), nz) * ny
             + _voxel_index_cpu((float(y[i]) - oy) * (1.0 / h), ny))
        key[i] = k
        rows[k + 1] += 1
    for k in range(ny * nz):
        rows[k + 1] += rows[k]
    for i in range(x.shape[0]):
        k = key[i]
        order[rows[k]] = i
        rows[k] += 1
    return order


def voxel_row_order(x, y, z, grid):
    """A permutation that sorts particles by the grid row (z, then y) of their voxel (stable).

    The step looks up the diffusivity and the velocity at each particle's voxel; in an
    arbitrary particle order those are random reads all over the fields, which miss the caches
    once the fields outgrow them (a 128³ float32 velocity field is 24 MiB). In row order
    consecutive particles read the same few rows of every field. Particles move less than a
    voxel per step, so re-sorting every few tens of steps keeps the order. The step's results
    do not depend on the order (the random numbers follow the ids).

    Parameters
    ----------
    x, y, z : ndarray, 1-D, float32 or float64
        Positions (m), host arrays.
    grid : nanosim.geometry.grid.Grid
        The box; positions outside it count as in the nearest boundary row.

    Returns
    -------
    ndarray of int64
        ``order`` such that ``x[order]``, ``y[order]``, ... (and every other per-particle array,
        ids and state included) are in row order.
    """
    _check_1d("x", x)
    _check_1d("y", y, x.shape[0])
    _check_1d("z", z, x.shape[0])
    (_, oy, oz), h, (_, ny, nz) = _box(grid)
    order = np.empty(x.shape[0], np.int64)
    return _row_order_kernel(np.asarray(x), np.asarray(y), np.asarray(z), oy, oz, h, ny, nz, order)


# --------------------------------------------------------------------------------------------
# The voxel of each particle, as the carrier model's NumPy code computes it
# --------------------------------------------------------------------------------------------


def numpy_voxel_flat(x, y, z, grid, xp=np):
    """Flat index ``(iz·ny + iy)·nx + ix`` of the voxel that holds each point (NumPy reference).

    ``i = clip(floor((p − o)/h), 0, n − 1)`` per axis in the arrays' own precision: NumPy's
    promotion keeps a float32 array float32 against the Python-float origin and voxel size.
    ``xp`` is the array module (NumPy or CuPy).
    """
    nx, ny, nz = grid.shape_xyz
    ox, oy, oz = grid.origin_m
    h = grid.voxel_size_m
    ix = xp.clip(xp.floor((x - ox) / h).astype(np.int64), 0, nx - 1)
    iy = xp.clip(xp.floor((y - oy) / h).astype(np.int64), 0, ny - 1)
    iz = xp.clip(xp.floor((z - oz) / h).astype(np.int64), 0, nz - 1)
    return (iz * ny + iy) * nx + ix


_INT64_MIN = np.int64(np.iinfo(np.int64).min)


@numba.njit(inline="always", **NJIT_OPTIONS)
def _axis_voxel(p, o, h, n):
    # ``o`` and ``h`` come in the precisions NumPy would compute ``p − o`` and ``/ h`` in
    v = np.floor((p - o) / h)
    # NumPy's float-to-int64 cast gives INT64_MIN for NaN and out-of-range values (x86), which
    # the clip then maps to 0; the same here, explicitly (LLVM leaves that cast undefined)
    i = np.int64(v) if -9223372036854775808.0 <= v < 9223372036854775808.0 else _INT64_MIN
    return min(max(i, 0), n - 1)


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _voxel_flat_kernel(x, y, z, ox, oy, oz, hx, hy, hz, nx, ny, nz, out):
    for i in numba.prange(x.shape[0]):
        out[i] = ((_axis_voxel(z[i], oz, hz, nz) * ny + _axis_voxel(y[i], oy, hy, ny)) * nx
                  + _axis_voxel(x[i], ox, hx, nx))
    return out


def numba_voxel_flat(x, y, z, grid):
    """Numba twin of :func:`numpy_voxel_flat` (host arrays; bitwise the same indices, one pass
    instead of some twenty NumPy temporaries)."""
    nx, ny, nz = grid.shape_xyz
    h = grid.voxel_size_m
    args = []
    for a, o in zip((x, y, z), grid.origin_m):
        t_sub = np.result_type(a.dtype, o)  # the precision of ``a − o`` (a Python float is weak)
        t_div = np.result_type(t_sub, h)
        args.append((t_sub.type(o), t_div.type(h)))
    (ox, hx), (oy, hy), (oz, hz) = args
    out = np.empty(x.shape[0], np.int64)
    return _voxel_flat_kernel(x, y, z, ox, oy, oz, hx, hy, hz, nx, ny, nz, out)


def voxel_flat(backend_name, x, y, z, grid, xp=np):
    """:func:`numba_voxel_flat` on the numba backend, :func:`numpy_voxel_flat` with ``xp`` on the
    others."""
    if backend_name == "numba":
        return numba_voxel_flat(x, y, z, grid)
    return numpy_voxel_flat(x, y, z, grid, xp)
