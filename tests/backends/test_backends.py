"""CPU array allocation of the backends."""

import numpy as np
import pytest


@pytest.mark.parametrize("shape", [(256, 256, 256), (3, 5, 7), (1,), 17, (0, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_cpu_fields_are_zeroed_contiguous_and_aligned_to_64_bytes(shape, dtype):
    from nanosim.backends import aligned_zeros, get_backend

    for a in (aligned_zeros(shape, dtype), get_backend("numba").zeros(shape, dtype)):
        assert a.shape == ((shape,) if isinstance(shape, int) else shape) and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable
        assert a.size == 0 or a.ctypes.data % 64 == 0  # an empty array has no data to place
        assert not a.any()
        a[...] = 1  # the whole view is usable and nothing outside it is touched
        assert a.sum() == a.size
