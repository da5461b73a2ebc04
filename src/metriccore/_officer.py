"""The officer driver: resolve the input and options, plan the columns, run the kernels on
the worker threads, build the result table (``officer_metrics``, ``portfolio_metrics``)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _kernels as K
from ._checks import (EXPECTED_BOOL, EXPECTED_DAY, EXPECTED_KEY, EXPECTED_MONEY, check_by,
                      check_columns, check_config, check_type, column_index, resolve_threads)
from ._config import MetricConfig
from ._errors import RowError, error
from ._schema import (AGGREGATES, BOOL_COLUMNS, DAY_COLUMNS, INPUT_COLUMNS, MONEY_COLUMNS,
                      output_schema)
from ._tables import UNSUPPORTED_INPUT
from ._threads import Crew

__all__ = ["officer_metrics", "portfolio_metrics"]

_KEY_KINDS = {K.KIND_INT, K.KIND_UTF8, K.KIND_LARGE_UTF8, K.KIND_STRING_VIEW, K.KIND_DICT}
_MONEY_KINDS = {K.KIND_INT, K.KIND_FLOAT32, K.KIND_FLOAT64, K.KIND_DEC128}
_EXPECTED = {"key": EXPECTED_KEY, "bool": EXPECTED_BOOL, "day": EXPECTED_DAY,
             "money": EXPECTED_MONEY}
#: One output column for export: (null_count, its Arrow buffers as numpy arrays or None).
_Buffers = tuple[int, tuple[Any, ...]]

_ARROW_INT = {
    (1, True): pa.int8(), (1, False): pa.uint8(), (2, True): pa.int16(),
    (2, False): pa.uint16(), (4, True): pa.int32(), (4, False): pa.uint32(),
    (8, True): pa.int64(), (8, False): pa.uint64(),
}


# ----------------------------------------------------------------------------------------
# Input resolution
# ----------------------------------------------------------------------------------------
def to_arrow_input(data: Any) -> K.ArrowInput:
    """Import ``data`` through the Arrow C Data Interface, without copying.

    Resolution order: a pandas DataFrame is first converted with
    ``pyarrow.Table.from_pandas(..., preserve_index=False)`` (pandas is not Arrow-backed, so
    this is the one copy); then ``__arrow_c_stream__`` (pyarrow Table / RecordBatchReader,
    polars, duckdb, ...); then ``__arrow_c_array__`` (a record batch or struct array).
    """
    pandas = sys.modules.get("pandas")  # a DataFrame can only exist if pandas is imported
    if pandas is not None and isinstance(data, pandas.DataFrame):
        # pandas' own stream export would add a non-default index as a column
        data = pa.Table.from_pandas(data, preserve_index=False)
    stream = getattr(data, "__arrow_c_stream__", None)
    if stream is not None:
        return K.ArrowInput.from_stream(stream())
    array = getattr(data, "__arrow_c_array__", None)
    if array is not None:
        schema_capsule, array_capsule = array()
        return K.ArrowInput.from_array(schema_capsule, array_capsule)
    raise TypeError(UNSUPPORTED_INPUT.format(type(data).__name__))


def _type_ok(t: K.ColumnType, what: str) -> bool:
    kind = t.kind
    if what == "key":
        return kind in _KEY_KINDS
    if what == "bool":
        return kind == K.KIND_BOOL
    if what == "day":
        return kind == K.KIND_INT
    return kind in _MONEY_KINDS


def _role_kind(role: str) -> str:
    if role in BOOL_COLUMNS:
        return "bool"
    if role in DAY_COLUMNS:
        return "day"
    assert role in MONEY_COLUMNS
    return "money"


# ----------------------------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------------------------
def _run(job: Any, key_types: list[K.ColumnType],
         threads: int) -> tuple[K.Partial, list[RowError]]:
    """Run every chunk of ``job`` on up to ``threads`` workers; merge in worker order.

    The calling thread works too, and, when it is the main thread, runs the signal
    handlers between chunks: an exception they raise (``KeyboardInterrupt``, a time-out)
    cancels the job and leaves the call once every worker has stopped.
    """
    workers = max(1, min(threads, K.n_chunks(job)))
    check_signals = threading.current_thread() is threading.main_thread()
    if workers == 1:
        part = K.Partial(key_types)
        error = K.work(job, part, 1, check_signals)
        return part, [] if error is None else [error]
    parts = [K.Partial(key_types) for _ in range(workers)]
    crew = Crew()
    try:
        crew.start(K.work, [(job, part, workers) for part in parts[1:]])
        # A pool thread that starts late finds no chunk left.
        errors = [K.work(job, parts[0], workers, check_signals)] + crew.results()
    except BaseException:
        K.cancel(job)
        crew.stop()
        raise
    total = parts[0]
    for part in parts[1:]:
        total.merge(part)
    return total, [e for e in errors if e is not None]


def _raise_row_error(errors: list[RowError], names: list[str]) -> None:
    """Raise the error of the first bad row (the smallest row, then the first column)."""
    first = min(errors)
    reason = K.ERROR_CODES[first.code]
    if reason == "nomem":
        raise error(reason)
    raise error(reason, f"column {names[first.column]!r} row {first.row}")


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------
def _key_array(t: K.ColumnType, values: Any, nulls: np.ndarray) -> pa.Array:
    n = len(nulls)
    validity = None
    if nulls.any():
        validity = pa.py_buffer(np.packbits(~nulls, bitorder="little"))
    inner = _values_type(t)
    if inner.kind == K.KIND_INT:
        arrow_type = _ARROW_INT[(inner.width, bool(inner.is_signed))]
        data = values.view(np.uint64) if arrow_type == pa.uint64() else values.astype(
            arrow_type.to_pandas_dtype())
        return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(data)])
    offsets, chars = values
    arr = pa.Array.from_buffers(pa.large_string(), n,
                                [validity, pa.py_buffer(offsets), pa.py_buffer(chars)])
    return arr.cast(pa.string())


def _int_sort_order(key_types: list[K.ColumnType], raw_keys: list[Any]) -> np.ndarray:
    """Group order for integer keys: ascending per key, nulls last (numpy lexsort)."""
    sort_keys = []
    for t, (values, nulls) in zip(key_types, raw_keys):
        inner = _values_type(t)
        unsigned = inner.width == 8 and not inner.is_signed
        sort_keys.append((values.view(np.uint64) if unsigned else values, nulls))
    # lexsort's last key is the primary one: (null flag, value) of key 0, then key 1, ...
    columns = [c for values, nulls in reversed(sort_keys) for c in (values, nulls)]
    return np.lexsort(columns).astype(np.int64)


_PER_KEY_NULL_PLACEMENT = int(pa.__version__.split(".")[0]) >= 25


def _sort_order(arrays: list[pa.Array]) -> np.ndarray:
    """Row order sorting the key arrays ascending, nulls last (strings by UTF-8 bytes,
    which is code point order)."""
    names = [f"k{j}" for j in range(len(arrays))]
    table = pa.table(arrays, names=names)
    if _PER_KEY_NULL_PLACEMENT:  # pyarrow >= 25 deprecates the global null_placement
        order = pc.sort_indices(table, sort_keys=[(n, "ascending", "at_end") for n in names])
    else:
        order = pc.sort_indices(table, sort_keys=[(n, "ascending") for n in names],
                                null_placement="at_end")
    result: np.ndarray = order.to_numpy().astype(np.int64)
    return result


def _key_buffers(t: K.ColumnType, values: Any, nulls: np.ndarray, order: np.ndarray) -> _Buffers:
    """Arrow buffers of a key column taken in ``order``."""
    nulls = nulls[order]
    null_count = int(np.count_nonzero(nulls))
    validity = np.packbits(~nulls, bitorder="little") if null_count else None
    inner = _values_type(t)
    if inner.kind == K.KIND_INT:
        dtype = np.dtype(f"{'i' if inner.is_signed else 'u'}{inner.width}")
        data = values[order]
        data = data.view(np.uint64) if dtype == np.uint64 else data.astype(dtype)
        return null_count, (validity, data)
    offsets, chars = values
    return null_count, (validity, *K.take_strings(offsets, chars, order))


def _format_key(key_types: list[K.ColumnType], raw_keys: list[Any], group: int) -> str:
    """repr of a group's key, for error messages."""
    order = np.array([group], dtype=np.int64)
    values = []
    for t, (vals, nulls) in zip(key_types, raw_keys):
        nc, buffers = _key_buffers(t, vals, nulls, order)
        arrow_type = _output_source_type(t)
        arr = pa.Array.from_buffers(arrow_type, 1, [None if b is None else pa.py_buffer(b)
                                                    for b in buffers], null_count=nc)
        values.append(arr[0].as_py())
    return repr(values[0]) if len(values) == 1 else repr(tuple(values))


class _Plan(NamedTuple):
    """What a call derives from the input's schema and the column options alone."""

    indices: list[int]              # input column of every key, then of every role
    types: list[K.ColumnType]       # their parsed types
    col_names: list[str]            # their names
    key_types: list[K.ColumnType]
    schema: pa.Schema               # of the result


#: Plans by (schema key, key names, role column names): the column lookups and type
#: checks cost more than the kernels on small inputs, and callers repeat schemas.
_PLANS: dict[tuple[bytes, tuple[str, ...], tuple[str, ...]], _Plan] = {}
_MAX_PLANS = 64
_DEFAULT_ROLES = INPUT_COLUMNS      # every role played by the column of its own name


def _plan(src: K.ArrowInput, keys: list[str], roles: tuple[str, ...]) -> _Plan:
    """The checked columns of ``src`` for ``keys`` and the role columns ``roles`` (in
    INPUT_COLUMNS order), from the cache when the schema was seen before."""
    cache_key = (src.schema_key(), tuple(keys), roles)
    plan = _PLANS.get(cache_key)
    if plan is None:
        plan = _make_plan(src, keys, roles)
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[cache_key] = plan
    return plan


def _make_plan(src: K.ArrowInput, keys: list[str], roles: tuple[str, ...]) -> _Plan:
    names: list[str] = src.names
    indices: list[int] = []
    types: list[K.ColumnType] = []
    col_names: list[str] = []
    # Every missing column is reported before any type, keys first, then roles in order.
    wanted: list[tuple[str, str | None, str]] = [(key, None, "key") for key in keys]
    wanted += [(name, role, _role_kind(role)) for role, name in zip(INPUT_COLUMNS, roles)]
    for name, role, _ in wanted:
        indices.append(column_index(names, name, role))
        col_names.append(name)
    for i, (name, _, what) in zip(indices, wanted):
        t = src.column_type(i)
        check_type(name, t.name, _type_ok(t, what), _EXPECTED[what])
        types.append(t)
    key_types = types[:len(keys)]
    schema = output_schema(tuple((key, _output_source_type(t)) for key, t in zip(keys, key_types)))
    return _Plan(indices, types, col_names, key_types, schema)


#: The configuration of the latest call and its kernel numbers: most callers pass the same
#: object (or none) every time, and an identity test is cheaper than hashing 16 fields.
_last_config: tuple[MetricConfig, K.KernelConfig] | None = None


def _kernel_config(config: MetricConfig) -> K.KernelConfig:
    """The numbers ``prepare`` and ``finalize`` take from ``config``."""
    global _last_config
    last = _last_config
    if last is not None and last[0] is config:
        return last[1]
    numbers = _kernel_config_of(config)
    _last_config = (config, numbers)
    return numbers


@lru_cache(maxsize=64)
def _kernel_config_of(config: MetricConfig) -> K.KernelConfig:
    # equal configurations give equal numbers: they hold equal exact values
    return K.KernelConfig(config)


def _order_and_keys(total: K.Partial,
                    key_types: list[K.ColumnType]) -> tuple[np.ndarray, list[_Buffers]]:
    """The group order (by the keys ascending, nulls last) and the key columns in that
    order as (null_count, Arrow buffers) over numpy memory."""
    if len(key_types) == 1 and _values_type(key_types[0]).kind == K.KIND_INT:
        # one integer key (the usual officer id): a counting sort in one call
        fast = K.int_key_column(total, key_types[0])
        if fast is not None:
            return fast[0], [fast[1]]
    raw_keys = total.key_arrays()
    if not key_types:
        order = np.zeros(total.n_groups, dtype=np.int64)
    elif all(not isinstance(values, tuple) for values, _ in raw_keys):
        order = _int_sort_order(key_types, raw_keys)  # integer keys only: numpy lexsort
    else:
        order = _sort_order([_key_array(t, values, nulls)
                             for t, (values, nulls) in zip(key_types, raw_keys)])
    return order, [_key_buffers(t, values, nulls, order)
                   for t, (values, nulls) in zip(key_types, raw_keys)]


def _compute(data: Any, by: object, config: object,
             threads: object, columns: Mapping[str, str] | None) -> pa.Table:
    config = check_config(config)
    nthreads = resolve_threads(threads)
    keys = check_by(by)
    if columns is None:
        roles = _DEFAULT_ROLES
    else:
        mapping = check_columns(columns)
        roles = tuple(mapping[role] for role in INPUT_COLUMNS)
    src = to_arrow_input(data)
    plan = _plan(src, keys, roles)
    numbers = _kernel_config(config)

    job = K.prepare(src, plan.indices, plan.types, plan.col_names, numbers)
    key_types = plan.key_types
    total, errors = _run(job, key_types, nthreads)
    if errors:
        _raise_row_error(errors, plan.col_names)

    order, out = _order_and_keys(total, key_types)
    body = K.Finalized()
    overflow = K.finalize(total, order, numbers, body)
    if overflow is not None:
        agg = overflow.which
        name = "yield" if agg == len(AGGREGATES) else AGGREGATES[agg][0]
        group = (f" for group {_format_key(key_types, total.key_arrays(), order[overflow.row])}"
                 if keys else "")
        raise error("aggregate_overflow", name=name, group=group)
    return _assemble(plan.schema, out, body, len(order))


def _assemble(schema: pa.Schema, keys: list[_Buffers], body: K.Finalized, n: int) -> pa.Table:
    """The output table from the key columns' (null_count, buffers) and the other columns."""
    if _IMPORT_FROM_C is not None:
        # One import of a struct array: far cheaper than one pyarrow call per column.
        address = K.export_batch(keys, body, n)
        try:
            batch = _IMPORT_FROM_C(address, schema)
        finally:
            K.free_exported(address)
        return pa.Table.from_batches([batch])
    columns = keys + body.columns()
    arrays = [pa.Array.from_buffers(field.type, n, [None if b is None else pa.py_buffer(b)
                                                    for b in buffers], null_count=nulls)
              for field, (nulls, buffers) in zip(schema, columns)]
    return pa.Table.from_arrays(arrays, schema=schema)


#: pyarrow's importer of a C struct array with a known schema (an expert-level API, stable
#: since pyarrow 0.17); without it the columns are wrapped one by one.
_IMPORT_FROM_C = getattr(pa.RecordBatch, "_import_from_c", None)


def _values_type(t: K.ColumnType) -> K.ColumnType:
    """The type of a key's values: a dictionary's value type, else the type itself."""
    if t.kind == K.KIND_DICT:
        assert t.value is not None  # a dictionary type always has its value type
        return t.value
    return t


def _output_source_type(t: K.ColumnType) -> pa.DataType:
    inner = _values_type(t)
    if inner.kind == K.KIND_INT:
        return _ARROW_INT[(inner.width, bool(inner.is_signed))]
    return pa.string()


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------
def officer_metrics(data: Any, by: str | Sequence[str] = "officer_id", *,
                    config: MetricConfig | None = None, threads: int | None = None,
                    columns: Mapping[str, str] | None = None) -> pa.Table:
    """Per-group loan-portfolio risk metrics of a loan snapshot.

    Parameters
    ----------
    data : Arrow-compatible table
        One row per loan: anything exporting ``__arrow_c_stream__`` or ``__arrow_c_array__``
        (pyarrow Table, RecordBatch or RecordBatchReader, polars DataFrame, duckdb result)
        or a pandas DataFrame. Read in place, without copying.
    by : str or sequence of str, default "officer_id"
        Key column(s) to group by; ``()`` gives the single portfolio row.
    config : MetricConfig, optional
        Thresholds and money scale; defaults to ``MetricConfig()``.
    threads : int, optional
        Worker threads; default ``METRICCORE_NUM_THREADS`` or the number of CPUs. The
        result is bitwise identical for every thread count.
    columns : mapping, optional
        ``{role: column name}`` for inputs whose columns are named differently, e.g.
        ``{"current_dpd": "dpd"}``.

    Returns
    -------
    pyarrow.Table
        One row per group, sorted by the keys (nulls last): the keys, the aggregates, the
        metrics, the scores and the bands (see ``docs/metrics.md``).

    Raises
    ------
    ValueError
        Missing column or unknown ``by`` name, NaN/infinite money, float money beyond
        2**53 minor units, an unknown role in ``columns``, a bad option value.
    TypeError
        A used column of an unaccepted Arrow type, or an option of the wrong type.
    OverflowError
        A value or an aggregate that does not fit int64 (minor units for money).
    """
    return _compute(data, by, config, threads, columns)


def portfolio_metrics(data: Any, *, config: MetricConfig | None = None,
                      threads: int | None = None,
                      columns: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The portfolio row (all loans in one group) as a dict.

    Same as ``officer_metrics(data, by=(), ...)`` converted to ``{column: value}``; see
    :func:`officer_metrics` for the parameters and errors.
    """
    table = _compute(data, (), config, threads, columns)
    return {name: table.column(name)[0].as_py() for name in table.column_names}
