"""Money in exact integer minor units, for both halves of the pure-Python reference.

docs/metrics.md §2 ("Money is exact") converts every money value to an exact integer number
of minor units, and §6 reports a money total as ``float64(total_minor) / 10**money_scale``.
The officer metrics (:mod:`metriccore.reference.officer`, reading the snapshot) and the
derivation (:mod:`metriccore.reference.derive`, reading raw loans and repayments) both do
it with the functions here, so there is one copy of the conversion. This module imports
nothing else of the reference.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

import pyarrow as pa

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: A float money value may not exceed this many minor units in magnitude (§2): beyond it
#: float64 no longer represents every integer, so "exact minor units" would be a fiction.
FLOAT_MINOR_LIMIT = 2**53


def fits_int64(n: int) -> bool:
    """True when the exact integer ``n`` is representable as int64 (§2 "Limits")."""
    return INT64_MIN <= n <= INT64_MAX


def money_value(minor: int, scale: int) -> float:
    """A money aggregate in currency units: float64(minor) / 10**scale (§6)."""
    return float(minor) / float(10**scale)


# ---------------------------------------------------------------------------------------
# Converting one input value to exact minor units (docs/metrics.md §2; the errors of §7)
# ---------------------------------------------------------------------------------------

class BadValue(Exception):
    """A single input value that cannot be used: its reason in ``_errors.CATALOGUE``; the
    caller adds the column and row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.row = -1  # set by the column reader


def float_to_minor(x: float, scale: int) -> int:
    """Minor units of a float money value: ``round_half_even(x * 10**scale)`` in float64.

    NaN or infinity is rejected first; then a product that is not finite or whose rounded
    value exceeds 2**53 in magnitude (§2 "Limits").
    """
    if not math.isfinite(x):
        raise BadValue("nan")
    product = x * float(10**scale)
    if not math.isfinite(product):
        raise BadValue("big")
    minor = round(product)  # Python's round() on a float is round-half-even
    if abs(minor) > FLOAT_MINOR_LIMIT:
        raise BadValue("big")
    return minor


def decimal_to_minor(d: Decimal, scale: int) -> int:
    """Minor units of a decimal money value, rounding half-even when it has more decimals.

    The exact unscaled integer is taken from ``as_tuple()``; no Decimal context arithmetic is
    used, because its 28-digit precision is less than decimal128's 38 digits.
    """
    sign, digits, exponent = d.as_tuple()
    unscaled = 0
    for digit in digits:
        unscaled = unscaled * 10 + digit
    if sign:
        unscaled = -unscaled
    assert isinstance(exponent, int)  # decimal128 holds no NaN or infinity
    # value = unscaled * 10**exponent, so value * 10**scale = unscaled * 10**shift.
    shift = exponent + scale
    minor: int
    if shift >= 0:
        minor = unscaled * 10**shift
    else:
        minor = round(Fraction(unscaled, 10**-shift))  # round() on a Fraction: half-even
    if not fits_int64(minor):
        raise BadValue("money_overflow")
    return minor


def integer_to_minor(x: int, scale: int) -> int:
    """Minor units of an integer money value, which counts whole currency units."""
    minor: int = x * 10**scale
    if not fits_int64(minor):
        raise BadValue("money_overflow")
    return minor


class MinorConverter(Protocol):
    """``float_to_minor``, ``decimal_to_minor`` or ``integer_to_minor``."""

    def __call__(self, x: Any, /, scale: int) -> int: ...


def minor_converter(t: pa.DataType) -> MinorConverter | None:
    """The function ``(value, scale) -> minor units`` for a money column of Arrow type ``t``,
    or None when ``t`` is not a money type (§2: float64, float32, decimal128, any integer)."""
    if pa.types.is_float64(t) or pa.types.is_float32(t):
        return float_to_minor
    if pa.types.is_decimal128(t):
        return decimal_to_minor
    if pa.types.is_integer(t):
        return integer_to_minor
    return None
