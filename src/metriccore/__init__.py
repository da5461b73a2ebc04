"""metriccore: exact, parallel loan-portfolio risk metrics over Arrow data.

>>> import metriccore as mc
>>> table = mc.synthetic.loan_snapshot(10_000, 50, seed=1)
>>> result = mc.officer_metrics(table)          # one row per officer_id
>>> totals = mc.portfolio_metrics(table)        # the whole portfolio as a dict

From raw ``loans`` and ``repayments`` tables, as of any date (docs/metrics.md §9):

>>> snapshot = mc.derive_snapshot(loans, repayments, "2024-03-15")      # doctest: +SKIP
>>> result = mc.officer_metrics_as_of(loans, repayments, "2024-03-15")  # doctest: +SKIP
"""

from ._config import MetricConfig
from ._derivation import derive_snapshot, officer_metrics_as_of
from ._officer import officer_metrics, portfolio_metrics
from ._version import __version__

__all__ = ["MetricConfig", "derive_snapshot", "officer_metrics", "officer_metrics_as_of",
           "portfolio_metrics", "__version__"]


def __getattr__(name: str) -> object:
    # The reference and the generator are imported on first use: most callers need neither.
    if name in ("reference", "synthetic"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
