"""MetricConfig: frozen, slotted, validated, exact threshold; and what its fields do."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from fractions import Fraction

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import strategies as S
from metriccore import MetricConfig


def test_defaults():
    c = MetricConfig()
    assert c.par_days == 15
    assert c.active_threshold == 2000
    assert c.money_scale == 2
    assert c.active_threshold_minor == 200_000


def test_frozen():
    c = MetricConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.par_days = 30  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del c.money_scale  # type: ignore[misc]
    assert c.par_days == 15


def test_slotted():
    c = MetricConfig()
    assert not hasattr(c, "__dict__")
    assert "__slots__" in vars(MetricConfig)
    with pytest.raises((AttributeError, TypeError)):
        c.new_attribute = 1  # type: ignore[attr-defined]
    with pytest.raises((AttributeError, TypeError)):
        object.__setattr__(c, "new_attribute", 1)


def test_equality_hash_replace():
    assert MetricConfig() == MetricConfig()
    assert hash(MetricConfig(par_days=7)) == hash(MetricConfig(par_days=7))
    assert MetricConfig(par_days=7) != MetricConfig()
    c = dataclasses.replace(MetricConfig(), money_scale=4)
    assert c.money_scale == 4 and c.active_threshold_minor == 20_000_000
    assert MetricConfig(**MetricConfig(par_days=3).as_dict()) == MetricConfig(par_days=3)


@pytest.mark.parametrize("kw,exc", [
    ({"par_days": "15"}, TypeError), ({"par_days": 15.0}, TypeError), ({"par_days": True}, TypeError),
    ({"par_days": None}, TypeError), ({"par_days": 0}, ValueError), ({"par_days": -1}, ValueError),
    ({"money_scale": -1}, ValueError), ({"money_scale": 10}, ValueError),
    ({"money_scale": 2.0}, TypeError), ({"money_scale": False}, TypeError),
    ({"money_scale": "2"}, TypeError),
    ({"active_threshold": "2000"}, TypeError), ({"active_threshold": None}, TypeError),
    ({"active_threshold": True}, TypeError), ({"active_threshold": math.nan}, ValueError),
    ({"active_threshold": math.inf}, ValueError), ({"active_threshold": -math.inf}, ValueError),
    ({"active_threshold": Decimal("NaN")}, ValueError),
    ({"active_threshold": Decimal("Infinity")}, ValueError),
    ({"active_threshold": 2**63}, ValueError), ({"active_threshold": 10**17}, ValueError),
    ({"active_threshold": -(10**17)}, ValueError),
    ({"fimr_green": "0.03"}, TypeError), ({"fimr_green": math.nan}, ValueError),
    ({"fimr_green": 0.07}, ValueError), ({"slippage_green": 0.09}, ValueError),
    ({"roll_watch": 0.2}, ValueError), ({"ayr_green": 0.2}, ValueError),
    ({"ayr_watch": 0.6}, ValueError), ({"dqi_green": 60}, ValueError),
    ({"dqi_watch": 80}, ValueError), ({"risk_green": 50}, ValueError),
    ({"risk_watch": 30}, ValueError), ({"risk_amber": 70}, ValueError),
    ({"dqi_green": 75.0}, TypeError), ({"risk_amber": "40"}, TypeError),
    ({"risk_watch": True}, TypeError),
], ids=repr)
def test_validation(kw, exc):
    with pytest.raises(exc) as info:
        MetricConfig(**kw)
    assert type(info.value) is exc
    assert next(iter(kw)) in str(info.value)


@pytest.mark.parametrize("kw", [
    {"fimr_green": 0.05, "fimr_watch": 0.05}, {"ayr_green": 0.3, "ayr_watch": 0.3},
    {"risk_green": 50, "risk_watch": 50, "risk_amber": 50}, {"par_days": 1},
    {"money_scale": 0}, {"money_scale": 9}, {"active_threshold": Decimal("1999.995")},
    {"active_threshold": Fraction(1, 3)}, {"active_threshold": -5}, {"fimr_green": Fraction(1, 50)},
    {"dqi_green": 100, "dqi_watch": 0},
], ids=repr)
def test_valid(kw):
    MetricConfig(**kw)


@pytest.mark.parametrize("threshold,scale,minor", [
    (2000, 2, 200_000), (2000, 0, 2000), (2000, 4, 20_000_000),
    (2000.005, 2, 200_000),               # the double 2000.005 is just below 2000.005
    (Decimal("2000.005"), 2, 200_000), (Decimal("1999.999"), 2, 199_999),
    (Decimal("1999.995"), 3, 1_999_995), (0.29, 2, 28),  # 0.29 is 0.28999999999999998002...
    (Fraction(1, 3), 2, 33), (Fraction(-1, 3), 2, -34), (-0.001, 2, -1), (Decimal("-0.000"), 2, 0),
    (2000.5, 0, 2000), (-2000.5, 0, -2001), (0.1, 1, 1), (Fraction(7, 10), 1, 7),
    (Decimal("92233720368547758.07"), 2, 2**63 - 1),
])
def test_active_threshold_minor_is_exact(threshold, scale, minor):
    c = MetricConfig(active_threshold=threshold, money_scale=scale)
    assert c.active_threshold_minor == minor
    assert type(c.active_threshold_minor) is int


@settings(max_examples=S.examples(200))
@given(num=st.integers(-10**12, 10**12), den=st.integers(1, 10**6), scale=st.integers(0, 4),
       balance=st.integers(-10**12, 10**12))
def test_strict_comparison_in_minor_units_is_exact(num, den, scale, balance):
    # balance_minor > active_threshold_minor  <=>  balance_minor / 10**scale > threshold
    threshold = Fraction(num, den)
    if not -(2**63) <= math.floor(threshold * 10**scale) < 2**63:
        return
    c = MetricConfig(active_threshold=threshold, money_scale=scale)
    assert (balance > c.active_threshold_minor) == (Fraction(balance, 10**scale) > threshold)


# ------------------------------------------------------------------------------------------
# the fields' effect on the metrics (both implementations)
# ------------------------------------------------------------------------------------------

def _one_officer(**cols) -> pa.Table:
    n = len(next(iter(cols.values())))
    base = S.default_snapshot(n, key=[1] * n)
    for name, values in cols.items():
        base[name] = pa.array(values, base[name].type) if not isinstance(values, pa.Array) else values
    return pa.table(base)


@pytest.mark.parametrize("threshold,scale,active", [
    (2000, 2, [False, True, False, True, False]),
    (Decimal("1999.995"), 2, [True, True, False, True, False]),
    (Decimal("1999.985"), 2, [True, True, True, True, False]),
    (Fraction(4000001, 2000), 2, [False, True, False, True, False]),   # 2000.0005
    (Fraction(4000001, 2000), 4, [False, True, False, True, False]),
    (2000.005, 3, [False, True, False, True, False]),
    (2000, 0, [False, False, False, True, False]),
    (1999, 0, [True, True, True, True, False]),
])
def test_active_threshold_is_strict_and_exact(impl, threshold, scale, active):
    balances = [2000.0, 2000.01, 1999.99, 2001.0, None]
    table = _one_officer(outstanding_balance=balances, loan_age=[10, 20, 40, 80, 160])
    config = MetricConfig(active_threshold=threshold, money_scale=scale)
    row = impl.portfolio_metrics(table, config=config)
    assert row["active_loans"] == sum(active)
    assert row["n_loan_age"] == sum(active)
    assert row["sum_loan_age"] == sum(a for a, on in zip([10, 20, 40, 80, 160], active) if on)


@pytest.mark.parametrize("par_days", [1, 6, 7, 15, 30, 31, 1000])
def test_par_days_is_inclusive(impl, par_days):
    dpd = [0, 1, 6, 7, 14, 15, 16, 30, 31, None]
    principal = [float(2**i) for i in range(len(dpd))]
    table = _one_officer(current_dpd=dpd, principal_outstanding=principal)
    row = impl.portfolio_metrics(table, config=MetricConfig(par_days=par_days))
    assert row["par_balance"] == sum(p for d, p in zip(dpd, principal) if d is not None and d >= par_days)


@pytest.mark.parametrize("scale,values,total", [
    (2, [0.125, 0.135, 0.005, 0.015, -0.125], 0.12 + 0.14 + 0.0 + 0.02 - 0.12),
    (0, [0.5, 1.5, 2.5, -0.5, -2.5], 0.0 + 2.0 + 2.0 - 0.0 - 2.0),
    (3, [0.125, 0.0005, 0.0015], 0.125 + 0.0 + 0.002),
])
def test_money_scale_rounds_half_even(impl, scale, values, total):
    # per value: round_half_even(x * 10**scale) in float64
    table = _one_officer(fees_collected=values)
    row = impl.portfolio_metrics(table, config=MetricConfig(money_scale=scale))
    minor = sum(round(v * float(10**scale)) for v in values)
    assert row["fees_collected"] == float(minor) / float(10**scale)
    assert math.isclose(row["fees_collected"], total, abs_tol=1e-12)


@pytest.mark.parametrize("scale", [0, 1, 2, 3, 4])
def test_money_scale_decimal_half_even(impl, scale):
    from decimal import Decimal as D
    values = [D("0.0050"), D("0.0150"), D("0.0250"), D("-0.0050"), D("1.2345"), D("2.5000"),
              D("-3.5000")]
    table = _one_officer(fees_collected=pa.array(values, pa.decimal128(10, 4)))
    row = impl.portfolio_metrics(table, config=MetricConfig(money_scale=scale))
    minor = sum(round(Fraction(v) * 10**scale) for v in values)  # Fraction round: half-even
    assert row["fees_collected"] == float(minor) / float(10**scale)


def test_band_thresholds_are_used(impl):
    table = _one_officer(fimr_tagged=[True, False, False, False])  # fimr 0.25
    assert impl.portfolio_metrics(table)["fimr_band"] == "flag"
    cfg = MetricConfig(fimr_green=0.25, fimr_watch=0.5)
    assert impl.portfolio_metrics(table, config=cfg)["fimr_band"] == "green"
    cfg = MetricConfig(fimr_green=0.2, fimr_watch=0.25)
    assert impl.portfolio_metrics(table, config=cfg)["fimr_band"] == "watch"


# ------------------------------------------------------------------------------------------
# issue 10 item 6: integer thresholds beyond int64 are refused by MetricConfig itself
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,field", [
    ({"par_days": 2**63}, "par_days"),
    ({"par_days": 2**70}, "par_days"),
    ({"dqi_green": 2**63}, "dqi_green"),
    ({"dqi_green": -(2**63) - 1, "dqi_watch": -(2**63) - 1}, "dqi_green"),
    ({"dqi_watch": -(2**63) - 1}, "dqi_watch"),
    ({"risk_green": 2**63}, "risk_green"),
    ({"risk_watch": -(2**63) - 1, "risk_amber": -(2**63) - 1}, "risk_watch"),
    ({"risk_amber": -(2**63) - 1}, "risk_amber"),
], ids=repr)
def test_config_int_fields_beyond_int64_are_refused(kw, field):
    # The engine used to accept these at construction, then fail with a bare "Python int
    # too large to convert to C long" while the reference returned a table.
    with pytest.raises(ValueError) as info:
        MetricConfig(**kw)
    assert type(info.value) is ValueError
    assert str(info.value).startswith(f"MetricConfig.{field} must be between ")


@pytest.mark.parametrize("kw,field", [
    ({"fimr_watch": 10**400}, "fimr_watch"),
    ({"ayr_green": Fraction(10**400, 3)}, "ayr_green"),
    ({"roll_watch": Decimal("1e400")}, "roll_watch"),
    ({"slippage_green": Decimal("-1e400")}, "slippage_green"),
], ids=repr)
def test_config_float_fields_beyond_float64_are_refused(kw, field):
    with pytest.raises(ValueError) as info:
        MetricConfig(**kw)
    assert type(info.value) is ValueError
    assert str(info.value).startswith(f"MetricConfig.{field} must be finite")


@pytest.mark.parametrize("kw", [
    {"par_days": 2**63 - 1},
    {"dqi_green": 2**63 - 1, "dqi_watch": -(2**63)},
    {"risk_green": 2**63 - 1, "risk_watch": 0, "risk_amber": -(2**63)},
    {"risk_green": -(2**63), "risk_watch": -(2**63), "risk_amber": -(2**63)},
    {"dqi_green": 2**63 - 1, "dqi_watch": 2**63 - 1},
], ids=repr)
def test_config_int64_extremes_engine_equals_reference(engine, reference, kw):
    config = MetricConfig(**kw)
    table = pa.table(S.default_snapshot(40))
    got = engine.officer_metrics(table, config=config)
    S.assert_tables_identical(got, reference.officer_metrics(table, config=config))
    # the extremes do what they say: nothing is at risk / every band is the extreme one
    bands = {name: set(got.column(name).to_pylist()) for name in ("dqi_band", "risk_band")}
    if kw.get("par_days") == 2**63 - 1:
        assert set(got.column("par_balance").to_pylist()) == {0.0}
    if kw.get("dqi_green") == 2**63 - 1 and kw.get("dqi_watch") == -(2**63):
        assert bands["dqi_band"] == {"watch"}
    if kw.get("risk_amber") == -(2**63) and kw.get("risk_watch") == 0:
        assert bands["risk_band"] == {"watch"}  # every score is in 0..100
