"""One physics source, two targets.

A *pointwise* function is a scalar Python function that uses only ``math`` and arithmetic.
:func:`pointwise` returns a small object holding it in three forms:

- ``.py``   the plain Python function (NumPy reference paths and documentation),
- ``.cpu``  compiled with ``numba.njit`` (called from CPU ``prange`` loops),
- ``.cpu_inline`` the same, inlined into its caller (for loops that must vectorise),
- ``.cuda`` compiled with ``numba.cuda.jit(device=True)``, built lazily on first access so that
  ``import nanosim`` never imports ``numba.cuda`` (and never CuPy).

Under ``NUMBA_ENABLE_CUDASIM=1`` the ``.cuda`` form runs in Numba's CUDA simulator, which is how
CI checks every CUDA kernel against its CPU twin without a GPU.
"""

from __future__ import annotations

import functools
import types

import numba

#: Options shared by every CPU kernel. ``cache=True`` keeps compiled code between processes.
NJIT_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")


class Pointwise:
    """A scalar physics function compiled for CPU and (lazily) for CUDA.

    A pointwise function may call other pointwise functions by their module-level names; each
    target's build sees those names bound to the same target's compiled form.
    """

    def __init__(self, fn):
        self.py = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def _retarget(self, target: str):
        glb = dict(self.py.__globals__)
        for key in self.py.__code__.co_names:  # only the names this function uses
            value = glb.get(key)
            if isinstance(value, Pointwise) and value is not self:
                glb[key] = getattr(value, target)
        fn = types.FunctionType(self.py.__code__, glb, self.py.__name__, self.py.__defaults__,
                                self.py.__closure__)
        fn.__qualname__ = self.py.__qualname__
        fn.__module__ = self.py.__module__
        return fn

    @functools.cached_property
    def cpu(self):
        return numba.njit(**NJIT_OPTIONS)(self._retarget("cpu"))

    @functools.cached_property
    def cpu_inline(self):
        """Compiled with ``numba.njit(inline="always")``, its pointwise callees likewise.

        Numba inlines such functions into the caller's IR before type inference, so a kernel's
        constant choices fold away and LLVM sees one straight-line loop body it can vectorise;
        ``.cpu`` callees stay opaque calls (a loop that calls one is not vectorised).
        """
        return numba.njit(inline="always", **NJIT_OPTIONS)(self._retarget("cpu_inline"))

    @functools.cached_property
    def cuda(self):
        from numba import cuda

        return cuda.jit(device=True, inline=True)(self._retarget("cuda"))

    def __call__(self, *args):
        return self.py(*args)

    def __repr__(self) -> str:
        return f"<pointwise {self.__name__}>"


def pointwise(fn) -> Pointwise:
    """Decorator: mark ``fn`` as a pointwise physics function (see module docstring)."""
    return Pointwise(fn)


def cuda_module():
    """Import and return ``numba.cuda`` (real device or the simulator)."""
    from numba import cuda

    return cuda
