"""Results do not depend on how the input is laid out or processed (METRICS.md §1, §6):
thread count, row order, batch / chunk boundaries, slicing offsets and per-chunk dictionaries
all give bitwise identical tables. Plus structural properties every implementation has."""

from __future__ import annotations

import functools
import zlib
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import strategies as S
from metriccore._schema import AGGREGATES

THREADS = (1, 2, 3, 8)


def _same(impl, a: S.Case, b: S.Case, what: str, **kw) -> None:
    ra = S.outcome(lambda: S.call(impl, a, **kw))
    rb = S.outcome(lambda: S.call(impl, b, **kw))
    assert ra[0] == rb[0], f"{what}: {ra[0]} vs {rb[0]}: {ra[1] if ra[0] == 'error' else rb[1]}"
    if ra[0] == "error":
        assert ra[1] == rb[1], f"{what}: {ra[1]} vs {rb[1]}"
    else:
        S.assert_tables_identical(ra[1], rb[1], what)


# ------------------------------------------------------------------------------------------
# small inputs, every implementation (hypothesis)
# ------------------------------------------------------------------------------------------

@settings(max_examples=S.examples(60))
@given(case=S.cases(), data=st.data())
def test_layout_invariance(impl, case, data):
    """Other batch boundaries, empty batches, slicing, per-column chunking and dictionaries."""
    other = case.with_layout(data.draw(S.layouts(case.n), label="other layout"))
    _same(impl, case, other, "relayout")
    compact = S.outcome(lambda: S.call(impl, case, data=case.compact_table()))
    base = S.outcome(lambda: S.call(impl, case))
    assert base[0] == compact[0] == "ok", (base, compact)
    S.assert_tables_identical(base[1], compact[1], "sliced/chunked vs compact")


@settings(max_examples=S.examples(60))
@given(case=S.cases(), data=st.data())
def test_row_order_invariance(impl, case, data):
    perm = data.draw(st.permutations(range(case.n)), label="permutation")
    layout = data.draw(st.one_of(st.just(case.layout), S.layouts(case.n)), label="layout")
    _same(impl, case, case.permuted(perm).with_layout(layout), "permuted")
    _same(impl, case, case.permuted(perm).with_layout(layout), "permuted portfolio", by=())


@settings(max_examples=S.examples(30))
@given(case=S.bad_cases(), data=st.data())
def test_error_invariance_under_relayout(impl, case, data):
    """The error (first bad row, global numbering) does not depend on the batch layout."""
    _same(impl, case, case.with_layout(data.draw(S.layouts(case.n))), "relayout (bad input)")


@settings(max_examples=S.examples(40))
@given(case=S.cases(), threads=st.sampled_from(THREADS))
def test_thread_count_invariance_small(impl, case, threads):
    _same(impl, case, case, f"threads={threads}", threads=threads)


# ------------------------------------------------------------------------------------------
# structural properties, every implementation
# ------------------------------------------------------------------------------------------

_INT_AGGREGATES = [name for name, money in AGGREGATES if not money]


@settings(max_examples=S.examples(60))
@given(case=S.cases())
def test_groups_and_totals(impl, case):
    kind, table = S.outcome(lambda: S.call(impl, case))
    assert kind == "ok", table
    keys = case.key_names
    assert table.column_names[: len(keys)] == keys
    # one row per distinct key tuple, sorted ascending with nulls last, counts per group
    expected = Counter(zip(*(case.values[k] for k in keys))) if keys else Counter({(): case.n})
    S.check_sorted_unique_keys(table, keys)
    got = {tuple(r[k] for k in keys): r["loans"] for r in table.to_pylist()}
    assert got == dict(expected)
    if not keys:
        assert table.num_rows == 1
    # integer aggregates of the groups add up to the portfolio's
    kind, port = S.outcome(lambda: S.call(impl, case, by=()))
    if kind == "ok":
        assert port.num_rows == 1
        for name in _INT_AGGREGATES:
            assert sum(table.column(name).to_pylist()) == port.column(name)[0].as_py(), name
        # portfolio_metrics is the by=() row as a dict
        S.assert_values_identical(S.call(impl, case, "portfolio_metrics"), port.to_pylist()[0],
                                  "portfolio_metrics vs officer_metrics(by=())")


# ------------------------------------------------------------------------------------------
# large inputs, compiled engine (split into ~64K-row chunks and run on several threads)
# ------------------------------------------------------------------------------------------

LARGE_KEYS = [pa.int32(), pa.uint64(), pa.string(), pa.dictionary(pa.int16(), pa.string())]


@pytest.mark.parametrize("key_type", LARGE_KEYS, ids=str)
def test_thread_count_invariance_large(engine, key_type):
    table = S.big_table(300_000, key_type=key_type, batches=3, seed=5)
    base = engine.officer_metrics(table, threads=1)
    assert base.num_rows > 1
    for t in THREADS[1:] + (None,):
        S.assert_tables_identical(engine.officer_metrics(table, threads=t), base, f"threads={t}")
    port = engine.officer_metrics(table, by=(), threads=1)
    for t in THREADS[1:]:
        S.assert_tables_identical(engine.officer_metrics(table, by=(), threads=t), port,
                                  f"by=() threads={t}")
        S.assert_values_identical(engine.portfolio_metrics(table, threads=t),
                                  engine.portfolio_metrics(table, threads=1), f"portfolio {t}")


@pytest.mark.parametrize("seed", [0, 1])
def test_row_order_invariance_large(engine, seed):
    table = S.big_table(300_000, money_type=pa.float64(), key_type=pa.large_string(),
                        batches=4, seed=seed)
    base = engine.officer_metrics(table, threads=4)
    rng = np.random.default_rng(seed)
    # a global permutation (rows move across chunks) ...
    perm = rng.permutation(table.num_rows)
    shuffled = table.combine_chunks().take(pa.array(perm))
    shuffled = S.rechunk(shuffled, sorted(rng.integers(0, table.num_rows, 9).tolist()))
    S.assert_tables_identical(engine.officer_metrics(shuffled, threads=4), base, "global perm")
    S.assert_tables_identical(engine.officer_metrics(shuffled, threads=1), base, "global perm t1")
    # ... and permutations only within each chunk, and of the chunks themselves
    batches = table.to_batches()
    within = [b.take(pa.array(rng.permutation(b.num_rows))) for b in batches]
    order = rng.permutation(len(within))
    within = pa.Table.from_batches([within[i] for i in order], schema=table.schema)
    S.assert_tables_identical(engine.officer_metrics(within, threads=3), base, "chunk perm")


def test_rechunk_invariance_large(engine):
    table = S.big_table(300_000, key_type=pa.dictionary(pa.int32(), pa.string()),
                        money_type=pa.decimal128(20, 3), seed=9)
    base = engine.officer_metrics(table, threads=2)
    n = table.num_rows
    layouts = {
        "one batch": [],
        "uneven with empties": [0, 0, 1, 65_535, 65_536, 65_536, 65_537, 200_000, n, n],
        "many small": list(range(0, n, 7_777)),
        "exact 64Ki": list(range(0, n, 65_536)),
    }
    for name, bounds in layouts.items():
        S.assert_tables_identical(engine.officer_metrics(S.rechunk(table, bounds), threads=8),
                                  base, name)
    # every column chunked differently (and dictionaries differ per chunk)
    rng = np.random.default_rng(1)
    flat = table.combine_chunks()
    cols = []
    for col in flat.columns:
        arr = col.chunk(0)
        bounds = [0] + sorted(rng.integers(0, n, rng.integers(1, 12)).tolist()) + [n]
        chunks = [arr.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:])]
        if pa.types.is_dictionary(arr.type):
            chunks = [c.dictionary_decode().dictionary_encode().cast(arr.type) if len(c) else c
                      for c in chunks]
        cols.append(pa.chunked_array(chunks, type=arr.type))
    per_col = pa.Table.from_arrays(cols, schema=table.schema)
    S.assert_tables_identical(engine.officer_metrics(per_col, threads=3), base, "per-column")


def test_reader_input_large_threads(engine):
    table = S.big_table(250_000, key_type=pa.string_view(), batches=6, seed=4)
    base = engine.officer_metrics(table, threads=1)
    for t in THREADS:
        reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
        S.assert_tables_identical(engine.officer_metrics(reader, threads=t), base, f"reader {t}")


# ------------------------------------------------------------------------------------------
# matrix: key types x money types x thread counts (engine vs itself and vs the reference)
# ------------------------------------------------------------------------------------------

KEY_MATRIX = [pa.int8(), pa.int64(), pa.uint64(), pa.string(), pa.large_string(),
              pa.string_view(), pa.dictionary(pa.int8(), pa.string()),
              pa.dictionary(pa.int32(), pa.large_string()), pa.dictionary(pa.int16(), pa.int64())]
MONEY_MATRIX = [pa.float64(), pa.float32(), pa.decimal128(18, 2), pa.decimal128(22, 4),
                pa.decimal128(12, 0), pa.int32(), pa.uint64()]


@functools.cache
def _matrix_tables(key_type, money_type):
    big = S.big_table(150_000, key_type=key_type, money_type=money_type, batches=5,
                      seed=zlib.crc32(f"{key_type}/{money_type}".encode()) % 1000)
    small = S.big_table(2_000, key_type=key_type, money_type=money_type, batches=3, seed=2)
    return big, small


@functools.cache
def _matrix_expected(engine, reference, key_type, money_type):
    big, small = _matrix_tables(key_type, money_type)
    return engine.officer_metrics(big, threads=1), reference.officer_metrics(small)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("money_type", MONEY_MATRIX, ids=str)
@pytest.mark.parametrize("key_type", KEY_MATRIX, ids=str)
def test_matrix(engine, reference, key_type, money_type, threads):
    big, small = _matrix_tables(key_type, money_type)
    want_big, want_small = _matrix_expected(engine, reference, key_type, money_type)
    S.assert_tables_identical(engine.officer_metrics(big, threads=threads), want_big,
                              "large, vs threads=1")
    S.assert_tables_identical(engine.officer_metrics(small, threads=threads), want_small,
                              "small, vs reference")
