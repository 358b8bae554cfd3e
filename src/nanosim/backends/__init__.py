"""Compute backends as values: ``numpy`` (reference), ``numba`` (CPU default), ``cupy`` (GPU).

A :class:`Backend` is resolved once (:func:`get_backend`) and passed explicitly to everything that
allocates or computes. ``auto`` picks ``cupy`` when a CUDA device is usable and ``numba``
otherwise. Nothing here imports CuPy unless the cupy backend is asked for (or probed by ``auto``
or :func:`available_backends`).
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field

import numpy as np

NAMES = ("numpy", "numba", "cupy")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (exit code 4 on the command line)."""


@dataclass(frozen=True)
class Backend:
    """A compute backend.

    Attributes
    ----------
    name : {"numpy", "numba", "cupy"}
    xp : module
        The array module (``numpy`` or ``cupy``).
    device : str
        A human-readable description of where arrays live.
    """

    name: str
    xp: object = field(repr=False)
    device: str = "cpu"

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def default_dtype(self, precision: str = "auto"):
        """Field dtype for a scenario's ``precision`` (auto: float32 on the GPU, float64 on the CPU)."""
        if precision == "auto":
            return np.float32 if self.is_gpu else np.float64
        return np.dtype(precision).type

    def asarray(self, a, dtype=None):
        return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=dtype))

    def zeros(self, shape, dtype):
        """Zero array; on the CPU aligned to 64 bytes (see :func:`aligned_zeros`)."""
        if self.is_gpu:
            return self.xp.zeros(shape, dtype=dtype)
        return aligned_zeros(shape, dtype)

    def field_zeros(self, shape, dtype):
        """Zero 3-D field for the explicit stencils: on the CPU, element ``[0, 0, 1]`` on a 64-byte
        boundary (:func:`aligned_zeros` with ``lead=1``), so that the vectorised interior loop
        ``x = 1 … nx−2`` of every row loads and stores whole cache lines when a row is a multiple
        of 64 bytes long (its x±1 neighbours straddle two lines either way). Against first-element
        alignment, float32 256³ on a 2-core Xeon with 512-bit vectors, per-round ratios of 16
        interleaved rounds: single step +3 % (quartiles +0.5 % and +9 %), two-step pair +10 %
        (+5 %, +17 %; its ring of planes is aligned the same way)."""
        if self.is_gpu:
            return self.xp.zeros(shape, dtype=dtype)
        return aligned_zeros(shape, dtype, lead=1)

    def to_host(self, a) -> np.ndarray:
        if self.is_gpu:
            return self.xp.asnumpy(a)
        return np.asarray(a)

    def synchronize(self) -> None:
        if self.is_gpu:
            self.xp.cuda.runtime.deviceSynchronize()

    def __str__(self) -> str:
        return f"{self.name} ({self.device})"


#: Alignment (bytes) of CPU fields: one cache line, one AVX-512 vector.
CPU_ALIGN = 64


def aligned_zeros(shape, dtype, align: int = CPU_ALIGN, lead: int = 0) -> np.ndarray:
    """A C-contiguous zero array whose element at flat index ``lead`` sits on an ``align``-byte
    boundary.

    NumPy's large allocations start 16 bytes past a page boundary, so every 64-byte vector load
    of a row straddles two cache lines; the explicit kernels ran 5–15 % slower on such fields
    (float32 256³ on a 2-core EPYC). The array is a view into a slightly larger zeroed buffer.
    ``lead=1`` aligns the second element instead: the explicit stencil's vector loop runs over
    ``x = 1 … nx−2`` (the wall voxels are done apart), see :meth:`Backend.field_zeros`.
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if np.isscalar(shape) else tuple(int(n) for n in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.zeros(nbytes + align, np.uint8)
    start = (-(buf.ctypes.data + lead * dtype.itemsize)) % align
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def _cupy_probe():
    """Return (cupy module, device description) or raise BackendUnavailable with the reason."""
    try:
        cp = importlib.import_module("cupy")
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        raise BackendUnavailable(
            f"cupy backend unavailable: cannot import cupy ({exc.__class__.__name__}: {exc}). "
            "Install the GPU extra, e.g. `pip install 'nanosim[cuda12]'`, or use --backend numba."
        ) from None
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise BackendUnavailable(
            f"cupy backend unavailable: no usable CUDA device ({exc}). Use --backend numba."
        ) from None
    if n < 1:
        raise BackendUnavailable("cupy backend unavailable: no CUDA device found. Use --backend numba.")
    _numba_cuda_probe()
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return cp, f"GPU 0: {name}"


def _numba_cuda_probe():
    """Raise BackendUnavailable unless numba-cuda can compile kernels with this NumPy.

    The device kernels are compiled by numba-cuda, whose typing registries load on the first
    compilation; a mismatch there (numba-cuda 0.30 with NumPy 2.5, which removed ``np.row_stack``)
    would otherwise surface as a traceback in the middle of a run.
    """
    try:
        importlib.import_module("numba.cuda")
        importlib.import_module("numba.cuda.cudaimpl")  # the compiler's typing and lowering tables
    except Exception as exc:
        from importlib import metadata

        try:
            version = metadata.version("numba-cuda")
        except metadata.PackageNotFoundError:
            version = None
        if version is None:
            fix = "install numba-cuda (the cuda12 or cuda13 extra: `pip install 'nanosim[cuda12]'`)"
        else:
            fix = (f"numba-cuda {version} does not work with NumPy {np.__version__}; install a "
                   "NumPy it supports (`pip install 'numpy<2.5'`, as the cuda12/cuda13 extras pin)")
        raise BackendUnavailable(
            f"cupy backend unavailable: the CUDA kernel compiler cannot load "
            f"({exc.__class__.__name__}: {exc}); {fix}, or use --backend numba."
        ) from None
    quiet_low_occupancy_warnings()


def quiet_low_occupancy_warnings() -> bool:
    """Turn off numba-cuda's "grid size will likely result in GPU under-utilization" warning.

    Small grids are normal here (kernels over a network's segments or a few particles): with the
    warning on, a carrier scenario on the device printed one line per distinct grid size,
    thousands in a run. A user who sets ``NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS`` keeps their choice.
    Returns whether the warning is now off.
    """
    if "NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS" in os.environ:
        return os.environ["NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS"].strip() in ("0", "")
    for mod in ("numba.cuda.core.config", "numba.core.config"):  # numba-cuda's own, then Numba's
        try:
            config = importlib.import_module(mod)
        except ImportError:
            continue
        if hasattr(config, "CUDA_LOW_OCCUPANCY_WARNINGS"):
            config.CUDA_LOW_OCCUPANCY_WARNINGS = 0
    return True


@functools.cache
def get_backend(name: str = "auto") -> Backend:
    """Resolve a backend by name (``auto``, ``numpy``, ``numba`` or ``cupy``).

    Raises
    ------
    BackendUnavailable
        If the backend cannot run on this machine; the message says why and what to use instead.
    ValueError
        If the name is not a backend.
    """
    if name == "auto":
        try:
            return get_backend("cupy")
        except BackendUnavailable:
            return get_backend("numba")
    if name == "numpy":
        return Backend("numpy", np, "cpu")
    if name == "numba":
        return Backend("numba", np, "cpu")
    if name == "cupy":
        cp, desc = _cupy_probe()
        return Backend("cupy", cp, desc)
    raise ValueError(f"unknown backend {name!r}: choose one of auto, {', '.join(NAMES)}")


def available_backends() -> dict[str, str]:
    """Map each backend name to ``"ok: <device>"`` or the reason it is unavailable."""
    out = {}
    for n in NAMES:
        try:
            out[n] = f"ok: {get_backend(n).device}"
        except BackendUnavailable as exc:
            out[n] = str(exc)
    return out
