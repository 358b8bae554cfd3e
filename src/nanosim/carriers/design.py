r"""What a carrier design implies, in numbers the kernels use (PHYSICS.md §5).

From the scenario's ``[carrier]`` and ``[extravasation]`` tables and the vessel network this
module derives, for each size class of the design:

- the free diffusivity in interstitial water and in plasma (Stokes–Einstein),
  ``D₀ = k_B T / (6 π η r_h)``, and the effective diffusivity per tissue region
  ``D_eff = D₀ · f_ECM``;
- per network segment: the pore ratio ``λ = r_h / r_p``, the hindrance factors ``H(λ)`` and
  ``W(λ)`` (Dechadilok & Deen 2006), the wall permeability ``P = γ H D₀,plasma / L``, the
  reflection coefficient ``σ_f = 1 − W``, the Péclet number ``Pe = s J_v (1 − σ_f) / P`` with the
  transmural fluid flux ``J_v`` (Starling, from the interstitial solution) and the share ``s`` of
  it that passes through the carriers' pores (a two-pore wall whose large pores pass plasma
  proteins freely while the rest reflects them with ``σ_S``: ``σ_T = (1 − s) σ_S``, so
  ``s = (σ_S − σ_T)/σ_S``, at most ``1 − σ_T``; tumour walls take the normal wall's
  ``σ_S = 0.91``; ``[extravasation.<wall>] filtration_share`` overrides it). A wall type with a
  measured in-vivo (effective) permeability has its large pores calibrated to it first: γ and
  ``s`` are scaled together so that its walls' area-mean ``P B(−Pe)`` for the reference particle
  equals the measurement (:func:`calibrate_wall_pores`; tumour walls by default). From the
  Patlak / Kedem–Katchalsky flux through those pores

  .. math::

      J_s = s J_v (1-σ_f) C_v + P (C_v - C_i) \frac{Pe}{e^{Pe}-1}
          = P\,\frac{Pe\,e^{Pe}}{e^{Pe}-1}\,C_v \;-\; P\,\frac{Pe}{e^{Pe}-1}\,C_i

  the two first-order rates the particle method needs: the rate at which a carrier in the
  segment's plasma leaves through the wall, ``k_out = (S/V_plasma) P B(−Pe)`` with
  ``S/V_plasma = 2 / (r (1 − H_D))`` (carriers ride in the plasma, a fraction ``1 − H_D`` of the
  lumen), and the rate per tissue volume at which a carrier in the interstitium next to the wall
  re-enters the blood, ``k_in = (S/V)_tissue P B(Pe)``; ``B(x) = x / (eˣ − 1)`` (Bernoulli).
  With ``Pe → 0`` both reduce to ``P S ΔC``.

A size distribution (log-normal, geometric SD ``radius_gsd``) is represented by ``size_classes``
equal-number classes, each at the median radius of its quantile range; each class is a separate
particle population.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from ..kernels import carriers as ck
from ..vasculature.network import WallType

#: Avogadro's number, 1/mol (exact, SI 2019): converts carrier amounts in mol to counts.
AVOGADRO_PER_MOL = 6.02214076e23


def size_classes(median_radius_m: float, gsd: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Radii (m) and number fractions of ``n`` equal-number classes of a log-normal distribution.

    Class ``i`` covers the quantiles ``[i/n, (i+1)/n]`` and sits at the median of that range,
    the quantile ``(i + ½)/n``. With ``gsd = 1`` or ``n = 1`` it is the median radius alone.
    """
    if n == 1 or gsd == 1.0:
        return np.array([median_radius_m]), np.array([1.0])
    z = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])
    return median_radius_m * np.exp(z * math.log(gsd)), np.full(n, 1.0 / n)


def bernoulli(x):
    """``B(x) = x / (eˣ − 1)``, with ``B(0) = 1`` and no cancellation near 0 (array in, array out)."""
    x = np.asarray(x, float)
    out = np.ones_like(x)
    small = np.abs(x) < 1e-8
    xs = x[~small]
    out[~small] = xs / np.expm1(xs)
    out[small] = 1.0 - 0.5 * x[small]
    return out


@dataclass
class SizeClass:
    """One size class of a design: its radius, share of the carriers, and transport constants."""

    radius_m: float
    number_fraction: float
    d0_water_m2_per_s: float
    d0_plasma_m2_per_s: float
    region_diffusivity_m2_per_s: np.ndarray  # (3,) normal, tumour, necrotic
    seg_lambda: np.ndarray = field(repr=False, default=None)
    seg_permeability_m_per_s: np.ndarray = field(repr=False, default=None)
    seg_sigma: np.ndarray = field(repr=False, default=None)
    seg_peclet: np.ndarray = field(repr=False, default=None)
    seg_filtration_share: np.ndarray = field(repr=False, default=None)
    seg_out_rate_per_s: np.ndarray = field(repr=False, default=None)
    seg_back_coefficient_m_per_s: np.ndarray = field(repr=False, default=None)


def region_rates(carrier) -> np.ndarray:
    """Rates table (3 regions × 5) for the transition kernel, 1/s.

    Columns: bind, unbind, internalise free, internalise bound, lymphatic drain.
    """
    regs = [carrier.normal, carrier.tumour, carrier.necrotic or carrier.tumour]
    return np.array([[r.binding_rate_per_s, r.unbinding_rate_per_s, r.internalisation_rate_per_s,
                      r.bound_internalisation_rate_per_s, r.lymphatic_clearance_rate_per_s] for r in regs], float)


#: Wall types that may have pores, with their tables in ``[extravasation]``.
POROUS_WALLS = ((WallType.TUMOUR, "tumour"), (WallType.SINUSOID, "sinusoid"), (WallType.CAPILLARY, "capillary"))


def wall_pores_per_segment(network, extravasation) -> tuple[np.ndarray, ...]:
    """(γ, L, r_p, share of J_v, σ_S) per segment from the ``[extravasation]`` table; γ = 0 for
    walls without pores; the share is NaN where the table leaves it to the default
    (:func:`filtration_share`), σ_S NaN where the table gives none."""
    m = network.n_segments
    gamma = np.zeros(m)
    thick = np.ones(m)
    share = np.full(m, np.nan)
    small_sigma = np.full(m, np.nan)
    pore = np.asarray(network.seg_pore_radius_m, float).copy()
    for wall, name in POROUS_WALLS:
        spec = getattr(extravasation, name)
        if spec is None:
            continue
        sel = network.seg_wall == wall
        gamma[sel] = spec.pore_area_fraction
        thick[sel] = spec.wall_thickness_m
        if spec.pore_radius_m is not None:
            pore[sel] = spec.pore_radius_m
        if spec.filtration_share is not None:
            share[sel] = spec.filtration_share
        if spec.small_pore_protein_reflection is not None:
            small_sigma[sel] = spec.small_pore_protein_reflection
    gamma[pore <= 0] = 0.0  # a wall without pores is closed to carriers
    return gamma, thick, pore, share, small_sigma


def filtration_share(protein_sigma, small_pore_sigma) -> np.ndarray:
    """Default share of J_v through the carriers' pores from the wall's protein reflection σ_T.

    A two-pore wall: the carriers' (large) pores pass plasma proteins freely, the rest of the
    wall reflects them with σ_S, so σ_T = (1 − s) σ_S and ``s = (σ_S − σ_T) / σ_S`` (0 where the
    wall reflects as much as its small pores); where σ_S is NaN (not given) it is taken as 1,
    ``s = 1 − σ_T``, the largest share that the wall's σ_T allows.
    """
    sig_t = np.asarray(protein_sigma, float)
    sig_s = np.where(np.isnan(small_pore_sigma), 1.0, small_pore_sigma)
    return np.clip((sig_s - sig_t) / sig_s, 0.0, 1.0)


def pore_permeability(radius_m, d0_m2_per_s, gamma, thick_m, pore_m):
    """``(λ, W(λ), P)`` per segment for a particle of ``radius_m``: ``λ = r/r_p`` (∞ where a wall
    has no pores), the convective hindrance ``W`` and ``P = γ H(λ) D₀ / L`` (Dechadilok & Deen
    2006; 0 where ``λ ≥ 1``)."""
    lam = np.where(pore_m > 0, radius_m / np.where(pore_m > 0, pore_m, 1.0), np.inf)
    h = ck.dechadilok_deen_h_array(np.minimum(lam, 1.0))
    w = ck.dechadilok_deen_w_array(np.minimum(lam, 1.0))
    return lam, w, gamma * h * d0_m2_per_s / thick_m


def calibrate_wall_pores(network, extravasation, gamma, thick, pore, share, jv_m_per_s, temperature_k,
                         plasma_viscosity_pa_s) -> dict:
    """Scale the large pores of each wall type that gives a measured effective permeability (in place).

    A permeability measured in vivo is the whole carrier flux per wall area per plasma
    concentration, convection through the wall included. For a wall type whose
    ``effective_permeability_m_per_s`` is given, the number of its large pores is calibrated to
    it: ``γ`` and the filtration share ``s`` (both proportional to that number: the pores' area and
    their share of the wall's hydraulic conductance) are multiplied by one factor ``c`` so that the
    area-mean effective permeability of the box's walls of that type to a particle of radius
    ``effective_permeability_radius_m``,

        ⟨P_eff⟩ = Σ A_j P_j B(−Pe_j) / Σ A_j,   P_j = γ H(λ_j) D₀ / L,   Pe_j = s J_v,j W(λ_j) / P_j,

    equals it (``A_j = 2π r_j l_j``; B the Bernoulli function, so ``P B(−Pe)`` is the flux per
    wall area per plasma concentration of the Patlak formula with nothing outside). ``Pe`` does not
    change with ``c``, so ``⟨P_eff⟩`` is proportional to ``c`` and the factor is exact. Without
    filtration (``J_v = 0``) this sets the diffusive permeability to the measured value.

    Returns ``{wall name: {"factor", "effective_before_m_per_s", "effective_m_per_s",
    "diffusive_m_per_s", "share_median", "radius_m"}}`` for the calibrated wall types. Raises ``ValueError``
    naming the field when no pore of the type passes the reference particle, or when the scaled
    share would exceed 1.
    """
    out = {}
    jv = np.zeros(network.n_segments) if jv_m_per_s is None else np.asarray(jv_m_per_s, float)
    area = 2.0 * np.pi * np.asarray(network.seg_radius_m, float) * np.asarray(network.seg_length_m, float)
    for wall, name in POROUS_WALLS:
        spec = getattr(extravasation, name)
        if spec is None or not spec.effective_permeability_m_per_s:
            continue
        sel = np.asarray(network.seg_wall) == wall
        if not np.any(sel):
            continue
        r = float(spec.effective_permeability_radius_m)
        d0p = ck.stokes_einstein_diffusivity.py(temperature_k, plasma_viscosity_pa_s, r)
        _, w, p0 = pore_permeability(r, d0p, gamma[sel], thick[sel], pore[sel])
        open_ = p0 > 0
        pe = np.zeros(p0.shape)
        pe[open_] = share[sel][open_] * jv[sel][open_] * w[open_] / p0[open_]
        a = area[sel]
        before = float(np.sum(a[open_] * p0[open_] * bernoulli(-pe[open_])) / np.sum(a))
        field_name = f"extravasation.{name}.effective_permeability_m_per_s"
        if not before > 0.0:
            raise ValueError(
                f"{field_name}: no {name} wall in the box lets a particle of radius "
                f"{r * 1e9:.3g} nm through (pores closed or narrower than it); give wider pores "
                f"(extravasation.{name}.pore_radius_m) or set it to 0 to keep γ as given")
        factor = float(spec.effective_permeability_m_per_s) / before
        filtering = jv[sel] != 0.0  # the share plays no part on walls without filtration
        if np.any(filtering) and np.max(share[sel][filtering]) * factor > 1.0:
            raise ValueError(
                f"{field_name}: reaching {spec.effective_permeability_m_per_s:.3g} m/s would put "
                f"{np.max(share[sel][filtering]) * factor:.3g} of the walls' filtration through their large pores "
                f"(at most 1); lower it, lower extravasation.{name}.filtration_share, or set it to 0 to keep γ "
                "as given")
        gamma[sel] *= factor
        share[sel] = np.minimum(share[sel] * factor, 1.0)
        out[name] = {"factor": factor, "effective_before_m_per_s": before,
                     "effective_m_per_s": before * factor,
                     "diffusive_m_per_s": float(np.sum(a * p0) / np.sum(a)) * factor,
                     "share_median": float(np.median(share[sel])), "radius_m": r}
    return out


def segment_fluid(vas, scenario, region) -> tuple[np.ndarray, np.ndarray]:
    """Transmural fluid flux J_v (m/s) and σ_T per segment (Starling, at the midpoint's voxel).

    ``J_v = L_p (p_v − p_i − σ_T (π_v − π_i))`` with the segment's blood pressure (mean of its
    nodes), the interstitial pressure of the voxel holding its midpoint and the fluid constants of
    that voxel's region; σ_T is that region's reflection coefficient for plasma proteins. Both
    are zero when the interstitial fluid is not solved (no filtration: σ_T plays no part).
    """
    net = vas.network
    if vas.interstitial is None or vas.flow is None:
        return np.zeros(net.n_segments), np.zeros(net.n_segments)
    fl = scenario.interstitial
    regs = [fl.normal, fl.tumour, fl.necrotic or fl.tumour]
    grid = vas.interstitial.grid
    mid = 0.5 * (net.node_pos_m[net.seg_nodes[:, 0]] + net.node_pos_m[net.seg_nodes[:, 1]])
    idx = np.floor((mid - np.asarray(grid.origin_m)) / grid.voxel_size_m).astype(int)
    nx, ny, nz = grid.shape_xyz
    idx = np.clip(idx, 0, [nx - 1, ny - 1, nz - 1])
    p_i = vas.interstitial.pressure_pa[idx[:, 2], idx[:, 1], idx[:, 0]]
    region = np.asarray(region)[idx[:, 2], idx[:, 1], idx[:, 0]]
    lp = np.array([r.wall_hydraulic_permeability_m_per_pa_s for r in regs])[region]
    sig = np.array([r.reflection_coefficient for r in regs])[region]
    pi_i = np.array([r.interstitial_oncotic_pressure_pa for r in regs])[region]
    p = vas.flow.node_pressure_pa
    p_v = 0.5 * (p[net.seg_nodes[:, 0]] + p[net.seg_nodes[:, 1]])
    return lp * (p_v - p_i - sig * (fl.vascular_oncotic_pressure_pa - pi_i)), sig


#: Density of liver tissue, kg/m³ (1.05 g/cm³, ICRP Publication 89 reference value; unconfirmed
#: here): turns the body's liver mass into the volume its sinusoids line.
LIVER_DENSITY_KG_PER_M3 = 1050.0


def sinusoid_permeability_bound(network, region, voxel_volume_m3: float, pk, body) -> tuple[float, dict]:
    """Largest sinusoid wall permeability to carriers that the body's blood curve allows, m/s.

    The box's liver is a sample of the body's liver, and the body's measured carrier clearance
    already holds every way the liver takes carriers up (its macrophages, and the space of Disse
    behind the fenestrae). Carriers leaving the box's sinusoids at ``P S/V`` per unit plasma
    concentration would, over the whole liver, clear the plasma at ``P (S/V) V_liver``; that may
    not exceed the liver's share of the clearance, ``f_liver k10 V_1``:

        P ≤ f_liver k10 V_1 / ((S/V)_sinusoid V_liver),

    with (S/V) the sinusoids' wall area in the box over the box's normal-tissue volume and
    V_liver = liver mass / :data:`LIVER_DENSITY_KG_PER_M3`. Returns ``(bound, info)``; the bound is
    ``inf`` when the box has no sinusoids or no normal tissue.
    """
    sel = np.asarray(network.seg_wall) == WallType.SINUSOID
    area = float(np.sum(2.0 * np.pi * network.seg_radius_m[sel] * network.seg_length_m[sel]))
    v_normal = float(np.count_nonzero(np.asarray(region) == 0)) * voxel_volume_m3
    par = pk.parameters()
    cl_liver = par["liver_uptake_fraction"] * par["k10_per_s"] * par["volume_m3"]
    v_liver = body.liver_mass_kg / LIVER_DENSITY_KG_PER_M3
    info = {"sinusoid_surface_per_volume_per_m": area / v_normal if v_normal > 0 else 0.0,
            "liver_clearance_m3_per_s": cl_liver, "liver_volume_m3": v_liver}
    if area <= 0.0 or v_normal <= 0.0:
        return math.inf, info
    return cl_liver / (area / v_normal * v_liver), info


def build_classes(carrier, extravasation, network=None, flow=None, jv_m_per_s=None,
                  protein_sigma=None, sinusoid_bound_m_per_s: float = math.inf,
                  calibration: dict | None = None) -> list[SizeClass]:
    """The size classes of a design with their per-region diffusivities and per-segment wall rates.

    ``protein_sigma`` (σ_T per segment) sets the default share of J_v through the carriers' pores
    (:func:`filtration_share`); without it the whole J_v passes through them. Wall types with a
    measured effective permeability have their large pores calibrated to it first
    (:func:`calibrate_wall_pores`; its report goes into ``calibration`` when a dict is given).
    ``sinusoid_bound_m_per_s`` caps the permeability of sinusoid walls
    (:func:`sinusoid_permeability_bound`)."""
    ex = extravasation
    radii, fractions = size_classes(carrier.radius_m, carrier.radius_gsd, carrier.size_classes)
    regs = [carrier.normal, carrier.tumour, carrier.necrotic or carrier.tumour]
    f_ecm = np.array([r.ecm_hindrance for r in regs])
    if network is not None:
        gamma, thick, pore, share, small_sigma = wall_pores_per_segment(network, ex)
        default_share = np.ones(network.n_segments) if protein_sigma is None else \
            filtration_share(protein_sigma, small_sigma)
        share = np.where(np.isnan(share), default_share, share)
        report = calibrate_wall_pores(network, ex, gamma, thick, pore, share, jv_m_per_s, ex.temperature_k,
                                      ex.plasma_viscosity_pa_s)
        if calibration is not None:
            calibration.update(report)
    out = []
    for r, frac in zip(radii, fractions):
        d0w = ck.stokes_einstein_diffusivity.py(ex.temperature_k, ex.water_viscosity_pa_s, float(r))
        d0p = ck.stokes_einstein_diffusivity.py(ex.temperature_k, ex.plasma_viscosity_pa_s, float(r))
        sc = SizeClass(float(r), float(frac), d0w, d0p, d0w * f_ecm)
        if network is not None:
            lam, w, perm = pore_permeability(r, d0p, gamma, thick, pore)
            sinusoid = np.asarray(network.seg_wall) == WallType.SINUSOID
            perm = np.where(sinusoid, np.minimum(perm, sinusoid_bound_m_per_s), perm)
            sigma = 1.0 - w
            jv = np.zeros(network.n_segments) if jv_m_per_s is None else np.asarray(jv_m_per_s, float)
            open_ = perm > 0
            pe = np.zeros(network.n_segments)
            pe[open_] = share[open_] * jv[open_] * (1.0 - sigma[open_]) / perm[open_]
            hd = flow.seg_haematocrit if flow is not None else np.zeros(network.n_segments)
            sv_plasma = 2.0 / (network.seg_radius_m * (1.0 - hd))
            sc.seg_lambda, sc.seg_permeability_m_per_s, sc.seg_sigma, sc.seg_peclet = lam, perm, sigma, pe
            sc.seg_filtration_share = share
            sc.seg_out_rate_per_s = np.where(open_, sv_plasma * perm * bernoulli(-pe), 0.0)
            sc.seg_back_coefficient_m_per_s = np.where(open_, perm * bernoulli(pe), 0.0)
        out.append(sc)
    return out


#: Molar mass of sorafenib, kg/mol (464.8 g/mol, PHYSICS.md §8), used when the scenario has no [drug].
SORAFENIB_MOLAR_MASS_KG_PER_MOL = 0.4648


def carriers_per_dose(carrier, route, body_mass_kg: float,
                      drug_molar_mass_kg_per_mol: float = SORAFENIB_MOLAR_MASS_KG_PER_MOL) -> float:
    """Number of carriers (a count) in the dose of ``route``.

    A dose in mg of encapsulated drug per kg body mass becomes ``dose · mass / M_drug`` mol of
    drug, carried at ``drug_per_carrier_mol`` per carrier.
    """
    if route.dose_carriers is not None:
        return route.dose_carriers * AVOGADRO_PER_MOL
    drug_mol = route.dose_drug_mg_per_kg * 1e-6 * body_mass_kg / drug_molar_mass_kg_per_mol
    if carrier.drug_per_carrier_mol <= 0:
        raise ValueError("route.dose_drug_mg_per_kg: the carrier carries no drug (carrier.drug_per_carrier_mol = 0); "
                         "give the dose as route.dose_carriers")
    return drug_mol / carrier.drug_per_carrier_mol

