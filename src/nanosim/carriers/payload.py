r"""Drug inside the body's carriers, released first order, tracked conservatively.

The body's carriers (:class:`~nanosim.carriers.systemic.SystemicPK`: plasma :math:`N_c`,
peripheral :math:`N_p`, rates :math:`k_{12}, k_{21}, k_{10}`, a share :math:`f` of the
elimination taken up by liver macrophages) carry the drug that their release law still holds.
For a first-order law at rate :math:`k` (the blood's, pH included) every circulating carrier's
payload decays as :math:`e^{-k t}`, and once a macrophage has taken a carrier up it releases at
the rate :math:`k_m` of an internalised carrier (endosomal pH and the ``internalised`` clock
factor). The drug in the plasma's, the peripheral and the macrophages' carriers,
:math:`L_c, L_p, M` (mol), obeys the carriers' own linear system with the release added:

.. math::

    \dot L_c = d\,r(t) - (k_{10} + k_{12} + k) L_c + k_{21} L_p, \qquad
    \dot L_p = k_{12} L_c - (k_{21} + k) L_p, \qquad
    \dot M = f k_{10} L_c - k_m M,

    \dot R = k (L_c + L_p), \qquad \dot R_m = k_m M, \qquad \dot O = (1 - f) k_{10} L_c,

with :math:`d\,r` the drug infused inside carriers (mol/s), :math:`R` the drug released in the
circulation (premature leak), :math:`R_m` the drug released by carriers inside the liver's
macrophages — both join the systemic free drug (sorafenib crosses the liver in minutes against
release over hours) — and :math:`O` the drug that left with carriers cleared otherwise (spleen,
other organs: booked as eliminated with them, an unconfirmed simplification). Each step is
integrated exactly (the matrix exponential of the system augmented by the constant input), so
the released amount does not depend on how the carriers' ages are mixed — an infusion and a
bolus release the same payload — and

    given = L_c + L_p + M + R + R_m + O

closes to round-off. The mean payload of the plasma's carriers is :math:`L_c / N_c`: carriers
entering the simulated box take it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import expm

_NAMES = ("central", "peripheral", "macrophages", "released", "released_in_macrophages", "cleared", "given")
_CUMULATIVE = ("released", "released_in_macrophages", "cleared")


def law_survival(law: int, p0: float, p1: float, tau_s: float) -> float:
    """Share of the law's drug still inside a carrier whose release clock reads ``tau_s``: 1 − F(τ)."""
    from ..kernels import release as rk

    return 1.0 - float(rk.fraction_released.py(law, p0, p1, float(tau_s)))


def clock_at_survival(law: int, p0: float, p1: float, survival: float) -> float:
    """The release clock (s) at which a carrier still holds the share ``survival`` of the law's
    drug: the inverse of :func:`law_survival` (analytic for first order, bisection to round-off
    otherwise; F is non-decreasing in τ for every law)."""
    from ..kernels import release as rk

    if survival >= 1.0 or law == rk.LAW_NONE:
        return 0.0
    if law == rk.LAW_FIRST_ORDER:
        return -math.log(max(survival, 1e-300)) / p0 if p0 > 0 else 0.0
    hi = 1.0
    while law_survival(law, p0, p1, hi) > survival and hi < 1e30:
        hi *= 2.0
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if law_survival(law, p0, p1, mid) > survival:
            lo = mid
        else:
            hi = mid
    return hi


def mean_hazard(law: int, p0: float, p1: float, tau_s: float, clock_advance_s: float, dt_s: float) -> float:
    """Release rate (1/s) that, held over a step ``dt_s``, takes a carrier's drug from its share at
    clock ``tau_s`` to its share at ``tau_s + clock_advance_s``: −ln(S(τ₁)/S(τ₀))/Δt. Exact for
    carriers sharing one clock (a bolus); the law's own constant rate for first order."""
    s0 = law_survival(law, p0, p1, tau_s)
    if s0 <= 0.0 or clock_advance_s <= 0.0:
        return 0.0
    s1 = law_survival(law, p0, p1, tau_s + clock_advance_s)
    return -math.log(max(s1 / s0, 1e-300)) / dt_s


class CirculatingPayload:
    """Law-held drug in the body's carriers (mol): circulating and in liver macrophages, first-order release.

    Parameters
    ----------
    k12_per_s, k21_per_s, k10_per_s : float
        The carriers' micro constants (1/s), from :meth:`SystemicPK.parameters`.
    release_rate_per_s : float
        First-order release rate in the circulation, 1/s (≥ 0).
    liver_uptake_fraction : float
        Share :math:`f` of the carriers' elimination taken up by liver macrophages, in [0, 1]
        (default 0: all of it cleared with its drug, the former behaviour).
    macrophage_release_rate_per_s : float
        First-order release rate :math:`k_m` of carriers inside liver macrophages, 1/s (≥ 0).

    >>> pay = CirculatingPayload(0.0, 0.0, 0.0, math.log(2) / 3600.0)
    >>> pay.bolus(1.0)
    >>> round(pay.step(3600.0), 12), round(pay.central, 12)
    (0.5, 0.5)
    """

    def __init__(self, k12_per_s: float, k21_per_s: float, k10_per_s: float, release_rate_per_s: float,
                 liver_uptake_fraction: float = 0.0, macrophage_release_rate_per_s: float = 0.0):
        k12, k21, k10, k, km = (float(v) for v in (k12_per_s, k21_per_s, k10_per_s, release_rate_per_s,
                                                    macrophage_release_rate_per_s))
        f = float(liver_uptake_fraction)
        for name, v in (("k12_per_s", k12), ("k21_per_s", k21), ("k10_per_s", k10), ("release_rate_per_s", k),
                        ("macrophage_release_rate_per_s", km)):
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{name} must be a finite rate ≥ 0, got {v!r}")
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"liver_uptake_fraction must lie in [0, 1], got {f!r}")
        self._rates = (k12, k21, k10, f)
        self.release_rate_per_s, self.macrophage_release_rate_per_s = k, km
        self._cache = {}
        self.x = dict.fromkeys(_NAMES, 0.0)

    def _matrix(self, k: float, km: float) -> np.ndarray:
        """Rate matrix of (central, peripheral, macrophages, released, released in macrophages,
        cleared, input) for release rates ``k`` (circulation) and ``km`` (macrophages)."""
        k12, k21, k10, f = self._rates
        a = np.zeros((7, 7))
        a[0, 0], a[0, 1], a[0, 6] = -(k10 + k12 + k), k21, 1.0  # the input enters as the last state
        a[1, 0], a[1, 1] = k12, -(k21 + k)
        a[2, 0], a[2, 2] = f * k10, -km
        a[3, 0] = a[3, 1] = k
        a[4, 2] = km
        a[5, 0] = (1.0 - f) * k10
        return a

    central = property(lambda self: self.x["central"], doc="Drug in the plasma's carriers, mol.")
    peripheral = property(lambda self: self.x["peripheral"], doc="Drug in the peripheral carriers, mol.")
    macrophages = property(lambda self: self.x["macrophages"], doc="Drug in carriers inside liver macrophages, mol.")
    released = property(lambda self: self.x["released"], doc="Cumulative drug released in the circulation, mol.")
    released_in_macrophages = property(lambda self: self.x["released_in_macrophages"],
                                       doc="Cumulative drug released by carriers inside liver macrophages, mol.")
    cleared = property(lambda self: self.x["cleared"],
                       doc="Cumulative drug that left with carriers cleared other than by liver macrophages, mol.")

    @property
    def eliminated(self) -> float:
        """Cumulative drug that left the circulation inside carriers (taken up or cleared), mol:
        k₁₀ ∫ L_c dt."""
        x = self.x
        return math.fsum((x["macrophages"], x["released_in_macrophages"], x["cleared"]))

    def bolus(self, mol: float) -> None:
        """Drug inside carriers injected into the plasma at once (mol)."""
        self.x["central"] += float(mol)
        self.x["given"] += float(mol)

    def step(self, dt_s: float, input_mol_per_s: float = 0.0, release_rate_per_s: float | None = None,
             macrophage_release_rate_per_s: float | None = None) -> float:
        """Advance exactly by ``dt_s`` with drug-in-carriers infused at a constant rate; returns
        the drug released in the circulation during the step (mol); what the macrophages
        released is the change of :attr:`released_in_macrophages`. The release rates may be
        given for this step only (a time-shaped law's mean hazard over the step); by default the
        constructor's."""
        dt = float(dt_s)
        if dt <= 0.0:
            return 0.0
        k = self.release_rate_per_s if release_rate_per_s is None else float(release_rate_per_s)
        km = self.macrophage_release_rate_per_s if macrophage_release_rate_per_s is None else \
            float(macrophage_release_rate_per_s)
        key = (dt, k, km)
        e = self._cache.get(key)
        if e is None:
            if len(self._cache) > 64:  # rates that change every step: keep the cache small
                self._cache.clear()
            e = self._cache[key] = expm(self._matrix(k, km) * dt)
        x = self.x
        s = float(input_mol_per_s)
        v = e @ np.array([x["central"], x["peripheral"], x["macrophages"], 0.0, 0.0, 0.0, s])
        parts = [max(float(p), 0.0) for p in v[:6]]
        # exact conservation, up to the round-off of the propagator: the imbalance goes to the largest part
        imbalance = math.fsum([x["central"], x["peripheral"], x["macrophages"], s * dt] + [-p for p in parts])
        big = max(range(6), key=lambda i: parts[i])
        parts[big] += imbalance
        x["central"], x["peripheral"], x["macrophages"] = parts[0], parts[1], parts[2]
        for name, p in zip(_CUMULATIVE, parts[3:]):
            x[name] += p
        x["given"] += s * dt
        return parts[3]

    def ledger_error(self) -> float:
        """|given − (central + peripheral + macrophages + released + released in macrophages + cleared)|
        / given (round-off only)."""
        x = self.x
        held = math.fsum(x[k] for k in _NAMES if k != "given")
        return abs(x["given"] - held) / x["given"] if x["given"] > 0 else 0.0

    def state(self) -> dict:
        return dict(self.x)

    def load_state(self, state: dict) -> None:
        missing = [k for k in _NAMES if k not in state]
        if missing:
            raise ValueError(f"checkpoint of the body carriers' drug lacks {', '.join(missing)} (written by an older "
                             "nanosim: start the run again without --resume)")
        self.x = {k: float(state[k]) for k in _NAMES}
