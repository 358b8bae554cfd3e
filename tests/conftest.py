"""Fixtures shared by the whole suite: the ``backend`` fixture and the ``gpu`` marker."""

import os

import pytest

from nanosim.backends import BackendUnavailable, get_backend


def _gpu_available() -> bool:
    try:
        get_backend("cupy")
        return True
    except BackendUnavailable:
        return False


def pytest_configure(config):
    """Under pytest-xdist, give each worker its share of the cores for Numba's threads: W workers
    each running parallel kernels on every core oversubscribe the machine, and a small kernel then
    waits on threads that are not running (measured under load on 2 cores: a 90 × 90 explicit
    step 30× slower with 2 threads than with 1). Subprocesses started by tests inherit it."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and int(workers) > 1:
        share = str(max(1, (os.cpu_count() or 1) // int(workers)))
        os.environ["NUMBA_NUM_THREADS"] = share
        import numba

        numba.set_num_threads(min(int(share), numba.config.NUMBA_NUM_THREADS))


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
