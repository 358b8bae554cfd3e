"""Tumour dose of PEG liposomes 24 h after an intravenous bolus (issue requirement, PHYSICS.md §5).

Published: median 0.7 % of the injected dose, range 0.3–1.5 % (Wilhelm 2016, mostly mice).
The scenario is scenarios/hcc_liposome_iv_rim.toml with its default parameters (nothing tuned
here): the box samples the rim of a 300 mm³ tumour (radius 4.15 mm) and the liver beside it.

The model currently gives 19.5 %ID at 24 h (and 69 %ID with scenarios/hcc_liposome_iv.toml,
where a whole 500 µm nodule inside the box is scaled to 300 mm³): far above the range. What
sets it (measured with these scenarios):
- Starling filtration through the leaky tumour walls (L_p of Baxter & Jain 1989) carries the
  liposomes out convectively: at the rim the interstitial pressure (≈ 8 mmHg) stays below the
  vessels' (≈ 13 mmHg), Pe ≈ 5–20, ≈ 10–40× the diffusive Patlak term;
- the box's tumour is the well-perfused outer 1.2 mm (or a small nodule); its per-volume uptake
  is scaled to the whole 300 mm³ tumour, whose interior has high interstitial pressure,
  necrosis and sparse vessels in vivo;
- γ/L of the tumour pores was set from Dogra 2020's measured permeability of 90 nm particles,
  which is an effective permeability that already includes convection.
The test is kept, strict: it will report when the model comes into the published range.
"""

from pathlib import Path

import numpy as np
import pytest

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "hcc_liposome_iv_rim.toml"


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the model's tumour dose (≈ 19.5 %ID) is far above 0.3–1.5 %ID; see the module doc")
def test_liposome_tumour_dose_at_24_h_is_in_the_published_range(tmp_path):
    import nanosim

    res = nanosim.run(nanosim.load_scenario(SCENARIO), tmp_path / "lipo.vtkhdf", backend="numba")
    pct = float(np.asarray(res.metrics["carrier_tumour_pct_id"])[-1])
    assert 0.3 <= pct <= 1.5, f"tumour dose at 24 h: {pct:.3g} %ID"
