r"""From a vessel network (or a binary vessel mask) to voxel maps.

:func:`voxelise` turns a :class:`~nanosim.vasculature.network.VesselNetwork` into
:class:`VesselMaps` on a :class:`~nanosim.geometry.grid.Grid`; :func:`maps_from_mask` does the same
for a binary vessel image (:func:`load_mask` reads one from ``.npy``, ``.npz``, HDF5 or NIfTI).

Lumen geometry (network)
------------------------
Each segment is a straight **flat-ended** cylinder between its end nodes (radius
``seg_radius_m``); at every interior node (two or more segments) a sphere of the largest radius
meeting there fills the gaps at bends and branches. The lumen is the union of these shapes
(:mod:`nanosim.kernels.voxelise`). A lone straight vessel therefore has exactly ``πr²L`` of volume
and ``2πrL`` of lateral wall, and a straight vessel cut into collinear pieces of one radius is
unchanged. Geometry uses the straight chord between the nodes; ``seg_length_m`` (which may be
longer for a tortuous vessel) only enters through ``scale_area_to_length``.

Maps
----
``volume_fraction``
    Fraction of the voxel inside the lumen (union: overlaps are not double counted), by
    ``samples_per_axis³`` sub-voxel midpoint samples in voxels the wall passes through; exactly
    0 or 1 elsewhere.
``surface_per_volume_per_m``
    Visible wall area inside the voxel over the voxel volume (m⁻¹; 1 cm⁻¹ = 100 m⁻¹). The
    lateral wall of each cylinder is covered by area-weighted sample points at spacing
    ``≤ surface_spacing_m`` (default h/4); points strictly inside another vessel (junctions,
    overlaps) are dropped as hidden wall, each kept point adds its area to the voxel holding it.
    Node spheres hide wall but add none (the small exposed cap at a radius step or the outside
    of a bend is not counted). Walls outside the grid are not counted.
``wall_type``, ``nearest_segment``, ``radius_m``
    Of the segment whose lumen (cylinder, or a node sphere owned by its widest segment) is
    nearest to the voxel centre, for voxels whose centre lies within ``search_radius_m`` of a
    wall or inside a lumen; 255 / −1 / 0 elsewhere. Every voxel with wall or lumen in it is
    within reach (the search radius is at least the half-diagonal √3h/2). Ties go to the lower
    segment index.
``distance_to_wall_m``
    Signed distance from the voxel centre to the nearest vessel wall: positive in tissue,
    negative inside a lumen (minus the depth inside the deepest single cylinder or sphere: exact
    for a lone vessel, a lower bound on the depth where vessels overlap). Exact (round-off) for
    every voxel within ``search_radius_m`` of a wall. Beyond, a Euclidean distance transform
    (scipy / cupyx) gives every voxel its nearest *seed* voxel (seeds: centres within √3h/2 of a
    lumen, each knowing its nearest vessel); a far voxel takes the least exact distance to the
    vessels of the seeds nearest to it and to its 26 neighbours. That is an upper bound of the
    true distance, equal to it whenever the nearest vessel is among those candidates; its error
    is provably below √3·h; on random networks it is 0 for most voxels, mean 0.001 h, 99.9th
    percentile 0.11 h, largest seen 0.82 h (tests/vasculature/test_voxelise.py). scipy and cupyx
    break ties between equidistant seeds differently, so the far-field estimate of the cupy
    backend can differ from the CPU backends' where seeds tie (within the same bounds; 28 of
    43 026 far-field voxels in the device test). Vessels farther than
    the search radius outside the grid are ignored; a grid with no vessel within reach has
    ``inf``.

Cost
----
The grid is cut into cells of a few voxels; each cell lists the primitives within reach
(CSR lists), so a voxel tests only a handful of vessels. ``numba``: ``prange`` over z-planes;
``cupy``: one CUDA thread per voxel and per wall point, distance transform on the device
(cupyx). The ``numpy`` backend is the vectorised reference (loops over vessels).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backends import Backend, get_backend
from ..geometry.grid import Grid
from .network import VesselNetwork, WallType

#: ``wall_type`` value of voxels with no vessel within reach.
NO_WALL = 255


@dataclass(eq=False)
class VesselMaps:
    """Voxel maps of the vasculature, host NumPy arrays indexed [z, y, x] (see the module docstring).

    Attributes
    ----------
    grid : Grid
    volume_fraction : float array
        Lumen fraction of each voxel, in [0, 1].
    surface_per_volume_per_m : float64 array
        Vessel wall area per tissue volume S/V (m⁻¹).
    wall_type : uint8 array
        :class:`~nanosim.vasculature.network.WallType` code of the nearest vessel, 255 if none.
    nearest_segment : int64 array
        Index of the nearest segment, −1 if none (always −1 for maps from a mask).
    distance_to_wall_m : float array
        Signed distance from the voxel centre to the nearest wall (m), negative inside a lumen.
    radius_m : float64 array
        Radius of the nearest vessel (m), 0 where none.
    meta : dict
        How the maps were made (method, parameters, timings in s).
    """

    grid: Grid
    volume_fraction: np.ndarray
    surface_per_volume_per_m: np.ndarray
    wall_type: np.ndarray
    nearest_segment: np.ndarray
    distance_to_wall_m: np.ndarray
    radius_m: np.ndarray
    meta: dict = field(default_factory=dict)

    ARRAYS = ("volume_fraction", "surface_per_volume_per_m", "wall_type", "nearest_segment",
              "distance_to_wall_m", "radius_m")

    def to_dict(self) -> dict:
        """The maps as ``{name: array}`` (host arrays, [z, y, x]) for output files."""
        return {name: getattr(self, name) for name in self.ARRAYS}

    def vessel_volume_m3(self) -> float:
        """Total lumen volume in the grid (m³)."""
        return float(np.sum(self.volume_fraction, dtype=np.float64)) * self.grid.voxel_volume_m3

    def wall_area_m2(self) -> float:
        """Total visible wall area in the grid (m²)."""
        return float(np.sum(self.surface_per_volume_per_m)) * self.grid.voxel_volume_m3

    def __repr__(self) -> str:
        nx, ny, nz = self.grid.shape_xyz
        n = self.grid.n_voxels
        vf = float(np.mean(self.volume_fraction, dtype=np.float64)) if n else 0.0
        sv = self.surface_per_volume_per_m
        wall = sv > 0
        d = self.distance_to_wall_m
        finite = d[np.isfinite(d)]
        codes, counts = np.unique(self.wall_type[self.wall_type != NO_WALL], return_counts=True)
        types = ", ".join(f"{WallType(int(c)).name.lower()} {int(k)}" for c, k in zip(codes, counts)) or "none"
        dist = (f"[{finite.min() * 1e6:.3g}, {finite.max() * 1e6:.3g}] µm" if finite.size else "no vessel")
        lines = [
            f"VesselMaps {nx}×{ny}×{nz} voxels of {self.grid.voxel_size_m * 1e6:.4g} µm"
            f" ({self.meta.get('method', '?')})",
            f"├── lumen: {vf:.4%} of the volume, {int(np.count_nonzero(self.volume_fraction))} voxels touched",
            f"├── wall S/V: mean {float(sv.mean()) / 100 if n else 0.0:.4g} cm⁻¹ over the grid, "
            f"{float(sv[wall].mean()) / 100 if wall.any() else 0.0:.4g} cm⁻¹ over {int(wall.sum())} wall voxels",
            f"├── wall type (voxels within reach): {types}",
            f"└── distance to wall: {dist}",
        ]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Network → maps
# ----------------------------------------------------------------------------------------------
def _resolve_backend(backend) -> Backend:
    if isinstance(backend, Backend):
        return backend
    return get_backend(backend)


def voxelise(network: VesselNetwork, grid: Grid, backend="numba", samples_per_axis: int = 4,
             search_radius_m: float | None = None, surface_spacing_m: float | None = None,
             dtype=np.float64, scale_area_to_length: bool = False) -> VesselMaps:
    """Voxel maps of a vessel network on a grid.

    Parameters
    ----------
    network : VesselNetwork
    grid : Grid
    backend : {"numba", "numpy", "cupy"} or Backend
        Where to compute; the result is always host arrays.
    samples_per_axis : int
        Sub-voxel samples per axis for the volume fraction (1–16); the volume of a smooth vessel
        converges as the boundary voxels' errors cancel, about 1 % at 4 for r ≥ 4h.
    search_radius_m : float, optional
        Voxels whose centre is within this distance of a wall (or inside a lumen) get the nearest
        segment, its wall type and radius, and an exact distance. Default 4 voxels; at least
        √3h/2 (half a voxel diagonal).
    surface_spacing_m : float, optional
        Largest spacing of the wall sample points (m); default h/4, at most h/2.
    dtype : float32 or float64
        Of ``volume_fraction`` and ``distance_to_wall_m`` (S/V and radius are float64).
    scale_area_to_length : bool
        Multiply each segment's wall area by ``seg_length_m / chord`` (a tortuous vessel's true
        area) instead of the straight cylinder's.

    Returns
    -------
    VesselMaps

    Raises
    ------
    ValueError
        On a bad parameter (named, with its admissible range) or a segment of zero chord.
    """
    from nanosim.kernels import voxelise as vx

    t_start = time.perf_counter()
    be = _resolve_backend(backend)
    h = float(grid.voxel_size_m)
    half_diag = 0.5 * math.sqrt(3.0) * h
    samples_per_axis = int(samples_per_axis)
    if not 1 <= samples_per_axis <= 16:
        raise ValueError(f"samples_per_axis = {samples_per_axis}: use 1..16 (4 is the default)")
    if search_radius_m is None:
        search_radius_m = 4.0 * h
    search_radius_m = float(search_radius_m)
    if not search_radius_m >= half_diag:
        raise ValueError(f"search_radius_m = {search_radius_m!r} m is below half a voxel diagonal "
                         f"({half_diag:.4g} m): give at least √3/2 of the voxel size")
    if surface_spacing_m is None:
        surface_spacing_m = 0.25 * h
    surface_spacing_m = float(surface_spacing_m)
    if not 0 < surface_spacing_m <= 0.5 * h:
        raise ValueError(f"surface_spacing_m = {surface_spacing_m!r} m: must be > 0 and at most half "
                         f"the voxel size ({0.5 * h:.4g} m)")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype = {dtype}: use float32 or float64")

    shape = grid.shape_zyx
    m = network.n_segments
    prims = vx.build_primitives(network.node_pos_m, network.seg_nodes, network.seg_radius_m)
    k = vx.choose_cell_voxels(shape, h, search_radius_m)
    scale = None
    if scale_area_to_length and m:
        scale = network.seg_length_m / prims[:m, 6]
    nr, nphi, offsets, weight, t0_, dt_ = vx.surface_layout(prims, m, surface_spacing_m, scale,
                                                           grid.origin_m, grid.upper_m)
    timings = {}
    t0 = time.perf_counter()

    if be.name == "numpy":
        vf, sdf, prim = vx.numpy_voxel_fields(prims, shape, grid.origin_m, h, search_radius_m,
                                              samples_per_axis, np.float64)
        timings["voxels_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        area = vx.numpy_surface_area(prims, m, nr, nphi, offsets, weight, t0_, dt_, shape, grid.origin_m, h)
        timings["wall_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        dist = _far_field_cpu(sdf, prim, prims, grid.origin_m, h, half_diag, numpy_ref=True)
    else:
        start, items, ncell = vx.build_cell_lists(prims, shape, grid.origin_m, h, k, search_radius_m)
        timings["cells_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if be.name == "numba":
            vf, sdf, prim = vx.numba_voxel_fields(prims, start, items, k, ncell, shape, grid.origin_m, h,
                                                  search_radius_m, samples_per_axis, np.float64)
            timings["voxels_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            area = vx.numba_surface_area(prims, m, nr, nphi, offsets, weight, t0_, dt_, start, items, k, ncell,
                                         shape, grid.origin_m, h)
            timings["wall_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            dist = _far_field_cpu(sdf, prim, prims, grid.origin_m, h, half_diag)
        elif be.name == "cupy":
            vf, area, dist, prim = _cupy_fields(be, prims, start, items, k, ncell, shape, grid, h,
                                                search_radius_m, samples_per_axis, m, nr, nphi,
                                                offsets, weight, t0_, dt_, half_diag, timings)
            t0 = time.perf_counter()
        else:
            raise ValueError(f"backend {be.name!r} cannot voxelise: use numpy, numba or cupy")
    timings["distance_s"] = time.perf_counter() - t0

    seg = np.where(prim >= 0, prims[np.maximum(prim, 0), 9].astype(np.int64), -1)
    has = seg >= 0
    wall_type = np.full(shape, NO_WALL, np.uint8)
    radius = np.zeros(shape, np.float64)
    if m:
        wall_type[has] = network.seg_wall[seg[has]]
        radius[has] = network.seg_radius_m[seg[has]]
    timings["total_s"] = time.perf_counter() - t_start
    meta = dict(method="network", backend=be.name, samples_per_axis=samples_per_axis,
                search_radius_m=search_radius_m, surface_spacing_m=surface_spacing_m,
                cell_voxels=k, n_primitives=int(prims.shape[0]), n_wall_points=int(offsets[-1]),
                scale_area_to_length=bool(scale_area_to_length), timings=timings)
    return VesselMaps(grid=grid, volume_fraction=np.ascontiguousarray(vf, dtype=dtype),
                      surface_per_volume_per_m=area / grid.voxel_volume_m3, wall_type=wall_type,
                      nearest_segment=seg, distance_to_wall_m=np.ascontiguousarray(dist, dtype=dtype),
                      radius_m=radius, meta=meta)


def _seed_indices(sdf, prim, half_diag, h, xp, edt_fn):
    """EDT nearest-seed indices (3, nz, ny, nx), or None when there is no seed.

    Seeds are the voxels within √3h/2 of a lumen (all near-field voxels if there are none).
    """
    seeds = sdf <= half_diag
    if not bool(seeds.any()):
        seeds = prim >= 0
    if not bool(seeds.any()):
        return None
    return edt_fn(~seeds, sampling=h, return_distances=False, return_indices=True)


def _far_field_cpu(sdf, prim, prims, origin_m, h, half_diag, numpy_ref=False):
    """Exact distances where ``prim >= 0``; far-field estimate elsewhere (module docstring)."""
    from scipy import ndimage

    from nanosim.kernels import voxelise as vx

    dist = np.array(sdf, np.float64)
    if not (prim < 0).any():
        return dist
    ind = _seed_indices(sdf, prim, half_diag, h, np, ndimage.distance_transform_edt)
    if ind is None:
        dist[...] = np.inf
        return dist
    (vx.numpy_far_field if numpy_ref else vx.numba_far_field)(prims, prim, ind, origin_m, h, dist)
    return dist


def _cupy_fields(be, prims, start, items, k, ncell, shape, grid, h, search_r, nsamp, m, nr, nphi,
                 offsets, weight, t0, dt, half_diag, timings):
    """Voxel fields, wall area, distance on the device; returns host arrays (vf, area, dist, prim)."""
    import cupy as cp
    from cupyx.scipy import ndimage as cnd

    from nanosim.kernels import voxelise_cuda as vxc

    tic = time.perf_counter()
    n = int(np.prod(shape))
    d_prims = cp.asarray(prims)
    d_start = cp.asarray(start)
    d_items = cp.asarray(items if items.size else np.zeros(1, np.int32))
    vf = cp.empty(n, cp.float64)
    sdf = cp.empty(n, cp.float64)
    prim = cp.empty(n, cp.int64)
    vxc.voxel_fields(d_prims, d_start, d_items, k, ncell, shape, grid.origin_m, h, search_r, nsamp,
                     vf, sdf, prim)
    be.synchronize()
    timings["voxels_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    area = cp.zeros(n, cp.float64)
    vxc.surface_area(d_prims, m, cp.asarray(nr), cp.asarray(nphi), cp.asarray(offsets),
                     cp.asarray(weight), cp.asarray(t0), cp.asarray(dt), d_start, d_items, k, ncell, shape, grid.origin_m, h,
                     int(offsets[-1]), area)
    be.synchronize()
    timings["wall_s"] = time.perf_counter() - tic
    tic = time.perf_counter()
    sdf = sdf.reshape(shape)
    prim = prim.reshape(shape)
    dist = sdf.copy()
    if bool((prim < 0).any()):
        ind = _seed_indices(sdf, prim, half_diag, h, cp, cnd.distance_transform_edt)
        if ind is None:
            dist[...] = cp.inf
        else:
            vxc.far_field(d_prims, prim, cp.ascontiguousarray(ind), grid.origin_m, h, dist)
    be.synchronize()
    timings["distance_s_device"] = time.perf_counter() - tic
    return (cp.asnumpy(vf).reshape(shape), cp.asnumpy(area).reshape(shape), cp.asnumpy(dist),
            cp.asnumpy(prim))


# ----------------------------------------------------------------------------------------------
# Binary mask → maps
# ----------------------------------------------------------------------------------------------
#: Staircase correction for ``surface_method="isotropic"``: a voxelised surface with unit normal
#: n shows |n_x| + |n_y| + |n_z| of face area per unit true area, 3/2 on average over isotropic
#: orientations (Cauchy's mean projection), hence 2/3.
ISOTROPIC_FACTOR = 2.0 / 3.0


def maps_from_mask(mask, grid: Grid, wall_type=WallType.CAPILLARY, search_radius_m: float | None = None,
                   surface_method: str = "normal", normal_sigma_voxels: float = 1.0,
                   dtype=np.float64) -> VesselMaps:
    """Voxel maps of a binary vessel mask (True = lumen), host arrays.

    Parameters
    ----------
    mask : bool array (nz, ny, nx)
        Lumen voxels; must have the grid's shape ``grid.shape_zyx``.
    grid : Grid
    wall_type : WallType, int or str
        Wall type given to every voxel within ``search_radius_m`` of the wall (and inside).
    search_radius_m : float, optional
        Default 4 voxels.
    surface_method : {"normal", "isotropic"}
        How the exposed voxel faces (a lumen voxel next to a non-lumen voxel; the grid border is
        not a wall) become wall area. Each face has area h² but the staircase overestimates a
        smooth wall, whose unit normal n shows |n_a| of a-faces per unit area.
        ``"normal"``: each a-face counts ``|n_a|·h²`` with n the normalised gradient of the mask
        smoothed by a Gaussian of ``normal_sigma_voxels`` (Σ_a |n_a|·|n_a| = 1: unbiased wherever
        the normal is right; within ~2 % of 2πrL for cylinders of radius ≥ 4 voxels in any
        orientation). ``"isotropic"``: every face counts ``(2/3)·h²`` (:data:`ISOTROPIC_FACTOR`),
        right on average for isotropically oriented walls (a sphere), 15 % low for a vessel
        along a grid axis. Each face's area is split equally between its two voxels.
    normal_sigma_voxels : float
        Gaussian smoothing (voxels) for the normals.
    dtype : float32 or float64
        Of ``volume_fraction`` and ``distance_to_wall_m``.

    Returns
    -------
    VesselMaps
        ``volume_fraction`` 1 in the mask; ``distance_to_wall_m`` from the Euclidean distance
        transform, ``± (EDT to the nearest voxel of the other kind − h/2)`` (the wall sits half
        a voxel from the last lumen centre; on average within h/2, single voxels up to ~2h off); ``radius_m`` for lumen
        voxels the inside EDT (distance to the nearest non-lumen centre) at the nearest centreline
        voxel (local maximum of the inside EDT): on average within h/2 of the true radius, single
        voxels up to about 2h off (the centreline voxel is off the axis by up to √2h/2, the
        first outside centre beyond the wall by up to h); ``nearest_segment`` −1 everywhere.
    """
    from scipy import ndimage

    t_start = time.perf_counter()
    m = np.asarray(mask)
    if m.ndim != 3:
        raise ValueError(f"mask has {m.ndim} dimensions (shape {m.shape}): give a 3-D array indexed [z, y, x]")
    if tuple(m.shape) != tuple(grid.shape_zyx):
        raise ValueError(f"mask shape {m.shape} (z, y, x) does not match the grid {grid.shape_zyx} "
                         "(nz, ny, nx): build the Grid from the mask's shape or resample the mask")
    m = _as_bool(m, "mask")
    wt = int(WallType.parse(wall_type))
    h = float(grid.voxel_size_m)
    if search_radius_m is None:
        search_radius_m = 4.0 * h
    if surface_method not in ("normal", "isotropic"):
        raise ValueError(f"surface_method = {surface_method!r}: use 'normal' or 'isotropic'")
    dtype = np.dtype(dtype)

    shape = m.shape
    area = np.zeros(shape)
    if surface_method == "normal":
        smooth = ndimage.gaussian_filter(m.astype(np.float64), normal_sigma_voxels, mode="nearest")
        grad = np.gradient(smooth)  # along z, y, x
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        face = m[lo] != m[hi]
        if surface_method == "isotropic":
            a = face * (ISOTROPIC_FACTOR * h * h)
        else:
            g = [grad[b][lo] + grad[b][hi] for b in range(3)]
            norm = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2)
            with np.errstate(invalid="ignore", divide="ignore"):
                comp = np.where(norm > 0, np.abs(g[ax]) / norm, 1.0)
            a = face * comp * (h * h)
        area[lo] += 0.5 * a
        area[hi] += 0.5 * a

    if m.any() and not m.all():
        d_out = ndimage.distance_transform_edt(~m, sampling=h)
        d_in = ndimage.distance_transform_edt(m, sampling=h)
        dist = np.where(m, -(d_in - 0.5 * h), d_out - 0.5 * h)
        # centreline: local maxima of the inside EDT; every lumen voxel takes its nearest one's radius
        ridge = m & (d_in >= ndimage.maximum_filter(d_in, size=3, mode="nearest"))
        _, ind = ndimage.distance_transform_edt(~ridge, sampling=h, return_indices=True)
        radius = np.where(m, d_in[ind[0], ind[1], ind[2]], 0.0)
    elif m.all():
        dist = np.full(shape, -np.inf)
        radius = np.full(shape, np.inf)
    else:
        dist = np.full(shape, np.inf)
        radius = np.zeros(shape)
    near = dist <= search_radius_m
    wall = np.where(near, wt, NO_WALL).astype(np.uint8)
    meta = dict(method="mask", surface_method=surface_method, normal_sigma_voxels=normal_sigma_voxels,
                search_radius_m=float(search_radius_m), timings={"total_s": time.perf_counter() - t_start})
    return VesselMaps(grid=grid, volume_fraction=m.astype(dtype), surface_per_volume_per_m=area / h**3,
                      wall_type=wall, nearest_segment=np.full(shape, -1, np.int64),
                      distance_to_wall_m=dist.astype(dtype), radius_m=radius, meta=meta)


def _as_bool(a, what):
    if a.dtype == bool:
        return a
    if not (np.issubdtype(a.dtype, np.number)):
        raise ValueError(f"{what} has dtype {a.dtype}: give a boolean or 0/1 numeric array")
    u = np.unique(a)
    if not np.all(np.isin(u, (0, 1))):
        raise ValueError(f"{what} holds values other than 0 and 1 (e.g. {u[~np.isin(u, (0, 1))][:3].tolist()}): "
                         "threshold it first, e.g. mask = image > level")
    return a.astype(bool)


def load_mask(path, dataset: str | None = None) -> np.ndarray:
    """Read a binary vessel mask as a bool array indexed [z, y, x].

    Parameters
    ----------
    path : str or Path
        ``.npy`` (array as stored, [z, y, x]); ``.npz`` or HDF5 (``.h5``, ``.hdf5``, ``.hdf``; the
        array named ``dataset``, or the only array in the file); NIfTI (``.nii``, ``.nii.gz``;
        needs ``nibabel``; NIfTI stores [x, y, z], transposed here to [z, y, x]).
    dataset : str, optional
        Name of the array inside an ``.npz`` or HDF5 file.

    Raises
    ------
    FileNotFoundError, ValueError, KeyError, ImportError
        Naming the file and what to do.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"mask file {str(p)!r} not found: check the path")
    name = p.name.lower()
    if name.endswith(".npy"):
        a = np.load(p, allow_pickle=False)
    elif name.endswith(".npz"):
        with np.load(p, allow_pickle=False) as z:
            a = z[_pick(list(z.files), dataset, p)]
    elif name.endswith((".h5", ".hdf5", ".hdf")):
        import h5py

        with h5py.File(p, "r") as f:
            names = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            a = f[_pick(names, dataset, p)][()]
    elif name.endswith((".nii", ".nii.gz")):
        try:
            import nibabel
        except ImportError:
            raise ImportError(f"reading the NIfTI mask {str(p)!r} needs nibabel: `pip install nibabel`, "
                              "or save the mask as .npy or HDF5") from None
        a = np.asarray(nibabel.load(str(p)).dataobj)
        if a.ndim == 3:
            a = np.transpose(a, (2, 1, 0))
    else:
        raise ValueError(f"mask file {str(p)!r}: unknown format; use .npy, .npz, .h5/.hdf5 or .nii/.nii.gz")
    a = np.asarray(a)
    if a.ndim != 3:
        raise ValueError(f"mask in {str(p)!r} has shape {a.shape}: need a 3-D array")
    return np.ascontiguousarray(_as_bool(a, f"mask in {str(p)!r}"))


def _pick(names, dataset, p):
    if dataset is not None:
        if dataset not in names:
            raise KeyError(f"mask file {str(p)!r} has no array {dataset!r}; it holds: {', '.join(names) or 'none'}")
        return dataset
    if len(names) != 1:
        raise KeyError(f"mask file {str(p)!r} holds {len(names)} arrays ({', '.join(names) or 'none'}): "
                       "name one with dataset=")
    return names[0]
