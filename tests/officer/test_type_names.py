"""Error messages name unsupported nested Arrow types exactly as pyarrow prints them."""

from __future__ import annotations

import pyarrow as pa
import pytest

from metriccore.synthetic import loan_snapshot

NESTED = [
    pa.map_(pa.string(), pa.int64()),
    pa.map_(pa.int32(), pa.list_(pa.string())),
    pa.list_(pa.int64()),
    pa.large_list(pa.float64()),
    pa.struct([("a", pa.int32()), ("b", pa.string())]),
    pa.list_(pa.int16(), 3),
]


@pytest.mark.parametrize("arrow_type", NESTED, ids=str)
def test_nested_type_in_a_used_column(impl, arrow_type):
    table = loan_snapshot(8, 2, seed=3)
    column = pa.nulls(table.num_rows, arrow_type)
    table = table.set_column(table.column_names.index("current_dpd"), "current_dpd", column)
    with pytest.raises(TypeError) as info:
        impl.officer_metrics(table)
    assert str(info.value) == (f"column 'current_dpd' has Arrow type {arrow_type}; "
                               "expected an integer type")
