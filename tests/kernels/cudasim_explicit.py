"""Run the CUDA explicit kernels in Numba's CUDA simulator and compare with the CPU kernels.

Executed in a subprocess with NUMBA_ENABLE_CUDASIM=1 by tests/kernels/test_explicit.py; prints one
line per case and exits non-zero on a mismatch.
"""

import sys

import numpy as np

from nanosim.kernels import explicit, explicit_cuda
from nanosim.kernels.transport import LEDGER_SIZE


def random_case(shape, dtype, bc, rng):
    c = rng.random(shape).astype(dtype)
    cb = rng.random(shape).astype(dtype)
    region = rng.integers(0, 3, shape).astype(np.uint8)
    tables = (np.array([1e-10, 2e-10, 0.5e-10]), np.array([0.01, 0.02, 0.0]),
              np.array([0.1, 0.0, 0.05]), np.array([0.02, 0.0, 0.01]))
    ps = (rng.random(shape) * 0.1).astype(dtype)
    src = (rng.random(shape) * 0.01).astype(dtype)
    fixed = (rng.random(shape) < 0.1).astype(np.uint8)
    u = ((rng.random((3,) + shape) - 0.5) * 1e-6).astype(dtype)
    return (c, cb, region, *tables, ps, src, fixed, u, np.array(bc, np.int64), np.array([0.3, 0.5, 0.9]))


def main():
    rng = np.random.default_rng(7)
    shape = (4, 5, 6)
    ok = True
    for bc in ([0, 0, 0], [1, 1, 1], [2, 2, 2], [2, 1, 0]):
        for dtype in (np.float64, np.float32):
            c, cb, region, dtab, ktab, kon, koff, ps, src, fixed, u, bck, bcv = random_case(shape, dtype, bc, rng)
            args = (region, dtab, ktab, kon, koff, ps, True, src, True, fixed, True, 0.7, u, True, bck, bcv,
                    5e-6, 0.01)
            o1, ob1, l1 = np.empty_like(c), np.empty_like(c), np.zeros(LEDGER_SIZE)
            explicit.numba_explicit_step(c, cb, o1, ob1, *args, l1)
            o2, ob2, l2 = np.empty_like(c), np.empty_like(c), np.zeros(LEDGER_SIZE)
            explicit_cuda.explicit_step(c, cb, o2, ob2, *args, l2)
            # identical arithmetic in the same order: equal to the last bit except where the
            # compiler may contract a*b+c into an FMA on one side; allow 4 ulp of the field scale
            tol = 4 * np.finfo(dtype).eps
            e_f = max(np.abs(o1 - o2).max(), np.abs(ob1 - ob2).max())
            e_l = np.abs(l1 - l2).max() / np.abs(l1).max()
            good = e_f <= tol and e_l <= 1e-6 if dtype == np.float32 else e_f <= tol and e_l <= 1e-12
            print(f"general bc={bc} {np.dtype(dtype).name}: field diff {e_f:.2e}, ledger rel diff {e_l:.2e}",
                  "ok" if good else "MISMATCH")
            ok &= bool(good)
            # uniform fast path
            u1, la = np.empty_like(c), np.zeros(LEDGER_SIZE)
            explicit.numba_uniform_step(c, u1, 2e-10, 0.05, bck, bcv, 5e-6, 0.01, la)
            u2, lb = np.empty_like(c), np.zeros(LEDGER_SIZE)
            explicit_cuda.uniform_step(c, u2, 2e-10, 0.05, bck, bcv, 5e-6, 0.01, lb)
            e_f = np.abs(u1 - u2).max()
            e_l = np.abs(la - lb).max() / np.abs(la).max()
            good = e_f <= tol and e_l <= (1e-6 if dtype == np.float32 else 1e-12)
            print(f"uniform bc={bc} {np.dtype(dtype).name}: field diff {e_f:.2e}, ledger rel diff {e_l:.2e}",
                  "ok" if good else "MISMATCH")
            ok &= bool(good)
    # the uniform kernel's 3-D launch: several blocks along x, y and z-chunks, partial at each end
    c = rng.random((19, 10, 35))
    bck, bcv = np.array([2, 1, 0], np.int64), np.array([0.3, 0.0, 0.0])
    u1, la = np.empty_like(c), np.zeros(LEDGER_SIZE)
    explicit.numba_uniform_step(c, u1, 2e-10, 0.05, bck, bcv, 5e-6, 0.01, la)
    u2, lb = np.empty_like(c), np.zeros(LEDGER_SIZE)
    explicit_cuda.uniform_step(c, u2, 2e-10, 0.05, bck, bcv, 5e-6, 0.01, lb)
    e_f = np.abs(u1 - u2).max()
    e_l = np.abs(la - lb).max() / np.abs(la).max()
    good = e_f <= 4 * np.finfo(np.float64).eps and e_l <= 1e-12
    print(f"uniform 19x10x35 float64: field diff {e_f:.2e}, ledger rel diff {e_l:.2e}", "ok" if good else "MISMATCH")
    ok &= bool(good)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
