"""The compiled derivation against the pure-Python reference (METRICS.md §5): identical
snapshot tables bit for bit (schema metadata included), and the same exception with the same
message whenever the reference raises, on hypothesis-generated raw books, as of several
dates; also with tiny waves and buckets, so that small books exercise the multi-task,
multi-wave paths of the engine."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import derive_strategies as R
from helpers import strategies as S


@pytest.fixture(scope="module")
def both():
    return S.load_impl("engine"), S.load_impl("reference")


@pytest.fixture
def tiny_tasks(monkeypatch):
    """Cut the engine's work into pieces of a few rows: many loan tasks, scan tasks, waves
    and buckets even for a book of ten loans."""
    from metriccore import _derivation as A
    monkeypatch.setattr(A, "_LOAN_TASK_ROWS", 3)
    monkeypatch.setattr(A, "_MIN_SCAN_ROWS", 2)
    monkeypatch.setattr(A, "_WAVE_ROWS", 5)
    monkeypatch.setattr(A, "_BUCKET_SHIFT", 1)


def derive(impl, case: R.RawCase, as_of: int, **extra):
    kw = case.kwargs()
    kw.update(extra)
    return S.outcome(lambda: impl.derive_snapshot(case.loans_table(), case.repayments_table(),
                                                  R.day(as_of), **kw))


def same_outcome(got, want, what: str) -> None:
    (kg, vg), (kw, vw) = got, want
    if kw == "error":
        assert kg == "error", f"{what}: reference raised {vw[0].__name__}: {vw[1]}, engine did not"
        assert vg == vw, (f"{what}: different errors\n  engine:    {vg[0].__name__}: {vg[1]}\n"
                          f"  reference: {vw[0].__name__}: {vw[1]}")
        return
    assert kg == "ok", f"{what}: engine raised {vg[0].__name__}: {vg[1]}, reference did not"
    S.assert_tables_identical(vg, vw, what)


def compare(both, case: R.RawCase, data, threads=None) -> None:
    engine, reference = both
    for as_of in case.as_of:
        window = data.draw(R.windows(as_of), label="window")
        got = derive(engine, case, as_of, threads=threads, **_window(window))
        want = derive(reference, case, as_of, **_window(window))
        same_outcome(got, want, f"as_of {R.day(as_of)} {window}")


def _window(w: dict) -> dict:
    return {k: R.day(v) for k, v in w.items() if v is not None}


@settings(max_examples=S.examples(150))
@given(case=R.raw_cases(), data=st.data())
def test_valid_books_equal(both, case, data):
    compare(both, case, data, threads=data.draw(st.sampled_from([None, 1, 2, 3])))
    engine, reference = both
    for as_of in case.as_of:   # valid books do not raise
        assert derive(reference, case, as_of)[0] == "ok"


#: the monkeypatch of ``tiny_tasks`` holds for every example of the test, as intended
_TINY = {"suppress_health_check": [HealthCheck.function_scoped_fixture]}


@settings(max_examples=S.examples(80), **_TINY)
@given(case=R.raw_cases(), data=st.data())
def test_valid_books_equal_tiny_tasks(both, tiny_tasks, case, data):
    compare(both, case, data, threads=data.draw(st.sampled_from([1, 2, 4])))


@settings(max_examples=S.examples(150))
@given(case=R.bad_raw_cases(), data=st.data())
def test_bad_books_same_error(both, case, data):
    compare(both, case, data, threads=data.draw(st.sampled_from([None, 1, 3])))


@settings(max_examples=S.examples(60), **_TINY)
@given(case=R.bad_raw_cases(), data=st.data())
def test_bad_books_same_error_tiny_tasks(both, tiny_tasks, case, data):
    compare(both, case, data, threads=data.draw(st.sampled_from([1, 2, 4])))


@settings(max_examples=S.examples(40))
@given(case=R.raw_cases(), data=st.data())
def test_officer_metrics_as_of_equal(both, case, data):
    engine, reference = both
    loans = case.loans_table()
    if "officer_id" not in loans.column_names:
        return
    for as_of in case.as_of:
        kw = case.kwargs()
        got = S.outcome(lambda as_of=as_of, kw=kw: engine.officer_metrics_as_of(
            loans, case.repayments_table(), R.day(as_of), **kw))
        want = S.outcome(lambda as_of=as_of, kw=kw: reference.officer_metrics_as_of(
            loans, case.repayments_table(), R.day(as_of), **kw))
        same_outcome(got, want, f"officer_metrics_as_of {R.day(as_of)}")


@pytest.mark.parametrize("seed", [1, 2])
def test_synthetic_book_equal(both, seed):
    """A numpy-built book of 3,000 loans and 30,000 repayments (ledger order, split and
    unsplit, reversed, unknown ids), as of three dates, with holidays."""
    engine, reference = both
    loans, repayments = R.np_case_tables(3000, 10, seed)
    holidays = [datetime.date(2024, 1, 1), datetime.date(2024, 4, 1),
                datetime.date(2024, 5, 27), datetime.date(2024, 6, 12),
                datetime.date(2024, 6, 15)]
    for as_of in ["2024-06-15", "2024-03-31", "2023-09-01"]:
        want = reference.derive_snapshot(loans, repayments, as_of, holidays=holidays)
        for threads in (1, 2):
            got = engine.derive_snapshot(loans, repayments, as_of, holidays=holidays,
                                         threads=threads)
            S.assert_tables_identical(got, want, f"as_of {as_of} threads {threads}")


def test_large_book_threads_equal(both, tiny_tasks):
    """The same with tiny waves and buckets and many threads."""
    engine, reference = both
    loans, repayments = R.np_case_tables(400, 10, 5)
    want = reference.derive_snapshot(loans, repayments, "2024-05-20")
    for threads in (1, 3, 8):
        got = engine.derive_snapshot(loans, repayments, "2024-05-20", threads=threads)
        S.assert_tables_identical(got, want, f"threads {threads}")
