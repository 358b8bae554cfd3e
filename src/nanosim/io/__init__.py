"""Reading and writing nanosim files: the results file and checkpoints.

The results file is HDF5 in VTK's VTKHDF ImageData layout with time steps (ParaView and
``vtk.vtkHDFReader`` open it directly) plus a ``/nanosim`` group with the scenario,
provenance, metric time series and run summary. See :mod:`nanosim.io.results` for the layout
and :mod:`nanosim.io.checkpoint` for checkpoints.
"""

from nanosim.io.checkpoint import load_checkpoint, save_checkpoint
from nanosim.io.results import STATUSES, Results, ResultsWriter, open_results

__all__ = [
    "ResultsWriter",
    "Results",
    "open_results",
    "STATUSES",
    "save_checkpoint",
    "load_checkpoint",
]
