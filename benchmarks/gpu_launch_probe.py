"""Where the device's uniform explicit step spends its time: kernel or launch.

For 128³ and 256³ float32 fields, measures (CUDA events and host wall time, best of many):
- the whole ``explicit_cuda.uniform_step`` call with CuPy arrays, synchronised after each call
  (what ``nanosim bench`` reports);
- the same calls back to back with one synchronisation at the end (launch queue kept full);
- the kernel alone (CUDA events around calls given pre-wrapped numba device arrays);
- an empty numba-cuda kernel launched with the same arguments (the launch cost by itself);
- a CuPy device copy of the field (the bandwidth reference).

The CuPy-argument figures are taken twice: with numba-cuda's ``CUDA_ARRAY_INTERFACE_SYNC`` on
(its default: every CuPy argument that names a stream synchronises it at launch) and off. On
the H200 on 2026-11-27 the two differed by < 7 % (launch cost is the array-interface import,
not the sync), so the backend leaves numba-cuda's default.

    python benchmarks/gpu_launch_probe.py

Prints one JSON document. Needs CuPy and numba-cuda.
"""

from __future__ import annotations

import json
import sys
import time

import cupy as cp
import numpy as np
from numba import cuda

from nanosim.kernels import explicit_cuda

try:  # numba-cuda's own configuration (numba-cuda >= 0.20), else Numba's
    from numba.cuda.core import config
except ImportError:
    from numba.core import config


@cuda.jit
def _empty(c, c_out, alpha, kdt, beta, kind0, kind1, kind2, v0, v1, v2, zchunk, ledger):
    pass


def _best(fn, n=50, sync=True):
    fn()
    cp.cuda.Device().synchronize()
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
            if sync:
                cp.cuda.Device().synchronize()
        cp.cuda.Device().synchronize()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def main():
    out = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "cases": []}
    for n in (128, 256):
        shape = (n, n, n)
        c = cp.random.random(shape, dtype=cp.float32)
        o = cp.zeros_like(c)
        ledger = cp.zeros(8)
        kind = np.zeros(3, np.int64)
        val = np.zeros(3)

        def step():
            explicit_cuda.uniform_step(c, o, 1e-9, 1e-4, kind, val, 1e-5, 0.01, ledger)

        nd_c, nd_o, nd_l = cuda.as_cuda_array(c), cuda.as_cuda_array(o), cuda.as_cuda_array(ledger)
        bx, by = explicit_cuda.UNIFORM_BLOCK
        zc = explicit_cuda.UNIFORM_Z_CHUNK
        blocks = ((n + bx - 1) // bx, (n + by - 1) // by, (n + zc - 1) // zc)
        t32 = np.float32
        args = (nd_c, nd_o, t32(0.1), t32(1e-6), t32(0.4), 0, 0, 0, t32(0), t32(0), t32(0), zc, nd_l)

        def kernel_prewrapped():
            explicit_cuda._uniform_kernel[blocks, (bx, by, 1)](*args)

        def empty_cupy():
            _empty[blocks, (bx, by, 1)](c, o, t32(0.1), t32(1e-6), t32(0.4), 0, 0, 0, t32(0), t32(0),
                                        t32(0), zc, ledger)

        def empty_prewrapped():
            _empty[blocks, (bx, by, 1)](*args)

        # kernel time alone from CUDA events
        kernel_prewrapped()
        cp.cuda.Device().synchronize()
        ev0, ev1 = cp.cuda.Event(), cp.cuda.Event()
        ev0.record()
        for _ in range(50):
            kernel_prewrapped()
        ev1.record()
        ev1.synchronize()
        kernel_s = cp.cuda.get_elapsed_time(ev0, ev1) / 1e3 / 50
        copy_s = _best(lambda: o.__setitem__(Ellipsis, c))
        rec = {"shape": list(shape), "dtype": "float32"}
        for flag, tag in ((1, "interface_sync_on"), (0, "interface_sync_off")):
            config.CUDA_ARRAY_INTERFACE_SYNC = flag
            rec[tag] = {
                "step_sync_s": _best(step),
                "step_queued_s": _best(step, sync=False),
                "empty_launch_cupy_s": _best(empty_cupy, sync=False),
            }
        rec.update({
            "prewrapped_sync_s": _best(kernel_prewrapped),
            "prewrapped_queued_s": _best(kernel_prewrapped, sync=False),
            "kernel_events_s": kernel_s,
            "empty_launch_prewrapped_s": _best(empty_prewrapped, sync=False),
            "copy_s": copy_s,
        })
        vox = n ** 3
        rec["kernel_updates_per_s"] = vox / kernel_s
        for tag in ("interface_sync_on", "interface_sync_off"):
            rec[tag]["step_sync_updates_per_s"] = vox / rec[tag]["step_sync_s"]
        rec["copy_GBps"] = 2 * 4 * vox / copy_s / 1e9
        rec["kernel_copy_fraction"] = 8 * vox / kernel_s / 1e9 / rec["copy_GBps"]
        out["cases"].append(rec)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
