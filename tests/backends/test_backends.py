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



@pytest.mark.parametrize("shape", [(64, 64, 256), (3, 5, 7), (2, 2, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_explicit_fields_put_each_rows_second_voxel_on_a_cache_line(shape, dtype):
    """Backend.field_zeros: the explicit stencil's vector loop starts at x = 1."""
    from nanosim.backends import aligned_zeros, get_backend

    item = np.dtype(dtype).itemsize
    for a in (aligned_zeros(shape, dtype, lead=1), get_backend("numba").field_zeros(shape, dtype)):
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
        assert (a.ctypes.data + item) % 64 == 0
        assert not a.any()
        a[...] = 1
        assert a.sum() == a.size
    # with rows a multiple of 64 bytes long, every row's x = 1 is aligned
    if shape[2] * item % 64 == 0:
        a = get_backend("numba").field_zeros(shape, dtype)
        assert all(a[z, y, 1:].ctypes.data % 64 == 0 for z in range(shape[0]) for y in range(shape[1]))


def test_the_pair_steps_ring_of_planes_is_aligned_like_the_fields():
    import numba

    from nanosim.kernels import explicit

    @numba.njit
    def ring_address(nz, ny, nx, dtype):
        r = explicit._row_aligned_empty(nz, ny, nx, dtype)
        r[...] = 7  # the whole ring is writable
        return r.ctypes.data, r.shape, r.sum()

    for dtype, item in ((np.float32, 4), (np.float64, 8)):
        addr, shape, total = ring_address(3, 5, 16, dtype)
        assert (addr + item) % 64 == 0 and shape == (3, 5, 16) and total == 7 * 3 * 5 * 16


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

