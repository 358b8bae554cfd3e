r"""Steady interstitial fluid pressure and Darcy velocity in tissue (Baxter & Jain 1989).

Fluid leaves the blood vessels through their walls (Starling's law, flux per wall area
:math:`J_v/S = L_p[(p_v - p_i) - \sigma_T(\pi_v - \pi_i)]`), moves through the interstitium by
Darcy's law :math:`u = -K\nabla p_i`, and is drained by lymphatics in normal tissue (none in
tumour). At steady state

.. math::

    -\nabla\cdot(K\nabla p_i) + \Big(L_p\tfrac{S}{V} + L_{pL}\tfrac{S_L}{V}\Big)\,p_i
        = L_p\tfrac{S}{V}\big[p_v - \sigma_T(\pi_v - \pi_i)\big] + L_{pL}\tfrac{S_L}{V}\,p_L .

Discretisation
--------------
Cell-centred finite volumes on the voxel grid with the 7-point stencil: the flux through the
face between two voxels is ``K_f (p_a − p_b)/h · h²`` with ``K_f`` the harmonic mean of the two
voxels' conductivities; the vessel and lymphatic terms are linear in ``p`` and go on the
diagonal. Voxels held at a fixed pressure (``dirichlet`` mask, the outside of
``sphere_boundary``) are eliminated, so the matrix over the free voxels is symmetric positive
definite; it is stored in CSR form and solved by conjugate gradients with a Jacobi
(diagonal) preconditioner, on the CPU (NumPy/SciPy) or the GPU (CuPy).

Box walls are either no-flux or held at ``dirichlet_value_pa`` (mirror ghost: the wall is half a
voxel from the centre, flux ``2 K_i (p_i − v)/h · h²``). ``sphere_boundary`` holds the pressure
on an exact sphere: a face whose segment between the two centres crosses the sphere at the
fraction ``θ`` of ``h`` from the inside voxel carries ``K_i (p_i − v)/(θ h) · h²`` (the symmetric
Shortley–Weller-type treatment of Gibou, Fedkiw, Cheng & Kang 2002, J. Comput. Phys. 176:205),
which keeps the solution second-order accurate instead of limited by the voxel staircase.

Because every boundary and internal flux is one of the scheme's face fluxes, the global fluid
balance (in through vessel walls = out through held boundaries + lymphatic drainage) closes to
the linear-solver tolerance.

Parameters and sources
----------------------
Baxter LT, Jain RK (1989) Transport of fluid and macromolecules in tumors. I. Role of
interstitial pressure and convection. Microvasc Res 37:77–104 (tumour and normal-tissue
parameters, Table 1). Stohrer M et al. (2000) Oncotic pressure in solid tumors is elevated.
Cancer Res 60:4251–4255 (plasma and interstitial oncotic pressures). Values marked
*unconfirmed* were not checked against the primary source here; they are defaults to override.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..geometry.grid import Grid
from ..geometry.tissue import NECROTIC, NORMAL, REGION_NAMES, TUMOUR

__all__ = [
    "MMHG_PA",
    "RegionFluidProperties",
    "VascularFluidProperties",
    "default_region_properties",
    "InterstitialSolution",
    "InterstitialSolveError",
    "solve_interstitial_pressure",
    "baxter_jain_sphere_pressure",
    "baxter_jain_sphere_surface_velocity",
    "interstitial_benchmark_case",
]

#: One millimetre of mercury in pascal (conventional value, 133.322 387 Pa).
MMHG_PA = 133.322387415

_CM = 1e-2


def _lp_from_cgs(v_cm_per_mmhg_s: float) -> float:
    """Vessel-wall hydraulic conductivity: cm/(mmHg·s) → m/(Pa·s)."""
    return v_cm_per_mmhg_s * _CM / MMHG_PA


def _k_from_cgs(v_cm2_per_mmhg_s: float) -> float:
    """Interstitial hydraulic conductivity: cm²/(mmHg·s) → m²/(Pa·s)."""
    return v_cm2_per_mmhg_s * _CM**2 / MMHG_PA


class InterstitialSolveError(RuntimeError):
    """The interstitial pressure problem is ill-posed or its linear solve did not converge."""


@dataclass(frozen=True)
class RegionFluidProperties:
    """Fluid properties of one tissue region (SI units).

    Attributes
    ----------
    hydraulic_conductivity_m2_per_pa_s : float
        Interstitial hydraulic conductivity ``K`` of Darcy's law ``u = −K ∇p``, m²/(Pa·s).
    lp_m_per_pa_s : float
        Vessel-wall hydraulic conductivity ``L_p`` of Starling's law, m/(Pa·s).
    sigma_osmotic : float
        Osmotic reflection coefficient ``σ_T`` of the vessel wall to plasma proteins (–).
    pi_interstitial_pa : float
        Interstitial oncotic pressure ``π_i``, Pa.
    lymphatic_coefficient_per_pa_s : float
        Lymphatic drainage coefficient ``L_pL S_L/V``, 1/(Pa·s); 0 where there are no functional
        lymphatics (tumours).
    lymph_pressure_pa : float
        Lymphatic lumen pressure ``p_L``, Pa.
    name : str
        Label used in messages.
    """

    hydraulic_conductivity_m2_per_pa_s: float
    lp_m_per_pa_s: float
    sigma_osmotic: float
    pi_interstitial_pa: float
    lymphatic_coefficient_per_pa_s: float = 0.0
    lymph_pressure_pa: float = 0.0
    name: str = ""

    def __post_init__(self):
        for f in ("hydraulic_conductivity_m2_per_pa_s", "lp_m_per_pa_s", "lymphatic_coefficient_per_pa_s"):
            v = getattr(self, f)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"RegionFluidProperties{f' ({self.name})' if self.name else ''}: {f} = {v!r} "
                                 "must be a finite number ≥ 0 (SI units)")
        if not (0.0 <= self.sigma_osmotic <= 1.0):
            raise ValueError(f"RegionFluidProperties{f' ({self.name})' if self.name else ''}: sigma_osmotic = "
                             f"{self.sigma_osmotic!r} must lie in [0, 1]")

    @classmethod
    def tumour(cls) -> "RegionFluidProperties":
        """Tumour interstitium (Baxter & Jain 1989, Table 1).

        ``K = 4.13×10⁻⁸ cm²/(mmHg·s)`` (3.10×10⁻¹⁴ m²/(Pa·s)); ``L_p = 2.8×10⁻⁷ cm/(mmHg·s)``
        (2.10×10⁻¹¹ m/(Pa·s)); ``σ_T = 0.82``; ``π_i = 15 mmHg`` (Baxter & Jain 1989; Stohrer et
        al. 2000 measured 16.7–24.2 mmHg in tumours); no functional lymphatics.
        """
        return cls(hydraulic_conductivity_m2_per_pa_s=_k_from_cgs(4.13e-8),
                   lp_m_per_pa_s=_lp_from_cgs(2.8e-7), sigma_osmotic=0.82,
                   pi_interstitial_pa=15.0 * MMHG_PA, lymphatic_coefficient_per_pa_s=0.0,
                   lymph_pressure_pa=0.0, name="tumour")

    @classmethod
    def normal(cls) -> "RegionFluidProperties":
        """Normal tissue (Baxter & Jain 1989, Table 1; several values unconfirmed).

        ``K = 8.53×10⁻⁹ cm²/(mmHg·s)`` (6.40×10⁻¹⁵ m²/(Pa·s), *unconfirmed*);
        ``L_p = 0.36×10⁻⁷ cm/(mmHg·s)`` (2.70×10⁻¹² m/(Pa·s)); ``σ_T = 0.91``;
        ``π_i = 10 mmHg`` (Stohrer et al. 2000 measured 8.2 ± 2.3 mmHg in subcutis);
        lymphatic drainage ``L_pL S_L/V = 1.33×10⁻⁵ (mmHg·s)⁻¹`` (9.98×10⁻⁸ (Pa·s)⁻¹) with
        ``p_L = 0`` (*unconfirmed*).
        """
        return cls(hydraulic_conductivity_m2_per_pa_s=_k_from_cgs(8.53e-9),
                   lp_m_per_pa_s=_lp_from_cgs(0.36e-7), sigma_osmotic=0.91,
                   pi_interstitial_pa=10.0 * MMHG_PA,
                   lymphatic_coefficient_per_pa_s=1.33e-5 / MMHG_PA, lymph_pressure_pa=0.0,
                   name="normal")

    @classmethod
    def necrotic(cls) -> "RegionFluidProperties":
        """Necrotic core: tumour interstitium without functional vessels or lymphatics.

        The wall terms act only where ``S/V > 0``, so give the core ``S/V = 0`` (no perfusion).
        ``K`` and the wall values are those of :meth:`tumour` (*unconfirmed* for necrotic tissue).
        """
        return replace(cls.tumour(), name="necrotic")


@dataclass(frozen=True)
class VascularFluidProperties:
    """Blood-side values of Starling's law (SI units).

    Attributes
    ----------
    p_vascular_pa : float
        Microvascular blood pressure ``p_v``, Pa; default 15.6 mmHg (Baxter & Jain 1989).
    pi_vascular_pa : float
        Plasma oncotic pressure ``π_v``, Pa; default 20 mmHg (Baxter & Jain 1989; Stohrer et al.
        2000 measured 20.0 ± 1.6 mmHg).
    """

    p_vascular_pa: float = 15.6 * MMHG_PA
    pi_vascular_pa: float = 20.0 * MMHG_PA


def default_region_properties() -> tuple:
    """Per-region fluid properties indexed by region code (NORMAL, TUMOUR, NECROTIC)."""
    table = [None] * len(REGION_NAMES)
    table[NORMAL] = RegionFluidProperties.normal()
    table[TUMOUR] = RegionFluidProperties.tumour()
    table[NECROTIC] = RegionFluidProperties.necrotic()
    return tuple(table)


# ------------------------------------------------------------------------------------------------
# Analytic reference (Baxter & Jain 1989): uniformly perfused sphere, p = 0 on the surface
# ------------------------------------------------------------------------------------------------
def baxter_jain_sphere_pressure(r_m, radius_m: float, alpha: float, p_effective_pa: float):
    r"""Interstitial pressure (Pa) in a uniformly perfused sphere without lymphatics, p(R) = 0.

    ``p(r) = p_e [1 − sinh(α r/R) / ((r/R) sinh α)]`` with ``α = R √(L_p (S/V) / K)`` and
    ``p_e = p_v − σ_T(π_v − π_i)`` (Baxter & Jain 1989, Eq. 11). Evaluated stably for large
    ``α``; ``r = 0`` gives ``p_e (1 − α / sinh α)``.
    """
    x = np.asarray(r_m, dtype=np.float64) / radius_m
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # sinh(αx)/sinh(α) = exp(α(x−1)) (1 − e^{−2αx}) / (1 − e^{−2α})
        ratio = np.exp(alpha * (x - 1.0)) * (-np.expm1(-2.0 * alpha * x)) / (-np.expm1(-2.0 * alpha))
        shape = np.where(x > 1e-8, ratio / np.where(x > 1e-8, x, 1.0),
                         2.0 * alpha * np.exp(-alpha) / (-np.expm1(-2.0 * alpha)))
    return p_effective_pa * (1.0 - shape)


def baxter_jain_sphere_surface_velocity(radius_m: float, alpha: float, p_effective_pa: float,
                                        conductivity_m2_per_pa_s: float) -> float:
    """Outward Darcy velocity (m/s) at the surface of the sphere of :func:`baxter_jain_sphere_pressure`.

    ``u(R) = K p_e (α coth α − 1) / R``.
    """
    return conductivity_m2_per_pa_s * p_effective_pa * (alpha / math.tanh(alpha) - 1.0) / radius_m


# ------------------------------------------------------------------------------------------------
# Solution container
# ------------------------------------------------------------------------------------------------
@dataclass
class InterstitialSolution:
    """Steady interstitial pressure and Darcy velocity with the fluid balance of the solve.

    All arrays are NumPy (host) arrays, whatever backend did the linear solve.

    Attributes
    ----------
    grid : Grid
    pressure_pa : ndarray (nz, ny, nx)
        Interstitial fluid pressure, Pa (held voxels carry their held value).
    face_velocity_m_per_s : ndarray (3, nz, ny, nx)
        Darcy velocity ``u = −K∇p`` on each voxel's +x, +y, +z face (component ``a`` on the
        voxel's +a face; the last voxel along an axis holds the velocity through the upper box
        wall, 0 on a no-flux wall): the layout of ``velocity_m_per_s`` in
        :class:`~nanosim.transport.operator.TransportOperator`. m/s.
    lower_wall_velocity_m_per_s : tuple of 3 ndarrays
        Velocity through the lower box wall along x, y, z (shapes (nz, ny), (nz, nx), (ny, nx)),
        m/s — not part of the transport layout, kept for completeness.
    voxel_velocity_m_per_s : ndarray (3, nz, ny, nx)
        Voxel-centred velocity (mean of the two face velocities along each axis), m/s, for output.
    transvascular_rate_per_s : ndarray (nz, ny, nx)
        Fluid entering through vessel walls per tissue volume,
        ``L_p S/V (p_v − p_i − σ_T(π_v − π_i))``, 1/s (0 on held voxels).
    transvascular_flux_m3_per_s : float
        Total fluid entering through vessel walls over the solved voxels, m³/s.
    lymphatic_flux_m3_per_s : float
        Total fluid drained by lymphatics, ``Σ L_pL S_L/V (p_i − p_L) V``, m³/s.
    boundary_flux_m3_per_s : float
        Total fluid leaving through held boundaries (held voxels, sphere surface, held box
        walls), m³/s, from the scheme's own face fluxes.
    balance_error : float
        ``|in − boundary − lymphatic| / max(|in|, |boundary| + |lymphatic|)``.
    iterations : int
        Conjugate-gradient iterations.
    residual : float
        Final relative residual ``‖b − A p‖ / ‖b‖`` (recomputed from the solution).
    n_unknowns : int
        Number of solved (free) voxels.
    backend : str
    preconditioner : str
    assemble_s, solve_s : float
        Wall-clock seconds for the assembly and the linear solve.
    """

    grid: Grid
    pressure_pa: np.ndarray
    face_velocity_m_per_s: np.ndarray
    lower_wall_velocity_m_per_s: tuple
    voxel_velocity_m_per_s: np.ndarray
    transvascular_rate_per_s: np.ndarray
    transvascular_flux_m3_per_s: float
    lymphatic_flux_m3_per_s: float
    boundary_flux_m3_per_s: float
    balance_error: float
    iterations: int
    residual: float
    n_unknowns: int
    backend: str = "numpy"
    preconditioner: str = "jacobi"
    assemble_s: float = 0.0
    solve_s: float = 0.0
    free: np.ndarray = field(default=None, repr=False)

    def __repr__(self) -> str:
        p = self.pressure_pa
        free = self.free if self.free is not None else np.ones(p.shape, bool)
        pf = p[free] if np.any(free) else p.reshape(-1)
        umax = float(np.sqrt((self.voxel_velocity_m_per_s**2).sum(axis=0)).max()) if p.size else 0.0
        nx, ny, nz = self.grid.shape_xyz
        return (f"InterstitialSolution {nx}×{ny}×{nz} ({self.n_unknowns} unknowns, {self.backend}, "
                f"{self.preconditioner}-PCG {self.iterations} it, residual {self.residual:.2e})\n"
                f"├── pressure: {pf.min() / MMHG_PA:.4g} … {pf.max() / MMHG_PA:.4g} mmHg "
                f"(mean {pf.mean() / MMHG_PA:.4g})\n"
                f"├── |u| max: {umax * 1e6:.4g} µm/s\n"
                f"├── fluid in through vessel walls: {self.transvascular_flux_m3_per_s:.4e} m³/s\n"
                f"├── out through held boundaries:   {self.boundary_flux_m3_per_s:.4e} m³/s\n"
                f"├── drained by lymphatics:         {self.lymphatic_flux_m3_per_s:.4e} m³/s\n"
                f"└── balance error {self.balance_error:.2e}; assembly {self.assemble_s:.3g} s, "
                f"solve {self.solve_s:.3g} s")


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
_AXIS_ARR = (2, 1, 0)  # physical axis x, y, z → array axis of a [z, y, x] field
_AXIS_NAME = ("x", "y", "z")


def _per_voxel(value, shape, name, fix):
    """Broadcast a scalar or per-voxel value to ``shape`` (float64), with a clear error."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return np.full(shape, float(a))
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected a scalar or the grid shape [z, y, x] = "
                         f"{tuple(shape)}; {fix}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values; {fix}")
    return a


def _host(a):
    """A NumPy array from a NumPy or CuPy array (or anything array-like)."""
    if a is None:
        return None
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def _boundary_kinds(boundary):
    """Normalise ``boundary`` to a (3, 2) bool array: True where the (axis, lower/upper) wall is held."""
    def one(v, where):
        if v in ("no_flux", "dirichlet"):
            return v == "dirichlet"
        raise ValueError(f"boundary{where} = {v!r}: use 'no_flux' or 'dirichlet'")

    if isinstance(boundary, str):
        b = one(boundary, "")
        return np.full((3, 2), b)
    try:
        items = list(boundary)
    except TypeError:
        items = None
    if items is None or len(items) != 3:
        raise ValueError(f"boundary = {boundary!r}: give 'no_flux', 'dirichlet', or 3 entries (x, y, z), "
                         "each a kind or a (lower, upper) pair of kinds")
    out = np.zeros((3, 2), bool)
    for a, v in enumerate(items):
        if isinstance(v, str):
            out[a, :] = one(v, f"[{_AXIS_NAME[a]}]")
        else:
            lo, hi = v
            out[a, 0] = one(lo, f"[{_AXIS_NAME[a]}][lower]")
            out[a, 1] = one(hi, f"[{_AXIS_NAME[a]}][upper]")
    return out


def _sl(axis_arr, a, b):
    idx = [slice(None)] * 3
    idx[axis_arr] = slice(a, b)
    return tuple(idx)


def _harmonic(a, b):
    s = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, 2.0 * a * b / np.where(s > 0, s, 1.0), 0.0)


#: smallest sphere-crossing fraction θ kept (a smaller cut is treated as this one; the change of
#: the solution is of order θ_min·h·|∇p|, far below the discretisation error)
THETA_MIN = 1e-3


# ------------------------------------------------------------------------------------------------
# Solver
# ------------------------------------------------------------------------------------------------
def solve_interstitial_pressure(grid: Grid, region, surface_per_volume_per_m, properties=None, *,
                                p_vascular_pa=None, pi_vascular_pa=None, dirichlet=None,
                                dirichlet_value_pa=0.0, boundary="no_flux", sphere_boundary=None,
                                backend=None, tol: float = 1e-10, maxiter: int | None = None,
                                preconditioner: str = "jacobi", x0_pa=None) -> InterstitialSolution:
    """Solve for the steady interstitial fluid pressure and Darcy velocity (see the module doc).

    Parameters
    ----------
    grid : Grid
    region : uint8 array (nz, ny, nx)
        Region code per voxel, indexing ``properties``.
    surface_per_volume_per_m : float or array (nz, ny, nx)
        Vessel wall area per tissue volume ``S/V`` per voxel, 1/m (e.g. 200 cm⁻¹ = 2×10⁴ m⁻¹ in
        tumour, Baxter & Jain 1989). 0 where there are no perfused vessels.
    properties : sequence of RegionFluidProperties, optional
        Per region code; default :func:`default_region_properties`.
    p_vascular_pa : float or array (nz, ny, nx), optional
        Vascular pressure ``p_v``, Pa — a scalar or per voxel (e.g. from a network flow
        solution); default 15.6 mmHg.
    pi_vascular_pa : float or array, optional
        Plasma oncotic pressure ``π_v``, Pa; default 20 mmHg.
    dirichlet : bool array (nz, ny, nx), optional
        Voxels held at ``dirichlet_value_pa`` (not solved for).
    dirichlet_value_pa : float or array (nz, ny, nx)
        Held pressure, Pa. Must be a scalar when box walls are held or ``sphere_boundary`` is given.
    boundary : str or 3 entries
        Box walls: ``"no_flux"`` or ``"dirichlet"`` (held at ``dirichlet_value_pa``), or one entry
        per axis (x, y, z), each a kind or a ``(lower, upper)`` pair.
    sphere_boundary : ((cx, cy, cz), radius), optional
        Hold ``p = dirichlet_value_pa`` on this sphere (m); voxels whose centre is not strictly
        inside are held, and faces crossing the sphere get the sub-voxel distance correction.
    backend : Backend or str, optional
        ``numpy``/``numba`` (SciPy CSR on the CPU) or ``cupy`` (cuSPARSE CSR on the GPU);
        default numpy.
    tol : float
        Relative residual ``‖b − A p‖/‖b‖`` at which conjugate gradients stop.
    maxiter : int, optional
        Iteration limit (default ``max(1000, 20·max(shape))``).
    preconditioner : {"jacobi", "none"}
    x0_pa : array, optional
        Initial guess (Pa), e.g. a previous solution.

    Returns
    -------
    InterstitialSolution

    Raises
    ------
    ValueError
        On inconsistent inputs; the message names the argument and what to give instead.
    InterstitialSolveError
        If the problem has no unique solution (nothing anchors the pressure) or conjugate
        gradients do not reach ``tol`` within ``maxiter`` iterations.
    """
    from ..backends import Backend, get_backend

    t0 = time.perf_counter()
    if backend is None:
        backend = get_backend("numpy")
    elif isinstance(backend, str):
        backend = get_backend(backend)
    elif not isinstance(backend, Backend):
        raise ValueError(f"backend = {backend!r}: give a Backend or one of 'numpy', 'numba', 'cupy'")
    if preconditioner not in ("jacobi", "none"):
        raise ValueError(f"preconditioner = {preconditioner!r}: use 'jacobi' or 'none'")
    if not (tol > 0):
        raise ValueError(f"tol = {tol!r} must be > 0")

    shape = tuple(grid.shape_zyx)
    h = float(grid.voxel_size_m)
    region = _host(region)
    if region.shape != shape:
        raise ValueError(f"region has shape {region.shape}, expected the grid shape [z, y, x] = {shape}")
    props = default_region_properties() if properties is None else tuple(properties)
    present = np.unique(region)
    if present.size and int(present.max()) >= len(props):
        raise ValueError(f"region code {int(present.max())} has no entry in properties "
                         f"(given {len(props)}); pass one RegionFluidProperties per region code")
    vasc = VascularFluidProperties()
    pv = _per_voxel(vasc.p_vascular_pa if p_vascular_pa is None else _host(p_vascular_pa), shape,
                    "p_vascular_pa", "give the vascular pressure in Pa, scalar or per voxel")
    piv = _per_voxel(vasc.pi_vascular_pa if pi_vascular_pa is None else _host(pi_vascular_pa), shape,
                     "pi_vascular_pa", "give the plasma oncotic pressure in Pa, scalar or per voxel")
    sv = _per_voxel(_host(surface_per_volume_per_m), shape, "surface_per_volume_per_m",
                    "give the vessel surface per volume S/V in 1/m (e.g. 2e4 for 200 cm⁻¹)")
    if np.any(sv < 0):
        raise ValueError("surface_per_volume_per_m has negative values; S/V is an area per volume ≥ 0 (1/m)")

    def table(attr):
        return np.array([getattr(p, attr) for p in props], dtype=np.float64)[region]

    kk = table("hydraulic_conductivity_m2_per_pa_s")
    lp = table("lp_m_per_pa_s")
    sig = table("sigma_osmotic")
    pii = table("pi_interstitial_pa")
    lym = table("lymphatic_coefficient_per_pa_s")
    pl = table("lymph_pressure_pa")

    walls = _boundary_kinds(boundary)
    value = _per_voxel(_host(dirichlet_value_pa), shape, "dirichlet_value_pa",
                       "give the held pressure in Pa, scalar or per voxel")
    value_scalar = np.ndim(_host(dirichlet_value_pa)) == 0
    if (walls.any() or sphere_boundary is not None) and not value_scalar:
        raise ValueError("dirichlet_value_pa must be a scalar (Pa) when box walls are 'dirichlet' or "
                         "sphere_boundary is given; hold per-voxel values with the dirichlet mask instead")
    v0 = float(value.flat[0]) if value_scalar else 0.0

    held = np.zeros(shape, bool)
    if dirichlet is not None:
        d = _host(dirichlet)
        if d.shape != shape:
            raise ValueError(f"dirichlet has shape {d.shape}, expected the grid shape [z, y, x] = {shape}")
        held |= d.astype(bool)
    outside = np.zeros(shape, bool)
    if sphere_boundary is not None:
        try:
            centre, radius = sphere_boundary
            centre = tuple(float(c) for c in centre)
            radius = float(radius)
            assert len(centre) == 3 and radius > 0
        except Exception:
            raise ValueError(f"sphere_boundary = {sphere_boundary!r}: give ((cx, cy, cz), radius) in m "
                             "with radius > 0") from None
        z, y, x = grid.mesh_m()
        dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
        r2 = dx * dx + dy * dy + dz * dz
        outside = np.broadcast_to(r2 >= radius * radius, shape).copy()
        held |= outside
        dcomp = (np.broadcast_to(dx, shape), np.broadcast_to(dy, shape), np.broadcast_to(dz, shape))
        r2 = np.broadcast_to(r2, shape)
    free = ~held
    nfree = int(free.sum())
    if nfree == 0:
        raise ValueError("every voxel is held (dirichlet mask / outside sphere_boundary): nothing to solve")

    p_held = np.where(held, value, 0.0)

    # ---- diagonal reaction and right-hand side (per volume: 1/(Pa·s) and 1/s) -----------------
    wall_rate = lp * sv  # L_p S/V, 1/(Pa·s)
    p_eff_v = pv - sig * (piv - pii)  # effective filtration pressure, Pa
    diag = (wall_rate + lym) * free
    rhs = (wall_rate * p_eff_v + lym * pl) * free

    # ---- face couplings ----------------------------------------------------------------------
    # off-diagonal conductances between two free voxels, per axis, on the faces (lo, hi)
    offdiag = []
    inv_h2 = 1.0 / (h * h)
    face_info = []  # per axis: (coef of interior faces, theta-cut info) for the velocity pass
    for a in range(3):
        ax = _AXIS_ARR[a]
        n = shape[ax]
        lo, hi = _sl(ax, 0, n - 1), _sl(ax, 1, n)
        kf = _harmonic(kk[lo], kk[hi])  # face conductivity, m²/(Pa·s)
        coef = kf * inv_h2  # conductance per volume, 1/(Pa·s)
        f_lo, f_hi = free[lo], free[hi]
        cut_lo = np.zeros(kf.shape, bool)
        cut_hi = np.zeros(kf.shape, bool)
        theta_lo = theta_hi = None
        if sphere_boundary is not None:
            # lower voxel inside, upper outside: crossing at fraction θ of h above the lower centre
            cut_lo = f_lo & outside[hi]
            cut_hi = f_hi & outside[lo]
            dl = dcomp[a][lo]
            disc = np.maximum(dl * dl + radius * radius - r2[lo], 0.0)
            theta_lo = np.clip((-dl + np.sqrt(disc)) / h, THETA_MIN, 1.0)
            du = dcomp[a][hi]
            disc = np.maximum(du * du + radius * radius - r2[hi], 0.0)
            theta_hi = np.clip((du + np.sqrt(disc)) / h, THETA_MIN, 1.0)
        both = f_lo & f_hi
        offdiag.append(np.where(both, coef, 0.0))
        dd = np.zeros(kf.shape)
        dd_hi = np.zeros(kf.shape)
        dd[both] += coef[both]
        dd_hi[both] += coef[both]
        rr = np.zeros(kf.shape)
        rr_hi = np.zeros(kf.shape)
        # free lower voxel, held upper voxel (not a sphere cut): neighbour value at distance h
        m = f_lo & held[hi] & ~cut_lo
        dd[m] += coef[m]
        rr[m] += coef[m] * p_held[hi][m]
        m = f_hi & held[lo] & ~cut_hi
        dd_hi[m] += coef[m]
        rr_hi[m] += coef[m] * p_held[lo][m]
        # sphere cuts: the free voxel's own K over the distance θh to the held surface
        if sphere_boundary is not None:
            cl = kk[lo] / (theta_lo * h * h)
            dd[cut_lo] += cl[cut_lo]
            rr[cut_lo] += cl[cut_lo] * v0
            ch = kk[hi] / (theta_hi * h * h)
            dd_hi[cut_hi] += ch[cut_hi]
            rr_hi[cut_hi] += ch[cut_hi] * v0
        diag[lo] += dd
        diag[hi] += dd_hi
        rhs[lo] += rr
        rhs[hi] += rr_hi
        # box walls held at v0: wall at h/2, the voxel's own K
        wl = _sl(ax, 0, 1)
        wu = _sl(ax, n - 1, n)
        if walls[a, 0]:
            cw = 2.0 * kk[wl] * inv_h2 * free[wl]
            diag[wl] += cw
            rhs[wl] += cw * v0
        if walls[a, 1]:
            cw = 2.0 * kk[wu] * inv_h2 * free[wu]
            diag[wu] += cw
            rhs[wu] += cw * v0
        face_info.append((coef, cut_lo, cut_hi, theta_lo, theta_hi))

    dfree = diag[free]
    if np.any(dfree <= 0):
        bad = np.argwhere(free & (diag <= 0))[0]
        raise InterstitialSolveError(
            f"voxel [z, y, x] = {tuple(int(b) for b in bad)} is isolated: zero conductivity to its neighbours "
            "and no vessel or lymphatic exchange; give it K > 0, S/V > 0 or hold it (dirichlet mask)")
    if not np.any(held) and not walls.any() and not np.any(wall_rate + lym > 0):
        raise InterstitialSolveError(
            "the pressure is undetermined: no-flux walls everywhere, no held voxels and no vessel or "
            "lymphatic exchange (S/V = 0, L_pL S_L/V = 0); hold a boundary (boundary='dirichlet', "
            "dirichlet mask or sphere_boundary) or give S/V > 0")

    A = _csr(shape, free, nfree, dfree, offdiag)
    del offdiag
    b = rhs[free]
    if x0_pa is not None:
        x0 = _per_voxel(_host(x0_pa), shape, "x0_pa", "give an initial pressure guess in Pa per voxel")[free]
    else:
        # a good start: the local equilibrium pressure where there is exchange, else 0
        with np.errstate(invalid="ignore", divide="ignore"):
            loc = np.where(wall_rate + lym > 0, rhs / np.where(diag > 0, diag, 1.0), 0.0)
        x0 = loc[free]
    t1 = time.perf_counter()

    if maxiter is None:
        maxiter = max(1000, 20 * max(shape))
    x, iters, res = _solve(A, b, x0, dfree, tol, maxiter, preconditioner, backend)
    t2 = time.perf_counter()
    if not np.isfinite(res) or res > max(tol, 1e-14) * 10:
        raise InterstitialSolveError(
            f"conjugate gradients did not converge: relative residual {res:.3e} after {iters} iterations "
            f"(tol {tol:g}, maxiter {maxiter}); raise maxiter, loosen tol, or check that K > 0 connects "
            "every solved voxel to a held boundary or to vessel/lymphatic exchange")

    p = p_held.copy()
    p[free] = x

    # ---- face velocities from the scheme's own face fluxes ---------------------------------------
    face = np.zeros((3,) + shape)
    lower = []
    boundary_out = 0.0  # Σ outward flux per volume·h³ from free voxels through held boundaries, m³/s
    vol = h**3
    for a in range(3):
        ax = _AXIS_ARR[a]
        n = shape[ax]
        lo, hi = _sl(ax, 0, n - 1), _sl(ax, 1, n)
        coef, cut_lo, cut_hi, theta_lo, theta_hi = face_info[a]
        # interior faces: u = −K_f (p_hi − p_lo)/h  (coef·h = K_f/h)
        u = coef * h * (p[lo] - p[hi])
        if sphere_boundary is not None:
            ul = kk[lo] * (p[lo] - v0) / (theta_lo * h)
            uh = -kk[hi] * (p[hi] - v0) / (theta_hi * h)
            u = np.where(cut_lo, ul, np.where(cut_hi, uh, u))
            boundary_out += float(ul[cut_lo].sum() - uh[cut_hi].sum()) * h * h
        # free → held (mask) voxel faces, not sphere cuts
        m_up = free[lo] & held[hi] & ~cut_lo
        m_dn = free[hi] & held[lo] & ~cut_hi
        boundary_out += float(u[m_up].sum() - u[m_dn].sum()) * h * h
        face[a][lo] = u
        wl = _sl(ax, 0, 1)
        wu = _sl(ax, n - 1, n)
        u_low = np.zeros(p[wl].shape)
        if walls[a, 0]:
            u_low = -2.0 * kk[wl] * (p[wl] - v0) / h  # flow in +a direction into the box is positive
            boundary_out -= float(u_low[free[wl]].sum()) * h * h
        if walls[a, 1]:
            u_up = 2.0 * kk[wu] * (p[wu] - v0) / h
            face[a][wu] = u_up
            boundary_out += float(u_up[free[wu]].sum()) * h * h
        else:
            face[a][wu] = 0.0
        lower.append(np.squeeze(u_low, axis=ax))
    voxel_u = np.empty_like(face)
    for a in range(3):
        ax = _AXIS_ARR[a]
        minus = np.concatenate([np.expand_dims(lower[a], ax), face[a][_sl(ax, 0, shape[ax] - 1)]], axis=ax)
        voxel_u[a] = 0.5 * (minus + face[a])

    tv_rate = np.where(free, wall_rate * (p_eff_v - p), 0.0)
    q_in = float(tv_rate.sum()) * vol
    q_lym = float(np.where(free, lym * (p - pl), 0.0).sum()) * vol
    scale = max(abs(q_in), abs(boundary_out) + abs(q_lym), 1e-300)
    bal = abs(q_in - boundary_out - q_lym) / scale
    t3 = time.perf_counter()

    return InterstitialSolution(
        grid=grid, pressure_pa=p, face_velocity_m_per_s=face, lower_wall_velocity_m_per_s=tuple(lower),
        voxel_velocity_m_per_s=voxel_u, transvascular_rate_per_s=tv_rate,
        transvascular_flux_m3_per_s=q_in, lymphatic_flux_m3_per_s=q_lym,
        boundary_flux_m3_per_s=boundary_out, balance_error=bal, iterations=iters, residual=res,
        n_unknowns=nfree, backend=backend.name, preconditioner=preconditioner,
        assemble_s=(t1 - t0) + (t3 - t2), solve_s=t2 - t1, free=free)


def _csr(shape, free, nfree, dfree, offdiag):
    """The SPD matrix over the free voxels as SciPy CSR (int32 indices when they fit).

    Row entries are built in the order −z, −y, −x, diagonal, +x, +y, +z, which is increasing
    column order because the free voxels are numbered in C (z, y, x) order.
    """
    import scipy.sparse as sps

    itype = np.int32 if 7 * nfree < 2**31 - 1 else np.int64
    flat = np.full(shape, -1, dtype=itype)
    flat[free] = np.arange(nfree, dtype=itype)
    cols = np.empty((nfree, 7), dtype=itype)
    vals = np.zeros((nfree, 7))
    slot = 0
    for a in (2, 1, 0):  # z, y, x: the neighbour below along each axis
        ax = _AXIS_ARR[a]
        n = shape[ax]
        lower = np.zeros(shape)
        lower[_sl(ax, 1, n)] = offdiag[a]  # face (q−1, q) seen from voxel q
        nb = np.full(shape, -1, dtype=itype)
        nb[_sl(ax, 1, n)] = flat[_sl(ax, 0, n - 1)]
        vals[:, slot] = -lower[free]
        cols[:, slot] = nb[free]
        slot += 1
    vals[:, 3] = dfree
    cols[:, 3] = np.arange(nfree, dtype=itype)
    slot = 4
    for a in (0, 1, 2):  # x, y, z: the neighbour above
        ax = _AXIS_ARR[a]
        n = shape[ax]
        upper = np.zeros(shape)
        upper[_sl(ax, 0, n - 1)] = offdiag[a]
        nb = np.full(shape, -1, dtype=itype)
        nb[_sl(ax, 0, n - 1)] = flat[_sl(ax, 1, n)]
        vals[:, slot] = -upper[free]
        cols[:, slot] = nb[free]
        slot += 1
    keep = vals != 0.0
    keep[:, 3] = True
    indptr = np.zeros(nfree + 1, dtype=itype)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    A = sps.csr_matrix((vals[keep], cols[keep], indptr), shape=(nfree, nfree))
    A.has_sorted_indices = True
    return A


def _solve(A, b, x0, diag, tol, maxiter, preconditioner, backend):
    """Preconditioned conjugate gradients on the backend; returns (x on host, iterations, residual)."""
    if backend.is_gpu:
        import cupy as cp
        import cupyx.scipy.sparse as csp

        xp = cp
        Ad = csp.csr_matrix(A)
        bd = cp.asarray(b)
        x = cp.asarray(x0)
        dinv = cp.asarray(1.0 / diag) if preconditioner == "jacobi" else None
    else:
        xp = np
        Ad = A
        bd = b
        x = np.array(x0, dtype=np.float64)
        dinv = 1.0 / diag if preconditioner == "jacobi" else None
    if backend.name == "numba":
        x, it = _pcg_fused(Ad, bd, x, dinv, tol, maxiter)
    else:
        x, it = _pcg(xp, Ad, bd, x, dinv, tol, maxiter)
    bnorm = float(xp.linalg.norm(bd))
    r = bd - Ad @ x
    res = float(xp.linalg.norm(r)) / bnorm if bnorm > 0 else float(xp.linalg.norm(r))
    return backend.to_host(x), it, res


def _pcg(xp, A, b, x, dinv, tol, maxiter):
    """Conjugate gradients with an optional diagonal preconditioner ``dinv``; array-module generic."""
    bnorm = float(xp.linalg.norm(b))
    if bnorm == 0.0:
        return xp.zeros_like(b), 0
    stop = tol * bnorm
    r = b - A @ x
    z = r * dinv if dinv is not None else r.copy()
    d = z.copy()
    rz = float(xp.dot(r, z))
    it = 0
    while it < maxiter:
        if float(xp.linalg.norm(r)) <= stop:
            break
        Ad = A @ d
        dAd = float(xp.dot(d, Ad))
        if dAd <= 0.0:  # breakdown: A not positive definite on this direction (or exact solve)
            break
        alpha = rz / dAd
        x += alpha * d
        r -= alpha * Ad
        z = r * dinv if dinv is not None else r
        rz_new = float(xp.dot(r, z))
        beta = rz_new / rz
        rz = rz_new
        d *= beta
        d += z
        it += 1
    return x, it


def _pcg_fused(A, b, x, dinv, tol, maxiter):
    """:func:`_pcg` in three compiled passes per iteration (nanosim.kernels.cg), for the numba
    backend: the same iteration, its sums in another order."""
    from ..kernels import cg

    bnorm = float(np.linalg.norm(b))
    if bnorm == 0.0:
        return np.zeros_like(b), 0
    A = A.tocsr()
    indptr, indices = np.ascontiguousarray(A.indptr), np.ascontiguousarray(A.indices)
    data = np.ascontiguousarray(A.data, dtype=np.float64)
    dinv = np.ones_like(b) if dinv is None else np.ascontiguousarray(dinv, dtype=np.float64)
    stop = tol * bnorm
    r = b - A @ x
    z = r * dinv
    d = z.copy()
    q = np.empty_like(b)
    rz = float(np.dot(r, z))
    rr = float(np.dot(r, r))
    it = 0
    while it < maxiter:
        if rr ** 0.5 <= stop:
            break
        dAd = cg.matvec_dot(indptr, indices, data, d, q)
        if dAd <= 0.0:  # breakdown, as in _pcg
            break
        alpha = rz / dAd
        rz_new, rr = cg.update(x, r, z, d, q, dinv, alpha)
        beta = rz_new / rz
        rz = rz_new
        cg.direction(d, z, beta)
        it += 1
    return x, it


# ------------------------------------------------------------------------------------------------
# Benchmark case
# ------------------------------------------------------------------------------------------------
def interstitial_benchmark_case(n: int) -> dict:
    """Inputs of a representative solve: a tumour sphere in normal liver on ``n³`` voxels.

    A cube of side 10 mm holds a tumour of radius 3 mm (centre of the box) with a necrotic core
    of radius 1 mm (S/V = 0); S/V is 200 cm⁻¹ in the viable tumour and 70 cm⁻¹ in normal tissue
    (Baxter & Jain 1989); box walls held at 0 Pa; default region properties (normal tissue with
    lymphatics). Returns the keyword arguments of :func:`solve_interstitial_pressure`::

        sol = solve_interstitial_pressure(**interstitial_benchmark_case(128))
    """
    n = int(n)
    if n < 4:
        raise ValueError(f"interstitial_benchmark_case: n = {n} voxels per side; use n ≥ 4")
    side = 10e-3
    h = side / n
    grid = Grid((n, n, n), h, (0.0, 0.0, 0.0))
    z, y, x = grid.mesh_m()
    c = side / 2
    r = np.sqrt((x - c) ** 2 + (y - c) ** 2 + (z - c) ** 2)
    region = np.full(grid.shape_zyx, NORMAL, dtype=np.uint8)
    region[np.broadcast_to(r <= 3e-3, grid.shape_zyx)] = TUMOUR
    region[np.broadcast_to(r <= 1e-3, grid.shape_zyx)] = NECROTIC
    sv = np.choose(region, [70.0 / _CM, 200.0 / _CM, 0.0]).astype(np.float64)
    return dict(grid=grid, region=region, surface_per_volume_per_m=sv, properties=default_region_properties(),
                boundary="dirichlet", dirichlet_value_pa=0.0)
