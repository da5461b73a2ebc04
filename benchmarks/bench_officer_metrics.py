"""Benchmarks: per-group loan metrics from one Arrow table, metriccore versus its peers.

Every case is one (data set, contender) pair. Data sets are ``metriccore.synthetic``
loan snapshots grouped by ``officer_id``; contenders compute the same per-group aggregates,
metrics, scores and bands (see README.md in this folder). Before timing, each contender runs
once and its result is checked against metriccore's (``peers.check_peer`` for the peers,
bitwise equality for metriccore and the reference), so a wrong contender cannot win.

Run ``pytest benchmarks`` (1K, 100K and 1M loans); ``METRICCORE_BENCH_LARGE=1`` adds 10M.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

import peers
from benchdata import BUDGET_S, LARGE, ONLY_SIZES


class Case(NamedTuple):
    loans: int
    officers: int
    contender: str


#: (loans, officers): 1,000 officers at every size, and 100,000 officers (groups) at 1M and
#: 10M loans.
DATA_SETS = [(1_000, 1_000), (100_000, 1_000), (1_000_000, 1_000), (1_000_000, 100_000),
             (10_000_000, 1_000), (10_000_000, 100_000)]
CONTENDERS = ["metriccore-1t", "metriccore-2t", "reference", "pyarrow", "polars", "duckdb",
              "pandas", "floor"]
REFERENCE_MAX_LOANS = 100_000
LARGE_LOANS = 10_000_000
#: A first call faster than this is timed in pytest-benchmark's calibrated mode.
FAST_S = 0.02


def _label(n: int) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "K")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def _cases() -> list[Any]:
    out = []
    for loans, officers in DATA_SETS:     # data set major: each table is built once
        if ONLY_SIZES is not None and loans not in ONLY_SIZES:
            continue
        for contender in CONTENDERS:
            if contender == "reference" and loans > REFERENCE_MAX_LOANS:
                continue
            marks = []
            if loans >= LARGE_LOANS:
                marks.append(pytest.mark.large)
                if not LARGE:
                    marks.append(pytest.mark.skip(reason="10M loans: set METRICCORE_BENCH_LARGE=1"))
            out.append(pytest.param(Case(loans, officers, contender), marks=marks,
                                    id=f"{_label(loans)}_loans-{_label(officers)}_officers-"
                                       f"{contender}"))
    return out


def _contender(case: Case, data: Any) -> tuple[Callable[[], Any], Callable[[Any], Any], Any]:
    """(the timed call, the check of its result, the thread count recorded)."""
    table, by, expected = data.table, data.by, data.expected

    def same_as_engine(result: Any) -> dict[str, Any]:
        assert result.equals(expected), f"{case.contender} differs from metriccore"
        return {"identical": True}

    if case.contender.startswith("metriccore-"):
        import metriccore

        threads = int(case.contender.split("-")[1].rstrip("t"))
        return (lambda: metriccore.officer_metrics(table, by=by, threads=threads),
                same_as_engine, threads)
    if case.contender == "reference":
        from metriccore import reference

        return lambda: reference.officer_metrics(table, by=by), same_as_engine, 1
    if case.contender == "floor":
        views = data.views
        return lambda: peers.read_once(views), lambda result: {}, 1
    module, fn = peers.PEERS[case.contender]
    pytest.importorskip(module)
    return (lambda: fn(table, by),
            lambda result: peers.check_peer(result, expected, by),
            "library default")


@pytest.mark.parametrize("case", _cases())
def test_officer_metrics(benchmark: Any, dataset: Any, case: Case) -> None:
    data = dataset(case.loans, case.officers)
    call, check, threads = _contender(case, data)

    # One untimed call: warms up (imports, thread pools, caches) and is checked.
    start = time.perf_counter()
    result = call()
    first_s = time.perf_counter() - start
    summary = check(result)
    del result
    if first_s < 1.0:   # the first call may include imports and warm-up: time a second one
        start = time.perf_counter()
        call()
        first_s = min(first_s, time.perf_counter() - start)

    benchmark.group = f"{_label(case.loans)} loans, {_label(case.officers)} officers"
    benchmark.extra_info.update({
        "contender": case.contender,
        "loans": case.loans,
        "officers": case.officers,
        "groups": data.expected.num_rows,
        "by": data.by,
        "threads": threads,
        "input_bytes": data.input_bytes,
        "untimed_call_s": first_s,
        "check": summary,
    })
    if first_s < FAST_S:
        benchmark(call)
    else:
        rounds = max(3, min(15, int(BUDGET_S / first_s)))
        benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
