"""Argument and column checks shared by the engine and the reference.

Both implementations must reject bad calls with the same exception and message, so the
checks that do not touch row values live here once: options (``config``, ``threads``,
``by``, ``columns``), column lookup and type checks, and the column plan of the loan
derivation (docs/metrics.md §9).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pyarrow as pa

from ._config import MetricConfig
from ._dates import check_time_zone
from ._schema import (DERIVE_ROLES, INPUT_COLUMNS, LOAN_ROLES, REPAYMENT_ROLES,
                      SNAPSHOT_COLUMNS, SPLIT_ROLES)

EXPECTED_KEY = "expected an integer, string, large_string, string_view or dictionary type"
EXPECTED_BOOL = "expected bool"
EXPECTED_DAY = "expected an integer type"
EXPECTED_MONEY = "expected float64, float32, decimal128 or an integer type"

#: The compiled core keeps each group's key nulls in a 32-bit mask (one bit per key column).
MAX_KEYS = 32

_DEFAULT_CONFIG = MetricConfig()


def check_config(config: object) -> MetricConfig:
    """``config``, or the default configuration when it is None."""
    if config is None:
        return _DEFAULT_CONFIG
    if not isinstance(config, MetricConfig):
        raise TypeError(f"config must be a MetricConfig or None, got {type(config).__name__}")
    return config


def check_threads(threads: object) -> int | None:
    """``threads`` when it is None or an int >= 1 (bool is not an int here)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return threads



def resolve_threads(threads: object) -> int:
    """The worker count: ``threads``, else ``METRICCORE_NUM_THREADS``, else the CPU count."""
    checked = check_threads(threads)
    if checked is not None:
        return checked
    env = os.environ.get("METRICCORE_NUM_THREADS", "").strip()
    if not env:
        return os.cpu_count() or 1
    try:
        value = int(env)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"METRICCORE_NUM_THREADS must be a positive integer, got {env!r}")
    return value


def _plain_str(name: str) -> str:
    """``name`` as a plain ``str``: a subclass (``numpy.str_``, from ``list(np.array([...]))``)
    is accepted and copied, so that every later use (the compiled core, the output schema)
    sees exactly ``str``."""
    return name if type(name) is str else str.__str__(name)


def check_by(by: object) -> list[str]:
    """The key column names of ``by`` (one name or a sequence of distinct names), as plain
    ``str`` (a ``str`` subclass such as ``numpy.str_`` is accepted)."""
    if isinstance(by, str):
        return [_plain_str(by)]
    if not isinstance(by, Sequence) or isinstance(by, (bytes, bytearray)):
        raise TypeError(f"by must be a str or a sequence of str, got {type(by).__name__}")
    names = list(by)
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"by must contain only str, got {type(name).__name__}")
        names[i] = _plain_str(name)
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"duplicate key column {name!r} in by")
    if len(names) > MAX_KEYS:
        raise ValueError(f"by has {len(names)} key columns; at most {MAX_KEYS} are supported")
    return names


def _role_mapping(columns: object, roles: Sequence[str]) -> dict[str, str]:
    """Map every role in ``roles`` to the column playing it: ``columns`` overrides the
    default name (the role itself); an unknown role or a non-str name is an error. Names
    that are ``str`` subclasses come back as plain ``str``."""
    names = {role: role for role in roles}
    if columns is None:
        return names
    if not isinstance(columns, Mapping):
        raise TypeError(f"columns must be a mapping or None, got {type(columns).__name__}")
    for role, name in columns.items():
        if role not in names:
            raise ValueError(f"unknown column role {role!r}; expected one of "
                             + ", ".join(roles))
        if not isinstance(name, str):
            raise TypeError(f"columns[{role!r}] must be a str, got {type(name).__name__}")
        names[role] = _plain_str(name)
    return names


def check_columns(columns: object) -> dict[str, str]:
    """Map every role of the snapshot to the name of the input column that plays it."""
    return _role_mapping(columns, INPUT_COLUMNS)


def column_index(names: list[str], name: str, role: str | None, source: str = "input") -> int:
    """Position of column ``name`` in ``source`` (for messages: "input", "loans", ...);
    ValueError when it is missing or ambiguous."""
    found = [i for i, n in enumerate(names) if n == name]
    if not found:
        suffix = f" (column role '{role}')" if role is not None else ""
        raise ValueError(f"column '{name}' not found in {source}{suffix}")
    if len(found) > 1:
        raise ValueError(f"column '{name}' appears {len(found)} times in {source}")
    return found[0]


def check_type(name: str, type_name: str, ok: bool, expected: str,
               source: str | None = None) -> None:
    """TypeError naming the column (and its table ``source``) and its type unless ``ok``."""
    if not ok:
        where = f"column '{name}'" if source is None else f"column '{name}' of {source}"
        raise TypeError(f"{where} has Arrow type {type_name}; {expected}")



# ---------------------------------------------------------------------------------------
# Loan derivation (docs/metrics.md §9): column roles and the column plan
# ---------------------------------------------------------------------------------------

def check_derive_columns(columns: object) -> tuple[dict[str, str], frozenset[str]]:
    """Map every raw-input role of §9 to the name of the column that plays it.

    Returns the mapping and the set of roles the caller named explicitly (an optional
    repayments column named explicitly must exist). ``loan_id`` names the id column of
    both tables.
    """
    names = _role_mapping(columns, DERIVE_ROLES)
    # _role_mapping accepted ``columns``: None or a mapping of role names
    return names, frozenset(columns) if isinstance(columns, Mapping) else frozenset()


assert set(DERIVE_ROLES) == set(LOAN_ROLES) | set(REPAYMENT_ROLES)


EXPECTED_ID = EXPECTED_KEY
EXPECTED_RATE = "expected float64 or float32"
EXPECTED_DATE = "expected date32, date64, timestamp, string, large_string or string_view"


def _is_string_like(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t))


def _is_money(t: pa.DataType) -> bool:
    return bool(pa.types.is_float64(t) or pa.types.is_float32(t) or pa.types.is_decimal128(t)
                or pa.types.is_integer(t))


def id_family(t: pa.DataType) -> str | None:
    """"int" or "str" for an accepted loan id type (dictionaries by their values), else None."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "int"
    if _is_string_like(t):
        return "str"
    return None


def derive_type_ok(role: str, t: pa.DataType) -> tuple[bool, str]:
    """Whether ``t`` is accepted for the §9 input ``role``, and the accepted types."""
    if role == "loan_id":
        return id_family(t) is not None, EXPECTED_ID
    if role == "interest_rate":
        return pa.types.is_float64(t) or pa.types.is_float32(t), EXPECTED_RATE
    if role == "loan_term_days":
        return pa.types.is_integer(t), EXPECTED_DAY
    if role.endswith("_date"):
        return (pa.types.is_date32(t) or pa.types.is_date64(t) or pa.types.is_timestamp(t)
                or _is_string_like(t)), EXPECTED_DATE
    if role == "is_reversed":
        return pa.types.is_boolean(t), EXPECTED_BOOL
    return _is_money(t), EXPECTED_MONEY


class DerivePlan:
    """Which columns of ``loans`` and ``repayments`` play which §9 role (checked).

    Attributes
    ----------
    loan_columns, repayment_columns : dict of role -> column name
        Every loans role; the repayments roles present (the split trio and ``is_reversed``
        are optional).
    loan_index : dict of role -> column position in loans
    loan_types, repayment_types : dict of role -> pyarrow.DataType
    carried : list of int
        Positions of the loans columns carried through unchanged after the id: every
        column that is not a §9 input, in the order of ``loans``.
    """

    def __init__(self, loan_columns: dict[str, str], repayment_columns: dict[str, str],
                 loan_index: dict[str, int], loan_types: dict[str, pa.DataType],
                 repayment_types: dict[str, pa.DataType], carried: list[int]) -> None:
        self.loan_columns = loan_columns
        self.repayment_columns = repayment_columns
        self.loan_index = loan_index
        self.loan_types = loan_types
        self.repayment_types = repayment_types
        self.carried = carried

    @property
    def has_split(self) -> bool:
        return "principal_paid" in self.repayment_columns

    @property
    def has_reversed(self) -> bool:
        return "is_reversed" in self.repayment_columns

    @property
    def string_ids(self) -> bool:
        return id_family(self.loan_types["loan_id"]) == "str"

    @property
    def output_columns(self) -> list[int]:
        """Positions of the loans columns that open the snapshot: the id, then the carried."""
        return [self.loan_index["loan_id"]] + self.carried


def plan_derivation(loans: pa.Schema, repayments: pa.Schema,
                    roles: dict[str, str], named: frozenset[str]) -> DerivePlan:
    """Find and type-check the §9 input columns, before any row is read.

    Order of checks: missing columns (loans roles, then repayments roles, each in role
    order), then types (same order), then the time zones of zoned timestamps (same
    order), then the id types of the two tables against each
    other, then name clashes between the loans columns kept and the derived columns.
    """
    loan_columns = {role: roles[role] for role in LOAN_ROLES}
    loan_index = {role: column_index(loans.names, name, role, "loans")
                  for role, name in loan_columns.items()}

    present = set(repayments.names)
    wanted = {"loan_id", "payment_date", "payment_amount"}
    if any(roles[r] in present or r in named for r in SPLIT_ROLES):
        wanted.update(SPLIT_ROLES)  # the split comes as three columns or not at all
    if roles["is_reversed"] in present or "is_reversed" in named:
        wanted.add("is_reversed")
    repayment_columns = {role: roles[role] for role in REPAYMENT_ROLES if role in wanted}
    repayment_index = {role: column_index(repayments.names, name, role, "repayments")
                       for role, name in repayment_columns.items()}

    loan_types = {role: loans.field(i).type for role, i in loan_index.items()}
    repayment_types = {role: repayments.field(i).type for role, i in repayment_index.items()}
    for source, columns, types in (("loans", loan_columns, loan_types),
                                   ("repayments", repayment_columns, repayment_types)):
        for role, t in types.items():
            check_type(columns[role], str(t), *derive_type_ok(role, t), source=source)
    for source, columns, types in (("loans", loan_columns, loan_types),
                                   ("repayments", repayment_columns, repayment_types)):
        for role, t in types.items():
            check_time_zone(columns[role], source, t)
    family = id_family(loan_types["loan_id"])
    if id_family(repayment_types["loan_id"]) != family:
        kind = "an integer type" if family == "int" else "a string type"
        check_type(repayment_columns["loan_id"], str(repayment_types["loan_id"]), False,
                   f"expected {kind}, like column '{loan_columns['loan_id']}' of loans",
                   source="repayments")

    inputs = set(loan_index.values())
    carried = [i for i in range(len(loans.names)) if i not in inputs]
    derived = {name for name, _, _ in SNAPSHOT_COLUMNS}
    for i in [loan_index["loan_id"]] + carried:
        if loans.names[i] in derived:
            raise ValueError(f"column '{loans.names[i]}' of loans has the name of a derived "
                             "snapshot column; rename or drop it")
    return DerivePlan(loan_columns, repayment_columns, loan_index, loan_types,
                      repayment_types, carried)
