"""The derivation driver (docs/metrics.md §9): raw loans and repayments -> the loan snapshot
as of a date, with the compiled kernels of ``_derive.pyx`` run on the worker threads; and the
officer metrics of that snapshot (``derive_snapshot``, ``officer_metrics_as_of``).
"""

from __future__ import annotations

from functools import partial
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _derive as D
from ._as_of import metrics_as_of
from ._checks import (DerivePlan, check_config, check_derive_columns, plan_derivation,
                      resolve_threads)
from ._config import MetricConfig
from ._dates import check_derive_dates, check_holidays
from ._errors import LOAN_TOTALS, RowError, cell_name, error
from ._officer import officer_metrics
from ._schema import LOAN_ROLES, REPAYMENT_ROLES, SNAPSHOT_COLUMNS, snapshot_schema
from ._tables import checked_table, keep_rows
from ._threads import run_tasks

__all__ = ["derive_snapshot", "officer_metrics_as_of"]

#: Timestamp units per day.
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}

#: Rows of loans per checking task; fewest repayment rows worth a scan task of their own.
_LOAN_TASK_ROWS = 1 << 16
_MIN_SCAN_ROWS = 1 << 15
#: Loans per bucket: 2**12 loans' accumulators (64 bytes) and allocation data (32 bytes)
#: take 384 KiB, which stays in a core's L2 cache while the bucket's payments are added.
_BUCKET_SHIFT = 12
#: Repayment rows per wave: the filing buffers of a wave (at most 48 bytes a row) are
#: reused by the next one, so memory does not grow with the number of repayments.
_WAVE_ROWS = 1 << 21
#: Scan and apply tasks per thread: adjacent rows cost alike, so a few equal ranges per
#: thread, taken in turn, keep the threads evenly busy.
_TASKS_PER_THREAD = 4


# ----------------------------------------------------------------------------------------
# Columns -> flat Arrow arrays the kernels read in place
# ----------------------------------------------------------------------------------------
def _one_array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array: zero-copy when it has one chunk, else concatenated."""
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.array([], type=column.type)
    return column.combine_chunks()


def _normalise(arr: pa.Array) -> pa.Array:
    """Decode what the kernels do not read directly: dictionaries (ids), string views, and
    time zones (a zoned timestamp becomes its local wall-clock time)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_string_view(t):
        arr = arr.cast(pa.large_string())
    elif pa.types.is_timestamp(t) and t.tz is not None:
        arr = pc.local_timestamp(arr)
    return arr


def _spec(arr: pa.Array) -> D.ColumnSpec:
    """The column spec of ``Derivation``: kind, layout and buffer addresses."""
    t = arr.type
    bufs = arr.buffers()
    validity = bufs[0].address if arr.null_count and bufs[0] is not None else 0
    values = bufs[1].address if len(bufs) > 1 and bufs[1] is not None else 0
    layout = {"offset": arr.offset, "length": len(arr), "validity": validity, "values": values}
    if pa.types.is_integer(t):
        return D.ColumnSpec(D.KIND_INT, width=t.bit_width // 8,
                            signed=pa.types.is_signed_integer(t), **layout)
    if pa.types.is_float64(t):
        return D.ColumnSpec(D.KIND_FLOAT64, **layout)
    if pa.types.is_float32(t):
        return D.ColumnSpec(D.KIND_FLOAT32, **layout)
    if pa.types.is_decimal128(t):
        return D.ColumnSpec(D.KIND_DECIMAL, scale=t.scale, **layout)
    if pa.types.is_boolean(t):
        return D.ColumnSpec(D.KIND_BOOL, **layout)
    if pa.types.is_date32(t):
        return D.ColumnSpec(D.KIND_DATE32, **layout)
    if pa.types.is_date64(t):
        return D.ColumnSpec(D.KIND_UNITS64, per_day=86_400_000, **layout)
    if pa.types.is_timestamp(t):
        return D.ColumnSpec(D.KIND_UNITS64, per_day=_PER_DAY[t.unit], **layout)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        kind = D.KIND_STRING if pa.types.is_string(t) else D.KIND_LARGE_STRING
        chars = bufs[2].address if bufs[2] is not None else 0
        chars_len = bufs[2].size if bufs[2] is not None else 0
        return D.ColumnSpec(kind, chars=chars, chars_len=chars_len, **layout)
    # excluded by the type checks of plan_derivation
    raise AssertionError(f"unexpected column type {t}")


#: Binary types of the same layout as the string types: their full validation checks the
#: offsets and views but not UTF-8, which the kernels check themselves, once per distinct
#: id, with the error the reference raises.
_BINARY = {pa.string(): pa.binary(), pa.large_string(): pa.large_binary(),
           pa.string_view(): pa.binary_view()}


def _as_binary(arr: pa.Array) -> pa.Array:
    binary = _BINARY.get(arr.type)
    return arr if binary is None else arr.view(binary)


def _check_buffers(arr: pa.Array, source: str, column: str) -> None:
    """pyarrow's basic validation of a column the kernels (and ``_normalise``) read: its
    buffers are as large as its length needs, its first and last string offsets inside its
    data (cheap: no value is read). Dictionary values and string views, which pyarrow's
    decoding trusts, are validated in full (offsets and views; UTF-8 is left to the
    kernels, whose error names the row, as the reference's does). The kernels check
    every other string offset as they read it. Foreign producers were validated in full
    already (``_tables.checked_table``)."""
    try:
        arr.validate()
        if pa.types.is_dictionary(arr.type):
            _as_binary(arr.dictionary).validate(full=True)
        elif pa.types.is_string_view(arr.type):
            _as_binary(arr).validate(full=True)
    except pa.ArrowException as exc:  # ArrowInvalid, ArrowIndexError (views)
        raise ValueError(f"{source} column {column!r}: invalid Arrow data: {exc}") from None


def _columns(table: pa.Table, source: str, columns: dict[str, str], roles: Sequence[str],
             keep: list[pa.Array]) -> list[D.ColumnSpec | None]:
    specs: list[D.ColumnSpec | None] = []
    for role in roles:
        if role not in columns:
            specs.append(None)
            continue
        column = table.column(columns[role])
        arr = _one_array(column)
        _check_buffers(arr, source, columns[role])
        try:
            arr = _normalise(arr)
        except pa.ArrowInvalid as exc:
            # a time zone plan_derivation accepted (zoneinfo knows it) that Arrow does not
            raise ValueError(f"column '{columns[role]}' of {source} has Arrow type "
                             f"{column.type}: {exc}") from exc
        keep.append(arr)
        specs.append(_spec(arr))
    return specs


def _weekday_holidays(days: list[int]) -> np.ndarray:
    """The holidays that fall on Monday-Friday (1970-01-01, day 0, was a Thursday)."""
    array = np.asarray(days, dtype=np.int64)
    return array[(array + 3) % 7 < 5].astype(np.int32)


# ----------------------------------------------------------------------------------------
# Task ranges (run by _threads.run_tasks)
# ----------------------------------------------------------------------------------------
def _ranges(n: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, n)) if n else 1
    bounds = [n * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


# ----------------------------------------------------------------------------------------
# Errors found by the kernels -> the exceptions the reference raises
# ----------------------------------------------------------------------------------------
def _value_text(table: pa.Table, column: str, row: int) -> str | None:
    """The text of a string date the kernels could not parse; None when it is not UTF-8."""
    value = table.column(column)[row]
    try:
        return value.as_py()  # type: ignore[no-any-return]
    except UnicodeDecodeError:
        return None


def _date_error(source: str, column: str, row: int, table: pa.Table) -> Exception:
    """An unparseable string date; text that is not UTF-8 cannot be shown (nor parsed):
    the reference's ``utf8`` error."""
    text = _value_text(table, column, row)
    if text is None:
        return error("utf8", cell_name(source, column, row))
    return error("date_parse", cell_name(source, column, row), text=text)


def _loans_error(err: RowError, plan: DerivePlan, loans: pa.Table) -> Exception:
    row = err.row
    reason = D.ERROR_REASONS[err.code]
    if err.column >= len(LOAN_ROLES):  # a derived amount of the row
        return error(reason, f"loans row {row}")
    column = plan.loan_columns[LOAN_ROLES[err.column]]
    fmt: dict[str, object] = {}
    if reason == "duplicate":
        fmt["first"] = err.extra
    elif reason == "date_parse":
        return _date_error("loans", column, row, loans)
    return error(reason, cell_name("loans", column, row), **fmt)


def _repayments_error(err: RowError, plan: DerivePlan, repayments: pa.Table) -> Exception:
    row = err.row
    reason = D.ERROR_REASONS[err.code]
    if err.column == D.REPAYMENT_ALLOC_COLUMN:
        return error(reason, f"repayments row {row}", part=D.ALLOC_PARTS[err.code])
    column = plan.repayment_columns[REPAYMENT_ROLES[err.column]]
    if reason == "date_parse":
        return _date_error("repayments", column, row, repayments)
    return error(reason, cell_name("repayments", column, row))


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------
def _bitmap(mask: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(mask, bitorder="little"))


def _snapshot_array(out: dict[str, np.ndarray], name: str, t: pa.DataType,
                    nullable: bool) -> pa.Array:
    values = out[name]
    n = len(values)
    if pa.types.is_boolean(t):
        return pa.Array.from_buffers(t, n, [None, _bitmap(values)], null_count=0)
    if nullable:
        valid = out[name + "_valid"]
        if not valid.all():
            return pa.Array.from_buffers(t, n, [_bitmap(valid), pa.py_buffer(values)])
    return pa.Array.from_buffers(t, n, [None, pa.py_buffer(values)], null_count=0)


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------
def derive_snapshot(loans: Any, repayments: Any, as_of: Any, *, period_start: Any = None,
                    roll_from: Any = None, holidays: Any = None,
                    config: MetricConfig | None = None, threads: int | None = None,
                    columns: Mapping[str, str] | None = None) -> pa.Table:
    """The loan snapshot as of ``as_of``, derived from raw loans and repayments
    (docs/metrics.md §9).

    Parameters
    ----------
    loans : Arrow-compatible table
        One row per loan: ``loan_id`` (integer or string, unique), ``loan_amount`` (money),
        ``interest_rate`` (float64/float32, flat over the term), ``fee_amount`` (money, null
        is 0), ``loan_term_days`` (integer), ``disbursement_date``,
        ``first_payment_due_date`` and ``maturity_date`` (date32, date64, timestamp or
        ``YYYY-MM-DD`` strings; the last two may be null), and any other columns (keys such
        as ``officer_id``), which are carried through unchanged. A pyarrow Table,
        RecordBatch or RecordBatchReader, a pandas DataFrame, or anything exporting
        ``__arrow_c_stream__`` / ``__arrow_c_array__`` (polars, DuckDB).
    repayments : Arrow-compatible table
        One row per payment, in any order: ``loan_id``, ``payment_date``,
        ``payment_amount`` (money, not negative), optionally the recorded split
        ``principal_paid``, ``interest_paid``, ``fees_paid`` (all three or none) and
        ``is_reversed`` (bool, null is false).
    as_of : date
        ``datetime.date``, an ISO ``YYYY-MM-DD`` string, ``numpy.datetime64`` or a pyarrow
        date scalar (so are the other dates).
    period_start : date, optional
        Start of the collection window of ``interest_collected`` / ``fees_collected``;
        default: the first day of as_of's month. Not after as_of.
    roll_from : date, optional
        Date of ``previous_dpd``; default: as_of - 30 days. Not after as_of.
    holidays : iterable of dates, optional
        Days that are not business days (weekend days in it change nothing).
    config : MetricConfig, optional
        Only ``money_scale`` is used here.
    threads : int, optional
        Worker threads; default ``METRICCORE_NUM_THREADS`` or the number of CPUs. The
        result is bitwise identical for every thread count.
    columns : mapping, optional
        ``{role: column name}`` for raw columns named differently (roles: the column names
        above; ``loan_id`` names the id column of both tables).

    Returns
    -------
    pyarrow.Table
        One row per loan disbursed on or before as_of, in the order of ``loans``: the id
        column and every column of ``loans`` that is not a §9.1 input, unchanged, then
        ``current_dpd``, ``previous_dpd``, ``fimr_tagged``, ``principal_outstanding``,
        ``interest_collected``, ``fees_collected``, ``fees_due``, ``outstanding_balance``,
        ``amount_due_7d``, ``days_since_last_repayment``, ``loan_age`` (money as float64
        currency units, days as int64). The schema metadata ``unknown_repayments`` counts
        the repayments whose loan_id is not in loans.

    Raises
    ------
    ValueError
        A missing column, a null or duplicate ``loan_id``, a null ``loan_amount``,
        ``interest_rate`` or ``loan_term_days``, a negative term or payment, an unparseable
        or out-of-range date, NaN or infinite money, a string id or date that is not valid
        UTF-8, corrupt string offsets, a bad option; invalid Arrow data or structs from a
        foreign producer (named by table, column and the rows of its batch). The message
        names the table, the column and the 0-based row.
    TypeError
        A column of an unaccepted Arrow type, or an option of the wrong type.
    OverflowError
        A value or a derived amount that does not fit int64 minor units.
    """
    cfg = check_config(config)
    nthreads = resolve_threads(threads)
    roles, named = check_derive_columns(columns)
    as_of_day, period_day, roll_day = check_derive_dates(as_of, period_start, roll_from)
    holiday_days = _weekday_holidays(check_holidays(holidays))
    loans_t = checked_table(loans, "loans")
    repayments_t = checked_table(repayments, "repayments")
    plan = plan_derivation(loans_t.schema, repayments_t.schema, roles, named)
    n_loans, n_rep = loans_t.num_rows, repayments_t.num_rows
    if n_loans >= 2**31:
        raise ValueError(f"loans has {n_loans} rows; at most 2**31 - 1 are supported")

    keep: list[pa.Array] = []  # the arrays whose buffers the kernels read
    scale = cfg.money_scale
    job = D.Derivation(_columns(loans_t, "loans", plan.loan_columns, LOAN_ROLES, keep),
                       _columns(repayments_t, "repayments", plan.repayment_columns,
                                REPAYMENT_ROLES, keep),
                       n_loans, n_rep, holiday_days, money_scale=scale, as_of=as_of_day,
                       period_start=period_day, roll_from=roll_day)

    # 1. loans: checks and amounts in parallel with the id index
    tasks: list[Callable[[], Any]] = [job.build_index]
    tasks += [partial(job.loans_pass, lo, hi)
              for lo, hi in _ranges(n_loans, -(-n_loans // _LOAN_TASK_ROWS))]
    errors = [e for e in run_tasks(tasks, nthreads) if e is not None]
    if errors:
        raise _loans_error(min(errors, key=lambda e: (e.row, e.column)), plan, loans_t)

    # 2. where each loan of the snapshot goes in the output
    in_snapshot = job.prepare_output()

    # 3. + 4. repayments in waves of consecutive rows. A wave's rows are cut into a few
    # ranges per thread, read sequentially (look up, check, file the counted payments by
    # bucket of loans); then per bucket the wave's payments are allocated and added to
    # their loans. The filing memory of a wave is reused by the next one.
    n_tasks = max(1, min(_TASKS_PER_THREAD * nthreads, -(-min(n_rep, _WAVE_ROWS)
                                                          // _MIN_SCAN_ROWS)))
    n_buckets = job.start_scan(n_tasks, _BUCKET_SHIFT)
    bucket_ranges = _ranges(n_buckets, _TASKS_PER_THREAD * nthreads)
    unknown = 0
    bad_rows: list[RowError] = []
    for start in range(0, n_rep, _WAVE_ROWS):
        ranges = _ranges(min(_WAVE_ROWS, n_rep - start), n_tasks)
        scans = run_tasks([partial(job.scan, t, start + lo, start + hi)
                           for t, (lo, hi) in enumerate(ranges)], nthreads)
        unknown += sum(count for count, _ in scans)
        bad_rows += [error for _, error in scans if error is not None]
        bad_rows += [e for e in run_tasks([partial(job.apply, lo, hi)
                                           for lo, hi in bucket_ranges], nthreads)
                     if e is not None]
        job.next_wave()
        if bad_rows:  # every later row is beyond the errors found: none can come first
            break
    job.release()
    if bad_rows:
        raise _repayments_error(min(bad_rows, key=lambda e: (e.row, e.column)), plan,
                                repayments_t)

    # 5. the snapshot columns, per bucket of loans
    bad_loans = [e for e in run_tasks([partial(job.finish, lo, hi)
                                       for lo, hi in bucket_ranges], nthreads) if e is not None]
    if bad_loans:
        first = min(bad_loans)
        raise error("total_overflow", f"loans row {first.row}", what=LOAN_TOTALS[first.which])
    del keep

    front = keep_rows(loans_t.select(plan.output_columns), in_snapshot)
    arrays: list[Any] = list(front.columns)
    arrays += [_snapshot_array(job.out, name, t, nullable)
               for name, t, nullable in SNAPSHOT_COLUMNS]
    schema = snapshot_schema(list(front.schema), unknown)
    return pa.Table.from_arrays(arrays, schema=schema)


def officer_metrics_as_of(loans: Any, repayments: Any, as_of: Any,
                          by: str | Sequence[str] = "officer_id", *, period_start: Any = None,
                          roll_from: Any = None, holidays: Any = None,
                          config: MetricConfig | None = None, threads: int | None = None,
                          columns: Mapping[str, str] | None = None) -> pa.Table:
    """Officer metrics as of a date, straight from raw loans and repayments.

    ``derive_snapshot(loans, repayments, as_of, ...)`` followed by
    ``officer_metrics(snapshot, by, config=config, threads=threads)``; ``columns`` maps the
    raw columns (the snapshot has the standard names). The result carries the
    ``unknown_repayments`` schema metadata of the snapshot. See :func:`derive_snapshot` and
    :func:`metriccore.officer_metrics` for the parameters and errors.
    """
    return metrics_as_of(derive_snapshot, officer_metrics, loans, repayments, as_of, by,
                         period_start=period_start, roll_from=roll_from, holidays=holidays,
                         config=config, threads=threads, columns=columns)
