"""Benchmark data sets and run settings, shared by ``conftest.py`` and the benchmarks.

``load_dataset(loans, officers)`` builds the synthetic loan snapshot of that size once and
caches it (only the latest one is kept, so memory stays at one data set; the benchmark cases
are ordered data set by data set), with metriccore's single-thread result, computed once
outside any timing, to check every contender against.

Environment
-----------
METRICCORE_BENCH_LARGE=1
    Also run the 10M-loan data sets (marker ``large``); skipped by default.
METRICCORE_BENCH_SIZES=1000,100000
    Only these loan counts (e.g. for a quick run).
METRICCORE_BENCH_SECONDS=2
    Rough time budget per slow benchmark: calls slower than 20 ms are timed with
    ``benchmark.pedantic`` and ``clamp(budget / first_call, 3, 15)`` rounds.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

import peers


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


LARGE = _flag("METRICCORE_BENCH_LARGE")
ONLY_SIZES: set[int] | None = (
    {int(s.replace("_", "")) for s in os.environ["METRICCORE_BENCH_SIZES"].split(",") if s.strip()}
    if os.environ.get("METRICCORE_BENCH_SIZES", "").strip() else None)
BUDGET_S = float(os.environ.get("METRICCORE_BENCH_SECONDS", "2") or 2)


@dataclass
class Dataset:
    """One benchmark input: the table, its keys and metriccore's (checked) result."""

    loans: int
    officers: int
    by: str
    table: pa.Table
    expected: pa.Table
    _views: list[Any] | None = field(default=None, repr=False)

    @property
    def views(self) -> list[Any]:
        """numpy views of every used buffer (for the read-once floor), made once."""
        if self._views is None:
            self._views = peers.floor_views(self.table, self.by)
        return self._views

    @property
    def input_bytes(self) -> int:
        return peers.floor_bytes(self.views)


_cache: dict[tuple[int, int], Dataset] = {}


def load_dataset(loans: int, officers: int) -> Dataset:
    key = (loans, officers)
    if key not in _cache:
        _cache.clear()          # keep one data set in memory at a time
        gc.collect()
        import metriccore
        from metriccore.synthetic import loan_snapshot

        table = loan_snapshot(loans, n_officers=officers)
        expected = metriccore.officer_metrics(table, by="officer_id", threads=1)
        _cache[key] = Dataset(loans, officers, "officer_id", table, expected)
    return _cache[key]
