"""The tumour microenvironment: steady oxygen and extracellular pH fields (PHYSICS.md §6).

- :mod:`nanosim.microenv.oxygen`: oxygen partial pressure with Michaelis–Menten consumption
  (Newton–CG on the voxel grid), hypoxic fractions, the Krogh–Erlang solution.
- :mod:`nanosim.microenv.ph`: prescribed or reaction–diffusion extracellular pH, and the
  intracellular and endosomal pH of :func:`~nanosim.microenv.ph.compartment_ph`.

Importing this package does not import Numba (its kernels compile on first use).
"""

from .oxygen import OxygenField, OxygenSolution, SteadyReactionDiffusion, build_oxygen, krogh_erlang_po2
from .ph import PHSolution, ProtonField, build_ph, compartment_ph, prescribed_ph

__all__ = ["OxygenField", "OxygenSolution", "SteadyReactionDiffusion", "build_oxygen", "krogh_erlang_po2",
           "PHSolution", "ProtonField", "build_ph", "compartment_ph", "prescribed_ph"]
