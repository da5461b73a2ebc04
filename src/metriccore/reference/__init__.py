"""Pure-Python reference implementation of metriccore, to be read next to docs/metrics.md.

The oracle the compiled engine is tested against, bit for bit and error for error:

- :func:`officer_metrics` and :func:`portfolio_metrics` (:mod:`.officer`): the metrics of
  docs/metrics.md §1-§7;
- :func:`derive_snapshot` and :func:`officer_metrics_as_of` (:mod:`.derive`): the loan
  snapshot of docs/metrics.md §9;
- both read money with :mod:`._money` (§2, §6), which imports nothing else of the reference;
  ``derive`` uses ``officer`` and never the reverse.

Slow (a Python loop per loan) and meant for tests and small inputs.
"""

from __future__ import annotations

from .derive import derive_snapshot, officer_metrics_as_of
from .officer import officer_metrics, portfolio_metrics

__all__ = ["officer_metrics", "portfolio_metrics", "derive_snapshot", "officer_metrics_as_of"]
