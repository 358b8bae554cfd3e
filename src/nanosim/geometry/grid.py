"""The voxel grid: a box of cubic voxels, arrays indexed [z, y, x] (x contiguous, as in VTK)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _fmt_len(m: float) -> str:
    a = abs(m)
    if a == 0:
        return "0 m"
    for unit, f in (("m", 1.0), ("mm", 1e-3), ("µm", 1e-6), ("nm", 1e-9)):
        if a >= f:
            return f"{m / f:.4g} {unit}"
    return f"{m:.3g} m"


@dataclass(frozen=True)
class Grid:
    """A regular box of ``nx × ny × nz`` cubic voxels.

    Parameters
    ----------
    shape_xyz : (int, int, int)
        Number of voxels along x, y, z.
    voxel_size_m : float
        Edge length of a voxel (m).
    origin_m : (float, float, float)
        Position of the box's lower corner (m).

    Fields live in arrays of shape ``shape_zyx = (nz, ny, nx)``; voxel ``[k, j, i]`` has its centre
    at ``origin + (i + ½, j + ½, k + ½)·h``.

    >>> Grid((64, 32, 4), 5e-6, (0.0, 0.0, 0.0))
    Grid 64×32×4 voxels (8192) of 5 µm
    └── box [0 m, 320 µm] × [0 m, 160 µm] × [0 m, 20 µm]
    """

    shape_xyz: tuple
    voxel_size_m: float
    origin_m: tuple = (0.0, 0.0, 0.0)

    @property
    def shape_zyx(self) -> tuple:
        nx, ny, nz = self.shape_xyz
        return (nz, ny, nx)

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape_xyz))

    @property
    def voxel_volume_m3(self) -> float:
        return self.voxel_size_m**3

    @property
    def upper_m(self) -> tuple:
        return tuple(o + n * self.voxel_size_m for o, n in zip(self.origin_m, self.shape_xyz))

    def centers_m(self, axis: int) -> np.ndarray:
        """Voxel-centre coordinates (m) along physical axis 0 (x), 1 (y) or 2 (z)."""
        n = self.shape_xyz[axis]
        return self.origin_m[axis] + (np.arange(n) + 0.5) * self.voxel_size_m

    def mesh_m(self):
        """Broadcastable centre coordinates ``(z, y, x)`` of shapes (nz,1,1), (1,ny,1), (1,1,nx)."""
        x = self.centers_m(0)[None, None, :]
        y = self.centers_m(1)[None, :, None]
        z = self.centers_m(2)[:, None, None]
        return z, y, x

    def contains(self, point_m) -> bool:
        return all(o <= p <= u for o, p, u in zip(self.origin_m, point_m, self.upper_m))

    def __repr__(self) -> str:
        nx, ny, nz = self.shape_xyz
        box = " × ".join(f"[{_fmt_len(o)}, {_fmt_len(u)}]" for o, u in zip(self.origin_m, self.upper_m))
        return (f"Grid {nx}×{ny}×{nz} voxels ({self.n_voxels}) of {_fmt_len(self.voxel_size_m)}\n"
                f"└── box {box}")
