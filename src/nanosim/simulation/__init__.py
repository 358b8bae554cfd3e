"""The simulation loop, its schedules and callbacks."""

from .callbacks import Checkpointer, GuardError, Guards, OutputWriter, ProgressBar, SnapshotWriter
from .schedules import Always, IterationInterval, Schedule, TimeInterval, WallTimeInterval
from .simulation import Simulation

__all__ = ["Simulation", "Schedule", "IterationInterval", "TimeInterval", "WallTimeInterval", "Always",
           "OutputWriter", "Checkpointer", "ProgressBar", "Guards", "GuardError",
           "SnapshotWriter"]
