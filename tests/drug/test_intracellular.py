"""The cells' intracellular pool of the free-drug model: uptake, efflux, elimination, ledger.

Well-mixed boxes (uniform field, no-flux walls) reduce the model to the linear system

    dC/dt = −(k_u + k_d) C + k_e C_i,   dC_i/dt = k_u C − (k_e + k_m) C_i,

whose exact solution (a 2×2 matrix exponential) is the reference. Each scheme is first order in
time (explicit and implicit Euler for the operator, Lie splitting for efflux and elimination), so
the error at a fixed time is ∝ Δt: the tests measure that order from two step sizes.
"""

import math

import numpy as np
import pytest
from scipy.linalg import expm

from nanosim.backends import get_backend
from nanosim.drug import build_model
from nanosim.drug.free_drug import LEDGER_NAMES
from test_free_drug import scenario as free_drug_scenario  # same directory

C0 = 2.0  # mol/m³


def scenario(uptake, efflux=0.0, elimination=0.0, decay=0.0, scheme="explicit", **extra):
    """A 6×5×4 well-mixed box (uniform start, no-flux walls) with the cells' rates."""
    return free_drug_scenario(**{
        "grid.shape": [6, 5, 4], "grid.voxel_size_m": "10 um",
        "drug.normal.uptake_rate_per_s": uptake, "drug.normal.efflux_rate_per_s": efflux,
        "drug.normal.intracellular_elimination_rate_per_s": elimination, "drug.decay_rate_per_s": decay,
        "drug.initial": {"kind": "uniform", "concentration_mol_per_m3": C0},
        "transport.scheme": scheme, "time.stop_s": "100 s", **extra})


def exact(t, ku, ke, km, kd):
    a = np.array([[-(ku + kd), ke], [ku, -(ke + km)]])
    return expm(a * t) @ np.array([C0, 0.0])


def run(sc, t_end, n, backend="numba"):
    m = build_model(sc, get_backend(backend), np.float64)
    for _ in range(n):
        m.step(t_end / n)
    be = m.backend
    return m, float(np.mean(be.to_host(m.op.c))), float(np.mean(be.to_host(m.ci)))


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_uptake_efflux_elimination_converge_at_first_order_to_the_exact_solution(scheme):
    ku, ke, km, kd = 0.02, 0.01, 0.004, 0.003
    sc = scenario(ku, ke, km, kd, scheme=scheme)
    t_end = 100.0
    ref = exact(t_end, ku, ke, km, kd)
    errs = []
    for n in (50, 100):
        _, c, ci = run(sc, t_end, n)
        errs.append(max(abs(c - ref[0]), abs(ci - ref[1])) / C0)
    order = math.log2(errs[0] / errs[1])
    assert 0.9 < order < 1.1, (errs, order)
    # first order: error ≈ Δt × (rates)² × t scale; with Δt·k_max ≤ 0.05 it stays below a few %
    assert errs[1] < 0.02, errs


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_with_uptake_only_every_mole_taken_up_stays_in_the_cells(scheme):
    """No efflux, no elimination: what leaves the free drug by uptake is exactly what the cells
    hold (the operator's loss split voxel by voxel), and decay is the only loss."""
    sc = scenario(0.02, decay=0.005, scheme=scheme)
    m, c, ci = run(sc, 60.0, 30)
    led = dict(zip(LEDGER_NAMES, m.ledger_mol))
    vol = m.grid.voxel_volume_m3 * np.prod(m.grid.shape_zyx)
    assert ci * vol == pytest.approx(led["uptake_mol"], rel=1e-12)
    # the uptake share of the operator's loss is k_u/(k_u + k_d) in a uniform field
    assert led["uptake_mol"] == pytest.approx(0.8 * led["loss_mol"], rel=1e-12)
    assert abs(m.mass_balance_error()) < 1e-13


def test_efflux_equilibrium_ratio():
    """Uptake and efflux only: C_i/C → k_u/k_e. The split step's steady state differs from it at
    first order in the step: with the uptake of a step ≈ C(1 − e^{−k_u Δt}) (the explicit scheme
    sub-steps inside the diffusion limit) and efflux C_i(1 − e^{−k_e Δt}) after it, the discrete
    ratio is (1 − e^{−k_u Δt}) e^{−k_e Δt}/(1 − e^{−k_e Δt}) = (k_u/k_e)(1 − (k_u + k_e)Δt/2 + O(Δt²)):
    within (k_u + k_e)Δt of k_u/k_e, and twice as close at half the step."""
    ku, ke = 0.02, 0.005
    dev = []
    for dt in (2.0, 1.0):
        _, c, ci = run(scenario(ku, ke), 4000.0, round(4000.0 / dt))
        assert ci / c == pytest.approx(ku / ke, rel=(ku + ke) * dt)
        dev.append(abs(ci / c - ku / ke))
    assert 1.8 < dev[0] / dev[1] < 2.2, dev
    assert c + ci == pytest.approx(C0, rel=1e-12)  # no loss anywhere


def test_ledger_closes_with_exchange_and_backends_agree(tmp_path):
    """A vessel exchanging with a constant plasma, binding, uptake, efflux and elimination on:
    the float64 ledger closes to round-off on numpy and numba, which agree to round-off."""
    sc = scenario(0.01, 0.002, 0.001, 0.001, **{
        "vessels": [{"kind": "cylinder", "start_m": ["30 um", "25 um", "-1 mm"], "end_m": ["30 um", "25 um", "1 mm"],
                     "radius_m": "6 um", "wall": "exchange"}],
        "drug.permeability_m_per_s": 1e-6,
        "drug.plasma": {"kind": "constant", "concentration_mol_per_m3": 1.0},
        "drug.normal.binding_on_rate_per_s": 0.05, "drug.normal.binding_off_rate_per_s": 0.01,
    })
    out = {}
    for backend in ("numpy", "numba"):
        m, _, _ = run(sc, 50.0, 20, backend)
        assert abs(m.mass_balance_error()) < 1e-13, backend
        out[backend] = m
    a, b = out["numpy"], out["numba"]
    np.testing.assert_allclose(b.backend.to_host(b.ci), a.backend.to_host(a.ci), rtol=1e-12)
    np.testing.assert_allclose(b.ledger_mol, a.ledger_mol, rtol=1e-12)
    metrics = b.metrics()
    assert metrics["intracellular_drug_mol"] > 0 and metrics["normal_mean_intracellular_mol_per_m3"] > 0


def test_checkpoint_round_trip_continues_bit_identically():
    sc = scenario(0.02, 0.01, 0.004)
    a, _, _ = run(sc, 20.0, 10)
    arrays, attrs = a.state_arrays(), a.state_attrs()
    assert "intracellular_drug" in arrays
    b = build_model(sc, get_backend("numba"), np.float64)
    b.load_state(arrays, attrs)
    for m in (a, b):
        for _ in range(5):
            m.step(2.0)
    np.testing.assert_array_equal(np.asarray(a.ci), np.asarray(b.ci))
    np.testing.assert_array_equal(np.asarray(a.op.c), np.asarray(b.op.c))
    np.testing.assert_array_equal(a.ledger_mol, b.ledger_mol)


def test_no_uptake_means_no_intracellular_pool():
    m = build_model(scenario(0.0), get_backend("numpy"), np.float64)
    assert m.ci is None and "intracellular_drug" not in m.field_names


def test_negative_efflux_is_refused_with_the_field_named():
    with pytest.raises(Exception) as info:
        scenario(0.01, efflux=-1.0)
    assert "efflux_rate_per_s" in str(info.value)
