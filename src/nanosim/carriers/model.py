r"""Carriers as particles, from the body's blood through the box's vessels into the tumour tissue.

One :class:`CarrierModel` holds the systemic compartment (the whole body's blood, a two-
compartment model with liver-macrophage uptake) and, for each size class of the design, one
:class:`Population` of simulated particles in the box. A particle stands for ``weight`` real
carriers and is in one compartment (:mod:`nanosim.kernels.compartments`).

One step of length ``dt`` (t → t + dt):

1. **Body.** The systemic model is integrated exactly over the step (with any infusion) and
   gives the plasma carrier concentration's integral over the step, ``∫C_p dt``.
2. **Inlets.** The box's inflowing segments receive ``Q_plasma ∫C_p dt`` carriers each
   (``Q_plasma = Q (1 − H_D)``); with hepatic arterial infusion or embolisation the arterial
   inlets also receive the infused carriers' share ``Q_plasma,inlet / Q_plasma,hepatic artery``
   of the infusion (the first pass). They enter as ``particles.vessel_packets_per_step`` packets.
3. **Vessels.** Packets are advected along their paths for the whole step, crossing segments,
   choosing branches in proportion to flow (:mod:`nanosim.kernels.vascular`), losing weight
   through the walls at each segment's Patlak rate (:mod:`nanosim.carriers.design`); packets
   that reach an outlet leave the box and rejoin the body's blood.
4. **Tissue.** Tissue particles take one Brownian + convective step (hindered diffusivity per
   region, interstitial Darcy velocity), steps into vessel lumens are rejected, and first-order
   transitions act: binding, unbinding, internalisation, lymphatic drainage, and re-entry into
   the blood through the wall (:mod:`nanosim.kernels.particle_states`).
5. **Extravasation.** The weight that left each segment's plasma during the step becomes tissue
   particles of a fixed weight ``w_t``, placed uniformly along the segment just outside its wall;
   the remainder below ``w_t`` stays in the segment's wall account for the next step.

Weight is conserved exactly, up to float64 round-off: entered = in vessels + in walls + free +
bound + internalised + lodged + returned to blood + drained (checked every step).

Dose scaling: the box is a sample of a whole tumour of volume ``body.tumour_volume_m3`` — all
of it, or a piece of its edge or interior. % of the injected dose (%ID) in the tumour is
depth-resolved (:func:`nanosim.geometry.tissue.whole_tumour_weights`): the tumour is cut into
layers of equal normalised depth, each layer the box samples stands for the whole tumour's
volume of that layer, layers the box misses borrow the nearest sampled layer of the same
tissue, and an unsampled necrotic core counts as holding no carriers. A box holding the whole
tumour reduces to plain volume scaling. The box's draw on the body's blood is negligible and
not subtracted from it (the measured blood curve includes it).
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels import compartments as C
from ..kernels import rng
from ..geometry.tissue import whole_tumour_weights
from . import design as D

#: Conductance factor of a segment occluded by an embolic sphere (closed, yet the network stays solvable).
OCCLUDED_CONDUCTANCE_FACTOR = 1e-12

LEDGER_NAMES = ("entered", "exited", "intravasated", "cleared", "extravasated")
#: The box's drug ledger (mol): what came in inside carriers, where it was released, what left in carriers.
DRUG_LEDGER = ("entered_in_carriers", "left_in_carriers", "released_in_blood", "released_free", "released_bound",
               "released_internalised", "released_lodged")


class Population:
    """Particle arrays of one size class on a backend (grown on demand, compacted when sparse)."""

    ARRAYS = ("x", "y", "z", "s", "weight", "payload", "tau", "released", "ids", "seg", "state")

    def __init__(self, backend, capacity: int, pos_dtype):
        xp = backend.xp
        self.backend = backend
        self.capacity = int(capacity)
        n = min(self.capacity, 1024)
        self.x = xp.zeros(n, pos_dtype)
        self.y = xp.zeros(n, pos_dtype)
        self.z = xp.zeros(n, pos_dtype)
        self.s = xp.zeros(n, np.float64)
        self.weight = xp.zeros(n, np.float64)
        self.payload = xp.zeros(n, np.float64)
        self.tau = xp.zeros(n, np.float64)  # release clock, s
        self.released = xp.zeros(n, np.float64)  # fraction of the payload released
        self.ids = xp.zeros(n, np.int64)
        self.seg = xp.full(n, -1, np.int64)
        self.state = xp.zeros(n, np.uint8)
        self.n = 0  # slots in use (live particles are among them)

    @property
    def size(self) -> int:
        return int(self.x.shape[0])

    def view(self, name):
        return getattr(self, name)[: self.n]

    def reserve(self, extra: int) -> None:
        need = self.n + int(extra)
        if need <= self.size:
            return
        if need > self.capacity:
            self.compact()
            need = self.n + int(extra)
            if need > self.capacity:
                raise RuntimeError(f"more than particles.max_particles = {self.capacity} particles are needed "
                                   f"({need}); raise particles.max_particles or lower particles.tissue_particles "
                                   "/ particles.vessel_packets_per_step")
        xp = self.backend.xp
        new = min(self.capacity, max(need, 2 * self.size))
        for name in self.ARRAYS:
            old = getattr(self, name)
            arr = xp.zeros(new, old.dtype) if name != "seg" else xp.full(new, -1, old.dtype)
            arr[: self.n] = old[: self.n]
            setattr(self, name, arr)

    def compact(self) -> None:
        """Drop inactive slots, keeping the order of the live particles (ids are unchanged)."""
        xp = self.backend.xp
        live = xp.nonzero(self.state[: self.n] != C.INACTIVE)[0]
        k = int(live.shape[0])
        for name in self.ARRAYS:
            arr = getattr(self, name)
            arr[:k] = arr[live]
        self.state[k: self.n] = C.INACTIVE
        self.n = k

    def append(self, **values) -> slice:
        """Append particles given as equal-length arrays (missing arrays take defaults)."""
        k = int(len(values["ids"]))
        self.reserve(k)
        sl = slice(self.n, self.n + k)
        for name, v in values.items():
            getattr(self, name)[sl] = v
        self.n += k
        return sl

    def host_arrays(self, prefix: str) -> dict:
        return {f"{prefix}{name}": self.backend.to_host(self.view(name)) for name in self.ARRAYS}

    def load(self, arrays: dict, prefix: str) -> None:
        n = int(arrays[f"{prefix}ids"].shape[0])
        self.n = 0
        self.reserve(n)
        for name in self.ARRAYS:
            getattr(self, name)[:n] = self.backend.asarray(arrays[f"{prefix}{name}"])
        self.n = n


def _fmt_pct(v: float) -> str:
    return f"{100 * v:.3g} %"


class CarrierModel:
    """Carriers in the body and in the box (see the module docstring)."""

    def __init__(self, scenario, backend, grid, region, vasculature, pos_dtype=np.float64, log=None):
        from ..flow.network_flow import solve_flow  # noqa: F401  (embolisation recomputes flow)
        from ..kernels import vascular
        from .systemic import body_from

        say = log or (lambda msg: None)
        self.scenario = scenario
        self.backend = backend
        self.grid = grid
        self.seed = int(scenario.seed)
        self.region_host = np.asarray(region, np.uint8)
        self.vas = vasculature
        carrier, route, body = scenario.carrier, scenario.route, scenario.body
        self.carrier, self.route = carrier, route
        overrides = {k: getattr(body, k) for k in ("body_mass_kg", "blood_volume_m3") if getattr(body, k) is not None}
        self.body = body_from(body.species, **overrides)
        if body.hepatic_arterial_flow_m3_per_s is not None:  # given as a flow: keep the liver's total flow
            self.body = body_from(body.species, **overrides, hepatic_arterial_fraction=min(
                1.0, body.hepatic_arterial_flow_m3_per_s / self.body.hepatic_blood_flow_m3_per_s))
        self.dose_carriers = D.carriers_per_dose(carrier, route, self.body.body_mass_kg,
                                                 (scenario.drug.molar_mass_g_per_mol * 1e-3) if scenario.drug else
                                                 D.SORAFENIB_MOLAR_MASS_KG_PER_MOL)
        self.systemic = self._make_pk()
        net, flow = vasculature.network, vasculature.flow
        self.network, self.flow = net, flow
        jv, sigma_t = D.segment_fluid(vasculature, scenario, self.region_host)
        self.seg_jv_m_per_s = jv
        self.sinusoid_bound_m_per_s = math.inf
        if scenario.extravasation.sinusoid_bounded_by_clearance:
            self.sinusoid_bound_m_per_s, _ = D.sinusoid_permeability_bound(
                net, self.region_host, grid.voxel_size_m**3, self.systemic, self.body)
        #: per calibrated wall type: the factor on its large pores and the permeabilities before and after
        self.wall_calibration = {}
        self.classes = D.build_classes(carrier, scenario.extravasation, net, flow, jv, sigma_t,
                                       self.sinusoid_bound_m_per_s, calibration=self.wall_calibration)
        self.graph = vascular.build_graph(net, flow)
        self.rates = D.region_rates(carrier)
        # the box's tumour and what each of its voxels stands for in the whole tumour
        self.tumour_mask_host = self.region_host >= 1
        self.tumour_weight_host, self.tumour_sample = whole_tumour_weights(grid, scenario.tissue.tumour,
                                                                           body.tumour_volume_m3)
        # per-voxel maps on the backend
        be = backend
        self.region = be.asarray(self.region_host)
        maps = vasculature.maps
        self.lumen = be.asarray(np.asarray(maps.volume_fraction) >= 0.5) if scenario.particles.reflect_at_vessel_walls \
            else None
        near = np.asarray(maps.nearest_segment)
        sv = np.asarray(maps.surface_per_volume_per_m)
        self.intravasation = []
        for sc in self.classes:
            k_in = np.zeros(near.shape)
            ok = near >= 0
            k_in[ok] = sv[ok] * sc.seg_back_coefficient_m_per_s[near[ok]]
            self.intravasation.append(be.asarray(k_in) if np.any(k_in) else None)
        self.velocity = None
        if vasculature.interstitial is not None:
            self.velocity = be.asarray(np.ascontiguousarray(vasculature.interstitial.voxel_velocity_m_per_s))
        # inlets: inflow segments with their plasma flow (m³/s)
        plasma_q = np.abs(flow.seg_flow_m3_per_s) * (1.0 - flow.seg_haematocrit)
        self.inlet_seg, self.inlet_q = self._inlets(vascular, plasma_q)
        arterial = net.seg_wall[self.inlet_seg] == 0  # WallType.ARTERY
        self.arterial_q = np.where(arterial, self.inlet_q, 0.0)
        q_ha_plasma = self.body.hepatic_arterial_flow_m3_per_s * (1.0 - self.body.haematocrit)
        self.ha_share = self.arterial_q / q_ha_plasma
        if self.route.kind != "intravenous" and self.ha_share.sum() > 1.0:
            raise ValueError(
                f"body.hepatic_arterial_flow_m3_per_s: the box's arterial inflow ({self.arterial_q.sum() / (1 - self.body.haematocrit):.3g} "
                f"m³/s of blood) exceeds the body's hepatic arterial flow ({self.body.hepatic_arterial_flow_m3_per_s:.3g} m³/s); "
                "the box must be a small part of the liver: check the network's pressures or the body")
        # populations, weights
        p = scenario.particles
        self.pops = [Population(be, p.max_particles, pos_dtype) for _ in self.classes]
        self.tissue_weight = self._tissue_particle_weight()
        self.wall_account = [np.zeros(net.n_segments) for _ in self.classes]
        self.next_id = 0
        self.time_s = 0.0
        self.step_index = 0
        self.ledger = {k: 0.0 for k in LEDGER_NAMES}
        self.infused = 0.0
        self.counts = {}
        # release: the carriers' clock in the body's plasma, drug bookkeeping, deposits on the grid
        self._init_release()
        # embolisation: segments occluded by lodged spheres, spheres due at each inlet
        self.occluded = np.zeros(net.n_segments, bool)
        self.sphere_pending = np.zeros(len(self.inlet_seg))
        self.flow_solves = 0
        say(f"carriers: {self.dose_carriers:.4g} carriers in the dose; {len(self.inlet_seg)} inlets "
            f"({int(arterial.sum())} arterial); tissue particle = {self.tissue_weight[0]:.4g} carriers")
        ts = self.tumour_sample
        if ts["borrowed_m3"] > 0 or ts["unsampled_necrotic_m3"] > 0:
            say(f"tumour % ID by depth: the box samples layers holding {ts['sampled_m3'] * 1e9:.4g} mm³ of the "
                f"{body.tumour_volume_m3 * 1e9:.4g} mm³ tumour; {ts['borrowed_m3'] * 1e9:.4g} mm³ take the nearest "
                f"sampled layer, {ts['unsampled_necrotic_m3'] * 1e9:.4g} mm³ of necrotic core hold none")
        for wall, c in self.wall_calibration.items():
            say(f"{wall} walls: large pores × {c['factor']:.3g} so that their area-mean effective permeability to a "
                f"{c['radius_m'] * 1e9:.3g} nm-radius particle is {c['effective_m_per_s']:.3g} m/s "
                f"({c['effective_before_m_per_s']:.3g} before; diffusive part {c['diffusive_m_per_s']:.3g} m/s, "
                f"median share of J_v {c['share_median']:.3g})")
        if math.isfinite(self.sinusoid_bound_m_per_s):
            say(f"sinusoid walls: permeability to carriers at most {self.sinusoid_bound_m_per_s:.3g} m/s "
                "(the liver's share of the carrier's blood clearance)")

    # -- set-up helpers ------------------------------------------------------------------------
    def _init_release(self) -> None:
        from ..kernels import release as rk

        rel = self.carrier.release
        self.release_params = rel.kernel_params() if rel is not None else None
        self.ph_map = None  # extracellular pH per voxel on the backend (set by the microenvironment)
        nvox = int(np.prod(self.grid.shape_zyx))
        xp = self.backend.xp
        self.release_deposit = xp.zeros(nvox, np.float64)  # mol released into each voxel since taken
        self.released_field = xp.zeros(nvox, np.float64)  # cumulative mol released into each voxel
        self.pool_tau = 0.0  # release clock of the carriers in the body's plasma (amount-weighted mean)
        self.wall_drug = [0.0 for _ in self.classes]  # drug in the carriers of each class's wall account
        self.drug = {k: 0.0 for k in DRUG_LEDGER}
        self.drug["body_released_in_blood"] = 0.0  # body level, not part of the box's ledger
        self.drug["body_released_in_liver"] = 0.0  # embolised spheres in the whole liver (body level)
        self.drug["body_released_in_liver_macrophages"] = 0.0  # carriers taken up by the liver's macrophages
        self.body_leak_mol = 0.0
        self.liver_spheres = 0.0  # embolic spheres lodged in the whole liver (body level)
        self.liver_tau = 0.0
        if self.release_params is not None:
            p = self.release_params
            self.pool_speed = p.factor("vessel") * float(rk.numpy_ph_factor(p.ph_blood, p.pka, p.hill_n, p.h_min))
            self.burst_at_injection = p.burst_fraction > 0 and C.VESSEL in p.burst_states
        else:
            self.pool_speed = 0.0
            self.burst_at_injection = False
        # the drug in the body's carriers is tracked conservatively (nanosim.carriers.payload): exactly
        # for first-order release; other laws release at the mean hazard of the pool's clock
        self.first_order = self.release_params is not None and self.release_params.law == rk.LAW_FIRST_ORDER
        self.payload = None
        self.liver_law_mol = 0.0  # law-held drug in the spheres lodged in the whole liver (first order)
        if self.release_params is not None and self.route.kind != "embolisation":
            from .payload import CirculatingPayload

            pk, p = self.systemic.parameters(), self.release_params
            # carriers inside liver macrophages release as internalised carriers do (endosomal pH)
            self.macrophage_speed = p.factor("internalised") * float(
                rk.numpy_ph_factor(p.ph_endosome, p.pka, p.hill_n, p.h_min))
            k, k_mac = (p.p0 * self.pool_speed, p.p0 * self.macrophage_speed) if self.first_order else (0.0, 0.0)
            self.payload = CirculatingPayload(pk["k12_per_s"], pk["k21_per_s"], pk["k10_per_s"],
                                              k, pk["liver_uptake_fraction"], k_mac)

    def _law_drug_per_carrier(self) -> float:
        """Drug per carrier that the release law acts on (the part not burst), mol."""
        return self.carrier.drug_per_carrier_mol * (1.0 - self.release_params.burst_fraction)

    def _step_payload(self, t0: float, t1: float, carriers_in_macrophages: float) -> float:
        """Advance the body carriers' drug over [t0, t1] (as :meth:`_dose_into` gives the carriers);
        set the plasma pool's clock to the one at which a carrier holds the plasma carriers' mean
        payload; return the drug released in blood and by carriers inside the liver's macrophages
        (mol). ``carriers_in_macrophages``: the carriers the liver's macrophages hold at ``t0``.

        First order: exact. Other laws: the circulating carriers release at the mean hazard of
        the pool's clock over the step, the macrophages' carriers at that of the clock at which a
        carrier holds their mean payload — exact for carriers sharing one clock (a bolus), an
        approximation when an infusion mixes ages (nanosim.carriers.payload)."""
        from .payload import clock_at_survival, mean_hazard

        pay, d_law, p = self.payload, self._law_drug_per_carrier(), self.release_params
        rates = {}
        if not self.first_order:
            dt = t1 - t0
            n_mac = carriers_in_macrophages
            tau_mac = clock_at_survival(p.law, p.p0, p.p1, pay.macrophages / (n_mac * d_law)) \
                if n_mac > 0.0 and d_law > 0.0 else 0.0
            rates = {"release_rate_per_s": mean_hazard(p.law, p.p0, p.p1, self.pool_tau, self.pool_speed * dt, dt),
                     "macrophage_release_rate_per_s": mean_hazard(p.law, p.p0, p.p1, tau_mac,
                                                                  self.macrophage_speed * dt, dt)}
        before = pay.released_in_macrophages
        released = self._dose_into(pay, t0, t1, d_law, **rates)
        in_macrophages = pay.released_in_macrophages - before
        self.drug["body_released_in_blood"] += released
        self.drug["body_released_in_liver_macrophages"] += in_macrophages
        n_c = self.systemic.central
        if n_c > 0.0 and d_law > 0.0 and pay.central > 0.0:
            self.pool_tau = clock_at_survival(p.law, p.p0, p.p1, min(pay.central / (n_c * d_law), 1.0))
        return released + in_macrophages

    def _embolised_liver_release(self, infused: float, dt: float, covered: float) -> float:
        """Drug released during the step by all the spheres lodged in the whole liver (mol).

        Every sphere lodges in the liver on its first pass; their drug reaches the plasma through
        the liver (sorafenib crosses it fast compared with release over days), so it enters the
        systemic drug compartment as released. The spheres form one cohort with an amount-weighted
        clock running at the lodged compartment's speed at tissue pH (as the plasma pool's).
        """
        from ..kernels import release as rk

        p = self.release_params
        speed = p.factor("lodged") * float(rk.numpy_ph_factor(p.ph_tissue, p.pka, p.hill_n, p.h_min))
        if self.first_order:
            # exact: law-held drug L with dL/dt = −k L + d·r over the infused part, then decay
            k, d_law = p.p0 * speed, self._law_drug_per_carrier()
            l0 = self.liver_law_mol
            if covered > 0.0:
                grow = covered if k == 0.0 else -math.expm1(-k * covered) / k
                l1 = l0 * math.exp(-k * covered) + d_law * infused / covered * grow
            else:  # a bolus (or nothing) at the step's start
                l1 = l0 + d_law * infused
            l2 = l1 * math.exp(-k * (dt - covered))
            self.liver_law_mol = l2
            self.liver_spheres += infused
            released = (l0 + d_law * infused - l2) + p.burst_fraction * self.carrier.drug_per_carrier_mol * infused
            self.drug["body_released_in_liver"] += released
            return released
        f0 = self._liver_spheres_fraction()
        old = self.liver_spheres
        self.liver_spheres += infused
        if self.liver_spheres > 0:
            self.liver_tau = (old * (self.liver_tau + speed * dt) + infused * speed * 0.5 * covered) / self.liver_spheres
        released = self.liver_spheres * self.carrier.drug_per_carrier_mol * self._liver_spheres_fraction() - \
            old * self.carrier.drug_per_carrier_mol * f0
        self.drug["body_released_in_liver"] += released
        return released

    def _liver_spheres_fraction(self) -> float:
        from ..kernels import release as rk

        p = self.release_params
        fb = p.burst_fraction
        return fb + (1.0 - fb) * rk.fraction_released.py(p.law, p.p0, p.p1, self.liver_tau)

    def pool_released_fraction(self) -> float:
        """Fraction of the payload already released by carriers arriving from the plasma now."""
        p = self.release_params
        if p is None:
            return 0.0
        from ..kernels import release as rk

        fb = p.burst_fraction
        law = (1.0 - fb) * rk.fraction_released.py(p.law, p.p0, p.p1, self.pool_tau)  # acts on the part not burst
        return fb + law if self.burst_at_injection else law

    def _inlets(self, vascular, plasma_q):
        seg = np.asarray(vascular.inlet_table(self.graph).seg, np.int64)
        return seg, plasma_q[seg]

    def _make_pk(self):
        """The body's carrier pharmacokinetics in plasma (one exponential when f is 0 or 1)."""
        from .systemic import SystemicPK

        bl = self.carrier.blood
        v, f_liver = self.body.plasma_volume_m3, bl.liver_uptake_fraction
        if bl.fast_fraction in (0.0, 1.0) or bl.half_life_fast_s == bl.half_life_slow_s:
            t_half = bl.half_life_fast_s if bl.fast_fraction == 1.0 else bl.half_life_slow_s
            return SystemicPK.one_compartment(t_half, v, liver_uptake_fraction=f_liver)
        return SystemicPK.from_half_lives(bl.half_life_fast_s, bl.half_life_slow_s, bl.fast_fraction, v,
                                          liver_uptake_fraction=f_liver)

    def _infusion_rate(self, t0: float, t1: float) -> tuple[float, float]:
        """Carriers infused per second over [t0, t1] and the length of the infused part (s)."""
        dur = float(self.route.infusion_duration_s)
        if dur == 0.0:
            return 0.0, 0.0
        covered = max(0.0, min(t1, dur) - t0)
        return self.dose_carriers / dur, covered

    def _expected_extravasated(self) -> np.ndarray:
        """Expected carriers leaving the box's vessels by the stop time, per class (for w_t)."""
        stop = float(self.scenario.time.stop_s)
        probe = self._make_pk()
        auc = self._dose_into(probe, 0.0, stop)
        ha = 0.0
        if self.route.kind != "intravenous":
            ha = self.dose_carriers / (self.body.hepatic_arterial_flow_m3_per_s * (1.0 - self.body.haematocrit))
        net = self.network
        out = []
        for sc in self.classes:
            v_plasma = math.pi * net.seg_radius_m**2 * net.seg_length_m * (1.0 - self.flow.seg_haematocrit)
            per_conc = float(np.sum(sc.seg_out_rate_per_s * v_plasma))  # m³/s of plasma cleared by the walls
            out.append(sc.number_fraction * per_conc * (auc + ha * (1.0 if self.route.kind != "intravenous" else 0.0)))
        return np.asarray(out)

    def _dose_into(self, pk, t0: float, t1: float, per_carrier: float = 1.0, **step_args) -> float:
        """Give the dose (bolus at t = 0, or infusion) to ``pk`` over [t0, t1], ``per_carrier``
        units per carrier (1: carriers; drug per carrier for the body carriers' payload); return
        what ``pk.step`` returns summed over the step (∫C_p dt for the carriers); ``step_args`` go to
        every ``pk.step``."""
        if self.route.kind == "embolisation":
            return 0.0  # microspheres lodge in the liver on the first pass: nothing reaches the blood
        if t0 == 0.0 and self.route.infusion_duration_s == 0.0:
            pk.bolus(self.dose_carriers * per_carrier)
        rate, covered = self._infusion_rate(t0, t1)
        rate *= per_carrier
        if 0.0 < covered < t1 - t0:  # the infusion ends inside the step: integrate both parts exactly
            return pk.step(covered, rate, **step_args) + pk.step(t1 - t0 - covered, 0.0, **step_args)
        return pk.step(t1 - t0, rate if covered > 0.0 else 0.0, **step_args)

    def _tissue_particle_weight(self) -> np.ndarray:
        expected = self._expected_extravasated()
        target = float(self.scenario.particles.tissue_particles)
        return np.where(expected > 0, expected / target, 1.0)

    # -- the step ------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        from ..kernels import particle_states, particles, vascular

        t0, t1 = self.time_s, self.time_s + dt
        be = self.backend
        xp = be.xp
        k = self.step_index
        carriers_in_macrophages = self.systemic.mps
        auc = self._dose_into(self.systemic, t0, t1)
        rate, covered = self._infusion_rate(t0, t1)
        # drug released by the body's carriers: in blood (premature leak) and inside the liver's macrophages
        self.body_leak_mol = 0.0
        if self.payload is not None:
            self.body_leak_mol = self._step_payload(t0, t1, carriers_in_macrophages)
        direct = 0.0
        bolus = t0 == 0.0 and self.route.infusion_duration_s == 0.0
        if self.route.kind != "intravenous":
            # carriers given into the hepatic artery during the step (a bolus: all of them at once)
            direct = self.dose_carriers if bolus else rate * covered
            self.infused += direct
        if self.burst_at_injection and self.route.kind != "embolisation":
            # the burst on injection happens in the blood: it goes straight to the systemic drug
            given = self.dose_carriers if bolus else rate * covered
            burst = given * self.carrier.drug_per_carrier_mol * self.release_params.burst_fraction
            self.body_leak_mol += burst
            self.drug["body_released_in_blood"] += burst
        if self.route.kind == "embolisation" and self.release_params is not None:
            self.body_leak_mol += self._embolised_liver_release(direct, dt, covered)
        counts = {"crossings": 0, "lodged": 0, "new_tissue": 0, "exited_packets": 0}
        for ci, (sc, pop) in enumerate(zip(self.classes, self.pops)):
            # 2. inlets
            w_in = sc.number_fraction * (self.inlet_q * auc + self.ha_share * direct)
            self._inject(pop, w_in)
            # 3. vessels
            acc = be.asarray(np.zeros(self.network.n_segments))
            radius = sc.radius_m if self.route.kind == "embolisation" else 0.0
            w_before = pop.view("weight").copy()
            res = vascular.traverse(be.name, pop.view("seg"), pop.view("s"), pop.view("weight"), pop.view("state"),
                                    pop.view("ids"), radius, k, dt_s=dt, seed=self.seed, graph=self.graph,
                                    rate_per_s=be.asarray(sc.seg_out_rate_per_s), extravasated=acc)
            self.ledger["exited"] += float(res["exited_weight"])
            counts["crossings"] += int(res["crossings"])
            counts["lodged"] += int(res.get("lodged", 0))
            acc_h = be.to_host(acc)
            self.ledger["extravasated"] += float(acc_h.sum())
            # drug carried through the walls with that weight (into the class's wall account)
            lost = w_before - pop.view("weight")
            drug_out = float(xp.sum(lost * pop.view("payload") * (1.0 - pop.view("released"))))
            self.wall_drug[ci] += drug_out
            # 4. tissue
            if pop.n:
                self._move_tissue(ci, pop, dt, k, particles, particle_states)
            # 5. extravasated weight → tissue particles
            counts["new_tissue"] += self._extravasate(ci, pop, acc_h, drug_out, k)
            if self.release_params is not None:
                self._release(pop, dt)
            # terminal states: their weight, and the drug still in them, leave the box
            st = pop.view("state")
            for code, key in ((C.EXITED, None), (C.CLEARED, "cleared"), (C.INTRAVASATED, "intravasated")):
                sel = st == code
                w = pop.view("weight")[sel]
                if key is not None:
                    self.ledger[key] += float(xp.sum(w))
                self.drug["left_in_carriers"] += float(xp.sum(w * pop.view("payload")[sel] *
                                                              (1.0 - pop.view("released")[sel])))
                st[sel] = C.INACTIVE
            if pop.n > 4096 and int(xp.count_nonzero(st == C.INACTIVE)) > pop.n // 2:
                pop.compact()
        if self.route.kind == "embolisation":
            counts["occluded_now"] = self._occlude_lodged()
        self.counts = counts
        self.time_s = t1
        self.step_index += 1

    def _inject(self, pop, w_in: np.ndarray) -> None:
        if self.route.kind == "embolisation":
            return self._inject_spheres(pop, w_in)
        total = float(w_in.sum())
        self.ledger["entered"] += total
        if total <= 0.0:
            return
        n = int(self.scenario.particles.vessel_packets_per_step)
        share = w_in / total * n
        per = np.floor(share).astype(np.int64)
        short = n - int(per.sum())
        if short > 0:  # largest remainders get one more packet
            order = np.argsort(-(share - per), kind="stable")
            per[order[:short]] += 1
        keep = (per > 0) & (w_in > 0)
        # inlets with weight but no packet: give their weight to the largest packet stream
        if np.any((w_in > 0) & ~keep):
            big = int(np.argmax(np.where(keep, w_in, -1.0)))
            w_in = w_in.copy()
            w_in[big] += float(w_in[(w_in > 0) & ~keep].sum())
        seg = np.repeat(self.inlet_seg[keep], per[keep])
        weight = np.repeat(w_in[keep] / per[keep], per[keep])
        self._append_packets(pop, seg, weight, self.pool_tau, self.pool_released_fraction())

    def _inject_spheres(self, pop, w_in: np.ndarray) -> None:
        """Embolic spheres enter one by one (each may occlude a segment): whole spheres per inlet,
        the fraction of a sphere not yet due waits for the next step (not yet counted as entered)."""
        self.sphere_pending += w_in
        n = np.floor(self.sphere_pending).astype(np.int64)
        cap = 20 * int(self.scenario.particles.vessel_packets_per_step)
        if int(n.sum()) > cap:
            raise RuntimeError(f"{int(n.sum())} embolic spheres would enter the box in one step (more than 20 × "
                               "particles.vessel_packets_per_step); spheres are followed one by one: lower the "
                               "particle time step (particles.dt_s) or raise particles.vessel_packets_per_step")
        self.sphere_pending -= n
        total = int(n.sum())
        if total == 0:
            return None
        self.ledger["entered"] += float(total)
        # spheres come straight from the catheter: their clock starts now (a burst on injection at once)
        p = self.release_params
        fb = p.burst_fraction if (p is not None and self.burst_at_injection) else 0.0
        self._append_packets(pop, np.repeat(self.inlet_seg, n), np.ones(total), 0.0, fb)
        return None

    def _append_packets(self, pop, seg, weight, tau: float, released: float) -> None:
        n = len(seg)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        be = self.backend
        payload = self.carrier.drug_per_carrier_mol
        self.drug["entered_in_carriers"] += float(np.sum(weight)) * payload * (1.0 - released)
        pop.append(ids=be.asarray(ids), seg=be.asarray(seg), s=be.asarray(np.zeros(n)), weight=be.asarray(weight),
                   payload=be.asarray(np.full(n, payload)), tau=be.asarray(np.full(n, float(tau))),
                   released=be.asarray(np.full(n, float(released))), state=be.asarray(np.full(n, C.VESSEL, np.uint8)))

    def _occlude_lodged(self) -> int:
        """Occlude the segments where spheres newly lodged and recompute the flow; returns how many."""
        lodged = np.zeros(self.network.n_segments, bool)
        for pop in self.pops:
            st = self.backend.to_host(pop.view("state"))
            lodged[self.backend.to_host(pop.view("seg"))[st == C.LODGED]] = True
        new = lodged & ~self.occluded
        if int(new.sum()) < int(self.route.recompute_flow_every):
            return 0
        self._apply_occlusion(self.occluded | new)
        return int(new.sum())

    def _apply_occlusion(self, occluded: np.ndarray) -> None:
        """Close the segments of ``occluded``, recompute the blood flow and re-orient the packets."""
        from dataclasses import replace

        from ..flow.network_flow import solve_flow
        from ..kernels import vascular

        self.occluded = np.asarray(occluded, bool).copy()
        bf = self.scenario.blood_flow
        flow = solve_flow(self.network, viscosity_law=bf.viscosity_law, plasma_viscosity_pa_s=bf.plasma_viscosity_pa_s,
                          haematocrit=bf.haematocrit, phase_separation=bf.phase_separation,
                          conductance_factor=np.where(self.occluded, OCCLUDED_CONDUCTANCE_FACTOR, 1.0))
        self.flow_solves += 1
        q = flow.seg_flow_m3_per_s.copy()
        v = flow.seg_velocity_m_per_s.copy()
        q[self.occluded] = 0.0
        v[self.occluded] = 0.0
        self.flow = replace(flow, seg_flow_m3_per_s=q, seg_velocity_m_per_s=v)
        graph = vascular.build_graph(self.network, self.flow)
        for pop in self.pops:
            seg = self.backend.to_host(pop.view("seg")).copy()
            s = self.backend.to_host(pop.view("s")).copy()
            st = self.backend.to_host(pop.view("state"))
            vascular.reorient_positions(self.graph, graph, seg, s, st)
            pop.view("s")[...] = self.backend.asarray(s)
        self.graph = graph
        plasma_q = np.abs(self.flow.seg_flow_m3_per_s) * (1.0 - self.flow.seg_haematocrit)
        self.inlet_q = plasma_q[self.inlet_seg]
        arterial = self.network.seg_wall[self.inlet_seg] == 0
        self.arterial_q = np.where(arterial, self.inlet_q, 0.0)
        q_ha_plasma = self.body.hepatic_arterial_flow_m3_per_s * (1.0 - self.body.haematocrit)
        self.ha_share = self.arterial_q / q_ha_plasma

    def _move_tissue(self, ci, pop, dt, k, particles, particle_states) -> None:
        xp = self.backend.xp
        sc = self.classes[ci]
        x, y, z = pop.view("x"), pop.view("y"), pop.view("z")
        if self.lumen is not None:
            old = (x.copy(), y.copy(), z.copy())
        particles.step_particles(self.backend.name, x, y, z, pop.view("ids"), pop.view("state"), k, dt_s=dt,
                                 seed=self.seed, grid=self.grid, region=self.region,
                                 region_diffusivity_m2_per_s=sc.region_diffusivity_m2_per_s,
                                 velocity_m_per_s=self.velocity, velocity_interpolation="trilinear",
                                 **self._step_options())
        if self.lumen is not None:
            before = self._voxel_flat(*old)
            after = self._voxel_flat(x, y, z)
            lum = self.lumen.reshape(-1)
            back = (pop.view("state") == C.TISSUE) & lum[after] & ~lum[before]
            for arr, o in zip((x, y, z), old):
                arr[back] = o[back]
        particle_states.transition(self.backend.name, x, y, z, pop.view("state"), pop.view("ids"), k, dt_s=dt,
                                   seed=self.seed, grid=self.grid, region=self.region, rates_per_s=self.rates,
                                   intravasation_per_s=self.intravasation[ci])
        del xp

    def _step_options(self) -> dict:
        dist = self.scenario.particles.step_distribution
        return {} if dist == "gaussian" else {"step_distribution": dist}

    @property
    def _host_rng(self) -> str:
        """Backend of the random numbers drawn into host arrays: the numpy reference on the numpy
        backend, the compiled twin (bitwise the same numbers) otherwise; one per segment and
        step for the wall rounding took 0.19 ms with NumPy at 10 491 segments."""
        return "numpy" if self.backend.name == "numpy" else "numba"

    def _voxel_flat(self, x, y, z):
        from ..kernels import particles

        return particles.voxel_flat(self.backend.name, x, y, z, self.grid, self.backend.xp)

    def _extravasate(self, ci, pop, acc_h: np.ndarray, drug_out: float, k: int) -> int:
        """Turn the weight that left each segment in this step into tissue particles of weight w_t.

        A segment whose wall let ``f`` carriers through becomes ``⌊f/w_t⌋`` particles plus one
        more with probability ``frac(f/w_t)`` (unbiased rounding, one uniform per segment and
        step): the tissue receives the extravasated weight at once on average, whatever the
        particle budget. (Rounding an accumulated account down instead held weight back in
        segments of low flux until w_t had gathered, so the tissue's amounts at a given time
        depended on the number of particles: −28 % tumour dose at 2 h with a quarter of them.)
        The difference between the weight that crossed and the particles made is kept in the
        segment's account (zero on average; a random walk of steps below w_t) so that the weight
        ledger stays exact; ``drug_out`` is the drug that crossed with this step's weight.
        """
        acct = self.wall_account[ci]
        w_t = float(self.tissue_weight[ci])
        ratio = acc_h / w_t
        n_seg = np.floor(ratio).astype(np.int64)
        frac = ratio - n_seg
        if np.any(frac > 0):
            u_round = np.empty(len(acc_h))
            rng.fill_uniform(self._host_rng, u_round, self.seed, k, C.DRAW_WALL_ROUNDING, first_entity=ci * len(acc_h))
            n_seg += (u_round < frac).astype(np.int64)
        acct += acc_h - n_seg * w_t
        n = int(n_seg.sum())
        if n == 0:
            return 0
        crossed = float(acc_h.sum())
        payload = self.carrier.drug_per_carrier_mol
        # the new particles take the drug of the weight they stand for, at this step's drug per
        # carrier crossing; they carry the payload of a carrier from the plasma now (clock τ_pool,
        # released F(τ_pool)); what that weight held beyond it was released in the blood while the
        # carriers crossed the box (their clocks ran)
        released_now = self.pool_released_fraction()
        content = n * w_t * payload * (1.0 - released_now)
        moved = n * w_t * drug_out / crossed
        self.wall_drug[ci] -= moved
        self.drug["released_in_blood"] += moved - content
        seg = np.repeat(np.arange(len(acct)), n_seg)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        u = np.empty(n)
        v = np.empty(n)
        rng.fill_uniform(self._host_rng, u, self.seed, k, C.DRAW_PLACEMENT, first_entity=int(ids[0]))
        rng.fill_uniform(self._host_rng, v, self.seed, k, C.DRAW_PLACEMENT + 1, first_entity=int(ids[0]))
        pos = self._wall_points(seg, u, v)
        be = self.backend
        pop.append(ids=be.asarray(ids), x=be.asarray(pos[:, 0]), y=be.asarray(pos[:, 1]), z=be.asarray(pos[:, 2]),
                   weight=be.asarray(np.full(n, w_t)), seg=be.asarray(seg), payload=be.asarray(np.full(n, payload)),
                   tau=be.asarray(np.full(n, self.pool_tau)), released=be.asarray(np.full(n, released_now)),
                   state=be.asarray(np.full(n, C.TISSUE, np.uint8)))
        return n

    def _release(self, pop, dt: float) -> None:
        """Release from every live particle over the step, with the pH it sees (PHYSICS.md §7)."""
        from ..kernels import release as rk

        xp = self.backend.xp
        st = pop.view("state")
        x, y, z = pop.view("x"), pop.view("y"), pop.view("z")
        flat = self._voxel_flat(x, y, z)
        ph_local = self.ph_map.reshape(-1)[flat] if self.ph_map is not None else None
        rel = rk.release_step(self.backend.name, pop.view("tau"), pop.view("released"), pop.view("payload"),
                              pop.view("weight"), st, ph_local, dt_s=dt, params=self.release_params)
        sums = rk.released_by_compartment(rel, st)
        for code, name in ((C.VESSEL, "released_in_blood"), (C.TISSUE, "released_free"), (C.BOUND, "released_bound"),
                           (C.INTERNALISED, "released_internalised"), (C.LODGED, "released_lodged")):
            self.drug[name] += float(sums[code])
        # drug released outside the blood goes into the voxel the carrier is in
        tissue = (st == C.TISSUE) | (st == C.BOUND) | (st == C.INTERNALISED)
        nvox = self.release_deposit.shape[0]
        dep = xp.bincount(flat[tissue], weights=rel[tissue], minlength=nvox)
        lodged = st == C.LODGED
        if bool(xp.any(lodged)):
            lx, ly, lz = self._lodged_positions(pop, lodged)
            dep = dep + xp.bincount(self._voxel_flat(lx, ly, lz), weights=rel[lodged], minlength=nvox)
        self.release_deposit += dep
        self.released_field += dep

    def take_release_deposit(self):
        """Drug (mol) released into each voxel since the last call, flat (nz·ny·nx,); the account is reset."""
        dep = self.release_deposit
        self.release_deposit = self.backend.xp.zeros_like(dep)
        return dep

    def drug_in_carriers(self) -> float:
        """Drug (mol) still in the box's carriers: live particles and the wall accounts."""
        xp = self.backend.xp
        total = float(sum(self.wall_drug))
        for pop in self.pops:
            live = pop.view("state") != C.INACTIVE
            total += float(xp.sum((pop.view("weight") * pop.view("payload") * (1.0 - pop.view("released")))[live]))
        return total

    def body_drug_ledger(self) -> dict:
        """The drug given inside the body's carriers and where it is (mol), for the whole-body ledger
        (:mod:`nanosim.drug.ledger`): ``given_in_carriers`` = the holdings + ``released`` (into the
        systemic drug)."""
        d, p = self.carrier.drug_per_carrier_mol, self.release_params
        released = math.fsum(self.drug[k] for k in ("body_released_in_blood", "body_released_in_liver",
                                                     "body_released_in_liver_macrophages"))
        if self.route.kind == "embolisation":  # every sphere lodges in the liver on its first pass (burst there)
            n = self.liver_spheres
            held = self.liver_law_mol if self.first_order else n * d * (1.0 - self._liver_spheres_fraction())
            return {"given_in_carriers": n * d, "in_liver_spheres": held, "released": released}
        pay, n = self.payload, self.systemic.ledger()["injected"]
        return {"given_in_carriers": n * d, "in_circulating_carriers": pay.central + pay.peripheral,
                "in_liver_macrophages": pay.macrophages, "with_cleared_carriers": pay.cleared,
                "burst_share_in_carriers": 0.0 if self.burst_at_injection else n * d * p.burst_fraction,
                "released": released}

    def drug_balance_error(self) -> float:
        """(drug entered in carriers − in carriers − released − left) / entered: round-off."""
        d = self.drug
        released = sum(v for k, v in d.items() if k.startswith("released_"))  # the box's only
        entered = d["entered_in_carriers"]
        return (entered - self.drug_in_carriers() - released - d["left_in_carriers"]) / max(entered, 1e-300)

    def _wall_points(self, seg, u, v) -> np.ndarray:
        """Points on the outer surface of segments ``seg``: fraction u along, azimuth 2πv."""
        net = self.network
        a = net.node_pos_m[net.seg_nodes[seg, 0]]
        b = net.node_pos_m[net.seg_nodes[seg, 1]]
        axis = b - a
        length = np.linalg.norm(axis, axis=1, keepdims=True)
        t = axis / np.where(length > 0, length, 1.0)
        # two unit vectors normal to the axis
        ref = np.where(np.abs(t[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
        n1 = np.cross(t, ref)
        n1 /= np.linalg.norm(n1, axis=1, keepdims=True)
        n2 = np.cross(t, n1)
        phi = 2.0 * np.pi * v
        r = net.seg_radius_m[seg][:, None] * (1.0 + 1e-6)
        pts = a + u[:, None] * axis + r * (np.cos(phi)[:, None] * n1 + np.sin(phi)[:, None] * n2)
        g = self.grid
        lo = np.asarray(g.origin_m)
        hi = lo + np.asarray(g.shape_xyz) * g.voxel_size_m
        return np.clip(pts, lo, np.nextafter(hi, lo))

    # -- bookkeeping ---------------------------------------------------------------------------
    def compartment_weights(self) -> dict:
        """Carriers (counts) in each live compartment of the box, summed over classes."""
        xp = self.backend.xp
        out = {name: 0.0 for name in ("vessel", "tissue", "bound", "internalised", "lodged")}
        codes = {"vessel": C.VESSEL, "tissue": C.TISSUE, "bound": C.BOUND, "internalised": C.INTERNALISED,
                 "lodged": C.LODGED}
        for pop in self.pops:
            st, w = pop.view("state"), pop.view("weight")
            for name, code in codes.items():
                out[name] += float(xp.sum(w[st == code]))
        out["wall"] = float(sum(a.sum() for a in self.wall_account))
        return out

    def balance_error(self) -> float:
        """(entered − live − left) / entered: weight conservation in the box, round-off size."""
        live = sum(self.compartment_weights().values())
        left = self.ledger["exited"] + self.ledger["intravasated"] + self.ledger["cleared"]
        entered = self.ledger["entered"]
        return (entered - live - left) / max(entered, 1e-300)

    def tumour_amounts(self) -> dict:
        """Carriers in the box's tumour (viable + necrotic voxels) and normal tissue, by compartment."""
        xp = self.backend.xp
        tum = self.backend.asarray(self.tumour_mask_host.reshape(-1))
        wt = self.backend.asarray(self.tumour_weight_host.reshape(-1))
        out = {}
        for name, code in (("tissue", C.TISSUE), ("bound", C.BOUND), ("internalised", C.INTERNALISED),
                           ("lodged", C.LODGED)):
            t = n = whole = 0.0
            for pop in self.pops:
                st = pop.view("state")
                sel = st == code
                if code == C.LODGED:
                    # lodged spheres sit in their segment: locate them at the segment's start node
                    xs, ys, zs = self._lodged_positions(pop, sel)
                else:
                    xs, ys, zs = pop.view("x")[sel], pop.view("y")[sel], pop.view("z")[sel]
                w = pop.view("weight")[sel]
                if int(w.shape[0]) == 0:
                    continue
                flat = self._voxel_flat(xs, ys, zs)
                in_t = tum[flat]
                t += float(xp.sum(w[in_t]))
                n += float(xp.sum(w[~in_t]))
                whole += float(xp.sum(w * wt[flat]))
            out[f"tumour_{name}"] = t
            out[f"normal_{name}"] = n
            out[f"whole_tumour_{name}"] = whole
        return out

    def _lodged_positions(self, pop, sel):
        be = self.backend
        seg = be.to_host(pop.view("seg")[sel])
        pos = self.network.node_pos_m[self.graph.seg_up_node[seg]] if len(seg) else np.zeros((0, 3))
        return be.asarray(pos[:, 0]), be.asarray(pos[:, 1]), be.asarray(pos[:, 2])

    def penetration(self) -> dict:
        """Distance from tissue particles (free, bound, internalised) to the nearest vessel wall, m."""
        xp = self.backend.xp
        dist = self.vas.maps.distance_to_wall_m
        d_all, w_all = [], []
        for pop in self.pops:
            st = pop.view("state")
            sel = (st == C.TISSUE) | (st == C.BOUND) | (st == C.INTERNALISED)
            flat = self.backend.to_host(self._voxel_flat(pop.view("x")[sel], pop.view("y")[sel], pop.view("z")[sel]))
            d_all.append(np.asarray(dist).reshape(-1)[flat])
            w_all.append(self.backend.to_host(pop.view("weight")[sel]))
        d = np.concatenate(d_all) if d_all else np.zeros(0)
        w = np.concatenate(w_all) if w_all else np.zeros(0)
        ok = np.isfinite(d)
        d, w = d[ok], w[ok]
        out = {}
        for q in (10, 50, 90):
            out[f"penetration_p{q}_m"] = _weighted_quantile(d, w, q / 100.0)
        out["penetration_mean_m"] = float(np.sum(d * w) / np.sum(w)) if w.sum() > 0 else float("nan")
        del xp
        return out

    def metrics(self) -> dict:
        dose = self.dose_carriers
        cw = self.compartment_weights()
        ta = self.tumour_amounts()
        whole_tumour = sum(ta.pop(f"whole_tumour_{k}") for k in ("tissue", "bound", "internalised", "lodged"))
        pk = self.systemic.ledger()
        out = {
            "carrier_dose": dose,
            "carrier_tumour_pct_id": 100.0 * whole_tumour / dose,
            "carrier_blood_pct_id": 100.0 * pk["central"] / dose,
            "carrier_peripheral_pct_id": 100.0 * pk["peripheral"] / dose,
            "carrier_liver_macrophages_pct_id": 100.0 * pk["mps"] / dose,
            "carrier_cleared_pct_id": 100.0 * pk["other_cleared"] / dose,
            "carrier_plasma_per_m3": self.systemic.plasma_concentration(),
        }
        for k, v in cw.items():
            out[f"carrier_box_{k}"] = v
        for k, v in ta.items():
            out[f"carrier_box_{k}"] = v
        for k, v in self.ledger.items():
            out[f"carrier_box_{k}"] = v
        entered = self.ledger["entered"]
        out["carrier_fraction_extravasated"] = self.ledger["extravasated"] / entered if entered else 0.0
        out["carrier_fraction_lodged"] = cw["lodged"] / entered if entered else 0.0
        out["carrier_balance_rel_error"] = self.balance_error()
        out["carrier_systemic_balance_rel_error"] = float(self.systemic.ledger_error())
        out.update({f"carrier_{k}": v for k, v in self.penetration().items()})
        out["carrier_particles"] = float(sum(p.n for p in self.pops))
        out["carrier_occluded_segments"] = float(self.occluded.sum())
        if self.release_params is not None:
            for k, v in self.drug.items():
                out[f"carrier_drug_{k}_mol"] = v
            out["carrier_drug_in_carriers_mol"] = self.drug_in_carriers()
            out["carrier_drug_balance_rel_error"] = self.drug_balance_error()
            out["carrier_pool_released_fraction"] = self.pool_released_fraction()
            if self.payload is not None:  # the body's carriers (first-order release: exact)
                pay = self.payload
                out["carrier_drug_body_in_circulating_carriers_mol"] = pay.central + pay.peripheral
                out["carrier_drug_body_in_liver_macrophages_mol"] = pay.macrophages
                out["carrier_drug_body_with_cleared_carriers_mol"] = pay.cleared
                out["carrier_drug_body_balance_rel_error"] = pay.ledger_error()
            elif self.first_order:
                out["carrier_drug_body_in_liver_spheres_mol"] = self.liver_law_mol
        out["carrier_flow_solves"] = float(self.flow_solves)
        return out

    def fields(self) -> dict:
        """Carriers per m³ of tissue by compartment (cell data), host arrays."""
        xp = self.backend.xp
        nvox = int(np.prod(self.grid.shape_zyx))
        vol = self.grid.voxel_size_m**3
        out = {}
        for name, code in (("carrier_free", C.TISSUE), ("carrier_bound", C.BOUND),
                           ("carrier_internalised", C.INTERNALISED), ("carrier_vessel", C.VESSEL),
                           ("carrier_lodged", C.LODGED)):
            acc = xp.zeros(nvox, np.float64)
            for pop in self.pops:
                sel = pop.view("state") == code
                if code in (C.VESSEL, C.LODGED):
                    xs, ys, zs = self._packet_positions(pop, sel)
                else:
                    xs, ys, zs = pop.view("x")[sel], pop.view("y")[sel], pop.view("z")[sel]
                if int(xs.shape[0]):
                    acc += xp.bincount(self._voxel_flat(xs, ys, zs), weights=pop.view("weight")[sel], minlength=nvox)
            out[name] = self.backend.to_host(acc / vol).reshape(self.grid.shape_zyx)
        if self.release_params is not None:
            out["released_drug"] = self.backend.to_host(self.released_field / vol).reshape(self.grid.shape_zyx)
        return out

    def _packet_positions(self, pop, sel):
        be = self.backend
        seg = be.to_host(pop.view("seg")[sel])
        s = be.to_host(pop.view("s")[sel])
        if len(seg) == 0:
            z = be.asarray(np.zeros(0))
            return z, z, z
        g = self.graph
        a = self.network.node_pos_m[g.seg_up_node[seg]]
        b = self.network.node_pos_m[g.seg_down_node[seg]]
        f = np.clip(s / self.network.seg_length_m[seg], 0.0, 1.0)[:, None]
        p = a + f * (b - a)
        return be.asarray(p[:, 0]), be.asarray(p[:, 1]), be.asarray(p[:, 2])

    def snapshot(self, max_particles: int) -> dict:
        """Up to ``max_particles`` live particles (every k-th by slot), host arrays."""
        out = {k: [] for k in ("id", "size_class", "state", "weight", "x_m", "y_m", "z_m", "segment")}
        live_total = sum(int(self.backend.xp.count_nonzero(p.view("state") != C.INACTIVE)) for p in self.pops)
        stride = max(1, math.ceil(live_total / max(max_particles, 1)))
        for ci, pop in enumerate(self.pops):
            st = self.backend.to_host(pop.view("state"))
            idx = np.nonzero(st != C.INACTIVE)[0][::stride]
            sel = self.backend.asarray(idx)
            xs, ys, zs = (self.backend.to_host(pop.view(a)[sel]) for a in ("x", "y", "z"))
            vessel = np.isin(st[idx], (C.VESSEL, C.LODGED))
            if vessel.any():
                vs = self.backend.asarray(idx[vessel])
                mask = self.backend.xp.zeros(pop.n, bool)
                mask[vs] = True
                px, py, pz = (self.backend.to_host(a) for a in self._packet_positions(pop, mask))
                xs[vessel], ys[vessel], zs[vessel] = px, py, pz
            out["id"].append(self.backend.to_host(pop.view("ids")[sel]))
            out["size_class"].append(np.full(len(idx), ci, np.uint8))
            out["state"].append(st[idx])
            out["weight"].append(self.backend.to_host(pop.view("weight")[sel]))
            out["x_m"].append(xs)
            out["y_m"].append(ys)
            out["z_m"].append(zs)
            out["segment"].append(self.backend.to_host(pop.view("seg")[sel]))
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}

    # -- checkpoint ----------------------------------------------------------------------------
    def state_arrays(self) -> dict:
        out = {}
        for ci, pop in enumerate(self.pops):
            out.update(pop.host_arrays(f"carrier{ci}_"))
            out[f"carrier{ci}_wall_account"] = self.wall_account[ci].copy()
        out["carrier_occluded"] = self.occluded.astype(np.uint8)
        out["carrier_release_deposit"] = self.backend.to_host(self.release_deposit)
        out["carrier_released_field"] = self.backend.to_host(self.released_field)
        out["carrier_sphere_pending"] = self.sphere_pending.copy()
        return out

    def state_attrs(self) -> dict:
        return {"carrier_time_s": self.time_s, "carrier_step_index": self.step_index, "carrier_next_id": self.next_id,
                "carrier_ledger": dict(self.ledger), "carrier_infused": self.infused,
                "carrier_systemic": self.systemic.state(), "carrier_flow_solves": self.flow_solves,
                "carrier_pool_tau": self.pool_tau, "carrier_liver_spheres": self.liver_spheres,
                "carrier_liver_tau": self.liver_tau, "carrier_wall_drug": list(self.wall_drug),
                "carrier_liver_law_mol": self.liver_law_mol,
                "carrier_payload": None if self.payload is None else self.payload.state(),
                "carrier_drug": dict(self.drug)}

    def load_state(self, arrays: dict, attrs: dict) -> None:
        occluded = np.asarray(arrays["carrier_occluded"]).astype(bool)
        if occluded.any():  # the flow of the occluded network, recomputed (deterministic), before
            self._apply_occlusion(occluded)  # the packets are loaded: their positions refer to it
        self.flow_solves = int(attrs["carrier_flow_solves"])
        for ci, pop in enumerate(self.pops):
            pop.load(arrays, f"carrier{ci}_")
            self.wall_account[ci] = np.asarray(arrays[f"carrier{ci}_wall_account"], float).copy()
        self.time_s = float(attrs["carrier_time_s"])
        self.step_index = int(attrs["carrier_step_index"])
        self.next_id = int(attrs["carrier_next_id"])
        self.ledger = {k: float(v) for k, v in dict(attrs["carrier_ledger"]).items()}
        self.infused = float(attrs["carrier_infused"])
        self.systemic.load_state(attrs["carrier_systemic"])
        self.sphere_pending = np.asarray(arrays["carrier_sphere_pending"], float).copy()
        self.release_deposit = self.backend.asarray(np.asarray(arrays["carrier_release_deposit"], float))
        self.released_field = self.backend.asarray(np.asarray(arrays["carrier_released_field"], float))
        self.pool_tau = float(attrs["carrier_pool_tau"])
        self.liver_spheres = float(attrs["carrier_liver_spheres"])
        self.liver_tau = float(attrs["carrier_liver_tau"])
        self.liver_law_mol = float(attrs["carrier_liver_law_mol"])
        if self.payload is not None:
            self.payload.load_state(attrs["carrier_payload"])
        self.wall_drug = [float(v) for v in attrs["carrier_wall_drug"]]
        self.drug = {k: float(v) for k, v in dict(attrs["carrier_drug"]).items()}

    # -- time step -----------------------------------------------------------------------------
    def dt_limit(self) -> float:
        """Largest particle step: rms Brownian step ≤ one voxel (√(6 D dt) ≤ h) and k·dt ≤ 0.1."""
        h = self.grid.voxel_size_m
        d_max = max(float(np.max(sc.region_diffusivity_m2_per_s)) for sc in self.classes)
        lim = h * h / (6.0 * d_max) if d_max > 0 else math.inf
        k_tissue = float(self.rates.sum(axis=1).max())
        for sc, kin in zip(self.classes, self.intravasation):
            if kin is not None:
                k_tissue = max(k_tissue, float(self.backend.xp.max(kin)))
        if k_tissue > 0:
            lim = min(lim, 0.1 / k_tissue)
        return lim

    def __repr__(self) -> str:
        sc = self.classes[0]
        return (f"CarrierModel {self.carrier.name}: {len(self.classes)} size class(es), r = {sc.radius_m * 1e9:.4g} nm, "
                f"D₀ water {sc.d0_water_m2_per_s:.3g} m²/s; dose {self.dose_carriers:.4g} carriers; "
                f"{sum(p.n for p in self.pops)} particle slots at t = {self.time_s:g} s")


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    if values.size == 0 or weights.sum() <= 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cw = np.cumsum(w)
    return float(v[min(np.searchsorted(cw, q * cw[-1]), len(v) - 1)])
