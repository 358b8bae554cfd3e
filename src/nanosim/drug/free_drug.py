r"""Free drug (sorafenib) in tissue: transport, uptake, binding, exchange with plasma.

.. math::

    \partial_t C = \nabla\cdot(D_{eff}\nabla C) - \nabla\cdot(u C) - (k_{uptake} + k_{decay}) C
                   + k_{efflux} C_i - k_{on} C + k_{off} C_b + \tfrac{PS}{V}(C_p - C) + \text{release},

    \partial_t C_i = k_{uptake} C - (k_{efflux} + k_{met}) C_i

(PHYSICS.md §8), with ``C_b`` the bound pool, ``C_i`` the drug inside the cells (mol per m³ of
tissue; the intracellular pool) and ``C_p(t)`` the plasma concentration held in
fixed-concentration vessel voxels or exchanged through the wall of exchange vessels. The model
keeps a float64 ledger of every amount that enters or leaves, closed on every step.

Intracellular pool
------------------
Uptake is part of the operator's first-order loss (so the steady K₀ profile around a vessel stays
exact in the implicit scheme); each operator (sub-)step's loss is known voxel by voxel —
``Δt k c^n`` for the explicit scheme, ``Δt k c^{n+1}`` for the implicit one, as the operator
books it — and its uptake share ``k_uptake/(k_uptake + k_decay)`` enters ``C_i``. Efflux back to
the free drug and elimination inside the cells act on ``C_i`` exactly over each outer step after
the operator (Lie splitting: first order in the step; exact when both rates are 0, the defaults).
"""

from __future__ import annotations

import numpy as np

from ..backends import Backend
from ..geometry import REGION_NAMES, Grid, region_map, vessel_maps, wall_correction
from ..transport import BC_CODES, TransportOperator
from .plasma import PlasmaCurve

LEDGER_NAMES = ("boundary_in_mol", "vessel_supply_mol", "loss_mol", "exchange_in_mol", "source_mol",
                "released_in_mol", "uptake_mol", "efflux_mol", "intracellular_eliminated_mol")
"""Float64 ledger of the free drug (mol): inflows, the operator's first-order loss (uptake + decay), the
share of it taken up into the cells, efflux back out of them and elimination inside them."""
_UPTAKE, _EFFLUX, _IC_ELIM = 6, 7, 8


def _regions(drug):
    """The drug's region specs (normal, tumour, necrotic): tumour defaults to normal, necrotic to tumour."""
    tumour = drug.tumour or drug.normal
    return drug.normal, tumour, drug.necrotic or tumour


def region_tables(drug):
    """Per-region float64 tables (normal, tumour, necrotic) from the scenario's drug spec."""
    regs = _regions(drug)
    d = [r.diffusivity_m2_per_s for r in regs]
    k = [r.uptake_rate_per_s + drug.decay_rate_per_s for r in regs]
    kon = [r.binding_on_rate_per_s for r in regs]
    koff = [r.binding_off_rate_per_s for r in regs]
    return d, k, kon, koff


def cell_tables(drug):
    """Per-region float64 tables (normal, tumour, necrotic) of uptake, efflux and intracellular
    elimination rates (1/s)."""
    regs = _regions(drug)
    return ([r.uptake_rate_per_s for r in regs], [r.efflux_rate_per_s for r in regs],
            [r.intracellular_elimination_rate_per_s for r in regs])


class FreeDrugModel:
    """State and physics of the free-drug field on one backend (built by :func:`build_model`)."""

    def __init__(self, backend: Backend, grid: Grid, operator: TransportOperator, plasma: PlasmaCurve,
                 region: np.ndarray, vessel: np.ndarray):
        self.backend = backend
        self.grid = grid
        self.op = operator
        self.plasma = plasma
        self.region_host = region
        self.vessel_host = vessel
        self.time_s = 0.0
        self.step_index = 0
        self.initial_total_mol = 0.0
        self.ledger_mol = np.zeros(len(LEDGER_NAMES))
        self.total_mol = 0.0
        self._masks = {name: backend.asarray(region == code) for code, name in enumerate(REGION_NAMES)}
        self._counts = {name: int((region == code).sum()) for code, name in enumerate(REGION_NAMES)}
        self.vasculature = None  # set by build_model when the scenario has a [network]
        self.systemic = None  # SystemicDrugPK when the plasma is computed (drug.plasma.kind = "systemic")
        self.ci = None  # drug inside the cells (mol/m³ of tissue), when cells take it up (set_cells)
        self.field_names = ("free_drug", "bound_drug")

    def set_cells(self, uptake_per_s, efflux_per_s=(0.0, 0.0, 0.0), elimination_per_s=(0.0, 0.0, 0.0)) -> None:
        """Give the cells an intracellular pool: per-region rates (1/s) of uptake (which must be part of
        the operator's loss table), efflux back to the free drug and elimination inside the cells.
        Nothing happens in vessel-lumen (fixed) voxels, where the operator has no reactions."""
        region = self.region_host
        tissue = np.ones(region.shape) if not self.op.has_fixed else \
            (self.backend.to_host(self.op.fixed) == 0).astype(float)
        up, eff, met = (np.asarray(v, np.float64)[region] * tissue for v in (uptake_per_s, efflux_per_s, elimination_per_s))
        if not np.any(up > 0):
            return
        dev = self.backend.asarray
        self._k_up = dev(up, np.float64)
        out = eff + met
        self._k_out = dev(out, np.float64) if np.any(out > 0) else None
        self._efflux_share = dev(np.divide(eff, out, out=np.zeros_like(out), where=out > 0), np.float64)
        self._out_cache = (None, None)
        self._gain_cache = (None, None, None)
        self.ci = self.backend.zeros(self.grid.shape_zyx, self.op.dtype)
        self.field_names = ("free_drug", "bound_drug", "intracellular_drug")

    def _sum(self, a) -> float:
        return float(self.backend.xp.sum(a, dtype=self.backend.xp.float64))

    # -- state --------------------------------------------------------------------------------
    def set_initial(self, c0: np.ndarray) -> None:
        self.op.c[...] = self.backend.asarray(c0, self.op.dtype)
        self.op.cb[...] = 0
        if self.ci is not None:
            self.ci[...] = 0
        if self.op.has_fixed:
            fx = self.op.fixed.astype(bool)
            self.op.c[fx] = self.plasma(0.0)
        self.initial_total_mol = self.op.total_mol()
        self.total_mol = self.initial_total_mol

    def step(self, dt: float) -> None:
        """Advance by ``dt`` (s); the plasma value is taken at the end of the step."""
        t_new = self.time_s + dt
        cp = self.plasma(t_new)
        if self.ci is None:
            led = self.op.step(dt, cp)
            self.ledger_mol[:5] += led[:5]
            self.total_mol = float(led[5])
        else:
            self._step_with_cells(dt, cp)
        self.time_s = t_new
        self.step_index += 1

    def _step_with_cells(self, dt: float, cp: float) -> None:
        """The operator one (sub-)step at a time, booking each one's uptake into the cells, then
        efflux and elimination inside the cells exactly over ``dt`` (module docstring)."""
        op, vol = self.op, self.grid.voxel_volume_m3
        n = op.single_substeps(dt)
        sub = dt / n
        explicit = op.scheme == "explicit"
        if self._gain_cache[0] != sub:  # k_uptake·Δt per voxel at the field precision, and a buffer
            # (the step may change in its last bits from one step to the next: the buffer stays)
            gain = self._gain_cache[2]
            if gain is None:
                gain = self.backend.zeros(self.grid.shape_zyx, op.dtype)
            self._gain_cache = (sub, (sub * self._k_up).astype(op.dtype), gain)
        _, k_sub, gain = self._gain_cache
        xp = self.backend.xp
        for _ in range(n):
            if explicit:
                xp.multiply(k_sub, op.c, out=gain)
            led = op.step(sub, cp)
            if not explicit:
                xp.multiply(k_sub, op.c, out=gain)
            self.ci += gain
            self.ledger_mol[:5] += led[:5]
            self.ledger_mol[_UPTAKE] += self._sum(gain) * vol
        op_total = float(led[5])  # Σ(c + c_b)·V after the last sub-step, from the kernel
        if self._k_out is not None:
            if self._out_cache[0] != dt:
                self._out_cache = (dt, -self.backend.xp.expm1(-self._k_out * dt))
            out = self.ci * self._out_cache[1]
            back = (out * self._efflux_share).astype(op.dtype, copy=False)
            out = out.astype(op.dtype, copy=False)
            self.ci -= out
            op.c += back
            moved, returned = self._sum(out) * vol, self._sum(back) * vol
            self.ledger_mol[_EFFLUX] += returned
            self.ledger_mol[_IC_ELIM] += moved - returned
            op_total = op.total_mol()
        self.total_mol = op_total + self._sum(self.ci) * vol

    def deposit(self, amount_mol) -> None:
        """Add drug released by carriers: ``amount_mol`` per voxel (flat, nz·ny·nx), into the free pool."""
        xp = self.backend.xp
        amount = xp.asarray(amount_mol).reshape(self.grid.shape_zyx)
        self.op.c += (amount / self.grid.voxel_volume_m3).astype(self.op.dtype)
        self.ledger_mol[5] += float(xp.sum(amount, dtype=xp.float64))

    def mass_balance_error(self) -> float:
        """(current total − initial − net inflow) / max(|initial|, |inflows|, |total|): round-off."""
        led = self.ledger_mol
        # the operator's loss includes the uptake, which stays in the cells' pool (part of the total)
        inflow = led[0] + led[1] - led[2] + led[3] + led[4] + led[5] + led[_UPTAKE] - led[_IC_ELIM]
        scale = max(abs(self.initial_total_mol), abs(self.total_mol), float(np.abs(self.ledger_mol).max()), 1e-300)
        return (self.total_mol - self.initial_total_mol - inflow) / scale

    def state_arrays(self) -> dict:
        out = {"free_drug": self.backend.to_host(self.op.c), "bound_drug": self.backend.to_host(self.op.cb)}
        if self.ci is not None:
            out["intracellular_drug"] = self.backend.to_host(self.ci)
        return out

    def state_attrs(self) -> dict:
        extra = {"systemic_drug": self.systemic.state()} if self.systemic is not None else {}
        return {**extra, "time_s": self.time_s, "step_index": self.step_index, "initial_total_mol": self.initial_total_mol,
                "total_mol": self.total_mol, "ledger_mol": [float(v) for v in self.ledger_mol]}

    def load_state(self, arrays: dict, attrs: dict) -> None:
        self.op.c[...] = self.backend.asarray(arrays["free_drug"], self.op.dtype)
        self.op.cb[...] = self.backend.asarray(arrays["bound_drug"], self.op.dtype)
        if self.ci is not None:
            self.ci[...] = self.backend.asarray(arrays["intracellular_drug"], self.op.dtype)
        self.time_s = float(attrs["time_s"])
        self.step_index = int(attrs["step_index"])
        self.initial_total_mol = float(attrs["initial_total_mol"])
        self.total_mol = float(attrs["total_mol"])
        self.ledger_mol = np.zeros(len(LEDGER_NAMES))
        saved = np.asarray(attrs["ledger_mol"], float)
        self.ledger_mol[:len(saved)] = saved  # a checkpoint written before the cells' entries has none of them
        if self.systemic is not None:
            self.systemic.load_state(attrs["systemic_drug"])

    # -- output -------------------------------------------------------------------------------
    def fields(self) -> dict:
        return self.state_arrays()

    def metrics(self) -> dict:
        xp = self.backend.xp
        vol = self.grid.voxel_volume_m3
        c, cb = self.op.c, self.op.cb
        out = {
            "time_s": self.time_s,
            "plasma_mol_per_m3": self.plasma(self.time_s),
            "free_drug_mol": float(xp.sum(c, dtype=xp.float64)) * vol,
            "bound_drug_mol": float(xp.sum(cb, dtype=xp.float64)) * vol,
            "intracellular_drug_mol": 0.0 if self.ci is None else self._sum(self.ci) * vol,
            "total_drug_mol": self.total_mol,
        }
        for name, mask in self._masks.items():
            if self._counts[name]:
                out[f"{name}_mean_free_mol_per_m3"] = float(xp.sum(c * mask, dtype=xp.float64)) / self._counts[name]
                if self.ci is not None:
                    out[f"{name}_mean_intracellular_mol_per_m3"] = self._sum(self.ci * mask) / self._counts[name]
        for k, v in zip(LEDGER_NAMES, self.ledger_mol):
            out[k] = float(v)
        if self.systemic is not None:
            s = self.systemic
            out["plasma_total_mol_per_m3"] = s.plasma_concentration()
            out["plasma_total_ug_per_ml"] = s.plasma_concentration_ug_per_ml()
            out["plasma_cmax_total_mol_per_m3"] = s.c_max_mol_per_m3
            out["plasma_auc_total_mol_s_per_m3"] = s.auc()
            out["systemic_drug_balance_rel_error"] = float(s.ledger_error())
        out["mass_balance_rel_error"] = float(self.mass_balance_error())
        return out

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {self._counts[n]}" for n in REGION_NAMES if self._counts[n])
        return (f"FreeDrugModel at t = {self.time_s:g} s (step {self.step_index})\n"
                f"├── {self.grid!r}".replace("\n└", "\n│   └") + "\n"
                f"├── regions (voxels): {counts}; vessel voxels {int(self.vessel_host.sum())}\n"
                f"├── plasma: {self.plasma!r}\n"
                f"└── {self.op!r}".replace("\n├── terms", "\n    ├── terms").replace("\n└── walls", "\n    └── walls"))


def initial_field(grid: Grid, spec) -> np.ndarray:
    """Initial free concentration (mol/m³): uniform, or a Gaussian of given total amount."""
    if spec.kind == "uniform":
        return np.full(grid.shape_zyx, spec.concentration_mol_per_m3, dtype=np.float64)
    z, y, x = grid.mesh_m()
    cx, cy, cz = spec.center_m
    s2 = spec.sigma_m**2
    g = np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * s2))
    # normalise on the grid so the discrete total equals the requested amount
    return spec.amount_mol * g / (g.sum() * grid.voxel_volume_m3)


def build_model(scenario, backend: Backend, dtype, log=None, vasculature="build") -> FreeDrugModel:
    """Grid, tissue, vessel network and fluid, operator and initial state from a validated scenario.

    With a ``[network]``, the network's wall area per volume adds exchange with plasma
    (P·S/V, P = ``drug.permeability_m_per_s``), and with ``interstitial.convect_drug`` the
    interstitial Darcy velocity carries the drug.
    """
    from ..vasculature.build import build_vasculature

    g = scenario.grid
    grid = Grid(tuple(int(n) for n in g.shape), float(g.voxel_size_m), tuple(float(o) for o in g.origin_m))
    region = region_map(grid, scenario.tissue.tumour)
    fixed, sv, vessel = vessel_maps(grid, scenario.vessels)
    vas = build_vasculature(scenario, grid, region, backend, log=log) if vasculature == "build" else vasculature
    if vas is not None:
        sv = sv + vas.maps.surface_per_volume_per_m
        vessel = np.maximum(vessel, (vas.maps.volume_fraction >= 0.5).astype(np.uint8))
    drug = scenario.drug
    d, k, kon, koff = region_tables(drug)
    # wall exchange: permeable walls (P·S/V) plus the sub-voxel position of fixed walls
    ps = sv * drug.permeability_m_per_s if np.any(sv) else np.zeros(grid.shape_zyx)
    if fixed.any():
        ps = ps + np.asarray(d)[region] / grid.voxel_size_m**2 * wall_correction(grid, scenario.vessels, fixed)
    ps = ps if np.any(ps) else None
    bcs = [g.boundary.x, g.boundary.y, g.boundary.z]
    bc_kind = [BC_CODES[b.kind] for b in bcs]
    bc_value = [float(b.value_mol_per_m3 or 0.0) if b.kind == "fixed" else 0.0 for b in bcs]
    u = tuple(float(v) for v in scenario.transport.velocity_m_per_s)
    velocity = u if any(u) else None
    if vas is not None and vas.interstitial is not None and scenario.interstitial.convect_drug:
        # face velocities of the Darcy flow, plus any uniform drift the scenario adds
        velocity = vas.interstitial.face_velocity_m_per_s + np.asarray(u)[:, None, None, None]
    op = TransportOperator(backend, grid, region, d, k, kon, koff, bc_kind, bc_value, dtype,
                           scheme=scenario.transport.scheme, ps=ps, fixed=fixed if fixed.any() else None,
                           velocity_m_per_s=velocity)
    systemic = None
    if drug.plasma.kind == "systemic":
        from ..carriers.systemic import body_from
        from .systemic import build_systemic_drug

        b = scenario.body
        body = body_from(b.species, **({"body_mass_kg": b.body_mass_kg} if b.body_mass_kg is not None else {}))
        systemic = build_systemic_drug(drug.plasma.pk, drug.plasma.oral, body_mass_kg=body.body_mass_kg,
                                       intravenous=drug.plasma.intravenous,
                                       molar_mass_kg_per_mol=drug.molar_mass_g_per_mol * 1e-3, name=drug.name)
        plasma = systemic.plasma_curve(unbound=True)  # only the unbound drug crosses the walls
    else:
        plasma = PlasmaCurve(drug.plasma)
    model = FreeDrugModel(backend, grid, op, plasma, region, vessel)
    model.set_cells(*cell_tables(drug))
    model.systemic = systemic
    model.vasculature = vas
    model.set_initial(initial_field(grid, drug.initial))
    return model
