"""Bad input to the derivation (METRICS.md §5.1): each case checks the exception type and
the message (table, column and row), on the engine and on the reference (``impl``); and that
when several things are wrong, both report the same one."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from helpers import strategies as S
from metriccore import MetricConfig
from test_derive_rules import JAN, book

I64 = pa.int64()
SCALE0 = MetricConfig(money_scale=0)


def raises(exc, fn, *fragments) -> str:
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert type(info.value) is exc, (
        f"raised {type(info.value).__name__}, not {exc.__name__}: {msg}")
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in message {msg!r}"
    return msg


def derive(impl, loans, payments, as_of=JAN[15], **kw):
    return lambda: impl.derive_snapshot(loans, payments, as_of, **kw)


def replace(table: pa.Table, name: str, values, t=None) -> pa.Table:
    i = table.schema.get_field_index(name)
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(
        values, t or table.schema.field(i).type)
    return table.set_column(i, name, arr)


def three_loans(**payments_kw):
    return book([{"loan_id": 1}, {"loan_id": 2}, {"loan_id": 3}],
                [{"loan_id": 1 + i % 3, "date": JAN[2 + i], "amount": 10.0} for i in range(5)],
                **payments_kw)


# ------------------------------------------------------------------------------------------
# §5.1 values of loans
# ------------------------------------------------------------------------------------------

def test_duplicate_loan_id(impl):
    loans, payments = three_loans()
    raises(ValueError, derive(impl, replace(loans, "loan_id", [1, 2, 1]), payments),
           "loans column 'loan_id' row 2: duplicate loan_id (first at row 0)")
    text = replace(loans, "loan_id", ["a", "b", "b"], pa.string())
    raises(ValueError, derive(impl, text, replace(payments, "loan_id", ["a"] * 5, pa.string())),
           "loans column 'loan_id' row 2: duplicate loan_id (first at row 1)")


def test_duplicate_loan_id_with_sparse_ids(impl):
    """Ids far apart take the hash table rather than the direct one."""
    loans, payments = three_loans()
    raises(ValueError, derive(impl, replace(loans, "loan_id", [10**15, -(2**62), 10**15]),
                              payments), "row 2: duplicate loan_id (first at row 0)")


def test_null_loan_id(impl):
    loans, payments = three_loans()
    raises(ValueError, derive(impl, replace(loans, "loan_id", [1, None, 3]), payments),
           "loans column 'loan_id' row 1: value is null")


@pytest.mark.parametrize("name", ["loan_amount", "interest_rate", "loan_term_days"])
def test_required_value_is_null(impl, name):
    loans, payments = three_loans()
    values = loans.column(name).to_pylist()
    values[2] = None
    raises(ValueError, derive(impl, replace(loans, name, values), payments),
           f"loans column '{name}' row 2: value is null")


def test_null_fee_and_dates_are_allowed(impl):
    loans, payments = three_loans()
    loans = replace(loans, "fee_amount", [None, 1.0, None])
    loans = replace(loans, "first_payment_due_date", [None, None, JAN[3]])
    loans = replace(loans, "disbursement_date", [None, JAN[1], JAN[1]])
    assert impl.derive_snapshot(loans, payments, JAN[15]).num_rows == 2


def test_negative_term(impl):
    loans, payments = three_loans()
    raises(ValueError, derive(impl, replace(loans, "loan_term_days", [30, -1, 30]), payments),
           "loans column 'loan_term_days' row 1: negative loan term")


def test_term_beyond_int64(impl):
    loans, payments = three_loans()
    loans = replace(loans, "loan_term_days", pa.array([30, 2**64 - 1, 30], pa.uint64()))
    raises(OverflowError, derive(impl, loans, payments),
           "loans column 'loan_term_days' row 1: value does not fit int64")


def test_loan_id_beyond_int64(impl):
    loans, payments = three_loans()
    big = pa.array([1, 2, 2**63], pa.uint64())
    raises(ValueError, derive(impl, replace(loans, "loan_id", big), payments),
           "loans column 'loan_id' row 2: loan_id does not fit int64")
    # in the repayments such an id is just unknown
    ok = pa.array([1, 2, 3], pa.uint64())
    pays = replace(payments, "loan_id", pa.array([2**63, 1, 2, 3, 2**64 - 1], pa.uint64()))
    t = impl.derive_snapshot(replace(loans, "loan_id", ok), pays, JAN[15])
    assert t.schema.metadata == {b"unknown_repayments": b"2"}


@pytest.mark.parametrize("name,value,exc,reason", [
    ("loan_amount", math.nan, ValueError, "money value is NaN or infinite"),
    ("loan_amount", 1e17, ValueError, "money value exceeds 2**53 minor units"),
    ("fee_amount", -math.inf, ValueError, "money value is NaN or infinite"),
    ("interest_rate", math.nan, ValueError, "interest rate is NaN or infinite"),
    ("interest_rate", math.inf, ValueError, "interest rate is NaN or infinite"),
])
def test_bad_loan_values(impl, name, value, exc, reason):
    loans, payments = three_loans()
    values = loans.column(name).to_pylist()
    values[1] = value
    raises(exc, derive(impl, replace(loans, name, values), payments),
           f"loans column '{name}' row 1: {reason}")


def test_decimal_money_beyond_int64(impl):
    loans, payments = three_loans()
    t = pa.decimal128(38, 2)
    loans = replace(loans, "loan_amount",
                    pa.array([Decimal("1.00"), Decimal(10**20), Decimal("2.00")], t))
    raises(OverflowError, derive(impl, loans, payments),
           "loans column 'loan_amount' row 1: value does not fit int64 minor units")


@pytest.mark.parametrize("text", ["2024-02-30", "2024-1-5", "15/01/2024", "", "2024-01-05 ",
                                  "0000-01-01", "2024-01-05T00:00", "２０２４-01-05"])
def test_unparseable_loan_date(impl, text):
    loans, payments = three_loans()
    dates = ["2024-01-02", text, "2024-01-03"]
    raises(ValueError, derive(impl, replace(loans, "maturity_date", dates, pa.string()), payments),
           f"loans column 'maturity_date' row 1: unparseable date {text!r}; expected YYYY-MM-DD")


def test_date_out_of_range(impl):
    loans, payments = three_loans()
    far = pa.array([0, 3_000_000, 0], pa.int32()).cast(pa.date32())
    raises(ValueError, derive(impl, replace(loans, "disbursement_date", far), payments),
           "loans column 'disbursement_date' row 1: date out of range (years 1 to 9999)")


# ------------------------------------------------------------------------------------------
# §5.1 values of repayments
# ------------------------------------------------------------------------------------------

def test_negative_payment(impl):
    loans, payments = three_loans()
    raises(ValueError, derive(impl, loans, replace(payments, "payment_amount",
                                                   [1.0, 2.0, -0.01, 3.0, -5.0])),
           "repayments column 'payment_amount' row 2: negative amount")


def test_negative_payment_even_when_reversed_or_late(impl):
    loans, payments = three_loans(reversed_=True)
    payments = replace(payments, "payment_amount", [1.0, 2.0, 3.0, 4.0, -1.0])
    payments = replace(payments, "is_reversed", [False, False, False, False, True])
    raises(ValueError, derive(impl, loans, payments, as_of=JAN[2]),
           "repayments column 'payment_amount' row 4: negative amount")


def test_negative_or_nan_split_part(impl):
    loans, payments = three_loans(split=True)
    bad = replace(payments, "interest_paid", [None, 1.0, -2.0, None, None])
    raises(ValueError, derive(impl, loans, bad),
           "repayments column 'interest_paid' row 2: negative amount")
    bad = replace(payments, "fees_paid", [None, math.nan, None, None, None])
    raises(ValueError, derive(impl, loans, bad),
           "repayments column 'fees_paid' row 1: money value is NaN or infinite")


def test_unparseable_payment_date(impl):
    loans, payments = three_loans()
    dates = ["2024-01-02", "2024-01-03", "2024-01-04", "tomorrow", "2024-01-06"]
    raises(ValueError, derive(impl, loans, replace(payments, "payment_date", dates, pa.string())),
           "repayments column 'payment_date' row 3: unparseable date 'tomorrow'")


def test_rows_of_unknown_loans_are_not_checked(impl):
    loans, payments = three_loans()
    payments = replace(payments, "loan_id", [1, 9, None, 2, 3])
    payments = replace(payments, "payment_amount", [1.0, -5.0, math.nan, 2.0, 3.0])
    t = impl.derive_snapshot(loans, payments, JAN[15])
    assert t.schema.metadata == {b"unknown_repayments": b"2"}


def test_null_payment_date_or_amount_does_not_count(impl):
    loans, payments = three_loans()
    payments = replace(payments, "payment_date", [None, None, None, None, None])
    t = impl.derive_snapshot(loans, payments, JAN[15])
    assert t.column("days_since_last_repayment").to_pylist() == [None] * 3


# ------------------------------------------------------------------------------------------
# derived amounts beyond int64 (money_scale 0, whole currency units as int64)
# ------------------------------------------------------------------------------------------

def big_book(loan: dict, amounts: list[int], split: dict | None = None):
    plain = {k: v for k, v in loan.items() if k not in ("loan_amount", "fee_amount")}
    loans, payments = book([{"loan_id": 1}, {"loan_id": 2, **plain}],
                           [{"loan_id": 2, "date": JAN[2 + i], "amount": 1.0}
                            for i in range(len(amounts))], split=split is not None)
    for name in ("loan_amount", "fee_amount"):
        values = [1000, loan.get(name, 0)]
        loans = replace(loans, name, pa.array(values, I64))
    payments = replace(payments, "payment_amount", pa.array(amounts, I64))
    for name, values in (split or {}).items():
        payments = replace(payments, name, pa.array(values, I64))
    return loans, payments


@pytest.mark.parametrize("loan,amounts,split,exc,message", [
    ({"loan_amount": 2**62, "interest_rate": 2.0}, [], None, OverflowError,
     "loans row 1: interest total does not fit int64 minor units"),
    ({"loan_amount": 2**62, "interest_rate": 0.9, "fee_amount": 2**61}, [], None, OverflowError,
     "loans row 1: repayable amount does not fit int64 minor units"),
    ({"loan_amount": 2**61, "interest_rate": 2.675,
      "fee_amount": -(2**61 + round(float(2**61) * 2.675) - 1000)}, [5, 10**6], None,
     OverflowError, "repayments row 1: allocated interest does not fit int64 minor units"),
    ({"loan_amount": 2**62, "fee_amount": -(2**62 - 1000)}, [10**6], None, OverflowError,
     "repayments row 0: allocated fees does not fit int64 minor units"),
    ({"loan_amount": 2**62, "interest_rate": -0.5}, [2**62], None, OverflowError,
     "repayments row 0: allocated principal does not fit int64 minor units"),
    ({}, [2**62, 2**62], None, OverflowError,
     "loans row 1: repayments up to as_of does not fit int64 minor units"),
    ({}, [1, 1], {"principal_paid": [2**62, 2**62]}, OverflowError,
     "loans row 1: principal paid does not fit int64 minor units"),
    ({}, [1, 1], {"interest_paid": [2**62, 2**62]}, OverflowError,
     "loans row 1: interest collected does not fit int64 minor units"),
    ({}, [1, 1], {"fees_paid": [2**62, 2**62]}, OverflowError,
     "loans row 1: fees collected does not fit int64 minor units"),
    ({"loan_amount": 2**62, "interest_rate": 0.99, "loan_term_days": 1,
      "first_payment_due_date": None}, [], None, OverflowError,
     "loans row 1: amount due in 7 days does not fit int64 minor units"),
])
def test_derived_amounts_beyond_int64(impl, loan, amounts, split, exc, message):
    if split is not None:
        split = {name: split.get(name, [None] * len(amounts))
                 for name in ("principal_paid", "interest_paid", "fees_paid")}
    loans, payments = big_book(loan, amounts, split)
    raises(exc, derive(impl, loans, payments, config=SCALE0, period_start=JAN[1]), message)


def test_partial_sums_may_leave_int64_when_the_total_fits(impl):
    """Allocated parts may be negative: a running principal total that leaves int64 on the
    way is fine as long as the loan's total fits (sums are exact)."""
    # L = -2**62, rate -1: interest 2**62, fee 1000, R = 1000. Each unsplit payment of 1000
    # has principal 1000 - 2**62 - 1000 = -2**62; three of them run to -3 * 2**62, then a
    # recorded principal of 2**62 brings the total back to -2**63, which fits.
    loan = {"loan_amount": -(2**62), "interest_rate": -1.0, "fee_amount": 1000}
    split = {"principal_paid": [None, None, None, 2**62], "interest_paid": [None] * 4,
             "fees_paid": [None] * 4}
    loans, payments = big_book(loan, [1000, 1000, 1000, 1], split)
    kw = {"config": SCALE0, "period_start": JAN[15]}      # interest outside the window
    t = impl.derive_snapshot(loans, payments, JAN[15], **kw)
    assert t.column("principal_outstanding").to_pylist()[1] == float(2**62)   # L + 2**63
    split["principal_paid"][3] = None
    loans, payments = big_book(loan, [1000, 1000, 1000, 1], split)
    raises(OverflowError, derive(impl, loans, payments, **kw),
           "loans row 1: principal paid does not fit int64 minor units")


# ------------------------------------------------------------------------------------------
# which error wins
# ------------------------------------------------------------------------------------------

def test_first_bad_row_wins_then_column_order(impl):
    loans, payments = book([{"loan_id": i} for i in range(6)])
    loans = replace(loans, "loan_id", [0, 1, 2, 1, 4, 5])                   # row 3: duplicate
    loans = replace(loans, "interest_rate", [0.1, 0.1, math.nan, 0.1, 0.1, math.nan])
    loans = replace(loans, "loan_amount", [1.0, 1.0, None, 1.0, 1.0, 1.0])   # row 2: first
    raises(ValueError, derive(impl, loans, payments),
           "loans column 'loan_amount' row 2: value is null")
    loans = replace(loans, "loan_amount", [1.0] * 6)
    raises(ValueError, derive(impl, loans, payments),
           "loans column 'interest_rate' row 2: interest rate is NaN or infinite")
    loans = replace(loans, "interest_rate", [0.1] * 5 + [math.nan])
    raises(ValueError, derive(impl, loans, payments), "loans column 'loan_id' row 3: duplicate")


def test_loans_errors_before_repayments_errors(impl):
    loans, payments = three_loans()
    loans = replace(loans, "loan_term_days", [30, 30, -3])
    payments = replace(payments, "payment_amount", [-1.0, 1.0, 1.0, 1.0, 1.0])
    raises(ValueError, derive(impl, loans, payments), "loans column 'loan_term_days' row 2")


def test_repayment_error_rows_count_across_batches(impl):
    loans, payments = three_loans()
    payments = replace(payments, "payment_amount", [1.0, 1.0, 1.0, -1.0, -2.0])
    chunked = S.rechunk(payments, [1, 3, 3, 4])
    for threads in (1, 2, 4):
        raises(ValueError, derive(impl, loans, chunked, threads=threads),
               "repayments column 'payment_amount' row 3: negative amount")


def test_allocation_error_and_value_error_in_row_order(impl):
    # the allocation of row 1 overflows; row 2 has a negative amount: row 1 is reported
    loan = {"loan_amount": 2**62, "fee_amount": -(2**62 - 1000)}
    loans, payments = big_book(loan, [1, 10**6, -5])
    raises(OverflowError, derive(impl, loans, payments, config=SCALE0),
           "repayments row 1: allocated fees")
    loans, payments = big_book(loan, [1, -5, 10**6])
    raises(ValueError, derive(impl, loans, payments, config=SCALE0),
           "repayments column 'payment_amount' row 1: negative amount")


def test_errors_are_the_same_with_many_tasks(engine, reference, monkeypatch):
    from metriccore import _derivation as A
    monkeypatch.setattr(A, "_LOAN_TASK_ROWS", 2)
    monkeypatch.setattr(A, "_MIN_SCAN_ROWS", 1)
    monkeypatch.setattr(A, "_WAVE_ROWS", 2)
    monkeypatch.setattr(A, "_BUCKET_SHIFT", 0)
    loans, payments = book([{"loan_id": i} for i in range(9)],
                           [{"loan_id": (7 * i) % 11, "date": JAN[1 + i % 20], "amount": 1.0}
                            for i in range(40)])
    rng = np.random.default_rng(0)
    for _ in range(30):
        amounts = [1.0] * 40
        for row in rng.integers(0, 40, 3):
            amounts[row] = -1.0
        bad = replace(payments, "payment_amount", amounts)
        for threads in (1, 3, 8):
            got = S.outcome(derive(engine, loans, bad, threads=threads))
            assert got == S.outcome(derive(reference, loans, bad))


# ------------------------------------------------------------------------------------------
# columns and types
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["loan_id", "loan_amount", "interest_rate", "fee_amount",
                                  "loan_term_days", "disbursement_date",
                                  "first_payment_due_date", "maturity_date"])
def test_missing_loans_column(impl, name):
    loans, payments = three_loans()
    raises(ValueError, derive(impl, loans.drop_columns([name]), payments),
           f"column '{name}' not found in loans (column role '{name}')")


@pytest.mark.parametrize("name", ["loan_id", "payment_date", "payment_amount"])
def test_missing_repayments_column(impl, name):
    loans, payments = three_loans()
    raises(ValueError, derive(impl, loans, payments.drop_columns([name])),
           f"column '{name}' not found in repayments (column role '{name}')")


def test_split_columns_come_together(impl):
    loans, payments = three_loans(split=True)
    raises(ValueError, derive(impl, loans, payments.drop_columns(["fees_paid"])),
           "column 'fees_paid' not found in repayments (column role 'fees_paid')")


def test_optional_column_named_explicitly_must_exist(impl):
    loans, payments = three_loans()
    raises(ValueError, derive(impl, loans, payments, columns={"is_reversed": "void"}),
           "column 'void' not found in repayments (column role 'is_reversed')")


@pytest.mark.parametrize("table,name,t,expected", [
    ("loans", "interest_rate", pa.decimal128(10, 4), "expected float64 or float32"),
    ("loans", "loan_amount", pa.string(), "expected float64, float32, decimal128"),
    ("loans", "loan_term_days", pa.float64(), "expected an integer type"),
    ("loans", "maturity_date", pa.int32(), "expected date32, date64, timestamp, string"),
    ("loans", "loan_id", pa.float64(), "expected an integer, string"),
    ("repayments", "is_reversed", pa.int8(), "expected bool"),
    ("repayments", "loan_id", pa.string(), "expected an integer type, like column 'loan_id' "
                                           "of loans"),
])
def test_column_types(impl, table, name, t, expected):
    loans, payments = three_loans(reversed_=True)
    tables = {"loans": loans, "repayments": payments}
    arr = tables[table].column(name)
    if t == pa.string():
        arr = pa.array([str(v) for v in arr.to_pylist()])
    elif t == pa.decimal128(10, 4):
        arr = pa.array([Decimal(str(v)) for v in arr.to_pylist()], t)
    elif t == pa.int32():
        arr = arr.cast(t) if not pa.types.is_date(arr.type) else pa.array([1, 2, 3], t)
    else:
        arr = arr.cast(t)
    tables[table] = replace(tables[table], name, arr)
    raises(TypeError, derive(impl, tables["loans"], tables["repayments"]),
           f"column '{name}' of {table} has Arrow type {t}; {expected}")


def test_carried_column_named_like_a_derived_one(impl):
    loans, payments = three_loans()
    loans = loans.append_column("current_dpd", pa.array([0, 0, 0]))
    raises(ValueError, derive(impl, loans, payments),
           "column 'current_dpd' of loans has the name of a derived snapshot column")


# ------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,exc,fragment", [
    ({"as_of": "2024-13-01"}, ValueError, "as_of: unparseable date '2024-13-01'"),
    ({"as_of": "15/01/2024"}, ValueError, "as_of: unparseable date"),
    ({"as_of": 19737}, TypeError, "as_of must be a date"),
    ({"as_of": None}, TypeError, "as_of must be a date"),
    ({"as_of": True}, TypeError, "as_of must be a date"),
    ({"as_of": np.datetime64("NaT")}, ValueError, "as_of: date is NaT"),
    ({"as_of": pa.scalar(None, pa.date32())}, ValueError, "as_of: date is null"),
    ({"as_of": pd.NaT}, ValueError, "as_of: date is NaT"),
    ({"period_start": pd.NaT}, ValueError, "period_start: date is NaT"),
    ({"roll_from": pd.NaT}, ValueError, "roll_from: date is NaT"),
    ({"holidays": [JAN[1], pd.NaT]}, ValueError, "holidays[1]: date is NaT"),
    ({"holidays": pd.Series([pd.Timestamp(JAN[1]), pd.NaT])}, ValueError,
     "holidays[1]: date is NaT"),
    ({"holidays": np.array([JAN[1], "NaT"], "datetime64[D]")}, ValueError,
     "holidays[1]: date is NaT"),
    ({"holidays": pa.array([JAN[1], None], pa.date32())}, ValueError,
     "holidays[1]: date is null"),
    ({"holidays": np.array(["2024-01-01", "10000-01-01"], "datetime64[D]")}, ValueError,
     "holidays[1]: date out of range (years 1 to 9999)"),
    ({"holidays": pa.array([0, -800_000], pa.date32())}, ValueError,
     "holidays[1]: date out of range (years 1 to 9999)"),
    ({"period_start": JAN[16]}, ValueError, "period_start (2024-01-16) must not be after as_of"),
    ({"roll_from": "2024-01-16"}, ValueError, "roll_from (2024-01-16) must not be after as_of"),
    ({"holidays": [JAN[1], None]}, ValueError, "holidays[1]: date is null"),
    ({"holidays": "2024-01-01"}, TypeError, "holidays must be None or an iterable of dates"),
    ({"holidays": [JAN[1], "x"]}, ValueError, "holidays[1]: unparseable date 'x'"),
    ({"threads": 0}, ValueError, "threads must be >= 1"),
    ({"threads": 1.5}, TypeError, "threads must be an int"),
    ({"config": {"money_scale": 2}}, TypeError, "config must be a MetricConfig"),
    ({"columns": {"dpd": "x"}}, ValueError, "unknown column role 'dpd'"),
    ({"columns": {"loan_id": 3}}, TypeError, "columns['loan_id'] must be a str"),
    ({"columns": ["loan_id"]}, TypeError, "columns must be a mapping"),
])
def test_bad_arguments(impl, kw, exc, fragment):
    loans, payments = three_loans()
    kw = dict(kw)
    as_of = kw.pop("as_of", JAN[15])
    raises(exc, derive(impl, loans, payments, as_of, **kw), fragment)


def test_as_of_too_early_for_the_default_roll_from_names_as_of(impl):
    # The message used to blame roll_from, which the caller never passed.
    loans, payments = three_loans()
    for as_of in (datetime.date(1, 1, 5), "0001-01-01", datetime.date(1, 1, 30)):
        msg = raises(ValueError, derive(impl, loans, payments, as_of),
                     "the default roll_from, as_of - 30 days, falls before 0001-01-01")
        assert msg.startswith(f"as_of ({as_of}) is too early")
    impl.derive_snapshot(loans, payments, datetime.date(1, 1, 31))  # roll_from = 0001-01-01
    impl.derive_snapshot(loans, payments, datetime.date(1, 1, 5),
                         roll_from=datetime.date(1, 1, 1))


def test_unsupported_input(impl):
    loans, payments = three_loans()
    raises(TypeError, derive(impl, [1, 2], payments), "unsupported input of type list")
    raises(TypeError, derive(impl, loans, {"loan_id": [1]}), "unsupported input of type dict")


def test_bad_by_is_reported_before_deriving(impl):
    loans, payments = three_loans()
    raises(ValueError, lambda: impl.officer_metrics_as_of(loans, payments, JAN[15],
                                                          by=["a", "a"]), "duplicate key column")
    raises(ValueError, lambda: impl.officer_metrics_as_of(loans, payments, JAN[15], by="nope"),
           "column 'nope' not found in input")


# ------------------------------------------------------------------------------------------
# issue 10 item 8: engine and reference raise the same, naming the argument / table / column
# ------------------------------------------------------------------------------------------

def same_error(engine, reference, call, exc, *fragments) -> str:
    """``call(impl)`` raises ``exc`` with the same message on both implementations."""
    messages = {raises(exc, partial(call, impl), *fragments) for impl in (engine, reference)}
    assert len(messages) == 1, messages
    return messages.pop()


def with_zone(table: pa.Table, name: str, tz: str) -> pa.Table:
    i = table.schema.get_field_index(name)
    days = table.column(name).cast(pa.int32()).to_numpy(zero_copy_only=False)
    seconds = pa.array(days.astype(np.int64) * 86_400 + 43_200, pa.int64())
    return table.set_column(i, name, seconds.cast(pa.timestamp("s", tz=tz)))


@pytest.mark.parametrize("tz", ["+25:00", "-24:00", "+23:60", "Mars/Olympus", "+05"])
@pytest.mark.parametrize("table,name", [("loans", "disbursement_date"),
                                        ("repayments", "payment_date")])
def test_impossible_time_zone_names_table_and_column(engine, reference, tz, table, name):
    # Used to be ArrowInvalid naming no column (engine) and a bare ValueError or
    # ZoneInfoNotFoundError (reference).
    loans, payments = three_loans()
    tables = {"loans": loans, "repayments": payments}
    tables[table] = with_zone(tables[table], name, tz)
    msg = same_error(engine, reference,
                     lambda impl: impl.derive_snapshot(tables["loans"], tables["repayments"],
                                                       JAN[15]),
                     ValueError, f"column '{name}' of {table} has Arrow type timestamp[s, tz={tz}]")
    assert "expected an IANA time zone name or an offset from -23:59 to +23:59" in msg


@pytest.mark.parametrize("tz", ["+23:59", "-23:59", "+0530", "-0800", "Asia/Kolkata", "UTC"])
def test_valid_time_zones_engine_equals_reference(engine, reference, tz):
    # "+0530" is accepted by Arrow; the reference used to refuse it
    loans, payments = three_loans()
    loans, payments = with_zone(loans, "disbursement_date", tz), with_zone(
        payments, "payment_date", tz)
    S.assert_tables_identical(engine.derive_snapshot(loans, payments, JAN[15]),
                              reference.derive_snapshot(loans, payments, JAN[15]))


@pytest.mark.parametrize("which", ["loans", "repayments"])
def test_non_table_input_same_error_in_engine_and_reference(engine, reference, which):
    loans, payments = three_loans()
    for bad in (pa.array([1, 2]), pd.Series(["a"]), pa.chunked_array([[1.5]])):
        args = {"loans": loans, "repayments": payments, which: bad}
        same_error(engine, reference,
                   lambda impl, args=args: impl.derive_snapshot(args["loans"],
                                                                args["repayments"], JAN[15]),
                   TypeError, "expected a table-like Arrow input (a struct / record batch), "
                   "got Arrow type ")


def _failing_reader(table: pa.Table) -> pa.RecordBatchReader:
    def batches():
        yield from table.to_batches(max_chunksize=1)
        raise RuntimeError("producer broke midway")
    return pa.RecordBatchReader.from_batches(table.schema, batches())


@pytest.mark.parametrize("which", ["loans", "repayments"])
def test_producer_failing_midway_is_wrapped_with_its_cause(impl, which):
    # officer_metrics wrapped it in ValueError, derive_snapshot re-raised it bare.
    loans, payments = three_loans()
    args = {"loans": loans, "repayments": payments}
    args[which] = _failing_reader(args[which])
    with pytest.raises(ValueError) as info:
        impl.officer_metrics_as_of(args["loans"], args["repayments"], JAN[15])
    assert type(info.value) is ValueError
    assert str(info.value) == "the Arrow stream failed: producer broke midway"
    cause = info.value.__cause__
    assert type(cause) is RuntimeError and str(cause) == "producer broke midway"


def test_str_subclass_names_in_derive(impl):
    loans, payments = three_loans()
    loans = loans.rename_columns({"officer_id": "branch_np7", "loan_id": "id_np7"})
    payments = payments.rename_columns({"loan_id": "id_np7"})
    by, loan_id = list(np.array(["branch_np7", "id_np7"]))
    want = impl.officer_metrics_as_of(loans, payments, JAN[15], by="branch_np7",
                                      columns={"loan_id": "id_np7"})
    got = impl.officer_metrics_as_of(loans, payments, JAN[15], by=[by],
                                     columns={np.str_("loan_id"): loan_id})
    S.assert_tables_identical(got, want)
    assert type(got.schema.names[0]) is str


# ------------------------------------------------------------------------------------------
# issue 10 item 9: arrays of holidays are converted whole, with the same result
# ------------------------------------------------------------------------------------------

def _holiday_forms():
    """The same holidays (weekdays and weekend days, repeated, unsorted, one before 1970 at
    23:00 so flooring matters) in every array form, and as ``datetime.date`` objects."""
    stamps = np.array(["2024-01-10T09:30", "2024-01-03T23:59", "2024-01-06T00:00",
                       "2024-01-10T00:00", "1969-12-31T23:00", "2024-01-12T12:00"],
                      "datetime64[m]")
    dates = [datetime.date.fromisoformat(str(d)) for d in stamps.astype("datetime64[D]")]
    zoned = pa.array(stamps.astype("datetime64[s]").astype(np.int64) + 5 * 3600,
                     pa.int64()).cast(pa.timestamp("s", tz="-05:00"))  # same local dates
    forms = {
        "datetime64[m]": stamps, "datetime64[D]": stamps.astype("datetime64[D]"),
        "datetime64[ns]": stamps.astype("datetime64[ns]"),
        "DatetimeIndex": pd.DatetimeIndex(stamps.astype("datetime64[ns]")),
        "Series": pd.Series(stamps.astype("datetime64[ns]")),
        "date32": pa.array(dates, pa.date32()), "date64": pa.array(dates, pa.date64()),
        "timestamp": pa.array(stamps.astype("datetime64[ms]")), "zoned timestamp": zoned,
        "chunked": pa.chunked_array([pa.array(dates[:2], pa.date32()),
                                     pa.array(dates[2:], pa.date32())]),
    }
    return dates, forms


def test_holiday_arrays_equal_date_objects(impl):
    from metriccore._dates import check_holidays

    dates, forms = _holiday_forms()
    want_days = check_holidays(dates)
    assert len(want_days) == 5  # two repeats of 2024-01-10 after flooring
    loans, payments = book([{"loan_id": 1}], [])
    want = impl.derive_snapshot(loans, payments, JAN[15], holidays=dates)
    # the holidays matter here: Jan 3, 10 and 12 are weekdays before as_of
    assert want.column("current_dpd").to_pylist() != impl.derive_snapshot(
        loans, payments, JAN[15]).column("current_dpd").to_pylist()
    for name, holidays in forms.items():
        assert check_holidays(holidays) == want_days, name
        assert check_holidays(holidays) == check_holidays(list(holidays)), name  # per element
        S.assert_tables_identical(
            impl.derive_snapshot(loans, payments, JAN[15], holidays=holidays), want, name)


@pytest.mark.parametrize("holidays", [
    np.array(["2024-01-02", "NaT", "NaT"], "datetime64[s]"),
    pd.DatetimeIndex(["2024-01-02", None]),
    pa.array([JAN[2], None, JAN[3]], pa.date32()),
    pa.chunked_array([[JAN[2]], [JAN[3], None]], pa.date32()),
    np.array(["2024-01-02", "-0001-01-01"], "datetime64[D]"),
    np.array(["2024-01-02", "10000-01-01"], "datetime64[D]"),
    pa.array([0, 2_932_897], pa.date32()),
], ids=lambda h: f"{type(h).__name__}-{h.dtype if hasattr(h, 'dtype') else h.type}")
def test_holiday_array_errors_equal_element_errors(holidays):
    from metriccore._dates import check_holidays

    with pytest.raises(ValueError) as whole:
        check_holidays(holidays)
    with pytest.raises(ValueError) as each:
        check_holidays(list(holidays))
    assert str(whole.value) == str(each.value)
    assert str(whole.value).startswith("holidays[")
