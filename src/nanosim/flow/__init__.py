"""Fluid mechanics: blood flow in the vessel network and interstitial fluid in the tissue."""
