"""Scenarios with a vessel network, blood flow and interstitial fluid, run end to end (PHYSICS.md §2–4)."""

import math
from pathlib import Path

import numpy as np
import pytest

import nanosim
from nanosim.scenario import ScenarioError

REPO = Path(__file__).parents[1]
LIVER = REPO / "scenarios" / "liver_tumour_fluid.toml"
MMHG = 133.322387415


def _base(**extra):
    d = {
        "grid": {"shape": [24, 24, 24], "voxel_size_m": "20 um"},
        "drug": {"permeability_m_per_s": "1e-7 m/s", "plasma": {"kind": "constant", "concentration_mol_per_m3": "7.5 uM"},
                 "normal": {"diffusivity_m2_per_s": "2e-10 m^2/s", "uptake_rate_per_s": 0.01}},
        "time": {"stop_s": "2 s"},
    }
    d.update(extra)
    return d


def test_liver_tumour_scenario_end_to_end(tmp_path):
    from nanosim.vasculature import tumour_inflow_split
    from nanosim.vasculature.build import make_network

    # the bundled scenario on a coarser grid (same box), for a short time
    sc = nanosim.load_scenario(LIVER, ["grid.shape=[40, 40, 40]", 'grid.voxel_size_m="40 um"', 'time.stop_s="10 s"',
                                       'output.every_s="5 s"'])
    res = nanosim.run(sc, tmp_path / "lt.vtkhdf", backend="numba")
    assert res.status == "completed"
    net, seg, node = res.network()
    # the stored network is the generator's (seeded: the same arrays again)
    again = make_network(sc)
    np.testing.assert_array_equal(net.seg_nodes, again.seg_nodes)
    np.testing.assert_array_equal(net.node_pos_m, again.node_pos_m)
    # blood is conserved at every internal node of the stored solution
    q = seg["flow_m3_per_s"]
    imbalance = np.zeros(net.n_nodes)
    np.add.at(imbalance, net.seg_nodes[:, 0], -q)
    np.add.at(imbalance, net.seg_nodes[:, 1], q)
    scale = np.zeros(net.n_nodes)
    np.maximum.at(scale, net.seg_nodes[:, 0], np.abs(q))
    np.maximum.at(scale, net.seg_nodes[:, 1], np.abs(q))
    internal = np.ones(net.n_nodes, bool)
    internal[net.bc_nodes] = False
    # relative to the largest flow at the node; dead ends carry round-off flows (~1e-30 m³/s),
    # so the scale has a floor of 1e-12 of the network's largest flow
    scale = np.maximum(scale, 1e-12 * np.abs(q).max())
    assert np.max(np.abs(imbalance[internal]) / scale[internal]) < 1e-10
    # 90 % of the tumour's inflow is arterial (the generator calibrates the arterial pressure by
    # bisection to 1e-4 of the fraction; the run's solver is the same Poiseuille–Pries system)
    split = tumour_inflow_split(net, q)
    assert split["arterial_fraction"] == pytest.approx(0.9, abs=1e-3)
    # Poiseuille per segment from the stored pressures and viscosities
    p = node["pressure_pa"]
    dp = p[net.seg_nodes[:, 0]] - p[net.seg_nodes[:, 1]]
    expect = math.pi * net.seg_radius_m**4 * dp / (8 * seg["viscosity_pa_s"] * net.seg_length_m)
    np.testing.assert_allclose(q, expect, rtol=1e-9, atol=1e-12 * np.abs(q).max())
    # the interstitial fluid: a closed balance, higher pressure in the tumour than in normal liver
    summary = res.vasculature_summary()["interstitial"]
    assert abs(summary["balance_error"]) < 1e-3
    pi = res.static("interstitial_pressure_pa")
    region = res.static("region")
    assert pi[region == 1].mean() > pi[region == 0].mean()
    # walls only in voxels the network passes near; none in the necrotic core
    sv = res.static("vessel_surface_per_volume_per_m")
    assert sv[region == 1].mean() > 10 * sv[region == 2].mean()
    assert np.nanmax(np.abs(res.metrics["mass_balance_rel_error"])) < 1e-12
    assert res.metrics["exchange_in_mol"][-1] > 0
    # the network with its flow beside the results file, as VTK PolyData that reads back
    from nanosim.vasculature import read_network

    vtp = read_network(tmp_path / "lt.network.vtp")
    np.testing.assert_array_equal(vtp.seg_nodes, net.seg_nodes)
    np.testing.assert_array_equal(vtp.seg_radius_m, net.seg_radius_m)


def test_straight_network_flow_is_poiseuille_with_pries_viscosity(tmp_path):
    r, length = 10e-6, 400e-6
    p_in, p_out = 40 * MMHG, 15 * MMHG
    sc = nanosim.load_scenario(_base(network={
        "kind": "straight", "start_m": ["40 um", "240 um", "240 um"], "end_m": ["440 um", "240 um", "240 um"],
        "radius_m": "10 um", "inlet_pressure_pa": "40 mmHg", "outlet_pressure_pa": "15 mmHg", "segments": 4}))
    res = nanosim.run(sc, tmp_path / "s.vtkhdf", backend="numba")
    net, seg, node = res.network()
    # Pries 1994 in vivo law (PHYSICS.md §3), written out here independently of the package
    d = 2 * r * 1e6
    hd = 0.45
    c = (0.8 + math.exp(-0.075 * d)) * (-1 + 1 / (1 + 1e-11 * d**12)) + 1 / (1 + 1e-11 * d**12)
    mu45 = 6 * math.exp(-0.085 * d) + 3.2 - 2.44 * math.exp(-0.06 * d**0.645)
    f = (d / (d - 1.1)) ** 2
    mu_rel = (1 + (mu45 - 1) * ((1 - hd) ** c - 1) / ((1 - 0.45) ** c - 1) * f) * f
    q = math.pi * r**4 * (p_in - p_out) / (8 * 1.2e-3 * mu_rel * length)
    np.testing.assert_allclose(seg["flow_m3_per_s"], q, rtol=1e-12)
    np.testing.assert_allclose(seg["velocity_m_per_s"], q / (math.pi * r**2), rtol=1e-12)
    # linear pressure along the vessel
    np.testing.assert_allclose(np.sort(node["pressure_pa"])[::-1], np.linspace(p_in, p_out, 5), rtol=1e-12)
    # the voxelised vessel holds its wall area 2πrL within 2 % (r = 0.5 voxel here: the lumen is
    # sub-voxel, so the area comes from the wall samples, not from a staircase)
    sv = res.static("vessel_surface_per_volume_per_m")
    assert sv.sum() * (20e-6) ** 3 == pytest.approx(2 * math.pi * r * length, rel=0.02)


def test_uniform_perfusion_scenario_pushes_fluid_out_of_the_tumour(tmp_path):
    sc = nanosim.load_scenario(_base(
        tissue={"tumour": {"kind": "sphere", "center_m": ["240 um"] * 3, "radius_m": "160 um"}},
        network={"kind": "uniform_perfusion"}, interstitial={"solve": True}))
    res = nanosim.run(sc, tmp_path / "u.vtkhdf", backend="numba")
    s = res.vasculature_summary()["interstitial"]
    # finite volumes conserve fluid exactly: the balance closes to the CG tolerance (1e-10)
    assert abs(s["balance_error"]) < 1e-6
    assert s["transvascular_flux_m3_per_s"] > 0
    p = res.static("interstitial_pressure_pa")
    u = np.stack([res.static(f"interstitial_velocity_{a}_m_per_s") for a in "xyz"])
    h = 20e-6
    z, y, x = np.meshgrid(*(np.arange(24) * h + h / 2 - 240e-6,) * 3, indexing="ij")
    rad = np.sqrt(x**2 + y**2 + z**2)
    # pressure peaks at the centre and falls outwards; the fluid flows outwards at the rim
    assert p[rad < 40e-6].mean() > p[(rad > 150e-6) & (rad < 170e-6)].mean()
    rim = (rad > 140e-6) & (rad < 180e-6)
    u_r = (u[0] * x + u[1] * y + u[2] * z) / np.maximum(rad, 1e-12)
    assert u_r[rim].mean() > 0


@pytest.mark.parametrize("extra, path", [
    ({"network": {"kind": "liver_tumour"}}, "tissue.tumour"),
    ({"network": {"kind": "uniform_perfusion"}, "interstitial": {"solve": True, "vascular_pressure_pa": "network"}},
     "interstitial.vascular_pressure_pa"),
    ({"interstitial": {"solve": True}}, "interstitial.solve"),
    ({"network": {"kind": "file", "path": "no/such/network.csv"}}, "network.path"),
    ({"tissue": {"tumour": {"kind": "sphere", "center_m": ["240 um"] * 3, "radius_m": "160 um"}},
      "network": {"kind": "liver_tumour", "parameters": {"murray_exponant": 2.5}}}, "network.parameters.murray_exponant"),
])
def test_network_errors_name_the_field(extra, path):
    with pytest.raises(ScenarioError) as exc:
        nanosim.load_scenario(_base(**extra))
    assert path in str(exc.value)


def test_network_needs_a_wall_permeability():
    d = _base(network={"kind": "uniform_perfusion"})
    del d["drug"]["permeability_m_per_s"]
    with pytest.raises(ScenarioError, match="drug.permeability_m_per_s"):
        nanosim.load_scenario(d)
