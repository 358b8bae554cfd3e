"""Vessel networks: the network type, canonical geometries, generators, import/export, voxelisation."""

from .canonical import bifurcation, binary_tree, murray_child_radius, straight_vessel
from .io import (
    NetworkFileError,
    load_network_h5,
    read_network,
    save_network_h5,
    write_network_csv,
    write_network_json,
    write_secomb,
    write_vtp,
)
from .network import BCKind, NetworkError, VesselNetwork, WallType
from .generate import LiverTumourParams, generate_liver_tumour, tumour_inflow_split, vessel_region_summary
from .voxelise import VesselMaps, load_mask, maps_from_mask, voxelise

__all__ = ["BCKind", "NetworkError", "VesselNetwork", "WallType"]
__all__ += [
    "NetworkFileError",
    "bifurcation",
    "binary_tree",
    "load_network_h5",
    "murray_child_radius",
    "read_network",
    "save_network_h5",
    "straight_vessel",
    "write_network_csv",
    "write_network_json",
    "write_secomb",
    "write_vtp",
]
__all__ += ["VesselMaps", "load_mask", "maps_from_mask", "voxelise"]
__all__ += ["LiverTumourParams", "generate_liver_tumour", "tumour_inflow_split", "vessel_region_summary"]
