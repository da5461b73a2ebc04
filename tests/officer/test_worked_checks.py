"""The worked checks of METRICS.md §4, one test each, on the reference and on the engine.

Each check describes one group by its metrics; the tables below are built so that their
aggregates produce exactly those metrics. Every table is checked twice: grouped by
``officer_id`` (one group) and as the portfolio, which must give the same row.
"""

from __future__ import annotations

import importlib

import pyarrow as pa
import pytest

from metriccore import reference

_DEFAULT_ROW = {
    "officer_id": "officer-1",
    "fimr_tagged": False,
    "current_dpd": 0,
    "previous_dpd": 0,
    "principal_outstanding": 0.0,
    "amount_due_7d": 0.0,
    "interest_collected": 0.0,
    "fees_collected": 0.0,
    "fees_due": 0.0,
    "outstanding_balance": 0.0,
    "days_since_last_repayment": None,
    "loan_age": None,
}
_TYPES = {
    "officer_id": pa.string(),
    "fimr_tagged": pa.bool_(),
    "current_dpd": pa.int64(),
    "previous_dpd": pa.int64(),
    "principal_outstanding": pa.float64(),
    "amount_due_7d": pa.float64(),
    "interest_collected": pa.float64(),
    "fees_collected": pa.float64(),
    "fees_due": pa.float64(),
    "outstanding_balance": pa.float64(),
    "days_since_last_repayment": pa.int64(),
    "loan_age": pa.int64(),
}


@pytest.fixture(params=["reference", "engine"])
def impl(request):
    """The pure-Python reference, and the compiled engine when it has been built."""
    if request.param == "reference":
        return reference
    try:
        importlib.import_module("metriccore._kernels")
    except ImportError:
        pytest.skip("compiled engine metriccore._kernels is not built")
    return importlib.import_module("metriccore")


def loans_table(*loans: dict, filler: int = 0) -> pa.Table:
    """One officer's loans: the given rows, then ``filler`` rows with everything zero.

    Columns a row leaves out take the values of ``_DEFAULT_ROW``.
    """
    rows = [{**_DEFAULT_ROW, **loan} for loan in loans] + [_DEFAULT_ROW] * filler
    return pa.table({name: pa.array([row[name] for row in rows], type=type_)
                     for name, type_ in _TYPES.items()})


def one_group(impl, table: pa.Table) -> dict:
    """The metrics row of the single group, checked to equal the portfolio row."""
    result = impl.officer_metrics(table).to_pylist()
    assert len(result) == 1
    row = result[0]
    assert row.pop("officer_id") == "officer-1"
    assert impl.portfolio_metrics(table) == row
    return row


def test_worked_fimr_150_of_5000_is_green(impl):
    # 150 tagged loans among 5,000 -> fimr 0.03, on the green boundary (<= 0.03).
    table = loans_table(*[{"fimr_tagged": True}] * 150, filler=5000 - 150)
    row = one_group(impl, table)
    assert row["loans"] == 5000
    assert row["first_miss"] == 150
    assert row["fimr"] == 0.03  # 150/5000 correctly rounded is the double nearest 0.03
    assert row["fimr_band"] == "green"


def test_worked_ayr_2100000_plus_450000_over_par_4500000_is_green(impl):
    # One loan at risk (dpd >= 15) carries the whole PAR balance and the collections.
    table = loans_table({"current_dpd": 20, "principal_outstanding": 4_500_000.0,
                         "interest_collected": 2_100_000.0, "fees_collected": 450_000.0})
    row = one_group(impl, table)
    assert row["par_balance"] == 4_500_000.0
    assert row["yield"] == 2_550_000.0
    assert row["ayr"] == pytest.approx(0.5666666666666667, rel=1e-15)
    assert row["ayr_band"] == "green"


def test_worked_risk_score_85_2(impl):
    # porr 0.05, fimr 0.02, roll 0.15, rdr 85, ayr 0.60 -> raw 85.2, score 85, green.
    table = loans_table(
        # at risk: PAR 50,000 of a 1,000,000 portfolio, collections 0.6 x PAR; tagged
        {"current_dpd": 20, "principal_outstanding": 50_000.0,
         "interest_collected": 25_000.0, "fees_collected": 5_000.0, "fimr_tagged": True},
        # dpd 1-6 at the start of the period: 100,000, of which 15,000 rolled to 7-30
        {"previous_dpd": 3, "current_dpd": 10, "principal_outstanding": 15_000.0},
        {"previous_dpd": 3, "current_dpd": 0, "principal_outstanding": 85_000.0},
        # two active loans: mean 15 days since the last repayment, mean age 400 days,
        # so rdr = (1 - (15/400)/0.25) * 100 = 85
        {"principal_outstanding": 400_000.0, "outstanding_balance": 450_000.0,
         "days_since_last_repayment": 10, "loan_age": 300},
        {"principal_outstanding": 450_000.0, "outstanding_balance": 500_000.0,
         "days_since_last_repayment": 20, "loan_age": 500},
        # an inactive loan (balance not above 2,000) whose days are not counted
        {"outstanding_balance": 2_000.0, "days_since_last_repayment": 999, "loan_age": 1},
        filler=50 - 6,  # 1 tagged of 50 loans -> fimr 0.02
    )
    row = one_group(impl, table)
    assert row["loans"] == 50
    assert row["portfolio"] == 1_000_000.0
    assert row["porr"] == pytest.approx(0.05, rel=1e-15)
    assert row["fimr"] == pytest.approx(0.02, rel=1e-15)
    assert row["roll"] == pytest.approx(0.15, rel=1e-15)
    assert row["active_loans"] == 2
    assert row["rdr"] == pytest.approx(85.0, rel=1e-14)
    assert row["pen_rdr"] == pytest.approx(6.0, rel=1e-13)
    assert row["ayr"] == pytest.approx(0.60, rel=1e-15)
    assert row["risk_score_raw"] == pytest.approx(85.2, rel=1e-14)
    assert row["risk_score"] == 85
    assert row["risk_band"] == "green"


def test_worked_dqi_89(impl):
    # rq 0.85, oti 0.92, fimr 0.03 -> dqi 89 (100 x (0.425 + 0.322 + 0.1455) = 89.25).
    # raw 85 = 100 - 20 x porr 0.7275 - 15 x fimr 0.03, with ayr >= 1 (no AYR penalty),
    # roll 0 and no active loans (no delay penalty).
    table = loans_table(
        *[{"fimr_tagged": True}] * 3,  # 3 tagged of 100 loans
        # at risk: PAR 727,500 of a 1,000,000 portfolio; collections equal PAR -> ayr 1
        {"current_dpd": 20, "principal_outstanding": 727_500.0,
         "interest_collected": 727_500.0},
        # dpd 1-6 balance 8,000 against 100,000 due in 7 days -> slippage 0.08, oti 0.92
        {"current_dpd": 3, "principal_outstanding": 8_000.0, "amount_due_7d": 100_000.0},
        {"principal_outstanding": 264_500.0},
        filler=100 - 6,
    )
    row = one_group(impl, table)
    assert row["fimr"] == 0.03
    assert row["porr"] == pytest.approx(0.7275, rel=1e-15)
    assert row["ayr"] == 1.0
    assert row["rdr"] is None
    assert row["pen_rdr"] == 0.0
    assert row["risk_score_raw"] / 100.0 == pytest.approx(0.85, rel=1e-14)
    assert row["slippage"] == pytest.approx(0.08, rel=1e-15)
    assert row["oti"] == pytest.approx(0.92, rel=1e-15)
    assert row["dqi"] == 89
    assert row["dqi_band"] == "green"
    assert row["risk_score"] == 85


def test_worked_single_loan_group(impl):
    # One loan, not active, everything else 0: only the AYR penalty (15) applies.
    table = loans_table({"days_since_last_repayment": 0, "loan_age": 0})
    row = one_group(impl, table)
    assert row["loans"] == 1
    assert row["active_loans"] == 0
    assert row["fimr"] == 0.0
    assert row["rdr"] is None
    assert row["pen_rdr"] == 0.0
    assert row["ayr"] == 0.0
    assert row["risk_score_raw"] == 85.0
    assert row["risk_score"] == 85
    assert row["oti"] == 1.0
    assert row["dqi"] == 93  # round_half_up(100 x (0.425 + 0.35 + 0.15))
    assert (row["fimr_band"], row["slippage_band"], row["roll_band"], row["ayr_band"],
            row["dqi_band"], row["risk_band"]) == ("green", "green", "green", "flag",
                                                   "green", "green")
