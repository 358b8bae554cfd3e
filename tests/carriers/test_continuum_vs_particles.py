"""The continuum carrier model, and the cross-check of the particle method against it.

Shared test case (PHYSICS.md §11 item 3, "particle density matches the continuum solution")
---------------------------------------------------------------------------------------------
A periodic box of 320 µm with a tumour sphere (radius 80 µm) and its necrotic core (30 µm) in
normal liver, and a vessel (a cylinder of radius 20 µm along z) through the normal tissue with
wall exchange ``P·S/V`` = 4e-3 1/s and no carriers in the plasma. Carriers start free as a
Gaussian blob (σ = 25 µm) centred 60 µm from the tumour centre (inside the tumour, 20 µm from
its surface), diffuse with one D = 3e-12 m²/s everywhere, drift with a uniform 0.05 µm/s along
x, bind, unbind and are internalised at region-wise rates (the tumour binds and internalises
most), are drained by lymphatics in normal tissue and return to the blood through the vessel
wall, for 400 s.

*Why one diffusivity:* the particle step uses the plain Itô rule with the diffusivity of the
voxel it starts in, so where D jumps its density follows ∂c/∂t = ∇²(D c), while the continuum
solves ∇·(D∇c); the two differ at the interface. The case therefore keeps D uniform and lets
every reaction differ by region. The geometry (regions, vessel) is voxelised once on the 10 µm
grid and refined, so every resolution and the particles see the same staircase geometry.

Particles: N = 2·10⁵, each one 1/N of the dose, ``step_particles`` (numba) then
``transition`` each Δt = 1 s, so that the one-jump-per-step bias (largest total exit rate
6.8e-3 1/s, K Δt < 0.007) is below half a binomial standard error even for a particle that
stays in one region (tests/carriers/test_particle_states.py). Continuum: the explicit operator
at h = 5 µm (reference) and h = 10 µm, each at its stability-limited step (1.1 s and 3.3 s);
the particles' step is set by the transitions, the continuum's time error is part of the
resolution difference below.

Comparison: counts per pool (free, bound, internalised) in 8³ bins of 40 µm against the
continuum amount in the bin (the reference's), in units of particles. Each bin's deviation is
scaled by ``sqrt(μ + Δ²)``: ``μ`` the Poisson variance of the count (an upper bound of the
multinomial variance ``μ(1 − μ/N)``), ``Δ`` the difference between the two continuum
resolutions, the estimate of the reference's discretisation error (first-order upwinding and
time stepping: the error at h = 5 µm is about the h = 10 µm − 5 µm difference; measured median
Δ/√μ ≈ 0.05–0.16). Bins with μ ≥ 10 enter a chi-square test per pool whose threshold is the
1 − 1e-4 quantile of χ²(bins); pool totals and the drained and intravasated amounts are
z-tested with the binomial variance, |z| < 4. A negative control shows the test has power: the
same particles against a continuum with a 20 % lower tumour binding rate fail by far.

A second default case starts empty and lets carriers enter from plasma through the same
vessel wall (``P·S/V c_p``: particles created per voxel and step, Poisson), so extravasation and
intravasation are both checked; a slow variant repeats the first case with 10⁶ particles at
half the step.
"""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import expm

from nanosim.backends import get_backend
from nanosim.carriers.continuum import LEDGER_NAMES, POOLS, ContinuumCarrierModel, gaussian_cell_averages
from nanosim.geometry.grid import Grid
from nanosim.kernels import compartments as C
from nanosim.kernels import particle_states as PS
from nanosim.kernels import particles as P

K_SE = 4
BOX = 320e-6
H = 10e-6  # the geometry's grid
D = 3e-12  # m²/s
U = 5e-8  # m/s, along x
T_END = 400.0
DT_PARTICLES = 1.0
N_PARTICLES = 200_000
N_BINS = 8
BLOB_CENTRE = (130e-6, 160e-6, 160e-6)
BLOB_SIGMA = 25e-6
# [k_bind, k_unbind, k_internalise_free, k_internalise_bound, k_lymph] (1/s)
RATES = np.array([[1.0e-3, 2.0e-3, 3.0e-4, 5.0e-4, 1.5e-3],   # normal
                  [4.0e-3, 1.0e-3, 6.0e-4, 2.0e-3, 0.0],      # tumour
                  [5.0e-4, 5.0e-3, 0.0, 0.0, 0.0]])           # necrotic
PERIODIC = (True, True, True)
POOL_CODES = {"free": C.TISSUE, "bound": C.BOUND, "internalised": C.INTERNALISED}
MU_MIN = 10  # bins with fewer expected particles are left out of the chi-square


def _geometry():
    """Region codes and wall exchange (1/s) voxelised on the 10 µm grid."""
    g = Grid((32, 32, 32), H)
    z, y, x = g.mesh_m()
    r2 = (x - 190e-6) ** 2 + (y - 160e-6) ** 2 + (z - 160e-6) ** 2
    region = np.zeros(g.shape_zyx, np.uint8)
    region[r2 <= (80e-6) ** 2] = 1
    region[r2 <= (30e-6) ** 2] = 2
    vessel = (x - 100e-6) ** 2 + (y - 230e-6) ** 2 <= (20e-6) ** 2
    exchange = np.broadcast_to(np.where(vessel, 4e-3, 0.0), g.shape_zyx).copy()
    return g, region, exchange


def _refine(a, f):
    return np.repeat(np.repeat(np.repeat(a, f, 0), f, 1), f, 2)


def _continuum(refine, rates=RATES, n_blob=N_PARTICLES, plasma=0.0, outer_dt=10.0):
    """The continuum at ``H / refine``: a blob of ``n_blob`` carriers and/or a plasma source."""
    g0, region, exchange = _geometry()
    g = Grid(tuple(n * refine for n in g0.shape_xyz), H / refine)
    m = ContinuumCarrierModel("numba", g, _refine(region, refine), rates, D,
                              velocity_m_per_s=(U, 0.0, 0.0),
                              exchange_per_s=_refine(exchange, refine), plasma_per_m3=plasma,
                              boundary=("periodic",) * 3)
    m.set_initial(gaussian_cell_averages(g, float(n_blob), BLOB_CENTRE, BLOB_SIGMA, PERIODIC))
    for _ in range(int(round(T_END / outer_dt))):
        m.step(outer_dt)
    return m


def _particles(n_blob=N_PARTICLES, plasma=0.0, dt=DT_PARTICLES, seed=7):
    """Particles after T_END (one carrier each): a blob of ``n_blob`` and/or a vessel source.

    With a plasma concentration, new particles appear at the start of every step in the vessel
    voxels, Poisson-distributed with mean ``P·S/V · c_p · V · Δt`` (the continuum's
    extravasation), uniformly inside the voxel, then move and change state like the rest.
    Returns positions, states (of every particle ever made) and the transition counts.
    """
    g, region, exchange = _geometry()
    rs = np.random.default_rng(seed)
    vox = np.argwhere(exchange > 0)  # [z, y, x]
    mean_new = exchange[tuple(vox.T)] * plasma * g.voxel_volume_m3 * dt
    n_steps = int(round(T_END / dt))
    expected = mean_new.sum() * n_steps
    cap = n_blob + int(expected + 10 * math.sqrt(expected) + 10)
    pos = np.zeros((cap, 3))
    pos[:n_blob] = (np.array(BLOB_CENTRE) + BLOB_SIGMA * rs.standard_normal((n_blob, 3))) % BOX
    xyz = [np.ascontiguousarray(pos[:, k]) for k in range(3)]
    ids = np.arange(cap, dtype=np.int64)
    state = np.full(cap, C.INACTIVE, np.uint8)
    state[:n_blob] = C.TISSUE
    n_live = n_blob
    # uniform velocity: the move needs only the box, given as one voxel
    box = Grid((1, 1, 1), BOX)
    vel = np.array([U, 0.0, 0.0]).reshape(3, 1, 1, 1)
    counts = np.zeros(6, np.int64)
    for step in range(n_steps):
        if plasma:
            new = np.repeat(vox, rs.poisson(mean_new), axis=0)
            m = len(new)
            for k in range(3):  # x is the last index of [z, y, x]
                xyz[k][n_live:n_live + m] = (new[:, 2 - k] + rs.random(m)) * H
            state[n_live:n_live + m] = C.TISSUE
            n_live += m
        xs, st, pid = [v[:n_live] for v in xyz], state[:n_live], ids[:n_live]  # views
        P.step_particles("numba", *xs, pid, st, step, dt_s=dt, seed=seed, grid=box,
                         diffusivity_m2_per_s=D, velocity_m_per_s=vel, periodic=PERIODIC)
        counts += PS.transition("numba", *xs, st, pid, step, dt_s=dt, seed=seed, grid=g,
                                region=region, rates_per_s=RATES, intravasation_per_s=exchange)
    return [v[:n_live] for v in xyz], state[:n_live], counts


def _bin_counts(xyz, sel):
    edges = np.linspace(0.0, BOX, N_BINS + 1)
    pts = np.stack([xyz[2][sel], xyz[1][sel], xyz[0][sel]], axis=1)  # [z, y, x] like the fields
    return np.histogramdd(pts, bins=(edges,) * 3)[0]


def _bin_field(model, pool):
    """Carriers of one pool per bin (= expected particles: one particle is one carrier here)."""
    a = model.fields()[pool] * model.grid.voxel_volume_m3
    k = a.shape[0] // N_BINS
    return a.reshape(N_BINS, k, N_BINS, k, N_BINS, k).sum(axis=(1, 3, 5))


def _chi2(counts, mu, disc):
    ok = mu >= MU_MIN
    z = (counts - mu) / np.sqrt(mu + disc**2)
    chi2 = float(np.sum(z[ok] ** 2))
    dof = int(ok.sum())
    return chi2, dof, float(stats.chi2.sf(chi2, dof)), float(np.abs(z[ok]).max())


def _compare_pools(xyz, state, fine, coarse):
    """Chi-square per pool of the binned particles against the continuum (module docstring)."""
    out = {}
    for pool in POOLS:
        counts = _bin_counts(xyz, state == POOL_CODES[pool])
        mu = _bin_field(fine, pool)
        disc = np.abs(mu - _bin_field(coarse, pool))
        out[pool] = _chi2(counts, mu, disc)
        ok = mu >= MU_MIN
        print(f"{pool}: chi2 {out[pool][0]:.1f} on {out[pool][1]} bins, p = {out[pool][2]:.3f}, "
              f"max |z| {out[pool][3]:.2f}, median disc/sqrt(mu) "
              f"{np.median(disc[ok] / np.sqrt(mu[ok])):.3f}")
    return out


def _totals_z(state, fine, coarse, n):
    """z-scores of the particle count per pool and per exit against the continuum amounts.

    Binomial variance of the count of ``n`` particles (for a Poisson source, ``n`` is the
    number made and the variance of the total is at most Poisson: the binomial one is close
    when the pool holds a small part), plus the resolution difference squared.
    """
    exits = {"cleared": C.CLEARED, "intravasated": C.INTRAVASATED}
    out = {}
    for key, code in {**POOL_CODES, **exits}.items():
        got = int(np.sum(state == code))
        want, other = ((m.amounts()[key] if key in POOLS else m.ledger_dict()[key])
                       for m in (fine, coarse))
        p = want / n
        out[key] = (got - want) / math.sqrt(n * p * (1 - p) + (want - other) ** 2)
        print(f"{key}: particles {got}, continuum {want:.1f} (h = 10 µm: {other:.1f}), "
              f"z = {out[key]:+.2f}")
    return out


def _assert_agree(res, min_bins):
    for pool, (chi2, dof, p, zmax) in res.items():
        assert dof >= min_bins, (pool, dof)  # spread over many bins: a spatial test
        assert p > 1e-4, (pool, chi2, dof)
        # no single bin far off either (Bonferroni over ≤ 512 bins: P(|z| > 5) ≈ 3e-4 in all)
        assert zmax < 5.0, (pool, zmax)


@pytest.fixture(scope="module")
def cross():
    fine = _continuum(2)
    coarse = _continuum(1)
    xyz, state, counts = _particles()
    return dict(fine=fine, coarse=coarse, xyz=xyz, state=state, counts=counts)


def test_particle_density_matches_the_continuum(cross):
    res = _compare_pools(cross["xyz"], cross["state"], cross["fine"], cross["coarse"])
    _assert_agree(res, min_bins=100)


def test_pool_totals_and_ledger_match_the_continuum(cross):
    fine, coarse, state, counts = cross["fine"], cross["coarse"], cross["state"], cross["counts"]
    z = _totals_z(state, fine, coarse, N_PARTICLES)
    assert max(abs(v) for v in z.values()) < K_SE, z
    # every particle is somewhere, and the counts are the state changes
    got = {code: int(np.sum(state == code)) for code in range(len(C.NAMES))}
    assert got[C.INACTIVE] == 0 and sum(got.values()) == N_PARTICLES
    assert counts[PS.T_LYMPH] == got[C.CLEARED] and counts[PS.T_INTRAVASATE] == got[C.INTRAVASATED]
    assert counts[PS.T_INTERNALISE_FREE] + counts[PS.T_INTERNALISE_BOUND] == got[C.INTERNALISED]
    assert counts[PS.T_BIND] - counts[PS.T_UNBIND] - counts[PS.T_INTERNALISE_BOUND] == got[C.BOUND]
    # the continuum closes its ledger and splits the operator's loss exactly
    for m in (fine, coarse):
        assert abs(m.mass_balance_error()) < 1e-12
        L = m.ledger_dict()
        assert m.operator_loss == pytest.approx(L["cleared"] + L["internalised_free"], rel=1e-12)
        assert L["internalised_free"] + L["internalised_bound"] == pytest.approx(
            m.amounts()["internalised"], rel=1e-12)


def test_cross_check_detects_a_wrong_continuum(cross):
    # negative control: the same particles against a model whose tumour binds 20 % slower
    rates = RATES.copy()
    rates[1, 0] *= 0.8
    wrong = _continuum(1, rates=rates)
    counts = _bin_counts(cross["xyz"], cross["state"] == C.BOUND)
    mu = _bin_field(wrong, "bound")
    disc = np.abs(_bin_field(cross["fine"], "bound") - _bin_field(cross["coarse"], "bound"))
    chi2, dof, p, _ = _chi2(counts, mu, disc)
    assert p < 1e-8, (chi2, dof)


def test_vessel_source_matches_the_continuum():
    """Carriers enter from the plasma through the vessel wall (``P·S/V c_p``) and leave by it.

    No blob: every particle comes from the source (see :func:`_particles`); about 6·10⁴ enter
    over the run. The number made is Poisson with the continuum's extravasated amount as mean.
    """
    plasma = 1.0e17  # carriers/m³
    fine = _continuum(2, n_blob=0, plasma=plasma)
    coarse = _continuum(1, n_blob=0, plasma=plasma)
    xyz, state, counts = _particles(n_blob=0, plasma=plasma, seed=17)
    made = state.size
    entered = fine.ledger_dict()["extravasated"]
    print(f"made {made}, continuum extravasated {entered:.1f}")
    assert abs(made - entered) < K_SE * math.sqrt(entered)
    _assert_agree(_compare_pools(xyz, state, fine, coarse), min_bins=40)
    z = _totals_z(state, fine, coarse, made)
    assert max(abs(v) for v in z.values()) < K_SE, z
    assert abs(fine.mass_balance_error()) < 1e-12


# --------------------------------------------------------------------------------------------
# The continuum model on its own
# --------------------------------------------------------------------------------------------


def _busy_model(backend, scheme="explicit", dtype=np.float64):
    """Every term at once: regions, drift, exchange with a decaying plasma, lumen voxels,
    a fixed-value wall, a periodic axis and a no-flux axis."""
    g = Grid((12, 10, 8), 10e-6, (1e-6, -2e-6, 0.0))
    rs = np.random.default_rng(4)
    region = rs.integers(0, 3, g.shape_zyx).astype(np.uint8)
    fixed = np.zeros(g.shape_zyx, np.uint8)
    fixed[3:5, 4, :] = 1
    m = ContinuumCarrierModel(backend, g, region, rs.random((3, 5)) * 1e-2, [3e-12, 2e-12, 1e-12],
                              velocity_m_per_s=(1e-7, -2e-8, 0.0),
                              exchange_per_s=rs.random(g.shape_zyx) * 1e-2,
                              plasma_per_m3=lambda t: 1e15 * math.exp(-t / 100.0), fixed=fixed,
                              boundary=("fixed", "periodic", "no_flux"),
                              boundary_value_per_m3=(3e14, 0.0, 0.0), dtype=dtype, scheme=scheme)
    m.set_initial(gaussian_cell_averages(g, 1e6, (60e-6, 50e-6, 40e-6), 20e-6),
                  bound=np.full(g.shape_zyx, 1e14))
    return m


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_ledger_closes_to_round_off(backend, scheme):
    m = _busy_model(backend, scheme)
    for _ in range(20):
        m.step(10.0)
    L = m.ledger_dict()
    assert set(L) == set(LEDGER_NAMES)
    # every term is exercised
    assert all(abs(v) > 1.0 for v in L.values()), L
    assert abs(m.mass_balance_error()) < 1e-13
    assert m.operator_loss == pytest.approx(L["cleared"] + L["internalised_free"], rel=1e-13)


def test_float32_fields_close_the_ledger_to_float32_round_off():
    m = _busy_model("numba", dtype=np.float32)
    for _ in range(20):
        m.step(10.0)
    assert m.fields()["free"].dtype == np.float32
    assert abs(m.mass_balance_error()) < 1e-5


def _assert_backends_agree(name_a, name_b, rtol, scheme="explicit"):
    """Five steps of the busy model on two backends: fields and ledgers agree to ``rtol``."""
    a, b = _busy_model(name_a, scheme), _busy_model(name_b, scheme)
    for _ in range(5):
        a.step(10.0)
        b.step(10.0)
    for pool in POOLS:
        fa, fb = a.fields()[pool], b.fields()[pool]
        np.testing.assert_allclose(fa, fb, rtol=rtol, atol=rtol * np.abs(fa).max())
    np.testing.assert_allclose(a.ledger, b.ledger, rtol=rtol)
    assert abs(b.mass_balance_error()) < 1e-12


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_numpy_and_numba_agree(scheme):
    _assert_backends_agree("numpy", "numba", 1e-11, scheme)


def test_well_mixed_pools_follow_the_rate_equations():
    # a uniform field in a periodic box: no transport, the three pools and the drained amount
    # follow the linear ODE; its solution is a matrix exponential. Forward Euler plus the Lie
    # split of the bound internalisation are first order in Δt: the error halves with Δt.
    g = Grid((2, 2, 2), 10e-6)
    kb, ku, kif, kib, kl = RATES[0]
    q = np.array([[-(kb + kif + kl), kb, kif, kl],
                  [ku, -(ku + kib), kib, 0.0],
                  [0.0, 0.0, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 0.0]])
    t = 600.0
    exact = np.array([1.0, 0.0, 0.0, 0.0]) @ expm(q * t)
    errs = []
    for dt in (20.0, 10.0):
        m = ContinuumCarrierModel("numba", g, np.zeros(g.shape_zyx, np.uint8), RATES, 0.0,
                                  boundary=("periodic",) * 3)
        m.set_initial(np.full(g.shape_zyx, 1.0 / (8 * g.voxel_volume_m3)))
        for _ in range(int(t / dt)):
            m.step(dt)
        a = m.amounts()
        got = np.array([a["free"], a["bound"], a["internalised"], m.ledger_dict()["cleared"]])
        errs.append(np.abs(got - exact).max())
        assert np.allclose(got, exact, atol=0.01), (got, exact)
    assert 1.7 < errs[0] / errs[1] < 2.3, errs


def test_checkpoint_round_trip_continues_identically():
    a = _busy_model("numba")
    for _ in range(3):
        a.step(10.0)
    b = _busy_model("numba")
    b.load_state(a.fields(), a.state_attrs())
    for m in (a, b):
        for _ in range(3):
            m.step(10.0)
    for pool in POOLS:
        np.testing.assert_array_equal(a.fields()[pool], b.fields()[pool])
    np.testing.assert_array_equal(a.ledger, b.ledger)
    assert b.mass_balance_error() == a.mass_balance_error()
    assert "ContinuumCarrierModel at t = 60 s" in repr(b)


def test_argument_errors():
    g = Grid((4, 4, 4), 10e-6)
    reg = np.zeros(g.shape_zyx, np.uint8)
    with pytest.raises(ValueError, match="rates_per_s must have shape"):
        ContinuumCarrierModel("numpy", g, reg, np.zeros((1, 4)), D)
    with pytest.raises(ValueError, match="region codes must lie in"):
        ContinuumCarrierModel("numpy", g, reg + 1, np.zeros((1, 5)), D)
    with pytest.raises(ValueError, match="region must be an integer array"):
        ContinuumCarrierModel("numpy", g, reg[:2], np.zeros((1, 5)), D)
    with pytest.raises(ValueError, match="unknown wall kind"):
        ContinuumCarrierModel("numpy", g, reg, np.zeros((1, 5)), D, boundary=("open",) * 3)
    with pytest.raises(ValueError, match="exchange_per_s"):
        ContinuumCarrierModel("numpy", g, reg, np.zeros((1, 5)), D, exchange_per_s=-np.ones(g.shape_zyx))
    m = ContinuumCarrierModel("numpy", g, reg, np.zeros((1, 5)), D)
    with pytest.raises(ValueError, match="dt must be a positive"):
        m.step(0.0)


def test_gaussian_cell_averages_hold_the_amount():
    g = Grid((20, 20, 20), 5e-6)
    c = gaussian_cell_averages(g, 3.0, (50e-6, 50e-6, 50e-6), 10e-6)
    # the box holds ±5σ per axis
    inside = (stats.norm.cdf(5.0) - stats.norm.cdf(-5.0)) ** 3
    assert c.sum() * g.voxel_volume_m3 == pytest.approx(3.0 * inside, rel=1e-12)
    # the cell average of the middle voxel: product of three erf differences
    w = stats.norm.cdf(0.25) - stats.norm.cdf(-0.25)
    g1 = Grid((21, 21, 21), 5e-6)
    c1 = gaussian_cell_averages(g1, 3.0, (52.5e-6,) * 3, 10e-6)
    assert c1[10, 10, 10] == pytest.approx(3.0 * w**3 / g1.voxel_volume_m3, rel=1e-12)
    # periodic images keep the whole amount along x and z even for a blob on a face
    c = gaussian_cell_averages(g, 3.0, (0.0, 50e-6, 100e-6), 10e-6, periodic=(True, False, True))
    y_inside = stats.norm.cdf(5.0) - stats.norm.cdf(-5.0)
    assert c.sum() * g.voxel_volume_m3 == pytest.approx(3.0 * y_inside, rel=1e-12)


@pytest.mark.gpu
def test_cupy_continuum_matches_numba():
    get_backend("cupy")
    for scheme in ("explicit", "implicit"):
        _assert_backends_agree("numba", "cupy", 1e-9, scheme)


# --------------------------------------------------------------------------------------------
# Larger variant
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cross_check_with_a_million_particles_and_half_the_step():
    """The shared case with 10⁶ particles (σ/√5) at Δt = 0.5 s (half the one-jump bias)."""
    n = 1_000_000
    fine = _continuum(2, n_blob=n)
    coarse = _continuum(1, n_blob=n)
    xyz, state, _ = _particles(n_blob=n, dt=0.5, seed=29)
    _assert_agree(_compare_pools(xyz, state, fine, coarse), min_bins=100)
    z = _totals_z(state, fine, coarse, n)
    assert max(abs(v) for v in z.values()) < K_SE, z
