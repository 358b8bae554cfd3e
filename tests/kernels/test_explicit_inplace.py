"""The uniform explicit step done in place equals the step into a separate output, bit for bit."""

import numpy as np
import pytest

from nanosim.kernels import explicit, transport


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(9, 7, 12), (1, 5, 6), (3, 4, 1), (40, 3, 5)])
@pytest.mark.parametrize("bc", [(0, 0, 0), (2, 2, 2), (1, 1, 1), (1, 0, 2), (2, 1, 0)])
def test_inplace_equals_out_of_place(dtype, shape, bc):
    rng = np.random.default_rng(7)
    c0 = rng.random(shape).astype(dtype)
    bc_kind = np.array(bc, np.int64)
    bc_value = np.array([0.3, 0.7, 0.1])
    args = (2e-10, 1e-3, bc_kind, bc_value, 1e-5, 0.05)
    out_led = np.zeros(transport.LEDGER_SIZE)
    in_led = np.zeros(transport.LEDGER_SIZE)
    a, b = c0.copy(), np.zeros_like(c0)
    c = c0.copy()
    for _ in range(3):  # several steps: the halos and plane buffers are reused
        explicit.numba_uniform_step(a, b, *args, out_led)
        a, b = b, a
        explicit.numba_uniform_step(c, c, *args, in_led)
    np.testing.assert_array_equal(c, a)
    np.testing.assert_array_equal(in_led, out_led)  # the same per-plane sums, added in the same order


def test_numpy_reference_refuses_in_place():
    c = np.ones((3, 3, 3))
    with pytest.raises(ValueError, match="c_out must not be c"):
        explicit.numpy_uniform_step(c, c, 1e-10, 0.0, np.zeros(3, np.int64), np.zeros(3), 1e-5, 0.1,
                                    np.zeros(explicit.transport.LEDGER_SIZE))
