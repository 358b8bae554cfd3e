"""``nanosim info``: versions, backends usable here, and GPUs seen.

Example::

    $ nanosim info
    nanosim 0.1.0 on Python 3.11.7 (Linux x86_64), 2 CPU cores
    ├── numpy 2.4.6, numba 0.68.1, h5py 3.16.0 (HDF5 2.0.0), pydantic 2.14.4
    └── backends
        ├── numpy: ok: cpu
        ├── numba: ok: cpu (2 threads, vector width 512 (set by nanosim))
        └── cupy: cupy backend unavailable: cannot import cupy ...
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata


def add_parser(sub):
    p = sub.add_parser("info", help="versions, usable backends and GPUs", description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=main)
    return p


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def collect() -> dict:
    from .. import __version__, _numba_target
    from ..backends import available_backends

    import h5py
    import numba

    pkgs = {p: _version(p) for p in ("numpy", "numba", "numba-cuda", "h5py", "pydantic", "scipy", "cupy-cuda12x",
                                      "cupy-cuda13x", "vtk", "pyvista")}
    return {
        "nanosim": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu_cores": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_vector_bits": _numba_target.STATE["vector_bits"],
        "hdf5": h5py.version.hdf5_version,
        "packages": {k: v for k, v in pkgs.items() if v},
        "backends": available_backends(),
    }


def main(args) -> int:
    d = collect()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    pk = ", ".join(f"{k} {v}" for k, v in d["packages"].items())
    print(f"nanosim {d['nanosim']} on Python {d['python']} ({d['platform']}), {d['cpu_cores']} CPU cores")
    print(f"├── {pk} (HDF5 {d['hdf5']})")
    print("└── backends")
    items = list(d["backends"].items())
    for i, (k, v) in enumerate(items):
        extra = (f" ({d['numba_threads']} threads, vector width {d['numba_vector_bits']})"
                 if k == "numba" and v.startswith("ok") else "")
        print(f"    {'└' if i == len(items) - 1 else '├'}── {k}: {v}{extra}")
    return 0
