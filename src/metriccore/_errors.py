"""One catalogue of the errors in row values: reason -> exception type and message.

The compiled kernels report a bad row as an error code, which ``_kernels.ERROR_CODES`` and
``_derive.ERROR_REASONS`` turn into a reason; the reference raises by reason too. Both build
the exception with :func:`error`, so their messages are the same by construction
(docs/metrics.md §7, §9.6).

The named structures the compiled modules return for a bad row or an overflowing total
(:class:`RowError`, :class:`Overflow`) are defined here as well.
"""

from __future__ import annotations

from typing import NamedTuple


class Reason(NamedTuple):
    """An entry of :data:`CATALOGUE`."""

    error_type: type[Exception]
    #: The message after ``where: ``; ``str.format`` fields are keyword arguments of error().
    template: str


#: Every problem with one input value or one derived amount, by reason.
CATALOGUE: dict[str, Reason] = {
    # money, days and integers (the snapshot's columns and the derivation's inputs)
    "nan": Reason(ValueError, "money value is NaN or infinite"),
    "big": Reason(ValueError, "money value exceeds 2**53 minor units"),
    "money_overflow": Reason(OverflowError, "value does not fit int64 minor units"),
    "int_overflow": Reason(OverflowError, "value does not fit int64"),
    # strings and dictionaries read by the compiled core
    "utf8": Reason(ValueError, "string is not valid UTF-8"),
    "dict_index": Reason(ValueError, "dictionary index out of range"),
    "string_offsets": Reason(ValueError, "corrupt string offsets (negative, decreasing or past "
                             "the array's last offset)"),
    "offsets": Reason(ValueError, "corrupt string offsets (invalid Arrow data)"),
    "view_bounds": Reason(ValueError, "string view lies outside its data buffer (negative "
                          "length or offset, or past the buffer's end)"),
    "view_buffer": Reason(ValueError, "string view refers to a missing data buffer"),
    "nomem": Reason(MemoryError, "metriccore ran out of memory"),
    # an exact aggregate of a group (docs/metrics.md §7); ``group``: " for group <key>" or ""
    "aggregate_overflow": Reason(OverflowError, "aggregate '{name}' overflows int64{group}"),
    # the loan derivation (docs/metrics.md §9)
    "null": Reason(ValueError, "value is null"),
    "duplicate": Reason(ValueError, "duplicate loan_id (first at row {first})"),
    "id_range": Reason(ValueError, "loan_id does not fit int64"),
    "rate_nan": Reason(ValueError, "interest rate is NaN or infinite"),
    "negative_term": Reason(ValueError, "negative loan term"),
    "date_parse": Reason(ValueError, "unparseable date {text!r}; expected YYYY-MM-DD"),
    "date_range": Reason(ValueError, "date out of range (years 1 to 9999)"),
    "negative": Reason(ValueError, "negative amount"),
    "interest_overflow": Reason(OverflowError,
                                "interest total does not fit int64 minor units"),
    "repayable_overflow": Reason(OverflowError,
                                 "repayable amount does not fit int64 minor units"),
    "alloc_overflow": Reason(OverflowError, "allocated {part} does not fit int64 minor units"),
    "total_overflow": Reason(OverflowError, "{what} does not fit int64 minor units"),
}

#: The per-loan totals of the derivation checked against int64, in the order checked
#: (the first that does not fit is reported): the ``what`` of ``total_overflow``.
LOAN_TOTALS: tuple[str, ...] = (
    "repayments up to as_of", "principal paid", "interest collected", "fees collected",
    "principal outstanding", "amount due in 7 days",
)


def error(reason: str, where: str | None = None, **fields: object) -> Exception:
    """The exception for ``reason``, its message after ``where: `` when a place is given
    (e.g. ``column 'x' row 3``); ``fields`` fill the reason's template."""
    entry = CATALOGUE[reason]
    text = entry.template.format(**fields)
    return entry.error_type(text if where is None else f"{where}: {text}")


def cell_name(source: str, column: str, row: int) -> str:
    """``loans column 'loan_amount' row 3``: where a bad value of the derivation is."""
    return f"{source} column '{column}' row {row}"


class RowError(NamedTuple):
    """The first bad row a compiled kernel met (the smallest row; on a row, the first
    column): its row, column position, error code and, for a duplicate id, the row of its
    first occurrence. Row -1 with the out-of-memory code: the kernel ran out of memory."""

    row: int
    column: int
    code: int
    extra: int = 0


class Overflow(NamedTuple):
    """The first total that does not fit int64: the row it belongs to (a group's position
    in the output, or a loan's row) and which total it is (an index the caller names)."""

    row: int
    which: int
