"""What a benchmark ran on: CPU, caches, memory, threads, versions, date (never the host name)."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path


def _cpuinfo_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _caches() -> dict:
    """Cache sizes of CPU 0 by level and type, e.g. ``{"L1d": "32K", "L2": "1024K"}`` (Linux)."""
    out = {}
    for d in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (d / "level").read_text().strip()
            kind = (d / "type").read_text().strip()
            size = (d / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[f"L{level}{suffix}"] = size
    return out


def _memory_gib():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def loadavg():
    """The 1-, 5- and 15-minute load averages, or None where the system does not say."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(backends=None) -> dict:
    """A JSON-serialisable description of the machine and the software that ran the benchmark.

    ``backends`` maps names to the :class:`~nanosim.backends.Backend` objects measured; a GPU
    among them adds its name and the CuPy version.
    """
    import numba
    import numpy

    from .. import __version__, _numba_target

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpuinfo_model(),
        "cpu_cores": cores,
        "cpu_flags_simd": _simd_flags(),
        "caches": _caches(),
        "memory_GiB": _memory_gib(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "numba_vector_bits": _numba_target.STATE["vector_bits"],
        "os": f"{platform.system()} {platform.release()}",
        "versions": {"nanosim": __version__, "python": platform.python_version(),
                     "numpy": numpy.__version__, "numba": numba.__version__},
        "loadavg": loadavg(),
    }
    gpu = (backends or {}).get("cupy")
    if gpu is not None:
        info["gpu"] = gpu.device
        info["versions"]["cupy"] = gpu.xp.__version__
    return info


def _simd_flags() -> list:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    m = re.search(r"^flags\s*:(.*)$", text, re.M)
    flags = set(m.group(1).split()) if m else set()
    return sorted(f for f in flags if f in {"sse4_2", "avx", "avx2", "fma", "avx512f"})


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return None


def label(info: dict) -> str:
    """A file-name label from the CPU model and core count, e.g. ``amd-epyc-2c`` (no host name)."""
    model = re.sub(r"\(.*?\)|processor|cpu|\d+-core", " ", info["cpu_model"], flags=re.I)
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") or "cpu"
    return f"{slug}-{info['cpu_cores']}c"
