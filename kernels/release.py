r"""Drug release from carriers along each carrier's own history (PHYSICS.md §7).

Release laws
------------
A carrier at constant conditions releases the fraction ``F(τ)`` of its payload after a time
``τ``. The laws (:data:`LAW_NAMES`, codes :data:`LAW_NONE` …), with their two parameters
``(p0, p1)`` as the kernels take them:

=====================  =======================================  ==============================
law                    ``F(τ)``                                 ``p0``, ``p1``
=====================  =======================================  ==============================
``none``               0                                        –
``first_order``        ``1 − e^(−kτ)``                          ``k`` (1/s), –
``higuchi``            ``min(1, k_H √τ)``                       ``k_H`` (s^−½), –
``korsmeyer_peppas``   ``min(1, k τⁿ)``                         ``k`` (s^−n), ``n``
``weibull``            ``1 − exp(−(τ/τ_d)^b)``                  ``τ_d`` (s), ``b``
``sphere_diffusion``   ``1 − (6/π²) Σ e^(−n²π²Dτ/a²)/n²``       ``D/a²`` (1/s), –
=====================  =======================================  ==============================

Korsmeyer–Peppas is an empirical fit of the first 60 % of a release curve (valid for
``F ≤ 0.6``; ``n = 0.43`` Fickian sphere, ``0.85`` case II, unconfirmed); beyond that it is only
capped at 1. Higuchi is likewise an early-time (planar matrix) law, capped at 1.

Diffusion out of a sphere of radius ``a`` (Crank 1975, eq. 6.20) is evaluated accurately for
every ``x = Dτ/a²``: below :data:`SPHERE_SWITCH` = 0.1 with the short-time form

.. math::  F = 6\sqrt{x}\,\Big[\pi^{-1/2} + 2\sum_{n\ge 1}\operatorname{ierfc}(n/\sqrt{x})\Big] - 3x,
           \qquad \operatorname{ierfc} z = e^{-z^2}/\sqrt\pi - z\,\operatorname{erfc} z

(terms ``n = 1…3``; the first omitted one is below ``e^{−160}``), above it with the exponential
series (terms ``n = 1…8``; the first omitted one is below ``e^{−80}``). Both forms are exact
series of the same function; at the switch they agree to round-off. ``F = 0.5`` at
``x = 0.03055`` and ``0.9`` at ``x = 0.1830``.

Burst
-----
A fraction ``f_b`` (:attr:`ReleaseParams.burst_fraction`) is released at once and the law acts
on the rest: ``F_total = f_b·[burst happened] + (1 − f_b) F(τ)``. The burst happens in the first
step the particle spends in a compartment whose burst flag is set
(:attr:`ReleaseParams.burst_states`):

- all live compartments (the default, "at injection"): the first step the carrier exists, i.e.
  ``t = 0`` of its history;
- a subset, "on entering": e.g. ``(TISSUE, BOUND, INTERNALISED, LODGED)`` bursts when the
  carrier first leaves the blood, ``(INTERNALISED,)`` when it is taken up by a cell.

It happens once: whether it has happened is read from the particle's own numbers,
``released_fraction − (1 − f_b) F(τ) > f_b/2`` (the two differ by 0 or ``f_b``), so no flag
array is needed. A particle created from a pool (e.g. extravasated from blood) inherits the
pool's ``tau`` and ``released_fraction``, burst included.

pH and compartment modulation: the release clock
------------------------------------------------
Every particle carries an internal release clock ``τ`` (s), and its released fraction is
``F_total(τ)``. The clock runs at a speed set by where the carrier is and the pH it sees,

.. math::  d\tau/dt = c_s \, h(\mathrm{pH}), \qquad
           h(\mathrm{pH}) = h_{min} + \frac{1 - h_{min}}{1 + 10^{\,n(\mathrm{pH} - pK_a)}},

with ``c_s`` the factor of the particle's compartment ``s`` (:attr:`ReleaseParams.factors`:
``vessel`` (blood), ``tissue``, ``bound``, ``internalised`` (endosome), ``lodged``; terminal
and inactive slots do not release) and ``h`` the Hill pH trigger written as a fraction of the
fastest rate, ``h = k(pH)/k_max`` with ``h_min = k_min/k_max`` (PHYSICS.md §7; ``h_min = 1``:
no trigger). The pH a particle sees is ``ph_blood`` in a vessel (7.4), ``ph_endosome`` when
internalised (a constant given by the caller; late endosome 5.0–6.0, unconfirmed), and the
local pH ``ph_local[i]`` in tissue, bound or lodged (the caller samples its pH field at the
particle; without a field, ``ph_tissue``).

For the first-order law this is exactly ``dM/dt = −k_max c_s h(pH(t)) M``, the rate law of
PHYSICS.md §7 integrated along the carrier's own history. For the time-shaped laws (Higuchi,
Korsmeyer–Peppas, Weibull, sphere) it is the documented generalisation of §7: the whole curve
is run at a pH-scaled speed, so a carrier that spent ``τ`` "effective seconds" is where a
carrier at the fastest conditions would be after ``τ`` seconds. It reduces to the law at
constant conditions and preserves the ordering of curves; it is a modelling assumption (a
diffusion-controlled matrix whose diffusivity scales with ``h``), not a measured behaviour.

Each step the pH is held constant over the step (sampled by the caller at the step's start),
so the clock advance ``c_s h Δt`` is exact for a pH that is piecewise constant on the steps and
the result does not depend on how a constant-pH interval is split into steps.

What a step returns
-------------------
:func:`release_step` advances ``tau`` and ``released_fraction`` in place and returns the drug
released in the step by each particle, ``weight × payload_mol × ΔF_total`` (mol), where
``weight`` is the number of real carriers a particle stands for and ``payload_mol`` the drug
loaded per carrier (the full load, constant; the drug still inside is
``payload_mol (1 − released_fraction)``). The caller deposits it by the particle's compartment:
into the plasma for ``VESSEL`` particles, into the tissue voxel otherwise;
:func:`released_by_compartment` sums it per compartment for the ledgers. Nothing is random:
every backend computes the same numbers (to a few ulp of the math library).

Backends
--------
- :func:`numpy_release_step`: vectorised NumPy written independently of the pointwise
  functions (SciPy's ``erfc``), the test oracle;
- :func:`numba_release_step`: ``prange`` over particles calling :func:`release_particle`;
- ``nanosim.kernels.release_cuda.release_step``: one CUDA thread per particle calling the
  ``.cuda`` form of the same function (imported lazily);
- :func:`release_step`: dispatch on a backend name.

Continuum carriers
------------------
A finite-volume carrier model has no individual clocks; it carries the drug still inside the
carriers, ``M`` (mol/m³), as fields transported with the carriers
(:mod:`nanosim.carriers.continuum`, ``ContinuumCarrierModel(release=...)``).

(a) For the rate law (first order) ``M`` is enough: per pool
``∂M/∂t = transport − k_max c_pool h(pH(x)) M``; :func:`first_order_rate_map` gives that loss
rate per voxel and :func:`continuum_first_order_release` applies it exactly over a step
(``M ← M e^{−kΔt}``, returning the released ``M (1 − e^{−kΔt})``), the same numbers as the
particle clocks for carriers that stay in one voxel.

(b) Time-shaped laws are not Markovian in ``M``: the release rate depends on each carrier's
clock, which differs between carriers that meet in a voxel. The continuum model is therefore
age-structured: each pool's drug is split into ``K`` clock classes ``M_j``
(``τ ∈ [τ_j, τ_{j+1})``, the last one open), every class is transported with the carriers, mass
moves between classes by first-order upwind advection in ``τ`` at the local clock speed
``c_pool h(pH(x))`` — the same clock as the particles' — and class ``j`` releases at its mean
hazard ``ln[S(τ_j)/S(τ_{j+1})]/Δτ_j`` (``S = 1 − F``; the pointwise ``F'/(1 − F)`` is infinite
at ``τ = 0`` for Higuchi, Korsmeyer–Peppas and Weibull ``b < 1``) times that speed. First order
is the special case ``K = 1`` (exact). The time-shaped laws converge at first order in the
class width (default: 32 classes, each holding ``1/K`` of the release; error ≈ 0.15–0.3/K of
the payload, about order ½ near the ``F = 1`` cap of Higuchi and Korsmeyer–Peppas); the
burst is one more transported field per pool, released where the particle kernel bursts.
Details, accuracy and tests: the module docstring of :mod:`nanosim.carriers.continuum` and
tests/carriers/test_continuum_release.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numba
import numpy as np

from ._compile import NJIT_OPTIONS, pointwise
from .compartments import BOUND, INTERNALISED, LODGED, NAMES, TISSUE, VESSEL

__all__ = [
    "BACKENDS",
    "LAW_NAMES",
    "LAW_NONE",
    "LAW_FIRST_ORDER",
    "LAW_HIGUCHI",
    "LAW_KORSMEYER_PEPPAS",
    "LAW_WEIBULL",
    "LAW_SPHERE_DIFFUSION",
    "LIVE_STATES",
    "SPHERE_SWITCH",
    "ReleaseParams",
    "sphere_fraction_short",
    "sphere_fraction_long",
    "fraction_released",
    "ph_factor",
    "release_particle",
    "numpy_fraction_released",
    "numpy_ph_factor",
    "numpy_release_step",
    "numba_release_step",
    "release_step",
    "released_by_compartment",
    "first_order_rate_map",
    "continuum_first_order_release",
]

#: Backend names accepted by :func:`release_step`.
BACKENDS = ("numpy", "numba", "cupy")

LAW_NONE = 0
LAW_FIRST_ORDER = 1
LAW_HIGUCHI = 2
LAW_KORSMEYER_PEPPAS = 3
LAW_WEIBULL = 4
LAW_SPHERE_DIFFUSION = 5
#: Law names, indexed by law code.
LAW_NAMES = ("none", "first_order", "higuchi", "korsmeyer_peppas", "weibull", "sphere_diffusion")

#: Compartments in which carriers release drug (the keys of :attr:`ReleaseParams.factors`).
LIVE_STATES = (VESSEL, TISSUE, BOUND, INTERNALISED, LODGED)

#: ``Dτ/a²`` below which the sphere law uses its short-time series.
SPHERE_SWITCH = 0.1
_SQRT_PI = math.sqrt(math.pi)
_PI2 = math.pi * math.pi
_N_SHORT = 3  # ierfc terms of the short-time series
_N_LONG = 8  # exponential terms of the long-time series
_HILL_EXP_MAX = 300.0  # 10**300 ≈ inf for h; avoids OverflowError in the Python form
_N_CODES = len(NAMES)


# --------------------------------------------------------------------------------------------
# Pointwise functions: the one physics source of the Numba and CUDA kernels
# --------------------------------------------------------------------------------------------


@pointwise
def sphere_fraction_short(x):
    """Crank's short-time series of diffusion out of a sphere, ``x = Dτ/a²`` (use for x < 0.1)."""
    if not x > 0.0:
        return 0.0
    r = math.sqrt(x)
    s = 0.0
    for n in range(_N_SHORT, 0, -1):
        z = n / r
        s += math.exp(-z * z) / _SQRT_PI - z * math.erfc(z)
    return 6.0 * r * (1.0 / _SQRT_PI + 2.0 * s) - 3.0 * x


@pointwise
def sphere_fraction_long(x):
    """Crank's exponential series of diffusion out of a sphere, ``x = Dτ/a²`` (use for x ≥ 0.1)."""
    s = 0.0
    for n in range(_N_LONG, 0, -1):
        n2 = float(n * n)
        s += math.exp(-n2 * _PI2 * x) / n2
    return 1.0 - 6.0 / _PI2 * s


@pointwise
def fraction_released(law, p0, p1, tau):
    """Fraction ``F(τ)`` released by law code ``law`` with parameters ``(p0, p1)`` (module table).

    ``τ ≤ 0`` (and NaN) gives 0; the result lies in [0, 1].
    """
    if not tau > 0.0:
        return 0.0
    if law == LAW_FIRST_ORDER:
        return -math.expm1(-p0 * tau)
    if law == LAW_HIGUCHI:
        return min(1.0, p0 * math.sqrt(tau))
    if law == LAW_KORSMEYER_PEPPAS:
        return min(1.0, p0 * math.pow(tau, p1))
    if law == LAW_WEIBULL:
        return -math.expm1(-math.pow(tau / p0, p1))
    if law == LAW_SPHERE_DIFFUSION:
        x = p0 * tau
        if x < SPHERE_SWITCH:
            return sphere_fraction_short(x)
        return sphere_fraction_long(x)
    return 0.0


@pointwise
def ph_factor(ph, pka, hill_n, h_min):
    """Hill pH trigger as a fraction of the fastest rate: ``h_min + (1 − h_min)/(1 + 10^(n(pH − pKa)))``."""
    e = min(hill_n * (ph - pka), _HILL_EXP_MAX)
    return h_min + (1.0 - h_min) / (1.0 + math.pow(10.0, e))


@pointwise
def release_particle(i, tau, frac, payload, weight, state, ph_local, speed_tab, burst_tab, ph_tab,
                     law, p0, p1, fb, pka, hill_n, h_min, dt, out):
    """Advance particle ``i``'s clock over ``dt``; store and return the drug it releases (mol).

    ``speed_tab``, ``burst_tab`` and ``ph_tab`` are indexed by compartment code: the clock
    factor, the burst flag (0/1) and the pH seen (NaN: ``ph_local[i]``). Updates ``tau[i]``,
    ``frac[i]`` and ``out[i] = weight[i]·payload[i]·ΔF_total``.
    """
    s = int(state[i])
    if s < 0 or s >= speed_tab.shape[0]:
        out[i] = 0.0
        return 0.0
    sp = speed_tab[s]
    b = burst_tab[s]
    if not (sp > 0.0 or b > 0.0):
        out[i] = 0.0
        return 0.0
    t0 = tau[i]
    f0 = frac[i]
    t1 = t0
    if sp > 0.0:
        ph = ph_tab[s]
        if ph != ph:
            ph = float(ph_local[i])
        t1 = t0 + sp * ph_factor(ph, pka, hill_n, h_min) * dt
    rest = 1.0 - fb
    g0 = fraction_released(law, p0, p1, t0)
    g1 = fraction_released(law, p0, p1, t1)
    if f0 - rest * g0 > 0.5 * fb:
        b = 1.0
    f1 = fb * b + rest * g1
    if f1 < f0:
        f1 = f0
    tau[i] = t1
    frac[i] = f1
    r = float(weight[i]) * float(payload[i]) * (f1 - f0)
    out[i] = r
    return r


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def _law_code(law) -> int:
    if isinstance(law, str):
        if law not in LAW_NAMES:
            raise ValueError(f"unknown release law {law!r}; expected one of {LAW_NAMES}")
        return LAW_NAMES.index(law)
    code = int(law)
    if not 0 <= code < len(LAW_NAMES):
        raise ValueError(f"unknown release law code {law!r}; expected 0–{len(LAW_NAMES) - 1}")
    return code


_FACTOR_NAMES = tuple(NAMES[c] for c in LIVE_STATES)


@dataclass(frozen=True)
class ReleaseParams:
    """Everything the release kernels need besides the particle arrays.

    Parameters
    ----------
    law : str or int
        Law name in :data:`LAW_NAMES` (or its code).
    p0, p1 : float
        Law parameters (module table): rate (1/s), Higuchi ``k_H`` (s^−½), Korsmeyer–Peppas ``k``
        (s^−n) and ``n``, Weibull ``τ_d`` (s) and ``b``, sphere ``D/a²`` (1/s). Use the
        constructors :meth:`first_order`, :meth:`higuchi`, … to get them right.
    burst_fraction : float
        ``f_b`` in [0, 1).
    burst_states : tuple of int
        Compartment codes whose first step triggers the burst (default: every live compartment,
        i.e. at the start of the carrier's history).
    pka, hill_n, h_min : float
        Hill pH trigger; ``h_min = k_min/k_max`` in (0, 1], 1 (default) for no trigger.
    factors : mapping of str to float
        Clock factor per compartment name (``vessel``, ``tissue``, ``bound``, ``internalised``,
        ``lodged``); missing names are 1.
    ph_blood, ph_endosome, ph_tissue : float
        pH in blood, inside cells (internalised carriers), and in tissue when the caller gives
        no ``ph_local``.
    """

    law: int | str = LAW_NONE
    p0: float = 0.0
    p1: float = 0.0
    burst_fraction: float = 0.0
    burst_states: tuple = LIVE_STATES
    pka: float = 6.5
    hill_n: float = 1.0
    h_min: float = 1.0
    factors: Mapping[str, float] = field(default_factory=dict)
    ph_blood: float = 7.4
    ph_endosome: float = 5.5
    ph_tissue: float = 7.4

    def __post_init__(self):
        code = _law_code(self.law)
        object.__setattr__(self, "law", code)
        for name in ("p0", "p1", "burst_fraction", "pka", "hill_n", "h_min", "ph_blood",
                     "ph_endosome", "ph_tissue"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ValueError(f"{name} must be finite, got {v}")
            object.__setattr__(self, name, v)
        if not 0.0 <= self.burst_fraction < 1.0:
            raise ValueError(f"burst_fraction must lie in [0, 1), got {self.burst_fraction}")
        if not 0.0 < self.h_min <= 1.0:
            raise ValueError(f"h_min (k_min/k_max) must lie in (0, 1], got {self.h_min}")
        if self.p0 < 0.0 or self.p1 < 0.0:
            raise ValueError(f"law parameters must be >= 0, got p0={self.p0}, p1={self.p1}")
        if code in (LAW_KORSMEYER_PEPPAS, LAW_WEIBULL) and not self.p1 > 0.0:
            raise ValueError(f"{LAW_NAMES[code]} needs an exponent p1 > 0, got {self.p1}")
        if code == LAW_WEIBULL and not self.p0 > 0.0:
            raise ValueError(f"weibull needs a time scale p0 > 0 s, got {self.p0}")
        bad = set(self.factors) - set(_FACTOR_NAMES)
        if bad:
            raise ValueError(f"unknown compartment(s) {sorted(bad)} in factors; expected {_FACTOR_NAMES}")
        for name, v in self.factors.items():
            if not (math.isfinite(float(v)) and float(v) >= 0.0):
                raise ValueError(f"factors[{name!r}] must be finite and >= 0, got {v}")
        states = tuple(int(s) for s in self.burst_states)
        if not set(states) <= set(LIVE_STATES):
            raise ValueError(f"burst_states must be live compartment codes {LIVE_STATES}, got {states}")
        object.__setattr__(self, "burst_states", states)

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def first_order(cls, rate_per_s, **kw):
        """``F = 1 − e^(−kτ)``, ``k = rate_per_s`` (the fastest rate, k_max, with a pH trigger)."""
        return cls(LAW_FIRST_ORDER, rate_per_s, 0.0, **kw)

    @classmethod
    def higuchi(cls, k_per_sqrt_s, **kw):
        """``F = min(1, k_H √τ)``."""
        return cls(LAW_HIGUCHI, k_per_sqrt_s, 0.0, **kw)

    @classmethod
    def korsmeyer_peppas(cls, k, n, **kw):
        """``F = min(1, k τⁿ)`` (τ in s; valid for F ≤ 0.6)."""
        return cls(LAW_KORSMEYER_PEPPAS, k, n, **kw)

    @classmethod
    def weibull(cls, scale_s, shape, **kw):
        """``F = 1 − exp(−(τ/τ_d)^b)``."""
        return cls(LAW_WEIBULL, scale_s, shape, **kw)

    @classmethod
    def sphere_diffusion(cls, diffusivity_m2_per_s, radius_m, **kw):
        """Diffusion out of a sphere of radius ``a`` (Crank 1975): ``p0 = D/a²``."""
        if not float(radius_m) > 0.0:
            raise ValueError(f"radius_m must be > 0, got {radius_m}")
        return cls(LAW_SPHERE_DIFFUSION, float(diffusivity_m2_per_s) / float(radius_m) ** 2, 0.0, **kw)

    @classmethod
    def none(cls, **kw):
        """No release (beyond a burst, if any)."""
        return cls(LAW_NONE, 0.0, 0.0, **kw)

    # -- kernel arguments --------------------------------------------------------------------
    def factor(self, name: str) -> float:
        """Clock factor of compartment ``name`` (1 unless given)."""
        return float(self.factors.get(name, 1.0))

    def tables(self, has_ph_local: bool = True):
        """``(speed, burst, ph)`` float64 tables indexed by compartment code.

        ``ph`` is NaN where the kernel reads ``ph_local`` (tissue, bound, lodged), or
        ``ph_tissue`` there when ``has_ph_local`` is false.
        """
        speed = np.zeros(_N_CODES)
        for code in LIVE_STATES:
            speed[code] = self.factor(NAMES[code])
        burst = np.zeros(_N_CODES)
        if self.burst_fraction > 0.0:
            burst[list(self.burst_states)] = 1.0
        ph = np.full(_N_CODES, np.nan if has_ph_local else self.ph_tissue)
        ph[VESSEL] = self.ph_blood
        ph[INTERNALISED] = self.ph_endosome
        return speed, burst, ph

    def scalars(self):
        """``(law, p0, p1, f_b, pKa, n, h_min)``: the scalar kernel arguments."""
        return (self.law, self.p0, self.p1, self.burst_fraction, self.pka, self.hill_n, self.h_min)

    def fraction(self, tau):
        """``F_total`` of a carrier whose burst has happened, at clock ``tau`` (s; array or float)."""
        fb = self.burst_fraction
        return fb + (1.0 - fb) * numpy_fraction_released(self.law, self.p0, self.p1, tau)


# --------------------------------------------------------------------------------------------
# Argument checking shared by every driver
# --------------------------------------------------------------------------------------------


def _need_1d(name, a, n=None):
    if not (hasattr(a, "shape") and hasattr(a, "dtype")):
        raise TypeError(f"{name} must be an array (NumPy, or CuPy for the cupy backend), "
                        f"got {type(a).__name__}")
    if len(a.shape) != 1 or (n is not None and a.shape[0] != n):
        raise ValueError(f"{name} must be 1-D" + (f" of length {n}" if n is not None else "")
                         + f", got shape {tuple(a.shape)}")


def _prepare(tau, released_fraction, payload_mol, weight, state, ph_local, dt_s, params, out,
             asarray, empty, dummy):
    """Check the arguments; return ``(out, kernel arguments after the particle arrays)``."""
    if not isinstance(params, ReleaseParams):
        raise TypeError(f"params must be a ReleaseParams, got {type(params).__name__}")
    _need_1d("tau", tau)
    n = tau.shape[0]
    for name, a in (("released_fraction", released_fraction), ("payload_mol", payload_mol),
                    ("weight", weight), ("state", state)):
        _need_1d(name, a, n)
    if tau.dtype != np.float64 or released_fraction.dtype != np.float64:
        raise TypeError("tau and released_fraction must be float64 (the clock accumulates), got "
                        f"{tau.dtype} and {released_fraction.dtype}")
    for name, a in (("payload_mol", payload_mol), ("weight", weight)):
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    if state.dtype not in (np.int8, np.uint8):
        raise TypeError(f"state must be an int8 or uint8 array of compartment codes, got {state.dtype}")
    if ph_local is not None:
        _need_1d("ph_local", ph_local, n)
        if ph_local.dtype not in (np.float32, np.float64):
            raise TypeError(f"ph_local must be float32 or float64, got {ph_local.dtype}")
    dt = float(dt_s)
    if not (math.isfinite(dt) and dt >= 0.0):
        raise ValueError(f"dt_s must be finite and >= 0, got {dt_s!r}")
    if out is None:
        out = empty(n)
    else:
        _need_1d("out", out, n)
        if out.dtype != np.float64:
            raise TypeError(f"out must be float64, got {out.dtype}")
    speed, burst, ph = params.tables(ph_local is not None)
    phl = ph_local if ph_local is not None else dummy()
    return out, (phl, asarray(speed), asarray(burst), asarray(ph), *params.scalars(), dt)


_HOST_DUMMY = np.zeros(1)


def _host_prepare(arrays, ph_local, dt_s, params, out):
    for name, a in zip(("tau", "released_fraction", "payload_mol", "weight", "state"), arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array for this backend, got {type(a).__name__}")
    if ph_local is not None and not isinstance(ph_local, np.ndarray):
        raise TypeError(f"ph_local must be a NumPy array for this backend, got {type(ph_local).__name__}")
    return _prepare(*arrays, ph_local, dt_s, params, out, asarray=np.asarray,
                    empty=lambda n: np.empty(n), dummy=lambda: _HOST_DUMMY)


# --------------------------------------------------------------------------------------------
# Numba (CPU) driver
# --------------------------------------------------------------------------------------------

_release_cpu = release_particle.cpu


@numba.njit(parallel=True, **NJIT_OPTIONS)
def _numba_kernel(tau, frac, payload, weight, state, ph_local, speed, burst, ph, law, p0, p1, fb,
                  pka, hill_n, h_min, dt, out):
    total = 0.0
    for i in numba.prange(tau.shape[0]):
        total += _release_cpu(i, tau, frac, payload, weight, state, ph_local, speed, burst, ph,
                              law, p0, p1, fb, pka, hill_n, h_min, dt, out)
    return total


def numba_release_step(tau, released_fraction, payload_mol, weight, state, ph_local=None, *,
                       dt_s, params, out=None):
    """One release step with the Numba ``prange`` kernel (``tau``, ``released_fraction`` in place).

    Parameters
    ----------
    tau : ndarray of float64
        Release clock of each particle (s); 0 for a fresh carrier.
    released_fraction : ndarray of float64
        ``F_total`` released so far (0 for a fresh carrier).
    payload_mol : ndarray of float32 or float64
        Drug loaded per real carrier (mol), the full load.
    weight : ndarray of float32 or float64
        Real carriers per particle.
    state : ndarray of int8 or uint8
        Compartment codes (:mod:`nanosim.kernels.compartments`); only the live compartments
        (:data:`LIVE_STATES`) release.
    ph_local : ndarray of float32 or float64, optional
        pH at each particle this step (read for tissue, bound and lodged particles); default
        ``params.ph_tissue`` everywhere.
    dt_s : float
        Time step (s).
    params : ReleaseParams
        Law, burst, pH trigger, compartment factors and pH.
    out : ndarray of float64, optional
        Where to write the result.

    Returns
    -------
    ndarray of float64
        Drug released by each particle in this step (mol): ``weight × payload_mol × ΔF_total``.
    """
    arrays = (tau, released_fraction, payload_mol, weight, state)
    out, args = _host_prepare(arrays, ph_local, dt_s, params, out)
    if tau.shape[0]:
        _numba_kernel(*arrays, *args, out)
    return out


# --------------------------------------------------------------------------------------------
# NumPy reference (independent vectorised code: the oracle of the compiled kernels)
# --------------------------------------------------------------------------------------------


def _np_sphere(x):
    from scipy.special import erfc

    x = np.asarray(x, np.float64)
    shape = x.shape
    x = x.reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.sqrt(np.maximum(x, 0.0))
        z = np.arange(1, _N_SHORT + 1)[:, None] / r
        ierfc = np.where(np.isfinite(z), np.exp(-z * z) / _SQRT_PI - z * erfc(z), 0.0)
        short = 6.0 * r * (1.0 / _SQRT_PI + 2.0 * ierfc[::-1].sum(axis=0)) - 3.0 * x
    n2 = (np.arange(_N_LONG, 0, -1) ** 2).astype(np.float64)[:, None]
    long = 1.0 - 6.0 / _PI2 * (np.exp(-n2 * _PI2 * x) / n2).sum(axis=0)
    return np.where(x > 0.0, np.where(x < SPHERE_SWITCH, short, long), 0.0).reshape(shape)


def numpy_fraction_released(law, p0, p1, tau):
    """Vectorised ``F(τ)`` of one law (same table as :func:`fraction_released`)."""
    law = _law_code(law)
    t = np.asarray(tau, np.float64)
    pos = t > 0.0
    tp = np.where(pos, t, 0.0)
    if law == LAW_FIRST_ORDER:
        f = -np.expm1(-p0 * tp)
    elif law == LAW_HIGUCHI:
        f = np.minimum(1.0, p0 * np.sqrt(tp))
    elif law == LAW_KORSMEYER_PEPPAS:
        f = np.minimum(1.0, p0 * np.power(tp, p1))
    elif law == LAW_WEIBULL:
        f = -np.expm1(-np.power(tp / p0, p1))
    elif law == LAW_SPHERE_DIFFUSION:
        f = _np_sphere(p0 * tp)
    else:
        f = np.zeros_like(tp)
    return np.where(pos, f, 0.0)


def numpy_ph_factor(ph, pka, hill_n, h_min):
    """Vectorised :func:`ph_factor` (NumPy or CuPy arrays, or floats)."""
    e = np.minimum(hill_n * (ph - pka), _HILL_EXP_MAX)
    return h_min + (1.0 - h_min) / (1.0 + np.power(10.0, e))


def numpy_release_step(tau, released_fraction, payload_mol, weight, state, ph_local=None, *,
                       dt_s, params, out=None):
    """NumPy reference of :func:`numba_release_step` (same arguments and result).

    Vectorised independently of the pointwise functions; agrees with the compiled kernels to a
    few ulp (the math libraries' ``expm1``, ``pow`` and ``erfc`` may differ in the last bit).
    """
    arrays = (tau, released_fraction, payload_mol, weight, state)
    out, (phl, speed, burst, phtab, law, p0, p1, fb, pka, hill_n, h_min, dt) = _host_prepare(
        arrays, ph_local, dt_s, params, out)
    s = state.astype(np.int64)
    valid = (s >= 0) & (s < _N_CODES)
    sc = np.where(valid, s, 0)
    sp, b = speed[sc], burst[sc]
    active = valid & ((sp > 0.0) | (b > 0.0))
    ph = phtab[sc]
    if ph_local is not None:
        ph = np.where(np.isnan(ph), ph_local.astype(np.float64), ph)
    h = numpy_ph_factor(ph, pka, hill_n, h_min)
    t0, f0 = tau.copy(), released_fraction.copy()
    t1 = np.where(active & (sp > 0.0), t0 + sp * h * dt, t0)
    rest = 1.0 - fb
    g0 = numpy_fraction_released(law, p0, p1, t0)
    g1 = numpy_fraction_released(law, p0, p1, t1)
    done = np.where(f0 - rest * g0 > 0.5 * fb, 1.0, b)
    f1 = np.maximum(fb * done + rest * g1, f0)
    tau[active] = t1[active]
    released_fraction[active] = f1[active]
    r = weight.astype(np.float64) * payload_mol.astype(np.float64) * (f1 - f0)
    out[...] = np.where(active, r, 0.0)
    return out


# --------------------------------------------------------------------------------------------
# Dispatch by backend name, ledgers
# --------------------------------------------------------------------------------------------


def release_step(backend_name, tau, released_fraction, payload_mol, weight, state, ph_local=None,
                 *, dt_s, params, out=None):
    """One release step on a backend (``tau`` and ``released_fraction`` in place).

    Arguments as :func:`numba_release_step`. ``"cupy"`` runs
    ``nanosim.kernels.release_cuda.release_step`` on CuPy arrays on CuPy's current stream.

    Returns
    -------
    array of float64
        Drug released by each particle in this step (mol), on the backend's device.
    """
    kw = dict(dt_s=dt_s, params=params, out=out)
    arrays = (tau, released_fraction, payload_mol, weight, state, ph_local)
    if backend_name == "numpy":
        return numpy_release_step(*arrays, **kw)
    if backend_name == "numba":
        return numba_release_step(*arrays, **kw)
    if backend_name == "cupy":
        import cupy

        from . import release_cuda

        if out is None:
            kw["out"] = cupy.empty(tau.shape[0], cupy.float64)
        return release_cuda.release_step(*arrays, stream=cupy.cuda.get_current_stream().ptr, **kw)
    raise ValueError(f"unknown backend {backend_name!r}; expected one of {BACKENDS}")


def released_by_compartment(released_mol, state):
    """Sum of ``released_mol`` per compartment code (host float64 array of length ``len(NAMES)``).

    Works on NumPy and CuPy arrays (one device-to-host copy); entries of invalid codes are
    dropped.
    """
    if isinstance(released_mol, np.ndarray):
        xp = np
    else:
        import cupy as xp
    s = state.astype(np.int64)
    ok = (s >= 0) & (s < _N_CODES)
    tot = xp.bincount(xp.where(ok, s, 0), weights=xp.where(ok, released_mol, 0.0), minlength=_N_CODES)
    return np.asarray(tot if xp is np else tot.get(), np.float64)


# --------------------------------------------------------------------------------------------
# Continuum carriers: exact first-order release per voxel
# --------------------------------------------------------------------------------------------


def first_order_rate_map(ph, *, rate_per_s, pka=6.5, hill_n=1.0, h_min=1.0, factor=1.0):
    """Release rate per voxel ``k = rate_per_s · factor · h(pH)`` (1/s) of the first-order law.

    ``ph`` is a pH field (NumPy or CuPy array) or a constant (e.g. the endosomal pH for the
    internalised pool); ``factor`` is the pool's compartment factor. The result is the loss
    term of the drug-in-carriers field ``M`` in the finite-volume carrier model.
    """
    return rate_per_s * factor * numpy_ph_factor(ph, pka, hill_n, h_min)


def continuum_first_order_release(drug_in_carriers, ph, *, dt_s, rate_per_s, pka=6.5, hill_n=1.0,
                                  h_min=1.0, factor=1.0):
    """Exact first-order release over one step per voxel (``drug_in_carriers`` in place).

    ``M ← M e^{−kΔt}`` with ``k`` from :func:`first_order_rate_map`; returns the released drug
    per voxel ``M (1 − e^{−kΔt})`` (same units as ``M``, e.g. mol/m³ or mol per voxel). Exact
    for a pH constant over the step; NumPy and CuPy arrays (ufuncs only).
    """
    k = first_order_rate_map(ph, rate_per_s=rate_per_s, pka=pka, hill_n=hill_n, h_min=h_min,
                             factor=factor)
    lost = -np.expm1(-k * float(dt_s))
    released = drug_in_carriers * lost
    drug_in_carriers -= released
    return released
