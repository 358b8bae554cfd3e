"""The results file: VTKHDF ImageData over time plus a ``/nanosim`` group.

Layout (HDF5)::

    /VTKHDF                      Version=[2, 0], Type="ImageData", WholeExtent=[0,nx,0,ny,0,nz],
                                 Origin (m), Spacing (m), Direction (identity)
        CellData/<field>         (n_steps, nz, ny, nx)  one slab per output step
        CellData/<static>        (1, nz, ny, nx)        written once (e.g. the region map)
        Steps                    NSteps
            Values               (n_steps,) float64     simulated time of each step, s
            CellDataOffsets/<field>   (n_steps,) int64  = step index
            CellDataOffsets/<static>  (n_steps,) int64  = 0, so every step replays the one slab
    /nanosim                     format="nanosim-results", format_version, status, version,
                                 backend, seed, dtype, created_utc, provenance_json,
                                 field_names_json, ...
        scenario_text            scalar UTF-8 string
        scenario_json            scalar UTF-8 string
        summary                  scalar UTF-8 string (JSON), written by ``finish``
        metrics/<name>           (n_steps,) float64, NaN where a metric was not reported

Voxel values are cell data: voxel ``[z, y, x]`` is VTK cell ``x + nx * (y + ny * z)``,
which is exactly the C order of a ``(nz, ny, nx)`` array, so slabs are written as they are.
ParaView and ``vtk.vtkHDFReader`` open the file directly and ignore ``/nanosim``.

Crash safety. The file is flushed after every output step, and during steady stepping the
writer only appends (nothing is freed and reused), so a run killed with SIGKILL leaves a file
holding every step written before its last flush. The file is created with the HDF5 format
bounds ``libver=("v108", "v114")``:

* the upper bound keeps the file readable by the HDF5 that VTK and ParaView bundle (HDF5 2.x
  "latest" objects are not);
* the lower bound is deliberately below v110. A v110 lower bound makes HDF5 write a version-3
  superblock whose "open for write" flag stays set when the writer is killed; after that
  neither h5py (without SWMR) nor ``vtkHDFReader`` can open the file until ``h5clear -s`` is
  run on it. For the same reason SWMR mode is not used: it needs that superblock, and a
  killed SWMR file is readable only by SWMR-aware HDF5 readers, which VTK is not.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

__all__ = ["ResultsWriter", "Results", "open_results", "STATUSES", "LIBVER"]

#: Run states stored in ``/nanosim`` attribute ``status``. "running" is also what a file
#: shows when its writer died without finishing (killed, power loss).
STATUSES = ("running", "completed", "failed", "interrupted")

#: VTKHDF version written; 2.0 is the first with temporal data, so older readers accept it.
VTKHDF_VERSION = (2, 0)

FORMAT_NAME = "nanosim-results"
FORMAT_VERSION = 1

# HDF5 format bounds; see the module docstring for why the lower bound is v108.
LIBVER = ("v108", "v114" if h5py.version.hdf5_version_tuple >= (1, 13, 0) else "latest")

# Field slabs are chunked by whole xy planes, about this many bytes per chunk: large enough
# for good gzip ratios and few chunk-index entries, small enough for slice rendering.
_CHUNK_TARGET_BYTES = 1 << 20
# 1-D series grow by one entry per step; these are left uncompressed so that rewriting the
# last chunk happens in place instead of allocating new file space every step.
_SERIES_CHUNK = 1024
# /nanosim attributes the writer owns; provenance entries with these names stay in
# provenance_json only.
_RESERVED_ATTRS = frozenset(
    {"format", "format_version", "status", "field_names_json", "provenance_json",
     "resumes_json", "finished_utc"}
)


# --------------------------------------------------------------------------- helpers


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON-serialisable")


def to_json(value: Any, what: str) -> str:
    """Serialise ``value`` to JSON, naming ``what`` in the error if it cannot be."""
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} must be JSON-serialisable (str, numbers, bools, None, lists, dicts, "
            f"NumPy scalars/arrays): {exc}"
        ) from None


def _attr_str(obj: h5py.HLObject, name: str, default: str | None = None) -> str | None:
    """Read a string attribute whether it was stored fixed-length, variable-length or bytes."""
    if name not in obj.attrs:
        return default
    value = obj.attrs[name]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).rstrip(b"\0").decode("utf-8", errors="replace")
    return str(value)


def _read_text(group: h5py.Group, name: str) -> str | None:
    if name not in group:
        return None
    value = group[name][()]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _write_text(group: h5py.Group, name: str, text: str) -> None:
    if name in group:
        del group[name]
    group.create_dataset(name, data=text, dtype=h5py.string_dtype("utf-8"))


def _check_name(name: Any, what: str) -> str:
    # HDF5 would turn "/" into nested groups and "." is the group itself.
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(
            f"{what} name {name!r} is invalid: use a non-empty string without '/' "
            f"(e.g. 'released_drug')"
        )
    return name


def _to_host(array: Any) -> Any:
    # Device arrays (CuPy) refuse implicit conversion; copy them to the host explicitly.
    if hasattr(array, "__cuda_array_interface__") and hasattr(array, "get"):
        return array.get()
    return array


def _append(dataset: h5py.Dataset, index: int, value: Any) -> None:
    dataset.resize(index + 1, axis=0)
    dataset[index] = value


def _slab_chunks(shape_zyx: tuple[int, int, int], itemsize: int) -> tuple[int, int, int, int]:
    nz, ny, nx = shape_zyx
    cz = max(1, min(nz, _CHUNK_TARGET_BYTES // (ny * nx * itemsize)))
    return (1, cz, ny, nx)


def _series(group: h5py.Group, name: str, dtype: str, length: int = 0, fill: Any = None):
    kwargs = {} if fill is None else {"fillvalue": fill}
    return group.create_dataset(
        name, shape=(length,), maxshape=(None,), chunks=(_SERIES_CHUNK,), dtype=dtype, **kwargs
    )


def _layout_problems(f: h5py.File) -> list[str]:
    """What a nanosim results file needs and ``f`` lacks (empty list: the layout is fine)."""
    problems = []
    vtk = f.get("VTKHDF")
    if not isinstance(vtk, h5py.Group):
        problems.append("group /VTKHDF")
    else:
        if _attr_str(vtk, "Type") != "ImageData":
            problems.append("/VTKHDF attribute Type='ImageData'")
        for attr in ("WholeExtent", "Origin", "Spacing"):
            if attr not in vtk.attrs:
                problems.append(f"/VTKHDF attribute {attr}")
        for sub in ("CellData", "Steps", "Steps/Values", "Steps/CellDataOffsets"):
            if sub not in vtk:
                problems.append(f"/VTKHDF/{sub}")
        if "Steps" in vtk and "NSteps" not in vtk["Steps"].attrs:
            problems.append("/VTKHDF/Steps attribute NSteps")
    ns = f.get("nanosim")
    if not isinstance(ns, h5py.Group):
        problems.append("group /nanosim")
    else:
        if _attr_str(ns, "format") != FORMAT_NAME:
            problems.append(f"/nanosim attribute format='{FORMAT_NAME}'")
        if "field_names_json" not in ns.attrs:
            problems.append("/nanosim attribute field_names_json")
    return problems


def _open_hdf5(path: Path, mode: str, what: str) -> h5py.File:
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not h5py.is_hdf5(path):
        raise ValueError(
            f"{path} is not a nanosim results file: it is not an HDF5 file "
            f"(results files are written by `nanosim run`)"
        )
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        raise OSError(
            f"cannot open {what} {path}: {exc}. If another process is still writing it, "
            f"wait for that run to end"
        ) from None


def _check_layout(f: h5py.File, path: Path) -> None:
    problems = _layout_problems(f)
    if problems:
        raise ValueError(
            f"{path} is not a nanosim results file: missing {', '.join(problems)} "
            f"(results files are written by `nanosim run`)"
        )


def _committed_steps(vtk: h5py.Group, names: list[str]) -> int:
    """Number of complete output steps: NSteps, but never more than every array holds.

    NSteps is written last in each step, so after a clean flush all of these agree; taking
    the minimum keeps a reader safe even if a kill left some arrays a step ahead.
    """
    steps = vtk["Steps"]
    n = int(np.asarray(steps.attrs["NSteps"]).reshape(-1)[0])
    n = min(n, steps["Values"].shape[0])
    offsets = steps["CellDataOffsets"]
    for name in names:
        if name in vtk["CellData"]:
            n = min(n, vtk["CellData"][name].shape[0])
        if name in offsets:
            n = min(n, offsets[name].shape[0])
    return max(n, 0)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- writer


class ResultsWriter:
    """Write a results file step by step (VTKHDF ImageData with time steps + ``/nanosim``).

    Parameters
    ----------
    path : str or os.PathLike
        File to write (``.h5`` or ``.vtkhdf``).
    shape_zyx : tuple of int
        Voxel array shape ``(nz, ny, nx)``; every field is an array of this shape.
    voxel_size_m : float
        Edge length of a (cubic) voxel, m.
    origin_m : tuple of float
        ``(x, y, z)`` position of the domain's lower corner (the outer corner of voxel
        ``[0, 0, 0]``), m.
    field_names : list of str
        Names of the time-dependent fields passed to every :meth:`write_step`.
    dtype : numpy dtype-like
        Floating-point type the fields are stored in (float32 or float64).
    scenario_text : str
        The scenario file as the user wrote it.
    scenario_json : str
        The validated scenario, as JSON.
    provenance : dict
        JSON-serialisable facts about the run: ``version``, ``backend``, ``seed``, ``dtype``,
        ``created_utc`` and anything else. ``version``, ``dtype`` and ``created_utc`` are
        filled in when absent. Scalar entries also become ``/nanosim`` attributes.
    overwrite : bool, optional
        Replace an existing file at ``path``; otherwise an existing file is an error.
    resume_after_s : float, optional
        Continue an existing file instead of creating one: output steps with time greater
        than ``resume_after_s`` (s) are dropped, since a killed run may have written steps
        past its last checkpoint; later steps are appended. The grid, field names and dtype
        must match the file.

    Raises
    ------
    FileExistsError
        ``path`` exists, ``overwrite`` is false and no resume was asked for.
    FileNotFoundError
        Resuming and ``path`` does not exist, or the folder of ``path`` does not exist.
    ValueError
        Invalid grid, names or dtype, or (resuming) a file that does not match them.

    Notes
    -----
    Use as a context manager: an exception inside the block finishes the file with status
    "failed" ("interrupted" for ``KeyboardInterrupt`` and ``SystemExit``) unless
    :meth:`finish` was called. Leaving the block normally without :meth:`finish` only closes
    the file, whose status stays "running".

    Examples
    --------
    >>> with ResultsWriter("run.h5", shape_zyx=(4, 5, 6), voxel_size_m=1e-5,
    ...                    origin_m=(0.0, 0.0, 0.0), field_names=["released_drug"],
    ...                    dtype="float32", scenario_text="...", scenario_json="{}",
    ...                    provenance={"backend": "numpy", "seed": 1}) as w:  # doctest: +SKIP
    ...     w.write_static("region", region_map)
    ...     w.write_step(0.0, {"released_drug": c0}, {"tumour_auc": 0.0})
    ...     w.finish("completed", {"tumour_auc": 1.2})
    """

    def __init__(
        self,
        path,
        *,
        shape_zyx,
        voxel_size_m: float,
        origin_m: tuple,
        field_names: list[str],
        dtype,
        scenario_text: str,
        scenario_json: str,
        provenance: dict,
        overwrite: bool = False,
        resume_after_s: float | None = None,
    ) -> None:
        self.path = Path(path)
        self._shape_zyx = self._check_shape(shape_zyx)
        self._voxel_size_m = self._check_voxel_size(voxel_size_m)
        self._origin_m = self._check_origin(origin_m)
        self._field_names = self._check_field_names(field_names)
        self._dtype = self._check_dtype(dtype)
        if not isinstance(scenario_text, str) or not isinstance(scenario_json, str):
            raise TypeError("scenario_text and scenario_json must be str")
        if not isinstance(provenance, Mapping):
            raise TypeError(f"provenance must be a dict, got {type(provenance).__name__}")
        self._provenance = self._complete_provenance(dict(provenance))
        provenance_json = to_json(self._provenance, "provenance")

        self._file: h5py.File | None = None
        self._finished = False
        self._fields: dict[str, h5py.Dataset] = {}
        self._offsets: dict[str, h5py.Dataset] = {}
        self._static_offsets: dict[str, h5py.Dataset] = {}
        self._metrics: dict[str, h5py.Dataset] = {}
        self._n_steps = 0
        self._last_time_s = -math.inf

        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"cannot write results file {self.path}: folder {self.path.parent} does not exist"
            )
        if resume_after_s is None:
            if self.path.exists() and not overwrite:
                raise FileExistsError(
                    f"results file {self.path} already exists; use --overwrite or -o another path"
                )
            self._create(scenario_text, scenario_json, provenance_json)
        else:
            self._resume(float(resume_after_s), provenance_json)

    # ------------------------------------------------------------------ validation

    @staticmethod
    def _check_shape(shape_zyx) -> tuple[int, int, int]:
        try:
            shape = tuple(int(n) for n in shape_zyx)
        except (TypeError, ValueError):
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(
                f"shape_zyx must be three positive voxel counts (nz, ny, nx), got {shape_zyx!r}"
            )
        return shape  # type: ignore[return-value]

    @staticmethod
    def _check_voxel_size(voxel_size_m) -> float:
        value = float(voxel_size_m)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"voxel_size_m must be a finite length > 0 m, got {voxel_size_m!r}")
        return value

    @staticmethod
    def _check_origin(origin_m) -> tuple[float, float, float]:
        try:
            origin = tuple(float(v) for v in origin_m)
        except (TypeError, ValueError):
            origin = ()
        if len(origin) != 3 or not all(math.isfinite(v) for v in origin):
            raise ValueError(
                f"origin_m must be three finite coordinates (x, y, z) in m, got {origin_m!r}"
            )
        return origin  # type: ignore[return-value]

    @staticmethod
    def _check_field_names(field_names) -> list[str]:
        if isinstance(field_names, str):
            raise TypeError(f"field_names must be a list of names, got the string {field_names!r}")
        names = [_check_name(n, "field") for n in field_names]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"field_names has duplicates: {', '.join(duplicates)}")
        return names

    @staticmethod
    def _check_dtype(dtype) -> np.dtype:
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise ValueError(f"dtype must be a floating-point type (float32 or float64), got {dt}")
        return dt

    def _complete_provenance(self, provenance: dict) -> dict:
        if "version" not in provenance:
            from nanosim import __version__

            provenance["version"] = __version__
        provenance.setdefault("dtype", str(self._dtype))
        provenance.setdefault("created_utc", _utc_now())
        return provenance

    def _cell_array(self, array: Any, what: str, dtype: np.dtype | None) -> np.ndarray:
        array = np.asarray(_to_host(array))
        if array.shape != self._shape_zyx:
            raise ValueError(
                f"{what} has shape {array.shape}; expected {self._shape_zyx} (nz, ny, nx)"
            )
        if dtype is not None:
            return np.ascontiguousarray(array, dtype=dtype)
        if array.dtype == np.bool_:
            # VTK has no boolean array type; HDF5 would store bools as an enum it skips.
            return np.ascontiguousarray(array, dtype=np.uint8)
        if array.dtype.kind not in "iuf":
            raise ValueError(f"{what} has dtype {array.dtype}; use an integer or float array")
        return np.ascontiguousarray(array)

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError(f"results file {self.path} is closed; no more data can be written")
        return self._file

    # ------------------------------------------------------------------ creation / resume

    def _create(self, scenario_text: str, scenario_json: str, provenance_json: str) -> None:
        nz, ny, nx = self._shape_zyx
        f = h5py.File(self.path, "w", libver=LIBVER)
        self._file = f
        try:
            vtk = f.create_group("VTKHDF")
            vtk.attrs["Version"] = np.array(VTKHDF_VERSION, dtype=np.int64)
            # VTK reads Type as a fixed-length ASCII string.
            vtk.attrs.create("Type", np.bytes_(b"ImageData"), dtype=h5py.string_dtype("ascii", 9))
            vtk.attrs["WholeExtent"] = np.array([0, nx, 0, ny, 0, nz], dtype=np.int64)
            vtk.attrs["Origin"] = np.array(self._origin_m, dtype=np.float64)
            vtk.attrs["Spacing"] = np.full(3, self._voxel_size_m, dtype=np.float64)
            vtk.attrs["Direction"] = np.eye(3, dtype=np.float64).ravel()
            vtk.create_group("CellData")
            steps = vtk.create_group("Steps")
            steps.attrs["NSteps"] = np.int64(0)
            _series(steps, "Values", "f8")
            steps.create_group("CellDataOffsets")
            for name in self._field_names:
                self._create_field(name)

            ns = f.create_group("nanosim")
            for key, value in self._provenance.items():
                if (
                    isinstance(key, str)
                    and key not in _RESERVED_ATTRS
                    and "/" not in key
                    and isinstance(value, (str, bool, int, float))
                ):
                    ns.attrs[key] = value
            ns.attrs["format"] = FORMAT_NAME
            ns.attrs["format_version"] = np.int64(FORMAT_VERSION)
            ns.attrs["status"] = "running"
            ns.attrs["field_names_json"] = json.dumps(self._field_names)
            ns.attrs["provenance_json"] = provenance_json
            _write_text(ns, "scenario_text", scenario_text)
            _write_text(ns, "scenario_json", scenario_json)
            # Metrics list in the order the simulation first reported them.
            ns.create_group("metrics", track_order=True)
            f.flush()
        except BaseException:
            self._file = None
            f.close()
            raise

    def _create_field(self, name: str) -> None:
        nz, ny, nx = self._shape_zyx
        vtk = self._file["VTKHDF"]
        self._fields[name] = vtk["CellData"].create_dataset(
            name,
            shape=(0, nz, ny, nx),
            maxshape=(None, nz, ny, nx),
            chunks=_slab_chunks(self._shape_zyx, self._dtype.itemsize),
            dtype=self._dtype,
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        self._offsets[name] = _series(vtk["Steps/CellDataOffsets"], name, "i8")

    def _resume(self, resume_after_s: float, provenance_json: str) -> None:
        if not math.isfinite(resume_after_s):
            raise ValueError(f"resume_after_s must be a finite time in s, got {resume_after_s!r}")
        if not self.path.exists():
            raise FileNotFoundError(
                f"cannot resume: results file {self.path} does not exist; run without --resume "
                f"to start a new run"
            )
        f = _open_hdf5(self.path, "r+", "results file")
        try:
            _check_layout(f, self.path)
            self._file = f
            self._attach_existing()
            self._truncate_after(resume_after_s)
            ns = f["nanosim"]
            ns.attrs["status"] = "running"
            history = json.loads(_attr_str(ns, "resumes_json", "[]"))
            history.append(
                {
                    "after_s": resume_after_s,
                    "utc": _utc_now(),
                    "provenance": json.loads(provenance_json),
                }
            )
            ns.attrs["resumes_json"] = json.dumps(history)
            f.flush()
        except BaseException:
            self._file = None
            f.close()
            raise

    def _attach_existing(self) -> None:
        f = self._file
        vtk = f["VTKHDF"]
        nz, ny, nx = self._shape_zyx
        mismatches = []
        extent = [int(v) for v in vtk.attrs["WholeExtent"]]
        if extent != [0, nx, 0, ny, 0, nz]:
            mismatches.append(f"grid extent {extent} vs [0, {nx}, 0, {ny}, 0, {nz}]")
        spacing = float(np.asarray(vtk.attrs["Spacing"])[0])
        if not math.isclose(spacing, self._voxel_size_m, rel_tol=1e-12):
            mismatches.append(f"voxel size {spacing} m vs {self._voxel_size_m} m")
        origin = tuple(float(v) for v in vtk.attrs["Origin"])
        if not np.allclose(origin, self._origin_m, rtol=1e-12, atol=1e-15):
            mismatches.append(f"origin {origin} m vs {self._origin_m} m")
        stored_names = json.loads(_attr_str(f["nanosim"], "field_names_json"))
        if stored_names != self._field_names:
            mismatches.append(f"fields {stored_names} vs {self._field_names}")
        cell_data = vtk["CellData"]
        for name in stored_names:
            if name in cell_data and cell_data[name].dtype != self._dtype:
                mismatches.append(f"field {name!r} dtype {cell_data[name].dtype} vs {self._dtype}")
                break
        if mismatches:
            raise ValueError(
                f"cannot resume into {self.path}: it was written for a different run "
                f"({'; '.join(mismatches)}); use -o another path or --overwrite to start over"
            )
        offsets = vtk["Steps/CellDataOffsets"]
        for name in self._field_names:
            if name not in cell_data or name not in offsets:
                self._create_field(name)
            else:
                self._fields[name] = cell_data[name]
                self._offsets[name] = offsets[name]
        for name in cell_data:
            if name not in self._fields and name in offsets:
                self._static_offsets[name] = offsets[name]
        self._metrics = dict(f["nanosim/metrics"].items())

    def _truncate_after(self, resume_after_s: float) -> None:
        steps = self._file["VTKHDF/Steps"]
        n = _committed_steps(self._file["VTKHDF"], self._field_names)
        times = steps["Values"][:n]
        if np.any(np.diff(times) <= 0):
            raise ValueError(f"cannot resume {self.path}: its output times do not increase")
        keep = int(np.count_nonzero(times <= resume_after_s))
        for dataset in (
            *self._fields.values(),
            *self._offsets.values(),
            *self._static_offsets.values(),
            *self._metrics.values(),
            steps["Values"],
        ):
            dataset.resize(keep, axis=0)
        steps.attrs.modify("NSteps", np.int64(keep))
        self._n_steps = keep
        self._last_time_s = float(times[keep - 1]) if keep else -math.inf

    # ------------------------------------------------------------------ writing

    @property
    def n_steps(self) -> int:
        """Number of output steps in the file."""
        return self._n_steps

    def write_static(self, name: str, array) -> None:
        """Store a time-independent cell array (e.g. the region map), shown at every step.

        Parameters
        ----------
        name : str
            Array name; must not be one of the time-dependent field names.
        array : array_like, shape (nz, ny, nx)
            Integer, float or boolean values (booleans are stored as uint8). Its dtype is kept.
        """
        f = self._require_open()
        _check_name(name, "static array")
        if name in self._fields:
            raise ValueError(
                f"{name!r} is a time-dependent field; give the static array another name"
            )
        data = self._cell_array(array, f"static array {name!r}", None)
        cell_data = f["VTKHDF/CellData"]
        if name in cell_data:
            existing = cell_data[name]
            if existing.shape[1:] == data.shape and existing.dtype == data.dtype:
                existing[0] = data
                f.flush()
                return
            del cell_data[name]
            del f["VTKHDF/Steps/CellDataOffsets"][name]
        cell_data.create_dataset(
            name,
            data=data[np.newaxis],
            chunks=_slab_chunks(self._shape_zyx, data.dtype.itemsize),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        # Every step points at slab 0, so VTK shows the one copy at all times.
        offsets_group = f["VTKHDF/Steps/CellDataOffsets"]
        self._static_offsets[name] = _series(offsets_group, name, "i8", self._n_steps, 0)
        f.flush()

    def write_group(self, name: str, fill) -> None:
        """Create (or replace) the group ``/nanosim/<name>`` and let ``fill(group)`` write into it.

        Used for data that is not a field on the grid: the vessel network with its flow
        solution, solver reports. Flushed at once, so a killed run keeps it.
        """
        f = self._require_open()
        _check_name(name, "group")
        ns = f["nanosim"]
        if name in ("metrics", "scenario_text", "scenario_json"):
            raise ValueError(f"/nanosim/{name} is reserved; give the group another name")
        if name in ns:
            del ns[name]
        fill(ns.create_group(name))
        f.flush()

    def write_snapshot(self, time_s: float, arrays: dict) -> None:
        """Append a particle snapshot as ``/nanosim/particles/NNNNN`` (attribute ``time_s``), flushed.

        ``arrays`` maps names (``id``, ``state``, ``weight``, ``x_m``…) to 1-D arrays of one length.
        """
        f = self._require_open()
        ns = f["nanosim"]
        grp = ns.require_group("particles")
        name = f"{len(grp):05d}"
        g = grp.create_group(name)
        g.attrs["time_s"] = float(time_s)
        for key, arr in arrays.items():
            _check_name(key, "snapshot array")
            a = np.asarray(arr)
            g.create_dataset(key, data=a, compression="gzip" if a.size > 1024 else None,
                             shuffle=a.size > 1024)
        f.flush()

    def write_step(self, time_s: float, fields: dict, metrics: dict) -> None:
        """Append one output step and flush it to disk.

        Parameters
        ----------
        time_s : float
            Simulated time of the step, s; must exceed the previous step's time.
        fields : dict of str to array_like
            One ``(nz, ny, nx)`` array for each of ``field_names`` (NumPy, or CuPy arrays,
            which are copied to the host).
        metrics : dict of str to float
            Scalar time series values at this step. A name not seen before starts a new
            series (NaN at earlier steps); a known name left out is NaN at this step.
        """
        f = self._require_open()
        time_s = float(time_s)
        if not math.isfinite(time_s):
            raise ValueError(f"time_s must be finite, got {time_s!r}")
        if time_s <= self._last_time_s:
            raise ValueError(
                f"output times must increase: step at t = {time_s!r} s follows t = "
                f"{self._last_time_s!r} s"
            )
        missing = [n for n in self._field_names if n not in fields]
        unknown = [n for n in fields if n not in self._fields]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown {', '.join(map(str, unknown))}")
            raise ValueError(
                f"write_step fields must be exactly {self._field_names}: {'; '.join(parts)}"
            )
        # Validate everything before writing anything, so bad input never leaves half a step.
        slabs = {
            n: self._cell_array(fields[n], f"field {n!r}", self._dtype) for n in self._field_names
        }
        values = {}
        for name, value in metrics.items():
            _check_name(name, "metric")
            try:
                values[name] = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"metric {name!r} must be a number, got {value!r}") from None

        k = self._n_steps
        for name, slab in slabs.items():
            _append(self._fields[name], k, slab)
            _append(self._offsets[name], k, k)
        for offsets in self._static_offsets.values():
            _append(offsets, k, 0)
        metrics_group = f["nanosim/metrics"]
        for name in values:
            if name not in self._metrics:
                self._metrics[name] = _series(metrics_group, name, "f8", k, np.nan)
        for name, series in self._metrics.items():
            _append(series, k, values.get(name, np.nan))
        steps = f["VTKHDF/Steps"]
        _append(steps["Values"], k, time_s)
        # NSteps last: until it changes, readers ignore the partly written step.
        steps.attrs.modify("NSteps", np.int64(k + 1))
        f.flush()
        self._n_steps = k + 1
        self._last_time_s = time_s

    def finish(self, status: str, summary: dict) -> None:
        """Record how the run ended and close the file.

        Parameters
        ----------
        status : {"completed", "failed", "interrupted"}
            Final state of the run.
        summary : dict
            JSON-serialisable summary (final metrics, wall time, ...).
        """
        f = self._require_open()
        if status not in STATUSES or status == "running":
            raise ValueError(
                f"status must be one of completed, failed, interrupted; got {status!r}"
            )
        summary_json = to_json(summary, "summary")
        ns = f["nanosim"]
        _write_text(ns, "summary", summary_json)
        ns.attrs["finished_utc"] = _utc_now()
        ns.attrs["status"] = status
        self._finished = True
        self.close()

    def close(self) -> None:
        """Flush and close the file (idempotent). The status is left as it is."""
        if self._file is not None:
            f, self._file = self._file, None
            try:
                f.flush()
            finally:
                f.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and not self._finished and self._file is not None:
            # Ctrl-C and SIGTERM handlers that exit are stops, not errors.
            stopped = issubclass(exc_type, (KeyboardInterrupt, SystemExit))
            status = "interrupted" if stopped else "failed"
            try:
                self.finish(status, {"error": f"{exc_type.__name__}: {exc}"})
            except Exception:
                pass  # the original exception matters more than a failed bookkeeping write
        self.close()
        return False

    def __repr__(self) -> str:
        state = "closed" if self._file is None else "open"
        return f"ResultsWriter({str(self.path)!r}, {self._n_steps} steps, {state})"


# --------------------------------------------------------------------------- reader


class Results:
    """Read-only view of a results file; fields are read from disk only when asked for.

    Use :func:`open_results` to create one.

    Attributes
    ----------
    path : pathlib.Path
    shape_xyz : tuple of int
        Voxel counts ``(nx, ny, nz)``.
    voxel_size_m : float
        Voxel edge length, m.
    origin_m : tuple of float
        ``(x, y, z)`` of the domain's lower corner, m.
    times_s : numpy.ndarray
        Simulated time of each output step, s.
    field_names : list of str
        Time-dependent fields.
    static_names : list of str
        Time-independent arrays.
    metrics : dict of str to numpy.ndarray
        Float64 time series aligned with ``times_s``.
    scenario_text, scenario_json : str
    provenance : dict
    status : str
        One of :data:`STATUSES`; "running" also means the writer stopped without finishing.
    summary : dict
        Written at the end of the run; empty if the run did not finish.

    Examples
    --------
    >>> res = open_results("run.h5")  # doctest: +SKIP
    >>> print(res)  # doctest: +SKIP
    Results run.h5
    ├── grid: 6 × 5 × 4 voxels (x, y, z), voxel 1e-05 m, origin (0, 0, 0) m
    ├── steps: 3, t = 0 s … 7200 s
    ├── fields (float32): released_drug
    ├── static: region
    ├── metrics: tumour_auc
    └── status: completed
    >>> c = res.field("released_drug", time_s=3600.0)  # (nz, ny, nx)  # doctest: +SKIP
    >>> res.close()  # doctest: +SKIP
    """

    def __init__(self, path) -> None:
        self.path = Path(path)
        self._file: h5py.File | None = _open_hdf5(self.path, "r", "results file")
        try:
            self._load_metadata()
        except BaseException:
            self.close()
            raise

    def _load_metadata(self) -> None:
        f = self._file
        _check_layout(f, self.path)
        vtk = f["VTKHDF"]
        ns = f["nanosim"]
        extent = [int(v) for v in vtk.attrs["WholeExtent"]]
        self.shape_xyz = (extent[1] - extent[0], extent[3] - extent[2], extent[5] - extent[4])
        self.voxel_size_m = float(np.asarray(vtk.attrs["Spacing"])[0])
        self.origin_m = tuple(float(v) for v in vtk.attrs["Origin"])
        self.field_names = list(json.loads(_attr_str(ns, "field_names_json")))
        cell_data = vtk["CellData"]
        self.static_names = sorted(n for n in cell_data if n not in self.field_names)
        self._n = _committed_steps(vtk, self.field_names)
        self.times_s = np.asarray(vtk["Steps/Values"][: self._n], dtype=np.float64)
        self.metrics = {}
        for name, series in ns["metrics"].items():
            values = np.full(self._n, np.nan)
            m = min(self._n, series.shape[0])
            values[:m] = series[:m]
            self.metrics[name] = values
        self.scenario_text = _read_text(ns, "scenario_text") or ""
        self.scenario_json = _read_text(ns, "scenario_json") or ""
        self.provenance = json.loads(_attr_str(ns, "provenance_json", "{}"))
        self.status = _attr_str(ns, "status", "running")
        summary = _read_text(ns, "summary")
        self.summary = json.loads(summary) if summary else {}

    @property
    def n_steps(self) -> int:
        """Number of output steps."""
        return self._n

    @property
    def dtype(self) -> np.dtype | None:
        """Storage type of the time-dependent fields (None if there are none)."""
        if not self.field_names:
            return None
        return self._open()["VTKHDF/CellData"][self.field_names[0]].dtype

    def _open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError(f"results file {self.path} is closed")
        return self._file

    def _step_index(self, step: int, time_s: float | None) -> int:
        n = self._n
        if n == 0:
            raise IndexError(f"{self.path} holds no output steps yet")
        if time_s is not None:
            t = float(time_s)
            k = int(np.argmin(np.abs(self.times_s - t)))
            spacing = float(np.min(np.diff(self.times_s))) if n > 1 else 0.0
            tol = 1e-6 * max(spacing, abs(t), abs(float(self.times_s[k])), 1e-300)
            if abs(float(self.times_s[k]) - t) > tol:
                below = self.times_s[self.times_s < t]
                above = self.times_s[self.times_s > t]
                near = [f"{v:g} s" for v in (*below[-1:], *above[:1])]
                raise ValueError(
                    f"no output step at t = {t:g} s in {self.path}; nearest: {', '.join(near)} "
                    f"(outputs span {self.times_s[0]:g} s to {self.times_s[-1]:g} s)"
                )
            return k
        k = int(step)
        if not -n <= k < n:
            raise IndexError(f"step {step} is out of range: {self.path} has {n} output steps")
        return k % n

    def field(self, name: str, step: int = -1, time_s: float | None = None) -> np.ndarray:
        """Read one field at one output step.

        Parameters
        ----------
        name : str
            One of :attr:`field_names`.
        step : int, optional
            Output step index (negative counts from the end); default the last step.
        time_s : float, optional
            Pick the step with this time instead, s (must match an output time).

        Returns
        -------
        numpy.ndarray, shape (nz, ny, nx)
        """
        f = self._open()
        if name not in self.field_names:
            hint = "; it is a static array, use static()" if name in self.static_names else ""
            raise KeyError(
                f"no field {name!r} in {self.path}{hint}; fields: {', '.join(self.field_names)}"
            )
        k = self._step_index(step, time_s)
        vtk = f["VTKHDF"]
        offset = int(vtk["Steps/CellDataOffsets"][name][k])
        return vtk["CellData"][name][offset]

    def static(self, name: str) -> np.ndarray:
        """Read a time-independent array, shape (nz, ny, nx)."""
        f = self._open()
        if name not in self.static_names:
            hint = "; it is a time-dependent field, use field()" if name in self.field_names else ""
            raise KeyError(
                f"no static array {name!r} in {self.path}{hint}; static arrays: "
                f"{', '.join(self.static_names) or '(none)'}"
            )
        return f["VTKHDF/CellData"][name][0]

    def group_names(self) -> list[str]:
        """Groups stored under /nanosim besides the metrics (e.g. ``network``)."""
        ns = self._open()["nanosim"]
        return [k for k in ns if isinstance(ns[k], h5py.Group) and k != "metrics"]

    def particle_snapshots(self) -> list[tuple[float, dict]]:
        """The carrier particle snapshots: ``[(time_s, {"id": …, "state": …, "x_m": …}), …]`` in time order."""
        ns = self._open()["nanosim"]
        if "particles" not in ns:
            return []
        grp = ns["particles"]
        return [(float(grp[k].attrs["time_s"]), {n: grp[k][n][()] for n in grp[k]}) for k in sorted(grp)]

    def vasculature_summary(self) -> dict:
        """What the vessel-network build reported (counts, flows, fluid balance, timings); {} if none."""
        ns = self._open()["nanosim"]
        if "network" not in ns:
            return {}
        return json.loads(ns["network"].attrs.get("summary_json", "{}"))

    def network(self):
        """The vessel network stored with the run, and its per-segment and per-node results.

        Returns
        -------
        network : nanosim.vasculature.VesselNetwork
        segment_data, node_data : dict of str to numpy.ndarray
            E.g. ``flow_m3_per_s``, ``velocity_m_per_s`` per segment, ``pressure_pa`` per node.
        """
        from ..vasculature.io import load_network_h5

        f = self._open()
        if "network" not in f["nanosim"] or "seg_nodes" not in f["nanosim/network"]:
            raise KeyError(f"{self.path} holds no vessel network (the scenario had no [network] with vessels)")
        return load_network_h5(f["nanosim/network"], with_extra=True)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            f, self._file = self._file, None
            f.close()

    def __enter__(self) -> "Results":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        nx, ny, nz = self.shape_xyz
        origin = ", ".join(f"{v:g}" for v in self.origin_m)
        if self._n:
            steps = f"{self._n}, t = {self.times_s[0]:g} s … {self.times_s[-1]:g} s"
        else:
            steps = "0"
        dtype = self.dtype if self._file is not None else None
        dtype_note = f" ({dtype})" if dtype is not None else ""
        lines = [
            f"grid: {nx} × {ny} × {nz} voxels (x, y, z), voxel {self.voxel_size_m:g} m, "
            f"origin ({origin}) m",
            f"steps: {steps}",
            f"fields{dtype_note}: {', '.join(self.field_names) or '(none)'}",
            f"static: {', '.join(self.static_names) or '(none)'}",
            f"metrics: {', '.join(self.metrics) or '(none)'}",
            f"status: {self.status}",
        ]
        tree = [f"Results {self.path}"]
        tree += [f"├── {line}" for line in lines[:-1]]
        tree.append(f"└── {lines[-1]}")
        return "\n".join(tree)


def open_results(path) -> Results:
    """Open a results file for reading.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Results

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a nanosim results file; the message says what is missing.
    """
    return Results(os.fspath(path))
