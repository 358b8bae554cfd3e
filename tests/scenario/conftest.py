"""Shared fixtures of the scenario tests."""

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """Folder of the scenario files used by these tests."""
    return DATA


@pytest.fixture
def base() -> dict:
    """A minimal valid scenario as a mapping (a fresh copy for each test)."""
    return {
        "grid": {"shape": [8, 8, 1], "voxel_size_m": "10 um"},
        "drug": {"normal": {"diffusivity_m2_per_s": "2e-10 m^2/s"}},
        "time": {"stop_s": "1 h"},
    }
