"""Geometry: the voxel grid, tissue regions, vessels as voxel sets."""

from .grid import Grid
from .tissue import NECROTIC, NORMAL, REGION_NAMES, TUMOUR, region_map
from .vessels import THETA_MIN, cylinder_mask, vessel_maps, wall_correction

__all__ = ["Grid", "NORMAL", "TUMOUR", "NECROTIC", "REGION_NAMES", "region_map", "cylinder_mask",
           "vessel_maps", "wall_correction", "THETA_MIN"]
