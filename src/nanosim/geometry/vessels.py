"""Vessels as voxel sets (straight cylinders), until the full network model lands.

A voxel belongs to a cylinder when its centre lies within ``radius_m`` of the segment between
``start_m`` and ``end_m`` (capsule ends clipped to the segment). Each such voxel carries the wall
surface per volume of the lumen, ``S/V = 2/r`` (m⁻¹): summed over the voxels this gives the
lateral area ``2πrL`` to the accuracy of the voxelised volume.
"""

from __future__ import annotations

import numpy as np

from .grid import Grid


def cylinder_mask(grid: Grid, start_m, end_m, radius_m) -> np.ndarray:
    """Boolean (nz, ny, nx) mask of voxels whose centre is inside the finite cylinder."""
    z, y, x = grid.mesh_m()
    p0 = np.asarray(start_m, float)
    axis = np.asarray(end_m, float) - p0
    length = float(np.linalg.norm(axis))
    t_hat = axis / length
    dx, dy, dz = x - p0[0], y - p0[1], z - p0[2]
    s = dx * t_hat[0] + dy * t_hat[1] + dz * t_hat[2]  # position along the axis
    d2 = dx * dx + dy * dy + dz * dz - s * s  # squared distance from the axis
    return (d2 <= radius_m**2) & (s >= 0.0) & (s <= length)


def vessel_maps(grid: Grid, vessels):
    """Voxel maps of a list of cylinder vessels.

    Returns
    -------
    fixed : uint8 array
        1 in voxels of vessels whose wall is ``fixed_concentration``.
    surface_per_volume_per_m : float64 array
        ``2/r`` in voxels of ``exchange`` vessels, 0 elsewhere.
    vessel : uint8 array
        1 in every vessel voxel (for output).
    """
    fixed = np.zeros(grid.shape_zyx, dtype=np.uint8)
    sv = np.zeros(grid.shape_zyx, dtype=np.float64)
    any_vessel = np.zeros(grid.shape_zyx, dtype=np.uint8)
    for v in vessels:
        m = cylinder_mask(grid, v.start_m, v.end_m, v.radius_m)
        any_vessel[m] = 1
        if v.wall == "fixed_concentration":
            fixed[m] = 1
        else:
            sv[m] = np.maximum(sv[m], 2.0 / v.radius_m)
    return fixed, sv, any_vessel


#: Smallest wall distance, in voxel spacings, used for the sub-voxel wall correction. Closer walls
#: are treated as at this distance: the conductance to the wall is capped at 1/THETA_MIN times a
#: regular face's, which bounds the explicit time-step penalty (see :func:`wall_correction`).
THETA_MIN = 0.25


def wall_correction(grid: Grid, vessels, fixed: np.ndarray, theta_min: float = THETA_MIN) -> np.ndarray:
    r"""Sub-voxel position of fixed-concentration vessel walls, as an extra wall conductance.

    Voxels whose centre lies inside a vessel hold the plasma concentration, so a staircase wall
    would sit at the outermost voxel centres, about a third of a voxel inside the true radius —
    a first-order error in ``h / r`` that shifts the whole tissue profile. Instead, for each face
    between a tissue voxel ``i`` and a vessel voxel ``j``, the wall crosses the segment between
    their centres at fraction ``θ ∈ (0, 1]`` (from ``i``), and the flux through that face is
    ``D (c_w − c_i) / (θ h)`` per area (Shortley–Weller treatment of an embedded Dirichlet wall,
    second order). The regular stencil already carries ``D (c_w − c_i) / h``; the difference is
    a linear exchange ``D/h² · Σ_faces (1/θ − 1) · (c_w − c_i)``.

    Returns
    -------
    ndarray (nz, ny, nx)
        ``Σ_faces (1/max(θ, theta_min) − 1)`` per tissue voxel (dimensionless; multiply by
        ``D/h²`` for a rate in 1/s), zero elsewhere. ``theta_min`` (default :data:`THETA_MIN`,
        which protects an explicit time step) caps the conductance of a wall very near a centre.
    """
    h = grid.voxel_size_m
    z, y, x = grid.mesh_m()
    shape = grid.shape_zyx
    P = [np.broadcast_to(x, shape), np.broadcast_to(y, shape), np.broadcast_to(z, shape)]
    fixed_b = fixed.astype(bool)
    out = np.zeros(shape)
    cyls = [v for v in vessels if v.wall == "fixed_concentration"]
    for arr_axis, phys in ((2, 0), (1, 1), (0, 2)):
        for sign in (-1, 1):
            nb = np.roll(fixed_b, -sign, axis=arr_axis)  # nb[i] = fixed[i + sign·e]
            edge = [slice(None)] * 3
            edge[arr_axis] = slice(-1, None) if sign > 0 else slice(0, 1)
            nb[tuple(edge)] = False  # no neighbour across the domain wall
            face = nb & ~fixed_b
            if not face.any():
                continue
            idx = np.nonzero(face)
            pts = np.stack([P[a][idx] for a in range(3)], axis=1)
            d = np.zeros(3)
            d[phys] = sign * h
            theta = np.full(len(pts), np.inf)
            for v in cyls:
                p0 = np.asarray(v.start_m, float)
                t_hat = np.asarray(v.end_m, float) - p0
                t_hat /= np.linalg.norm(t_hat)
                w = pts - p0
                w_perp = w - np.outer(w @ t_hat, t_hat)
                d_perp = d - (d @ t_hat) * t_hat
                A = d_perp @ d_perp
                if A == 0:
                    continue
                B = 2 * (w_perp @ d_perp)
                C = np.einsum("ij,ij->i", w_perp, w_perp) - v.radius_m**2
                disc = B * B - 4 * A * C
                ok = disc >= 0
                s = np.full(len(pts), np.inf)
                s[ok] = (-B[ok] - np.sqrt(disc[ok])) / (2 * A)
                good = ok & (s > 0) & (s <= 1 + 1e-12)
                theta = np.where(good, np.minimum(theta, s), theta)
            theta = np.where(np.isfinite(theta), np.minimum(theta, 1.0), 1.0)
            out[idx] += 1.0 / np.maximum(theta, theta_min) - 1.0
    return out
