"""Tables from foreign Arrow producers, checked before pyarrow reads them.

The loan derivation carries whole columns through pyarrow (``take``, ``filter``,
``select``, concatenation, dictionary decoding), and pyarrow's importer and kernels trust
what a producer exports: a NULL pointer in the exported structs, string offsets that
decrease or point past the data, views past their buffers, invalid UTF-8 crash them or give
a table that fails ``validate(full=True)``. So an object that exports
``__arrow_c_stream__`` / ``__arrow_c_array__`` and is not a pyarrow object is imported
through metriccore's own :class:`~metriccore._kernels.ArrowInput` first (every pointer the
C Data Interface requires is checked there), moved into pyarrow, and then every column is
validated with ``validate(full=True)`` (offsets, views, UTF-8, dictionary indices, null
counts). pyarrow objects and pandas DataFrames (converted by pyarrow) are taken as they
are, without that cost: see ``tests/README.md``, "Limits".
"""

from __future__ import annotations

import sys

import pyarrow as pa

from ._args import as_table


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
    """``data`` as a pyarrow Table, like :func:`metriccore._args.as_table`, except that a
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
