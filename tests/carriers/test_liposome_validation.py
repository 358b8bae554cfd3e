"""Tumour dose of PEG liposomes 24 h after an intravenous bolus (issue requirement, PHYSICS.md §5).

Published: median 0.7 % of the injected dose, range 0.3–1.5 % (Wilhelm 2016, mostly mice).
The scenario is scenarios/hcc_liposome_iv_rim.toml with its default parameters (nothing tuned
here): the box samples the rim of a 300 mm³ tumour (radius 4.15 mm) and the liver beside it.

% ID is depth-resolved (each layer of the box's tumour stands for the whole tumour's layer at the
same depth, the unsampled necrotic core holds none; nanosim.geometry.tissue.whole_tumour_weights).
The model gives 1.02 %ID at 24 h (1.5 times the published median, inside the range). What sets
it, measured on this scenario (2026-11-27):
- the tumour walls' permeability to liposomes. It rests on one measurement: the permeability of
  tumour vessels to 90 nm particles measured in vivo, 1.1–2e-7 mm/s (Dogra 2020; 1.5e-10 m/s,
  the middle, is the default). An in-vivo measurement of extravasation reports the whole flux
  per wall area per plasma concentration, convection included, so the walls are calibrated to
  reproduce it as such: the number of their large pores (γ, and with it the share s of the wall
  filtration J_v through them) is scaled so that the area-mean effective permeability P·B(−Pe)
  of the box's tumour walls to a 45 nm-radius particle, with their own J_v, is 1.5e-10 m/s
  (nanosim.carriers.design.calibrate_wall_pores). The factor is 0.502: before it, the walls had
  the measured value as their diffusive part alone and the convection through their large
  pores on top, an effective permeability of 2.99e-10 m/s, twice what was measured, and this
  test's figure was 1.95 %ID;
- the calibrated walls: diffusive part 7.4e-11 m/s (area mean), share of J_v through the large
  pores 0.050 (two-pore wall: the reference density's 0.099, from σ_T 0.82 of the tumour and
  σ_S 0.91 of a normal wall between the pores, times 0.502). J_v on the tumour walls (Starling,
  L_p of Baxter & Jain 1989) is 1.4 nm/s at the median (5–95 %: −2.2 to 11 nm/s): the tumour's
  interstitial pressure (7.5 mmHg under the surface, 8.4 mmHg 1.1 mm deep) stays below the
  effective vascular pressure p_v − σ_T Δπ ≈ 8.9 mmHg;
- the generated tumour's wall area (S/V ≈ 60 /cm) and the plasma curve (mouse, t½ 2 h for 20 %
  and 24 h, PHYSICS.md §5): with the whole tumour's viable volume they fix how much crosses for
  a given permeability. Nearly all that enters stays: at 24 h 91 % of the carriers in the box's
  tumour are internalised (binding and internalisation 1e-4 1/s, PHYSICS.md §5's placeholder
  range), and 1 % of the extravasated carriers have re-entered the blood;
- the liver beside the tumour: the sinusoid fenestrae (radius 70 nm, 7 % of the wall, 0.1 µm
  thick; Braet & Wisse 2002) would let 50 nm liposomes into the space of Disse at P = 1.0e-8 m/s
  (PS/V ≈ 1e-4 1/s: the whole liver would clear the plasma in ≈ 2 h, against the 24 h blood
  half-life); the permeability is capped at the liver's share of the measured clearance,
  6.6e-10 m/s (extravasation.sinusoid_bounded_by_clearance);
- % ID is depth-resolved (each layer of the box's tumour stands for the whole tumour's layer at
  the same depth, the unsampled necrotic core holds none; nanosim.geometry.tissue.
  whole_tumour_weights); plain volume scaling gave 19.5 where depth-resolved gave 14.4 (with the
  whole J_v through the large pores, an earlier model).
What moves it (one scenario run each, 24 h, `--set` on this scenario, 2026-11-27):

  change                                                              tumour %ID
  the default (large pores calibrated to the effective permeability)        1.02
  no convective entry (extravasation.tumour.filtration_share = 0: the
    measured value as a purely diffusive permeability; γ × 1.02)            0.91
  uncalibrated: the measured value as the diffusive part, convection on top
    (extravasation.tumour.effective_permeability_m_per_s = 0; the former
    default, its figure unchanged)                                          1.95
  tumour binding and internalisation (free and bound) 1e-5 1/s, the
    bottom of PHYSICS.md §5's placeholder range                             0.61
  the same at 1e-3 1/s, its top                                             1.35

Earlier versions of the uncalibrated model, for the record: the share 1 − σ_T = 0.18 (small pores
reflecting all protein) gave 2.83, the whole J_v through the large pores (Pe 5–20) 14.4.

With the walls calibrated to the measured permeability the dose follows from that permeability,
the tumour's wall area and the plasma curve; how the flux divides between diffusion and
convection moves it by about 12 % (0.91–1.02), and the cell-association placeholders, over their
whole range, between 0.61 and 1.35 (the walls let the same number through; with slower
association more of them stay free and move out of the tumour into the liver beside it, a few
back into the blood). Nothing here is fitted to the published doses; the calibration's target is
the permeability measurement the walls were always set from. The double count it removes was
found while tracing why this test failed (it was a strict xfail at 1.95 %ID until 2026-11-27).

For scale: the published distribution is wide and skewed. Cheng 2020 (PBPK analysis of 376
data sets, 2005–2018, abstract) gives a median of 0.76 %ID at 24 h and a mean of 2.24 %ID.
"""

from pathlib import Path

import numpy as np
import pytest

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "hcc_liposome_iv_rim.toml"


@pytest.mark.slow
def test_liposome_tumour_dose_at_24_h_is_in_the_published_range(tmp_path):
    import nanosim

    res = nanosim.run(nanosim.load_scenario(SCENARIO), tmp_path / "lipo.vtkhdf", backend="numba")
    pct = float(np.asarray(res.metrics["carrier_tumour_pct_id"])[-1])
    assert 0.3 <= pct <= 1.5, f"tumour dose at 24 h: {pct:.3g} %ID"
