"""The liver-tumour network generator: reproducibility, Murray's law, sizes, densities, BCs."""

import math

import numpy as np
import pytest

from nanosim.vasculature import BCKind, WallType
from nanosim.vasculature.generate import (
    MMHG_PA,
    LiverTumourParams,
    generate_liver_tumour,
    poiseuille_flow,
    tumour_inflow_split,
    vessel_region_summary,
)

ARRAYS = ("node_pos_m", "seg_nodes", "seg_radius_m", "seg_length_m", "seg_wall", "seg_pore_radius_m",
          "seg_permeability_m_per_s", "bc_nodes", "bc_kind", "bc_value", "bc_haematocrit")


@pytest.fixture(scope="module")
def default():
    p = LiverTumourParams()
    return p, generate_liver_tumour(p, seed=1)


@pytest.fixture(scope="module")
def larger():
    # a 1.6 mm box with a 500 µm tumour: ~10⁴ segments, enough tumour vessels for density statistics
    p = LiverTumourParams(box_size_m=(1.6e-3,) * 3, tumour_semi_axes_m=(500e-6,) * 3, rim_thickness_m=150e-6)
    return p, generate_liver_tumour(p, seed=3)


def test_same_seed_identical_different_seed_differs():
    p = LiverTumourParams(calibrate_arterial_pressure=False)
    a, b, c = (generate_liver_tumour(p, s) for s in (7, 7, 8))
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.n_nodes != c.n_nodes or not np.array_equal(a.node_pos_m, c.node_pos_m)


def test_network_is_valid_with_boundary_conditions(default):
    p, net = default
    net.validate(require_bc=True)
    assert (net.seg_radius_m > 0).all() and (net.seg_nodes[:, 0] != net.seg_nodes[:, 1]).all()
    assert (net.bc_kind == BCKind.PRESSURE).all()
    assert (net.node_degree() > 0).all()
    # portal inlets, central outlets and the arterial inlet carry their pressures
    vals = set(np.round(net.bc_value, 9))
    assert {round(p.portal_inlet_pressure_pa, 9), round(p.central_outlet_pressure_pa, 9)} <= vals
    assert p.arterial_pressure_range_pa[0] <= net.bc_value[-1] <= p.arterial_pressure_range_pa[1]
    assert set(np.unique(net.seg_wall)) == {WallType.ARTERY, WallType.VEIN, WallType.PORTAL, WallType.SINUSOID,
                                             WallType.TUMOUR}


def _check_murray(net, gamma):
    art = net.seg_wall == WallType.ARTERY
    s, r = net.seg_nodes[art], net.seg_radius_m[art]
    deg = np.bincount(s.ravel(), minlength=net.n_nodes)
    bif = np.flatnonzero(deg == 3)
    assert bif.size > 5
    for v in bif:
        rr = np.sort(r[(s == v).any(axis=1)])
        # the parent is the widest; r_parent^γ = Σ r_child^γ to round-off (r = r_t n^(1/γ))
        assert rr[2] ** gamma == pytest.approx(rr[0] ** gamma + rr[1] ** gamma, rel=1e-12)
    # degree-2 nodes (arc pieces) keep the radius
    for v in np.flatnonzero(deg == 2)[:200]:
        rr = r[(s == v).any(axis=1)]
        assert rr[0] == rr[1]
    assert deg.max() <= 3


def test_murray_law_default_exponent(default):
    p, net = default
    _check_murray(net, 3.0)
    n_term = net.meta["arterial_terminals_tumour"] + net.meta["arterial_terminals_normal"]
    assert net.meta["arterial_root_radius_m"] == pytest.approx(p.arterial_terminal_radius_m * n_term ** (1 / 3),
                                                                rel=1e-12)
    assert net.seg_radius_m[net.seg_wall == WallType.ARTERY].min() == pytest.approx(p.arterial_terminal_radius_m)


def test_murray_law_other_exponent_and_root_radius():
    p = LiverTumourParams(murray_exponent=2.4, arterial_root_radius_m=25e-6, calibrate_arterial_pressure=False)
    net = generate_liver_tumour(p, 2)
    _check_murray(net, 2.4)
    assert net.seg_radius_m[net.seg_wall == WallType.ARTERY].max() == pytest.approx(25e-6, rel=1e-12)


def test_tumour_vessel_diameters(larger):
    _p, net = larger
    d = 2 * net.seg_radius_m[net.seg_wall == WallType.TUMOUR]
    n = d.size
    assert n > 1000
    # lognormal, log-sd 0.35: ≈ 96 % in 10–50 µm; binomial sd at n > 1000 is < 0.7 %, so 90 % is > 8 sd away
    assert ((d >= 10e-6) & (d <= 50e-6)).mean() >= 0.90
    # mean 20 µm: standard error σ/√n with σ = 20 µm · √(e^(0.35²) − 1) ≈ 7.2 µm; allow 4 standard errors
    se = 20e-6 * math.sqrt(math.exp(0.35**2) - 1) / math.sqrt(n)
    assert abs(d.mean() - 20e-6) < 4 * se


def test_surface_per_volume_by_region(larger):
    p, net = larger
    reg = vessel_region_summary(net, p)["regions"]
    rim, core, nec, normal = (reg[k]["sv_per_m"] for k in ("rim", "core", "necrotic", "normal"))
    assert rim > 1.3 * core  # targets 200 vs 100 cm⁻¹
    assert nec <= 0.02 * rim  # no vessels are placed in the necrotic core (only chord-sampling slivers)
    # the two-pass density calibration hits the tumour target to ~10 % (Poisson counts of ~10³
    # segments, region-boundary effects); arteries and margin sinusoids add ~10 % more: allow ±30 %
    assert reg["rim"]["sv_per_m_by_wall"]["tumour"] == pytest.approx(p.tumour_rim_sv_per_m, rel=0.3)
    assert reg["core"]["sv_per_m_by_wall"]["tumour"] == pytest.approx(p.tumour_core_sv_per_m, rel=0.3)
    # the lattice is fitted to the target exactly up to whole cells; arteries, veins add ~5–10 %
    assert normal == pytest.approx(p.normal_sv_per_m, rel=0.3)
    assert reg["normal"]["sv_per_m_by_wall"]["sinusoid"] == pytest.approx(p.normal_sv_per_m, rel=0.15)


def test_normal_sv_default_box(default):
    p, net = default
    reg = vessel_region_summary(net, p)["regions"]
    assert reg["normal"]["sv_per_m"] == pytest.approx(p.normal_sv_per_m, rel=0.3)
    assert reg["rim"]["sv_per_m"] > reg["core"]["sv_per_m"]


def test_no_necrotic_core_means_vessels_in_the_centre():
    p = LiverTumourParams(necrotic_fraction=0.0, calibrate_arterial_pressure=False)
    net = generate_liver_tumour(p, 4)
    t = np.unique(net.seg_nodes[net.seg_wall == WallType.TUMOUR])
    assert (p.rho(net.node_pos_m[t]) < 0.3).sum() >= 1
    assert vessel_region_summary(net, p)["regions"]["necrotic"]["volume_m3"] == 0.0


def test_tortuosity_within_configured_ranges(default):
    p, net = default
    tau = net.seg_length_m / net.chord_length_m()
    for wall, rng in ((WallType.TUMOUR, p.tumour_tortuosity_range), (WallType.SINUSOID, p.sinusoid_tortuosity_range),
                      (WallType.ARTERY, p.arterial_tortuosity_range)):
        t = tau[net.seg_wall == wall]
        assert t.min() >= rng[0] * (1 - 1e-12) and t.max() <= rng[1] * (1 + 1e-12), wall.name
    t = tau[net.seg_wall == WallType.TUMOUR]
    assert t.mean() == pytest.approx(np.mean(p.tumour_tortuosity_range), abs=0.05)  # uniform, n ≈ 130: sd 0.008


def test_wall_types_and_pores_by_region(default):
    p, net = default
    pos = net.node_pos_m
    tum = net.seg_wall == WallType.TUMOUR
    assert (p.rho(pos[net.seg_nodes[tum]]) < 1.0).all()
    assert (p.rho(pos[net.seg_nodes[tum]]) >= p.necrotic_fraction).all()
    sin = net.seg_wall == WallType.SINUSOID
    # sinusoids live outside the tumour; the margin connections end on a tumour node
    assert (p.rho(pos[net.seg_nodes[sin]]).max(axis=1) >= 1.0).all()
    assert (net.seg_pore_radius_m[sin] == p.sinusoid_pore_radius_m).all()
    lo, hi = p.tumour_pore_radius_range_m
    pr = net.seg_pore_radius_m[tum]
    assert (pr >= lo * (1 - 1e-12)).all() and (pr <= hi * (1 + 1e-12)).all()
    other = ~(tum | sin)
    assert (net.seg_pore_radius_m[other] == 0).all()


def test_calibrated_arterial_fraction_reference_solver(default):
    p, net = default
    cal = net.meta["calibration"]
    assert cal["status"] == "ok"
    assert cal["arterial_fraction"] == pytest.approx(p.arterial_fraction_of_tumour_inflow, abs=1e-6)
    # a uniform viscosity differs from the calibration's Pries law: the fraction moves, but stays high
    (_, q), = poiseuille_flow(net, 3.5e-3)
    split = tumour_inflow_split(net, q)
    assert 0.8 < split["arterial_fraction"] <= 1.0
    assert split["total_m3_per_s"] > 0


def test_arterial_fraction_with_flow_solver(default):
    flow = pytest.importorskip("nanosim.flow.network_flow")
    p, net = default
    sol = flow.solve_flow(net, viscosity_law="in_vivo", haematocrit=p.haematocrit)
    split = tumour_inflow_split(net, sol.seg_flow_m3_per_s)
    # Arterial fraction = Σ F_v over entry nodes reached through arteries / Σ F_v over all entry
    # nodes, where F_v > 0 is the net flow from a node into its tumour segments (see
    # tumour_inflow_split). The calibration solves the same linear problem (Pries in vivo
    # viscosity at fixed haematocrit, no phase separation), so the two agree to the linear
    # solvers' tolerance; 1e-4 leaves room for an iterative solve at relative residual 1e-12.
    assert split["arterial_fraction"] == pytest.approx(p.arterial_fraction_of_tumour_inflow, abs=1e-4)
    assert split["portal_m3_per_s"] > 0  # the portal route through margin sinusoids carries some


@pytest.mark.parametrize("kw, name", [
    ({"tumour_semi_axes_m": (600e-6,) * 3}, "tumour_semi_axes_m"),
    ({"sinusoid_radius_m": -5e-6}, "sinusoid_radius_m"),
    ({"tumour_semi_axes_m": (200e-6, -1e-6, 200e-6)}, "tumour_semi_axes_m"),
    ({"necrotic_fraction": 1.2}, "necrotic_fraction"),
    ({"rim_thickness_m": 150e-6}, "rim_thickness_m"),
    ({"tumour_tortuosity_range": (0.9, 1.2)}, "tumour_tortuosity_range"),
    ({"arterial_fraction_of_tumour_inflow": 1.5}, "arterial_fraction_of_tumour_inflow"),
    ({"murray_exponent": 0.0}, "murray_exponent"),
    ({"box_size_m": (1e-3, 1e-3)}, "box_size_m"),
    ({"arterial_inlet_m": (0.5e-3, 0.5e-3, 0.5e-3)}, "arterial_inlet_m"),
])
def test_parameter_errors_name_the_parameter(kw, name):
    with pytest.raises(ValueError, match=name):
        LiverTumourParams(**kw)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        generate_liver_tumour(LiverTumourParams(), seed=-1)


def test_pressures_are_documented_defaults():
    p = LiverTumourParams()
    assert p.portal_inlet_pressure_pa == pytest.approx(9 * MMHG_PA)
    assert p.central_outlet_pressure_pa == pytest.approx(4 * MMHG_PA)
