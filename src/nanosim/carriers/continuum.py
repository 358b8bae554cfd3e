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
"""

from __future__ import annotations

import math

import numpy as np

from nanosim.kernels.particle_states import RATE_COLUMNS

from ..backends import Backend, get_backend
from ..geometry import Grid
from ..transport import BC_CODES, TransportOperator

__all__ = ["POOLS", "LEDGER_NAMES", "ContinuumCarrierModel", "gaussian_cell_averages"]

#: Carrier pools of the model, in the order of :meth:`ContinuumCarrierModel.fields`.
POOLS = ("free", "bound", "internalised")

#: Ledger entries (carriers): inflows, outflows and internal transfers.
LEDGER_NAMES = ("boundary_in", "vessel_supply", "extravasated", "intravasated", "cleared",
                "internalised_free", "internalised_bound")
_BND, _VES, _EXTRA, _INTRA, _CLEAR, _IF, _IB = range(len(LEDGER_NAMES))


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
    """

    def __init__(self, backend, grid: Grid, region, rates_per_s, diffusivity_m2_per_s, *,
                 velocity_m_per_s=None, exchange_per_s=None, plasma_per_m3=0.0, fixed=None,
                 boundary=("no_flux", "no_flux", "no_flux"),
                 boundary_value_per_m3=(0.0, 0.0, 0.0), dtype=np.float64, scheme="explicit"):
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
        self.op = TransportOperator(self.backend, grid, region.astype(np.uint8), d, kif + kl, kb, ku,
                                    _bc_codes(boundary), [float(v) for v in boundary_value_per_m3],
                                    dtype, scheme=scheme, ps=ps_host, fixed=fixed_host,
                                    velocity_m_per_s=velocity_m_per_s)
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
        self._kib_cache = (None, None)
        self.ci = self.backend.zeros(grid.shape_zyx, self.dtype)
        self.time_s = 0.0
        self.step_index = 0
        self.ledger = np.zeros(len(LEDGER_NAMES))
        #: Sum of the operator's own loss ledger (carriers): equals cleared + internalised_free.
        self.operator_loss = 0.0
        self.initial_total = 0.0
        self._xp = xp

    # -- state --------------------------------------------------------------------------------
    def set_initial(self, free, bound=None, internalised=None) -> None:
        """Set the three pools (carriers/m³; ``None`` is zero); lumen voxels take the plasma value."""
        be = self.backend
        self.op.c[...] = be.asarray(free, self.dtype)
        self.op.cb[...] = 0 if bound is None else be.asarray(bound, self.dtype)
        self.ci[...] = 0 if internalised is None else be.asarray(internalised, self.dtype)
        if self._fixed is not None:
            self.op.c[self._fixed] = self.plasma(self.time_s)
        self.initial_total = self.total()
        self.ledger[:] = 0.0
        self.operator_loss = 0.0

    def _sum(self, a) -> float:
        return float(self._xp.sum(a, dtype=self._xp.float64))

    def _dot(self, rate, c) -> float:
        """Σ rate·c over the grid in float64 (carriers/m³ per s × voxels)."""
        return self._sum(rate * c)

    def _split_loss(self, dt, c) -> None:
        """Internalise and drain ``dt·k·c`` voxel by voxel (the operator's loss of this step)."""
        vol = self.grid.voxel_volume_m3
        gain = dt * self._kif * c
        self.ci += gain.astype(self.dtype, copy=False)
        self.ledger[_IF] += self._sum(gain) * vol
        self.ledger[_CLEAR] += dt * self._dot(self._kl, c) * vol
        if self._ps is not None:
            self.ledger[_INTRA] += dt * self._dot(self._ps, c) * vol

    def _internalise_bound(self, dt) -> None:
        """Exact bound → internalised transfer over ``dt`` (``c_b e^{−k_ib dt}``)."""
        if not self._has_kib:
            return
        if self._kib_cache[0] != dt:
            self._kib_cache = (dt, -self._xp.expm1(-self._kib * dt))
        moved = (self.op.cb * self._kib_cache[1]).astype(self.dtype, copy=False)
        self.op.cb -= moved
        self.ci += moved
        self.ledger[_IB] += self._sum(moved) * self.grid.voxel_volume_m3

    def _substeps(self, dt) -> int:
        n = self.op.substeps(dt)
        while self.op.substeps(dt / n) > 1:
            n += 1
        return n

    def step(self, dt: float) -> None:
        """Advance all pools by ``dt`` (s); explicit steps are split inside the stability limit."""
        dt = float(dt)
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be a positive, finite time step in s, got {dt!r}")
        n = self._substeps(dt)
        sub = dt / n
        explicit = self.op.scheme == "explicit"
        vol = self.grid.voxel_volume_m3
        for j in range(n):
            t_end = self.time_s + (j + 1) * sub
            cp = float(self.plasma(t_end))
            if explicit:
                self._split_loss(sub, self.op.c)
            led = self.op.step(sub, cp)
            if not explicit:
                self._split_loss(sub, self.op.c)
            self.ledger[_BND] += led[0]
            self.ledger[_VES] += led[1]
            self.ledger[_EXTRA] += sub * cp * self._ps_sum * vol
            self.operator_loss += led[2]
            self._internalise_bound(sub)
        self.time_s += dt
        self.step_index += 1

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
        """Host copies of the three pools (carriers/m³), by :data:`POOLS`."""
        to_host = self.backend.to_host
        return {"free": to_host(self.op.c), "bound": to_host(self.op.cb),
                "internalised": to_host(self.ci)}

    def state_attrs(self) -> dict:
        return {"time_s": self.time_s, "step_index": self.step_index,
                "initial_total": self.initial_total, "operator_loss": self.operator_loss,
                "ledger": [float(v) for v in self.ledger]}

    def load_state(self, arrays: dict, attrs: dict) -> None:
        """Restore what :meth:`fields` and :meth:`state_attrs` saved."""
        be = self.backend
        self.op.c[...] = be.asarray(arrays["free"], self.dtype)
        self.op.cb[...] = be.asarray(arrays["bound"], self.dtype)
        self.ci[...] = be.asarray(arrays["internalised"], self.dtype)
        self.time_s = float(attrs["time_s"])
        self.step_index = int(attrs["step_index"])
        self.initial_total = float(attrs["initial_total"])
        self.operator_loss = float(attrs["operator_loss"])
        self.ledger = np.asarray(attrs["ledger"], np.float64).copy()

    def __repr__(self) -> str:
        a = self.amounts()
        pools = ", ".join(f"{k} {a[k]:.4g}" for k in POOLS)
        op = repr(self.op).replace("\n", "\n    ")
        return (f"ContinuumCarrierModel at t = {self.time_s:g} s (step {self.step_index}); "
                f"carriers: {pools}\n└── {op}")


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
