r"""First-order state changes of carrier particles in tissue: binding, internalisation, drainage.

Each particle (a packet of real carriers) in tissue is in one of two live compartments
(:mod:`nanosim.kernels.compartments`) and leaves it by first-order processes whose rates
(1/s) are those of the tissue region of the voxel that contains it:

====================  ===============  =========================================================
from                  to               rate
====================  ===============  =========================================================
TISSUE (free)         BOUND            ``k_bind``
TISSUE                INTERNALISED     ``k_internalise_free``
TISSUE                CLEARED          ``k_lymph`` (lymphatic drainage; terminal)
TISSUE                INTRAVASATED     ``intravasation_per_s`` of the voxel (P·S/V; terminal)
BOUND                 TISSUE           ``k_unbind``
BOUND                 INTERNALISED     ``k_internalise_bound``
====================  ===============  =========================================================

Rates come from ``rates_per_s``, a float64 table of shape ``(n_regions, 5)`` whose columns are
``[k_bind, k_unbind, k_internalise_free, k_internalise_bound, k_lymph]`` (:data:`RATE_COLUMNS`),
indexed by the region code (``region[z, y, x]``, e.g. 0 normal, 1 tumour, 2 necrotic) of the
voxel ``floor((x − origin)/h)`` (clamped to the grid) that holds the particle; the optional
per-voxel map ``intravasation_per_s`` (shape ``(nz, ny, nx)``) adds the return to blood.
INTERNALISED is absorbing here; CLEARED and INTRAVASATED are terminal codes the model turns
into ledger entries. Particles in any other state are left untouched, and positions never
change.

Competing risks
---------------
With constant rates ``k_j`` out of the particle's state and ``K = Σ_j k_j``, the time to the
first event is exponential with rate ``K`` and the event is ``j`` with probability ``k_j/K``.
One step of length ``Δt`` therefore draws one uniform pair ``(u0, u1) =
uniform_pair(seed, id, step, DRAW_TRANSITION)`` (:mod:`nanosim.kernels.rng`) and

- leaves the state if ``u0 < P = 1 − exp(−K Δt)`` (``-expm1``, accurate for small ``K Δt``),
- then goes to the first destination ``j`` (in the table order above) with
  ``u1·K < k_1 + … + k_j`` — destination ``j`` with probability ``k_j/K``.

The first transition of a step is exact in distribution. **A particle makes at most one
transition per step**: a second event in the same step (e.g. binding and unbinding again, or
binding then internalisation) is deferred to the next step. The per-step transition matrix of
this chain, ``M_ij = (1 − e^{−K_i Δt}) k_ij / K_i``, differs from the exact ``exp(Q Δt)`` of the
continuous-time chain by ``O((K Δt)²)`` per entry (the missing two-jump probability is
``≤ (K_max Δt)²/2``), so over a time ``t`` the fractions in each state are biased by
``O(K_max² Δt t)``, i.e. by a relative ``O(K_max Δt)`` of what was transferred. **Step-size
condition:** ``K_max Δt ≪ 1``, with ``K_max`` the largest total exit rate of any voxel and
state (``k_bind + k_internalise_free + k_lymph + intravasation`` or ``k_unbind +
k_internalise_bound``); ``K_max Δt ≤ 0.01`` keeps the bias below about 1 % of the transferred
fractions. Larger steps stay well defined (probabilities in [0, 1]) but lag the exact solution.

Random numbers and reproducibility
----------------------------------
The pair depends only on ``(seed, id, step)`` and the draw index :data:`DRAW_TRANSITION`, which
no other kernel uses: results do not depend on the backend, on the order of the arrays or on how
a run is split into calls. The NumPy, Numba and CUDA paths make bitwise identical decisions
(the only freedom is the last bit of ``expm1`` in the math library, which matters when ``u0``
falls within one ulp of ``P``: probability ~1e-16 per particle and step).

Backends
--------
- :func:`numpy_transition`: vectorised NumPy, written independently of the pointwise
  functions, the test oracle;
- :func:`numba_transition`: ``prange`` over particles calling :func:`update_state` compiled
  for the CPU (inlined into the loop), counts as loop reductions;
- ``nanosim.kernels.particle_states_cuda.transition``: one CUDA thread per particle calling the
  ``.cuda`` form, counts by atomic adds (imported lazily);
- :func:`transition`: dispatch on a backend name.

Every path returns the number of particles that made each transition kind, an int64 array
indexed as :data:`TRANSITIONS` (:data:`T_BIND`, …).
"""

from __future__ import annotations

import math
from numbers import Integral

import numba
import numpy as np

from . import rng
from ._compile import NJIT_OPTIONS, pointwise
from .compartments import BOUND, CLEARED, DRAW_TRANSITION, INTERNALISED, INTRAVASATED, TISSUE
from .rng import uniform_pair

__all__ = [
    "BACKENDS",
    "RATE_COLUMNS",
    "TRANSITIONS",
    "TRANSITION_NAMES",
    "T_BIND",
    "T_INTERNALISE_FREE",
    "T_LYMPH",
    "T_INTRAVASATE",
    "T_UNBIND",
    "T_INTERNALISE_BOUND",
    "voxel_of",
    "choose_transition",
    "update_state",
    "numpy_transition",
    "numba_transition",
    "transition",
    "transition_matrix",
    "rate_matrix",
]

#: Backend names accepted by :func:`transition`.
BACKENDS = ("numpy", "numba", "cupy")

#: Columns of the ``rates_per_s`` table (1/s).
RATE_COLUMNS = ("k_bind", "k_unbind", "k_internalise_free", "k_internalise_bound", "k_lymph")

# Transition kinds: indices of the counts array.
T_BIND = 0  #: TISSUE → BOUND
T_INTERNALISE_FREE = 1  #: TISSUE → INTERNALISED
T_LYMPH = 2  #: TISSUE → CLEARED
T_INTRAVASATE = 3  #: TISSUE → INTRAVASATED
T_UNBIND = 4  #: BOUND → TISSUE
T_INTERNALISE_BOUND = 5  #: BOUND → INTERNALISED
N_TRANSITIONS = 6

#: ``(from, to)`` compartment codes of each transition kind, by index.
TRANSITIONS = ((TISSUE, BOUND), (TISSUE, INTERNALISED), (TISSUE, CLEARED),
               (TISSUE, INTRAVASATED), (BOUND, TISSUE), (BOUND, INTERNALISED))
#: Names of the transition kinds, by index.
TRANSITION_NAMES = ("bind", "internalise_free", "lymph", "intravasate", "unbind", "internalise_bound")

# destination code of each kind (the kernels' lookup)
_DEST = tuple(t[1] for t in TRANSITIONS)


# --------------------------------------------------------------------------------------------
# Pointwise functions: the one physics source of the Numba and CUDA kernels
# --------------------------------------------------------------------------------------------


@pointwise
def voxel_of(p, o, h, n):
    """Index of the voxel along one axis that contains coordinate ``p`` (m), clamped to ``[0, n)``.

    ``floor((p − o)/h)`` for origin ``o`` and voxel size ``h``; NaN maps to 0.
    """
    s = (p - o) / h
    if not s >= 0.0:
        return 0
    if s >= n:
        return n - 1
    return int(math.floor(s))


@pointwise
def choose_transition(s, k_bind, k_unbind, k_int_free, k_int_bound, k_lymph, k_iv, dt, u0, u1):
    """Transition kind of one particle in one step (competing risks), or −1 for none.

    Parameters
    ----------
    s : int
        Compartment code; only TISSUE and BOUND can change.
    k_bind, k_unbind, k_int_free, k_int_bound, k_lymph, k_iv : float
        Rates (1/s) at the particle's voxel; ``k_iv`` is the intravasation rate.
    dt : float
        Time step (s).
    u0, u1 : float
        Uniforms in (0, 1): ``u0`` decides whether the particle leaves its state
        (``u0 < 1 − exp(−K dt)``), ``u1`` which way (``u1 K`` against the cumulative rates).

    Returns
    -------
    int
        One of :data:`T_BIND` … :data:`T_INTERNALISE_BOUND`, or −1.
    """
    if s == TISSUE:
        a0 = k_bind
        a1 = a0 + k_int_free
        a2 = a1 + k_lymph
        total = a2 + k_iv
        base = 0
        # the last destination with a positive rate takes a product rounded up to ``total``
        if k_iv > 0.0:
            last = 3
        elif k_lymph > 0.0:
            last = 2
        elif k_int_free > 0.0:
            last = 1
        else:
            last = 0
    elif s == BOUND:
        a0 = k_unbind
        a1 = a0 + k_int_bound
        a2 = a1
        total = a1
        base = 4
        last = 1 if k_int_bound > 0.0 else 0
    else:
        return -1
    if not total > 0.0:
        return -1
    if not u0 < -math.expm1(-total * dt):
        return -1
    t = u1 * total
    if t < a0:
        return base
    if t < a1:
        return base + 1
    if t < a2:
        return base + 2
    return base + last


@pointwise
def update_state(i, x, y, z, state, ids, region, rates, iv, has_iv, ox, oy, oz, h, nx, ny, nz,
                 dt, seed, step):
    """Apply one step's transition to particle ``i`` in place; return its kind (−1: none).

    Looks up the region (and the intravasation rate if ``has_iv``) of the voxel holding the
    particle, draws ``uniform_pair(seed, ids[i], step, DRAW_TRANSITION)`` and calls
    :func:`choose_transition`. Only TISSUE and BOUND particles draw numbers.
    """
    s = state[i]
    if s != TISSUE and s != BOUND:
        return -1
    ix = voxel_of(float(x[i]), ox, h, nx)
    iy = voxel_of(float(y[i]), oy, h, ny)
    iz = voxel_of(float(z[i]), oz, h, nz)
    r = region[iz, iy, ix]
    k_iv = float(iv[iz, iy, ix]) if has_iv else 0.0
    u0, u1 = uniform_pair(seed, ids[i], step, DRAW_TRANSITION)
    kind = choose_transition(s, rates[r, 0], rates[r, 1], rates[r, 2], rates[r, 3], rates[r, 4],
                             k_iv, dt, u0, u1)
    if kind == 0:
        state[i] = BOUND
    elif kind == 1 or kind == 5:
        state[i] = INTERNALISED
    elif kind == 2:
        state[i] = CLEARED
    elif kind == 3:
        state[i] = INTRAVASATED
    elif kind == 4:
        state[i] = TISSUE
    return kind


# --------------------------------------------------------------------------------------------
# Argument checking shared by every driver
# --------------------------------------------------------------------------------------------


def _need_array(name, a, ndim, n=None):
    if not (hasattr(a, "shape") and hasattr(a, "dtype")):
        raise TypeError(f"{name} must be an array (NumPy, or CuPy for the cupy backend), "
                        f"got {type(a).__name__}")
    if len(a.shape) != ndim or (n is not None and tuple(a.shape) != n):
        want = f"shape {n}" if n is not None else f"{ndim} dimension(s)"
        raise ValueError(f"{name} must have {want}, got shape {tuple(a.shape)}")


def _grid_box(grid):
    try:
        nx, ny, nz = (int(v) for v in grid.shape_xyz)
        ox, oy, oz = (float(v) for v in grid.origin_m)
        h = float(grid.voxel_size_m)
    except (AttributeError, TypeError, ValueError) as exc:
        raise TypeError("grid must be a nanosim.geometry.grid.Grid (shape_xyz, voxel_size_m, "
                        f"origin_m), got {type(grid).__name__}") from exc
    if min(nx, ny, nz) < 1 or not (h > 0 and math.isfinite(h)):
        raise ValueError(f"grid must have at least one voxel per axis and a positive voxel size, "
                         f"got {(nx, ny, nz)} voxels of {h} m")
    return ox, oy, oz, h, nx, ny, nz


def _prepare(x, y, z, state, ids, step, dt_s, seed, grid, region, rates_per_s,
             intravasation_per_s, asarray, dummy):
    """Check the arguments; return ``(ids, kernel arguments after state and ids)``."""
    _need_array("x", x, 1)
    n = (x.shape[0],)
    for name, a in (("y", y), ("z", z), ("state", state), ("ids", ids)):
        _need_array(name, a, 1, n)
    if x.dtype not in (np.float32, np.float64) or y.dtype != x.dtype or z.dtype != x.dtype:
        raise TypeError("x, y and z must share one dtype, float32 or float64; got "
                        f"{x.dtype}, {y.dtype}, {z.dtype}")
    if state.dtype not in (np.int8, np.uint8):
        raise TypeError(f"state must be an int8 or uint8 array of compartment codes, got {state.dtype}")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be an integer array (int64 preferred), got {ids.dtype}")
    if isinstance(ids, np.ndarray) and ids.size and (
            ids.min() < 0 or (ids.dtype == np.uint64 and int(ids.max()) >= 2**63)):
        raise ValueError("ids must lie in [0, 2**63) (they key the random streams)")
    if ids.dtype != np.int64:
        ids = ids.astype(np.int64)
    if not isinstance(step, Integral) or step < 0:
        raise ValueError(f"step must be a non-negative integer (the step index), got {step!r}")
    if not isinstance(seed, Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    dt = float(dt_s)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt_s must be a positive, finite time step in s, got {dt_s!r}")
    ox, oy, oz, h, nx, ny, nz = _grid_box(grid)
    shape = (nz, ny, nx)

    reg = asarray(region)
    _need_array("region", reg, 3, shape)
    if reg.dtype.kind not in "iu":
        raise TypeError(f"region must be an integer array of region codes (uint8 preferred), "
                        f"got {reg.dtype}")
    rates = asarray(rates_per_s)
    if len(rates.shape) != 2 or rates.shape[1] != len(RATE_COLUMNS):
        raise ValueError(f"rates_per_s must have shape (n_regions, {len(RATE_COLUMNS)}) with columns "
                         f"{RATE_COLUMNS}, got {tuple(rates.shape)}")
    if rates.dtype != np.float64:
        raise TypeError(f"rates_per_s must be float64 (1/s), got {rates.dtype}")
    if isinstance(rates, np.ndarray) and not np.all(np.isfinite(rates) & (rates >= 0)):
        raise ValueError("rates_per_s must be finite and >= 0 (1/s)")
    if isinstance(reg, np.ndarray) and reg.size and (reg.min() < 0 or int(reg.max()) >= rates.shape[0]):
        raise ValueError(f"region codes must lie in [0, {rates.shape[0]}) to index rates_per_s "
                         f"(one row per region); got [{int(reg.min())}, {int(reg.max())}]")
    has_iv = intravasation_per_s is not None
    if has_iv:
        iv = asarray(intravasation_per_s)
        _need_array("intravasation_per_s", iv, 3, shape)
        if iv.dtype not in (np.float32, np.float64):
            raise TypeError(f"intravasation_per_s must be float32 or float64 (1/s), got {iv.dtype}")
        if isinstance(iv, np.ndarray) and not np.all(np.isfinite(iv) & (iv >= 0)):
            raise ValueError("intravasation_per_s must be finite and >= 0 (1/s)")
    else:
        iv = dummy()
    return ids, (reg, rates, iv, has_iv, ox, oy, oz, h, nx, ny, nz, dt, rng.seed64(seed), int(step))


_HOST_IV_DUMMY = np.zeros((1, 1, 1))


def _host_dummy():
    return _HOST_IV_DUMMY


def _host_prepare(x, y, z, state, ids, step, kw):
    for name, a in (("x", x), ("y", y), ("z", z), ("state", state), ("ids", ids)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array for this backend, got {type(a).__name__}")
    return _prepare(x, y, z, state, ids, step, asarray=np.asarray, dummy=_host_dummy, **kw)


# --------------------------------------------------------------------------------------------
# Numba (CPU) driver
# --------------------------------------------------------------------------------------------

# the physics inlined into the loop (a separately compiled callee taking nine arrays costs more
# than the transition itself)
_update_cpu = update_state.cpu_inline


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _numba_kernel(x, y, z, state, ids, region, rates, iv, has_iv, ox, oy, oz, h, nx, ny, nz, dt,
                  seed, step):
    n0 = 0
    n1 = 0
    n2 = 0
    n3 = 0
    n4 = 0
    n5 = 0
    for i in numba.prange(x.shape[0]):
        kind = _update_cpu(i, x, y, z, state, ids, region, rates, iv, has_iv, ox, oy, oz, h, nx,
                           ny, nz, dt, seed, step)
        n0 += 1 if kind == 0 else 0
        n1 += 1 if kind == 1 else 0
        n2 += 1 if kind == 2 else 0
        n3 += 1 if kind == 3 else 0
        n4 += 1 if kind == 4 else 0
        n5 += 1 if kind == 5 else 0
    return n0, n1, n2, n3, n4, n5


def numba_transition(x, y, z, state, ids, step, *, dt_s, seed, grid, region, rates_per_s,
                     intravasation_per_s=None):
    """One step of tissue state transitions with the Numba ``prange`` kernel (``state`` in place).

    Parameters
    ----------
    x, y, z : ndarray, 1-D, float32 or float64
        Particle positions (m); read only.
    state : ndarray of int8 or uint8
        Compartment codes (:mod:`nanosim.kernels.compartments`), updated in place; only TISSUE
        and BOUND particles can change.
    ids : ndarray of int
        Particle ids in ``[0, 2**63)``; they key the random streams.
    step : int
        Step index ``n >= 0``; the pair is ``uniform_pair(seed, id, n, DRAW_TRANSITION)``.
    dt_s : float
        Time step (s); see the step-size condition in the module docstring.
    seed : int
        Scenario seed.
    grid : nanosim.geometry.grid.Grid
        The voxels of ``region`` and ``intravasation_per_s``.
    region : ndarray of int, shape (nz, ny, nx)
        Region code of each voxel (indexes the rows of ``rates_per_s``).
    rates_per_s : ndarray of float64, shape (n_regions, 5)
        ``[k_bind, k_unbind, k_internalise_free, k_internalise_bound, k_lymph]`` per region (1/s).
    intravasation_per_s : ndarray of float, shape (nz, ny, nx), optional
        Rate of return of free (TISSUE) particles into the blood per voxel (1/s), e.g. the wall
        exchange rate ``P·S/V``.

    Returns
    -------
    ndarray of int64, shape (6,)
        Number of particles that made each transition, indexed as :data:`TRANSITIONS`.
    """
    kw = dict(dt_s=dt_s, seed=seed, grid=grid, region=region, rates_per_s=rates_per_s,
              intravasation_per_s=intravasation_per_s)
    ids, args = _host_prepare(x, y, z, state, ids, step, kw)
    if x.shape[0] == 0:
        return np.zeros(N_TRANSITIONS, np.int64)
    return np.array(_numba_kernel(x, y, z, state, ids, *args), np.int64)


# --------------------------------------------------------------------------------------------
# NumPy reference (independent vectorised code: the oracle of the compiled kernels)
# --------------------------------------------------------------------------------------------


def _np_axis_index(p, o, h, n):
    s = (p.astype(np.float64) - o) / h
    i = np.floor(np.where(s >= 0.0, s, 0.0))
    return np.where(s >= n, n - 1, i).astype(np.int64)


def _np_uniform_pairs(seed, pid, step):
    """``uniform_pair(seed, p, step, DRAW_TRANSITION)`` for an array of ids (uint64)."""
    s = rng.seed64(seed) & 0xFFFFFFFFFFFFFFFF
    mask = np.uint64(0xFFFFFFFF)
    x0, x1, x2, x3 = rng.numpy_philox4x32_10(pid & mask, pid >> np.uint64(32),
                                             np.uint64(int(step) & 0xFFFFFFFF),
                                             np.uint64(DRAW_TRANSITION), s & 0xFFFFFFFF, s >> 32)
    return rng._numpy_u01(x0, x1), rng._numpy_u01(x2, x3)


def _np_kinds(tissue, k, u0, u1, dt):
    """Vectorised :func:`choose_transition` for particles that are TISSUE (``tissue``) or BOUND.

    ``k`` is a list of the six rate arrays ``(k_bind, k_unbind, k_if, k_ib, k_lymph, k_iv)``.
    """
    kb, ku, kif, kib, kl, kiv = k
    a0 = np.where(tissue, kb, ku)
    a1 = np.where(tissue, a0 + kif, a0 + kib)
    a2 = np.where(tissue, a1 + kl, a1)
    total = np.where(tissue, a2 + kiv, a1)
    last_t = np.where(kiv > 0, 3, np.where(kl > 0, 2, np.where(kif > 0, 1, 0)))
    last = np.where(tissue, last_t, np.where(kib > 0, 1, 0))
    with np.errstate(over="ignore", invalid="ignore"):
        leave = (total > 0.0) & (u0 < -np.expm1(-total * dt))
        t = u1 * total
    j = np.where(t < a0, 0, np.where(t < a1, 1, np.where(t < a2, 2, last)))
    return np.where(leave, np.where(tissue, 0, 4) + j, -1)


def numpy_transition(x, y, z, state, ids, step, *, dt_s, seed, grid, region, rates_per_s,
                     intravasation_per_s=None):
    """NumPy reference of :func:`numba_transition` (same arguments, result and decisions).

    Written with vectorised NumPy independently of the pointwise functions, with the same
    floating-point operations, so that its decisions equal those of the compiled kernels.
    """
    kw = dict(dt_s=dt_s, seed=seed, grid=grid, region=region, rates_per_s=rates_per_s,
              intravasation_per_s=intravasation_per_s)
    ids, (reg, rates, iv, has_iv, ox, oy, oz, h, nx, ny, nz, dt, seed64, step) = _host_prepare(
        x, y, z, state, ids, step, kw)
    live = np.flatnonzero((state == TISSUE) | (state == BOUND))
    counts = np.zeros(N_TRANSITIONS, np.int64)
    if live.size == 0:
        return counts
    ix = _np_axis_index(x[live], ox, h, nx)
    iy = _np_axis_index(y[live], oy, h, ny)
    iz = _np_axis_index(z[live], oz, h, nz)
    row = rates[reg[iz, iy, ix]]
    k_iv = iv[iz, iy, ix].astype(np.float64) if has_iv else np.zeros(live.size)
    u0, u1 = _np_uniform_pairs(seed64, ids[live].astype(np.uint64), step)
    kinds = _np_kinds(state[live] == TISSUE, [row[:, c] for c in range(5)] + [k_iv], u0, u1, dt)
    moved = kinds >= 0
    state[live[moved]] = np.asarray(_DEST, state.dtype)[kinds[moved]]
    counts += np.bincount(kinds[moved], minlength=N_TRANSITIONS)
    return counts


# --------------------------------------------------------------------------------------------
# Dispatch by backend name
# --------------------------------------------------------------------------------------------


def transition(backend_name, x, y, z, state, ids, step, *, dt_s, seed, grid, region, rates_per_s,
               intravasation_per_s=None):
    """One step of tissue state transitions on a backend (``state`` in place).

    Arguments as :func:`numba_transition`. ``"cupy"`` runs
    ``nanosim.kernels.particle_states_cuda.transition`` on CuPy arrays on CuPy's current stream
    and copies the six counts back to the host (one synchronisation).

    Returns
    -------
    ndarray of int64, shape (6,)
        Transitions made, indexed as :data:`TRANSITIONS` (host array on every backend).
    """
    kw = dict(dt_s=dt_s, seed=seed, grid=grid, region=region, rates_per_s=rates_per_s,
              intravasation_per_s=intravasation_per_s)
    if backend_name == "numpy":
        return numpy_transition(x, y, z, state, ids, step, **kw)
    if backend_name == "numba":
        return numba_transition(x, y, z, state, ids, step, **kw)
    if backend_name == "cupy":
        import cupy

        from . import particle_states_cuda

        counts = cupy.zeros(N_TRANSITIONS, cupy.int64)
        particle_states_cuda.transition(x, y, z, state, ids, step, counts=counts,
                                        stream=cupy.cuda.get_current_stream().ptr, **kw)
        return counts.get()
    raise ValueError(f"unknown backend {backend_name!r}; expected one of {BACKENDS}")


# --------------------------------------------------------------------------------------------
# The matching Markov chains (for tests, analysis and choosing the step)
# --------------------------------------------------------------------------------------------

#: Order of the compartments in :func:`rate_matrix` and :func:`transition_matrix`.
CHAIN_STATES = (TISSUE, BOUND, INTERNALISED, CLEARED, INTRAVASATED)


def _chain_rates(rates_row, intravasation_per_s):
    kb, ku, kif, kib, kl = (float(v) for v in rates_row)
    q = np.zeros((5, 5))
    q[0, 1:] = kb, kif, kl, float(intravasation_per_s)
    q[1, 0], q[1, 2] = ku, kib
    return q


def rate_matrix(rates_row, intravasation_per_s=0.0):
    """Generator ``Q`` (1/s) of the continuous-time chain over :data:`CHAIN_STATES`.

    ``Q[i, j]`` is the rate from state ``i`` to ``j``, rows sum to zero; the fractions at time
    ``t`` are ``p0 @ expm(Q t)``.
    """
    q = _chain_rates(rates_row, intravasation_per_s)
    q[np.diag_indices(5)] = -q.sum(axis=1)
    return q


def transition_matrix(rates_row, intravasation_per_s, dt_s):
    """One-step matrix ``M`` of the chain the kernels simulate (at most one jump per step).

    ``M[i, j] = (1 − exp(−K_i Δt)) k_ij / K_i`` for ``j ≠ i`` and ``M[i, i] = exp(−K_i Δt)``;
    the fractions after ``n`` steps are ``p0 @ matrix_power(M, n)`` exactly.
    """
    q = _chain_rates(rates_row, intravasation_per_s)
    total = q.sum(axis=1)
    m = np.zeros((5, 5))
    for i in range(5):
        if total[i] > 0:
            m[i] = -math.expm1(-total[i] * float(dt_s)) * q[i] / total[i]
        m[i, i] = math.exp(-total[i] * float(dt_s))
    return m
