"""Where the generated hepatic arterial tree branches relative to the tumour (``arterial_branch_rho``).

By default the branch points lie on the shell ``ρ = 1.05`` just outside the tumour; with
``arterial_branch_rho`` in ``[ρ_rim, 1)`` the branch points of the arteries that feed the tumour
lie inside its viable rim and those feeding only normal liver stay at 1.05 (``generate`` module
docstring, step 3). The tree is read here from the network alone: its inlet is the one arterial
node with a boundary condition, its terminals the arterial nodes that also touch a tumour or
sinusoid segment.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import nanosim
from nanosim.scenario.errors import ScenarioError
from nanosim.vasculature import WallType
from nanosim.vasculature.build import liver_tumour_params
from nanosim.vasculature.generate import LiverTumourParams, generate_liver_tumour, poiseuille_flow

OUTER = 1.05  # the documented default: a shell just outside the tumour
TACE = Path(__file__).resolve().parents[2] / "scenarios" / "hcc_plga_microspheres_tace.toml"
ARRAYS = ("node_pos_m", "seg_nodes", "seg_radius_m", "seg_length_m", "seg_wall", "seg_pore_radius_m",
          "bc_nodes", "bc_value")

SPHERE = {}  # the default 1 mm box with a 200 µm tumour and a 75 µm rim: ρ_rim = 0.625
ELLIPSOID = {"tumour_semi_axes_m": (250e-6, 200e-6, 180e-6), "necrotic_fraction": 0.3}
# half the terminals in the liver: branches that feed only normal liver exist
NORMAL_RICH = {"arterial_normal_terminal_fraction": 0.5}


def _mid_rim(p: LiverTumourParams) -> float:
    return 1.0 - 0.5 * p.rim_thickness_m / min(p.tumour_semi_axes_m)


def _tree(net):
    """(root, parent, terminals, is_tumour_terminal) of the arterial tree: ``parent[v]`` for every
    arterial node reached from the root (−1 at the root), ``terminals`` the arterial nodes that also
    touch a non-arterial segment."""
    art = net.seg_wall == WallType.ARTERY
    s = net.seg_nodes[art]
    root = np.intersect1d(np.unique(s), net.bc_nodes)
    assert root.size == 1, "one arterial inlet"
    root = int(root[0])
    touches = np.zeros((net.n_nodes, 2), bool)  # (touches a tumour segment, touches any non-artery segment)
    for col, sel in ((0, net.seg_wall == WallType.TUMOUR), (1, ~art)):
        touches[net.seg_nodes[sel].ravel(), col] = True
    adj = {}
    for a, b in s:
        adj.setdefault(int(a), []).append(int(b))
        adj.setdefault(int(b), []).append(int(a))
    parent, order = {root: -1}, [root]
    for v in order:  # breadth first; a tree, so every node is met once
        if touches[v, 1] and v != root:
            continue  # a terminal: the tree ends here
        for w in adj[v]:
            if w not in parent:
                parent[w] = v
                order.append(w)
    terminals = [v for v in order if touches[v, 1] and v != root]
    return root, parent, order, np.asarray(terminals), touches[:, 0]


def _branch_points(net):
    """{branch node: whether a tumour terminal lies below it} for every tree node with two
    children (the bifurcations; arc pieces have one)."""
    root, parent, order, terminals, tumour_node = _tree(net)
    term = set(terminals.tolist())
    children = {}
    for v, p in parent.items():
        if p >= 0:
            children.setdefault(p, []).append(v)
    feeds_tumour = {}
    for v in reversed(order):  # children before parents
        if v in term:
            feeds_tumour[v] = bool(tumour_node[v])
        else:
            feeds_tumour[v] = any(feeds_tumour[c] for c in children.get(v, []))
    return {v: feeds_tumour[v] for v in order if v != root and v not in term and len(children.get(v, [])) == 2}


def _generate(geometry: dict, rho_b: float | None, seed: int = 2):
    kw = dict(geometry) if rho_b is None else dict(geometry, arterial_branch_rho=rho_b)
    p = LiverTumourParams(**kw)
    return p, generate_liver_tumour(p, seed=seed)


@pytest.fixture(scope="module", params=[("sphere", SPHERE), ("ellipsoid", ELLIPSOID), ("normal_rich", NORMAL_RICH)],
                ids=lambda x: x[0])
def inner(request):
    """A network whose tumour arteries branch in the middle of the viable rim."""
    geometry = request.param[1]
    return _generate(geometry, _mid_rim(LiverTumourParams(**geometry)))


# --------------------------------------------------------------------------------------------
# placement


@pytest.mark.parametrize("geometry", [SPHERE, ELLIPSOID], ids=["sphere", "ellipsoid"])
@pytest.mark.parametrize("where", ["default", "mid_rim", "rim_inner_surface", "surface"])
def test_branch_points_lie_on_the_configured_shells(geometry, where):
    p0 = LiverTumourParams(**geometry)
    rho_b = {"default": None, "mid_rim": _mid_rim(p0), "rim_inner_surface": p0.rho_rim, "surface": 1.0}[where]
    p, net = _generate(geometry, rho_b)
    want_feed = OUTER if rho_b is None else rho_b
    bp = _branch_points(net)
    assert len(bp) > 20
    nodes = np.fromiter(bp, int)
    rho = p.rho(net.node_pos_m[nodes])
    want = np.where([bp[v] for v in nodes], want_feed, OUTER)
    on_shell = np.abs(rho - want) < 1e-9
    # a branch point whose shell point would coincide with its parent's is moved 30 % of the way
    # towards its terminals instead (module docstring); that is rare
    assert on_shell.mean() > 0.9, (rho[~on_shell], want[~on_shell])
    assert (want == want_feed).sum() > 20, "branches feeding the tumour"


def test_only_branches_feeding_normal_liver_alone_stay_outside(inner):
    p, net = inner
    bp = _branch_points(net)
    feeds = np.array(list(bp.values()))
    assert feeds.sum() > 0.5 * len(feeds), "most branches feed the tumour"
    if p.arterial_normal_terminal_fraction >= 0.5:
        assert (~feeds).sum() >= 5
    rho = p.rho(net.node_pos_m[np.fromiter(bp, int)])
    assert (rho[feeds] < 1.0).mean() > 0.9  # inside the tumour
    assert np.abs(rho[~feeds] - OUTER).max(initial=0.0) < 1e-9


def test_arteries_stay_out_of_the_core_and_arcs_change_radius_monotonically(inner):
    p, net = inner
    _root, parent, order, terminals, _ = _tree(net)
    term = set(terminals.tolist())
    rho_b = p.arterial_branch_rho
    inner_nodes = np.array([v for v in order if v not in term and parent[v] >= 0])
    rho = p.rho(net.node_pos_m[inner_nodes])
    # every tree node lies between the two shells, up to the rare moved branch point
    between = (rho >= rho_b - 1e-9) & (rho <= OUTER + 1e-9)
    assert between.mean() > 0.97, np.sort(rho[~between])
    # no artery reaches the necrotic core: sample along every arterial segment
    s = net.seg_nodes[net.seg_wall == WallType.ARTERY]
    t = np.linspace(0.0, 1.0, 9)[:, None, None]
    pts = (1 - t) * net.node_pos_m[s[:, 0]] + t * net.node_pos_m[s[:, 1]]
    assert p.rho(pts.reshape(-1, 3)).min() > p.necrotic_fraction


def test_only_the_arterial_tree_moves(inner):
    """Same terminals and the same liver and tumour vessels; only the tree's nodes move."""
    p, net = inner
    p0 = LiverTumourParams(**{k: getattr(p, k) for k in ("tumour_semi_axes_m", "necrotic_fraction",
                                                          "arterial_normal_terminal_fraction")})
    net0 = generate_liver_tumour(p0, seed=2)
    for n in (net, net0):
        assert (n.seg_wall == WallType.ARTERY).any()
    keep, keep0 = net.seg_wall != WallType.ARTERY, net0.seg_wall != WallType.ARTERY
    for name in ("seg_radius_m", "seg_length_m", "seg_wall", "seg_pore_radius_m"):
        np.testing.assert_array_equal(getattr(net, name)[keep], getattr(net0, name)[keep0], err_msg=name)
    np.testing.assert_array_equal(net.node_pos_m[net.seg_nodes[keep]], net0.node_pos_m[net0.seg_nodes[keep0]])
    t, t0 = _tree(net)[3], _tree(net0)[3]
    np.testing.assert_array_equal(np.sort(net.node_pos_m[t], axis=0), np.sort(net0.node_pos_m[t0], axis=0))
    assert net.meta["arterial_terminals_tumour"] == net0.meta["arterial_terminals_tumour"]
    assert net.meta["arterial_root_radius_m"] == net0.meta["arterial_root_radius_m"]


# --------------------------------------------------------------------------------------------
# connected, solvable, conserving


def test_network_is_connected_and_the_flow_is_conserved(inner):
    p, net = inner
    net.validate(require_bc=True)
    n = net.n_nodes
    a, b = net.seg_nodes.T
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    ncomp, label = connected_components(graph, directed=False)
    assert set(label.tolist()) <= set(label[net.bc_nodes].tolist()), "every piece holds a pressure condition"
    assert (np.bincount(net.seg_nodes.ravel(), minlength=n) > 0).all()
    (pr, q), = poiseuille_flow(net, 3.5e-3)
    assert np.isfinite(pr).all() and np.isfinite(q).all()
    # maximum principle: no node pressure outside the boundary pressures
    assert net.bc_value.min() * (1 - 1e-9) <= pr.min() and pr.max() <= net.bc_value.max() * (1 + 1e-9)
    net_in = np.zeros(n)
    np.add.at(net_in, b, q)
    np.add.at(net_in, a, -q)
    through = np.zeros(n)
    np.add.at(through, a, np.abs(q))
    np.add.at(through, b, np.abs(q))
    interior = np.ones(n, bool)
    interior[net.bc_nodes] = False
    assert np.abs(net_in[interior]).max() <= 1e-9 * through[interior].max()
    # what enters at the arterial inlet leaves through the terminals
    root, parent, _order, terminals, _ = _tree(net)
    art = np.flatnonzero(net.seg_wall == WallType.ARTERY)
    s = net.seg_nodes[art]
    into_term = sum(float(q[k] if s[i, 1] == v else -q[k]) for v in terminals
                    for i, k in enumerate(art) if v in s[i])
    out_of_root = sum(float(q[k] if s[i, 0] == root else -q[k]) for i, k in enumerate(art) if root in s[i])
    assert into_term == pytest.approx(out_of_root, rel=1e-9)
    assert out_of_root > 0


def test_calibration_still_meets_the_arterial_fraction(inner):
    p, net = inner
    cal = net.meta["calibration"]
    assert cal["status"] == "ok"
    assert cal["arterial_fraction"] == pytest.approx(p.arterial_fraction_of_tumour_inflow, abs=1e-6)


# --------------------------------------------------------------------------------------------
# defaults


def _digest(net) -> str:
    h = hashlib.sha256()
    for name in ARRAYS:
        h.update(np.ascontiguousarray(getattr(net, name)).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("geometry", [SPHERE, ELLIPSOID, {"box_size_m": (1.6e-3,) * 3,
                                                          "tumour_semi_axes_m": (500e-6,) * 3}],
                         ids=["sphere", "ellipsoid", "tace_box"])
def test_default_network_is_the_one_with_the_former_shell(geometry):
    """The default is the former fixed shell ρ = 1.05: the network is bit-identical to the one
    generated with that value given explicitly, and its branch points lie on it."""
    assert LiverTumourParams().arterial_branch_rho == OUTER
    p, net = _generate(geometry, None, seed=5)
    _, old = _generate(geometry, OUTER, seed=5)
    assert net.n_nodes == old.n_nodes and net.n_segments == old.n_segments
    assert _digest(net) == _digest(old)
    rho = p.rho(net.node_pos_m[np.fromiter(_branch_points(net), int)])
    assert (np.abs(rho - OUTER) < 1e-9).mean() > 0.9


def test_sampled_tumour_keeps_its_plane_by_default():
    p = LiverTumourParams(tumour_center_m=(1.2e-3, 0.5e-3, 0.5e-3), tumour_semi_axes_m=(600e-6,) * 3)
    assert not p.whole_tumour and p.arterial_branch_rho == OUTER
    generate_liver_tumour(p, seed=0).validate(require_bc=True)


# --------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("value, fix", [
    (0.5, r"must be in \[0\.625, 1\.05\]"),       # inside the viable core (ρ_rim = 0.625)
    (0.3, r"must be in \[0\.625, 1\.05\]"),       # in the necrotic core
    (1.2, r"must be in \[0\.625, 1\.05\]"),       # farther out than the default
    (float("nan"), "give a number"),
    ("0.9", "give a number"),
    (True, "give a number"),
])
def test_bad_values_name_the_field_and_the_range(value, fix):
    with pytest.raises(ValueError, match="arterial_branch_rho") as err:
        LiverTumourParams(arterial_branch_rho=value)
    assert err.match(fix)


def test_sampled_tumour_refuses_another_shell():
    with pytest.raises(ValueError, match="arterial_branch_rho = 0.9: applies to a whole tumour only"):
        LiverTumourParams(tumour_center_m=(1.2e-3, 0.5e-3, 0.5e-3), tumour_semi_axes_m=(600e-6,) * 3,
                          arterial_branch_rho=0.9)


def test_scenario_error_names_network_parameters_and_the_fix():
    d = tomllib.loads(TACE.read_text(encoding="utf-8"))
    d["network"]["parameters"] = {"arterial_branch_rho": 0.5}
    with pytest.raises(ScenarioError) as err:
        nanosim.load_scenario(d)
    text = str(err.value)
    assert "network.parameters" in text and "arterial_branch_rho = 0.5" in text
    assert "[0.85, 1.05]" in text and "middle of the rim" in text


def test_tace_scenario_branches_in_the_middle_of_the_rim():
    """The embolisation scenario puts the tumour's arterial branch points in the middle of its
    viable rim (the scenario file says why)."""
    p = liver_tumour_params(nanosim.load_scenario(TACE))
    assert p.arterial_branch_rho == pytest.approx(_mid_rim(p), abs=1e-12)
    assert p.rho_rim < p.arterial_branch_rho < 1.0
