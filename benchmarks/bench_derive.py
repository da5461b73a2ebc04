"""How fast is ``metriccore.derive_snapshot`` (METRICS.md §5: raw loans + repayments -> the
loan snapshot as of a date) compared with the same derivation in DuckDB SQL and in polars
(``derive_peers.py``, checked against the reference by ``test_derive_peers_correct.py``)?

    python -m pytest benchmarks/bench_derive.py --benchmark-columns=min,median,max,rounds

Data: ``metriccore.synthetic.raw_loan_book(loans, 10)``, seed 0: ``loans`` loans and ten
times as many repayments in ledger order (by payment date), with the recorded split on 60%
of them, reversals and unknown ids; derived as of 2024-06-15 with four holidays. The tables
are built once per size, outside the timings; every contender reads the same pyarrow tables
and returns a pyarrow Table.

Settings (environment variables):

- ``METRICCORE_BENCH_DERIVE_LOANS``: loan counts, default ``1000000`` (e.g. ``100000,1000000``)
- ``METRICCORE_BENCH_THREADS``: threads of metriccore and of the peers, default 2. polars reads
  ``POLARS_MAX_THREADS`` when it is imported, so the module sets it first (if unset).
"""

from __future__ import annotations

import datetime
import os
import sys

import pytest

THREADS = int(os.environ.get("METRICCORE_BENCH_THREADS", "2"))
os.environ.setdefault("POLARS_MAX_THREADS", str(THREADS))   # before polars is imported

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import derive_peers  # noqa: E402

import metriccore  # noqa: E402
from metriccore.synthetic import DEFAULT_AS_OF, raw_loan_book  # noqa: E402

SIZES = [int(s) for s in os.environ.get("METRICCORE_BENCH_DERIVE_LOANS", "1000000").split(",")]
HOLIDAYS = [datetime.date(2024, 1, 1), datetime.date(2024, 4, 1), datetime.date(2024, 5, 27),
            datetime.date(2024, 6, 12)]
_BOOKS: dict[int, tuple] = {}


def book(n: int):
    if n not in _BOOKS:
        _BOOKS.clear()                       # one size in memory at a time
        _BOOKS[n] = raw_loan_book(n, 10)
    return _BOOKS[n]


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}K"


def run(benchmark, fn, rounds: int):
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    assert result.num_rows > 0
    return result


@pytest.mark.parametrize("n", SIZES, ids=_label)
@pytest.mark.parametrize("threads", sorted({1, THREADS}))
def test_metriccore(benchmark, n, threads):
    loans, repayments = book(n)
    benchmark.group = f"derive {_label(n)} loans"
    benchmark.extra_info.update(loans=n, repayments=repayments.num_rows, threads=threads)
    run(benchmark, lambda: metriccore.derive_snapshot(loans, repayments, DEFAULT_AS_OF,
                                                      holidays=HOLIDAYS, threads=threads), 7)


@pytest.mark.parametrize("n", SIZES, ids=_label)
def test_duckdb(benchmark, n):
    pytest.importorskip("duckdb")
    loans, repayments = book(n)
    benchmark.group = f"derive {_label(n)} loans"
    benchmark.extra_info.update(loans=n, repayments=repayments.num_rows, threads=THREADS)
    run(benchmark, lambda: derive_peers.duckdb_derive(loans, repayments, DEFAULT_AS_OF,
                                                      holidays=HOLIDAYS, threads=THREADS), 3)


@pytest.mark.parametrize("n", SIZES, ids=_label)
def test_polars(benchmark, n):
    pytest.importorskip("polars")
    loans, repayments = book(n)
    benchmark.group = f"derive {_label(n)} loans"
    benchmark.extra_info.update(loans=n, repayments=repayments.num_rows,
                                threads=os.environ["POLARS_MAX_THREADS"])
    run(benchmark, lambda: derive_peers.polars_derive(loans, repayments, DEFAULT_AS_OF,
                                                      holidays=HOLIDAYS), 3)


@pytest.mark.parametrize("n", [n for n in SIZES if n <= 20_000] or [10_000], ids=_label)
def test_reference(benchmark, n):
    """The pure-Python reference, on a small book only (about 100,000 rows a second)."""
    loans, repayments = book(n)
    benchmark.group = f"derive {_label(n)} loans"
    run(benchmark, lambda: metriccore.reference.derive_snapshot(
        loans, repayments, DEFAULT_AS_OF, holidays=HOLIDAYS), 1)
