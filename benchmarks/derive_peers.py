"""The loan derivation of METRICS.md §5 written with DuckDB SQL and with polars: the peers
``bench_derive.py`` times ``metriccore.derive_snapshot`` against.

Each peer computes exactly what metriccore computes (``test_derive_peers_correct.py`` checks
it against ``metriccore.reference`` on small data, bit for bit), for valid input of the
shape of ``metriccore.synthetic.raw_loan_book``: integer loan ids, float money with two
decimals (money_scale 2), date32 dates, optional split and reversal columns. They do not
validate the input (no duplicate, null or negative checks), which only flatters them.

Both return a pyarrow Table: ``loan_id``, the carried loans columns, then the snapshot
columns of §5.6 in loans order, with the number of repayments of unknown loans in the schema
metadata ``unknown_repayments``.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SNAPSHOT = ["current_dpd", "previous_dpd", "fimr_tagged", "principal_outstanding",
            "interest_collected", "fees_collected", "fees_due", "outstanding_balance",
            "amount_due_7d", "days_since_last_repayment", "loan_age"]
LOAN_INPUTS = {"loan_id", "loan_amount", "interest_rate", "fee_amount", "loan_term_days",
               "disbursement_date", "first_payment_due_date", "maturity_date"}
EPOCH = datetime.date(1970, 1, 1)


def _dates(as_of: datetime.date, period_start: datetime.date | None,
           roll_from: datetime.date | None) -> tuple[datetime.date, datetime.date, datetime.date]:
    return (as_of, period_start or as_of.replace(day=1),
            roll_from or as_of - datetime.timedelta(days=30))


def _weekday_holidays(holidays: Any) -> list[int]:
    days = sorted({(h - EPOCH).days for h in (holidays or [])})
    return [d for d in days if (d + 3) % 7 < 5]


# ----------------------------------------------------------------------------------------
# DuckDB
# ----------------------------------------------------------------------------------------
_DUCKDB_SQL = """
WITH
loans_n AS (
    SELECT *,
        CAST(round_even(loan_amount * 100, 0) AS BIGINT) AS L_,
        CAST(round_even(coalesce(fee_amount, 0) * 100, 0) AS BIGINT) AS F_
    FROM loans_in
    WHERE disbursement_date <= DATE '{as_of}'
),
loans_c AS (
    SELECT *, L_ + it_ + F_ AS R_ FROM (
        SELECT *, CAST(round_even(CAST(L_ AS DOUBLE) * interest_rate, 0) AS BIGINT) AS it_
        FROM loans_n)
),
loans_d AS (
    SELECT *,
        CASE WHEN loan_term_days > 0 AND R_ > 0
             THEN CAST(R_ AS DOUBLE) / loan_term_days ELSE 0.0 END AS daily_
    FROM loans_c
),
pays AS (
    SELECT loan_id, payment_date AS d_,
        CAST(round_even(payment_amount * 100, 0) AS BIGINT) AS pay_
        {split_select}
    FROM repayments_in
    WHERE payment_date IS NOT NULL AND payment_amount IS NOT NULL
      AND payment_date <= DATE '{as_of}' {reversed_filter}
),
shares AS (
    SELECT p.*, l.R_,
        CASE WHEN l.R_ > 0 THEN CAST(round_even(CAST(p.pay_ AS DOUBLE) * CAST(l.it_ AS DOUBLE)
                                                / CAST(l.R_ AS DOUBLE), 0) AS BIGINT) END AS i_,
        CASE WHEN l.R_ > 0 THEN CAST(round_even(CAST(p.pay_ AS DOUBLE) * CAST(l.F_ AS DOUBLE)
                                                / CAST(l.R_ AS DOUBLE), 0) AS BIGINT) END AS f_
    FROM pays p JOIN loans_d l ON p.loan_id = l.loan_id
),
parts AS (
    SELECT loan_id, d_, pay_,
        CASE WHEN split_ THEN pp_ WHEN R_ > 0 THEN pay_ - i_ - f_ ELSE pay_ END AS prin_,
        CASE WHEN split_ THEN ip_ WHEN R_ > 0 THEN i_ ELSE 0 END AS int_,
        CASE WHEN split_ THEN fp_ WHEN R_ > 0 THEN f_ ELSE 0 END AS fee_
    FROM shares
),
per_loan AS (
    SELECT loan_id,
        sum(pay_) AS t_,
        coalesce(sum(pay_) FILTER (WHERE d_ <= DATE '{roll_from}'), 0) AS t_roll_,
        sum(prin_) AS prin_paid_,
        coalesce(sum(int_) FILTER (WHERE d_ >= DATE '{period_start}'), 0) AS int_c_,
        coalesce(sum(fee_) FILTER (WHERE d_ >= DATE '{period_start}'), 0) AS fee_c_,
        min(d_) AS first_, max(d_) AS last_
    FROM parts GROUP BY loan_id
),
j AS (
    SELECT l.*, coalesce(a.t_, 0) AS T_, coalesce(a.t_roll_, 0) AS TR_,
        coalesce(a.prin_paid_, 0) AS PP_, coalesce(a.int_c_, 0) AS IC_,
        coalesce(a.fee_c_, 0) AS FC_, a.first_, a.last_
    FROM loans_d l LEFT JOIN per_loan a ON l.loan_id = a.loan_id
),
k AS (
    SELECT *,
        CASE WHEN first_payment_due_date IS NULL THEN 0 ELSE
            bdays(first_payment_due_date,
                  least(DATE '{as_of}', coalesce(maturity_date, DATE '{as_of}'))) END AS D_,
        CASE WHEN first_payment_due_date IS NULL THEN 0 ELSE
            bdays(first_payment_due_date,
                  least(DATE '{roll_from}',
                        coalesce(maturity_date, DATE '{roll_from}'))) END AS DR_,
        bdays(greatest(DATE '{as_of}' + 1, coalesce(first_payment_due_date, DATE '{as_of}' + 1)),
              least(DATE '{as_of}' + 7, coalesce(maturity_date, DATE '{as_of}' + 7))) AS N7_
    FROM j
)
SELECT {carried}
    CAST(CASE WHEN T_ >= R_ THEN 0
              WHEN daily_ > 0 THEN greatest(0, D_ - round(CAST(T_ AS DOUBLE) / daily_))
              ELSE D_ END AS BIGINT) AS current_dpd,
    CAST(CASE WHEN disbursement_date > DATE '{roll_from}' THEN NULL
              WHEN TR_ >= R_ THEN 0
              WHEN daily_ > 0 THEN greatest(0, DR_ - round(CAST(TR_ AS DOUBLE) / daily_))
              ELSE DR_ END AS BIGINT) AS previous_dpd,
    first_payment_due_date IS NULL OR (first_payment_due_date < DATE '{as_of}'
        AND NOT coalesce(first_ <= first_payment_due_date, false)) AS fimr_tagged,
    CAST(greatest(0, L_ - PP_) AS DOUBLE) / 100.0 AS principal_outstanding,
    CAST(IC_ AS DOUBLE) / 100.0 AS interest_collected,
    CAST(FC_ AS DOUBLE) / 100.0 AS fees_collected,
    CAST(F_ AS DOUBLE) / 100.0 AS fees_due,
    CAST(CASE WHEN T_ >= R_ THEN 0 ELSE R_ - T_ END AS DOUBLE) / 100.0 AS outstanding_balance,
    CAST(CASE WHEN T_ >= R_ THEN 0 ELSE CAST(round_even(daily_ * N7_, 0) AS BIGINT) END
         AS DOUBLE) / 100.0 AS amount_due_7d,
    CAST(DATE '{as_of}' - last_ AS BIGINT) AS days_since_last_repayment,
    CAST(DATE '{as_of}' - disbursement_date AS BIGINT) AS loan_age
FROM k ORDER BY row_
"""


def duckdb_derive(loans: pa.Table, repayments: pa.Table, as_of: datetime.date, *,
                  period_start: datetime.date | None = None,
                  roll_from: datetime.date | None = None, holidays: Any = None,
                  threads: int = 2) -> pa.Table:
    """The snapshot with DuckDB SQL (an in-memory database reading the Arrow tables)."""
    import duckdb

    as_of, period_start, roll_from = _dates(as_of, period_start, roll_from)
    hol = _weekday_holidays(holidays)
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {int(threads)}")
        # business days in [a, b]: weekdays before b + 1 minus weekdays before a (day 4,
        # 1970-01-05, was a Monday), less the weekday holidays in the range
        con.execute("""CREATE MACRO wdb(x) AS
            5 * CAST(floor((x - 4) / 7) AS BIGINT)
            + least(x - 4 - 7 * CAST(floor((x - 4) / 7) AS BIGINT), 5)""")
        hol_sql = "[" + ", ".join(str(d) for d in hol) + "]::BIGINT[]"
        con.execute(f"""CREATE MACRO bdays(a, b) AS CASE WHEN b < a THEN 0 ELSE
            wdb(b - DATE '1970-01-01' + 1) - wdb(a - DATE '1970-01-01')
            - len(list_filter({hol_sql}, lambda h: h >= a - DATE '1970-01-01'
                                          AND h <= b - DATE '1970-01-01')) END""")
        loans_in = loans.append_column("row_", pa.array(np.arange(loans.num_rows)))
        con.register("loans_in", loans_in)
        con.register("repayments_in", repayments)
        names = set(repayments.column_names)
        split = {"principal_paid", "interest_paid", "fees_paid"} <= names
        split_select = (""", (
                CAST(round_even(coalesce(principal_paid, 0) * 100, 0) AS BIGINT)
              + CAST(round_even(coalesce(interest_paid, 0) * 100, 0) AS BIGINT)
              + CAST(round_even(coalesce(fees_paid, 0) * 100, 0) AS BIGINT)) <> 0 AS split_,
            CAST(round_even(coalesce(principal_paid, 0) * 100, 0) AS BIGINT) AS pp_,
            CAST(round_even(coalesce(interest_paid, 0) * 100, 0) AS BIGINT) AS ip_,
            CAST(round_even(coalesce(fees_paid, 0) * 100, 0) AS BIGINT) AS fp_"""
                        if split else ", false AS split_, 0 AS pp_, 0 AS ip_, 0 AS fp_")
        reversed_filter = ("AND NOT coalesce(is_reversed, false)"
                           if "is_reversed" in names else "")
        carried = "".join(f'"{c}", ' for c in loans.column_names
                          if c not in LOAN_INPUTS or c == "loan_id")
        sql = _DUCKDB_SQL.format(as_of=as_of, period_start=period_start, roll_from=roll_from,
                                 split_select=split_select, reversed_filter=reversed_filter,
                                 carried=carried)
        result = con.sql(sql).to_arrow_table()
        unknown = con.execute("""SELECT count(*) FROM repayments_in r
            WHERE NOT EXISTS (SELECT 1 FROM loans_in l WHERE l.loan_id = r.loan_id)"""
                              ).fetchone()[0]
    finally:
        con.close()
    return result.replace_schema_metadata({"unknown_repayments": str(unknown)})


# ----------------------------------------------------------------------------------------
# polars
# ----------------------------------------------------------------------------------------
def polars_derive(loans: pa.Table, repayments: pa.Table, as_of: datetime.date, *,
                  period_start: datetime.date | None = None,
                  roll_from: datetime.date | None = None, holidays: Any = None) -> pa.Table:
    """The snapshot with a polars lazy query (polars' own thread pool)."""
    import polars as pl

    as_of, period_start, roll_from = _dates(as_of, period_start, roll_from)
    hol = [EPOCH + datetime.timedelta(days=d) for d in _weekday_holidays(holidays)]
    one = datetime.timedelta(days=1)

    def minor(col: str) -> pl.Expr:
        return (pl.col(col) * 100).round(0, mode="half_to_even").cast(pl.Int64)

    def bdays(a: pl.Expr, b: pl.Expr) -> pl.Expr:
        # business_day_count counts [start, end): one day more at the end, 0 when b < a
        return pl.when(b < a).then(0).otherwise(
            pl.business_day_count(a, b + one, holidays=hol)).cast(pl.Int64)

    def dpd(x: datetime.date, paid: str, due: pl.Expr) -> pl.Expr:
        return (pl.when(pl.col(paid) >= pl.col("R_")).then(0.0)
                .when(pl.col("daily_") > 0)
                .then(pl.max_horizontal(0.0, due - (pl.col(paid).cast(pl.Float64)
                                                    / pl.col("daily_"))
                                        .round(0, mode="half_away_from_zero")))
                .otherwise(due.cast(pl.Float64))).cast(pl.Int64)

    lf = pl.from_arrow(loans).lazy().with_row_index("row_")
    lf = lf.filter(pl.col("disbursement_date") <= as_of).with_columns(
        L_=minor("loan_amount"), F_=minor("fee_amount").fill_null(0))
    lf = lf.with_columns(
        it_=(pl.col("L_").cast(pl.Float64) * pl.col("interest_rate"))
        .round(0, mode="half_to_even").cast(pl.Int64))
    lf = lf.with_columns(R_=pl.col("L_") + pl.col("it_") + pl.col("F_"))
    lf = lf.with_columns(daily_=pl.when((pl.col("loan_term_days") > 0) & (pl.col("R_") > 0))
                         .then(pl.col("R_").cast(pl.Float64) / pl.col("loan_term_days"))
                         .otherwise(0.0))

    rp = pl.from_arrow(repayments).lazy()
    names = set(repayments.column_names)
    counted = (pl.col("payment_date").is_not_null() & pl.col("payment_amount").is_not_null()
               & (pl.col("payment_date") <= as_of))
    if "is_reversed" in names:
        counted &= ~pl.col("is_reversed").fill_null(False)
    rp = rp.filter(counted).select(
        "loan_id", d_=pl.col("payment_date"), pay_=minor("payment_amount"),
        **({"pp_": minor("principal_paid").fill_null(0),
            "ip_": minor("interest_paid").fill_null(0),
            "fp_": minor("fees_paid").fill_null(0)}
           if {"principal_paid", "interest_paid", "fees_paid"} <= names
           else {"pp_": pl.lit(0, pl.Int64), "ip_": pl.lit(0, pl.Int64),
                 "fp_": pl.lit(0, pl.Int64)}))
    rp = rp.join(lf.select("loan_id", "it_", "F_", "R_"), on="loan_id", how="inner")
    split = (pl.col("pp_") + pl.col("ip_") + pl.col("fp_")) != 0
    positive = pl.col("R_") > 0

    def share(part: str) -> pl.Expr:
        return ((pl.col("pay_").cast(pl.Float64) * pl.col(part).cast(pl.Float64)
                 / pl.col("R_").cast(pl.Float64)).round(0, mode="half_to_even").cast(pl.Int64))

    rp = rp.with_columns(
        i_=pl.when(split).then(pl.col("ip_")).when(positive).then(share("it_")).otherwise(0),
        f_=pl.when(split).then(pl.col("fp_")).when(positive).then(share("F_")).otherwise(0))
    rp = rp.with_columns(
        p_=pl.when(split).then(pl.col("pp_"))
        .otherwise(pl.col("pay_") - pl.col("i_") - pl.col("f_")))
    in_period = pl.col("d_") >= period_start
    per_loan = rp.group_by("loan_id").agg(
        T_=pl.col("pay_").sum(),
        TR_=pl.col("pay_").filter(pl.col("d_") <= roll_from).sum(),
        PP_=pl.col("p_").sum(),
        IC_=pl.col("i_").filter(in_period).sum(),
        FC_=pl.col("f_").filter(in_period).sum(),
        first_=pl.col("d_").min(), last_=pl.col("d_").max())
    j = lf.join(per_loan, on="loan_id", how="left").with_columns(
        [pl.col(c).fill_null(0) for c in ("T_", "TR_", "PP_", "IC_", "FC_")])

    fpd, mat = pl.col("first_payment_due_date"), pl.col("maturity_date")
    as_of_l, roll_l = pl.lit(as_of), pl.lit(roll_from)
    due = pl.when(fpd.is_null()).then(0).otherwise(
        bdays(fpd, pl.min_horizontal(as_of_l, mat.fill_null(as_of))))
    due_roll = pl.when(fpd.is_null()).then(0).otherwise(
        bdays(fpd, pl.min_horizontal(roll_l, mat.fill_null(roll_from))))
    n7 = bdays(pl.max_horizontal(pl.lit(as_of + one), fpd.fill_null(as_of + one)),
               pl.min_horizontal(pl.lit(as_of + 7 * one), mat.fill_null(as_of + 7 * one)))
    unpaid = pl.col("T_") < pl.col("R_")

    def money(e: pl.Expr) -> pl.Expr:
        # exact minor units here; converted to currency units after collecting, because
        # polars divides a float column by a scalar as a multiplication by its inverse
        # (7077293 * 0.01 is 70772.93000000001, not 70772.93)
        return e.cast(pl.Int64)

    carried = [c for c in loans.column_names if c not in LOAN_INPUTS or c == "loan_id"]
    out = j.sort("row_").select(
        *carried,
        current_dpd=dpd(as_of, "T_", due),
        previous_dpd=pl.when(pl.col("disbursement_date") > roll_from).then(None)
        .otherwise(dpd(roll_from, "TR_", due_roll)),
        fimr_tagged=fpd.is_null() | ((fpd < as_of)
                                     & ~(pl.col("first_") <= fpd).fill_null(False)),
        principal_outstanding=money(pl.max_horizontal(0, pl.col("L_") - pl.col("PP_"))),
        interest_collected=money(pl.col("IC_")),
        fees_collected=money(pl.col("FC_")),
        fees_due=money(pl.col("F_")),
        outstanding_balance=money(pl.when(unpaid).then(pl.col("R_") - pl.col("T_"))
                                  .otherwise(0)),
        amount_due_7d=money(pl.when(unpaid).then(
            (pl.col("daily_") * n7.cast(pl.Float64)).round(0, mode="half_to_even")
            .cast(pl.Int64)).otherwise(0)),
        days_since_last_repayment=(as_of_l - pl.col("last_")).dt.total_days(),
        loan_age=(as_of_l - pl.col("disbursement_date")).dt.total_days(),
    ).collect().to_arrow()
    money_columns = ["principal_outstanding", "interest_collected", "fees_collected",
                     "fees_due", "outstanding_balance", "amount_due_7d"]
    for name in money_columns:
        i = out.schema.get_field_index(name)
        out = out.set_column(i, name, pc.divide(out.column(i).cast(pa.float64()), 100.0))
    unknown = (pl.from_arrow(repayments.select(["loan_id"])).lazy()
               .join(pl.from_arrow(loans.select(["loan_id"])).lazy(), on="loan_id", how="anti")
               .select(pl.len()).collect().item())
    return out.replace_schema_metadata({"unknown_repayments": str(unknown)})


PEERS = {"duckdb": duckdb_derive, "polars": polars_derive}
