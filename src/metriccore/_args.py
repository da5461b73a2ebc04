"""Argument and column checks shared by the engine and the reference.

Both implementations must reject bad calls with the same exception and message, so the
checks that do not touch row values live here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._config import MetricConfig
from ._schema import INPUT_COLUMNS

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


def check_by(by: object) -> list[str]:
    """The key column names of ``by`` (one name or a sequence of distinct names)."""
    if isinstance(by, str):
        return [by]
    if not isinstance(by, Sequence) or isinstance(by, (bytes, bytearray)):
        raise TypeError(f"by must be a str or a sequence of str, got {type(by).__name__}")
    names = list(by)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"by must contain only str, got {type(name).__name__}")
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"duplicate key column {name!r} in by")
    if len(names) > MAX_KEYS:
        raise ValueError(f"by has {len(names)} key columns; at most {MAX_KEYS} are supported")
    return names


def check_columns(columns: object) -> dict[str, str]:
    """Map every role of the snapshot to the name of the input column that plays it."""
    names = {role: role for role in INPUT_COLUMNS}
    if columns is None:
        return names
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns must be a mapping or None, got {type(columns).__name__}")
    for role, name in columns.items():
        if role not in names:
            raise ValueError(f"unknown column role {role!r}; expected one of "
                             + ", ".join(INPUT_COLUMNS))
        if not isinstance(name, str):
            raise TypeError(f"columns[{role!r}] must be a str, got {type(name).__name__}")
        names[role] = name
    return names


def column_index(names: list[str], name: str, role: str | None) -> int:
    """Position of column ``name``; ValueError when it is missing or ambiguous."""
    found = [i for i, n in enumerate(names) if n == name]
    if not found:
        suffix = f" (column role '{role}')" if role is not None else ""
        raise ValueError(f"column '{name}' not found in input{suffix}")
    if len(found) > 1:
        raise ValueError(f"column '{name}' appears {len(found)} times in input")
    return found[0]


def check_type(name: str, type_name: str, ok: bool, expected: str) -> None:
    """TypeError naming the column and its type unless ``ok``."""
    if not ok:
        raise TypeError(f"column '{name}' has Arrow type {type_name}; {expected}")
