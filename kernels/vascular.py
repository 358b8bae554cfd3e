r"""Intravascular carrier packets: exact advection through the vessel network in one step.

Each intravascular packet (state :data:`~nanosim.kernels.compartments.VESSEL`) stands for
``weight`` real carriers and sits in segment ``seg`` at distance ``s`` (m) from the segment's
*upstream* end (upstream by the sign of the blood flow, :class:`FlowGraph`). Carriers move with
the segment's mean blood speed and split at bifurcations in proportion to flow (PHYSICS.md §5).

Algorithm (one step of length ``dt``)
-------------------------------------
A packet is carried along its path for the whole ``dt``, crossing as many segments as it
reaches: blood crosses a millimetre box in seconds while model steps may last minutes, so there
is no CFL limit and no time-discretisation error — the path is exact in time::

    t_left = dt
    loop:
        t_rem = (L_j − s) / v_j                    (∞ in a stagnant segment, v_j = 0)
        if t_left < t_rem:  s += v_j t_left; decay over t_left in j; done
        decay over t_rem in j; t_left −= t_rem; arrive at the downstream node n of j
        n has no outgoing flowing segment:
            exit node (boundary node, or no other segment) → EXITED, done
            otherwise (its only exits are stagnant)       → stuck at s = L_j: decay over
                                                            t_left in j, done (counted)
        k-th crossing of this step, k = max_crossings → capped at s = L_j: decay over t_left
                                                         in j, done (counted)
        choose the next segment c among n's outgoing segments with probability |Q_c| / Σ|Q|
        (u = uniform(seed, id, step, DRAW_BRANCH + k); no number is drawn at a node with a
        single outgoing segment); k += 1; j = c, s = 0
        packet radius > r_c → LODGED in c at s = 0 (the rest of the step is dropped), done

*Decay* is extravasation, a first-order loss at the segment's rate ``k_j`` (1/s; computed by the
model layer, e.g. from the Patlak flux; 0 = no loss): over a time τ in segment j the weight goes
``w → w e^{−k_j τ}`` and the lost part ``w − w e^{−k_j τ}`` is added to ``extravasated[j]``
(float64). Each packet's weight is conserved to round-off: before = after + extravasated
increments (+ exited weight). Exited packets keep their final weight (and ``seg`` = the outlet
segment, ``s`` = its length); the call also returns the exited total. Lodged packets (embolic
microspheres, PHYSICS.md §5) keep their weight and stop in the first segment narrower than
themselves; lodging is checked only when a packet *enters* a segment.

Stagnant segments (``|Q| <= stagnant_rel · max|Q|``) are never entered (they are left out of the
outgoing tables) and have speed 0: a packet placed in one stays where it is (and decays). A node
whose only exits are stagnant, reached by a flowing segment, is not an outlet unless it is a
boundary node: sending the packet out of the box there would move its carriers to the systemic
pool through a vessel that carries no blood, so it waits at the end of its segment instead and is
counted as *stuck* (with a conservative flow this happens only where the inflow itself is barely
above the threshold). A node with no other segment at all (an outlet, or a topological dead end)
is an exit.

Random numbers and exactness
----------------------------
The only random numbers are the branch choices, ``rng.uniform(seed, id, step, DRAW_BRANCH + k)``
(:mod:`nanosim.kernels.compartments`): a packet's path depends only on ``(seed, id, step)``, not
on the backend, the order of the arrays, the thread count, or how a run is split into calls.
Positions and branch decisions use the same float64 operations in the same order on every
backend, so they agree bit for bit (on a real GPU up to the compiler's FMA contraction of
``s + v t``, a few ulp of ``s``, which flips a decision only on an exact tie); weights go through
``exp``, whose last bit depends on the math library (a few ulp); the per-segment accumulators are
sums in a thread-dependent order (round-off).

Backends
--------
- :func:`numpy_traverse`: vectorised NumPy over "crossing rounds" (every active packet finishes
  or crosses one node per round), written independently of the pointwise function: the oracle;
- :func:`numba_traverse`: ``prange`` over packets calling :func:`move_packet`'s ``.cpu`` form; the
  per-segment losses go to thread-private rows (``numba.get_num_threads()`` × segments, float64)
  summed after the loop, so there are no races and no atomics;
- ``nanosim.kernels.vascular_cuda.traverse``: one CUDA thread per packet calling the ``.cuda``
  form of the same function; losses with ``cuda.atomic.add`` on float64 (imported lazily);
- :func:`traverse`: dispatch on a backend name.

The only backend-specific piece of physics code is :data:`deposit` (add to the accumulator),
whose CPU form writes the thread's row and whose CUDA form adds atomically.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from numbers import Integral

import numba
import numpy as np

from . import rng
from ._compile import NJIT_OPTIONS, Pointwise, pointwise
from .compartments import DRAW_BRANCH, DRAW_PLACEMENT, EXITED, LODGED, VESSEL
from .rng import uniform

__all__ = [
    "BACKENDS",
    "TOTALS",
    "FlowGraph",
    "InletTable",
    "build_graph",
    "inlet_table",
    "reorient_positions",
    "deposit",
    "decay",
    "move_packet",
    "numpy_traverse",
    "numba_traverse",
    "traverse",
    "intravascular_benchmark",
]

#: Backend names accepted by :func:`traverse`.
BACKENDS = ("numpy", "numba", "cupy")

#: Keys of the per-call totals returned by :func:`traverse`.
TOTALS = ("exited_weight", "crossings", "lodged", "stuck", "capped")

# Outcome of one packet's step (returned by move_packet).
OUTCOME_IDLE = -1  # not an intravascular packet: untouched
OUTCOME_MOVED = 0  # still in the blood at the end of the step
OUTCOME_EXITED = 1
OUTCOME_LODGED = 2
OUTCOME_STUCK = 3
OUTCOME_CAPPED = 4

#: Default cap on node crossings per packet and step.
MAX_CROSSINGS = 100_000

_ARTERY = 0  # nanosim.vasculature.network.WallType.ARTERY (not imported: keep kernels light)


# --------------------------------------------------------------------------------------------
# Host: the flow graph
# --------------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class FlowGraph:
    """A vessel network oriented by its blood flow, as flat arrays for the packet kernels.

    Built by :func:`build_graph`; cheap to rebuild when the flow changes (e.g. after an embolic
    occlusion; then see :func:`reorient_positions`). All arrays are NumPy, SI units.

    Attributes
    ----------
    seg_up_node, seg_down_node : ndarray of int64 (m,)
        Upstream and downstream node of each segment by the sign of the flow (for a segment
        with no flow: ``seg_nodes[:, 0]`` and ``seg_nodes[:, 1]``).
    seg_speed_m_per_s : ndarray of float64 (m,)
        Mean blood speed |v| = |Q| / (π r²); 0 in stagnant segments.
    seg_length_m, seg_radius_m : ndarray of float64 (m,)
        Centreline length and lumen radius.
    seg_flow_m3_per_s : ndarray of float64 (m,)
        |Q| (also in stagnant segments).
    seg_flowing : ndarray of bool (m,)
        ``|Q| > flow_threshold_m3_per_s``: the segments packets may enter.
    seg_wall : ndarray of uint8 (m,)
        :class:`~nanosim.vasculature.network.WallType` codes.
    node_out_ptr : ndarray of int64 (n + 1,)
        CSR offsets: the flowing segments leaving node ``a`` are
        ``node_out_seg[node_out_ptr[a]:node_out_ptr[a + 1]]`` (by increasing segment index).
    node_out_seg : ndarray of int64
        Outgoing flowing segments, grouped by upstream node.
    node_out_cum : ndarray of float64
        Cumulative flow fraction of the outgoing segments within each node's group (left-to-right
        partial sums of |Q| over the group's sum); the last entry of every group is exactly 1.0.
    node_exit : ndarray of uint8 (n,)
        1 where a packet arriving at a node without outgoing flowing segment leaves the network
        (a boundary node, or no other segment there); 0 where it would be stuck.
    inlet_seg : ndarray of int64
        Segments through which blood enters the network: the outgoing flowing segments of nodes
        with a net inflow from outside (boundary inflow nodes).
    inlet_flow_m3_per_s : ndarray of float64
        Blood flow entering through each inlet segment (the node's boundary inflow shared in
        proportion to the outgoing flows; |Q| of the segment at a pure inflow node).
    stagnant_rel : float
        Relative stagnation threshold used.
    flow_threshold_m3_per_s : float
        ``stagnant_rel · max|Q|``.
    """

    seg_up_node: np.ndarray
    seg_down_node: np.ndarray
    seg_speed_m_per_s: np.ndarray
    seg_length_m: np.ndarray
    seg_radius_m: np.ndarray
    seg_flow_m3_per_s: np.ndarray
    seg_flowing: np.ndarray
    seg_wall: np.ndarray
    node_out_ptr: np.ndarray
    node_out_seg: np.ndarray
    node_out_cum: np.ndarray
    node_exit: np.ndarray
    inlet_seg: np.ndarray
    inlet_flow_m3_per_s: np.ndarray
    stagnant_rel: float
    flow_threshold_m3_per_s: float
    #: device copies of the kernel arrays, made once by the CUDA driver
    _device: dict = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.node_exit)

    @property
    def n_segments(self) -> int:
        return len(self.seg_up_node)

    def kernel_arrays(self):
        """The arrays the kernels read, in kernel-argument order."""
        return (self.seg_down_node, self.seg_speed_m_per_s, self.seg_length_m, self.seg_radius_m,
                self.node_exit, self.node_out_ptr, self.node_out_seg, self.node_out_cum)

    def __repr__(self) -> str:
        deg = np.diff(self.node_out_ptr)
        reached = np.zeros(self.n_nodes, bool)
        reached[self.seg_down_node[self.seg_flowing]] = True
        ends = reached & (deg == 0)
        n_exit = int(np.count_nonzero(ends & (self.node_exit == 1)))
        n_stuck = int(np.count_nonzero(ends & (self.node_exit == 0)))
        n_flowing = int(self.seg_flowing.sum())
        v = self.seg_speed_m_per_s[self.seg_flowing]
        speeds = f"speed {v.min() * 1e6:.3g}–{v.max() * 1e6:.3g} µm/s" if v.size else "no flow"
        return (f"FlowGraph: {self.n_nodes} nodes, {self.n_segments} segments ({n_flowing} flowing, "
                f"{self.n_segments - n_flowing} stagnant at |Q| <= "
                f"{self.flow_threshold_m3_per_s:.3g} m³/s), {speeds}\n"
                f"├── branching: {int((deg > 1).sum())} nodes, "
                f"at most {int(deg.max()) if deg.size else 0} exits\n"
                f"├── inlets: {len(self.inlet_seg)} segments, "
                f"{self.inlet_flow_m3_per_s.sum():.4g} m³/s in\n"
                f"└── outlets: {n_exit} exit nodes, {n_stuck} nodes whose only exits are stagnant")


def _segmented_cumsum(values, ptr):
    """Left-to-right partial sums of ``values`` within each CSR group (groups are short)."""
    n = len(values)
    out = values.copy()
    if n == 0:
        return out
    group = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    pos = np.arange(n) - ptr[group]
    for d in range(1, int(pos.max()) + 1):
        sel = np.flatnonzero(pos == d)
        out[sel] = out[sel - 1] + values[sel]  # sel − 1 holds the finished sum of position d − 1
    return out


def build_graph(network, flow, *, stagnant_rel: float = 1e-12) -> FlowGraph:
    """Orient a vessel network by its blood flow and tabulate the branch choices.

    Parameters
    ----------
    network : nanosim.vasculature.network.VesselNetwork
        The network (``seg_nodes``, ``seg_radius_m``, ``seg_length_m``, ``seg_wall``,
        ``bc_nodes``).
    flow : nanosim.flow.FlowSolution or array_like (m,)
        The flow solution, or the segment flows in m³/s signed from ``seg_nodes[:, 0]`` to
        ``seg_nodes[:, 1]`` (speeds are then |Q| / (π r²)).
    stagnant_rel : float
        Segments with ``|Q| <= stagnant_rel · max|Q|`` are stagnant: never entered, speed 0.

    Returns
    -------
    FlowGraph

    Notes
    -----
    Inlets are the boundary nodes (and nodes without incoming flowing segment) whose flowing
    outflow exceeds their flowing inflow by more than the stagnation threshold; their net inflow
    is shared among their outgoing segments in proportion to flow. Costs a few vectorised
    passes over the segments (no Python loop over nodes or segments).
    """
    nodes = np.asarray(network.seg_nodes, dtype=np.int64).reshape(-1, 2)
    m = len(nodes)
    n = int(network.n_nodes)
    radius = np.asarray(network.seg_radius_m, dtype=np.float64)
    length = np.asarray(network.seg_length_m, dtype=np.float64)
    if hasattr(flow, "seg_flow_m3_per_s"):
        q = np.asarray(flow.seg_flow_m3_per_s, dtype=np.float64)
        speed = np.abs(np.asarray(flow.seg_velocity_m_per_s, dtype=np.float64))
    else:
        q = np.asarray(flow, dtype=np.float64).reshape(-1)
        speed = np.abs(q) / (np.pi * radius**2) if len(q) == m else None
    if len(q) != m:
        raise ValueError(f"flow has {len(q)} segment flows for a network of {m} segments")
    if not np.all(np.isfinite(q)):
        raise ValueError("flow holds non-finite segment flows")
    rel = float(stagnant_rel)
    if not (rel >= 0 and math.isfinite(rel)):
        raise ValueError(f"stagnant_rel must be finite and >= 0, got {stagnant_rel!r}")
    aq = np.abs(q)
    threshold = rel * float(aq.max()) if m else 0.0
    flowing = aq > threshold
    rev = q < 0
    up = np.where(rev, nodes[:, 1], nodes[:, 0])
    down = np.where(rev, nodes[:, 0], nodes[:, 1])
    speed = np.where(flowing, speed, 0.0)

    # CSR table of outgoing flowing segments, by node then segment index
    fseg = np.flatnonzero(flowing)
    order = np.argsort(up[fseg], kind="stable")
    out_seg = fseg[order]
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(up[out_seg], minlength=n), out=ptr[1:])
    part = _segmented_cumsum(aq[out_seg], ptr)
    deg = np.diff(ptr)
    total = np.repeat(part[ptr[1:][deg > 0] - 1], deg[deg > 0])
    cum = part / total if len(part) else part
    cum[ptr[1:][deg > 0] - 1] = 1.0

    # where blood leaves: nodes without flowing exit
    bc = np.zeros(n, bool)
    bc[np.asarray(network.bc_nodes, dtype=np.int64)] = True
    stag_at = np.bincount(nodes[~flowing].reshape(-1), minlength=n)
    node_exit = ((deg == 0) & (bc | (stag_at == 0))).astype(np.uint8)

    # where blood enters: net inflow from outside
    q_out = np.bincount(up[fseg], weights=aq[fseg], minlength=n)
    q_in = np.bincount(down[fseg], weights=aq[fseg], minlength=n)
    has_in = np.bincount(down[fseg], minlength=n) > 0
    source = (bc | ~has_in) & (q_out - q_in > threshold) & (q_out > 0)
    inlet = out_seg[source[up[out_seg]]]
    src = up[inlet]
    share = np.where(has_in[src], (q_out[src] - q_in[src]) / q_out[src], 1.0)
    return FlowGraph(
        seg_up_node=up, seg_down_node=down, seg_speed_m_per_s=speed, seg_length_m=length.copy(),
        seg_radius_m=radius.copy(), seg_flow_m3_per_s=aq, seg_flowing=flowing,
        seg_wall=np.asarray(network.seg_wall, dtype=np.uint8).copy(), node_out_ptr=ptr,
        node_out_seg=out_seg, node_out_cum=cum, node_exit=node_exit, inlet_seg=inlet,
        inlet_flow_m3_per_s=aq[inlet] * share, stagnant_rel=rel, flow_threshold_m3_per_s=threshold)


@dataclass(frozen=True)
class InletTable:
    """Inflow segments of a :class:`FlowGraph` and their flows, for injecting packets.

    Attributes
    ----------
    seg : ndarray of int64
        Inlet segments.
    flow_m3_per_s : ndarray of float64
        Blood flow entering through each (m³/s).
    cum : ndarray of float64
        Cumulative flow fraction (last entry exactly 1.0).
    """

    seg: np.ndarray
    flow_m3_per_s: np.ndarray
    cum: np.ndarray

    @property
    def total_flow_m3_per_s(self) -> float:
        return float(self.flow_m3_per_s.sum())

    def choose(self, u) -> np.ndarray:
        """Inlet segment for each uniform ``u`` in [0, 1): probability ∝ inflow."""
        k = np.searchsorted(self.cum, np.asarray(u, dtype=np.float64), side="right")
        return self.seg[np.minimum(k, len(self.seg) - 1)]


def inlet_table(graph: FlowGraph, *, arterial_only: bool = False) -> InletTable:
    """The network's inflow segments with their flows (for injection in proportion to inflow).

    Parameters
    ----------
    graph : FlowGraph
    arterial_only : bool
        Keep only inlet segments whose wall type is ARTERY (hepatic arterial infusion and
        embolisation).

    Returns
    -------
    InletTable

    Raises
    ------
    ValueError
        If no inlet (or no arterial inlet) carries flow.
    """
    seg, flow = graph.inlet_seg, graph.inlet_flow_m3_per_s
    if arterial_only:
        keep = graph.seg_wall[seg] == _ARTERY
        seg, flow = seg[keep], flow[keep]
    if len(seg) == 0 or not flow.sum() > 0:
        what = "arterial inlet" if arterial_only else "inlet"
        raise ValueError(f"the network has no {what} carrying flow (check the boundary "
                         "conditions and the flow solution)")
    cum = np.cumsum(flow) / flow.sum()
    cum[-1] = 1.0
    return InletTable(seg=seg.copy(), flow_m3_per_s=flow.copy(), cum=cum)


def reorient_positions(old: FlowGraph, new: FlowGraph, seg, s, state=None):
    """Carry packet positions over to a rebuilt graph (in place).

    ``s`` is measured from a segment's upstream end; where the flow reversed between ``old`` and
    ``new`` the same point lies at ``L − s``. Only packets with ``state == VESSEL`` are changed
    when ``state`` is given. Returns ``s``.
    """
    flipped = old.seg_up_node[seg] != new.seg_up_node[seg]
    if state is not None:
        flipped &= state == VESSEL
    s[flipped] = new.seg_length_m[seg[flipped]] - s[flipped]
    return s


# --------------------------------------------------------------------------------------------
# Pointwise functions: the one physics source of the Numba and CUDA kernels
# --------------------------------------------------------------------------------------------


class _Deposit(Pointwise):
    """``acc[row, j] += x``: a thread-private row on the CPU, ``cuda.atomic.add(acc, j, x)`` on
    CUDA (1-D ``acc``, ``row`` ignored). The one place where the targets differ."""

    @functools.cached_property
    def cuda(self):
        from . import vascular_cuda

        return vascular_cuda.atomic_deposit


def _deposit(acc, row, j, x):
    acc[row, j] += x


#: Add loss ``x`` of segment ``j`` to the accumulator (see :class:`_Deposit`).
deposit = _Deposit(_deposit)


@pointwise
def decay(w, rate, tau, acc, row, j):
    """Weight after ``tau`` seconds at first-order loss ``rate`` in segment ``j``.

    Returns ``w e^{−rate τ}`` and deposits ``w − w e^{−rate τ}`` to segment ``j``; with
    ``rate == 0`` or ``tau == 0`` returns ``w`` unchanged (bit for bit) and deposits nothing.
    """
    if rate > 0.0 and tau > 0.0:
        wn = w * math.exp(-rate * tau)
        deposit(acc, row, j, w - wn)
        return wn
    return w


@pointwise
def move_packet(i, seg, s, weight, state, ids, radius, per_packet_radius, radius_scalar,
                down_node, speed, length, seg_radius, node_exit, out_ptr, out_seg, out_cum,
                rate, dt, seed, step, max_crossings, acc, row):
    """Advance packet ``i`` of the arrays through the network for one step (in place).

    Implements the algorithm of the module docstring. Packets whose ``state[i] != VESSEL`` are
    not touched. The packet radius is ``radius[i]`` if ``per_packet_radius`` else
    ``radius_scalar`` (0: never lodges). Graph arrays as in :meth:`FlowGraph.kernel_arrays`;
    ``rate`` is the per-segment loss rate (1/s); losses go through :data:`deposit` to
    ``acc[row, :]``.

    Returns
    -------
    (float, int, int)
        Exited weight (0 unless the packet exited), number of node crossings in this step, and
        the outcome code (``OUTCOME_*``).
    """
    if state[i] != VESSEL:
        return 0.0, 0, OUTCOME_IDLE
    j = seg[i]
    x = float(s[i])
    w = float(weight[i])
    pid = ids[i]
    rp = radius_scalar
    if per_packet_radius:
        rp = float(radius[i])
    t_left = dt
    k = 0
    outcome = OUTCOME_MOVED
    while True:
        v = speed[j]
        seg_len = length[j]
        rem = seg_len - x
        if rem < 0.0:
            rem = 0.0
        t_rem = math.inf
        if v > 0.0:
            t_rem = rem / v
        if t_left < t_rem:
            x = x + v * t_left
            if x > seg_len:
                x = seg_len
            w = decay(w, rate[j], t_left, acc, row, j)
            break
        w = decay(w, rate[j], t_rem, acc, row, j)
        t_left = t_left - t_rem
        x = seg_len
        node = down_node[j]
        a = out_ptr[node]
        b = out_ptr[node + 1]
        if a == b:
            if node_exit[node] != 0:
                outcome = OUTCOME_EXITED
            else:
                outcome = OUTCOME_STUCK
                w = decay(w, rate[j], t_left, acc, row, j)
            break
        if k >= max_crossings:
            outcome = OUTCOME_CAPPED
            w = decay(w, rate[j], t_left, acc, row, j)
            break
        c = a
        if b - a > 1:
            u = uniform(seed, pid, step, DRAW_BRANCH + k)
            while c < b - 1 and u >= out_cum[c]:
                c += 1
        k += 1
        j = out_seg[c]
        x = 0.0
        if rp > seg_radius[j]:
            outcome = OUTCOME_LODGED
            break
    seg[i] = j
    s[i] = x
    weight[i] = w
    exited = 0.0
    if outcome == OUTCOME_EXITED:
        state[i] = EXITED
        exited = w
    elif outcome == OUTCOME_LODGED:
        state[i] = LODGED
    return exited, k, outcome


# --------------------------------------------------------------------------------------------
# Argument checking shared by every driver
# --------------------------------------------------------------------------------------------


def _is_host(a):
    return isinstance(a, np.ndarray)


def _check_1d(name, a, n, what="particle"):
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"{name} must be an array (NumPy, or CuPy for the cupy backend), "
                        f"got {type(a).__name__}")
    if len(a.shape) != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must be one-dimensional with one entry per {what} ({n}), "
                         f"got shape {tuple(a.shape)}")


def _prepare(seg, s, weight, state, ids, radius, step, dt_s, seed, graph, rate_per_s,
             extravasated, max_crossings, asarray):
    """Check the arguments; return ``(ids, radius, per_packet, r_scalar, rate, dt, seed, step,
    max_crossings)`` with arrays through ``asarray``."""
    if not isinstance(graph, FlowGraph):
        raise TypeError(f"graph must be a FlowGraph (see build_graph), got {type(graph).__name__}")
    if not hasattr(seg, "shape") or len(seg.shape) != 1:
        raise ValueError("seg must be a one-dimensional integer array (segment of each packet)")
    n = seg.shape[0]
    m = graph.n_segments
    if seg.dtype.kind not in "iu":
        raise TypeError(f"seg must be an integer array, got {seg.dtype}")
    _check_1d("s", s, n)
    _check_1d("weight", weight, n)
    for name, a in (("s", s), ("weight", weight)):
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    _check_1d("state", state, n)
    if state.dtype not in (np.int8, np.uint8):
        raise TypeError(f"state must be an int8 or uint8 array of compartment codes, got {state.dtype}")
    _check_1d("ids", ids, n)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be an integer array (int64 preferred), got {ids.dtype}")
    if _is_host(ids) and n and (ids.min() < 0 or (ids.dtype == np.uint64 and int(ids.max()) >= 2**63)):
        raise ValueError("ids must lie in [0, 2**63) (they key the random streams)")
    if ids.dtype != np.int64:
        ids = ids.astype(np.int64)
    if _is_host(seg) and _is_host(state) and n:
        moving = state == VESSEL
        if moving.any() and (seg[moving].min() < 0 or seg[moving].max() >= m):
            raise ValueError(f"seg of intravascular packets must lie in [0, {m}) "
                             "(the graph's segments)")
    if not isinstance(step, Integral) or step < 0:
        raise ValueError(f"step must be a non-negative integer (the step index), got {step!r}")
    if not isinstance(seed, Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    dt = float(dt_s)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt_s must be a positive, finite time step in s, got {dt_s!r}")
    if not isinstance(max_crossings, Integral) or max_crossings < 0:
        raise ValueError(f"max_crossings must be an integer >= 0, got {max_crossings!r}")
    if radius is None or np.ndim(radius) == 0:
        r_scalar = 0.0 if radius is None else float(radius)
        if not (r_scalar >= 0 and math.isfinite(r_scalar)):
            raise ValueError(f"radius must be finite and >= 0 (m; 0 = never lodges), got {radius!r}")
        radius, per_packet = asarray(np.zeros(1)), False
    else:
        radius = asarray(radius)
        _check_1d("radius", radius, n)
        if radius.dtype not in (np.float32, np.float64):
            raise TypeError(f"radius must be float32 or float64, got {radius.dtype}")
        r_scalar, per_packet = 0.0, True
    if np.ndim(rate_per_s) == 0:
        rate = np.full(m, float(rate_per_s))
    else:
        rate = rate_per_s
    _check_1d("rate_per_s", rate, m, "segment")
    if rate.dtype not in (np.float32, np.float64):
        raise TypeError(f"rate_per_s must be float32 or float64, got {rate.dtype}")
    if _is_host(rate) and m and not (np.all(rate >= 0) and np.all(np.isfinite(rate))):
        raise ValueError("rate_per_s must be finite and >= 0 (1/s) in every segment")
    rate = asarray(rate)
    _check_1d("extravasated", extravasated, m, "segment")
    if extravasated.dtype != np.float64:
        raise TypeError(f"extravasated must be a float64 array (a ledger), got {extravasated.dtype}")
    return (ids, radius, per_packet, r_scalar, rate, dt, rng.seed64(seed), int(step),
            int(max_crossings))


def _host_prepare(seg, s, weight, state, ids, radius, step, kw):
    for name, a in (("seg", seg), ("s", s), ("weight", weight), ("state", state), ("ids", ids),
                    ("extravasated", kw["extravasated"])):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array for this backend, got {type(a).__name__}")
    return _prepare(seg, s, weight, state, ids, radius, step, asarray=np.asarray, **kw)


def _totals(exited, crossings, lodged, stuck, capped):
    return {"exited_weight": float(exited), "crossings": int(crossings), "lodged": int(lodged),
            "stuck": int(stuck), "capped": int(capped)}


# --------------------------------------------------------------------------------------------
# Numba (CPU) driver
# --------------------------------------------------------------------------------------------

_move_cpu = move_packet.cpu


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _numba_kernel(seg, s, weight, state, ids, radius, per_packet, r_scalar, down, speed, length,
                  seg_radius, node_exit, ptr, out_seg, out_cum, rate, dt, seed, step, max_cross,
                  acc):
    exited = 0.0
    crossings = 0
    lodged = 0
    stuck = 0
    capped = 0
    for i in numba.prange(seg.shape[0]):
        # most of a population is in tissue or done: skip those before asking for the thread id,
        # which costs a call into the threading layer (about 50 ns, 85 % of a liposome step's
        # traversal when 541 of 57 911 packets were in vessels)
        if state[i] != VESSEL:
            continue
        e, c, o = _move_cpu(i, seg, s, weight, state, ids, radius, per_packet, r_scalar, down,
                            speed, length, seg_radius, node_exit, ptr, out_seg, out_cum, rate,
                            dt, seed, step, max_cross, acc, numba.get_thread_id())
        exited += e
        crossings += c
        if o == OUTCOME_LODGED:
            lodged += 1
        elif o == OUTCOME_STUCK:
            stuck += 1
        elif o == OUTCOME_CAPPED:
            capped += 1
    return exited, crossings, lodged, stuck, capped


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _reduce_rows(acc, out):
    for j in numba.prange(acc.shape[1]):
        t = 0.0
        for r in range(acc.shape[0]):
            t += acc[r, j]
        out[j] += t


def numba_traverse(seg, s, weight, state, ids, radius, step, *, dt_s, seed, graph, rate_per_s,
                   extravasated, max_crossings=MAX_CROSSINGS):
    """One step of intravascular transport with the Numba ``prange`` kernel (in place).

    Parameters
    ----------
    seg : ndarray of int (int64 or int32)
        Segment of each packet.
    s : ndarray of float32 or float64
        Distance (m) from the segment's upstream end, ``0 <= s <= L``.
    weight : ndarray of float32 or float64
        Real carriers per packet (float64 recommended: the ledgers are float64).
    state : ndarray of int8 or uint8
        Compartment codes; only ``VESSEL`` packets move (and may become ``EXITED`` or
        ``LODGED``); all others are left bit for bit unchanged.
    ids : ndarray of int
        Packet ids in ``[0, 2**63)``; they key the random streams.
    radius : None, float or ndarray
        Packet radius (m) for lodging, one for all or one per packet; None or 0: never lodges.
    step : int
        Step index (keys the random numbers).
    dt_s : float
        Step length (s).
    seed : int
        Scenario seed.
    graph : FlowGraph
        From :func:`build_graph`.
    rate_per_s : float or ndarray (m,)
        First-order extravasation rate of each segment (1/s), >= 0.
    extravasated : ndarray of float64 (m,)
        Per-segment ledger: the weight lost in each segment during the step is *added*.
    max_crossings : int
        Most node crossings per packet in the step. A packet that would make one more stays at
        the downstream end of its current segment (``s = L``) for the rest of the step, still
        ``VESSEL`` and still decaying there, and is counted as ``capped``; it goes on next step.
        Pressure-driven flow has no loops, so the cap only guards against malformed flows.

    Returns
    -------
    dict
        ``exited_weight`` (float, total weight of packets that exited in this call),
        ``crossings`` (node crossings), ``lodged``, ``stuck`` (packets that ended the step
        waiting at a node whose only exits are stagnant), ``capped`` (counts).

    Notes
    -----
    The per-segment losses are first summed into a scratch array of
    ``numba.get_num_threads() × n_segments`` float64 (one row per thread, no races), then added
    to ``extravasated``: 8 bytes × threads × segments of memory and one pass over it per call.
    """
    kw = dict(dt_s=dt_s, seed=seed, graph=graph, rate_per_s=rate_per_s,
              extravasated=extravasated, max_crossings=max_crossings)
    ids, radius, per_packet, r_scalar, rate, dt, seed64, step, max_cross = _host_prepare(
        seg, s, weight, state, ids, radius, step, kw)
    if seg.shape[0] == 0:
        return _totals(0.0, 0, 0, 0, 0)
    acc = np.zeros((numba.get_num_threads(), graph.n_segments))
    res = _numba_kernel(seg, s, weight, state, ids, radius, per_packet, r_scalar,
                        *graph.kernel_arrays(), rate, dt, seed64, step, max_cross, acc)
    _reduce_rows(acc, extravasated)
    return _totals(*res)


# --------------------------------------------------------------------------------------------
# NumPy reference (independent vectorised code: the oracle of the compiled kernels)
# --------------------------------------------------------------------------------------------


def _np_uniform(seed64, pid, step, draw):
    """``uniform(seed, pid[i], step, draw[i])`` for arrays of ids and draw indices."""
    sd = seed64 & 0xFFFFFFFFFFFFFFFF
    mask = np.uint64(0xFFFFFFFF)
    pid = pid.astype(np.uint64)
    x0, x1, _, _ = rng.numpy_philox4x32_10(pid & mask, pid >> np.uint64(32),
                                           np.uint64(step & 0xFFFFFFFF),
                                           draw.astype(np.uint64) & mask, sd & 0xFFFFFFFF, sd >> 32)
    return rng._numpy_u01(x0, x1)


def _np_decay(w, rate, tau, extravasated, j):
    """Weights after ``tau`` at ``rate``; the losses are added to ``extravasated[j]``."""
    lossy = (rate > 0.0) & (tau > 0.0)
    wn = np.where(lossy, w * np.exp(-rate * np.where(lossy, tau, 0.0)), w)
    np.add.at(extravasated, j[lossy], w[lossy] - wn[lossy])
    return wn


def numpy_traverse(seg, s, weight, state, ids, radius, step, *, dt_s, seed, graph, rate_per_s,
                   extravasated, max_crossings=MAX_CROSSINGS):
    """NumPy reference of :func:`numba_traverse` (same arguments and result; in place).

    Vectorised over "crossing rounds": in each round every packet still travelling either ends
    its step inside its segment or reaches the downstream node and crosses it. Written
    independently of :func:`move_packet`, with the same float64 operations in the same order, so
    positions and branch choices equal the compiled kernels' bit for bit and weights agree to the
    last bits of ``exp``.
    """
    kw = dict(dt_s=dt_s, seed=seed, graph=graph, rate_per_s=rate_per_s,
              extravasated=extravasated, max_crossings=max_crossings)
    ids, radius, per_packet, r_scalar, rate, dt, seed64, step, max_cross = _host_prepare(
        seg, s, weight, state, ids, radius, step, kw)
    g = graph
    idx = np.flatnonzero(state == VESSEL)
    j = seg[idx].astype(np.int64)
    x = s[idx].astype(np.float64)
    w = weight[idx].astype(np.float64)
    pid = ids[idx]
    rp = radius[idx].astype(np.float64) if per_packet else np.full(idx.size, r_scalar)
    rate = np.asarray(rate, dtype=np.float64)
    t_left = np.full(idx.size, dt)
    k = np.zeros(idx.size, np.int64)
    outcome = np.full(idx.size, OUTCOME_MOVED)
    act = np.arange(idx.size)
    while act.size:
        ja, xa = j[act], x[act]
        v, seg_len = g.seg_speed_m_per_s[ja], g.seg_length_m[ja]
        rem = np.maximum(seg_len - xa, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_rem = np.where(v > 0.0, rem / np.where(v > 0.0, v, 1.0), np.inf)
        tl = t_left[act]
        done = tl < t_rem
        # packets that end the step inside their segment
        d, jd = act[done], ja[done]
        x[d] = np.minimum(xa[done] + v[done] * tl[done], seg_len[done])
        w[d] = _np_decay(w[d], rate[jd], tl[done], extravasated, jd)
        # the others reach the downstream node
        a, ja, seg_len = act[~done], ja[~done], seg_len[~done]
        w[a] = _np_decay(w[a], rate[ja], t_rem[~done], extravasated, ja)
        t_left[a] = tl[~done] - t_rem[~done]
        x[a] = seg_len
        node = g.seg_down_node[ja]
        lo, hi = g.node_out_ptr[node], g.node_out_ptr[node + 1]
        end = lo == hi
        exits = end & (g.node_exit[node] != 0)
        outcome[a[exits]] = OUTCOME_EXITED
        halt = (end & ~exits) | (~end & (k[a] >= max_cross))
        outcome[a[halt]] = np.where(end[halt], OUTCOME_STUCK, OUTCOME_CAPPED)
        w[a[halt]] = _np_decay(w[a[halt]], rate[ja[halt]], t_left[a[halt]], extravasated, ja[halt])
        go = ~end & ~halt
        a, lo, hi = a[go], lo[go], hi[go]
        c = lo.copy()
        multi = np.flatnonzero(hi - lo > 1)
        u = _np_uniform(seed64, pid[a[multi]], step, DRAW_BRANCH + k[a[multi]])
        cm, last = c[multi], hi[multi] - 1
        while True:
            more = (cm < last) & (u >= g.node_out_cum[cm])
            if not more.any():
                break
            cm += more
        c[multi] = cm
        k[a] += 1
        j[a] = g.node_out_seg[c]
        x[a] = 0.0
        lodge = rp[a] > g.seg_radius_m[j[a]]
        outcome[a[lodge]] = OUTCOME_LODGED
        act = a[~lodge]
    seg[idx] = j
    s[idx] = x
    weight[idx] = w
    ex = outcome == OUTCOME_EXITED
    state[idx[ex]] = EXITED
    state[idx[outcome == OUTCOME_LODGED]] = LODGED
    return _totals(w[ex].sum(), k.sum(), np.sum(outcome == OUTCOME_LODGED),
                   np.sum(outcome == OUTCOME_STUCK), np.sum(outcome == OUTCOME_CAPPED))


# --------------------------------------------------------------------------------------------
# Dispatch by backend name
# --------------------------------------------------------------------------------------------


def traverse(backend_name, seg, s, weight, state, ids, radius, step, *, dt_s, seed, graph,
             rate_per_s, extravasated, max_crossings=MAX_CROSSINGS):
    """One step of intravascular transport on a backend (in place).

    Parameters
    ----------
    backend_name : {"numpy", "numba", "cupy"}
        ``"cupy"`` runs ``nanosim.kernels.vascular_cuda.traverse`` on CuPy arrays (packet arrays,
        ``extravasated`` and an array ``rate_per_s`` on the device), on CuPy's current stream.
    Other parameters and the result as in :func:`numba_traverse`.
    """
    kw = dict(dt_s=dt_s, seed=seed, graph=graph, rate_per_s=rate_per_s,
              extravasated=extravasated, max_crossings=max_crossings)
    if backend_name == "numpy":
        return numpy_traverse(seg, s, weight, state, ids, radius, step, **kw)
    if backend_name == "numba":
        return numba_traverse(seg, s, weight, state, ids, radius, step, **kw)
    if backend_name == "cupy":
        import cupy

        from . import vascular_cuda

        stream = cupy.cuda.get_current_stream().ptr
        return vascular_cuda.traverse(seg, s, weight, state, ids, radius, step, stream=stream, **kw)
    raise ValueError(f"unknown backend {backend_name!r}; expected one of {BACKENDS}")


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def intravascular_benchmark(backend="numba", n_packets=1_000_000, seed=0, *, n_steps=5,
                            dt_s=2.0, rate_per_s=1e-3, params=None):
    """Time :func:`traverse` on a generated liver-tumour network.

    Builds :func:`nanosim.vasculature.generate.generate_liver_tumour` (``params``; default: the
    generator's 1 mm box with a 400 µm tumour), solves the flow, injects ``n_packets`` packets at
    the inlets in proportion to inflow (``s = 0``, weight 1), runs one untimed step (compilation,
    and packets spread into the network), then times ``n_steps`` steps of ``dt_s``.

    Returns
    -------
    dict
        ``backend``, ``n_packets``, ``n_segments``, ``n_steps``, ``dt_s``, ``seconds``,
        ``packet_steps_per_s`` (intravascular packets at the start of each step, summed over the
        steps, per second), ``crossings_per_s`` (node crossings per second),
        ``crossings_per_packet_step`` and ``vessel_fraction_left`` (share of packets still in
        the blood at the end).
    """
    from nanosim.flow import solve_flow
    from nanosim.vasculature.generate import generate_liver_tumour

    n = int(n_packets)
    net = generate_liver_tumour(params, seed=seed)
    graph = build_graph(net, solve_flow(net))
    table = inlet_table(graph)
    u = np.empty(n)
    rng.numpy_fill_uniform(u, seed, 0, DRAW_PLACEMENT)
    seg = table.choose(u)
    arrays = [seg, np.zeros(n), np.ones(n), np.full(n, VESSEL, np.uint8), np.arange(n, dtype=np.int64)]
    extravasated = np.zeros(graph.n_segments)
    rate = np.full(graph.n_segments, float(rate_per_s))
    sync = lambda: None  # noqa: E731
    if backend == "cupy":
        import cupy

        arrays = [cupy.asarray(a) for a in arrays]
        extravasated, rate = cupy.asarray(extravasated), cupy.asarray(rate)
        sync = cupy.cuda.get_current_stream().synchronize
    kw = dict(dt_s=dt_s, seed=seed, graph=graph, rate_per_s=rate, extravasated=extravasated)
    traverse(backend, *arrays, None, 0, **kw)
    sync()
    state = arrays[3]
    packet_steps = crossings = 0
    t0 = time.perf_counter()
    for step in range(1, n_steps + 1):
        packet_steps += int((state == VESSEL).sum())
        crossings += traverse(backend, *arrays, None, step, **kw)["crossings"]
    sync()
    seconds = time.perf_counter() - t0
    return {"backend": backend, "n_packets": n, "n_segments": graph.n_segments,
            "n_steps": n_steps, "dt_s": dt_s, "seconds": seconds,
            "packet_steps_per_s": packet_steps / seconds, "crossings_per_s": crossings / seconds,
            "crossings_per_packet_step": crossings / max(packet_steps, 1),
            "vessel_fraction_left": float((state == VESSEL).sum()) / n}
