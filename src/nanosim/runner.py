"""Run a scenario end to end: build the model, step it, write results, checkpoint, resume.

This is the thin driver behind ``nanosim run`` and :func:`nanosim.run`.
"""

from __future__ import annotations

import json

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .backends import get_backend
from .model import build as build_model
from .io import ResultsWriter, load_checkpoint, open_results
from .scenario.errors import ScenarioBuildError
from .simulation import (Always, Checkpointer, Guards, OutputWriter, ProgressBar, Simulation, SnapshotWriter,
                         TimeInterval, WallTimeInterval)

#: Outer step of the implicit scheme with ``dt_s = "auto"``, in units of the explicit limit.
IMPLICIT_AUTO_FACTOR = 10.0


class RunInterrupted(Exception):
    """Ctrl-C: the state was checkpointed; ``run --resume`` continues (exit code 130)."""


class ResumeError(ValueError):
    """A checkpoint is missing or belongs to another scenario."""


@dataclass
class RunInfo:
    """What a run did (printed by ``run --json``)."""

    output: str
    checkpoint: str
    backend: str
    dtype: str
    scheme: str
    dt_s: float
    substeps: int
    steps: int
    wall_time_s: float
    resumed_from_s: float | None
    final_metrics: dict
    #: ``[{"until_s", "dt_s", "steps"}, ...]`` when the step changes during the run (else empty)
    dt_phases: list = field(default_factory=list)
    #: wall time (s) of building the model (geometry, vessels, flow and pressure solves, carriers)
    setup_time_s: float = 0.0
    #: wall time (s) of the first step (the kernels' compilation included), part of wall_time_s
    first_step_s: float | None = None


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")


def choose_phases(scenario, model) -> tuple[list[tuple[float, float]], float]:
    """(``[(end_s, dt_s), ...]``, output interval): each phase's step the largest divisor of the output
    interval within the model's limit for that phase (:meth:`Model.dt_phases`)."""
    stop = float(scenario.time.stop_s)
    every = float(scenario.output.every_s) if scenario.output.every_s else stop / 10.0
    out = []
    for end, lim in model.dt_phases(scenario):
        dt_max = min(lim, every, stop)
        out.append((end, every / max(1, math.ceil(every / dt_max - 1e-9))))
    return out, every


def _scenario_texts(scenario):
    text = getattr(scenario, "source_text", None) or scenario.model_dump_json(indent=2)
    return text, scenario.model_dump_json()


def run_scenario(scenario, output=None, backend=None, *, overwrite=False, resume=False, progress=False,
                 log=None) -> RunInfo:
    """Run ``scenario`` (a validated Scenario) and write ``output`` (HDF5 results file).

    Parameters
    ----------
    backend : str, optional
        Overrides ``scenario.backend``.
    overwrite : bool
        Replace an existing results file (never done silently).
    resume : bool
        Continue from ``OUTPUT.ckpt``; the final fields equal an uninterrupted run's.
    progress : bool
        Draw a progress bar on stderr.
    log : callable, optional
        ``log(message)`` for human-readable notes (the command line prints them to stderr).

    Raises
    ------
    FileExistsError, ResumeError, BackendUnavailable, GuardError, RunInterrupted,
    ScenarioBuildError (a ValueError: the scenario cannot be built into a model)
    """
    say = log or (lambda msg: None)
    output = Path(output) if output is not None else Path(tempfile.mkdtemp(prefix="nanosim-")) / "results.h5"
    ckpt = checkpoint_path(output)
    be = get_backend(backend or scenario.backend)
    if not resume and not overwrite and output.exists():  # before the (possibly long) model build
        raise FileExistsError(f"results file {output} already exists; use --overwrite or -o another path")
    dtype = be.default_dtype(scenario.precision)
    tic = time.perf_counter()
    try:
        model = build_model(scenario, be, dtype, log=say)
    except ValueError as exc:  # what validation alone cannot see; the message names the field and the fix
        raise ScenarioBuildError(str(exc)) from exc
    setup_time_s = time.perf_counter() - tic
    phases, every = choose_phases(scenario, model)
    dt = phases[-1][1]
    text, sjson = _scenario_texts(scenario)

    resumed_from = None
    if resume:
        if not ckpt.exists():
            raise ResumeError(f"no checkpoint to resume from: {ckpt} does not exist. Run without --resume.")
        arrays, attrs = load_checkpoint(ckpt)
        if attrs.get("scenario_json") != sjson:
            raise ResumeError(f"{ckpt} belongs to a different scenario (or different --set overrides); "
                              "resume with the same scenario and options, or start a new run.")
        if attrs.get("dtype") != np.dtype(dtype).name or attrs.get("backend") != be.name:
            raise ResumeError(f"{ckpt} was written by backend {attrs.get('backend')} in {attrs.get('dtype')}; "
                              f"resume with --backend {attrs.get('backend')} for an identical continuation.")
        model.load_state(arrays, attrs)
        resumed_from = model.time_s
        say(f"resuming from the checkpoint at t = {model.time_s:g} s (step {model.step_index})")

    provenance = {"version": __version__, "backend": be.name, "device": be.device, "seed": scenario.seed,
                  "dtype": np.dtype(dtype).name, "scheme": scenario.transport.scheme, "dt_s": dt,
                  "substeps": model.substeps(dt)}
    if len(phases) > 1:
        provenance["dt_phases"] = [{"until_s": e, "dt_s": d} for e, d in phases]
    if model.carriers is not None and model.carriers.wall_calibration:
        # how the walls were calibrated to their measured effective permeability (the run log says it too)
        provenance["wall_calibration"] = model.carriers.wall_calibration
    wanted = scenario.output.fields
    field_names = [f for f in (model.field_names if wanted is None else wanted) if f in model.field_names]
    try:
        writer = ResultsWriter(output, shape_zyx=model.grid.shape_zyx, voxel_size_m=model.grid.voxel_size_m,
                               origin_m=model.grid.origin_m, field_names=field_names, dtype=dtype,
                               scenario_text=text, scenario_json=sjson, provenance=provenance,
                               overwrite=overwrite, resume_after_s=resumed_from)
    except (FileNotFoundError, ValueError) as exc:
        if resumed_from is None:
            raise
        raise ResumeError(str(exc)) from None
    if resumed_from is None:
        # a checkpoint left by an earlier run into this path belongs to the file just replaced
        ckpt.unlink(missing_ok=True)
    # dt divides the output interval: aligning on it puts the outputs exactly on its multiples
    sim = Simulation(model, dt, float(scenario.time.stop_s), align_s=every, phases=phases)
    if len(phases) > 1:
        say("time steps: " + ", then ".join(f"{d:.4g} s to t = {e:.4g} s ({n} steps)" for e, d, n in sim.phases))
    try:
        if resumed_from is None:
            if "region" in (wanted or ()):
                writer.write_static("region", model.region_host)
            if "vessel" in (wanted or ()):
                writer.write_static("vessel", model.vessel_host)
            if model.oxygen is not None:
                writer.write_static("oxygen_po2_mmhg", np.asarray(model.oxygen.po2_mmhg))
            if model.ph is not None:
                writer.write_static("extracellular_ph", np.asarray(model.ph.ph))
            if model.vasculature is not None:
                write_vasculature(writer, model.vasculature)
                if model.vasculature.network is not None:
                    from .vasculature.io import write_vtp

                    # the network with its flow beside the results, for ParaView's Tube filter
                    vtp = network_vtp_path(output)
                    write_vtp(model.vasculature.network, vtp, point_data=model.vasculature.node_data(),
                              cell_data=model.vasculature.segment_data(), encoding="binary", compress=True)
                    say(f"vessel network with its blood flow: {vtp}")
        ck = Checkpointer(ckpt, {"scenario_json": sjson, "backend": be.name, "dtype": np.dtype(dtype).name,
                                 "version": __version__})
        stiffness = 1.0 + (model.drug.op._k_max * max(d for _, d in phases) if model.drug is not None else 0.0)
        sim.add_callback("guards", Guards(dtype, int(np.prod(model.grid.shape_zyx)), stiffness), Always(),
                         at_start=False)
        sim.add_callback("output", OutputWriter(writer, field_names), TimeInterval(every))
        if model.carriers is not None and scenario.particles.snapshots.max_particles > 0:
            snap_every = scenario.particles.snapshots.every_s or every
            sim.add_callback("particle snapshots", SnapshotWriter(writer, scenario.particles.snapshots.max_particles),
                             TimeInterval(float(snap_every)))
        sim.add_callback("checkpoint", ck, WallTimeInterval(float(scenario.output.checkpoint_every_wall_s)),
                         at_start=False)
        if scenario.output.checkpoint_every_s:
            sim.add_callback("checkpoint (simulated time)", ck, TimeInterval(float(scenario.output.checkpoint_every_s)),
                             at_start=False)
        if progress:
            sim.add_callback("progress", ProgressBar(), Always(), at_start=False)
        try:
            sim.run()
        except KeyboardInterrupt:
            # the loop defers Ctrl-C to the end of a step; a state caught mid-step is not saved
            saved = sim.consistent and model.step_index > 0
            if saved:
                ck(sim)
            writer.finish("interrupted", {"time_s": model.time_s, "step_index": model.step_index})
            if saved:
                where = f"state saved to {ckpt}"
            elif ckpt.exists():
                where = f"state not saved; the last checkpoint, {ckpt}, is kept"
            else:
                raise RunInterrupted(f"interrupted at t = {model.time_s:g} s before any checkpoint; "
                                     "run again from the start (with --overwrite)") from None
            raise RunInterrupted(f"interrupted at t = {model.time_s:g} s; {where}. "
                                 f"Continue with: nanosim run ... -o {output} --resume") from None
        except Exception as exc:
            try:
                writer.finish("failed", {"error": f"{type(exc).__name__}: {exc}", "time_s": model.time_s,
                                         "step_index": model.step_index})
            except Exception:
                pass  # the run's own error matters more than the bookkeeping
            raise
        ck(sim)
        final = model.metrics()
        info = RunInfo(output=str(output), checkpoint=str(ckpt), backend=be.name, dtype=np.dtype(dtype).name,
                       scheme=scenario.transport.scheme, dt_s=dt, substeps=model.substeps(dt),
                       steps=model.step_index, wall_time_s=sim.wall_time_s, resumed_from_s=resumed_from,
                       final_metrics=final,
                       dt_phases=[{"until_s": e, "dt_s": d, "steps": n} for e, d, n in sim.phases] if len(phases) > 1 else [],
                       setup_time_s=setup_time_s, first_step_s=sim.first_step_wall_s)
        writer.finish("completed", {**info.__dict__})
        return info
    except BaseException:
        writer.close()
        raise


def network_vtp_path(output) -> Path:
    """Where a run writes its vessel network as VTK PolyData: ``OUT`` with ``.network.vtp``."""
    output = Path(output)
    return output.with_name(output.stem + ".network.vtp")


def write_vasculature(writer, vas) -> None:
    """Voxel maps, interstitial pressure and velocity (static cell data) and the network group."""
    maps = vas.maps
    writer.write_static("vessel_volume_fraction", maps.volume_fraction)
    writer.write_static("vessel_surface_per_volume_per_m", maps.surface_per_volume_per_m)
    writer.write_static("vessel_wall_type", maps.wall_type)
    writer.write_static("nearest_segment", maps.nearest_segment)
    dist = np.where(np.isfinite(maps.distance_to_wall_m), maps.distance_to_wall_m, -1.0)
    writer.write_static("distance_to_vessel_wall_m", dist)
    if vas.interstitial is not None:
        s = vas.interstitial
        writer.write_static("interstitial_pressure_pa", s.pressure_pa)
        for axis, comp in zip("xyz", s.voxel_velocity_m_per_s):
            writer.write_static(f"interstitial_velocity_{axis}_m_per_s", comp)
    summary = vas.summary()

    def fill(group):
        group.attrs["summary_json"] = json.dumps(summary, default=float)
        if vas.network is not None:
            from .vasculature.io import save_network_h5

            save_network_h5(vas.network, group, extra_seg=vas.segment_data(), extra_node=vas.node_data())

    writer.write_group("network", fill)


def run(scenario, output=None, backend=None, *, overwrite=False, resume=False, progress=False):
    """Run a scenario and return its :class:`~nanosim.io.Results`.

    Parameters
    ----------
    scenario : Scenario, path or mapping
        A validated scenario, or anything :func:`nanosim.load_scenario` accepts.
    output : path, optional
        Results file (HDF5); a temporary file when omitted.
    backend : {"auto", "numpy", "numba", "cupy"}, optional
        Overrides the scenario's backend.
    """
    from .scenario import Scenario, load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    info = run_scenario(scenario, output, backend, overwrite=overwrite, resume=resume, progress=progress)
    return open_results(info.output)
