"""Configuration of the metric computation (docs/metrics.md §3 and §5 thresholds)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from numbers import Rational

__all__ = ["MetricConfig"]

_Number = int | float | Decimal | Fraction

#: Range of the integer thresholds (``par_days``, ``dqi_*``, ``risk_*``): the compiled core
#: compares them with int64 day counts and scores (docs/metrics.md §3, §5), so they must
#: be int64 values; the reference checks the same fields here, so both reject alike.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: Largest supported ``money_scale``: 10**9 is still exact in float64 and leaves
#: room for realistic amounts in int64 minor units.
MAX_MONEY_SCALE = 9


def _exact(name: str, value: object) -> Fraction:
    """Return ``value`` as an exact rational, rejecting bools, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, Rational)):
        raise TypeError(f"MetricConfig.{name} must be a real number, got {type(value).__name__}")
    if isinstance(value, (float, Decimal)) and not math.isfinite(value):
        raise ValueError(f"MetricConfig.{name} must be finite, got {value!r}")
    return Fraction(value)


@lru_cache(maxsize=64)
def _floor_minor(value: _Number, scale: int) -> int:
    # cached: Fraction arithmetic costs microseconds and every call needs this value
    minor: int = math.floor(Fraction(value) * 10**scale)
    return minor


def _real(name: str, value: object) -> float:
    _exact(name, value)
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int or Fraction beyond the float range
        as_float = math.inf
    if not math.isfinite(as_float):
        raise ValueError(f"MetricConfig.{name} must be finite as a float64, got {value!r}")
    return as_float


@dataclass(frozen=True, slots=True)
class MetricConfig:
    """Parameters of the officer metrics.

    Parameters
    ----------
    par_days : int, default 15
        A loan is *at risk* (counts in ``par_balance``) when ``current_dpd >= par_days``.
        1 to 2**63 - 1.
    active_threshold : int, float, Decimal or Fraction, default 2000
        A loan is *active* when ``outstanding_balance`` is strictly greater than this many
        currency units. The comparison is exact in minor units.
    money_scale : int, default 2
        Decimal places of the minor unit (2: cents/kobo). Money is summed exactly as
        integers of ``10**-money_scale`` currency units. 0 to 9.
    fimr_green, fimr_watch : float
        (these and the other float thresholds: any real number finite as a float64)
        FIMR band: green when ``fimr <= fimr_green``, watch when ``<= fimr_watch``, else flag.
    slippage_green, slippage_watch : float
        Slippage band, same shape as FIMR.
    roll_green, roll_watch : float
        Roll-rate band, same shape as FIMR.
    ayr_green, ayr_watch : float
        AYR band: green when ``ayr >= ayr_green``, watch when ``>= ayr_watch``, else flag.
    dqi_green, dqi_watch : int
        DQI band on the integer DQI: green when ``>= dqi_green``, watch when ``>= dqi_watch``.
        Within int64 (-2**63 to 2**63 - 1), as are the risk thresholds.
    risk_green, risk_watch, risk_amber : int
        Risk band on the integer risk score: green ``>= risk_green``, watch ``>= risk_watch``,
        amber ``>= risk_amber``, else red.

    Raises
    ------
    TypeError, ValueError
        On construction, when a value has the wrong type, is not finite, is out of its range
        (the message names the field), or the thresholds of a band are out of order.
    """

    par_days: int = 15
    active_threshold: _Number = 2000
    money_scale: int = 2
    fimr_green: float = 0.03
    fimr_watch: float = 0.06
    slippage_green: float = 0.05
    slippage_watch: float = 0.08
    roll_green: float = 0.25
    roll_watch: float = 0.35
    ayr_green: float = 0.50
    ayr_watch: float = 0.30
    dqi_green: int = 75
    dqi_watch: int = 65
    risk_green: int = 80
    risk_watch: int = 60
    risk_amber: int = 40

    def __post_init__(self) -> None:
        for name in ("par_days", "money_scale", "dqi_green", "dqi_watch",
                     "risk_green", "risk_watch", "risk_amber"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"MetricConfig.{name} must be an int, got {type(value).__name__}")
        if not 0 <= self.money_scale <= MAX_MONEY_SCALE:
            raise ValueError(
                f"MetricConfig.money_scale must be between 0 and {MAX_MONEY_SCALE}, "
                f"got {self.money_scale}")
        if not 1 <= self.par_days <= INT64_MAX:
            raise ValueError(f"MetricConfig.par_days must be between 1 and 2**63 - 1, "
                             f"got {self.par_days}")
        for name in ("dqi_green", "dqi_watch", "risk_green", "risk_watch", "risk_amber"):
            value = getattr(self, name)
            if not INT64_MIN <= value <= INT64_MAX:
                raise ValueError(f"MetricConfig.{name} must be between -2**63 and 2**63 - 1, "
                                 f"got {value}")
        threshold = _exact("active_threshold", self.active_threshold)
        if not -(2**63) <= math.floor(threshold * 10**self.money_scale) < 2**63:
            raise ValueError("MetricConfig.active_threshold does not fit int64 minor units")
        for green, watch in (("fimr_green", "fimr_watch"), ("slippage_green", "slippage_watch"),
                             ("roll_green", "roll_watch")):
            if _real(green, getattr(self, green)) > _real(watch, getattr(self, watch)):
                raise ValueError(f"MetricConfig.{green} must be <= {watch}")
        for high, low in (("ayr_green", "ayr_watch"), ("dqi_green", "dqi_watch"),
                          ("risk_green", "risk_watch"), ("risk_watch", "risk_amber")):
            if _real(high, getattr(self, high)) < _real(low, getattr(self, low)):
                raise ValueError(f"MetricConfig.{high} must be >= {low}")

    @property
    def active_threshold_minor(self) -> int:
        """``active_threshold`` in minor units, floored.

        For an integer balance ``b`` and a real threshold ``t``, ``b > t`` exactly when
        ``b > floor(t)``, so flooring keeps the strict comparison exact.
        """
        return _floor_minor(self.active_threshold, self.money_scale)

    def as_dict(self) -> dict[str, object]:
        """The fields as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
