"""Hypothesis strategies for the loan derivation (METRICS.md §5): raw ``loans`` and
``repayments`` tables built from logical rows in many Arrow types and layouts.

A :class:`RawCase` keeps the logical values (Python ints and None: money in integer cents,
dates as day numbers) apart from the column types and the physical layout, so that the same
rows can be rebuilt permuted or split into other batches.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import strategies as st

from . import strategies as S
from metriccore._config import MetricConfig

EPOCH = datetime.date(1970, 1, 1)
#: Day numbers around which the books are built: 2024-01-01 is a Monday.
D0 = (datetime.date(2024, 1, 1) - EPOCH).days

INT_ID_TYPES = (pa.int64(), pa.int32(), pa.uint64(), pa.int16(), pa.uint32())
STR_ID_TYPES = (pa.string(), pa.large_string(), pa.string_view(),
                pa.dictionary(pa.int32(), pa.string()))
MONEY_TYPES = (pa.float64(), pa.float64(), pa.float32(), pa.decimal128(14, 2),
               pa.decimal128(20, 4), pa.decimal128(12, 0), pa.int64(), pa.int32())
DATE_TYPES = (pa.date32(), pa.date32(), pa.date64(), pa.timestamp("s"), pa.timestamp("ms"),
              pa.timestamp("us"), pa.timestamp("ns"), pa.timestamp("s", tz="UTC"),
              pa.timestamp("ms", tz="Africa/Lagos"), pa.timestamp("us", tz="+01:00"),
              pa.timestamp("s", tz="America/New_York"), pa.string(), pa.large_string(),
              pa.string_view())
TERM_TYPES = (pa.int32(), pa.int64(), pa.int16(), pa.uint16(), pa.uint64())
RATE_TYPES = (pa.float64(), pa.float64(), pa.float32())

LOAN_COLUMNS = ("loan_id", "loan_amount", "interest_rate", "fee_amount", "loan_term_days",
                "disbursement_date", "first_payment_due_date", "maturity_date")
REPAYMENT_COLUMNS = ("loan_id", "payment_date", "payment_amount", "principal_paid",
                     "interest_paid", "fees_paid", "is_reversed")
MONEY_COLUMNS = {"loan_amount", "fee_amount", "payment_amount", "principal_paid",
                 "interest_paid", "fees_paid"}
DATE_COLUMNS = {"disbursement_date", "first_payment_due_date", "maturity_date",
                "payment_date"}
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


# ----------------------------------------------------------------------------------------
# building Arrow arrays from logical values
# ----------------------------------------------------------------------------------------
def money_array(cents: list, t: pa.DataType) -> pa.Array:
    """Money of type ``t`` from integer cents (floats: cents / 100; integers: whole units;
    decimals rescaled, dropping digits below their scale). Non-int entries (NaN, ...) are
    passed through as they are."""
    def one(c: Any) -> Any:
        if c is None or not isinstance(c, int):
            return c
        if pa.types.is_floating(t):
            return c / 100
        if pa.types.is_decimal(t):
            if t.scale >= 2:
                return Decimal(c).scaleb(-2)
            return Decimal(c // 10**(2 - t.scale)).scaleb(-t.scale)
        return c // 100
    return pa.array([one(c) for c in cents], type=t)


def date_array(days: list, t: pa.DataType, seconds: list | None = None) -> pa.Array:
    """Dates of type ``t`` from day numbers; ``seconds`` adds a time of day to timestamps
    (and date64 milliseconds); strings are ISO dates; str entries are used as they are."""
    seconds = seconds or [0] * len(days)
    if pa.types.is_date32(t):
        return pa.array(days, pa.int32()).cast(t)
    if pa.types.is_date64(t):
        return pa.array([None if d is None else d * 86_400_000 + s * 1000
                         for d, s in zip(days, seconds)], pa.int64()).cast(t)
    if pa.types.is_timestamp(t):
        k = _PER_SECOND[t.unit]
        return pa.array([None if d is None else (d * 86_400 + s) * k + (k - 1 if s % 7 == 3 else 0)
                         for d, s in zip(days, seconds)], pa.int64()).cast(t)
    def iso(d: int) -> str:
        try:
            return (EPOCH + datetime.timedelta(days=d)).isoformat()
        except OverflowError:
            return f"day {d}"
    text = [d if isinstance(d, str) or d is None else iso(d) for d in days]
    return pa.array(text, pa.string()).cast(t)


def id_array(ids: list, t: pa.DataType) -> pa.Array:
    if pa.types.is_integer(t):
        return pa.array(ids, t)
    text = [None if i is None else (i if isinstance(i, str) else f"L-{i}") for i in ids]
    if pa.types.is_dictionary(t):
        return pa.array(text, pa.string()).dictionary_encode()
    return pa.array(text, pa.string()).cast(t)


@dataclasses.dataclass(frozen=True)
class RawCase:
    """Logical loans and repayments plus types, arguments and layout."""

    loans: dict[str, list]            # column -> values (money in cents, dates in days)
    loan_types: dict[str, pa.DataType]
    repayments: dict[str, list]
    repayment_types: dict[str, pa.DataType]
    extra: dict[str, tuple[pa.DataType, list]]   # carried loans columns
    times: dict[str, list]            # time of day (seconds) of timestamp date columns
    as_of: tuple[int, ...]
    period_start: int | None = None
    roll_from: int | None = None
    holidays: tuple[int, ...] | None = None
    config: MetricConfig | None = None
    columns: dict[str, str] | None = None
    loan_splits: tuple[int, ...] = ()
    repayment_splits: tuple[int, ...] = ()

    @property
    def n_loans(self) -> int:
        return len(self.loans["loan_id"])

    @property
    def n_repayments(self) -> int:
        return len(self.repayments["loan_id"])

    def _name(self, role: str) -> str:
        return (self.columns or {}).get(role, role)

    def _array(self, role: str, values: list, t: pa.DataType, times: list | None) -> pa.Array:
        if role == "loan_id":
            return id_array(values, t)
        if role in MONEY_COLUMNS:
            return money_array(values, t)
        if role in DATE_COLUMNS:
            return date_array(values, t, times)
        return pa.array(values, t)

    def loans_table(self) -> pa.Table:
        cols: dict[str, pa.Array] = {}
        for role, t in self.loan_types.items():
            cols[self._name(role)] = self._array(role, self.loans[role], t, self.times.get(role))
            if role == "loan_id":
                for name, (et, values) in self.extra.items():
                    cols[name] = pa.array(values, et)
        table = pa.table(cols)
        return S.rechunk(table, self.loan_splits) if self.loan_splits else table

    def repayments_table(self) -> pa.Table:
        cols = {self._name(role) if role != "loan_id" else self._name("loan_id"):
                self._array(role, self.repayments[role], t, self.times.get("r_" + role))
                for role, t in self.repayment_types.items()}
        table = pa.table(cols)
        return S.rechunk(table, self.repayment_splits) if self.repayment_splits else table

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self.period_start is not None:
            kw["period_start"] = day(self.period_start)
        if self.roll_from is not None:
            kw["roll_from"] = day(self.roll_from)
        if self.holidays is not None:
            kw["holidays"] = [day(h) for h in self.holidays]
        if self.config is not None:
            kw["config"] = self.config
        if self.columns is not None:
            kw["columns"] = dict(self.columns)
        return kw

    def permute_repayments(self, perm: list[int]) -> RawCase:
        reps = {k: [v[i] for i in perm] for k, v in self.repayments.items()}
        times = {k: ([v[i] for i in perm] if k.startswith("r_") else v)
                 for k, v in self.times.items()}
        return dataclasses.replace(self, repayments=reps, times=times, repayment_splits=())

    def permute_loans(self, perm: list[int]) -> RawCase:
        loans = {k: [v[i] for i in perm] for k, v in self.loans.items()}
        extra = {k: (t, [v[i] for i in perm]) for k, (t, v) in self.extra.items()}
        times = {k: ([v[i] for i in perm] if not k.startswith("r_") else v)
                 for k, v in self.times.items()}
        return dataclasses.replace(self, loans=loans, extra=extra, times=times, loan_splits=())

    def with_repayments(self, **changes: list) -> RawCase:
        reps = dict(self.repayments)
        reps.update(changes)
        return dataclasses.replace(self, repayments=reps)

    def with_loans(self, **changes: list) -> RawCase:
        loans = dict(self.loans)
        loans.update(changes)
        return dataclasses.replace(self, loans=loans)


def day(d: int) -> datetime.date:
    return EPOCH + datetime.timedelta(days=d)


# ----------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------
CENTS = st.one_of(st.integers(0, 10**7), st.sampled_from([0, 1, 50, 100, 12345, 250000]))


def _splits(draw, n: int) -> tuple[int, ...]:
    k = draw(st.integers(0, 3))
    return tuple(sorted(draw(st.lists(st.integers(0, n), min_size=k, max_size=k))))


@st.composite
def raw_cases(draw, *, max_loans: int = 10, max_repayments: int = 40,
              money_scales=(0, 1, 2, 2, 2, 3, 4)) -> RawCase:
    """A valid raw book (nothing raises) with one to three as_of dates."""
    n = draw(st.integers(0, max_loans))
    string_ids = draw(st.integers(0, 3)) == 0
    id_type = draw(st.sampled_from(STR_ID_TYPES if string_ids else INT_ID_TYPES))
    hi_id = 30 if id_type != pa.uint64() else 2**64 - 1
    lo_id = -30 if pa.types.is_signed_integer(id_type) else 0
    ids = draw(st.lists(st.integers(lo_id, min(hi_id, 10**6)), min_size=n, max_size=n,
                        unique=True))
    disbursed = [draw(st.one_of(st.integers(D0 - 200, D0 + 60), st.none()))
                 if draw(st.integers(0, 12)) else None for _ in range(n)]
    term = [draw(st.sampled_from([0, 7, 30, 84, 91, 180, 365])) for _ in range(n)]
    first_due = []
    maturity = []
    for d, t in zip(disbursed, term):
        base = d if d is not None else D0
        first_due.append(None if draw(st.integers(0, 8)) == 0
                         else base + draw(st.sampled_from([0, 1, 5, 6, 7, 14, 30])))
        maturity.append(None if draw(st.integers(0, 8)) == 0
                        else base + draw(st.sampled_from([t, t, 7, 40, 400])))
    amount = [draw(st.one_of(st.integers(1, 5 * 10**7), st.sampled_from([0, 100, 12345])))
              for _ in range(n)]
    if n and draw(st.integers(0, 9)) == 0:
        amount[0] = -amount[0]                   # negative money is accepted as given
    fee = [None if draw(st.integers(0, 5)) == 0 else draw(CENTS) for _ in range(n)]
    rate = [draw(st.sampled_from([0.0, 0.1, 0.28, 0.125, 1 / 3, 0.045, 0.5, 2.675, -0.05]))
            for _ in range(n)]

    loan_types = {
        "loan_id": id_type,
        "loan_amount": draw(st.sampled_from(MONEY_TYPES)),
        "interest_rate": draw(st.sampled_from(RATE_TYPES)),
        "fee_amount": draw(st.sampled_from(MONEY_TYPES)),
        "loan_term_days": draw(st.sampled_from(TERM_TYPES)),
        "disbursement_date": draw(st.sampled_from(DATE_TYPES)),
        "first_payment_due_date": draw(st.sampled_from(DATE_TYPES)),
        "maturity_date": draw(st.sampled_from(DATE_TYPES)),
    }
    loans = {"loan_id": ids, "loan_amount": amount, "interest_rate": rate, "fee_amount": fee,
             "loan_term_days": term, "disbursement_date": disbursed,
             "first_payment_due_date": first_due, "maturity_date": maturity}
    times = {role: [draw(st.sampled_from([0, 1, 3600, 43200, 86399])) for _ in range(n)]
             for role in DATE_COLUMNS - {"payment_date"}}

    # repayments: mostly of known loans, some of unknown ones (and null ids); dates around
    # the loans' dates, the due dates themselves included
    m = draw(st.integers(0, max_repayments))
    unknown_ids = (["nope", ""] if string_ids else [2**64 - 5, 10**6 + 7]
                   if id_type == pa.uint64() else [lo_id - 1, 10**6 + 7])
    r_ids, r_dates, r_amounts = [], [], []
    for _ in range(m):
        kind = draw(st.integers(0, 19))
        if n and kind < 17:
            j = draw(st.integers(0, n - 1))
            r_ids.append(ids[j])
            base = (disbursed[j] if disbursed[j] is not None else D0)
            choice = draw(st.integers(0, 5))
            if choice == 0 and first_due[j] is not None:
                r_dates.append(first_due[j] + draw(st.sampled_from([-1, 0, 0, 1])))
            else:
                r_dates.append(base + draw(st.integers(-5, 300)))
        else:
            r_ids.append(None if kind == 19 else draw(st.sampled_from(unknown_ids)))
            r_dates.append(D0 + draw(st.integers(-100, 200)))
        r_amounts.append(draw(CENTS))
    for lst in (r_dates, r_amounts):
        for i in range(m):
            if draw(st.integers(0, 14)) == 0:
                lst[i] = None
    repayments: dict[str, list] = {"loan_id": r_ids, "payment_date": r_dates,
                                   "payment_amount": r_amounts}
    repayment_types = {"loan_id": id_type if draw(st.integers(0, 3)) else (
                           draw(st.sampled_from(STR_ID_TYPES)) if string_ids
                           else draw(st.sampled_from(INT_ID_TYPES))),
                       "payment_date": draw(st.sampled_from(DATE_TYPES)),
                       "payment_amount": draw(st.sampled_from(MONEY_TYPES))}
    if not string_ids:
        rt = repayment_types["loan_id"]
        lo, hi = S.int_range(rt)
        if any(i is not None and not (lo <= i <= hi) for i in r_ids):
            repayment_types["loan_id"] = pa.int64() if id_type != pa.uint64() else pa.uint64()
        if repayment_types["loan_id"] == pa.uint64() and any(
                i is not None and i < 0 for i in r_ids):
            repayment_types["loan_id"] = pa.int64()
        if any(i is not None and i >= 2**63 for i in r_ids):
            repayment_types["loan_id"] = pa.uint64()
    if draw(st.booleans()):
        # the recorded split: all three columns, parts null, zero, or set
        for role in ("principal_paid", "interest_paid", "fees_paid"):
            repayments[role] = [draw(st.one_of(st.none(), st.just(0), CENTS)) for _ in range(m)]
            repayment_types[role] = draw(st.sampled_from(MONEY_TYPES))
    if draw(st.integers(0, 3)):
        repayments["is_reversed"] = [draw(st.sampled_from([False, False, True, None]))
                                     for _ in range(m)]
        repayment_types["is_reversed"] = pa.bool_()
    times["r_payment_date"] = [draw(st.sampled_from([0, 7200, 86399])) for _ in range(m)]

    extra: dict[str, tuple[pa.DataType, list]] = {}
    if draw(st.booleans()):
        extra["officer_id"] = (pa.int32(), [draw(st.integers(1, 3)) for _ in range(n)])
    if draw(st.booleans()):
        extra["branch"] = (pa.dictionary(pa.int8(), pa.string()),
                           [draw(st.sampled_from(["a", "b", None])) for _ in range(n)])
    if draw(st.integers(0, 4)) == 0:
        extra["notes"] = (pa.list_(pa.int64()), [[i] for i in range(n)])

    n_dates = draw(st.integers(1, 3))
    as_of = tuple(draw(st.one_of(st.integers(D0 - 60, D0 + 260),
                                 st.sampled_from([D0, D0 + 5, D0 + 6, D0 + 31])))
                  for _ in range(n_dates))
    holidays = None
    if draw(st.integers(0, 2)):
        holidays = tuple(draw(st.lists(st.integers(D0 - 30, D0 + 280), max_size=12)))
    config = None
    if draw(st.booleans()):
        config = MetricConfig(money_scale=draw(st.sampled_from(money_scales)))
    columns = None
    if draw(st.integers(0, 5)) == 0:
        columns = {"payment_amount": "amount", "disbursement_date": "disbursed_on"}
    return RawCase(loans=loans, loan_types=loan_types, repayments=repayments,
                   repayment_types=repayment_types, extra=extra, times=times, as_of=as_of,
                   holidays=holidays, config=config, columns=columns,
                   loan_splits=_splits(draw, n), repayment_splits=_splits(draw, m))


@st.composite
def windows(draw, as_of: int) -> dict[str, int | None]:
    """period_start and roll_from for an as_of: default, or a date on or before it."""
    out: dict[str, int | None] = {"period_start": None, "roll_from": None}
    if draw(st.booleans()):
        out["period_start"] = as_of - draw(st.sampled_from([0, 1, 6, 14, 45, 400]))
    if draw(st.booleans()):
        out["roll_from"] = as_of - draw(st.sampled_from([0, 1, 7, 30, 90, 400]))
    return out


BAD_LOAN_VALUES = {
    "loan_id": ["dup", None],
    "loan_amount": [None, math.nan, math.inf, 2.0**60],
    "interest_rate": [None, math.nan, -math.inf, 1e300],
    "fee_amount": [math.nan, 2**62 * 100],
    "loan_term_days": [None, -1, -30],
    "disbursement_date": ["2024-02-30", "yesterday", "2024-1-05", " 2024-01-05", 3_000_000],
    "first_payment_due_date": ["2024-13-01", "0000-01-01", "2024-01-05T00:00"],
    "maturity_date": ["", "2024/01/05", -800_000],
}
BAD_REPAYMENT_VALUES = {
    "payment_date": ["2023-02-29", "not a date", "２０２４-01-01"],
    "payment_amount": [-1, -100, math.nan, math.inf],
    "principal_paid": [-1, math.nan],
    "interest_paid": [-5],
    "fees_paid": [-1, math.inf],
}


@st.composite
def bad_raw_cases(draw) -> RawCase:
    """A raw book with a few bad cells (or none): duplicates, nulls where they are not
    allowed, negative terms and payments, NaN, unparseable dates; for error equality."""
    case = draw(raw_cases(max_loans=8, max_repayments=25))
    loans = {k: list(v) for k, v in case.loans.items()}
    loan_types = dict(case.loan_types)
    reps = {k: list(v) for k, v in case.repayments.items()}
    rep_types = dict(case.repayment_types)
    for _ in range(draw(st.integers(0, 3))):
        if case.n_loans and draw(st.booleans()):
            role = draw(st.sampled_from(sorted(BAD_LOAN_VALUES)))
            row = draw(st.integers(0, case.n_loans - 1))
            value = draw(st.sampled_from(BAD_LOAN_VALUES[role]))
            if role == "loan_id":
                if value == "dup" and case.n_loans > 1:
                    loans["loan_id"][row] = loans["loan_id"][(row + 1) % case.n_loans]
                elif value is None:
                    loans["loan_id"][row] = None
                continue
            if role in DATE_COLUMNS:   # text, or a date32 beyond the year 9999
                loan_types[role] = pa.date32() if isinstance(value, int) else pa.string()
            elif isinstance(value, float):
                loan_types[role] = pa.float64()
            elif role == "loan_term_days" and value is not None:
                loan_types[role] = pa.int32()
            loans[role][row] = value
        elif case.n_repayments:
            role = draw(st.sampled_from(sorted(BAD_REPAYMENT_VALUES)))
            if role not in reps:
                continue
            row = draw(st.integers(0, case.n_repayments - 1))
            value = draw(st.sampled_from(BAD_REPAYMENT_VALUES[role]))
            if role in DATE_COLUMNS:
                rep_types[role] = pa.string()
            elif isinstance(value, float):
                rep_types[role] = pa.float64()
            reps[role][row] = value
    edge = draw(st.sampled_from([None, None, None, "loan", "payments", "allocation"]))
    if edge is not None and case.n_loans:
        # amounts at the edge of int64 (money_scale 0, whole units): the interest total,
        # the repayable amount, a loan's totals or a payment's allocation may overflow
        case = dataclasses.replace(case, config=MetricConfig(money_scale=0))
        for role in ("loan_amount", "fee_amount"):
            loan_types[role] = pa.int64()
            loans[role] = [None if v is None or not isinstance(v, int) else v // 100 * 100
                           for v in loans[role]]
        big = draw(st.sampled_from([2**62, 2**61 + 12345, 2**63 - 1, 4 * 10**18]))
        if edge == "loan":
            loans["loan_amount"][0] = big * 100
            if draw(st.booleans()):
                loans["fee_amount"][0] = big * 100
        elif edge == "payments" and case.n_repayments:
            rep_types["payment_amount"] = pa.int64()
            reps["payment_amount"] = [None if a is None else big * 100
                                      for a in reps["payment_amount"]]
        elif edge == "allocation":
            # R small and positive, interest huge: pay * interest / R leaves int64
            loan_types["interest_rate"] = pa.float64()
            amount = 2**61
            interest = round(float(amount) * 2.675)
            loans["loan_amount"][0] = amount * 100
            loans["interest_rate"][0] = 2.675
            loans["fee_amount"][0] = -(amount + interest - 1000) * 100
            rep_types["payment_amount"] = pa.int64()
            reps["payment_amount"] = [None if a is None else 10**6 * 100
                                      for a in reps["payment_amount"]]
    return dataclasses.replace(case, loans=loans, loan_types=loan_types, repayments=reps,
                               repayment_types=rep_types)


def np_case_tables(n_loans: int, per_loan: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """A larger valid raw book (numpy-built, via ``metriccore.synthetic.raw_loan_book``)."""
    from metriccore.synthetic import raw_loan_book
    loans, repayments = raw_loan_book(n_loans, per_loan, n_officers=max(1, n_loans // 50),
                                      seed=seed)
    return loans, repayments


def shuffled(table: pa.Table, seed: int) -> pa.Table:
    perm = np.random.default_rng(seed).permutation(table.num_rows)
    return table.take(pa.array(perm))
