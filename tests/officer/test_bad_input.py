"""Bad inputs and arguments: each case checks the exception type and the message fragment
fixed by the contract, on the engine and on the reference (the ``impl`` fixture)."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from helpers import strategies as S
from metriccore import MetricConfig
from metriccore._schema import INPUT_COLUMNS, output_schema


def snap(n: int = 12, *, batches=(), **overrides) -> pa.Table:
    """The default snapshot with some columns replaced (arrays or Python lists), split into
    record batches at ``batches``."""
    cols = S.default_snapshot(n)
    for name, value in overrides.items():
        if value is None:
            del cols[name]
        elif isinstance(value, (pa.Array, pa.ChunkedArray)):
            cols[name] = value
        else:
            cols[name] = pa.array(value, cols[name].type if name in cols else None)
    table = pa.table(cols)
    return S.rechunk(table, batches) if batches else table


def raises(exc, fn, *fragments) -> str:
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert type(info.value) is exc, f"raised {type(info.value).__name__}, not {exc.__name__}: {msg}"
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in message {msg!r}"
    return msg


def both_calls(impl, table, **kw):
    """The keyed call and the portfolio call; both must raise the same way."""
    return [lambda: impl.officer_metrics(table, **kw),
            lambda: impl.officer_metrics(table, by=(), **kw),
            lambda: impl.portfolio_metrics(table, **kw)]


def raises_all(impl, table, exc, *fragments, **kw):
    for f in both_calls(impl, table, **kw):
        raises(exc, f, *fragments)


# ------------------------------------------------------------------------------------------
# missing columns, column roles, by
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", INPUT_COLUMNS)
def test_missing_role_column(impl, role):
    table = snap(**{role: None})
    raises_all(impl, table, ValueError, f"column '{role}' not found in input")


def test_missing_default_key(impl):
    table = snap(officer_id=None)
    raises(ValueError, lambda: impl.officer_metrics(table), "column 'officer_id' not found in input")
    impl.officer_metrics(table, by=())  # the portfolio needs no key
    impl.portfolio_metrics(table)


def test_unknown_by_column(impl):
    table = snap()
    raises(ValueError, lambda: impl.officer_metrics(table, by="branch"),
           "column 'branch' not found in input")
    raises(ValueError, lambda: impl.officer_metrics(table, by=["officer_id", "region"]),
           "column 'region' not found in input")


@pytest.mark.parametrize("by", [("officer_id", "officer_id"), ["officer_id", "officer_id"],
                                ["officer_id", "branch", "officer_id"]])
def test_duplicate_by(impl, by):
    table = snap(branch=pa.array([i % 2 for i in range(12)]))
    raises(ValueError, lambda: impl.officer_metrics(table, by=by), "officer_id")


def test_at_most_32_key_columns(impl):
    n = 4
    cols = S.default_snapshot(n)
    for j in range(33):
        cols[f"k{j}"] = pa.array([0] * n, pa.int64())
    table = pa.table(cols)
    raises(ValueError, lambda: impl.officer_metrics(table, by=[f"k{j}" for j in range(33)]),
           "by has 33 key columns; at most 32 are supported")


def test_32_key_columns_keep_every_null_pattern_apart(impl, reference):
    # Regression: with 33 keys the engine's per-group null mask (uint32) wrapped around, so a
    # null in key 0 and a null in key 32 made one group. 32 keys is the supported maximum;
    # a null in each key position is its own group.
    n = 34
    cols = S.default_snapshot(n)
    for j in range(32):
        cols[f"k{j}"] = pa.array([None if i == j else 0 for i in range(n)], pa.int64())
    table = pa.table(cols)
    by = [f"k{j}" for j in range(32)]
    got = impl.officer_metrics(table, by=by)
    assert got.num_rows == 33
    S.assert_tables_identical(got, reference.officer_metrics(table, by=by))


def test_by_forms_are_equivalent(impl):
    table = snap()
    want = impl.officer_metrics(table)
    for by in ("officer_id", ["officer_id"], ("officer_id",)):
        S.assert_tables_identical(impl.officer_metrics(table, by=by), want, repr(by))
    S.assert_tables_identical(impl.officer_metrics(table, by=[]), impl.officer_metrics(table, by=()))


def test_columns_mapping(impl):
    base = snap()
    want = impl.officer_metrics(base)
    renamed = base.rename_columns([{"current_dpd": "dpd", "fees_due": "Fees Due"}.get(n, n)
                                   for n in base.column_names])
    mapping = {"current_dpd": "dpd", "fees_due": "Fees Due"}
    S.assert_tables_identical(impl.officer_metrics(renamed, columns=mapping), want, "renamed")
    # a decoy column with a role's default name but a wrong type is unused, hence ignored
    decoy = renamed.append_column("current_dpd", pa.array(["x"] * base.num_rows))
    S.assert_tables_identical(impl.officer_metrics(decoy, columns=mapping), want, "decoy")
    # identity entries are allowed
    S.assert_tables_identical(impl.officer_metrics(base, columns={"loan_age": "loan_age"}), want)
    S.assert_values_identical(impl.portfolio_metrics(renamed, columns=mapping),
                              impl.portfolio_metrics(base))
    # without the mapping the renamed input lacks the role's column
    raises(ValueError, lambda: impl.officer_metrics(renamed), "column 'current_dpd' not found in input")


def test_columns_mapping_swaps_and_shares(impl):
    base = snap()
    swapped = base.rename_columns([{"interest_collected": "fees_collected",
                                    "fees_collected": "interest_collected"}.get(n, n)
                                   for n in base.column_names])
    S.assert_tables_identical(
        impl.officer_metrics(swapped, columns={"interest_collected": "fees_collected",
                                               "fees_collected": "interest_collected"}),
        impl.officer_metrics(base), "swapped")
    # two roles may read the same column
    shared = base.set_column(base.schema.get_field_index("fees_due"), "fees_due",
                             base.column("fees_collected"))
    S.assert_tables_identical(impl.officer_metrics(base, columns={"fees_due": "fees_collected"}),
                              impl.officer_metrics(shared), "shared")


def test_mapped_column_missing_names_column_and_role(impl):
    table = snap()
    raises_all(impl, table, ValueError, "column 'dpd' not found in input", "current_dpd",
               columns={"current_dpd": "dpd"})


@pytest.mark.parametrize("role", ["foo", "officer_id", "dpd", "Current_DPD", ""])
def test_unknown_role(impl, role):
    raises_all(impl, snap(), ValueError, f"unknown column role '{role}'; expected one of",
               columns={role: "current_dpd"})


# ------------------------------------------------------------------------------------------
# types of used and unused columns
# ------------------------------------------------------------------------------------------

N = 12
WRONG_TYPES = [
    ("principal_outstanding", pa.array(["1.00"] * N)),
    ("amount_due_7d", pa.array(np.ones(N, np.float16))),
    ("fees_due", pa.array([Decimal(1)] * N, pa.decimal256(40, 2))),
    ("interest_collected", pa.array([[1]] * N, pa.list_(pa.int64()))),
    ("fees_collected", pa.array([{"a": 1}] * N, pa.struct([("a", pa.int64())]))),
    # regression: the engine once named map types wrongly (a negative index compiled with
    # wraparound=False read outside a list)
    ("fees_collected", pa.array([[("a", 1)]] * N, pa.map_(pa.string(), pa.int64()))),
    ("fees_due", pa.array([[]] * N, pa.map_(pa.int32(), pa.struct([("a", pa.int8()),
                                                                     ("b", pa.string())])))),
    ("outstanding_balance", pa.array([True] * N)),
    ("outstanding_balance", pa.array([Decimal(1)] * N, pa.decimal32(9, 2))),
    ("current_dpd", pa.array([1.0] * N)),
    ("previous_dpd", pa.array([1.0] * N, pa.float32())),
    ("loan_age", pa.array(list(range(N)), pa.int32()).cast(pa.date32())),
    ("days_since_last_repayment", pa.nulls(N)),
    ("days_since_last_repayment", pa.array([Decimal(1)] * N, pa.decimal128(5, 0))),
    ("fimr_tagged", pa.array([1] * N, pa.int8())),
    ("fimr_tagged", pa.array(["true"] * N)),
    ("officer_id", pa.array([1.5] * N)),
    ("officer_id", pa.array([True] * N)),
    ("officer_id", pa.array([b"x"] * N)),
    ("officer_id", pa.array([[1]] * N, pa.list_(pa.int64()))),
    ("officer_id", pa.array([1.0] * N).dictionary_encode()),
    ("officer_id", pa.array(list(range(N)), pa.int32()).cast(pa.date32())),
]


@pytest.mark.parametrize("name,array", WRONG_TYPES, ids=lambda x: str(x.type) if hasattr(x, "type") else x)
def test_wrong_type_in_used_column(impl, name, array):
    table = snap(**{name: array})
    raises(TypeError, lambda: impl.officer_metrics(table),
           f"column '{name}' has Arrow type {array.type}; expected")
    if name != "officer_id":
        raises(TypeError, lambda: impl.portfolio_metrics(table),
               f"column '{name}' has Arrow type {array.type}; expected")
    else:
        impl.portfolio_metrics(table)  # the key is unused there


def test_wrong_type_names_the_mapped_column(impl):
    table = snap(current_dpd=None, dpd=pa.array([1.0] * N))
    raises_all(impl, table, TypeError, "column 'dpd' has Arrow type double; expected",
               columns={"current_dpd": "dpd"})


def test_unsupported_types_in_unused_columns_are_ignored(impl):
    base = snap()
    table = base
    for i, t in enumerate(S.EXTRA_TYPES):
        table = table.append_column(f"extra_{i}", S._extra_array(t, base.num_rows))
    table = table.append_column("region", pa.array([[1, 2]] * base.num_rows))
    S.assert_tables_identical(impl.officer_metrics(table), impl.officer_metrics(base))
    S.assert_values_identical(impl.portfolio_metrics(table), impl.portfolio_metrics(base))


def test_schema_errors_come_before_value_errors(impl):
    nan_first = [math.nan] + [1.0] * (N - 1)
    raises_all(impl, snap(principal_outstanding=nan_first, loan_age=None), ValueError,
               "column 'loan_age' not found in input")
    raises_all(impl, snap(principal_outstanding=nan_first, fees_due=pa.array(["x"] * N)), TypeError,
               "column 'fees_due' has Arrow type string")


def test_unsupported_data_objects(impl):
    for data in (None, [1, 2, 3], 42, "officer_id", {"officer_id": [1]}):
        with pytest.raises(TypeError):
            impl.officer_metrics(data)


def test_duplicate_input_column_names(impl):
    base = snap()
    dup = pa.Table.from_arrays(base.columns + [base.column("current_dpd")],
                               names=base.column_names + ["current_dpd"])
    raises(ValueError, lambda: impl.officer_metrics(dup), "current_dpd")
    # a duplicated UNUSED column is fine
    ok = pa.Table.from_arrays(base.columns + [pa.nulls(N), pa.nulls(N)],
                              names=base.column_names + ["x", "x"])
    S.assert_tables_identical(impl.officer_metrics(ok), impl.officer_metrics(base))


# ------------------------------------------------------------------------------------------
# bad money values: NaN / inf, too big floats, int64 overflow
# ------------------------------------------------------------------------------------------

def _col(values, t=pa.float64()):
    return pa.array(values, t)


def _i64(values):
    return pa.array(values, pa.int64())


def _one_group(n):
    return _i64([1] * n)


NAN_CASES = [
    ("outstanding_balance", math.nan, pa.float64()),
    ("outstanding_balance", math.inf, pa.float64()),
    ("principal_outstanding", -math.inf, pa.float64()),
    ("fees_due", math.nan, pa.float32()),
    ("amount_due_7d", math.inf, pa.float32()),
    ("interest_collected", -math.nan, pa.float64()),
]


@pytest.mark.parametrize("role,value,t", NAN_CASES, ids=str)
def test_nan_or_inf_money_names_column_and_global_row(impl, role, value, t):
    n = 30
    values = [1.0] * n
    values[23] = value  # in the third record batch
    table = snap(n, batches=[10, 20], **{role: _col(values, t)})
    assert table.column(role).num_chunks == 3
    raises_all(impl, table, ValueError,
               f"column '{role}' row 23: money value is NaN or infinite")
    # the row number counts the rows of the input as given (a slice starts at 0)
    raises(ValueError, lambda: impl.officer_metrics(table.slice(5)),
           f"column '{role}' row 18: money value is NaN or infinite")
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    raises(ValueError, lambda: impl.officer_metrics(reader),
           f"column '{role}' row 23: money value is NaN or infinite")
    # with a renamed column the message names the actual column
    renamed = table.rename_columns([f"src {c}" if c == role else c for c in table.column_names])
    raises(ValueError, lambda: impl.officer_metrics(renamed, columns={role: f"src {role}"}),
           f"column 'src {role}' row 23: money value is NaN or infinite")


def test_nan_in_outstanding_balance_of_inactive_only_group(impl):
    # outstanding_balance is only compared, never summed: NaN is still an error
    table = snap(outstanding_balance=[0.0] * 5 + [math.nan] + [0.0] * (N - 6))
    raises_all(impl, table, ValueError, "column 'outstanding_balance' row 5: money value is NaN")


def test_nan_in_sliced_away_rows_is_ignored(impl):
    values = [math.nan, math.nan] + [1.0] * N + [math.inf]
    table = snap(N + 3, principal_outstanding=values).slice(2, N)
    clean = snap(N + 3, principal_outstanding=[0.0, 0.0] + [1.0] * N + [0.0]).slice(2, N)
    S.assert_tables_identical(impl.officer_metrics(table), impl.officer_metrics(clean))


def test_smallest_row_wins(impl):
    n = 30
    po = [1.0] * n
    po[25] = math.nan
    ob = [1.0] * n
    ob[17] = math.inf
    fd = [1.0] * n
    fd[20] = 1e300
    table = snap(n, batches=[12, 18, 24], principal_outstanding=po, outstanding_balance=ob,
                 fees_due=fd)
    raises_all(impl, table, ValueError, "column 'outstanding_balance' row 17: money value is NaN")


def test_same_row_tie_goes_to_first_input_column(impl):
    n = 20
    ic = [1.0] * n
    ic[9] = 1e300  # interest_collected comes before fees_due and outstanding_balance
    fd = [1.0] * n
    fd[9] = math.nan
    ob = [1.0] * n
    ob[9] = math.nan
    table = snap(n, batches=[9], fees_due=fd, interest_collected=ic, outstanding_balance=ob)
    raises_all(impl, table, ValueError,
               "column 'interest_collected' row 9: money value exceeds 2**53 minor units")
    # a day overflow in current_dpd (earlier in §1 order) beats money on the same row
    dpd = pa.array([0] * 9 + [2**63] + [0] * (n - 10), pa.uint64())
    table = snap(n, fees_due=fd, current_dpd=dpd)
    raises_all(impl, table, OverflowError, "column 'current_dpd' row 9: value does not fit int64")


@pytest.mark.parametrize("scale,value,ok", [
    (0, 2.0**53, True), (0, -(2.0**53), True), (0, 2.0**53 + 2, False), (0, -(2.0**53 + 2), False),
    (2, 1e14, False), (2, 9e13, True), (2, -1e14, False), (4, 1e12, False), (4, 9e11, True),
    (2, 1e308, False), (2, 1.7e308, False), (9, 1e7, False), (9, 9e6, True),
])
def test_float_beyond_2_53_minor_units(impl, scale, value, ok):
    values = [1.0] * N
    values[7] = value
    table = snap(principal_outstanding=values)
    config = MetricConfig(money_scale=scale)
    if ok:
        row = impl.portfolio_metrics(table, config=config)
        minor = round(value * float(10**scale)) + 11 * 10**scale
        assert row["portfolio"] == float(minor) / float(10**scale)
    else:
        raises_all(impl, table, ValueError,
                   "column 'principal_outstanding' row 7: money value exceeds 2**53 minor units",
                   config=config)


def test_float32_beyond_2_53_minor_units(impl):
    table = snap(amount_due_7d=_col([1.0] * 3 + [1e16] + [1.0] * (N - 4), pa.float32()))
    raises_all(impl, table, ValueError, "column 'amount_due_7d' row 3: money value exceeds 2**53")


@pytest.mark.parametrize("t,value,scale", [
    (pa.int64(), 2**63 - 1, 2), (pa.int64(), -(2**63), 1), (pa.int64(), (2**63 - 1) // 100 + 1, 2),
    (pa.uint64(), 2**63, 0), (pa.uint64(), 2**64 - 1, 0), (pa.int64(), 10**10, 9),
    (pa.decimal128(38, 2), Decimal(10**20), 2), (pa.decimal128(38, 0), Decimal(2**63), 0),
    (pa.decimal128(38, 6), Decimal(-(10**14)), 6),
])
def test_int_money_overflow(impl, t, value, scale):
    values = [0] * N if not pa.types.is_decimal(t) else [Decimal(0)] * N
    values[4] = value
    table = snap(fees_collected=pa.array(values, t))
    raises_all(impl, table, OverflowError,
               "column 'fees_collected' row 4: value does not fit int64 minor units",
               config=MetricConfig(money_scale=scale))


@pytest.mark.parametrize("t,value,scale", [
    (pa.int64(), 2**63 - 1, 0), (pa.int64(), -(2**63), 0), (pa.int64(), (2**63 - 1) // 100, 2),
    (pa.uint64(), 2**63 - 1, 0), (pa.decimal128(38, 4), Decimal(2**63 - 1).scaleb(-4), 4),
    (pa.decimal128(38, 6), Decimal(2**63 - 1).scaleb(-6), 4),
])
def test_int_money_at_the_int64_limit_fits(impl, t, value, scale):
    values = [0] * N if not pa.types.is_decimal(t) else [Decimal(0)] * N
    values[4] = value
    table = snap(fees_collected=pa.array(values, t), interest_collected=_i64([0] * N))
    row = impl.portfolio_metrics(table, config=MetricConfig(money_scale=scale))
    exact = value * 10**scale if not isinstance(value, Decimal) else round(value.scaleb(scale))
    assert row["fees_collected"] == float(exact) / float(10**scale)


@pytest.mark.parametrize("role", ["current_dpd", "previous_dpd", "loan_age",
                                  "days_since_last_repayment"])
def test_uint64_day_beyond_int64(impl, role):
    n = 25
    values = [3] * n
    values[21] = 2**63 + 5
    table = snap(n, batches=[8, 16], **{role: pa.array(values, pa.uint64())})
    raises_all(impl, table, OverflowError, f"column '{role}' row 21: value does not fit int64")
    # the largest int64 value itself is fine
    values = [0] * n
    values[21] = 2**63 - 1
    impl.officer_metrics(snap(n, **{role: pa.array(values, pa.uint64())}))


def test_uint64_day_beyond_int64_on_inactive_loan(impl):
    # every value is converted, whether or not the loan is active
    table = snap(outstanding_balance=[0.0] * N,
                 loan_age=pa.array([1] * 6 + [2**64 - 1] + [1] * (N - 7), pa.uint64()))
    raises_all(impl, table, OverflowError, "column 'loan_age' row 6: value does not fit int64")


# ------------------------------------------------------------------------------------------
# aggregate overflow
# ------------------------------------------------------------------------------------------

BIG = 2**62
SCALE0 = MetricConfig(money_scale=0)




def test_aggregate_overflow(impl):
    table = snap(4, officer_id=_i64([7, 7, 7, 8]), principal_outstanding=_i64([BIG, BIG, BIG, 1]))
    msg = raises(OverflowError, lambda: impl.officer_metrics(table, config=SCALE0),
                 "aggregate 'portfolio' overflows int64 for group")
    assert "7" in msg.split("for group", 1)[1]
    raises(OverflowError, lambda: impl.officer_metrics(table, by=(), config=SCALE0),
           "aggregate 'portfolio' overflows int64")
    msg = raises(OverflowError, lambda: impl.portfolio_metrics(table, config=SCALE0),
                 "aggregate 'portfolio' overflows int64")
    assert "for group" not in msg


def test_aggregate_overflow_negative(impl):
    table = snap(3, officer_id=_one_group(3), amount_due_7d=_i64([-BIG, -BIG, -BIG - 5]))
    raises_all(impl, table, OverflowError, "aggregate 'amount_due_7d' overflows int64",
               config=SCALE0)


@pytest.mark.parametrize("values", [[BIG, BIG, -BIG], [BIG, -BIG, BIG], [-BIG, -BIG, BIG],
                                    [2**63 - 1, 2**63 - 1, -(2**63), -(2**63) + 1],
                                    [BIG, BIG, BIG, -BIG, -BIG]])
@pytest.mark.parametrize("batches", [(), (1,), (1, 2), (0, 1, 1, 2, 3)])
def test_partial_sums_may_overflow_if_the_total_fits(impl, values, batches):
    n = len(values)
    zeros = pa.array([0] * n, pa.int32())
    table = snap(n, batches=batches, officer_id=_i64([1] * n), principal_outstanding=_i64(values),
                 fees_due=_i64(values), current_dpd=zeros, previous_dpd=zeros)
    for threads in (None, 1, 2, 8):
        out = impl.officer_metrics(table, config=SCALE0, threads=threads)
        assert out.column("portfolio").to_pylist() == [float(sum(values))]
        assert out.column("fees_due").to_pylist() == [float(sum(values))]
        row = impl.portfolio_metrics(table, config=SCALE0, threads=threads)
        assert row["portfolio"] == float(sum(values))


def test_partial_sums_overflow_across_large_chunks(impl):
    # 2**50 minor units * 100_000 rows leaves int64 long before the negative half cancels it
    n = 200_000
    units = np.where(np.arange(n) < n // 2, 2**50, -(2**50)).astype(np.int64)
    units[-1] += 3
    cols = {
        "officer_id": pa.array(np.zeros(n, np.int32)),
        "fimr_tagged": pa.array(np.zeros(n, bool)),
        "current_dpd": pa.array(np.zeros(n, np.int32)),
        "previous_dpd": pa.array(np.zeros(n, np.int32)),
        "days_since_last_repayment": pa.array(np.zeros(n, np.int32)),
        "loan_age": pa.array(np.ones(n, np.int32)),
    }
    for role in ("principal_outstanding", "amount_due_7d", "interest_collected",
                 "fees_collected", "fees_due", "outstanding_balance"):
        cols[role] = pa.array(units if role == "principal_outstanding" else np.zeros(n, np.int64))
    table = S.rechunk(pa.table(cols), [1, 70_000, 130_001])
    for threads in ((1, 4) if impl.__name__ == "metriccore" else (None,)):
        row = impl.portfolio_metrics(table, config=SCALE0, threads=threads)
        assert row["portfolio"] == 3.0
        out = impl.officer_metrics(table, config=SCALE0, threads=threads)
        assert out.column("portfolio").to_pylist() == [3.0]


def test_float_money_aggregate_overflow(impl):
    n = 1025  # 1025 * 2**53 > 2**63 - 1
    table = snap(n, officer_id=_one_group(n), principal_outstanding=[2.0**53] * n)
    raises_all(impl, table, OverflowError, "aggregate 'portfolio' overflows int64", config=SCALE0)
    ok = snap(1023, principal_outstanding=[2.0**53] * 1023)
    assert impl.portfolio_metrics(ok, config=SCALE0)["portfolio"] == float(1023 * 2**53)


def test_day_aggregate_overflow(impl):
    table = snap(3, officer_id=_one_group(3), outstanding_balance=[5000.0] * 3,
                 loan_age=_i64([BIG] * 3))
    raises_all(impl, table, OverflowError, "aggregate 'sum_loan_age' overflows int64")
    table = snap(3, officer_id=_one_group(3), outstanding_balance=[5000.0] * 3,
                 days_since_last_repayment=_i64([-BIG] * 3))
    raises_all(impl, table, OverflowError,
               "aggregate 'sum_days_since_last_repayment' overflows int64")
    # inactive loans do not enter the day sums
    table = snap(3, outstanding_balance=[0.0] * 3, loan_age=_i64([BIG] * 3))
    assert impl.portfolio_metrics(table)["sum_loan_age"] == 0


def test_yield_sum_overflow(impl):
    # interest and fees each fit, their exact sum does not
    table = snap(2, officer_id=_one_group(2), interest_collected=_i64([BIG, BIG // 2]),
                 fees_collected=_i64([BIG, 0]))
    raises_all(impl, table, OverflowError, "aggregate 'yield' overflows int64", config=SCALE0)


def test_aggregate_overflow_order(impl):
    # same group: portfolio (earlier in §7) before fees_due; yield after all of them
    table = snap(3, principal_outstanding=_i64([BIG] * 3), fees_due=_i64([BIG] * 3),
                 interest_collected=_i64([BIG] * 3), officer_id=_i64([1, 1, 1]))
    raises_all(impl, table, OverflowError, "aggregate 'portfolio' overflows int64", config=SCALE0)
    # first group in output order wins: group 1 (fees_due) before group 2 (portfolio)
    table = snap(6, officer_id=_i64([2, 2, 2, 1, 1, 1]),
                 principal_outstanding=_i64([BIG] * 3 + [0] * 3),
                 fees_due=_i64([0] * 3 + [BIG] * 3))
    raises(OverflowError, lambda: impl.officer_metrics(table, config=SCALE0),
           "aggregate 'fees_due' overflows int64 for group")
    # null keys sort last: group 'b' before the null group
    table = snap(6, officer_id=pa.array([None] * 3 + ["b"] * 3),
                 principal_outstanding=_i64([BIG] * 3 + [0] * 3),
                 fees_due=_i64([0] * 3 + [BIG] * 3))
    raises(OverflowError, lambda: impl.officer_metrics(table, config=SCALE0),
           "aggregate 'fees_due' overflows int64 for group")
    # by=(): the whole portfolio overflows portfolio first
    raises(OverflowError, lambda: impl.officer_metrics(table, by=(), config=SCALE0),
           "aggregate 'portfolio' overflows int64")


def test_per_group_totals_fit_but_portfolio_overflows(impl):
    table = snap(4, officer_id=_i64([1, 1, 2, 2]), principal_outstanding=_i64([BIG, BIG - 1] * 2))
    out = impl.officer_metrics(table, config=SCALE0)
    assert out.column("portfolio").to_pylist() == [float(2 * BIG - 1)] * 2
    raises(OverflowError, lambda: impl.portfolio_metrics(table, config=SCALE0),
           "aggregate 'portfolio' overflows int64")


# ------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", ["x", {}, {"money_scale": 2}, 2, MetricConfig], ids=repr)
def test_invalid_config_argument(impl, config):
    raises_all(impl, snap(), TypeError, config=config)


@pytest.mark.parametrize("threads,exc", [(0, ValueError), (-1, ValueError), (-8, ValueError),
                                         (True, TypeError), (False, TypeError), ("2", TypeError),
                                         (2.0, TypeError), (1.5, TypeError), ([2], TypeError)],
                         ids=repr)
def test_invalid_threads(impl, threads, exc):
    raises_all(impl, snap(), exc, "threads", threads=threads)


@pytest.mark.parametrize("threads", [None, 1, 2, 3, 64, 1000])
def test_valid_threads(impl, threads):
    table = snap()
    S.assert_tables_identical(impl.officer_metrics(table, threads=threads),
                              impl.officer_metrics(table))


# ------------------------------------------------------------------------------------------
# zero rows
# ------------------------------------------------------------------------------------------

def _empty_tables():
    base = snap(0, officer_id=pa.array([], pa.int8()))
    return {
        "empty table": base,
        "no batches": pa.Table.from_batches([], schema=base.schema),
        "empty batches": pa.Table.from_batches([pa.RecordBatch.from_pylist([], schema=base.schema)] * 3),
        "sliced to nothing": snap(5, officer_id=pa.array(range(5), pa.int8())).slice(2, 0),
        "reader": pa.RecordBatchReader.from_batches(base.schema, []),
    }


@pytest.mark.parametrize("name", list(_empty_tables()))
def test_zero_rows_keyed(impl, name):
    data = _empty_tables()[name]
    out = impl.officer_metrics(data)
    assert out.num_rows == 0
    assert out.schema.equals(output_schema([("officer_id", pa.int8())]), check_metadata=True)


@pytest.mark.parametrize("name", list(_empty_tables()))
def test_zero_rows_portfolio(impl, name):
    out = impl.officer_metrics(_empty_tables()[name], by=())
    assert out.num_rows == 1
    assert out.schema.equals(output_schema([]), check_metadata=True)
    row = out.to_pylist()[0]
    expected = {"loans": 0, "first_miss": 0, "portfolio": 0.0, "active_loans": 0,
                "n_loan_age": 0, "fimr": 0.0, "slippage": 0.0, "roll": 0.0, "frr": 0.0,
                "porr": 0.0, "yield": 0.0, "ayr": 0.0, "rdr": None, "oti": 1.0, "pen_rdr": 0.0,
                "risk_score_raw": 85.0, "risk_score": 85, "dqi": 93, "fimr_band": "green",
                "slippage_band": "green", "roll_band": "green", "ayr_band": "flag",
                "dqi_band": "green", "risk_band": "green"}
    for k, v in expected.items():
        assert S._same_value(row[k], v), (k, row[k], v)
    S.assert_values_identical(impl.portfolio_metrics(_empty_tables()[name]), row)


def test_zero_rows_still_checks_columns_and_types(impl):
    raises_all(impl, snap(0, loan_age=None), ValueError, "column 'loan_age' not found in input")
    raises_all(impl, snap(0, loan_age=pa.array([], pa.float64())), TypeError,
               "column 'loan_age' has Arrow type double")


# ------------------------------------------------------------------------------------------
# issue 10 items 7 and 8: str subclasses as names; non-table input; a producer failing
# ------------------------------------------------------------------------------------------

def test_str_subclass_names_in_by_and_columns(impl):
    # numpy.str_ names (``list(np.array([...]))``) used to be refused by the engine ("Expected
    # str, got numpy.str_") and accepted by the reference. The column names are unique to
    # this test, so no cached plan with plain-str names can hide the failure.
    base = snap().rename_columns({"officer_id": "officer_np7", "current_dpd": "dpd_np7"})
    want = impl.officer_metrics(base, by="officer_np7", columns={"current_dpd": "dpd_np7"})
    names = list(np.array(["officer_np7", "dpd_np7"]))
    assert type(names[0]) is np.str_
    for by in ([names[0]], names[0], (names[0],)):
        got = impl.officer_metrics(base, by=by, columns={np.str_("current_dpd"): names[1]})
        S.assert_tables_identical(got, want, repr(by))
        assert type(got.schema.names[0]) is str and got.schema.names[0] == "officer_np7"
    S.assert_values_identical(impl.portfolio_metrics(base, columns={"current_dpd": names[1]}),
                              impl.portfolio_metrics(base, columns={"current_dpd": "dpd_np7"}))


def test_str_subclass_names_are_checked_like_str(impl):
    table = snap()
    name = np.str_("officer_id")
    raises(ValueError, lambda: impl.officer_metrics(table, by=[name, name]),
           "duplicate key column 'officer_id' in by")
    raises(ValueError, lambda: impl.officer_metrics(table, by=[np.str_("nope")]),
           "column 'nope' not found in input")


def _non_tables():
    import pandas as pd
    return {"pyarrow Array": pa.array([1, 2]), "pyarrow ChunkedArray": pa.chunked_array([[1.5]]),
            "pandas Series": pd.Series([1, 2]), "string Array": pa.array(["a"]),
            "list Array": pa.array([[1]])}


@pytest.mark.parametrize("name", list(_non_tables()))
def test_non_table_input_same_error_in_engine_and_reference(engine, reference, name):
    # The engine raised TypeError, the reference ArrowInvalid: now both the same TypeError.
    data = _non_tables()[name]
    messages = {raises(TypeError, f, "expected a table-like Arrow input (a struct / record "
                       "batch), got Arrow type ")
                for impl in (engine, reference) for f in both_calls(impl, data)}
    assert len(messages) == 1, messages


def _failing_reader(table: pa.Table) -> pa.RecordBatchReader:
    def batches():
        yield from table.to_batches(max_chunksize=4)
        raise RuntimeError("producer broke at batch 3")
    return pa.RecordBatchReader.from_batches(table.schema, batches())


def test_producer_failing_midway_is_a_value_error(impl):
    # The engine wrapped it in ValueError, the reference re-raised it bare.
    with pytest.raises(ValueError) as info:
        impl.officer_metrics(_failing_reader(snap(12)))
    msg = str(info.value)
    assert type(info.value) is ValueError
    assert msg.startswith("the Arrow stream failed: ") and "producer broke at batch 3" in msg
