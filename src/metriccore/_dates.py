"""Dates of the loan derivation (docs/metrics.md §9): day numbers, date arguments in their
accepted forms, holidays, and the time zones of zoned timestamp columns."""

from __future__ import annotations

import datetime
import re
import sys
import zoneinfo
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

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
