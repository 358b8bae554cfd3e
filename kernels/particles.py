r"""Interstitial carrier particles: one Brownian–convective step, NumPy reference and Numba driver.

Each particle ``p`` in the moving (tissue) state advances by

.. math::

    \mathbf{x} \leftarrow \mathbf{x} + \mathbf{u}(\mathbf{x})\,Δt
        + \sqrt{2 D(\mathbf{x})\,Δt}\;\boldsymbol{ξ},\qquad ξ_a \sim N(0, 1),

(Euler–Maruyama, Itô: ``D`` and ``u`` are taken at the start-of-step position) and is then
folded back into the box by specular reflection at its faces, or wrapped on a periodic axis.
In free space this gives ``⟨|Δx|²⟩ = 6 D t`` exactly for any step size (PHYSICS.md §5).

Random numbers
--------------
The three normals of particle id ``p`` at step ``n`` are, by the convention of
:mod:`nanosim.kernels.rng`, ``(ξx, ξy) = normal_pair(seed, p, n, 0)`` and
``ξz = normal(seed, p, n, 1)``. They depend only on ``(seed, p, n)``: the paths do not depend
on the backend (NumPy, Numba, CUDA agree to the last few bits of the normals), on the order or
number of particles in the arrays, or on how a run is split into calls — a run resumed at
step ``n`` continues the same paths.

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
  the voxel that contains the particle (``floor((x − origin)/h)``, clamped to the grid).
- Velocity (m/s, optional): interstitial velocity at voxel centres, shape ``(3, nz, ny, nx)``
  with components (u_x, u_y, u_z). ``velocity_interpolation="nearest"`` takes the value of the
  containing voxel; ``"trilinear"`` interpolates between the eight surrounding centres (exact
  for a linear field); on a non-periodic axis the value is held constant between the outermost
  centre and the wall, on a periodic axis the interpolation wraps around.

Particles outside the box at the start of a step are folded in by that step (their lookups use
the nearest boundary voxel). On a jump of ``D`` between regions the plain Itô step is used: the
interface treatment (which decides whether the particle density follows ``∇·(D∇c)``) belongs
to the model that builds the region table.

Backends
--------
- :func:`numpy_step_particles`: vectorised NumPy, written independently of the pointwise
  functions, the test oracle;
- :func:`numba_step_particles`: ``prange`` over particles calling :func:`update_particle`'s
  ``.cpu`` form;
- ``nanosim.kernels.particles_cuda.step_particles``: one CUDA thread per particle calling the
  ``.cuda`` form of the same function (imported lazily);
- :func:`step_particles`: dispatch on a backend name.
"""

from __future__ import annotations

import math
from numbers import Integral

import numba
import numpy as np

from . import rng
from ._compile import NJIT_OPTIONS, pointwise
from .rng import normal, normal_pair

__all__ = [
    "BACKENDS",
    "STATE_TISSUE",
    "INTERPOLATIONS",
    "voxel_index",
    "lerp_index",
    "sample_velocity",
    "fold_position",
    "advance",
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

# Kernel modes for the diffusivity.
_D_UNIFORM, _D_PER_PARTICLE, _D_REGION = 0, 1, 2


# --------------------------------------------------------------------------------------------
# Pointwise functions: the one physics source of the Numba and CUDA kernels
# --------------------------------------------------------------------------------------------


@pointwise
def voxel_index(s, n):
    """Index of the voxel containing grid coordinate ``s`` (in voxels), clamped to ``[0, n−1]``.

    Parameters
    ----------
    s : float
        ``(x − origin) / h``; NaN maps to 0.
    n : int
        Number of voxels along the axis.
    """
    if not s >= 0.0:
        return 0
    if s >= n:
        return n - 1
    return int(math.floor(s))


@pointwise
def lerp_index(s, n, periodic):
    """Neighbouring voxel-centre indices and weight for linear interpolation along one axis.

    Parameters
    ----------
    s : float
        ``(x − origin) / h − 1/2``: position in units of voxels, measured from the first centre.
    n : int
        Number of voxels along the axis.
    periodic : bool
        Wrap around (the last centre neighbours the first) instead of holding the end values.

    Returns
    -------
    (int, int, float)
        ``(i0, i1, w)``: the value is ``(1 − w) f[i0] + w f[i1]``.
    """
    if n == 1:
        return 0, 0, 0.0
    if not periodic:
        if not s > 0.0:
            return 0, 0, 0.0
        if s >= n - 1:
            return n - 1, n - 1, 0.0
        f = math.floor(s)
        i0 = int(f)
        return i0, i0 + 1, s - f
    if not (s >= -1.0 and s < n):  # only for positions outside the box (or NaN)
        return 0, 0, 0.0
    f = math.floor(s)
    i0 = int(f)
    if i0 < 0:
        i0 += n
    i1 = i0 + 1
    if i1 >= n:
        i1 -= n
    return i0, i1, s - f


@pointwise
def sample_velocity(u, comp, ix0, ix1, wx, iy0, iy1, wy, iz0, iz1, wz):
    """Component ``comp`` of a voxel-centred field ``u[comp, z, y, x]``, trilinear weights.

    Returns ``u[comp, iz0, iy0, ix0]`` exactly when all weights are zero (nearest voxel);
    otherwise lerps along x, then y, then z (in float64).
    """
    if wx == 0.0 and wy == 0.0 and wz == 0.0:
        return float(u[comp, iz0, iy0, ix0])
    ax = 1.0 - wx
    ay = 1.0 - wy
    az = 1.0 - wz
    c00 = u[comp, iz0, iy0, ix0] * ax + u[comp, iz0, iy0, ix1] * wx
    c01 = u[comp, iz0, iy1, ix0] * ax + u[comp, iz0, iy1, ix1] * wx
    c10 = u[comp, iz1, iy0, ix0] * ax + u[comp, iz1, iy0, ix1] * wx
    c11 = u[comp, iz1, iy1, ix0] * ax + u[comp, iz1, iy1, ix1] * wx
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
        s = s - length * math.floor(s / length)
        r = lo + s
        if not (r >= lo and r < hi):  # rounding at the faces
            r = lo
        return r
    if x >= lo and x <= hi:
        return x
    s = x - lo if x > hi else lo - x
    period = 2.0 * length
    s = s - period * math.floor(s / period)
    if s > length:
        s = period - s
    r = lo + s
    if r > hi:
        r = hi
    if not r >= lo:
        r = lo
    return r


@pointwise
def advance(x, y, z, pid, d, ux, uy, uz, dt, seed, step,
            lo_x, hi_x, lo_y, hi_y, lo_z, hi_z, per_x, per_y, per_z):
    """One Brownian–convective step of one particle, folded into the box.

    Parameters
    ----------
    x, y, z : float
        Position (m).
    pid : int
        Particle id (random-stream entity).
    d : float
        Diffusivity (m²/s).
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

    Returns
    -------
    (float, float, float)
        ``fold(x + u_x Δt + √(2 D Δt) ξx)`` and likewise for y, z, with
        ``(ξx, ξy) = normal_pair(seed, pid, step, 0)`` and ``ξz = normal(seed, pid, step, 1)``.
    """
    zx, zy = normal_pair(seed, pid, step, 0)
    zz = normal(seed, pid, step, 1)
    sig = math.sqrt(2.0 * d * dt)
    xn = fold_position(x + ux * dt + sig * zx, lo_x, hi_x, per_x)
    yn = fold_position(y + uy * dt + sig * zy, lo_y, hi_y, per_y)
    zn = fold_position(z + uz * dt + sig * zz, lo_z, hi_z, per_z)
    return xn, yn, zn


@pointwise
def update_particle(i, x, y, z, ids, state, moving, d_uniform, d_part, d_mode, region, d_table,
                    u, has_u, trilinear, ox, oy, oz, h, nx, ny, nz, per_x, per_y, per_z,
                    dt, seed, step):
    """Advance particle ``i`` of the arrays in place (the body of every kernel).

    Looks up the diffusivity (``d_mode`` 0: ``d_uniform``; 1: ``d_part[i]``; 2:
    ``d_table[region[iz, iy, ix]]``) and, if ``has_u``, the velocity (nearest voxel or
    trilinear) at the start-of-step position, then calls :func:`advance`. Particles whose
    ``state[i] != moving`` are not touched. Arguments as described in the module docstring;
    ``ox, oy, oz`` is the grid origin (m), ``h`` the voxel size (m), ``nx, ny, nz`` the grid
    shape.
    """
    if state[i] != moving:
        return
    xi = float(x[i])
    yi = float(y[i])
    zi = float(z[i])
    sx = (xi - ox) / h
    sy = (yi - oy) / h
    sz = (zi - oz) / h
    if d_mode == 0:
        d = d_uniform
    elif d_mode == 1:
        d = float(d_part[i])
    else:
        d = float(d_table[region[voxel_index(sz, nz), voxel_index(sy, ny), voxel_index(sx, nx)]])
    ux = 0.0
    uy = 0.0
    uz = 0.0
    if has_u:
        if trilinear:
            ix0, ix1, wx = lerp_index(sx - 0.5, nx, per_x)
            iy0, iy1, wy = lerp_index(sy - 0.5, ny, per_y)
            iz0, iz1, wz = lerp_index(sz - 0.5, nz, per_z)
        else:
            ix0 = voxel_index(sx, nx)
            iy0 = voxel_index(sy, ny)
            iz0 = voxel_index(sz, nz)
            ix1 = ix0
            iy1 = iy0
            iz1 = iz0
            wx = 0.0
            wy = 0.0
            wz = 0.0
        ux = sample_velocity(u, 0, ix0, ix1, wx, iy0, iy1, wy, iz0, iz1, wz)
        uy = sample_velocity(u, 1, ix0, ix1, wx, iy0, iy1, wy, iz0, iz1, wz)
        uz = sample_velocity(u, 2, ix0, ix1, wx, iy0, iy1, wy, iz0, iz1, wz)
    xn, yn, zn = advance(xi, yi, zi, ids[i], d, ux, uy, uz, dt, seed, step,
                         ox, ox + nx * h, oy, oy + ny * h, oz, oz + nz * h, per_x, per_y, per_z)
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


def _prepare(x, y, z, ids, state, step, dt_s, seed, grid, diffusivity_m2_per_s, region,
             region_diffusivity_m2_per_s, velocity_m_per_s, velocity_interpolation, periodic,
             moving_state, asarray, dummy):
    """Check the arguments and return the kernel argument tuple (after ``i``)."""
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
    if _is_host(ids) and n:
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
    d_uniform, d_part, d_mode = 0.0, dummy("d"), _D_UNIFORM
    reg, table = dummy("region"), dummy("d")
    if has_d:
        if np.ndim(diffusivity_m2_per_s) == 0:
            d_uniform = float(diffusivity_m2_per_s)
            if not (d_uniform >= 0 and math.isfinite(d_uniform)):
                raise ValueError("diffusivity_m2_per_s must be finite and >= 0 (m²/s), got "
                                 f"{diffusivity_m2_per_s!r}")
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
        table = asarray(region_diffusivity_m2_per_s)
        if tuple(reg.shape) != (nz, ny, nx):
            raise ValueError(f"region must have the grid's shape (nz, ny, nx) = {(nz, ny, nx)}, "
                             f"got {tuple(reg.shape)}")
        if reg.dtype.kind not in "iu":
            raise TypeError(f"region must be an integer array (uint8 preferred), got {reg.dtype}")
        if len(table.shape) != 1 or table.dtype not in (np.float32, np.float64):
            raise TypeError("region_diffusivity_m2_per_s must be a 1-D float array (m²/s per region)")
        if _is_host(table) and not (np.all(table >= 0) and np.all(np.isfinite(table))):
            raise ValueError("region_diffusivity_m2_per_s must be finite and >= 0 (m²/s)")
        if _is_host(reg) and reg.size and (reg.min() < 0 or int(reg.max()) >= table.shape[0]):
            raise ValueError(f"region codes must lie in [0, {table.shape[0]}) to index "
                             f"region_diffusivity_m2_per_s (one entry per region code); got "
                             f"[{int(reg.min())}, {int(reg.max())}]")
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
    else:
        u = dummy("u")
    return (ids, state, int(moving_state), d_uniform, d_part, d_mode, reg, table, u, has_u,
            velocity_interpolation == "trilinear", ox, oy, oz, h, nx, ny, nz, per[0], per[1],
            per[2], dt, rng.seed64(seed), int(step))


_HOST_DUMMIES = {
    "d": np.zeros(1),
    "region": np.zeros((1, 1, 1), np.uint8),
    "u": np.zeros((3, 1, 1, 1)),
}


def _host_dummy(kind):
    return _HOST_DUMMIES[kind]


def _host_asarray(a):
    return np.asarray(a)


def _host_prepare(x, y, z, ids, state, step, kw):
    for name, a in (("x", x), ("y", y), ("z", z), ("ids", ids), ("state", state)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array for this backend, got {type(a).__name__}")
    return _prepare(x, y, z, ids, state, step, asarray=_host_asarray, dummy=_host_dummy, **kw)


# --------------------------------------------------------------------------------------------
# Numba (CPU) driver
# --------------------------------------------------------------------------------------------

_update_cpu = update_particle.cpu


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _numba_kernel(x, y, z, ids, state, moving, d_uniform, d_part, d_mode, region, d_table, u,
                  has_u, trilinear, ox, oy, oz, h, nx, ny, nz, per_x, per_y, per_z, dt, seed,
                  step):
    for i in numba.prange(x.shape[0]):
        _update_cpu(i, x, y, z, ids, state, moving, d_uniform, d_part, d_mode, region, d_table,
                    u, has_u, trilinear, ox, oy, oz, h, nx, ny, nz, per_x, per_y, per_z, dt,
                    seed, step)


def numba_step_particles(x, y, z, ids, state, step, *, dt_s, seed, grid,
                         diffusivity_m2_per_s=None, region=None,
                         region_diffusivity_m2_per_s=None, velocity_m_per_s=None,
                         velocity_interpolation="nearest", periodic=(False, False, False),
                         moving_state=STATE_TISSUE):
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
        Region code of each voxel.
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

    Returns
    -------
    (ndarray, ndarray, ndarray)
        ``x, y, z`` (the same arrays).
    """
    kw = dict(dt_s=dt_s, seed=seed, grid=grid, diffusivity_m2_per_s=diffusivity_m2_per_s,
              region=region, region_diffusivity_m2_per_s=region_diffusivity_m2_per_s,
              velocity_m_per_s=velocity_m_per_s, velocity_interpolation=velocity_interpolation,
              periodic=periodic, moving_state=moving_state)
    args = _host_prepare(x, y, z, ids, state, step, kw)
    if x.shape[0]:
        _numba_kernel(x, y, z, *args)
    return x, y, z


# --------------------------------------------------------------------------------------------
# NumPy reference (independent vectorised code: the oracle of the compiled kernels)
# --------------------------------------------------------------------------------------------


def _np_normals(seed, pid, step):
    """``normal_pair(seed, p, step, 0)`` and ``normal(seed, p, step, 1)`` for an id array."""
    s = rng.seed64(seed) & 0xFFFFFFFFFFFFFFFF
    mask = np.uint64(0xFFFFFFFF)
    lo = pid & mask
    hi = pid >> np.uint64(32)
    st = np.uint64(int(step) & 0xFFFFFFFF)
    out = []
    for draw in (0, 1):
        x0, x1, x2, x3 = rng.numpy_philox4x32_10(lo, hi, st, np.uint64(draw), s & 0xFFFFFFFF, s >> 32)
        u0 = rng._numpy_u01(x0, x1)
        u1 = rng._numpy_u01(x2, x3)
        r = np.sqrt(-2.0 * np.log(u0))
        theta = rng._TWO_PI * u1
        out.append(r * np.cos(theta))
        if draw == 0:
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
        s = s - length * np.floor(s / length)
        r = lo + s
        r = np.where((r >= lo) & (r < hi), r, lo)
        return np.where(inside, x, r)
    inside = (x >= lo) & (x <= hi)
    s = np.where(x > hi, x - lo, lo - x)
    period = 2.0 * length
    s = s - period * np.floor(s / period)
    s = np.where(s > length, period - s, s)
    r = lo + s
    r = np.where(r > hi, hi, r)
    r = np.where(r >= lo, r, lo)
    return np.where(inside, x, r)


def numpy_step_particles(x, y, z, ids, state, step, *, dt_s, seed, grid,
                         diffusivity_m2_per_s=None, region=None,
                         region_diffusivity_m2_per_s=None, velocity_m_per_s=None,
                         velocity_interpolation="nearest", periodic=(False, False, False),
                         moving_state=STATE_TISSUE):
    """NumPy reference of :func:`numba_step_particles` (same arguments; in place).

    Written with vectorised NumPy independently of the pointwise functions, in the same order
    of floating-point operations, so that it agrees with the compiled kernels to the last bits
    of the normals (``log``, ``cos``, ``sin`` may differ by a few ulp between math libraries).
    """
    kw = dict(dt_s=dt_s, seed=seed, grid=grid, diffusivity_m2_per_s=diffusivity_m2_per_s,
              region=region, region_diffusivity_m2_per_s=region_diffusivity_m2_per_s,
              velocity_m_per_s=velocity_m_per_s, velocity_interpolation=velocity_interpolation,
              periodic=periodic, moving_state=moving_state)
    (ids, state, moving, d_uniform, d_part, d_mode, reg, table, u, has_u, trilinear,
     ox, oy, oz, h, nx, ny, nz, per_x, per_y, per_z, dt, seed64, step) = _host_prepare(
        x, y, z, ids, state, step, kw)
    idx = np.flatnonzero(state == moving)
    if idx.size == 0:
        return x, y, z
    px = x[idx].astype(np.float64)
    py = y[idx].astype(np.float64)
    pz = z[idx].astype(np.float64)
    sx, sy, sz = (px - ox) / h, (py - oy) / h, (pz - oz) / h
    if d_mode == _D_UNIFORM:
        d = np.full(idx.size, d_uniform)
    elif d_mode == _D_PER_PARTICLE:
        d = d_part[idx].astype(np.float64)
    else:
        d = table[reg[_np_voxel_index(sz, nz), _np_voxel_index(sy, ny),
                      _np_voxel_index(sx, nx)]].astype(np.float64)
    if has_u:
        if trilinear:
            lx, ly, lz = (_np_lerp_index(sx - 0.5, nx, per_x), _np_lerp_index(sy - 0.5, ny, per_y),
                          _np_lerp_index(sz - 0.5, nz, per_z))
        else:
            zero = np.zeros(idx.size)
            ix, iy, iz = _np_voxel_index(sx, nx), _np_voxel_index(sy, ny), _np_voxel_index(sz, nz)
            lx, ly, lz = (ix, ix, zero), (iy, iy, zero), (iz, iz, zero)
        ux, uy, uz = _np_sample(u, *lx, *ly, *lz)
    else:
        ux = uy = uz = np.zeros(idx.size)
    zx, zy, zz = _np_normals(seed64, ids[idx].astype(np.uint64), step)
    sig = np.sqrt(2.0 * d * dt)
    x[idx] = _np_fold(px + ux * dt + sig * zx, ox, ox + nx * h, per_x)
    y[idx] = _np_fold(py + uy * dt + sig * zy, oy, oy + ny * h, per_y)
    z[idx] = _np_fold(pz + uz * dt + sig * zz, oz, oz + nz * h, per_z)
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
