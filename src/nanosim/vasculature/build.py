"""From a scenario's ``[network]``, ``[blood_flow]`` and ``[interstitial]`` tables to solved fields.

:func:`build_vasculature` makes (or reads) the vessel network, solves blood flow in it, voxelises
it on the grid and solves the steady interstitial fluid pressure and velocity. The result, a
:class:`Vasculature`, is what the transport models take: wall area per volume for exchange with
plasma, the nearest segment, and the interstitial velocity for convection. It is built once, in
``build()``; nothing later reads the scenario again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..geometry import Grid
from .network import VesselNetwork, WallType
from .voxelise import VesselMaps

REGION_ORDER = ("normal", "tumour", "necrotic")


@dataclass
class Vasculature:
    """The vessel network, its blood flow, its voxel maps and the interstitial fluid.

    Attributes
    ----------
    network : VesselNetwork or None
        None for uniform perfusion and vessel masks (no explicit segments).
    flow : FlowSolution or None
        Blood flow in the network (pressure per node, flow and velocity per segment).
    maps : VesselMaps
        Per-voxel vessel volume fraction, wall area per volume (1/m), wall type, nearest segment,
        distance to the nearest wall (m).
    interstitial : InterstitialSolution or None
        Interstitial pressure (Pa) and Darcy velocity (m/s), when ``interstitial.solve``.
    timings_s : dict
        Wall time of each stage, s.
    """

    network: VesselNetwork | None
    flow: object | None
    maps: VesselMaps
    interstitial: object | None = None
    timings_s: dict = field(default_factory=dict)

    def vascular_pressure_map_pa(self) -> np.ndarray | None:
        """Blood pressure of the nearest segment (mean of its two nodes) per voxel, Pa; NaN where none."""
        if self.flow is None or self.network is None:
            return None
        p = self.flow.node_pressure_pa
        seg_p = 0.5 * (p[self.network.seg_nodes[:, 0]] + p[self.network.seg_nodes[:, 1]])
        near = self.maps.nearest_segment
        out = np.full(near.shape, np.nan)
        ok = near >= 0
        out[ok] = seg_p[near[ok]]
        return out

    def segment_data(self) -> dict:
        """Per-segment arrays for the results file (flow, velocity, viscosity, haematocrit, shear)."""
        if self.flow is None:
            return {}
        f = self.flow
        return {"flow_m3_per_s": f.seg_flow_m3_per_s, "velocity_m_per_s": f.seg_velocity_m_per_s,
                "viscosity_pa_s": f.seg_viscosity_pa_s, "haematocrit": f.seg_haematocrit,
                "wall_shear_stress_pa": f.seg_wall_shear_stress_pa}

    def node_data(self) -> dict:
        return {} if self.flow is None else {"pressure_pa": self.flow.node_pressure_pa}

    def summary(self) -> dict:
        """Numbers worth reporting after the build (JSON-friendly)."""
        out = {"timings_s": dict(self.timings_s)}
        if self.network is not None:
            out["network"] = self.network.summary()
        if self.flow is not None:
            f = self.flow
            inflow = f.boundary_flow_m3_per_s
            out["blood_flow"] = {"inflow_m3_per_s": float(inflow[inflow > 0].sum()),
                                 "conservation_error": float(f.conservation_error),
                                 "pressure_min_pa": float(f.node_pressure_pa.min()),
                                 "pressure_max_pa": float(f.node_pressure_pa.max())}
        m = self.maps
        out["maps"] = {"vessel_volume_m3": float(m.vessel_volume_m3()), "wall_area_m2": float(m.wall_area_m2())}
        if self.interstitial is not None:
            s = self.interstitial
            out["interstitial"] = {
                "pressure_min_pa": float(s.pressure_pa.min()), "pressure_max_pa": float(s.pressure_pa.max()),
                "transvascular_flux_m3_per_s": float(s.transvascular_flux_m3_per_s),
                "lymphatic_flux_m3_per_s": float(s.lymphatic_flux_m3_per_s),
                "boundary_flux_m3_per_s": float(s.boundary_flux_m3_per_s),
                "balance_error": float(s.balance_error), "iterations": int(s.iterations)}
        return out


def _scenario_dir(scenario) -> Path:
    return scenario.source_path.parent if scenario.source_path is not None else Path.cwd()


def _resolve(scenario, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else _scenario_dir(scenario) / p


def make_network(scenario) -> VesselNetwork | None:
    """The vessel network a scenario asks for (None for uniform perfusion and masks)."""
    from . import canonical
    from .io import read_network

    spec = scenario.network
    if spec is None or spec.kind in ("uniform_perfusion", "mask"):
        return None
    if spec.kind == "straight":
        a, b = np.asarray(spec.start_m, float), np.asarray(spec.end_m, float)
        return canonical.straight_vessel(float(np.linalg.norm(b - a)), spec.radius_m, start_m=a, direction=b - a,
                                         p_in_pa=spec.inlet_pressure_pa, p_out_pa=spec.outlet_pressure_pa,
                                         wall=spec.wall, n_segments=spec.segments,
                                         haematocrit=scenario.blood_flow.haematocrit)
    if spec.kind == "bifurcation":
        return canonical.bifurcation(spec.parent_radius_m, tuple(spec.child_radii_m), tuple(spec.lengths_m),
                                     spec.angle_deg, p_in_pa=spec.inlet_pressure_pa, p_out_pa=spec.outlet_pressure_pa,
                                     start_m=spec.inlet_m, direction=spec.direction, wall=spec.wall,
                                     haematocrit=scenario.blood_flow.haematocrit)
    if spec.kind == "file":
        return read_network(_resolve(scenario, spec.path), length_unit=spec.length_unit,
                            radius_array=spec.radius_array, haematocrit=scenario.blood_flow.haematocrit)
    if spec.kind == "liver_tumour":
        from .generate import generate_liver_tumour

        return generate_liver_tumour(liver_tumour_params(scenario), seed=scenario.seed)
    raise ValueError(f"unknown network kind {spec.kind!r}")  # the schema makes this unreachable


#: Unit of a generator parameter, by the ending of its name (the rest are plain numbers).
_SUFFIX_DIMENSIONS = (("_per_m", "inverse length"), ("_pa_s", "viscosity"), ("_range_pa", "pressure"),
                      ("_pa", "pressure"), ("_range_m", "length"), ("_m", "length"))


def _convert_parameter(name: str, value):
    from ..units import parse_quantity

    dim = next((d for suffix, d in _SUFFIX_DIMENSIONS if name.endswith(suffix)), None)
    if dim is None:
        return tuple(value) if isinstance(value, list) else value
    if isinstance(value, (list, tuple)):
        return tuple(parse_quantity(v, dim) if isinstance(v, str) else float(v) for v in value)
    return parse_quantity(value, dim) if isinstance(value, str) else value


def liver_tumour_params(scenario):
    """:class:`LiverTumourParams` from the grid, the tumour, the blood and ``network.parameters``.

    The box and the tumour (centre, semi-axes, necrotic fraction) come from ``grid`` and
    ``tissue.tumour``; ``network.parameters`` sets any other field by name, with units given as
    strings where the name says them (``_m``, ``_pa``, ``_per_m``, ``_pa_s``). A tumour centred
    outside the box (or enclosing it) is passed as it is: the generator then treats the box as a
    sample of the larger tumour (``generate`` module docstring, "Whole and sampled tumours").

    Raises
    ------
    ValueError
        Naming the parameter: unknown name (with the closest known one), a tumour that is not a
        sphere or ellipsoid, or a value the generator refuses.
    """
    import dataclasses
    import difflib

    from .generate import LiverTumourParams

    g = scenario.grid
    tumour = scenario.tissue.tumour
    if tumour.kind == "sphere":
        semi = (tumour.radius_m,) * 3
        necrotic = tumour.necrotic_radius_m / tumour.radius_m
    elif tumour.kind == "ellipsoid":
        semi = tuple(tumour.semi_axes_m)
        necrotic = tumour.necrotic_fraction
    else:
        raise ValueError('tissue.tumour: a generated liver-tumour network needs a tumour; give tissue.tumour '
                         'kind = "sphere" or "ellipsoid"')
    kw = dict(box_size_m=tuple(float(e) for e in g.extent_m), box_origin_m=tuple(float(o) for o in g.origin_m),
              tumour_center_m=tuple(float(c) for c in tumour.center_m), tumour_semi_axes_m=semi,
              necrotic_fraction=float(necrotic), haematocrit=float(scenario.blood_flow.haematocrit))
    known = {f.name for f in dataclasses.fields(LiverTumourParams)}
    fixed = set(kw) - {"haematocrit"}
    for name, value in scenario.network.parameters.items():
        if name in fixed:
            raise ValueError(f"network.parameters.{name}: set by the scenario's grid and tissue.tumour; "
                             "change those instead")
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"network.parameters.{name}: not a generator parameter{hint}")
        try:
            kw[name] = _convert_parameter(name, value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"network.parameters.{name}: {exc}") from None
    try:
        return LiverTumourParams(**kw)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"network.parameters: {exc}") from None


def _uniform_maps(scenario, grid: Grid, region: np.ndarray) -> VesselMaps:
    spec = scenario.network
    sv = np.array([spec.normal_surface_per_volume_per_m, spec.tumour_surface_per_volume_per_m,
                   spec.necrotic_surface_per_volume_per_m])[region]
    shape = grid.shape_zyx
    wall = np.where(sv > 0, int(WallType[spec.wall.upper()]), 255).astype(np.uint8)
    return VesselMaps(grid=grid, volume_fraction=np.zeros(shape), surface_per_volume_per_m=sv, wall_type=wall,
                      nearest_segment=np.full(shape, -1, np.int64), distance_to_wall_m=np.full(shape, np.inf),
                      radius_m=np.zeros(shape), meta={"method": "uniform perfusion"})


def fluid_properties(scenario) -> tuple:
    """Per-region :class:`RegionFluidProperties` (normal, tumour, necrotic) from the scenario."""
    from ..flow.interstitial import RegionFluidProperties

    spec = scenario.interstitial
    regs = [spec.normal, spec.tumour, spec.necrotic or spec.tumour]
    return tuple(RegionFluidProperties(
        hydraulic_conductivity_m2_per_pa_s=r.hydraulic_conductivity_m2_per_pa_s,
        lp_m_per_pa_s=r.wall_hydraulic_permeability_m_per_pa_s, sigma_osmotic=r.reflection_coefficient,
        pi_interstitial_pa=r.interstitial_oncotic_pressure_pa,
        lymphatic_coefficient_per_pa_s=r.lymphatic_coefficient_per_pa_s, name=name)
        for r, name in zip(regs, REGION_ORDER))


def build_vasculature(scenario, grid: Grid, region: np.ndarray, backend, log=None) -> Vasculature | None:
    """Network, blood flow, voxel maps and interstitial fluid for a scenario (None without ``[network]``).

    Parameters
    ----------
    scenario : Scenario
    grid : Grid
    region : uint8 array (nz, ny, nx)
        Region codes (0 normal, 1 tumour, 2 necrotic).
    backend : Backend
        Where the voxelisation and the pressure solve run (results come back as host arrays).
    log : callable, optional
        ``log(message)`` for progress notes.
    """
    say = log or (lambda msg: None)
    spec = scenario.network
    if spec is None:
        return None
    timings = {}
    t0 = time.perf_counter()
    network = make_network(scenario)
    timings["network_s"] = time.perf_counter() - t0
    flow = None
    if network is not None:
        say(f"network: {network.n_nodes} nodes, {network.n_segments} segments")
        from ..flow.network_flow import solve_flow

        bf = scenario.blood_flow
        t0 = time.perf_counter()
        flow = solve_flow(network, viscosity_law=bf.viscosity_law, plasma_viscosity_pa_s=bf.plasma_viscosity_pa_s,
                          haematocrit=bf.haematocrit, phase_separation=bf.phase_separation,
                          backend="cupy" if backend.is_gpu else "numpy")
        timings["blood_flow_s"] = time.perf_counter() - t0
        from .voxelise import voxelise

        t0 = time.perf_counter()
        vx = scenario.voxelisation
        maps = voxelise(network, grid, backend=backend, samples_per_axis=vx.samples_per_axis,
                        search_radius_m=vx.search_radius_m)
        timings["voxelise_s"] = time.perf_counter() - t0
    elif spec.kind == "mask":
        from .voxelise import load_mask, maps_from_mask

        t0 = time.perf_counter()
        mask = load_mask(_resolve(scenario, spec.path), dataset=spec.dataset)
        if mask.shape != tuple(grid.shape_zyx):
            nz, ny, nx = mask.shape
            raise ValueError(f"network.path: the mask {spec.path} is {nx}×{ny}×{nz} voxels (x×y×z) but the grid is "
                             f"{'×'.join(str(n) for n in grid.shape_xyz)}; give a mask on the scenario's grid")
        maps = maps_from_mask(mask, grid, wall_type=WallType[spec.wall.upper()])
        timings["voxelise_s"] = time.perf_counter() - t0
    else:
        maps = _uniform_maps(scenario, grid, region)
    vas = Vasculature(network=network, flow=flow, maps=maps, timings_s=timings)

    fs = scenario.interstitial
    if fs.solve:
        from ..flow.interstitial import solve_interstitial_pressure

        if fs.vascular_pressure_pa == "network":
            pv = vas.vascular_pressure_map_pa()
            # voxels tied to no segment exchange no fluid (their S/V is 0); any finite value does
            pv = np.where(np.isfinite(pv), pv, 0.0)
        else:
            pv = float(fs.vascular_pressure_pa)
        t0 = time.perf_counter()
        vas.interstitial = solve_interstitial_pressure(
            grid, region, maps.surface_per_volume_per_m, fluid_properties(scenario), p_vascular_pa=pv,
            pi_vascular_pa=float(fs.vascular_oncotic_pressure_pa),
            boundary="dirichlet" if fs.box_boundary == "fixed" else "no_flux",
            dirichlet_value_pa=float(fs.boundary_pressure_pa), backend=backend)
        timings["interstitial_s"] = time.perf_counter() - t0
        s = vas.interstitial
        say(f"interstitial pressure: {s.pressure_pa.min():.4g}–{s.pressure_pa.max():.4g} Pa, "
            f"{s.iterations} CG iterations, fluid balance {s.balance_error:.1e}")
    return vas
