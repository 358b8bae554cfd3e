"""Intravascular carrier packets (nanosim.kernels.vascular): transit, branching, decay, lodging.

The traversal is exact in time (no CFL condition), so deterministic checks are held to a few
roundings of float64. Statistical tests use fixed seeds, so each either always passes or always
fails; their tolerances are K_SE standard errors of a binomial proportion for the sample size
used (a correct kernel fails with probability 6e-5 for a random seed).
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nanosim.flow import solve_flow
from nanosim.kernels import vascular as V
from nanosim.kernels.compartments import EXITED, INACTIVE, LODGED, TISSUE, VESSEL
from nanosim.vasculature import canonical
from nanosim.vasculature.generate import generate_liver_tumour
from nanosim.vasculature.network import VesselNetwork, WallType

K_SE = 4
EPS = np.finfo(np.float64).eps


def _packets(seg, s=None, n=None):
    """Arrays (seg, s, weight, state, ids) of intravascular packets of weight 1."""
    seg = np.broadcast_to(np.asarray(seg, np.int64), (n,) if n else np.shape(seg)).copy()
    n = len(seg)
    s = np.zeros(n) if s is None else np.broadcast_to(np.asarray(s, float), (n,)).copy()
    return [seg, s, np.ones(n), np.full(n, VESSEL, np.uint8), np.arange(n, dtype=np.int64)]


def _step(backend, arrays, step, graph, ledger, radius=None, **kw):
    return V.traverse(backend, *arrays, radius, step, graph=graph, extravasated=ledger, **kw)


@pytest.fixture(scope="module")
def tumour():
    net = generate_liver_tumour()
    flow = solve_flow(net)
    return net, flow, V.build_graph(net, flow)


def _ring_graph():
    """Prescribed flows (m³/s): a ring 0→1→2→0 fed from inlet node 3, leaving at node 1 to
    node 4, which splits to node 5 (whose only exit, segment 6, is stagnant: not a boundary
    node) and to the outlet node 6."""
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [-1, 0, 0], [2, 0, 0], [3, 0, 0], [2, 1, 0],
                    [4, 0, 0]], float) * 1e-4
    nodes = np.array([[0, 1], [1, 2], [2, 0], [3, 0], [1, 4], [4, 5], [5, 7], [4, 6]])
    net = VesselNetwork(node_pos_m=pos, seg_nodes=nodes, seg_radius_m=np.full(8, 5e-6),
                        bc_nodes=np.array([3, 6]), bc_kind=np.zeros(2), bc_value=np.array([2e3, 1e3]))
    return V.build_graph(net, np.array([3.0, 2.0, 2.0, 1.0, 1.0, 0.5, 0.0, 0.5]) * 1e-13)


# --------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------


def test_graph_orientation_tables_and_inlets(tumour):
    net, flow, g = tumour
    q = flow.seg_flow_m3_per_s
    fl = g.seg_flowing
    up = np.where(q < 0, net.seg_nodes[:, 1], net.seg_nodes[:, 0])
    assert np.array_equal(g.seg_up_node[fl], up[fl])
    np.testing.assert_array_equal(g.seg_speed_m_per_s[fl], np.abs(flow.seg_velocity_m_per_s)[fl])
    assert np.all(g.seg_speed_m_per_s[~fl] == 0)
    # every flowing segment appears once, under its upstream node; fractions ∝ |Q|
    assert np.array_equal(np.sort(g.node_out_seg), np.flatnonzero(fl))
    deg = np.diff(g.node_out_ptr)
    owner = np.repeat(np.arange(g.n_nodes), deg)
    assert np.array_equal(g.seg_up_node[g.node_out_seg], owner)
    ends = g.node_out_ptr[1:][deg > 0] - 1
    assert np.all(g.node_out_cum[ends] == 1.0)  # exactly: the last choice always wins
    first = np.r_[True, owner[1:] != owner[:-1]]
    prev = np.where(first, 0.0, np.r_[0.0, g.node_out_cum[:-1]])
    frac = g.node_out_cum - prev
    tot = np.bincount(owner, weights=np.abs(q)[g.node_out_seg])[owner]
    np.testing.assert_allclose(frac, np.abs(q)[g.node_out_seg] / tot, rtol=1e-12, atol=1e-15)
    # inlets carry the boundary inflow; exits are the boundary outflow nodes
    bf = flow.boundary_flow_m3_per_s
    assert g.inlet_flow_m3_per_s.sum() == pytest.approx(bf[bf > 0].sum(), rel=1e-12)
    out_nodes = net.bc_nodes[bf < 0]
    assert np.all(g.node_exit[out_nodes] == 1) and np.all(deg[out_nodes] == 0)
    text = repr(g)
    assert "FlowGraph" in text and "inlets: " in text and "exit nodes" in text


def test_inlet_table_injection_and_arterial_selection(tumour):
    net, flow, g = tumour
    table = V.inlet_table(g)
    art = V.inlet_table(g, arterial_only=True)
    assert np.all(g.seg_wall[art.seg] == WallType.ARTERY) and len(art.seg) >= 1
    assert not np.all(g.seg_wall[table.seg] == WallType.ARTERY)
    assert table.cum[-1] == 1.0 and art.cum[-1] == 1.0
    # injection frequencies follow the inflow: each inlet's count is binomial(n, f)
    n = 200_000
    counts = np.bincount(np.searchsorted(table.seg, table.choose(np.random.default_rng(0).random(n))),
                         minlength=len(table.seg))
    f = table.flow_m3_per_s / table.total_flow_m3_per_s
    assert np.all(np.abs(counts / n - f) < K_SE * np.sqrt(f * (1 - f) / n) + 1 / n)
    capillary = canonical.straight_vessel(1e-3, 5e-6)
    with pytest.raises(ValueError, match="no arterial inlet"):
        V.inlet_table(V.build_graph(capillary, solve_flow(capillary)), arterial_only=True)


def test_reversed_flow_orientation_and_reorient():
    fwd = canonical.straight_vessel(1e-3, 5e-6, n_segments=2)
    rev = fwd.with_(bc_value=fwd.bc_value[::-1].copy())
    g1, g2 = (V.build_graph(n, solve_flow(n)) for n in (fwd, rev))
    assert list(g1.seg_up_node) == [0, 1] and list(g2.seg_up_node) == [1, 2]
    assert list(g2.inlet_seg) == [1] and list(g1.inlet_seg) == [0]
    seg, s = np.array([0, 1, 1]), np.array([1e-4, 2e-4, 3e-4])
    state = np.array([VESSEL, VESSEL, LODGED], np.uint8)
    V.reorient_positions(g1, g2, seg, s, state)
    np.testing.assert_allclose(s, [4e-4, 3e-4, 3e-4], rtol=1e-15)


def test_stagnant_segments_are_never_entered_and_exit_rules():
    g = _ring_graph()
    assert not g.seg_flowing[6] and g.seg_speed_m_per_s[6] == 0
    assert list(g.node_exit[[5, 6]]) == [0, 1]  # 5: only a stagnant exit (stuck); 6: outlet
    assert list(g.inlet_seg) == [3]
    assert 6 not in g.node_out_seg


# --------------------------------------------------------------------------------------------
# Transit time and decay
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_segments", [1, 4])
def test_straight_vessel_transit_is_exact(n_segments):
    length, n = 1e-3, 1000
    net = canonical.straight_vessel(length, 5e-6, n_segments=n_segments)
    g = V.build_graph(net, solve_flow(net))
    v = g.seg_speed_m_per_s[0]
    transit = length / v
    dt = transit / 2.5
    # packets spread along the vessel: distance to the outlet d, exit in step ⌈d/(v dt)⌉ − 1
    rs = np.random.default_rng(1)
    dist = rs.random(n) * length
    upstream = length - dist
    cut = np.cumsum(net.seg_length_m)
    seg = np.searchsorted(cut, upstream, side="right").clip(max=n_segments - 1)
    s = upstream - np.r_[0.0, cut][seg]
    arrays = _packets(seg, s)
    rate = np.linspace(1e-3, 4e-3, n_segments) / transit  # per-segment decay
    ledger = np.zeros(n_segments)
    exit_step = np.full(n, -1)
    for step in range(4):
        was = arrays[3] == VESSEL
        V.traverse("numba", *arrays, None, step, dt_s=dt, seed=0, graph=g, rate_per_s=rate,
                   extravasated=ledger)
        exit_step[was & (arrays[3] == EXITED)] = step
    want = np.ceil(dist / (v * dt)) - 1
    assert np.array_equal(exit_step, want)
    # the weight at exit is exp(−Σ k_j τ_j) with τ_j the time spent in segment j
    lo = np.r_[0.0, cut[:-1]]
    tau = np.clip(np.minimum(cut, length) - np.maximum(lo, upstream[:, None]), 0, None) / v
    expect = np.exp(-(tau * rate).sum(axis=1))
    np.testing.assert_allclose(arrays[2], expect, rtol=1e-13)  # rounding of τ and of the products
    assert np.allclose(ledger.sum() + arrays[2].sum(), n, rtol=1e-14)


def test_single_packet_positions_and_decay_step_by_step():
    length = 1e-3
    net = canonical.straight_vessel(length, 5e-6)
    g = V.build_graph(net, solve_flow(net))
    v = g.seg_speed_m_per_s[0]
    dt = length / v / 2.5
    k = 0.3 / dt
    arrays = _packets([0])
    ledger = np.zeros(1)
    for step, want_s in enumerate((v * dt, v * dt + v * dt)):
        V.traverse("numpy", *arrays, None, step, dt_s=dt, seed=0, graph=g, rate_per_s=k,
                   extravasated=ledger)
        assert arrays[1][0] == want_s and arrays[3][0] == VESSEL  # same operations: exact
        assert arrays[2][0] == pytest.approx(math.exp(-k * dt * (step + 1)), rel=4 * EPS)
    tot = V.traverse("numpy", *arrays, None, 2, dt_s=dt, seed=0, graph=g, rate_per_s=k,
                     extravasated=ledger)
    assert arrays[3][0] == EXITED and arrays[1][0] == length
    # three legs: 0.3 + 0.3 + the rest of the transit (0.5 dt) = k · L / v
    assert arrays[2][0] == pytest.approx(math.exp(-k * length / v), rel=8 * EPS)
    assert tot["exited_weight"] == arrays[2][0] and tot["crossings"] == 0
    assert ledger[0] + arrays[2][0] == pytest.approx(1.0, abs=2 * EPS)


# --------------------------------------------------------------------------------------------
# Branching
# --------------------------------------------------------------------------------------------


def _trifurcation():
    pos = np.array([[0, 0, 0], [1, 0, 0], [2, 1, 0], [2, 0, 0], [2, -1, 0]], float) * 1e-3
    net = VesselNetwork(node_pos_m=pos, seg_nodes=np.array([[0, 1], [1, 2], [1, 3], [1, 4]]),
                        seg_radius_m=np.array([10e-6, 6e-6, 8e-6, 4e-6]), bc_nodes=np.array([0, 2, 3, 4]),
                        bc_kind=np.zeros(4), bc_value=np.array([8000.0, 2000.0, 2000.0, 2000.0]))
    return net


@pytest.mark.parametrize("case", ["symmetric", "asymmetric", "trifurcation"])
def test_branch_fractions_follow_flow(case):
    if case == "trifurcation":
        net = _trifurcation()
    else:
        net = canonical.bifurcation(10e-6, None if case == "symmetric" else (8e-6, 5e-6))
    flow = solve_flow(net)
    g = V.build_graph(net, flow)
    n = 100_000
    arrays = _packets(0, n=n)
    dt = 10 * (g.seg_length_m / np.maximum(g.seg_speed_m_per_s, 1e-30)).max()
    tot = V.traverse("numba", *arrays, None, 0, dt_s=dt, seed=5, graph=g, rate_per_s=0.0,
                     extravasated=np.zeros(g.n_segments))
    assert np.all(arrays[3] == EXITED) and tot["exited_weight"] == n and tot["crossings"] == n
    q = np.abs(flow.seg_flow_m3_per_s[1:])
    f = q / q.sum()
    if case == "symmetric":
        assert f[0] == pytest.approx(0.5, rel=1e-12)
    got = np.bincount(arrays[0], minlength=len(q) + 1)[1:] / n
    # binomial proportion: standard error √(f(1 − f)/n) ≈ 1.6e-3 at f = 0.5
    assert np.all(np.abs(got - f) < K_SE * np.sqrt(f * (1 - f) / n)), (got, f)


# --------------------------------------------------------------------------------------------
# Conservation, backends, order, resume
# --------------------------------------------------------------------------------------------


def test_weight_is_conserved_on_a_liver_tumour_network(tumour):
    _, _, g = tumour
    per_step, steps = 5000, 25
    n = per_step * steps
    rs = np.random.default_rng(3)
    table = V.inlet_table(g)
    arrays = _packets(table.choose(rs.random(n)))
    arrays[3][:] = INACTIVE
    arrays[2][:] = rs.uniform(0.5, 2.0, n)  # unequal weights
    rate = rs.random(g.n_segments) * 5e-2  # 1/s: large losses over the path
    ledger = np.zeros(g.n_segments)
    exited = injected = 0.0
    for step in range(steps):
        new = slice(step * per_step, (step + 1) * per_step)
        arrays[3][new] = VESSEL
        injected += arrays[2][new].sum()
        exited += V.traverse("numba", *arrays, None, step, dt_s=2.0, seed=9, graph=g,
                             rate_per_s=rate, extravasated=ledger)["exited_weight"]
        inside = arrays[2][arrays[3] == VESSEL].sum()
        # each leg is exact to one rounding of the weight; the sums add ~√(#terms) ε
        assert abs(inside + ledger.sum() + exited - injected) <= 1e-13 * injected
    assert exited > 0.1 * injected and ledger.sum() > 0.1 * injected  # both sinks are exercised
    ex = arrays[3] == EXITED
    assert exited == pytest.approx(arrays[2][ex].sum(), rel=1e-13)


def _mixed(graph, n=4000, seed=12):
    rs = np.random.default_rng(seed)
    seg = rs.integers(0, graph.n_segments, n)
    arrays = _packets(seg, rs.random(n) * graph.seg_length_m[seg])
    arrays[2][:] = rs.uniform(0.1, 3.0, n)
    arrays[3][:] = rs.choice(np.array([VESSEL] * 4 + [TISSUE, LODGED], np.uint8), n)
    arrays[4][:] = rs.choice(2**45, n, replace=False)
    radius = np.where(rs.random(n) < 0.25, rs.uniform(4e-6, 12e-6, n), 0.0)
    rate = rs.random(graph.n_segments) * 2e-2
    return arrays, radius, rate


def _run(backend, arrays, radius, rate, graph, steps, first=0, dt=3.0, **kw):
    ledger = np.zeros(graph.n_segments)
    totals = [V.traverse(backend, *arrays, radius, k, dt_s=dt, seed=2**63 + 1, graph=graph,
                         rate_per_s=rate, extravasated=ledger, **kw)
              for k in range(first, first + steps)]
    return ledger, totals


def _assert_same(a, b, la, lb, ta, tb, weight_rtol):
    for k in (0, 1, 3, 4):
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_allclose(a[2], b[2], rtol=weight_rtol, atol=0)
    # the ledgers are sums in different orders
    np.testing.assert_allclose(la, lb, rtol=0, atol=1e-12 * max(la.max(), 1.0))
    for x, y in zip(ta, tb):
        assert {k: x[k] for k in V.TOTALS[1:]} == {k: y[k] for k in V.TOTALS[1:]}
        assert x["exited_weight"] == pytest.approx(y["exited_weight"], rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("case", ["tumour", "ring", "tumour float32"])
def test_numpy_reference_equals_numba(tumour, case):
    graph = tumour[2] if case.startswith("tumour") else _ring_graph()
    arrays, radius, rate = _mixed(graph)
    if case.endswith("float32"):  # compact packet arrays: float64 arithmetic, rounded on store
        arrays = [arrays[0].astype(np.int32), arrays[1].astype(np.float32),
                  arrays[2].astype(np.float32), arrays[3], arrays[4]]
        radius, rate = radius.astype(np.float32), rate.astype(np.float32)
    kw = dict(dt=40.0, max_crossings=7) if case == "ring" else {}
    a = [x.copy() for x in arrays]
    b = [x.copy() for x in arrays]
    la, ta = _run("numpy", a, radius, rate, graph, 4, **kw)
    lb, tb = _run("numba", b, radius, rate, graph, 4, **kw)
    # positions and branch choices use the same float64 operations: equal bit for bit; weights
    # pass through exp (NumPy vs LLVM libm, ≤ 1 ulp per leg here; 64 ulp allowed, or one ulp of
    # a float32 weight: its rounding may flip on such a difference)
    wtol = max(64 * EPS, float(np.finfo(arrays[2].dtype).eps))
    _assert_same(a, b, la, lb, ta, tb, wtol)
    busy = {k: sum(t[k] for t in ta) for k in V.TOTALS}
    if case != "ring":
        assert busy["lodged"] > 50 and busy["crossings"] > 5000 and busy["exited_weight"] > 0
    else:
        assert busy["stuck"] > 50 and busy["capped"] > 50
    assert np.array_equal(a[3] == TISSUE, arrays[3] == TISSUE)  # others untouched
    untouched = arrays[3] != VESSEL
    for k in range(5):
        np.testing.assert_array_equal(a[k][untouched], arrays[k][untouched])
    # the compiled source in plain Python (.py form) takes the same paths
    c = [x[:60].copy() for x in arrays]
    d = [x[:60].copy() for x in arrays]
    acc = np.zeros((1, graph.n_segments))
    one = dict(dt_s=3.0, seed=2**63 + 1, graph=graph, rate_per_s=rate, max_crossings=100)
    ids, rad, per, r0, rt, dt, sd, st, mc = V._host_prepare(*c, radius[:60], 0,
                                                             dict(one, extravasated=acc[0]))
    for i in range(60):
        V.move_packet.py(i, c[0], c[1], c[2], c[3], ids, rad, per, r0, *graph.kernel_arrays(), rt,
                         dt, sd, st, mc, acc, 0)
    V.numba_traverse(*d, radius[:60], 0, extravasated=np.zeros(graph.n_segments), **one)
    for k in (0, 1, 3):
        np.testing.assert_array_equal(c[k], d[k])
    np.testing.assert_allclose(c[2], d[2], rtol=wtol)


def test_order_independence_resume_and_seed(tumour):
    graph = tumour[2]
    arrays, radius, rate = _mixed(graph)
    a = [x.copy() for x in arrays]
    la, ta = _run("numba", a, radius, rate, graph, 6)
    # paths belong to ids, not to array slots: bit for bit per packet
    perm = np.random.default_rng(0).permutation(len(radius))
    b = [x[perm].copy() for x in arrays]
    lb, tb = _run("numba", b, radius[perm], rate, graph, 6)
    _assert_same([x[perm] for x in a], b, la, lb, ta, tb, 0.0)
    # a run split into calls continues the same streams
    c = [x.copy() for x in arrays]
    l1, t1 = _run("numba", c, radius, rate, graph, 3)
    saved = [np.array(x) for x in c]
    l2, t2 = _run("numba", saved, radius, rate, graph, 3, first=3)
    _assert_same(a, saved, la, l1 + l2, ta, t1 + t2, 0.0)
    # another seed takes other branches
    d = [x.copy() for x in arrays]
    ledger = np.zeros(graph.n_segments)
    V.traverse("numba", *d, radius, 0, dt_s=3.0, seed=2**63 + 2, graph=graph, rate_per_s=rate,
               extravasated=ledger)
    e = [x.copy() for x in arrays]
    V.traverse("numba", *e, radius, 0, dt_s=3.0, seed=2**63 + 1, graph=graph, rate_per_s=rate,
               extravasated=ledger)
    assert np.mean(d[0] != e[0]) > 0.05


def test_stuck_capped_and_stagnant_packets():
    g = _ring_graph()
    length = g.seg_length_m
    v = g.seg_speed_m_per_s
    k = 1e-2
    dt = 100 * (length / np.maximum(v, 1e-30))[v > 0].max()
    # seg 5 runs into node 5 (stuck); seg 0 into the ring's node 1 (capped at 0 crossings);
    # seg 6 is stagnant (stays); seg 7 ends at the outlet
    arrays = _packets([5, 0, 6, 7], [0.0, 0.0, 3e-5, 0.0])
    ledger = np.zeros(g.n_segments)
    for step in range(2):
        tot = V.traverse("numba", *arrays, None, step, dt_s=dt, seed=1, graph=g, rate_per_s=k,
                         extravasated=ledger, max_crossings=0)
        assert (tot["stuck"], tot["capped"], tot["crossings"]) == (1, 1, 0)
    assert list(arrays[3]) == [VESSEL, VESSEL, VESSEL, EXITED]
    assert list(arrays[0]) == [5, 0, 6, 7]
    np.testing.assert_array_equal(arrays[1], [length[5], length[0], 3e-5, length[7]])
    # waiting packets stay in the blood and keep decaying: two full steps
    np.testing.assert_allclose(arrays[2][:3], math.exp(-2 * k * dt), rtol=1e-14)
    assert arrays[2][3] == pytest.approx(math.exp(-k * length[7] / v[7]), rel=1e-14)
    assert ledger.sum() + arrays[2].sum() == pytest.approx(4.0, rel=1e-15)
    # one crossing allowed: the capped packet moves on by one segment, then waits again
    V.traverse("numba", *arrays, None, 2, dt_s=dt, seed=1, graph=g, rate_per_s=k,
               extravasated=ledger, max_crossings=1)
    assert arrays[0][1] in (1, 4) and arrays[1][1] == length[arrays[0][1]] and arrays[3][1] == VESSEL


# --------------------------------------------------------------------------------------------
# Embolic lodging
# --------------------------------------------------------------------------------------------


def test_spheres_lodge_in_the_first_narrower_segment():
    net = canonical.binary_tree(7, 40e-6, 1e-3, seed=3, fraction_jitter=0.3)
    g = V.build_graph(net, solve_flow(net))
    r = 6.5e-6  # the leaves' radii spread over 2.3–15 µm: spheres lodge at several depths
    n = 20_000
    arrays = _packets(0, n=n)
    radius = np.where(np.arange(n) % 4 == 0, 0.0, r)  # a quarter never lodges
    dt = 10 * (g.seg_length_m / g.seg_speed_m_per_s).sum()
    tot = V.traverse("numba", *arrays, radius, 0, dt_s=dt, seed=4, graph=g, rate_per_s=0.0,
                     extravasated=np.zeros(g.n_segments))
    seg, state = arrays[0], arrays[3]
    lodged = state == LODGED
    assert np.all(lodged | (state == EXITED)) and tot["lodged"] == lodged.sum()
    assert np.all(state[radius == 0] == EXITED)
    rad = net.seg_radius_m
    parent = (seg - 1) // 2
    # every lodged sphere sits in a segment narrower than itself whose parent is not
    assert np.all(rad[seg[lodged]] < r) and np.all(rad[parent[lodged]] >= r)
    assert np.all(arrays[1][lodged] == 0.0)
    # spheres that left passed only through segments at least as wide (Murray: radii shrink
    # down the tree, so the leaf they left by is the narrowest on their path)
    gone = (state == EXITED) & (radius > 0)
    assert np.all(rad[seg[gone]] >= r)
    # non-trivial: spheres stop at several depths, and some pass
    depth = np.floor(np.log2(seg[lodged] + 1)).astype(int)
    assert len(np.unique(depth)) >= 2 and gone.sum() > 100
    # lodged spheres stay put
    before = [x.copy() for x in arrays]
    V.traverse("numba", *arrays, radius, 1, dt_s=dt, seed=4, graph=g, rate_per_s=0.0,
               extravasated=np.zeros(g.n_segments))
    for x, y in zip(arrays, before):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------------------------
# Errors, CUDA twin, import hygiene, GPU
# --------------------------------------------------------------------------------------------


def test_argument_errors_name_the_argument(tumour):
    g = tumour[2]
    arrays = _packets([0, 1])
    kw = dict(dt_s=1.0, seed=0, graph=g, rate_per_s=0.0, extravasated=np.zeros(g.n_segments))
    tr = V.numba_traverse
    with pytest.raises(ValueError, match="weight must be one-dimensional"):
        tr(arrays[0], arrays[1], arrays[2][:1], *arrays[3:], None, 0, **kw)
    with pytest.raises(TypeError, match="state must be an int8 or uint8"):
        tr(*arrays[:3], arrays[3].astype(np.int32), arrays[4], None, 0, **kw)
    with pytest.raises(ValueError, match="seg of intravascular packets"):
        tr(np.array([0, g.n_segments]), *arrays[1:], None, 0, **kw)
    with pytest.raises(ValueError, match="rate_per_s must be finite and >= 0"):
        tr(*arrays, None, 0, **dict(kw, rate_per_s=-1.0))
    with pytest.raises(TypeError, match="extravasated must be a float64"):
        tr(*arrays, None, 0, **dict(kw, extravasated=np.zeros(g.n_segments, np.float32)))
    with pytest.raises(ValueError, match="radius must be finite"):
        tr(*arrays, -1e-6, 0, **kw)
    with pytest.raises(ValueError, match="dt_s"):
        tr(*arrays, None, 0, **dict(kw, dt_s=0.0))
    with pytest.raises(TypeError, match="graph must be a FlowGraph"):
        tr(*arrays, None, 0, **dict(kw, graph=tumour[0]))
    with pytest.raises(ValueError, match="unknown backend"):
        V.traverse("fortran", *arrays, None, 0, **kw)
    with pytest.raises(ValueError, match="segment flows for a network"):
        V.build_graph(tumour[0], np.zeros(3))


def test_cuda_kernel_matches_numba_in_simulator():
    script = Path(__file__).with_name("cudasim_vascular.py")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert res.stdout.count(" ok") == 2, res.stdout


def test_import_does_not_load_cuda():
    code = ("import sys, nanosim.kernels.vascular\n"
            "bad = [m for m in sys.modules if m.startswith(('numba.cuda', 'cupy'))]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.gpu
def test_cupy_backend_matches_numba(tumour):
    import cupy

    graph = tumour[2]
    arrays, radius, rate = _mixed(graph)
    a = [x.copy() for x in arrays]
    la, ta = _run("numba", a, radius, rate, graph, 4)
    b = [cupy.asarray(x) for x in arrays]
    lb = cupy.zeros(graph.n_segments)
    tb = [V.traverse("cupy", *b, cupy.asarray(radius), k, dt_s=3.0, seed=2**63 + 1, graph=graph,
                     rate_per_s=cupy.asarray(rate), extravasated=lb) for k in range(4)]
    b = [cupy.asnumpy(x) for x in b]
    # the device compiler may contract s + v·t into an FMA: positions to a few ulp of the
    # segment length; branch decisions flip only on an exact tie (probability ~1e-16 each)
    for k in (0, 3, 4):
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_allclose(a[1], b[1], rtol=0, atol=16 * EPS * graph.seg_length_m.max())
    np.testing.assert_allclose(a[2], b[2], rtol=256 * EPS)
    np.testing.assert_allclose(la, cupy.asnumpy(lb), rtol=0, atol=1e-12 * la.max())
    for x, y in zip(ta, tb):
        assert {k: x[k] for k in V.TOTALS[1:]} == {k: y[k] for k in V.TOTALS[1:]}
