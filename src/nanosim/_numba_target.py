"""Numba's CPU code generation: 512-bit vectors on every CPU that has AVX-512.

LLVM tunes its code for Intel server cores with AVX-512 (Skylake-SP through Emerald Rapids) to
prefer 256-bit vectors (its ``prefer-256-bit`` tuning flag, chosen against the clock slow-down of
wide vectors on the first of those cores). With that preference LLVM leaves the interstitial
particle step with a field lookup (:mod:`nanosim.kernels.particles`) unvectorised: on a 2-core
Emerald Rapids machine it ran at 88 M particle-steps/s, against 224 M/s with 512-bit vectors
(benchmarks/README.md, "512-bit vectors"). AMD's AVX-512 cores (Zen 4) have no such preference.

Numba builds its target machine once, when it is first imported, from the environment variables
``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES``; so :func:`configure` runs from ``nanosim``'s
``__init__``, before anything imports Numba, and where the CPU has AVX-512 sets
``NUMBA_CPU_FEATURES`` to the host's own features plus ``-prefer-256-bit``. It changes nothing:

- where the user has set ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` (their choice stands);
- where ``NANOSIM_NUMBA_VECTOR_BITS=native`` (LLVM's own preference for this CPU);
- on a CPU without AVX-512, or when Numba was imported before ``nanosim`` (then it reports
  ``"too late"``; import ``nanosim`` first, or set the variable yourself).

Numba's on-disk cache keys compiled code by the CPU name and features, so code compiled with
and without this setting never mixes. The setting is inherited by child processes (Dask
workers started from this process compile the same code).
"""

from __future__ import annotations

import os
import sys

#: Environment variable: ``512`` (the default) or ``native`` (leave LLVM's preference alone).
ENV = "NANOSIM_NUMBA_VECTOR_BITS"
_FLAG = "-prefer-256-bit"

#: What :func:`configure` did in this process (shown by ``nanosim info`` and the benchmarks).
STATE = {"vector_bits": "not configured"}


def _has_avx512() -> bool:
    """AVX-512 Foundation on this CPU (from /proc/cpuinfo where it exists, else from LLVM)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
        return False
    except OSError:
        pass
    try:
        import llvmlite.binding as ll

        return ll.get_host_cpu_features().get("avx512f", False)
    except Exception:  # noqa: BLE001 - no LLVM, no tuning
        return False


def _features() -> str:
    """The host's LLVM feature string without the 256-bit preference (what :func:`configure` sets)."""
    import llvmlite.binding as ll

    return ll.get_host_cpu_features().flatten() + "," + _FLAG


def configure(environ=os.environ) -> str:
    """Prefer 512-bit vectors in Numba's code where the CPU has AVX-512 (see module docstring).

    Returns what was done: ``"512 (set by nanosim)"``, ``"set by the user (NUMBA_...)"``,
    ``"native"``, ``"native (no AVX-512)"``, ``"native (unknown setting)"`` (with a warning) or
    ``"too late (numba imported first)"``; the same string is kept in ``STATE["vector_bits"]``.
    A child process that inherits the variable nanosim set reports ``"512 (set by nanosim)"``.
    """
    choice = environ.get(ENV, "512").strip().lower()
    if choice not in ("512", "native"):
        import warnings

        warnings.warn(f"{ENV}={environ[ENV]!r} is neither '512' nor 'native'; Numba keeps LLVM's "
                      "own vector width for this CPU", stacklevel=2)
        state = "native (unknown setting)"
    elif "NUMBA_CPU_NAME" in environ or "NUMBA_CPU_FEATURES" in environ:
        inherited = "NUMBA_CPU_NAME" not in environ and environ["NUMBA_CPU_FEATURES"] == _features()
        state = ("512 (set by nanosim)" if inherited
                 else "set by the user (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES)")
    elif choice == "native":
        state = "native"
    elif "numba" in sys.modules:
        state = "too late (numba imported first)"
    elif not _has_avx512():
        state = "native (no AVX-512)"
    else:
        environ["NUMBA_CPU_FEATURES"] = _features()
        state = "512 (set by nanosim)"
    STATE["vector_bits"] = state
    return state
