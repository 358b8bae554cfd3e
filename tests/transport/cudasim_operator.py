"""The operator's GPU path (cupy backend wiring) run in Numba's CUDA simulator.

CuPy needs a device, so this script stands in for it with NumPy plus ``asnumpy``: under
``NUMBA_ENABLE_CUDASIM=1`` the CUDA kernels accept host arrays, so the operator's cupy code path
(kernel choice, device ledger, host tables) runs end to end and is compared with the numba
backend. Executed in a subprocess by tests/transport/test_operator.py; exits non-zero on a mismatch.
"""

import sys
import types

import numpy as np

from nanosim.backends import Backend, get_backend
from nanosim.geometry import Grid
from nanosim.transport import TransportOperator


def simulated_cupy() -> Backend:
    xp = types.ModuleType("simulated_cupy")
    xp.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    xp.asnumpy = np.asarray
    return Backend("cupy", xp, "CUDA simulator")


def run(backend, scheme, uniform):
    rng = np.random.default_rng(11)
    grid = Grid((7, 6, 5), 4e-6)
    region = np.zeros(grid.shape_zyx, np.uint8) if uniform else rng.integers(0, 3, grid.shape_zyx).astype(np.uint8)
    kw = {}
    if not uniform:
        fixed = np.zeros(grid.shape_zyx, np.uint8)
        fixed[2, 3, 1:4] = 1
        kw = dict(ps=rng.random(grid.shape_zyx) * 0.02, fixed=fixed, velocity_m_per_s=(1e-6, 0.0, -1e-6))
    op = TransportOperator(backend, grid, region, [1e-10, 2e-10, 5e-11], [0.01, 0.05, 0.0],
                           [0.0, 0.1, 0.0] if not uniform else [0.0] * 3, [0.0, 0.05, 0.0] if not uniform else [0.0] * 3,
                           [0, 1, 2], [0, 0, 0.2], np.float64, scheme=scheme, **kw)
    op.c[...] = rng.random(grid.shape_zyx)
    ledgers = [op.step(0.01, 0.3) for _ in range(5)]
    return backend.to_host(op.c), np.array(ledgers)


def main():
    ok = True
    sim = simulated_cupy()
    for scheme in ("explicit", "implicit"):
        for uniform in (True, False):
            c1, l1 = run(get_backend("numba"), scheme, uniform)
            c2, l2 = run(sim, scheme, uniform)
            ef = np.abs(c1 - c2).max()
            el = np.abs(l1 - l2).max() / np.abs(l1).max()
            good = ef < 1e-12 and el < 1e-12
            print(f"{scheme} uniform={uniform}: field diff {ef:.2e}, ledger rel diff {el:.2e}", "ok" if good else "MISMATCH")
            ok &= good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
