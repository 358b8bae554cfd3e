r"""Unconditionally stable implicit transport step: LOD backward Euler with Thomas solves.

One step of size ``dt`` advances the free concentration ``c`` and the bound concentration
``cb`` (mol/m³) on a cell-centred voxel grid of cubic voxels of edge ``h`` (m). It is split
(locally one-dimensional, Lie splitting) into three directional backward-Euler sweeps and a
pointwise backward-Euler reaction:

.. math::

    (I - \Delta t\, A_x)\, c^{(1)} = c^n,\quad
    (I - \Delta t\, A_y)\, c^{(2)} = c^{(1)},\quad
    (I - \Delta t\, A_z)\, c^{(3)} = c^{(2)},\qquad
    (c^{n+1}, c_b^{n+1}) = R_{\Delta t}(c^{(3)}, c_b^n),

with no step-size limit. ``A_a`` is the 1-D flux-form operator along axis ``a`` built from the
face flux of :mod:`nanosim.kernels.physics`,

.. math::

    (A_a c)_i = -\frac{F_{i+1/2} - F_{i-1/2}}{h},\qquad
    F_{i+1/2} = D_f \frac{c_i - c_{i+1}}{h} + u^+_{i+1/2} c_i - u^-_{i+1/2} c_{i+1},

``D_f`` the harmonic mean of the two voxel diffusivities (:func:`~physics.face_diffusivity`),
``u`` the normal face velocity with first-order upwinding. Row ``i`` of ``I - Δt A`` is then, with
``r = Δt/h`` and the face coefficients ``f = r(D_f/h + u⁺)`` (carried forward) and
``g = r(D_f/h + u⁻)`` (carried backward)

.. math::

    -f_{i-1/2}\, c'_{i-1} + (1 + f_{i+1/2} + g_{i-1/2})\, c'_i - g_{i+1/2}\, c'_{i+1} = c_i .

``R_Δt`` is :func:`~physics.implicit_reaction` (loss ``k``, wall exchange ``PS/V·(c_p − c)``,
source, linear binding). The step is first order in time (splitting and backward Euler), second
order in space for diffusion and first order for the upwind convection. Every sweep matrix is a
tridiagonal (cyclic on periodic axes) M-matrix, diagonally dominant by columns, whose columns
of interior voxels sum to one: for any ``dt`` non-negative data stay non-negative and mass moves
only through faces. It is solved by the Thomas algorithm without pivoting (stable for such
matrices), and on periodic axes by the Sherman–Morrison correction of a second tridiagonal solve
(Press et al., *Numerical Recipes* §2.7, with ``γ = −b_0``). Axes of length 1 are skipped.

Round-off: along a no-flux or periodic axis the matrix ``I − Δt A_a`` has condition number
``≈ 1 + 4 Δt D/h²`` (the uniform mode is undamped), so relative errors may grow up to
``ε · Δt D/h²`` (measured mass drift of one step: 8e-15 at ``Δt D/h² = 1e4``, 2e-11 at 1e6).
Larger steps stay stable but lose digits, and the mass ledger closes only to that level.

Boundaries (per physical axis ``a``; x = 0, y = 1, z = 2; ``bc_kind[a]``):

- ``0`` no flux: the first and last faces carry nothing (their velocities are ignored);
- ``1`` periodic: the face between the last and first voxel has the harmonic-mean diffusivity
  of both and the velocity stored on the last voxel's +face;
- ``2`` fixed value ``v``: mirror ghost, diffusive inflow ``D_i (v - c_i)/(h/2)`` with the
  voxel's own diffusivity; convective inflow carries ``v``, outflow carries ``c_i``; the boundary
  face velocity is the one stored on the boundary voxel's own +face.

``bc_value`` is a float64 array of 3 (the same value at both ends of an axis) or of shape (3, 2)
(``[axis, lower/upper end]``).

Voxels with ``fixed == 1`` (vessel lumen) hold the plasma concentration ``cp`` (the value at
``t + dt``): their rows are identity rows with right-hand side ``cp``, they couple to their
neighbours through the ordinary face fluxes, and they take no reaction (``cb`` is left as is).

Data layout
-----------
``c``, ``cb`` float32 or float64, C-contiguous, shape ``(nz, ny, nx)``; ``region`` uint8 of the
same shape indexes the float64 tables ``d_table`` (m²/s), ``k_table``, ``kon_table``,
``koff_table`` (1/s). ``ps`` (1/s, wall exchange rate PS/V), ``src`` (mol m⁻³ s⁻¹) and ``fixed``
(uint8) are arrays of the grid shape or 1-element dummies with ``has_ps``/``has_src``/
``has_fixed`` False; ``u`` (m/s) has shape ``(3, nz, ny, nx)`` with ``u[a][z, y, x]`` the velocity
along axis ``a`` on the voxel's + face, or a dummy with ``has_u`` False. The fields are computed
in float64 inside and stored back in their own precision.

Mass ledger
-----------
``ledger_out`` (float64, 6 entries, in units of mol/m³ × voxels; multiply by the voxel volume
for moles). Entries 0–4 are *added to* (so a caller may sum a run or zero them per step), entry
5 is overwritten:

0. inflow through fixed-value domain faces, ``Σ Δt F_in / h`` over every sweep;
1. vessel supply: ``Σ Δt F / h`` from fixed voxels into their non-fixed neighbours over every
   sweep, plus the change ``cp − c`` of the fixed voxels themselves;
2. loss ``Σ Δt k c'``; 3. wall exchange into tissue ``Σ Δt PS/V (c_p − c')``; 4. source
   ``Σ Δt s`` (2–4 over non-fixed voxels, ``c'`` the value after the step);
5. ``Σ (c + c_b)`` over all voxels after the step.

Each term is computed from its own flux or rate, never as a residual, so
``total_after − total_before − (L0 + L1 − L2 + L3 + L4)`` closes to round-off (about 1e-12
relative in float64) and checks the solver. Sums are per-plane partials combined by
:func:`math.fsum`, so a step is bitwise reproducible on a given backend.

API
---
``make_workspace(shape, dtype, *, fast_path=True)`` allocates every scratch buffer once;
``numpy_implicit_step`` (readable reference) and ``numba_implicit_step`` (parallel CPU) share the
signature::

    step(c, cb, region, d_table, k_table, kon_table, koff_table,
         ps, has_ps, src, has_src, fixed, has_fixed, cp,
         u, has_u, bc_kind, bc_value, h, dt, work, ledger_out) -> None

and update ``c``, ``cb`` and ``ledger_out`` in place (``work`` may be None for the NumPy
reference). Every ``region`` value must index the tables (checked once by the caller, not per
step). The CUDA twin is :mod:`nanosim.kernels.implicit_cuda`.

CPU implementation
------------------
The lines of a sweep are solved in groups (a z plane for the y-sweep, a y row of planes for the
z-sweep) with the recurrence along the line in the outer loop and the unit-stride loop across x
inside, which LLVM vectorises; the x-sweep transposes each z plane into scratch first. Assembly
of a row is fused with the forward elimination, face diffusivities come from a per-step table
of region pairs (``Δt/h² · face_diffusivity``), and flat indices are unsigned so that numba emits
no negative-index wraparound (which blocks vectorisation). Groups are spread over the threads
in fixed chunks, so results do not depend on scheduling.

When the diffusivity table is uniform and there is no velocity and no fixed voxel, a
factorisation precomputed per (axis, length, dt, D, h, boundary kind) and cached in the
workspace replaces the assembly (``fast_path=False`` turns it off): about twice as fast.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange, types
from numba.extending import overload

from . import physics
from ._compile import NJIT_OPTIONS

__all__ = [
    "BC_FIXED",
    "BC_NOFLUX",
    "BC_PERIODIC",
    "ImplicitWorkspace",
    "LEDGER_SIZE",
    "bc_ends",
    "check_arguments",
    "make_workspace",
    "numba_implicit_step",
    "numpy_implicit_step",
]

BC_NOFLUX = 0
BC_PERIODIC = 1
BC_FIXED = 2
#: Entries of the mass ledger (see module docstring).
LEDGER_SIZE = 6

_PARALLEL = dict(NJIT_OPTIONS, parallel=True)

# Compiled pointwise physics bound to module names: njit code cannot reach attributes.
_fd = physics.face_diffusivity.cpu
_react = physics.implicit_reaction.cpu


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


def bc_ends(bc_value):
    """``bc_value`` as a float64 (3, 2) array ``[axis, lower/upper]`` (mol/m³)."""
    v = np.asarray(bc_value, dtype=np.float64)
    if v.shape == (3,):
        return np.stack([v, v], axis=1)
    if v.shape != (3, 2):
        raise ValueError(f"bc_value must have shape (3,) or (3, 2), not {v.shape}")
    return v


def check_arguments(c, cb, region, tables, ps, has_ps, src, has_src, fixed, has_fixed, u, has_u,
                    ledger_out):
    """Cheap (O(1)) layout checks of a step's arguments; raises ValueError.

    The compiled kernels index without bounds checks, so a wrong shape would read or write out
    of bounds. Region indices are not scanned: every value of ``region`` must be smaller than
    the (common) length of the tables, which the caller guarantees once when it builds them.
    """
    shape = tuple(c.shape)
    if len(shape) != 3:
        raise ValueError(f"fields must have shape (nz, ny, nx), not {shape}")
    named = [("c", c), ("cb", cb), ("region", region)]
    named += [("ps", ps)] if has_ps else []
    named += [("src", src)] if has_src else []
    named += [("fixed", fixed)] if has_fixed else []
    for name, a in named:
        if tuple(a.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {shape}")
    if has_u and tuple(u.shape) != (3,) + shape:
        raise ValueError(f"u has shape {tuple(u.shape)}, expected {(3,) + shape}")
    if region.dtype != np.uint8 or (has_fixed and fixed.dtype != np.uint8):
        raise ValueError("region and fixed must be uint8")
    if len({np.size(t) for t in tables}) != 1:
        raise ValueError("d_table, k_table, kon_table and koff_table must have one length")
    if ledger_out.dtype != np.float64 or ledger_out.shape[0] < LEDGER_SIZE:
        raise ValueError("ledger_out must be a float64 array of at least 6 entries")


def _check(c, cb, region, tables, ps, has_ps, src, has_src, fixed, has_fixed, u, has_u,
           ledger_out):
    check_arguments(c, cb, region, tables, ps, has_ps, src, has_src, fixed, has_fixed, u, has_u,
                    ledger_out)
    arrays = [c, cb, region] + [a for a, on in ((ps, has_ps), (src, has_src),
                                                (fixed, has_fixed), (u, has_u)) if on]
    if not all(a.flags.c_contiguous for a in arrays):
        raise ValueError("grid arrays must be C-contiguous")


# --------------------------------------------------------------------------------------------
# NumPy reference
# --------------------------------------------------------------------------------------------


def _np_face_diffusivity(d_a, d_b):
    """Vectorised :func:`physics.face_diffusivity` (same arithmetic)."""
    s = d_a + d_b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0.0, 2.0 * d_a * d_b / np.where(s > 0.0, s, 1.0), 0.0)


def _np_thomas(lo, di, up, rhs):
    """Solve tridiagonal systems along axis 0 (all lines at once); returns the solution."""
    n = di.shape[0]
    cp_ = np.empty_like(di)
    dp = np.empty_like(di)
    w = 1.0 / di[0]
    cp_[0] = up[0] * w
    dp[0] = rhs[0] * w
    for j in range(1, n):
        w = 1.0 / (di[j] - lo[j] * cp_[j - 1])
        cp_[j] = up[j] * w
        dp[j] = (rhs[j] - lo[j] * dp[j - 1]) * w
    for j in range(n - 2, -1, -1):
        dp[j] -= cp_[j] * dp[j + 1]
    return dp


def _np_cyclic(lo, di, up, rhs, alpha, beta):
    """Cyclic tridiagonal solve by Sherman–Morrison.

    ``beta`` is the top-right corner (row 0, column n−1), ``alpha`` the bottom-left corner.
    """
    gamma = -di[0]
    di2 = di.copy()
    di2[0] = di[0] - gamma
    di2[-1] = di[-1] - alpha * beta / gamma
    y = _np_thomas(lo, di2, up, rhs)
    e = np.zeros_like(rhs)
    e[0] = gamma
    e[-1] = alpha
    z = _np_thomas(lo, di2, up, e)
    fact = (y[0] + beta * y[-1] / gamma) / (1.0 + z[0] + beta * z[-1] / gamma)
    return y - fact * z


def _np_sweep(c, dvox, u, has_u, fixed, has_fixed, cp, kind, v_lo, v_hi, h, dt, axis):
    """One backward-Euler sweep along physical ``axis`` (NumPy); returns (boundary, vessel)."""
    ax = 2 - axis  # array axis of physical axis
    x0 = np.moveaxis(c, ax, 0).astype(np.float64)
    dv = np.moveaxis(dvox, ax, 0)
    uu = np.moveaxis(u[axis], ax, 0).astype(np.float64) if has_u else np.zeros_like(x0)
    fx = np.moveaxis(fixed, ax, 0) != 0 if has_fixed else np.zeros(x0.shape, bool)
    r = dt / h
    rh = dt / (h * h)

    df = _np_face_diffusivity(dv[:-1], dv[1:])
    uf = uu[:-1]
    fw = rh * df + r * np.maximum(uf, 0.0)  # face coefficient carried to j+1
    bw = rh * df + r * np.maximum(-uf, 0.0)  # carried back to j
    lo = np.zeros_like(x0)
    up = np.zeros_like(x0)
    di = np.ones_like(x0)
    di[:-1] += fw
    di[1:] += bw
    up[:-1] = -bw
    lo[1:] = -fw
    rhs = x0.copy()

    if kind == BC_PERIODIC:
        dw = rh * _np_face_diffusivity(dv[-1], dv[0])
        fww = dw + r * np.maximum(uu[-1], 0.0)
        bww = dw + r * np.maximum(-uu[-1], 0.0)
        di[-1] += fww
        di[0] += bww
        beta = -fww
        alpha = -bww
    elif kind == BC_FIXED:
        g_lo = 2.0 * rh * dv[0]
        g_hi = 2.0 * rh * dv[-1]
        in_lo = g_lo + r * np.maximum(uu[0], 0.0)  # inflow coefficient of the ghost value
        out_lo = g_lo + r * np.maximum(-uu[0], 0.0)
        in_hi = g_hi + r * np.maximum(-uu[-1], 0.0)
        out_hi = g_hi + r * np.maximum(uu[-1], 0.0)
        di[0] += out_lo
        di[-1] += out_hi
        rhs[0] += in_lo * v_lo
        rhs[-1] += in_hi * v_hi

    vessel = 0.0
    if has_fixed:
        vessel += float(np.sum(cp - x0[fx]))
        lo[fx] = 0.0
        up[fx] = 0.0
        di[fx] = 1.0
        rhs[fx] = cp
        if kind == BC_PERIODIC:
            beta = np.where(fx[0], 0.0, beta)
            alpha = np.where(fx[-1], 0.0, alpha)

    if kind == BC_PERIODIC:
        x = _np_cyclic(lo, di, up, rhs, alpha, beta)
    else:
        x = _np_thomas(lo, di, up, rhs)

    boundary = 0.0
    if kind == BC_FIXED:
        q_lo = in_lo * v_lo - out_lo * x[0]
        q_hi = in_hi * v_hi - out_hi * x[-1]
        boundary = float(np.sum(np.where(fx[0], 0.0, q_lo)) + np.sum(np.where(fx[-1], 0.0, q_hi)))
    if has_fixed:
        # Δt F/h from voxel j to j+1 on each face; counted where exactly one side is fixed.
        q = fw * x[:-1] - bw * x[1:]
        vessel += float(np.sum(np.where(fx[:-1] & ~fx[1:], q, 0.0)))
        vessel -= float(np.sum(np.where(~fx[:-1] & fx[1:], q, 0.0)))
        if kind == BC_PERIODIC:
            q = fww * x[-1] - bww * x[0]
            vessel += float(np.sum(np.where(fx[-1] & ~fx[0], q, 0.0)))
            vessel -= float(np.sum(np.where(~fx[-1] & fx[0], q, 0.0)))

    np.moveaxis(c, ax, 0)[...] = x
    return boundary, vessel


def _np_reaction(c, cb, region, k_table, kon_table, koff_table, ps, has_ps, src, has_src,
                 fixed, has_fixed, cp, dt):
    """Pointwise backward-Euler reactions (NumPy); returns (vessel, loss, exchange, source)."""
    c0 = c.astype(np.float64)
    cb0 = cb.astype(np.float64)
    k = k_table[region]
    ps_ = ps.astype(np.float64) if has_ps else np.zeros_like(c0)
    s_ = src.astype(np.float64) if has_src else np.zeros_like(c0)
    cn, cbn = physics.implicit_reaction.py(c0, cb0, k, kon_table[region], koff_table[region],
                                           ps_, cp, s_, dt)
    tissue = fixed == 0 if has_fixed else np.ones(c.shape, bool)
    loss = float(np.sum((dt * k * cn)[tissue]))
    exchange = float(np.sum((dt * ps_ * (cp - cn))[tissue]))
    source = float(np.sum((dt * s_)[tissue]))
    vessel = float(np.sum(cp - c0[~tissue]))
    c[...] = np.where(tissue, cn, cp)
    cb[...] = np.where(tissue, cbn, cb0)
    return vessel, loss, exchange, source


def numpy_implicit_step(c, cb, region, d_table, k_table, kon_table, koff_table, ps, has_ps,
                        src, has_src, fixed, has_fixed, cp, u, has_u, bc_kind, bc_value, h, dt,
                        work, ledger_out):
    """Advance ``c`` and ``cb`` by one implicit LOD step (NumPy reference).

    Parameters
    ----------
    c, cb : ndarray, float32 or float64, (nz, ny, nx)
        Free and bound concentration (mol/m³), updated in place.
    region : ndarray of uint8, (nz, ny, nx)
        Region index of each voxel into the tables.
    d_table, k_table, kon_table, koff_table : ndarray of float64
        Per-region diffusivity (m²/s), first-order loss, binding and unbinding rates (1/s).
    ps : ndarray
        Wall exchange rate PS/V (1/s) per voxel; ignored unless ``has_ps``.
    src : ndarray
        Volumetric source (mol m⁻³ s⁻¹); ignored unless ``has_src``.
    fixed : ndarray of uint8
        1 on voxels that hold the plasma concentration; ignored unless ``has_fixed``.
    cp : float
        Plasma concentration at ``t + dt`` (mol/m³).
    u : ndarray, (3, nz, ny, nx)
        Face velocities (m/s) on each voxel's +x, +y, +z face; ignored unless ``has_u``.
    bc_kind : array of int, (3,)
        Boundary kind per physical axis: 0 no flux, 1 periodic, 2 fixed value.
    bc_value : array of float64, (3,) or (3, 2)
        Fixed boundary values (mol/m³).
    h : float
        Voxel edge (m).
    dt : float
        Step (s); any size.
    work : ImplicitWorkspace or None
        Unused by the reference (accepted for a common signature).
    ledger_out : ndarray of float64, (6,)
        Mass ledger (module docstring): entries 0–4 accumulated, entry 5 overwritten.
    """
    _check(c, cb, region, (d_table, k_table, kon_table, koff_table), ps, has_ps, src, has_src,
           fixed, has_fixed, u, has_u, ledger_out)
    ends = bc_ends(bc_value)
    dvox = np.asarray(d_table, np.float64)[region]
    boundary = vessel = 0.0
    for axis in range(3):
        if c.shape[2 - axis] == 1:
            continue
        b, v = _np_sweep(c, dvox, u, has_u, fixed, has_fixed, float(cp), int(bc_kind[axis]),
                         ends[axis, 0], ends[axis, 1], float(h), float(dt), axis)
        boundary += b
        vessel += v
    v, loss, exchange, source = _np_reaction(
        c, cb, region, np.asarray(k_table, np.float64), np.asarray(kon_table, np.float64),
        np.asarray(koff_table, np.float64), ps, has_ps, src, has_src, fixed, has_fixed,
        float(cp), float(dt))
    ledger_out[0] += boundary
    ledger_out[1] += vessel + v
    ledger_out[2] += loss
    ledger_out[3] += exchange
    ledger_out[4] += source
    ledger_out[5] = float(np.sum(c, dtype=np.float64) + np.sum(cb, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------------------------


def _pick(a, b):
    """``None`` if ``a`` is None else ``b``, resolved at compile time inside njit code."""
    return None if a is None else b


@overload(_pick)
def _pick_overload(a, b):
    if isinstance(a, types.NoneType):
        return lambda a, b: None
    return lambda a, b: b


# Rows of the per-line scratch ``e[k, v]`` of the general sweep.
_PF, _PB, _RLO, _FHI, _RHI, _ALPHA, _BETA, _GAMMA, _FACT, _VES, _BND, _FD = range(12)
_N_EX = 12


@numba.njit(**NJIT_OPTIONS)
def _general_lines(c, reg, d_table, fdt, nreg, u, fix, cp, kind, v_lo, v_hi, r, rh, n, base,
                   sa, nv, cm, dp, zz, e):
    """Solve ``nv`` lines of one sweep with per-face coefficients; returns (boundary, vessel).

    Voxel ``j`` of line ``v`` is ``c[base + j·sa + v]``: the lines are solved together, row by
    row along the line, with the unit-stride inner loop across lines (vectorised). ``u``
    (velocity along the sweep axis, flat) and ``fix`` are arrays or None; ``fdt[a·nreg + b]`` is
    ``Δt/h² · D_f`` of the face between regions ``a`` and ``b``. Assembly of a row
    (coefficients of the face above, diagonal, right-hand side, identity rows of fixed voxels)
    is fused with the Thomas forward elimination: ``cm`` receives the modified super-diagonal,
    ``dp`` the modified right-hand side and then the solution, ``zz`` the Sherman–Morrison
    vector on periodic axes; ``e`` holds per-line scratch rows (``_PF`` … ``_BND``). The
    solution is written back into ``c``. The ledger sums are per-line accumulators added in a
    fixed order.

    Flat indices are unsigned (numba then emits no negative-index wraparound, which would stop
    LLVM from vectorising), and the region-table lookups are gathered into ``e[_FD]`` by a
    scalar loop before each vectorised row loop.
    """
    periodic = kind == 1
    fixed_bc = kind == 2
    pf = e[_PF]  # coefficient of the face below, carried forward (lower = -pf)
    pb = e[_PB]  # coefficient of the face below, carried backward (adds to the diagonal)
    rlo = e[_RLO]  # right-hand-side term of the first row (fixed-value boundary)
    fhi = e[_FHI]  # diagonal term of the last row from the face above it
    rhi = e[_RHI]  # right-hand-side term of the last row
    alpha = e[_ALPHA]  # corner (n-1, 0)
    beta = e[_BETA]  # corner (0, n-1)
    gamma = e[_GAMMA]
    fact = e[_FACT]
    ves = e[_VES]
    bnd = e[_BND]
    fd = e[_FD]  # Δt/h² D_f of the face above the current row
    ub = np.uint64(base)
    us = np.uint64(sa)
    un = np.uint64(nreg)
    ul = ub + np.uint64(n - 1) * us
    # Boundary terms of the first and last rows.
    for v in range(nv):
        i0 = ub + np.uint64(v)
        il = ul + np.uint64(v)
        ves[v] = 0.0
        bnd[v] = 0.0
        pb[v] = 0.0
        rlo[v] = 0.0
        fhi[v] = 0.0
        rhi[v] = 0.0
        if periodic:
            dwh = fdt[reg[il] * un + reg[i0]]
            uw = r * u[il] if u is not None else 0.0
            fw = dwh + max(uw, 0.0)
            bw = dwh + max(-uw, 0.0)
            pb[v] = bw
            fhi[v] = fw
            beta[v] = -fw
            alpha[v] = -bw
            if fix is not None:
                beta[v] = 0.0 if fix[i0] != 0 else beta[v]
                alpha[v] = 0.0 if fix[il] != 0 else alpha[v]
        elif fixed_bc:
            g_lo = 2.0 * rh * d_table[reg[i0]]
            g_hi = 2.0 * rh * d_table[reg[il]]
            u_lo = r * u[i0] if u is not None else 0.0
            u_hi = r * u[il] if u is not None else 0.0
            pb[v] = g_lo + max(-u_lo, 0.0)
            rlo[v] = (g_lo + max(u_lo, 0.0)) * v_lo
            fhi[v] = g_hi + max(u_hi, 0.0)
            rhi[v] = (g_hi + max(-u_hi, 0.0)) * v_hi
    # Row 0.
    for v in range(nv):
        i = ub + np.uint64(v)
        fd[v] = fdt[reg[i] * un + reg[i + us]]
    for v in range(nv):
        i = ub + np.uint64(v)
        f = fd[v]
        b = fd[v]
        if u is not None:
            uf = r * u[i]
            f = fd[v] + max(uf, 0.0)
            b = fd[v] + max(-uf, 0.0)
        diag = 1.0 + f + pb[v]
        upc = -b
        rhs = c[i] + rlo[v]
        if fix is not None:
            fx = fix[i] != 0
            ves[v] += cp - c[i] if fx else 0.0
            diag = 1.0 if fx else diag
            upc = 0.0 if fx else upc
            rhs = cp if fx else rhs
        if periodic:
            gamma[v] = -diag
            diag -= gamma[v]
        w = 1.0 / diag
        if periodic:
            zz[0, v] = gamma[v] * w
        dp[0, v] = rhs * w
        cm[0, v] = upc * w
        pf[v] = f
        pb[v] = b
    # Rows 1 .. n-2: the hot loop.
    for j in range(1, n - 1):
        row = ub + np.uint64(j) * us
        cm0 = cm[j - 1]
        dp0 = dp[j - 1]
        cm1 = cm[j]
        dp1 = dp[j]
        zz1 = zz[j]
        for v in range(nv):
            i = row + np.uint64(v)
            fd[v] = fdt[reg[i] * un + reg[i + us]]
        for v in range(nv):
            i = row + np.uint64(v)
            f = fd[v]
            b = fd[v]
            if u is not None:
                uf = r * u[i]
                f = fd[v] + max(uf, 0.0)
                b = fd[v] + max(-uf, 0.0)
            diag = 1.0 + f + pb[v]
            low = -pf[v]
            upc = -b
            rhs = c[i] + 0.0
            if fix is not None:
                # Identity row holding cp, written as selects to keep the loop vectorised.
                fx = fix[i] != 0
                ves[v] += cp - rhs if fx else 0.0
                diag = 1.0 if fx else diag
                low = 0.0 if fx else low
                upc = 0.0 if fx else upc
                rhs = cp if fx else rhs
            w = 1.0 / (diag - low * cm0[v])
            dp1[v] = (rhs - low * dp0[v]) * w
            cm1[v] = upc * w
            zz1[v] = low * w  # Sherman-Morrison multiplier, used on periodic axes only
            pf[v] = f
            pb[v] = b
    if periodic:
        for j in range(1, n - 1):
            zz0 = zz[j - 1]
            zz1 = zz[j]
            for v in range(nv):
                zz1[v] = -zz1[v] * zz0[v]
    # Last row: the face above it is the domain boundary.
    for v in range(nv):
        i = ul + np.uint64(v)
        diag = 1.0 + fhi[v] + pb[v]
        low = -pf[v]
        rhs = c[i] + rhi[v]
        if fix is not None:
            fx = fix[i] != 0
            ves[v] += cp - c[i] if fx else 0.0
            diag = 1.0 if fx else diag
            low = 0.0 if fx else low
            rhs = cp if fx else rhs
        if periodic:
            diag -= alpha[v] * beta[v] / gamma[v]
        w = 1.0 / (diag - low * cm[n - 2, v])
        dp[n - 1, v] = (rhs - low * dp[n - 2, v]) * w
        if periodic:
            zz[n - 1, v] = (alpha[v] - low * zz[n - 2, v]) * w
    # Back substitution and write-back.
    if periodic:
        for j in range(n - 2, -1, -1):
            cm0 = cm[j]
            dp0 = dp[j]
            dp1 = dp[j + 1]
            zz0 = zz[j]
            zz1 = zz[j + 1]
            for v in range(nv):
                dp0[v] -= cm0[v] * dp1[v]
                zz0[v] -= cm0[v] * zz1[v]
        for v in range(nv):
            fact[v] = (dp[0, v] + beta[v] * dp[n - 1, v] / gamma[v]) / (
                1.0 + zz[0, v] + beta[v] * zz[n - 1, v] / gamma[v])
        for j in range(n):
            row = ub + np.uint64(j) * us
            dp0 = dp[j]
            zz0 = zz[j]
            for v in range(nv):
                dp0[v] -= fact[v] * zz0[v]
                c[row + np.uint64(v)] = dp0[v]
    else:
        for v in range(nv):
            c[ul + np.uint64(v)] = dp[n - 1, v]
        for j in range(n - 2, -1, -1):
            row = ub + np.uint64(j) * us
            cm0 = cm[j]
            dp0 = dp[j]
            dp1 = dp[j + 1]
            for v in range(nv):
                dp0[v] -= cm0[v] * dp1[v]
                c[row + np.uint64(v)] = dp0[v]
    # Ledger from the fluxes of the solution.
    if fixed_bc:
        for v in range(nv):
            i0 = ub + np.uint64(v)
            il = ul + np.uint64(v)
            g_lo = 2.0 * rh * d_table[reg[i0]]
            g_hi = 2.0 * rh * d_table[reg[il]]
            u_lo = r * u[i0] if u is not None else 0.0
            u_hi = r * u[il] if u is not None else 0.0
            q_lo = (g_lo + max(u_lo, 0.0)) * v_lo - (g_lo + max(-u_lo, 0.0)) * dp[0, v]
            q_hi = (g_hi + max(-u_hi, 0.0)) * v_hi - (g_hi + max(u_hi, 0.0)) * dp[n - 1, v]
            if fix is not None:
                q_lo = 0.0 if fix[i0] != 0 else q_lo
                q_hi = 0.0 if fix[il] != 0 else q_hi
            bnd[v] += q_lo + q_hi
    if fix is not None:
        # Δt F/h from voxel j to jb on each face with exactly one fixed side.
        for j in range(n if periodic else n - 1):
            jb = j + 1 if j + 1 < n else 0
            row = ub + np.uint64(j) * us
            rowb = ub + np.uint64(jb) * us
            dpa = dp[j]
            dpb = dp[jb]
            for v in range(nv):
                ia = row + np.uint64(v)
                ib = rowb + np.uint64(v)
                fa = fix[ia] != 0
                fb = fix[ib] != 0
                if fa != fb:
                    dfh = fdt[reg[ia] * un + reg[ib]]
                    uf = r * u[ia] if u is not None else 0.0
                    q = (dfh + max(uf, 0.0)) * dpa[v] - (dfh + max(-uf, 0.0)) * dpb[v]
                    ves[v] += q if fa else -q
    s_bnd = 0.0
    s_ves = 0.0
    for v in range(nv):
        s_bnd += bnd[v]
        s_ves += ves[v]
    return s_bnd, s_ves


@numba.njit(**NJIT_OPTIONS)
def _fast_lines(c, n, base, sa, nv, a, w, cpr, b_lo, b_hi, periodic, zz, bog, inv_den, g,
                v_lo, v_hi, x, fact):
    """Solve ``nv`` lines with a precomputed factorisation; returns the boundary inflow.

    Same line layout as :func:`_general_lines`. ``a`` is the constant off-diagonal, ``w[j]``
    the inverse pivots, ``cpr[j]`` the modified super-diagonal, ``b_lo``/``b_hi`` the
    right-hand-side terms of fixed-value ends, ``g`` their coefficient (0 otherwise); on
    periodic axes ``zz`` is the Sherman–Morrison vector, ``bog = β/γ`` and
    ``inv_den = 1/(1 + z_0 + β z_{n-1}/γ)``. ``x`` and ``fact`` are scratch.
    """
    ubase = np.uint64(base)  # unsigned flat indices vectorise (no wraparound check)
    usa = np.uint64(sa)
    w0 = w[0]
    for v in range(nv):
        x[0, v] = (c[ubase + np.uint64(v)] + b_lo) * w0
    for j in range(1, n - 1):
        row = ubase + np.uint64(j) * usa
        wj = w[j]
        x0 = x[j - 1]
        x1 = x[j]
        for v in range(nv):
            x1[v] = (c[row + np.uint64(v)] - a * x0[v]) * wj
    row = ubase + np.uint64(n - 1) * usa
    wj = w[n - 1]
    for v in range(nv):
        x[n - 1, v] = (c[row + np.uint64(v)] + b_hi - a * x[n - 2, v]) * wj
    if periodic:
        for j in range(n - 2, -1, -1):
            cj = cpr[j]
            x0 = x[j]
            x1 = x[j + 1]
            for v in range(nv):
                x0[v] -= cj * x1[v]
        for v in range(nv):
            fact[v] = (x[0, v] + bog * x[n - 1, v]) * inv_den
        for j in range(n):
            row = ubase + np.uint64(j) * usa
            zj = zz[j]
            x0 = x[j]
            for v in range(nv):
                c[row + np.uint64(v)] = x0[v] - fact[v] * zj
    else:
        row = ubase + np.uint64(n - 1) * usa
        for v in range(nv):
            c[row + np.uint64(v)] = x[n - 1, v]
        for j in range(n - 2, -1, -1):
            row = ubase + np.uint64(j) * usa
            cj = cpr[j]
            x0 = x[j]
            x1 = x[j + 1]
            for v in range(nv):
                x0[v] -= cj * x1[v]
                c[row + np.uint64(v)] = x0[v]
    boundary = 0.0
    if g != 0.0:
        for v in range(nv):
            boundary += g * (v_lo - x[0, v]) + g * (v_hi - x[n - 1, v])
    return boundary


@numba.njit(**NJIT_OPTIONS)
def _to_lines(src, dst, base, ny, nx):
    """Copy plane ``src[base + y·nx + x]`` to ``dst[x·ny + y]`` (x-lines become columns)."""
    ub = np.uint64(base)
    uny = np.uint64(ny)
    unx = np.uint64(nx)
    for y0 in range(0, ny, 8):  # 8×8 tiles keep both sides in L1
        for x0 in range(0, nx, 8):
            for x in range(x0, min(x0 + 8, nx)):
                ux = np.uint64(x)
                for y in range(y0, min(y0 + 8, ny)):
                    uy = np.uint64(y)
                    dst[ux * uny + uy] = src[ub + uy * unx + ux]


@numba.njit(**NJIT_OPTIONS)
def _from_lines(src, dst, base, ny, nx):
    """Inverse of :func:`_to_lines`."""
    ub = np.uint64(base)
    uny = np.uint64(ny)
    unx = np.uint64(nx)
    for y0 in range(0, ny, 8):
        for x0 in range(0, nx, 8):
            for x in range(x0, min(x0 + 8, nx)):
                ux = np.uint64(x)
                for y in range(y0, min(y0 + 8, ny)):
                    uy = np.uint64(y)
                    dst[ub + uy * unx + ux] = src[ux * uny + uy]


@numba.njit(**NJIT_OPTIONS)
def _face_table(d_table, rh, out):
    """``out[a·n + b] = Δt/h² · D_f(a, b)`` for every pair of regions (the face coefficient)."""
    n = d_table.size
    for a in range(n):
        for b in range(n):
            out[a * n + b] = rh * _fd(d_table[a], d_table[b])


# The parallel drivers below each call their line solver from a single site: with several
# call sites numba's parallel compilation takes several times longer.


@numba.njit(**_PARALLEL)
def _sweep_general_yz(c, reg, d_table, fdt, nreg, u, fix, cp, kind, v_lo, v_hi, r, rh, n, sa,
                      nv, no, so, CM, DP, ZZ, EX, part):
    """General y- or z-sweep: group ``o`` holds the ``nv`` lines starting at ``o·so``.

    y-sweep: one group per z plane (``so = ny·nx``, ``sa = nx``); z-sweep: one group per y
    (``so = nx``, ``sa = ny·nx``); lines run across x with unit stride. Groups are spread over
    the threads in fixed contiguous chunks; ``part[:, o]`` gets each group's (boundary, vessel)
    sums.
    """
    nch = min(CM.shape[0], no)
    for t in prange(nch):
        for o in range(t * no // nch, (t + 1) * no // nch):
            b, s = _general_lines(c, reg, d_table, fdt, nreg, u, fix, cp, kind, v_lo, v_hi, r,
                                  rh, n, o * so, sa, nv, CM[t], DP[t], ZZ[t], EX[t])
            part[0, o] = b
            part[1, o] = s


@numba.njit(**_PARALLEL)
def _sweep_general_x(c, reg, d_table, fdt, nreg, u, fix, cp, kind, v_lo, v_hi, r, rh, nz, ny,
                     nx, CM, DP, ZZ, EX, TC, TR, TU, TF, part):
    """General x-sweep: each z plane is transposed into the chunk's scratch ``TC/TR/TU/TF`` so
    that its lines along x are solved with unit stride across y, then transposed back."""
    plane = ny * nx
    nch = min(CM.shape[0], nz)
    for t in prange(nch):
        tc = TC[t]
        tr = TR[t]
        tu = _pick(u, TU[t])
        tf = _pick(fix, TF[t])
        for z in range(t * nz // nch, (t + 1) * nz // nch):
            base = z * plane
            _to_lines(c, tc, base, ny, nx)
            _to_lines(reg, tr, base, ny, nx)
            if u is not None:
                _to_lines(u, tu, base, ny, nx)
            if fix is not None:
                _to_lines(fix, tf, base, ny, nx)
            b, s = _general_lines(tc, tr, d_table, fdt, nreg, tu, tf, cp, kind, v_lo, v_hi, r,
                                  rh, nx, 0, ny, ny, CM[t], DP[t], ZZ[t], EX[t])
            _from_lines(tc, c, base, ny, nx)
            part[0, z] = b
            part[1, z] = s


@numba.njit(**_PARALLEL)
def _sweep_fast_yz(c, n, sa, nv, no, so, a, w, cpr, b_lo, b_hi, periodic, zz, bog, inv_den, g,
                   v_lo, v_hi, DP, EX, part):
    """Constant-coefficient y- or z-sweep (layout as :func:`_sweep_general_yz`)."""
    nch = min(DP.shape[0], no)
    for t in prange(nch):
        for o in range(t * no // nch, (t + 1) * no // nch):
            part[0, o] = _fast_lines(c, n, o * so, sa, nv, a, w, cpr, b_lo, b_hi, periodic, zz,
                                     bog, inv_den, g, v_lo, v_hi, DP[t], EX[t, _FACT])
            part[1, o] = 0.0


@numba.njit(**_PARALLEL)
def _sweep_fast_x(c, nz, ny, nx, a, w, cpr, b_lo, b_hi, periodic, zz, bog, inv_den, g, v_lo,
                  v_hi, DP, EX, TC, part):
    """Constant-coefficient x-sweep on transposed z planes (see :func:`_sweep_general_x`)."""
    plane = ny * nx
    nch = min(DP.shape[0], nz)
    for t in prange(nch):
        tc = TC[t]
        for z in range(t * nz // nch, (t + 1) * nz // nch):
            _to_lines(c, tc, z * plane, ny, nx)
            part[0, z] = _fast_lines(tc, nx, 0, ny, ny, a, w, cpr, b_lo, b_hi, periodic, zz,
                                     bog, inv_den, g, v_lo, v_hi, DP[t], EX[t, _FACT])
            part[1, z] = 0.0
            _from_lines(tc, c, z * plane, ny, nx)


@numba.njit(**_PARALLEL)
def _reaction(c, cb, reg, k_table, kon_table, koff_table, ps, src, fix, cp, dt, nz, ny, nx,
              ACC, part):
    """Pointwise backward-Euler reactions; per-plane ledger partials in ``part[:, z]``.

    ``ps``, ``src`` and ``fix`` are arrays or None (the branch is pruned at compile time).
    Each row first gathers its region's rates into ``ACC[t, 0:3]`` (a scalar loop), so that the
    reaction loop itself reads only unit-stride data and vectorises; ledger terms are summed
    per x column (``ACC[t, 3:8]``) over the rows of a plane, then over x, in a fixed order.
    """
    nch = min(ACC.shape[0], nz)
    for t in prange(nch):
        acc = ACC[t]
        for z in range(t * nz // nch, (t + 1) * nz // nch):
            for m in range(3, 8):
                for x in range(nx):
                    acc[m, x] = 0.0
            for y in range(ny):
                # Unsigned flat indices: numba then emits no negative-index wraparound, which
                # would keep LLVM from vectorising the loop.
                row = np.uint64((z * ny + y) * nx)
                for x in range(nx):
                    rg = reg[row + np.uint64(x)]
                    acc[0, x] = k_table[rg]
                    acc[1, x] = kon_table[rg]
                    acc[2, x] = koff_table[rg]
                for x in range(nx):
                    i = row + np.uint64(x)
                    k = acc[0, x]
                    psi = ps[i] if ps is not None else 0.0
                    si = src[i] if src is not None else 0.0
                    c0 = c[i]
                    cb0 = cb[i]
                    cn, cbn = _react(c0, cb0, k, acc[1, x], acc[2, x], psi, cp, si, dt)
                    loss = dt * k * cn
                    exchange = dt * psi * (cp - cn)
                    source = dt * si
                    if fix is not None:
                        # Fixed voxels hold cp and take no reaction; selects, not branches.
                        f = fix[i] != 0
                        acc[3, x] += cp - c0 if f else 0.0
                        loss = 0.0 if f else loss
                        exchange = 0.0 if f else exchange
                        source = 0.0 if f else source
                        cn = cp if f else cn
                        cbn = cb0 if f else cbn
                    c[i] = cn
                    cb[i] = cbn
                    acc[4, x] += loss
                    acc[5, x] += exchange
                    acc[6, x] += source
                    acc[7, x] += np.float64(c[i]) + np.float64(cb[i])
            for m in range(5):
                s = 0.0
                for x in range(nx):
                    s += acc[3 + m, x]
                part[m, z] = s


# --------------------------------------------------------------------------------------------
# Workspace and driver
# --------------------------------------------------------------------------------------------


class ImplicitWorkspace:
    """Scratch buffers of the implicit step, allocated once per grid shape.

    Attributes
    ----------
    shape : tuple of int
        Grid shape (nz, ny, nx).
    dtype : numpy.dtype
        Field precision (scratch is float64 whatever the field precision).
    fast_path : bool
        Whether the precomputed-factorisation path may be used.
    """

    def __init__(self, shape, dtype, fast_path=True):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.fast_path = bool(fast_path)
        nz, ny, nx = self.shape
        nchunk = max(1, int(numba.config.NUMBA_NUM_THREADS))
        n_max = max(nx, ny, nz)
        v_max = max(nx, ny)
        arr = lambda *s: np.zeros(s, np.float64)  # noqa: E731
        # Per-thread-chunk line scratch (kept small so that it stays in L2).
        self.cm = arr(nchunk, n_max, v_max)
        self.dp = arr(nchunk, n_max, v_max)
        self.zz = arr(nchunk, n_max, v_max)
        self.ex = arr(nchunk, _N_EX, v_max)
        # One transposed z plane per chunk for the x-sweep.
        self.tc = arr(nchunk, ny * nx)
        self.tu = arr(nchunk, ny * nx)
        self.tr = np.zeros((nchunk, ny * nx), np.uint8)
        self.tf = np.zeros((nchunk, ny * nx), np.uint8)
        # Ledger partial sums: per sweep and line group, and per z plane of the reaction.
        self.part_sweep = arr(3, 2, max(nz, ny))
        self.part_react = arr(5, nz)
        self.factors = {}
        self._face = np.zeros(16)

    def __repr__(self) -> str:
        return (f"ImplicitWorkspace(shape={self.shape}, dtype={self.dtype.name}, "
                f"fast_path={self.fast_path})")

    def face_table(self, nreg):
        """Buffer for the region-pair face coefficients (grown, never shrunk)."""
        if self._face.size < nreg * nreg:
            self._face = np.zeros(nreg * nreg)
        return self._face[: nreg * nreg]

    def factor(self, axis, n, d, h, dt, kind):
        """Cached constant-coefficient factorisation of one sweep (see :func:`_fast_lines`)."""
        key = (axis, n, d, h, dt, kind)
        f = self.factors.get(key)
        if f is None:
            if len(self.factors) > 32:  # a run varying dt must not grow without bound
                self.factors.clear()
            f = _constant_factor(n, d, h, dt, kind)
            self.factors[key] = f
        return f


def make_workspace(shape, dtype, *, fast_path=True) -> ImplicitWorkspace:
    """Allocate the scratch of :func:`numba_implicit_step` for a grid ``shape`` (nz, ny, nx)."""
    if len(shape) != 3:
        raise ValueError(f"shape must be (nz, ny, nx), not {shape}")
    return ImplicitWorkspace(shape, dtype, fast_path)


def _constant_factor(n, d, h, dt, kind):
    """Thomas factorisation of ``I − dt A`` for uniform ``d`` (m²/s) and no velocity."""
    rh = dt * d / (h * h)
    a = -rh
    di = np.full(n, 1.0 + 2.0 * rh)
    g = 0.0
    if kind == BC_NOFLUX:
        di[0] = di[-1] = 1.0 + rh
    elif kind == BC_FIXED:
        g = 2.0 * rh
        di[0] = di[-1] = 1.0 + rh + g
    zz = np.zeros(n)
    bog = inv_den = 0.0
    if kind == BC_PERIODIC:
        alpha = beta = a
        gamma = -di[0]
        di[0] -= gamma
        di[-1] -= alpha * beta / gamma
    w = np.empty(n)
    cpr = np.empty(n)
    w[0] = 1.0 / di[0]
    cpr[0] = a * w[0]
    for j in range(1, n):
        w[j] = 1.0 / (di[j] - a * cpr[j - 1])
        cpr[j] = a * w[j]
    if kind == BC_PERIODIC:
        e = np.zeros(n)
        e[0] = gamma
        e[-1] = alpha
        zz[0] = e[0] * w[0]
        for j in range(1, n):
            zz[j] = (e[j] - a * zz[j - 1]) * w[j]
        for j in range(n - 2, -1, -1):
            zz[j] -= cpr[j] * zz[j + 1]
        bog = beta / gamma
        inv_den = 1.0 / (1.0 + zz[0] + bog * zz[-1])
    return a, w, cpr, zz, bog, inv_den, g


def _yz_layout(axis, nz, ny, nx):
    """``(sa, nv, no, so)`` of the y- (axis 1) or z-sweep (axis 2), see _sweep_general_yz."""
    if axis == 1:
        return nx, nx, nz, ny * nx
    return ny * nx, nx, ny, nx


def _uniform_d(d_table):
    """The common diffusivity (m²/s) if every region has the same one, else None."""
    d = np.asarray(d_table, np.float64)
    if d.size and np.all(d == d[0]):
        return float(d[0])
    return None


def numba_implicit_step(c, cb, region, d_table, k_table, kon_table, koff_table, ps, has_ps,
                        src, has_src, fixed, has_fixed, cp, u, has_u, bc_kind, bc_value, h, dt,
                        work, ledger_out):
    """Advance ``c`` and ``cb`` by one implicit LOD step (parallel CPU).

    Same parameters as :func:`numpy_implicit_step`; ``work`` must come from
    :func:`make_workspace` for this grid shape. Allocates no grid-sized memory.
    """
    _check(c, cb, region, (d_table, k_table, kon_table, koff_table), ps, has_ps, src, has_src,
           fixed, has_fixed, u, has_u, ledger_out)
    if work.shape != c.shape:
        raise ValueError(f"workspace is for shape {work.shape}, field has {c.shape}")
    ends = bc_ends(bc_value)
    h = float(h)
    dt = float(dt)
    cp = float(cp)
    r = dt / h
    rh = dt / (h * h)
    cf = c.reshape(-1)
    reg = region.reshape(-1)
    fx = fixed.reshape(-1)
    d_table = np.asarray(d_table, np.float64)
    d_uniform = _uniform_d(d_table) if work.fast_path else None
    fast = d_uniform is not None and not has_u and not has_fixed
    part = work.part_sweep
    part[...] = 0.0
    nz, ny, nx = c.shape
    nreg = d_table.size
    if not fast:
        fdt = work.face_table(nreg)
        _face_table(d_table, rh, fdt)
    for axis in range(3):
        n = c.shape[2 - axis]
        if n == 1:
            continue
        kind = int(bc_kind[axis])
        v_lo, v_hi = ends[axis, 0], ends[axis, 1]
        if fast:
            a, w, cpr, zz, bog, inv_den, g = work.factor(axis, n, d_uniform, h, dt, kind)
            consts = (a, w, cpr, g * v_lo, g * v_hi, kind == BC_PERIODIC, zz, bog, inv_den, g,
                      v_lo, v_hi, work.dp, work.ex)
            if axis == 0:
                _sweep_fast_x(cf, nz, ny, nx, *consts, work.tc, part[0])
            else:
                _sweep_fast_yz(cf, n, *_yz_layout(axis, nz, ny, nx), *consts, part[axis])
        else:
            ua = u[axis].reshape(-1) if has_u else None
            fxa = fx if has_fixed else None
            head = (cf, reg, d_table, fdt, nreg, ua, fxa, cp, kind, v_lo, v_hi, r, rh)
            scratch = (work.cm, work.dp, work.zz, work.ex)
            if axis == 0:
                _sweep_general_x(*head, nz, ny, nx, *scratch, work.tc, work.tr, work.tu,
                                 work.tf, part[0])
            else:
                _sweep_general_yz(*head, n, *_yz_layout(axis, nz, ny, nx), *scratch, part[axis])
    pr = work.part_react
    _reaction(cf, cb.reshape(-1), reg, np.asarray(k_table, np.float64),
              np.asarray(kon_table, np.float64), np.asarray(koff_table, np.float64),
              ps.reshape(-1) if has_ps else None, src.reshape(-1) if has_src else None,
              fx if has_fixed else None, cp, dt, nz, c.shape[1], c.shape[2], work.ex, pr)
    ledger_out[0] += math.fsum(part[:, 0, :].ravel())
    ledger_out[1] += math.fsum(part[:, 1, :].ravel()) + math.fsum(pr[0])
    ledger_out[2] += math.fsum(pr[1])
    ledger_out[3] += math.fsum(pr[2])
    ledger_out[4] += math.fsum(pr[3])
    ledger_out[5] = math.fsum(pr[4])
