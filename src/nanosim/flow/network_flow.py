"""Steady Poiseuille blood flow in a vessel network (PHYSICS.md §3).

Each segment is a straight tube carrying Poiseuille flow

    Q = G ΔP,   G = π r⁴ / (8 μ L),   μ = μ_plasma · μ_rel(D, H_D),

with μ_rel from the Pries laws (:mod:`nanosim.flow.viscosity`). Mass conservation at every node
that is not a pressure boundary gives a sparse, symmetric positive-definite linear system (the
weighted graph Laplacian, pressure boundary nodes eliminated as Dirichlet values, prescribed
inflows as sources) for the node pressures. :func:`solve_flow` assembles it in CSR form, solves it
(sparse LU, or conjugate gradients with a Jacobi preconditioner for large networks; CuPy on the
GPU), then corrects the segment flows until mass is conserved at every internal node to
round-off, and optionally iterates flow ↔ haematocrit (phase separation) ↔ viscosity.

References
----------
Pries AR, Secomb TW, Gaehtgens P, Gross JF (1990). Blood flow in microvascular networks:
experiments and simulation. Circ Res 67: 826–834 (network flow with phase separation).

Pries AR, Secomb TW, Gessner T, et al. (1994). Resistance to blood flow in microvessels in vivo.
Circ Res 75: 904–915 (in vivo viscosity law).

Dogra P et al. (2020). A mathematical model to predict nanomedicine pharmacokinetics and tumor
delivery. Comput Struct Biotechnol J 18: 518–531 (capillary velocities used as sanity ranges:
tumour ≈ 30 µm/s, healthy ≈ 0.55 mm/s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..backends import Backend, get_backend
from ..vasculature.network import BCKind, NetworkError, VesselNetwork, WallType
from .viscosity import (
    PLASMA_VISCOSITY_PA_S,
    PRIES_MIN_DIAMETER_UM,
    phase_separation_fraction_scalar,
    pries_in_vitro_relative_viscosity,
    pries_in_vivo_relative_viscosity,
)

__all__ = ["FlowSolution", "FlowError", "solve_flow", "flow_benchmark_network", "VISCOSITY_LAWS"]

VISCOSITY_LAWS = ("in_vivo", "in_vitro", "plasma")

#: Unknown-pressure count above which ``solver="auto"`` tries preconditioned CG before sparse LU on
#: the CPU. Measured on 3-D capillary lattices (flow_benchmark_network, 2-core CPU): at ~10⁴
#: unknowns LU took 0.14 s (2.3×10⁶ factor entries) and Jacobi-CG 0.06 s; LU fill grows
#: superlinearly on 3-D meshes, while it stays small on trees and chains, where CG is slow.
AUTO_CG_THRESHOLD = 5_000

#: CG iteration cap of ``solver="auto"`` before it falls back to sparse LU (CPU only), as a multiple
#: of √(unknowns): 3-D meshes converge in O(unknowns^⅓) iterations (≈ 1000 at 3.5×10⁵ unknowns,
#: cap 29 500), chains and deep trees need O(unknowns) and are cheap for LU.
AUTO_CG_ITERATIONS_PER_SQRT_UNKNOWN = 50

#: Highest haematocrit passed to the viscosity law (the law is singular at H_D = 1); a
#: phase-separation split may transiently exceed it.
_MAX_VISCOSITY_HAEMATOCRIT = 0.95

_EPS = np.finfo(np.float64).eps


class FlowError(RuntimeError):
    """The flow problem could not be solved (no convergence); the message says what to change."""


# ------------------------------------------------------------------------------------------------
# result


@dataclass(eq=False, repr=False)
class FlowSolution:
    """Steady blood flow in a vessel network (SI units; arrays on the host, as NumPy arrays).

    Attributes
    ----------
    node_pressure_pa : ndarray (n,)
        Node pressure in Pa (NaN at nodes with no segment and no boundary condition).
    seg_flow_m3_per_s : ndarray (m,)
        Volumetric blood flow in m³/s, positive from ``seg_nodes[:, 0]`` to ``seg_nodes[:, 1]``.
    seg_velocity_m_per_s : ndarray (m,)
        Mean (cross-section averaged) velocity Q / (π r²) in m/s, signed like the flow.
    seg_viscosity_pa_s : ndarray (m,)
        Apparent blood viscosity μ used for each segment, Pa·s.
    seg_haematocrit : ndarray (m,)
        Discharge haematocrit of each segment (dimensionless).
    seg_wall_shear_stress_pa : ndarray (m,)
        Wall shear stress 4 μ |Q| / (π r³) in Pa.
    seg_conductance_m3_per_pa_s : ndarray (m,)
        Hydraulic conductance π r⁴ / (8 μ L) in m³/(Pa·s).
    boundary_flow_m3_per_s : ndarray (k,)
        Flow into the network at each boundary node (order of ``network.bc_nodes``), m³/s;
        negative where blood leaves.
    conservation_error : float
        Largest relative mass imbalance over internal nodes (all nodes but pressure boundaries):
        |Σ inflows − Σ outflows| divided by the largest flow magnitude at the node (segment flows
        and any prescribed inflow), or, where that is smaller, by the flow resolution of float64
        pressures there (ε · max G · pressure range); 0 where nothing flows.
    rbc_conservation_error : float
        Same measure for the red-cell flux Q·H_D (0 without phase separation).
    seg_wall : ndarray (m,)
        Wall type codes (copied from the network, used by :meth:`summary`).
    info : dict
        Solver details: ``solver``, ``linear_iterations``, ``flow_corrections``, ``flow_solves``,
        ``coupling_iterations`` (flow ↔ haematocrit), ``haematocrit_change``, ``time_s``; with
        phase separation also ``relaxation_steps``, ``newton_steps``, ``newton_rejected``.
    """

    node_pressure_pa: np.ndarray
    seg_flow_m3_per_s: np.ndarray
    seg_velocity_m_per_s: np.ndarray
    seg_viscosity_pa_s: np.ndarray
    seg_haematocrit: np.ndarray
    seg_wall_shear_stress_pa: np.ndarray
    seg_conductance_m3_per_pa_s: np.ndarray
    boundary_flow_m3_per_s: np.ndarray
    conservation_error: float
    rbc_conservation_error: float = 0.0
    seg_wall: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Total inflow (m³/s), pressure range (Pa), and speed range (m/s) per wall type."""
        bf = self.boundary_flow_m3_per_s
        p = self.node_pressure_pa[np.isfinite(self.node_pressure_pa)]
        speed = np.abs(self.seg_velocity_m_per_s)
        out = {"segments": int(len(self.seg_flow_m3_per_s)),
               "total_inflow_m3_per_s": float(bf[bf > 0].sum()),
               "total_outflow_m3_per_s": float(-bf[bf < 0].sum()),
               "pressure_min_pa": float(p.min()) if p.size else float("nan"),
               "pressure_max_pa": float(p.max()) if p.size else float("nan"),
               "conservation_error": float(self.conservation_error),
               "by_wall": {}}
        wall = self.seg_wall if self.seg_wall is not None else np.full(len(speed), WallType.CAPILLARY)
        for w in WallType:
            sel = wall == w
            if sel.any():
                out["by_wall"][w.name.lower()] = {
                    "segments": int(sel.sum()),
                    "speed_min_m_per_s": float(speed[sel].min()),
                    "speed_median_m_per_s": float(np.median(speed[sel])),
                    "speed_max_m_per_s": float(speed[sel].max())}
        return out

    def __repr__(self) -> str:
        s = self.summary()
        lines = [f"FlowSolution: {s['segments']} segments, total inflow "
                 f"{s['total_inflow_m3_per_s'] * 1e9 * 60:.4g} µL/min ({s['total_inflow_m3_per_s']:.4g} m³/s), "
                 f"pressure {s['pressure_min_pa']:.4g}–{s['pressure_max_pa']:.4g} Pa, "
                 f"conservation error {s['conservation_error']:.2g}"]
        items = list(s["by_wall"].items())
        for i, (name, d) in enumerate(items):
            branch = "└──" if i == len(items) - 1 else "├──"
            lines.append(f"{branch} {name}: {d['segments']} segments, speed "
                         f"{d['speed_min_m_per_s'] * 1e6:.3g}–{d['speed_max_m_per_s'] * 1e6:.3g} µm/s "
                         f"(median {d['speed_median_m_per_s'] * 1e6:.3g} µm/s)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# linear algebra


def _pcg(A, b, dinv, xp, rtol, maxiter, x0=None):
    """Jacobi-preconditioned conjugate gradients for SPD ``A`` (SciPy or CuPy sparse).

    Stops when ‖b − A x‖₂ ≤ rtol·‖b‖₂ (checked on the recursively updated residual every few
    iterations, then confirmed on the true residual). Returns (x, iterations, converged).
    """
    bnorm = float(xp.linalg.norm(b))
    if bnorm == 0.0:
        return xp.zeros_like(b), 0, True
    x = xp.zeros_like(b) if x0 is None else x0.copy()
    r = b - A @ x if x0 is not None else b.copy()
    z = dinv * r
    p = z.copy()
    rz = xp.dot(r, z)
    check = 10
    it = 0
    while it < maxiter:
        ap = A @ p
        alpha = rz / xp.dot(p, ap)
        x += alpha * p
        r -= alpha * ap
        it += 1
        if it % check == 0 or it == maxiter:
            if float(xp.linalg.norm(r)) <= rtol * bnorm:
                r = b - A @ x  # guard against drift of the recursive residual
                if float(xp.linalg.norm(r)) <= rtol * bnorm:
                    return x, it, True
                z = dinv * r
                p = z.copy()
                rz = xp.dot(r, z)
                continue
        z = dinv * r
        rz_new = xp.dot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, it, False


class _Laplacian:
    """Reduced conductance matrix of the unknown-pressure nodes, its CSR pattern fixed.

    The pattern is built once; :meth:`set_conductance` refills the values when the viscosity
    changes, and :meth:`solve` solves A x = b with the chosen method.
    """

    def __init__(self, seg_a, seg_b, idx, n_unknown, backend: Backend, solver: str, tol: float,
                 max_linear_iterations):
        self.nu = n_unknown
        self.backend = backend
        self.tol = tol
        ia, ib = idx[seg_a], idx[seg_b]
        ua, ub = ia >= 0, ib >= 0
        both = np.flatnonzero(ua & ub)
        sa, sb = np.flatnonzero(ua), np.flatnonzero(ub)
        rows = np.concatenate([ia[sa], ib[sb], ia[both], ib[both]])
        cols = np.concatenate([ia[sa], ib[sb], ib[both], ia[both]])
        self._entry_seg = np.concatenate([sa, sb, both, both])
        self._entry_sign = np.concatenate([np.ones(len(sa) + len(sb)), -np.ones(2 * len(both))])
        key = rows.astype(np.int64) * n_unknown + cols
        uniq, self._inv = np.unique(key, return_inverse=True)
        self._inv = self._inv.ravel()
        urows = uniq // n_unknown
        self.indices = (uniq % n_unknown).astype(np.int32 if n_unknown < 2**31 else np.int64)
        self.indptr = np.searchsorted(urows, np.arange(n_unknown + 1)).astype(self.indices.dtype)
        self.nnz = len(uniq)
        self._diag_pos = np.flatnonzero(urows == (uniq % n_unknown))
        self.fallback = False
        if solver == "auto":
            self.fallback = not backend.is_gpu and max_linear_iterations is None
            solver = "cg" if (backend.is_gpu or n_unknown > AUTO_CG_THRESHOLD) else "direct"
        if backend.is_gpu and solver == "direct":
            solver = "cg"  # the GPU path always uses CG (cuSOLVER's sparse QR is slow at scale)
        self.solver = solver
        if max_linear_iterations:
            self.max_it = int(max_linear_iterations)
        else:
            self.max_it = (max(1000, int(AUTO_CG_ITERATIONS_PER_SQRT_UNKNOWN * n_unknown**0.5)) if self.fallback
                           else max(1000, 20 * n_unknown))
        self.iterations = 0
        self._lu = None

    def set_conductance(self, g):
        data = np.bincount(self._inv, weights=self._entry_sign * g[self._entry_seg], minlength=self.nnz)
        self.data = data
        self._lu = None
        if self.backend.is_gpu:
            import cupyx.scipy.sparse as cpsp

            xp = self.backend.xp
            self._A = cpsp.csr_matrix((xp.asarray(data), xp.asarray(self.indices), xp.asarray(self.indptr)),
                                      shape=(self.nu, self.nu))
            self._dinv = 1.0 / xp.asarray(data[self._diag_pos])
        else:
            import scipy.sparse as sp

            self._A = sp.csr_matrix((data, self.indices, self.indptr), shape=(self.nu, self.nu))
            self._dinv = 1.0 / data[self._diag_pos]

    def solve(self, b: np.ndarray) -> np.ndarray:
        if self.nu == 0:
            return np.zeros(0)
        if self.solver == "direct":
            if self._lu is None:
                from scipy.sparse.linalg import splu

                # symmetric mode: minimum degree on A + Aᵀ, diagonal pivots (A is SPD)
                self._lu = splu(self._A.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                options={"SymmetricMode": True})
            return self._lu.solve(b)
        xp = self.backend.xp
        x, it, ok = _pcg(self._A, xp.asarray(b), self._dinv, xp, self.tol, self.max_it)
        self.iterations += it
        if not ok and self.fallback:
            self.solver = "direct"  # slow CG convergence (long chains, deep trees): LU fill is small there
            return self.solve(b)
        if not ok:
            raise FlowError(f"conjugate gradients did not reach the relative residual {self.tol:g} in {it} "
                            "iterations: raise max_linear_iterations, loosen tol, or use solver='direct' "
                            "(CPU sparse LU)")
        return self.backend.to_host(x)


# ------------------------------------------------------------------------------------------------
# haematocrit transport (red-cell mass balance through the flow-directed graph)

_march_cache = {}


def _march_kernel():
    """The red-cell marching routine, compiled with Numba on first use."""
    if "k" in _march_cache:
        return _march_cache["k"]
    import numba

    fqe = numba.njit(cache=True)(phase_separation_fraction_scalar)

    @numba.njit(cache=True)
    def march(n, sa, sb, q, qmin, d_um, adj_ptr, adj_seg, q_bc, h_bc, phase_sep, h_const, h_seg, h_node):
        """Assign each flowing segment its discharge haematocrit, upstream to downstream.

        Nodes are visited in a topological order of the flow directions (Kahn's algorithm). At a
        node the inflowing red-cell flux is mixed. With ``phase_sep`` (and no prescribed
        boundary flow at the node) it is split between the outflowing segments by the Pries law:
        each outflow k gets FQ_E(FQ_B,k; D_k against the largest other outflow), normalised to
        sum to 1 — exactly the two-daughter law at a bifurcation, and continuous when a third
        outflow's flow vanishes or reverses. The parent diameter is the flow-weighted mean of the
        inflowing segments'. Otherwise all outflows carry the mixed haematocrit. Returns the
        number of nodes visited (< n means the flow directions have a cycle).
        """
        m = sa.shape[0]
        indeg = np.zeros(n, np.int64)
        for s in range(m):
            if abs(q[s]) > qmin[s]:
                if q[s] > 0:
                    indeg[sb[s]] += 1
                else:
                    indeg[sa[s]] += 1
        stack = np.empty(n, np.int64)
        outs = np.empty(max(m, 1), np.int64)
        fes = np.empty(max(m, 1), np.float64)
        top = 0
        for i in range(n):
            if indeg[i] == 0:
                stack[top] = i
                top += 1
        visited = 0
        while top > 0:
            top -= 1
            i = stack[top]
            visited += 1
            qin = max(q_bc[i], 0.0)
            rbc = qin * h_bc[i]
            qseg_in = 0.0
            dq_in = 0.0
            n_out = 0
            qout = 0.0
            for k in range(adj_ptr[i], adj_ptr[i + 1]):
                s = adj_seg[k]
                f = abs(q[s])
                if f <= qmin[s]:
                    continue
                up = sa[s] if q[s] > 0 else sb[s]
                if up == i:
                    outs[n_out] = s
                    n_out += 1
                    qout += f
                else:
                    qin += f
                    rbc += f * h_seg[s]
                    qseg_in += f
                    dq_in += f * d_um[s]
            h_f = rbc / qin if qin > 0 else h_const
            h_node[i] = h_f
            split = phase_sep and n_out >= 2 and q_bc[i] == 0.0 and qseg_in > 0.0
            if split:
                d_f = dq_in / qseg_in
                total = 0.0
                for j in range(n_out):
                    s = outs[j]
                    big = -1.0
                    d_rest = 0.0
                    for jj in range(n_out):
                        if jj != j and abs(q[outs[jj]]) > big:
                            big = abs(q[outs[jj]])
                            d_rest = d_um[outs[jj]]
                    fes[j] = fqe(abs(q[s]) / qout, d_um[s], d_rest, d_f, min(h_f, 0.999))
                    total += fes[j]
                for j in range(n_out):
                    s = outs[j]
                    fe = fes[j] / total if total > 0 else abs(q[s]) / qout
                    h_seg[s] = fe * rbc / abs(q[s])
            for j in range(n_out):
                s = outs[j]
                if not split:
                    h_seg[s] = h_f
                d = sb[s] if q[s] > 0 else sa[s]
                indeg[d] -= 1
                if indeg[d] == 0:
                    stack[top] = d
                    top += 1
        return visited

    _march_cache["k"] = march
    return march


# ------------------------------------------------------------------------------------------------
# solver


def _resolve_backend(backend) -> Backend:
    if backend is None:
        return get_backend("numpy")
    if isinstance(backend, Backend):
        return backend
    if isinstance(backend, str):
        return get_backend(backend)
    raise TypeError(f"backend must be a Backend, a backend name (numpy, numba, cupy) or None, not {backend!r}")


def _relative_viscosity(law: str, d_m, hd):
    if law == "in_vivo":
        return pries_in_vivo_relative_viscosity(d_m, hd)
    if law == "in_vitro":
        return pries_in_vitro_relative_viscosity(d_m, hd)
    return np.ones(np.broadcast(np.asarray(d_m), np.asarray(hd)).shape)


def _node_max_abs(n, a, b, v):
    """Largest |v| over the segments touching each node (0 at nodes without segments)."""
    out = np.zeros(n)
    av = np.abs(v)
    np.maximum.at(out, a, av)
    np.maximum.at(out, b, av)
    return out


def _imbalance_error(n, a, b, flux, src, nodes, floor):
    """Max over ``nodes`` of |src + inflow − outflow| / max(largest |flux| at node, |src|, floor)."""
    net_in = np.bincount(b, weights=flux, minlength=n) - np.bincount(a, weights=flux, minlength=n) + src
    scale = np.maximum(np.maximum(_node_max_abs(n, a, b, flux), np.abs(src)), floor)[nodes]
    num = np.abs(net_in[nodes])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, num / np.where(scale > 0, scale, 1.0), np.where(num > 0, np.inf, 0.0))
    return float(rel.max()) if rel.size else 0.0


# ------------------------------------------------------------------------------------------------
# flow ↔ haematocrit coupling (phase separation)

#: Per-segment relaxation: a segment's factor is multiplied by _RELAX_DECREASE when its haematocrit
#: residual changes sign between two relaxation steps (a local oscillation), by _RELAX_INCREASE
#: otherwise, and kept in [_RELAX_MIN, _RELAX_MAX]. The Jacobian of the haematocrit map has real
#: eigenvalues down to about −3 on the generated liver networks (measured by Arnoldi iteration),
#: the negative feedback "higher H_D → higher viscosity → smaller flow share → fewer red cells
#: (plasma skimming)", so a uniform factor above 2/(1 + 3) = 0.5 oscillates; the per-segment
#: factor damps only where the feedback is strong. Values tuned on liver seeds 1–3 (0.5/1.2/1.0
#: needed 270–730 steps and stalled on seed 2; 0.6/1.1/0.7 reaches 10⁻³ in 70–130 steps).
_RELAX_DECREASE, _RELAX_INCREASE, _RELAX_MIN, _RELAX_MAX = 0.6, 1.1, 1e-2, 0.7

#: The Newton–Krylov stage starts once the flow-weighted haematocrit change is below
#: _NEWTON_START_CHANGE, or after _NEWTON_AFTER relaxation steps; after a Newton step that the line
#: search rejects, _NEWTON_RETRY_AFTER relaxation steps are taken before the next. Started at
#: 5×10⁻² or 2×10⁻³, most full Newton steps overshot (the linearisation holds only close to the
#: solution); from 10⁻³ they converge quadratically on the liver networks.
_NEWTON_START_CHANGE, _NEWTON_AFTER, _NEWTON_RETRY_AFTER = 1e-3, 300, 50

#: GMRES settings of one Newton step: relative residual (inexact Newton: each step cuts the error
#: by about this factor until the quadratic convergence takes over), restart length, cycles.
#: 40–100 products per step were measured on the liver networks.
_KRYLOV_RTOL, _KRYLOV_RESTART, _KRYLOV_CYCLES = 1e-4, 100, 2


@dataclass(eq=False)
class _State:
    """One evaluation of the haematocrit map: the flow at the viscosities of ``h_in`` and the
    haematocrits ``h_new`` that the red-cell march gives on that flow."""

    h_in: np.ndarray
    h_new: np.ndarray
    mu: np.ndarray
    g: np.ndarray
    p: np.ndarray
    q: np.ndarray
    p_scale: float
    w: np.ndarray | None  # |Q| / largest |Q| at the segment's busier end (None: no phase separation)
    direction: np.ndarray | None = None  # sign of each flow, 0 where stagnant

    @property
    def change(self) -> float:
        """Flow-weighted largest haematocrit change max_s w_s |H_new − H|."""
        return float(np.max(self.w * np.abs(self.h_new - self.h_in)))

    @property
    def merit(self) -> float:
        """Flow-weighted Euclidean norm ‖w ⊙ (H_new − H)‖₂ (line-search merit function)."""
        return float(np.linalg.norm(self.w * (self.h_new - self.h_in)))


def _gmres(op, rhs, rtol, restart, cycles):
    """Restarted GMRES (Saad & Schultz 1986) for op(x) = rhs, from x = 0.

    Returns (x, converged); x is the best iterate found even when ‖rhs − op(x)‖ > rtol·‖rhs‖.
    """
    x = np.zeros_like(rhs)
    bnorm = float(np.linalg.norm(rhs))
    if bnorm == 0.0:
        return x, True
    res = bnorm
    for cycle in range(cycles):
        rv = rhs - op(x) if cycle else rhs.copy()
        beta = float(np.linalg.norm(rv))
        if beta <= rtol * bnorm:
            return x, True
        basis = [rv / beta]
        hess = np.zeros((restart + 1, restart))
        y = np.zeros(0)
        for j in range(restart):
            v = op(basis[j])
            for i in range(j + 1):  # modified Gram–Schmidt
                hess[i, j] = np.dot(v, basis[i])
                v -= hess[i, j] * basis[i]
            hess[j + 1, j] = np.linalg.norm(v)
            e1 = np.zeros(j + 2)
            e1[0] = beta
            y = np.linalg.lstsq(hess[: j + 2, : j + 1], e1, rcond=None)[0]
            res = float(np.linalg.norm(hess[: j + 2, : j + 1] @ y - e1))
            if res <= rtol * bnorm or hess[j + 1, j] <= 1e-14 * beta:
                break
            basis.append(v / hess[j + 1, j])
        x = x + np.column_stack(basis[: len(y)]) @ y
        if res <= rtol * bnorm:
            return x, True
    return x, False


def _newton_step(evaluate, state: _State, info: dict):
    """One inexact Newton–Krylov step on H = F(H), with a backtracking line search.

    The Jacobian–vector products are forward differences of the map (Knoll & Keyes 2004), one flow
    solve each. A segment whose flow direction changes between the two evaluations (its
    haematocrit jumps from one end's value to the other's) gets no sensitivity there: it is
    updated by substitution, so a flipping, near-stagnant segment cannot corrupt the Krylov space.
    The step is accepted when it lowers the flow-weighted residual norm (Armijo condition,
    Dennis & Schnabel 1996), trying step lengths 1, ½, ¼, ⅛; returns the new state or None.
    """
    h0 = state.h_in
    r0 = state.h_new - h0
    hnorm = float(np.linalg.norm(h0))

    def op(v):
        vnorm = float(np.linalg.norm(v))
        if vnorm == 0.0:
            return v.copy()
        eps = np.sqrt(_EPS) * (1.0 + hnorm) / vnorm
        s1 = evaluate(h0 + eps * v)
        jv = (s1.h_new - state.h_new) / eps
        jv[s1.direction != state.direction] = 0.0
        return v - jv

    delta, _ = _gmres(op, r0, _KRYLOV_RTOL, _KRYLOV_RESTART, _KRYLOV_CYCLES)
    phi0 = state.merit
    lam = 1.0
    for _ in range(4):
        trial = evaluate(h0 + lam * delta)
        if trial.merit < (1.0 - 1e-4 * lam) * phi0:
            return trial
        lam *= 0.5
    return None


def _couple_haematocrit(evaluate, state: _State, relaxation, tol, max_iterations, info):
    """Solve H = F(H) (flow at the viscosities of H → red-cell march) from ``state``.

    Stage 1, adaptive relaxation: H ← H + ω ⊙ (F(H) − H), with one factor per segment starting at
    ``relaxation``, cut by 40 % where the residual changes sign and grown by 10 % (to at most 0.7)
    otherwise. Stage 2, once the flow-weighted change is below 10⁻³ (or after 300 steps): inexact
    Newton–Krylov steps (:func:`_newton_step`); a step the line search rejects is replaced by
    relaxation steps. Each relaxation or Newton step counts as one iteration against
    ``max_iterations``; the flow solves of the Jacobian products are counted in
    ``info["flow_solves"]``.
    """
    m = len(state.h_in)
    omega = np.full(m, float(relaxation))
    r_prev = None
    relax_steps = newton_steps = rejected = 0
    cool = 0
    it = 0
    while True:
        change = state.change
        if change < tol:
            break
        if it >= max_iterations:
            raise FlowError(f"flow and haematocrit did not converge in {max_iterations} iterations (last largest "
                            f"flow-weighted haematocrit change {change:.3g}, target haematocrit_tol = {tol:g}): "
                            "raise max_iterations, loosen haematocrit_tol, or solve without phase_separation "
                            "(the network may have no stable red-cell distribution, see solve_flow Notes)")
        it += 1
        r = state.h_new - state.h_in
        if cool == 0 and (change < _NEWTON_START_CHANGE or relax_steps >= _NEWTON_AFTER):
            new = _newton_step(evaluate, state, info)
            if new is not None:
                state = new
                newton_steps += 1
                r_prev = None
                continue
            rejected += 1
            cool = _NEWTON_RETRY_AFTER
        if r_prev is not None:
            osc = r * r_prev < 0.0
            omega = np.where(osc, np.maximum(omega * _RELAX_DECREASE, _RELAX_MIN),
                             np.minimum(omega * _RELAX_INCREASE, _RELAX_MAX))
        state = evaluate(state.h_in + omega * r)
        r_prev = r
        relax_steps += 1
        cool = max(cool - 1, 0)
    info["coupling_iterations"] = it
    info["relaxation_steps"] = relax_steps
    info["newton_steps"] = newton_steps
    info["newton_rejected"] = rejected
    info["haematocrit_change"] = change
    return state


def solve_flow(network: VesselNetwork, *, viscosity_law: str = "in_vivo",
               plasma_viscosity_pa_s: float = PLASMA_VISCOSITY_PA_S, haematocrit: float = 0.45,
               phase_separation: bool = False, backend=None, tol: float = 1e-12, max_iterations: int = 500,
               solver: str = "auto", relaxation: float = 0.5, haematocrit_tol: float = 1e-10,
               max_linear_iterations: int | None = None, conductance_factor=None) -> FlowSolution:
    """Solve steady Poiseuille blood flow in a vessel network.

    Parameters
    ----------
    network : VesselNetwork
        The network; every connected piece needs a pressure boundary condition. Nodes with no
        segment and no boundary condition are ignored (their pressure is NaN).
    viscosity_law : {"in_vivo", "in_vitro", "plasma"}
        Pries et al. 1994 in vivo law, Pries et al. 1992 in vitro law, or constant plasma
        viscosity (μ_rel = 1).
    plasma_viscosity_pa_s : float
        Plasma viscosity in Pa·s (default 1.2 mPa·s, an unconfirmed default, PHYSICS.md §3).
    haematocrit : float
        Discharge haematocrit used in every segment when ``phase_separation`` is False, and as
        the starting guess when it is True (then inflowing blood has ``network.bc_haematocrit``).
    phase_separation : bool
        Split red cells unevenly at diverging bifurcations (Pries et al. 1990 law, coefficients
        of Pries & Secomb 2005) and iterate flow ↔ haematocrit ↔ viscosity (adaptive relaxation,
        then Newton–Krylov; see Notes) until the largest haematocrit change, weighted by |Q| over the largest |Q| at the
        segment's ends, is below ``haematocrit_tol``.
    backend : Backend, str or None
        ``"numpy"``/``"numba"``/None solve on the CPU; ``"cupy"`` solves the linear systems on the
        GPU with CuPy (results are returned as NumPy arrays either way).
    tol : float
        Relative residual ‖b − A p‖/‖b‖ at which conjugate gradients stop (each solve is followed
        by flow corrections that restore node-wise conservation to round-off).
    max_iterations : int
        Most flow ↔ haematocrit iterations with phase separation (relaxation steps plus Newton
        steps; the flow solves of the Jacobian products inside a Newton step are not counted
        here but reported in ``info["flow_solves"]``).
    solver : {"auto", "direct", "cg"}
        Sparse LU (SuperLU, minimum-degree ordering), Jacobi-preconditioned conjugate gradients,
        or "auto": LU for up to :data:`AUTO_CG_THRESHOLD` unknown pressures on the CPU, CG above
        that and always on the GPU.
    relaxation : float
        Starting under-relaxation factor ω in (0, 1] of the haematocrit update,
        H ← H + ω (H_new − H); each segment's factor then adapts (see Notes).
    haematocrit_tol : float
        Convergence threshold on the flow-weighted max |H_new − H| of the phase-separation
        iteration (see ``phase_separation``). The default 10⁻¹⁰ is reached by the Newton stage
        (quadratic convergence) and keeps the returned viscosities equal to the law's at the
        returned haematocrits to ≈ 10⁻⁹ relative in every segment that carries flow.
    max_linear_iterations : int, optional
        Cap on conjugate-gradient iterations per solve (default max(1000, 20 × unknowns)).
    conductance_factor : array of float (m,), optional
        Multiplies each segment's Poiseuille conductance, values in (0, 1]: e.g. 1e-12 for a
        segment occluded by an embolic microsphere (a small positive factor keeps the pieces
        beyond it connected, so the system stays solvable; their flow is then negligible).

    Returns
    -------
    FlowSolution

    Notes
    -----
    With phase separation the haematocrits solve H = F(H), F = red-cell march on the flow computed
    at the viscosities of H. F is smooth away from flow reversals, but on networks with loops its
    Jacobian has real eigenvalues from about −3 (the feedback H_D ↑ → μ ↑ → flow share ↓ →
    skimmed red cells ↓) to just below +1 (measured by Arnoldi iteration on the generated liver
    networks), so plain under-relaxation with one factor either oscillates (period 2, factor
    ≥ 0.5) or crawls. :func:`solve_flow` therefore uses (1) per-segment adaptive relaxation until
    the flow-weighted change is below 10⁻³, then (2) inexact Newton–Krylov steps (GMRES with
    finite-difference Jacobian products, backtracking line search on the flow-weighted residual),
    falling back to relaxation when a step is rejected. Measured (2-core CPU): the generated liver
    networks (``generate_liver_tumour(LiverTumourParams(), seed=1, 2, 3)``, ≈ 2 300 segments)
    converge to a flow-weighted change below 10⁻¹⁰ in 70–135 iterations (≈ 200–640 flow solves,
    0.6–2 s); tree-like networks in a few iterations. Phase separation in networks with loops can
    have several steady states or none that is stable (Geddes et al. 2007; Gardner et al. 2010;
    Davis & Pozrikidis 2014): on the dense, isotropic 3-D lattice of
    :func:`flow_benchmark_network` (10 000 segments) the relaxation stalls near a change of
    5×10⁻³ and Newton steps from there are rejected (the residual sits far outside the region
    where the linearisation holds, as near the thresholds X0 of the Pries law, where the law is
    only once differentiable), and a :class:`FlowError` says so rather than returning an
    unconverged state.

    References: Knoll DA, Keyes DE (2004). Jacobian-free Newton–Krylov methods. J Comput Phys
    193: 357–397. Geddes JB, Carr RT, Karst NJ, Wu F (2007). The onset of oscillations in
    microvascular blood flow. SIAM J Appl Dyn Syst 6: 694–727. Gardner D, Li Y, Small B, Geddes JB,
    Carr RT (2010). Multiple equilibrium states in a micro-vascular network. Math Biosci 227:
    117–124. Davis JM, Pozrikidis C (2014). Self-sustained oscillations in blood flow through a
    honeycomb capillary network. Bull Math Biol 76: 2217–2237.

    Raises
    ------
    NetworkError
        If the network is invalid, a connected piece has no pressure boundary condition, a
        prescribed inflow sits on a node with no segment, or a vessel is too thin for the law.
    FlowError
        If an iteration does not converge (the message names the setting to change).
    ValueError
        If an argument is out of range.
    """
    t0 = time.perf_counter()
    if viscosity_law not in VISCOSITY_LAWS:
        raise ValueError(f"unknown viscosity_law {viscosity_law!r}: use one of {', '.join(VISCOSITY_LAWS)}")
    if not (np.isfinite(plasma_viscosity_pa_s) and plasma_viscosity_pa_s > 0):
        raise ValueError(f"plasma_viscosity_pa_s = {plasma_viscosity_pa_s!r}: must be a finite number > 0 "
                         "(in Pa·s; plasma is about 1.2e-3)")
    if not (0 <= haematocrit < 1):
        raise ValueError(f"haematocrit = {haematocrit!r}: must be a discharge haematocrit in [0, 1)")
    if not (tol > 0 and haematocrit_tol > 0):
        raise ValueError("tol and haematocrit_tol must be > 0")
    if not (0 < relaxation <= 1):
        raise ValueError(f"relaxation = {relaxation!r}: must be in (0, 1]")
    if solver not in ("auto", "direct", "cg"):
        raise ValueError(f"unknown solver {solver!r}: use auto, direct or cg")
    if not isinstance(network, VesselNetwork):
        raise TypeError(f"solve_flow needs a VesselNetwork, not {type(network).__name__}")
    be = _resolve_backend(backend)

    network.validate(require_bc=True)
    n, m = network.n_nodes, network.n_segments
    if m == 0:
        raise NetworkError("the network has no segments: there is no flow to solve")
    a = network.seg_nodes[:, 0]
    b = network.seg_nodes[:, 1]
    r = network.seg_radius_m
    length = network.seg_length_m
    d_m = 2.0 * r
    if viscosity_law != "plasma":
        bad = np.flatnonzero(d_m * 1e6 <= PRIES_MIN_DIAMETER_UM)
        if bad.size:
            raise NetworkError(f"segment {bad[0]} has radius {r[bad[0]]:.3g} m, below the "
                               f"{PRIES_MIN_DIAMETER_UM / 2:g} µm the {viscosity_law} Pries law allows: "
                               "fix the radius or use viscosity_law='plasma'")

    deg = network.node_degree()
    is_p = np.zeros(n, bool)
    p_bc = network.bc_kind == BCKind.PRESSURE
    is_p[network.bc_nodes[p_bc]] = True
    q_src = np.zeros(n)
    f_bc = ~p_bc
    q_src[network.bc_nodes[f_bc]] = network.bc_value[f_bc]
    bad = np.flatnonzero((q_src != 0) & (deg == 0))
    if bad.size:
        raise NetworkError(f"node {bad[0]} has a prescribed inflow of {q_src[bad[0]]:g} m³/s but no segment "
                           "to carry it: connect the node or remove the boundary condition")
    h_bc = np.zeros(n)
    h_bc[network.bc_nodes] = network.bc_haematocrit

    # pressures are solved relative to the middle of the boundary pressures (smaller magnitudes,
    # finer float64 resolution of the differences that drive the flow)
    pvals = network.bc_value[p_bc]
    p_ref = 0.5 * (pvals.min() + pvals.max())
    p_known = np.zeros(n)
    p_known[network.bc_nodes[p_bc]] = pvals - p_ref
    unknown = (deg > 0) & ~is_p
    idx = np.full(n, -1, np.int64)
    nu = int(unknown.sum())
    idx[unknown] = np.arange(nu)
    unknown_nodes = np.flatnonzero(unknown)
    lap = _Laplacian(a, b, idx, nu, be, solver, tol, max_linear_iterations)

    factor = None
    if conductance_factor is not None:
        factor = np.asarray(conductance_factor, float)
        if factor.shape != (m,) or not np.all((factor > 0) & (factor <= 1)):
            raise ValueError(f"conductance_factor must hold {m} values in (0, 1], one per segment")
    hd = np.full(m, float(haematocrit))
    info = {"solver": lap.solver, "backend": be.name, "unknowns": nu, "nnz": lap.nnz, "flow_corrections": 0,
            "flow_solves": 0}
    coupled = phase_separation and viscosity_law != "plasma"
    march = _march_kernel() if phase_separation else None
    if phase_separation:
        adj_seg = np.argsort(np.concatenate([a, b]), kind="stable") % m
        adj_ptr = np.concatenate([[0], np.cumsum(deg)])
        d_um = d_m * 1e6

    def evaluate(h_in):
        """One flow solve at the viscosities of ``h_in``, then the red-cell march on its flows."""
        info["flow_solves"] += 1
        mu_rel = _relative_viscosity(viscosity_law, d_m, np.clip(h_in, 0.0, _MAX_VISCOSITY_HAEMATOCRIT))
        mu = plasma_viscosity_pa_s * mu_rel
        g = np.pi * r**4 / (8.0 * mu * length)
        if factor is not None:
            g = g * factor
        p, q, p_scale = _solve_pressures(lap, g, a, b, idx, unknown_nodes, p_known, q_src, n, info)
        if not phase_separation:
            return _State(h_in, h_in, mu, g, p, q, p_scale, None)
        # flows below float64 resolution of the pressures are treated as stagnant
        qmin = 64.0 * _EPS * g * p_scale
        node_in = np.bincount(b, weights=q, minlength=n) - np.bincount(a, weights=q, minlength=n)
        q_bc = np.where(is_p, -node_in, q_src)  # flow entering the network at each boundary node
        h_new = h_in.copy()
        h_node = np.full(n, float(haematocrit))
        visited = march(n, a, b, q, qmin, d_um, adj_ptr, adj_seg, q_bc, h_bc, True, float(haematocrit),
                        h_new, h_node)
        if visited < n:
            raise FlowError("the computed flow directions contain a cycle, so red cells cannot be traced: "
                            "check the network for duplicated segments, or solve without phase_separation")
        stagnant = np.abs(q) <= qmin
        h_new[stagnant] = 0.5 * (h_node[a[stagnant]] + h_node[b[stagnant]])
        # each segment's share of the flow at its busier end: a near-stagnant segment whose
        # direction flips carries no red cells that matter
        node_qmax = _node_max_abs(n, a, b, q)
        w = np.abs(q) / np.maximum(np.maximum(node_qmax[a], node_qmax[b]), 1e-300)
        direction = np.where(stagnant, 0, np.sign(q)).astype(np.int8)
        return _State(h_in, h_new, mu, g, p, q, p_scale, w, direction)

    state = evaluate(hd)
    if coupled:
        state = _couple_haematocrit(evaluate, state, relaxation, haematocrit_tol, max_iterations, info)
    else:
        info["coupling_iterations"] = 1
        info["haematocrit_change"] = state.change if phase_separation else 0.0
    h_new, mu, g, p, q, p_scale = state.h_new, state.mu, state.g, state.p, state.q, state.p_scale
    info["linear_iterations"] = lap.iterations
    info["solver"] = lap.solver

    p_full = p + p_ref
    p_full[(deg == 0) & ~is_p] = np.nan
    node_in = np.bincount(b, weights=q, minlength=n) - np.bincount(a, weights=q, minlength=n)
    boundary_flow = -node_in[network.bc_nodes]
    floor = _EPS * _node_max_abs(n, a, b, g) * p_scale
    cons = _imbalance_error(n, a, b, q, q_src, unknown_nodes, floor)
    seg_h = h_new if phase_separation else hd
    rbc_err = 0.0
    if phase_separation:
        q_bc = np.where(is_p, -node_in, q_src)
        rbc_src = np.where(unknown, np.maximum(q_bc, 0) * h_bc, 0.0)
        # red-cell flux leaving through a prescribed outflow carries the node's mixed haematocrit
        out_bc = unknown & (q_bc < 0)
        if out_bc.any():
            h_mix = _mixed_haematocrit(n, a, b, q, seg_h, out_bc)
            rbc_src[out_bc] += q_bc[out_bc] * h_mix[out_bc]
        rbc_err = _imbalance_error(n, a, b, q * seg_h, rbc_src, unknown_nodes, floor * max(seg_h.max(), 1e-300))
    area = np.pi * r**2
    info["time_s"] = time.perf_counter() - t0
    return FlowSolution(
        node_pressure_pa=p_full,
        seg_flow_m3_per_s=q,
        seg_velocity_m_per_s=q / area,
        seg_viscosity_pa_s=mu,
        seg_haematocrit=seg_h.copy(),
        seg_wall_shear_stress_pa=4.0 * mu * np.abs(q) / (np.pi * r**3),
        seg_conductance_m3_per_pa_s=g,
        boundary_flow_m3_per_s=boundary_flow,
        conservation_error=cons,
        rbc_conservation_error=rbc_err,
        seg_wall=network.seg_wall.copy(),
        info=info,
    )


def _mixed_haematocrit(n, a, b, q, h, nodes_mask):
    """Flow-weighted haematocrit of the blood entering each node through its segments."""
    qin_b = np.where(q > 0, q, 0.0)
    qin_a = np.where(q < 0, -q, 0.0)
    qin = np.bincount(b, weights=qin_b, minlength=n) + np.bincount(a, weights=qin_a, minlength=n)
    rbc = np.bincount(b, weights=qin_b * h, minlength=n) + np.bincount(a, weights=qin_a * h, minlength=n)
    out = np.zeros(n)
    ok = nodes_mask & (qin > 0)
    out[ok] = rbc[ok] / qin[ok]
    return out


def _solve_pressures(lap: _Laplacian, g, a, b, idx, unknown_nodes, p_known, q_src, n, info, max_corrections=4):
    """Solve for the pressures, then correct the flows until each internal node conserves mass.

    Returns (pressure relative to the reference (n,), segment flows (m,), pressure scale in Pa).
    The correction solves A δp = (imbalance) and adds G·Δδp to the flows kept separately from
    the pressures, so the corrected flows are accurate beyond the float64 resolution of the
    absolute pressures.
    """
    lap.set_conductance(g)
    ia, ib = idx[a], idx[b]
    # right-hand side: prescribed inflows and conductance × known (Dirichlet) neighbour pressures
    rhs = q_src[unknown_nodes].copy()
    sel = (ia >= 0) & (ib < 0)
    rhs += np.bincount(ia[sel], weights=g[sel] * p_known[b[sel]], minlength=lap.nu)
    sel = (ib >= 0) & (ia < 0)
    rhs += np.bincount(ib[sel], weights=g[sel] * p_known[a[sel]], minlength=lap.nu)
    x = lap.solve(rhs)
    p = p_known.copy()
    p[unknown_nodes] = x
    q = g * (p[a] - p[b])
    p_scale = float(np.max(np.abs(p))) if p.size else 0.0
    floor = _EPS * _node_max_abs(n, a, b, g) * p_scale
    target = 64.0 * _EPS
    for _ in range(max_corrections):
        if _imbalance_error(n, a, b, q, q_src, unknown_nodes, floor) <= target:
            break
        net_in = np.bincount(b, weights=q, minlength=n) - np.bincount(a, weights=q, minlength=n) + q_src
        dx = lap.solve(net_in[unknown_nodes])
        dp = np.zeros(n)
        dp[unknown_nodes] = dx
        q = q + g * (dp[a] - dp[b])
        p = p + dp
        info["flow_corrections"] += 1
    return p, q, p_scale


# ------------------------------------------------------------------------------------------------
# benchmark network


def flow_benchmark_network(n_segments: int = 1_000_000, seed: int = 0) -> VesselNetwork:
    """A large random but valid capillary network with about ``n_segments`` segments.

    A jittered cubic lattice of capillaries (spacing 60 µm, nodes displaced up to ±15 µm, radii
    lognormal around 4 µm clipped to 2.5–8 µm, lengths 1.0–1.3 × the chord for tortuosity) with
    8 % of the segments removed at random, and a spherical "tumour" core whose vessels are wider
    and more irregular (radii around 6 µm, clipped to 3–12 µm). Pressure conditions of 4000 Pa
    (≈ 30 mmHg) on the x = 0 face and 1300 Pa (≈ 10 mmHg) on the far x face drive the flow; a few
    nodes on the y = 0 face get prescribed inflows of 2×10⁻¹⁴ m³/s (≈ one capillary's flow).
    Segments in pieces cut off from every pressure condition are dropped, so the network is
    solvable. The geometry is synthetic, meant for timing the flow solver, not for physiology.

    Parameters
    ----------
    n_segments : int
        Approximate number of segments wanted (≥ 100).
    seed : int
        Seed of the random generator (same seed, same network).

    Returns
    -------
    VesselNetwork
    """
    if n_segments < 100:
        raise ValueError(f"n_segments = {n_segments}: use at least 100")
    rng = np.random.default_rng(seed)
    keep_frac = 0.92
    k = 3
    while 3 * (k + 1) ** 2 * k * keep_frac <= n_segments:
        k += 1
    spacing = 60e-6
    ix, iy, iz = np.meshgrid(np.arange(k), np.arange(k), np.arange(k), indexing="ij")
    ijk = np.stack([ix.ravel(), iy.ravel(), iz.ravel()], axis=1)
    nid = np.arange(k**3).reshape(k, k, k)
    pos = ijk * spacing + rng.uniform(-15e-6, 15e-6, size=(k**3, 3))
    segs = np.concatenate([
        np.stack([nid[:-1, :, :].ravel(), nid[1:, :, :].ravel()], axis=1),
        np.stack([nid[:, :-1, :].ravel(), nid[:, 1:, :].ravel()], axis=1),
        np.stack([nid[:, :, :-1].ravel(), nid[:, :, 1:].ravel()], axis=1)])
    segs = segs[rng.random(len(segs)) < keep_frac]
    m = len(segs)
    centre = 0.5 * (k - 1) * spacing
    mid = 0.5 * (pos[segs[:, 0]] + pos[segs[:, 1]])
    tumour = np.linalg.norm(mid - centre, axis=1) < 0.3 * k * spacing
    radius = np.where(tumour, np.clip(rng.lognormal(np.log(6e-6), 0.35, m), 3e-6, 12e-6),
                      np.clip(rng.lognormal(np.log(4e-6), 0.2, m), 2.5e-6, 8e-6))
    chord = np.linalg.norm(pos[segs[:, 1]] - pos[segs[:, 0]], axis=1)
    length = chord * rng.uniform(1.0, 1.3, m)
    wall = np.where(tumour, WallType.TUMOUR, WallType.CAPILLARY).astype(np.uint8)

    inlet = nid[0].ravel()
    outlet = nid[-1].ravel()
    side = nid[1:-1, 0, 1:-1].ravel()
    side = side[rng.permutation(len(side))[: max(1, len(side) // 50)]]
    bc_nodes = np.concatenate([inlet, outlet, side])
    bc_kind = np.concatenate([np.full(len(inlet) + len(outlet), BCKind.PRESSURE), np.full(len(side), BCKind.FLOW)])
    bc_value = np.concatenate([np.full(len(inlet), 4000.0), np.full(len(outlet), 1300.0), np.full(len(side), 2e-14)])

    # drop pieces without a pressure condition (and boundary conditions on nodes left bare)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nn = k**3
    comp = connected_components(coo_matrix((np.ones(m), (segs[:, 0], segs[:, 1])), shape=(nn, nn)),
                                directed=False)[1]
    good = np.zeros(comp.max() + 1, bool)
    good[comp[bc_nodes[bc_kind == BCKind.PRESSURE]]] = True
    keep = good[comp[segs[:, 0]]]
    segs, radius, length, wall = segs[keep], radius[keep], length[keep], wall[keep]
    deg = np.bincount(segs.ravel(), minlength=nn)
    keep_bc = (deg[bc_nodes] > 0) | (bc_kind == BCKind.PRESSURE)
    keep_bc &= good[comp[bc_nodes]]
    return VesselNetwork(node_pos_m=pos, seg_nodes=segs, seg_radius_m=radius, seg_length_m=length, seg_wall=wall,
                         bc_nodes=bc_nodes[keep_bc], bc_kind=bc_kind[keep_bc], bc_value=bc_value[keep_bc],
                         meta={"generator": "flow_benchmark_network", "n_segments": int(n_segments),
                               "seed": int(seed), "lattice": int(k)})
