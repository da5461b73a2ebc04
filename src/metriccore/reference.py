"""Pure-Python reference implementation of the officer metrics.

This module is the oracle the compiled engine is tested against. It follows METRICS.md
§1-§4, §6 and §7 one step at a time, using only Python integers, floats and fractions for
the arithmetic, so that a reviewer can check it against the spec line by line. pyarrow is
used only to read the input and to build the output table.

It is slow (one Python loop iteration per loan) and is meant for tests and small inputs.
Results are equal, bit for bit, to those of :func:`metriccore.officer_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

import pyarrow as pa

from . import _schema
from ._checks import (EXPECTED_BOOL, EXPECTED_DAY, EXPECTED_KEY, EXPECTED_MONEY, check_by,
                      check_columns, check_config, check_threads, check_type, column_index)
from ._config import MetricConfig
from ._errors import error
from ._tables import as_table

__all__ = ["officer_metrics", "portfolio_metrics", "derive_snapshot", "officer_metrics_as_of"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: A float money value may not exceed this many minor units in magnitude (§1): beyond it
#: float64 no longer represents every integer, so "exact minor units" would be a fiction.
FLOAT_MINOR_LIMIT = 2**53


# ---------------------------------------------------------------------------------------
# Small numeric helpers (the notation paragraph at the top of METRICS.md, and §6)
# ---------------------------------------------------------------------------------------

def fits_int64(n: int) -> bool:
    """True when the exact integer ``n`` is representable as int64."""
    return INT64_MIN <= n <= INT64_MAX


def clamp01(x: float) -> float:
    """Clamp to [0, 1] with Python's min/max (``max(0.0, x)`` keeps ``x`` only if x > 0.0)."""
    return min(1.0, max(0.0, x))


def safe(a: int, b: int) -> float:
    """Ratio of two exact integers, 0.0 when the denominator is not positive (§6).

    Each integer is converted to the nearest double once, then one float64 division.
    """
    return float(a) / float(b) if b > 0 else 0.0


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)`` with the addition done in float64 (§6)."""
    return math.floor(x + 0.5)


def money_value(minor: int, scale: int) -> float:
    """A money aggregate in currency units: float64(minor) / 10**scale (§6)."""
    return float(minor) / float(10**scale)


# ---------------------------------------------------------------------------------------
# Converting one input value to an exact integer (§1 "Money", §6 overflow rules)
# ---------------------------------------------------------------------------------------

class _BadValue(Exception):
    """A single input value that cannot be used: its reason in ``_errors.CATALOGUE``; the
    caller adds the column and row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.row = -1  # set by the column reader


def float_to_minor(x: float, scale: int) -> int:
    """Minor units of a float money value: ``round_half_even(x * 10**scale)`` in float64.

    NaN or infinity is rejected first; then a product that is not finite or whose rounded
    value exceeds 2**53 in magnitude.
    """
    if not math.isfinite(x):
        raise _BadValue("nan")
    product = x * float(10**scale)
    if not math.isfinite(product):
        raise _BadValue("big")
    minor = round(product)  # Python's round() on a float is round-half-even
    if abs(minor) > FLOAT_MINOR_LIMIT:
        raise _BadValue("big")
    return minor


def decimal_to_minor(d: Decimal, scale: int) -> int:
    """Minor units of a decimal money value, rounding half-even when it has more decimals.

    The exact unscaled integer is taken from ``as_tuple()``; no Decimal context arithmetic is
    used, because its 28-digit precision is less than decimal128's 38 digits.
    """
    sign, digits, exponent = d.as_tuple()
    unscaled = 0
    for digit in digits:
        unscaled = unscaled * 10 + digit
    if sign:
        unscaled = -unscaled
    assert isinstance(exponent, int)  # decimal128 holds no NaN or infinity
    # value = unscaled * 10**exponent, so value * 10**scale = unscaled * 10**shift.
    shift = exponent + scale
    minor: int
    if shift >= 0:
        minor = unscaled * 10**shift
    else:
        minor = round(Fraction(unscaled, 10**-shift))  # round() on a Fraction: half-even
    if not fits_int64(minor):
        raise _BadValue("money_overflow")
    return minor


def integer_to_minor(x: int, scale: int) -> int:
    """Minor units of an integer money value, which counts whole currency units."""
    minor: int = x * 10**scale
    if not fits_int64(minor):
        raise _BadValue("money_overflow")
    return minor


def check_day(x: int) -> int:
    """A day count must fit int64 (only uint64 inputs can fail)."""
    if not fits_int64(x):
        raise _BadValue("int_overflow")
    return x


# ---------------------------------------------------------------------------------------
# Reading the input
# ---------------------------------------------------------------------------------------

#: Any accepted input as a pyarrow Table (shared with the derivation).
_to_table = as_table


def _is_string_like(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t))


def _is_key_type(t: pa.DataType) -> bool:
    # Dictionary indices are always integers in Arrow; the values decide.
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_integer(t) or _is_string_like(t)


def _money_kind(t: pa.DataType) -> str | None:
    if pa.types.is_float64(t) or pa.types.is_float32(t):
        return "float"
    if pa.types.is_decimal128(t):
        return "decimal"
    if pa.types.is_integer(t):
        return "integer"
    return None


def _find_column(table: pa.Table, name: str, role: str | None) -> pa.DataType:
    """Type of the column ``name``; ValueError when it is missing (or ambiguous)."""
    return table.schema.field(column_index(table.schema.names, name, role)).type


def _role_type_ok(role: str, t: pa.DataType) -> tuple[bool, str]:
    if role in _schema.BOOL_COLUMNS:
        return pa.types.is_boolean(t), EXPECTED_BOOL
    if role in _schema.DAY_COLUMNS:
        return pa.types.is_integer(t), EXPECTED_DAY
    return _money_kind(t) is not None, EXPECTED_MONEY


def _read_role(values: list[Any], role: str, t: pa.DataType, scale: int) -> list[Any]:
    """Convert one role's raw Python values to the exact integers the aggregates use.

    bool stays bool, days stay int, money becomes int minor units; nulls stay None.
    Raises _BadValue with the row (``.row``) of the first value that cannot be used.
    """
    if role in _schema.BOOL_COLUMNS:
        return values
    convert: Callable[[Any], int]
    if role in _schema.DAY_COLUMNS:
        convert = check_day
    else:
        kind = _money_kind(t)
        assert kind is not None  # the column types are checked before any value is read
        to_minor: dict[str, Callable[..., int]] = {
            "float": float_to_minor, "decimal": decimal_to_minor, "integer": integer_to_minor}
        convert = partial(to_minor[kind], scale=scale)
    out: list[Any] = []
    for row, x in enumerate(values):
        if x is None:
            out.append(None)
            continue
        try:
            out.append(convert(x))
        except _BadValue as bad:
            bad.row = row
            raise
    return out


class _Loan(NamedTuple):
    """One input row after conversion (money in minor units, None for null)."""

    fimr_tagged: bool | None
    current_dpd: int | None
    previous_dpd: int | None
    principal_outstanding: int | None
    amount_due_7d: int | None
    interest_collected: int | None
    fees_collected: int | None
    fees_due: int | None
    outstanding_balance: int | None
    days_since_last_repayment: int | None
    loan_age: int | None


assert _Loan._fields == _schema.INPUT_COLUMNS


def _read_input(table: pa.Table, keys: list[str], roles: dict[str, str], scale: int
                ) -> tuple[list[pa.DataType], list[list[Any]], list[_Loan]]:
    """Check the used columns, then convert every row.

    Order of checks: all missing columns (keys, then roles in §1 order), then all types
    (same order), and only then the values. Of several bad values the one in the smallest
    row wins; on the same row the first column in (keys, roles in §1 order) wins. Key
    columns never hold a bad value, so in practice the tie goes to the first role.
    """
    key_types = [_find_column(table, name, None) for name in keys]
    role_types = {role: _find_column(table, roles[role], role)
                  for role in _schema.INPUT_COLUMNS}
    for name, t in zip(keys, key_types):
        check_type(name, str(t), _is_key_type(t), EXPECTED_KEY)
    for role, t in role_types.items():
        check_type(roles[role], str(t), *_role_type_ok(role, t))

    # to_pylist decodes dictionaries and string views and counts rows across chunks.
    key_values = [table.column(name).to_pylist() for name in keys]
    columns = []
    first_bad: tuple[int, Exception] | None = None
    for role, t in role_types.items():
        try:
            columns.append(_read_role(table.column(roles[role]).to_pylist(), role, t, scale))
        except _BadValue as bad:
            columns.append([])
            if first_bad is None or bad.row < first_bad[0]:  # strict: earlier role wins ties
                first_bad = (bad.row, error(bad.reason, f"column '{roles[role]}' row {bad.row}"))
    if first_bad is not None:
        raise first_bad[1]
    return key_types, key_values, [_Loan(*row) for row in zip(*columns)]


# ---------------------------------------------------------------------------------------
# §2 Per-group aggregates
# ---------------------------------------------------------------------------------------

@dataclass
class _Totals:
    """Exact per-group aggregates of §2; the field names and order are §7's."""

    loans: int = 0
    first_miss: int = 0
    portfolio: int = 0
    dpd1to6_balance: int = 0
    par_balance: int = 0
    prev_dpd1to6_balance: int = 0
    rolled_balance: int = 0
    amount_due_7d: int = 0
    interest_collected: int = 0
    fees_collected: int = 0
    fees_due: int = 0
    active_loans: int = 0
    sum_days_since_last_repayment: int = 0
    n_days_since_last_repayment: int = 0
    sum_loan_age: int = 0
    n_loan_age: int = 0


assert tuple(f.name for f in fields(_Totals)) == tuple(n for n, _ in _schema.AGGREGATES)


def _in_range(x: int | None, low: int, high: int) -> bool:
    """``low <= x <= high``; a null day is in no bucket (§1 Nulls)."""
    return x is not None and low <= x <= high


def _add_loan(t: _Totals, loan: _Loan, par_days: int, active_threshold_minor: int) -> None:
    """Add one loan to its group's totals (§2), skipping nulls as SQL sums do (§1)."""
    t.loans += 1  # every row counts
    if loan.fimr_tagged is True:  # null is "not tagged"
        t.first_miss += 1

    p = loan.principal_outstanding or 0  # a null principal adds nothing to any balance
    dpd, prev = loan.current_dpd, loan.previous_dpd
    t.portfolio += p
    if _in_range(dpd, 1, 6):
        t.dpd1to6_balance += p
    if dpd is not None and dpd >= par_days:  # "at risk"
        t.par_balance += p
    if _in_range(prev, 1, 6):
        t.prev_dpd1to6_balance += p
        if _in_range(dpd, 7, 30):  # rolled from bucket 1-6 into 7-30
            t.rolled_balance += p

    t.amount_due_7d += loan.amount_due_7d or 0
    t.interest_collected += loan.interest_collected or 0
    t.fees_collected += loan.fees_collected or 0
    t.fees_due += loan.fees_due or 0

    # Active: balance strictly above the threshold, compared exactly in minor units.
    balance = loan.outstanding_balance
    if balance is not None and balance > active_threshold_minor:
        t.active_loans += 1
        if loan.days_since_last_repayment is not None:
            t.sum_days_since_last_repayment += loan.days_since_last_repayment
            t.n_days_since_last_repayment += 1
        if loan.loan_age is not None:
            t.sum_loan_age += loan.loan_age
            t.n_loan_age += 1


def _yield_minor(t: _Totals) -> int:
    """The exact interest + fees sum behind ``yield`` and ``ayr``."""
    return t.interest_collected + t.fees_collected


def _check_overflow(t: _Totals, group: str) -> None:
    """OverflowError when an exact aggregate (§7 order, then the yield sum) leaves int64."""
    checked = [(name, getattr(t, name)) for name, _ in _schema.AGGREGATES]
    checked.append(("yield", _yield_minor(t)))
    for name, value in checked:
        if not fits_int64(value):
            raise error("aggregate_overflow", name=name, group=group)


# ---------------------------------------------------------------------------------------
# §3 Per-group metrics and §4 bands
# ---------------------------------------------------------------------------------------

def band_at_most(x: float, green: float, watch: float) -> str:
    """Band of a metric where lower is better (fimr, slippage, roll): green, watch, flag."""
    if x <= float(green):
        return "green"
    if x <= float(watch):
        return "watch"
    return "flag"


def band_at_least(x: float, green: float, watch: float) -> str:
    """Band of a metric where higher is better (ayr, dqi): green, watch, flag."""
    if x >= float(green):
        return "green"
    if x >= float(watch):
        return "watch"
    return "flag"


def risk_band(score: int, config: MetricConfig) -> str:
    """Band of the integer risk score: green, watch, amber, red."""
    if score >= config.risk_green:
        return "green"
    if score >= config.risk_watch:
        return "watch"
    if score >= config.risk_amber:
        return "amber"
    return "red"


def repayment_delay_rate(t: _Totals) -> float | None:
    """rdr in percent, or None when undefined (no counted days, no ages, or mean age <= 0).

    a = mean days since the last repayment and g = mean loan age, both over active loans.
    rdr is 100 when a = 0 and falls to 0 when a reaches a quarter of g (negative beyond).
    """
    if t.n_days_since_last_repayment <= 0 or t.n_loan_age <= 0:
        return None
    a = float(t.sum_days_since_last_repayment) / float(t.n_days_since_last_repayment)
    g = float(t.sum_loan_age) / float(t.n_loan_age)
    if g <= 0.0:
        return None
    return (1.0 - (a / g) / 0.25) * 100.0


def delay_penalty(rdr: float | None) -> float:
    """pen_rdr: no penalty when rdr is undefined or above 100, else up to 40 points."""
    if rdr is None or rdr > 100.0:
        return 0.0
    return min(40.0, max(0.0, 40.0 * (1.0 - rdr / 100.0)))


def _metrics(t: _Totals, config: MetricConfig) -> dict[str, Any]:
    """Ratios, scores and bands of one group (§3, §4), each evaluated as §6 fixes it."""
    yield_minor = _yield_minor(t)
    fimr = safe(t.first_miss, t.loans)
    slippage = safe(t.dpd1to6_balance, t.amount_due_7d)
    roll = safe(t.rolled_balance, t.prev_dpd1to6_balance)
    frr = safe(t.fees_collected, t.fees_due)
    porr = safe(t.par_balance, t.portfolio)
    ayr = safe(yield_minor, t.par_balance)  # AYR divides by PAR balance, not portfolio
    rdr = repayment_delay_rate(t)
    oti = clamp01(1.0 - slippage)
    pen_rdr = delay_penalty(rdr)

    # Risk score: start at 100 and subtract penalties left to right, then clamp to [0, 100].
    raw = (100.0 - 20.0 * clamp01(porr) - 15.0 * clamp01(fimr) - 10.0 * clamp01(roll)
           - pen_rdr - 15.0 * (1.0 - clamp01(ayr)))
    raw = min(100.0, max(0.0, raw))
    risk_score = round_half_up(raw)

    # DQI weights: 50 % risk quality (unrounded raw score), 35 % on-time index, 15 % FIMR.
    dqi = round_half_up(100.0 * (0.50 * (raw / 100.0) + 0.35 * oti
                                 + 0.15 * (1.0 - clamp01(fimr))))

    c = config
    return {
        "fimr": fimr,
        "slippage": slippage,
        "roll": roll,
        "frr": frr,
        "porr": porr,
        "yield": money_value(yield_minor, c.money_scale),
        "ayr": ayr,
        "rdr": rdr,
        "oti": oti,
        "pen_rdr": pen_rdr,
        "risk_score_raw": raw,
        "risk_score": risk_score,
        "dqi": dqi,
        "fimr_band": band_at_most(fimr, c.fimr_green, c.fimr_watch),
        "slippage_band": band_at_most(slippage, c.slippage_green, c.slippage_watch),
        "roll_band": band_at_most(roll, c.roll_green, c.roll_watch),
        "ayr_band": band_at_least(ayr, c.ayr_green, c.ayr_watch),
        "dqi_band": band_at_least(dqi, c.dqi_green, c.dqi_watch),
        "risk_band": risk_band(risk_score, c),
    }


# ---------------------------------------------------------------------------------------
# §7 Output
# ---------------------------------------------------------------------------------------

def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[Any, ...], ...]:
    """Ascending per key column, nulls last (ints numerically, strings by code point)."""
    return tuple((1,) if v is None else (0, v) for v in key)


def _describe_group(key: tuple[Any, ...]) -> str:
    return repr(key[0]) if len(key) == 1 else repr(key)


def officer_metrics(data: Any, by: str | Sequence[str] = "officer_id", *,
                    config: MetricConfig | None = None, threads: int | None = None,
                    columns: Mapping[str, str] | None = None) -> pa.Table:
    """Metrics of each group of loans (METRICS.md §2-§4), as a pyarrow Table (§7).

    Parameters
    ----------
    data : pyarrow.Table, RecordBatch, RecordBatchReader, pandas.DataFrame or Arrow-exporting
        The loan snapshot, one row per loan, with the columns of METRICS.md §1. Objects
        implementing ``__arrow_c_stream__`` or ``__arrow_c_array__`` (polars, duckdb) work.
    by : str or sequence of str, default "officer_id"
        Key column(s) to group by. ``()`` computes the portfolio: exactly one row.
    config : MetricConfig, optional
        Thresholds and parameters; ``MetricConfig()`` when omitted.
    threads : int, optional
        Accepted for compatibility with the engine and validated (an int >= 1), then ignored.
    columns : mapping of str to str, optional
        ``{role: column name}`` for input columns not named as in §1.

    Returns
    -------
    pyarrow.Table
        One row per group sorted by the keys (ascending, nulls last), with the schema of
        ``_schema.output_schema``: the keys, the aggregates, the metrics and the bands.

    Raises
    ------
    TypeError
        Bad argument types, unsupported input, or a used column of an unsupported Arrow type.
    ValueError
        Unknown column role, duplicate or missing column, NaN/infinite money, or a float
        money value beyond 2**53 minor units.
    OverflowError
        A value or an aggregate that does not fit int64 (minor units for money).
    """
    config = check_config(config)
    check_threads(threads)  # the reference is single-threaded: validated, then ignored
    keys = check_by(by)
    roles = check_columns(columns)
    table = _to_table(data)
    key_types, key_values, loans = _read_input(table, keys, roles, config.money_scale)

    # Group. Without keys every row goes to the single group (), which exists even when
    # there are no rows; with keys, a null key value forms its own group.
    groups: dict[tuple[Any, ...], _Totals] = {} if keys else {(): _Totals()}
    threshold = config.active_threshold_minor
    for key, loan in zip(zip(*key_values) if keys else repeat(()), loans):
        totals = groups.get(key)
        if totals is None:
            totals = groups[key] = _Totals()
        _add_loan(totals, loan, config.par_days, threshold)

    order = sorted(groups, key=_sort_key)
    for key in order:
        _check_overflow(groups[key], f" for group {_describe_group(key)}" if keys else "")

    schema = _schema.output_schema(list(zip(keys, key_types)))
    out: dict[str, list[Any]] = {field.name: [] for field in schema}
    for key in order:
        totals = groups[key]
        for name, value in zip(keys, key):
            out[name].append(value)
        for name, is_money in _schema.AGGREGATES:
            value = getattr(totals, name)
            out[name].append(money_value(value, config.money_scale) if is_money else value)
        for name, value in _metrics(totals, config).items():
            out[name].append(value)
    arrays = [pa.array(out[field.name], type=field.type) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def portfolio_metrics(data: Any, *, config: MetricConfig | None = None,
                      threads: int | None = None,
                      columns: Mapping[str, str] | None = None) -> dict[str, object]:
    """Metrics of all loans taken as one group (``officer_metrics(data, by=())``).

    Parameters
    ----------
    data, config, threads, columns
        As for :func:`officer_metrics`.

    Returns
    -------
    dict of str to object
        The single output row as Python values (float, int, str; ``rdr`` may be None),
        keyed by the column names of §7.

    Raises
    ------
    TypeError, ValueError, OverflowError
        As for :func:`officer_metrics`.
    """
    table = officer_metrics(data, by=(), config=config, threads=threads, columns=columns)
    row: dict[str, object] = table.to_pylist()[0]
    return row


# ---------------------------------------------------------------------------------------
# §5 Loan derivation: raw loans and repayments -> the snapshot above, as of a date
# ---------------------------------------------------------------------------------------
# The derivation lives in its own module (it needs the money helpers above, so it is
# imported last); see metriccore/_reference_derive.py.
from ._reference_derive import derive_snapshot, officer_metrics_as_of  # noqa: E402
