"""Compute kernels of nanosim.

Every kernel's physics is written once as small scalar functions (``math`` only) in
:mod:`nanosim.kernels.physics` and friends, and compiled twice by
:func:`nanosim.kernels._compile.pointwise`: with ``numba.njit`` for CPU loops and with
``numba.cuda.jit(device=True)`` for CUDA kernels that run on CuPy arrays. Drivers are thin:
compute the index, bounds-check, call the pointwise function. Importing this package never
imports CuPy or ``numba.cuda``; CUDA kernels are built on first use.
"""
