"""Network blood flow: Poiseuille against hand-derived solutions, conservation, phase separation."""

import time

import numpy as np
import pytest

from nanosim.flow.network_flow import (
    FlowError,
    FlowSolution,
    flow_benchmark_network,
    solve_flow,
)
from nanosim.flow.viscosity import (
    pries_in_vivo_relative_viscosity,
    pries_phase_separation_fraction,
)
from nanosim.vasculature.network import BCKind, NetworkError, VesselNetwork

MU_P = 1.2e-3  # plasma viscosity used by the hand calculations, Pa·s
P, F = BCKind.PRESSURE, BCKind.FLOW


def _g(r, length, mu=MU_P):
    """Poiseuille conductance π r⁴ / (8 μ L), m³/(Pa·s)."""
    return np.pi * r**4 / (8 * mu * length)


def _net(pos, segs, radius, length, bc_nodes, bc_kind, bc_value, bc_h=None):
    return VesselNetwork(node_pos_m=np.asarray(pos, float), seg_nodes=np.asarray(segs), seg_radius_m=radius,
                         seg_length_m=length, bc_nodes=bc_nodes, bc_kind=bc_kind, bc_value=bc_value,
                         bc_haematocrit=bc_h)


def _imbalance(net, sol, flux):
    """Relative imbalance of ``flux`` (per segment, along seg_nodes[:,0]→[:,1]) at internal nodes.

    Prescribed inflows are counted as sources. Relative to the largest |flux| at the node, or to
    1e-12 × the largest in the network where that is smaller: flows below that are at the float64
    resolution of the pressure differences that carry them (dead ends).
    """
    n = net.n_nodes
    a, b = net.seg_nodes[:, 0], net.seg_nodes[:, 1]
    src = np.zeros(n)
    fl = net.bc_kind == F
    src[net.bc_nodes[fl]] = net.bc_value[fl]
    net_in = np.bincount(b, weights=flux, minlength=n) - np.bincount(a, weights=flux, minlength=n) + src
    big = np.zeros(n)
    np.maximum.at(big, a, np.abs(flux))
    np.maximum.at(big, b, np.abs(flux))
    big = np.maximum(np.maximum(big, np.abs(src)), 1e-12 * np.abs(flux).max())
    internal = np.ones(n, bool)
    internal[net.bc_nodes[net.bc_kind == P]] = False
    internal &= net.node_degree() > 0
    return float(np.max(np.abs(net_in[internal]) / big[internal]))


# ------------------------------------------------------------------------------------------------
# analytic cases


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_single_segment_plasma_is_poiseuille(solver):
    r, length, p0, p1 = 5e-6, 1e-3, 2500.0, 1200.0
    net = _net([[0, 0, 0], [length, 0, 0]], [[0, 1]], [r], [length], [0, 1], [P, P], [p0, p1])
    sol = solve_flow(net, viscosity_law="plasma", solver=solver)
    q = _g(r, length) * (p0 - p1)
    # one division and a few products apart: round-off
    assert sol.seg_flow_m3_per_s[0] == pytest.approx(q, rel=1e-12)
    np.testing.assert_allclose(sol.node_pressure_pa, [p0, p1], rtol=1e-14)
    assert sol.seg_velocity_m_per_s[0] == pytest.approx(q / (np.pi * r**2), rel=1e-12)
    assert sol.seg_wall_shear_stress_pa[0] == pytest.approx(4 * MU_P * q / (np.pi * r**3), rel=1e-12)
    # for a straight tube the wall shear stress is also r ΔP / (2 L)
    assert sol.seg_wall_shear_stress_pa[0] == pytest.approx(r * (p0 - p1) / (2 * length), rel=1e-12)
    np.testing.assert_allclose(sol.boundary_flow_m3_per_s, [q, -q], rtol=1e-12)


def test_single_segment_in_vivo_viscosity_and_reversed_orientation():
    r, length = 4e-6, 4e-4
    # segment stored from the low- to the high-pressure node: the flow is negative
    net = _net([[0, 0, 0], [length, 0, 0]], [[1, 0]], [r], [length], [0, 1], [P, P], [3000.0, 1000.0])
    sol = solve_flow(net, viscosity_law="in_vivo", haematocrit=0.3)
    mu = MU_P * float(pries_in_vivo_relative_viscosity(2 * r, 0.3))
    assert sol.seg_viscosity_pa_s[0] == pytest.approx(mu, rel=1e-14)
    assert sol.seg_flow_m3_per_s[0] == pytest.approx(-_g(r, length, mu) * 2000.0, rel=1e-12)
    assert sol.seg_velocity_m_per_s[0] < 0
    assert sol.seg_haematocrit[0] == 0.3


def test_symmetric_bifurcation():
    # parent 0→1, daughters 1→2 and 1→3 at equal outlet pressure
    r0, l0, r1, l1 = 6e-6, 5e-4, 4.5e-6, 3e-4
    p_in, p_out = 4000.0, 1500.0
    net = _net([[0, 0, 0], [1e-4, 0, 0], [2e-4, 1e-4, 0], [2e-4, -1e-4, 0]], [[0, 1], [1, 2], [1, 3]],
               [r0, r1, r1], [l0, l1, l1], [0, 2, 3], [P, P, P], [p_in, p_out, p_out])
    sol = solve_flow(net, viscosity_law="plasma")
    g0, g1 = _g(r0, l0), _g(r1, l1)
    p1 = (g0 * p_in + 2 * g1 * p_out) / (g0 + 2 * g1)  # mass balance at node 1
    assert sol.node_pressure_pa[1] == pytest.approx(p1, rel=1e-13)
    q0 = g0 * (p_in - p1)
    np.testing.assert_allclose(sol.seg_flow_m3_per_s, [q0, q0 / 2, q0 / 2], rtol=1e-12)
    assert sol.conservation_error < 1e-14


def test_asymmetric_bifurcation_series_parallel():
    # resistances R = 1/G: parent in series with the two daughters in parallel (same outlet p)
    r = np.array([7e-6, 3e-6, 5e-6])
    length = np.array([4e-4, 2.5e-4, 6e-4])
    net = _net([[0, 0, 0], [1e-4, 0, 0], [2e-4, 1e-4, 0], [2e-4, -1e-4, 0]], [[0, 1], [1, 2], [3, 1]],
               r, length, [0, 2, 3], [P, P, P], [3500.0, 1000.0, 1000.0])
    sol = solve_flow(net, viscosity_law="plasma")
    res = 1 / _g(r, length)
    r_tot = res[0] + res[1] * res[2] / (res[1] + res[2])
    q = 2500.0 / r_tot
    q1 = q * res[2] / (res[1] + res[2])
    q2 = q * res[1] / (res[1] + res[2])
    # segment 2 is stored 3→1, against the flow
    np.testing.assert_allclose(sol.seg_flow_m3_per_s, [q, q1, -q2], rtol=1e-12)
    assert sol.node_pressure_pa[1] == pytest.approx(3500.0 - q * res[0], rel=1e-12)
    assert sol.boundary_flow_m3_per_s.sum() == pytest.approx(0.0, abs=1e-12 * q)


def test_prescribed_inflow_chain():
    # inflow Q at node 0, chain 0–1–2, pressure at node 2: p0 = p2 + Q (R01 + R12)
    r = np.array([5e-6, 8e-6])
    length = np.array([3e-4, 7e-4])
    q_in = 3e-13
    net = _net([[0, 0, 0], [3e-4, 0, 0], [9e-4, 0, 0]], [[0, 1], [1, 2]], r, length,
               [0, 2], [F, P], [q_in, 1300.0])
    sol = solve_flow(net, viscosity_law="in_vivo")
    mu = MU_P * pries_in_vivo_relative_viscosity(2 * r, 0.45)
    res = 1 / _g(r, length, mu)
    np.testing.assert_allclose(sol.seg_flow_m3_per_s, [q_in, q_in], rtol=1e-12)
    np.testing.assert_allclose(sol.node_pressure_pa, [1300 + q_in * (res[0] + res[1]), 1300 + q_in * res[1], 1300],
                               rtol=1e-12)
    np.testing.assert_allclose(sol.boundary_flow_m3_per_s, [q_in, -q_in], rtol=1e-12)


def test_isolated_nodes_are_ignored_and_repr():
    net = _net([[0, 0, 0], [1e-4, 0, 0], [5e-4, 5e-4, 0], [2e-4, 0, 0]], [[0, 1], [1, 3]], [5e-6, 5e-6],
               [1e-4, 1e-4], [0, 3], [P, P], [2000.0, 1000.0])
    sol = solve_flow(net)
    assert np.isnan(sol.node_pressure_pa[2])
    assert sol.node_pressure_pa[1] == pytest.approx(1500.0, rel=1e-13)  # two equal resistances
    text = repr(sol)
    assert "total inflow" in text and "capillary" in text and "µm/s" in text
    s = sol.summary()
    assert s["pressure_min_pa"] == 1000.0 and s["pressure_max_pa"] == 2000.0
    assert s["total_inflow_m3_per_s"] == pytest.approx(sol.seg_flow_m3_per_s[0], rel=1e-12)


# ------------------------------------------------------------------------------------------------
# larger networks


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_conservation_on_random_network(solver):
    net = flow_benchmark_network(4000, seed=3)
    assert (net.bc_kind == F).any() and (net.bc_kind == P).any()
    sol = solve_flow(net, solver=solver)
    assert isinstance(sol, FlowSolution)
    assert _imbalance(net, sol, sol.seg_flow_m3_per_s) <= 1e-10
    assert sol.conservation_error <= 1e-10
    # global balance: what enters leaves (up to the node-wise round-off, summed)
    bf = sol.boundary_flow_m3_per_s
    assert abs(bf.sum()) <= 1e-10 * bf[bf > 0].sum()
    # flows are Poiseuille of the reported pressures (to the float64 resolution of pressure
    # differences: ε·p/Δp, with p ≤ 4000 Pa; the flow correction moves flows by that much)
    a, b = net.seg_nodes.T
    dp = sol.node_pressure_pa[a] - sol.node_pressure_pa[b]
    q_p = sol.seg_conductance_m3_per_pa_s * dp
    tol = 1e-12 * sol.seg_conductance_m3_per_pa_s * 4000.0
    assert np.all(np.abs(q_p - sol.seg_flow_m3_per_s) <= tol)


def test_direct_and_cg_agree_and_auto_picks():
    net = flow_benchmark_network(20000, seed=1)
    s_lu = solve_flow(net, solver="direct")
    s_cg = solve_flow(net, solver="cg")
    s_auto = solve_flow(net)
    assert s_auto.info["solver"] == "cg"  # > AUTO_CG_THRESHOLD unknowns
    # both solve to round-off relative to the largest flow (CG residual 1e-12, then corrected)
    scale = np.abs(s_lu.seg_flow_m3_per_s).max()
    np.testing.assert_allclose(s_cg.seg_flow_m3_per_s, s_lu.seg_flow_m3_per_s, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(s_cg.node_pressure_pa, s_lu.node_pressure_pa, rtol=1e-9)


def test_velocity_ranges_are_capillary_like():
    # sanity, not validation: capillary speeds of the synthetic lattice lie between tumour
    # (≈ 30 µm/s) and healthy (≈ 0.55 mm/s) orders of magnitude (Dogra 2020) — within 0.1×–10×
    sol = solve_flow(flow_benchmark_network(5000, seed=0))
    med = np.median(np.abs(sol.seg_velocity_m_per_s))
    assert 3e-6 < med < 5.5e-3


def test_chain_falls_back_to_direct_in_auto():
    # a long chain converges slowly with Jacobi-CG; auto must still solve it exactly
    n = 12001
    x = np.linspace(0, 1.2e-2, n)
    pos = np.stack([x, np.zeros(n), np.zeros(n)], axis=1)
    segs = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)
    net = _net(pos, segs, np.full(n - 1, 5e-6), np.full(n - 1, 1e-6), [0, n - 1], [P, P], [2000.0, 1000.0])
    sol = solve_flow(net, viscosity_law="plasma")
    assert sol.info["solver"] == "direct"  # CG hit its iteration cap and LU took over
    q = _g(5e-6, 1e-6 * (n - 1)) * 1000.0
    np.testing.assert_allclose(sol.seg_flow_m3_per_s, q, rtol=1e-9)  # LU on a chain: round-off growing ~ n ε
    np.testing.assert_allclose(sol.node_pressure_pa, 2000.0 - 1000.0 * x / x[-1], rtol=1e-9)


# ------------------------------------------------------------------------------------------------
# phase separation


def _tree_network(seed=0, depth=3):
    """Arterial binary tree → venous binary tree (mirrored), leaves joined by capillaries."""
    rng = np.random.default_rng(seed)
    pos = [[-1e-4, 0, 0], [0.0, 0, 0]]  # inlet node 0 feeds the first bifurcation at node 1
    segs, rad = [[0, 1]], [14e-6]
    level = [1]
    r0 = 12e-6
    art_leaves = None
    for d in range(depth):
        nxt = []
        for node in level:
            for s in (-1, 1):
                pos.append([pos[node][0] + 1e-4, pos[node][1] + s * 1e-4 / (d + 1), rng.uniform(-1e-5, 1e-5)])
                segs.append([node, len(pos) - 1])
                rad.append(r0 * 0.8 ** (d + 1) * rng.uniform(0.7, 1.3))
                nxt.append(len(pos) - 1)
        level = nxt
    art_leaves = level
    ven = []
    for node in art_leaves:
        pos.append([pos[node][0] + 1e-4, pos[node][1], pos[node][2]])
        segs.append([node, len(pos) - 1])
        rad.append(4e-6 * rng.uniform(0.8, 1.2))
        ven.append(len(pos) - 1)
    level = ven
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            pos.append([pos[level[i]][0] + 1e-4, 0.5 * (pos[level[i]][1] + pos[level[i + 1]][1]), 0.0])
            segs.append([level[i], len(pos) - 1])
            segs.append([level[i + 1], len(pos) - 1])
            rad += [6e-6 * rng.uniform(0.8, 1.2)] * 2
            nxt.append(len(pos) - 1)
        level = nxt
    pos.append([pos[level[0]][0] + 1e-4, 0, 0])
    segs.append([level[0], len(pos) - 1])
    rad.append(14e-6)
    out = len(pos) - 1
    return VesselNetwork(node_pos_m=np.array(pos), seg_nodes=np.array(segs), seg_radius_m=np.array(rad),
                         bc_nodes=[0, out], bc_kind=[P, P], bc_value=[5000.0, 1500.0], bc_haematocrit=[0.42, 0.45])


def test_phase_separation_conserves_red_cells_and_converges():
    net = _tree_network(seed=2)
    sol = solve_flow(net, phase_separation=True, relaxation=0.6, haematocrit_tol=1e-11)
    q, h = sol.seg_flow_m3_per_s, sol.seg_haematocrit
    assert _imbalance(net, sol, q) <= 1e-10
    # red-cell flux Q·H_D in = out at every internal node (mixing and splitting conserve it exactly
    # up to round-off)
    assert _imbalance(net, sol, q * h) <= 1e-10
    assert sol.rbc_conservation_error <= 1e-10
    # phase separation happened (haematocrits differ from the feed) and is converged: the
    # viscosity of each segment is the law's at its haematocrit, to the haematocrit tolerance
    # times |dμ/dH| (≲ 10 μ_p)
    assert h.max() - h.min() > 0.02
    mu = MU_P * pries_in_vivo_relative_viscosity(2 * net.seg_radius_m, h)
    np.testing.assert_allclose(sol.seg_viscosity_pa_s, mu, rtol=1e-9)
    # the inlet's red cells reach the outlet: whole-network red-cell balance
    assert q[-1] * h[-1] == pytest.approx(q[0] * 0.42, rel=1e-10)
    assert sol.info["coupling_iterations"] > 1


def test_phase_separation_split_follows_the_law_at_each_bifurcation():
    net = _tree_network(seed=5)
    sol = solve_flow(net, phase_separation=True, haematocrit_tol=1e-12)
    q, h, d = sol.seg_flow_m3_per_s, sol.seg_haematocrit, 2 * net.seg_radius_m
    a = net.seg_nodes[:, 0]
    checked = 0
    for node in range(net.n_nodes):
        out = np.flatnonzero(a == node)
        inn = np.flatnonzero(net.seg_nodes[:, 1] == node)
        if len(out) == 2 and len(inn) == 1 and np.all(q[out] > 0) and q[inn[0]] > 0:
            fqb = q[out[0]] / q[out].sum()
            fqe = pries_phase_separation_fraction(fqb, d[out[0]], d[out[1]], d[inn[0]], h[inn[0]])
            # the vectorised law and the compiled split agree to round-off
            assert q[out[0]] * h[out[0]] == pytest.approx(fqe * q[inn[0]] * h[inn[0]], rel=1e-10)
            checked += 1
    assert checked == 7  # the arterial tree of depth 3 has 1 + 2 + 4 diverging bifurcations


def test_symmetric_bifurcation_equal_haematocrit():
    net = _net([[0, 0, 0], [1e-4, 0, 0], [2e-4, 1e-4, 0], [2e-4, -1e-4, 0]], [[0, 1], [1, 2], [1, 3]],
               [6e-6, 4e-6, 4e-6], [1e-4, 1.2e-4, 1.2e-4], [0, 2, 3], [P, P, P], [4000.0, 1500.0, 1500.0],
               bc_h=[0.4, 0.45, 0.45])
    sol = solve_flow(net, phase_separation=True)
    h = sol.seg_haematocrit
    # FQ_B = 1/2 and equal diameters: FQ_E = 1/2, so both daughters carry the feed's 0.4
    np.testing.assert_allclose(h, 0.4, rtol=1e-12)


def test_plasma_skimming_smaller_flow_fraction_gets_lower_haematocrit():
    # equal daughter diameters, daughter 1→2 three times longer: it takes the smaller flow share
    net = _net([[0, 0, 0], [1e-4, 0, 0], [2e-4, 1e-4, 0], [2e-4, -1e-4, 0]], [[0, 1], [1, 2], [1, 3]],
               [6e-6, 4e-6, 4e-6], [1e-4, 3.6e-4, 1.2e-4], [0, 2, 3], [P, P, P], [4000.0, 1500.0, 1500.0])
    sol = solve_flow(net, phase_separation=True)
    q, h = sol.seg_flow_m3_per_s, sol.seg_haematocrit
    assert q[1] < q[2]
    assert h[1] < h[0] < h[2]
    assert q[0] * h[0] == pytest.approx(q[1] * h[1] + q[2] * h[2], rel=1e-12)
    # without phase separation, constant haematocrit everywhere
    flat = solve_flow(net, haematocrit=0.3)
    np.testing.assert_array_equal(flat.seg_haematocrit, 0.3)


def test_phase_separation_non_convergence_is_reported():
    net = _tree_network(seed=2)
    with pytest.raises(Exception, match="did not converge.*max_iterations"):
        solve_flow(net, phase_separation=True, max_iterations=2, haematocrit_tol=1e-14)


def test_phase_separation_converges_on_generated_liver_network():
    # a dense sinusoid lattice with loops + arterial tree + tumour network, where plain
    # under-relaxation oscillates (period 2) and stalls near a change of 1e-2
    from nanosim.vasculature.generate import LiverTumourParams, generate_liver_tumour
    from nanosim.vasculature.network import WallType

    net = generate_liver_tumour(LiverTumourParams(), seed=1)
    sol = solve_flow(net, phase_separation=True)
    q, h = sol.seg_flow_m3_per_s, sol.seg_haematocrit
    assert sol.info["haematocrit_change"] < 1e-10
    assert sol.info["newton_steps"] >= 1  # the Newton stage did the final convergence
    assert _imbalance(net, sol, q) <= 1e-10
    # red-cell flux conserved at every internal node: mixing and splitting are exact, so round-off
    assert _imbalance(net, sol, q * h) <= 1e-10
    assert sol.rbc_conservation_error <= 1e-10
    # self-consistency: in segments carrying ≥ 1 % of the flow at their busier end the returned
    # haematocrit differs from the one the viscosities were computed at by ≤ 1e-10 / 0.01 = 1e-8,
    # and |d ln μ_rel / dH| ≲ 5, so the viscosity is the law's to ≲ 5e-8 relative
    a, b = net.seg_nodes.T
    big = np.zeros(net.n_nodes)
    np.maximum.at(big, a, np.abs(q))
    np.maximum.at(big, b, np.abs(q))
    share = np.abs(q) / np.maximum(big[a], big[b])
    sel = share >= 1e-2
    mu = MU_P * pries_in_vivo_relative_viscosity(2 * net.seg_radius_m[sel], h[sel])
    np.testing.assert_allclose(sol.seg_viscosity_pa_s[sel], mu, rtol=1e-7)
    # plasma skimming: the tumour's many small side branches take small flow shares and get fewer
    # red cells, so their mean haematocrit is below the inflow's (measured 0.41 vs 0.45 at seed 1;
    # 0.42 and 0.43 at seeds 2 and 3), and some get none at all (FQ_B below the threshold X0)
    tum = net.seg_wall == WallType.TUMOUR
    h_in = float(net.bc_haematocrit[0])
    assert np.all(net.bc_haematocrit == h_in)
    assert h[tum].mean() < h_in - 0.02
    assert np.any(h[tum] == 0.0)


def test_phase_separation_non_convergence_on_liver_network_is_reported():
    from nanosim.vasculature.generate import LiverTumourParams, generate_liver_tumour

    net = generate_liver_tumour(LiverTumourParams(), seed=1)
    # 3 relaxation steps reach a change of ~1e-1, far from the 1e-10 target: a FlowError naming
    # the setting, never a silently unconverged state
    with pytest.raises(FlowError, match="did not converge in 3 iterations.*raise max_iterations"):
        solve_flow(net, phase_separation=True, max_iterations=3)


# ------------------------------------------------------------------------------------------------
# errors


def test_piece_without_pressure_bc_is_named():
    # two pieces: 0–1 has pressures, 2–3 has only a prescribed inflow
    net = _net([[0, 0, 0], [1e-4, 0, 0], [0, 1e-4, 0], [1e-4, 1e-4, 0]], [[0, 1], [2, 3]], [5e-6, 5e-6],
               [1e-4, 1e-4], [0, 1, 2], [P, P, F], [2000.0, 1000.0, 1e-13])
    with pytest.raises(NetworkError, match="node 2.*no pressure boundary condition"):
        solve_flow(net)


def test_flow_bc_on_bare_node_and_thin_vessel_and_bad_arguments():
    net = _net([[0, 0, 0], [1e-4, 0, 0], [5e-4, 0, 0]], [[0, 1]], [5e-6], [1e-4], [0, 1, 2], [P, P, F],
               [2000.0, 1000.0, 1e-13])
    with pytest.raises(NetworkError, match="node 2 .*no segment"):
        solve_flow(net)
    thin = _net([[0, 0, 0], [1e-4, 0, 0]], [[0, 1]], [0.5e-6], [1e-4], [0, 1], [P, P], [2000.0, 1000.0])
    with pytest.raises(NetworkError, match="segment 0 .*viscosity_law='plasma'"):
        solve_flow(thin)
    assert solve_flow(thin, viscosity_law="plasma").seg_flow_m3_per_s[0] > 0
    with pytest.raises(ValueError, match="viscosity_law"):
        solve_flow(thin, viscosity_law="newtonian")
    with pytest.raises(ValueError, match="haematocrit"):
        solve_flow(thin, viscosity_law="plasma", haematocrit=1.0)


# ------------------------------------------------------------------------------------------------
# GPU and scale


@pytest.mark.gpu
def test_cupy_matches_numpy():
    net = flow_benchmark_network(20000, seed=4)
    ref = solve_flow(net, backend="numpy", solver="direct")
    gpu = solve_flow(net, backend="cupy")
    assert gpu.info["solver"] == "cg" and gpu.info["backend"] == "cupy"
    scale = np.abs(ref.seg_flow_m3_per_s).max()
    # CG to 1e-12 relative residual, then flow corrections: round-off relative to the largest flow
    np.testing.assert_allclose(gpu.seg_flow_m3_per_s, ref.seg_flow_m3_per_s, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(gpu.node_pressure_pa, ref.node_pressure_pa, rtol=1e-9)
    assert gpu.conservation_error <= 1e-10
    ps = solve_flow(_tree_network(seed=2), backend="cupy", phase_separation=True)
    ps_ref = solve_flow(_tree_network(seed=2), backend="numpy", phase_separation=True)
    np.testing.assert_allclose(ps.seg_haematocrit, ps_ref.seg_haematocrit, rtol=1e-8)


@pytest.mark.slow
def test_million_segment_network():
    net = flow_benchmark_network(1_000_000, seed=0)
    assert net.n_segments > 900_000
    t = time.perf_counter()
    sol = solve_flow(net)
    elapsed = time.perf_counter() - t
    print(f"solve_flow on {net.n_segments} segments: {elapsed:.1f} s ({sol.info})")
    assert sol.conservation_error <= 1e-10
    assert _imbalance(net, sol, sol.seg_flow_m3_per_s) <= 1e-10
