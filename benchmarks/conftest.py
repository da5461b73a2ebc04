"""pytest configuration of the benchmark suite.

- Collects ``bench_*.py`` as well as ``test_*.py`` in this folder.
- ``dataset`` fixture: ``benchdata.load_dataset(loans, officers)``, the cached synthetic loan
  snapshot with metriccore's result (see ``benchdata.py`` for the environment variables
  ``METRICCORE_BENCH_LARGE``, ``METRICCORE_BENCH_SIZES`` and ``METRICCORE_BENCH_SECONDS``).
- Records a description of the machine (CPU model, cores, memory, load, library versions) in
  the benchmark JSON under ``machine_info["metriccore_bench"]``, for ``report.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchdata
import machine


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("python_files", "bench_*.py")
    json_path = config.getoption("benchmark_json", None)
    if json_path:   # pytest-benchmark writes it at the very end: make its folder now
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    config.addinivalue_line(
        "markers", "large: 10M-loan benchmarks; run with METRICCORE_BENCH_LARGE=1")


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    machine_info["metriccore_bench"] = machine.describe()


@pytest.fixture(scope="session")
def dataset() -> Callable[[int, int], benchdata.Dataset]:
    return benchdata.load_dataset
