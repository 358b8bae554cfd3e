"""Fixtures of the command-line tests."""

import pytest
from _cli_helpers import write_scenario

from nanosim.cli import main

# The run that the interrupted and killed runs are compared with: 40 steps, an output every
# 0.1 s, a checkpoint every 0.5 s of simulated time.
LONG = dict(stop_s=2.0, every_s=0.1, output_extra="checkpoint_every_s = \"0.5 s\"")


@pytest.fixture
def scenario(tmp_path):
    """A tiny scenario file: 20 steps to 1 s, an output every 0.1 s."""
    return write_scenario(tmp_path / "tiny.toml")


@pytest.fixture
def long_scenario(tmp_path):
    return write_scenario(tmp_path / "long.toml", **LONG)


@pytest.fixture(scope="session")
def reference_runs(tmp_path_factory):
    """Uninterrupted runs of the LONG scenario, one results file per backend (made when first asked)."""
    folder = tmp_path_factory.mktemp("reference")
    done = {}

    def get(backend):
        if backend not in done:
            path = folder / f"{backend}.h5"
            code = main(["run", str(write_scenario(folder / "long.toml", **LONG)), "-o", str(path),
                         "--backend", backend, "--quiet"])
            assert code == 0
            done[backend] = path
        return done[backend]

    return get
