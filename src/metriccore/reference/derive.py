"""Pure-Python reference of the loan derivation (docs/metrics.md §9, with the rules of §6).

:func:`derive_snapshot` turns raw ``loans`` and ``repayments`` tables into the loan snapshot as
of a date; :func:`officer_metrics_as_of` then aggregates it with the reference
:func:`~metriccore.reference.officer_metrics`. The code follows §9.1-§9.6 one step at a time
with Python integers (money in exact minor units, §2, read with :mod:`._money`) and floats;
pyarrow only reads the input
and builds the output. It is the oracle the compiled ``metriccore.derive_snapshot`` is
tested against: same tables bit for bit, same exceptions with the same messages.

Slow (a Python loop per loan and per payment, and business days counted day by day within
the last partial week); meant for tests and small inputs. ``metriccore.reference``
re-exports both functions.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .._as_of import metrics_as_of
from .._checks import (DerivePlan, check_config, check_derive_columns, check_threads,
                       plan_derivation)
from .._config import MetricConfig
from .._dates import (EPOCH_ORDINAL, MAX_DAY, MIN_DAY, check_derive_dates, check_holidays,
                      parse_iso_date, time_zone)
from .._errors import LOAN_TOTALS, cell_name, error
from .._schema import SNAPSHOT_COLUMNS, snapshot_schema
from .._tables import checked_table, keep_rows
from ._money import BadValue, fits_int64, minor_converter, money_value
from .officer import officer_metrics

__all__ = ["derive_snapshot", "officer_metrics_as_of", "business_days",
           "round_half_away"]


# ---------------------------------------------------------------------------------------
# Arithmetic helpers (docs/metrics.md §9.3 steps 3 and 4, §6)
# ---------------------------------------------------------------------------------------

def weekday(day: int) -> int:
    """Monday = 0 ... Sunday = 6 of a day number; 1970-01-01 (day 0) was a Thursday (3)."""
    return (day + 3) % 7


def business_days(a: int, b: int, holidays: set[int]) -> int:
    """bdays(a, b): Monday-Friday days in [a, b] that are not holidays; 0 when b < a (§9.3,
    step 3).

    Any 7 consecutive days hold exactly 5 weekdays, so whole weeks are counted at once and
    only the remaining days are looked at one by one; then the weekday holidays inside
    [a, b] are taken off.
    """
    if b < a:
        return 0
    weeks, extra = divmod(b - a + 1, 7)
    count = 5 * weeks
    count += sum(1 for day in range(b - extra + 1, b + 1) if weekday(day) < 5)
    count -= sum(1 for day in holidays if a <= day <= b and weekday(day) < 5)
    return count


def round_half_away(x: float) -> int:
    """Round to the nearest integer, halves away from zero (C's ``round()``; §9.3, step 4).

    ``x - trunc(x)`` is exact in float64, so comparing it with 0.5 decides the tie exactly
    (``floor(x + 0.5)`` would not: 0.49999999999999994 + 0.5 rounds up to 1.0).
    """
    whole = math.trunc(x)
    fraction = x - whole
    if fraction >= 0.5:
        return whole + 1
    if fraction <= -0.5:
        return whole - 1
    return whole


# ---------------------------------------------------------------------------------------
# Reading values
# ---------------------------------------------------------------------------------------

class _Bad(Exception):
    """A bad input value: its reason in ``_errors.CATALOGUE`` and its format arguments."""

    def __init__(self, reason: str, **fmt: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fmt: dict[str, Any] = fmt


def _money_converter(t: pa.DataType, scale: int) -> Callable[[Any], int]:
    """Python value -> exact minor units (§2), raising _Bad for NaN, too big, overflow."""
    convert = minor_converter(t)
    assert convert is not None  # the money column types are checked by plan_derivation

    def to_minor(x: Any) -> int:
        try:
            return convert(x, scale)
        except BadValue as bad:
            raise _Bad(bad.reason) from None

    return to_minor


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _checked_day(day: int) -> int:
    if not MIN_DAY <= day <= MAX_DAY:
        raise _Bad("date_range")
    return day


def _date_values(column: pa.ChunkedArray) -> tuple[list[Any], Callable[[Any], int]]:
    """The raw values of a date column (§9.1 "Dates") and a function turning one into a day
    number (days since 1970-01-01); nulls stay None. Timestamps are floored to the day; a
    timestamp with a time zone gives its local calendar date."""
    t = column.type
    if pa.types.is_date32(t):
        return column.cast(pa.int32()).to_pylist(), _checked_day
    if pa.types.is_date64(t):
        return column.cast(pa.int64()).to_pylist(), lambda ms: _checked_day(ms // 86_400_000)
    if pa.types.is_timestamp(t):
        per_second = _PER_SECOND[t.unit]
        if t.tz is None:
            return (column.cast(pa.int64()).to_pylist(),
                    lambda v: _checked_day(v // per_second // 86_400))
        zone = time_zone(t.tz)  # checked by plan_derivation
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

        def local_day(v: int) -> int:
            try:
                local = (epoch + datetime.timedelta(seconds=v // per_second)).astimezone(zone)
            except OverflowError:
                raise _Bad("date_range") from None
            return local.date().toordinal() - EPOCH_ORDINAL

        return column.cast(pa.int64()).to_pylist(), local_day

    def parse(text: Any) -> int:
        if text is _NOT_UTF8:
            raise _Bad("utf8")
        day = parse_iso_date(text)
        if day is None:
            raise _Bad("date_parse", text=text)
        return day

    return _pylist(column), parse


#: What :func:`_pylist` gives for a string that is not valid UTF-8.
_NOT_UTF8 = object()


def _pylist(column: pa.ChunkedArray) -> list[Any]:
    """``column.to_pylist()``, except that a string that is not valid UTF-8 becomes
    ``_NOT_UTF8``: an error only where the value is read (the engine checks each loan id,
    the id of each repayment of an unknown loan and each string date it reads)."""
    try:
        return list(column.to_pylist())
    except UnicodeDecodeError:
        pass
    values: list[Any] = []
    for chunk in column.chunks:
        for scalar in chunk:
            try:
                values.append(scalar.as_py())
            except UnicodeDecodeError:
                values.append(_NOT_UTF8)
    return values


def _read(values: list[Any], convert: Callable[[Any], Any] | None, row: int) -> Any:
    """One value converted (None stays None)."""
    x = values[row]
    if x is None or convert is None:
        return x
    return convert(x)


# ---------------------------------------------------------------------------------------
# docs/metrics.md §9.1-§9.3: loans
# ---------------------------------------------------------------------------------------

@dataclass
class _Payment:
    """A counted repayment up to as_of (§9.2), split into principal, interest and fees
    (§9.3, step 6)."""

    date: int
    amount: int
    principal: int
    interest: int
    fees: int


@dataclass
class _Loan:
    row: int
    loan_id: int | str
    amount: int                    # L, minor units
    rate: float                    # r
    fee: int                       # F, minor units (null -> 0)
    term: int                      # loan_term_days
    disbursed: int | None          # day numbers
    first_due: int | None
    maturity: int | None
    interest_total: int = 0        # §9.3, step 1
    repayable: int = 0             # R
    daily: float = 0.0
    payments: list[_Payment] = field(default_factory=list)

    def in_snapshot(self, as_of: int) -> bool:
        """§9.2: disbursed on or before as_of (a null disbursement date keeps it out)."""
        return self.disbursed is not None and self.disbursed <= as_of


def _read_loans(table: pa.Table, plan: DerivePlan, scale: int) -> list[_Loan]:
    """Check every loans row (§9.1) and compute its amounts (§9.3, step 1).

    Row by row; within a row, the columns in role order, then the derived amounts; the
    first problem raises (so the smallest bad row is reported, as by the engine; §9.6).
    """
    name = plan.loan_columns
    ids = _pylist(table.column(name["loan_id"]))
    money = {role: (table.column(name[role]).to_pylist(),
                    _money_converter(plan.loan_types[role], scale))
             for role in ("loan_amount", "fee_amount")}
    rates = table.column(name["interest_rate"]).to_pylist()
    terms = table.column(name["loan_term_days"]).to_pylist()
    dates = {role: _date_values(table.column(name[role]))
             for role in ("disbursement_date", "first_payment_due_date", "maturity_date")}

    loans: list[_Loan] = []
    first_row_of: dict[int | str, int] = {}
    for row in range(table.num_rows):
        def bad(role: str, reason: str, row: int = row, **fmt: object) -> Exception:
            return error(reason, cell_name("loans", name[role], row), **fmt)

        loan_id = ids[row]
        if loan_id is None:
            raise bad("loan_id", "null")
        if loan_id is _NOT_UTF8:  # (an equal id later would be its duplicate)
            raise bad("loan_id", "utf8")
        if isinstance(loan_id, int) and not fits_int64(loan_id):
            raise bad("loan_id", "id_range")
        if loan_id in first_row_of:
            raise bad("loan_id", "duplicate", first=first_row_of[loan_id])
        first_row_of[loan_id] = row

        values: dict[str, Any] = {}
        for role in ("loan_amount", "interest_rate", "fee_amount", "loan_term_days",
                     "disbursement_date", "first_payment_due_date", "maturity_date"):
            try:
                if role in money:
                    values[role] = _read(*money[role], row)
                elif role in dates:
                    values[role] = _read(*dates[role], row)
                else:
                    values[role] = (rates if role == "interest_rate" else terms)[row]
            except _Bad as problem:
                raise bad(role, problem.reason, **problem.fmt) from None
            if values[role] is None and role in ("loan_amount", "interest_rate",
                                                 "loan_term_days"):
                raise bad(role, "null")
            if role == "interest_rate" and not math.isfinite(values[role]):
                raise bad(role, "rate_nan")
            if role == "loan_term_days":
                if not fits_int64(values[role]):
                    raise bad(role, "int_overflow")
                if values[role] < 0:
                    raise bad(role, "negative_term")

        loan = _Loan(row=row, loan_id=loan_id, amount=values["loan_amount"],
                     rate=values["interest_rate"], fee=values["fee_amount"] or 0,
                     term=values["loan_term_days"], disbursed=values["disbursement_date"],
                     first_due=values["first_payment_due_date"],
                     maturity=values["maturity_date"])

        # §9.3 step 1: interest_total = round_half_even(float64(L) * r); R = L + interest + F
        product = float(loan.amount) * loan.rate
        if not math.isfinite(product) or not fits_int64(round(product)):
            raise error("interest_overflow", f"loans row {row}")
        loan.interest_total = round(product)  # round() of a float: half to even
        loan.repayable = loan.amount + loan.interest_total + loan.fee
        if not (fits_int64(loan.amount + loan.interest_total) and fits_int64(loan.repayable)):
            raise error("repayable_overflow", f"loans row {row}")
        if loan.term > 0 and loan.repayable > 0:
            loan.daily = float(loan.repayable) / float(loan.term)
        loans.append(loan)
    return loans


# ---------------------------------------------------------------------------------------
# docs/metrics.md §9.2, §9.3 step 6: repayments
# ---------------------------------------------------------------------------------------

def _split(loan: _Loan, amount: int, recorded: list[int | None] | None,
           row: int) -> tuple[int, int, int]:
    """(principal, interest, fees) of one payment (§9.3, step 6).

    The recorded split when there is one and its parts (null parts count 0) do not sum to
    0; otherwise interest and fees in proportion to R, each rounded half to even, and the
    principal takes the rest, so the three sum to the payment exactly. When R <= 0 there is
    nothing to be proportional to and all of it is principal.
    """
    if recorded is not None:
        principal, interest, fees = (part or 0 for part in recorded)
        if principal + interest + fees != 0:
            return principal, interest, fees
    if loan.repayable <= 0:
        return amount, 0, 0
    interest = round(float(amount) * float(loan.interest_total) / float(loan.repayable))
    if not fits_int64(interest):
        raise error("alloc_overflow", f"repayments row {row}", part="interest")
    fees = round(float(amount) * float(loan.fee) / float(loan.repayable))
    if not fits_int64(fees):
        raise error("alloc_overflow", f"repayments row {row}", part="fees")
    principal = amount - interest - fees
    if not (fits_int64(amount - interest) and fits_int64(principal)):
        raise error("alloc_overflow", f"repayments row {row}", part="principal")
    return principal, interest, fees


def _read_repayments(table: pa.Table, plan: DerivePlan, loans: list[_Loan], as_of: int,
                     scale: int) -> int:
    """Check every repayment of a known loan and attach the counted ones up to as_of to
    their loan; the number of repayments whose loan_id is not in loans.

    Row by row, the columns in role order, then the split of a counted payment; the first
    problem raises (§9.6). Repayments of unknown loans are not looked at beyond their id
    (§9.2).
    """
    name = plan.repayment_columns
    types = plan.repayment_types
    by_id = {loan.loan_id: loan for loan in loans}
    ids = _pylist(table.column(name["loan_id"]))
    dates, to_day = _date_values(table.column(name["payment_date"]))
    money_roles = ["payment_amount"] + (["principal_paid", "interest_paid", "fees_paid"]
                                        if plan.has_split else [])
    money = {role: (table.column(name[role]).to_pylist(), _money_converter(types[role], scale))
             for role in money_roles}
    reversed_ = (table.column(name["is_reversed"]).to_pylist() if plan.has_reversed
                 else [None] * table.num_rows)

    unknown = 0
    for row in range(table.num_rows):
        if ids[row] is _NOT_UTF8:  # no loan has this id: its row is checked all the same
            raise error("utf8", cell_name("repayments", name["loan_id"], row))
        loan = by_id.get(ids[row])  # a null id, or one not in loans, finds nothing
        if loan is None:
            unknown += 1
            continue
        values: dict[str, Any] = {}
        for role in ["payment_date"] + money_roles:
            try:
                values[role] = (_read(dates, to_day, row) if role == "payment_date"
                                else _read(*money[role], row))
            except _Bad as problem:
                raise error(problem.reason, cell_name("repayments", name[role], row),
                                   **problem.fmt) from None
            if role != "payment_date" and values[role] is not None and values[role] < 0:
                raise error("negative", cell_name("repayments", name[role], row))

        date, amount = values["payment_date"], values["payment_amount"]
        # §9.2: a payment counts unless reversed (null: not reversed) or without a date or
        # amount; and only up to as_of. Payments of loans outside the snapshot are unused.
        counts = reversed_[row] is not True and date is not None and amount is not None
        if not (counts and date <= as_of and loan.in_snapshot(as_of)):
            continue
        recorded = ([values[r] for r in ("principal_paid", "interest_paid", "fees_paid")]
                    if plan.has_split else None)
        principal, interest, fees = _split(loan, amount, recorded, row)
        loan.payments.append(_Payment(date, amount, principal, interest, fees))
    return unknown


# ---------------------------------------------------------------------------------------
# docs/metrics.md §9.3, §9.4: one loan's snapshot row
# ---------------------------------------------------------------------------------------

@dataclass
class _Dates:
    as_of: int
    period_start: int
    roll_from: int
    holidays: set[int]


def days_past_due(loan: _Loan, x: int, paid: int, holidays: set[int]) -> int:
    """§9.3 step 4: days past due at date ``x``, with ``paid`` = T(x)."""
    end = x if loan.maturity is None else min(x, loan.maturity)
    due_days = 0 if loan.first_due is None else business_days(loan.first_due, end, holidays)
    if paid >= loan.repayable:
        return 0  # fully paid
    if loan.daily > 0:
        return max(0, due_days - round_half_away(float(paid) / loan.daily))
    return due_days


def _snapshot_row(loan: _Loan, d: _Dates) -> dict[str, Any]:
    """The §9.3 columns of one loan in the snapshot, as exact integers (money in minor
    units); OverflowError when a total does not fit int64 (checked in LOAN_TOTALS order)."""
    payments = loan.payments  # counted, up to as_of
    paid = sum(p.amount for p in payments)                                  # T(as_of)
    paid_by_roll_from = sum(p.amount for p in payments if p.date <= d.roll_from)
    principal_paid = sum(p.principal for p in payments)
    in_period = [p for p in payments if d.period_start <= p.date]
    interest_collected = sum(p.interest for p in in_period)
    fees_collected = sum(p.fees for p in in_period)
    principal_outstanding = max(0, loan.amount - principal_paid)  # decision: floored at 0

    fully_paid = paid >= loan.repayable
    amount_due_7d = 0
    if not fully_paid:
        # instalments of the next 7 days: from max(as_of + 1, first due date) to
        # min(as_of + 7, maturity); a null date does not limit the window
        start = d.as_of + 1 if loan.first_due is None else max(d.as_of + 1, loan.first_due)
        stop = d.as_of + 7 if loan.maturity is None else min(d.as_of + 7, loan.maturity)
        amount_due_7d = round(loan.daily * float(business_days(start, stop, d.holidays)))

    totals = dict(zip(LOAN_TOTALS, (paid, principal_paid, interest_collected, fees_collected,
                                    principal_outstanding, amount_due_7d)))
    for what, value in totals.items():
        if not fits_int64(value):
            raise error("total_overflow", f"loans row {loan.row}", what=what)

    # §9.3 step 5: tagged when there is no first due date, or it has passed with no counted
    # payment on or before it (a payment on the due date is on time)
    fimr_tagged = loan.first_due is None or (
        loan.first_due < d.as_of and not any(p.date <= loan.first_due for p in payments))

    assert loan.disbursed is not None  # loans in the snapshot were disbursed (§9.2)
    return {
        "current_dpd": days_past_due(loan, d.as_of, paid, d.holidays),
        "previous_dpd": (None if loan.disbursed > d.roll_from
                         else days_past_due(loan, d.roll_from, paid_by_roll_from, d.holidays)),
        "fimr_tagged": fimr_tagged,
        "principal_outstanding": principal_outstanding,
        "interest_collected": interest_collected,
        "fees_collected": fees_collected,
        "fees_due": loan.fee,
        "outstanding_balance": 0 if fully_paid else loan.repayable - paid,
        "amount_due_7d": amount_due_7d,
        "days_since_last_repayment": (d.as_of - max(p.date for p in payments)
                                      if payments else None),
        "loan_age": d.as_of - loan.disbursed,
    }


# ---------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------

def derive_snapshot(loans: Any, repayments: Any, as_of: Any, *, period_start: Any = None,
                    roll_from: Any = None, holidays: Any = None,
                    config: MetricConfig | None = None, threads: int | None = None,
                    columns: Mapping[str, str] | None = None) -> pa.Table:
    """The loan snapshot as of ``as_of`` (docs/metrics.md §9.4); same parameters, result and
    errors as :func:`metriccore.derive_snapshot` (``threads`` is checked, then ignored)."""
    config = check_config(config)
    check_threads(threads)
    roles, named = check_derive_columns(columns)
    as_of_day, period_day, roll_day = check_derive_dates(as_of, period_start, roll_from)
    dates = _Dates(as_of_day, period_day, roll_day, set(check_holidays(holidays)))
    loans_t, repayments_t = checked_table(loans, "loans"), checked_table(repayments, "repayments")
    plan = plan_derivation(loans_t.schema, repayments_t.schema, roles, named)
    scale = config.money_scale

    book = _read_loans(loans_t, plan, scale)
    unknown = _read_repayments(repayments_t, plan, book, as_of_day, scale)
    snapshot = [loan for loan in book if loan.in_snapshot(as_of_day)]  # in loans order
    rows = [_snapshot_row(loan, dates) for loan in snapshot]

    in_snapshot = [loan.in_snapshot(as_of_day) for loan in book]
    kept = keep_rows(loans_t.select(plan.output_columns), np.array(in_snapshot, dtype=bool))
    arrays: list[Any] = list(kept.columns)
    for name, t, _ in SNAPSHOT_COLUMNS:
        values = [row[name] for row in rows]
        if pa.types.is_floating(t):  # money: float64(minor) / 10**scale (§6, §9.4)
            values = [money_value(v, scale) for v in values]
        arrays.append(pa.array(values, type=t))
    return pa.Table.from_arrays(arrays, schema=snapshot_schema(list(kept.schema), unknown))


def officer_metrics_as_of(loans: Any, repayments: Any, as_of: Any,
                          by: str | Sequence[str] = "officer_id", *, period_start: Any = None,
                          roll_from: Any = None, holidays: Any = None,
                          config: MetricConfig | None = None, threads: int | None = None,
                          columns: Mapping[str, str] | None = None) -> pa.Table:
    """:func:`derive_snapshot`, then the reference ``officer_metrics`` of the snapshot,
    with the snapshot's ``unknown_repayments`` schema metadata (§9.4)."""
    return metrics_as_of(derive_snapshot, officer_metrics, loans, repayments, as_of, by,
                         period_start=period_start, roll_from=roll_from, holidays=holidays,
                         config=config, threads=threads, columns=columns)
