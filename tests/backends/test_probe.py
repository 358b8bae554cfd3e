"""The cupy backend's probe: a GPU whose kernel compiler cannot load is reported, not crashed on."""

import importlib
import types

import pytest

import nanosim.backends as B


def _fake_cupy():
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1,
                                    getDeviceProperties=lambda i: {"name": b"Fake GPU"})
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))


@pytest.fixture
def fake_imports(monkeypatch):
    """import_module with a fake cupy (one device) and a chosen failure of numba.cuda.cudaimpl."""
    real = importlib.import_module
    failure = {}

    def fake(name, *args):
        if name == "cupy":
            return _fake_cupy()
        if name in failure:
            raise failure[name]
        return real(name, *args)

    monkeypatch.setattr(B.importlib, "import_module", fake)
    B.get_backend.cache_clear()
    yield failure
    B.get_backend.cache_clear()


def test_numpy_too_new_for_numba_cuda_is_named_with_the_fix(fake_imports):
    # numba-cuda 0.30 with NumPy 2.5: the compiler's tables fail to load on first compilation
    fake_imports["numba.cuda.cudaimpl"] = AttributeError("module 'numpy' has no attribute 'row_stack'")
    with pytest.raises(B.BackendUnavailable) as err:
        B.get_backend("cupy")
    msg = str(err.value)
    assert "row_stack" in msg and "numpy<2.5" in msg and "--backend numba" in msg
    assert B.available_backends()["cupy"].startswith("cupy backend unavailable")
    assert B.get_backend("auto").name == "numba"  # auto falls back to the CPU


def test_missing_numba_cuda_says_which_extra(fake_imports, monkeypatch):
    from importlib import metadata

    fake_imports["numba.cuda"] = ImportError("No module named 'numba.cuda'")
    real_version = metadata.version

    def version(name):
        if name == "numba-cuda":
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(B.BackendUnavailable, match=r"install numba-cuda .*cuda12"):
        B.get_backend("cupy")


def test_working_compiler_gives_the_device(fake_imports):
    # numba-cuda loads here (CPU machine: its tables import without a GPU)
    pytest.importorskip("numba.cuda.cudaimpl")
    be = B.get_backend("cupy")
    assert be.name == "cupy" and be.device == "GPU 0: Fake GPU"
