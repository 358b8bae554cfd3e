"""Checkpoints: bitwise round trip, atomic replacement, clear errors."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nanosim.io import load_checkpoint, save_checkpoint

HERE = Path(__file__).parent


def state(seed):
    rng = np.random.default_rng(seed)
    bits64 = rng.integers(0, 2**64 - 1, size=50, dtype=np.uint64, endpoint=True)
    bits32 = rng.integers(0, 2**32 - 1, size=(5, 7), dtype=np.uint32, endpoint=True)
    return {
        # Arbitrary bit patterns, NaN payloads and denormals included.
        "positions_m": bits64.view(np.float64),
        "concentration": bits32.view(np.float32),
        "region": rng.integers(0, 255, size=(3, 4, 5), dtype=np.uint8),
        "rng_counter": rng.integers(-(2**62), 2**62, size=9, dtype=np.int64),
        "alive": rng.random(11) < 0.5,
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.array(3.25),
    }


def assert_same_bits(got, expected):
    assert got.keys() == expected.keys()
    for name, array in expected.items():
        assert got[name].dtype == array.dtype, name
        assert got[name].shape == array.shape, name
        assert got[name].tobytes() == array.tobytes(), name


def test_round_trip_is_bitwise(tmp_path):
    path = tmp_path / "state.ckpt.h5"
    arrays = state(1)
    attrs = {"time_s": 12.5, "step": 250, "seed": 7, "counters": [1, 2, 3], "tag": "x",
             "n": np.int64(4)}
    save_checkpoint(path, arrays, attrs)
    got_arrays, got_attrs = load_checkpoint(path)
    assert_same_bits(got_arrays, arrays)
    assert got_attrs == {"time_s": 12.5, "step": 250, "seed": 7, "counters": [1, 2, 3],
                         "tag": "x", "n": 4}
    with h5py.File(path, "r") as f:
        assert all(ds.compression is None for ds in f["arrays"].values())


def test_failure_mid_write_keeps_old_checkpoint_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "state.ckpt.h5"
    old = state(1)
    save_checkpoint(path, old, {"step": 1})

    class Exploding(dict):
        """Yields one array, then fails, as a device copy or full disk would mid-write."""

        def items(self):
            yield "positions_m", state(2)["positions_m"]
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, Exploding(), {"step": 2})
    arrays, attrs = load_checkpoint(path)
    assert attrs == {"step": 1}
    assert_same_bits(arrays, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.ckpt.h5"]


def test_failure_before_rename_keeps_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "state.ckpt.h5"
    save_checkpoint(path, state(1), {"step": 1})

    def broken_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        save_checkpoint(path, state(2), {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)[1] == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.ckpt.h5"]


def test_sigkill_during_saves_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "state.ckpt.h5"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_kill_checkpointer.py"), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    announced = -1
    try:
        for line in proc.stdout:
            announced = int(line)
            if announced >= 8:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    announced = max([announced, *(int(v) for v in rest.split())])
    assert announced >= 8, err
    arrays, attrs = load_checkpoint(path)
    k = attrs["k"]
    # The last announced save, or the one after it if it completed before the kill.
    assert k in (announced, announced + 1)
    assert int(arrays["k"]) == k
    np.testing.assert_array_equal(arrays["x"], np.arange(200_000, dtype=np.float64) + k)


def test_missing_or_foreign_file_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint .*nothing.h5 does not exist"):
        load_checkpoint(tmp_path / "nothing.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="text.h5 is not a nanosim checkpoint: it is not an HDF5"):
        load_checkpoint(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ValueError, match="other.h5 is not a nanosim checkpoint: missing"):
        load_checkpoint(other)


def test_bad_input_is_rejected_before_touching_the_old_checkpoint(tmp_path):
    path = tmp_path / "state.ckpt.h5"
    save_checkpoint(path, {"a": np.arange(3)}, {"step": 1})
    with pytest.raises(TypeError, match="checkpoint attrs must be JSON-serialisable"):
        save_checkpoint(path, {"a": np.arange(4)}, {"when": object()})
    with pytest.raises(ValueError, match="name 'a/b' is invalid"):
        save_checkpoint(path, {"a/b": np.arange(4)}, {})
    with pytest.raises(ValueError, match="'obj' has dtype object"):
        save_checkpoint(path, {"obj": np.array([object()])}, {})
    with pytest.raises(FileNotFoundError, match="folder .*absent does not exist"):
        save_checkpoint(tmp_path / "absent" / "c.h5", {}, {})
    arrays, attrs = load_checkpoint(path)
    assert attrs == {"step": 1}
    np.testing.assert_array_equal(arrays["a"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.ckpt.h5"]
