"""metriccore: exact, parallel loan-portfolio risk metrics over Arrow data.

>>> import metriccore as mc
>>> table = mc.synthetic.loan_snapshot(10_000, 50, seed=1)
>>> result = mc.officer_metrics(table)          # one row per officer_id
>>> totals = mc.portfolio_metrics(table)        # the whole portfolio as a dict
"""

from ._config import MetricConfig
from ._engine import officer_metrics, portfolio_metrics
from ._version import __version__

__all__ = ["MetricConfig", "officer_metrics", "portfolio_metrics", "__version__"]


def __getattr__(name: str) -> object:
    # The reference and the generator are imported on first use: most callers need neither.
    if name in ("reference", "synthetic"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
