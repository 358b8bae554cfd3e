"""Fixtures of the simulation-loop tests."""

import copy

import pytest
from _loop_models import TINY


@pytest.fixture
def tiny():
    """The tiny scenario as a mapping (a fresh copy for each test)."""
    return copy.deepcopy(TINY)
