r"""Extracellular and compartment pH (PHYSICS.md §6).

Two ways to get the extracellular pH (pHe) field:

*Prescribed* (:func:`prescribed_ph`): a function of the tissue region and the distance ``d`` to
the nearest vessel wall. Normal liver is at 7.4; viable tumour falls from ``pH_near`` at the wall
towards ``pH_far`` away from vessels,

.. math:: \mathrm{pH}(d) = \mathrm{pH_{far}} + (\mathrm{pH_{near}} - \mathrm{pH_{far}})\,e^{-d/\lambda},

(defaults 7.2, 6.7, λ = 100 µm); a necrotic core takes ``pH_far``; lumen voxels (``d < 0``)
take the blood value 7.4. Tumour pHe 6.5–7.0 with acid regions far from vessels comes from
reviews (PHYSICS.md §6; no HCC-specific value was found); the near-wall value, the decay length
and the necrotic value are *unconfirmed* defaults of this model (gradients of a few tenths of a
pH unit over 100–200 µm from vessels were reported in window-chamber tumours, Helmlinger et al.
1997, *unconfirmed*).

*Reaction–diffusion* (:class:`ProtonField`, Gatenby & Gawlinski 1996): at steady state

.. math::

    \nabla\cdot(D_H\nabla[H^+]) + r_3\,\rho\,f\,F(P_{O_2}) - d_3([H^+] - [H^+]_b)
        - \tfrac{P_H S}{V}([H^+] - [H^+]_b) = 0,

with ``[H⁺]`` in mol/m³ (1 mol/m³ = 1 mM), buffered diffusivity ``D_H = 5×10⁻⁶ cm²/s``,
production ``r₃ = 2.2×10⁻¹⁷ M·cm³·cell⁻¹·s⁻¹`` per cell at density ``ρ`` (5×10⁷ cells/cm³ in
viable tumour, none elsewhere by default), removal by the vasculature ``d₃ = 1.1×10⁻⁴ s⁻¹``
(PHYSICS.md §6) driving towards the blood value ``[H⁺]_b`` (pH 7.4; Gatenby & Gawlinski remove
towards 0, which differs by 10^(−7.4) M, so that tissue without production sits at the blood pH),
optionally wall exchange ``P_H·S/V`` and held lumen voxels at the blood value, ``f`` the tissue
fraction. ``pH = −log₁₀([H⁺]/1 M)``. Glycolytic acid production rises under hypoxia (Pasteur
effect); the optional factor

.. math:: F(P) = 1 + (G - 1)\,\frac{P_h}{P_h + P}

(``G`` the gain at anoxia, ``P_h`` the partial pressure of half effect; default ``G = 1``, i.e.
off; the form and values are *unconfirmed*) takes the oxygen field of
:mod:`nanosim.microenv.oxygen`. The problem is linear: one conjugate-gradient solve on the
steady operator :class:`~nanosim.microenv.oxygen.SteadyReactionDiffusion`, with its ledger
(production = vascular removal + uptake by held vessels + flow through held box walls).

Note that the PHYSICS.md constants give a well-mixed tumour level ``r₃ρ/d₃ = 10⁻⁵ M``,
pH 5.0, more acidic than the measured 6.5–7.0: they are Gatenby & Gawlinski's, kept as defaults
to override.

Intracellular and endosomal pH (:func:`compartment_ph`): hepatocyte cytosol 7.30 ± 0.06; early
endosome 6.0–6.5, late endosome 5.0–6.0, lysosome 4.5–5.0 (PHYSICS.md §6, *unconfirmed*); the
named value of a range is its midpoint.

Gatenby RA, Gawlinski ET (1996) A reaction–diffusion model of cancer invasion. Cancer Res
56:5745–5753. Helmlinger G, Yuan F, Dellian M, Jain RK (1997) Interstitial pH and pO2 gradients
in solid tumors in vivo. Nat Med 3:177–182.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import NECROTIC, TUMOUR, Grid
from .oxygen import (MMHG_PA, SteadyReactionDiffusion, SteadySolveInfo, _host, _per_voxel, _region_table,
                     _resolve_backend, region_means, steady_wall_factor)

__all__ = [
    "BLOOD_PH",
    "NORMAL_EXTRACELLULAR_PH",
    "TUMOUR_NEAR_VESSEL_PH",
    "TUMOUR_FAR_PH",
    "PH_DECAY_LENGTH_M",
    "HEPATOCYTE_INTRACELLULAR_PH",
    "EARLY_ENDOSOME_PH",
    "LATE_ENDOSOME_PH",
    "LYSOSOME_PH",
    "COMPARTMENT_PH",
    "COMPARTMENT_PH_RANGE",
    "compartment_ph",
    "prescribed_ph",
    "ph_from_proton",
    "proton_from_ph",
    "hypoxia_factor",
    "cylinder_wall_distance",
    "PROTON_DIFFUSIVITY_M2_PER_S",
    "PROTON_PRODUCTION_MOL_PER_CELL_S",
    "PROTON_REMOVAL_RATE_PER_S",
    "CELL_DENSITY_PER_M3",
    "ProtonField",
    "PHSolution",
    "build_ph",
]

BLOOD_PH = 7.4
"""Blood plasma pH."""
NORMAL_EXTRACELLULAR_PH = 7.4
"""Extracellular pH of normal liver (PHYSICS.md §6)."""
TUMOUR_NEAR_VESSEL_PH = 7.2
"""Tumour pHe at a vessel wall (*unconfirmed* default)."""
TUMOUR_FAR_PH = 6.7
"""Tumour pHe far from vessels (within the 6.5–7.0 of reviews, PHYSICS.md §6; *unconfirmed*)."""
PH_DECAY_LENGTH_M = 100e-6
"""Decay length λ of the prescribed tumour pHe with distance to vessels, m (*unconfirmed*)."""

HEPATOCYTE_INTRACELLULAR_PH = 7.30
"""Hepatocyte intracellular pH, 7.30 ± 0.06 (PHYSICS.md §6)."""
EARLY_ENDOSOME_PH = 6.25
"""Early endosome, midpoint of 6.0–6.5 (PHYSICS.md §6, *unconfirmed*)."""
LATE_ENDOSOME_PH = 5.5
"""Late endosome, midpoint of 5.0–6.0 (PHYSICS.md §6, *unconfirmed*)."""
LYSOSOME_PH = 4.75
"""Lysosome, midpoint of 4.5–5.0 (PHYSICS.md §6, *unconfirmed*)."""

COMPARTMENT_PH_RANGE = {
    "blood": (7.35, 7.45),
    "normal_extracellular": (7.4, 7.4),
    "tumour_extracellular": (6.5, 7.0),
    "intracellular": (7.24, 7.36),
    "early_endosome": (6.0, 6.5),
    "late_endosome": (5.0, 6.0),
    "lysosome": (4.5, 5.0),
}
"""Range of pH per compartment (PHYSICS.md §6; endosomal and lysosomal ranges *unconfirmed*)."""
COMPARTMENT_PH = {
    "blood": BLOOD_PH,
    "normal_extracellular": NORMAL_EXTRACELLULAR_PH,
    "tumour_extracellular": 6.75,
    "intracellular": HEPATOCYTE_INTRACELLULAR_PH,
    "early_endosome": EARLY_ENDOSOME_PH,
    "late_endosome": LATE_ENDOSOME_PH,
    "lysosome": LYSOSOME_PH,
}
"""Named pH per compartment (the midpoint of its range)."""
_ALIASES = {"cytosol": "intracellular", "hepatocyte": "intracellular", "plasma": "blood",
            "endosome": "early_endosome"}

PROTON_DIFFUSIVITY_M2_PER_S = 5e-10
"""Buffered proton diffusivity D_H, m²/s (5×10⁻⁶ cm²/s, Gatenby & Gawlinski 1996; PHYSICS.md §6)."""
PROTON_PRODUCTION_MOL_PER_CELL_S = 2.2e-20
"""Acid production per cell r₃, mol/s (2.2×10⁻¹⁷ M·cm³·cell⁻¹·s⁻¹; PHYSICS.md §6)."""
PROTON_REMOVAL_RATE_PER_S = (1.1e-4, 1.1e-4, 0.0)
"""Vascular removal d₃ per region (normal, tumour, necrotic), 1/s (1.1×10⁻⁴ s⁻¹, PHYSICS.md §6;
none in an avascular necrotic core, an assumption)."""
CELL_DENSITY_PER_M3 = (0.0, 5e13, 0.0)
"""Acid-producing cells per volume per region, 1/m³ (5×10⁷ cells/cm³ in viable tumour, PHYSICS.md §6)."""


def compartment_ph(compartment: str, values: dict | None = None) -> float:
    """The pH of a named compartment (see :data:`COMPARTMENT_PH`), optionally from overridden ``values``.

    Names: blood, normal_extracellular, tumour_extracellular, intracellular (alias cytosol,
    hepatocyte), early_endosome (alias endosome), late_endosome, lysosome.

    >>> compartment_ph("lysosome")
    4.75
    """
    table = dict(COMPARTMENT_PH)
    if values:
        table.update(values)
    key = compartment.strip().lower().replace(" ", "_").replace("-", "_")
    key = _ALIASES.get(key, key)
    try:
        return float(table[key])
    except KeyError:
        raise KeyError(f"unknown compartment {compartment!r}; known: {', '.join(table)}") from None


def ph_from_proton(h_mol_per_m3, xp=np):
    """``pH = −log₁₀([H⁺] / 1 M)`` from ``[H⁺]`` in mol/m³."""
    return -xp.log10(h_mol_per_m3 * 1e-3)


def proton_from_ph(ph, xp=np):
    """``[H⁺]`` in mol/m³ from pH."""
    return 1e3 * xp.power(10.0, -xp.asarray(ph, dtype=float))


def hypoxia_factor(po2_pa, gain: float, half_pa: float, xp=np):
    """Acid-production factor ``1 + (G − 1)·P_h/(P_h + max(P, 0))`` (1 at high P, ``G`` at anoxia)."""
    p = xp.maximum(xp.asarray(po2_pa, dtype=float), 0.0)
    return 1.0 + (gain - 1.0) * half_pa / (half_pa + p)


def prescribed_ph(region, distance_to_wall_m, *, normal_ph: float = NORMAL_EXTRACELLULAR_PH,
                  tumour_near_ph: float = TUMOUR_NEAR_VESSEL_PH, tumour_far_ph: float = TUMOUR_FAR_PH,
                  decay_length_m: float = PH_DECAY_LENGTH_M, necrotic_ph: float | None = None,
                  blood_ph: float = BLOOD_PH, xp=np):
    """Extracellular pH per voxel from region codes and the signed distance to the nearest wall (m).

    Normal tissue ``normal_ph``; tumour ``far + (near − far)·exp(−d/λ)`` (``d = inf``: ``far``);
    necrotic ``necrotic_ph`` (default ``tumour_far_ph``); lumen (``d < 0``) ``blood_ph``.
    """
    if not decay_length_m > 0:
        raise ValueError(f"decay_length_m = {decay_length_m!r}: give a length > 0 (m)")
    region = xp.asarray(region)
    d = xp.asarray(distance_to_wall_m, dtype=float)
    necrotic_ph = tumour_far_ph if necrotic_ph is None else necrotic_ph
    tumour = tumour_far_ph + (tumour_near_ph - tumour_far_ph) * xp.exp(-xp.maximum(d, 0.0) / decay_length_m)
    out = xp.where(region == TUMOUR, tumour, xp.where(region == NECROTIC, necrotic_ph, normal_ph))
    return xp.where(d < 0, blood_ph, out)


def cylinder_wall_distance(grid: Grid, vessels) -> np.ndarray:
    """Signed distance (m) from each voxel centre to the nearest wall of straight cylinders (inf if none).

    Distance to the finite segment's axis minus the radius: negative inside a lumen.
    """
    z, y, x = grid.mesh_m()
    out = np.full(grid.shape_zyx, np.inf)
    for v in vessels:
        p0 = np.asarray(v.start_m, float)
        axis = np.asarray(v.end_m, float) - p0
        length = float(np.linalg.norm(axis))
        t = axis / length
        dx, dy, dz = x - p0[0], y - p0[1], z - p0[2]
        s = np.clip(dx * t[0] + dy * t[1] + dz * t[2], 0.0, length)
        dist = np.sqrt((dx - s * t[0]) ** 2 + (dy - s * t[1]) ** 2 + (dz - s * t[2]) ** 2) - v.radius_m
        out = np.minimum(out, dist)
    return out


@dataclass
class PHSolution:
    """An extracellular pH field.

    Attributes
    ----------
    ph : float64 array (nz, ny, nx)
    proton_mol_per_m3 : float64 array
        ``[H⁺]`` in mol/m³.
    region : uint8 array
    kind : str
        ``"prescribed"`` or ``"reaction_diffusion"``.
    info : SteadySolveInfo or None
        The linear solve (reaction–diffusion only).
    ledger_mol_per_s : dict or None
        Production against removal (reaction–diffusion only).
    """

    ph: np.ndarray
    proton_mol_per_m3: np.ndarray
    region: np.ndarray
    kind: str
    info: SteadySolveInfo | None = None
    ledger_mol_per_s: dict | None = None

    def mean_ph(self) -> dict:
        """Mean pH per region name (of the voxels' pH values); NaN where a region is absent."""
        return region_means(self.region, self.ph)

    def acidic_fraction(self, threshold_ph: float = 6.8) -> dict:
        """Fraction of voxels with pH below ``threshold_ph`` per region name; NaN where absent."""
        return region_means(self.region, self.ph < threshold_ph)

    def __repr__(self) -> str:
        means = ", ".join(f"{k} {v:.3f}" for k, v in self.mean_ph().items() if not math.isnan(v))
        lines = [f"PHSolution ({self.kind}): pH {self.ph.min():.3f} … {self.ph.max():.3f}; mean {means}"]
        if self.info is not None:
            lines.append(f"└── {self.info.cg_iterations} CG iterations, residual {self.info.residual:.2e}, "
                         f"balance error {self.ledger_mol_per_s['balance_error']:.2e}")
        return "\n".join(lines)


class ProtonField:
    """Steady proton reaction–diffusion (module doc); :meth:`solve` returns a :class:`PHSolution`.

    Parameters
    ----------
    backend : Backend or str
    grid : Grid
    region : uint8 array
    diffusivity_m2_per_s : float or 3 floats
        ``D_H``.
    production_mol_per_cell_s : float or 3 floats
        ``r₃``.
    cell_density_per_m3 : float or 3 floats
        ``ρ`` per region.
    removal_rate_per_s : float or 3 floats
        ``d₃`` per region.
    blood_ph : float
    production_factor : array, optional
        ``f`` per voxel (the tissue fraction), default 1.
    po2_pa : array, optional
        Oxygen partial pressure for the hypoxia factor (needed when ``hypoxia_gain != 1``).
    hypoxia_gain, hypoxia_half_pa : float
        ``G`` and ``P_h``.
    fixed : bool array, optional
        Lumen voxels held at the blood ``[H⁺]``.
    wall_factor : array, optional
        Sub-voxel wall correction of the held vessels.
    wall_exchange_per_s : array or float, optional
        ``P_H·S/V`` per voxel, 1/s.
    boundary : str or 3 str
        Box walls: ``"no_flux"``, ``"periodic"`` or ``"fixed"`` (at ``boundary_ph``, default blood).
    boundary_ph : float, optional
    """

    def __init__(self, backend, grid: Grid, region, *, diffusivity_m2_per_s=PROTON_DIFFUSIVITY_M2_PER_S,
                 production_mol_per_cell_s=PROTON_PRODUCTION_MOL_PER_CELL_S, cell_density_per_m3=CELL_DENSITY_PER_M3,
                 removal_rate_per_s=PROTON_REMOVAL_RATE_PER_S, blood_ph: float = BLOOD_PH, production_factor=None,
                 po2_pa=None, hypoxia_gain: float = 1.0, hypoxia_half_pa: float = 5.0 * MMHG_PA, fixed=None,
                 wall_factor=None, wall_exchange_per_s=None, boundary="no_flux", boundary_ph: float | None = None):
        self.backend = _resolve_backend(backend)
        self.grid = grid
        shape = tuple(grid.shape_zyx)
        region = np.asarray(_host(region), dtype=np.uint8)
        if region.shape != shape:
            raise ValueError(f"region has shape {region.shape}, expected the grid shape [z, y, x] = {shape}")
        self.region = region
        d = _region_table(diffusivity_m2_per_s, "diffusivity_m2_per_s")[region]
        r3 = _region_table(production_mol_per_cell_s, "production_mol_per_cell_s")[region]
        rho = _region_table(cell_density_per_m3, "cell_density_per_m3")[region]
        d3 = _region_table(removal_rate_per_s, "removal_rate_per_s")[region]
        if min(d.min(), r3.min(), rho.min(), d3.min()) < 0:
            raise ValueError("proton parameters: D_H, r₃, ρ and d₃ must be ≥ 0")
        f = np.ones(shape) if production_factor is None else _per_voxel(_host(production_factor), shape,
                                                                            "production_factor")
        if hypoxia_gain != 1.0:
            if po2_pa is None:
                raise ValueError("hypoxia_gain ≠ 1 needs the oxygen field: pass po2_pa (Pa, per voxel)")
            f = f * hypoxia_factor(_per_voxel(_host(po2_pa), shape, "po2_pa"), hypoxia_gain, hypoxia_half_pa)
        self.blood_ph = float(blood_ph)
        hb = float(proton_from_ph(blood_ph))
        q = d3
        if wall_exchange_per_s is not None:
            q = q + _per_voxel(_host(wall_exchange_per_s), shape, "wall_exchange_per_s")
        self.production_mol_per_m3_s = r3 * rho * f
        self.problem = SteadyReactionDiffusion(
            self.backend, grid, d, fixed=fixed, fixed_value=hb, wall_factor=wall_factor, exchange=q,
            exchange_value=hb, source=self.production_mol_per_m3_s, boundary=boundary,
            boundary_value=float(proton_from_ph(self.blood_ph if boundary_ph is None else boundary_ph)))
        self._hb = hb

    def solve(self, tol: float = 1e-10) -> PHSolution:
        """One conjugate-gradient solve to relative residual ``tol``; raises if nothing removes acid."""
        u, info = self.problem.solve(None, u0=np.full(self.grid.shape_zyx, self._hb), tol=tol)
        led = self.problem.ledger(u)
        h = self.backend.to_host(u)
        return PHSolution(ph=ph_from_proton(h), proton_mol_per_m3=h, region=self.region, kind="reaction_diffusion",
                          info=info, ledger_mol_per_s=led)


def build_ph(spec, grid: Grid, region, *, vessels=(), vasculature=None, po2_pa=None, backend=None) -> PHSolution:
    """The extracellular pH field of a scenario's ``[ph]`` table (:class:`nanosim.scenario.microenv.PH`).

    ``prescribed``: from the distance to the nearest wall of the cylinder ``vessels`` and of the
    ``vasculature``'s maps. ``reaction_diffusion``: the :class:`ProtonField` with the cylinder
    vessels of ``fixed_concentration`` wall held at blood pH, ``P_H·S/V`` exchange through the
    network's walls and ``exchange`` cylinders, production scaled by the tissue fraction, and the
    oxygen field ``po2_pa`` for the hypoxia factor.
    """
    from ..geometry import vessel_maps

    region = np.asarray(_host(region), dtype=np.uint8)
    vessels = list(vessels)
    if spec.kind == "prescribed":
        p = spec.prescribed
        dist = cylinder_wall_distance(grid, vessels)
        if vasculature is not None:
            dist = np.minimum(dist, np.asarray(vasculature.maps.distance_to_wall_m, dtype=np.float64))
        ph = prescribed_ph(region, dist, normal_ph=p.normal_ph, tumour_near_ph=p.tumour_near_vessel_ph,
                           tumour_far_ph=p.tumour_far_ph, decay_length_m=p.decay_length_m,
                           necrotic_ph=p.necrotic_ph, blood_ph=spec.blood_ph)
        return PHSolution(ph=ph, proton_mol_per_m3=proton_from_ph(ph), region=region, kind="prescribed")
    rd = spec.reaction_diffusion
    fixed, sv, _ = vessel_maps(grid, vessels)
    held = fixed.astype(bool)
    factor = None
    if vasculature is not None:
        sv = sv + np.asarray(vasculature.maps.surface_per_volume_per_m, dtype=np.float64)
        factor = np.clip(1.0 - np.asarray(vasculature.maps.volume_fraction, dtype=np.float64), 0.0, 1.0)
    exchange = sv * rd.wall_permeability_m_per_s
    regions = (rd.normal, rd.tumour, rd.necrotic)
    field = ProtonField(
        backend, grid, region, diffusivity_m2_per_s=rd.diffusivity_m2_per_s,
        production_mol_per_cell_s=rd.production_mol_per_cell_s,
        cell_density_per_m3=[r.cell_density_per_m3 for r in regions],
        removal_rate_per_s=[r.removal_rate_per_s for r in regions], blood_ph=spec.blood_ph,
        production_factor=factor, po2_pa=po2_pa, hypoxia_gain=rd.hypoxia_gain, hypoxia_half_pa=rd.hypoxia_half_pa,
        fixed=held if held.any() else None, wall_factor=steady_wall_factor(grid, vessels, fixed) if held.any() else None,
        wall_exchange_per_s=exchange if np.any(exchange) else None)
    return field.solve()
