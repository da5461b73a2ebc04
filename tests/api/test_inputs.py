"""Every accepted kind of input gives the same result as the equivalent pyarrow Table:
Arrow PyCapsule producers (stream and array), RecordBatch, RecordBatchReader, pandas,
polars and duckdb; key columns of every string-like / dictionary representation; null slots
whose hidden payload is garbage."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from helpers import strategies as S


class StreamOnly:
    """Exposes nothing but ``__arrow_c_stream__`` (like a foreign dataframe library)."""

    __slots__ = ("_source", "calls")

    def __init__(self, source):
        self._source = source
        self.calls = 0

    def __arrow_c_stream__(self, requested_schema=None):
        self.calls += 1
        return self._source.__arrow_c_stream__(requested_schema)


class ArrayOnly:
    """Exposes nothing but ``__arrow_c_array__`` (a single struct array / record batch)."""

    __slots__ = ("_batch", "calls")

    def __init__(self, batch: pa.RecordBatch):
        self._batch = batch
        self.calls = 0

    def __arrow_c_array__(self, requested_schema=None):
        self.calls += 1
        return self._batch.__arrow_c_array__(requested_schema)


def _snapshot(n: int = 60, key_type=pa.string()) -> pa.Table:
    cols = S.default_snapshot(n, key=[None if i % 11 == 5 else f"o{i % 4}" for i in range(n)],
                              key_type=pa.string())
    cols["officer_id"] = cols["officer_id"].cast(key_type)
    cols["branch"] = pa.array([i % 2 for i in range(n)], pa.int16())
    return pa.table(cols)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    t = _snapshot()
    return S.rechunk(t, [7, 7, 30])


def _all_results(impl, data_factory):
    return (impl.officer_metrics(data_factory()),
            impl.officer_metrics(data_factory(), by=["branch", "officer_id"], threads=2),
            impl.officer_metrics(data_factory(), by=()),
            impl.portfolio_metrics(data_factory()))


def _assert_same(impl, table, data_factory):
    want = _all_results(impl, lambda: table)
    got = _all_results(impl, data_factory)
    for i, (g, w) in enumerate(zip(got[:3], want[:3])):
        S.assert_tables_identical(g, w, f"call {i}")
    S.assert_values_identical(got[3], want[3], "portfolio_metrics")


def test_stream_capsule_producer(impl, table):
    producer = StreamOnly(table)
    assert not isinstance(producer, (pa.Table, pa.RecordBatch, pa.RecordBatchReader))
    assert not hasattr(producer, "__arrow_c_array__") and not hasattr(producer, "__dict__")
    _assert_same(impl, table, lambda: producer)
    assert producer.calls >= 4


def test_stream_capsule_producer_single_use(impl, table):
    # a producer whose stream can be read only once (like a reader-backed object)
    def factory():
        return StreamOnly(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))
    _assert_same(impl, table, factory)


def test_array_capsule_producer(impl, table):
    batch = table.combine_chunks().to_batches()[0]
    producer = ArrayOnly(batch)
    assert not hasattr(producer, "__arrow_c_stream__")
    _assert_same(impl, table, lambda: producer)
    assert producer.calls >= 4


def test_record_batch(impl, table):
    batch = table.combine_chunks().to_batches()[0]
    _assert_same(impl, table, lambda: batch)
    # a sliced batch (non-zero offsets)
    sliced = batch.slice(3, 40)
    S.assert_tables_identical(impl.officer_metrics(sliced),
                              impl.officer_metrics(table.slice(3, 40)), "sliced batch")


def test_record_batch_reader(impl, table):
    _assert_same(impl, table,
                 lambda: pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))


def test_record_batch_reader_with_empty_batches(impl, table):
    batches = table.to_batches()
    empty = pa.RecordBatch.from_pylist([], schema=table.schema)
    seq = [empty] + [b for pair in zip(batches, [empty] * len(batches)) for b in pair]
    _assert_same(impl, table, lambda: pa.RecordBatchReader.from_batches(table.schema, seq))


def test_pandas_arrow_backed(impl, table):
    pd = pytest.importorskip("pandas")
    df = table.to_pandas(types_mapper=pd.ArrowDtype)
    assert isinstance(df, pd.DataFrame)
    _assert_same(impl, table, lambda: df)


def test_pandas_numpy_backed(impl):
    pd = pytest.importorskip("pandas")
    n = 30
    df = pd.DataFrame({
        "officer_id": [f"o{i % 3}" for i in range(n)],
        "fimr_tagged": [i % 5 == 0 for i in range(n)],
        "current_dpd": np.array([i % 40 for i in range(n)], dtype=np.int64),
        "previous_dpd": np.array([i % 8 for i in range(n)], dtype=np.int32),
        "principal_outstanding": [1000.125 + i for i in range(n)],
        "amount_due_7d": [10.005 * i for i in range(n)],
        "interest_collected": [5.5] * n,
        "fees_collected": [0.25] * n,
        "fees_due": [1.0] * n,
        "outstanding_balance": [[2000.0, 2000.01, 1999.99][i % 3] for i in range(n)],
        "days_since_last_repayment": np.arange(n, dtype=np.int16),
        "loan_age": np.arange(n, dtype=np.int64) + 100,
    })
    df.index = np.arange(100, 100 + n)  # a non-default index is not a column
    expected = pa.Table.from_pandas(df, preserve_index=False)
    for data in (df, df.iloc[::2]):
        S.assert_tables_identical(
            impl.officer_metrics(data), impl.officer_metrics(pa.Table.from_pandas(
                data, preserve_index=False)), "pandas")
    S.assert_values_identical(impl.portfolio_metrics(df), impl.portfolio_metrics(expected))


def test_polars(impl, table):
    pl = pytest.importorskip("polars")
    t = table.append_column("dkey", table.column("officer_id").dictionary_encode())
    df = pl.from_arrow(t)
    assert isinstance(df, pl.DataFrame)
    S.assert_tables_identical(impl.officer_metrics(df), impl.officer_metrics(t), "polars")
    S.assert_tables_identical(impl.officer_metrics(df, by=["dkey", "branch"]),
                              impl.officer_metrics(t, by=["dkey", "branch"]), "polars categorical")
    S.assert_values_identical(impl.portfolio_metrics(df), impl.portfolio_metrics(t))


def test_duckdb(impl, table):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.register("snap", table)
    for rel in (con.sql("select * from snap"), duckdb.from_arrow(table, connection=con)):
        S.assert_tables_identical(impl.officer_metrics(rel), impl.officer_metrics(table), "duckdb")
    rel = con.sql("select * from snap")
    S.assert_values_identical(impl.portfolio_metrics(rel), impl.portfolio_metrics(table))


# ------------------------------------------------------------------------------------------
# key representations
# ------------------------------------------------------------------------------------------

STRING_KEYS = [pa.string(), pa.large_string(), pa.string_view(),
               pa.dictionary(pa.int8(), pa.string()), pa.dictionary(pa.int32(), pa.large_string()),
               pa.dictionary(pa.uint16(), pa.string())]


@pytest.mark.parametrize("key_type", STRING_KEYS, ids=str)
def test_string_key_representations_equal(impl, key_type):
    base = impl.officer_metrics(_snapshot(key_type=pa.string()))
    got = impl.officer_metrics(S.rechunk(_snapshot(key_type=key_type), [3, 17, 17]))
    assert got.schema.field("officer_id").type == pa.string()
    S.assert_tables_identical(got, base, str(key_type))


def test_string_view_keys_long_and_short(impl):
    # string_view stores values <= 12 bytes inline and longer ones in data buffers
    names = ["short", "exactly12chr", "a much longer officer name, not inlined", "", None,
             "exactly13char", "é" * 7]
    n = 70
    snap = S.default_snapshot(n, key=[names[i % len(names)] for i in range(n)], key_type=pa.string())
    plain = pa.table(snap)
    view = plain.set_column(0, "officer_id", plain.column("officer_id").cast(pa.string_view()))
    S.assert_tables_identical(impl.officer_metrics(S.rechunk(view, [10, 33])),
                              impl.officer_metrics(plain), "string_view")


@pytest.mark.parametrize("index_type", [pa.int8(), pa.int16(), pa.uint32(), pa.int64()], ids=str)
def test_integer_dictionary_keys(impl, index_type):
    n = 40
    keys = [None if i % 9 == 0 else [5, -3, 2**40][i % 3] for i in range(n)]
    plain = pa.table(S.default_snapshot(n, key=keys, key_type=pa.int64()))
    enc = plain.column("officer_id").combine_chunks().dictionary_encode()
    enc = pa.DictionaryArray.from_arrays(enc.indices.cast(index_type), enc.dictionary)
    t = plain.set_column(0, "officer_id", enc)
    got = impl.officer_metrics(t)
    assert got.schema.field("officer_id").type == pa.int64()
    S.assert_tables_identical(got, impl.officer_metrics(plain), "dictionary<int, int64>")


# ------------------------------------------------------------------------------------------
# null slots with garbage underneath must be ignored
# ------------------------------------------------------------------------------------------

def _with_garbage(arr: pa.Array, garbage, positions) -> pa.Array:
    """``arr`` (no nulls) with ``positions`` made null and their payload set to ``garbage``."""
    n = len(arr)
    valid = np.ones(n, dtype=bool)
    valid[list(positions)] = False
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    np_type = arr.type.to_pandas_dtype()
    values = arr.to_numpy(zero_copy_only=False).astype(np_type).copy()
    values[list(positions)] = garbage
    return pa.Array.from_buffers(arr.type, n, [bitmap, pa.py_buffer(values)])


def test_null_slots_with_garbage_payload(impl):
    n = 24
    null_rows = [1, 8, 9, 23]
    snap = S.default_snapshot(n)
    clean = dict(snap)
    for name in ("principal_outstanding", "outstanding_balance"):
        clean[name] = _with_garbage(snap[name], 0.0, null_rows)
    clean["loan_age"] = _with_garbage(snap["loan_age"].cast(pa.uint64()), 0, null_rows)
    clean["fees_due"] = _with_garbage(snap["fees_due"].cast(pa.int64()), 0, null_rows)
    dirty = dict(snap)
    dirty["principal_outstanding"] = _with_garbage(snap["principal_outstanding"], math.nan, null_rows)
    dirty["outstanding_balance"] = _with_garbage(snap["outstanding_balance"], math.inf, null_rows)
    dirty["loan_age"] = _with_garbage(snap["loan_age"].cast(pa.uint64()), 2**64 - 1, null_rows)
    dirty["fees_due"] = _with_garbage(snap["fees_due"].cast(pa.int64()), 2**63 - 1, null_rows)
    S.assert_tables_identical(impl.officer_metrics(pa.table(dirty)),
                              impl.officer_metrics(pa.table(clean)), "garbage under nulls")


def test_null_dictionary_index_with_out_of_range_payload(impl):
    n = 20
    snap = S.default_snapshot(n, key=[f"o{i % 3}" for i in range(n)], key_type=pa.string())
    idx = np.array([i % 3 for i in range(n)], dtype=np.int8)
    idx[[4, 7]] = 127  # out of range, but the slots are null
    valid = np.ones(n, dtype=bool)
    valid[[4, 7]] = False
    indices = pa.Array.from_buffers(pa.int8(), n, [pa.py_buffer(np.packbits(valid, bitorder="little")),
                                                   pa.py_buffer(idx)])
    dirty = dict(snap, officer_id=pa.DictionaryArray.from_arrays(indices, pa.array(["o0", "o1", "o2"])))
    clean = dict(snap, officer_id=pa.array([None if i in (4, 7) else f"o{i % 3}" for i in range(n)]))
    S.assert_tables_identical(impl.officer_metrics(pa.table(dirty)),
                              impl.officer_metrics(pa.table(clean)), "dictionary null index")


def test_decimal_money_equals_float_money_for_exact_cents(impl):
    n = 30
    snap = S.default_snapshot(n)
    cents = [123456 - 9999 * i for i in range(n)]
    as_float = dict(snap, principal_outstanding=pa.array([c / 100 for c in cents]))
    as_dec = dict(snap, principal_outstanding=pa.array([Decimal(c).scaleb(-2) for c in cents],
                                                       pa.decimal128(12, 2)))
    as_dec4 = dict(snap, principal_outstanding=pa.array([Decimal(c * 100).scaleb(-4) for c in cents],
                                                        pa.decimal128(30, 4)))
    want = impl.officer_metrics(pa.table(as_float))
    S.assert_tables_identical(impl.officer_metrics(pa.table(as_dec)), want, "decimal(12,2)")
    S.assert_tables_identical(impl.officer_metrics(pa.table(as_dec4)), want, "decimal(30,4)")
