"""Regression tests for engine bugs found during development."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from helpers import strategies as S


def _snapshot(keys: pa.Array) -> pa.Table:
    n = len(keys)
    columns = {"officer_id": keys, "fimr_tagged": pa.array([True] * n),
               "current_dpd": pa.array([1] * n), "previous_dpd": pa.array([1] * n),
               "days_since_last_repayment": pa.array([1] * n), "loan_age": pa.array([1] * n)}
    for name in ("principal_outstanding", "amount_due_7d", "interest_collected",
                 "fees_collected", "fees_due", "outstanding_balance"):
        columns[name] = pa.array([1.0] * n)
    return pa.table(columns)


@pytest.mark.parametrize("dictionary", [False, True])
@pytest.mark.parametrize("arrow_type", [pa.int8(), pa.int16(), pa.int32()])
def test_narrow_signed_keys_keep_their_sign(engine, reference, arrow_type, dictionary):
    # Cython typed a conditional mixing int8_t and uint8_t as unsigned: -128 read as 128.
    low = -(2 ** (arrow_type.bit_width - 1))
    keys = pa.array([2**(arrow_type.bit_width - 1) - 1, low, -1, 0, None], arrow_type)
    if dictionary:
        keys = keys.dictionary_encode()
    table = _snapshot(keys)
    got = engine.officer_metrics(table)
    assert got["officer_id"].to_pylist() == [low, -1, 0, 2**(arrow_type.bit_width - 1) - 1, None]
    S.assert_tables_identical(got, reference.officer_metrics(table))


def test_negative_int8_dictionary_index_is_an_error(engine):
    dictionary = pa.array([f"o{i}" for i in range(200)])
    indices = pa.array(np.array([0, -56, 1], dtype=np.int8))
    keys = pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)
    with pytest.raises(ValueError, match="column 'officer_id' row 1: dictionary index out of range"):
        engine.officer_metrics(_snapshot(keys))


def test_output_without_pyarrow_c_import_is_identical(engine, monkeypatch):
    # The output is normally imported as one C struct array; the per-column fallback (for a
    # pyarrow without RecordBatch._import_from_c) must build the same table.
    from metriccore import _officer

    table = _snapshot(pa.array(["b", None, "a", "b", "c"]))
    fast = engine.officer_metrics(table, by="officer_id")
    monkeypatch.setattr(_officer, "_IMPORT_FROM_C", None)
    slow = engine.officer_metrics(table, by="officer_id")
    S.assert_tables_identical(fast, slow)
    assert fast["officer_id"].to_pylist() == ["a", "b", "c", None]


def test_cached_column_plans_follow_the_schema(engine):
    # The engine caches its column lookups and type checks by schema: the same column names
    # with another type, order or mapping must be checked again, not served from the cache.
    table = _snapshot(pa.array([1, 2]))
    engine.officer_metrics(table)
    i = table.schema.get_field_index("current_dpd")
    with pytest.raises(TypeError, match="column 'current_dpd' has Arrow type double"):
        engine.officer_metrics(table.set_column(i, "current_dpd", pa.array([1.0, 2.0])))
    renamed = table.rename_columns(["dpd" if n == "current_dpd" else n for n in table.column_names])
    with pytest.raises(ValueError, match="column 'current_dpd' not found"):
        engine.officer_metrics(renamed)
    S.assert_tables_identical(engine.officer_metrics(renamed, columns={"current_dpd": "dpd"}),
                              engine.officer_metrics(table))
    reordered = table.select(list(reversed(table.column_names)))
    S.assert_tables_identical(engine.officer_metrics(reordered), engine.officer_metrics(table))


@pytest.mark.parametrize("arrow_type", [pa.uint8(), pa.uint32(), pa.int64(), pa.uint64()])
@pytest.mark.parametrize("spread", ["dense", "wide"])
def test_single_integer_key_order_and_values(engine, reference, arrow_type, spread):
    # One integer key is sorted by a counting sort when its values are dense and by the
    # general path otherwise; both must give the reference's rows, the null group last.
    unsigned = pa.types.is_unsigned_integer(arrow_type)
    top = 2**arrow_type.bit_width - 1 if unsigned else 2**(arrow_type.bit_width - 1) - 1
    values = [3, 1, None, 2, 3, 0] + ([top, top - 1] if spread == "wide" else [7, 5])
    table = _snapshot(pa.array(values, arrow_type))
    got = engine.officer_metrics(table)
    expected = sorted({v for v in values if v is not None}) + [None]
    assert got["officer_id"].to_pylist() == expected
    S.assert_tables_identical(got, reference.officer_metrics(table))
