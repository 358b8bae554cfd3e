"""Helpers of the command-line tests: tiny scenario files, running ``nanosim``, reading a child's lines."""

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent

# 24×24×1 voxels around one vessel held at the plasma concentration; dt 0.05 s (two explicit
# sub-steps), so a run of STOP seconds takes 20·STOP steps.
SCENARIO = """\
schema_version = 1
title = "tiny"
seed = 1

[grid]
shape = [24, 24, 1]
voxel_size_m = "10 um"
boundary = {{ x = "no_flux", y = "no_flux", z = "periodic" }}

[[vessels]]
kind = "cylinder"
start_m = ["120 um", "120 um", "-1 mm"]
end_m = ["120 um", "120 um", "1 mm"]
radius_m = "20 um"
wall = "fixed_concentration"

[drug.plasma]
kind = "constant"
concentration_mol_per_m3 = "7.5 uM"

[drug.normal]
diffusivity_m2_per_s = "2e-10 m^2/s"
uptake_rate_per_s = "0.2 1/s"

[transport]
dt_s = "0.05 s"

[time]
stop_s = "{stop_s} s"

[output]
every_s = "{every_s} s"
fields = ["free_drug", "vessel"]
{output_extra}
"""


def write_scenario(path, stop_s=1.0, every_s=0.1, output_extra=""):
    """Write the tiny scenario to ``path`` and return ``path``."""
    path = Path(path)
    path.write_text(SCENARIO.format(stop_s=stop_s, every_s=every_s, output_extra=output_extra))
    return path


def child_env():
    return dict(os.environ, PYTHONUNBUFFERED="1")


def nanosim_cli(*args, cwd=None, timeout=120):
    """Run ``python -m nanosim ARGS`` in a child process; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "nanosim", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=child_env(), timeout=timeout)


class LineReader:
    """Read a child's stdout line by line with a time limit (never blocks the test forever)."""

    def __init__(self, proc):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)
        self.buf = b""
        self.lines = []

    def wait_for(self, predicate, timeout=60.0):
        """Read lines until ``predicate(line)`` holds for one; return that line."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode()
                self.lines.append(text)
                if predicate(text):
                    return text
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting; lines so far: {self.lines}")
            if self.sel.select(timeout=left):
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise AssertionError(f"the child ended (rc {self.proc.wait()}); lines: {self.lines}")
                self.buf += chunk

    def rest(self):
        """All lines, after the child has ended."""
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self.buf += chunk
        self.lines += [line.decode() for line in self.buf.split(b"\n") if line]
        self.buf = b""
        return self.lines


def _terminal_sigint():
    # A command started in a terminal gets Ctrl-C's default disposition; a background job of a
    # shell without job control inherits SIGINT ignored (and nanosim respects that), so the
    # child is given the terminal's disposition explicitly.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_paced(seconds_per_step, *run_args):
    """Start ``nanosim run RUN_ARGS`` slowed down in a child (see _paced_run.py), Ctrl-C-able."""
    proc = subprocess.Popen([sys.executable, str(HERE / "_paced_run.py"), str(seconds_per_step),
                             *map(str, run_args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env(), preexec_fn=_terminal_sigint)
    return proc, LineReader(proc)


def announced_outputs(lines):
    return [float(line.split()[1]) for line in lines if line.startswith("output ")]


def assert_same_results(res, ref, n=None):
    """The first ``n`` (default: all) output steps of ``res`` equal ``ref``'s, bit for bit."""
    n = ref.n_steps if n is None else n
    assert res.n_steps >= n
    np.testing.assert_array_equal(res.times_s[:n], ref.times_s[:n])
    assert sorted(res.metrics) == sorted(ref.metrics)
    for name, series in ref.metrics.items():
        np.testing.assert_array_equal(res.metrics[name][:n], series[:n], err_msg=name)
    assert res.field_names == ref.field_names
    for k in range(n):
        for name in ref.field_names:
            a, b = res.field(name, step=k), ref.field(name, step=k)
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b, err_msg=f"{name} at step {k}")


def have_vtk():
    try:
        import vtkmodules.vtkIOHDF  # noqa: F401
    except ImportError:
        return False
    return True


def vtk_steps(path):
    """(number of steps, time values, free_drug of each step) as VTK's own reader sees them.

    Skips the calling test where VTK is not installed.
    """
    hdf = pytest.importorskip("vtkmodules.vtkIOHDF")
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline

    reader = hdf.vtkHDFReader()
    reader.SetFileName(str(path))
    reader.Update()
    n = reader.GetNumberOfSteps()
    times = np.asarray(reader.GetOutputInformation(0).Get(vtkStreamingDemandDrivenPipeline.TIME_STEPS()))
    fields = []
    for k in range(n):
        reader.SetStep(k)
        reader.Update()
        fields.append(vtk_to_numpy(reader.GetOutput().GetCellData().GetArray("free_drug")).copy())
    return n, times, fields
