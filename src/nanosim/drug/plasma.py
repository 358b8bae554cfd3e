"""Plasma concentration of the free drug over time, c_p(t) (mol/m³)."""

from __future__ import annotations

import math

import numpy as np


class PlasmaCurve:
    """c_p(t) from a scenario's ``drug.plasma`` spec.

    - ``constant``: ``c_p = c``;
    - ``exponential``: ``c_p = c₀ · 2^(−t / t½)``;
    - ``table``: linear interpolation in (t, c) pairs, held constant beyond both ends.
    """

    def __init__(self, spec):
        self.kind = spec.kind
        if self.kind == "constant":
            self._c = float(spec.concentration_mol_per_m3)
        elif self.kind == "exponential":
            self._c0 = float(spec.initial_mol_per_m3)
            self._k = math.log(2.0) / float(spec.half_life_s)
        elif self.kind == "table":
            self._t = np.asarray(spec.times_s, float)
            self._v = np.asarray(spec.concentrations_mol_per_m3, float)
        else:
            raise ValueError(f"unknown plasma kind {self.kind!r}")

    def __call__(self, t_s: float) -> float:
        if self.kind == "constant":
            return self._c
        if self.kind == "exponential":
            return self._c0 * math.exp(-self._k * t_s)
        return float(np.interp(t_s, self._t, self._v))

    def __repr__(self) -> str:
        if self.kind == "constant":
            return f"PlasmaCurve(constant {self._c:g} mol/m³)"
        if self.kind == "exponential":
            return f"PlasmaCurve(exponential {self._c0:g} mol/m³, t½ {math.log(2) / self._k:g} s)"
        return f"PlasmaCurve(table of {self._t.size} points)"
