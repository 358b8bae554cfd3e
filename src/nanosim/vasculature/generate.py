"""A seeded generator of liver-tumour vessel networks.

:func:`generate_liver_tumour` builds a :class:`~nanosim.vasculature.network.VesselNetwork` in a
box of liver tissue holding an ellipsoidal tumour (viable rim, viable core, optional necrotic
core) from a :class:`LiverTumourParams` and an integer seed. The same parameters and seed give
the identical network (array-equal); every random stage draws from its own child stream of
``numpy.random.SeedSequence(seed)``.

Regions
-------
With the normalised ellipsoidal radius ``ρ(x) = |(x − c) / a|`` (c the tumour centre, a the
semi-axes): necrotic core ``ρ < f_n`` (``necrotic_fraction``), viable core
``f_n ≤ ρ < ρ_rim``, viable rim ``ρ_rim ≤ ρ < 1`` with ``ρ_rim = 1 − rim_thickness_m / min(a)``
(exact thickness for a sphere; for an ellipsoid the rim is thickest along the longest axis), and
normal liver ``ρ ≥ 1`` (the rest of the box).

Whole and sampled tumours
-------------------------
A tumour that fits in the box with a 10 % margin is simulated whole (the algorithm below). A
tumour whose centre lies outside the box, or that encloses the whole box, is *sampled*: the box
is a piece of a larger tumour in a larger liver (e.g. a 1.6 mm box holding the outer millimetre
of a 300 mm³ mouse tumour and some liver beyond its surface). The regions are decided per
position by ``ρ`` exactly as for a whole tumour, and every region volume is the volume *inside
the box* (:meth:`LiverTumourParams.region_volumes_m3`, a deterministic quadrature). What changes:

- the tumour points are drawn uniformly in the part of the box inside the tumour, at the same
  per-region densities (and the same two-pass calibration);
- the sinusoid lattice is built as for a whole tumour, so it exists only where the box holds
  normal liver; ``flow_axis`` defaults to the axis most nearly parallel to the tumour surface at
  the box centre, so that lattice rows run beside the tumour with both ends in the liver (along
  the surface normal, every row would start inside the tumour and the liver would get no portal
  venules);
- the *arterial face* is the face whose centre has the largest ``ρ`` (the face on the
  normal-liver side; for a box inside the tumour, the face nearest the tumour surface) or, with
  ``arterial_inlet_m``, the face nearest that point. The *outer* tumour nodes are the viable
  nodes in the rim or within ``rim_thickness_m`` of the arterial face: where blood enters and
  leaves a large tumour, at its surface;
- tumour vessels cut by the box faces end there with no boundary condition: the box lies inside
  tissue and, as for the interstitial fluid, no net blood crosses its faces by symmetry. Blood
  leaves the tumour through draining venules (``VEIN``, at ``central_outlet_pressure_pa``) from
  free outer nodes straight to the arterial face, ``tumour_drain_veins_per_m2`` per m² of
  :meth:`LiverTumourParams.footprint_area_m2` (the tumour surface in the box as seen from the
  liver side), at least one;
- the hepatic arterial tree's root is at the centre of the arterial face (or at
  ``arterial_inlet_m``); branch points lie on a plane parallel to the face, at the projection of
  the mean position of their terminals, ``rim_thickness_m / 2`` beyond the tumour terminal
  nearest the face (so the arteries run just outside the tumour surface); the last vessels dive
  from that plane to the terminals (straight, Murray radii as for a whole tumour). Terminals:
  ``arterial_terminals_per_m3`` × the viable-tumour volume in the box, at free outer nodes,
  capped at their number (in a sample of a large tumour the cap binds: nearly every free rim
  node gets a terminal, the interior is fed through the tumour network). Normal-liver terminals
  go to lattice nodes within two lattice spacings of the tumour surface;
- the calibration needs a portal route into the tumour (margin sinusoids). When the box holds
  no normal liver next to the tumour there is none, every pressure gives an arterial fraction of
  1, and the calibration is not applicable: the arterial inlet keeps
  ``arterial_inlet_pressure_pa`` and ``meta["calibration"]["status"]`` says so (no warning).

With the faces closed, blood in the tumour interior moves slowly and the tumour's vascular
pressure is set at its surface (arterial terminals, draining venules, margin sinusoids). At the
calibrated arterial pressure it can exceed the portal pressure: tumour blood then leaves through
the margin sinusoids into the liver and out through portal as well as central venules (HCC does
drain into the surrounding sinusoids), and the "portal" share of tumour inflow counted by
:func:`tumour_inflow_split` arrives through sinusoids fed by the normal-liver arterial terminals.

A tumour centred in the box that crosses its faces (neither whole nor sampled) is refused, as is
one that does not reach the box at all.

Algorithm
---------
1. **Normal liver microvasculature** — a jittered cubic lattice of sinusoids (wall
   ``SINUSOID``), spacing chosen so that the sinusoid S/V in the box matches
   ``normal_sv_per_m`` for ``sinusoid_radius_m`` (lattice length density ``3/a²`` times the mean
   tortuosity and the jitter lengthening ``1 + 2j²/3``, boundary rows counted exactly). Every
   lattice row along ``flow_axis`` is fed by a short portal venule (``PORTAL``) from the lower face
   of the box and drained by a central venule (``VEIN``) to the upper face. Lattice nodes inside
   the tumour are removed; each lattice node that lost an edge to the tumour is joined by a
   sinusoid to the nearest tumour node (co-opted sinusoids at the tumour margin — the
   portal-derived route into the tumour).
2. **Tumour network** — random points, uniform within each region at a per-region number
   density, joined by the union of their ``tumour_neighbours`` nearest-neighbour edges (mean node
   degree ≈ 3–4); with ``tumour_necrotic_sv_per_m = 0`` the necrotic core gets no points and edges
   crossing it are dropped. The densities are set in two passes: a first network measures the
   realised length density per region and the point densities are rescaled by
   ``(target / realised)^(3/2)`` (a nearest-neighbour graph has length density ∝ n^(2/3)) before
   the final network is drawn. Radii are lognormal (``tumour_diameter_mean_m``,
   ``tumour_diameter_log_sd``). Isolated pieces are bridged to the main piece by one edge or
   dropped. A few draining venules (``VEIN``) run from rim nodes on the outflow side of the
   tumour straight to the outflow face.
3. **Hepatic arterial tree** — terminals at rim nodes of the tumour (density
   ``arterial_terminals_per_m3`` of viable tumour) and, a fraction
   ``arterial_normal_terminal_fraction``, at sinusoid lattice nodes next to the tumour. From the
   inlet a binary tree is grown by recursive bisection of the terminals (median split along
   their principal axis); branch points lie on a shell in the mean direction of their
   terminals, and shell-to-shell vessels are split into arcs of ≤ 15° (degree-2 nodes) so that
   they do not cut through the tumour. By default the shell lies just outside the tumour
   (``ρ = 1.05``): arteries run over the tumour surface and dive into the rim.
   ``arterial_branch_rho`` moves the branch points of the vessels that feed the tumour onto a
   shell inside the viable rim (``ρ_rim ≤ ρ < 1``): a feeding artery enters the tumour at its
   periphery and branches within the rim, as HCC's intratumoral ("unpaired") arteries and the
   hypervascular viable rim of a VX2 tumour do (sources below); branches that feed only
   normal-liver terminals keep the shell at ``ρ = 1.05``, and an arc between the two shells
   changes its radius linearly with angle. Radii follow Murray's law with ``murray_exponent`` γ
   exactly: a vessel carrying n terminals has ``r = r_term · n^(1/γ)``, so
   ``r_parent^γ = Σ r_child^γ`` at every bifurcation.
4. **Tortuosity** — every segment stays straight between its end nodes and carries a centreline
   length ``seg_length_m = τ · chord`` with τ uniform in the wall type's tortuosity range.
5. **Boundary conditions** — pressures at the portal inlets (``portal_inlet_pressure_pa``), the
   central and tumour venous outlets (``central_outlet_pressure_pa``) and the arterial inlet.
   With ``calibrate_arterial_pressure`` the arterial inlet pressure is chosen so that the
   arterial fraction of the blood entering the tumour (:func:`tumour_inflow_split`) equals
   ``arterial_fraction_of_tumour_inflow`` under Poiseuille flow of a Newtonian fluid of viscosity
   ``calibration_viscosity`` (by default the Pries in vivo law at the inflow haematocrit, a
   function of diameter only): the flows are affine in the inlet pressure, so two solves with
   one sparse factorisation give the fraction for every pressure and a bisection finds it. With
   phase separation the haematocrit, hence the viscosity, varies with the flow and the fraction
   moves away from the target; the realised calibration is recorded in
   ``network.meta["calibration"]``. (For a sampled tumour with no portal route into it the
   calibration does not apply; see "Whole and sampled tumours".)
6. Pieces without a pressure condition are removed; the result passes
   ``validate(require_bc=True)``.

Sources
-------
- S/V: tumour ≈ 200 cm⁻¹, normal tissue ≈ 70 cm⁻¹ (Baxter & Jain 1989, Microvasc. Res. 37:77).
- Tumour vessel diameters 10–50 µm, mean ≈ 20 µm (Jain 1988, Cancer Res. 48:2641; unconfirmed).
- Liver sinusoid diameter 7–15 µm (unconfirmed); sinusoid fenestrae 105–175 nm (Braet & Wisse
  2002, Comp. Hepatol. 1:1); tumour pore cut-off 200 nm–1.2 µm (Hobbs et al. 1998, PNAS
  95:4607), 400–600 nm in LS174T (Yuan et al. 1995, Cancer Res. 55:3752).
- HCC inflow ≈ 90 % arterial (Breedis & Young 1954, Am. J. Pathol. 30:969, via review); normal
  liver 70–75 % portal.
- Murray's law r_parent³ = Σ r_child³ (Murray 1926, PNAS 12:207).
- Arteries inside the tumour (``arterial_branch_rho``; a placement, not a measured depth of
  branching, which is unconfirmed): in multistep hepatocarcinogenesis the intranodular arterial
  supply and the "unpaired" arteries (not accompanying a portal tract) increase up to classic
  hypervascular HCC (Abdom. Imaging 2011, PMC3102849, Matsui et al.; Kobayashi et al. 2020,
  Hepatoma Res. 6:36); moderately differentiated HCCs hold abundant intratumoral arterioles, more
  above 1.5 cm ("Vascularization of small hepatocellular carcinomas: correlation with
  differentiation", Liver 1999, Nakashima et al.). A rabbit VX2 liver tumour is a necrotic core
  in a viable hypervascular rim (Parvinian et al. 2014, Diagn. Interv. Radiol. 20:335; Khabbaz
  et al. 2019, J. Vis. Exp. 143:e58600); iron-oxide Embospheres of 100–300 µm given into its
  hepatic artery were found inside the tumour on histology in 7 of 10 rabbits, 300–500 µm ones
  only in the hepatic artery outside it (J. Vasc. Interv. Radiol. 2008, 19:1490, PMID 18755602,
  Lee et al.), so arteries of ≥ 100 µm calibre reach into a VX2 tumour. (Abstracts read; authors
  and pages not read from the articles are recalled.)
- Pressures are typical values and unconfirmed defaults (see :class:`LiverTumourParams`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from .network import BCKind, VesselNetwork, WallType

__all__ = [
    "MMHG_PA",
    "REGION_NAMES",
    "LiverTumourParams",
    "generate_liver_tumour",
    "poiseuille_flow",
    "region_of_points",
    "tumour_inflow_split",
    "vessel_region_summary",
]

#: one millimetre of mercury in pascal
MMHG_PA = 133.322

#: region codes of :func:`region_of_points`
NORMAL, RIM, CORE, NECROTIC = 0, 1, 2, 3
REGION_NAMES = ("normal", "rim", "core", "necrotic")

#: normalised radius of the shell on which arterial branch points lie by default (just outside the
#: tumour), and always those of branches that feed only normal liver
_SHELL_RHO = 1.05
#: largest angle (rad) of one arc piece of a shell-to-shell artery
_MAX_ARC_RAD = math.radians(15.0)


# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiverTumourParams:
    """Parameters of :func:`generate_liver_tumour` (SI units: m, Pa, Pa·s, m⁻¹).

    Geometry
    --------
    box_size_m : (float, float, float)
        Box edge lengths along x, y, z (m). Default 1 mm³.
    box_origin_m : (float, float, float)
        Lower corner of the box (m).
    tumour_center_m : (float, float, float) or None
        Tumour centre (m); None: the box centre.
    tumour_semi_axes_m : (float, float, float)
        Semi-axes of the tumour ellipsoid along x, y, z (m); equal for a sphere. Either the tumour
        with a 10 % margin lies inside the box (a whole tumour), or the box samples a larger
        tumour: its centre lies outside the box, or the tumour encloses the whole box (see
        "Whole and sampled tumours" in the module docstring). Default 200 µm (a 400 µm tumour).
    necrotic_fraction : float
        Necrotic-core radius as a fraction of each semi-axis, in [0, 1); 0 = no necrotic core.
        Default 0.4 (unconfirmed default).
    rim_thickness_m : float
        Thickness of the viable rim along the shortest semi-axis (m). Default 75 µm (unconfirmed
        default).
    flow_axis : int or None
        Axis (0 x, 1 y, 2 z) along which the liver lattice drains: portal inlets on the lower face,
        central-venule outlets on the upper face. None (default), resolved on construction: 0 for
        a whole tumour; for a sampled tumour the axis along which the tumour surface normal at the
        box centre has the smallest component (lattice rows run beside the tumour, so the normal
        liver keeps portal inlets), ties to the lower axis.

    Normal liver (sinusoid lattice)
    -------------------------------
    normal_sv_per_m : float
        Target vessel surface per tissue volume in normal liver (m⁻¹). Default 7000 m⁻¹
        = 70 cm⁻¹ (Baxter & Jain 1989).
    sinusoid_radius_m : float
        Sinusoid radius (m). Default 5 µm (diameter 10 µm, within 7–15 µm; unconfirmed).
    sinusoid_jitter_fraction : float
        Lattice-node jitter, uniform ± this fraction of the spacing per coordinate, in [0, 0.45].
        Default 0.15.
    sinusoid_tortuosity_range : (float, float)
        Range of centreline/chord ratio of sinusoids. Default (1.0, 1.1) (unconfirmed).
    portal_venule_radius_m, central_venule_radius_m : float
        Radii of the inlet (portal) and outlet (central) venule stubs (m). Default 7.5 µm each
        (unconfirmed defaults).
    sinusoid_pore_radius_m : float
        Fenestra radius of sinusoids (m). Default 70 nm: fenestrae 105–175 nm, mean ≈ 140 nm
        (Braet & Wisse 2002).

    Tumour network
    --------------
    tumour_rim_sv_per_m : float
        Target S/V of tumour vessels in the viable rim (m⁻¹). Default 20000 m⁻¹ = 200 cm⁻¹
        (Baxter & Jain 1989).
    tumour_core_sv_per_m : float
        Target S/V in the viable core (m⁻¹). Default 10000 m⁻¹ (half the rim; unconfirmed).
    tumour_necrotic_sv_per_m : float
        Target S/V in the necrotic core (m⁻¹). Default 0: no vessels there.
    tumour_diameter_mean_m : float
        Mean tumour-vessel diameter (m). Default 20 µm (Jain 1988, unconfirmed).
    tumour_diameter_log_sd : float
        Standard deviation of ln(diameter). Default 0.35, which puts ≈ 96 % of diameters in
        10–50 µm at a 20 µm mean.
    tumour_tortuosity_range : (float, float)
        Range of centreline/chord ratio of tumour vessels. Default (1.1, 1.4) (unconfirmed).
    tumour_neighbours : int
        Nearest neighbours each tumour node is joined to (the union of these edges gives a mean
        degree ≈ 3–4 for 2, counting margin and arterial joins). Default 2.
    tumour_pore_radius_range_m : (float, float)
        Range (m) of tumour-vessel pore radii, drawn log-uniformly per segment. Default 200–300 nm
        (pores 400–600 nm in LS174T, Yuan et al. 1995; cut-off 200 nm–1.2 µm, Hobbs et al. 1998).
    tumour_drain_veins_per_m2 : float
        Draining venules per tumour surface area (m⁻²); at least one is made. Default 4e6 m⁻²
        = 4 mm⁻² (unconfirmed default).
    tumour_drain_vein_radius_m : float
        Radius of the draining venules (m). Default 10 µm (unconfirmed default).

    Hepatic arterial tree
    ---------------------
    arterial_inlet_m : (float, float, float) or None
        Position of the arterial inlet (m), in the box; for a whole tumour outside it (with a
        10 % margin). None: for a whole tumour the centre of the portal (lower ``flow_axis``) face;
        for a sampled tumour the centre of the arterial face (module docstring).
    arterial_terminal_radius_m : float
        Radius of terminal arterioles (m). Default 3 µm (unconfirmed default).
    arterial_root_radius_m : float or None
        If given, the tree is scaled so that its root has this radius (terminals follow by
        Murray's law); None: the root radius follows from the terminal radius and count.
    arterial_terminals_per_m3 : float
        Terminal arterioles into the tumour per viable-tumour volume (m⁻³). Default 1e12 m⁻³
        = 1000 mm⁻³ (unconfirmed default).
    arterial_normal_terminal_fraction : float
        Fraction of terminals that end in normal sinusoids next to the tumour, in [0, 1).
        Default 0.1 (unconfirmed default).
    arterial_tortuosity_range : (float, float)
        Range of centreline/chord ratio of arteries. Default (1.0, 1.1) (unconfirmed).
    arterial_branch_rho : float
        Normalised radius ``ρ`` of the shell on which the branch points of the arteries that feed
        the tumour lie (whole tumour only), in [``ρ_rim``, 1.05] with ``ρ_rim = 1 −
        rim_thickness_m / min(tumour_semi_axes_m)``. Default 1.05: just outside the tumour, the
        arteries run over its surface and only the terminal vessels enter it. A value in
        [``ρ_rim``, 1): a feeding artery enters the tumour and branches inside the viable rim
        (intratumoral arteries of HCC and of a VX2 tumour, module docstring "Sources"; the depth
        is a modelling choice, unconfirmed; the middle of the rim is
        ``1 − rim_thickness_m / (2 min(tumour_semi_axes_m))``). Branches feeding only normal
        liver stay at 1.05. A sampled tumour's branch points lie on a plane (module docstring)
        and it refuses any other value than the default.
    murray_exponent : float
        Exponent γ of Murray's law r_parent^γ = Σ r_child^γ. Default 3 (Murray 1926); tumour
        networks deviate.

    Boundary conditions and calibration
    -----------------------------------
    portal_inlet_pressure_pa : float
        Pressure at the portal-venule inlets (Pa). Default 9 mmHg (typical portal venule value,
        unconfirmed default).
    central_outlet_pressure_pa : float
        Pressure at central-venule and tumour-venule outlets (Pa). Default 4 mmHg (typical hepatic
        venule value, unconfirmed default).
    arterial_inlet_pressure_pa : float
        Pressure at the arterial inlet (Pa) when not calibrated. Default 50 mmHg (arteriolar
        value, 40–60 mmHg; unconfirmed default).
    arterial_fraction_of_tumour_inflow : float
        Target arterial fraction of the blood entering the tumour, in (0, 1). Default 0.9
        (Breedis & Young 1954).
    calibrate_arterial_pressure : bool
        Choose the arterial inlet pressure to meet the target fraction (see the module docstring).
        Default True.
    arterial_pressure_range_pa : (float, float)
        Range searched by the calibration (Pa). Default 10–100 mmHg (unconfirmed default).
    calibration_viscosity : {"in_vivo", "in_vitro", "uniform"}
        Viscosity used by the calibration: the Pries et al. in vivo (1994) or in vitro (1992)
        law at ``haematocrit`` per segment diameter (from :mod:`nanosim.flow.viscosity`, with its
        plasma viscosity), or the uniform ``calibration_viscosity_pa_s``. Without phase
        separation these make flows affine in the inlet pressure, so the calibration is exact
        for :func:`nanosim.flow.network_flow.solve_flow` with the same law. Default "in_vivo";
        falls back to "uniform" (recorded in ``meta``) if the viscosity module is missing.
    calibration_viscosity_pa_s : float
        Uniform viscosity for ``calibration_viscosity = "uniform"`` (Pa·s). Default 3.5e-3
        (typical apparent blood viscosity, unconfirmed default; a uniform value does not change
        the fraction).
    haematocrit : float
        Discharge haematocrit of blood entering at every boundary. Default 0.45 (systemic,
        unconfirmed default).
    """

    box_size_m: tuple = (1e-3, 1e-3, 1e-3)
    box_origin_m: tuple = (0.0, 0.0, 0.0)
    tumour_center_m: tuple | None = None
    tumour_semi_axes_m: tuple = (200e-6, 200e-6, 200e-6)
    necrotic_fraction: float = 0.4
    rim_thickness_m: float = 75e-6
    flow_axis: int | None = None
    # normal liver
    normal_sv_per_m: float = 7000.0
    sinusoid_radius_m: float = 5e-6
    sinusoid_jitter_fraction: float = 0.15
    sinusoid_tortuosity_range: tuple = (1.0, 1.1)
    portal_venule_radius_m: float = 7.5e-6
    central_venule_radius_m: float = 7.5e-6
    sinusoid_pore_radius_m: float = 70e-9
    # tumour
    tumour_rim_sv_per_m: float = 20000.0
    tumour_core_sv_per_m: float = 10000.0
    tumour_necrotic_sv_per_m: float = 0.0
    tumour_diameter_mean_m: float = 20e-6
    tumour_diameter_log_sd: float = 0.35
    tumour_tortuosity_range: tuple = (1.1, 1.4)
    tumour_neighbours: int = 2
    tumour_pore_radius_range_m: tuple = (200e-9, 300e-9)
    tumour_drain_veins_per_m2: float = 4e6
    tumour_drain_vein_radius_m: float = 10e-6
    # arterial tree
    arterial_inlet_m: tuple | None = None
    arterial_terminal_radius_m: float = 3e-6
    arterial_root_radius_m: float | None = None
    arterial_terminals_per_m3: float = 1e12
    arterial_normal_terminal_fraction: float = 0.1
    arterial_tortuosity_range: tuple = (1.0, 1.1)
    arterial_branch_rho: float = _SHELL_RHO
    murray_exponent: float = 3.0
    # boundary conditions
    portal_inlet_pressure_pa: float = 9.0 * MMHG_PA
    central_outlet_pressure_pa: float = 4.0 * MMHG_PA
    arterial_inlet_pressure_pa: float = 50.0 * MMHG_PA
    arterial_fraction_of_tumour_inflow: float = 0.9
    calibrate_arterial_pressure: bool = True
    arterial_pressure_range_pa: tuple = (5.0 * MMHG_PA, 100.0 * MMHG_PA)
    calibration_viscosity: str = "in_vivo"
    calibration_viscosity_pa_s: float = 3.5e-3
    haematocrit: float = 0.45

    def __post_init__(self):
        for name in ("box_size_m", "box_origin_m", "tumour_semi_axes_m", "sinusoid_tortuosity_range",
                     "tumour_tortuosity_range", "tumour_pore_radius_range_m", "arterial_tortuosity_range",
                     "arterial_pressure_range_pa") + (("tumour_center_m",) if self.tumour_center_m is not None else ()) \
                + (("arterial_inlet_m",) if self.arterial_inlet_m is not None else ()):
            v = getattr(self, name)
            try:
                t = tuple(float(x) for x in v)
            except TypeError:
                raise ValueError(f"{name} = {v!r}: give a tuple of numbers") from None
            want = 2 if name.endswith(("range_m", "range", "range_pa")) else 3
            if len(t) != want or not all(math.isfinite(x) for x in t):
                raise ValueError(f"{name} = {v!r}: give {want} finite numbers")
            object.__setattr__(self, name, t)

        def positive(*names):
            for n in names:
                v = getattr(self, n)
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                    raise ValueError(f"{n} = {v!r}: must be a finite number > 0")

        def nonneg(*names):
            for n in names:
                v = getattr(self, n)
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                    raise ValueError(f"{n} = {v!r}: must be a finite number >= 0")

        if min(self.box_size_m) <= 0:
            raise ValueError(f"box_size_m = {self.box_size_m}: every edge must be > 0 m")
        if min(self.tumour_semi_axes_m) <= 0:
            raise ValueError(f"tumour_semi_axes_m = {self.tumour_semi_axes_m}: every semi-axis must be > 0 m")
        positive("rim_thickness_m", "normal_sv_per_m", "sinusoid_radius_m", "portal_venule_radius_m",
                 "central_venule_radius_m", "tumour_rim_sv_per_m", "tumour_diameter_mean_m",
                 "tumour_diameter_log_sd", "tumour_drain_vein_radius_m", "arterial_terminal_radius_m",
                 "arterial_terminals_per_m3", "murray_exponent", "calibration_viscosity_pa_s")
        nonneg("tumour_core_sv_per_m", "tumour_necrotic_sv_per_m", "sinusoid_pore_radius_m",
               "tumour_drain_veins_per_m2", "portal_inlet_pressure_pa", "central_outlet_pressure_pa",
               "arterial_inlet_pressure_pa")
        if self.arterial_root_radius_m is not None:
            positive("arterial_root_radius_m")
        if not 0 <= self.necrotic_fraction < 1:
            raise ValueError(f"necrotic_fraction = {self.necrotic_fraction!r}: must be in [0, 1) (0 = no core)")
        if self.rho_rim <= self.necrotic_fraction:
            raise ValueError(f"rim_thickness_m = {self.rim_thickness_m!r} leaves no viable core between the rim "
                             f"and the necrotic core: make it < (1 − necrotic_fraction) × min(tumour_semi_axes_m)"
                             f" = {(1 - self.necrotic_fraction) * min(self.tumour_semi_axes_m):.4g} m")
        if not 0 <= self.sinusoid_jitter_fraction <= 0.45:
            raise ValueError(f"sinusoid_jitter_fraction = {self.sinusoid_jitter_fraction!r}: must be in [0, 0.45]")
        for n in ("sinusoid_tortuosity_range", "tumour_tortuosity_range", "arterial_tortuosity_range"):
            lo, hi = getattr(self, n)
            if not 1.0 <= lo <= hi:
                raise ValueError(f"{n} = {(lo, hi)}: need 1 <= low <= high (centreline length / chord)")
        lo, hi = self.tumour_pore_radius_range_m
        if not 0 < lo <= hi:
            raise ValueError(f"tumour_pore_radius_range_m = {(lo, hi)}: need 0 < low <= high (m)")
        lo, hi = self.arterial_pressure_range_pa
        if not 0 <= lo < hi:
            raise ValueError(f"arterial_pressure_range_pa = {(lo, hi)}: need 0 <= low < high (Pa)")
        if self.calibration_viscosity not in ("in_vivo", "in_vitro", "uniform"):
            raise ValueError(f"calibration_viscosity = {self.calibration_viscosity!r}: use 'in_vivo', 'in_vitro' "
                             "or 'uniform'")
        if self.flow_axis is not None and self.flow_axis not in (0, 1, 2):
            raise ValueError(f"flow_axis = {self.flow_axis!r}: use 0 (x), 1 (y), 2 (z) or None (automatic)")
        if not (isinstance(self.tumour_neighbours, int) and 1 <= self.tumour_neighbours <= 8):
            raise ValueError(f"tumour_neighbours = {self.tumour_neighbours!r}: use an integer 1..8")
        if not 0 <= self.arterial_normal_terminal_fraction < 1:
            raise ValueError(f"arterial_normal_terminal_fraction = {self.arterial_normal_terminal_fraction!r}: "
                             "must be in [0, 1)")
        if not 0 < self.arterial_fraction_of_tumour_inflow < 1:
            raise ValueError(f"arterial_fraction_of_tumour_inflow = {self.arterial_fraction_of_tumour_inflow!r}: "
                             "must be in (0, 1)")
        if not 0 <= self.haematocrit < 1:
            raise ValueError(f"haematocrit = {self.haematocrit!r}: must be in [0, 1)")
        self._check_branch_rho()
        lo, hi = np.asarray(self.box_origin_m), np.asarray(self.box_origin_m) + np.asarray(self.box_size_m)
        c, a = self.center, np.asarray(self.tumour_semi_axes_m)
        if not self.whole_tumour:
            if self.rho(np.clip(c, lo, hi)[None])[0] >= 1.0:
                raise ValueError(f"tumour_center_m = {tuple(c.tolist())} with tumour_semi_axes_m = "
                                 f"{self.tumour_semi_axes_m}: the tumour does not reach the box "
                                 f"{tuple(lo.tolist())}–{tuple(hi.tolist())}; move the centre so that the tumour "
                                 "overlaps the box (a box sampling a larger tumour), or enlarge the tumour")
            if ((c >= lo) & (c <= hi)).all() and not self.encloses_box:
                raise ValueError(f"tumour_semi_axes_m = {self.tumour_semi_axes_m} around tumour_center_m = "
                                 f"{tuple(c.tolist())}: the tumour with a 10 % margin does not fit in the box "
                                 f"{tuple(lo.tolist())}–{tuple(hi.tolist())}, and with its centre in the box it "
                                 "crosses the faces on every side; shrink the tumour, move its centre or enlarge "
                                 "box_size_m so that it fits, or move tumour_center_m outside the box (or make the "
                                 "tumour enclose the whole box) so that the box samples part of a larger tumour")
        if self.flow_axis is None:
            axis = 0
            if not self.whole_tumour:  # the axis most nearly parallel to the tumour surface
                normal = (0.5 * (lo + hi) - c) / (a * a)
                axis = int(np.argmin(np.abs(normal)))
            object.__setattr__(self, "flow_axis", axis)
        sinus_a = self.lattice_spacing_m()
        if sinus_a > 0.5 * min(self.box_size_m):
            raise ValueError(f"normal_sv_per_m = {self.normal_sv_per_m!r} with sinusoid_radius_m = "
                             f"{self.sinusoid_radius_m!r} needs a sinusoid spacing of {sinus_a:.3g} m, more than half "
                             "the box: raise normal_sv_per_m or enlarge box_size_m")
        if self.arterial_inlet_m is not None:
            p = np.asarray(self.arterial_inlet_m)
            if (p < lo).any() or (p > hi).any():
                raise ValueError(f"arterial_inlet_m = {self.arterial_inlet_m}: must lie in the box")
            if self.whole_tumour and self.rho(p[None])[0] <= _SHELL_RHO * 1.05:
                raise ValueError(f"arterial_inlet_m = {self.arterial_inlet_m}: must lie outside the tumour with a "
                                 "10 % margin")

    def _check_branch_rho(self):
        v = self.arterial_branch_rho
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)):
            raise ValueError(f"arterial_branch_rho = {v!r}: give a number, the normalised radius of the arterial "
                             f"branching shell (default {_SHELL_RHO})")
        if not self.whole_tumour:
            if v != _SHELL_RHO:
                raise ValueError(f"arterial_branch_rho = {v!r}: applies to a whole tumour only; a box sampling a "
                                 "larger tumour puts its arterial branch points on a plane beside the tumour "
                                 f"surface; remove arterial_branch_rho (or set it to the default {_SHELL_RHO})")
            return
        lo = self.rho_rim
        if not lo <= v <= _SHELL_RHO:
            raise ValueError(f"arterial_branch_rho = {v!r}: must be in [{lo:.4g}, {_SHELL_RHO}], from the inner "
                             "surface of the viable rim (1 − rim_thickness_m / min(tumour_semi_axes_m)) to the "
                             f"default shell just outside the tumour; e.g. {1.0 - 0.5 * (1.0 - lo):.4g} for branching "
                             f"in the middle of the rim, {_SHELL_RHO} for arteries running over the tumour surface")

    # ------------------------------------------------------------------------------------------
    @property
    def center(self) -> np.ndarray:
        """Tumour centre (m)."""
        if self.tumour_center_m is None:
            return np.asarray(self.box_origin_m) + 0.5 * np.asarray(self.box_size_m)
        return np.asarray(self.tumour_center_m, float)

    @property
    def whole_tumour(self) -> bool:
        """True when the tumour with a 10 % margin fits in the box (simulated whole); False when the
        box samples a larger tumour (module docstring)."""
        lo, hi = self._box()
        c, a = self.center, np.asarray(self.tumour_semi_axes_m)
        return not (((c - 1.1 * a) < lo).any() or ((c + 1.1 * a) > hi).any())

    @property
    def encloses_box(self) -> bool:
        """True when the whole box lies inside the tumour (``ρ < 1`` at its eight corners)."""
        lo, hi = self._box()
        corners = np.array([[(lo, hi)[(k >> i) & 1][i] for i in range(3)] for k in range(8)])
        return bool((self.rho(corners) < 1.0).all())

    def _box(self):
        lo = np.asarray(self.box_origin_m, float)
        return lo, lo + np.asarray(self.box_size_m, float)

    def arterial_face(self) -> tuple:
        """(axis, side) of the face a sampled tumour's arterial tree enters by (side 0 low, 1 high):
        the face nearest ``arterial_inlet_m`` if given, else the face whose centre has the largest
        ``ρ`` (on the normal-liver side; for a box inside the tumour, nearest the tumour surface).
        Ties go to the first face in the order x low, x high, y low, y high, z low, z high."""
        lo, hi = self._box()
        if self.arterial_inlet_m is not None:
            p = np.asarray(self.arterial_inlet_m, float)
            k = int(np.argmin(np.stack([p - lo, hi - p], 1).ravel()))
        else:
            centres = np.repeat((0.5 * (lo + hi))[None], 6, axis=0)
            for k in range(6):
                centres[k, k // 2] = (lo, hi)[k % 2][k // 2]
            k = int(np.argmax(self.rho(centres)))
        return k // 2, k % 2

    @property
    def rho_rim(self) -> float:
        """Normalised radius of the rim's inner surface, ``1 − rim_thickness_m / min(semi-axes)``."""
        return 1.0 - self.rim_thickness_m / min(self.tumour_semi_axes_m)

    def rho(self, pts_m: np.ndarray) -> np.ndarray:
        """Normalised ellipsoidal radius ``|(x − c) / a|`` of points (n, 3) in m."""
        return np.linalg.norm((np.asarray(pts_m) - self.center) / np.asarray(self.tumour_semi_axes_m), axis=-1)

    def region_volumes_m3(self) -> dict:
        """Volume (m³) of each region (normal, rim, core, necrotic) inside the box.

        Exact for a whole tumour; for a sampled one a midpoint quadrature over two axes with the
        chord along the third exact (relative error ~1e-4; deterministic)."""
        fn, fr = self.necrotic_fraction, self.rho_rim
        box = float(np.prod(self.box_size_m))
        if self.whole_tumour:
            v_t = 4.0 / 3.0 * math.pi * float(np.prod(self.tumour_semi_axes_m))
            return {"normal": box - v_t, "rim": v_t * (1 - fr**3), "core": v_t * (fr**3 - fn**3),
                    "necrotic": v_t * fn**3}
        v1, vr = self._inner_volume_m3(1.0), self._inner_volume_m3(fr)
        vn = self._inner_volume_m3(fn) if fn > 0 else 0.0
        return {"normal": box - v1, "rim": v1 - vr, "core": vr - vn, "necrotic": vn}

    def _inner_volume_m3(self, s: float, n: int = 400) -> float:
        """Volume (m³) of the part of the box with ``ρ < s``."""
        a = np.asarray(self.tumour_semi_axes_m)
        lo, hi = ((b - self.center) / a for b in self._box())  # the box in normalised coordinates
        lo_xy, hi_xy = np.maximum(lo[:2], -s), np.minimum(hi[:2], s)
        if (hi_xy <= lo_xy).any():
            return 0.0
        h = (hi_xy - lo_xy) / n
        x = lo_xy[0] + (np.arange(n) + 0.5) * h[0]
        y = lo_xy[1] + (np.arange(n) + 0.5) * h[1]
        w = np.sqrt(np.maximum(s * s - x[:, None] ** 2 - y[None, :] ** 2, 0.0))
        chord = np.clip(np.minimum(hi[2], w) - np.maximum(lo[2], -w), 0.0, None)
        return float(chord.sum() * h[0] * h[1] * np.prod(a))

    def footprint_area_m2(self, n: int = 400) -> float:
        """Area (m²) of the arterial face (:meth:`arterial_face`) under which the box holds tumour:
        the face points whose column through the box, normal to the face, meets ``ρ < 1`` (midpoint
        rule on n × n cells). For a box across a large tumour's surface, the tumour surface in the
        box seen from the liver side."""
        ax, _side = self.arterial_face()
        lo, hi = self._box()
        u, v = [k for k in range(3) if k != ax]
        g = (np.arange(n) + 0.5) / n
        gu, gv = np.meshgrid(lo[u] + g * (hi[u] - lo[u]), lo[v] + g * (hi[v] - lo[v]), indexing="ij")
        pts = np.empty((n * n, 3))
        # the point of each column nearest the tumour centre along the column (ρ is least there)
        pts[:, ax], pts[:, u], pts[:, v] = np.clip(self.center[ax], lo[ax], hi[ax]), gu.ravel(), gv.ravel()
        return float((self.rho(pts) < 1.0).mean() * (hi[u] - lo[u]) * (hi[v] - lo[v]))

    def tumour_surface_m2(self) -> float:
        """Surface area of the tumour ellipsoid (m²; Knud Thomsen's formula, within ~1 %)."""
        a, b, c = self.tumour_semi_axes_m
        p = 1.6075
        return 4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)

    def _lattice(self, a: float):
        n = np.maximum(2, np.rint(np.asarray(self.box_size_m) / a)).astype(int)
        return n, np.asarray(self.box_size_m) / n

    def _lattice_sv(self, a: float) -> float:
        n, h = self._lattice(a)
        j = self.sinusoid_jitter_fraction
        tau = 0.5 * sum(self.sinusoid_tortuosity_range) * (1 + 2 * j * j / 3)
        f = self.flow_axis
        surf = 0.0
        for ax in range(3):
            rows = np.prod(n) // n[ax]
            surf += 2 * math.pi * self.sinusoid_radius_m * tau * rows * (n[ax] - 1) * h[ax]
        # the portal and central venule stubs (half a cell each) at the ends of every row
        rows = np.prod(n) // n[f]
        surf += 2 * math.pi * (self.portal_venule_radius_m + self.central_venule_radius_m) * rows * 0.5 * h[f]
        return surf / float(np.prod(self.box_size_m))

    def lattice_spacing_m(self) -> float:
        """Nominal sinusoid lattice spacing (m) giving ``normal_sv_per_m`` in the box (before the
        lattice is fitted to whole numbers of cells per edge)."""
        j = self.sinusoid_jitter_fraction
        tau = 0.5 * sum(self.sinusoid_tortuosity_range) * (1 + 2 * j * j / 3)
        return math.sqrt(3 * 2 * math.pi * self.sinusoid_radius_m * tau / self.normal_sv_per_m)

    def fitted_lattice(self):
        """Cells per edge (3,) and spacing per axis (3,) (m) of the sinusoid lattice, chosen among
        spacings within ±40 % of :meth:`lattice_spacing_m` to match ``normal_sv_per_m`` best."""
        a0 = self.lattice_spacing_m()
        cands = a0 * np.linspace(0.6, 1.4, 161)
        err = [abs(self._lattice_sv(a) - self.normal_sv_per_m) for a in cands]
        return self._lattice(float(cands[int(np.argmin(err))]))


# ----------------------------------------------------------------------------------------------
def region_of_points(params: LiverTumourParams, pts_m: np.ndarray) -> np.ndarray:
    """Region code (0 normal, 1 rim, 2 core, 3 necrotic; :data:`REGION_NAMES`) of points (n, 3) in m."""
    r = params.rho(pts_m)
    out = np.zeros(r.shape, np.uint8)
    out[r < 1.0] = RIM
    out[r < params.rho_rim] = CORE
    if params.necrotic_fraction > 0:
        out[r < params.necrotic_fraction] = NECROTIC
    return out


def _seg_region_fractions(params, pos, seg, n_samples=8):
    """(m, 4) fraction of each segment's chord in each region, from n_samples points per chord."""
    t = (np.arange(n_samples) + 0.5) / n_samples
    p0, p1 = pos[seg[:, 0]], pos[seg[:, 1]]
    frac = np.zeros((len(seg), 4))
    for tk in t:
        reg = region_of_points(params, p0 + tk * (p1 - p0))
        frac[np.arange(len(seg)), reg] += 1.0 / n_samples
    return frac


def vessel_region_summary(network: VesselNetwork, params: LiverTumourParams, n_samples: int = 8) -> dict:
    """Per-region vessel length density, S/V, radius and tortuosity statistics.

    A segment's length and wall area are shared among the regions in proportion to the fraction
    of ``n_samples`` evenly spaced points on its chord lying in each region.

    Returns
    -------
    dict
        ``regions``: for each of ``normal``, ``rim``, ``core``, ``necrotic`` and ``tumour`` (rim +
        core, the viable tumour): ``volume_m3``, ``length_m``, ``length_density_m_per_m3``,
        ``surface_m2``, ``sv_per_m`` (Σ 2πrL / volume) and ``sv_per_m_by_wall`` (wall name → m⁻¹);
        ``by_wall``: for each wall type present: ``segments``, ``radius_mean_m``,
        ``radius_median_m``, ``radius_min_m``, ``radius_max_m``, ``diameter_p05_m``,
        ``diameter_p95_m``, ``tortuosity_mean``, ``tortuosity_min``, ``tortuosity_max``.
    """
    vols = params.region_volumes_m3()
    frac = _seg_region_fractions(params, network.node_pos_m, network.seg_nodes, n_samples)
    L, S = network.seg_length_m, network.seg_surface_m2()
    out = {"regions": {}, "by_wall": {}}
    walls = [w for w in WallType if (network.seg_wall == w).any()]
    for k, name in enumerate(REGION_NAMES + ("tumour",)):
        f = frac[:, RIM] + frac[:, CORE] if name == "tumour" else frac[:, k]
        vol = vols["rim"] + vols["core"] if name == "tumour" else vols[name]
        length, surf = float((f * L).sum()), float((f * S).sum())
        d = {"volume_m3": vol, "length_m": length, "surface_m2": surf,
             "length_density_m_per_m3": length / vol if vol > 0 else 0.0,
             "sv_per_m": surf / vol if vol > 0 else 0.0, "sv_per_m_by_wall": {}}
        for w in walls:
            sel = network.seg_wall == w
            d["sv_per_m_by_wall"][w.name.lower()] = float((f[sel] * S[sel]).sum()) / vol if vol > 0 else 0.0
        out["regions"][name] = d
    tort = L / network.chord_length_m()
    for w in walls:
        sel = network.seg_wall == w
        r = network.seg_radius_m[sel]
        out["by_wall"][w.name.lower()] = {
            "segments": int(sel.sum()), "radius_mean_m": float(r.mean()), "radius_median_m": float(np.median(r)),
            "radius_min_m": float(r.min()), "radius_max_m": float(r.max()),
            "diameter_p05_m": float(2 * np.percentile(r, 5)), "diameter_p95_m": float(2 * np.percentile(r, 95)),
            "tortuosity_mean": float(tort[sel].mean()), "tortuosity_min": float(tort[sel].min()),
            "tortuosity_max": float(tort[sel].max())}
    return out


# ----------------------------------------------------------------------------------------------
def poiseuille_flow(network: VesselNetwork, viscosity_pa_s: float = 3.5e-3, extra_rhs=None):
    """Poiseuille flow of a Newtonian fluid through the network (a linear reference solve).

    Segment conductance ``G = π r⁴ / (8 μ L)`` with L the centreline length; pressure boundary
    conditions fix node pressures, flow conditions inject volume (m³/s).

    Parameters
    ----------
    network : VesselNetwork
        Must pass ``validate(require_bc=True)``.
    viscosity_pa_s : float or (m,) array
        Dynamic viscosity (Pa·s), uniform or per segment.
    extra_rhs : list of (bc_value arrays), optional
        Further boundary-value vectors (same layout as ``network.bc_value``) solved with the same
        factorisation.

    Returns
    -------
    list of (node_pressure_pa, seg_flow_m3_per_s)
        One pair for ``network.bc_value`` and one per ``extra_rhs`` entry; segment flow is positive
        from ``seg_nodes[:, 0]`` to ``seg_nodes[:, 1]``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    n = network.n_nodes
    a, b = network.seg_nodes[:, 0], network.seg_nodes[:, 1]
    g = np.pi * network.seg_radius_m**4 / (8.0 * viscosity_pa_s * network.seg_length_m)
    A = coo_matrix((np.concatenate([g, g, -g, -g]), (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a]))),
                   shape=(n, n)).tocsr()
    is_p = network.bc_kind == BCKind.PRESSURE
    dn = network.bc_nodes[is_p]
    fixed = np.zeros(n, bool)
    fixed[dn] = True
    free = np.flatnonzero(~fixed)
    A_ff = A[free][:, free].tocsc()
    A_fd = A[free][:, dn]
    # scale rows/cols by the diagonal for a better-conditioned factorisation
    dscale = 1.0 / np.sqrt(A_ff.diagonal())
    from scipy.sparse import diags

    D = diags(dscale)
    # SuperLU with its default column ordering (COLAMD): ~0.05 s for 10³ nodes, ~0.5 s for 10⁴,
    # ~35–65 s for 1.2·10⁵ nodes (5 mm box) on one CPU core; symmetric orderings were slower here
    lu = splu((D @ A_ff @ D).tocsc())
    out = []
    for vals in [network.bc_value] + list(extra_rhs or []):
        vals = np.asarray(vals, float)
        p = np.zeros(n)
        p[dn] = vals[is_p]
        q = np.zeros(n)
        np.add.at(q, network.bc_nodes[~is_p], vals[~is_p])
        rhs = q[free] - A_fd @ vals[is_p]
        p[free] = dscale * lu.solve(dscale * rhs)
        out.append((p, g * (p[a] - p[b])))
    return out


def tumour_inflow_split(network: VesselNetwork, seg_flow_m3_per_s: np.ndarray) -> dict:
    """Blood entering the tumour network, split by the route it arrives through.

    An *entry node* is a node joined to at least one ``TUMOUR`` segment and at least one other
    segment. The flow into the tumour network there is ``F_v`` = the sum over its tumour segments
    of the flow leaving v through them (equal, by conservation, to the flow arriving through its
    non-tumour segments). Nodes with ``F_v > 0`` are inflows; each is attributed by the wall types
    of its non-tumour segments: ``ARTERY`` → arterial; else ``VEIN`` → venous (reverse flow from a
    draining venule); else portal (sinusoids, portal venules, capillaries).

    Parameters
    ----------
    network : VesselNetwork
    seg_flow_m3_per_s : (m,) array
        Segment flow, positive from ``seg_nodes[:, 0]`` to ``seg_nodes[:, 1]`` (m³/s).

    Returns
    -------
    dict
        ``arterial_m3_per_s``, ``portal_m3_per_s``, ``venous_m3_per_s``, ``total_m3_per_s`` and
        ``arterial_fraction`` (arterial / total; NaN when nothing enters).
    """
    F, cat = _entry_flows(network, np.asarray(seg_flow_m3_per_s, float))
    return _split_from(F, cat)


def _entry_flows(network, q):
    n = network.n_nodes
    a, b = network.seg_nodes[:, 0], network.seg_nodes[:, 1]
    t = network.seg_wall == WallType.TUMOUR
    F = np.bincount(a[t], q[t], minlength=n) - np.bincount(b[t], q[t], minlength=n)
    has_t = np.bincount(network.seg_nodes[t].ravel(), minlength=n) > 0
    nt = ~t
    has_nt = np.bincount(network.seg_nodes[nt].ravel(), minlength=n) > 0

    def touches(w):
        s = network.seg_wall == w
        return np.bincount(network.seg_nodes[s].ravel(), minlength=n) > 0

    entry = has_t & has_nt
    cat = np.full(n, -1, np.int8)  # 0 arterial, 1 portal, 2 venous
    cat[entry] = 1
    cat[entry & touches(WallType.VEIN)] = 2
    cat[entry & touches(WallType.ARTERY)] = 0
    return F, cat


def _split_from(F, cat):
    pos = np.where(F > 0, F, 0.0)
    art = float(pos[cat == 0].sum())
    por = float(pos[cat == 1].sum())
    ven = float(pos[cat == 2].sum())
    tot = art + por + ven
    return {"arterial_m3_per_s": art, "portal_m3_per_s": por, "venous_m3_per_s": ven, "total_m3_per_s": tot,
            "arterial_fraction": art / tot if tot > 0 else float("nan")}


# ----------------------------------------------------------------------------------------------
def _knn_edges(pts, k):
    if len(pts) < 2:
        return np.zeros((0, 2), np.int64)
    k = min(k, len(pts) - 1)
    _, idx = cKDTree(pts).query(pts, k=k + 1)
    i = np.repeat(np.arange(len(pts)), k)
    j = idx[:, 1:].reshape(-1)
    e = np.sort(np.stack([i, j], 1), axis=1)
    return np.unique(e, axis=0)


def _crosses_necrotic(params, p0, p1, n=6):
    if params.necrotic_fraction <= 0 or len(p0) == 0:
        return np.zeros(len(p0), bool)
    bad = np.zeros(len(p0), bool)
    for t in (np.arange(n) + 0.5) / n:
        bad |= params.rho(p0 + t * (p1 - p0)) < params.necrotic_fraction
    return bad


def _sample_shell(params, rng, count, rho_lo, rho_hi):
    """Points uniform within the ellipsoidal shell rho_lo ≤ ρ < rho_hi."""
    u = rng.standard_normal((count, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    r = (rho_lo**3 + rng.random(count) * (rho_hi**3 - rho_lo**3)) ** (1.0 / 3.0)
    return params.center + np.asarray(params.tumour_semi_axes_m) * (u * r[:, None])


def _tumour_points(params, rng, densities):
    if not params.whole_tumour:
        return _tumour_points_in_box(params, rng, densities)
    bounds = {RIM: (params.rho_rim, 1.0), CORE: (params.necrotic_fraction, params.rho_rim),
              NECROTIC: (0.0, params.necrotic_fraction)}
    vols = params.region_volumes_m3()
    pts = []
    for reg, name in ((RIM, "rim"), (CORE, "core"), (NECROTIC, "necrotic")):
        lam = densities[reg] * vols[name]
        cnt = int(rng.poisson(lam)) if lam > 0 else 0
        if cnt:
            pts.append(_sample_shell(params, rng, cnt, *bounds[reg]))
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def _tumour_points_in_box(params, rng, densities):
    """Points uniform in each region's part of the box (a sampled tumour): per region a Poisson
    number of uniform points in the box around the tumour's part of the box, kept where they
    fall in that region."""
    lo, hi = params._box()
    c, a = params.center, np.asarray(params.tumour_semi_axes_m)
    lo, hi = np.maximum(lo, c - a), np.minimum(hi, c + a)
    vol_bb = float(np.prod(hi - lo))
    vols = params.region_volumes_m3()
    pts = []
    for reg, name in ((RIM, "rim"), (CORE, "core"), (NECROTIC, "necrotic")):
        lam = densities[reg] * vol_bb
        cnt = int(rng.poisson(lam)) if lam > 0 and vols[name] > 0 else 0
        if cnt:
            p = lo + rng.random((cnt, 3)) * (hi - lo)
            pts.append(p[region_of_points(params, p) == reg])
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def _tumour_graph(params, rng, densities):
    pts = _tumour_points(params, rng, densities)
    e = _knn_edges(pts, params.tumour_neighbours)
    if params.tumour_necrotic_sv_per_m == 0 and len(e):
        e = e[~_crosses_necrotic(params, pts[e[:, 0]], pts[e[:, 1]])]
    return pts, e


def _tumour_network(params, rng_pass1, rng_pass2):
    """Tumour points and edges with per-region densities calibrated in two passes."""
    tau = 0.5 * sum(params.tumour_tortuosity_range)
    r_mean = 0.5 * params.tumour_diameter_mean_m
    vols = params.region_volumes_m3()
    target_chord = {RIM: params.tumour_rim_sv_per_m, CORE: params.tumour_core_sv_per_m,
                    NECROTIC: params.tumour_necrotic_sv_per_m}
    target_chord = {k: v / (2 * math.pi * r_mean * tau) for k, v in target_chord.items()}  # chord m per m³
    # first guess: union-of-kNN graph, ~1.4 edges per node of mean length ~0.75 n^(-1/3)
    dens = {k: (v / 1.05) ** 1.5 for k, v in target_chord.items()}
    pts, e = _tumour_graph(params, rng_pass1, dens)
    if len(e):
        frac = _seg_region_fractions(params, pts, e)
        chord = np.linalg.norm(pts[e[:, 1]] - pts[e[:, 0]], axis=1)
        for reg, name in ((RIM, "rim"), (CORE, "core"), (NECROTIC, "necrotic")):
            got = (frac[:, reg] * chord).sum() / vols[name] if vols[name] > 0 else 0.0
            if got > 0 and target_chord[reg] > 0:
                dens[reg] *= min(8.0, max(0.125, (target_chord[reg] / got) ** 1.5))
    return _tumour_graph(params, rng_pass2, dens)


def _components(n, e):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(e) == 0:
        return np.arange(n)
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _bridge_components(params, pts, e):
    """Join each tumour piece to the largest by its shortest edge (not through the necrotic
    core); drop pieces that cannot be joined. Returns kept-point mask and edges."""
    n = len(pts)
    keep = np.ones(n, bool)
    if n == 0:
        return keep, e
    comp = _components(n, e)
    sizes = np.bincount(comp)
    main = int(np.argmax(sizes))
    main_idx = np.flatnonzero(comp == main)
    tree = cKDTree(pts[main_idx])
    new = []
    order = np.argsort(comp, kind="stable")
    bounds = np.searchsorted(comp[order], np.arange(len(sizes) + 1))
    for c in range(len(sizes)):
        if c == main:
            continue
        members = order[bounds[c]:bounds[c + 1]]
        d, j = tree.query(pts[members])
        k = int(np.argmin(d))
        a, b = members[k], main_idx[j[k]]
        through_core = params.tumour_necrotic_sv_per_m == 0 and \
            _crosses_necrotic(params, pts[a][None], pts[b][None])[0]
        if d[k] > 0 and not through_core:
            new.append((min(a, b), max(a, b)))
        else:
            keep[members] = False
    if new:
        e = np.concatenate([e, np.asarray(new, np.int64)]) if len(e) else np.asarray(new, np.int64)
    return keep, e


def _shell_point(params, u, rho=_SHELL_RHO):
    return params.center + np.asarray(params.tumour_semi_axes_m) * (rho * u)


def _unit(v, fallback):
    n = np.linalg.norm(v)
    return v / n if n > 1e-12 else fallback


def _outer_nodes(params, tpts, rho_t, face):
    """Mask of viable tumour nodes in the rim or within ``rim_thickness_m`` of the arterial
    ``face`` (axis, side): where a sampled tumour's arteries end and its draining venules start."""
    ax, side = face
    lo, hi = params._box()
    by_face = np.abs(tpts[:, ax] - (hi[ax] if side else lo[ax])) <= params.rim_thickness_m
    viable = (rho_t < 1.0) & (rho_t >= params.necrotic_fraction)
    return viable & ((rho_t >= params.rho_rim) | by_face)


def _bisection(term_pos, term_node, segs, nbelow, node, state, grow):
    """Recursive bisection of the terminals below the branch ``node``: each group is split at the
    median along its principal axis; a single terminal is joined straight to its branch node, a
    larger group through ``grow(node, state, group) -> (child, child_state)``, which allocates the
    child branch node and adds the vessels to it. Appends to ``segs`` and ``nbelow``."""
    stack = [(node, state, np.arange(len(term_pos)))]
    while stack:
        node, state, grp = stack.pop()
        if len(grp) == 1:
            segs.append((node, int(term_node[grp[0]])))
            nbelow.append(1)
            continue
        x = term_pos[grp] - term_pos[grp].mean(axis=0)
        ax = np.linalg.eigh(x.T @ x)[1][:, -1]
        order = np.argsort(x @ ax, kind="stable")
        half = len(grp) // 2
        for sub in (grp[order[:half]], grp[order[half:]]):
            if len(sub) == 1:
                segs.append((node, int(term_node[sub[0]])))
                nbelow.append(1)
                continue
            child, child_state = grow(node, state, sub)
            stack.append((child, child_state, sub))


def _arterial_tree_planar(params, inlet, term_pos, term_node, new_node, face, n_tumour):
    """Recursive-bisection tree of a sampled tumour, from ``inlet`` on the arterial ``face``
    (axis, side). Branch points lie on a plane parallel to the face, at the projection of the mean
    position of their terminals; the last vessels dive to the terminals. The plane lies
    ``δ = rim_thickness_m / 2`` beyond the tumour terminal nearest the face (the first
    ``n_tumour`` terminals are tumour nodes), so that the arteries run just outside the tumour
    surface, but at least ``min(δ, a quarter of the box edge)`` inside the box. Same interface as
    :func:`_arterial_tree`."""
    ax, side = face
    lo, hi = params._box()
    delta = 0.5 * params.rim_thickness_m
    face_x = hi[ax] if side else lo[ax]
    d_term = float(np.abs(term_pos[:n_tumour, ax] - face_x).min()) if n_tumour else 0.0
    depth = max(min(delta, 0.25 * float(hi[ax] - lo[ax])), d_term - delta)
    plane = face_x - depth if side else face_x + depth

    def on_plane(p):
        q = np.array(p, float)
        q[ax] = plane
        return q

    segs, nbelow = [], []

    def grow(node, npos, sub):
        mean = term_pos[sub].mean(axis=0)
        pos = on_plane(mean)
        if np.linalg.norm(pos - npos) < 1e-6:
            pos = npos + 0.3 * (mean - npos)
        child = new_node(pos)
        segs.append((node, child))
        nbelow.append(len(sub))
        return child, pos

    root = new_node(np.asarray(inlet, float))
    b0_pos = on_plane(term_pos.mean(axis=0))
    b0 = new_node(b0_pos)
    segs.append((root, b0))
    nbelow.append(len(term_pos))
    _bisection(term_pos, term_node, segs, nbelow, b0, b0_pos, grow)
    return segs, nbelow


def _arterial_tree(params, inlet, term_pos, term_node, new_node, n_tumour):
    """Recursive-bisection tree from ``inlet`` to the terminals.

    ``new_node(pos)`` allocates a node and returns its index; ``term_node[i]`` is the existing
    node of terminal i, the first ``n_tumour`` of them tumour nodes. A branch point lies on the
    shell ``ρ = arterial_branch_rho`` if it feeds a tumour terminal, else on ``ρ = 1.05``.
    Returns (segments list of (a, b), n_terminals_below per segment).
    """
    axes = np.asarray(params.tumour_semi_axes_m)
    c = params.center
    q = (term_pos - c) / axes
    dirs = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-300)
    rho_feed = float(params.arterial_branch_rho)
    segs, nbelow = [], []

    def arc(a_node, a_dir, a_rho, b_node, b_dir, b_rho, count):
        ang = math.acos(float(np.clip(a_dir @ b_dir, -1.0, 1.0)))
        pieces = max(1, math.ceil(ang / _MAX_ARC_RAD))
        prev = a_node
        for k in range(1, pieces):
            t = k / pieces
            u = _unit((1 - t) * a_dir + t * b_dir, a_dir)
            mid = new_node(_shell_point(params, u, a_rho if a_rho == b_rho else (1 - t) * a_rho + t * b_rho))
            segs.append((prev, mid))
            nbelow.append(count)
            prev = mid
        segs.append((prev, b_node))
        nbelow.append(count)

    def grow(node, state, sub):
        udir, npos, nrho = state
        rho = rho_feed if (sub < n_tumour).any() else _SHELL_RHO
        u = _unit(dirs[sub].mean(axis=0), udir)
        pos = _shell_point(params, u, rho)
        if np.linalg.norm(pos - npos) < 1e-6:
            pos = npos + 0.3 * (term_pos[sub].mean(axis=0) - npos)
            u = _unit((pos - c) / axes, udir)
            child = new_node(pos)
            segs.append((node, child))
            nbelow.append(len(sub))
        else:
            child = new_node(pos)
            arc(node, udir, nrho, child, u, rho, len(sub))
        return child, (u, pos, rho)

    root = new_node(np.asarray(inlet, float))
    u0 = _unit((np.asarray(inlet) - c) / axes, np.array([-1.0, 0, 0]))
    rho0 = rho_feed if n_tumour else _SHELL_RHO
    b0_pos = _shell_point(params, u0, rho0)
    b0 = new_node(b0_pos)
    segs.append((root, b0))
    nbelow.append(len(term_pos))
    _bisection(term_pos, term_node, segs, nbelow, b0, (u0, b0_pos, rho0), grow)
    return segs, nbelow


# ----------------------------------------------------------------------------------------------
def generate_liver_tumour(params: LiverTumourParams | None = None, seed: int = 0) -> VesselNetwork:
    """A liver-tumour vessel network (see the module docstring for the algorithm).

    Parameters
    ----------
    params : LiverTumourParams, optional
        Geometry, densities, radii and boundary conditions; defaults: a 1 mm box with a 400 µm
        tumour. A tumour larger than the box, or centred outside it, is sampled (module docstring,
        "Whole and sampled tumours").
    seed : int
        Seed of the random streams; the same parameters and seed give the identical network.

    Returns
    -------
    VesselNetwork
        Passes ``validate(require_bc=True)``. ``meta`` holds the generator name, the parameters,
        the seed, the realised arterial tree (``arterial_root_radius_m``,
        ``arterial_terminal_radius_m``, terminal counts) and the calibration result; for a sampled
        tumour also ``sampled_tumour`` (arterial face, lattice ``flow_axis``, region volumes in
        the box, footprint area).
    """
    if params is None:
        params = LiverTumourParams()
    if not isinstance(params, LiverTumourParams):
        raise TypeError(f"params must be a LiverTumourParams, got {type(params).__name__}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed = {seed!r}: give a non-negative integer")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(8)]
    r_lat, r_t1, r_t2, r_trad, r_term, r_tort, r_pore, r_vein = streams
    P = params
    origin = np.asarray(P.box_origin_m, float)
    size = np.asarray(P.box_size_m, float)
    f = P.flow_axis

    pos_list: list[np.ndarray] = []  # blocks of node positions
    n_nodes = 0

    def add_nodes(p):
        nonlocal n_nodes
        p = np.atleast_2d(np.asarray(p, float))
        pos_list.append(p)
        start = n_nodes
        n_nodes += len(p)
        return np.arange(start, n_nodes)

    seg_blocks = []  # (edges (k,2), radius (k,), wall code, tortuosity range)

    # ---- 1. sinusoid lattice ------------------------------------------------------------------
    ncell, h = P.fitted_lattice()
    idx = np.stack(np.meshgrid(*[np.arange(k) for k in ncell], indexing="ij"), -1).reshape(-1, 3)
    lat = origin + (idx + 0.5) * h + (r_lat.random((len(idx), 3)) * 2 - 1) * P.sinusoid_jitter_fraction * h
    lin = np.ravel_multi_index(idx.T, ncell)
    edges = []
    for ax in range(3):
        sel = idx[:, ax] < ncell[ax] - 1
        nb = idx[sel].copy()
        nb[:, ax] += 1
        edges.append(np.stack([lin[sel], np.ravel_multi_index(nb.T, ncell)], 1))
    lat_e = np.concatenate(edges)
    inside = P.rho(lat) < 1.0
    mid_in = P.rho(0.5 * (lat[lat_e[:, 0]] + lat[lat_e[:, 1]])) < 1.0
    cut = inside[lat_e[:, 0]] | inside[lat_e[:, 1]] | mid_in
    cut_nodes = np.unique(lat_e[cut].ravel())
    cut_nodes = cut_nodes[~inside[cut_nodes]]
    lat_e = lat_e[~cut]
    lat_ids = add_nodes(lat)  # all lattice nodes (inside ones become isolated and are dropped)
    seg_blocks.append((lat_ids[lat_e], np.full(len(lat_e), P.sinusoid_radius_m), WallType.SINUSOID,
                       P.sinusoid_tortuosity_range))
    # portal inlet and central outlet stubs
    first = np.flatnonzero((idx[:, f] == 0) & ~inside)
    last = np.flatnonzero((idx[:, f] == ncell[f] - 1) & ~inside)
    pin = lat[first].copy()
    pin[:, f] = origin[f]
    pout = lat[last].copy()
    pout[:, f] = origin[f] + size[f]
    pin_ids, pout_ids = add_nodes(pin), add_nodes(pout)
    seg_blocks.append((np.stack([pin_ids, lat_ids[first]], 1), np.full(len(first), P.portal_venule_radius_m),
                       WallType.PORTAL, (1.0, 1.0)))
    seg_blocks.append((np.stack([lat_ids[last], pout_ids], 1), np.full(len(last), P.central_venule_radius_m),
                       WallType.VEIN, (1.0, 1.0)))

    # ---- 2. tumour network -------------------------------------------------------------------
    tpts, te = _tumour_network(P, r_t1, r_t2)
    keep, te = _bridge_components(P, tpts, te)
    tum_ids = add_nodes(tpts) if len(tpts) else np.zeros(0, np.int64)
    if len(te):
        te = te[keep[te[:, 0]] & keep[te[:, 1]]]
        d = np.exp(np.log(P.tumour_diameter_mean_m) - 0.5 * P.tumour_diameter_log_sd**2
                   + P.tumour_diameter_log_sd * r_trad.standard_normal(len(te)))
        seg_blocks.append((tum_ids[te], 0.5 * d, WallType.TUMOUR, P.tumour_tortuosity_range))
    tdeg = np.bincount(te.ravel(), minlength=len(tpts)) if len(te) else np.zeros(len(tpts), int)
    usable = keep & (tdeg > 0)
    used_t = ~usable  # tumour nodes not available for connections
    usable_idx = np.flatnonzero(usable)
    if usable_idx.size == 0:
        raise ValueError("the tumour network is empty: raise tumour_rim_sv_per_m or the tumour size "
                         "(tumour_semi_axes_m)")
    # sinusoid connections at the tumour margin
    ttree = cKDTree(tpts[usable_idx])
    if len(cut_nodes):
        _, j = ttree.query(lat[cut_nodes])
        tgt = usable_idx[j]
        seg_blocks.append((np.stack([lat_ids[cut_nodes], tum_ids[tgt]], 1),
                           np.full(len(cut_nodes), P.sinusoid_radius_m), WallType.SINUSOID,
                           P.sinusoid_tortuosity_range))
        used_t[tgt] = True
    rho_t = P.rho(tpts)
    whole = P.whole_tumour
    if whole:  # draining venules from rim nodes on the outflow side
        qn = (tpts - P.center) / np.asarray(P.tumour_semi_axes_m)
        cand = np.flatnonzero(~used_t & (rho_t >= max(P.rho_rim, 0.85))
                              & (qn[:, f] / np.maximum(rho_t, 1e-300) > 0.5))
        n_vein = max(1, round(P.tumour_drain_veins_per_m2 * P.tumour_surface_m2()))
        n_vein = min(n_vein, len(cand))
        if n_vein:
            vsel = np.sort(r_vein.choice(cand, size=n_vein, replace=False))
            vout = tpts[vsel].copy()
            vout[:, f] = origin[f] + size[f]
    else:  # draining venules from outer tumour nodes straight to the arterial (liver-side) face
        art_face = P.arterial_face()
        outer = _outer_nodes(P, tpts, rho_t, art_face)
        cand = np.flatnonzero(~used_t & outer)
        n_vein = min(max(1, round(P.tumour_drain_veins_per_m2 * P.footprint_area_m2())), len(cand))
        if n_vein:
            vsel = np.sort(r_vein.choice(cand, size=n_vein, replace=False))
            vout = tpts[vsel].copy()
            vout[:, art_face[0]] = origin[art_face[0]] + art_face[1] * size[art_face[0]]
    if n_vein:
        vout_ids = add_nodes(vout)
        seg_blocks.append((np.stack([tum_ids[vsel], vout_ids], 1), np.full(n_vein, P.tumour_drain_vein_radius_m),
                           WallType.VEIN, (1.0, 1.0)))
        used_t[vsel] = True
    else:
        vout_ids = np.zeros(0, np.int64)

    # ---- 3. arterial tree --------------------------------------------------------------------
    vols = P.region_volumes_m3()
    n_tt = max(1, round(P.arterial_terminals_per_m3 * (vols["rim"] + vols["core"])))
    if whole:
        cand = np.flatnonzero(~used_t & (rho_t >= P.rho_rim))
    else:  # free viable nodes in the rim or within a rim thickness of the arterial face
        cand = np.flatnonzero(~used_t & outer)
    n_tt = min(n_tt, len(cand))
    if n_tt == 0:
        raise ValueError("no tumour rim node is free for an arterial terminal: raise tumour_rim_sv_per_m or "
                         "rim_thickness_m" + ("" if whole else " (or move the box so that it holds more viable "
                                              "tumour next to the tumour surface)"))
    tsel = np.sort(r_term.choice(cand, size=n_tt, replace=False))
    f_n = P.arterial_normal_terminal_fraction
    n_nt = round(n_tt * f_n / (1 - f_n))
    lat_rho = P.rho(lat)
    is_cut = np.zeros(len(lat), bool)
    is_cut[cut_nodes] = True
    near = 1.0 + 2.0 * float(h.max()) / min(P.tumour_semi_axes_m)
    ncand = np.flatnonzero(~inside & ~is_cut & (lat_rho < near) & (lat_rho > (_SHELL_RHO if whole else 1.0)))
    n_nt = min(n_nt, len(ncand))
    nsel = np.sort(r_term.choice(ncand, size=n_nt, replace=False)) if n_nt else np.zeros(0, np.int64)
    term_pos = np.concatenate([tpts[tsel], lat[nsel]])
    term_node = np.concatenate([tum_ids[tsel], lat_ids[nsel]])
    inlet = np.asarray(P.arterial_inlet_m, float) if P.arterial_inlet_m is not None else None
    if inlet is None:
        inlet = origin + 0.5 * size
        if whole:
            inlet[f] = origin[f]
        else:  # the centre of the arterial face
            inlet[art_face[0]] = origin[art_face[0]] + art_face[1] * size[art_face[0]]
    tree_pos = []

    def new_node(p):
        tree_pos.append(np.asarray(p, float))
        return n_nodes + len(tree_pos) - 1

    if whole:
        asegs, nbelow = _arterial_tree(P, inlet, term_pos, term_node, new_node, n_tt)
    else:
        asegs, nbelow = _arterial_tree_planar(P, inlet, term_pos, term_node, new_node, art_face, n_tt)
    tree_ids = add_nodes(np.asarray(tree_pos))
    root_node = int(tree_ids[0])
    gamma = P.murray_exponent
    nb = np.asarray(nbelow, float)
    r_term_m = P.arterial_terminal_radius_m
    if P.arterial_root_radius_m is not None:
        r_term_m = P.arterial_root_radius_m / len(term_pos) ** (1.0 / gamma)
    seg_blocks.append((np.asarray(asegs, np.int64), r_term_m * nb ** (1.0 / gamma), WallType.ARTERY,
                       P.arterial_tortuosity_range))

    # ---- assemble ------------------------------------------------------------------------------
    pos = np.concatenate(pos_list)
    seg = np.concatenate([b[0] for b in seg_blocks]).astype(np.int64)
    rad = np.concatenate([b[1] for b in seg_blocks])
    wall = np.concatenate([np.full(len(b[0]), b[2], np.uint8) for b in seg_blocks])
    tau = np.concatenate([r_tort.uniform(b[3][0], b[3][1], len(b[0])) for b in seg_blocks])
    chord = np.linalg.norm(pos[seg[:, 1]] - pos[seg[:, 0]], axis=1)
    if (chord <= 0).any():  # coincident nodes: cannot happen for distinct random points; guard anyway
        ok = chord > 0
        seg, rad, wall, tau, chord = seg[ok], rad[ok], wall[ok], tau[ok], chord[ok]
    pore = np.zeros(len(seg))
    pore[wall == WallType.SINUSOID] = P.sinusoid_pore_radius_m
    tsel_w = wall == WallType.TUMOUR
    lo, hi = P.tumour_pore_radius_range_m
    pore[tsel_w] = np.exp(r_pore.uniform(math.log(lo), math.log(hi), int(tsel_w.sum())))

    bc_nodes = np.concatenate([pin_ids, pout_ids, vout_ids, [root_node]]).astype(np.int64)
    bc_val = np.concatenate([np.full(len(pin_ids), P.portal_inlet_pressure_pa),
                             np.full(len(pout_ids) + len(vout_ids), P.central_outlet_pressure_pa),
                             [P.arterial_inlet_pressure_pa]])
    # drop pieces without a pressure condition, and unused nodes
    comp = _components(len(pos), seg)
    good = np.zeros(comp.max() + 1, bool)
    good[comp[bc_nodes]] = True
    seg_ok = good[comp[seg[:, 0]]]
    seg, rad, wall, tau, chord, pore = seg[seg_ok], rad[seg_ok], wall[seg_ok], tau[seg_ok], chord[seg_ok], pore[seg_ok]
    used = np.zeros(len(pos), bool)
    used[seg.ravel()] = True
    bc_keep = used[bc_nodes]
    if not bc_keep[-1]:
        raise ValueError("the arterial inlet is not connected (internal error: please report the parameters)")
    remap = np.full(len(pos), -1, np.int64)
    remap[used] = np.arange(int(used.sum()))
    bc_nodes, bc_val = remap[bc_nodes[bc_keep]], bc_val[bc_keep]
    meta = {"generator": "nanosim.vasculature.generate.generate_liver_tumour", "seed": int(seed),
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(P).items()},
            "arterial_root_radius_m": float(r_term_m * len(term_pos) ** (1.0 / gamma)),
            "arterial_terminal_radius_m": float(r_term_m), "arterial_terminals_tumour": int(n_tt),
            "arterial_terminals_normal": int(n_nt), "sinusoid_spacing_m": h.tolist(),
            "tumour_drain_veins": len(vout_ids)}
    if not whole:
        meta["sampled_tumour"] = {
            "arterial_face": "xyz"[art_face[0]] + (" high" if art_face[1] else " low"), "flow_axis": int(f),
            "region_volumes_m3": vols, "footprint_area_m2": P.footprint_area_m2()}
    net = VesselNetwork(node_pos_m=pos[used], seg_nodes=remap[seg], seg_radius_m=rad, seg_length_m=chord * tau,
                        seg_wall=wall, seg_pore_radius_m=pore, bc_nodes=bc_nodes,
                        bc_kind=np.full(len(bc_nodes), BCKind.PRESSURE, np.uint8), bc_value=bc_val,
                        bc_haematocrit=np.full(len(bc_nodes), P.haematocrit), meta=meta)
    if P.calibrate_arterial_pressure:
        net = _calibrate(net, P)
    net.validate(require_bc=True)
    return net


def _calibrate(net: VesselNetwork, P: LiverTumourParams) -> VesselNetwork:
    """Set the arterial inlet pressure so the arterial fraction of tumour inflow meets the target
    under Newtonian Poiseuille flow (flows are affine in that pressure). Without a portal entry
    into the tumour (a sampled tumour with no liver beside it in the box) the fraction is 1 at
    every pressure: the inlet keeps ``arterial_inlet_pressure_pa`` and the status says so."""
    ia = len(net.bc_nodes) - 1  # the arterial inlet is the last condition
    v0 = net.bc_value.copy()
    v0[ia] = 0.0
    v1 = np.zeros_like(v0)
    v1[ia] = 1.0
    law = P.calibration_viscosity
    mu = P.calibration_viscosity_pa_s
    if law != "uniform":
        try:
            from nanosim.flow import viscosity as _visc
        except ImportError:  # the flow package is optional for generation
            law = "uniform"
        else:
            fn = _visc.pries_in_vivo_relative_viscosity if law == "in_vivo" else \
                _visc.pries_in_vitro_relative_viscosity
            mu = _visc.PLASMA_VISCOSITY_PA_S * fn(2.0 * net.seg_radius_m, np.full(net.n_segments, P.haematocrit))
    (_, q0), (_, q1) = poiseuille_flow(net.with_(bc_value=v0), mu, extra_rhs=[v1])
    # q1 is the response to a unit arterial pressure with all other boundary values zero
    F0, cat = _entry_flows(net, q0)
    F1, _ = _entry_flows(net, q1)
    target = P.arterial_fraction_of_tumour_inflow
    if not (cat == 1).any():
        # no portal route into the tumour (a sampled tumour whose box holds no liver next to it):
        # the arterial fraction is 1 at any pressure above the venous one; nothing to calibrate
        pa = P.arterial_inlet_pressure_pa
        split = _split_from(F0 + pa * F1, cat)
        meta = dict(net.meta)
        meta["calibration"] = {"arterial_inlet_pressure_pa": float(pa), "arterial_fraction": split["arterial_fraction"],
                               "target": float(target), "status": "not applicable: no portal route into the tumour "
                               "in the box; arterial_inlet_pressure_pa kept", "viscosity": law,
                               "haematocrit": float(P.haematocrit), "tumour_inflow_m3_per_s": split["total_m3_per_s"]}
        return net.with_(meta=meta)

    def frac(pa):
        return _split_from(F0 + pa * F1, cat)["arterial_fraction"]

    lo, hi = P.arterial_pressure_range_pa
    f_lo, f_hi = frac(lo), frac(hi)
    status = "ok"
    if not f_lo < target:
        pa, status = lo, "target below the fraction at the lowest pressure of arterial_pressure_range_pa"
    elif not f_hi > target:
        pa, status = hi, "target above the fraction at the highest pressure of arterial_pressure_range_pa"
    else:
        a, b = lo, hi
        for _ in range(100):
            m = 0.5 * (a + b)
            if frac(m) < target:
                a = m
            else:
                b = m
            if b - a < 1e-9 * hi:
                break
        pa = 0.5 * (a + b)
    achieved = frac(pa)
    if status != "ok":
        warnings.warn(f"arterial_fraction_of_tumour_inflow = {target}: {status}; using {pa / MMHG_PA:.3g} mmHg, "
                      f"which gives {achieved:.3f}. Widen arterial_pressure_range_pa or change the tumour "
                      "connectivity (arterial_terminals_per_m3, sinusoid_radius_m)", stacklevel=3)
    vals = net.bc_value.copy()
    vals[ia] = pa
    split = _split_from(F0 + pa * F1, cat)
    meta = dict(net.meta)
    meta["calibration"] = {"arterial_inlet_pressure_pa": float(pa), "arterial_fraction": float(achieved),
                           "target": float(target), "status": status,
                           "viscosity": law, "haematocrit": float(P.haematocrit),
                           "tumour_inflow_m3_per_s": split["total_m3_per_s"]}
    return net.with_(bc_value=vals, meta=meta)
