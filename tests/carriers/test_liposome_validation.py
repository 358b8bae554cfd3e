"""Tumour dose of PEG liposomes 24 h after an intravenous bolus (issue requirement, PHYSICS.md §5).

Published: median 0.7 % of the injected dose, range 0.3–1.5 % (Wilhelm 2016, mostly mice).
The scenario is scenarios/hcc_liposome_iv.toml with its default parameters (nothing tuned here).

The model currently gives about 69 %ID for a 300 mm³ tumour: far above the range. What sets it
(measured with the same scenario, see the project's benchmarks/README.md "Carriers" notes):
- the box's tumour is a 500 µm nodule; its interstitial pressure stays low (Baxter–Jain
  α ≈ 1.8), so Starling filtration through the leaky tumour walls (L_p of Baxter & Jain 1989)
  carries the liposomes out convectively, ≈ 40× the diffusive Patlak term at Pe ≈ 5–20;
- that per-volume uptake of a small, well-perfused nodule is scaled up to a 300 mm³ tumour,
  whose interior has high interstitial pressure, necrosis and sparse vessels in vivo;
- γ/L of the tumour pores was set from Dogra 2020's measured permeability of 90 nm particles,
  which is an effective permeability that already includes convection.
The test is kept, strict: it will report when the model comes into the published range.
"""

from pathlib import Path

import numpy as np
import pytest

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "hcc_liposome_iv.toml"


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the model's tumour dose (≈ 69 %ID) is far above 0.3–1.5 %ID; see the module doc")
def test_liposome_tumour_dose_at_24_h_is_in_the_published_range(tmp_path):
    import nanosim

    res = nanosim.run(nanosim.load_scenario(SCENARIO), tmp_path / "lipo.vtkhdf", backend="numba")
    pct = float(np.asarray(res.metrics["carrier_tumour_pct_id"])[-1])
    assert 0.3 <= pct <= 1.5, f"tumour dose at 24 h: {pct:.3g} %ID"
