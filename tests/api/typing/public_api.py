"""Checked by ``mypy --strict`` against the installed package (see .ci/run), never run by
pytest: the public API is typed for its users (py.typed, stubs of the extension)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

import metriccore as mc
from metriccore import MetricConfig, reference, synthetic
from metriccore.__main__ import main

version: str = mc.__version__
table: pa.Table = synthetic.loan_snapshot(1_000, 10, seed=1)
config = MetricConfig(par_days=30, active_threshold=1500)
minor: int = config.active_threshold_minor
per_officer: pa.Table = mc.officer_metrics(table)
per_branch: pa.Table = mc.officer_metrics(table, by=("region", "branch"), config=config,
                                          threads=2, columns={"current_dpd": "current_dpd"})
totals: dict[str, Any] = mc.portfolio_metrics(table, threads=1)
checked: pa.Table = reference.officer_metrics(table, by="officer_id")
checked_totals: dict[str, object] = reference.portfolio_metrics(table)
exit_code: int = main(["info", "--json"])
