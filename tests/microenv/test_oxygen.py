"""Steady oxygen field (PHYSICS.md §6): Krogh–Erlang, Michaelis–Menten radial reference, ledger, backends."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from nanosim.geometry import Grid
from nanosim.microenv.oxygen import (BLOOD_PO2_PA, HYPOXIA_THRESHOLD_PA, MMHG_PA, O2_DIFFUSIVITY_M2_PER_S,
                                     O2_SOLUBILITY_MOL_PER_M3_PA, OxygenField, SteadySolveError, blood_po2_map,
                                     build_oxygen, krogh_erlang_po2, krogh_geometry, mm_consumption,
                                     oxygen_benchmark_case)
from nanosim.scenario.microenv import Oxygen

D, ALPHA = O2_DIFFUSIVITY_M2_PER_S, O2_SOLUBILITY_MOL_PER_M3_PA
RW, RT = 8e-6, 80e-6  # vessel and Krogh tissue radii
PW = 40 * MMHG_PA


def krogh_case(h, m, pm, backend="numba"):
    """The Krogh cylinder of :func:`krogh_geometry` (consumption only inside R_t, exact no-flux there)."""
    k = krogh_geometry(h, RW, RT)
    field = OxygenField(backend, k.grid, np.zeros(k.grid.shape_zyx, np.uint8), consumption_mol_per_m3_s=m,
                        half_saturation_pa=pm, consumption_factor=k.tissue_fraction, fixed=k.fixed, fixed_po2_pa=PW,
                        wall_factor=k.wall_factor)
    return k.r_m, field.solve(tol=1e-11)


def test_mm_consumption_values_slope_and_continuation():
    m, pm = 2.0, 3.0
    p = np.array([-6.0, 0.0, 3.0, 9.0])
    g, dg = mm_consumption(np, p, m, pm)
    assert g == pytest.approx([-4.0, 0.0, 1.0, 1.5], rel=1e-15)
    assert dg == pytest.approx([m / pm, m / pm, m * pm / 36, m * pm / 144], rel=1e-15)
    # the slope is the derivative (central difference, error O(δ²) ≈ 1e-10)
    for p0 in (-1.0, 0.5, 7.0):
        d = 1e-5
        num = (mm_consumption(np, p0 + d, m, pm)[0] - mm_consumption(np, p0 - d, m, pm)[0]) / (2 * d)
        assert num == pytest.approx(mm_consumption(np, p0, m, pm)[1], rel=1e-8)
    g0, dg0 = mm_consumption(np, p, m, 0.0)  # zero-order
    assert np.all(g0 == m) and np.all(dg0 == 0)


def test_krogh_erlang_within_one_percent_and_converges():
    # zero-order consumption chosen so that P(R_t) = 10 mmHg (a 30 mmHg drop over the cylinder).
    m = (10 * MMHG_PA - PW) / krogh_erlang_po2(RT, RW, RT, 0.0, 1.0, D, ALPHA)
    errors = []
    for h in (4e-6, 2e-6, 1e-6):
        r, sol = krogh_case(h, m, 0.0)
        exact = krogh_erlang_po2(r, RW, RT, PW, m, D, ALPHA)
        tissue = (r > RW) & (r <= RT)
        errors.append(float(np.abs(sol.po2_pa - exact)[tissue].max() / PW))
        local = float((np.abs(sol.po2_pa - exact) / exact)[tissue].max())
        # relative to the local P (≥ 10 mmHg): measured 2.2 %, 0.35 %, 0.095 %
        assert h > 2e-6 or local < 0.01, (h, local)
        assert sol.info.converged
        # consumption = supply from the vessel to the solver tolerance
        assert abs(sol.ledger_mol_per_s["balance_error"]) < 1e-8
        # the supply equals the exact consumption of the annulus (per unit length × one voxel layer);
        # the area weighting makes the discrete annulus exact to ~(h/R_t)² / sub-sampling ≈ 1e-3
        annulus = math.pi * (RT**2 - RW**2) * h * m
        assert sol.ledger_mol_per_s["vessel"] == pytest.approx(annulus, rel=5e-3)
    # measured 0.61 %, 0.13 %, 0.043 % of P_w (h = 4, 2, 1 µm; r_w = 2h … 8h). The scheme is second
    # order (Shortley–Weller wall, area-weighted consumption edge) but the wall's sub-voxel position
    # changes with h, so the decrease is not a clean 4× per halving: require < 1 % everywhere and at
    # least 4× over two halvings (first order would give 4×, second 16×).
    assert max(errors) < 0.01, errors
    assert errors[2] < errors[0] / 4, errors


def test_michaelis_menten_cylinder_matches_radial_reference():
    from scipy.integrate import solve_ivp
    from scipy.optimize import brentq

    # M large enough that zero-order consumption would go to −10 mmHg at R_t: Michaelis–Menten
    # (P_m = 1 mmHg) keeps P positive, ≈ 1.8 mmHg at R_t, deep in the nonlinear range.
    m = (-10 * MMHG_PA - PW) / krogh_erlang_po2(RT, RW, RT, 0.0, 1.0, D, ALPHA)
    pm = 1.0 * MMHG_PA
    k = m / (D * ALPHA)

    def shoot(p_rt, dense=False):  # (r P')' = r k P/(P + P_m), from R_t (P' = 0) inward to r_w
        f = lambda r, y: [y[1] / r, r * k * max(y[0], 0.0) / (max(y[0], 0.0) + pm)]  # noqa: E731
        return solve_ivp(f, (RT, RW), [p_rt, 0.0], method="DOP853", rtol=1e-12, atol=1e-12 * PW, dense_output=dense)

    p_rt = brentq(lambda p: shoot(p).y[0, -1] - PW, 1e-9 * PW, PW, xtol=1e-14 * PW, rtol=1e-14)
    ref = shoot(p_rt, dense=True).sol
    assert 1.0 < p_rt / MMHG_PA < 3.0  # the case is in the nonlinear range it means to test
    errors = []
    for h in (4e-6, 2e-6, 1e-6):
        r, sol = krogh_case(h, m, pm)
        tissue = (r > RW) & (r <= RT)
        errors.append(float(np.abs(sol.po2_pa[tissue] - ref(r[tissue])[0]).max() / PW))
        assert sol.info.converged and sol.info.newton_iterations <= 15
        assert abs(sol.ledger_mol_per_s["balance_error"]) < 1e-8
    # measured 0.71 %, 0.17 %, 0.057 % of P_w: second order, as for Krogh–Erlang
    assert max(errors[1:]) < 0.01 and errors[0] < 0.02, errors
    assert errors[2] < errors[0] / 4, errors


def slab(n=200, h=1e-6, m=None, pm=0.0, backend="numba"):
    """1-D: a held voxel at x = h/2, tissue to the no-flux wall at x = n h."""
    grid = Grid((n, 1, 1), h)
    fixed = np.zeros(grid.shape_zyx, bool)
    fixed[..., 0] = True
    region = np.ones(grid.shape_zyx, np.uint8)  # tumour
    field = OxygenField(backend, grid, region, consumption_mol_per_m3_s=[0.0, m, 0.0], half_saturation_pa=pm,
                        fixed=fixed, fixed_po2_pa=PW)
    x = grid.centers_m(0) - h / 2  # distance from the held node
    return grid, x, field.solve(tol=1e-12)


def test_slab_zero_order_is_exact_and_hypoxic_fraction():
    # P = P_w − (M/Dα)(L x − x²/2), L the distance to the no-flux face: quadratic, so the 7-point
    # scheme reproduces it to round-off (tolerance 1e-9 of P_w, the solver tolerance)
    n, h = 200, 1e-6
    L = (n - 0.5) * h
    m = 0.9 * PW * D * ALPHA / (L * L / 2)  # P(L) = 0.1 P_w = 4 mmHg
    grid, x, sol = slab(n, h, m)
    exact = PW - m / (D * ALPHA) * (L * x - x * x / 2)
    assert np.abs(sol.po2_pa[0, 0] - exact).max() < 1e-9 * PW
    hf = sol.hypoxic_fraction()
    expect = float((exact[1:] < HYPOXIA_THRESHOLD_PA).mean())  # tissue voxels below 10 mmHg
    assert 0.1 < expect < 0.9
    assert hf["tumour"] == pytest.approx(expect, abs=1e-12)
    assert hf["all"] == pytest.approx(expect, abs=1e-12)
    assert math.isnan(hf["normal"]) and math.isnan(hf["necrotic"])
    assert sol.hypoxic_fraction(threshold_pa=0.0)["tumour"] == 0.0
    s = sol.summary()
    assert s["converged"] and s["po2_mmhg"]["max"] == pytest.approx(exact[1] / MMHG_PA, rel=1e-9)
    assert "hypoxic" in repr(sol)


def test_uniform_exchange_and_box_walls():
    # no vessels: uniform exchange q = P_w S/V α with zero-order M gives P = P_b − M/q everywhere,
    # for no-flux and periodic walls alike; fixed walls with no consumption hold the wall value
    grid = Grid((6, 5, 4), 10e-6)
    region = np.ones(grid.shape_zyx, np.uint8)
    for bc in ("no_flux", "periodic", ("periodic", "no_flux", "periodic")):
        f = OxygenField("numpy", grid, region, consumption_mol_per_m3_s=[0, 5e-3, 0], half_saturation_pa=0.0,
                        exchange_rate_per_s=3.5, blood_po2_pa=50 * MMHG_PA, boundary=bc)
        sol = f.solve(tol=1e-12)
        assert sol.po2_pa == pytest.approx(50 * MMHG_PA - 5e-3 / (3.5 * ALPHA), rel=1e-10)
        assert abs(sol.ledger_mol_per_s["balance_error"]) < 1e-10
    f = OxygenField("numpy", grid, region, consumption_mol_per_m3_s=0.0, boundary="fixed", boundary_po2_pa=20 * MMHG_PA)
    sol = f.solve(tol=1e-12)
    assert sol.po2_pa == pytest.approx(20 * MMHG_PA, rel=1e-10)
    with pytest.raises(ValueError, match="boundary"):
        OxygenField("numpy", grid, region, boundary="open")


def test_no_supply_goes_anoxic_and_bad_inputs_raise():
    # no vessel and no held wall: Michaelis–Menten consumption takes P to 0 (the tangent
    # continuation for P < 0 makes 0 the unique steady state)
    grid = Grid((8, 8, 1), 10e-6)
    region = np.zeros(grid.shape_zyx, np.uint8)
    sol = OxygenField("numpy", grid, region).solve(po2_initial_pa=np.full(grid.shape_zyx, 30 * MMHG_PA))
    assert sol.info.converged and np.abs(sol.po2_pa).max() < 1e-6 * MMHG_PA
    assert sol.hypoxic_fraction()["normal"] == 1.0
    from nanosim.microenv.oxygen import SteadyReactionDiffusion

    with pytest.raises(SteadySolveError, match="undetermined"):
        SteadyReactionDiffusion("numpy", grid, 1.0).solve()
    with pytest.raises(ValueError, match="region"):
        OxygenField("numpy", grid, region[:, :4])
    with pytest.raises(ValueError, match="per region"):
        OxygenField("numpy", grid, region, consumption_mol_per_m3_s=[1.0, 2.0])


def test_backends_agree(backend):
    # numpy is the reference; the numba kernels and cupy run the same algorithm, so they agree to the
    # solver tolerance (1e-10 relative residual → ≲ 1e-7 of P after the condition number)
    ref = oxygen_benchmark_case(24, "numpy").solve(tol=1e-10)
    sol = oxygen_benchmark_case(24, backend).solve(tol=1e-10)
    assert sol.info.newton_iterations == ref.info.newton_iterations
    assert np.abs(sol.po2_pa - ref.po2_pa).max() < 1e-7 * PW
    assert abs(sol.ledger_mol_per_s["balance_error"]) < 1e-7


@pytest.mark.slow
def test_benchmark_128_cubed_converges():
    # 2.1 M voxels with a hypoxic tumour core: Newton through the Michaelis–Menten range; the
    # ledger closes to about the solver tolerance times the condition of the sum (1e-9 → ≲ 1e-7)
    sol = oxygen_benchmark_case(128, "numba").solve(tol=1e-9)
    assert sol.info.converged and sol.info.newton_iterations <= 15
    assert abs(sol.ledger_mol_per_s["balance_error"]) < 1e-6
    hf = sol.hypoxic_fraction()
    assert hf["normal"] == 0.0 and 0.2 < hf["tumour"] < 0.8 and hf["necrotic"] == 1.0
    assert -1e-3 < sol.po2_mmhg[sol.tissue].min() < 1.0


def test_blood_po2_map_by_wall_type():
    from nanosim.vasculature.network import WallType

    codes = np.array([int(WallType.ARTERY), int(WallType.SINUSOID), 255], np.uint8)
    assert blood_po2_map(codes) == pytest.approx([BLOOD_PO2_PA["artery"], BLOOD_PO2_PA["sinusoid"],
                                                  BLOOD_PO2_PA["capillary"]])
    assert blood_po2_map(codes, default_pa=0.0)[2] == 0.0


def test_build_from_scenario_models():
    from nanosim.scenario import CylinderVessel

    grid = Grid((40, 40, 1), 4e-6)
    region = np.ones(grid.shape_zyx, np.uint8)
    vessel = CylinderVessel(start_m=(80e-6, 80e-6, -1e-3), end_m=(80e-6, 80e-6, 1e-3), radius_m="8 um")
    spec = Oxygen(enabled=True, cylinder_vessel_po2_pa="40 mmHg", tumour={"max_consumption_mol_per_m3_s": "5 uM/s"})
    sol = build_oxygen(spec, grid, region, vessels=[vessel], backend="numba").solve()
    assert sol.info.converged and abs(sol.ledger_mol_per_s["balance_error"]) < 1e-7
    assert sol.po2_pa.max() == pytest.approx(40 * MMHG_PA)  # the held lumen
    assert 0 < sol.po2_pa.min() < 40 * MMHG_PA
    # an exchange vasculature (uniform S/V, sinusoid blood) on top, tissue fraction scaling consumption
    maps = SimpleNamespace(surface_per_volume_per_m=np.full(grid.shape_zyx, 7000.0),
                           wall_type=np.full(grid.shape_zyx, 4, np.uint8), volume_fraction=np.zeros(grid.shape_zyx))
    sol2 = build_oxygen(spec, grid, region, vessels=[vessel], vasculature=SimpleNamespace(maps=maps),
                        backend="numpy").solve()
    assert sol2.ledger_mol_per_s["exchange"] > 0 and sol2.po2_pa.min() > sol.po2_pa.min()


def test_oxygen_scenario_model():
    o = Oxygen()
    assert not o.enabled and o.describe() == "oxygen: off"
    assert o.necrotic.max_consumption_mol_per_m3_s == 0.0
    assert o.solubility_mol_per_m3_pa == pytest.approx(1.39e-3 / MMHG_PA)
    o = Oxygen(enabled=True, solubility_mol_per_m3_pa="1.39 uM/mmHg", boundary_po2_pa="30 mmHg",
               normal={"max_consumption_mol_per_m3_s": "22 uM/s", "half_saturation_pa": 0})
    assert o.solubility_mol_per_m3_pa == pytest.approx(1.39e-3 / MMHG_PA, rel=1e-12)
    assert o.normal.max_consumption_mol_per_m3_s == pytest.approx(0.022)
    assert o.blood_po2_pa.table()["artery"] == pytest.approx(95 * MMHG_PA)
    text = o.describe()
    assert "zero-order" in text and "walls held at 30 mmHg" in text and "artery 95" in text
    from pydantic import ValidationError

    for bad in ({"solubility_mol_per_m3_pa": "3 uM"}, {"wall_permeability_m_per_s": -1},
                {"normal": {"max_consumption_mol_per_m3_s": 1, "typo": 2}}, {"hypoxia_threshold_pa": "10 um"}):
        with pytest.raises(ValidationError):
            Oxygen(**bad)
