"""Extracellular pH (PHYSICS.md §6): prescribed map, proton reaction–diffusion, compartments, scenario."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from nanosim.geometry import Grid
from nanosim.microenv.oxygen import MMHG_PA, krogh_geometry
from nanosim.microenv.ph import (BLOOD_PH, PROTON_DIFFUSIVITY_M2_PER_S, PROTON_PRODUCTION_MOL_PER_CELL_S,
                                 ProtonField, build_ph, compartment_ph, cylinder_wall_distance, hypoxia_factor,
                                 ph_from_proton, prescribed_ph, proton_from_ph)
from nanosim.scenario.microenv import PH

DH = PROTON_DIFFUSIVITY_M2_PER_S
HB = float(proton_from_ph(BLOOD_PH))


def test_compartment_ph():
    assert compartment_ph("intracellular") == 7.30
    assert compartment_ph("Cytosol") == 7.30
    assert compartment_ph("early endosome") == 6.25 and 6.0 <= compartment_ph("endosome") <= 6.5
    assert compartment_ph("late_endosome") == 5.5
    assert compartment_ph("lysosome") == 4.75
    assert compartment_ph("plasma") == 7.4
    assert compartment_ph("lysosome", {"lysosome": 4.6}) == 4.6
    with pytest.raises(KeyError, match="known"):
        compartment_ph("golgi")


def test_ph_proton_conversions():
    assert ph_from_proton(np.array([1e-4 * 1e3, 1e-7 * 1e3])) == pytest.approx([4.0, 7.0], rel=1e-14)
    assert proton_from_ph(7.4) == pytest.approx(1e3 * 10**-7.4, rel=1e-14)
    assert hypoxia_factor([0.0, 5.0, 1e9], 3.0, 5.0) == pytest.approx([3.0, 2.0, 1.0], rel=1e-8)
    assert hypoxia_factor(-1.0, 3.0, 5.0) == 3.0  # negative P counts as anoxic


def test_prescribed_ph_by_region_and_distance():
    lam = 100e-6
    region = np.array([0, 1, 1, 1, 1, 2, 1])
    d = np.array([50e-6, 0.0, lam, np.inf, -1e-6, 30e-6, 2 * lam])
    ph = prescribed_ph(region, d, decay_length_m=lam)
    assert ph == pytest.approx([7.4, 7.2, 6.7 + 0.5 / math.e, 6.7, 7.4, 6.7, 6.7 + 0.5 / math.e**2], rel=1e-14)
    ph = prescribed_ph(region, d, tumour_near_ph=7.0, tumour_far_ph=6.5, necrotic_ph=6.4, normal_ph=7.35)
    assert ph[[0, 1, 3, 5]] == pytest.approx([7.35, 7.0, 6.5, 6.4])
    with pytest.raises(ValueError, match="decay_length"):
        prescribed_ph(region, d, decay_length_m=0.0)


def test_cylinder_wall_distance():
    grid = Grid((20, 20, 1), 2e-6)
    v = SimpleNamespace(start_m=(20e-6, 20e-6, -1.0), end_m=(20e-6, 20e-6, 1.0), radius_m=5e-6)
    d = cylinder_wall_distance(grid, [v])
    z, y, x = grid.mesh_m()
    assert d == pytest.approx(np.broadcast_to(np.hypot(x - 20e-6, y - 20e-6) - 5e-6, d.shape), abs=1e-18)
    assert np.all(np.isinf(cylinder_wall_distance(grid, [])))


def slab_solution(n, length, s, d3):
    grid = Grid((n, 1, 1), length / n)
    fixed = np.zeros(grid.shape_zyx, bool)
    fixed[..., 0] = True  # a vessel at the centre of the first voxel, held at blood pH
    region = np.ones(grid.shape_zyx, np.uint8)
    field = ProtonField("numba", grid, region, cell_density_per_m3=[0, s / PROTON_PRODUCTION_MOL_PER_CELL_S, 0],
                        removal_rate_per_s=[0, d3, 0], fixed=fixed)
    return grid, field.solve(tol=1e-12)


def test_reaction_diffusion_slab_matches_analytic_second_order():
    # 1-D: vessel at x0 = h/2 holding [H⁺]_b, uniform production S and removal d₃(H − H_b), no flux at
    # x = L: H − H_b = (S/d₃)(1 − cosh((L − x)/ℓ)/cosh((L − x₀)/ℓ)), ℓ = √(D_H/d₃) = 2.13 mm with the
    # PHYSICS.md values (S = r₃ρ = 1.1e-6 mol m⁻³ s⁻¹, d₃ = 1.1e-4 1/s; the well-mixed level pH 5.0)
    s, d3, length = 2.2e-20 * 5e13, 1.1e-4, 4e-3
    ell = math.sqrt(DH / d3)
    errors, ph_errors = [], []
    for n in (40, 80, 160):
        grid, sol = slab_solution(n, length, s, d3)
        x = grid.centers_m(0)
        x0 = x[0]
        theta = s / d3 * (1 - np.cosh((length - x) / ell) / np.cosh((length - x0) / ell))
        errors.append(np.abs(sol.proton_mol_per_m3[0, 0] - HB - theta).max() / (s / d3))
        ph_errors.append(np.abs(sol.ph[0, 0] - ph_from_proton(HB + theta)).max())
        led = sol.ledger_mol_per_s
        assert abs(led["balance_error"]) < 1e-10  # production = vascular removal + vessel uptake
        assert led["source"] == pytest.approx(s * (n - 1) * grid.voxel_volume_m3, rel=1e-12)
        assert sol.kind == "reaction_diffusion" and sol.info.converged
    # measured 4.9e-5, 1.2e-5, 3.1e-6 of S/d₃: second order (ratio 4.0 per halving); allow 3.5
    assert errors[0] / errors[1] > 3.5 and errors[1] / errors[2] > 3.5, errors
    assert max(ph_errors) < 1e-4, ph_errors
    assert 5.0 < sol.ph[0, 0, -1] < 5.3 and sol.ph[0, 0, 0] == pytest.approx(BLOOD_PH)


def test_reaction_diffusion_around_a_vessel_matches_bessel_solution():
    from scipy.special import i0, i1, k0, k1

    # a held vessel (r_w = 8 µm) removes acid produced in the annulus up to R_t = 150 µm, where a
    # strong vascular removal d₃ = 1e-2 1/s (ℓ = 224 µm) also acts (as per-voxel exchange weighted by
    # the area fraction inside R_t); nothing beyond R_t, so the no-flux condition at R_t holds
    # exactly (as in the Krogh oxygen test). Exact:
    # θ = S/d₃ + A I0(r/ℓ) + B K0(r/ℓ), θ(r_w) = 0, θ'(R_t) = 0.
    rw, rt, s, d3, h = 8e-6, 150e-6, 1.1e-6, 1e-2, 2e-6
    ell = math.sqrt(DH / d3)
    a_, b_ = rw / ell, rt / ell
    # A I0(a) + B K0(a) = −S/d₃ and A I1(b) − B K1(b) = 0
    mat = np.array([[i0(a_), k0(a_)], [i1(b_), -k1(b_)]])
    A, B = np.linalg.solve(mat, [-s / d3, 0.0])
    k = krogh_geometry(h, rw, rt)
    frac = k.tissue_fraction
    region = np.ones(k.grid.shape_zyx, np.uint8)
    field = ProtonField("numba", k.grid, region, cell_density_per_m3=[0, s / PROTON_PRODUCTION_MOL_PER_CELL_S, 0],
                        removal_rate_per_s=0.0, production_factor=frac, wall_exchange_per_s=d3 * frac,
                        fixed=k.fixed, wall_factor=k.wall_factor)
    sol = field.solve(tol=1e-12)
    r = k.r_m
    tissue = (r > rw) & (r <= rt)
    theta = s / d3 + A * i0(r[tissue] / ell) + B * k0(r[tissue] / ell)
    err = np.abs(sol.proton_mol_per_m3[tissue] - HB - theta).max() / theta.max()
    # second-order scheme at r_w = 4h: measured 0.20 % of the largest excess; 1 % allowed
    assert err < 0.01, err
    assert abs(sol.ledger_mol_per_s["balance_error"]) < 1e-9
    assert sol.ledger_mol_per_s["vessel"] < 0 < sol.ledger_mol_per_s["source"]


def test_hypoxia_raises_production_linearly():
    # the problem is linear in the source: at P_O2 = 0 everywhere a gain G multiplies the excess
    # acid θ = H − H_b by exactly G (to the solver tolerance)
    grid = Grid((30, 20, 1), 20e-6)
    fixed = np.zeros(grid.shape_zyx, bool)
    fixed[..., :2] = True
    region = np.ones(grid.shape_zyx, np.uint8)
    base = ProtonField("numpy", grid, region, fixed=fixed).solve(tol=1e-12)
    po2 = np.zeros(grid.shape_zyx)
    hyp = ProtonField("numpy", grid, region, fixed=fixed, po2_pa=po2, hypoxia_gain=2.5).solve(tol=1e-12)
    t0, t1 = base.proton_mol_per_m3 - HB, hyp.proton_mol_per_m3 - HB
    assert t1[..., 2:] == pytest.approx(2.5 * t0[..., 2:], rel=1e-8)
    # well-oxygenated tissue (P ≫ P_h): the factor is ≈ 1
    ok = ProtonField("numpy", grid, region, fixed=fixed, po2_pa=np.full(grid.shape_zyx, 1e6 * MMHG_PA),
                     hypoxia_gain=2.5).solve(tol=1e-12)
    assert ok.proton_mol_per_m3 == pytest.approx(base.proton_mol_per_m3, rel=1e-5)
    with pytest.raises(ValueError, match="po2_pa"):
        ProtonField("numpy", grid, region, hypoxia_gain=2.0)


def test_backends_agree(backend):
    grid = Grid((16, 12, 10), 20e-6)
    region = np.ones(grid.shape_zyx, np.uint8)
    region[:, :, :4] = 0
    fixed = np.zeros(grid.shape_zyx, bool)
    fixed[:, 5:7, 8:10] = True
    kw = dict(fixed=fixed, wall_exchange_per_s=np.where(region == 0, 1e-3, 0.0), boundary=("no_flux", "periodic", "fixed"))
    ref = ProtonField("numpy", grid, region, **kw).solve(tol=1e-12)
    sol = ProtonField(backend, grid, region, **kw).solve(tol=1e-12)
    assert sol.ph == pytest.approx(ref.ph, abs=1e-9)
    assert abs(sol.ledger_mol_per_s["balance_error"]) < 1e-9
    assert sol.ledger_mol_per_s["boundary"] < 0  # acid leaves through the held z walls


def test_ph_scenario_model_and_build():
    from pydantic import ValidationError

    from nanosim.scenario import CylinderVessel

    spec = PH()
    assert not spec.enabled and spec.kind == "prescribed" and spec.describe().startswith("pH: off")
    assert spec.compartments.values()["lysosome"] == 4.75
    assert compartment_ph("lysosome", spec.compartments.values()) == 4.75
    spec = PH(enabled=True, kind="reaction_diffusion",
              reaction_diffusion={"production_mol_per_cell_s": "2.2e-17 M*cm^3/s",
                                  "tumour": {"cell_density_per_m3": "5e7 1/cm^3", "removal_rate_per_s": "1.1e-4 1/s"}})
    rd = spec.reaction_diffusion
    assert rd.production_mol_per_cell_s == pytest.approx(2.2e-20, rel=1e-12)
    assert rd.tumour.cell_density_per_m3 == pytest.approx(5e13, rel=1e-12)
    assert rd.diffusivity_m2_per_s == pytest.approx(5e-10)
    assert "reaction–diffusion" in spec.describe()
    for bad in ({"kind": "measured"}, {"blood_ph": 15}, {"prescribed": {"decay_length_m": 0}},
                {"reaction_diffusion": {"production_mol_per_cell_s": "1 mol"}}, {"compartments": {"golgi_ph": 6.5}}):
        with pytest.raises(ValidationError):
            PH(**bad)

    grid = Grid((30, 30, 1), 5e-6)
    region = np.ones(grid.shape_zyx, np.uint8)
    vessel = CylinderVessel(start_m=(75e-6, 75e-6, -1e-3), end_m=(75e-6, 75e-6, 1e-3), radius_m="10 um")
    pre = build_ph(PH(enabled=True), grid, region, vessels=[vessel])
    assert pre.kind == "prescribed" and pre.info is None
    assert pre.ph.max() == pytest.approx(BLOOD_PH) and 6.7 < pre.ph.min() < 7.2  # lumen 7.4; tissue 7.2 → 6.7
    # a network's distance map takes part too
    maps = SimpleNamespace(distance_to_wall_m=np.zeros(grid.shape_zyx))
    assert build_ph(PH(enabled=True), grid, region, vasculature=SimpleNamespace(maps=maps)).ph == pytest.approx(7.2)
    sol = build_ph(spec, grid, region, vessels=[vessel], backend="numpy")
    assert sol.kind == "reaction_diffusion" and abs(sol.ledger_mol_per_s["balance_error"]) < 1e-8
    # vessel 75 µm away at most with the PHYSICS.md constants: a mild acidosis, pH ≈ 7.27 at the corners
    assert 7.2 < sol.ph.min() < 7.35 and sol.ph.max() == pytest.approx(BLOOD_PH)
    assert "PHSolution" in repr(sol) and set(sol.mean_ph()) == {"normal", "tumour", "necrotic"}
    assert sol.acidic_fraction(7.5)["tumour"] == 1.0
