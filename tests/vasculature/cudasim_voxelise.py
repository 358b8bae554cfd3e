"""Run the CUDA voxelisation kernels in Numba's CUDA simulator and compare with the CPU kernels.

Executed in a subprocess with NUMBA_ENABLE_CUDASIM=1 by tests/vasculature/test_voxelise.py on a
tiny grid; prints one line per field and exits non-zero on a mismatch.
"""

import sys

import numpy as np

from nanosim.kernels import voxelise as vx
from nanosim.kernels import voxelise_cuda as vxc


def main():
    h = 1e-6
    shape = (6, 6, 7)  # (nz, ny, nx)
    origin = (0.0, 0.0, 0.0)
    # a bent vessel (two segments: node sphere) crossing a straight one, all partly in the grid
    pos = np.array([[-1e-6, 2.6e-6, 3.1e-6], [3.5e-6, 3.2e-6, 2.7e-6], [6.0e-6, 5.5e-6, 3.3e-6],
                    [3.2e-6, -1e-6, 1.0e-6], [3.9e-6, 7e-6, 5.2e-6]])
    segs = np.array([[0, 1], [1, 2], [3, 4]])
    rad = np.array([1.4e-6, 1.1e-6, 0.9e-6])
    prims = vx.build_primitives(pos, segs, rad)
    search_r, nsamp = 2.0 * h, 3
    k = 2
    start, items, ncell = vx.build_cell_lists(prims, shape, origin, h, k, search_r)
    vf1, sdf1, prim1 = vx.numba_voxel_fields(prims, start, items, k, ncell, shape, origin, h, search_r, nsamp)
    n = int(np.prod(shape))
    vf2, sdf2, prim2 = np.empty(n), np.empty(n), np.empty(n, np.int64)
    vxc.voxel_fields(prims, start, items, k, ncell, shape, origin, h, search_r, nsamp, vf2, sdf2, prim2)
    ok = True
    # same arithmetic in the same order: equal up to FMA contraction (a few ulp of h)
    checks = [("volume fraction", np.abs(vf1.ravel() - vf2).max(), 0.0),
              ("signed distance", np.abs(sdf1.ravel() - sdf2).max(), 8 * np.finfo(float).eps * h),
              ("nearest primitive", float(np.count_nonzero(prim1.ravel() != prim2)), 0.0)]
    nr, nphi, off, w, t0, dt = vx.surface_layout(prims, len(segs), 0.4 * h, None, (0, 0, 0), (7 * h, 6 * h, 6 * h))
    a1 = vx.numba_surface_area(prims, len(segs), nr, nphi, off, w, t0, dt, start, items, k, ncell, shape, origin, h)
    a2 = np.zeros(n)
    vxc.surface_area(prims, len(segs), nr, nphi, off, w, t0, dt, start, items, k, ncell, shape, origin, h,
                     int(off[-1]), a2)
    # float64 sums of the same terms in another order: round-off of the largest voxel total
    checks.append(("wall area", np.abs(a1.ravel() - a2).max(), 1e-12 * a1.max()))
    far = prim1 < 0
    from scipy import ndimage

    ind = ndimage.distance_transform_edt(~(sdf1 <= 0.5 * np.sqrt(3) * h), return_distances=False,
                                         return_indices=True)
    d1 = sdf1.copy()
    vx.numba_far_field(prims, prim1, ind, origin, h, d1)
    d2 = sdf1.copy()
    vxc.far_field(prims, prim1, ind, origin, h, d2)
    checks.append(("far-field distance", np.abs(d1 - d2).max(), 8 * np.finfo(float).eps * h))
    for name, err, tol in checks:
        good = bool(err <= tol)
        ok &= good
        print(f"{name}: max diff {err:.3g} (tol {tol:.3g})", "ok" if good else "MISMATCH")
    print(f"cases: {int(far.sum())} far voxels, {int((vf1 > 0).sum())} lumen voxels, {int(off[-1])} wall points")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
