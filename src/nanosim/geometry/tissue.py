"""Tissue regions on the grid: normal liver, tumour (viable rim) and necrotic core.

Region codes are small integers stored per voxel (uint8) and index the per-region property
tables of every transport kernel.
"""

from __future__ import annotations

import numpy as np

from .grid import Grid

NORMAL = 0
TUMOUR = 1
NECROTIC = 2
REGION_NAMES = ("normal", "tumour", "necrotic")


def region_map(grid: Grid, tumour) -> np.ndarray:
    """Region code per voxel (uint8, shape ``grid.shape_zyx``) from a scenario's tumour spec.

    A voxel belongs to a region when its centre lies inside it. ``tumour.kind`` is ``none``,
    ``sphere`` (``center_m``, ``radius_m``, ``necrotic_radius_m``) or ``ellipsoid`` (``center_m``,
    ``semi_axes_m``, ``necrotic_fraction`` of each semi-axis).
    """
    reg = np.zeros(grid.shape_zyx, dtype=np.uint8)
    kind = getattr(tumour, "kind", "none")
    if kind == "none":
        return reg
    z, y, x = grid.mesh_m()
    cx, cy, cz = tumour.center_m
    if kind == "sphere":
        axes = (tumour.radius_m,) * 3
        core = tumour.necrotic_radius_m / tumour.radius_m
    elif kind == "ellipsoid":
        axes = tuple(tumour.semi_axes_m)
        core = tumour.necrotic_fraction
    else:  # the schema admits no other kind
        raise ValueError(f"unknown tumour kind {kind!r}")
    rho2 = ((x - cx) / axes[0]) ** 2 + ((y - cy) / axes[1]) ** 2 + ((z - cz) / axes[2]) ** 2
    reg[rho2 <= 1.0] = TUMOUR
    if core > 0:
        reg[rho2 <= core**2] = NECROTIC
    return reg


def normalised_radius(grid: Grid, tumour) -> np.ndarray:
    """ρ per voxel centre: 0 at the tumour's centre, 1 on its surface (ellipsoid-normalised).

    Every layer ``ρ₁ ≤ ρ < ρ₂`` of the whole tumour has the volume ``V (ρ₂³ − ρ₁³)``.
    """
    z, y, x = grid.mesh_m()
    cx, cy, cz = tumour.center_m
    axes = (tumour.radius_m,) * 3 if tumour.kind == "sphere" else tuple(tumour.semi_axes_m)
    return np.sqrt(((x - cx) / axes[0]) ** 2 + ((y - cy) / axes[1]) ** 2 + ((z - cz) / axes[2]) ** 2)


def whole_tumour_weights(grid: Grid, tumour, whole_volume_m3: float, layer_voxels: float = 2.0):
    """How much of a whole tumour each voxel of the box's tumour stands for (depth-resolved).

    The box holds a sample of a tumour of volume ``whole_volume_m3`` (all of it, or a piece of
    its edge or interior). The tumour is cut into layers of equal normalised depth (``ρ`` of
    :func:`normalised_radius`, each ``layer_voxels`` voxels thick along the shortest semi-axis);
    a layer the box samples stands for the whole tumour's volume of that layer, shared equally
    by the box voxels in it. A layer the box misses borrows the nearest sampled layer of the same
    tissue (viable or necrotic); when the box holds no necrotic voxel at all, the core's volume
    is counted as holding no carriers and is returned as ``unsampled_necrotic_m3``.

    Returns ``(weights, info)``: ``weights`` per voxel (m³ of whole tumour per m³ of box; 0
    outside the tumour), so that an amount field ``a`` (per voxel) gives the whole tumour's
    amount ``Σ a · weights``; ``info`` says what was sampled. With the whole tumour in the box
    every weight is ``whole_volume_m3 / V_box`` (plain volume scaling, up to the voxelisation of
    the surface).
    """
    reg = region_map(grid, tumour)
    rho = normalised_radius(grid, tumour)
    axes = (tumour.radius_m,) * 3 if tumour.kind == "sphere" else tuple(tumour.semi_axes_m)
    core = (tumour.necrotic_radius_m / tumour.radius_m) if tumour.kind == "sphere" else tumour.necrotic_fraction
    v_geom = 4.0 / 3.0 * np.pi * float(np.prod(axes))
    scale = whole_volume_m3 / v_geom  # the body's tumour may differ in size from the box's sphere
    vox = grid.voxel_size_m**3
    d_rho = layer_voxels * grid.voxel_size_m / min(axes)
    # layer edges: the necrotic boundary is an edge, so no layer mixes the two tissues
    viable_edges = np.unique(np.concatenate([np.arange(core, 1.0, d_rho), [1.0]]))
    necrotic_edges = np.unique(np.concatenate([np.arange(0.0, core, d_rho), [core]])) if core > 0 else np.zeros(0)
    weights = np.zeros(grid.shape_zyx)
    info = {"sampled_m3": 0.0, "borrowed_m3": 0.0, "unsampled_necrotic_m3": 0.0}
    for code, edges in ((TUMOUR, viable_edges), (NECROTIC, necrotic_edges)):
        if len(edges) < 2:
            continue
        sel = reg == code
        layer = np.clip(np.searchsorted(edges, rho[sel], side="right") - 1, 0, len(edges) - 2)
        counts = np.bincount(layer, minlength=len(edges) - 1).astype(float)
        v_layer = scale * v_geom * np.diff(edges**3)
        sampled = np.flatnonzero(counts > 0)
        if sampled.size == 0:
            if code == NECROTIC:
                info["unsampled_necrotic_m3"] = float(v_layer.sum())
            continue
        # every layer's volume goes to itself if sampled, else to the nearest sampled layer
        mids = 0.5 * (edges[:-1] + edges[1:])
        nearest = sampled[np.argmin(np.abs(mids[:, None] - mids[sampled][None, :]), axis=1)]
        v_assigned = np.bincount(nearest, weights=v_layer, minlength=len(v_layer))
        info["sampled_m3"] += float(v_layer[sampled].sum())
        info["borrowed_m3"] += float(v_layer.sum() - v_layer[sampled].sum())
        per_voxel = np.zeros(len(v_layer))
        per_voxel[sampled] = v_assigned[sampled] / (counts[sampled] * vox)
        weights[sel] = per_voxel[layer]
    return weights, info
