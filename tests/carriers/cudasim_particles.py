"""Run the CUDA particle kernel in Numba's CUDA simulator and compare it with the Numba kernel.

Executed in a subprocess with NUMBA_ENABLE_CUDASIM=1 by tests/carriers/test_particles.py (the
variable is read when ``numba.cuda`` is first imported); prints one line per case and exits
non-zero on a mismatch.

Both backends evaluate the same pointwise function (``particles.update_particle``) on the same
Philox streams in float64, so the positions agree to the last bits: the only freedom is the
math library's ``log``/``cos``/``sin`` inside the normals (a few ulp of ξ, see
nanosim.kernels.rng); the uniform steps use no math library at all (a real GPU may still
contract multiply-adds into FMAs, hence the same tolerance). The check allows 16 ulp of
``σ·max|ξ|`` per step plus one ulp of the position per step (a float32 position can round the
other way after such a difference), far below any physical effect and far above what the
simulator (plain Python ``math``) shows.
"""

import sys

import numpy as np

from numba import cuda

from nanosim.geometry.grid import Grid
from nanosim.kernels import carriers, particles, particles_cuda

N_PARTICLES = 300
N_STEPS = 3


_dd_h = carriers.dechadilok_deen_h.cuda
_dd_w = carriers.dechadilok_deen_w.cuda
_renkin = carriers.renkin_h.cuda
_se = carriers.stokes_einstein_diffusivity.cuda
_patlak = carriers.patlak_flux.cuda


@cuda.jit
def _carriers_kernel(lam, args, out):
    i = cuda.grid(1)
    if i < lam.shape[0]:
        out[i, 0] = _dd_h(lam[i])
        out[i, 1] = _dd_w(lam[i])
        out[i, 2] = _renkin(lam[i])
        out[i, 3] = _se(args[i, 0], args[i, 1], args[i, 2])
        out[i, 4] = _patlak(args[i, 3], args[i, 4], args[i, 5], args[i, 6], args[i, 7])


def check_carriers(rs):
    """The .cuda forms of the carrier coefficients against their .cpu forms (4 ulp: libm)."""
    n = 64
    lam = np.concatenate([[0.0, 0.25, 0.5, 0.95, 0.96, 1.0, 1.5], rs.random(n - 7)])
    args = np.column_stack([300 + 20 * rs.random(n), 1e-3 * (0.5 + rs.random(n)),
                            1e-8 * (1 + rs.random(n)), rs.normal(0, 1e-6, n), rs.random(n),
                            10.0 ** rs.uniform(-14, -4, n), rs.random(n), rs.random(n)])
    out = np.zeros((n, 5))
    _carriers_kernel[2, 32](lam, args, out)
    want = np.column_stack([
        [carriers.dechadilok_deen_h.cpu(v) for v in lam],
        [carriers.dechadilok_deen_w.cpu(v) for v in lam],
        [carriers.renkin_h.cpu(v) for v in lam],
        [carriers.stokes_einstein_diffusivity.cpu(*a[:3]) for a in args],
        [carriers.patlak_flux.cpu(*a[3:]) for a in args]])
    err = np.abs(out - want) / np.maximum(np.abs(want), 1e-300)
    good = bool(np.all(err <= 4 * np.finfo(np.float64).eps))
    print(f"carrier coefficients: max relative |cpu - cuda| = {err.max():.2e}",
          "ok" if good else "MISMATCH")
    return good


def main():
    rs = np.random.default_rng(11)
    grid = Grid((7, 5, 4), 8e-6, (-2e-6, 1e-6, 5e-6))
    lo, hi = np.array(grid.origin_m), np.array(grid.upper_m)
    pos = lo + rs.random((N_PARTICLES, 3)) * (hi - lo)
    ids = rs.choice(2**40, N_PARTICLES, replace=False).astype(np.int64)
    state = rs.integers(0, 3, N_PARTICLES).astype(np.int8)
    region = rs.integers(0, 3, grid.shape_zyx).astype(np.uint8)
    table = np.array([2e-12, 6.57e-12, 1e-11])
    d_part = rs.random(N_PARTICLES) * 1e-11
    u = (rs.random((3,) + grid.shape_zyx) - 0.5) * 4e-6
    dt = 2.0
    sigma = np.sqrt(2 * 1e-11 * dt)
    cases = {
        "uniform D": dict(diffusivity_m2_per_s=6.57e-12),
        "per-particle D, nearest u": dict(diffusivity_m2_per_s=d_part, velocity_m_per_s=u),
        "region D, trilinear u, periodic x,z": dict(
            region=region, region_diffusivity_m2_per_s=table, velocity_m_per_s=u,
            velocity_interpolation="trilinear", periodic=(True, False, True)),
        "uniform steps, region D (int32 map), nearest u": dict(
            region=region.astype(np.int32), region_diffusivity_m2_per_s=table, velocity_m_per_s=u,
            step_distribution="uniform"),
    }
    ok = check_carriers(rs)
    for name, kw in cases.items():
        for dtype in (np.float64, np.float32):
            if kw.get("step_distribution") == "uniform" and dtype == np.float64:
                continue  # one uniform case: the float32 rounding is the stricter one
            a = [np.ascontiguousarray(pos[:, k], dtype=dtype) for k in range(3)]
            b = [c.copy() for c in a]
            for n in range(N_STEPS):
                particles.numba_step_particles(*a, ids, state, 100 + n, dt_s=dt, seed=-7,
                                               grid=grid, moving_state=1, **kw)
                particles_cuda.step_particles(*b, ids, state, 100 + n, dt_s=dt, seed=-7,
                                              grid=grid, moving_state=1, threads_per_block=64,
                                              **kw)
            eps = np.finfo(dtype).eps
            tol = N_STEPS * (16 * np.finfo(np.float64).eps * 8.7 * sigma + eps * np.abs(hi).max())
            diff = max(float(np.abs(p.astype(np.float64) - q).max()) for p, q in zip(a, b))
            moved = float(np.mean(a[0][state == 1] != pos[state == 1, 0].astype(dtype)))
            still = all(np.array_equal(p[state != 1], q[state != 1]) and
                        np.array_equal(p[state != 1], pos[state != 1, k].astype(dtype))
                        for k, (p, q) in enumerate(zip(a, b)))
            good = diff <= tol and still and moved > 0.9
            print(f"{name} {np.dtype(dtype).name}: max |numba - cuda| = {diff:.3e} m "
                  f"(tolerance {tol:.1e}), moved {moved:.2f}, others untouched {still}",
                  "ok" if good else "MISMATCH")
            ok &= bool(good)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
