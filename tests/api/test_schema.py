"""The output columns, pinned against METRICS.md §7 written out literally here (deliberately
not imported from ``metriccore._schema``), plus the value domains of the metric columns."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import given, settings

from helpers import strategies as S
from metriccore import MetricConfig
from metriccore import _schema

I64, F64, STR = pa.int64(), pa.float64(), pa.string()

#: METRICS.md §7, in order: (name, type, nullable)
SECTION_7 = [
    ("loans", I64, False),
    ("first_miss", I64, False),
    ("portfolio", F64, False),
    ("dpd1to6_balance", F64, False),
    ("par_balance", F64, False),
    ("prev_dpd1to6_balance", F64, False),
    ("rolled_balance", F64, False),
    ("amount_due_7d", F64, False),
    ("interest_collected", F64, False),
    ("fees_collected", F64, False),
    ("fees_due", F64, False),
    ("active_loans", I64, False),
    ("sum_days_since_last_repayment", I64, False),
    ("n_days_since_last_repayment", I64, False),
    ("sum_loan_age", I64, False),
    ("n_loan_age", I64, False),
    ("fimr", F64, False),
    ("slippage", F64, False),
    ("roll", F64, False),
    ("frr", F64, False),
    ("porr", F64, False),
    ("yield", F64, False),
    ("ayr", F64, False),
    ("rdr", F64, True),
    ("oti", F64, False),
    ("pen_rdr", F64, False),
    ("risk_score_raw", F64, False),
    ("risk_score", I64, False),
    ("dqi", I64, False),
    ("fimr_band", STR, False),
    ("slippage_band", STR, False),
    ("roll_band", STR, False),
    ("ayr_band", STR, False),
    ("dqi_band", STR, False),
    ("risk_band", STR, False),
]

#: input key type -> output key type (§7: dictionary keys decoded, strings as string)
KEY_OUTPUT = [
    (pa.int8(), pa.int8()), (pa.int16(), pa.int16()), (pa.int32(), pa.int32()),
    (pa.int64(), pa.int64()), (pa.uint8(), pa.uint8()), (pa.uint16(), pa.uint16()),
    (pa.uint32(), pa.uint32()), (pa.uint64(), pa.uint64()),
    (pa.string(), STR), (pa.large_string(), STR), (pa.string_view(), STR),
    (pa.dictionary(pa.int8(), pa.string()), STR),
    (pa.dictionary(pa.int32(), pa.large_string()), STR),
    (pa.dictionary(pa.uint16(), pa.string()), STR),
    (pa.dictionary(pa.int16(), pa.int64()), I64),
    (pa.dictionary(pa.int8(), pa.uint32()), pa.uint32()),
]


def expected_schema(keys: list[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema([pa.field(n, t, nullable=True) for n, t in keys]
                     + [pa.field(n, t, nullable=nullable) for n, t, nullable in SECTION_7])


def test_schema_module_matches_section_7():
    assert _schema.output_schema([]).equals(expected_schema([]), check_metadata=True)
    assert _schema.output_schema([("a", pa.uint64()), ("b", pa.large_string())]).equals(
        expected_schema([("a", pa.uint64()), ("b", STR)]), check_metadata=True)
    for t_in, t_out in KEY_OUTPUT:
        assert _schema.output_key_type(t_in) == t_out, t_in


def _table_with_key(key_type: pa.DataType, n: int = 9) -> pa.Table:
    vt = key_type.value_type if pa.types.is_dictionary(key_type) else key_type
    if pa.types.is_integer(vt):
        keys = pa.array([None if i == 4 else i % 3 for i in range(n)], vt)
    else:
        keys = pa.array([None if i == 4 else f"k{i % 3}" for i in range(n)], vt)
    if pa.types.is_dictionary(key_type):
        enc = keys.dictionary_encode()
        keys = pa.DictionaryArray.from_arrays(enc.indices.cast(key_type.index_type), enc.dictionary)
    cols = S.default_snapshot(n)
    cols["officer_id"] = keys
    return pa.table(cols)


@pytest.mark.parametrize("key_type,out_type", KEY_OUTPUT, ids=lambda t: str(t))
def test_officer_metrics_schema(impl, key_type, out_type):
    out = impl.officer_metrics(_table_with_key(key_type))
    assert out.schema.equals(expected_schema([("officer_id", out_type)]), check_metadata=True), \
        f"\n{out.schema}\n!=\n{expected_schema([('officer_id', out_type)])}"
    assert out.schema.metadata is None
    assert all(f.metadata is None for f in out.schema)
    assert out.num_rows == 4  # three keys and the null key
    assert out.column("officer_id").null_count == 1
    assert out.column("officer_id")[3].as_py() is None  # nulls last


def test_key_columns_come_in_by_order(impl):
    t = _table_with_key(pa.string()).append_column("branch", pa.array([1, 2, 1, 2, 1, 2, 1, 2, 1],
                                                                      pa.uint16()))
    out = impl.officer_metrics(t, by=["branch", "officer_id"])
    assert out.schema.equals(expected_schema([("branch", pa.uint16()), ("officer_id", STR)]),
                             check_metadata=True)
    out = impl.officer_metrics(t, by=("officer_id", "branch"))
    assert out.column_names[:2] == ["officer_id", "branch"]


def test_portfolio_schema(impl):
    t = _table_with_key(pa.int64())
    out = impl.officer_metrics(t, by=())
    assert out.schema.equals(expected_schema([]), check_metadata=True)
    assert out.num_rows == 1
    row = impl.portfolio_metrics(t)
    assert isinstance(row, dict)
    assert list(row) == [name for name, _, _ in SECTION_7]
    for name, t_, _ in SECTION_7:
        value = row[name]
        if name == "rdr" and value is None:
            continue
        want = {I64: int, F64: float, STR: str}[t_]
        assert type(value) is want, (name, value)


# ------------------------------------------------------------------------------------------
# value domains (§3, §4), checked on generated inputs
# ------------------------------------------------------------------------------------------

def _band_at_most(x, green, watch):
    return "green" if x <= green else "watch" if x <= watch else "flag"


def _band_at_least(x, green, watch):
    return "green" if x >= green else "watch" if x >= watch else "flag"


@settings(max_examples=S.examples(50))
@given(case=S.cases())
def test_metric_domains_and_bands(impl, case):
    out = S.call(impl, case)
    c = case.effective_config
    for row in out.to_pylist():
        for name, t, _ in SECTION_7:
            if t == F64 and row[name] is not None:
                assert math.isfinite(row[name]), (name, row[name])
        for name in ("fimr", "oti"):
            assert 0.0 <= row[name] <= 1.0, (name, row[name])
        assert 0.0 <= row["pen_rdr"] <= 40.0
        assert 0.0 <= row["risk_score_raw"] <= 100.0
        assert 0 <= row["risk_score"] <= 100 and 0 <= row["dqi"] <= 100
        assert row["risk_score"] == math.floor(row["risk_score_raw"] + 0.5)
        assert row["oti"] == min(1.0, max(0.0, 1.0 - row["slippage"]))
        assert row["loans"] >= max(row["first_miss"], row["active_loans"])
        assert row["active_loans"] >= max(row["n_loan_age"], row["n_days_since_last_repayment"])
        if row["rdr"] is None:
            assert row["pen_rdr"] == 0.0
        assert row["fimr_band"] == _band_at_most(row["fimr"], c.fimr_green, c.fimr_watch)
        assert row["slippage_band"] == _band_at_most(row["slippage"], c.slippage_green,
                                                     c.slippage_watch)
        assert row["roll_band"] == _band_at_most(row["roll"], c.roll_green, c.roll_watch)
        assert row["ayr_band"] == _band_at_least(row["ayr"], c.ayr_green, c.ayr_watch)
        assert row["dqi_band"] == _band_at_least(row["dqi"], c.dqi_green, c.dqi_watch)
        r = row["risk_score"]
        assert row["risk_band"] == ("green" if r >= c.risk_green else "watch" if r >= c.risk_watch
                                    else "amber" if r >= c.risk_amber else "red")


def test_default_config_bands_match_section_4():
    # boundaries of §4 with the default configuration
    c = MetricConfig()
    assert (c.fimr_green, c.fimr_watch) == (0.03, 0.06)
    assert (c.slippage_green, c.slippage_watch) == (0.05, 0.08)
    assert (c.roll_green, c.roll_watch) == (0.25, 0.35)
    assert (c.ayr_green, c.ayr_watch) == (0.50, 0.30)
    assert (c.dqi_green, c.dqi_watch) == (75, 65)
    assert (c.risk_green, c.risk_watch, c.risk_amber) == (80, 60, 40)


def test_check_layout_guards_the_compiled_column_constants():
    # _kernels and _derive call check_layout on import with their column constants (the
    # positions finalize writes to, the roles' order): a _schema list that no longer
    # matches them must stop the import, not put values in the wrong columns.
    names = ("a", "b", "c")
    _schema.check_layout("m", "column", names, 3, {"a": 0, "b": 1, "c": 2})
    with pytest.raises(ImportError, match=r"m: its column positions disagree.*\['a', 'b'\]"):
        _schema.check_layout("m", "column", names, 3, {"a": 1, "b": 0, "c": 2})
    with pytest.raises(ImportError, match="4 columns compiled, 3 listed"):
        _schema.check_layout("m", "column", names, 4, {"a": 0})
    with pytest.raises(ImportError, match=r"\['c'\]"):
        _schema.check_layout("m", "column", names, 3, {"c": 3})
