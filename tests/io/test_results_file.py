"""Results file: round trip, VTK compatibility, overwrite/resume rules, crash safety."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nanosim.io import ResultsWriter, open_results

HERE = Path(__file__).parent
SHAPE_ZYX = (4, 5, 6)  # nz, ny, nx: all different, so any axis mix-up shows


def _load_helper(name):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kill_writer = _load_helper("_kill_writer")


def make_writer(path, **overrides):
    kwargs = dict(
        shape_zyx=SHAPE_ZYX,
        voxel_size_m=2e-5,
        origin_m=(1e-3, -2e-3, 3e-3),
        field_names=["released_drug", "oxygen"],
        dtype="float32",
        scenario_text='name = "test"\n',
        scenario_json='{"name": "test"}',
        provenance={"backend": "numpy", "seed": 42, "extra": {"host": "x"}},
    )
    kwargs.update(overrides)
    return ResultsWriter(path, **kwargs)


def fields_at(k, dtype=np.float32):
    rng = np.random.default_rng(k)
    return {
        "released_drug": rng.random(SHAPE_ZYX).astype(dtype),
        "oxygen": rng.random(SHAPE_ZYX).astype(dtype),
    }


def region_map():
    return np.random.default_rng(99).integers(0, 4, SHAPE_ZYX).astype(np.uint8)


def write_run(path, times, finish=True):
    with make_writer(path) as w:
        w.write_static("region", region_map())
        for k, t in enumerate(times):
            w.write_step(t, fields_at(k), {"tumour_auc": 10.0 * k, "leak": -float(k)})
        if finish:
            w.finish("completed", {"tumour_auc": 20.0, "n": np.int64(3)})


def test_round_trip_fields_metrics_static_provenance(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, [0.0, 60.0, 120.0])
    with open_results(path) as res:
        assert res.shape_xyz == (6, 5, 4)
        assert res.voxel_size_m == 2e-5
        assert res.origin_m == (1e-3, -2e-3, 3e-3)
        np.testing.assert_array_equal(res.times_s, [0.0, 60.0, 120.0])
        assert res.field_names == ["released_drug", "oxygen"]
        assert res.static_names == ["region"]
        for k in range(3):
            for name, expected in fields_at(k).items():
                got = res.field(name, step=k)
                assert got.shape == SHAPE_ZYX and got.dtype == np.float32
                np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(res.field("oxygen"), fields_at(2)["oxygen"])
        np.testing.assert_array_equal(res.field("oxygen", time_s=60.0), fields_at(1)["oxygen"])
        np.testing.assert_array_equal(res.static("region"), region_map())
        assert res.static("region").dtype == np.uint8
        np.testing.assert_array_equal(res.metrics["tumour_auc"], [0.0, 10.0, 20.0])
        np.testing.assert_array_equal(res.metrics["leak"], [0.0, -1.0, -2.0])
        assert res.metrics["leak"].dtype == np.float64
        assert res.scenario_text == 'name = "test"\n'
        assert res.scenario_json == '{"name": "test"}'
        assert res.provenance["backend"] == "numpy"
        assert res.provenance["seed"] == 42
        assert res.provenance["extra"] == {"host": "x"}
        assert res.provenance["dtype"] == "float32"
        assert res.provenance["version"]
        assert res.provenance["created_utc"].endswith("+00:00")
        assert res.status == "completed"
        assert res.summary == {"tumour_auc": 20.0, "n": 3}
    with h5py.File(path, "r") as f:
        ns = f["nanosim"]
        assert ns.attrs["backend"] == "numpy" and ns.attrs["seed"] == 42
        assert ns.attrs["dtype"] == "float32" and "created_utc" in ns.attrs
        # Fields compressed and resizable along time, as promised.
        ds = f["VTKHDF/CellData/released_drug"]
        assert ds.compression == "gzip" and ds.shuffle and ds.maxshape[0] is None


def test_float64_fields_are_stored_as_float64(tmp_path):
    path = tmp_path / "run64.h5"
    with make_writer(path, dtype="float64") as w:
        w.write_step(0.0, fields_at(0, np.float64), {})
        w.finish("completed", {})
    with open_results(path) as res:
        assert res.field("oxygen").dtype == np.float64
        np.testing.assert_array_equal(res.field("oxygen"), fields_at(0, np.float64)["oxygen"])


def test_repr_is_a_readable_tree(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, [0.0, 60.0, 120.0])
    with open_results(path) as res:
        text = repr(res)
    assert text.splitlines()[0] == f"Results {path}"
    assert "6 × 5 × 4 voxels" in text
    assert "steps: 3, t = 0 s … 120 s" in text
    assert "fields (float32): released_drug, oxygen" in text
    assert "static: region" in text
    assert "metrics: tumour_auc, leak" in text
    assert text.splitlines()[-1] == "└── status: completed"


def test_field_lookup_errors_are_clear(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, [0.0, 60.0])
    with open_results(path) as res:
        with pytest.raises(KeyError, match="no field 'nope'.*released_drug, oxygen"):
            res.field("nope")
        with pytest.raises(KeyError, match="static array, use static"):
            res.field("region")
        with pytest.raises(IndexError, match="step 2 is out of range.*2 output steps"):
            res.field("oxygen", step=2)
        with pytest.raises(ValueError, match=r"no output step at t = 30 s.*nearest: 0 s, 60 s"):
            res.field("oxygen", time_s=30.0)


def test_metric_appearing_later_is_nan_before_and_missing_metric_is_nan(tmp_path):
    path = tmp_path / "run.h5"
    with make_writer(path) as w:
        w.write_step(0.0, fields_at(0), {"a": 1.0})
        w.write_step(1.0, fields_at(1), {"a": 2.0, "b": 5.0})
        w.write_step(2.0, fields_at(2), {"b": 6.0})
        w.finish("completed", {})
    with open_results(path) as res:
        np.testing.assert_array_equal(res.metrics["a"], [1.0, 2.0, np.nan])
        np.testing.assert_array_equal(res.metrics["b"], [np.nan, 5.0, 6.0])


def test_write_step_rejects_bad_input_without_writing(tmp_path):
    path = tmp_path / "run.h5"
    with make_writer(path) as w:
        w.write_step(1.0, fields_at(0), {})
        wrong = {"released_drug": np.zeros(SHAPE_ZYX), "oxygen": np.zeros((5, 4, 6))}
        shape_error = r"field 'oxygen' has shape \(5, 4, 6\); expected \(4, 5, 6\)"
        with pytest.raises(ValueError, match=shape_error):
            w.write_step(2.0, wrong, {})
        with pytest.raises(ValueError, match="missing oxygen"):
            w.write_step(2.0, {"released_drug": np.zeros(SHAPE_ZYX)}, {})
        with pytest.raises(ValueError, match="must increase"):
            w.write_step(1.0, fields_at(1), {})
        with pytest.raises(ValueError, match="metric 'm' must be a number"):
            w.write_step(2.0, fields_at(1), {"m": "high"})
        w.finish("completed", {})
    with open_results(path) as res:
        assert res.n_steps == 1
        assert res.metrics == {}


def test_invalid_writer_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="shape_zyx"):
        make_writer(tmp_path / "a.h5", shape_zyx=(4, 5))
    with pytest.raises(ValueError, match="voxel_size_m"):
        make_writer(tmp_path / "a.h5", voxel_size_m=0.0)
    with pytest.raises(ValueError, match="floating-point"):
        make_writer(tmp_path / "a.h5", dtype="int32")
    with pytest.raises(ValueError, match="duplicates: oxygen"):
        make_writer(tmp_path / "a.h5", field_names=["oxygen", "oxygen"])
    with pytest.raises(TypeError, match="provenance must be JSON-serialisable"):
        make_writer(tmp_path / "a.h5", provenance={"when": object()})
    with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
        make_writer(tmp_path / "missing" / "a.h5")
    assert not (tmp_path / "a.h5").exists()


def test_refuses_to_overwrite_existing_file(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, [0.0, 1.0])
    before = path.read_bytes()
    with pytest.raises(FileExistsError) as info:
        make_writer(path)
    assert str(path) in str(info.value)
    assert "use --overwrite or -o another path" in str(info.value)
    assert path.read_bytes() == before
    write_run_over = make_writer(path, overwrite=True)
    write_run_over.finish("completed", {})
    with open_results(path) as res:
        assert res.n_steps == 0


def test_exception_inside_writer_marks_run_failed(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with make_writer(path) as w:
            w.write_step(0.0, fields_at(0), {"m": 1.0})
            raise RuntimeError("boom")
    with open_results(path) as res:
        assert res.status == "failed"
        assert res.summary == {"error": "RuntimeError: boom"}
        assert res.n_steps == 1


def test_keyboard_interrupt_marks_run_interrupted(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(KeyboardInterrupt):
        with make_writer(path) as w:
            raise KeyboardInterrupt
    with open_results(path) as res:
        assert res.status == "interrupted"


def test_unfinished_writer_leaves_status_running_and_rejects_writes_after_close(tmp_path):
    path = tmp_path / "run.h5"
    w = make_writer(path)
    w.write_step(0.0, fields_at(0), {})
    w.close()
    with pytest.raises(RuntimeError, match="is closed"):
        w.write_step(1.0, fields_at(1), {})
    with open_results(path) as res:
        assert res.status == "running" and res.summary == {}


def test_resume_drops_steps_after_checkpoint_and_continues(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, [0.0, 1.0, 2.0, 3.0], finish=False)
    with make_writer(path, resume_after_s=1.0, provenance={"backend": "numba", "seed": 42}) as w:
        assert w.n_steps == 2
        with pytest.raises(ValueError, match="must increase"):
            w.write_step(1.0, fields_at(7), {})
        w.write_step(1.5, fields_at(7), {"tumour_auc": 99.0, "leak": 0.5})
        w.finish("completed", {"resumed": True})
    with open_results(path) as res:
        np.testing.assert_array_equal(res.times_s, [0.0, 1.0, 1.5])
        np.testing.assert_array_equal(res.field("oxygen", step=1), fields_at(1)["oxygen"])
        np.testing.assert_array_equal(res.field("oxygen", step=2), fields_at(7)["oxygen"])
        np.testing.assert_array_equal(res.metrics["tumour_auc"], [0.0, 10.0, 99.0])
        np.testing.assert_array_equal(res.static("region"), region_map())
        assert res.status == "completed"
        assert res.provenance["backend"] == "numpy"  # the run's original provenance
    with h5py.File(path, "r") as f:
        assert f["VTKHDF/Steps"].attrs["NSteps"] == 3
        for name in ("released_drug", "oxygen", "region"):
            assert f["VTKHDF/Steps/CellDataOffsets"][name].shape == (3,)
        resumes = json.loads(f["nanosim"].attrs["resumes_json"])
        assert resumes[0]["after_s"] == 1.0 and resumes[0]["provenance"]["backend"] == "numba"


def test_resume_refuses_a_different_grid_or_missing_file(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, [0.0, 1.0])
    with pytest.raises(ValueError, match="cannot resume .*grid extent"):
        make_writer(path, shape_zyx=(4, 5, 7), resume_after_s=0.5)
    with pytest.raises(ValueError, match="cannot resume .*fields"):
        make_writer(path, field_names=["oxygen"], resume_after_s=0.5)
    with pytest.raises(FileNotFoundError, match="run without --resume"):
        make_writer(tmp_path / "other.h5", resume_after_s=0.5)
    with open_results(path) as res:
        assert res.n_steps == 2


def test_not_a_results_file_is_named_with_what_is_missing(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    not_hdf5 = r"notes.h5 is not a nanosim results file: it is not an HDF5"
    with pytest.raises(ValueError, match=not_hdf5):
        open_results(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_group("VTKHDF")
    missing = r"other.h5 is not a nanosim results file: missing .*Type='ImageData'.*group /nanosim"
    with pytest.raises(ValueError, match=missing):
        open_results(other)
    with pytest.raises(FileNotFoundError, match="absent.h5 does not exist"):
        open_results(tmp_path / "absent.h5")


# ----------------------------------------------------------------------------- VTK


def _vtk_read(path, step):
    """Return (reader info, cell arrays) for one step, read by VTK's own reader."""
    hdf = pytest.importorskip("vtkmodules.vtkIOHDF")
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline

    reader = hdf.vtkHDFReader()
    reader.SetFileName(str(path))
    reader.SetStep(step)
    reader.Update()
    image = reader.GetOutput()
    assert image is not None and image.GetNumberOfCells() > 0, f"VTK could not read {path}"
    times = reader.GetOutputInformation(0).Get(vtkStreamingDemandDrivenPipeline.TIME_STEPS())
    cell_data = image.GetCellData()
    arrays = {
        cell_data.GetArrayName(i): vtk_to_numpy(cell_data.GetArray(i))
        for i in range(cell_data.GetNumberOfArrays())
    }
    return reader.GetNumberOfSteps(), np.asarray(times), image, arrays


def test_vtk_hdf_reader_opens_the_file(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, [0.0, 60.0, 120.0])
    nz, ny, nx = SHAPE_ZYX
    for k in (0, 2):
        n_steps, times, image, arrays = _vtk_read(path, k)
        assert n_steps == 3
        np.testing.assert_array_equal(times, [0.0, 60.0, 120.0])
        assert image.GetExtent() == (0, nx, 0, ny, 0, nz)
        assert image.GetNumberOfCells() == nx * ny * nz
        np.testing.assert_allclose(image.GetSpacing(), (2e-5, 2e-5, 2e-5), rtol=1e-15)
        np.testing.assert_allclose(image.GetOrigin(), (1e-3, -2e-3, 3e-3), rtol=1e-15)
        expected = fields_at(k)
        for name in ("released_drug", "oxygen"):
            # VTK cell id = x + nx * (y + ny * z): the C order of a (nz, ny, nx) array.
            np.testing.assert_array_equal(arrays[name], expected[name].ravel())
        x, y, z = 5, 1, 3
        assert arrays["oxygen"][x + nx * (y + ny * z)] == expected["oxygen"][z, y, x]
        np.testing.assert_array_equal(arrays["region"], region_map().ravel())


def test_resumed_file_still_opens_in_vtk(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, [0.0, 1.0, 2.0, 3.0], finish=False)
    with make_writer(path, resume_after_s=1.0) as w:
        w.write_step(1.5, fields_at(7), {})
        w.finish("completed", {})
    n_steps, times, _, arrays = _vtk_read(path, 2)
    assert n_steps == 3
    np.testing.assert_array_equal(times, [0.0, 1.0, 1.5])
    np.testing.assert_array_equal(arrays["oxygen"], fields_at(7)["oxygen"].ravel())
    np.testing.assert_array_equal(arrays["region"], region_map().ravel())


# ----------------------------------------------------------------------------- SIGKILL


def _run_and_kill(script, path, min_announced):
    """Start ``script path``, SIGKILL it once it has announced ``min_announced`` steps."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    announced = -1
    try:
        for line in proc.stdout:
            announced = int(line)
            if announced >= min_announced:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"writer ended on its own: {err}"
    for line in rest.split():
        announced = max(announced, int(line))
    assert announced >= min_announced, f"writer announced only {announced} steps: {err}"
    return announced


@pytest.mark.parametrize("min_announced", [5, 40])
def test_sigkill_mid_run_leaves_every_announced_step(tmp_path, min_announced):
    path = tmp_path / "killed.h5"
    announced = _run_and_kill("_kill_writer.py", path, min_announced)
    with open_results(path) as res:
        assert res.status == "running"
        assert res.n_steps >= announced + 1
        for k in range(res.n_steps):
            assert res.times_s[k] == 0.25 * k
            assert res.metrics["m"][k] == 0.5 * k
            for name, expected in kill_writer.expected_fields(k).items():
                np.testing.assert_array_equal(res.field(name, step=k), expected)
        np.testing.assert_array_equal(res.static("region"), kill_writer.region())
        n_written = res.n_steps
    for k in (0, announced):
        n_steps, times, _, arrays = _vtk_read(path, k)
        assert n_steps == n_written
        np.testing.assert_array_equal(times, 0.25 * np.arange(n_written))
        for name, expected in kill_writer.expected_fields(k).items():
            np.testing.assert_array_equal(arrays[name], expected.ravel())
        np.testing.assert_array_equal(arrays["region"], kill_writer.region().ravel())


def test_killed_file_can_be_resumed(tmp_path):
    path = tmp_path / "killed.h5"
    announced = _run_and_kill("_kill_writer.py", path, 10)
    resume_s = 0.25 * (announced // 2)
    writer = ResultsWriter(
        path,
        shape_zyx=kill_writer.SHAPE_ZYX,
        voxel_size_m=1e-5,
        origin_m=(0.0, 0.0, 0.0),
        field_names=["c", "d"],
        dtype="float32",
        scenario_text="",
        scenario_json="{}",
        provenance={},
        resume_after_s=resume_s,
    )
    with writer:
        assert writer.n_steps == announced // 2 + 1
        writer.finish("completed", {})
    with open_results(path) as res:
        assert res.times_s[-1] == resume_s and res.status == "completed"


def test_import_does_not_pull_in_gpu_or_vtk_modules():
    code = (
        "import sys, nanosim.io; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('cupy', 'vtk', 'vtkmodules') "
        "or m.startswith('numba.cuda')]; print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
