"""The compiled engine against the pure-Python reference: equal tables bit for bit, equal
portfolio dicts, and the same exception (type and message) whenever the reference raises."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import strategies as S
from metriccore._config import MetricConfig


@pytest.fixture(scope="module")
def both():
    """(engine, reference); skipped until both exist."""
    return S.load_impl("engine"), S.load_impl("reference")


def assert_same_outcome(a, b, what: str) -> None:
    """``a``/``b`` are :func:`strategies.outcome` results of engine and reference."""
    (ka, va), (kb, vb) = a, b
    if kb == "error":
        assert ka == "error", f"{what}: reference raised {vb[0].__name__}: {vb[1]}, engine did not"
        assert va == vb, (f"{what}: different errors\n  engine:    {va[0].__name__}: {va[1]}\n"
                          f"  reference: {vb[0].__name__}: {vb[1]}")
        return
    assert ka == "ok", f"{what}: engine raised {va[0].__name__}: {va[1]}, reference did not"
    if isinstance(vb, dict):
        S.assert_values_identical(va, vb, what)
    else:
        S.assert_tables_identical(va, vb, what)


def compare(both, case: S.Case, fn: str = "officer_metrics", **extra) -> None:
    engine, reference = both
    got = S.outcome(lambda: S.call(engine, case, fn, **extra))
    want = S.outcome(lambda: S.call(reference, case, fn, **extra))
    assert_same_outcome(got, want, f"{fn}(engine) vs {fn}(reference)")


# ------------------------------------------------------------------------------------------
# valid inputs
# ------------------------------------------------------------------------------------------

@settings(max_examples=S.examples(120))
@given(case=S.cases())
def test_officer_metrics_equal(both, case):
    compare(both, case)


@settings(max_examples=S.examples(40))
@given(case=S.cases(), threads=st.sampled_from([1, 2, 3, 8]))
def test_officer_metrics_equal_with_threads(both, case, threads):
    compare(both, case, threads=threads)


@settings(max_examples=S.examples(60))
@given(case=S.cases())
def test_portfolio_equal(both, case):
    compare(both, case, by=())
    compare(both, case, "portfolio_metrics")


@settings(max_examples=S.examples(40))
@given(case=S.cases(min_rows=150, max_rows=300, max_chunks=3, allow_portfolio=False,
                    max_keys=1, key_types=(pa.int8(), pa.uint8(), pa.dictionary(pa.int8(), pa.string()))))
def test_many_rows_few_groups_equal(both, case):
    compare(both, case)


# ------------------------------------------------------------------------------------------
# errors: same type, same message
# ------------------------------------------------------------------------------------------

@settings(max_examples=S.examples(120))
@given(case=S.bad_cases())
def test_error_parity(both, case):
    compare(both, case)
    compare(both, case, by=())


BAD_CONFIGS = [None, MetricConfig(), MetricConfig(money_scale=0), "config", {}, 2,
               MetricConfig().as_dict()]
BAD_THREADS = [None, 1, 2, 8, 0, -1, True, False, "2", 2.0, 1 << 70]
BAD_BY = ["officer_id", ("officer_id",), ["officer_id"], (), [], "nope", ["officer_id", "nope"],
          ("officer_id", "officer_id"), ["nope", "nope"], [1], None, b"officer_id", 5,
          ("fimr_tagged",), ("current_dpd",), ("principal_outstanding",)]
BAD_COLUMNS = [None, {}, {"current_dpd": "current_dpd"}, {"foo": "bar"}, {"current_dpd": 5},
               {"current_dpd": "nope"}, ["current_dpd"], {"loan_age": "current_dpd"},
               {"officer_id": "officer_id"}]


@settings(max_examples=S.examples(120))
@given(config=st.sampled_from(BAD_CONFIGS), threads=st.sampled_from(BAD_THREADS),
       by=st.sampled_from(BAD_BY), columns=st.sampled_from(BAD_COLUMNS),
       portfolio=st.booleans())
def test_argument_error_parity(both, config, threads, by, columns, portfolio):
    engine, reference = both
    table = pa.table(S.default_snapshot(20))
    kw = {"config": config, "threads": threads, "columns": columns}
    if portfolio:
        fn = "portfolio_metrics"
    else:
        fn = "officer_metrics"
        kw["by"] = by
    got = S.outcome(lambda: getattr(engine, fn)(table, **kw))
    want = S.outcome(lambda: getattr(reference, fn)(table, **kw))
    assert_same_outcome(got, want, f"{fn}(**{kw!r})")


# ------------------------------------------------------------------------------------------
# larger inputs (the engine splits them into chunks and threads)
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,key_type,money_type,batches", [
    (300_000, pa.string(), pa.float64(), 7),
    (150_000, pa.uint64(), pa.decimal128(20, 3), 1),  # decimals are slow in the reference
])
def test_large_input_equal(both, n, key_type, money_type, batches):
    table = S.big_table(n, key_type=key_type, money_type=money_type, batches=batches, seed=11)
    engine, reference = both
    want = reference.officer_metrics(table)
    for threads in (None, 1, 4):
        S.assert_tables_identical(engine.officer_metrics(table, threads=threads), want,
                                  f"threads={threads}")
    S.assert_values_identical(engine.portfolio_metrics(table, threads=3),
                              reference.portfolio_metrics(table))


def test_large_input_overflow_parity(both):
    # a big float value on the last row of a large table: the error names the global row
    table = S.big_table(200_000, batches=5, seed=3, null_frac=0.0)
    n = table.num_rows
    col = table.column("fees_due").to_numpy(zero_copy_only=False)
    col[n - 1] = math.inf
    col[n // 2 + 1] = 1e200
    bad = table.set_column(table.schema.get_field_index("fees_due"), "fees_due", pa.array(col))
    engine, reference = both
    want = S.outcome(lambda: reference.officer_metrics(bad))
    assert want[0] == "error"
    assert want[1][1] == f"column 'fees_due' row {n // 2 + 1}: money value exceeds 2**53 minor units"
    assert_same_outcome(S.outcome(lambda: engine.officer_metrics(bad, threads=4)), want, "large")
