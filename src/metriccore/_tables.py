"""Inputs as pyarrow Tables, where whole columns are carried through pyarrow (the loan
derivation: ``take``, ``filter``, ``select``, concatenation, dictionary decoding; the
reference).

:func:`as_table` converts any accepted input; :func:`checked_table` does the same, except
that a foreign producer is checked first; :func:`keep_rows` filters rows.

Foreign producers: pyarrow's importer and kernels trust what a producer exports: a NULL
pointer in the exported structs, string offsets that decrease or point past the data, views
past their buffers, invalid UTF-8 crash them or give a table that fails
``validate(full=True)``. So an object that exports ``__arrow_c_stream__`` /
``__arrow_c_array__`` and is not a pyarrow object is imported through metriccore's own
:class:`~metriccore._kernels.ArrowInput` first (every pointer the C Data Interface requires
is checked there), moved into pyarrow, and then every column is validated with
``validate(full=True)`` (offsets, views, UTF-8, dictionary indices, null counts). pyarrow
objects and pandas DataFrames (converted by pyarrow) are taken as they are, without that
cost: see ``tests/README.md``, "Limits".
"""

from __future__ import annotations

import re
import sys
from typing import Any

import pyarrow as pa

UNSUPPORTED_INPUT = (
    "unsupported input of type {}; expected a pyarrow Table, RecordBatch or "
    "RecordBatchReader, a pandas DataFrame, or an object with __arrow_c_stream__ or "
    "__arrow_c_array__")

#: A non-table input (a pyarrow Array, a pandas Series): the compiled core's message.
NOT_A_TABLE = "expected a table-like Arrow input (a struct / record batch), got Arrow type {}"
#: pyarrow's import of a non-struct schema as a record batch: the type is in the message.
_NON_STRUCT = re.compile(r"ArrowSchema describes non-struct type (.+)$", re.DOTALL)


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


def _is_foreign(data: object) -> bool:
    if isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        return False
    pandas = sys.modules.get("pandas")  # a DataFrame can only exist if pandas is imported
    if pandas is not None and isinstance(data, pandas.DataFrame):
        return False  # as_table converts it with pyarrow
    return hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__")


def _import_checked(data: object) -> pa.Table:
    """Import a foreign producer through ArrowInput's checks, then move it into pyarrow."""
    from . import _kernels as K  # the compiled module: imported only when needed

    stream = getattr(data, "__arrow_c_stream__", None)
    if stream is not None:
        src = K.ArrowInput.from_stream(stream())
    else:
        schema_capsule, array_capsule = data.__arrow_c_array__()  # type: ignore[attr-defined]
        src = K.ArrowInput.from_array(schema_capsule, array_capsule)
    schema_address, batch_addresses = src.export_addresses()
    schema = pa.Schema._import_from_c(schema_address)
    # each import moves the struct out of src; src releases whatever was not imported
    batches = [pa.RecordBatch._import_from_c(address, schema) for address in batch_addresses]
    del src
    return pa.Table.from_batches(batches, schema=schema)


def _validate(table: pa.Table, source: str) -> None:
    """ValueError naming ``source``, the column and the rows of the first invalid batch."""
    for name, column in zip(table.column_names, table.columns):
        start = 0
        for chunk in column.chunks:
            try:
                chunk.validate(full=True)
            except pa.ArrowException as exc:  # ArrowInvalid, ArrowIndexError (views)
                raise ValueError(
                    f"{source} column {name!r} rows {start} to {start + len(chunk) - 1} "
                    f"(one Arrow batch): invalid Arrow data: {exc} (indices counted from "
                    f"row {start})") from None
            start += len(chunk)


def checked_table(data: object, source: str) -> pa.Table:
    """``data`` as a pyarrow Table, like :func:`as_table`, except that a
    foreign producer's structs and buffers are checked first; ``source`` ("loans",
    "repayments") names the input in errors."""
    if not _is_foreign(data):
        return as_table(data)
    try:
        table = _import_checked(data)
    except pa.ArrowNotImplementedError as exc:  # a type pyarrow cannot import
        raise TypeError(f"{source}: {exc}") from None
    except (ValueError, TypeError) as exc:      # pa.ArrowInvalid is a ValueError
        raise type(exc)(f"{source}: {exc}") from None
    _validate(table, source)
    return table


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
