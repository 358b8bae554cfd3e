r"""Steady oxygen partial pressure in tissue (PHYSICS.md §6).

.. math::

    \nabla\cdot(D\alpha\,\nabla P) + \tfrac{P_w S}{V}\,\alpha\,(P_b - P)
        - f\,M\,\frac{P}{P + P_m} = 0

``P`` oxygen partial pressure (Pa), ``D`` its diffusivity (m²/s), ``α`` its solubility
(mol m⁻³ Pa⁻¹; the dissolved concentration is ``αP``), ``M`` the largest consumption rate of the
region (mol m⁻³ s⁻¹; zero in necrotic tissue), ``P_m`` the partial pressure of half-maximal
consumption (Michaelis–Menten), ``f`` a consumption factor per voxel (the tissue fraction
``1 − φ_lumen`` of the voxel by default). Oxygen comes from the blood in two ways:

- *held voxels*: lumen voxels of vessels with a fixed wall (``fixed``) hold the blood value
  ``P_b``; the faces between tissue and lumen carry the sub-voxel wall position of
  :func:`nanosim.geometry.wall_correction` (Shortley–Weller, second order);
- *wall exchange*: voxels with vessel wall in them exchange with the blood of the nearest vessel
  at the rate ``P_w·S/V·α`` (``S/V`` from the vessel maps, ``P_w`` a wall mass-transfer
  coefficient, m/s), driven by the blood ``P_b`` of the vessel's wall type
  (:data:`BLOOD_PO2_PA`).

Box walls are no-flux, periodic, or held at a partial pressure.

Discretisation
--------------
The cell-centred finite volumes of :class:`nanosim.transport.TransportOperator` at steady state:
the 7-point stencil with the face conductance ``(Dα)_f`` the harmonic mean of the two voxels',
every linear term (faces, wall corrections, exchange, held walls) on the diagonal of a symmetric
matrix ``A`` that is the identity on held voxels, and the consumption pointwise. The generic
machinery is :class:`SteadyReactionDiffusion`, shared with the proton field of
:mod:`nanosim.microenv.ph`.

Solution
--------
Newton's method on ``R(P) = b − A P − g(P) = 0``: each step solves ``(A + diag g'(P)) δ = R``
by conjugate gradients with a Jacobi preconditioner, to a relative tolerance chosen by the
Eisenstat–Walker rule (loose far from the solution, tight near it). ``A`` is a symmetric
M-matrix and the consumption ``g(P) = fMP/(P + P_m)`` is concave and increasing, so the
Jacobian stays symmetric positive definite and Newton's iterates approach the solution
monotonically from below after the first step (Ortega & Rheinboldt 1970, §13.3). For ``P < 0``,
which only Newton's intermediate iterates reach, ``g`` is continued by its tangent at 0
(``fMP/P_m``), which keeps it concave and C¹. ``P_m = 0`` means zero-order consumption ``fM``
(the Krogh–Erlang model, which is linear: ``P`` may then go negative beyond the anoxic radius;
it is reported, not clipped). The solve stops when ``‖R‖₂ ≤ tol·(‖b‖₂ + ‖g(P)‖₂)``; the
oxygen ledger (supply from held voxels, wall exchange and held box walls against consumption)
then closes to the same tolerance.

All arithmetic is float64 and uses the backend's array module (NumPy or CuPy); on the ``numba``
backend the stencil product runs in a parallel Numba kernel.

Default parameters (overridable; sources)
-----------------------------------------
- ``D = 2×10⁻⁹ m²/s`` (oxygen in tissue, of order 2×10⁻⁵ cm²/s; e.g. Secomb et al. 2004,
  *unconfirmed*).
- ``α = 1.39 µM/mmHg = 1.04×10⁻⁵ mol m⁻³ Pa⁻¹`` (oxygen in water and tissue at 37 °C,
  3.1×10⁻⁵ ml O₂ ml⁻¹ mmHg⁻¹; *unconfirmed*).
- ``M``: normal liver 2.2×10⁻² mol m⁻³ s⁻¹ (≈ 3 ml O₂/100 g/min: the liver takes about a fifth
  of the body's oxygen uptake, *unconfirmed estimate*); viable tumour 7.4×10⁻³ mol m⁻³ s⁻¹
  (1 ml O₂/100 cm³/min, Secomb et al. 2004, *unconfirmed*); necrotic 0.
- ``P_m = 1 mmHg`` (Secomb et al. 2004, *unconfirmed*).
- Blood ``P_b`` by wall type (*unconfirmed* textbook values): artery 95 mmHg, portal vein
  50 mmHg, sinusoid 45 mmHg (between periportal ≈ 60–65 and perivenous ≈ 30–35 mmHg,
  Jungermann & Kietzmann 2000), capillary 40 mmHg, vein 40 mmHg, tumour vessel 35 mmHg.
- ``P_w = 5×10⁻⁴ m/s`` (an *unconfirmed estimate* of the intravascular-plus-wall mass-transfer
  coefficient, Nusselt number ≈ 2.5 for a 10 µm vessel, after Hellums 1977).
- Hypoxia threshold 10 mmHg (the usual "hypoxic fraction below 10 mmHg" of polarographic
  electrode studies, e.g. Vaupel et al. 1989; *unconfirmed*).

Secomb TW et al. (2004) Green's function methods for analysis of oxygen delivery to tissue by
microvascular networks. Ann Biomed Eng 32:1519–1529. Hellums JD (1977) The resistance to
oxygen transport in the capillaries relative to that in the surrounding tissue. Microvasc Res
13:131–136. Jungermann K, Kietzmann T (2000) Oxygen: modulator of metabolic zonation and disease
of the liver. Hepatology 31:255–260.
"""

from __future__ import annotations

import functools
import math
import time
import types
from dataclasses import dataclass, field

import numpy as np

from ..backends import Backend, get_backend
from ..flow.interstitial import MMHG_PA
from ..geometry import REGION_NAMES, Grid

__all__ = [
    "MMHG_PA",
    "O2_DIFFUSIVITY_M2_PER_S",
    "O2_SOLUBILITY_MOL_PER_M3_PA",
    "O2_WALL_PERMEABILITY_M_PER_S",
    "BLOOD_PO2_PA",
    "CONSUMPTION_MOL_PER_M3_S",
    "HALF_SATURATION_PA",
    "HYPOXIA_THRESHOLD_PA",
    "SteadyReactionDiffusion",
    "SteadySolveInfo",
    "SteadySolveError",
    "OxygenField",
    "OxygenSolution",
    "mm_consumption",
    "krogh_erlang_po2",
    "krogh_geometry",
    "region_means",
    "blood_po2_map",
    "build_oxygen",
    "steady_wall_factor",
    "STEADY_THETA_MIN",
]

O2_DIFFUSIVITY_M2_PER_S = 2.0e-9
"""Oxygen diffusivity in tissue, m²/s (*unconfirmed*, see the module doc)."""
O2_SOLUBILITY_MOL_PER_M3_PA = 1.39e-3 / MMHG_PA
"""Oxygen solubility in tissue, mol m⁻³ Pa⁻¹ (1.39 µM/mmHg; *unconfirmed*)."""
O2_WALL_PERMEABILITY_M_PER_S = 5.0e-4
"""Vessel-wall (plus intravascular) oxygen mass-transfer coefficient, m/s (*unconfirmed estimate*)."""
BLOOD_PO2_PA = {
    "artery": 95.0 * MMHG_PA,
    "vein": 40.0 * MMHG_PA,
    "portal": 50.0 * MMHG_PA,
    "capillary": 40.0 * MMHG_PA,
    "sinusoid": 45.0 * MMHG_PA,
    "tumour": 35.0 * MMHG_PA,
}
"""Blood oxygen partial pressure by wall type, Pa (*unconfirmed* defaults, see the module doc)."""
CONSUMPTION_MOL_PER_M3_S = (2.2e-2, 7.4e-3, 0.0)
"""Largest consumption rate M per region (normal, tumour, necrotic), mol m⁻³ s⁻¹ (*unconfirmed*)."""
HALF_SATURATION_PA = (1.0 * MMHG_PA,) * 3
"""Michaelis–Menten ``P_m`` per region, Pa (1 mmHg, *unconfirmed*)."""
HYPOXIA_THRESHOLD_PA = 10.0 * MMHG_PA
"""Partial pressure below which tissue counts as hypoxic, Pa (10 mmHg, *unconfirmed*)."""

_BC_NAMES = ("no_flux", "periodic", "fixed")
_ARRAY_AXIS = (2, 1, 0)  # array axis of physical axis x, y, z


class SteadySolveError(RuntimeError):
    """A steady solve that cannot start (no supply anchors the field) or did not converge."""


# ------------------------------------------------------------------------------------------------
# Physics (array-module generic: NumPy or CuPy arrays)
# ------------------------------------------------------------------------------------------------
def mm_consumption(xp, p, m, pm):
    r"""Michaelis–Menten consumption ``g = mP/(P + P_m)`` and its slope ``dg/dP``.

    ``m`` (mol m⁻³ s⁻¹) and ``pm`` (Pa) are arrays or scalars broadcast with ``p`` (Pa). For
    ``P < 0`` the tangent at 0 continues ``g`` (``mP/P_m``, slope ``m/P_m``); where ``P_m = 0``
    the consumption is zero-order (``g = m``, slope 0).
    """
    pp = xp.maximum(p, 0.0)
    pn = p - pp
    zero_order = pm <= 0.0
    pms = xp.where(zero_order, 1.0, pm)
    den = pp + pms
    rate = m * (pp / den + pn / pms)
    slope = m * pms / (den * den)
    return xp.where(zero_order, m, rate), xp.where(zero_order, 0.0, slope)


def krogh_erlang_po2(r_m, wall_radius_m, tissue_radius_m, wall_po2_pa, consumption_mol_per_m3_s,
                     diffusivity_m2_per_s=O2_DIFFUSIVITY_M2_PER_S, solubility_mol_per_m3_pa=O2_SOLUBILITY_MOL_PER_M3_PA):
    r"""Krogh–Erlang cylinder (PHYSICS.md §6), zero-order consumption, no flux at ``R_t``.

    .. math:: P(r) = P_w + \frac{M}{4D\alpha}(r^2 - r_w^2) - \frac{M R_t^2}{2D\alpha}\ln\frac{r}{r_w}

    for ``r_w ≤ r ≤ R_t``; ``P(R_t)`` beyond ``R_t`` (no consumption there), ``P_w`` inside.
    """
    r = np.clip(np.asarray(r_m, float), wall_radius_m, tissue_radius_m)
    k = consumption_mol_per_m3_s / (diffusivity_m2_per_s * solubility_mol_per_m3_pa)
    return (wall_po2_pa + k / 4.0 * (r * r - wall_radius_m**2)
            - k * tissue_radius_m**2 / 2.0 * np.log(r / wall_radius_m))


def krogh_geometry(voxel_size_m: float, wall_radius_m: float, tissue_radius_m: float, samples: int = 8):
    """The Krogh cylinder on a grid: one z-layer, a held vessel along z at the centre of a square box.

    The box reaches 4 voxels beyond ``R_t``. Consumption belongs only inside ``R_t``: the field
    beyond is then constant and the flux through ``r = R_t`` zero, so the Krogh cylinder's no-flux
    condition holds exactly in a no-flux box; ``tissue_fraction`` is each voxel's area fraction
    inside ``R_t`` (``samples²`` sub-samples), which places that edge to second order.

    Returns
    -------
    SimpleNamespace
        ``grid``, ``vessel`` (cylinder with a ``fixed_concentration`` wall), ``fixed`` (bool),
        ``wall_factor`` (:func:`steady_wall_factor`), ``tissue_fraction``, ``r_m`` (distance of
        each voxel centre from the axis).
    """
    from types import SimpleNamespace

    from ..geometry import vessel_maps

    h = float(voxel_size_m)
    n = int(np.ceil((2 * tissue_radius_m + 8 * h) / h))
    c = n * h / 2
    grid = Grid((n, n, 1), h)
    vessel = SimpleNamespace(start_m=(c, c, -1.0), end_m=(c, c, 1.0), radius_m=wall_radius_m,
                             wall="fixed_concentration")
    fixed, _, _ = vessel_maps(grid, [vessel])
    z, y, x = grid.mesh_m()
    off = (np.arange(samples) + 0.5) / samples - 0.5
    frac = sum((np.hypot(x + dx * h - c, y + dy * h - c) <= tissue_radius_m) for dy in off for dx in off)
    return SimpleNamespace(grid=grid, vessel=vessel, fixed=fixed.astype(bool),
                           wall_factor=steady_wall_factor(grid, [vessel], fixed),
                           tissue_fraction=np.broadcast_to(frac / samples**2, grid.shape_zyx).copy(),
                           r_m=np.broadcast_to(np.hypot(x - c, y - c), grid.shape_zyx).copy())


# ------------------------------------------------------------------------------------------------
# Conjugate-gradient kernels (compiled by numba for the numba backend)
# ------------------------------------------------------------------------------------------------
prange = range  # the kernels' parallel loop: numba.prange in their compiled forms


def _matvec_loops(x, dtot, kx, ky, kz, y):  # pragma: no cover - compiled below
    """``y = A x`` (7-point stencil, faces ``k*`` between i and i+1, wrapping); returns ``x·y``."""
    nz, ny, nx = x.shape
    total = 0.0
    for k in prange(nz):
        km = k - 1 if k > 0 else nz - 1
        kp = k + 1 if k < nz - 1 else 0
        plane = 0.0
        for j in range(ny):
            jm = j - 1 if j > 0 else ny - 1
            jp = j + 1 if j < ny - 1 else 0
            for i in range(nx):
                im = i - 1 if i > 0 else nx - 1
                ip = i + 1 if i < nx - 1 else 0
                v = (dtot[k, j, i] * x[k, j, i]
                     - kx[k, j, i] * x[k, j, ip] - kx[k, j, im] * x[k, j, im]
                     - ky[k, j, i] * x[k, jp, i] - ky[k, jm, i] * x[k, jm, i]
                     - kz[k, j, i] * x[kp, j, i] - kz[km, j, i] * x[km, j, i])
                y[k, j, i] = v
                plane += x[k, j, i] * v
        total += plane
    return total


def _cg_update_loops(x, r, d, ad, dtot, alpha):  # pragma: no cover - compiled below
    """``x += αd``, ``r −= α·Ad`` (flat arrays); returns ``(r·D⁻¹r, r·r)``."""
    rz = 0.0
    rr = 0.0
    for i in prange(x.size):
        x[i] += alpha * d[i]
        ri = r[i] - alpha * ad[i]
        r[i] = ri
        rz += ri * ri / dtot[i]
        rr += ri * ri
    return rz, rr


def _cg_direction_loops(d, r, dtot, beta):  # pragma: no cover - compiled below
    """``d = D⁻¹r + βd`` (flat arrays)."""
    for i in prange(d.size):
        d[i] = r[i] / dtot[i] + beta * d[i]


@functools.cache
def _numba_kernels(parallel: bool) -> dict:
    """The three CG kernels compiled with Numba (lazily: importing this module never imports numba)."""
    import numba

    from nanosim.kernels._compile import NJIT_OPTIONS

    out = {}
    for name, fn in (("matvec", _matvec_loops), ("update", _cg_update_loops), ("direction", _cg_direction_loops)):
        glb = dict(fn.__globals__, prange=numba.prange)
        f = types.FunctionType(fn.__code__, glb, fn.__name__, fn.__defaults__, fn.__closure__)
        # distinct names keep the serial and parallel forms apart in Numba's on-disk cache
        f.__qualname__ = f"{fn.__qualname__}_{'parallel' if parallel else 'serial'}"
        f.__module__ = fn.__module__
        out[name] = numba.njit(parallel=parallel, **NJIT_OPTIONS)(f)
    return out


#: Grids smaller than this many voxels use the serial kernels: a parallel launch costs about 1–2 ms
#: on a busy 2-core machine, as much as a serial pass over a million voxels.
PARALLEL_MIN_VOXELS = 1 << 20


def _dot(xp, a, b) -> float:
    # an elementwise sum, not BLAS: a threaded BLAS dot costs milliseconds per call on busy cores
    return float(xp.sum(a * b))


def _norm(xp, a) -> float:
    return math.sqrt(_dot(xp, a, a))


def _harmonic(a, b):
    s = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, 2.0 * a * b / np.where(s > 0, s, 1.0), 0.0)


def _per_voxel(value, shape, name):
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return np.full(shape, float(a))
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected a scalar or the grid shape [z, y, x] = {tuple(shape)}")
    return a.copy()


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _resolve_backend(backend) -> Backend:
    if backend is None:
        return get_backend("numpy")
    if isinstance(backend, str):
        return get_backend(backend)
    return backend


@dataclass
class SteadySolveInfo:
    """How a steady solve went: Newton and CG iterations, final residual, wall times (s)."""

    newton_iterations: int
    cg_iterations: int
    residual: float
    converged: bool
    residual_history: list = field(default_factory=list)
    solve_s: float = 0.0


class SteadyReactionDiffusion:
    r"""Steady ``−∇·(K∇u) + q(u − u_q) + g(u) = s`` on the voxel grid, ``u`` held on fixed voxels.

    The linear part is assembled once as a symmetric matrix ``A`` (7-point stencil, identity on
    held voxels) and a right-hand side ``b``; :meth:`solve` adds a pointwise nonlinear sink
    ``g(u)`` (Newton, see :mod:`nanosim.microenv.oxygen`). Every row is a rate per volume.

    Parameters
    ----------
    backend : Backend or str
    grid : Grid
    conductance : array (nz, ny, nx) or float
        ``K`` per voxel (flux per gradient); faces take the harmonic mean of their two voxels.
    fixed : bool array, optional
        Voxels held at ``fixed_value``.
    fixed_value : float or array
        Held value on ``fixed`` voxels.
    wall_factor : array, optional
        ``Σ_faces (1/θ − 1)`` per tissue voxel from :func:`nanosim.geometry.wall_correction`: an
        extra conductance ``K/h²·wall_factor`` to the mean value of the voxel's held neighbours.
    exchange : array or float, optional
        Linear exchange coefficient ``q`` per voxel (rate per volume per unit of ``u``).
    exchange_value : array or float
        ``u_q``, the value exchange drives towards.
    source : array or float, optional
        Constant source ``s`` (rate per volume).
    boundary : str or 3 str
        Box walls per physical axis (x, y, z): ``"no_flux"``, ``"periodic"`` or ``"fixed"``
        (held at ``boundary_value`` on the wall, half a voxel from the centres).
    boundary_value : float
    """

    def __init__(self, backend, grid: Grid, conductance, *, fixed=None, fixed_value=0.0, wall_factor=None,
                 exchange=None, exchange_value=0.0, source=None, boundary="no_flux", boundary_value=0.0):
        t0 = time.perf_counter()
        self.backend = _resolve_backend(backend)
        self.grid = grid
        shape = tuple(grid.shape_zyx)
        h = float(grid.voxel_size_m)
        inv_h2 = 1.0 / (h * h)
        bcs = (boundary,) * 3 if isinstance(boundary, str) else tuple(boundary)
        if len(bcs) != 3 or any(b not in _BC_NAMES for b in bcs):
            raise ValueError(f"boundary = {boundary!r}: give one of {', '.join(_BC_NAMES)} or three of them (x, y, z)")
        self.boundary = bcs
        kk = _per_voxel(conductance, shape, "conductance")
        if np.any(kk < 0):
            raise ValueError("conductance has negative values; give K ≥ 0")
        held = np.zeros(shape, bool) if fixed is None else np.asarray(_host(fixed)).astype(bool)
        if held.shape != shape:
            raise ValueError(f"fixed has shape {held.shape}, expected the grid shape [z, y, x] = {shape}")
        free = ~held
        uf = np.where(held, _per_voxel(fixed_value, shape, "fixed_value"), 0.0)

        diag = np.zeros(shape)
        c_vessel = np.zeros(shape)  # conductance per volume from free voxels to held ones
        r_vessel = np.zeros(shape)  # ... times the held value
        n_held_nb = np.zeros(shape)
        sum_held_nb = np.zeros(shape)
        faces = []
        for a in range(3):
            ax = _ARRAY_AXIS[a]
            n = shape[ax]
            kf = _harmonic(kk, np.roll(kk, -1, axis=ax)) * inv_h2  # face (i, i+1)
            if bcs[a] != "periodic" or n == 1:
                last = [slice(None)] * 3
                last[ax] = slice(n - 1, n)
                kf[tuple(last)] = 0.0
            for sign in (-1, 1):  # neighbour at i + sign
                k_nb = kf if sign > 0 else np.roll(kf, 1, axis=ax)
                nb_held = np.roll(held, -sign, axis=ax)
                nb_val = np.roll(uf, -sign, axis=ax)
                diag += k_nb * free
                to_held = k_nb * (free & nb_held)
                c_vessel += to_held
                r_vessel += to_held * nb_val
                touch = free & nb_held & (k_nb > 0)
                n_held_nb += touch
                sum_held_nb += np.where(touch, nb_val, 0.0)
            faces.append(kf * free * np.roll(free, -1, axis=ax))
        if wall_factor is not None:
            wf = _per_voxel(_host(wall_factor), shape, "wall_factor") * free
            with np.errstate(invalid="ignore", divide="ignore"):
                wall_value = np.where(n_held_nb > 0, sum_held_nb / np.maximum(n_held_nb, 1), 0.0)
            cw = kk * inv_h2 * wf * (n_held_nb > 0)
            diag += cw
            c_vessel += cw
            r_vessel += cw * wall_value
        c_bnd = np.zeros(shape)
        for a in range(3):
            if bcs[a] != "fixed":
                continue
            ax = _ARRAY_AXIS[a]
            n = shape[ax]
            for idx in {0, n - 1} if n > 1 else {0}:
                sl = [slice(None)] * 3
                sl[ax] = slice(idx, idx + 1)
                sl = tuple(sl)
                c_bnd[sl] += 2.0 * kk[sl] * inv_h2 * (2 if n == 1 else 1)
        c_bnd *= free
        diag += c_bnd
        q = np.zeros(shape) if exchange is None else _per_voxel(_host(exchange), shape, "exchange") * free
        if np.any(q < 0):
            raise ValueError("exchange has negative values; give q ≥ 0")
        qv = _per_voxel(_host(exchange_value), shape, "exchange_value")
        src = np.zeros(shape) if source is None else _per_voxel(_host(source), shape, "source") * free
        diag += q
        rhs = r_vessel + c_bnd * float(boundary_value) + q * qv + src
        self.n_free = int(free.sum())
        self.n_fixed = int(held.sum())
        self.anchored = bool(np.any(c_vessel > 0) or np.any(c_bnd > 0) or np.any(q > 0))
        if self.n_free and np.any(diag[free] <= 0):
            bad = tuple(int(b) for b in np.argwhere(free & (diag <= 0))[0])
            raise SteadySolveError(f"voxel [z, y, x] = {bad} is isolated: no conductance to any neighbour and no "
                                   "exchange; give it K > 0 or hold it")
        diag[held] = 1.0
        self.h = h
        self._free_host = free
        self._held_host = held
        # host pieces of the ledger (rates per volume)
        self._ledger_terms = dict(c_vessel=c_vessel, r_vessel=r_vessel, c_bnd=c_bnd, bnd_value=float(boundary_value),
                                  q=q, qv=qv, src=src)
        dev = self.backend.asarray
        self.diag = dev(diag, np.float64)
        self.rhs = dev(rhs, np.float64)
        self.faces = [dev(f, np.float64) for f in faces]
        self.free = dev(free)
        self.held_value = dev(uf, np.float64)
        self.setup_s = time.perf_counter() - t0

    # -- linear algebra ------------------------------------------------------------------------------
    def _kernel(self, name, size):
        return _numba_kernels(size >= PARALLEL_MIN_VOXELS)[name]

    def matvec(self, x, dtot, out=None):
        """``(A + diag(extra)) x`` and ``x·(A + diag(extra)) x``, with ``dtot = diag(A) + extra``.

        A's diagonal is 1 on held voxels. Returns ``(y, x·y)``.
        """
        xp = self.backend.xp
        if self.backend.name == "numba":
            out = np.empty_like(x) if out is None else out
            dot = self._kernel("matvec", x.size)(x, dtot, self.faces[0], self.faces[1], self.faces[2], out)
            return out, dot
        y = dtot * x
        for a in range(3):
            ax = _ARRAY_AXIS[a]
            k = self.faces[a]
            y -= k * xp.roll(x, -1, axis=ax) + xp.roll(k * x, 1, axis=ax)
        return y, _dot(xp, x, y)

    def _cg_update(self, x, r, d, ad, dtot, alpha):
        if self.backend.name == "numba":
            flat = [v.reshape(-1) for v in (x, r, d, ad, dtot)]
            return self._kernel("update", x.size)(*flat, alpha)
        xp = self.backend.xp
        x += alpha * d
        r -= alpha * ad
        return _dot(xp, r, r / dtot), _dot(xp, r, r)

    def _cg_direction(self, d, r, dtot, beta):
        if self.backend.name == "numba":
            self._kernel("direction", d.size)(d.reshape(-1), r.reshape(-1), dtot.reshape(-1), beta)
        else:
            d *= beta
            d += r / dtot

    def _pcg(self, b, dtot, tol_abs, maxiter):
        """Jacobi-preconditioned conjugate gradients from x = 0; returns (x, iterations)."""
        xp = self.backend.xp
        x = xp.zeros_like(b)
        r = b.copy()
        d = xp.zeros_like(b)
        self._cg_direction(d, r, dtot, 0.0)
        rz = _dot(xp, r, d)
        rr = _dot(xp, r, r)
        ad = xp.empty_like(b)
        it = 0
        while it < maxiter and math.sqrt(rr) > tol_abs:
            ad, dad = self.matvec(d, dtot, ad)
            if not dad > 0.0:
                break
            rz_new, rr = self._cg_update(x, r, d, ad, dtot, rz / dad)
            self._cg_direction(d, r, dtot, rz_new / rz)
            rz = rz_new
            it += 1
        return x, it

    def residual(self, u, sink=None):
        """``b − A u − g(u)`` on free voxels, 0 on held ones."""
        r = self.rhs - self.matvec(u, self.diag)[0]
        if sink is not None:
            r -= sink
        return r * self.free

    # -- Newton --------------------------------------------------------------------------------------
    def solve(self, sink=None, u0=None, tol: float = 1e-10, max_newton: int = 50, max_cg: int | None = None):
        """Solve for the steady field.

        Parameters
        ----------
        sink : callable, optional
            ``sink(u) -> (g, g')`` device arrays, the pointwise nonlinear sink and its slope (≥ 0).
        u0 : array, optional
            Initial guess (held voxels are overwritten with their values).
        tol : float
            Stop when ``‖R‖₂ ≤ tol·(‖b‖₂ + ‖g(u)‖₂)``.
        max_newton, max_cg : int
            Iteration limits (``max_cg`` per linear solve, default ``max(2000, 20·max(shape))``).

        Returns
        -------
        u : device array (nz, ny, nx) float64
        info : SteadySolveInfo

        Raises
        ------
        SteadySolveError
            If nothing anchors the field (no held voxel, exchange or held wall) and there is no
            sink, or Newton does not converge.
        """
        t0 = time.perf_counter()
        xp = self.backend.xp
        if not self.anchored and sink is None:
            raise SteadySolveError("the steady field is undetermined: no held voxel, no exchange and no held box "
                                   "wall anchors it; add vessels or hold a boundary")
        if max_cg is None:
            max_cg = max(2000, 20 * max(self.grid.shape_xyz))
        free = self.free
        u = (xp.zeros(self.grid.shape_zyx) if u0 is None else self.backend.asarray(u0, np.float64).copy())
        u = xp.where(free, u, self.held_value)
        bnorm = _norm(xp, self.rhs)

        def evaluate(v):
            g, dg = sink(v) if sink is not None else (None, None)
            r = self.residual(v, g)
            scale = bnorm + (_norm(xp, g * free) if g is not None else 0.0)
            return r, dg, _norm(xp, r), max(scale, 1e-300)

        r, dg, rnorm, scale = evaluate(u)
        history = [rnorm / scale]
        eta_prev = 0.1
        rnorm_prev = None
        cg_total = 0
        it = 0
        converged = rnorm <= tol * scale
        while not converged and it < max_newton:
            # Eisenstat–Walker forcing term (choice 2, with safeguards)
            if sink is None:
                eta = 0.0  # linear: one solve to the final tolerance
            elif rnorm_prev is None:
                eta = 0.1
            else:
                eta = 0.9 * (rnorm / rnorm_prev) ** 2
                if 0.9 * eta_prev**2 > 0.1:
                    eta = max(eta, 0.9 * eta_prev**2)
                eta = min(eta, 0.1)
            eta = max(eta, 0.25 * tol * scale / rnorm)
            dtot = self.diag + (dg * free if dg is not None else 0.0)
            delta, its = self._pcg(r, dtot, eta * rnorm, max_cg)
            cg_total += its
            step = 1.0
            for _ in range(12):  # backtrack if the residual grows (a safeguard; rarely taken)
                trial = u + step * delta
                r_t, dg_t, rn_t, sc_t = evaluate(trial)
                if rn_t <= rnorm * (1.0 - 1e-4 * step) or rn_t <= tol * sc_t:
                    break
                step *= 0.5
            u, r, dg, rnorm_prev, rnorm, scale = trial, r_t, dg_t, rnorm, rn_t, sc_t
            eta_prev = eta
            it += 1
            history.append(rnorm / scale)
            converged = rnorm <= tol * scale
            if sink is None and not converged and its >= max_cg:
                break
        info = SteadySolveInfo(newton_iterations=it, cg_iterations=cg_total, residual=rnorm / scale,
                               converged=bool(converged), residual_history=history,
                               solve_s=time.perf_counter() - t0)
        return u, info

    # -- ledger ----------------------------------------------------------------------------------------
    def ledger(self, u, sink_rate=None) -> dict:
        """Amounts per time (rate per volume × h³) entering free voxels, by route, from host arrays.

        Returns ``vessel`` (from held voxels through faces and wall corrections), ``boundary``
        (held box walls), ``exchange`` (``q(u_q − u)``), ``source``, ``sink`` (``Σ g``) and
        ``balance_error = (vessel + boundary + exchange + source − sink) / largest term``.
        """
        L = self._ledger_terms
        uh = _host(u)
        free = self._free_host
        vol = self.h**3
        vessel = float(np.sum((L["r_vessel"] - L["c_vessel"] * uh) * free)) * vol
        boundary = float(np.sum(L["c_bnd"] * (L["bnd_value"] - uh) * free)) * vol
        exchange = float(np.sum(L["q"] * (L["qv"] - uh) * free)) * vol
        source = float(np.sum(L["src"])) * vol
        sink = 0.0 if sink_rate is None else float(np.sum(_host(sink_rate) * free)) * vol
        terms = (vessel, boundary, exchange, source, sink)
        scale = max(max(abs(t) for t in terms), 1e-300)
        return {"vessel": vessel, "boundary": boundary, "exchange": exchange, "source": source, "sink": sink,
                "balance_error": (vessel + boundary + exchange + source - sink) / scale}


# ------------------------------------------------------------------------------------------------
# Oxygen
# ------------------------------------------------------------------------------------------------
def region_means(region, values, within=None) -> dict:
    """Mean of ``values`` over the voxels of each region (restricted to ``within``) by region name; NaN if none."""
    out = {}
    for code, name in enumerate(REGION_NAMES):
        m = region == code if within is None else within & (region == code)
        out[name] = float(np.mean(values[m])) if m.any() else math.nan
    return out


def _region_table(value, name):
    t = np.asarray(value, dtype=np.float64)
    t = np.full(3, float(t)) if t.ndim == 0 else t
    if t.shape != (3,):
        raise ValueError(f"{name}: give a scalar or one value per region (normal, tumour, necrotic)")
    return t


@dataclass
class OxygenSolution:
    """A steady oxygen field and how it was found.

    Attributes
    ----------
    po2_pa : float64 array (nz, ny, nx)
        Oxygen partial pressure, Pa (held values in held lumen voxels).
    region : uint8 array
        Region codes.
    tissue : bool array
        Voxels counted as tissue (not held lumen).
    consumption_mol_per_m3_s : float64 array
        Consumption rate per voxel (0 in held voxels).
    info : SteadySolveInfo
    ledger_mol_per_s : dict
        Supply by route against consumption (see :meth:`SteadyReactionDiffusion.ledger`).
    hypoxia_threshold_pa : float
    setup_s : float
    """

    po2_pa: np.ndarray
    region: np.ndarray
    tissue: np.ndarray
    consumption_mol_per_m3_s: np.ndarray
    info: SteadySolveInfo
    ledger_mol_per_s: dict
    hypoxia_threshold_pa: float = HYPOXIA_THRESHOLD_PA
    setup_s: float = 0.0

    @property
    def po2_mmhg(self) -> np.ndarray:
        return self.po2_pa / MMHG_PA

    def hypoxic_fraction(self, threshold_pa: float | None = None) -> dict:
        """Fraction of tissue voxels with ``P < threshold`` per region name (and ``"all"``); NaN if empty."""
        thr = self.hypoxia_threshold_pa if threshold_pa is None else float(threshold_pa)
        low = self.po2_pa < thr
        out = region_means(self.region, low, self.tissue)
        out["all"] = float(low[self.tissue].mean()) if self.tissue.any() else math.nan
        return out

    def summary(self) -> dict:
        """JSON-friendly numbers: iterations, residual, times, ledger, hypoxic fractions, P range (mmHg)."""
        p = self.po2_mmhg[self.tissue] if self.tissue.any() else np.zeros(1)
        return {"newton_iterations": self.info.newton_iterations, "cg_iterations": self.info.cg_iterations,
                "residual": self.info.residual, "converged": self.info.converged, "setup_s": self.setup_s,
                "solve_s": self.info.solve_s, "ledger_mol_per_s": dict(self.ledger_mol_per_s),
                "hypoxic_fraction": self.hypoxic_fraction(),
                "po2_mmhg": {"min": float(p.min()), "mean": float(p.mean()), "max": float(p.max())}}

    def __repr__(self) -> str:
        s = self.summary()
        hf = ", ".join(f"{k} {v:.3g}" for k, v in s["hypoxic_fraction"].items() if not math.isnan(v))
        return (f"OxygenSolution ({'converged' if self.info.converged else 'NOT converged'}, "
                f"{self.info.newton_iterations} Newton / {self.info.cg_iterations} CG iterations, "
                f"residual {self.info.residual:.2e})\n"
                f"├── P_O2 in tissue: {s['po2_mmhg']['min']:.4g} … {s['po2_mmhg']['max']:.4g} mmHg, "
                f"mean {s['po2_mmhg']['mean']:.4g}\n"
                f"├── hypoxic (< {self.hypoxia_threshold_pa / MMHG_PA:g} mmHg): {hf}\n"
                f"└── ledger: consumption {self.ledger_mol_per_s['sink']:.4g} mol/s, "
                f"balance error {self.ledger_mol_per_s['balance_error']:.2e}")


class OxygenField:
    """The steady oxygen problem on a grid (see the module doc); :meth:`solve` returns an :class:`OxygenSolution`.

    Parameters
    ----------
    backend : Backend or str
    grid : Grid
    region : uint8 array (nz, ny, nx)
        Region codes (0 normal, 1 tumour, 2 necrotic).
    diffusivity_m2_per_s, solubility_mol_per_m3_pa : float or 3 floats
        ``D`` and ``α``, scalar or per region.
    consumption_mol_per_m3_s, half_saturation_pa : 3 floats
        ``M`` and ``P_m`` per region (``P_m = 0``: zero-order).
    consumption_factor : array, optional
        ``f`` per voxel (e.g. the tissue fraction ``1 − φ``), default 1.
    fixed : bool array, optional
        Lumen voxels held at ``fixed_po2_pa``.
    fixed_po2_pa : float or array
    wall_factor : array, optional
        Sub-voxel wall correction of the held vessels (:func:`nanosim.geometry.wall_correction`).
    exchange_rate_per_s : array or float, optional
        ``P_w·S/V`` per voxel (1/s); the exchange is ``P_w S/V α (P_b − P)``.
    blood_po2_pa : float or array
        ``P_b`` of the exchange.
    boundary : str or 3 str
        Box walls (x, y, z): ``"no_flux"``, ``"periodic"`` or ``"fixed"`` at ``boundary_po2_pa``.
    hypoxia_threshold_pa : float
    tol : float
        Default relative residual of :meth:`solve`.
    """

    def __init__(self, backend, grid: Grid, region, *, diffusivity_m2_per_s=O2_DIFFUSIVITY_M2_PER_S,
                 solubility_mol_per_m3_pa=O2_SOLUBILITY_MOL_PER_M3_PA, consumption_mol_per_m3_s=CONSUMPTION_MOL_PER_M3_S,
                 half_saturation_pa=HALF_SATURATION_PA, consumption_factor=None, fixed=None, fixed_po2_pa=0.0,
                 wall_factor=None, exchange_rate_per_s=None, blood_po2_pa=0.0, boundary="no_flux",
                 boundary_po2_pa=0.0, hypoxia_threshold_pa=HYPOXIA_THRESHOLD_PA, tol: float = 1e-9):
        self.backend = _resolve_backend(backend)
        self.tol = float(tol)
        self.grid = grid
        region = np.asarray(_host(region), dtype=np.uint8)
        shape = tuple(grid.shape_zyx)
        if region.shape != shape:
            raise ValueError(f"region has shape {region.shape}, expected the grid shape [z, y, x] = {shape}")
        self.region = region
        d = _region_table(diffusivity_m2_per_s, "diffusivity_m2_per_s")[region]
        alpha = _region_table(solubility_mol_per_m3_pa, "solubility_mol_per_m3_pa")[region]
        m = _region_table(consumption_mol_per_m3_s, "consumption_mol_per_m3_s")
        pm = _region_table(half_saturation_pa, "half_saturation_pa")
        if np.any(m < 0) or np.any(pm < 0) or np.any(d < 0) or np.any(alpha <= 0):
            raise ValueError("oxygen parameters: need D ≥ 0, α > 0, M ≥ 0, P_m ≥ 0")
        held = np.zeros(shape, bool) if fixed is None else np.asarray(_host(fixed)).astype(bool)
        f = np.ones(shape) if consumption_factor is None else _per_voxel(_host(consumption_factor), shape,
                                                                             "consumption_factor")
        f = np.where(held, 0.0, f)
        q = None
        if exchange_rate_per_s is not None:
            q = _per_voxel(_host(exchange_rate_per_s), shape, "exchange_rate_per_s") * alpha
        self.problem = SteadyReactionDiffusion(
            self.backend, grid, d * alpha, fixed=held, fixed_value=fixed_po2_pa, wall_factor=wall_factor,
            exchange=q, exchange_value=blood_po2_pa, boundary=boundary, boundary_value=boundary_po2_pa)
        dev = self.backend.asarray
        self._m = dev(m[region] * f, np.float64)
        self._pm = dev(pm[region], np.float64)
        self.hypoxia_threshold_pa = float(hypoxia_threshold_pa)
        vals = [np.max(_host(fixed_po2_pa)) if held.any() else -np.inf,
                np.max(_host(blood_po2_pa)) if q is not None else -np.inf,
                float(boundary_po2_pa) if "fixed" in self.problem.boundary else -np.inf]
        self.supply_max_pa = max(max(vals), 0.0)
        self._tissue = ~held

    def consumption(self, po2):
        """``(g, g')`` on the backend: consumption rate (mol m⁻³ s⁻¹) and its slope in P."""
        return mm_consumption(self.backend.xp, po2, self._m, self._pm)

    def solve(self, po2_initial_pa=None, tol: float | None = None, max_newton: int = 50) -> OxygenSolution:
        """Newton–CG solve (module doc) to ``tol`` (default ``self.tol``).

        Starts from ``po2_initial_pa`` (e.g. the previous solution) or the largest supply value.
        """
        tol = self.tol if tol is None else float(tol)
        u0 = po2_initial_pa
        if u0 is None:
            u0 = np.full(self.grid.shape_zyx, self.supply_max_pa)
        u, info = self.problem.solve(self.consumption, u0=u0, tol=tol, max_newton=max_newton)
        g, _ = self.consumption(u)
        ledger = self.problem.ledger(u, g)
        return OxygenSolution(po2_pa=self.backend.to_host(u), region=self.region, tissue=self._tissue,
                              consumption_mol_per_m3_s=self.backend.to_host(g * self.problem.free),
                              info=info, ledger_mol_per_s=ledger, hypoxia_threshold_pa=self.hypoxia_threshold_pa,
                              setup_s=self.problem.setup_s)

    def __repr__(self) -> str:
        p = self.problem
        return (f"OxygenField ({self.backend.name}): {p.n_free} tissue voxels, {p.n_fixed} held lumen voxels, "
                f"walls x/y/z {', '.join(p.boundary)}")


#: Smallest wall distance, in voxel spacings, of the sub-voxel wall correction in steady solves.
#: :data:`nanosim.geometry.THETA_MIN` (0.25) protects the explicit time step; a steady solve has
#: none to protect, and the cap would displace the wall by up to h/4 at some faces, a first-order
#: error (Krogh–Erlang case, largest error over P_w: 1.1 % with the cap against 0.6 % without at
#: h = 4 µm, r_w = 2h; 1.0 % against 0.13 % at h = 2 µm).
STEADY_THETA_MIN = 1e-3


def steady_wall_factor(grid: Grid, vessels, fixed, theta_min: float = STEADY_THETA_MIN) -> np.ndarray:
    """:func:`nanosim.geometry.wall_correction` with the cap ``theta_min`` instead of ``THETA_MIN``."""
    from ..geometry import wall_correction

    return wall_correction(grid, list(vessels), fixed, theta_min=float(theta_min))


# ------------------------------------------------------------------------------------------------
# From a scenario
# ------------------------------------------------------------------------------------------------
def blood_po2_map(wall_type, table_pa: dict | None = None, default_pa: float | None = None) -> np.ndarray:
    """Blood ``P_O2`` (Pa) per voxel from the vessel maps' wall-type codes (255: ``default_pa``)."""
    from ..vasculature.network import WallType

    table = dict(BLOOD_PO2_PA if table_pa is None else table_pa)
    lut = np.full(256, BLOOD_PO2_PA["capillary"] if default_pa is None else float(default_pa))
    for w in WallType:
        lut[int(w)] = table[w.name.lower()]
    return lut[np.asarray(wall_type, dtype=np.uint8)]


def build_oxygen(spec, grid: Grid, region, *, vessels=(), vasculature=None, backend=None) -> OxygenField:
    """An :class:`OxygenField` from a scenario's ``[oxygen]`` table (:class:`nanosim.scenario.microenv.Oxygen`).

    Parameters
    ----------
    spec : Oxygen
    grid : Grid
    region : uint8 array
    vessels : sequence of CylinderVessel
        The scenario's cylinder vessels: ``fixed_concentration`` walls hold their lumen at
        ``spec.cylinder_vessel_po2_pa`` (with the sub-voxel wall correction), ``exchange`` walls
        exchange at ``P_w·2/r``.
    vasculature : Vasculature, optional
        A built network: wall exchange at ``P_w·S/V`` with the blood of each voxel's wall type,
        consumption scaled by the tissue fraction ``1 − volume_fraction``.
    backend : Backend or str
    """
    from ..geometry import vessel_maps

    shape = tuple(grid.shape_zyx)
    fixed, sv_cyl, _ = vessel_maps(grid, list(vessels))
    held = fixed.astype(bool)
    perm = spec.wall_permeability_m_per_s
    q = sv_cyl * perm
    pb = np.full(shape, spec.cylinder_vessel_po2_pa)
    factor = np.ones(shape)
    if vasculature is not None:
        maps = vasculature.maps
        sv = np.asarray(maps.surface_per_volume_per_m, dtype=np.float64)
        pb_net = blood_po2_map(maps.wall_type, spec.blood_po2_pa.table())
        # where both a cylinder and the network exchange, weight the blood values by their rates
        q_net = sv * perm
        tot = q + q_net
        with np.errstate(invalid="ignore", divide="ignore"):
            pb = np.where(tot > 0, (q * pb + q_net * pb_net) / np.where(tot > 0, tot, 1.0), pb)
        q = tot
        factor = np.clip(1.0 - np.asarray(maps.volume_fraction, dtype=np.float64), 0.0, 1.0)
    wf = steady_wall_factor(grid, vessels, fixed) if held.any() else None
    regions = (spec.normal, spec.tumour, spec.necrotic)
    bc = "no_flux" if spec.boundary_po2_pa is None else "fixed"
    return OxygenField(backend, grid, region, diffusivity_m2_per_s=spec.diffusivity_m2_per_s,
                       solubility_mol_per_m3_pa=spec.solubility_mol_per_m3_pa,
                       consumption_mol_per_m3_s=[r.max_consumption_mol_per_m3_s for r in regions],
                       half_saturation_pa=[r.half_saturation_pa for r in regions], consumption_factor=factor,
                       fixed=held if held.any() else None, fixed_po2_pa=spec.cylinder_vessel_po2_pa, wall_factor=wf,
                       exchange_rate_per_s=q if np.any(q) else None, blood_po2_pa=pb, boundary=bc,
                       boundary_po2_pa=spec.boundary_po2_pa or 0.0, hypoxia_threshold_pa=spec.hypoxia_threshold_pa,
                       tol=spec.tolerance)


def oxygen_benchmark_case(n: int, backend=None, seed: int = 1, n_vessels: int = 12) -> OxygenField:
    """A representative oxygen problem on ``n³`` voxels (for timings and the solver test).

    A 640 µm cube (h = 640 µm / n) of normal liver, exchanging through sinusoid walls at
    S/V = 70 cm⁻¹ with blood at 45 mmHg, holds a tumour of radius 280 µm (necrotic core 80 µm,
    no consumption; the viable tumour consumes like the liver, 2.2×10⁻² mol m⁻³ s⁻¹, which makes
    about half of it hypoxic) and ``n_vessels`` straight capillaries of radius 5 µm at 40 mmHg
    (held lumen, random positions and directions from ``seed``) with the sub-voxel wall
    correction; no-flux walls.
    """
    from types import SimpleNamespace

    from ..geometry import NECROTIC, TUMOUR, vessel_maps

    n = int(n)
    side = 640e-6
    grid = Grid((n, n, n), side / n)
    z, y, x = grid.mesh_m()
    r = np.sqrt((x - side / 2) ** 2 + (y - side / 2) ** 2 + (z - side / 2) ** 2)
    region = np.zeros(grid.shape_zyx, np.uint8)
    region[np.broadcast_to(r < 280e-6, region.shape)] = TUMOUR
    region[np.broadcast_to(r < 80e-6, region.shape)] = NECROTIC
    rng = np.random.default_rng(seed)
    vessels = []
    for _ in range(n_vessels):
        p = rng.uniform(0.0, side, 3)
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        vessels.append(SimpleNamespace(start_m=tuple(p - 2 * side * d), end_m=tuple(p + 2 * side * d),
                                       radius_m=5e-6, wall="fixed_concentration"))
    fixed, _, _ = vessel_maps(grid, vessels)
    sv = np.where(region == 0, 7000.0, 0.0)
    m = CONSUMPTION_MOL_PER_M3_S[0]
    return OxygenField(backend, grid, region, consumption_mol_per_m3_s=(m, m, 0.0), fixed=fixed.astype(bool),
                       fixed_po2_pa=40.0 * MMHG_PA, wall_factor=steady_wall_factor(grid, vessels, fixed),
                       exchange_rate_per_s=sv * O2_WALL_PERMEABILITY_M_PER_S, blood_po2_pa=BLOOD_PO2_PA["sinusoid"])
