r"""Continuum (finite-volume) model of carriers in tissue: the cross-check of the particle method.

Carrier concentrations (carriers per m³) in three pools — free (moving) ``c``, bound ``c_b`` and
internalised ``c_i`` — obey, per tissue region (PHYSICS.md §5),

.. math::

    \partial_t c   &= \nabla\cdot(D\nabla c) - \nabla\cdot(u c)
                      - (k_{if} + k_{lymph})\,c - k_{bind} c + k_{unbind} c_b
                      + \tfrac{PS}{V}\,(c_p - c), \\
    \partial_t c_b &= k_{bind} c - k_{unbind} c_b - k_{ib} c_b, \\
    \partial_t c_i &= k_{if}\, c + k_{ib}\, c_b,

with the rates of :mod:`nanosim.kernels.particle_states` (the table ``rates_per_s`` of shape
``(n_regions, 5)``, columns ``[k_bind, k_unbind, k_internalise_free, k_internalise_bound,
k_lymph]``), ``PS/V`` the wall exchange rate per voxel (1/s) — the same map that the particle
kernel takes as ``intravasation_per_s`` — and ``c_p(t)`` the plasma carrier concentration.
Lymphatic drainage and intravasation leave the tissue; internalised carriers stay.

Numerics
--------
The free and bound pools are advanced by the foundation's
:class:`~nanosim.transport.TransportOperator` (finite-volume diffusion with harmonic-mean face
diffusivities, first-order upwind convection, first-order loss ``k_if + k_lymph``, binding
``k_bind``/``k_unbind``, wall exchange and fixed vessel voxels). The operator has no loss from
the bound pool, so after each operator step the bound pool is internalised exactly over that
step, ``c_b ← c_b e^{−k_ib Δt}`` (Lie splitting: first order in time, like the operator).

With the explicit scheme the model calls the operator with steps inside its stability limit
(one forward-Euler step per call), so the operator's loss ``Δt (k_if + k_lymph) c^n`` is known
voxel by voxel and is split exactly into internalisation (added to ``c_i``) and lymphatic
clearance; with the implicit scheme the same split uses ``c^{n+1}``, as the operator does.

Ledger
------
A float64 ledger (carriers) of everything that enters and leaves, by :data:`LEDGER_NAMES`:
inflow through fixed-value walls, supply from fixed (lumen) voxels, extravasation
``Δt PS/V c_p``, intravasation ``Δt PS/V c``, lymphatic clearance, and the two internal
transfers into the internalised pool. :meth:`ContinuumCarrierModel.mass_balance_error` compares
the change of the total (free + bound + internalised, lumen voxels included) with the net inflow;
it closes to round-off.

Region interfaces
-----------------
The operator solves ``∇·(D∇c)``. The particle kernel takes a region diffusivity with the plain
Itô step, whose density follows ``∇²(D c)`` where ``D`` jumps; the two agree only where ``D`` is
uniform. The particle cross-check (tests/carriers/test_continuum_vs_particles.py) therefore
uses one diffusivity everywhere, with binding, internalisation, drainage and intravasation
differing by region.

Drug release (PHYSICS.md §7)
----------------------------
With ``release=`` (a :class:`~nanosim.kernels.release.ReleaseParams`) the model also carries
the drug held inside the carriers, ``M`` (mol/m³) per pool. Each carrier holds ``payload_mol``
``P`` when loaded and releases along its own release clock ``τ``,
``dτ/dt = c_pool h(pH)`` (:mod:`nanosim.kernels.release`: ``c_pool`` the compartment factor
``tissue``/``bound``/``internalised``, ``h`` the Hill trigger, the pH of the carrier's voxel —
a field or a constant, :meth:`ContinuumCarrierModel.set_ph` — for free and bound carriers and
``ph_endosome`` for internalised ones). Its content is split as the particle kernel splits it:
the *law part* ``P (1 − f_b)(1 − F(τ))`` and, until the burst, the *burst reserve* ``f_b P``.

The operator is linear, so the drug in free and bound carriers obeys the carriers' equations
(diffusion, convection, binding/unbinding, internalisation, drainage, wall exchange) with the
plasma value ``c_p q(t)`` in place of ``c_p`` — ``q`` the drug per carrier of the carriers
arriving from the plasma (``plasma_payload_mol``; carriers entering through fixed-value walls
carry the same) — plus the release loss. A second :class:`~nanosim.transport.TransportOperator`
with the same coefficients advances every drug field in turn (its arrays are swapped in and
out), with the same sub-steps, the same splits and the same ledger as the carriers.

*Law part, first order* (``K = 1``, exact): ``∂M/∂t = transport − k c_pool h(pH(x)) M``,
applied per sub-step with :func:`~nanosim.kernels.release.continuum_first_order_release`
(``M ← M e^{−kΔt}``), exact for a pH constant over the step — what every particle clock in the
voxel would release.

*Law part, time-shaped laws* (Higuchi, Korsmeyer–Peppas, Weibull, sphere diffusion): the rate
depends on each carrier's clock, so ``M`` alone is not enough. The model is age-structured:
the law part of each pool is split into ``K`` clock classes ``M_j`` (carriers with
``τ ∈ [τ_j, τ_{j+1})``, ``τ_0 = 0``, the last class open), every class is transported with the
carriers, and in each voxel

.. math::  \partial_t M_j = \text{transport} + v\Big(\frac{M_{j-1}}{Δτ_{j-1}} - \frac{M_j}{Δτ_j}\Big)
           - v\,λ_j M_j, \qquad v = c_{pool}\, h(\mathrm{pH}(x)),

first-order upwind advection in ``τ`` at the local clock speed with the class hazard
``λ_j = ln[S(τ_j)/S(τ_{j+1})]/Δτ_j`` (``S = 1 − F``): the mean of ``F'/(1 − F)`` over the class,
finite where the pointwise hazard is not (Higuchi, Korsmeyer–Peppas, Weibull ``b < 1`` at
``τ = 0``), so a carrier crossing class ``j`` keeps exactly ``S(τ_{j+1})/S(τ_j)`` of it. The
open class ``[τ_{K−1}, ∞)`` uses the e-folding hazard ``1/(τ_e − τ_{K−1})``,
``S(τ_e) = S(τ_{K−1})/e`` (exact for an exponential tail, as the sphere's). Default edges
(:data:`DEFAULT_RELEASE_CLASSES` classes) divide ``F`` equally, ``F(τ_j) = j/K``: each class
holds ``1/K`` of the law's release; ``release_clock_edges_s`` gives them explicitly. Per
sub-step and voxel the clock step is exact for the hazard (``M_j e^{−λ_j v Δt}``) followed by
the upwind shift of the fraction ``v Δt/Δτ_j`` into the next class, in clock sub-steps of
Courant number ``v Δt/Δτ_j ≤ 1`` (positive and conservative). Carriers arriving from the plasma
enter the class of their clock ``plasma_clock_s`` (default 0, fresh), carriers of
:meth:`ContinuumCarrierModel.set_initial` class 0.

*Accuracy.* For the first-order law the result is exact (any ``K``: the hazard is the same in
every class). For the time-shaped laws the class model replaces each carrier's clock by a
spread of clocks about the right mean (the residence in a class is exponential — geometric in
clock sub-steps — so a cohort's clocks spread with variance ``≈ τ Δτ``), and the released
fraction converges at **first order in the class width**: with the default edges the error is
about ``0.15–0.3/K`` of the payload (measured over ``F ≤ 0.6`` at ``K = 16, 32, 64``, orders
0.92–1.17: Weibull ``b = 1.5`` 0.0099 at ``K = 32``, Weibull ``b = 0.6``, Higuchi,
Korsmeyer–Peppas and sphere 0.004–0.005; tests/carriers/test_continuum_release.py). Higuchi
and Korsmeyer–Peppas are capped at ``F = 1``, a corner that the clock spread (standard
deviation ``∝ √Δτ``) rounds off: near it the error converges at about order ½ (measured
0.023 at ``K = 32``, 0.014–0.016 at ``K = 64``). The result also depends weakly on the step
(larger Courant numbers spread the clocks less). Each class is one more transported field: the
cost grows as ``K`` (+1 with a burst).

*Burst.* The reserve ``f_b P c`` of carriers that have not burst is one more field per pool,
transported like the rest. It is released at once (at the end of the sub-step) from every pool
whose compartment is in ``burst_states`` — free ``TISSUE``, bound ``BOUND``, internalised
``INTERNALISED`` — which is where the particle kernel bursts: in the first step a carrier
spends there. Carriers of :meth:`ContinuumCarrierModel.set_initial` are fresh (not burst: the
default "at injection" burst happens in their first step); carriers from the plasma have burst
already when ``VESSEL`` is in ``burst_states`` (the caller's ``plasma_payload_mol`` then
excludes ``f_b P``) and carry the reserve otherwise, bursting on entering a burst pool. Every
subset of the live compartments is supported (``LODGED`` has no pool here). When all three
pools burst and the plasma carriers have burst, the reserve is empty after the first sub-step
and is no longer transported.

Released drug, ledger
---------------------
The drug released in each voxel (mol) accumulates until
:meth:`ContinuumCarrierModel.take_release_deposit` (for the free-drug field), and per pool in
cumulative fields. Free carriers in lumen voxels do not release (they are the plasma's, held
at its value; their release is the caller's ``plasma_payload_mol``). The pH is held constant
over each step (:meth:`ContinuumCarrierModel.set_ph` between steps). A float64
drug ledger (mol, :data:`DRUG_LEDGER_NAMES`: the carrier ledger's entries for the drug, plus
the release per pool) closes to round-off, :meth:`ContinuumCarrierModel.drug_balance_error`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nanosim.kernels import release as rk
from nanosim.kernels.compartments import BOUND, INTERNALISED, TISSUE, VESSEL
from nanosim.kernels.particle_states import RATE_COLUMNS

from ..backends import Backend, get_backend
from ..geometry import Grid
from ..transport import BC_CODES, TransportOperator

__all__ = ["POOLS", "LEDGER_NAMES", "DRUG_LEDGER_NAMES", "DEFAULT_RELEASE_CLASSES", "ClockClasses",
           "clock_classes", "ContinuumCarrierModel", "gaussian_cell_averages"]

#: Carrier pools of the model, in the order of :meth:`ContinuumCarrierModel.fields`.
POOLS = ("free", "bound", "internalised")
#: Compartment code of each pool (release factors, burst flags).
_POOL_CODES = (TISSUE, BOUND, INTERNALISED)

#: Ledger entries (carriers): inflows, outflows and internal transfers.
LEDGER_NAMES = ("boundary_in", "vessel_supply", "extravasated", "intravasated", "cleared",
                "internalised_free", "internalised_bound")
_BND, _VES, _EXTRA, _INTRA, _CLEAR, _IF, _IB = range(len(LEDGER_NAMES))

#: Drug ledger entries (mol): the carrier ledger's entries for the drug inside the carriers, then
#: the drug released from each pool.
DRUG_LEDGER_NAMES = LEDGER_NAMES + tuple(f"released_{p}" for p in POOLS)
_REL = len(LEDGER_NAMES)  # slot of released_free; bound and internalised follow

#: Clock classes of the time-shaped release laws when none are given (equal steps of ``F``).
DEFAULT_RELEASE_CLASSES = 32


def _bc_codes(boundary):
    try:
        kinds = tuple(boundary)
    except TypeError:
        kinds = ()
    if len(kinds) != 3:
        raise ValueError(f"boundary must name three wall kinds (x, y, z), got {boundary!r}")
    codes = []
    for b in kinds:
        if isinstance(b, str):
            if b not in BC_CODES:
                raise ValueError(f"unknown wall kind {b!r}: one of {tuple(BC_CODES)}")
            codes.append(BC_CODES[b])
        elif b in BC_CODES.values():
            codes.append(int(b))
        else:
            raise ValueError(f"unknown wall kind {b!r}: one of {tuple(BC_CODES)}")
    return codes


# --------------------------------------------------------------------------------------------
# Clock classes of the age-structured release (module docstring)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockClasses:
    """Release-clock classes ``[τ_j, τ_{j+1})`` of one law, with their hazards.

    Attributes
    ----------
    edges_s : ndarray (K + 1,)
        Class edges (s of release clock): ``0 = τ_0 < … < τ_{K−1}``, ``τ_K = ∞``.
    hazard_per_s : ndarray (K,)
        Hazard ``λ_j`` per second of clock (1/s): the class mean ``ln[S(τ_j)/S(τ_{j+1})]/Δτ_j``,
        the e-folding hazard in the open last class; ``inf`` where ``S`` reaches 0.
    """

    edges_s: np.ndarray
    hazard_per_s: np.ndarray

    @property
    def n(self) -> int:
        return len(self.hazard_per_s)

    @property
    def width_s(self) -> np.ndarray:
        return np.diff(self.edges_s)

    def index(self, tau_s: float) -> int:
        """The class holding clock ``tau_s``."""
        return int(np.searchsorted(self.edges_s[1:-1], float(tau_s), side="right"))


def _law_inverse(params, targets):
    """Clock ``τ`` (s) at which the law part reaches ``F(τ) = target`` (bisection in log τ)."""
    t = np.asarray(targets, np.float64)

    def f(tau):
        return rk.numpy_fraction_released(params.law, params.p0, params.p1, tau)

    hi = np.ones_like(t)
    for _ in range(1100):
        low = f(hi) < t
        if not low.any():
            break
        hi = np.where(low, 2.0 * hi, hi)
    lo = hi.copy()
    for _ in range(1100):
        high = f(lo) >= t
        if not high.any():
            break
        lo = np.where(high, 0.5 * lo, lo)
    for _ in range(64):
        mid = np.sqrt(lo * hi)
        below = f(mid) < t
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.where(t > 0.0, hi, 0.0)


def clock_classes(params, n_classes=None, edges_s=None) -> ClockClasses:
    """The clock classes of ``params``' law (module docstring, "time-shaped laws").

    Parameters
    ----------
    params : ReleaseParams
    n_classes : int, optional
        ``K``; default :data:`DEFAULT_RELEASE_CLASSES`, or one more than the edges given.
    edges_s : sequence of float, optional
        Inner edges ``τ_1 < … < τ_{K−1}`` (s of clock, > 0); default ``F(τ_j) = j/K``.

    A law that releases nothing beyond the burst (``none``, or a zero rate) and the first-order
    law (constant hazard, exact) have one class.
    """
    law, p0 = params.law, params.p0
    if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer))
                                  or n_classes < 1):
        raise ValueError(f"release_classes must be an integer >= 1, got {n_classes!r}")
    if edges_s is not None:
        inner = np.asarray(edges_s, np.float64).reshape(-1)
        if not (np.all(np.isfinite(inner)) and np.all(inner > 0.0) and np.all(np.diff(inner) > 0.0)):
            raise ValueError("release_clock_edges_s must be finite, > 0 (s) and strictly increasing, "
                             f"got {list(inner)}")
        if n_classes is not None and int(n_classes) != inner.size + 1:
            raise ValueError(f"release_classes ({n_classes}) must be one more than the number of "
                             f"release_clock_edges_s ({inner.size})")
    if law == rk.LAW_NONE or p0 == 0.0:
        return ClockClasses(np.array([0.0, np.inf]), np.zeros(1))
    if law == rk.LAW_FIRST_ORDER:
        return ClockClasses(np.array([0.0, np.inf]), np.array([p0]))
    if edges_s is None:
        k = DEFAULT_RELEASE_CLASSES if n_classes is None else int(n_classes)
        inner = _law_inverse(params, np.arange(1, k) / k)
        if inner.size > 1 and not np.all(np.diff(inner) > 0.0):
            raise ValueError(f"release_classes = {k} is too many for this law: its clock edges "
                             "coincide in float64")
    edges = np.concatenate([[0.0], inner, [np.inf]])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log1p(-rk.numpy_fraction_released(law, p0, params.p1, edges[:-1]))
        hazard = np.empty(len(inner) + 1)
        hazard[:-1] = (log_s[:-1] - log_s[1:]) / np.diff(edges[:-1])
        hazard[:-1] = np.where(np.isfinite(log_s[1:]), hazard[:-1], np.inf)
        tail = edges[-2]
        s_tail = math.exp(log_s[-1])
        if s_tail > 0.0:
            tau_e = float(_law_inverse(params, 1.0 - s_tail / math.e))
            hazard[-1] = 1.0 / (tau_e - tail) if tau_e > tail else np.inf
        else:
            hazard[-1] = np.inf
    return ClockClasses(edges, hazard)


def _callable_or_float(name, value, lower=0.0):
    """A function of time (s) returning ``value`` (checked: finite, >= ``lower``) or the callable."""
    if callable(value):
        return value
    v = float(value)
    if not (math.isfinite(v) and v >= lower):
        raise ValueError(f"{name} must be a finite number >= {lower:g} or a function of time, got {value!r}")
    return lambda t, v=v: v


class ContinuumCarrierModel:
    """Free, bound and internalised carriers on the voxel grid (see the module docstring).

    Parameters
    ----------
    backend : Backend or str
        Where the fields live (``numpy``, ``numba``, ``cupy``).
    grid : Grid
    region : integer ndarray, shape (nz, ny, nx)
        Region code per voxel (0 normal, 1 tumour, 2 necrotic, ...).
    rates_per_s : array_like, shape (n_regions, 5)
        ``[k_bind, k_unbind, k_internalise_free, k_internalise_bound, k_lymph]`` per region (1/s).
    diffusivity_m2_per_s : float or array_like of n_regions floats
        Effective diffusivity of free carriers (m²/s), uniform or per region.
    velocity_m_per_s : 3 floats or ndarray (3, nz, ny, nx), optional
        Uniform interstitial velocity or face velocities (component ``a`` on each voxel's
        ``+a`` face), m/s.
    exchange_per_s : ndarray (nz, ny, nx), optional
        Wall exchange rate ``P·S/V`` (1/s) with the plasma; the particle model's
        ``intravasation_per_s``.
    plasma_per_m3 : float or callable, optional
        Plasma carrier concentration (carriers/m³), or a function of time (s); each (sub-)step
        uses its value at the end of that step.
    fixed : ndarray (nz, ny, nx), optional
        1 where a voxel is vessel lumen held at the plasma concentration.
    boundary : three of {"no_flux", "periodic", "fixed"}
        Wall kind per axis (x, y, z).
    boundary_value_per_m3 : three floats
        Concentration on fixed-value walls (carriers/m³).
    dtype : numpy dtype
        Field precision (float64 default); ledger and totals are float64.
    scheme : {"explicit", "implicit"}
        Time scheme of the operator.
    release : ReleaseParams, optional
        Release law, burst, pH trigger and compartment factors (module docstring, "Drug
        release"); without it the model carries no drug and the keywords below must be left out.
    payload_mol : float
        Drug loaded per carrier (mol, > 0); needed with ``release``.
    ph : float or ndarray (nz, ny, nx), optional
        pH seen by free and bound carriers (default ``release.ph_tissue``); change it with
        :meth:`set_ph`.
    ph_endosome : float, optional
        pH seen by internalised carriers (default ``release.ph_endosome``).
    plasma_payload_mol : float or callable, optional
        Drug per carrier (mol) still inside the carriers arriving from the plasma (and through
        fixed-value walls), or a function of time (s) evaluated like ``plasma_per_m3``. Default:
        what the law leaves at ``plasma_clock_s``, ``P[1 − f_b − (1 − f_b) F(τ_p)]`` (``f_b``
        kept when ``VESSEL`` is not in ``burst_states``).
    plasma_clock_s : float or callable, optional
        Release clock (s) of the carriers arriving from the plasma: the class they enter
        (time-shaped laws) and the default payload. Default 0.
    release_classes : int, optional
        Clock classes ``K`` of the time-shaped laws (default :data:`DEFAULT_RELEASE_CLASSES`).
    release_clock_edges_s : sequence of float, optional
        Inner class edges ``τ_1 < … < τ_{K−1}`` (s of clock); default equal steps of ``F``.
    """

    def __init__(self, backend, grid: Grid, region, rates_per_s, diffusivity_m2_per_s, *,
                 velocity_m_per_s=None, exchange_per_s=None, plasma_per_m3=0.0, fixed=None,
                 boundary=("no_flux", "no_flux", "no_flux"),
                 boundary_value_per_m3=(0.0, 0.0, 0.0), dtype=np.float64, scheme="explicit",
                 release=None, payload_mol=None, ph=None, ph_endosome=None, plasma_payload_mol=None,
                 plasma_clock_s=0.0, release_classes=None, release_clock_edges_s=None):
        self.backend = backend if isinstance(backend, Backend) else get_backend(backend)
        self.grid = grid
        xp = self.backend.xp
        region = np.asarray(region)
        if region.shape != grid.shape_zyx or region.dtype.kind not in "iu":
            raise ValueError(f"region must be an integer array of shape {grid.shape_zyx}, "
                             f"got {region.dtype} {region.shape}")
        rates = np.asarray(rates_per_s, np.float64)
        if rates.ndim != 2 or rates.shape[1] != len(RATE_COLUMNS):
            raise ValueError(f"rates_per_s must have shape (n_regions, {len(RATE_COLUMNS)}) with "
                             f"columns {RATE_COLUMNS}, got {rates.shape}")
        if not np.all(np.isfinite(rates) & (rates >= 0)):
            raise ValueError("rates_per_s must be finite and >= 0 (1/s)")
        n_reg = rates.shape[0]
        if region.size and (region.min() < 0 or region.max() >= n_reg):
            raise ValueError(f"region codes must lie in [0, {n_reg}) (one row of rates_per_s each)")
        d = np.broadcast_to(np.asarray(diffusivity_m2_per_s, np.float64), (n_reg,)).copy()
        if not np.all(np.isfinite(d) & (d >= 0)):
            raise ValueError("diffusivity_m2_per_s must be finite and >= 0 (m²/s)")
        self.rates_per_s = rates
        self.diffusivity_m2_per_s = d
        self.plasma = plasma_per_m3 if callable(plasma_per_m3) else (lambda t, v=float(plasma_per_m3): v)
        fixed_host = None if fixed is None else (np.asarray(fixed) != 0).astype(np.uint8)
        ps_host = None if exchange_per_s is None else np.asarray(exchange_per_s, np.float64)
        if ps_host is not None and (ps_host.shape != grid.shape_zyx
                                    or not np.all(np.isfinite(ps_host) & (ps_host >= 0))):
            raise ValueError(f"exchange_per_s must be finite, >= 0 (1/s) and of shape {grid.shape_zyx}")
        kb, ku, kif, kib, kl = rates.T
        self._bc_kinds = _bc_codes(boundary)
        self._bc_values = np.array([float(v) for v in boundary_value_per_m3])

        def operator():
            return TransportOperator(self.backend, grid, region.astype(np.uint8), d, kif + kl, kb, ku,
                                     self._bc_kinds, list(self._bc_values), dtype, scheme=scheme, ps=ps_host,
                                     fixed=fixed_host, velocity_m_per_s=velocity_m_per_s)

        self.op = operator()
        self.dtype = self.op.dtype
        # per-voxel rates (float64) of the splits; zero in lumen voxels, where the operator has
        # no reactions
        tissue = np.ones(grid.shape_zyx) if fixed_host is None else (fixed_host == 0).astype(float)
        dev = self.backend.asarray
        self._kif = dev(kif[region] * tissue, np.float64)
        self._kl = dev(kl[region] * tissue, np.float64)
        self._kib = dev(kib[region], np.float64)
        self._has_kib = bool(np.any(kib[np.unique(region)] > 0))
        self._ps = dev(ps_host * tissue, np.float64) if self.op.has_ps else None
        self._ps_sum = float(np.sum(ps_host * tissue)) if self.op.has_ps else 0.0
        self._fixed = dev(fixed_host.astype(bool)) if self.op.has_fixed else None
        self._tissue = dev(tissue, np.float64) if self.op.has_fixed else None
        self._kib_cache = (None, None)
        self.ci = self.backend.zeros(grid.shape_zyx, self.dtype)
        self.time_s = 0.0
        self.step_index = 0
        self.ledger = np.zeros(len(LEDGER_NAMES))
        #: Sum of the operator's own loss ledger (carriers): equals cleared + internalised_free.
        self.operator_loss = 0.0
        self.initial_total = 0.0
        self._xp = xp
        self.release = None
        self._init_release(operator, release, payload_mol, ph, ph_endosome, plasma_payload_mol,
                           plasma_clock_s, release_classes, release_clock_edges_s)

    # -- release set-up -----------------------------------------------------------------------
    def _init_release(self, operator, release, payload_mol, ph, ph_endosome, plasma_payload_mol,
                      plasma_clock_s, release_classes, release_clock_edges_s) -> None:
        given = {"payload_mol": payload_mol, "ph": ph, "ph_endosome": ph_endosome,
                 "plasma_payload_mol": plasma_payload_mol, "release_classes": release_classes,
                 "release_clock_edges_s": release_clock_edges_s}
        if release is None:
            extra = [k for k, v in given.items() if v is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} given without release (a ReleaseParams)")
            return
        if not isinstance(release, rk.ReleaseParams):
            raise ValueError(f"release must be a ReleaseParams, got {type(release).__name__}")
        if payload_mol is None:
            raise ValueError("payload_mol (drug loaded per carrier, mol) is needed with release")
        p = float(payload_mol)
        if not (math.isfinite(p) and p > 0.0):
            raise ValueError(f"payload_mol must be a finite number > 0 (mol per carrier), got {payload_mol!r}")
        self.release = release
        self.payload_mol = p
        endo = release.ph_endosome if ph_endosome is None else float(ph_endosome)
        if not math.isfinite(endo):
            raise ValueError(f"ph_endosome must be a finite pH, got {ph_endosome!r}")
        self.ph_endosome = endo
        self._plasma_clock = _callable_or_float("plasma_clock_s", plasma_clock_s)
        self._plasma_payload = (None if plasma_payload_mol is None
                                else _callable_or_float("plasma_payload_mol", plasma_payload_mol))
        self.classes = clock_classes(release, release_classes, release_clock_edges_s)
        self._first_order = release.law == rk.LAW_FIRST_ORDER
        fb = release.burst_fraction
        self._burst_pools = tuple(code in release.burst_states for code in _POOL_CODES)
        #: drug reserved for the burst per plasma carrier (mol): f_b P while it has not burst
        self._plasma_reserve = fb * p if fb > 0.0 and VESSEL not in release.burst_states else 0.0
        self._has_reserve = fb > 0.0
        self._reserve_done = False
        self._factors = tuple(release.factor(n) for n in ("tissue", "bound", "internalised"))
        n_species = self.classes.n + (1 if self._has_reserve else 0)
        zeros = self.backend.zeros
        shape = self.grid.shape_zyx
        #: drug in carriers (mol/m³) per pool, stacked by species (clock classes, then the reserve)
        self._drug = [zeros((n_species,) + shape, self.dtype) for _ in POOLS]
        hazard = self.classes.hazard_per_s
        # the kernels' hazard: inf (S reaches 0) as the largest float, so that 0 clock gives 0
        self._hazard = self.backend.asarray(np.where(np.isinf(hazard), np.finfo(np.float64).max, hazard)
                                            .reshape(-1, 1, 1, 1))
        self._inv_width = self.backend.asarray((1.0 / self.classes.width_s).reshape(-1, 1, 1, 1))
        self._dop = operator()
        self._walls_fixed = any(k == BC_CODES["fixed"] for k in self._bc_kinds)
        self.drug_ledger = np.zeros(len(DRUG_LEDGER_NAMES))
        self.drug_operator_loss = 0.0
        self.initial_drug = 0.0
        nvox = self.grid.n_voxels
        self.release_deposit = self.backend.zeros(nvox, np.float64)
        #: cumulative drug released per voxel (mol), per pool
        self.released = [zeros(shape, np.float64) for _ in POOLS]
        self.set_ph(release.ph_tissue if ph is None else ph)

    def set_ph(self, ph) -> None:
        """pH seen by free and bound carriers from now on: a float or a field (nz, ny, nx).

        Each step holds it constant (PHYSICS.md §7: the pH is sampled at the step's start).
        """
        if self.release is None:
            raise ValueError("set_ph needs a model with release")
        if np.ndim(ph) == 0:
            v = float(ph)
            if not math.isfinite(v):
                raise ValueError(f"ph must be finite, got {ph!r}")
            self.ph = v
        else:
            host = np.asarray(self.backend.to_host(ph) if not isinstance(ph, np.ndarray) else ph, np.float64)
            if host.shape != self.grid.shape_zyx or not np.all(np.isfinite(host)):
                raise ValueError(f"ph must be a finite float or a finite field of shape {self.grid.shape_zyx}, "
                                 f"got shape {host.shape}")
            self.ph = self.backend.asarray(host, np.float64)
        r = self.release
        h = rk.numpy_ph_factor(self.ph, r.pka, r.hill_n, r.h_min)
        h_endo = float(rk.numpy_ph_factor(self.ph_endosome, r.pka, r.hill_n, r.h_min))
        ft, fbd, fi = self._factors
        free = ft * h if self._tissue is None else ft * h * self._tissue
        # clock speed (s of clock per s) of each pool, and its largest value (clock sub-steps)
        self._speed = (free, fbd * h, fi * h_endo)
        h_max = float(self._xp.max(h)) if np.ndim(h) else float(h)
        self._speed_max = (ft * h_max, fbd * h_max, fi * h_endo)

    # -- state --------------------------------------------------------------------------------
    def set_initial(self, free, bound=None, internalised=None) -> None:
        """Set the three pools (carriers/m³; ``None`` is zero); lumen voxels take the plasma value.

        With release, the carriers are fresh: full payload, clock 0, burst not yet happened.
        """
        be = self.backend
        self.op.c[...] = be.asarray(free, self.dtype)
        self.op.cb[...] = 0 if bound is None else be.asarray(bound, self.dtype)
        self.ci[...] = 0 if internalised is None else be.asarray(internalised, self.dtype)
        if self._fixed is not None:
            self.op.c[self._fixed] = self.plasma(self.time_s)
        self.initial_total = self.total()
        self.ledger[:] = 0.0
        self.operator_loss = 0.0
        if self.release is None:
            return
        fb = self.release.burst_fraction
        content = [self.payload_mol * (1.0 - fb)] + [0.0] * (self.classes.n - 1)
        if self._has_reserve:
            content.append(self.payload_mol * fb)
        lumen = self._entering_content(self.time_s) * float(self.plasma(self.time_s))
        for m, c in zip(self._drug, (self.op.c, self.op.cb, self.ci)):
            for s, q in enumerate(content):
                m[s] = (q * c).astype(self.dtype, copy=False)
        if self._fixed is not None:
            for s, q in enumerate(lumen):
                self._drug[0][s][self._fixed] = q
        self._reserve_done = False
        self.drug_ledger[:] = 0.0
        self.drug_operator_loss = 0.0
        self.release_deposit[...] = 0.0
        for r in self.released:
            r[...] = 0.0
        self.initial_drug = self.drug_in_carriers()

    def _entering_content(self, t) -> np.ndarray:
        """Drug per carrier (mol) of each species in the carriers arriving from the plasma at ``t``."""
        r, p = self.release, self.payload_mol
        tau = float(self._plasma_clock(t))
        if not (math.isfinite(tau) and tau >= 0.0):
            raise ValueError(f"plasma_clock_s must be finite and >= 0 s, got {tau!r} at t = {t:g} s")
        fb = r.burst_fraction
        room = p * (1.0 - fb)
        if self._plasma_payload is None:
            law = room * (1.0 - float(rk.numpy_fraction_released(r.law, r.p0, r.p1, tau)))
        else:
            q = float(self._plasma_payload(t))
            law = q - self._plasma_reserve
            if not (math.isfinite(q) and -1e-12 * p <= law <= room * (1.0 + 1e-12)):
                raise ValueError(f"plasma_payload_mol must lie in [{self._plasma_reserve:g}, "
                                 f"{self._plasma_reserve + room:g}] mol (the burst reserve the plasma "
                                 f"carriers keep, up to the full payload), got {q!r} at t = {t:g} s")
            law = min(max(law, 0.0), room)
        out = np.zeros(self._drug[0].shape[0])
        out[0 if self._first_order else self.classes.index(tau)] = law
        if self._has_reserve:
            out[-1] = self._plasma_reserve
        return out

    def _sum(self, a) -> float:
        return float(self._xp.sum(a, dtype=self._xp.float64))

    def _dot(self, rate, c) -> float:
        """Σ rate·c over the grid in float64 (carriers/m³ per s × voxels)."""
        return self._sum(rate * c)

    def _split_loss(self, dt, c, ci, led) -> None:
        """Internalise and drain ``dt·k·c`` voxel by voxel (the operator's loss of this step)."""
        vol = self.grid.voxel_volume_m3
        gain = dt * self._kif * c
        ci += gain.astype(self.dtype, copy=False)
        led[_IF] += self._sum(gain) * vol
        led[_CLEAR] += dt * self._dot(self._kl, c) * vol
        if self._ps is not None:
            led[_INTRA] += dt * self._dot(self._ps, c) * vol

    def _internalise_bound(self, dt, cb, ci, led) -> None:
        """Exact bound → internalised transfer over ``dt`` (``c_b e^{−k_ib dt}``)."""
        if not self._has_kib:
            return
        if self._kib_cache[0] != dt:
            self._kib_cache = (dt, -self._xp.expm1(-self._kib * dt))
        moved = (cb * self._kib_cache[1]).astype(self.dtype, copy=False)
        cb -= moved
        ci += moved
        led[_IB] += self._sum(moved) * self.grid.voxel_volume_m3

    def _advance(self, dt, cp, fields, transport, ci, led) -> float:
        """One operator step with its splits and ledger; returns the operator's loss.

        ``fields()`` gives the free and bound arrays (one field, or species stacked on a first
        axis: every split broadcasts), ``transport()`` runs the operator and returns its ledger;
        ``cp`` is the plasma value (summed over species).
        """
        explicit = self.op.scheme == "explicit"
        if explicit:
            self._split_loss(dt, fields()[0], ci, led)
        out = transport()
        c, cb = fields()
        if not explicit:
            self._split_loss(dt, c, ci, led)
        led[_BND] += out[0]
        led[_VES] += out[1]
        led[_EXTRA] += dt * cp * self._ps_sum * self.grid.voxel_volume_m3
        self._internalise_bound(dt, cb, ci, led)
        return out[2]

    def step(self, dt: float) -> None:
        """Advance all pools by ``dt`` (s); explicit steps are split inside the stability limit."""
        dt = float(dt)
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be a positive, finite time step in s, got {dt!r}")
        n = self.op.single_substeps(dt)
        sub = dt / n
        for j in range(n):
            t_end = self.time_s + (j + 1) * sub
            cp = float(self.plasma(t_end))
            op = self.op
            self.operator_loss += self._advance(sub, cp, lambda: (op.c, op.cb), lambda: op.step(sub, cp),
                                                self.ci, self.ledger)
            if self.release is not None:
                self._advance_drug(sub, cp, t_end)
                self._release_step(sub)
        self.time_s += dt
        self.step_index += 1

    # -- drug in carriers ---------------------------------------------------------------------
    def _advance_drug(self, dt, cp, t_end) -> None:
        """Transport every drug species with the carriers (module docstring)."""
        content = self._entering_content(t_end)
        free, bound, inside = self._drug
        self.drug_operator_loss += self._advance(dt, cp * float(content.sum()), lambda: (free, bound),
                                                 lambda: self._transport_species(dt, cp, content),
                                                 inside, self.drug_ledger)

    def _transport_species(self, dt, cp, content):
        """Step each species with the second operator; the summed ledger."""
        op = self._dop
        free, bound = self._drug[0], self._drug[1]
        n = len(content) - (1 if self._has_reserve and self._reserve_done else 0)
        total = np.zeros(3)
        for s in range(n):
            q = float(content[s])
            if self._walls_fixed:
                op.set_boundary_values(self._bc_values * q)
            total += op.step_fields(free[s], bound[s], dt, cp * q)[:3]
        return total

    def _release_step(self, dt) -> None:
        """Release over ``dt`` from every pool and species; deposit and book it."""
        vol = self.grid.voxel_volume_m3
        r = self.release
        n = self.classes.n
        for k in range(len(POOLS)):
            if self._first_order:
                m = self._drug[k][0]
                ph = self.ph_endosome if k == 2 else self.ph
                factor = self._factors[k] if (k or self._tissue is None) else self._factors[k] * self._tissue
                rel = rk.continuum_first_order_release(m, ph, dt_s=dt, rate_per_s=r.p0, pka=r.pka,
                                                       hill_n=r.hill_n, h_min=r.h_min, factor=factor)
            else:
                rel = self._release_classes(self._drug[k][:n], self._speed[k] * dt, self._speed_max[k] * dt)
            if self._has_reserve and not self._reserve_done and self._burst_pools[k]:
                res = self._drug[k][n]
                burst = (res if (k or self._tissue is None) else res * self._tissue).astype(np.float64)
                rel = burst if rel is None else rel + burst  # new arrays: the reserve is cleared below
                res -= burst.astype(self.dtype, copy=False)
            if rel is None:
                continue
            rel = rel.astype(np.float64, copy=False)
            self.released[k] += rel * vol
            self.release_deposit += (rel * vol).reshape(-1)
            self.drug_ledger[_REL + k] += self._sum(rel) * vol
        if self._has_reserve and all(self._burst_pools) and self._plasma_reserve == 0.0:
            self._reserve_done = True  # every reserve released and none arrives: skip it from now

    def _release_classes(self, m, clock, clock_max):
        """Hazard then upwind shift in clock, per voxel (module docstring); returns the release.

        ``m`` holds the classes stacked on its first axis, ``clock`` is the clock advance of this
        step per voxel (or a constant), ``clock_max`` its largest value; clock sub-steps keep the
        Courant number ``clock/Δτ_j`` at most 1.
        """
        cc = self.classes
        if not np.any(cc.hazard_per_s > 0.0) or clock_max <= 0.0:
            return None
        xp = self._xp
        n_sub = 1 if cc.n == 1 else max(1, math.ceil(clock_max / float(cc.width_s[:-1].min()) - 1e-12))
        ds = clock / n_sub if n_sub > 1 else clock
        lost = -xp.expm1(-self._hazard * ds)
        courant = self._inv_width * ds
        released = 0.0
        for _ in range(n_sub):
            rel = m * lost
            kept = m - rel
            out = kept * courant
            m[...] = kept - out
            m[1:] += out[:-1]
            released = released + rel.sum(axis=0, dtype=np.float64)
        return released

    def drug_amounts(self) -> dict:
        """Drug in carriers (mol, float64) per pool (free: tissue voxels), and in lumen voxels."""
        vol = self.grid.voxel_volume_m3
        free, bound, inside = (self._sum(m) * vol for m in self._drug)
        lumen = self._sum(self._drug[0][:, self._fixed]) * vol if self._fixed is not None else 0.0
        return {"free": free - lumen, "bound": bound, "internalised": inside, "lumen": lumen}

    def drug_in_carriers(self) -> float:
        """Drug (mol) held in every carrier on the grid, lumen included (float64)."""
        return sum(self._sum(m) for m in self._drug) * self.grid.voxel_volume_m3

    def drug_ledger_dict(self) -> dict:
        """The drug ledger by :data:`DRUG_LEDGER_NAMES` (mol), with ``entered_in_carriers``,
        ``left_in_carriers``, ``released`` (all pools) and ``held`` (now)."""
        L = self.drug_ledger
        out = {k: float(v) for k, v in zip(DRUG_LEDGER_NAMES, L)}
        out["entered_in_carriers"] = float(L[_BND] + L[_VES] + L[_EXTRA])
        out["left_in_carriers"] = float(L[_INTRA] + L[_CLEAR])
        out["released"] = float(L[_REL:].sum())
        out["held"] = self.drug_in_carriers()
        return out

    def drug_balance_error(self) -> float:
        """(held − initial − entered + left + released) / the largest amount: round-off when correct."""
        d = self.drug_ledger_dict()
        net = d["entered_in_carriers"] - d["left_in_carriers"] - d["released"]
        scale = max(abs(self.initial_drug), abs(d["held"]), float(np.abs(self.drug_ledger).max()), 1e-300)
        return (d["held"] - self.initial_drug - net) / scale

    def take_release_deposit(self):
        """Drug (mol) released into each voxel since the last call, flat (nz·ny·nx,); the account is reset."""
        dep = self.release_deposit
        self.release_deposit = self._xp.zeros_like(dep)
        return dep

    # -- amounts, balance ---------------------------------------------------------------------
    def amounts(self) -> dict:
        """Carriers in each pool (float64): free (tissue voxels), bound, internalised, lumen."""
        vol = self.grid.voxel_volume_m3
        c = self.op.c
        lumen = self._sum(c[self._fixed]) * vol if self._fixed is not None else 0.0
        return {"free": self._sum(c) * vol - lumen, "bound": self._sum(self.op.cb) * vol,
                "internalised": self._sum(self.ci) * vol, "lumen": lumen}

    def total(self) -> float:
        """All carriers on the grid (float64): free + bound + internalised, lumen included."""
        return (self._sum(self.op.c) + self._sum(self.op.cb) + self._sum(self.ci)) * \
            self.grid.voxel_volume_m3

    def net_inflow(self) -> float:
        """Carriers that entered minus those that left since :meth:`set_initial` (float64)."""
        L = self.ledger
        return L[_BND] + L[_VES] + L[_EXTRA] - L[_INTRA] - L[_CLEAR]

    def mass_balance_error(self) -> float:
        """(total − initial − net inflow) / the largest amount involved: round-off when correct."""
        total = self.total()
        scale = max(abs(self.initial_total), abs(total), float(np.abs(self.ledger).max()), 1e-300)
        return (total - self.initial_total - self.net_inflow()) / scale

    def ledger_dict(self) -> dict:
        """The ledger by :data:`LEDGER_NAMES` (carriers)."""
        return {k: float(v) for k, v in zip(LEDGER_NAMES, self.ledger)}

    # -- output, checkpoints ------------------------------------------------------------------
    def fields(self) -> dict:
        """Host copies of the three pools (carriers/m³), by :data:`POOLS`; with release also the
        drug in carriers per pool (``drug_<pool>``, mol/m³, all classes) and the drug released
        so far per voxel (``released_<pool>``, mol)."""
        to_host = self.backend.to_host
        out = {"free": to_host(self.op.c), "bound": to_host(self.op.cb), "internalised": to_host(self.ci)}
        if self.release is not None:
            for k, pool in enumerate(POOLS):
                out[f"drug_{pool}"] = to_host(self._drug[k]).sum(axis=0, dtype=np.float64)
                out[f"released_{pool}"] = to_host(self.released[k])
        return out

    def state_arrays(self) -> dict:
        """What a checkpoint needs: :meth:`fields` and, with release, every drug species, the
        undelivered deposit and the pH field."""
        out = self.fields()
        if self.release is not None:
            to_host = self.backend.to_host
            for pool, m in zip(POOLS, self._drug):
                out[f"drug_in_carriers_{pool}"] = to_host(m)
            out["release_deposit"] = to_host(self.release_deposit)
            out["ph"] = to_host(self.ph) if np.ndim(self.ph) else np.float64(self.ph)
        return out

    def state_attrs(self) -> dict:
        out = {"time_s": self.time_s, "step_index": self.step_index,
               "initial_total": self.initial_total, "operator_loss": self.operator_loss,
               "ledger": [float(v) for v in self.ledger]}
        if self.release is not None:
            out.update(initial_drug=self.initial_drug, drug_operator_loss=self.drug_operator_loss,
                       drug_ledger=[float(v) for v in self.drug_ledger], reserve_done=self._reserve_done)
        return out

    def load_state(self, arrays: dict, attrs: dict) -> None:
        """Restore what :meth:`state_arrays` (or, without release, :meth:`fields`) and
        :meth:`state_attrs` saved."""
        be = self.backend
        self.op.c[...] = be.asarray(arrays["free"], self.dtype)
        self.op.cb[...] = be.asarray(arrays["bound"], self.dtype)
        self.ci[...] = be.asarray(arrays["internalised"], self.dtype)
        self.time_s = float(attrs["time_s"])
        self.step_index = int(attrs["step_index"])
        self.initial_total = float(attrs["initial_total"])
        self.operator_loss = float(attrs["operator_loss"])
        self.ledger = np.asarray(attrs["ledger"], np.float64).copy()
        if self.release is None:
            return
        for pool, m in zip(POOLS, self._drug):
            m[...] = be.asarray(arrays[f"drug_in_carriers_{pool}"], self.dtype)
        for k, pool in enumerate(POOLS):
            self.released[k][...] = be.asarray(arrays[f"released_{pool}"], np.float64)
        self.release_deposit = be.asarray(np.asarray(arrays["release_deposit"], np.float64))
        self.set_ph(np.asarray(arrays["ph"]))
        self.initial_drug = float(attrs["initial_drug"])
        self.drug_operator_loss = float(attrs["drug_operator_loss"])
        self.drug_ledger = np.asarray(attrs["drug_ledger"], np.float64).copy()
        self._reserve_done = bool(attrs["reserve_done"])

    def __repr__(self) -> str:
        a = self.amounts()
        pools = ", ".join(f"{k} {a[k]:.4g}" for k in POOLS)
        op = repr(self.op).replace("\n", "\n    ")
        text = (f"ContinuumCarrierModel at t = {self.time_s:g} s (step {self.step_index}); "
                f"carriers: {pools}\n")
        if self.release is not None:
            r = self.release
            text += (f"├── release: {rk.LAW_NAMES[r.law]}, {self.classes.n} clock class(es), burst "
                     f"{r.burst_fraction:g}; drug in carriers {self.drug_in_carriers():.4g} mol, "
                     f"released {self.drug_ledger[_REL:].sum():.4g} mol\n")
        return text + f"└── {op}"


def gaussian_cell_averages(grid: Grid, amount, center_m, sigma_m, periodic=(False, False, False)):
    """Cell averages (per m³) of an isotropic Gaussian holding ``amount`` in free space.

    Each voxel gets the exact integral of the Gaussian over its cube (a product of ``erf``
    differences per axis) divided by the voxel volume — what a particle cloud sampled from the
    same Gaussian puts in each voxel on average. On a periodic axis the images one box length
    away are included; elsewhere the mass beyond the walls is left out.
    """
    from scipy.special import ndtr

    h = grid.voxel_size_m
    factors = []
    for axis in range(3):
        n = grid.shape_xyz[axis]
        edges = grid.origin_m[axis] + h * np.arange(n + 1)
        length = n * h
        shifts = (-length, 0.0, length) if periodic[axis] else (0.0,)
        cdf = sum(ndtr((edges - center_m[axis] - s) / sigma_m) for s in shifts)
        factors.append(np.diff(cdf))
    fx, fy, fz = factors
    return amount * fz[:, None, None] * fy[None, :, None] * fx[None, None, :] / grid.voxel_volume_m3
