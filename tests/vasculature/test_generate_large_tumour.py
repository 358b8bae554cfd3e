"""The liver-tumour generator on a box that samples a large tumour (centre outside the box).

A 1.6 mm box at 20 µm voxels samples a 300 mm³ mouse tumour (radius 4.15 mm, necrotic core
2.5 mm): once across the tumour surface (the box holds the outer ~1.2 mm of the tumour and
~0.4 mm of normal liver), once wholly inside the tumour. Expected region volumes come from the
sphere geometry by adaptive quadrature of the exact chord, independent of the generator's own
midpoint rule.
"""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import integrate

from nanosim.geometry import Grid
from nanosim.geometry.tissue import region_map
from nanosim.vasculature import WallType
from nanosim.vasculature.generate import (
    LiverTumourParams,
    generate_liver_tumour,
    region_of_points,
    tumour_inflow_split,
    vessel_region_summary,
)

R = 4.15e-3  # 300 mm³: (3·300/4π)^(1/3) mm
R_NEC = 2.5e-3
L = 1.6e-3  # box edge
H = 20e-6  # voxel
ARRAYS = ("node_pos_m", "seg_nodes", "seg_radius_m", "seg_length_m", "seg_wall", "seg_pore_radius_m",
          "bc_nodes", "bc_kind", "bc_value", "bc_haematocrit")
REPO = Path(__file__).parents[2]


def _params(cx, **kw):
    kw.setdefault("rim_thickness_m", 150e-6)  # a thicker rim than the default: more rim vessels to count
    return LiverTumourParams(box_size_m=(L,) * 3, tumour_center_m=(cx, 0.8e-3, 0.8e-3), tumour_semi_axes_m=(R,) * 3,
                             necrotic_fraction=R_NEC / R, **kw)


#: the surface crosses the box: at x = 1.2 mm on the box axis, ≈ 1.04 mm at its corners
CROSS_CX = 1.2e-3 - R
#: the box inside the tumour: far corner 3.97 mm from the centre (< R), near face 2.2 mm (< R_NEC)
INSIDE_CX = -2.2e-3


@pytest.fixture(scope="module")
def cross():
    p = _params(CROSS_CX)
    return p, generate_liver_tumour(p, seed=5)


@pytest.fixture(scope="module")
def inside():
    p = _params(INSIDE_CX)
    return p, generate_liver_tumour(p, seed=6)


def _ball_in_box_m3(cx, radius):
    """Volume of the part of the box [0, L]³ within ``radius`` of (cx, L/2, L/2), for a centre with
    cx < 0 whose ball covers the box's x = 0 face:
    ∫∫ clip(cx + √(radius² − (y − L/2)² − (z − L/2)²), 0, L) dy dz."""
    def depth(z, y):
        return min(max(cx + math.sqrt(radius**2 - (y - L / 2) ** 2 - (z - L / 2) ** 2), 0.0), L)
    return integrate.dblquad(depth, 0.0, L, 0.0, L, epsabs=1e-18, epsrel=1e-10)[0]


def _flow(net, p):
    flow = pytest.importorskip("nanosim.flow.network_flow")
    return flow.solve_flow(net, viscosity_law="in_vivo", haematocrit=p.haematocrit)


def _check_conservation(sol):
    # the solver's own measure: largest imbalance over internal nodes relative to the node's flow
    assert sol.conservation_error < 1e-10
    # and the box as a whole: what enters through the boundaries leaves through them
    bf = sol.boundary_flow_m3_per_s
    assert abs(bf.sum()) < 1e-9 * bf[bf > 0].sum()


def _check_murray(net, gamma=3.0):
    art = net.seg_wall == WallType.ARTERY
    s, r = net.seg_nodes[art], net.seg_radius_m[art]
    deg = np.bincount(s.ravel(), minlength=net.n_nodes)
    assert deg.max() <= 3
    for v in np.flatnonzero(deg == 3):
        rr = np.sort(r[(s == v).any(axis=1)])
        assert rr[2] ** gamma == pytest.approx(rr[0] ** gamma + rr[1] ** gamma, rel=1e-12)


# ---- geometry and parameters ---------------------------------------------------------------------
def test_modes_and_automatic_flow_axis():
    small = LiverTumourParams(box_size_m=(L,) * 3, tumour_semi_axes_m=(500e-6,) * 3)
    assert small.whole_tumour and small.flow_axis == 0  # unchanged default for a whole tumour
    p = _params(CROSS_CX)
    assert not p.whole_tumour and not p.encloses_box
    # the surface normal at the box centre is along x: the lattice drains along y (ties go to the lower axis)
    assert p.flow_axis == 1
    assert p.arterial_face() == (0, 1)  # the x-high face, on the normal-liver side
    q = _params(INSIDE_CX)
    assert q.encloses_box and q.arterial_face() == (0, 1)  # the face nearest the tumour surface
    assert _params(CROSS_CX, flow_axis=2).flow_axis == 2  # an explicit axis is kept


def test_region_volumes_in_the_box_match_the_sphere_geometry():
    for cx in (CROSS_CX, INSIDE_CX):
        p = _params(cx)
        vols = p.region_volumes_m3()
        v_t, v_r = _ball_in_box_m3(cx, R), _ball_in_box_m3(cx, R - p.rim_thickness_m)
        v_n = _ball_in_box_m3(cx, R_NEC) if cx + R_NEC > 0 else 0.0
        # the generator's midpoint rule over 400² columns with exact chords: relative error ~1e-5
        assert vols["normal"] == pytest.approx(L**3 - v_t, rel=1e-3, abs=1e-15)
        assert vols["rim"] == pytest.approx(v_t - v_r, rel=1e-3)
        assert vols["core"] == pytest.approx(v_r - v_n, rel=1e-3)
        assert vols["necrotic"] == pytest.approx(v_n, rel=1e-3, abs=1e-15)
        assert sum(vols.values()) == pytest.approx(L**3, rel=1e-12)


def test_region_map_of_a_tumour_centred_outside_the_box():
    """The voxel region map (a distance test per voxel centre) takes a centre outside the box:
    normal, rim and core voxels in the proportions of the sphere geometry."""
    p = _params(CROSS_CX, rim_thickness_m=75e-6)  # the default rim, as in the scenario
    grid = Grid((80, 80, 80), H)
    tumour = SimpleNamespace(kind="sphere", center_m=p.center.tolist(), radius_m=R, necrotic_radius_m=R_NEC)
    reg = region_map(grid, tumour)
    z, y, x = grid.mesh_m()
    pts = np.stack([np.broadcast_to(c, reg.shape).ravel() for c in (x, y, z)], 1)
    sub = region_of_points(p, pts)  # the generator's rim / core split of the same voxel centres
    n = reg.size
    got = {"normal": (reg == 0).sum() / n, "tumour": (reg == 1).sum() / n, "necrotic": (reg == 2).sum() / n,
           "rim": (sub == 1).sum() / n, "core": (sub == 2).sum() / n}
    v_t, v_r = _ball_in_box_m3(CROSS_CX, R), _ball_in_box_m3(CROSS_CX, R - 75e-6)
    want = {"normal": 1 - v_t / L**3, "tumour": v_t / L**3, "rim": (v_t - v_r) / L**3, "core": v_r / L**3}
    assert got["necrotic"] == 0.0  # the necrotic core lies beyond x = 0
    assert got["rim"] + got["core"] == got["tumour"]
    assert 0.25 < want["normal"] < 0.30 and 0.04 < want["rim"] < 0.055  # ~0.4 mm of liver, a 75 µm rim
    # voxelisation: a voxel is misclassified only when its centre and most of its volume lie on
    # opposite sides of a surface, so the volume error is at most (surface area in the box) × h / 2
    # per surface; the surfaces here are nearly flat caps of area < 1.1 L²
    tol = 1.1 * L**2 * H / 2 / L**3  # 0.69 % of the box per surface
    assert got["tumour"] == pytest.approx(want["tumour"], abs=tol)
    assert got["normal"] == pytest.approx(want["normal"], abs=tol)
    assert got["rim"] == pytest.approx(want["rim"], abs=2 * tol)
    assert got["core"] == pytest.approx(want["core"], abs=tol)


@pytest.mark.parametrize("cx, radius, match", [
    (-R - 0.1e-3, R, "tumour_center_m"),  # the tumour ends 0.1 mm short of the x = 0 face
    (0.8e-3, 1.0e-3, "tumour_semi_axes_m"),  # centred in the box, crossing every face: not a sample
])
def test_tumours_that_neither_fit_nor_sample_the_box_are_refused(cx, radius, match):
    with pytest.raises(ValueError, match=match):
        LiverTumourParams(box_size_m=(L,) * 3, tumour_center_m=(cx, 0.8e-3, 0.8e-3), tumour_semi_axes_m=(radius,) * 3)


# ---- the box across the tumour surface -----------------------------------------------------------
def test_sampled_network_is_reproducible_and_valid(cross):
    p, net = cross
    again = generate_liver_tumour(p, seed=5)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(net, name), getattr(again, name), err_msg=name)
    other = generate_liver_tumour(p, seed=4)
    assert other.n_nodes != net.n_nodes or not np.array_equal(other.node_pos_m, net.node_pos_m)
    net.validate(require_bc=True)
    assert set(np.unique(net.seg_wall)) == {WallType.ARTERY, WallType.VEIN, WallType.PORTAL, WallType.SINUSOID,
                                             WallType.TUMOUR}
    pos = net.node_pos_m
    assert (pos >= -1e-15).all() and (pos <= L + 1e-15).all()  # everything stays in the box
    tum = net.seg_wall == WallType.TUMOUR
    assert (p.rho(pos[net.seg_nodes[tum]]) < 1.0).all()
    sin = net.seg_wall == WallType.SINUSOID
    assert (p.rho(pos[net.seg_nodes[sin]]).max(axis=1) >= 1.0).all()
    meta = net.meta["sampled_tumour"]
    assert meta["arterial_face"] == "x high" and meta["flow_axis"] == 1


def test_sampled_boundary_conditions(cross):
    p, net = cross
    pos = net.node_pos_m
    bc = pos[net.bc_nodes]
    # the arterial root (last condition) at the centre of the x-high face (normal-liver side)
    np.testing.assert_allclose(bc[-1], (L, L / 2, L / 2), atol=1e-15)
    # portal inlets on the y = 0 face, central outlets on the y = L face, both in normal liver
    # (lattice rows along y run beside the tumour); tumour drains end on the x-high face
    portal = net.bc_value[:-1] == p.portal_inlet_pressure_pa
    outlet = net.bc_value[:-1] == p.central_outlet_pressure_pa
    assert portal.sum() > 10 and (portal | outlet).all()
    assert np.allclose(bc[:-1][portal, 1], 0.0) and (p.rho(bc[:-1][portal]) >= 1.0).all()
    on_y_high = np.isclose(bc[:-1, 1], L, atol=1e-15)
    on_x_high = np.isclose(bc[:-1, 0], L, atol=1e-15)
    assert (on_y_high | on_x_high)[outlet].all()
    # tumour vessels cut by the faces end there without a condition (no net flow by symmetry):
    # no tumour segment touches a boundary node
    tum = net.seg_wall == WallType.TUMOUR
    assert not np.isin(net.seg_nodes[tum], net.bc_nodes).any()
    # draining venules: from outer tumour nodes (rim or near the x-high face) straight to that face
    veins = net.seg_nodes[net.seg_wall == WallType.VEIN]
    from_tumour = np.isin(veins, net.seg_nodes[tum]).any(axis=1)
    drains = veins[from_tumour]
    start, end = pos[drains[:, 0]], pos[drains[:, 1]]
    np.testing.assert_allclose(end[:, 0], L, atol=1e-15)
    np.testing.assert_allclose(end[:, 1:], start[:, 1:], atol=1e-15)
    assert (p.rho(start) >= p.rho_rim).all()
    assert p.footprint_area_m2() == pytest.approx(L**2)  # the tumour lies under the whole x-high face
    assert len(drains) == net.meta["tumour_drain_veins"] == round(p.tumour_drain_veins_per_m2 * L**2)


def test_sampled_flow_is_conserved_and_calibrated(cross):
    p, net = cross
    cal = net.meta["calibration"]
    assert cal["status"] == "ok"
    sol = _flow(net, p)
    _check_conservation(sol)
    split = tumour_inflow_split(net, sol.seg_flow_m3_per_s)
    assert split["arterial_fraction"] == pytest.approx(p.arterial_fraction_of_tumour_inflow, abs=1e-4)
    assert split["portal_m3_per_s"] > 0  # through the margin sinusoids
    _check_murray(net)
    assert net.meta["arterial_terminals_tumour"] > 100


def test_sampled_surface_per_volume_by_region(cross):
    p, net = cross
    reg = vessel_region_summary(net, p)["regions"]
    assert reg["rim"]["volume_m3"] == pytest.approx(p.region_volumes_m3()["rim"])
    # the same tolerances as for a whole tumour (test_generate.test_surface_per_volume_by_region)
    assert reg["rim"]["sv_per_m_by_wall"]["tumour"] == pytest.approx(p.tumour_rim_sv_per_m, rel=0.3)
    assert reg["core"]["sv_per_m_by_wall"]["tumour"] == pytest.approx(p.tumour_core_sv_per_m, rel=0.3)
    assert reg["normal"]["sv_per_m_by_wall"]["sinusoid"] == pytest.approx(p.normal_sv_per_m, rel=0.15)
    assert reg["rim"]["sv_per_m"] > 1.3 * reg["core"]["sv_per_m"]


# ---- the box inside the tumour -------------------------------------------------------------------
def test_box_inside_the_tumour(inside):
    p, net = inside
    net.validate(require_bc=True)
    walls = set(np.unique(net.seg_wall))
    assert walls == {WallType.ARTERY, WallType.VEIN, WallType.TUMOUR}  # no liver, no lattice
    # the arterial feeders enter from the face nearest the tumour surface (x high)
    np.testing.assert_allclose(net.node_pos_m[net.bc_nodes[-1]], (L, L / 2, L / 2), atol=1e-15)
    # no portal route: the calibration does not apply and keeps the given arterial pressure
    cal = net.meta["calibration"]
    assert cal["status"].startswith("not applicable")
    assert net.bc_value[-1] == p.arterial_inlet_pressure_pa
    sol = _flow(net, p)
    _check_conservation(sol)
    split = tumour_inflow_split(net, sol.seg_flow_m3_per_s)
    assert split["arterial_fraction"] == 1.0 and split["total_m3_per_s"] > 0
    _check_murray(net)
    reg = vessel_region_summary(net, p)["regions"]
    assert reg["normal"]["volume_m3"] == 0.0 and reg["rim"]["volume_m3"] == 0.0
    assert reg["necrotic"]["volume_m3"] > 0  # the necrotic core reaches into the box near x = 0
    assert reg["core"]["sv_per_m_by_wall"]["tumour"] == pytest.approx(p.tumour_core_sv_per_m, rel=0.3)
    assert reg["necrotic"]["sv_per_m"] <= 0.02 * reg["core"]["sv_per_m"]


# ---- the scenario ---------------------------------------------------------------------------------
def test_rim_scenario_samples_the_tumour_edge():
    from nanosim.scenario import load_scenario
    from nanosim.scenario.loader import check_scenario
    from nanosim.vasculature.build import liver_tumour_params

    sc = load_scenario(REPO / "scenarios" / "hcc_liposome_iv_rim.toml")
    assert check_scenario(sc, check_memory=False) == []
    p = liver_tumour_params(sc)
    assert not p.whole_tumour and p.arterial_face() == (0, 1)
    # 300 mm³ tumour; the box holds ~1.2 mm of it along x and ~0.4 mm of liver
    assert 4 / 3 * math.pi * R**3 == pytest.approx(sc.body.tumour_volume_m3, rel=3e-3)
    vols = p.region_volumes_m3()
    assert 0.25 < vols["normal"] / L**3 < 0.30 and vols["necrotic"] == 0.0
