"""Checkpoint files: the full simulation state, written atomically.

A checkpoint is an HDF5 file with one dataset per state array under ``/arrays`` (stored
uncompressed, bit for bit) and the JSON-serialisable scalars (time, step, RNG counters, ...)
in the root attribute ``attrs_json``. :func:`save_checkpoint` writes a temporary file next
to the target, flushes and fsyncs it, then renames it over the target with
:func:`os.replace`, so at every instant ``path`` is either the previous complete checkpoint
or the new complete one, even if the process is killed or the machine loses power.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from nanosim.io.results import LIBVER, to_json

__all__ = ["save_checkpoint", "load_checkpoint"]

FORMAT_NAME = "nanosim-checkpoint"
FORMAT_VERSION = 1


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; folders cannot be opened like this on Windows.
    if os.name == "posix":
        _fsync_path(folder)


def _check_array(name: Any, array: Any) -> np.ndarray:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(
            f"checkpoint array name {name!r} is invalid: use a non-empty string without '/'"
        )
    if hasattr(array, "__cuda_array_interface__") and hasattr(array, "get"):
        array = array.get()
    array = np.asarray(array)
    if array.dtype.kind not in "biufc":
        raise ValueError(
            f"checkpoint array {name!r} has dtype {array.dtype}; only numeric and boolean "
            f"arrays can be checkpointed"
        )
    return array


def save_checkpoint(path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> None:
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint file; replaced only once the new checkpoint is completely on disk.
    arrays : dict of str to numpy.ndarray
        State arrays (numeric or boolean; CuPy arrays are copied to the host). Stored
        exactly, dtype and bits included.
    attrs : dict
        JSON-serialisable values (simulated time, step, seed, RNG counters, ...).

    Raises
    ------
    TypeError
        ``attrs`` is not JSON-serialisable.
    ValueError
        An array name or dtype cannot be stored.
    FileNotFoundError
        The folder of ``path`` does not exist.
    """
    path = Path(path)
    attrs_json = to_json(dict(attrs), "checkpoint attrs")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write checkpoint {path}: folder {folder} does not exist")
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file owner-only; keep the permissions a plain create would give.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with h5py.File(tmp, "w", libver=LIBVER) as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["attrs_json"] = attrs_json
            group = f.create_group("arrays")
            for name, array in arrays.items():
                group.create_dataset(name, data=_check_array(name, array))
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    arrays : dict of str to numpy.ndarray
    attrs : dict

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a nanosim checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; run without --resume to start from the beginning"
        )
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not a nanosim checkpoint: it is not an HDF5 file")
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT_NAME or "arrays" not in f or "attrs_json" not in f.attrs:
            raise ValueError(
                f"{path} is not a nanosim checkpoint: missing root attribute "
                f"format='{FORMAT_NAME}', attrs_json or group /arrays"
            )
        version = int(f.attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise ValueError(
                f"checkpoint {path} has format version {version}, newer than this nanosim "
                f"reads ({FORMAT_VERSION}); upgrade nanosim"
            )
        arrays = {name: dataset[()] for name, dataset in f["arrays"].items()}
        arrays = {name: np.asarray(value) for name, value in arrays.items()}
        raw = f.attrs["attrs_json"]
        attrs = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return arrays, attrs
