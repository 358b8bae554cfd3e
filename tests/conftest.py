"""Fixtures shared by the whole suite: the ``backend`` fixture and the ``gpu`` marker."""

import pytest

from nanosim.backends import BackendUnavailable, get_backend


def _gpu_available() -> bool:
    try:
        get_backend("cupy")
        return True
    except BackendUnavailable:
        return False


def pytest_collection_modifyitems(config, items):
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device and CuPy (the cupy backend is unavailable here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["numpy", "numba", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request):
    """Each backend in turn; cupy runs where a device is present and is skipped elsewhere."""
    try:
        return get_backend(request.param)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
