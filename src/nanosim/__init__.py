"""nanosim: simulator of nanoparticle drug delivery to liver tumours.

Python interface::

    import nanosim
    scenario = nanosim.load_scenario("scenarios/quickstart.toml")
    results = nanosim.run(scenario, "quickstart.h5", backend="auto")
    results.field("free_drug", time_s=60.0)

``import nanosim`` never imports CuPy.
"""

__version__ = "0.1.0"

from . import _numba_target

# before anything imports Numba: it fixes its code generation on import (see _numba_target)
_numba_target.configure()

__all__ = ["__version__", "load_scenario", "run", "open_results"]


def __getattr__(name):
    # lazy: keep `import nanosim` light (no numba compilation, no h5py until needed)
    if name == "load_scenario":
        from .scenario import load_scenario

        return load_scenario
    if name == "run":
        from .runner import run

        return run
    if name == "open_results":
        from .io import open_results

        return open_results
    raise AttributeError(f"module 'nanosim' has no attribute {name!r}")
