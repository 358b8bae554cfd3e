"""Transport on the voxel grid: the diffusion–convection–reaction operator."""

from .operator import BC_CODES, TransportOperator

__all__ = ["BC_CODES", "TransportOperator"]
