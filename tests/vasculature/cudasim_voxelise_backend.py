"""The cupy backend's whole voxelisation path (``voxelise(..., backend="cupy")``) in the CUDA simulator.

CuPy and cupyx need a device, so this script stands in for them with NumPy and SciPy
(``cupy.asarray`` → ``numpy.asarray``, ``cupyx.scipy.ndimage.distance_transform_edt`` → SciPy's);
under ``NUMBA_ENABLE_CUDASIM=1`` the CUDA kernels accept host arrays. That runs the host-side glue
of the GPU path (array transfers, launch arguments, the far-field distance) end to end and
compares it with the numba backend. Executed in a subprocess by tests/vasculature/test_voxelise.py;
exits non-zero on a mismatch.
"""

import sys
import types

import numpy as np
import scipy.ndimage


def install_stand_ins():
    cp = types.ModuleType("cupy")
    cp.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    cp.asnumpy = np.asarray
    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(deviceSynchronize=lambda: None))
    cupyx = types.ModuleType("cupyx")
    cupyx_scipy = types.ModuleType("cupyx.scipy")
    nd = types.ModuleType("cupyx.scipy.ndimage")
    nd.distance_transform_edt = scipy.ndimage.distance_transform_edt
    cupyx.scipy, cupyx_scipy.ndimage = cupyx_scipy, nd
    sys.modules.update({"cupy": cp, "cupyx": cupyx, "cupyx.scipy": cupyx_scipy, "cupyx.scipy.ndimage": nd})
    return cp


def main():
    cp = install_stand_ins()
    from nanosim.backends import Backend
    from nanosim.geometry import Grid
    from nanosim.vasculature import VesselNetwork, voxelise

    h = 1e-6
    grid = Grid((9, 7, 6), h)
    # a bent vessel crossing a straight one, partly outside the grid, and a far voxel region
    net = VesselNetwork(node_pos_m=[[-1e-6, 2.6e-6, 3.1e-6], [3.5e-6, 3.2e-6, 2.7e-6], [6.0e-6, 5.5e-6, 3.3e-6],
                                    [3.2e-6, -1e-6, 1.0e-6], [3.9e-6, 7e-6, 5.2e-6]],
                        seg_nodes=[[0, 1], [1, 2], [3, 4]], seg_radius_m=[1.4e-6, 1.1e-6, 0.9e-6],
                        seg_wall=[0, 0, 5])
    sim = Backend("cupy", cp, "CUDA simulator")
    a = voxelise(net, grid, backend=sim, samples_per_axis=3, search_radius_m=2 * h)
    b = voxelise(net, grid, backend="numba", samples_per_axis=3, search_radius_m=2 * h)
    ok = True
    # same kernels, same order: equal up to FMA contraction (a few ulp)
    for name, tol in (("volume_fraction", 0.0), ("surface_per_volume_per_m", 1e-10), ("distance_to_wall_m", 1e-12),
                      ("nearest_segment", 0.0), ("wall_type", 0.0), ("radius_m", 0.0)):
        x, y = getattr(a, name).astype(float), getattr(b, name).astype(float)
        fin = np.isfinite(y)
        diff = np.abs(x[fin] - y[fin]).max() / max(np.abs(y[fin]).max(), 1e-300)
        good = diff <= tol and np.array_equal(np.isfinite(x), fin)
        print(f"{name}: rel diff {diff:.2e}", "ok" if good else "MISMATCH")
        ok &= bool(good)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
