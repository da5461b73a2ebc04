"""Reliability: hostile Arrow C stream producers.

Producers of ``__arrow_c_stream__`` (``producers.RawStream``: a C stream written with
ctypes, whose exported structs can be patched; ``producers.GeneratorStream``: a pyarrow
reader over a Python generator) hand the engine:

* odd but valid data: zero-length batches (even only those), batches of very different
  sizes, children with offsets that end exactly at the end of their buffers, a non-zero
  offset on the record batch itself, NULL validity buffers where ``null_count`` is 0,
  ``null_count = -1`` (unknown), NULL buffers of size 0 (allowed since apache/arrow#14805),
  keys of every accepted type (including long ``string_view`` keys that live in data
  buffers), nested or unsupported types in unused columns, huge group counts. Result: the
  reference's answer, bit for bit.
* invalid data: a stream that fails midway (with a message, without one, without a
  ``get_last_error``), a failing ``get_schema``, a Python generator that raises, a batch
  whose schema is not the stream's (other column count, or a used column of another
  layout), struct-level nulls, a child shorter than its batch, a missing data buffer, a
  negative offset, unsupported types in used columns. Result: a clear ``ValueError`` /
  ``TypeError`` naming the problem; never a crash.

Limit (documented in tests/README.md): the C Data Interface carries no type per batch, so a
batch whose used column changes to another type *of the same layout* (int32 -> int64,
float64 -> decimal128) cannot be told apart from a valid one by any consumer; pyarrow's own
importer has the same limit.
"""

from __future__ import annotations


import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import producers as P
from helpers import strategies as S

S.require_engine_module()
import metriccore  # noqa: E402
import metriccore.reference as reference  # noqa: E402
from metriccore._schema import INPUT_COLUMNS  # noqa: E402

#: Key types beyond strategies.KEY_TYPES: dictionaries of string_view / large_string /
#: every integer width, wide index types.
ALL_KEY_TYPES = S.KEY_TYPES + (
    pa.dictionary(pa.int8(), pa.string_view()), pa.dictionary(pa.int64(), pa.large_string()),
    pa.dictionary(pa.uint32(), pa.int8()), pa.dictionary(pa.int32(), pa.uint64()),
    pa.dictionary(pa.uint8(), pa.uint16()), pa.dictionary(pa.int64(), pa.int32()),
)
LONG = "a key long enough not to be inlined in a string view: "


@pytest.fixture(autouse=True)
def _forget_streams():
    yield
    P.forget_streams()


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.nulls(0, t) for t in schema.types], schema=schema)


def _at_end(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The same rows, as the last ``len(batch)`` rows of a batch twice as long: every child
    has a non-zero offset and ends exactly where its buffers end."""
    doubled = pa.Table.from_batches([batch, batch]).combine_chunks().to_batches()
    return doubled[0].slice(batch.num_rows, batch.num_rows)


def _struct_slice_item(batch: pa.RecordBatch, what: str) -> P.Item:
    """Export the rows as a *slice of a struct array*: the offset is then on the record
    batch (the parent), not on its children."""
    doubled = pa.Table.from_batches([batch, batch]).combine_chunks().to_batches()[0]
    struct = pa.StructArray.from_arrays(doubled.columns, fields=list(doubled.schema))
    sliced = struct.slice(batch.num_rows, batch.num_rows)

    class _Struct:  # RawStream exports item.batch with _export_to_c
        num_rows = batch.num_rows

        @staticmethod
        def _export_to_c(out):
            sliced._export_to_c(out)
    return P.Item(_Struct, None, what)


@st.composite
def odd_streams(draw, max_rows: int = 160):
    """(case, producer): a valid case, served as an odd but valid stream."""
    case = draw(S.cases(max_rows=max_rows, max_chunks=6, key_types=ALL_KEY_TYPES))
    if draw(st.booleans()):
        # long string keys (string_view stores them in its data buffers)
        long_keys = {}
        for spec in case.specs:
            t = spec.type.value_type if pa.types.is_dictionary(spec.type) else spec.type
            if spec.kind == "key" and not pa.types.is_integer(t):
                long_keys[spec.name] = [None if v is None else LONG + v
                                        for v in case.values[spec.name]]
        case = case.with_values(**long_keys)
    schema = case.schema
    batches: list[pa.RecordBatch] = []
    for b in case.table.to_batches():
        cuts = sorted(draw(st.lists(st.integers(0, b.num_rows), max_size=3)))
        bounds = [0] + cuts + [b.num_rows]
        batches += [b.slice(lo, hi - lo) for lo, hi in zip(bounds, bounds[1:])]
    for _ in range(draw(st.integers(0, 3))):
        batches.insert(draw(st.integers(0, len(batches))), _empty_batch(schema))
    if draw(st.booleans()):
        batches = [_at_end(b) if b.num_rows and draw(st.booleans()) else b for b in batches]
    if draw(st.integers(0, 3)) == 0:
        return case, P.GeneratorStream(schema, lambda: iter(batches))
    patches = []
    if draw(st.booleans()):
        patches.append(P.drop_validity(schema))
    if draw(st.booleans()):
        patches.append(P.unknown_null_count(schema))
    if draw(st.booleans()):
        patches.append(P.null_empty_buffers(schema))
    patch = P.chain(*patches) if patches else None
    items = []
    for b in batches:
        if b.num_rows and draw(st.integers(0, 4)) == 0:
            items.append(_struct_slice_item(b, "struct slice"))
        else:
            items.append(P.Item(b, patch, f"{len(patches)} patches"))
    return case, P.RawStream(schema, items)


def _expected(case: S.Case, fn: str):
    return S.outcome(lambda: S.call(reference, case, fn))


@settings(max_examples=S.examples(150), suppress_health_check=list(HealthCheck))
@given(odd_streams(), st.sampled_from([1, 2, 3, None]), st.booleans())
def test_odd_but_valid_streams_give_the_reference_answer(case_producer, threads, portfolio):
    case, producer = case_producer
    fn = "portfolio_metrics" if portfolio else "officer_metrics"
    want = _expected(case, fn)
    assert want[0] == "ok", want  # strategies.cases() only makes valid cases
    got = S.call(metriccore, case, fn, data=producer, threads=threads)
    if portfolio:
        S.assert_values_identical(got, want[1])
    else:
        S.assert_tables_identical(got, want[1])


def test_empty_streams():
    schema = pa.table(S.default_snapshot(1)).schema
    for items in ([], [_empty_batch(schema)] * 3):
        empty = pa.Table.from_batches([], schema=schema)
        for by in ("officer_id", ()):
            S.assert_tables_identical(
                metriccore.officer_metrics(P.RawStream(schema, items), by=by),
                reference.officer_metrics(empty, by=by))


def _distinct_keys_table(n: int, seed: int, names: bool = True) -> pa.Table:
    """``n`` rows, each with its own ``officer_id`` (int64) and ``name`` (string)."""
    import numpy as np

    t = S.big_table(n, key_type=pa.int64(), groups=10, seed=seed, null_frac=0.01)
    ids = np.random.default_rng(seed).permutation(n)
    t = t.set_column(0, "officer_id", pa.array(ids * 7 - n, pa.int64()))
    if names:
        t = t.append_column("name", pa.array([f"officer {i:07d}" for i in ids], pa.string()))
    return t


def test_huge_group_count_matches_reference():
    # every row its own group, two key columns, served in odd batches
    table = _distinct_keys_table(30_000, seed=1)
    batches = S.rechunk(table, [1, 4096, 4097, 4097, 20_000]).to_batches()
    items = [P.Item(b, P.drop_validity(table.schema)) for b in batches]
    got = metriccore.officer_metrics(P.RawStream(table.schema, items), by=["name", "officer_id"])
    assert got.num_rows == table.num_rows
    S.assert_tables_identical(got, reference.officer_metrics(table, by=["name", "officer_id"]))


def test_a_million_groups():
    n = 1_000_000
    table = _distinct_keys_table(n, seed=2, names=False)
    got = metriccore.officer_metrics(table, threads=2)
    assert got.num_rows == n
    assert pa.compute.all(pa.compute.equal(got.column("loans"), 1)).as_py()
    # the groups' loan counts add up to the portfolio's, and any layout gives the same bits
    whole = metriccore.portfolio_metrics(table)
    assert pa.compute.sum(got.column("loans")).as_py() == whole["loans"] == n
    again = metriccore.officer_metrics(S.rechunk(table, [3, 70_000, 500_000]), threads=1)
    if not got.equals(again):  # fast; the bitwise comparison only to explain a difference
        S.assert_tables_identical(got, again)


def test_null_data_buffers_of_an_empty_string_view_slice():
    # Regression (found by hypothesis): a zero-length slice of a string_view array still
    # declares its data buffers' sizes; a producer may export every buffer of it as NULL
    # (null_empty_buffers), and no view is read, so this is no error
    n = 12
    snap = S.default_snapshot(n, key=[f"{LONG}{i % 4}" for i in range(n)],
                              key_type=pa.string_view())
    table = pa.table(snap)
    empty = table.combine_chunks().to_batches()[0].slice(5, 0)
    sizes = []

    def patch(arr):
        child = arr.children[0].contents
        declared = ctypes.cast(child.buffers[child.n_buffers - 1],
                               ctypes.POINTER(ctypes.c_int64))
        sizes.append([declared[b] for b in range(child.n_buffers - 3)])
        P.null_empty_buffers(table.schema)(arr)

    items = [P.Item(empty, patch)] + table.to_batches()
    S.assert_tables_identical(metriccore.officer_metrics(P.RawStream(table.schema, items)),
                              reference.officer_metrics(table))
    assert sizes and any(size > 0 for size in sizes[0]), sizes   # a declared, non-zero size


def test_null_buffers_where_the_spec_allows_them():
    # string keys that are all empty or null: the character data buffer has size 0 and is
    # exported as NULL; a zero-length batch with every buffer NULL (offsets included)
    n = 12
    snap = S.default_snapshot(n, key=["" if i % 3 else None for i in range(n)],
                              key_type=pa.string())
    snap["region"] = pa.array([""] * n, pa.large_string())
    table = pa.table(snap)
    seen = []

    def patch(arr):
        P.null_empty_buffers(table.schema)(arr)
        P.drop_validity(table.schema)(arr)
        for i in (0, table.num_columns - 1):
            child = arr.children[i].contents
            seen.append((arr.length, i, [child.buffers[b] for b in range(child.n_buffers)]))

    batches = [_empty_batch(table.schema)] + S.rechunk(table, [5]).to_batches()
    items = [P.Item(b, patch) for b in batches]
    for by in ("officer_id", ("region", "officer_id")):
        S.assert_tables_identical(metriccore.officer_metrics(P.RawStream(table.schema, items),
                                                             by=by),
                                  reference.officer_metrics(table, by=by))
    # the patches did what they claim: a NULL character buffer in every non-empty batch,
    # and nothing but NULL buffers in the empty one
    assert all(bufs[2] is None for rows, _, bufs in seen if rows)
    assert all(b is None for rows, _, bufs in seen if not rows for b in bufs)


# ------------------------------------------------------------------------------------------
# invalid streams
# ------------------------------------------------------------------------------------------

def _used_columns(case: S.Case) -> list[str]:
    """The key columns and the columns that play a role."""
    roles = dict(case.columns or {})
    return list(case.key_names) + list(dict.fromkeys(roles.get(r, r) for r in INPUT_COLUMNS))


def _other_layout(t: pa.DataType, n: int) -> pa.Array:
    """An array of ``n`` rows whose C layout differs from ``t``'s."""
    if pa.types.is_dictionary(t):
        return pa.array(range(n), pa.int64())                 # no dictionary
    if (pa.types.is_string(t) or pa.types.is_large_string(t)
            or pa.types.is_string_view(t)):
        return pa.array(range(n), pa.int32())                 # 2 buffers instead of 3+
    if pa.types.is_integer(t):
        return pa.array([str(i) for i in range(n)]).dictionary_encode()  # a dictionary
    return pa.array([str(i) for i in range(n)], pa.string())  # 3 buffers instead of 2


def _changed(batch: pa.RecordBatch, name: str, how: str) -> pa.RecordBatch:
    i = batch.schema.get_field_index(name)
    if how == "layout":
        return batch.set_column(i, name, _other_layout(batch.schema.field(i).type,
                                                       batch.num_rows))
    if how == "extra column":
        return batch.append_column("surprise", pa.array(range(batch.num_rows)))
    return batch.remove_column(i)


@st.composite
def broken_streams(draw):
    """(case, producer, exception type, message fragment, the used column that is broken
    or None when the whole stream is)."""
    case = draw(S.cases(min_rows=1, max_rows=80, max_chunks=4, key_types=ALL_KEY_TYPES,
                        config=False))
    schema = case.schema
    batches = case.table.to_batches()
    if not batches:
        batches = [_empty_batch(schema)]
    k = draw(st.integers(0, len(batches)))               # where it goes wrong
    nonempty = [i for i, b in enumerate(batches) if b.num_rows]
    used = _used_columns(case)
    kind = draw(st.sampled_from([
        "fail", "fail without message", "no get_last_error", "get_schema fails",
        "generator raises", "schema change", "schema change (generator)", "struct nulls",
        "short child", "missing data buffer", "negative offset", "unsupported used type"]))
    if kind in ("short child", "missing data buffer") and not nonempty:
        kind = "fail"
    if kind == "fail":
        items = batches[:k] + [P.Fail(f"the database went away after {k} batches")]
        return case, P.RawStream(schema, items), ValueError, "went away after", None
    if kind == "fail without message":
        items = batches[:k] + [P.Fail(None, P.EIO)]
        return case, P.RawStream(schema, items), ValueError, "error code 5", None
    if kind == "no get_last_error":
        items = batches[:k] + [P.Fail("unseen", P.EINVAL)]
        return (case, P.RawStream(schema, items, last_error=False), ValueError,
                "error code 22", None)
    if kind == "get_schema fails":
        return (case, P.RawStream(P.Fail("no schema today"), batches), ValueError,
                "no schema today", None)
    if kind == "generator raises":
        def gen():
            yield from batches[:k]
            raise ConnectionResetError("peer hung up mid-stream")
        return (case, P.GeneratorStream(schema, gen), ValueError, "peer hung up mid-stream",
                None)
    if kind == "struct nulls":
        i = draw(st.sampled_from(nonempty)) if nonempty else 0
        items = list(batches)
        items[i] = P.Item(batches[i], P.struct_nulls)
        return case, P.RawStream(schema, items), ValueError, "top-level (struct) nulls", None
    if kind in ("short child", "missing data buffer", "negative offset"):
        pool = nonempty if kind != "negative offset" else list(range(len(batches)))
        i = draw(st.sampled_from(pool))
        name = draw(st.sampled_from(used))
        col = schema.get_field_index(name)
        patch = {"short child": P.shorten_child, "missing data buffer": P.null_data_buffer,
                 "negative offset": P.negative_offset}[kind](col)
        items = list(batches)
        items[i] = P.Item(batches[i], patch)
        fragment = {"short child": "shorter than its record batch",
                    "missing data buffer": "missing data buffer",
                    "negative offset": "negative length or offset"}[kind]
        return case, P.RawStream(schema, items), ValueError, fragment, name
    if kind == "unsupported used type":
        name = draw(st.sampled_from(used))
        i = schema.get_field_index(name)
        bad = draw(st.sampled_from([pa.float16(), pa.list_(pa.int64()), pa.binary(),
                                    pa.struct([("a", pa.int8())]), pa.date32(), pa.null()]))
        table = case.table.set_column(i, name, S._extra_array(bad, case.n))
        return (case, P.RawStream(table.schema, table.to_batches()), TypeError,
                f"column '{name}' has Arrow type", name)
    # a batch whose schema is not the stream's
    how = draw(st.sampled_from(["layout", "layout", "extra column", "missing column"]))
    name = draw(st.sampled_from(used))
    i = draw(st.integers(0, len(batches) - 1))
    items = list(batches)
    items[i] = _changed(batches[i], name, how)
    fragment = ("do not match the schema's type" if how == "layout"
                else "columns but the schema has")
    producer = (P.GeneratorStream(schema, lambda: iter(items)) if "generator" in kind
                else P.RawStream(schema, items))
    return case, producer, ValueError, fragment, name if how == "layout" else None


@settings(max_examples=S.examples(150), suppress_health_check=list(HealthCheck))
@given(broken_streams(), st.booleans())
def test_invalid_streams_raise_clear_errors(broken, portfolio):
    case, producer, exc_type, fragment, column = broken
    fn = "portfolio_metrics" if portfolio else "officer_metrics"
    if portfolio and column in case.key_names:
        # the portfolio does not use the key columns, so a broken key column may go unread
        # (a key column may also play a role, e.g. via columns=)
        result = S.outcome(lambda: S.call(metriccore, case, fn, data=producer))
        assert result[0] == "ok" or (result[1][0] is exc_type and fragment in result[1][1]), result
        return
    with pytest.raises(exc_type) as info:
        S.call(metriccore, case, fn, data=producer)
    assert fragment in str(info.value), str(info.value)


def test_stream_failing_midway_names_the_cause():
    table = pa.table(S.default_snapshot(30))
    batches = S.rechunk(table, [10, 20]).to_batches()

    def gen():
        yield batches[0]
        yield batches[1]
        raise TimeoutError("upstream query timed out")

    with pytest.raises(ValueError, match="the Arrow stream failed: .*upstream query timed out"):
        metriccore.officer_metrics(P.GeneratorStream(table.schema, gen))
    with pytest.raises(ValueError, match="the Arrow stream failed: disk on fire"):
        metriccore.officer_metrics(P.RawStream(table.schema, batches[:2] + [P.Fail("disk on fire")]))


def test_schema_change_between_batches_is_detected():
    # pyarrow's RecordBatchReader.from_batches does not check the batches against its
    # schema; the engine used to read the new layout with the old one (wrong results, or
    # reads past a buffer). Every layout change of a used column is now an error.
    table = pa.table(S.default_snapshot(20))
    first, second = S.rechunk(table, [10]).to_batches()
    for name in ("officer_id", "fimr_tagged", "current_dpd", "principal_outstanding"):
        changed = _changed(second, name, "layout")
        for producer in (P.GeneratorStream(table.schema, lambda c=changed: iter([first, c])),
                         P.RawStream(table.schema, [first, changed])):
            with pytest.raises(ValueError, match=f"column '{name}': malformed Arrow array"):
                metriccore.officer_metrics(producer)
    keyed = table.set_column(0, "officer_id", table.column(0).cast(pa.string()))
    first, second = S.rechunk(keyed, [10]).to_batches()
    dict_second = second.set_column(0, "officer_id", second.column(0).dictionary_encode())
    with pytest.raises(ValueError, match="malformed Arrow array"):
        metriccore.officer_metrics(P.RawStream(keyed.schema, [first, dict_second]))


def test_missing_character_data_is_an_error():
    # a NULL character buffer is only allowed when every string is empty
    n = 12
    table = pa.table(S.default_snapshot(n, key=[f"o{i % 3}" for i in range(n)],
                                        key_type=pa.string()))
    for t in (pa.string(), pa.large_string()):
        t_table = table.set_column(0, "officer_id", table.column(0).cast(t))
        stream = P.RawStream(t_table.schema, [P.Item(b, P.null_buffer(0, 2))
                                              for b in t_table.to_batches()])
        with pytest.raises(ValueError, match="column 'officer_id': missing data buffer"):
            metriccore.officer_metrics(stream)
    # the same in a dictionary's values
    d_table = table.set_column(0, "officer_id", table.column(0).dictionary_encode())

    def patch(arr):
        arr.children[0].contents.dictionary.contents.buffers[2] = None

    with pytest.raises(ValueError, match="missing data buffer in the Arrow dictionary"):
        metriccore.officer_metrics(P.RawStream(d_table.schema, [P.Item(b, patch)
                                                                for b in d_table.to_batches()]))


def test_unused_column_changing_type_is_ignored():
    table = pa.table(S.default_snapshot(20)).append_column("note", pa.array(["x"] * 20))
    first, second = S.rechunk(table, [10]).to_batches()
    changed = second.set_column(second.schema.get_field_index("note"), "note",
                                pa.array([[1]] * 10, pa.list_(pa.int64())))
    got = metriccore.officer_metrics(P.RawStream(table.schema, [first, changed]))
    S.assert_tables_identical(got, reference.officer_metrics(table))


class _Returns:
    def __init__(self, value):
        self.value = value

    def __arrow_c_stream__(self, requested_schema=None):
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


def test_bad_capsules():
    table = pa.table(S.default_snapshot(5))
    with pytest.raises(TypeError, match="arrow_array_stream"):
        metriccore.officer_metrics(_Returns(42))
    with pytest.raises(TypeError, match="arrow_array_stream"):
        metriccore.officer_metrics(_Returns(table.schema.__arrow_c_schema__()))
    with pytest.raises(KeyError):
        metriccore.officer_metrics(_Returns(KeyError("producer bug")))
    with pytest.raises(ValueError, match="already released"):
        metriccore.officer_metrics(P.RawStream(table.schema, [], released=True))
    with pytest.raises(TypeError, match="table-like"):
        metriccore.officer_metrics(P.RawStream(pa.int64(), []))  # not a struct


# ------------------------------------------------------------------------------------------
# issue 10 items 3-5: NULL pointers in the exported structs, corrupt string offsets and views,
# invalid UTF-8 keys. Every case used to crash (segfault, heap corruption) or give a table
# that fails validate(full=True): they run in a fresh interpreter (``_in_subprocess``), so
# that a regression is a failed test, not a dead test run.
# ------------------------------------------------------------------------------------------

import ctypes  # noqa: E402
from helpers import subproc  # noqa: E402

KEYS = [f"{LONG}{i % 3}" for i in range(12)]       # long: string views keep them in buffers


def _keyed(t: pa.DataType, keys: list = KEYS) -> pa.Table:
    """The default snapshot keyed by ``keys`` as type ``t`` (a dictionary: encoded)."""
    table = pa.table(S.default_snapshot(len(keys), key=keys, key_type=pa.string()))
    col = table.column(0).combine_chunks()
    col = col.dictionary_encode().cast(t) if pa.types.is_dictionary(t) else col.cast(t)
    return table.set_column(0, "officer_id", col)


def _two_batches(t: pa.DataType, patch, second_only: bool = True) -> P.RawStream:
    """Two batches of 6 rows (rows 6-11 in the second); ``patch`` applied to the second
    (or to both)."""
    table = _keyed(t)
    first, second = S.rechunk(table, [6]).to_batches()
    return P.RawStream(table.schema, [first if second_only else P.Item(first, patch),
                                      P.Item(second, patch)])


def _set(i: int, value: int):
    """An edit of a copied buffer: element ``offset + i`` (relative to the child's offset)
    set to ``value``; ``value`` may be a function of the child."""
    def edit(words, child):
        words[child.offset + i] = value(child) if callable(value) else value
    return edit


def _view_word(row: int, word: int, value):
    def edit(words, child):
        words[4 * (child.offset + row) + word] = value(child) if callable(value) else value
    return edit


def _buffer_size(child, buf: int = 0) -> int:
    """Size of string_view data buffer ``buf`` (from the sizes buffer, the last one)."""
    sizes = ctypes.cast(child.buffers[child.n_buffers - 1], ctypes.POINTER(ctypes.c_int64))
    return sizes[buf]


def _bad_utf8_table(t: pa.DataType, rows: int = 12, bad: dict | None = None) -> pa.Table:
    """Keys ``o<i % 3>``, except ``bad`` = {row: raw bytes}; built from raw buffers, which
    pyarrow does not validate."""
    keys = [f"o{i % 3}".encode() for i in range(rows)]
    for r, b in (bad or {}).items():
        keys[r] = b
    offsets = [0]
    for k in keys:
        offsets.append(offsets[-1] + len(k))
    arr = pa.Array.from_buffers(pa.large_string(), rows, [
        None, pa.py_buffer(pa.array(offsets, pa.int64()).buffers()[1]),
        pa.py_buffer(b"".join(keys))])
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_encode()
        arr = pa.DictionaryArray.from_arrays(arr.indices.cast(t.index_type),
                                             arr.dictionary.cast(t.value_type))
    else:
        arr = arr.cast(t)
    table = pa.table(S.default_snapshot(rows))
    return table.set_column(0, "officer_id", arr)


VIEW = pa.string_view()
DSTR = pa.dictionary(pa.int32(), pa.string())
DVIEW = pa.dictionary(pa.int8(), pa.string_view())
V = "ValueError"
#: name -> (callable returning the input, exception name, message fragment)
HOSTILE_CASES: dict[str, dict[str, tuple]] = {
    "pointers": {
        "top format": (lambda: _schema_patched(P.null_format()), V,
                       "the Arrow schema has a NULL format"),
        "used column format": (lambda: _schema_patched(P.null_format(0)), V,
                               "column 'officer_id': the Arrow schema has a NULL format"),
        "unused column format": (lambda: _schema_patched(P.null_format(12), note=True), V,
                                 "column 'note': the Arrow schema has a NULL format"),
        "dictionary format": (lambda: _schema_patched(P.null_format(0, True), DSTR), V,
                              "column 'officer_id', dictionary: the Arrow schema has a NULL "
                              "format"),
        "schema child": (lambda: _schema_patched(P.null_schema_child(3)), V,
                         "the Arrow schema has a NULL child 3"),
        "schema children": (lambda: _schema_patched(P.null_schema_children), V,
                            "the Arrow schema has 12 children but a NULL children array"),
        "batch children": (lambda: _two_batches(pa.string(), P.null_children_array), V,
                           "a record batch has 12 columns but a NULL children array"),
        "batch buffers": (lambda: _two_batches(pa.string(), P.null_buffers_array(None)), V,
                          "a record batch has 1 buffers but a NULL buffers array"),
        "column buffers": (lambda: _two_batches(pa.string(), P.null_buffers_array(0)), V,
                           "column 'officer_id': malformed Arrow array: 3 buffers but a NULL "
                           "buffers array"),
        "int column buffers": (lambda: _two_batches(pa.string(), P.null_buffers_array(2)), V,
                               "column 'current_dpd': malformed Arrow array: 2 buffers"),
        "dictionary buffers": (lambda: _two_batches(DSTR, P.null_buffers_array(0, True)), V,
                               "column 'officer_id': malformed Arrow dictionary: 3 buffers but "
                               "a NULL buffers array"),
    },
    "offsets": {
        # rows 6-11 are the second batch: errors name global rows
        "decreasing (length -3)": (
            lambda: _two_batches(pa.string(), P.edit_offsets(0, _set(3, lambda c: 0))), V,
            "column 'officer_id' row 8: corrupt string offsets"),
        "decreasing, large_string": (
            lambda: _two_batches(pa.large_string(),
                                 P.edit_offsets(0, _set(2, lambda c: 1), large=True)), V,
            "column 'officer_id' row 7: corrupt string offsets"),
        "past the data": (
            lambda: _two_batches(pa.string(), P.edit_offsets(0, _set(1, 1 << 30))), V,
            "column 'officer_id' row 6: corrupt string offsets"),
        "negative": (
            lambda: _two_batches(pa.string(), P.edit_offsets(0, _set(0, -100))), V,
            "column 'officer_id' row 6: corrupt string offsets"),
        "dictionary values": (
            lambda: _two_batches(DSTR, P.edit_offsets(0, _set(2, -7), dictionary=True)), V,
            # entry 1 (offsets 1..2) is first used by row 7 (keys cycle 0, 1, 2)
            "column 'officer_id' row 7: corrupt string offsets"),
        "view past its buffer": (
            lambda: _two_batches(VIEW, P.edit_views(0, _view_word(2, 3, lambda c: _buffer_size(c) - 5))),
            V, "column 'officer_id' row 8: string view lies outside its data buffer"),
        "view length far beyond": (
            lambda: _two_batches(VIEW, P.edit_views(0, _view_word(1, 0, 2**31 - 1))), V,
            "column 'officer_id' row 7: string view lies outside its data buffer"),
        "view negative length": (
            lambda: _two_batches(VIEW, P.edit_views(0, _view_word(0, 0, -3))), V,
            "column 'officer_id' row 6: string view lies outside its data buffer"),
        "view negative offset": (
            lambda: _two_batches(VIEW, P.edit_views(0, _view_word(4, 3, -1))), V,
            "column 'officer_id' row 10: string view lies outside its data buffer"),
        "view buffer number": (
            lambda: _two_batches(VIEW, P.edit_views(0, _view_word(5, 2, 7))), V,
            "column 'officer_id' row 11: string view refers to a missing data buffer"),
        "dictionary view": (
            lambda: _two_batches(DVIEW, P.edit_views(0, _view_word(2, 0, 4000), True)), V,
            "column 'officer_id' row 8: string view lies outside its data buffer"),
    },
    "utf8": {
        f"{name} {t}": (lambda t=t, b=b: _bad_utf8_table(t, bad={4: b"o1", 7: b, 10: b}), V,
                        "column 'officer_id' row 7: string is not valid UTF-8")
        for t in (pa.string(), pa.large_string(), VIEW, DSTR, DVIEW)
        for name, b in (("invalid byte", b"\xff"), ("overlong", b"a\xc0\x80"),
                        ("surrogate", b"\xed\xa0\x80"), ("beyond U+10FFFF", b"\xf4\x90\x80\x80"),
                        ("truncated", b"ok \xe2\x82"), ("long invalid", LONG.encode() + b"\x80"))
    },
}


def _schema_patched(patch, t: pa.DataType = pa.string(), note: bool = False) -> P.RawStream:
    table = _keyed(t)
    if note:
        table = table.append_column("note", pa.array(["x"] * table.num_rows))
    return P.RawStream(table.schema, table.to_batches(), schema_patch=patch)


def run_cases(group: str) -> list[tuple[str, str, str]]:
    """Call officer_metrics on every case of ``group``: (case, exception name, message);
    then a valid call, to show the interpreter is still usable."""
    out = []
    for name, (make, _, _) in HOSTILE_CASES[group].items():
        try:
            metriccore.officer_metrics(make(), threads=2)
            out.append((name, "no error", ""))
        except Exception as exc:  # reported to the parent test
            out.append((name, type(exc).__name__, str(exc)))
        P.forget_streams()
    table = pa.table(S.default_snapshot(30))
    S.assert_tables_identical(metriccore.officer_metrics(table), reference.officer_metrics(table))
    return out


def _in_subprocess(group: str) -> None:
    got = {name: (exc, msg) for name, exc, msg in
           subproc.call_in_child("test_reliability_hostile", "run_cases", group)}
    for name, (_, exc, fragment) in HOSTILE_CASES[group].items():
        assert got[name][0] == exc and fragment in got[name][1], (name, got[name], fragment)


def test_null_pointers_in_exported_structs_are_errors():
    # issue 10 item 3: a NULL format (top, used or unused column, dictionary), a NULL child
    # or children array in the schema; a NULL children or buffers array in the batch
    _in_subprocess("pointers")


def test_corrupt_string_offsets_and_views_are_errors():
    # issue 10 item 4: decreasing, negative and too large string offsets (string,
    # large_string, dictionary values), views of negative or huge length, past the end of
    # their buffer, at a negative offset or in a missing buffer; the row named is global
    _in_subprocess("offsets")


def test_invalid_utf8_string_keys_are_errors():
    # issue 10 item 5: the first row of an invalid key is named, in every string key type
    _in_subprocess("utf8")
