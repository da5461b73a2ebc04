"""Shared test helpers: implementation loading, bitwise table comparison and hypothesis
strategies that generate loan-snapshot inputs (METRICS.md §1) in many physical layouts.

Part of the ``helpers`` package: test modules ``from helpers import strategies as S`` (see
``tests/conftest.py`` for how ``helpers`` is found).

A generated :class:`Case` keeps the *logical* rows (Python values, ``None`` = null) apart from
the *physical* layout (:class:`Layout`: batch / chunk boundaries, sliced buffers with poisoned
padding, per-chunk dictionaries). The same rows can therefore be rebuilt in another layout or
another row order, which is what the invariance tests need.
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import strategies as st

from metriccore._config import MetricConfig
from metriccore._schema import DAY_COLUMNS, INPUT_COLUMNS, MONEY_COLUMNS

__all__ = [
    "Case", "Layout", "ColSpec", "IMPL_NAMES", "load_impl", "engine_available", "examples",
    "require_engine_module",
    "assert_tables_identical", "assert_values_identical", "float_bits", "call", "outcome",
    "cases", "bad_cases", "configs", "layouts", "INT_TYPES", "KEY_TYPES", "MONEY_TYPES",
    "check_sorted_unique_keys", "default_snapshot",
]

# --------------------------------------------------------------------------------------------
# implementations
# --------------------------------------------------------------------------------------------

IMPL_NAMES = ("reference", "engine")


def _require_engine() -> bool:
    # A missing engine fails the suite: it must never pass by skipping every engine test.
    return os.environ.get("METRICCORE_ALLOW_MISSING_ENGINE", "") in ("", "0")


def engine_available() -> tuple[bool, str]:
    """Whether the compiled engine can be used, and why not."""
    try:
        import metriccore._kernels
        import metriccore
    except ImportError as exc:  # not built yet (or broken build)
        return False, f"compiled engine not importable: {exc!r}"
    if not hasattr(metriccore, "officer_metrics") or not hasattr(metriccore, "portfolio_metrics"):
        return False, "metriccore.officer_metrics / portfolio_metrics not defined yet"
    return True, ""


def require_engine_module() -> None:
    """At module level: skip the whole test module when the compiled engine is unavailable
    (a failure under ``METRICCORE_REQUIRE_ENGINE=1``)."""
    ok, why = engine_available()
    if not ok:
        if _require_engine():
            raise RuntimeError(why)
        pytest.skip(why, allow_module_level=True)


def load_impl(name: str):
    """The module implementing ``officer_metrics`` / ``portfolio_metrics`` for ``name``.

    A missing engine fails the calling test (skips it with
    ``METRICCORE_ALLOW_MISSING_ENGINE=1``).
    """
    if name == "reference":
        try:
            import metriccore.reference as reference
        except ImportError as exc:
            pytest.skip(f"metriccore.reference not importable: {exc!r}")
        return reference
    if name == "engine":
        ok, why = engine_available()
        if not ok:
            if _require_engine():
                pytest.fail(why)
            pytest.skip(why)
        import metriccore
        return metriccore
    raise ValueError(name)


def examples(n: int) -> int:
    """``max_examples`` scaled by ``METRICCORE_EXAMPLES_SCALE`` (default 1)."""
    scale = float(os.environ.get("METRICCORE_EXAMPLES_SCALE", "1"))
    return max(1, int(n * scale))


# --------------------------------------------------------------------------------------------
# bitwise comparison
# --------------------------------------------------------------------------------------------

def float_bits(x: float) -> str:
    return "0x" + struct.pack(">d", x).hex()


def _same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v!r} ({float_bits(v)})"
    return repr(v)


def assert_values_identical(a: dict, b: dict, what: str = "dict") -> None:
    """Two ``portfolio_metrics`` results: same keys in the same order, same value types, floats
    identical bit for bit."""
    assert list(a) == list(b), f"{what}: keys differ:\n{list(a)}\n{list(b)}"
    for k in a:
        assert _same_value(a[k], b[k]), f"{what}[{k!r}]: {_show(a[k])} != {_show(b[k])}"


def _column_problem(name: str, x: pa.Array, y: pa.Array) -> str | None:
    n = len(x)
    vx = np.asarray(x.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    vy = np.asarray(y.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    bad = np.flatnonzero(vx != vy)
    if bad.size:
        i = int(bad[0])
        return (f"column {name!r}: validity differs first at row {i}: "
                f"{x[i].as_py()!r} vs {y[i].as_py()!r}")
    t = x.type
    if pa.types.is_floating(t):
        bx = x.fill_null(0.0).to_numpy(zero_copy_only=False).astype(np.float64).view(np.uint64)
        by = y.fill_null(0.0).to_numpy(zero_copy_only=False).astype(np.float64).view(np.uint64)
        bad = np.flatnonzero((bx != by) & vx)
        if bad.size:
            i = int(bad[0])
            return (f"column {name!r}: first differing row {i} (of {n}, {bad.size} differ): "
                    f"{_show(x[i].as_py())} != {_show(y[i].as_py())}")
        return None
    if pa.types.is_integer(t):
        ix = x.fill_null(0).to_numpy(zero_copy_only=False)
        iy = y.fill_null(0).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero((ix != iy) & vx)
        if bad.size:
            i = int(bad[0])
            return (f"column {name!r}: first differing row {i} (of {n}, {bad.size} differ): "
                    f"{x[i].as_py()!r} != {y[i].as_py()!r}")
        return None
    px, py = x.to_pylist(), y.to_pylist()
    for i, (p, q) in enumerate(zip(px, py)):
        if not _same_value(p, q):
            return f"column {name!r}: first differing row {i} (of {n}): {_show(p)} != {_show(q)}"
    return None


def assert_tables_identical(a: pa.Table, b: pa.Table, what: str = "") -> None:
    """Assert that two result tables are identical: schema (names, types, nullability,
    metadata), row count and every value, floats compared bit for bit (``-0.0 != 0.0``)."""
    pre = f"{what}: " if what else ""
    assert isinstance(a, pa.Table), f"{pre}left is {type(a).__name__}, not pyarrow.Table"
    assert isinstance(b, pa.Table), f"{pre}right is {type(b).__name__}, not pyarrow.Table"
    if not a.schema.equals(b.schema, check_metadata=True):
        lines = [f"{pre}schemas differ"]
        if a.schema.names != b.schema.names:
            lines.append(f"  names: {a.schema.names}\n      vs {b.schema.names}")
        for fa, fb in zip(a.schema, b.schema):
            if not fa.equals(fb, check_metadata=True):
                lines.append(f"  {fa} (nullable={fa.nullable}, metadata={fa.metadata}) vs "
                             f"{fb} (nullable={fb.nullable}, metadata={fb.metadata})")
        if a.schema.metadata != b.schema.metadata:
            lines.append(f"  schema metadata {a.schema.metadata} vs {b.schema.metadata}")
        raise AssertionError("\n".join(lines))
    assert a.num_rows == b.num_rows, f"{pre}row counts differ: {a.num_rows} != {b.num_rows}"
    problems = []
    for name, x, y in zip(a.column_names, a.columns, b.columns):
        p = _column_problem(name, x.combine_chunks(), y.combine_chunks())
        if p:
            problems.append(p)
    if problems:
        raise AssertionError(pre + "tables differ:\n  " + "\n  ".join(problems))


def check_sorted_unique_keys(table: pa.Table, key_names: list[str]) -> None:
    """Output rows are sorted by the key columns ascending (nulls last) and keys are unique."""
    cols = [table.column(k).to_pylist() for k in key_names]
    rows = list(zip(*cols))
    sort_key = lambda r: tuple((v is None, v if v is not None else 0) for v in r)  # noqa: E731
    # strings: Python compares by code point, as the contract requires
    for i in range(1, len(rows)):
        assert sort_key(rows[i - 1]) < sort_key(rows[i]), (
            f"output rows {i - 1} and {i} are not strictly ascending by key: "
            f"{rows[i - 1]!r} then {rows[i]!r}")


def call(impl, case: Case, fn: str = "officer_metrics", **extra):
    """Call ``impl.<fn>`` on ``case``'s table with its arguments (plus ``extra``)."""
    kwargs = case.kwargs(portfolio=(fn == "portfolio_metrics"))
    kwargs.update(extra)
    data = kwargs.pop("data", case.table)
    return getattr(impl, fn)(data, **kwargs)


def outcome(f: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", result)`` or ``("error", (type, message))``."""
    try:
        return "ok", f()
    except (ValueError, TypeError, OverflowError) as exc:
        return "error", (type(exc), str(exc))


# --------------------------------------------------------------------------------------------
# types and value pools
# --------------------------------------------------------------------------------------------

INT_TYPES = (pa.int8(), pa.int16(), pa.int32(), pa.int64(),
             pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64())
STRING_TYPES = (pa.string(), pa.large_string(), pa.string_view())
DICT_INDEX_TYPES = (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8())
KEY_TYPES = INT_TYPES + STRING_TYPES + tuple(
    pa.dictionary(i, v) for i in (pa.int8(), pa.int16(), pa.int32())
    for v in (pa.string(), pa.large_string())) + (pa.dictionary(pa.int16(), pa.int64()),
                                                  pa.dictionary(pa.uint8(), pa.uint64()))
MONEY_TYPES = (pa.float64(), pa.float32()) + tuple(
    pa.decimal128(p, s) for s in range(5) for p in (s + 12, 38)) + INT_TYPES


def int_range(t: pa.DataType) -> tuple[int, int]:
    info = np.iinfo(t.to_pandas_dtype())
    return int(info.min), int(info.max)


def _int_edges(t: pa.DataType) -> list[int]:
    lo, hi = int_range(t)
    vals = [lo, hi, 0, 1, lo + 1, hi - 1]
    if lo < 0:
        vals += [-1]
    if t == pa.uint64():
        vals += [2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2]
    return vals


STRING_EDGES = ["", "a", "A", "b", "B", "ab", "a\x00", "\x00", "é", "É", "e\u0301", "z", "Z",
                "\uffff", "\U0001F600", "\U0010FFFF", "officer 1", "officer 10", "officer 2",
                "10", "9", " ", "ſ", "ǅ"]

FLOAT_EDGES = [0.0, -0.0, 0.125, -0.125, 0.005, -0.005, 0.015, 0.025, 0.035, 0.5, 1.5, 2.5,
               -2.5, -0.5, 1.005, 2.675, 0.0005, 0.00005, 0.000005, 0.01, 0.1, 0.29, 0.3,
               1999.99, 2000.0, 2000.01, 2000.005, 1999.995, 2000.00001, 123456.78, 1e9, -1e9,
               5e-324, -5e-324, 1e-300, 0.045, 1.115, 4.35, 8.325]

DECIMAL_EDGES = ["0", "-0", "0.005", "-0.005", "0.015", "0.025", "0.125", "-0.125", "1.005",
                 "2.675", "0.5", "1.5", "2.5", "-2.5", "0.0005", "0.00005", "0.0015", "0.0025",
                 "1999.99", "2000", "2000.01", "2000.005", "1999.995", "2000.0001", "0.01",
                 "123456.7891", "999999999.9999", "-999999999.9999"]

DAY_EDGES = [0, 1, 2, 5, 6, 7, 8, 14, 15, 16, 29, 30, 31, 32, -1, -7, 60, 90, 365, 2000, 10**5]

MONEY_EDGES_OUTSTANDING = [2000, 2000.01, 1999.99, 2000.005, 1999.995, 2000.001]


def _fits(t: pa.DataType, v: int) -> bool:
    lo, hi = int_range(t)
    return lo <= v <= hi


def _money_value_strategy(t: pa.DataType, role: str) -> st.SearchStrategy:
    """A strategy for ONE money value (currency units) of Arrow type ``t``; all of them stay
    far below the per-value and aggregate int64 limits for money_scale <= 4 and 300 rows."""
    if pa.types.is_floating(t):
        edges = list(FLOAT_EDGES)
        if role == "outstanding_balance":
            edges += [float(x) for x in MONEY_EDGES_OUTSTANDING] * 3
        return st.one_of(
            st.sampled_from(edges),
            st.integers(-10**11, 10**11).map(lambda c: c / 100),
            st.integers(-10**6, 10**6).map(lambda c: c / 1000),
            st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
        )
    if pa.types.is_decimal(t):
        s = t.scale
        q = Decimal(1).scaleb(-s)
        edges = [Decimal(x) for x in DECIMAL_EDGES]
        if role == "outstanding_balance":
            edges += [Decimal(str(x)) for x in MONEY_EDGES_OUTSTANDING] * 3
        edges = [d for d in edges if d == d.quantize(q) and len(d.quantize(q).as_tuple().digits) <= t.precision]
        return st.one_of(
            st.sampled_from(edges or [Decimal(0)]),
            st.integers(-10**min(9 + s, t.precision) + 1, 10**min(9 + s, t.precision) - 1)
            .map(lambda n: Decimal(n).scaleb(-s)),
        )
    lo, hi = int_range(t)
    lo, hi = max(lo, -10**9), min(hi, 10**9)
    edges = [v for v in _int_edges(t) + [2000, 1999, 2001, -2000, 100, 10**9] if lo <= v <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def _day_value_strategy(t: pa.DataType) -> st.SearchStrategy:
    lo, hi = int_range(t)
    edges = [v for v in DAY_EDGES if lo <= v <= hi]
    big = [v for v in (10**12, -10**12) if lo <= v <= hi]
    s = st.one_of(st.sampled_from(edges), st.integers(max(lo, -1000), min(hi, 10**6)))
    if big:
        s = st.one_of(s, st.sampled_from(big))
    return s


def _key_value_strategy(t: pa.DataType) -> st.SearchStrategy:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        lo, hi = int_range(t)
        return st.one_of(st.sampled_from(_int_edges(t)), st.integers(lo, hi))
    return st.one_of(st.sampled_from(STRING_EDGES), st.text(max_size=5))


def _poison(spec: ColSpec) -> Any:
    """A value for the sliced-away padding rows: wrong to read, loud when read."""
    t = spec.type
    if spec.kind == "bool":
        return True
    if spec.kind == "money":
        if pa.types.is_floating(t):
            return math.nan
        if pa.types.is_decimal(t):
            return Decimal(10**(t.precision - 1)).scaleb(-t.scale)
        return int_range(t)[1]
    if spec.kind == "day":
        return int_range(t)[1]
    if spec.kind == "key":
        vt = t.value_type if pa.types.is_dictionary(t) else t
        if pa.types.is_integer(vt):
            return int_range(vt)[1] - 2
        return "POISON"
    return None


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ColSpec:
    name: str                 # column name in the table
    kind: str                 # "key", "bool", "day", "money" or "extra"
    type: pa.DataType
    role: str | None = None   # INPUT_COLUMNS role, None for keys / extras


@dataclasses.dataclass(frozen=True)
class Layout:
    """Physical layout. ``splits``: chunk boundaries (sorted, may repeat => empty chunks).
    ``per_column``: each column gets its own chunking (derived from ``seed``) instead of
    common record batches. ``pad``: max sliced-away rows before/after each chunk.
    ``exotic_dicts``: dictionaries with duplicate and null entries."""
    splits: tuple[int, ...] = ()
    per_column: bool = False
    pad: int = 0
    seed: int = 0
    exotic_dicts: bool = False


def _chunk_bounds(n: int, splits: tuple[int, ...]) -> list[tuple[int, int]]:
    pts = [0] + sorted(min(max(s, 0), n) for s in splits) + [n]
    return list(zip(pts[:-1], pts[1:]))


def _extra_array(t: pa.DataType, n: int) -> pa.Array:
    if pa.types.is_null(t):
        return pa.nulls(n)
    if pa.types.is_list(t):
        return pa.array([[i, -i] if i % 3 else None for i in range(n)], t)
    if pa.types.is_struct(t):
        return pa.array([{"a": i, "b": str(i)} for i in range(n)], t)
    if pa.types.is_float16(t):
        return pa.array(np.arange(n, dtype=np.float16), t)
    if pa.types.is_binary(t):
        return pa.array([b"\xff\x00" * (i % 3) for i in range(n)], t)
    if pa.types.is_date32(t):
        return pa.array(list(range(n)), pa.int32()).cast(t)
    if pa.types.is_map(t):
        return pa.array([[("k", i)] for i in range(n)], t)
    if pa.types.is_decimal(t):
        return pa.array([Decimal(i) for i in range(n)], t)
    if t == pa.string():  # decoy with a role's name
        return pa.array(["not a number"] * n, t)
    if pa.types.is_floating(t):  # decoy day/int column
        return pa.array([math.nan] * n, t)
    raise AssertionError(t)


EXTRA_TYPES = (pa.null(), pa.list_(pa.int64()), pa.struct([("a", pa.int32()), ("b", pa.string())]),
               pa.float16(), pa.binary(), pa.date32(), pa.map_(pa.string(), pa.int64()),
               pa.decimal256(40, 2))


@dataclasses.dataclass(frozen=True)
class Case:
    specs: tuple[ColSpec, ...]
    values: dict[str, list]          # logical rows per column name (extras absent)
    n: int
    by: Any                          # as passed: str, list or tuple; "<default>" = omitted
    columns: dict[str, str] | None   # the columns= mapping (None = not passed)
    config: MetricConfig | None      # None = not passed
    layout: Layout = Layout()

    # -- derived -----------------------------------------------------------------------------
    @property
    def key_names(self) -> list[str]:
        if isinstance(self.by, str):
            return ["officer_id"] if self.by == "<default>" else [self.by]
        return list(self.by)

    @property
    def effective_config(self) -> MetricConfig:
        return self.config if self.config is not None else MetricConfig()

    def kwargs(self, portfolio: bool = False) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if not portfolio and self.by != "<default>":
            kw["by"] = self.by
        if self.columns is not None:
            kw["columns"] = dict(self.columns)
        if self.config is not None:
            kw["config"] = self.config
        return kw

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(s.name, s.type) for s in self.specs])

    def with_layout(self, layout: Layout) -> Case:
        return dataclasses.replace(self, layout=layout)

    def permuted(self, perm) -> Case:
        perm = [int(i) for i in perm]
        assert sorted(perm) == list(range(self.n))
        vals = {k: [v[i] for i in perm] for k, v in self.values.items()}
        return dataclasses.replace(self, values=vals)

    def with_values(self, **changes: list) -> Case:
        vals = dict(self.values)
        vals.update(changes)
        return dataclasses.replace(self, values=vals)

    def __repr__(self) -> str:
        cols = ", ".join(f"{s.name}:{s.type}" for s in self.specs)
        lines = [f"Case(n={self.n}, by={self.by!r}, columns={self.columns!r}, "
                 f"config={self.config!r},", f"  layout={self.layout!r},", f"  schema=[{cols}],"]
        for k, v in self.values.items():
            lines.append(f"  {k}={v!r},")
        lines.append(")")
        return "\n".join(lines)

    # -- building ----------------------------------------------------------------------------
    @property
    def table(self) -> pa.Table:
        cache = self.__dict__.get("_table_cache")
        if cache is None:
            cache = self._build()
            object.__setattr__(self, "_table_cache", cache)
        return cache

    def _array(self, spec: ColSpec, lo: int, hi: int, rng: np.random.Generator) -> pa.Array:
        n = hi - lo
        layout = self.layout
        before = int(rng.integers(0, layout.pad + 1)) if layout.pad else 0
        after = int(rng.integers(0, layout.pad + 1)) if layout.pad else 0
        if spec.kind == "extra":
            arr = _extra_array(spec.type, before + n + after)
            return arr.slice(before, n)
        poison = _poison(spec)
        vals = [poison] * before + self.values[spec.name][lo:hi] + [poison] * after
        t = spec.type
        if pa.types.is_dictionary(t):
            arr = self._dict_array(t, vals, rng)
        else:
            arr = pa.array(vals, type=t)
        return arr.slice(before, n)

    def _dict_array(self, t: pa.DictionaryType, vals: list, rng: np.random.Generator) -> pa.Array:
        used = list(dict.fromkeys(v for v in vals if v is not None))
        extra_pool = ([int_range(t.value_type)[0], 7, 123] if pa.types.is_integer(t.value_type)
                      else ["unused", "zz-unused", ""])
        extras = [v for v in extra_pool if v not in used][: int(rng.integers(0, 3))]
        dictionary = used + extras
        order = rng.permutation(len(dictionary))
        dictionary = [dictionary[i] for i in order]
        pos = {v: i for i, v in enumerate(dictionary)}
        idx: list[int | None] = [None if v is None else pos[v] for v in vals]
        if self.layout.exotic_dicts and dictionary:
            # duplicate entries (some rows point at the copy) and a null entry (some null rows
            # are encoded as a valid index pointing at it)
            dictionary.append(None)
            null_entry = len(dictionary) - 1
            dup_of = {}
            for v in used[:2]:
                dictionary.append(v)
                dup_of[pos[v]] = len(dictionary) - 1
            for i, j in enumerate(idx):
                if j is None:
                    if rng.random() < 0.5:
                        idx[i] = null_entry
                elif j in dup_of and rng.random() < 0.5:
                    idx[i] = dup_of[j]
        cap = int_range(t.index_type)[1]
        assert len(dictionary) <= cap + 1, "dictionary too large for its index type"
        return pa.DictionaryArray.from_arrays(pa.array(idx, type=t.index_type),
                                              pa.array(dictionary, type=t.value_type))

    def _build(self) -> pa.Table:
        rng = np.random.default_rng(self.layout.seed)
        schema = self.schema
        if not self.layout.per_column:
            batches = []
            for lo, hi in _chunk_bounds(self.n, self.layout.splits):
                arrays = [self._array(s, lo, hi, rng) for s in self.specs]
                batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
            return pa.Table.from_batches(batches, schema=schema)
        cols = []
        k = len(self.layout.splits) + 1
        for s in self.specs:
            kc = int(rng.integers(1, k + 1))
            splits = tuple(int(x) for x in rng.integers(0, self.n + 1, size=kc - 1))
            chunks = [self._array(s, lo, hi, rng) for lo, hi in _chunk_bounds(self.n, splits)]
            cols.append(pa.chunked_array(chunks, type=s.type))
        return pa.Table.from_arrays(cols, schema=schema)

    def compact_table(self) -> pa.Table:
        """The same logical rows as one plain, unsliced, undictionaried-where-possible batch."""
        return dataclasses.replace(self, layout=Layout()).table


# --------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------

@st.composite
def configs(draw, money_scales=range(5)) -> MetricConfig:
    """MetricConfig variants (par_days, active_threshold, money_scale, band thresholds)."""
    kw: dict[str, Any] = {}
    kw["money_scale"] = draw(st.sampled_from(list(money_scales)))
    if draw(st.booleans()):
        kw["par_days"] = draw(st.one_of(st.sampled_from([1, 6, 7, 14, 15, 16, 30, 31, 90]),
                                        st.integers(1, 400)))
    if draw(st.booleans()):
        kw["active_threshold"] = draw(st.sampled_from([
            2000, 0, -1, 1, 2000.005, 1999.99, 2000.01, 0.1, 10**6, -2000.5,
            Decimal("1999.995"), Decimal("2000.001"), Decimal("-0.005"), Fraction(4000001, 2000),
            Fraction(1, 3), Fraction(-7, 3)]))
    if draw(st.integers(0, 3)) == 0:
        for a, b in (("fimr_green", "fimr_watch"), ("slippage_green", "slippage_watch"),
                     ("roll_green", "roll_watch")):
            x, y = sorted(draw(st.lists(st.sampled_from([0.0, 0.01, 0.03, 0.05, 0.1, 0.25, 0.5,
                                                         1.0, 0.1 + 0.2]),
                                        min_size=2, max_size=2)))
            kw[a], kw[b] = x, y
        y, x = sorted(draw(st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.5666, 1.0, 2.0]),
                                    min_size=2, max_size=2)))
        kw["ayr_green"], kw["ayr_watch"] = x, y
        y, x = sorted(draw(st.lists(st.integers(-5, 105), min_size=2, max_size=2)))
        kw["dqi_green"], kw["dqi_watch"] = x, y
        c, b, a = sorted(draw(st.lists(st.integers(-5, 105), min_size=3, max_size=3)))
        kw["risk_green"], kw["risk_watch"], kw["risk_amber"] = a, b, c
    return MetricConfig(**kw)


@st.composite
def layouts(draw, n: int, max_chunks: int = 20) -> Layout:
    k = draw(st.integers(1, max_chunks))
    splits = tuple(sorted(draw(st.lists(st.integers(0, n), min_size=k - 1, max_size=k - 1))))
    return Layout(splits=splits,
                  per_column=draw(st.integers(0, 3)) == 0,
                  pad=draw(st.sampled_from([0, 0, 1, 3])),
                  seed=draw(st.integers(0, 2**32 - 1)),
                  exotic_dicts=draw(st.integers(0, 4)) == 0)


NULL_PROBS = (0.0, 0.0, 0.0, 0.1, 0.3, 1.0)


@st.composite
def _column_values(draw, rng_seed: int, n: int, value_strategy: st.SearchStrategy,
                   max_pool: int = 12) -> list:
    pool = draw(st.lists(value_strategy, min_size=1, max_size=max_pool))
    null_p = draw(st.sampled_from(NULL_PROBS))
    rng = np.random.default_rng(rng_seed)
    picks = rng.integers(0, len(pool), size=n)
    nulls = rng.random(n) < null_p
    return [None if z else pool[int(i)] for i, z in zip(picks, nulls)]


KEY_NAMES = ("officer_id", "branch", "region")


@st.composite
def cases(draw, *, min_rows: int = 0, max_rows: int = 300, key_types=KEY_TYPES,
          money_types=MONEY_TYPES, max_keys: int = 3, allow_portfolio: bool = True,
          extras: bool = True, rename: bool = True, config=True, max_chunks: int = 20,
          money_scales=range(5)) -> Case:
    """A valid loan snapshot (no row raises) with arguments and a physical layout."""
    n = draw(st.integers(min_rows, max_rows))
    seed = draw(st.integers(0, 2**32 - 1))
    specs: list[ColSpec] = []
    values: dict[str, list] = {}

    nkeys = draw(st.integers(0 if allow_portfolio else 1, max_keys))
    key_names = list(KEY_NAMES[:nkeys])
    if nkeys and draw(st.integers(0, 5)) == 0:
        key_names[0] = draw(st.sampled_from(["clé", "officer id", "Officer_ID", "k"]))
    for i, name in enumerate(key_names):
        t = draw(st.sampled_from(key_types))
        specs.append(ColSpec(name, "key", t))
        values[name] = draw(_column_values(seed + 101 * i, n, _key_value_strategy(t), 8))

    # role columns, possibly renamed
    mapping: dict[str, str] = {}
    decoys: list[ColSpec] = []
    for j, role in enumerate(INPUT_COLUMNS):
        name = role
        if rename and draw(st.integers(0, 19)) == 0:
            name = role + "_src"
            mapping[role] = name
            if draw(st.booleans()):
                decoys.append(ColSpec(role, "extra",
                                      pa.float64() if role in DAY_COLUMNS else pa.string()))
        elif rename and draw(st.integers(0, 39)) == 0:
            mapping[role] = role  # identity entry
        if role == "fimr_tagged":
            spec = ColSpec(name, "bool", pa.bool_(), role)
            vs = st.booleans()
        elif role in DAY_COLUMNS:
            t = draw(st.sampled_from(INT_TYPES))
            spec = ColSpec(name, "day", t, role)
            vs = _day_value_strategy(t)
        else:
            assert role in MONEY_COLUMNS
            t = draw(st.sampled_from(money_types))
            spec = ColSpec(name, "money", t, role)
            vs = _money_value_strategy(t, role)
        specs.append(spec)
        values[name] = draw(_column_values(seed + 7919 * (j + 1), n, vs, 16))

    specs += decoys
    if extras and draw(st.integers(0, 3)) == 0:
        for t in draw(st.lists(st.sampled_from(EXTRA_TYPES), min_size=1, max_size=3, unique_by=str)):
            specs.append(ColSpec(f"extra_{str(t)}", "extra", t))
    order = draw(st.permutations(range(len(specs))))
    specs = [specs[i] for i in order]

    if key_names == ["officer_id"] and draw(st.booleans()):
        by: Any = "<default>"
    elif len(key_names) == 1 and draw(st.booleans()):
        by = key_names[0]
    else:
        by = draw(st.sampled_from([tuple, list]))(key_names)

    columns = mapping if (mapping or (rename and draw(st.integers(0, 9)) == 0)) else None
    cfg = None
    if config:
        cfg = draw(st.one_of(st.none(), st.just(MetricConfig()), configs(money_scales)))
    layout = draw(layouts(n, max_chunks))
    return Case(tuple(specs), values, n, by, columns, cfg, layout)


def _bad_values(spec: ColSpec, mode: str) -> list:
    """Values that make ``spec``'s column raise (or nearly): ``mode`` "value" = NaN/inf, float
    beyond 2**53 minor units, per-value int64 overflow; "aggregate" = values that fit one by one
    at money_scale 0 but whose sums may leave int64 (or cancel out)."""
    t = spec.type
    big = [2**62, -(2**62), 2**62 + 12345, 3 * 2**61, 2**63 - 1, -(2**63), -(2**62) - 1]
    if mode == "aggregate":
        if spec.kind not in ("money", "day"):
            return []
        if t == pa.int64():
            return big
        if t == pa.uint64():
            return [v for v in big if 0 <= v < 2**63]
        if pa.types.is_decimal(t) and t.precision - t.scale >= 19:
            return [Decimal(v) for v in big]
        return []
    if spec.kind == "money":
        if t == pa.float64():
            return [math.nan, math.inf, -math.inf, -math.nan, 1e300, 2.0**60, -(2.0**60), 9.1e13,
                    2.0**53, -(2.0**53), 2.0**53 + 2, 4.6e18, 1e17, 1.7976931348623157e308]
        if t == pa.float32():
            return [math.nan, math.inf, -math.inf, 1e30, 2.0**60, 2.0**53]
        if pa.types.is_decimal(t):
            out = [Decimal(10**(t.precision - 1) - 1).scaleb(-t.scale)]
            if t.precision - t.scale >= 19:
                out += [Decimal(2**63), Decimal(-(2**63) - 1), Decimal(2**62).scaleb(-t.scale)]
            return out
        if t == pa.int64():
            return [2**63 - 1, -(2**63), 2**62, -(2**62), 2**61, 2**60 + 1, 10**17]
        if t == pa.uint64():
            return [2**64 - 1, 2**63, 2**62, 2**61]
        return []
    if spec.kind == "day" and t == pa.uint64():
        return [2**63, 2**64 - 1, 2**63 - 1]
    return []


@st.composite
def bad_cases(draw, **kw) -> Case:
    """Like :func:`cases`, but with some cells set to NaN/inf, huge or int64-overflowing values
    (mode "value"), or to values near 2**62 at money_scale 0 so that group sums may overflow
    (mode "aggregate"); the case may or may not raise."""
    kw.setdefault("money_types", (pa.float64(), pa.float32(), pa.int64(), pa.uint64(),
                                  pa.decimal128(38, 2), pa.decimal128(30, 4), pa.decimal128(25, 0),
                                  pa.int32()))
    kw.setdefault("min_rows", 1)
    mode = draw(st.sampled_from(["value", "value", "aggregate", "both"]))
    if mode != "value":
        kw.setdefault("money_scales", (0,))
    case = draw(cases(**kw))
    if mode != "value" and case.effective_config.money_scale != 0:
        case = dataclasses.replace(case, config=dataclasses.replace(case.effective_config,
                                                                    money_scale=0))
    changes: dict[str, list] = {}
    # few distinct rows, so that several bad cells often share a row (ties between columns)
    hot_rows = draw(st.lists(st.integers(0, case.n - 1), min_size=1, max_size=3))
    for m in (("value", "aggregate") if mode == "both" else (mode,)):
        candidates = [s for s in case.specs if _bad_values(s, m)]
        if not candidates:
            continue
        if m == "value":  # mostly distinct columns, mostly on the hot rows
            specs = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4,
                                  unique_by=lambda c: c.name))
        else:
            specs = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=6))
        for spec in specs:
            row = draw(st.one_of(st.sampled_from(hot_rows), st.integers(0, case.n - 1)))
            col = changes.setdefault(spec.name, list(case.values[spec.name]))
            col[row] = draw(st.sampled_from(_bad_values(spec, m)))
    return case.with_values(**changes)


# --------------------------------------------------------------------------------------------
# a fixed, readable snapshot for hand-written tests
# --------------------------------------------------------------------------------------------

def default_snapshot(n: int = 12, *, key=None, key_type=pa.int64()) -> dict[str, pa.Array]:
    """A small valid snapshot as a dict of arrays (role names), default types."""
    keys = key if key is not None else [i % 3 for i in range(n)]
    return {
        "officer_id": pa.array(keys, key_type),
        "fimr_tagged": pa.array([i % 4 == 0 for i in range(n)], pa.bool_()),
        "current_dpd": pa.array([[0, 1, 6, 7, 15, 30, 31, 3][i % 8] for i in range(n)], pa.int32()),
        "previous_dpd": pa.array([[1, 6, 0, 3, 7, 2][i % 6] for i in range(n)], pa.int32()),
        "principal_outstanding": pa.array([1000.0 + 10.25 * i for i in range(n)], pa.float64()),
        "amount_due_7d": pa.array([100.0 + i for i in range(n)], pa.float64()),
        "interest_collected": pa.array([50.5 + i for i in range(n)], pa.float64()),
        "fees_collected": pa.array([5.0 + 0.01 * i for i in range(n)], pa.float64()),
        "fees_due": pa.array([10.0] * n, pa.float64()),
        "outstanding_balance": pa.array([[2000.0, 2000.01, 1999.99, 5000.0][i % 4] for i in range(n)],
                                        pa.float64()),
        "days_since_last_repayment": pa.array([i % 9 if i % 5 else None for i in range(n)], pa.int32()),
        "loan_age": pa.array([30 + 7 * i for i in range(n)], pa.int32()),
    }


# --------------------------------------------------------------------------------------------
# large inputs built with numpy (big enough for the engine to split them into chunks)
# --------------------------------------------------------------------------------------------

def rechunk(table: pa.Table, bounds) -> pa.Table:
    """``table`` split into record batches at the sorted boundaries ``bounds`` (repeats give
    empty batches); every batch is a zero-copy slice, so buffers have non-zero offsets."""
    table = table.combine_chunks()
    batches = []
    for lo, hi in _chunk_bounds(table.num_rows, tuple(bounds)):
        batches.extend(table.slice(lo, hi - lo).to_batches()
                       or [pa.RecordBatch.from_pylist([], schema=table.schema)])
    return pa.Table.from_batches(batches, schema=table.schema)


def _np_validity(mask: np.ndarray | None):
    if mask is None or not mask.any():
        return None
    return pa.py_buffer(np.packbits(~mask, bitorder="little"))


def _decimal_from_unscaled(unscaled: np.ndarray, t: pa.DataType, mask) -> pa.Array:
    n = len(unscaled)
    words = np.empty(2 * n, dtype=np.int64)
    words[0::2] = unscaled
    words[1::2] = np.where(unscaled < 0, -1, 0)
    return pa.Array.from_buffers(t, n, [_np_validity(mask), pa.py_buffer(words)])


def _np_money(cents: np.ndarray, t: pa.DataType, mask) -> pa.Array:
    """Money column of type ``t`` from exact cents (float types get cents / 100)."""
    if pa.types.is_floating(t):
        x = cents / 100.0
        return pa.array(x.astype(t.to_pandas_dtype()), t, mask=mask)
    if pa.types.is_decimal(t):
        s = t.scale
        unscaled = cents * 10**(s - 2) if s >= 2 else cents // 10**(2 - s)
        return _decimal_from_unscaled(unscaled, t, mask)
    lo, hi = int_range(t)
    units = np.clip(cents // 100, max(lo, -10**12), min(hi, 10**12))
    return pa.array(units.astype(t.to_pandas_dtype()), t, mask=mask)


def _np_keys(ids: np.ndarray, t: pa.DataType, mask, groups: int) -> pa.Array:
    names = [f"officer-{i:05d}" if i % 7 else f"é-{i}" for i in range(groups)]
    if pa.types.is_dictionary(t):
        if pa.types.is_integer(t.value_type):
            lo, hi = int_range(t.value_type)
            dictionary = pa.array([min(hi, max(lo, hi - 3 * i)) for i in range(groups)], t.value_type)
        else:
            dictionary = pa.array(names, t.value_type)
        return pa.DictionaryArray.from_arrays(pa.array(ids.astype(t.index_type.to_pandas_dtype()),
                                                       t.index_type, mask=mask), dictionary)
    if pa.types.is_integer(t):
        lo, hi = int_range(t)
        if t == pa.uint64():
            vals = ids.astype(np.uint64) * np.uint64(3) + np.uint64(2**63 - 150)
        else:
            vals = np.clip(ids * 3 + lo // 2, lo, hi).astype(t.to_pandas_dtype())
        return pa.array(vals, t, mask=mask)
    arr = pa.array(np.array(names, dtype=object)[ids], pa.string(), mask=mask)
    return arr.cast(t)


def big_table(n: int = 300_000, *, key_type: pa.DataType = pa.int64(),
              money_type: pa.DataType = pa.float64(), day_type: pa.DataType = pa.int32(),
              groups: int = 100, seed: int = 0, null_frac: float = 0.03,
              batches: int = 1) -> pa.Table:
    """A large valid snapshot keyed by ``officer_id`` (about ``groups`` groups plus a null
    group), built with numpy; ``batches`` record batches of uneven sizes."""
    rng = np.random.default_rng(seed)

    def mask():
        return rng.random(n) < null_frac if null_frac else None

    if pa.types.is_dictionary(key_type):
        groups = min(groups, int_range(key_type.index_type)[1] + 1)
    if key_type in (pa.int8(), pa.uint8()):
        groups = min(groups, 80)
    ids = rng.integers(0, groups, n)
    cents = {}
    for role in MONEY_COLUMNS:
        c = rng.integers(-10**5, 10**8, n)
        ties = rng.random(n) < 0.05
        c[ties] = c[ties] - c[ties] % 100 + 50  # x.50: half ties at money_scale 0
        cents[role] = c
    ob = cents["outstanding_balance"]
    near = rng.random(n) < 0.2
    ob[near] = rng.choice(np.array([199999, 200000, 200001, 100000, 0]), int(near.sum()))
    lo, hi = int_range(day_type)
    cols = {
        "officer_id": _np_keys(ids, key_type, mask(), groups),
        "fimr_tagged": pa.array(rng.random(n) < 0.05, mask=mask()),
        "current_dpd": pa.array(np.clip(rng.choice(np.array([0, 0, 0, 1, 3, 6, 7, 15, 30, 31, 60]), n),
                                        lo, hi).astype(day_type.to_pandas_dtype()), day_type, mask=mask()),
        "previous_dpd": pa.array(np.clip(rng.choice(np.array([0, 0, 1, 2, 6, 7, 20]), n),
                                         lo, hi).astype(day_type.to_pandas_dtype()), day_type, mask=mask()),
        "days_since_last_repayment": pa.array(np.clip(rng.integers(0, 60, n), lo, hi)
                                              .astype(day_type.to_pandas_dtype()), day_type, mask=mask()),
        "loan_age": pa.array(np.clip(rng.integers(1, 700, n), lo, hi)
                             .astype(day_type.to_pandas_dtype()), day_type, mask=mask()),
    }
    for role in MONEY_COLUMNS:
        cols[role] = _np_money(cents[role], money_type, mask())
    table = pa.table({name: cols[name] for name in ("officer_id",) + INPUT_COLUMNS})
    if batches > 1:
        bounds = sorted(rng.integers(0, n + 1, batches - 1).tolist())
        table = rechunk(table, bounds)
    return table
