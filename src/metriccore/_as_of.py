"""``officer_metrics_as_of`` for both the engine and the reference (docs/metrics.md §9.4).

The derivation, then the metrics of the snapshot, with the snapshot's
``unknown_repayments`` schema metadata: one copy of this composition, given the
``derive_snapshot`` and ``officer_metrics`` of the engine or of the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from ._checks import check_by
from ._config import MetricConfig
from ._schema import UNKNOWN_REPAYMENTS_KEY


def metrics_as_of(derive_snapshot: Callable[..., pa.Table],
                  officer_metrics: Callable[..., pa.Table],
                  loans: Any, repayments: Any, as_of: Any, by: str | Sequence[str], *,
                  period_start: Any, roll_from: Any, holidays: Any,
                  config: MetricConfig | None, threads: int | None,
                  columns: Mapping[str, str] | None) -> pa.Table:
    """``officer_metrics(derive_snapshot(loans, repayments, as_of, ...), by, ...)`` with the
    snapshot's ``unknown_repayments`` metadata; ``by`` is checked before anything else."""
    check_by(by)
    snapshot = derive_snapshot(loans, repayments, as_of, period_start=period_start,
                               roll_from=roll_from, holidays=holidays, config=config,
                               threads=threads, columns=columns)
    result = officer_metrics(snapshot, by, config=config, threads=threads)
    unknown = snapshot.schema.metadata[UNKNOWN_REPAYMENTS_KEY.encode()]
    return result.replace_schema_metadata({UNKNOWN_REPAYMENTS_KEY: unknown})
