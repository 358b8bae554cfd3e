"""Run the CUDA forms of nanosim.kernels.rng in a fresh process (helper for test_rng.py).

Usage::

    NUMBA_ENABLE_CUDASIM=1 python rng_cuda_check.py sim SPEC.json OUT.npz
    python rng_cuda_check.py ptx

``sim`` runs the kernels of ``nanosim.kernels.rng_cuda`` (and a small kernel over the pair
functions) in Numba's CUDA simulator on the inputs described by SPEC.json and saves every
output to OUT.npz; the test compares them with the CPU kernels. ``ptx`` compiles the same
kernels for a real GPU (no device needed, only the NVVM/NVRTC libraries) and prints
``ok``, or ``skip: <reason>`` when those libraries are missing.

Both modes need a process of their own: NUMBA_ENABLE_CUDASIM is read when ``numba.cuda`` is
first imported.
"""

import json
import sys

import numpy as np
from numba import cuda

from nanosim.kernels import rng, rng_cuda

_uniform_pair = rng.uniform_pair.cuda
_normal_pair = rng.normal_pair.cuda


@cuda.jit
def pairs_kernel(uniforms, normals, args):
    i = cuda.grid(1)
    if i < args.shape[0]:
        u0, u1 = _uniform_pair(args[i, 0], args[i, 1], args[i, 2], args[i, 3])
        z0, z1 = _normal_pair(args[i, 0], args[i, 1], args[i, 2], args[i, 3])
        uniforms[i, 0] = u0
        uniforms[i, 1] = u1
        normals[i, 0] = z0
        normals[i, 1] = z1


def run_sim(spec_path, out_path):
    with open(spec_path) as fh:
        spec = json.load(fh)
    results = {}

    ctr = np.array(spec["philox_ctr"], dtype=np.int64)
    key = np.array(spec["philox_key"], dtype=np.int64)
    words = np.zeros_like(ctr)
    rng_cuda.philox4x32_10_kernel[(len(ctr) + 31) // 32, 32](words, ctr, key)
    results["philox"] = words

    args = np.array(spec["pair_args"], dtype=np.int64)
    uniforms = np.zeros((len(args), 2))
    normals = np.zeros((len(args), 2))
    pairs_kernel[(len(args) + 31) // 32, 32](uniforms, normals, args)
    results["uniform_pairs"] = uniforms
    results["normal_pairs"] = normals

    for i, fill in enumerate(spec["fills"]):
        out = np.full(fill["n"], np.nan, dtype=fill["dtype"])
        fn = rng_cuda.fill_uniform if fill["kind"] == "uniform" else rng_cuda.fill_normal
        fn(
            out,
            fill["seed"],
            fill["step"],
            fill["draw"],
            fill["first_entity"],
            threads_per_block=fill["threads_per_block"],
        )
        results[f"fill_{i}"] = out
    np.savez(out_path, **results)


def run_ptx():
    from numba import types

    cc = (8, 0)  # explicit, so that no device (or driver) is needed
    try:
        for dtype in (types.float32, types.float64):
            cuda.compile_ptx(
                rng_cuda._uniform_kernel.py_func,
                (dtype[::1], types.int64, types.int64, types.int64, types.int64, types.float64),
                cc=cc,
            )
            cuda.compile_ptx(
                rng_cuda._normal_kernel.py_func,
                (dtype[::1], types.int64, types.int64, types.int64, types.int64),
                cc=cc,
            )
    except Exception as exc:  # the toolkit libraries are optional; report why we could not
        name = type(exc).__name__
        if "NotFound" in name or "Nvvm" in name or "nvrtc" in str(exc).lower():
            print(f"skip: {name}: {str(exc)[:200]}")
            return
        raise
    pair_sig = (types.float64[:, ::1],) * 2 + (types.int64[:, ::1],)
    cuda.compile_ptx(pairs_kernel.py_func, pair_sig, cc=cc)
    cuda.compile_ptx(rng_cuda.philox4x32_10_kernel.py_func, (types.int64[:, ::1],) * 3, cc=cc)
    print("ok")


if __name__ == "__main__":
    if sys.argv[1] == "sim":
        run_sim(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "ptx":
        run_ptx()
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
