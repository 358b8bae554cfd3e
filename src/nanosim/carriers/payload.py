r"""Drug inside the body's circulating carriers, released first order, tracked conservatively.

The body's carriers (:class:`~nanosim.carriers.systemic.SystemicPK`: plasma :math:`N_c`,
peripheral :math:`N_p`, rates :math:`k_{12}, k_{21}, k_{10}`) carry the drug that their release
law still holds. For a first-order law at rate :math:`k` (the blood's, pH included) every
carrier's payload decays as :math:`e^{-k t}` wherever it circulates, so the drug in the plasma's
and the peripheral carriers, :math:`L_c` and :math:`L_p` (mol), obeys the carriers' own linear
system with :math:`k` added to both losses:

.. math::

    \dot L_c = d\,r(t) - (k_{10} + k_{12} + k) L_c + k_{21} L_p, \qquad
    \dot L_p = k_{12} L_c - (k_{21} + k) L_p,

    \dot R = k (L_c + L_p), \qquad \dot O = k_{10} L_c,

with :math:`d\,r` the drug infused inside carriers (mol/s), :math:`R` the drug released in the
circulation (it joins the systemic free drug) and :math:`O` the drug that left with the carriers
taken up by liver macrophages or cleared. Each step is integrated exactly (the matrix exponential
of the system augmented by the constant input), so the released amount does not depend on how
the carriers' ages are mixed — an infusion and a bolus release the same payload — and

    given = L_c + L_p + R + O

closes to round-off. The mean payload of the plasma's carriers is :math:`L_c / N_c`: carriers
entering the simulated box take it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import expm

_NAMES = ("central", "peripheral", "released", "eliminated", "given")


class CirculatingPayload:
    """Law-held drug in the body's circulating carriers (mol), first-order release.

    Parameters
    ----------
    k12_per_s, k21_per_s, k10_per_s : float
        The carriers' micro constants (1/s), from :meth:`SystemicPK.parameters`.
    release_rate_per_s : float
        First-order release rate in the circulation, 1/s (≥ 0).

    >>> pay = CirculatingPayload(0.0, 0.0, 0.0, math.log(2) / 3600.0)
    >>> pay.bolus(1.0)
    >>> round(pay.step(3600.0), 12), round(pay.central, 12)
    (0.5, 0.5)
    """

    def __init__(self, k12_per_s: float, k21_per_s: float, k10_per_s: float, release_rate_per_s: float):
        k12, k21, k10, k = (float(v) for v in (k12_per_s, k21_per_s, k10_per_s, release_rate_per_s))
        for name, v in (("k12_per_s", k12), ("k21_per_s", k21), ("k10_per_s", k10), ("release_rate_per_s", k)):
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"{name} must be a finite rate ≥ 0, got {v!r}")
        a = np.zeros((5, 5))
        a[0, 0], a[0, 1], a[0, 4] = -(k10 + k12 + k), k21, 1.0  # the input enters as the 5th state
        a[1, 0], a[1, 1] = k12, -(k21 + k)
        a[2, 0] = a[2, 1] = k
        a[3, 0] = k10
        self._a = a
        self._cache = {}
        self.x = dict.fromkeys(_NAMES, 0.0)

    central = property(lambda self: self.x["central"], doc="Drug in the plasma's carriers, mol.")
    peripheral = property(lambda self: self.x["peripheral"], doc="Drug in the peripheral carriers, mol.")
    released = property(lambda self: self.x["released"], doc="Cumulative drug released in the circulation, mol.")
    eliminated = property(lambda self: self.x["eliminated"],
                          doc="Cumulative drug that left with carriers taken up or cleared, mol.")

    def bolus(self, mol: float) -> None:
        """Drug inside carriers injected into the plasma at once (mol)."""
        self.x["central"] += float(mol)
        self.x["given"] += float(mol)

    def step(self, dt_s: float, input_mol_per_s: float = 0.0) -> float:
        """Advance exactly by ``dt_s`` with drug-in-carriers infused at a constant rate; returns
        the drug released in the circulation during the step (mol)."""
        dt = float(dt_s)
        if dt <= 0.0:
            return 0.0
        e = self._cache.get(dt)
        if e is None:
            e = self._cache[dt] = expm(self._a * dt)
        x = self.x
        s = float(input_mol_per_s)
        v = e @ np.array([x["central"], x["peripheral"], 0.0, 0.0, s])
        parts = [max(float(v[0]), 0.0), max(float(v[1]), 0.0), max(float(v[2]), 0.0), max(float(v[3]), 0.0)]
        # exact conservation, up to the round-off of the propagator: the imbalance goes to the largest part
        imbalance = math.fsum((x["central"], x["peripheral"], s * dt, -parts[0], -parts[1], -parts[2], -parts[3]))
        big = max(range(4), key=lambda i: parts[i])
        parts[big] += imbalance
        x["central"], x["peripheral"] = parts[0], parts[1]
        x["released"] += parts[2]
        x["eliminated"] += parts[3]
        x["given"] += s * dt
        return parts[2]

    def ledger_error(self) -> float:
        """|given − (central + peripheral + released + eliminated)| / given (round-off only)."""
        x = self.x
        held = math.fsum((x["central"], x["peripheral"], x["released"], x["eliminated"]))
        return abs(x["given"] - held) / x["given"] if x["given"] > 0 else 0.0

    def state(self) -> dict:
        return dict(self.x)

    def load_state(self, state: dict) -> None:
        self.x = {k: float(state[k]) for k in _NAMES}
