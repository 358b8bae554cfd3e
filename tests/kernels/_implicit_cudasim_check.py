"""Compare the CUDA implicit step (run in Numba's CUDA simulator) with the numba CPU step.

Run by ``test_implicit.py`` in a subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (the variable must
be set before ``numba.cuda`` is imported). Exercises every kernel of
``nanosim.kernels.implicit_cuda`` (sweep, reaction, ledger reduction) on tiny grids, with every
boundary kind on every axis, fixed voxels, velocities, exchange, binding and sources, in float64
and float32. Prints one line per case and exits non-zero on the first mismatch.
"""

import os
import sys

import numpy as np

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run with NUMBA_ENABLE_CUDASIM=1"

from numba import cuda  # noqa: E402

from nanosim.kernels import implicit, implicit_cuda  # noqa: E402


def problem(shape, dtype, bc_kind, full, seed):
    rng = np.random.default_rng(seed)
    f = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    return dict(
        c=f(rng.random(shape)), cb=f(0.2 * rng.random(shape)),
        region=rng.integers(0, 3, shape).astype(np.uint8),
        d_table=np.array([1e-9, 3e-10, 6e-10]), k_table=np.array([1e-3, 0.0, 4e-3]),
        kon_table=np.array([2e-2, 1e-2, 0.0]), koff_table=np.array([5e-3, 1e-3, 0.0]),
        ps=f(2e-3 * rng.random(shape)), has_ps=full, src=f(1e-3 * rng.random(shape)),
        has_src=full, fixed=(rng.random(shape) < 0.1).astype(np.uint8), has_fixed=full,
        cp=1.7, u=f(4e-6 * (rng.random((3,) + shape) - 0.5)), has_u=full,
        bc_kind=np.array(bc_kind), bc_value=np.array([[0.3, 1.2], [0.8, 0.1], [0.5, 0.9]]),
        h=1e-5, dt=2.0)


def main():
    shape = (4, 5, 6)  # (nz, ny, nx)
    cases = [((0, 0, 0), True), ((1, 1, 1), True), ((2, 2, 2), True), ((2, 1, 0), True),
             ((1, 0, 2), False), ((0, 2, 1), False)]
    n_fail = 0
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 2e-6)):
        for bc_kind, full in cases:
            if dtype == np.float32 and not full:
                continue  # float32 CPU twins are compiled (by the suite) for all-on inputs only
            p = problem(shape, dtype, bc_kind, full, seed=len(bc_kind) + sum(bc_kind))
            ref = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in p.items()}
            ledger_ref = np.zeros(6)
            ws = implicit.make_workspace(shape, dtype, fast_path=False)
            ledger = np.zeros(6)
            cws = implicit_cuda.make_cuda_workspace(shape, dtype)
            dev = dict(p)
            for k in ("c", "cb", "region", "ps", "src", "fixed", "u"):
                dev[k] = cuda.to_device(p[k])
            for _ in range(2):
                implicit.numba_implicit_step(**ref, work=ws, ledger_out=ledger_ref)
                implicit_cuda.cuda_implicit_step(**dev, work=cws, ledger_out=ledger)
            c = dev["c"].copy_to_host()
            cb = dev["cb"].copy_to_host()
            scale = max(1.0, float(np.abs(ref["c"]).max()))
            err_c = float(np.abs(c - ref["c"]).max()) / scale
            err_cb = float(np.abs(cb - ref["cb"]).max()) / scale
            err_l = float(np.abs(ledger - ledger_ref).max()) / max(1.0, abs(ledger_ref[5]))
            ok = err_c <= rtol and err_cb <= rtol and err_l <= rtol
            n_fail += not ok
            print(f"{np.dtype(dtype).name} bc={bc_kind} full={full}: field {err_c:.2e} "
                  f"bound {err_cb:.2e} ledger {err_l:.2e} {'ok' if ok else 'FAIL'}")
    # The reduction kernel on its own: per-block sums in order, checked against NumPy.
    part = np.arange(3 * 700, dtype=np.float64).reshape(3, 700) * 0.5
    out = cuda.device_array((3, 3), np.float64)
    implicit_cuda._reduce_kernel[1, 32](cuda.to_device(part), 700, 256, out)
    want = np.stack([part[:, 0:256].sum(1), part[:, 256:512].sum(1), part[:, 512:].sum(1)], 1)
    ok = np.array_equal(out.copy_to_host(), want)  # integers and halves: sums are exact
    n_fail += not ok
    print(f"reduce: {'ok' if ok else 'FAIL'}")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
