"""Fluid mechanics: blood flow in the vessel network and interstitial fluid in the tissue."""

from .interstitial import InterstitialSolution, RegionFluidProperties, solve_interstitial_pressure
from .network_flow import FlowError, FlowSolution, flow_benchmark_network, solve_flow
from .viscosity import PLASMA_VISCOSITY_PA_S, pries_in_vitro_relative_viscosity, pries_in_vivo_relative_viscosity

__all__ = ["FlowError", "FlowSolution", "InterstitialSolution", "PLASMA_VISCOSITY_PA_S", "RegionFluidProperties",
           "flow_benchmark_network", "pries_in_vitro_relative_viscosity", "pries_in_vivo_relative_viscosity",
           "solve_flow", "solve_interstitial_pressure"]
