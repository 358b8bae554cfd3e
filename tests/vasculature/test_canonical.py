"""Canonical geometries: Murray's law, straight vessel, bifurcation, binary tree."""

import math

import numpy as np
import pytest

from nanosim.vasculature import (
    BCKind,
    NetworkError,
    VesselNetwork,
    WallType,
    bifurcation,
    binary_tree,
    murray_child_radius,
    straight_vessel,
)

# Geometry is built from sums and products of a few doubles: agreement to 1e-12 relative leaves
# room for a few rounding steps, while any real geometric error is many orders larger.
RTOL = 1e-12


def _angle_deg(u, v):
    c = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return math.degrees(math.acos(np.clip(c, -1.0, 1.0)))


# --------------------------------------------------------------------------------------------
# Murray's law
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fraction, exponent", [(0.5, 3.0), (0.2, 3.0), (0.7, 2.5), (0.5, 2.0)])
def test_murray_children_conserve_r_to_the_x(fraction, exponent):
    rp = 40e-6
    r1, r2 = murray_child_radius(rp, fraction, exponent)
    assert r1**exponent + r2**exponent == pytest.approx(rp**exponent, rel=RTOL)
    assert r1**exponent / rp**exponent == pytest.approx(fraction, rel=RTOL)


def test_murray_symmetric_children_are_parent_over_cube_root_of_two():
    r1, r2 = murray_child_radius(10e-6)
    assert r1 == r2
    assert r1 == pytest.approx(10e-6 / 2 ** (1 / 3), rel=RTOL)


@pytest.mark.parametrize("kwargs, word", [({"fraction": 0.0}, "fraction"), ({"fraction": 1.0}, "fraction"),
                                          ({"exponent": -3.0}, "exponent"), ({"parent_radius_m": 0.0}, "parent_radius_m")])
def test_murray_rejects_bad_arguments(kwargs, word):
    args = {"parent_radius_m": 1e-5, **kwargs}
    with pytest.raises(NetworkError, match=word):
        murray_child_radius(**args)


# --------------------------------------------------------------------------------------------
# straight vessel
# --------------------------------------------------------------------------------------------
def test_straight_vessel_single_segment():
    net = straight_vessel(2e-3, 4e-6, p_in_pa=3000.0, p_out_pa=1000.0)
    assert (net.n_nodes, net.n_segments) == (2, 1)
    np.testing.assert_array_equal(net.node_pos_m, [[0, 0, 0], [2e-3, 0, 0]])
    assert net.seg_radius_m[0] == 4e-6 and net.seg_length_m[0] == 2e-3
    assert net.seg_wall[0] == WallType.CAPILLARY
    np.testing.assert_array_equal(net.bc_nodes, [0, 1])
    np.testing.assert_array_equal(net.bc_kind, [BCKind.PRESSURE, BCKind.PRESSURE])
    np.testing.assert_array_equal(net.bc_value, [3000.0, 1000.0])
    net.validate(require_bc=True)


def test_straight_vessel_split_into_collinear_pieces_along_a_direction():
    start = np.array([1e-3, 2e-3, -1e-3])
    net = straight_vessel(1e-3, 5e-6, start_m=start, direction=(0, 3, 4), n_segments=4, wall="tumour")
    assert (net.n_nodes, net.n_segments) == (5, 4)
    unit = np.array([0, 0.6, 0.8])
    expected = start + np.outer(np.arange(5) * 0.25e-3, unit)
    np.testing.assert_allclose(net.node_pos_m, expected, rtol=RTOL, atol=1e-18)
    np.testing.assert_allclose(net.seg_length_m, 0.25e-3, rtol=RTOL)
    np.testing.assert_allclose(net.seg_length_m, net.chord_length_m(), rtol=RTOL)
    assert net.seg_length_m.sum() == pytest.approx(1e-3, rel=RTOL)
    np.testing.assert_array_equal(net.seg_nodes, [[0, 1], [1, 2], [2, 3], [3, 4]])
    np.testing.assert_array_equal(net.node_degree(), [1, 2, 2, 2, 1])
    np.testing.assert_array_equal(net.bc_nodes, [0, 4])
    assert (net.seg_wall == WallType.TUMOUR).all()


@pytest.mark.parametrize("kwargs, word", [
    ({"length_m": 0.0}, "length_m"), ({"radius_m": -1e-6}, "radius_m"), ({"n_segments": 0}, "n_segments"),
    ({"direction": (0, 0, 0)}, "direction"), ({"wall": "bone"}, "wall type"), ({"p_in_pa": math.nan}, "p_in_pa"),
])
def test_straight_vessel_rejects_bad_arguments(kwargs, word):
    args = {"length_m": 1e-3, "radius_m": 5e-6, **kwargs}
    with pytest.raises(NetworkError, match=word):
        straight_vessel(**args)


# --------------------------------------------------------------------------------------------
# bifurcation
# --------------------------------------------------------------------------------------------
def test_symmetric_bifurcation_geometry_and_boundary_conditions():
    net = bifurcation(20e-6, lengths_m=(2e-3, 1e-3, 1e-3), angle_deg=70.0, p_in_pa=9000.0, p_out_pa=3000.0)
    assert (net.n_nodes, net.n_segments) == (4, 3)
    np.testing.assert_array_equal(net.seg_nodes, [[0, 1], [1, 2], [1, 3]])
    r = 20e-6 / 2 ** (1 / 3)
    np.testing.assert_allclose(net.seg_radius_m, [20e-6, r, r], rtol=RTOL)
    np.testing.assert_allclose(net.node_pos_m[1], [2e-3, 0, 0], rtol=RTOL)
    np.testing.assert_allclose(net.chord_length_m(), [2e-3, 1e-3, 1e-3], rtol=RTOL)
    np.testing.assert_allclose(net.seg_length_m, net.chord_length_m(), rtol=RTOL)
    c1 = net.node_pos_m[2] - net.node_pos_m[1]
    c2 = net.node_pos_m[3] - net.node_pos_m[1]
    assert _angle_deg(c1, c2) == pytest.approx(70.0, abs=1e-9)
    assert _angle_deg(c1, [1, 0, 0]) == pytest.approx(35.0, abs=1e-9)
    assert _angle_deg(c2, [1, 0, 0]) == pytest.approx(35.0, abs=1e-9)
    np.testing.assert_allclose(net.node_pos_m[:, 2], 0.0, atol=1e-18)  # children in the x-y plane
    np.testing.assert_array_equal(net.bc_nodes, [0, 2, 3])
    np.testing.assert_array_equal(net.bc_value, [9000.0, 3000.0, 3000.0])
    assert (net.bc_kind == BCKind.PRESSURE).all()
    assert (net.seg_wall == WallType.ARTERY).all()
    net.validate(require_bc=True)


def test_asymmetric_bifurcation_keeps_given_radii_lengths_and_outlet_pressures():
    net = bifurcation(30e-6, child_radii_m=(25e-6, 15e-6), lengths_m=(1e-3, 3e-3, 0.5e-3), angle_deg=90.0,
                      p_out_pa=(2000.0, 2500.0), direction=(0, 0, 1))
    np.testing.assert_array_equal(net.seg_radius_m, [30e-6, 25e-6, 15e-6])
    np.testing.assert_allclose(net.chord_length_m(), [1e-3, 3e-3, 0.5e-3], rtol=RTOL)
    np.testing.assert_allclose(net.node_pos_m[1], [0, 0, 1e-3], rtol=RTOL, atol=1e-18)
    c1 = net.node_pos_m[2] - net.node_pos_m[1]
    c2 = net.node_pos_m[3] - net.node_pos_m[1]
    assert _angle_deg(c1, c2) == pytest.approx(90.0, abs=1e-9)
    np.testing.assert_array_equal(net.bc_value[1:], [2000.0, 2500.0])


@pytest.mark.parametrize("kwargs, word", [
    ({"angle_deg": 180.0}, "angle_deg"), ({"angle_deg": 0.0}, "angle_deg"),
    ({"lengths_m": (1e-3, 1e-3)}, "lengths_m"), ({"lengths_m": (1e-3, 0.0, 1e-3)}, r"lengths_m\[1\]"),
    ({"child_radii_m": (1e-6,)}, "child_radii_m"), ({"p_out_pa": (1.0, 2.0, 3.0)}, "p_out_pa"),
])
def test_bifurcation_rejects_bad_arguments(kwargs, word):
    with pytest.raises(NetworkError, match=word):
        bifurcation(10e-6, **kwargs)


# --------------------------------------------------------------------------------------------
# binary tree
# --------------------------------------------------------------------------------------------
def _children(net):
    """For each segment, its child segments, found from the node connectivity."""
    out = {k: [] for k in range(net.n_segments)}
    for c in range(net.n_segments):
        for p in range(net.n_segments):
            if net.seg_nodes[p, 1] == net.seg_nodes[c, 0]:
                out[p].append(c)
    return out


@pytest.mark.parametrize("g", [0, 1, 2, 4])
def test_tree_counts_and_boundary_conditions(g):
    net = binary_tree(g, 60e-6, 2e-3, p_in_pa=11000.0, p_out_pa=5000.0)
    assert net.n_segments == 2 ** (g + 1) - 1
    assert net.n_nodes == net.n_segments + 1
    deg = net.node_degree()
    leaves = np.flatnonzero(deg == 1)
    assert len(leaves) == 2**g + 1  # leaves plus the inlet
    assert net.bc_nodes[0] == 0 and net.bc_value[0] == 11000.0
    np.testing.assert_array_equal(np.sort(net.bc_nodes), leaves)
    np.testing.assert_array_equal(net.bc_value[1:], 5000.0)
    assert (net.bc_kind == BCKind.PRESSURE).all()
    assert set(np.unique(deg).tolist()) == ({1} if g == 0 else {1, 3})
    net.validate(require_bc=True)


@pytest.mark.parametrize("exponent, seed, jitter", [(3.0, None, 0.0), (2.7, 5, 0.3), (3.0, 11, 0.0)])
def test_tree_obeys_murray_and_length_laws(exponent, seed, jitter):
    net = binary_tree(4, 80e-6, 3e-3, murray_exponent=exponent, seed=seed, fraction_jitter=jitter,
                      branching_angle_deg=50.0)
    r, L = net.seg_radius_m, net.seg_length_m
    for p, kids in _children(net).items():
        if not kids:
            continue
        assert len(kids) == 2
        assert r[p] ** exponent == pytest.approx(sum(r[k] ** exponent for k in kids), rel=RTOL)
        for k in kids:
            assert L[k] / r[k] == pytest.approx(L[p] / r[p], rel=RTOL)  # default: length proportional to radius
        d = [net.node_pos_m[net.seg_nodes[k, 1]] - net.node_pos_m[net.seg_nodes[k, 0]] for k in kids]
        assert _angle_deg(d[0], d[1]) == pytest.approx(50.0, abs=1e-7)
    np.testing.assert_allclose(net.chord_length_m(), L, rtol=RTOL)
    if jitter:
        assert not np.allclose(r[1::2], r[2::2])  # asymmetric
    else:
        np.testing.assert_allclose(r[1::2], r[2::2], rtol=RTOL)


def test_tree_breadth_first_numbering_and_fixed_length_ratio():
    net = binary_tree(3, 50e-6, 1e-3, length_ratio=0.7)
    for c in range(1, net.n_segments):
        parent = (c - 1) // 2
        assert net.seg_nodes[c, 0] == net.seg_nodes[parent, 1] == parent + 1
        assert net.seg_length_m[c] == pytest.approx(0.7 * net.seg_length_m[parent], rel=RTOL)
    gen = np.floor(np.log2(np.arange(net.n_segments) + 1)).astype(int)
    np.testing.assert_allclose(net.seg_radius_m, 50e-6 * 2.0 ** (-gen / 3.0), rtol=RTOL)


def test_tree_is_three_dimensional_and_seed_reproducible():
    flat = binary_tree(3, 50e-6, 1e-3)
    assert np.ptp(flat.node_pos_m[:, 2]) > 0  # successive branching planes turn: not planar
    a = binary_tree(4, 50e-6, 1e-3, seed=7, fraction_jitter=0.2)
    b = binary_tree(4, 50e-6, 1e-3, seed=7, fraction_jitter=0.2)
    c = binary_tree(4, 50e-6, 1e-3, seed=8, fraction_jitter=0.2)
    np.testing.assert_array_equal(a.node_pos_m, b.node_pos_m)
    np.testing.assert_array_equal(a.seg_radius_m, b.seg_radius_m)
    assert not np.allclose(a.node_pos_m, c.node_pos_m)


@pytest.mark.parametrize("kwargs, word", [
    ({"generations": -1}, "generations"), ({"generations": 2.5}, "generations"),
    ({"murray_exponent": 0.0}, "murray_exponent"), ({"branching_angle_deg": 200.0}, "branching_angle_deg"),
    ({"fraction_jitter": 0.6}, "fraction_jitter"), ({"flow_fraction": 1.0}, "flow_fraction"),
])
def test_tree_rejects_bad_arguments(kwargs, word):
    args = {"generations": 2, "root_radius_m": 50e-6, "root_length_m": 1e-3, **kwargs}
    with pytest.raises(NetworkError, match=word):
        binary_tree(**args)


# --------------------------------------------------------------------------------------------
# VesselNetwork validation (network.py)
# --------------------------------------------------------------------------------------------
def _two_nodes(**kw):
    args = {"node_pos_m": np.array([[0, 0, 0], [1e-3, 0, 0]], float), "seg_nodes": np.array([[0, 1]]),
                "seg_radius_m": np.array([5e-6])}
    args.update(kw)
    return VesselNetwork(**args)


def test_network_rejects_dangling_node_reference():
    with pytest.raises(NetworkError, match=r"segment 0 refers to node \[0, 5\].*nodes 0\.\.1"):
        _two_nodes(seg_nodes=np.array([[0, 5]]))


def test_network_rejects_zero_radius():
    with pytest.raises(NetworkError, match=r"segment 0 has seg_radius_m = .*0\.0.*> 0"):
        _two_nodes(seg_radius_m=np.array([0.0]))


def test_network_requires_a_pressure_on_every_connected_piece():
    pos = np.array([[0, 0, 0], [1e-3, 0, 0], [0, 1e-3, 0], [1e-3, 1e-3, 0]], float)
    net = VesselNetwork(node_pos_m=pos, seg_nodes=np.array([[0, 1], [2, 3]]), seg_radius_m=np.array([5e-6, 5e-6]),
                        bc_nodes=np.array([0, 1, 2]), bc_kind=np.array([0, 0, 1]),
                        bc_value=np.array([2000.0, 1000.0, 1e-12]))
    net.validate()  # fine without the requirement
    with pytest.raises(NetworkError, match=r"node 2 \(2 nodes\) has no pressure boundary condition"):
        net.validate(require_bc=True)
