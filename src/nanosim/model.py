"""The model a scenario builds: the free drug, the carriers, or both, on one backend.

:func:`build` makes the grid, the tissue regions and the vessel network with its fluid once, then
the parts the scenario asks for: a :class:`~nanosim.drug.free_drug.FreeDrugModel` (``[drug]``)
and a :class:`~nanosim.carriers.model.CarrierModel` (``[carrier]``). :class:`Model` steps them
together and gives the simulation loop, the writer and the checkpointer one interface.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import Grid, region_map, vessel_maps


class Model:
    """Free drug and/or carriers, advanced together (carriers first, then the drug field)."""

    def __init__(self, grid, region, vessel, vasculature, drug=None, carriers=None, exposure=None):
        self.grid = grid
        self.region_host = region
        self.vessel_host = vessel
        self.vasculature = vasculature
        self.drug = drug
        self.carriers = carriers
        self.exposure = exposure
        self.oxygen = None  # OxygenSolution (static)
        self.ph = None  # PHSolution (static)
        self.time_s = 0.0
        self.step_index = 0

    # -- stepping -------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        if self.carriers is not None:
            self.carriers.step(dt)
            if self.drug is not None and self.carriers.release_params is not None:
                # drug released by the carriers joins the free drug before it moves
                self.drug.deposit(self.carriers.take_release_deposit())
        if self.drug is not None:
            if self.drug.systemic is not None:
                leak = self.carriers.body_leak_mol if self.carriers is not None else 0.0
                self.drug.systemic.step(dt, carrier_leak_rate_mol_per_s=leak / dt)
            self.drug.step(dt)
            if self.exposure is not None:
                self.exposure.update(self.drug.op.c, dt, self.drug.plasma(self.drug.time_s))
        self.step_index += 1
        self.time_s += dt

    @property
    def time_s(self) -> float:
        return self._time_s

    @time_s.setter
    def time_s(self, value: float) -> None:
        # the loop sets the time from the step count: keep the parts on the same clock
        self._time_s = float(value)
        for part in (getattr(self, "drug", None), getattr(self, "carriers", None)):
            if part is not None:
                part.time_s = self._time_s

    def dt_limit(self, scenario) -> float:
        """Largest outer step the parts allow (the drug's explicit scheme sub-steps by itself)."""
        lim = math.inf
        if self.drug is not None:
            from .runner import IMPLICIT_AUTO_FACTOR

            op = self.drug.op
            if scenario.transport.dt_s == "auto":
                lim = 0.9 * op.explicit_dt_limit() if scenario.transport.scheme == "explicit" else \
                    IMPLICIT_AUTO_FACTOR * op.explicit_dt_limit()
            else:
                lim = float(scenario.transport.dt_s)
            if self.carriers is not None and scenario.transport.dt_s == "auto":
                lim = math.inf  # the drug sub-steps within the carriers' step
        if self.carriers is not None:
            dt = scenario.particles.dt_s
            lim = min(lim, self.carriers.dt_limit() if dt == "auto" else float(dt))
        return lim

    def dt_phases(self, scenario) -> list[tuple[float, float]]:
        """``(end_s, largest step)`` of each phase of the run: one phase, or two when the carriers take
        another step after their infusion (``particles.dt_after_infusion_s``)."""
        stop = float(scenario.time.stop_s)
        lim = self.dt_limit(scenario)
        after = None if self.carriers is None else scenario.particles.dt_after_infusion_s
        infusion = 0.0 if self.carriers is None else float(scenario.route.infusion_duration_s)
        if after is None or not 0.0 < infusion < stop:
            return [(stop, lim)]
        later = scenario.model_copy(update={"particles": scenario.particles.model_copy(update={"dt_s": after})})
        return [(infusion, lim), (stop, self.dt_limit(later))]

    def substeps(self, dt: float) -> int:
        return self.drug.op.substeps(dt) if self.drug is not None else 1

    # -- guards ---------------------------------------------------------------------------------
    @property
    def total_mol(self) -> float:
        if self.drug is not None:
            return self.drug.total_mol
        return 0.0 if self.carriers is None else float(sum(self.carriers.compartment_weights().values()))

    def mass_balance_error(self) -> float:
        return self.drug.mass_balance_error() if self.drug is not None else 0.0

    def carrier_balance_error(self) -> float:
        return self.carriers.balance_error() if self.carriers is not None else 0.0

    @property
    def has_drug_ledger(self) -> bool:
        """Whether there is drug to account for: a free-drug model or carriers that release."""
        return self.drug is not None or (self.carriers is not None and self.carriers.release_params is not None)

    def drug_ledger(self) -> dict:
        """The body's and the box's drug accounts (mol) and their relative errors (:mod:`nanosim.drug.ledger`)."""
        from .drug.ledger import drug_ledger

        return drug_ledger(self)

    # -- state ----------------------------------------------------------------------------------
    def state_arrays(self) -> dict:
        out = {}
        if self.drug is not None:
            out.update(self.drug.state_arrays())
        if self.carriers is not None:
            out.update(self.carriers.state_arrays())
        if self.exposure is not None:
            out.update(self.exposure.state_arrays())
        return out

    def state_attrs(self) -> dict:
        out = {"time_s": self.time_s, "step_index": self.step_index}
        if self.drug is not None:
            out.update(self.drug.state_attrs())
        if self.carriers is not None:
            out.update(self.carriers.state_attrs())
        if self.exposure is not None:
            out.update(self.exposure.state_attrs())
        return out

    def load_state(self, arrays: dict, attrs: dict) -> None:
        if self.drug is not None:
            self.drug.load_state(arrays, attrs)
        if self.carriers is not None:
            self.carriers.load_state(arrays, attrs)
        if self.exposure is not None:
            self.exposure.load_state(arrays, attrs)
        self.step_index = int(attrs["step_index"])
        self.time_s = float(attrs["time_s"])

    # -- output ---------------------------------------------------------------------------------
    @property
    def field_names(self) -> tuple:
        names = ()
        if self.drug is not None:
            names += tuple(self.drug.field_names)
        if self.exposure is not None:
            names += ("auc_unbound", "cmax_unbound", "time_above_threshold")
        if self.carriers is not None:
            names += CARRIER_FIELDS
            if self.carriers.release_params is not None:
                names += ("released_drug",)
        return names

    def fields(self) -> dict:
        out = {}
        if self.drug is not None:
            out.update(self.drug.fields())
        if self.carriers is not None:
            out.update(self.carriers.fields())
        if self.exposure is not None:
            out.update(self.exposure.fields())
        return out

    def metrics(self) -> dict:
        out = {"time_s": self.time_s}
        if self.drug is not None:
            out.update(self.drug.metrics())
        if self.carriers is not None:
            out.update(self.carriers.metrics())
        if self.exposure is not None:
            out.update(self.exposure.metrics())
        if self.has_drug_ledger:
            out.update({f"ledger_{k}": v for k, v in self.drug_ledger().items()})
        if getattr(self, "oxygen", None) is not None:
            for k, v in self.oxygen.hypoxic_fraction().items():
                out[f"hypoxic_fraction_{k}"] = float(v)
        return out

    def __repr__(self) -> str:
        parts = [repr(p) for p in (self.drug, self.carriers) if p is not None]
        return f"Model at t = {self.time_s:g} s (step {self.step_index})\n" + "\n".join(parts)


#: Carrier concentration fields (carriers per m³ of tissue), by compartment.
CARRIER_FIELDS = ("carrier_free", "carrier_bound", "carrier_internalised", "carrier_vessel", "carrier_lodged")


def build(scenario, backend, dtype, log=None) -> Model:
    """Grid, regions, vasculature once; then the free-drug and carrier parts the scenario has."""
    from .carriers.model import CarrierModel
    from .drug.free_drug import build_model as build_drug
    from .vasculature.build import build_vasculature

    g = scenario.grid
    grid = Grid(tuple(int(n) for n in g.shape), float(g.voxel_size_m), tuple(float(o) for o in g.origin_m))
    region = region_map(grid, scenario.tissue.tumour)
    _, _, vessel = vessel_maps(grid, scenario.vessels)
    vas = build_vasculature(scenario, grid, region, backend, log=log)
    if vas is not None:
        vessel = np.maximum(vessel, (vas.maps.volume_fraction >= 0.5).astype(np.uint8))
    drug = build_drug(scenario, backend, dtype, log=log, vasculature=vas) if scenario.drug is not None else None
    carriers = None
    if scenario.carrier is not None:
        carriers = CarrierModel(scenario, backend, grid, region, vas, pos_dtype=np.float64, log=log)
    oxygen, ph = build_microenvironment(scenario, grid, region, vas, backend, log)
    if carriers is not None and ph is not None:
        carriers.ph_map = backend.asarray(np.asarray(ph.ph, np.float64))  # the pH release sees in tissue
    exposure = None
    if drug is not None:
        from .drug.exposure import ExposureTracker

        exposure = ExposureTracker(backend, region, scenario.drug.threshold_mol_per_m3)
        exposure.start(drug.op.c, drug.plasma(0.0))
    model = Model(grid, region, vessel, vas, drug=drug, carriers=carriers, exposure=exposure)
    model.oxygen, model.ph = oxygen, ph
    return model


def build_microenvironment(scenario, grid, region, vas, backend, log=None):
    """Steady oxygen and extracellular pH fields, when the scenario asks for them (else None)."""
    say = log or (lambda msg: None)
    oxygen = ph = None
    if scenario.oxygen.enabled:
        from .microenv.oxygen import build_oxygen

        oxygen = build_oxygen(scenario.oxygen, grid, region, vessels=scenario.vessels, vasculature=vas,
                              backend=backend).solve()
        hyp = oxygen.hypoxic_fraction()
        say(f"oxygen: {oxygen.info.newton_iterations} Newton steps, {oxygen.info.cg_iterations} CG iterations; hypoxic fraction "
            + ", ".join(f"{k} {v:.3g}" for k, v in hyp.items() if v == v))
    if scenario.ph.enabled:
        from .microenv.ph import build_ph

        ph = build_ph(scenario.ph, grid, region, vessels=scenario.vessels, vasculature=vas,
                      po2_pa=None if oxygen is None else oxygen.po2_pa, backend=backend)
        say(f"extracellular pH: mean {float(np.mean(ph.ph)):.3f}")
    return oxygen, ph
