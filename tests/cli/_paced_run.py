"""Run ``nanosim run`` in this process, slowed down and announcing its progress; stopped by the tests.

Usage: python _paced_run.py SECONDS_PER_STEP RUN_ARGS...   (RUN_ARGS as for ``nanosim run``)

Each model step with an even index is followed by a pause of 2 × SECONDS_PER_STEP, inside the
step: a signal then almost surely lands mid-step, in a step whose output (every second step in
the tests' scenario) is not yet written. After each output step is flushed to the results file it prints
``output TIME`` on stdout, after each checkpoint is in place ``checkpoint STEP``, and before
each pause ``pausing STEP``.
The numbers computed are those of a plain run.
"""

import sys
import time

from nanosim.cli import main
from nanosim.drug.free_drug import FreeDrugModel
from nanosim.io import ResultsWriter
from nanosim.simulation import Checkpointer


def _patch(pause_s: float) -> None:
    step, write_step, checkpoint = FreeDrugModel.step, ResultsWriter.write_step, Checkpointer.__call__

    def paced_step(self, dt):
        step(self, dt)
        if self.step_index % 2 == 0:
            print(f"pausing {self.step_index}", flush=True)
            time.sleep(2 * pause_s)

    def announced_write_step(self, time_s, fields, metrics):
        write_step(self, time_s, fields, metrics)
        print(f"output {time_s!r}", flush=True)

    def announced_checkpoint(self, sim):
        before = self.last_step
        checkpoint(self, sim)
        if self.last_step != before:
            print(f"checkpoint {sim.step_index}", flush=True)

    FreeDrugModel.step = paced_step
    ResultsWriter.write_step = announced_write_step
    Checkpointer.__call__ = announced_checkpoint


if __name__ == "__main__":
    _patch(float(sys.argv[1]))
    sys.exit(main(["run", *sys.argv[2:]]))
