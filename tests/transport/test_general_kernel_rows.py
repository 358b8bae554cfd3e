"""The numba general explicit kernel's interior path gives the wall rule's bits.

Rows away from the y/z walls take a separate interior loop (face diffusivities from a table of
region pairs instead of six divisions per voxel, no wall tests); every other voxel the general
wall rule. Sending every voxel through the wall rule (``fast_rows=False``) must give the same
fields and the same ledger bit for bit: the table holds the values the divisions give, and the
ledger terms are added in the same order.
"""

import numpy as np
import pytest

from nanosim.kernels import explicit
from nanosim.kernels.transport import LEDGER_SIZE


def _case(shape, dtype, rng, *, ps, src, fixed, u):
    c = rng.random(shape).astype(dtype)
    cb = rng.random(shape).astype(dtype)
    region = rng.integers(0, 4, shape).astype(np.uint8)
    d_table = np.array([1e-10, 2e-10, 0.5e-10, 0.0])  # a zero diffusivity: faces that carry nothing
    tables = (np.array([0.01, 0.02, 0.0, 0.03]), np.array([0.1, 0.0, 0.05, 0.0]),
              np.array([0.02, 0.0, 0.01, 0.0]))
    dummy = np.zeros(1, dtype)
    return dict(
        c=c, cb=cb, region=region, d_table=d_table, tables=tables,
        ps=(rng.random(shape) * 0.1).astype(dtype) if ps else dummy, has_ps=ps,
        src=(rng.random(shape) * 0.01).astype(dtype) if src else dummy, has_src=src,
        fixed=(rng.random(shape) < 0.1).astype(np.uint8) if fixed else np.zeros(1, np.uint8),
        has_fixed=fixed,
        u=((rng.random((3,) + shape) - 0.5) * 1e-6).astype(dtype) if u else np.zeros((3, 1, 1, 1), dtype),
        has_u=u)


def _step(k, fast_rows, bc):
    nz, ny, _ = k["c"].shape
    kernel = explicit._general_kernel(k["has_ps"], k["has_src"], k["has_fixed"], k["has_u"], ny > 1, nz > 1,
                                      fast_rows=fast_rows)
    out, bout = np.empty_like(k["c"]), np.empty_like(k["c"])
    partial = np.zeros((nz * ny, LEDGER_SIZE))
    kernel(k["c"], k["cb"], out, bout, k["region"], k["d_table"], explicit._face_table(k["d_table"]),
           *k["tables"], k["ps"], k["src"], k["fixed"], k["c"].dtype.type(0.7), k["u"],
           np.array(bc, np.int64), np.array([0.3, 0.5, 0.9]), 5e-6, 0.01, partial)
    return out, bout, partial


# (shape, optional fields on, dtype): 3-D with every optional field and with none (each choice
# is compiled in, each compilation takes seconds), a flat z and a flat y axis, and rows too
# short for an interior. float32 is where a float32 product would slip in unnoticed.
CASES = [((6, 7, 9), True, np.float32), ((6, 7, 9), True, np.float64), ((6, 7, 9), False, np.float32),
         ((6, 7, 9), False, np.float64), ((1, 8, 12), True, np.float32), ((5, 1, 7), True, np.float32),
         ((4, 6, 2), True, np.float32)]


@pytest.mark.parametrize("bc", [[0, 0, 0], [1, 1, 1], [2, 2, 2], [2, 1, 0]])
@pytest.mark.parametrize("shape, on, dtype", CASES)
def test_interior_rows_match_the_wall_rule_bitwise(dtype, bc, shape, on):
    rng = np.random.default_rng(sum(shape) + 7 * sum(bc))
    k = _case(shape, dtype, rng, ps=on, src=on, fixed=on, u=on)
    fast = _step(k, True, bc)
    slow = _step(k, False, bc)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


def test_face_table_is_the_division_the_kernels_make():
    d = np.array([1e-10, 3e-10, 0.0, 7.7e-11])
    f = explicit._face_table(d)
    for a in range(d.size):
        for b in range(d.size):
            s = d[a] + d[b]
            want = 2.0 * d[a] * d[b] / s if s > 0 else 0.0
            assert f[a, b] == want
