"""Peer implementations of ``metriccore.officer_metrics`` for the benchmarks.

Each peer takes the same pyarrow ``Table`` (one row per loan, as made by
``metriccore.synthetic.loan_snapshot``) and the same ``by`` keys and computes, with the
library's own vectorised operations, the per-group aggregates of METRICS.md §2, the metrics
and scores of §3 and the bands of §4 under the default ``MetricConfig``. The result is sorted
by the keys, like metriccore's, and returned in the library's native form (pyarrow Table,
polars DataFrame, pandas DataFrame); :func:`check_peer` compares it with metriccore's output.

Peers use their library's idioms and defaults, including their own thread pools (polars,
duckdb and pyarrow's ``group_by`` use every core): there is no Python loop over rows or
groups. Money is summed as float64 (the libraries' natural way); exact integer minor units
are metriccore's edge, not a requirement for the peers, so :func:`check_peer` compares money
and ratios with a relative tolerance of 1e-9.

Also here: :func:`floor_views` / :func:`read_once`, the "read-once floor" contender: one
thread reading every buffer of every used column once.

Only numpy and pyarrow are imported at module level; polars, duckdb and pandas are imported
by their peer, so this module works when they are absent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metriccore import MetricConfig
from metriccore._schema import AGGREGATES, BANDS, FLOAT_METRICS, INPUT_COLUMNS, INT_METRICS

__all__ = ["PEERS", "check_peer", "floor_views", "keys_of", "peer_duckdb", "peer_pandas",
           "peer_polars", "peer_pyarrow", "read_once"]

_CFG = MetricConfig()
PAR_DAYS: int = _CFG.par_days
ACTIVE_THRESHOLD: float = float(_CFG.active_threshold)

#: Aggregates that are counts (compared exactly) and money totals (compared with a tolerance).
COUNT_AGGREGATES = tuple(name for name, money in AGGREGATES if not money)
MONEY_AGGREGATES = tuple(name for name, money in AGGREGATES if money)
#: The columns every peer returns besides the keys, in metriccore's output order.
PEER_COLUMNS = (tuple(name for name, _ in AGGREGATES) + FLOAT_METRICS + INT_METRICS + BANDS)


def keys_of(by: str | Sequence[str]) -> list[str]:
    """``by`` as a list of key names; the peers need at least one key."""
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ValueError("the peers group by at least one key column")
    return keys


def _used(table: pa.Table, keys: list[str]) -> pa.Table:
    """The key and snapshot columns only (a zero-copy selection)."""
    return table.select(keys + [c for c in INPUT_COLUMNS if c not in keys])


# ----------------------------------------------------------------------------------------
# Metrics from per-group aggregates, numpy (shared by the pyarrow and pandas peers)
# ----------------------------------------------------------------------------------------
def _safe(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape, dtype=np.float64)
    np.divide(a, b, out=out, where=b > 0)
    return out


def _clamp01(x: np.ndarray) -> np.ndarray:
    return np.minimum(1.0, np.maximum(0.0, x))


def _band2(x: np.ndarray, green: float, watch: float, higher_is_better: bool) -> np.ndarray:
    if higher_is_better:
        return np.where(x >= green, "green", np.where(x >= watch, "watch", "flag"))
    return np.where(x <= green, "green", np.where(x <= watch, "watch", "flag"))


def metrics_numpy(agg: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """§3 metrics, scores and §4 bands from float64/int64 aggregate arrays (vectorised)."""
    c = _CFG
    f = {k: np.asarray(v, dtype=np.float64) for k, v in agg.items()}
    fimr = _safe(f["first_miss"], f["loans"])
    slippage = _safe(f["dpd1to6_balance"], f["amount_due_7d"])
    roll = _safe(f["rolled_balance"], f["prev_dpd1to6_balance"])
    frr = _safe(f["fees_collected"], f["fees_due"])
    porr = _safe(f["par_balance"], f["portfolio"])
    yld = f["interest_collected"] + f["fees_collected"]
    ayr = _safe(yld, f["par_balance"])
    a = _safe(f["sum_days_since_last_repayment"], f["n_days_since_last_repayment"])
    g = _safe(f["sum_loan_age"], f["n_loan_age"])
    rdr_ok = (f["n_days_since_last_repayment"] > 0) & (f["n_loan_age"] > 0) & (g > 0)
    rdr = np.where(rdr_ok, (1.0 - _safe(a, g) / 0.25) * 100.0, np.nan)
    oti = _clamp01(1.0 - slippage)
    pen = np.where(rdr_ok & (rdr <= 100.0),
                   np.minimum(40.0, np.maximum(0.0, 40.0 * (1.0 - rdr / 100.0))), 0.0)
    raw = np.clip(100.0 - 20.0 * _clamp01(porr) - 15.0 * _clamp01(fimr)
                  - 10.0 * _clamp01(roll) - pen - 15.0 * (1.0 - _clamp01(ayr)), 0.0, 100.0)
    risk = np.floor(raw + 0.5).astype(np.int64)
    dqi = np.floor(100.0 * (0.50 * (raw / 100.0) + 0.35 * oti + 0.15 * (1.0 - _clamp01(fimr)))
                   + 0.5).astype(np.int64)
    return {
        "fimr": fimr, "slippage": slippage, "roll": roll, "frr": frr, "porr": porr,
        "yield": yld, "ayr": ayr, "rdr": rdr, "oti": oti, "pen_rdr": pen,
        "risk_score_raw": raw, "risk_score": risk, "dqi": dqi,
        "fimr_band": _band2(fimr, c.fimr_green, c.fimr_watch, False),
        "slippage_band": _band2(slippage, c.slippage_green, c.slippage_watch, False),
        "roll_band": _band2(roll, c.roll_green, c.roll_watch, False),
        "ayr_band": _band2(ayr, c.ayr_green, c.ayr_watch, True),
        "dqi_band": _band2(dqi, c.dqi_green, c.dqi_watch, True),
        "risk_band": np.where(risk >= c.risk_green, "green",
                              np.where(risk >= c.risk_watch, "watch",
                                       np.where(risk >= c.risk_amber, "amber", "red"))),
    }


# ----------------------------------------------------------------------------------------
# pyarrow: compute kernels for the masked columns, Table.group_by for the sums
# ----------------------------------------------------------------------------------------
def peer_pyarrow(table: pa.Table, by: str | Sequence[str] = "officer_id") -> pa.Table:
    keys = keys_of(by)
    t = _used(table, keys)
    p = t["principal_outstanding"]
    dpd, prev = t["current_dpd"], t["previous_dpd"]

    def between(col: Any, lo: int, hi: int) -> Any:
        return pc.and_(pc.greater_equal(col, lo), pc.less_equal(col, hi))

    prev16 = between(prev, 1, 6)
    active = pc.greater(t["outstanding_balance"], ACTIVE_THRESHOLD)
    work = pa.table({
        **{k: t[k] for k in keys},
        "fimr_tagged": t["fimr_tagged"],
        "portfolio": p,
        "dpd1to6_balance": pc.if_else(between(dpd, 1, 6), p, None),
        "par_balance": pc.if_else(pc.greater_equal(dpd, PAR_DAYS), p, None),
        "prev_dpd1to6_balance": pc.if_else(prev16, p, None),
        "rolled_balance": pc.if_else(pc.and_(prev16, between(dpd, 7, 30)), p, None),
        "amount_due_7d": t["amount_due_7d"],
        "interest_collected": t["interest_collected"],
        "fees_collected": t["fees_collected"],
        "fees_due": t["fees_due"],
        "active": active,
        "days": pc.if_else(active, t["days_since_last_repayment"], None),
        "age": pc.if_else(active, t["loan_age"], None),
    })
    zero = pc.ScalarAggregateOptions(min_count=0)
    money = ["portfolio", "dpd1to6_balance", "par_balance", "prev_dpd1to6_balance",
             "rolled_balance", "amount_due_7d", "interest_collected", "fees_collected",
             "fees_due"]
    spec = ([([], "count_all"), ("fimr_tagged", "sum", zero)]
            + [(m, "sum", zero) for m in money]
            + [("active", "sum", zero), ("days", "sum", zero), ("days", "count"),
               ("age", "sum", zero), ("age", "count")])
    out = work.group_by(keys).aggregate(spec)
    for k in keys:  # dictionary keys are decoded (sort_by does not sort dictionaries)
        if pa.types.is_dictionary(out.schema.field(k).type):
            i = out.schema.get_field_index(k)
            out = out.set_column(i, k, out[k].cast(out.schema.field(k).type.value_type))
    out = out.sort_by([(k, "ascending") for k in keys])
    agg = {
        "loans": out["count_all"], "first_miss": out["fimr_tagged_sum"],
        **{m: out[f"{m}_sum"] for m in money},
        "active_loans": out["active_sum"],
        "sum_days_since_last_repayment": out["days_sum"],
        "n_days_since_last_repayment": out["days_count"],
        "sum_loan_age": out["age_sum"], "n_loan_age": out["age_count"],
    }
    agg = {k: v.to_numpy() for k, v in agg.items()}
    cols: dict[str, Any] = {k: out[k] for k in keys}
    for name, is_money in AGGREGATES:
        cols[name] = agg[name] if is_money else agg[name].astype(np.int64)
    mets = metrics_numpy(agg)
    for name, values in mets.items():
        cols[name] = pa.array(values, mask=np.isnan(values)) if name == "rdr" else values
    return pa.table(cols)


# ----------------------------------------------------------------------------------------
# polars: one lazy group_by with filtered sums, metrics as expressions
# ----------------------------------------------------------------------------------------
def peer_polars(table: pa.Table, by: str | Sequence[str] = "officer_id") -> Any:
    import polars as pl

    c = _CFG
    keys = keys_of(by)
    df = pl.from_arrow(_used(table, keys), rechunk=False)
    p = pl.col("principal_outstanding")
    dpd, prev = pl.col("current_dpd"), pl.col("previous_dpd")
    active = pl.col("outstanding_balance") > ACTIVE_THRESHOLD
    prev16 = prev.is_between(1, 6)
    days, age = pl.col("days_since_last_repayment"), pl.col("loan_age")
    aggs = [
        pl.len().cast(pl.Int64).alias("loans"),
        pl.col("fimr_tagged").sum().cast(pl.Int64).alias("first_miss"),
        p.sum().alias("portfolio"),
        p.filter(dpd.is_between(1, 6)).sum().alias("dpd1to6_balance"),
        p.filter(dpd >= PAR_DAYS).sum().alias("par_balance"),
        p.filter(prev16).sum().alias("prev_dpd1to6_balance"),
        p.filter(prev16 & dpd.is_between(7, 30)).sum().alias("rolled_balance"),
        pl.col("amount_due_7d").sum(),
        pl.col("interest_collected").sum(),
        pl.col("fees_collected").sum(),
        pl.col("fees_due").sum(),
        active.sum().cast(pl.Int64).alias("active_loans"),
        days.filter(active).sum().cast(pl.Int64).alias("sum_days_since_last_repayment"),
        days.filter(active).count().cast(pl.Int64).alias("n_days_since_last_repayment"),
        age.filter(active).sum().cast(pl.Int64).alias("sum_loan_age"),
        age.filter(active).count().cast(pl.Int64).alias("n_loan_age"),
    ]

    def safe(a: Any, b: Any) -> Any:
        return pl.when(b > 0).then(a / b).otherwise(0.0)

    def clamp01(x: Any) -> Any:
        return x.clip(0.0, 1.0)

    def band2(x: Any, green: float, watch: float, higher_is_better: bool) -> Any:
        if higher_is_better:
            return (pl.when(x >= green).then(pl.lit("green"))
                    .when(x >= watch).then(pl.lit("watch")).otherwise(pl.lit("flag")))
        return (pl.when(x <= green).then(pl.lit("green"))
                .when(x <= watch).then(pl.lit("watch")).otherwise(pl.lit("flag")))

    col = pl.col
    g = col("sum_loan_age") / col("n_loan_age")
    a = col("sum_days_since_last_repayment") / col("n_days_since_last_repayment")
    step1 = [
        safe(col("first_miss").cast(pl.Float64), col("loans").cast(pl.Float64)).alias("fimr"),
        safe(col("dpd1to6_balance"), col("amount_due_7d")).alias("slippage"),
        safe(col("rolled_balance"), col("prev_dpd1to6_balance")).alias("roll"),
        safe(col("fees_collected"), col("fees_due")).alias("frr"),
        safe(col("par_balance"), col("portfolio")).alias("porr"),
        (col("interest_collected") + col("fees_collected")).alias("yield"),
        safe(col("interest_collected") + col("fees_collected"), col("par_balance")).alias("ayr"),
        pl.when((col("n_days_since_last_repayment") > 0) & (col("n_loan_age") > 0) & (g > 0))
        .then((1.0 - (a / g) / 0.25) * 100.0).otherwise(None).alias("rdr"),
    ]
    rdr = col("rdr")
    step2 = [
        clamp01(1.0 - col("slippage")).alias("oti"),
        pl.when(rdr.is_null() | (rdr > 100.0)).then(0.0)
        .otherwise(pl.min_horizontal(40.0, pl.max_horizontal(0.0, 40.0 * (1.0 - rdr / 100.0))))
        .alias("pen_rdr"),
    ]
    step3 = [
        (100.0 - 20.0 * clamp01(col("porr")) - 15.0 * clamp01(col("fimr"))
         - 10.0 * clamp01(col("roll")) - col("pen_rdr") - 15.0 * (1.0 - clamp01(col("ayr"))))
        .clip(0.0, 100.0).alias("risk_score_raw"),
    ]
    raw = col("risk_score_raw")
    step4 = [
        (raw + 0.5).floor().cast(pl.Int64).alias("risk_score"),
        (100.0 * (0.50 * (raw / 100.0) + 0.35 * col("oti") + 0.15 * (1.0 - clamp01(col("fimr"))))
         + 0.5).floor().cast(pl.Int64).alias("dqi"),
    ]
    risk = col("risk_score")
    step5 = [
        band2(col("fimr"), c.fimr_green, c.fimr_watch, False).alias("fimr_band"),
        band2(col("slippage"), c.slippage_green, c.slippage_watch, False).alias("slippage_band"),
        band2(col("roll"), c.roll_green, c.roll_watch, False).alias("roll_band"),
        band2(col("ayr"), c.ayr_green, c.ayr_watch, True).alias("ayr_band"),
        band2(col("dqi"), c.dqi_green, c.dqi_watch, True).alias("dqi_band"),
        pl.when(risk >= c.risk_green).then(pl.lit("green"))
        .when(risk >= c.risk_watch).then(pl.lit("watch"))
        .when(risk >= c.risk_amber).then(pl.lit("amber")).otherwise(pl.lit("red"))
        .alias("risk_band"),
    ]
    return (df.lazy().group_by(keys).agg(aggs)
            .with_columns(step1).with_columns(step2).with_columns(step3)
            .with_columns(step4).with_columns(step5)
            .sort(keys, nulls_last=True)
            .select(keys + list(PEER_COLUMNS))
            .collect())


# ----------------------------------------------------------------------------------------
# DuckDB: one SQL query over the Arrow table (scanned in place)
# ----------------------------------------------------------------------------------------
_DUCKDB_CON: Any = None


def _duckdb_connection() -> Any:
    global _DUCKDB_CON
    if _DUCKDB_CON is None:
        import duckdb

        _DUCKDB_CON = duckdb.connect()
    return _DUCKDB_CON


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_sql(keys: list[str], relation: str = "loans") -> str:
    c = _CFG
    k = ", ".join(_q(x) for x in keys)
    active = f"outstanding_balance > {ACTIVE_THRESHOLD!r}"
    prev16 = "previous_dpd BETWEEN 1 AND 6"

    def clamp01(x: str) -> str:
        return f"least(1.0::DOUBLE, greatest(0.0::DOUBLE, {x}))"

    def safe(a: str, b: str) -> str:
        return f"CASE WHEN {b} > 0 THEN ({a})::DOUBLE / ({b})::DOUBLE ELSE 0.0::DOUBLE END"

    def band2(x: str, green: float, watch: float, higher_is_better: bool) -> str:
        op = ">=" if higher_is_better else "<="
        return (f"CASE WHEN {x} {op} {green!r} THEN 'green' WHEN {x} {op} {watch!r} "
                f"THEN 'watch' ELSE 'flag' END")

    def msum(expr: str, where: str | None = None) -> str:
        filt = f" FILTER (WHERE {where})" if where else ""
        return f"coalesce(sum({expr}){filt}, 0)::DOUBLE"

    return f"""
WITH agg AS (
  SELECT {k},
    count(*)::BIGINT AS loans,
    count(*) FILTER (WHERE fimr_tagged)::BIGINT AS first_miss,
    {msum('principal_outstanding')} AS portfolio,
    {msum('principal_outstanding', 'current_dpd BETWEEN 1 AND 6')} AS dpd1to6_balance,
    {msum('principal_outstanding', f'current_dpd >= {PAR_DAYS}')} AS par_balance,
    {msum('principal_outstanding', prev16)} AS prev_dpd1to6_balance,
    {msum('principal_outstanding', prev16 + ' AND current_dpd BETWEEN 7 AND 30')}
      AS rolled_balance,
    {msum('amount_due_7d')} AS amount_due_7d,
    {msum('interest_collected')} AS interest_collected,
    {msum('fees_collected')} AS fees_collected,
    {msum('fees_due')} AS fees_due,
    count(*) FILTER (WHERE {active})::BIGINT AS active_loans,
    coalesce(sum(days_since_last_repayment) FILTER (WHERE {active}), 0)::BIGINT
      AS sum_days_since_last_repayment,
    count(days_since_last_repayment) FILTER (WHERE {active})::BIGINT
      AS n_days_since_last_repayment,
    coalesce(sum(loan_age) FILTER (WHERE {active}), 0)::BIGINT AS sum_loan_age,
    count(loan_age) FILTER (WHERE {active})::BIGINT AS n_loan_age
  FROM {relation}
  GROUP BY {k}
), m1 AS (
  SELECT *,
    {safe('first_miss', 'loans')} AS fimr,
    {safe('dpd1to6_balance', 'amount_due_7d')} AS slippage,
    {safe('rolled_balance', 'prev_dpd1to6_balance')} AS roll,
    {safe('fees_collected', 'fees_due')} AS frr,
    {safe('par_balance', 'portfolio')} AS porr,
    interest_collected + fees_collected AS "yield",
    {safe('interest_collected + fees_collected', 'par_balance')} AS ayr,
    CASE WHEN n_days_since_last_repayment > 0 AND n_loan_age > 0
              AND sum_loan_age::DOUBLE / n_loan_age::DOUBLE > 0
         THEN (1.0::DOUBLE - ((sum_days_since_last_repayment::DOUBLE
                               / n_days_since_last_repayment::DOUBLE)
                              / (sum_loan_age::DOUBLE / n_loan_age::DOUBLE)) / 0.25::DOUBLE)
              * 100.0::DOUBLE
    END AS rdr
  FROM agg
), m2 AS (
  SELECT *,
    {clamp01('1.0::DOUBLE - slippage')} AS oti,
    CASE WHEN rdr IS NULL OR rdr > 100.0 THEN 0.0::DOUBLE
         ELSE least(40.0::DOUBLE, greatest(0.0::DOUBLE,
                    40.0::DOUBLE * (1.0::DOUBLE - rdr / 100.0::DOUBLE))) END AS pen_rdr
  FROM m1
), m3 AS (
  SELECT *,
    least(100.0::DOUBLE, greatest(0.0::DOUBLE,
      100.0::DOUBLE - 20.0::DOUBLE * {clamp01('porr')} - 15.0::DOUBLE * {clamp01('fimr')}
      - 10.0::DOUBLE * {clamp01('roll')} - pen_rdr
      - 15.0::DOUBLE * (1.0::DOUBLE - {clamp01('ayr')}))) AS risk_score_raw
  FROM m2
), m4 AS (
  SELECT *,
    floor(risk_score_raw + 0.5::DOUBLE)::BIGINT AS risk_score,
    floor(100.0::DOUBLE * (0.5::DOUBLE * (risk_score_raw / 100.0::DOUBLE)
          + 0.35::DOUBLE * oti + 0.15::DOUBLE * (1.0::DOUBLE - {clamp01('fimr')}))
          + 0.5::DOUBLE)::BIGINT AS dqi
  FROM m3
)
SELECT {k}, {", ".join(_q(x) for x in PEER_COLUMNS if x not in BANDS)},
  {band2('fimr', c.fimr_green, c.fimr_watch, False)} AS fimr_band,
  {band2('slippage', c.slippage_green, c.slippage_watch, False)} AS slippage_band,
  {band2('roll', c.roll_green, c.roll_watch, False)} AS roll_band,
  {band2('ayr', c.ayr_green, c.ayr_watch, True)} AS ayr_band,
  {band2('dqi', c.dqi_green, c.dqi_watch, True)} AS dqi_band,
  CASE WHEN risk_score >= {c.risk_green} THEN 'green'
       WHEN risk_score >= {c.risk_watch} THEN 'watch'
       WHEN risk_score >= {c.risk_amber} THEN 'amber' ELSE 'red' END AS risk_band
FROM m4
ORDER BY {", ".join(_q(x) + " NULLS LAST" for x in keys)}
"""


def peer_duckdb(table: pa.Table, by: str | Sequence[str] = "officer_id") -> pa.Table:
    keys = keys_of(by)
    con = _duckdb_connection()
    con.register("loans", _used(table, keys))
    try:
        rel = con.sql(duckdb_sql(keys))
        fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
        return fetch()
    finally:
        con.unregister("loans")


# ----------------------------------------------------------------------------------------
# pandas: masked columns with numpy, one DataFrame.groupby(...).sum()
# ----------------------------------------------------------------------------------------
def peer_pandas(table: pa.Table, by: str | Sequence[str] = "officer_id") -> Any:
    import pandas as pd

    keys = keys_of(by)
    df = _used(table, keys).to_pandas()
    p = df["principal_outstanding"].to_numpy(dtype=np.float64, na_value=np.nan)
    dpd = df["current_dpd"].to_numpy(dtype=np.float64, na_value=np.nan)
    prev = df["previous_dpd"].to_numpy(dtype=np.float64, na_value=np.nan)
    days = df["days_since_last_repayment"].to_numpy(dtype=np.float64, na_value=np.nan)
    age = df["loan_age"].to_numpy(dtype=np.float64, na_value=np.nan)
    active = df["outstanding_balance"].to_numpy(dtype=np.float64, na_value=np.nan) \
        > ACTIVE_THRESHOLD
    prev16 = (prev >= 1) & (prev <= 6)
    days_ok = active & ~np.isnan(days)
    age_ok = active & ~np.isnan(age)
    work = pd.DataFrame({
        "loans": np.ones(len(df), dtype=np.int64),
        "first_miss": df["fimr_tagged"].to_numpy(dtype=bool, na_value=False).view(np.int8),
        "portfolio": p,
        "dpd1to6_balance": np.where((dpd >= 1) & (dpd <= 6), p, 0.0),
        "par_balance": np.where(dpd >= PAR_DAYS, p, 0.0),
        "prev_dpd1to6_balance": np.where(prev16, p, 0.0),
        "rolled_balance": np.where(prev16 & (dpd >= 7) & (dpd <= 30), p, 0.0),
        "amount_due_7d": df["amount_due_7d"],
        "interest_collected": df["interest_collected"],
        "fees_collected": df["fees_collected"],
        "fees_due": df["fees_due"],
        "active_loans": active.view(np.int8),
        "sum_days_since_last_repayment": np.where(days_ok, days, 0.0),
        "n_days_since_last_repayment": days_ok.view(np.int8),
        "sum_loan_age": np.where(age_ok, age, 0.0),
        "n_loan_age": age_ok.view(np.int8),
    })
    grouped = work.groupby([df[k] for k in keys], sort=True, observed=True, dropna=False).sum()
    agg = {name: grouped[name].to_numpy() for name, _ in AGGREGATES}
    out = grouped.reset_index()[keys]
    for name, is_money in AGGREGATES:
        out[name] = agg[name] if is_money else agg[name].astype(np.int64)
    for name, values in metrics_numpy(agg).items():
        out[name] = values
    return out


# ----------------------------------------------------------------------------------------
# The read-once floor
# ----------------------------------------------------------------------------------------
def floor_views(table: pa.Table, by: str | Sequence[str] = "officer_id") -> list[np.ndarray]:
    """numpy views (no copies) of every buffer of every used column: keys and the 11
    snapshot columns, every chunk, validity bitmaps included. Each buffer is viewed as
    uint64 words (plus a uint8 view of a tail that is not a whole word)."""
    views: list[np.ndarray] = []
    for name in keys_of(by) + [c for c in INPUT_COLUMNS if c not in keys_of(by)]:
        for chunk in table.column(name).chunks:
            arrays = [chunk]
            if pa.types.is_dictionary(chunk.type):
                arrays = [chunk.indices, chunk.dictionary]
            for arr in arrays:
                for buf in arr.buffers():
                    if buf is None or buf.size == 0:
                        continue
                    whole = buf.size // 8 * 8
                    if whole:
                        views.append(np.frombuffer(buf, dtype=np.uint64, count=whole // 8))
                    if buf.size > whole:
                        views.append(np.frombuffer(buf, dtype=np.uint8, offset=whole))
    return views


def floor_bytes(views: list[np.ndarray]) -> int:
    return sum(v.nbytes for v in views)


def read_once(views: list[np.ndarray]) -> int:
    """Read every buffer once on this thread: a wrapping integer sum of its words."""
    add = np.add.reduce
    total = 0
    for v in views:
        total += int(add(v))
    return total


# ----------------------------------------------------------------------------------------
# Checking a peer against metriccore
# ----------------------------------------------------------------------------------------
PEERS: dict[str, tuple[str, Callable[..., Any]]] = {
    # contender name: (module that must be importable, function)
    "pyarrow": ("pyarrow", peer_pyarrow),
    "polars": ("polars", peer_polars),
    "duckdb": ("duckdb", peer_duckdb),
    "pandas": ("pandas", peer_pandas),
}

MONEY_RTOL = 1e-9
MONEY_ATOL = 1e-6      # currency units: far below one minor unit
METRIC_TOL = 1e-9      # |peer - engine| <= METRIC_TOL * max(1, |engine|)
_RATIO_METRICS = ("fimr", "slippage", "roll", "frr", "porr", "ayr", "oti", "pen_rdr",
                  "risk_score_raw")


def to_arrow(result: Any) -> pa.Table:
    """A peer's result as a pyarrow Table."""
    if isinstance(result, pa.Table):
        return result
    mod = type(result).__module__.split(".")[0]
    if mod == "pandas":
        return pa.Table.from_pandas(result, preserve_index=False)
    if hasattr(result, "to_arrow"):               # polars DataFrame
        return result.to_arrow()
    return pa.table(result)                       # anything with __arrow_c_stream__


def _plain(col: Any, like: pa.DataType) -> pa.ChunkedArray:
    """Decode dictionary / view / large types so keys compare with metriccore's."""
    col = col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(like)


_PER_KEY_NULL_PLACEMENT = int(pa.__version__.split(".")[0]) >= 25


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    """Rows sorted by the keys ascending, nulls last (as metriccore sorts)."""
    if not keys:
        return table
    if _PER_KEY_NULL_PLACEMENT:  # pyarrow >= 25 deprecates the global null_placement
        order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_end") for k in keys])
    else:
        order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys],
                                null_placement="at_end")
    return table.take(order)


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return table[name].cast(pa.float64()).to_numpy(zero_copy_only=False)


def check_peer(result: Any, engine: pa.Table,
               by: str | Sequence[str] = "officer_id") -> dict[str, Any]:
    """Compare a peer's result with ``metriccore.officer_metrics``' output ``engine``.

    Groups are matched on the keys (both sides sorted the same way). Counts must be equal;
    money totals equal within a relative 1e-9; fimr, slippage, roll, frr, porr, ayr, oti,
    pen_rdr and risk_score_raw within 1e-9 (times max(1, |value|)); rdr must be null on the
    same groups and close elsewhere; risk_score, dqi and the bands must be equal except where
    metriccore's unrounded value lies within 1e-9 of a rounding or band boundary (float sums
    may legitimately land on the other side there). Raises ``AssertionError`` describing the
    first mismatches; returns a summary (groups, largest differences, tolerated boundary
    cases).
    """
    keys = keys_of(by)
    peer = to_arrow(result)
    missing = [c for c in keys + list(PEER_COLUMNS) if c not in peer.column_names]
    if missing:
        raise AssertionError(f"peer result lacks columns {missing}")
    if peer.num_rows != engine.num_rows:
        raise AssertionError(f"peer has {peer.num_rows} groups, metriccore {engine.num_rows}")
    peer = peer.select(keys + list(PEER_COLUMNS))
    peer = pa.table({**{k: _plain(peer[k], engine.schema.field(k).type) for k in keys},
                     **{c: peer[c] for c in PEER_COLUMNS}})
    peer, eng = _sorted(peer, keys), _sorted(engine, keys)
    problems: list[str] = []

    def report(name: str, bad: np.ndarray, p: Any, e: Any) -> None:
        idx = np.flatnonzero(bad)
        if idx.size:
            i = int(idx[0])
            key = tuple(eng[k][i].as_py() for k in keys)
            problems.append(f"{name}: {idx.size} groups differ, first {key}: "
                            f"peer {p[i]!r} vs metriccore {e[i]!r}")

    for k in keys:
        if not peer[k].equals(eng[k]):
            problems.append(f"key column {k!r} differs (different groups)")
    if problems:
        raise AssertionError("; ".join(problems))

    summary: dict[str, Any] = {"groups": eng.num_rows, "max_rel_money": 0.0,
                               "max_metric_diff": 0.0, "boundary_cases": 0}
    for name in COUNT_AGGREGATES:
        p = _floats(peer, name)
        e = eng[name].to_numpy()
        report(name, (p != e) | np.isnan(p), p, e)
    for name in MONEY_AGGREGATES + ("yield",):
        p, e = _floats(peer, name), _floats(eng, name)
        bad = ~np.isclose(p, e, rtol=MONEY_RTOL, atol=MONEY_ATOL)
        report(name, bad, p, e)
        rel = np.abs(p - e) / np.maximum(np.abs(e), 1.0)
        summary["max_rel_money"] = max(summary["max_rel_money"], float(rel.max(initial=0.0)))
    for name in _RATIO_METRICS:
        p, e = _floats(peer, name), _floats(eng, name)
        diff = np.abs(p - e)
        report(name, ~(diff <= METRIC_TOL * np.maximum(1.0, np.abs(e))), p, e)
        summary["max_metric_diff"] = max(summary["max_metric_diff"],
                                         float(diff.max(initial=0.0)))
    p, e = _floats(peer, "rdr"), _floats(eng, "rdr")
    pn, en = np.isnan(p), np.isnan(e)
    report("rdr (null)", pn != en, p, e)
    both = ~pn & ~en
    report("rdr", both & ~(np.abs(p - e) <= METRIC_TOL * np.maximum(1.0, np.abs(e))), p, e)

    # Scores and bands: equal unless metriccore's value sits on a boundary.
    def near(x: np.ndarray, edges: Sequence[float]) -> np.ndarray:
        out = np.zeros(x.shape, dtype=bool)
        for edge in edges:
            out |= np.abs(x - edge) <= METRIC_TOL * max(1.0, abs(edge))
        return out

    raw, oti, fimr = _floats(eng, "risk_score_raw"), _floats(eng, "oti"), _floats(eng, "fimr")
    dqi_value = 100.0 * (0.50 * (raw / 100.0) + 0.35 * oti + 0.15 * (1.0 - _clamp01(fimr)))
    at_half = {"risk_score": np.abs(raw - np.floor(raw) - 0.5) <= 1e-7,
               "dqi": np.abs(dqi_value - np.floor(dqi_value) - 0.5) <= 1e-7}
    for name in INT_METRICS:
        p, e = peer[name].to_numpy().astype(np.int64), eng[name].to_numpy()
        tolerated = at_half[name] & (np.abs(p - e) == 1)
        summary["boundary_cases"] += int(np.count_nonzero(tolerated & (p != e)))
        report(name, (p != e) & ~tolerated, p, e)
    c = _CFG
    band_edges = {
        "fimr_band": (fimr, (c.fimr_green, c.fimr_watch)),
        "slippage_band": (_floats(eng, "slippage"), (c.slippage_green, c.slippage_watch)),
        "roll_band": (_floats(eng, "roll"), (c.roll_green, c.roll_watch)),
        "ayr_band": (_floats(eng, "ayr"), (c.ayr_green, c.ayr_watch)),
        "dqi_band": (None, at_half["dqi"]),
        "risk_band": (None, at_half["risk_score"]),
    }
    for name, (values, edges) in band_edges.items():
        p = np.asarray(peer[name].to_pylist(), dtype=object)
        e = np.asarray(eng[name].to_pylist(), dtype=object)
        tolerated = edges if values is None else near(values, edges)
        summary["boundary_cases"] += int(np.count_nonzero(tolerated & (p != e)))
        report(name, (p != e) & ~tolerated, p, e)
    if problems:
        raise AssertionError("peer disagrees with metriccore: " + "; ".join(problems))
    return summary
