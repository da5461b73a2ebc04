"""The derived snapshot does not depend on how the work or the input is laid out: thread
count, repayment row order, record batch boundaries and input library all give bitwise
identical tables; permuting the loans permutes the snapshot rows and nothing else."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import derive_strategies as R
from helpers import strategies as S

THREADS = (1, 2, 3, 8)


def derive(impl, case: R.RawCase, as_of: int, loans=None, repayments=None, **kw):
    args = case.kwargs()
    args.update(kw)
    return impl.derive_snapshot(case.loans_table() if loans is None else loans,
                                case.repayments_table() if repayments is None else repayments,
                                R.day(as_of), **args)


# ------------------------------------------------------------------------------------------
# small books, both implementations
# ------------------------------------------------------------------------------------------

@settings(max_examples=S.examples(60))
@given(case=R.raw_cases(), data=st.data())
def test_repayment_order(impl, case, data):
    perm = data.draw(st.permutations(range(case.n_repayments)), label="permutation")
    for as_of in case.as_of:
        S.assert_tables_identical(derive(impl, case.permute_repayments(perm), as_of),
                                  derive(impl, case, as_of), "repayments permuted")


@settings(max_examples=S.examples(60))
@given(case=R.raw_cases(), data=st.data())
def test_loan_order(impl, case, data):
    """Permuting the loans permutes the snapshot rows the same way."""
    perm = data.draw(st.permutations(range(case.n_loans)), label="permutation")
    for as_of in case.as_of:
        base = derive(impl, case, as_of)
        moved = derive(impl, case.permute_loans(perm), as_of)
        ids = base.column(0).to_pylist()
        position = {i: k for k, i in enumerate(ids)}
        order = [position[i] for i in moved.column(0).to_pylist()]
        assert moved.schema.equals(base.schema, check_metadata=True)
        rows = base.to_pylist()        # (take() has no string_view kernel in pyarrow 26)
        assert moved.to_pylist() == [rows[k] for k in order]


@settings(max_examples=S.examples(60))
@given(case=R.raw_cases(), data=st.data())
def test_batch_layout(impl, case, data):
    loans = case.loans_table()
    repayments = case.repayments_table()
    k1 = data.draw(st.lists(st.integers(0, case.n_loans), max_size=4), label="loan splits")
    k2 = data.draw(st.lists(st.integers(0, case.n_repayments), max_size=6),
                   label="repayment splits")
    for as_of in case.as_of:
        S.assert_tables_identical(
            derive(impl, case, as_of, loans=S.rechunk(loans, sorted(k1)),
                   repayments=S.rechunk(repayments, sorted(k2))),
            derive(impl, case, as_of, loans=loans.combine_chunks(),
                   repayments=repayments.combine_chunks()), "relayout")


@settings(max_examples=S.examples(40))
@given(case=R.raw_cases(), threads=st.sampled_from(THREADS))
def test_thread_count_small(impl, case, threads):
    for as_of in case.as_of:
        S.assert_tables_identical(derive(impl, case, as_of, threads=threads),
                                  derive(impl, case, as_of, threads=1), f"threads={threads}")


# ------------------------------------------------------------------------------------------
# a larger book, the engine: several scan tasks, buckets and waves
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def large_book():
    return R.np_case_tables(60_000, 12, seed=11)


@pytest.fixture
def small_waves(monkeypatch):
    from metriccore import _derivation as A
    monkeypatch.setattr(A, "_WAVE_ROWS", 50_000)


@pytest.mark.parametrize("as_of", ["2024-06-15", "2023-12-31"])
def test_thread_count_large(engine, large_book, small_waves, as_of):
    loans, repayments = large_book
    holidays = ["2024-01-01", "2023-12-25", "2024-05-01", "2024-06-12"]
    want = engine.derive_snapshot(loans, repayments, as_of, holidays=holidays, threads=1)
    assert want.num_rows > 40_000
    for threads in THREADS[1:]:
        got = engine.derive_snapshot(loans, repayments, as_of, holidays=holidays,
                                     threads=threads)
        S.assert_tables_identical(got, want, f"threads={threads}")


def test_row_order_and_layout_large(engine, large_book, small_waves):
    loans, repayments = large_book
    want = engine.derive_snapshot(loans, repayments, "2024-06-15", threads=2)
    shuffled = R.shuffled(repayments, 3)
    got = engine.derive_snapshot(loans, S.rechunk(shuffled, [1, 1000, 250_000, 250_001]),
                                 "2024-06-15", threads=3)
    S.assert_tables_identical(got, want, "repayments shuffled and rechunked")
    reversed_loans = loans.take(pa.array(np.arange(loans.num_rows - 1, -1, -1)))
    got = engine.derive_snapshot(reversed_loans, repayments, "2024-06-15", threads=2)
    S.assert_tables_identical(got.take(pa.array(np.arange(got.num_rows - 1, -1, -1))), want,
                              "loans reversed")


def test_input_libraries(engine):
    """pandas, polars, DuckDB and a RecordBatchReader give the same snapshot as pyarrow
    (money and dates keep their types through each)."""
    loans, repayments = R.np_case_tables(2_000, 5, seed=2)
    loans = loans.drop_columns(["branch"])          # keep the round trips to plain types
    want = engine.derive_snapshot(loans, repayments, "2024-06-15")
    inputs = [("reader", pa.RecordBatchReader.from_batches(loans.schema, loans.to_batches()),
               pa.RecordBatchReader.from_batches(repayments.schema, repayments.to_batches()))]
    pd = pytest.importorskip("pandas")
    inputs.append(("pandas", loans.to_pandas(types_mapper=pd.ArrowDtype),
                   repayments.to_pandas(types_mapper=pd.ArrowDtype)))
    pl = pytest.importorskip("polars")
    inputs.append(("polars", pl.from_arrow(loans), pl.from_arrow(repayments)))
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    inputs.append(("duckdb", con.from_arrow(loans), con.from_arrow(repayments)))
    for name, lo, rp in inputs:
        got = engine.derive_snapshot(lo, rp, "2024-06-15")
        assert got.column_names == want.column_names, name
        assert got.schema.metadata == want.schema.metadata, name
        for column in want.column_names[3:]:
            assert got.column(column).to_pylist() == want.column(column).to_pylist(), (
                name, column)
