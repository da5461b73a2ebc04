"""A description of the machine and software a benchmark ran on (stored in the JSON)."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
from typing import Any

_PACKAGES = ("metriccore", "numpy", "pyarrow", "polars", "duckdb", "pandas", "pytest_benchmark")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return str(importlib.import_module(name).__version__)
    except Exception:
        return None


def _git_commit() -> str | None:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def describe() -> dict[str, Any]:
    """CPU model, core counts, memory, load, OS, Python and library versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "mem_total_gib": _mem_total_gib(),
        "load_average_at_start": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "git": _git_commit(),
        "env": {k: os.environ[k] for k in ("METRICCORE_NUM_THREADS", "POLARS_MAX_THREADS",
                                            "OMP_NUM_THREADS") if k in os.environ},
    }


def one_line(info: dict[str, Any]) -> str:
    """E.g. ``Intel Xeon ... (2 CPUs usable of 2, 23.0 GiB), Linux 6.1, Python 3.11.9``."""
    v = info.get("versions", {})
    libs = ", ".join(f"{k} {v[k]}" for k in ("metriccore", "numpy", "pyarrow", "polars",
                                                 "duckdb", "pandas") if v.get(k))
    return (f"{info.get('cpu_model')} ({info.get('usable_cpus')} CPUs usable of "
            f"{info.get('logical_cpus')}, {info.get('mem_total_gib')} GiB RAM), "
            f"{info.get('os')}, Python {info.get('python')}; {libs}; "
            f"metriccore git {info.get('git')}; load average at start "
            f"{info.get('load_average_at_start')}")
