r"""Exposure of tissue to the unbound drug: AUC, C_max, time above a threshold (PHYSICS.md §8).

The unbound (free) concentration is what acts on cells and what is compared with the IC50
(7.5 µM in Hep3B and PLC/PRF/5, PHYSICS.md §8; total concentration overstates exposure
≈ 200-fold). Per voxel, updated after every step of length ``Δt`` from the concentration at the
start ``c₀`` and end ``c₁`` of the step:

- AUC: ``Σ ½ (c₀ + c₁) Δt`` (trapezoid rule, second order in Δt), mol·s/m³;
- C_max: the largest end-of-step value, mol/m³ (the initial value included);
- time above threshold: ``Σ Δt · θ`` with ``θ`` the part of the step above the threshold,
  taken from the linear interpolation between ``c₀`` and ``c₁`` (exact for a piecewise-linear
  history), s.

Per region (normal liver, viable tumour, necrotic core, and the whole tumour): the fraction of
voxels above the threshold now, the mean and 10/50/90th percentiles of AUC, the mean C_max;
tumour-to-normal AUC ratio; and, when the plasma concentration is known, plasma C_max and AUC
(a toxicity proxy) and the tumour-to-plasma AUC ratio.
"""

from __future__ import annotations

import numpy as np

from ..geometry import REGION_NAMES

#: Default threshold: the IC50 of sorafenib in Hep3B and PLC/PRF/5 cells, 7.5 µM (PHYSICS.md §8).
IC50_MOL_PER_M3 = 7.5e-3


class ExposureTracker:
    """Per-voxel exposure of one concentration field on a backend (see the module docstring)."""

    def __init__(self, backend, region: np.ndarray, threshold_mol_per_m3: float = IC50_MOL_PER_M3):
        xp = backend.xp
        self.backend = backend
        self.threshold = float(threshold_mol_per_m3)
        shape = np.asarray(region).shape
        self.auc = xp.zeros(shape, np.float64)
        self.cmax = xp.zeros(shape, np.float64)
        self.time_above = xp.zeros(shape, np.float64)
        self.prev = None
        region = np.asarray(region)
        self.masks = {name: backend.asarray(region == code) for code, name in enumerate(REGION_NAMES)}
        self.masks["tumour_all"] = backend.asarray(region >= 1)
        self.counts = {k: int((region == c).sum()) for c, k in enumerate(REGION_NAMES)}
        self.counts["tumour_all"] = int((region >= 1).sum())
        self.plasma_auc = 0.0
        self.plasma_cmax = 0.0
        self._plasma_prev = None

    def start(self, c, plasma=None) -> None:
        """The concentration at the start of the run (or after a resume)."""
        xp = self.backend.xp
        self.prev = xp.asarray(c, np.float64).copy()
        self.cmax = xp.maximum(self.cmax, self.prev)
        if plasma is not None:
            self._plasma_prev = float(plasma)
            self.plasma_cmax = max(self.plasma_cmax, float(plasma))

    def update(self, c, dt: float, plasma=None) -> None:
        """Account for one step of length ``dt`` ending with concentration ``c`` (and plasma value)."""
        xp = self.backend.xp
        if self.backend.name == "numba" and self.prev is not None and _contiguous(
                self.prev, self.auc, self.cmax, self.time_above):
            # one compiled pass (nanosim.kernels.exposure), the same arithmetic as below
            from ..kernels import exposure as _kernels

            _kernels.numba_update(c, self.prev, self.auc, self.cmax, self.time_above, dt, self.threshold)
        else:
            c1 = xp.asarray(c, np.float64)
            c0 = self.prev if self.prev is not None else c1
            self.auc += 0.5 * (c0 + c1) * dt
            self.cmax = xp.maximum(self.cmax, c1)
            self.time_above += dt * _fraction_above(xp, c0, c1, self.threshold)
            self.prev = c1.copy()
        if plasma is not None:
            p1 = float(plasma)
            p0 = self._plasma_prev if self._plasma_prev is not None else p1
            self.plasma_auc += 0.5 * (p0 + p1) * dt
            self.plasma_cmax = max(self.plasma_cmax, p1)
            self._plasma_prev = p1

    def metrics(self) -> dict:
        """Region summaries (see the module docstring); units mol/m³, mol·s/m³, s."""
        xp = self.backend.xp
        out = {}
        now = self.prev
        for name, mask in self.masks.items():
            n = self.counts[name]
            if not n:
                continue
            auc = self.backend.to_host(self.auc[mask])
            out[f"exposure_{name}_auc_mean_mol_s_per_m3"] = float(auc.mean())
            for q in (10, 50, 90):
                out[f"exposure_{name}_auc_p{q}_mol_s_per_m3"] = float(np.percentile(auc, q))
            out[f"exposure_{name}_cmax_mean_mol_per_m3"] = float(xp.sum(self.cmax[mask])) / n
            out[f"exposure_{name}_time_above_mean_s"] = float(xp.sum(self.time_above[mask])) / n
            if now is not None:
                out[f"exposure_{name}_fraction_above"] = float(xp.count_nonzero(now[mask] >= self.threshold)) / n
        t = out.get("exposure_tumour_all_auc_mean_mol_s_per_m3")
        nrm = out.get("exposure_normal_auc_mean_mol_s_per_m3")
        if t is not None and nrm:
            out["exposure_tumour_to_normal_auc_ratio"] = t / nrm
        if self._plasma_prev is not None:
            out["exposure_plasma_auc_mol_s_per_m3"] = self.plasma_auc
            out["exposure_plasma_cmax_mol_per_m3"] = self.plasma_cmax
            if t is not None and self.plasma_auc > 0:
                out["exposure_tumour_to_plasma_auc_ratio"] = t / self.plasma_auc
        return out

    def fields(self) -> dict:
        be = self.backend
        return {"auc_unbound": be.to_host(self.auc), "cmax_unbound": be.to_host(self.cmax),
                "time_above_threshold": be.to_host(self.time_above)}

    def state_arrays(self) -> dict:
        out = {f"exposure_{k}": v for k, v in self.fields().items()}
        if self.prev is not None:
            out["exposure_prev"] = self.backend.to_host(self.prev)
        return out

    def state_attrs(self) -> dict:
        return {"exposure_plasma_auc": self.plasma_auc, "exposure_plasma_cmax": self.plasma_cmax,
                "exposure_plasma_prev": self._plasma_prev}

    def load_state(self, arrays: dict, attrs: dict) -> None:
        be = self.backend
        self.auc = be.asarray(arrays["exposure_auc_unbound"])
        self.cmax = be.asarray(arrays["exposure_cmax_unbound"])
        self.time_above = be.asarray(arrays["exposure_time_above_threshold"])
        self.prev = be.asarray(arrays["exposure_prev"]) if "exposure_prev" in arrays else None
        self.plasma_auc = float(attrs["exposure_plasma_auc"])
        self.plasma_cmax = float(attrs["exposure_plasma_cmax"])
        p = attrs.get("exposure_plasma_prev")
        self._plasma_prev = None if p is None else float(p)


def _contiguous(*arrays) -> bool:
    return all(a.flags.c_contiguous and a.dtype == np.float64 for a in arrays)


def _fraction_above(xp, c0, c1, thr: float):
    """Part of a step during which the linear interpolation from ``c0`` to ``c1`` is ≥ ``thr``."""
    above0 = c0 >= thr
    above1 = c1 >= thr
    both = above0 & above1
    cross = above0 ^ above1
    span = xp.where(cross, c1 - c0, 1.0)
    s = xp.where(cross, (thr - c0) / span, 0.0)  # where the line meets the threshold, in [0, 1]
    part = xp.where(above1, 1.0 - s, s)  # rising: after the crossing; falling: before it
    return xp.where(both, 1.0, xp.where(cross, part, 0.0))
