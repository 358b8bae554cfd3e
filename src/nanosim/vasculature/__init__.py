"""Vessel networks: the network type, canonical geometries, generators, import/export, voxelisation."""

from .network import BCKind, NetworkError, VesselNetwork, WallType

__all__ = ["BCKind", "NetworkError", "VesselNetwork", "WallType"]
