"""Names and Arrow types of the inputs and outputs (METRICS.md §1 and §7).

Both the compiled engine and :mod:`metriccore.reference` build their output from these lists,
so a test pins them against the contract separately (``tests/test_schema.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa

#: Snapshot columns (METRICS.md §1), in the order used to break ties between errors.
INPUT_COLUMNS: tuple[str, ...] = (
    "fimr_tagged",
    "current_dpd",
    "previous_dpd",
    "principal_outstanding",
    "amount_due_7d",
    "interest_collected",
    "fees_collected",
    "fees_due",
    "outstanding_balance",
    "days_since_last_repayment",
    "loan_age",
)
BOOL_COLUMNS: frozenset[str] = frozenset({"fimr_tagged"})
DAY_COLUMNS: frozenset[str] = frozenset(
    {"current_dpd", "previous_dpd", "days_since_last_repayment", "loan_age"})
MONEY_COLUMNS: frozenset[str] = frozenset(
    {"principal_outstanding", "amount_due_7d", "interest_collected", "fees_collected",
     "fees_due", "outstanding_balance"})

#: Per-group aggregates (§2) in output order, with ``True`` for money (reported as float64).
AGGREGATES: tuple[tuple[str, bool], ...] = (
    ("loans", False),
    ("first_miss", False),
    ("portfolio", True),
    ("dpd1to6_balance", True),
    ("par_balance", True),
    ("prev_dpd1to6_balance", True),
    ("rolled_balance", True),
    ("amount_due_7d", True),
    ("interest_collected", True),
    ("fees_collected", True),
    ("fees_due", True),
    ("active_loans", False),
    ("sum_days_since_last_repayment", False),
    ("n_days_since_last_repayment", False),
    ("sum_loan_age", False),
    ("n_loan_age", False),
)
FLOAT_METRICS: tuple[str, ...] = (
    "fimr", "slippage", "roll", "frr", "porr", "yield", "ayr", "rdr", "oti", "pen_rdr",
    "risk_score_raw",
)
INT_METRICS: tuple[str, ...] = ("risk_score", "dqi")
BANDS: tuple[str, ...] = (
    "fimr_band", "slippage_band", "roll_band", "ayr_band", "dqi_band", "risk_band",
)
BAND_NAMES: tuple[str, ...] = ("green", "watch", "flag", "amber", "red")


def output_key_type(t: pa.DataType) -> pa.DataType:
    """Arrow type of a key column in the output.

    Integer keys keep their type; string-like keys (``string``, ``large_string``,
    ``string_view``, dictionary of strings) come back as ``string``; dictionary keys are decoded.
    """
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return t
    return pa.string()


@lru_cache(maxsize=256)
def _cached_schema(keys: tuple[tuple[str, pa.DataType], ...]) -> pa.Schema:
    return _build_schema(keys)


def output_schema(keys: Sequence[tuple[str, pa.DataType]]) -> pa.Schema:
    """Schema of ``officer_metrics``' result for key columns ``(name, input type)``."""
    return _cached_schema(tuple(keys))


def _build_schema(keys: tuple[tuple[str, pa.DataType], ...]) -> pa.Schema:
    fields = [pa.field(name, output_key_type(t)) for name, t in keys]
    fields += [pa.field(name, pa.float64() if money else pa.int64(), nullable=False)
               for name, money in AGGREGATES]
    fields += [pa.field(name, pa.float64(), nullable=(name == "rdr")) for name in FLOAT_METRICS]
    fields += [pa.field(name, pa.int64(), nullable=False) for name in INT_METRICS]
    fields += [pa.field(name, pa.string(), nullable=False) for name in BANDS]
    return pa.schema(fields)


# ----------------------------------------------------------------------------------------
# Loan derivation (METRICS.md §5)
# ----------------------------------------------------------------------------------------

#: Roles of the ``loans`` table (§5 inputs), in the order used to break ties between errors.
LOAN_ROLES: tuple[str, ...] = (
    "loan_id",
    "loan_amount",
    "interest_rate",
    "fee_amount",
    "loan_term_days",
    "disbursement_date",
    "first_payment_due_date",
    "maturity_date",
)
#: Roles of the ``repayments`` table, same order rule; the split and ``is_reversed`` are
#: optional (the three split columns come together or not at all).
REPAYMENT_ROLES: tuple[str, ...] = (
    "loan_id",
    "payment_date",
    "payment_amount",
    "principal_paid",
    "interest_paid",
    "fees_paid",
    "is_reversed",
)
SPLIT_ROLES: tuple[str, ...] = ("principal_paid", "interest_paid", "fees_paid")
#: Every role a ``columns=`` mapping of the derivation may name (``loan_id`` once: it names
#: the id column of both tables).
DERIVE_ROLES: tuple[str, ...] = LOAN_ROLES + REPAYMENT_ROLES[1:]

#: Derived snapshot columns in METRICS.md §5.6 order: (name, Arrow type, nullable).
SNAPSHOT_COLUMNS: tuple[tuple[str, pa.DataType, bool], ...] = (
    ("current_dpd", pa.int64(), False),
    ("previous_dpd", pa.int64(), True),
    ("fimr_tagged", pa.bool_(), False),
    ("principal_outstanding", pa.float64(), False),
    ("interest_collected", pa.float64(), False),
    ("fees_collected", pa.float64(), False),
    ("fees_due", pa.float64(), False),
    ("outstanding_balance", pa.float64(), False),
    ("amount_due_7d", pa.float64(), False),
    ("days_since_last_repayment", pa.int64(), True),
    ("loan_age", pa.int64(), False),
)

assert {name for name, _, _ in SNAPSHOT_COLUMNS} == set(INPUT_COLUMNS)

#: Schema metadata key of the number of repayments whose loan_id is not in ``loans``.
UNKNOWN_REPAYMENTS_KEY = "unknown_repayments"


def snapshot_schema(carried: list[pa.Field], unknown_repayments: int) -> pa.Schema:
    """Schema of ``derive_snapshot``'s result: the loan id and carried fields of ``loans``
    unchanged, then the §5.6 columns, with the unknown-repayment count as metadata."""
    fields = list(carried) + [pa.field(name, t, nullable=nullable)
                              for name, t, nullable in SNAPSHOT_COLUMNS]
    return pa.schema(fields, metadata={UNKNOWN_REPAYMENTS_KEY: str(unknown_repayments)})


def metrics_as_of(derive: Callable[..., pa.Table], metrics: Callable[..., pa.Table],
                  loans: Any, repayments: Any, as_of: Any, by: str | Sequence[str],
                  config: Any, threads: Any, **options: Any) -> pa.Table:
    """``officer_metrics_as_of`` of the engine and of the reference, from their own
    ``derive`` (``derive_snapshot``) and ``metrics`` (``officer_metrics``): the metrics of
    the snapshot, which carry its unknown-repayment count as schema metadata. ``options``:
    the derivation's other keyword arguments (``by`` is checked by the caller first)."""
    snapshot = derive(loans, repayments, as_of, config=config, threads=threads, **options)
    result = metrics(snapshot, by, config=config, threads=threads)
    unknown = snapshot.schema.metadata[UNKNOWN_REPAYMENTS_KEY.encode()]
    return result.replace_schema_metadata({UNKNOWN_REPAYMENTS_KEY: unknown})
