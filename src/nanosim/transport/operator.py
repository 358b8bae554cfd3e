r"""The diffusion–convection–reaction operator on the voxel grid, on any backend.

.. math::

    \partial_t c = \nabla\cdot(D\nabla c) - \nabla\cdot(u c) - k c + \tfrac{PS}{V}(c_p - c) + s
                   - k_{on} c + k_{off} c_b,\qquad
    \partial_t c_b = k_{on} c - k_{off} c_b

with ``D``, ``k``, ``k_on``, ``k_off`` per tissue region, the wall exchange rate ``PS/V`` and source
``s`` per voxel, face velocities ``u``, voxels held at the plasma concentration ``c_p`` (vessel
lumen) and no-flux / periodic / fixed-value walls. Two schemes:

- ``explicit``: forward Euler with the flux-form 7-point stencil, sub-stepped automatically inside
  the stability limit (:func:`~nanosim.kernels.explicit.explicit_dt_limit`); second order in
  space, first in time. A fast path (reads ``c`` once, writes once) is used when the coefficients
  are uniform and nothing else is present.
- ``implicit``: locally one-dimensional backward Euler with Thomas solves per grid line
  (:mod:`nanosim.kernels.implicit`), unconditionally stable; first order in time.

The operator owns the state arrays ``c`` and ``cb`` (on the backend's device) and returns the
mass ledger of every step (float64, moles), see :mod:`nanosim.kernels.transport`.
"""

from __future__ import annotations

import math

import numpy as np

from ..backends import Backend
from ..geometry import Grid
from nanosim.kernels import explicit as _explicit
from nanosim.kernels.transport import LEDGER_SIZE

BC_CODES = {"no_flux": 0, "periodic": 1, "fixed": 2}

#: Fraction of the forward-Euler stability limit used by the explicit scheme.
EXPLICIT_SAFETY = 0.9
#: Fields of at least this many bytes take two explicit uniform sub-steps per pass over memory
#: (numba). Below it the field stays in the caches and the single step is as fast or faster
#: (2-core EPYC, 32 MiB L3: 128³ float32 3.5 G/s single against 3.1–3.4 G/s paired; 256³ float32
#: 2.4–2.5 against 3.2–3.3).
PAIR_MIN_BYTES = 32 * 2**20


def _add_step(led, step_led):
    """Add one (sub-)step's ledger to the step's: amounts add up, the total is the latest."""
    led[:5] += step_led[:5]
    led[5] = step_led[5]


class TransportOperator:
    """Diffusion–convection–reaction of one species with an immobile bound pool (see module doc).

    Parameters
    ----------
    backend : Backend
    grid : Grid
    region : uint8 ndarray (nz, ny, nx)
        Region code per voxel.
    d_table, k_table, kon_table, koff_table : sequences of float
        Per-region diffusivity (m²/s), first-order loss (1/s), binding and unbinding rates (1/s).
    bc_kind, bc_value : 3 ints, 3 floats
        Wall kind per physical axis (0 no-flux, 1 periodic, 2 fixed) and fixed value (mol/m³).
    dtype : numpy dtype
        Field precision.
    scheme : {"explicit", "implicit"}
    ps : ndarray or None
        Wall exchange rate P·S/V per voxel (1/s).
    src : ndarray or None
        Volumetric source (mol m⁻³ s⁻¹).
    fixed : uint8 ndarray or None
        1 where the voxel holds the plasma concentration.
    velocity_m_per_s : 3 floats or ndarray (3, nz, ny, nx) or None
        Uniform velocity or face velocities (m/s).
    """

    def __init__(self, backend: Backend, grid: Grid, region, d_table, k_table, kon_table, koff_table,
                 bc_kind, bc_value, dtype, scheme="explicit", ps=None, src=None, fixed=None,
                 velocity_m_per_s=None):
        self.backend = backend
        self.grid = grid
        self.scheme = scheme
        self.dtype = np.dtype(dtype)
        shape = grid.shape_zyx
        dev = backend.asarray
        self.region = dev(region, np.uint8)
        self.d_table = dev(np.asarray(d_table, np.float64))
        self.k_table = dev(np.asarray(k_table, np.float64))
        self.kon_table = dev(np.asarray(kon_table, np.float64))
        self.koff_table = dev(np.asarray(koff_table, np.float64))
        self._tables_host = tuple(np.asarray(t, np.float64) for t in (d_table, k_table, kon_table, koff_table))
        self.bc_kind = dev(np.asarray(bc_kind, np.int64))
        self.bc_value = dev(np.asarray(bc_value, np.float64))
        self._bc_kind_host = np.asarray(bc_kind, np.int64)
        self._bc_value_host = np.asarray(bc_value, np.float64)
        dummy = dev(np.zeros(1, self.dtype))
        self.has_ps = ps is not None and bool(np.any(np.asarray(ps) != 0))
        self.ps = dev(ps, self.dtype) if self.has_ps else dummy
        self.has_src = src is not None and bool(np.any(np.asarray(src) != 0))
        self.src = dev(src, self.dtype) if self.has_src else dummy
        self.has_fixed = fixed is not None and bool(np.any(np.asarray(fixed) != 0))
        self.fixed = dev(fixed, np.uint8) if self.has_fixed else dev(np.zeros(1, np.uint8))
        u = None if velocity_m_per_s is None else np.asarray(velocity_m_per_s, np.float64)
        self.u_max = (0.0, 0.0, 0.0)
        if u is not None and u.shape == (3,):
            self.u_max = tuple(abs(float(v)) for v in u)
            u = np.broadcast_to(u[:, None, None, None], (3,) + shape) if np.any(u != 0) else None
        elif u is not None:
            self.u_max = tuple(float(np.abs(u[a]).max()) for a in range(3))
        self.has_u = u is not None
        self.u = dev(u, self.dtype) if self.has_u else dev(np.zeros((3, 1, 1, 1), self.dtype))
        # explicit stencils want each row's x = 1 on a 64-byte boundary (Backend.field_zeros)
        alloc = backend.field_zeros if self.scheme == "explicit" else backend.zeros
        self.c = alloc(shape, self.dtype)
        self.cb = alloc(shape, self.dtype)
        # a region present in the grid decides the uniform fast path
        present = np.unique(np.asarray(region))
        d, k, kon, koff = (t[present] for t in self._tables_host)
        self.uniform = (np.all(d == d[0]) and np.all(k == k[0]) and not np.any(kon) and not np.any(koff)
                        and not (self.has_ps or self.has_src or self.has_fixed or self.has_u))
        self._uniform_dk = (float(d[0]), float(k[0]))
        self._ps_max = float(np.asarray(ps).max()) if self.has_ps else 0.0
        self._k_max = float(np.max(k + kon + koff)) + self._ps_max
        self._d_max = float(d.max())
        self._ledger = np.zeros(LEDGER_SIZE)
        self._pair_fn = None
        self._setup_backend()

    # ------------------------------------------------------------------------------------------
    def _setup_backend(self):
        name = self.backend.name
        shape = self.grid.shape_zyx
        if self.scheme == "explicit":
            self.c_out = self.backend.field_zeros(shape, self.dtype)
            self.cb_out = self.backend.field_zeros(shape, self.dtype)
            if name == "cupy":
                from nanosim.kernels import explicit_cuda

                self._general = explicit_cuda.explicit_step
                self._uniform_fn = explicit_cuda.uniform_step
                self._dev_ledger = self.backend.zeros(LEDGER_SIZE, np.float64)
            elif name == "numba":
                self._general = _explicit.numba_explicit_step
                self._uniform_fn = _explicit.numba_uniform_step
                self._partial = np.zeros((shape[0] * shape[1], LEDGER_SIZE))
                self._partial_z = np.zeros((shape[0], LEDGER_SIZE))
                big = np.dtype(self.dtype).itemsize * math.prod(shape) >= PAIR_MIN_BYTES
                if self.uniform and big and _explicit.pair_supported(self._bc_kind_host):
                    # two sub-steps per pass over memory, bitwise the same as two single steps
                    self._pair_fn = _explicit.numba_uniform_pair_step
            else:
                self._general = _explicit.numpy_explicit_step
                self._uniform_fn = _explicit.numpy_uniform_step
        elif self.scheme == "implicit":
            from nanosim.kernels import implicit as _implicit

            if name == "cupy":
                from nanosim.kernels import implicit_cuda

                self._implicit = implicit_cuda.cuda_implicit_step
                self._work = implicit_cuda.make_cuda_workspace(shape, self.dtype)
            elif name == "numba":
                self._implicit = _implicit.numba_implicit_step
                self._work = _implicit.make_workspace(shape, self.dtype)
            else:
                self._implicit = _implicit.numpy_implicit_step
                self._work = _implicit.make_workspace(shape, self.dtype)
        else:
            raise ValueError(f"unknown scheme {self.scheme!r}: explicit or implicit")

    # ------------------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return sum(1 for n in self.grid.shape_xyz if n > 1)

    def explicit_dt_limit(self) -> float:
        """Largest stable forward-Euler step (s) for these coefficients."""
        return _explicit.explicit_dt_limit(self.grid.voxel_size_m, self._d_max, self.u_max, self._k_max,
                                           ndim=max(self.ndim, 1))

    def substeps(self, dt: float) -> int:
        """Number of explicit sub-steps needed for an outer step ``dt``."""
        if self.scheme != "explicit":
            return 1
        lim = EXPLICIT_SAFETY * self.explicit_dt_limit()
        return max(1, math.ceil(dt / lim - 1e-12))

    def single_substeps(self, dt: float) -> int:
        """The number ``n`` of pieces ``dt/n`` that the operator steps in one sub-step each (a caller
        that acts between sub-steps calls :meth:`step` ``n`` times)."""
        n = self.substeps(dt)
        while self.substeps(dt / n) > 1:
            n += 1
        return n

    def step(self, dt: float, cp: float) -> np.ndarray:
        """Advance ``c`` and ``cb`` by ``dt`` (s) with plasma concentration ``cp`` (mol/m³).

        Returns the float64 ledger of the step in moles: [boundary inflow, vessel supply, loss,
        wall exchange, source, total after].
        """
        vol = self.grid.voxel_volume_m3
        led = self._ledger
        led[:] = 0.0
        h = self.grid.voxel_size_m
        if self.scheme == "explicit":
            n = self.substeps(dt)
            sub = dt / n
            if self.backend.is_gpu:
                # the device ledger adds up every sub-step and comes back once per step (one sync)
                dev = self._dev_ledger
                dev[:] = 0.0
                for _ in range(n):
                    dev[5:] = 0.0  # only the last total counts
                    self._explicit_once(sub, cp, dev, on_device=True)
                led[:] = self.backend.to_host(dev)
            else:
                done = 0
                total = None  # Σc after the last sub-step (uniform numba path): the next one's input
                while done < n:
                    led[5] = 0.0  # only the last total counts
                    if self._pair_fn is not None and n - done >= 2:
                        total = self._explicit_pair(sub, led, total)
                        done += 2
                    else:
                        total = self._explicit_once(sub, cp, led, total_in=total)
                        done += 1
        else:
            # the implicit step takes its small tables, walls and ledger on the host on every backend
            d, k, kon, koff = self._tables_host
            self._run_backend(lambda L: self._implicit(
                self.c, self.cb, self.region, d, k, kon, koff, self.ps, self.has_ps, self.src, self.has_src,
                self.fixed, self.has_fixed, cp, self.u, self.has_u, self._bc_kind_host, self._bc_value_host,
                h, dt, self._work, L), led, host_ledger=True)
        return led * vol

    def set_boundary_values(self, values) -> None:
        """Concentrations on the fixed-value walls (x, y, z), in the field's unit."""
        self._bc_value_host[:] = np.asarray(values, np.float64)
        self.bc_value = self.backend.asarray(self._bc_value_host)

    def step_fields(self, c, cb, dt: float, cp: float) -> np.ndarray:
        """:meth:`step` applied to the fields ``c``, ``cb`` (advanced in place) instead of the
        operator's own: one set of coefficients for several species. Returns the step's ledger."""
        own = (self.c, self.cb)
        self.c, self.cb = c, cb
        try:
            led = self.step(dt, cp)
            # the explicit step may leave the result in the spare arrays: copy it back, keep the spares
            if self.c is not c:
                c[...] = self.c
                self.c_out = self.c
            if self.cb is not cb:
                cb[...] = self.cb
                self.cb_out = self.cb
        finally:
            self.c, self.cb = own
        return led

    def _run_backend(self, fn, led, host_ledger=False, on_device=False):
        if on_device:
            fn(led)  # ``led`` is the device ledger: the kernel adds to it
            return
        if self.backend.is_gpu and not host_ledger:
            self._dev_ledger[:] = 0.0
            fn(self._dev_ledger)
            step_led = self.backend.to_host(self._dev_ledger)
        else:
            step_led = np.zeros(LEDGER_SIZE)
            fn(step_led)
        _add_step(led, step_led)

    def _explicit_pair(self, dt, led, total_in=None):
        """Two uniform sub-steps in one call; ``led`` gets each step's entries in turn, exactly as
        two calls of :meth:`_explicit_once` would add them. Returns Σc after them."""
        d, k = self._uniform_dk
        led_a = np.zeros(LEDGER_SIZE)
        led_b = np.zeros(LEDGER_SIZE)
        total = self._pair_fn(self.c, self.c_out, d, k, self._bc_kind_host, self._bc_value_host,
                              self.grid.voxel_size_m, dt, led_a, led_b, partial=self._partial_z,
                              total_in=total_in)
        _add_step(led, led_a)
        _add_step(led, led_b)
        self.c, self.c_out = self.c_out, self.c
        return total

    def _explicit_once(self, dt, cp, led, on_device=False, total_in=None):
        """One explicit sub-step. On the uniform numba path returns Σc after it (the kernel's own
        sum), which the next sub-step of the same call takes as ``total_in`` instead of summing
        its input again; otherwise None."""
        h = self.grid.voxel_size_m
        if self.uniform:
            d, k = self._uniform_dk
            numba_path = self.backend.name == "numba"
            extra = {"partial": self._partial_z, "total_in": total_in} if numba_path else {}
            totals = []
            # the uniform step takes its wall codes and values on the host on every backend
            self._run_backend(lambda L: totals.append(self._uniform_fn(
                self.c, self.c_out, d, k, self._bc_kind_host, self._bc_value_host, h, dt, L, **extra)),
                led, on_device=on_device)
            self.c, self.c_out = self.c_out, self.c
            # no binding on this path: cb stays 0 and the kernel's total Σc is the whole amount
            return totals[0] if numba_path else None
        else:
            extra = {} if self.backend.name != "numba" else {"partial": self._partial}
            self._run_backend(lambda L: self._general(
                self.c, self.cb, self.c_out, self.cb_out, self.region, self.d_table, self.k_table,
                self.kon_table, self.koff_table, self.ps, self.has_ps, self.src, self.has_src,
                self.fixed, self.has_fixed, cp, self.u, self.has_u, self.bc_kind, self.bc_value,
                h, dt, L, **extra), led, on_device=on_device)
            self.c, self.c_out = self.c_out, self.c
            self.cb, self.cb_out = self.cb_out, self.cb

    def total_mol(self) -> float:
        """Σ(c + cb)·V in float64 (mol)."""
        xp = self.backend.xp
        s = xp.sum(self.c, dtype=xp.float64) + xp.sum(self.cb, dtype=xp.float64)
        return float(s) * self.grid.voxel_volume_m3

    def __repr__(self) -> str:
        path = "uniform fast path" if self.uniform and self.scheme == "explicit" else "general"
        parts = [p for p, on in (("exchange", self.has_ps), ("source", self.has_src),
                                 ("fixed voxels", self.has_fixed), ("convection", self.has_u)) if on]
        return (f"TransportOperator ({self.scheme}, {path}, {self.dtype.name}, {self.backend.name})\n"
                f"├── terms: diffusion, loss, binding{', ' if parts else ''}{', '.join(parts)}\n"
                f"└── walls x/y/z: {', '.join(str(int(k)) for k in self._bc_kind_host)} "
                f"(0 no-flux, 1 periodic, 2 fixed)")
