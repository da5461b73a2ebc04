"""Pure-Python reference of the officer metrics (docs/metrics.md §1-§7).

The oracle the compiled engine is tested against. It follows docs/metrics.md one step at a
time: the input (§1), exact money (§2, read with :mod:`._money`), the aggregates (§3), the
metrics (§4) and bands (§5), evaluated as the exactness rules of §6 fix it, with the errors of
§7. It uses only Python integers, floats and fractions for the arithmetic, so that a reviewer
can check it against the document line by line. pyarrow is used only to read the input and
to build the output table.

It is slow (one Python loop iteration per loan) and is meant for tests and small inputs.
Results are equal, bit for bit, to those of :func:`metriccore.officer_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

import pyarrow as pa

from .. import _schema
from .._checks import (EXPECTED_BOOL, EXPECTED_DAY, EXPECTED_KEY, EXPECTED_MONEY, check_by,
                       check_columns, check_config, check_threads, check_type, column_index)
from .._config import MetricConfig
from .._errors import error
from .._tables import as_table
from ._money import BadValue, fits_int64, minor_converter, money_value

__all__ = ["officer_metrics", "portfolio_metrics"]


# ---------------------------------------------------------------------------------------
# Small numeric helpers (docs/metrics.md §4: safe, clamp01, round_half_up; §6)
# ---------------------------------------------------------------------------------------

def clamp01(x: float) -> float:
    """Clamp to [0, 1] with Python's min/max (``max(0.0, x)`` keeps ``x`` only if x > 0.0, §6)."""
    return min(1.0, max(0.0, x))


def safe(a: int, b: int) -> float:
    """Ratio of two exact integers, 0.0 when the denominator is not positive (§4).

    Each integer is converted to the nearest double once, then one float64 division (§6).
    """
    return float(a) / float(b) if b > 0 else 0.0


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)`` with the addition done in float64 (§4)."""
    return math.floor(x + 0.5)


def check_day(x: int) -> int:
    """A day count must fit int64 (only uint64 inputs can fail; §7)."""
    if not fits_int64(x):
        raise BadValue("int_overflow")
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


def _find_column(table: pa.Table, name: str, role: str | None) -> pa.DataType:
    """Type of the column ``name``; ValueError when it is missing (or ambiguous)."""
    return table.schema.field(column_index(table.schema.names, name, role)).type


def _role_type_ok(role: str, t: pa.DataType) -> tuple[bool, str]:
    if role in _schema.BOOL_COLUMNS:
        return pa.types.is_boolean(t), EXPECTED_BOOL
    if role in _schema.DAY_COLUMNS:
        return pa.types.is_integer(t), EXPECTED_DAY
    return minor_converter(t) is not None, EXPECTED_MONEY


def _read_role(values: list[Any], role: str, t: pa.DataType, scale: int) -> list[Any]:
    """Convert one role's raw Python values to the exact integers the aggregates use.

    bool stays bool, days stay int, money becomes int minor units; nulls stay None.
    Raises BadValue with the row (``.row``) of the first value that cannot be used.
    """
    if role in _schema.BOOL_COLUMNS:
        return values
    convert: Callable[[Any], int]
    if role in _schema.DAY_COLUMNS:
        convert = check_day
    else:
        to_minor = minor_converter(t)
        assert to_minor is not None  # the column types are checked before any value is read
        convert = partial(to_minor, scale=scale)
    out: list[Any] = []
    for row, x in enumerate(values):
        if x is None:
            out.append(None)
            continue
        try:
            out.append(convert(x))
        except BadValue as bad:
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

    Order of checks (docs/metrics.md §7): all missing columns (keys, then roles in §1
    order), then all types (same order), and only then the values. Of several bad values the
    one in the smallest row wins; on the same row the first column in (keys, roles in §1
    order) wins. Key columns never hold a bad value, so in practice the tie goes to the
    first role.
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
        except BadValue as bad:
            columns.append([])
            if first_bad is None or bad.row < first_bad[0]:  # strict: earlier role wins ties
                first_bad = (bad.row, error(bad.reason, f"column '{roles[role]}' row {bad.row}"))
    if first_bad is not None:
        raise first_bad[1]
    return key_types, key_values, [_Loan(*row) for row in zip(*columns)]


# ---------------------------------------------------------------------------------------
# docs/metrics.md §3 Aggregates per group
# ---------------------------------------------------------------------------------------

@dataclass
class _Totals:
    """Exact per-group aggregates of §3, with its names in its order (the output's)."""

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
    """``low <= x <= high``; a null day is in no bucket (§1, "if null")."""
    return x is not None and low <= x <= high


def _add_loan(t: _Totals, loan: _Loan, par_days: int, active_threshold_minor: int) -> None:
    """Add one loan to its group's totals (§3), skipping nulls as SQL sums do (§1, §6)."""
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
    """OverflowError when an exact aggregate (in output order, then the yield sum) leaves
    int64 (§2 "Limits", §7)."""
    checked = [(name, getattr(t, name)) for name, _ in _schema.AGGREGATES]
    checked.append(("yield", _yield_minor(t)))
    for name, value in checked:
        if not fits_int64(value):
            raise error("aggregate_overflow", name=name, group=group)


# ---------------------------------------------------------------------------------------
# docs/metrics.md §4 Metrics and §5 Bands
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
    """Ratios, scores and bands of one group (§4, §5), each evaluated as §6 fixes it."""
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
# Output (docs/metrics.md §6, "Output")
# ---------------------------------------------------------------------------------------

def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[Any, ...], ...]:
    """Ascending per key column, nulls last (ints numerically, strings by code point)."""
    return tuple((1,) if v is None else (0, v) for v in key)


def _describe_group(key: tuple[Any, ...]) -> str:
    return repr(key[0]) if len(key) == 1 else repr(key)


def officer_metrics(data: Any, by: str | Sequence[str] = "officer_id", *,
                    config: MetricConfig | None = None, threads: int | None = None,
                    columns: Mapping[str, str] | None = None) -> pa.Table:
    """Metrics of each group of loans (docs/metrics.md §3-§5), as a pyarrow Table (§6).

    Parameters
    ----------
    data : pyarrow.Table, RecordBatch, RecordBatchReader, pandas.DataFrame or Arrow-exporting
        The loan snapshot, one row per loan, with the columns of docs/metrics.md §1. Objects
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
        keyed by the output column names (those of :func:`officer_metrics`).

    Raises
    ------
    TypeError, ValueError, OverflowError
        As for :func:`officer_metrics`.
    """
    table = officer_metrics(data, by=(), config=config, threads=threads, columns=columns)
    row: dict[str, object] = table.to_pylist()[0]
    return row

