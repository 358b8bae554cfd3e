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
