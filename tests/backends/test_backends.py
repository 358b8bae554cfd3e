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


def test_low_occupancy_warnings_are_turned_off_unless_the_user_chose(monkeypatch):
    """numba-cuda's small-grid warning printed one line per distinct grid size in a device run
    (thousands in a carrier scenario); the cupy backend turns it off, but an explicit
    NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS wins."""
    config = pytest.importorskip("numba.cuda.core.config")
    from nanosim.backends import quiet_low_occupancy_warnings

    monkeypatch.setattr(config, "CUDA_LOW_OCCUPANCY_WARNINGS", 1)
    import numba.core.config as numba_config

    if hasattr(numba_config, "CUDA_LOW_OCCUPANCY_WARNINGS"):  # restored after the test
        monkeypatch.setattr(numba_config, "CUDA_LOW_OCCUPANCY_WARNINGS", 1)
    monkeypatch.setenv("NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS", "1")
    assert quiet_low_occupancy_warnings() is False
    assert config.CUDA_LOW_OCCUPANCY_WARNINGS == 1
    monkeypatch.delenv("NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS")
    assert quiet_low_occupancy_warnings() is True
    assert config.CUDA_LOW_OCCUPANCY_WARNINGS == 0

