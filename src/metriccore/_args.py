"""Argument and column checks shared by the engine and the reference.

Both implementations must reject bad calls with the same exception and message, so the
checks that do not touch row values live here once.
"""

from __future__ import annotations

import datetime
import re
import sys
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from ._config import MetricConfig
from ._schema import (DERIVE_ROLES, INPUT_COLUMNS, LOAN_ROLES, REPAYMENT_ROLES,
                      SNAPSHOT_COLUMNS, SPLIT_ROLES)

EXPECTED_KEY = "expected an integer, string, large_string, string_view or dictionary type"
EXPECTED_BOOL = "expected bool"
EXPECTED_DAY = "expected an integer type"
EXPECTED_MONEY = "expected float64, float32, decimal128 or an integer type"

#: The compiled core keeps each group's key nulls in a 32-bit mask (one bit per key column).
MAX_KEYS = 32

UNSUPPORTED_INPUT = (
    "unsupported input of type {}; expected a pyarrow Table, RecordBatch or "
    "RecordBatchReader, a pandas DataFrame, or an object with __arrow_c_stream__ or "
    "__arrow_c_array__")

#: A non-table input (a pyarrow Array, a pandas Series): the compiled core's message.
NOT_A_TABLE = "expected a table-like Arrow input (a struct / record batch), got Arrow type {}"
#: pyarrow's import of a non-struct schema as a record batch: the type is in the message.
_NON_STRUCT = re.compile(r"ArrowSchema describes non-struct type (.+)$", re.DOTALL)

_DEFAULT_CONFIG = MetricConfig()


def check_config(config: object) -> MetricConfig:
    """``config``, or the default configuration when it is None."""
    if config is None:
        return _DEFAULT_CONFIG
    if not isinstance(config, MetricConfig):
        raise TypeError(f"config must be a MetricConfig or None, got {type(config).__name__}")
    return config


def check_threads(threads: object) -> int | None:
    """``threads`` when it is None or an int >= 1 (bool is not an int here)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return threads


def _plain_str(name: str) -> str:
    """``name`` as a plain ``str``: a subclass (``numpy.str_``, from ``list(np.array([...]))``)
    is accepted and copied, so that every later use (the compiled core, the output schema)
    sees exactly ``str``."""
    return name if type(name) is str else str.__str__(name)


def check_by(by: object) -> list[str]:
    """The key column names of ``by`` (one name or a sequence of distinct names), as plain
    ``str`` (a ``str`` subclass such as ``numpy.str_`` is accepted)."""
    if isinstance(by, str):
        return [_plain_str(by)]
    if not isinstance(by, Sequence) or isinstance(by, (bytes, bytearray)):
        raise TypeError(f"by must be a str or a sequence of str, got {type(by).__name__}")
    names = list(by)
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"by must contain only str, got {type(name).__name__}")
        names[i] = _plain_str(name)
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"duplicate key column {name!r} in by")
    if len(names) > MAX_KEYS:
        raise ValueError(f"by has {len(names)} key columns; at most {MAX_KEYS} are supported")
    return names


def _role_mapping(columns: object, roles: Sequence[str]) -> dict[str, str]:
    """Map every role in ``roles`` to the column playing it: ``columns`` overrides the
    default name (the role itself); an unknown role or a non-str name is an error. Names
    that are ``str`` subclasses come back as plain ``str``."""
    names = {role: role for role in roles}
    if columns is None:
        return names
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns must be a mapping or None, got {type(columns).__name__}")
    for role, name in columns.items():
        if role not in names:
            raise ValueError(f"unknown column role {role!r}; expected one of "
                             + ", ".join(roles))
        if not isinstance(name, str):
            raise TypeError(f"columns[{role!r}] must be a str, got {type(name).__name__}")
        names[role] = _plain_str(name)
    return names


def check_columns(columns: object) -> dict[str, str]:
    """Map every role of the snapshot to the name of the input column that plays it."""
    return _role_mapping(columns, INPUT_COLUMNS)


def column_index(names: list[str], name: str, role: str | None, source: str = "input") -> int:
    """Position of column ``name`` in ``source`` (for messages: "input", "loans", ...);
    ValueError when it is missing or ambiguous."""
    found = [i for i, n in enumerate(names) if n == name]
    if not found:
        suffix = f" (column role '{role}')" if role is not None else ""
        raise ValueError(f"column '{name}' not found in {source}{suffix}")
    if len(found) > 1:
        raise ValueError(f"column '{name}' appears {len(found)} times in {source}")
    return found[0]


def check_type(name: str, type_name: str, ok: bool, expected: str,
               source: str | None = None) -> None:
    """TypeError naming the column (and its table ``source``) and its type unless ``ok``."""
    if not ok:
        where = f"column '{name}'" if source is None else f"column '{name}' of {source}"
        raise TypeError(f"{where} has Arrow type {type_name}; {expected}")


def as_table(data: object) -> pa.Table:
    """Any accepted input as a pyarrow Table (used where whole columns are carried through).

    A pandas DataFrame is converted with ``pyarrow.Table.from_pandas(..., preserve_index=False)``;
    anything else must be a pyarrow Table, RecordBatch or RecordBatchReader, or export
    ``__arrow_c_stream__`` / ``__arrow_c_array__`` (polars, DuckDB, ...).

    Errors are the compiled core's: a non-table input (a pyarrow Array, a pandas Series)
    raises ``TypeError`` naming its Arrow type; a stream whose producer fails midway raises
    ``ValueError("the Arrow stream failed: ...")`` with the producer's exception as its cause.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return _read_stream(data.read_all)
    pandas = sys.modules.get("pandas")  # a DataFrame can only exist if pandas is imported
    if pandas is not None and isinstance(data, pandas.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return _read_stream(lambda: pa.RecordBatchReader.from_stream(data).read_all())
    if hasattr(data, "__arrow_c_array__"):
        try:
            batch = pa.record_batch(data)
        except pa.ArrowInvalid as exc:
            _raise_if_not_a_table(exc)
            raise
        return pa.Table.from_batches([batch])
    raise TypeError(UNSUPPORTED_INPUT.format(type(data).__name__))


def _raise_if_not_a_table(exc: Exception) -> None:
    """The compiled core's TypeError when pyarrow refused ``exc``'s input as non-struct."""
    match = _NON_STRUCT.search(str(exc))
    if match is not None:
        raise TypeError(NOT_A_TABLE.format(match.group(1))) from exc


def _read_stream(read: Any) -> pa.Table:
    """``read()`` (the whole stream as a table), a failure of the producer as the compiled
    core reports it: ``ValueError("the Arrow stream failed: ...")``, the cause chained."""
    try:
        table: pa.Table = read()
    except MemoryError:
        raise
    except Exception as exc:
        if isinstance(exc, pa.ArrowInvalid):
            _raise_if_not_a_table(exc)
        raise ValueError(f"the Arrow stream failed: {exc}") from exc
    return table


# ---------------------------------------------------------------------------------------
# Loan derivation (docs/metrics.md §9): column roles, dates and holidays
# ---------------------------------------------------------------------------------------

#: Day numbers (days since 1970-01-01, as in Arrow's date32) of 0001-01-01 and 9999-12-31:
#: the dates a derivation accepts, which are exactly those ``datetime.date`` can hold.
EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
MIN_DAY = datetime.date.min.toordinal() - EPOCH_ORDINAL
MAX_DAY = datetime.date.max.toordinal() - EPOCH_ORDINAL

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_iso_date(text: str) -> int | None:
    """Day number of the text ``YYYY-MM-DD`` (a real date, years 0001-9999), else None."""
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        day = datetime.date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return None
    return day.toordinal() - EPOCH_ORDINAL


def day_to_date(day: int) -> datetime.date:
    """The calendar date of a day number."""
    return datetime.date.fromordinal(day + EPOCH_ORDINAL)


def _checked_day(name: str, day: int) -> int:
    if not MIN_DAY <= day <= MAX_DAY:
        raise ValueError(f"{name}: date out of range (years 1 to 9999)")
    return day


def check_date(name: str, value: Any) -> int:
    """The day number of a date argument.

    Accepts ``datetime.date`` (a ``datetime`` gives its own calendar date, the time of day
    dropped), an ISO ``YYYY-MM-DD`` string, ``numpy.datetime64`` (floored to the day) and
    pyarrow date, timestamp or string scalars (a timestamp with a time zone gives its local
    date, as pyarrow's cast to date32 does).
    """
    pandas = sys.modules.get("pandas")  # pandas.NaT is a datetime that has no date
    if pandas is not None and value is pandas.NaT:
        raise ValueError(f"{name}: date is NaT")
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value.toordinal() - EPOCH_ORDINAL
    if isinstance(value, str):
        day = parse_iso_date(value)
        if day is None:
            raise ValueError(f"{name}: unparseable date {value!r}; expected YYYY-MM-DD")
        return day
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.datetime64):
        if numpy.isnat(value):
            raise ValueError(f"{name}: date is NaT")
        return _checked_day(name, int(value.astype("datetime64[D]").astype(numpy.int64)))
    if isinstance(value, pa.Scalar):
        if not value.is_valid:
            raise ValueError(f"{name}: date is null")
        t = value.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return check_date(name, value.as_py())
        if pa.types.is_date(t) or pa.types.is_timestamp(t):
            days = pa.array([value], type=t).cast(pa.date32()).cast(pa.int32())
            return _checked_day(name, days[0].as_py())
    raise TypeError(f"{name} must be a date (datetime.date, an ISO 'YYYY-MM-DD' string, "
                    f"numpy.datetime64 or a pyarrow date scalar), got {type(value).__name__}")


def _datetime64_days(values: Any) -> list[int] | None:
    """The distinct day numbers of a numpy ``datetime64`` array, sorted, computed with
    numpy's casts (the per-element path of :func:`check_date`, vectorised: floored to the
    day); None when ``values`` is not one."""
    numpy = sys.modules.get("numpy")
    if (numpy is None or not isinstance(values, numpy.ndarray) or values.dtype.kind != "M"
            or values.ndim != 1):
        return None
    nat = numpy.isnat(values)
    if nat.any():
        raise ValueError(f"holidays[{int(numpy.argmax(nat))}]: date is NaT")
    days = values.astype("datetime64[D]").astype(numpy.int64)
    return _checked_days(numpy, days)


def _checked_days(numpy: Any, days: Any) -> list[int]:
    """The distinct values of the int64 array ``days``, sorted; the first one outside
    years 1 to 9999 is an error naming its position."""
    bad = (days < MIN_DAY) | (days > MAX_DAY)
    if bad.any():
        raise ValueError(f"holidays[{int(numpy.argmax(bad))}]: date out of range "
                         "(years 1 to 9999)")
    if not len(days):
        return []
    # sort, then drop repeats (numpy.unique is many times slower on a million dates)
    days = numpy.sort(days)
    distinct: list[int] = days[numpy.concatenate(([True], days[1:] != days[:-1]))].tolist()
    return distinct


def _vectorised_holidays(holidays: object) -> list[int] | None:
    """:func:`check_holidays` of a whole array of dates at once, for the array types that
    hold them natively: numpy ``datetime64`` arrays, pandas ``DatetimeIndex`` / Series of
    ``datetime64`` (time-zone naive), pyarrow date and timestamp arrays (a zoned timestamp
    gives its local date, as pyarrow's cast to date32 does). None for anything else."""
    if isinstance(holidays, (pa.Array, pa.ChunkedArray)):
        t = holidays.type
        if not (pa.types.is_date(t) or pa.types.is_timestamp(t)):
            return None
        if holidays.null_count:
            first = holidays.is_null().index(True).as_py()
            raise ValueError(f"holidays[{first}]: date is null")
        import numpy

        days = holidays.cast(pa.date32()).cast(pa.int32())
        return _checked_days(numpy, days.to_numpy().astype(numpy.int64))
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(holidays, (pandas.Index, pandas.Series)):
        numpy = sys.modules["numpy"]  # pandas imports numpy
        if not (isinstance(holidays.dtype, numpy.dtype) and holidays.dtype.kind == "M"):
            return None  # object, string, zoned: element by element
        holidays = holidays.to_numpy()
    return _datetime64_days(holidays)


def check_holidays(holidays: object) -> list[int]:
    """The distinct day numbers of ``holidays`` (None or an iterable of dates), sorted.

    Arrays of dates (numpy ``datetime64``, pandas ``DatetimeIndex``, pyarrow date or
    timestamp arrays) are converted whole, with the same result and errors as element by
    element."""
    if holidays is None:
        return []
    if isinstance(holidays, (str, bytes)) or not isinstance(holidays, Iterable):
        raise TypeError("holidays must be None or an iterable of dates, got "
                        f"{type(holidays).__name__}")
    vectorised = _vectorised_holidays(holidays)
    if vectorised is not None:
        return vectorised
    days = set()
    for i, value in enumerate(holidays):
        if value is None:
            raise ValueError(f"holidays[{i}]: date is null")
        days.add(check_date(f"holidays[{i}]", value))
    return sorted(days)


#: A fixed-offset time zone as Arrow writes it: ``+HH:MM`` or ``+HHMM``.
_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")


def time_zone(name: str) -> datetime.tzinfo:
    """The time zone of an Arrow timestamp type: a fixed offset ``+HH:MM`` / ``+HHMM``
    (hours 00-23, minutes 00-59, as Arrow accepts them) or an IANA name.

    Raises ValueError for anything else (``+25:00``, an unknown name)."""
    m = _OFFSET.fullmatch(name)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3))
        if hours > 23 or minutes > 59:
            raise ValueError(f"impossible UTC offset {name!r}")
        delta = datetime.timedelta(hours=hours, minutes=minutes)
        return datetime.timezone(-delta if m.group(1) == "-" else delta)
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}") from None


def check_time_zone(column: str, source: str, t: pa.DataType) -> None:
    """ValueError naming the column and its table unless a zoned timestamp type ``t`` has
    a time zone :func:`time_zone` knows."""
    if pa.types.is_timestamp(t) and t.tz:
        try:
            time_zone(t.tz)
        except ValueError as exc:
            raise ValueError(f"column '{column}' of {source} has Arrow type {t}: {exc}; "
                             "expected an IANA time zone name or an offset from -23:59 to "
                             "+23:59") from None


def check_derive_dates(as_of: object, period_start: object,
                       roll_from: object) -> tuple[int, int, int]:
    """Day numbers of ``as_of``, ``period_start`` (default: the first day of as_of's month)
    and ``roll_from`` (default: as_of - 30 days); neither may be after as_of."""
    a = check_date("as_of", as_of)
    if period_start is None:
        p = a - (day_to_date(a).day - 1)
    else:
        p = check_date("period_start", period_start)
    if roll_from is None:
        r = a - 30
        if r < MIN_DAY:  # name the argument the caller passed, not the defaulted one
            raise ValueError(f"as_of ({day_to_date(a)}) is too early: the default roll_from, "
                             "as_of - 30 days, falls before 0001-01-01; pass roll_from")
    else:
        r = check_date("roll_from", roll_from)
    if p > a:
        raise ValueError(f"period_start ({day_to_date(p)}) must not be after as_of "
                         f"({day_to_date(a)})")
    if r > a:
        raise ValueError(f"roll_from ({day_to_date(r)}) must not be after as_of "
                         f"({day_to_date(a)})")
    return a, p, r


def check_derive_columns(columns: object) -> tuple[dict[str, str], frozenset[str]]:
    """Map every raw-input role of §9.1 to the name of the column that plays it.

    Returns the mapping and the set of roles the caller named explicitly (an optional
    repayments column named explicitly must exist). ``loan_id`` names the id column of
    both tables.
    """
    names = _role_mapping(columns, DERIVE_ROLES)
    # _role_mapping accepted ``columns``: None or a mapping of role names
    return names, frozenset(columns) if isinstance(columns, Mapping) else frozenset()


assert set(DERIVE_ROLES) == set(LOAN_ROLES) | set(REPAYMENT_ROLES)


EXPECTED_ID = "expected an integer, string, large_string, string_view or dictionary type"
EXPECTED_RATE = "expected float64 or float32"
EXPECTED_DATE = "expected date32, date64, timestamp, string, large_string or string_view"


def _is_string_like(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t))


def _is_money(t: pa.DataType) -> bool:
    return bool(pa.types.is_float64(t) or pa.types.is_float32(t) or pa.types.is_decimal128(t)
                or pa.types.is_integer(t))


def id_family(t: pa.DataType) -> str | None:
    """"int" or "str" for an accepted loan id type (dictionaries by their values), else None."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "int"
    if _is_string_like(t):
        return "str"
    return None


def derive_type_ok(role: str, t: pa.DataType) -> tuple[bool, str]:
    """Whether ``t`` is accepted for the §9.1 input ``role``, and the accepted types."""
    if role == "loan_id":
        return id_family(t) is not None, EXPECTED_ID
    if role == "interest_rate":
        return pa.types.is_float64(t) or pa.types.is_float32(t), EXPECTED_RATE
    if role == "loan_term_days":
        return pa.types.is_integer(t), EXPECTED_DAY
    if role.endswith("_date"):
        return (pa.types.is_date32(t) or pa.types.is_date64(t) or pa.types.is_timestamp(t)
                or _is_string_like(t)), EXPECTED_DATE
    if role == "is_reversed":
        return pa.types.is_boolean(t), EXPECTED_BOOL
    return _is_money(t), EXPECTED_MONEY


class DerivePlan:
    """Which columns of ``loans`` and ``repayments`` play which §9.1 role (checked).

    Attributes
    ----------
    loan_columns, repayment_columns : dict of role -> column name
        Every loans role; the repayments roles present (the split trio and ``is_reversed``
        are optional).
    loan_index : dict of role -> column position in loans
    loan_types, repayment_types : dict of role -> pyarrow.DataType
    carried : list of int
        Positions of the loans columns carried through unchanged after the id: every
        column that is not a §9.1 input, in the order of ``loans``.
    """

    def __init__(self, loan_columns: dict[str, str], repayment_columns: dict[str, str],
                 loan_index: dict[str, int], loan_types: dict[str, pa.DataType],
                 repayment_types: dict[str, pa.DataType], carried: list[int]) -> None:
        self.loan_columns = loan_columns
        self.repayment_columns = repayment_columns
        self.loan_index = loan_index
        self.loan_types = loan_types
        self.repayment_types = repayment_types
        self.carried = carried

    @property
    def has_split(self) -> bool:
        return "principal_paid" in self.repayment_columns

    @property
    def has_reversed(self) -> bool:
        return "is_reversed" in self.repayment_columns

    @property
    def string_ids(self) -> bool:
        return id_family(self.loan_types["loan_id"]) == "str"

    @property
    def output_columns(self) -> list[int]:
        """Positions of the loans columns that open the snapshot: the id, then the carried."""
        return [self.loan_index["loan_id"]] + self.carried


def plan_derivation(loans: pa.Schema, repayments: pa.Schema,
                    roles: dict[str, str], named: frozenset[str]) -> DerivePlan:
    """Find and type-check the §9.1 input columns, before any row is read.

    Order of checks: missing columns (loans roles, then repayments roles, each in role
    order), then types (same order), then the time zones of zoned timestamps (same
    order), then the id types of the two tables against each
    other, then name clashes between the loans columns kept and the derived columns.
    """
    loan_columns = {role: roles[role] for role in LOAN_ROLES}
    loan_index = {role: column_index(loans.names, name, role, "loans")
                  for role, name in loan_columns.items()}

    present = set(repayments.names)
    wanted = {"loan_id", "payment_date", "payment_amount"}
    if any(roles[r] in present or r in named for r in SPLIT_ROLES):
        wanted.update(SPLIT_ROLES)  # the split comes as three columns or not at all
    if roles["is_reversed"] in present or "is_reversed" in named:
        wanted.add("is_reversed")
    repayment_columns = {role: roles[role] for role in REPAYMENT_ROLES if role in wanted}
    repayment_index = {role: column_index(repayments.names, name, role, "repayments")
                       for role, name in repayment_columns.items()}

    loan_types = {role: loans.field(i).type for role, i in loan_index.items()}
    repayment_types = {role: repayments.field(i).type for role, i in repayment_index.items()}
    for source, columns, types in (("loans", loan_columns, loan_types),
                                   ("repayments", repayment_columns, repayment_types)):
        for role, t in types.items():
            check_type(columns[role], str(t), *derive_type_ok(role, t), source=source)
    for source, columns, types in (("loans", loan_columns, loan_types),
                                   ("repayments", repayment_columns, repayment_types)):
        for role, t in types.items():
            check_time_zone(columns[role], source, t)
    family = id_family(loan_types["loan_id"])
    if id_family(repayment_types["loan_id"]) != family:
        kind = "an integer type" if family == "int" else "a string type"
        check_type(repayment_columns["loan_id"], str(repayment_types["loan_id"]), False,
                   f"expected {kind}, like column '{loan_columns['loan_id']}' of loans",
                   source="repayments")

    inputs = set(loan_index.values())
    carried = [i for i in range(len(loans.names)) if i not in inputs]
    derived = {name for name, _, _ in SNAPSHOT_COLUMNS}
    for i in [loan_index["loan_id"]] + carried:
        if loans.names[i] in derived:
            raise ValueError(f"column '{loans.names[i]}' of loans has the name of a derived "
                             "snapshot column; rename or drop it")
    return DerivePlan(loan_columns, repayment_columns, loan_index, loan_types,
                      repayment_types, carried)


#: Problems with one input value or one derived amount of the derivation: the exception
#: type and the reason (formatted with the keyword arguments of :func:`derive_error`).
DERIVE_REASONS: dict[str, tuple[type[Exception], str]] = {
    "null": (ValueError, "value is null"),
    "duplicate": (ValueError, "duplicate loan_id (first at row {first})"),
    "id_range": (ValueError, "loan_id does not fit int64"),
    "nan": (ValueError, "money value is NaN or infinite"),
    "big": (ValueError, "money value exceeds 2**53 minor units"),
    "money_overflow": (OverflowError, "value does not fit int64 minor units"),
    "rate_nan": (ValueError, "interest rate is NaN or infinite"),
    "negative_term": (ValueError, "negative loan term"),
    "int_overflow": (OverflowError, "value does not fit int64"),
    "date_parse": (ValueError, "unparseable date {text!r}; expected YYYY-MM-DD"),
    "date_range": (ValueError, "date out of range (years 1 to 9999)"),
    "negative": (ValueError, "negative amount"),
    "interest_overflow": (OverflowError, "interest total does not fit int64 minor units"),
    "repayable_overflow": (OverflowError, "repayable amount does not fit int64 minor units"),
    "alloc_overflow": (OverflowError, "allocated {part} does not fit int64 minor units"),
    "total_overflow": (OverflowError, "{what} does not fit int64 minor units"),
    "utf8": (ValueError, "string is not valid UTF-8"),
    "offsets": (ValueError, "corrupt string offsets (invalid Arrow data)"),
}

#: The per-loan totals of the derivation checked against int64, in the order checked
#: (the first that does not fit is reported).
LOAN_TOTALS: tuple[str, ...] = (
    "repayments up to as_of", "principal paid", "interest collected", "fees collected",
    "principal outstanding", "amount due in 7 days",
)


def derive_error(reason: str, where: str, **fmt: object) -> Exception:
    """The exception for ``reason`` at ``where`` (e.g. ``loans column 'x' row 3``)."""
    error_type, text = DERIVE_REASONS[reason]
    return error_type(f"{where}: {text.format(**fmt)}")


def cell_name(source: str, column: str, row: int) -> str:
    """``loans column 'loan_amount' row 3``: where a bad value is."""
    return f"{source} column '{column}' row {row}"


def keep_rows(table: pa.Table, keep: Any) -> pa.Table:
    """The rows of ``table`` where the boolean numpy array ``keep`` is true, in order.

    pyarrow's filter where it can; for column types it cannot filter (string_view in
    pyarrow 26, for one), the kept runs of rows as zero-copy slices of the column.
    """
    if keep.all():
        return table
    mask = pa.array(keep, type=pa.bool_())
    try:
        return table.filter(mask)
    except pa.ArrowNotImplementedError:
        pass
    import numpy as np

    edges = np.flatnonzero(np.diff(np.concatenate(([0], keep.astype(np.int8), [0]))))
    runs = list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
    columns = []
    for column in table.columns:
        try:
            columns.append(column.filter(mask))
        except pa.ArrowNotImplementedError:
            chunks = [c for a, b in runs for c in column.slice(a, b - a).chunks]
            columns.append(pa.chunked_array(chunks, type=column.type))
    return pa.Table.from_arrays(columns, schema=table.schema)
