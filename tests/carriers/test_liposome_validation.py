"""Tumour dose of PEG liposomes 24 h after an intravenous bolus (issue requirement, PHYSICS.md §5).

Published: median 0.7 % of the injected dose, range 0.3–1.5 % (Wilhelm 2016, mostly mice).
The scenario is scenarios/hcc_liposome_iv_rim.toml with its default parameters (nothing tuned
here): the box samples the rim of a 300 mm³ tumour (radius 4.15 mm) and the liver beside it.

% ID is depth-resolved (each layer of the box's tumour stands for the whole tumour's layer at the
same depth, the unsampled necrotic core holds none; nanosim.geometry.tissue.whole_tumour_weights).
The model gives 1.95 %ID at 24 h: 30 % above the top of the published range, 2.8 times its
median (2.83 %ID before the tumour wall's filtration share came from the two-pore decomposition
below, 1.86 before the extravasated weight was rounded to particles without bias). The
parameters that set it, measured on this scenario:
- Starling filtration through the leaky tumour walls (L_p of Baxter & Jain 1989): the tumour's
  interstitial pressure (7.5 mmHg under the surface, 8.4 mmHg 1.1 mm deep) stays below the
  effective vascular pressure p_v − σ_T Δπ ≈ 8.9 mmHg, so the walls filter (≈ 0.5–1.5 mmHg net,
  J_v/S ≈ 0.15–0.4 µm/s). Only the share s of J_v through pores wide enough for liposomes
  carries them. A two-pore wall whose large pores pass plasma proteins freely while the rest
  reflects them as a normal wall does (σ_S = 0.91, Baxter & Jain 1989) has σ_T = (1 − s) σ_S,
  so with the tumour's σ_T = 0.82, s = 0.099 (extravasation.tumour.small_pore_protein_reflection;
  s = 1 − σ_T = 0.18, the bound for small pores reflecting proteins completely, gave 2.83 %ID
  and a median tumour-wall Pe of 1.7). With the whole J_v through the carriers' pores
  (filtration_share = 1, Pe 5–20) the dose was 14.4 %ID; without filtration
  (interstitial.solve = false) 3.5 %ID (before the sinusoid bound below);
- the liver beside the tumour: the sinusoid fenestrae (radius 70 nm, 7 % of the wall, 0.1 µm
  thick; Braet & Wisse 2002) would let 50 nm liposomes into the space of Disse at P = 1.0e-8 m/s
  (PS/V ≈ 1e-4 1/s: the whole liver would clear the plasma in ≈ 2 h, against the 24 h blood
  half-life); the permeability is capped at the liver's share of the measured clearance,
  6.6e-10 m/s (extravasation.sinusoid_bounded_by_clearance). Uncapped, liver tissue held
  4–5e19 carriers/m³ and liposomes diffused 0.1–0.2 mm into the tumour from it (3.8 %ID with the
  two-pore wall);
- the tumour's walls: γ/L of the tumour pores from Dogra 2020's permeability of 90 nm particles
  (1.5e-10 m/s) and the generated tumour's wall area (S/V ≈ 60 /cm). The outer 0.1 mm holds
  ≈ 5e18 carriers/m³, 0.5 mm deep ≈ 1.6e18, 1.1 mm deep ≈ 7e17 (≈ 1 %ID if the whole tumour
  were like that);
- % ID is depth-resolved (each layer of the box's tumour stands for the whole tumour's layer at
  the same depth, the unsampled necrotic core holds none; nanosim.geometry.tissue.
  whole_tumour_weights); plain volume scaling gave 19.5 where depth-resolved gave 14.4.
What moves it (one scenario run each, 24 h, `--set` on this scenario, 2026-11-27, before the
unbiased rounding, which adds ≈ 5 %; the first block with the former share 0.18):

  change                                                              tumour %ID
  share 0.18 (the former default, the bound 1 − σ_T)                       2.83
  tumour pore area −27 % (P of 90 nm particles 1.1e-10 m/s, Dogra's low end) 2.81
  blood half-life 20 h instead of 24 h (mice 20–30 h)                      2.79
  tumour binding and internalisation 1e-3 1/s (placeholder range's top)    3.58
  tumour binding and internalisation 1e-5 1/s (its bottom)                 1.67
  the three low ends together                                              1.52
  tumour filtration share 0.09 (half the two-pore bound 1 − σ_T)           1.76
  tumour filtration share 0 (no convective entry)                          0.82
  share 0.099 (two-pore, σ_S 0.91)                                         1.86
  the same with unbiased rounding of extravasated weight (the default now)  1.95
  share 0.099 and tumour binding and internalisation 1e-5 1/s              1.16

The dose is set by convective entry through the tumour's large pores and by how fast the
carriers that entered are bound or internalised (free ones drain back); the diffusive wall
permeability and the blood half-life barely matter. Both leading parameters are bounds or
placeholders (the share rests on the assumption that a tumour wall between its large pores is a
normal wall; the rates are PHYSICS.md §5's placeholder range,
"fitted per formulation"): a measured large-pore share of tumour-wall filtration, or measured
association rates of PEG liposomes with tumour cells, would settle it. Fitting either to this
published range would make the test circular, so neither is changed.
The test is kept, strict: it will report when the model comes into the published range.

For scale: the published distribution is wide and skewed. Cheng 2020 (PBPK analysis of 376
data sets, 2005–2018, abstract) gives a median of 0.76 %ID at 24 h and a mean of 2.24 %ID; the
model's 1.95 lies between the two, above the 0.3–1.5 range this test checks (which stays as set).
"""

from pathlib import Path

import numpy as np
import pytest

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "hcc_liposome_iv_rim.toml"


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the model's tumour dose (1.95 %ID) is above 0.3–1.5 %ID; see the module doc")
def test_liposome_tumour_dose_at_24_h_is_in_the_published_range(tmp_path):
    import nanosim

    res = nanosim.run(nanosim.load_scenario(SCENARIO), tmp_path / "lipo.vtkhdf", backend="numba")
    pct = float(np.asarray(res.metrics["carrier_tumour_pct_id"])[-1])
    assert 0.3 <= pct <= 1.5, f"tumour dose at 24 h: {pct:.3g} %ID"
