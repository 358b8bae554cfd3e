"""Run the CUDA state-transition kernel in Numba's CUDA simulator and compare it with Numba.

Executed in a subprocess with NUMBA_ENABLE_CUDASIM=1 by tests/carriers/test_particle_states.py
(the variable is read when ``numba.cuda`` is first imported); prints one line per case ending in
"ok" or "MISMATCH" and exits non-zero on a mismatch.

Both backends evaluate the same pointwise function (``particle_states.update_state``) on the
same Philox uniforms, so the new states and the counts must be identical (the only freedom, the
last bit of ``expm1``, decides a particle with probability ~1e-16).
"""

import sys

import numpy as np

from nanosim.geometry.grid import Grid
from nanosim.kernels import particle_states, particle_states_cuda

N_PARTICLES = 400
N_STEPS = 3


def main():
    rs = np.random.default_rng(21)
    grid = Grid((6, 5, 4), 9e-6, (-3e-6, 2e-6, 1e-6))
    lo, hi = np.array(grid.origin_m), np.array(grid.upper_m)
    # a few particles outside the box: they take the nearest boundary voxel
    pos = lo - 5e-6 + rs.random((N_PARTICLES, 3)) * (hi - lo + 10e-6)
    ids = rs.choice(2**42, N_PARTICLES, replace=False).astype(np.int64)
    region = rs.integers(0, 3, grid.shape_zyx).astype(np.uint8)
    rates = rs.random((3, 5)) * 0.05
    iv = rs.random(grid.shape_zyx) * 0.05
    cases = {"rates only": dict(), "with intravasation": dict(intravasation_per_s=iv),
             "float32 intravasation": dict(intravasation_per_s=iv.astype(np.float32))}
    ok = True
    for name, extra in cases.items():
        for dtype, sdtype in ((np.float64, np.uint8), (np.float32, np.int8)):
            xyz = [np.ascontiguousarray(pos[:, k], dtype=dtype) for k in range(3)]
            s0 = rs.integers(0, 9, N_PARTICLES).astype(sdtype)
            a, b = s0.copy(), s0.copy()
            ca = np.zeros(6, np.int64)
            cb = np.zeros(6, np.int64)
            for n in range(N_STEPS):
                kw = dict(dt_s=7.0, seed=-11, grid=grid, region=region, rates_per_s=rates, **extra)
                ca += particle_states.numba_transition(*xyz, a, ids, 50 + n, **kw)
                cb += np.asarray(particle_states_cuda.transition(*xyz, b, ids, 50 + n,
                                                                 threads_per_block=64, **kw))
            changed = int(np.sum(a != s0))
            good = np.array_equal(a, b) and np.array_equal(ca, cb) and changed > 20
            print(f"{name} {np.dtype(dtype).name}/{np.dtype(sdtype).name}: states equal "
                  f"{np.array_equal(a, b)}, counts {ca.tolist()} vs {cb.tolist()}, "
                  f"{changed} changed", "ok" if good else "MISMATCH")
            ok &= bool(good)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
