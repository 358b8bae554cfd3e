"""Run the CUDA release kernel in Numba's CUDA simulator and compare it with Numba.

Executed in a subprocess with NUMBA_ENABLE_CUDASIM=1 by tests/release/test_release_kernel.py
(the variable is read when ``numba.cuda`` is first imported); prints one line per case ending in
"ok" or "MISMATCH" and exits non-zero on a mismatch. It first checks that importing the
release kernel and its scenario models loads neither ``numba.cuda`` nor CuPy.

Both backends evaluate the same pointwise function (``release.release_particle``); the
simulator runs its plain-Python form (CPython's ``math``), the CPU kernel LLVM's math library,
so they agree to a few ulp: clocks and fractions to 1e-14 relative (1e-15 absolute), released
amounts to 1e-13 relative of the largest ``weight × payload``.
"""

import sys

import numpy as np

from nanosim.kernels import compartments as C
from nanosim.kernels import release
from nanosim.scenario import release as scenario_release  # noqa: F401  (imported for the check)

N_PARTICLES = 300
STEPS = (40.0, 900.0, 3000.0)
HILL = dict(pka=6.4, hill_n=1.5, h_min=0.05)


def _cases():
    P = release.ReleaseParams
    return {
        "first_order burst": (P.first_order(2e-4, burst_fraction=0.1, **HILL), np.float64, np.uint8),
        "first_order no pH field": (P.first_order(2e-4, **HILL), None, np.uint8),
        "higuchi": (P.higuchi(5e-3, factors={"vessel": 0.3}), np.float32, np.int8),
        "korsmeyer_peppas": (P.korsmeyer_peppas(1e-2, 0.43, **HILL), np.float64, np.int8),
        "weibull": (P.weibull(1500.0, 0.6, burst_fraction=0.2, burst_states=(C.TISSUE,), **HILL),
                    np.float32, np.uint8),
        "sphere small x": (P.sphere_diffusion(1e-18, 1e-6, **HILL), np.float64, np.uint8),
        "sphere across the switch": (P.sphere_diffusion(1e-15, 1e-6, **HILL), np.float64, np.uint8),
        "none with burst": (P.none(burst_fraction=0.4), np.float64, np.int8),
    }


def main():
    # importing the kernel and the scenario models must not load numba.cuda (nor CuPy)
    loaded = [m for m in sys.modules if m.startswith(("numba.cuda", "cupy"))]
    print(f"import without CUDA: {loaded or 'nothing'} loaded", "MISMATCH" if loaded else "ok")
    ok = not loaded
    from nanosim.kernels import release_cuda

    for k, (name, (params, ph_dtype, sdtype)) in enumerate(_cases().items()):
        rs = np.random.default_rng(100 + k)
        state = rs.integers(-1 if sdtype == np.int8 else 0, 10, N_PARTICLES).astype(sdtype)
        arrays = [np.where(rs.random(N_PARTICLES) < 0.5, 0.0, rs.random(N_PARTICLES) * 4000.0),
                  np.zeros(N_PARTICLES), rs.random(N_PARTICLES) * 1e-18,
                  1.0 + rs.random(N_PARTICLES) * 1e4, state]
        ph = None if ph_dtype is None else (5.0 + 2.6 * rs.random(N_PARTICLES)).astype(ph_dtype)
        a = [x.copy() for x in arrays]
        b = [x.copy() for x in arrays]
        good = True
        for dt in STEPS:
            ra = release.numba_release_step(*a, ph, dt_s=dt, params=params)
            rb = np.asarray(release_cuda.release_step(*b, ph, dt_s=dt, params=params,
                                                      threads_per_block=64))
            scale = float(np.max(a[2] * a[3]))
            good &= bool(np.allclose(a[0], b[0], rtol=1e-14, atol=0)
                         and np.allclose(a[1], b[1], rtol=1e-14, atol=1e-15)
                         and np.allclose(ra, rb, rtol=1e-13, atol=1e-13 * scale))
        released = int(np.count_nonzero(a[1]))
        good &= released > N_PARTICLES // 4
        print(f"{name}: {released} particles released, max |Δfraction| "
              f"{float(np.max(np.abs(a[1] - b[1]))):.2g}", "ok" if good else "MISMATCH")
        ok &= good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
