"""The structure fuzzer (issue 10): hypothesis mutates the fields of exported ``ArrowSchema``
/ ``ArrowArray`` structs and every case must end in the reference's result or a
``ValueError`` / ``TypeError``.

Run as a module, in a child interpreter (``reliability/test_reliability_fuzz_structs.py``
does), so that a crash kills the child, not the test run: every case is printed (flushed)
before it runs, so the last line printed names the case that crashed.

    PYTHONPATH=tests python -m helpers.fuzz_structs [--examples N] [--seconds S] [--seed K]
        [--survey]

``--survey`` goes on after a failure and prints a summary of the failing mutation classes
(for long local runs); otherwise the first failure stops the run (exit status 1).

Every mutation is one of (see tests/README.md, "Structure fuzzing", for the trusted ones
that are *not* fuzzed, and why):

* ``valid``: the struct is still valid (or describes other valid data, which the case
  computes): the result must be the reference's on that data, bit for bit;
* ``error``: the struct is invalid in a way a consumer can detect without knowing buffer
  sizes: ``ValueError`` or ``TypeError``;
* ``lenient``: invalid, but harmless to the numbers (a field the engine need not read):
  ``ValueError`` / ``TypeError`` or the reference's result.
"""

from __future__ import annotations

import argparse
import re
import ctypes
import os
import sys
import time
import traceback
from ctypes import POINTER, c_int32, c_int64

import pyarrow as pa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from . import producers as P
from . import strategies as S
from . import subproc

import metriccore
import metriccore.reference as reference
from metriccore._schema import INPUT_COLUMNS

KEY_TYPES = S.KEY_TYPES + (
    pa.dictionary(pa.int8(), pa.string_view()), pa.dictionary(pa.int64(), pa.large_string()),
    pa.dictionary(pa.uint32(), pa.int8()), pa.dictionary(pa.int16(), pa.string()),
)
LONG = "a key long enough not to be inlined in a string view: "
INT64_MAX = 2**63 - 1

# formats a used column may be given instead of its own, by layout: ("buffers" = number
# of buffers of the layout; None = not a supported type of metriccore: TypeError)
SUPPORTED = {b"c": 2, b"C": 2, b"s": 2, b"S": 2, b"i": 2, b"I": 2, b"l": 2, b"L": 2,
             b"f": 2, b"g": 2, b"b": 2, b"d:20,2": 2, b"d:38,0": 2, b"u": 3, b"U": 3}
UNSUPPORTED = [b"n", b"e", b"z", b"Z", b"vz", b"tdD", b"tdm", b"tsu:", b"tsn:UTC", b"tDs",
               b"w:8", b"w:16", b"+s", b"+l", b"+L", b"+w:2", b"+m", b"+ud:0,1", b"d:10,2,256",
               b"d:9,2,32", b"d:18,2,64"]
GARBAGE = [b"", b"+", b"d", b"d:", b"d:10", b"d:x,y", b"d:10,2,", b"t", b"ts", b"w:",
           b"\xff", b"\xff\xfe\xfd", b"l\xff", b"ll", b"u\x01", b"?" * 300, b"+s\xff",
           b"d:99999999999999999999,2"]


def _case_rows(case: S.Case, batches: list[pa.RecordBatch]) -> pa.Table:
    return pa.Table.from_batches(batches, schema=case.schema)


def _used(case: S.Case, fn: str) -> list[str]:
    """The columns ``fn`` reads: the keys (not for the portfolio) and the role columns."""
    roles = dict(case.columns or {})
    keys = [] if fn == "portfolio_metrics" else list(case.key_names)
    return list(dict.fromkeys(keys + [roles.get(r, r) for r in INPUT_COLUMNS]))


def _buffer_count(t: pa.DataType) -> int:
    if pa.types.is_dictionary(t):
        return 2
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return 3
    return 2


def _copy_buffer(m: P._Mirror, addr: int, nbytes: int) -> int:
    buf = m.keep(ctypes.create_string_buffer(max(nbytes, 1) + 16))
    if nbytes and addr:
        ctypes.memmove(buf, addr, nbytes)
    return ctypes.addressof(buf)


class Mut:
    """One mutation: ``side`` "array" (batch ``k``) or "schema"; ``apply(mirror)``;
    ``expect`` "valid" / "error" / "lenient" and the table the reference is run on."""

    def __init__(self, what: str, side: str, apply, expect: str, table: pa.Table, k: int = 0):
        self.what, self.side, self.apply, self.expect, self.table, self.k = (
            what, side, apply, expect, table, k)

    def __repr__(self) -> str:
        return f"{self.side}[{self.k}] {self.what} -> {self.expect}"

    @property
    def cls(self) -> str:
        """The mutation without its column, type and numbers (a survey's class)."""
        where = self.what.split(" ", 1)[0]
        kind = self.what.split(": ", 1)[-1] if where != "root" else self.what[len("root: "):]
        if ": " in kind and where != "root":
            kind = kind.split(": ")[-1]
        return f"{self.side} {where} " + re.sub(r"-?\d+", "N", kind)


def _node(root, path):
    """The struct at ``path`` ("root", ("col", i) or ("dict", i)) of a mirror's root."""
    if path == "root":
        return root
    col = root.children[path[1]].contents
    return col if path[0] == "col" else col.dictionary.contents


def _target(draw, schema: pa.Schema, used: list[str]) -> tuple[int, str, pa.DataType, bool,
                                                                str, object]:
    """The struct a mutation hits: a column (its position, name, type, whether the call
    uses it), and where in it: the root struct, the column, or its dictionary; with the
    path ``_node`` follows to it."""
    ci = draw(st.integers(0, len(schema.names) - 1))
    name = schema.names[ci]
    t = schema.field(ci).type
    where = draw(st.sampled_from(["root", "col", "col", "col", "dict"]))
    if where == "dict" and not pa.types.is_dictionary(t):
        where = "col"
    path = "root" if where == "root" else (where, ci)
    return ci, name, t, name in used, where, path


def _set(path, **fields):
    def apply(m: P._Mirror) -> None:
        node = _node(m.root, path)
        for f, v in fields.items():
            setattr(node, f, v)
    return apply


def _set_entry(path, field: str, index: int, value):
    def apply(m: P._Mirror) -> None:
        getattr(_node(m.root, path), field)[index] = value
    return apply


@st.composite
def array_mutations(draw, case: S.Case, batches: list[pa.RecordBatch], fn: str) -> Mut:
    schema = case.schema
    table = _case_rows(case, batches)
    k = draw(st.integers(0, len(batches) - 1))
    batch = batches[k]
    L = batch.num_rows
    used, names = _used(case, fn), schema.names
    ci, name, t, is_used, where, path = _target(draw, schema, used)
    col = batch.column(ci)
    arr = col.dictionary if where == "dict" else col
    bad = "error" if is_used or where == "root" else "lenient"
    label = f"{where} {name!r}:{t}" if where != "root" else "root"

    def mut(what, apply, expect, tbl=table):
        return Mut(f"{label}: {what}", "array", apply, expect, tbl, k)

    def sliced(lo, hi):
        bs = list(batches)
        bs[k] = batch.slice(lo, hi - lo)
        return _case_rows(case, bs)

    kinds = ["buffers NULL", "n_buffers", "n_children", "length", "offset", "null_count",
             "buffer NULL", "dictionary"]
    if where == "root":
        kinds += ["children NULL", "child entry NULL", "length", "offset", "offset overflow"]
    if where != "root" and is_used:
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            kinds += ["string offsets", "string offsets", "utf8"]
        if pa.types.is_string_view(arr.type):
            kinds += ["view", "view", "view", "utf8"]
        kinds += ["offset overflow"]
    kind = draw(st.sampled_from(kinds))

    if kind == "buffers NULL":
        return mut("buffers = NULL", _set(path, buffers=None),
                   "lenient" if where == "root" else bad)
    if kind == "children NULL":
        return mut("children = NULL", _set(path, children=None), "error")
    if kind == "child entry NULL":
        i = draw(st.integers(0, len(names) - 1))
        return mut(f"children[{i}] = NULL", _set_entry(path, "children", i, None),
                   "error" if names[i] in used else "lenient")
    if kind == "n_buffers":
        real = 1 if where == "root" else (3 if pa.types.is_string(arr.type)
                                          or pa.types.is_large_string(arr.type) else 2)
        if where != "root" and pa.types.is_string_view(arr.type):
            n = draw(st.sampled_from([-1, 0, 1, 2]))   # more buffers: trusted (see README)
            return mut(f"n_buffers = {n}", _set(path, n_buffers=n), bad)
        if where != "root" and not pa.types.is_primitive(arr.type) and not (
                pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                or pa.types.is_dictionary(arr.type) or pa.types.is_decimal(arr.type)):
            real = -99  # nested types in unused columns: any change
        n = draw(st.sampled_from([-1, 0, 1, 2, 3, 4, 5, 2**40, -(2**62)]).filter(
            lambda v: v != real))
        return mut(f"n_buffers = {n}", _set(path, n_buffers=n),
                   "lenient" if where == "root" else bad)
    if kind == "n_children":
        if where == "root":
            n = draw(st.sampled_from([len(names) - 1, len(names) + 1, len(names) + 4, -1, 0,
                                      2**40]).filter(lambda v: v != len(names)))
            return mut(f"n_children = {n}", _set(path, n_children=n), "error")
        if arr.type.num_fields:
            n = draw(st.sampled_from([-1, 0, arr.type.num_fields + 1]))
            return mut(f"n_children = {n}", _set(path, n_children=n), bad)
        n = draw(st.sampled_from([1, 2, -1, 2**40]))
        return mut(f"n_children = {n}", _set(path, n_children=n), bad)
    if kind == "length":
        if where == "root":
            if L and draw(st.booleans()):
                n = draw(st.integers(0, L - 1))
                return mut(f"length = {n} (of {L})", _set(path, length=n), "valid", sliced(0, n))
            n = draw(st.sampled_from([-1, -(2**62), L + 1, L + 3]))
            return mut(f"length = {n} (of {L})", _set(path, length=n), "error")
        if where == "dict":
            if len(arr) == 0:
                return mut("length = -1", _set(path, length=-1), bad)
            n = draw(st.sampled_from([-1, 0, len(arr) - 1]))
            idx = [i for i, v in zip(col.indices.to_pylist(), col.is_valid().to_pylist())
                   if v and i is not None]
            exp = bad if n < 0 or (idx and max(idx) >= n) else "valid"
            return mut(f"length = {n} (of {len(arr)})", _set(path, length=n), exp)
        if L == 0:
            return mut("length = -1", _set(path, length=-1), bad)
        n = draw(st.sampled_from([-1, 0, L - 1, L // 2]))
        return mut(f"length = {n} (of {L})", _set(path, length=n), bad)
    if kind == "offset":
        if where == "root":
            if L and draw(st.booleans()):
                d = draw(st.integers(1, L))
                def apply(m, d=d):
                    m.root.offset += d
                    m.root.length -= d
                return mut(f"offset += {d}, length -= {d}", apply, "valid", sliced(d, L))
            d = draw(st.sampled_from([-1, 1, 2**40]))
            if L == 0 and d > 0:
                return mut(f"offset = {d}", _set(path, offset=d), "error")
            return mut(f"offset = {d}", _set(path, offset=d), "error")
        if where == "dict":
            return mut("offset = -1", _set(path, offset=-1), bad)
        if L and draw(st.booleans()):
            d = draw(st.integers(1, L))
            def apply(m, d=d):
                node = _node(m.root, path)
                node.offset += d
                node.length -= d
            return mut(f"offset += {d}, length -= {d}", apply, bad)
        return mut("offset = -1", _set(path, offset=-1), bad)
    if kind == "offset overflow":
        # offset + length beyond int64: no buffer can be that long
        if where == "root":
            n = draw(st.sampled_from([1, 5]))
            return mut(f"offset = INT64_MAX - 1, length = {n}",
                       _set(path, offset=INT64_MAX - 1, length=n), "error")
        n = max(L, 2)
        return mut(f"offset = INT64_MAX - 1, length = {n}",
                   _set(path, offset=INT64_MAX - 1, length=n), bad)
    if kind == "null_count":
        has_nulls = arr.null_count > 0
        choices = [-1, -7, 3, 2**40] + ([] if has_nulls else [0])
        n = draw(st.sampled_from(choices))

        def apply(m, n=n):
            node = _node(m.root, path)
            node.null_count = n
            return None
        # a NULL validity buffer with a non-zero null count: pyarrow's importer rejects it;
        # with a bitmap any count is read through the bitmap (or the bitmap is ignored
        # when it says 0 and there are none)
        if where == "root":
            return mut(f"null_count = {n}", apply, "lenient")
        if n > 0 or n < -1:
            return mut(f"null_count = {n}", apply, "lenient")
        return mut(f"null_count = {n}", apply, "valid" if is_used else "lenient")
    if kind == "buffer NULL":
        if where == "root":
            return mut("buffers[0] = NULL", _set_entry(path, "buffers", 0, None), "valid")
        nb = _buffer_count(arr.type) if where != "root" else 1
        if pa.types.is_string_view(arr.type):
            nb = 2 + len(arr.buffers()) - 2 + 1  # validity, views, data..., sizes
        j = draw(st.integers(0, max(nb - 1, 0)))
        if j == 0:
            # with nulls: invalid (pyarrow's importer rejects it); a result must then still
            # be the reference's (it is not when the values under the nulls are read)
            exp = "lenient" if arr.null_count > 0 or not is_used else "valid"
            return mut("buffers[0] (validity) = NULL", _set_entry(path, "buffers", 0, None),
                       exp)
        exp = bad if len(arr) else "lenient"
        if (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) and j == 2:
            exp = bad if any(v for v in arr.to_pylist() if v) else "lenient"
        if pa.types.is_string_view(arr.type) and j >= 2:
            exp = "lenient"
        return mut(f"buffers[{j}] = NULL", _set_entry(path, "buffers", j, None), exp)
    if kind == "dictionary":
        if where == "dict" or pa.types.is_dictionary(arr.type):
            p = path if where == "col" else ("col", ci)
            return mut("dictionary = NULL", _set(p, dictionary=None), bad)

        def apply(m):
            extra = P.mirror_array(pa.array(["x", "y"])._export_to_c)
            m.keep(extra)
            _node(m.root, path).dictionary = ctypes.pointer(extra.root)
        return mut("dictionary added", apply, "lenient" if where == "root" else bad)
    if kind == "string offsets":
        return _string_offsets(draw, mut, path, arr, col, where, batch)
    if kind == "view":
        return _view(draw, mut, path, arr, col, where)
    if kind == "utf8":
        return _utf8(draw, mut, path, arr, col, where)
    raise AssertionError(kind)


def _valid_physical(draw, arr: pa.Array, col: pa.Array, where: str) -> int | None:
    """A row of ``arr`` that the batch reads (a valid row; for a dictionary, an entry that
    a valid row references), as an index relative to ``arr``'s start; None if there is none."""
    if where == "dict":
        rows = sorted({i for i, v in zip(col.indices.to_pylist(), col.is_valid().to_pylist())
                       if v and i is not None and arr[i].is_valid})
    else:
        rows = [i for i, v in enumerate(arr.is_valid().to_pylist()) if v]
    return draw(st.sampled_from(rows)) if rows else None


def _string_offsets(draw, mut, path, arr, col, where, batch):
    r = _valid_physical(draw, arr, col, where)
    if r is None:
        return mut("no valid row: null_count = -1", _set(path, null_count=-1), "valid")
    width = c_int32 if pa.types.is_string(arr.type) else c_int64
    w = ctypes.sizeof(width)
    how = draw(st.sampled_from(["end before start", "start negative", "start after end"]))

    def apply(m):
        node = _node(m.root, path)
        n = node.offset + node.length + 1
        new = _copy_buffer(m, node.buffers[1], n * w)
        offs = ctypes.cast(new, POINTER(width))
        p = node.offset + r
        if how == "end before start":
            offs[p + 1] = offs[p] - 1
        elif how == "start negative":
            offs[p] = -5
        else:
            offs[p] = offs[p + 1] + 1
        node.buffers[1] = new
    return mut(f"offsets of row {r}: {how}", apply, "error")


def _view(draw, mut, path, arr, col, where):
    r = _valid_physical(draw, arr, col, where)
    if r is None:
        return mut("no valid row: null_count = -1", _set(path, null_count=-1), "valid")
    long_ = len(arr[r].as_py().encode()) > 12
    how = draw(st.sampled_from(["negative length"] + (
        ["buffer index = n", "buffer index = -1", "buffer index huge", "offset past size",
         "offset negative", "length past size", "size shrunk"] if long_ else [])))

    def apply(m):
        node = _node(m.root, path)
        nv = node.offset + node.length
        new = _copy_buffer(m, node.buffers[1], nv * 16)
        view = ctypes.cast(new + 16 * (node.offset + r), POINTER(c_int32))
        nvb = node.n_buffers - 3
        sizes = ctypes.cast(node.buffers[node.n_buffers - 1], POINTER(c_int64))
        if how == "negative length":
            view[0] = -1
        elif how == "buffer index = n":
            view[2] = nvb
        elif how == "buffer index = -1":
            view[2] = -1
        elif how == "buffer index huge":
            view[2] = 2**31 - 1
        elif how == "offset past size":
            view[3] = sizes[view[2]] - view[0] + 1
        elif how == "offset negative":
            view[3] = -1
        elif how == "length past size":
            view[0] = sizes[view[2]] - view[3] + 1
        elif how == "size shrunk":
            s = _copy_buffer(m, node.buffers[node.n_buffers - 1], nvb * 8)
            ctypes.cast(s, POINTER(c_int64))[view[2]] = view[3] + view[0] - 1
            node.buffers[node.n_buffers - 1] = s
        node.buffers[1] = new
    return mut(f"view of row {r}: {how}", apply, "error")


def _utf8(draw, mut, path, arr, col, where):
    r = _valid_physical(draw, arr, col, where)
    if r is None or not arr[r].as_py():
        return mut("no non-empty valid row: null_count = -1", _set(path, null_count=-1),
                   "valid")
    nbytes = len(arr[r].as_py().encode())
    at = draw(st.integers(0, nbytes - 1))
    byte = draw(st.sampled_from([0xFF, 0xC0, 0x80, 0xED]))

    def apply(m):
        node = _node(m.root, path)
        p = node.offset + r
        if pa.types.is_string_view(arr.type):
            nv = node.offset + node.length
            views = _copy_buffer(m, node.buffers[1], nv * 16)
            v = ctypes.cast(views + 16 * p, POINTER(c_int32))
            if v[0] <= 12:
                ctypes.cast(views + 16 * p + 4 + at, POINTER(ctypes.c_uint8))[0] = byte
            else:
                bi, off = v[2], v[3]
                size = ctypes.cast(node.buffers[node.n_buffers - 1], POINTER(c_int64))[bi]
                data = _copy_buffer(m, node.buffers[2 + bi], size)
                ctypes.cast(data + off + at, POINTER(ctypes.c_uint8))[0] = byte
                if at < 4:   # the prefix repeats the first bytes
                    ctypes.cast(views + 16 * p + 4 + at, POINTER(ctypes.c_uint8))[0] = byte
                node.buffers[2 + bi] = data
            node.buffers[1] = views
            return
        width = c_int32 if pa.types.is_string(arr.type) else c_int64
        offs = ctypes.cast(node.buffers[1], POINTER(width))
        end = offs[node.offset + node.length]
        data = _copy_buffer(m, node.buffers[2], end)
        ctypes.cast(data + offs[p] + at, POINTER(ctypes.c_uint8))[0] = byte
        node.buffers[2] = data
    return mut(f"row {r}: byte {at} = {byte:#x} (invalid UTF-8)", apply, "error")


@st.composite
def schema_mutations(draw, case: S.Case, batches: list[pa.RecordBatch], fn: str) -> Mut:
    schema = case.schema
    table = _case_rows(case, batches)
    used, names = _used(case, fn), schema.names
    ci, name, t, is_used, where, path = _target(draw, schema, used)
    bad = "error" if is_used or where == "root" else "lenient"
    label = f"{where} {name!r}:{t}" if where != "root" else "root"

    def mut(what, apply, expect):
        return Mut(f"{label}: {what}", "schema", apply, expect, table)

    kind = draw(st.sampled_from(["format NULL", "format", "format", "format", "name",
                                 "metadata", "flags", "n_children", "children",
                                 "dictionary"]))
    if kind == "format NULL":
        return mut("format = NULL", _set(path, format=None), bad)
    if kind == "format":
        real = t.value_type if where == "dict" else (t.index_type if pa.types.is_dictionary(t)
                                                    else t)
        fmt = draw(st.sampled_from(list(SUPPORTED) + UNSUPPORTED + GARBAGE))
        if where == "root":   # "+s" is the root's own format: no change
            return mut(f"format = {fmt!r}", _set(path, format=fmt),
                       "valid" if fmt == b"+s" else "error")
        if fmt in SUPPORTED:
            real_bufs = _buffer_count(real)
            if pa.types.is_string_view(real) or SUPPORTED[fmt] == real_bufs:
                # same layout (or string_view data under a string format: 3 buffers in
                # both): another type of the same layout is trusted; keep the format
                fmt = None
        if fmt is None:
            return mut("flags = 2 (nullable; no change)", _set(path, flags=2), "valid")
        if where == "col" and pa.types.is_dictionary(t) and fmt not in SUPPORTED:
            exp = bad   # a dictionary on a non-integer index
        else:
            exp = bad
        return mut(f"format = {fmt!r}", _set(path, format=fmt), exp)
    if kind == "name":
        new = draw(st.sampled_from([None, b"\xff\xfe", b""]))
        if where == "root" or where == "dict":
            return mut(f"name = {new!r}", _set(path, name=new), "valid")
        exp = ("error" if is_used else "valid")
        if new == b"" and name == "":
            exp = "valid"
        return mut(f"name = {new!r}", _set(path, name=new), exp)
    if kind == "metadata":
        new = draw(st.sampled_from([None, b"\xff\xff\xff\xff", b"\x01\x00\x00\x00"]))
        return mut(f"metadata = {new!r}", _set(path, metadata=new),
                   "valid" if new is None else "lenient")
    if kind == "flags":
        f = draw(st.sampled_from([0, 1, 2, 3, 4, 7, 8, -1, 2**62]))
        return mut(f"flags = {f}", _set(path, flags=f), "valid" if 0 <= f <= 7 else "lenient")
    if kind == "n_children":
        if where == "root":
            n = draw(st.sampled_from([len(names) - 1, len(names) + 1, -1, 0]).filter(
                lambda v: v != len(names)))
            return mut(f"n_children = {n}", _set(path, n_children=n), "error")
        n = draw(st.sampled_from([1, 2, -1]))
        return mut(f"n_children = {n} (children NULL)", _set(path, n_children=n), "lenient")
    if kind == "children":
        if where == "root":
            if draw(st.booleans()):
                return mut("children = NULL", _set(path, children=None), "error")
            i = draw(st.integers(0, len(names) - 1))
            return mut(f"children[{i}] = NULL", _set_entry(path, "children", i, None), "error")
        if t.num_fields and where == "col":
            return mut("children = NULL", _set(path, children=None), "lenient")
        return mut("children = NULL (n_children 0)", _set(path, children=None), "valid")
    if kind == "dictionary":
        if pa.types.is_dictionary(t) and where != "root":
            p = ("col", ci)
            return mut("dictionary = NULL", _set(p, dictionary=None), bad)

        def apply(m, vt=draw(st.sampled_from([pa.string(), pa.int64(), pa.float64()]))):
            extra = P.mirror_schema(vt._export_to_c)
            m.keep(extra)
            _node(m.root, path).dictionary = ctypes.pointer(extra.root)
        return mut("dictionary added", apply, bad)
    raise AssertionError(kind)


@st.composite
def fuzz_cases(draw):
    case = draw(S.cases(min_rows=0, max_rows=24, max_chunks=3, key_types=KEY_TYPES,
                        config=False))
    if draw(st.booleans()):
        long_keys = {}
        for spec in case.specs:
            vt = spec.type.value_type if pa.types.is_dictionary(spec.type) else spec.type
            if spec.kind == "key" and not pa.types.is_integer(vt):
                long_keys[spec.name] = [None if v is None else LONG + v
                                        for v in case.values[spec.name]]
        case = case.with_values(**long_keys)
    route = draw(st.sampled_from(["stream", "stream", "array"]))
    batches = case.table.to_batches()
    if route == "array":   # one record batch
        try:
            batches = [pa.RecordBatch.from_arrays([c.combine_chunks() for c in case.table.columns],
                                                  schema=case.schema)]
        except pa.ArrowInvalid:   # dictionaries with nulls cannot be unified yet
            route = "stream"
    if not batches:
        batches = [pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in case.schema],
                                              schema=case.schema)]
    fn = draw(st.sampled_from(["officer_metrics", "officer_metrics", "portfolio_metrics"]))
    side = draw(st.sampled_from(["array", "array", "schema"]))
    m = draw((array_mutations if side == "array" else schema_mutations)(case, batches, fn))
    return case, route, batches, m, fn


def producer(route: str, case: S.Case, batches: list[pa.RecordBatch], m: Mut):
    sm = P.MutatedSchema(case.schema, m.apply if m.side == "schema" else None, m.what)
    items = [P.Mutated(b, m.apply if (m.side == "array" and i == m.k) else None, m.what)
             for i, b in enumerate(batches)]
    if route == "array":
        return P.RawArray(sm, items[0])
    return P.RawStream(sm, items)


def check(case, route, batches, m, fn) -> str | None:
    """Run one case; returns None if it behaved, else what went wrong."""
    want = S.outcome(lambda: S.call(reference, case, fn, data=m.table))
    assert want[0] == "ok", want
    try:
        got = S.call(metriccore, case, fn, data=producer(route, case, batches, m))
    except (ValueError, TypeError) as exc:
        if m.expect in ("error", "lenient"):
            return None
        return f"raised {type(exc).__name__}: {exc} (expected the reference's result)"
    except BaseException as exc:
        return (f"raised {type(exc).__name__}: {exc} (only ValueError / TypeError allowed)\n"
                + traceback.format_exc())
    finally:
        P.forget_streams()
    if m.expect == "error":
        return "returned a result (expected ValueError / TypeError)"
    try:
        if fn == "portfolio_metrics":
            S.assert_values_identical(got, want[1])
        else:
            S.assert_tables_identical(got, want[1])
    except AssertionError as exc:
        return f"result differs from the reference: {str(exc)[:500]}"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--survey", action="store_true")
    ap.add_argument("--skip", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.survey and not args.child:
        return survey(args)
    deadline = time.monotonic() + args.seconds
    avoid = set(filter(None, os.environ.get("FUZZ_STRUCTS_AVOID", "").split("\n")))
    count = {"run": 0, "failed": 0}
    classes: dict[str, list[str]] = {}

    @settings(max_examples=args.examples, deadline=None, database=None,
              derandomize=False, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(fuzz_cases())
    def run(c):
        case, route, batches, m, fn = c
        if time.monotonic() > deadline or count["run"] >= args.examples:
            return
        count["run"] += 1
        if count["run"] <= args.skip or m.cls in avoid:
            return
        print(f"case {count['run']}: {route} {fn} {m!r}  [{m.cls}]", flush=True)
        problem = check(case, route, batches, m, fn)
        if problem is None:
            return
        count["failed"] += 1
        print(f"FAIL: {problem}\n{case!r}", flush=True)
        if not args.survey:
            raise AssertionError(problem)
        key = f"{m.cls} -> {problem[:70]}"
        classes.setdefault(key, []).append(f"case {count['run']}")

    # hypothesis may end a run early (it judges the space explored); go on with the next
    # fixed seed until the examples or the time are used up (deterministic either way)
    import hypothesis
    status, seed, stalls = 0, args.seed if args.seed is not None else 0, 0
    while count["run"] < args.examples and time.monotonic() < deadline:
        before = count["run"]
        try:
            hypothesis.seed(seed)(run)()
        except AssertionError:
            traceback.print_exc()
            status = 1
            break
        seed += 1
        stalls = stalls + 1 if count["run"] == before else 0
        if stalls >= 3:
            break
    print(f"fuzz_structs: {count['run']} cases, {count['failed']} failed", flush=True)
    for key, where in sorted(classes.items()):
        print(f"CLASS {key}: {len(where)} ({', '.join(where[:3])})", flush=True)
    return 1 if count["failed"] else status


def survey(args) -> int:
    """Run the cases in child interpreters, resuming after the case that crashed one
    (generation is deterministic for a given seed), and sum up the failure classes."""
    import re
    import subprocess
    crashes: list[str] = []
    avoid: list[str] = []
    skip, total_failed, summary = 0, 0, []
    deadline = time.monotonic() + args.seconds
    while True:
        left = max(1.0, deadline - time.monotonic())
        cmd = [sys.executable, "-m", "helpers.fuzz_structs", "--child", "--survey",
               "--examples", str(args.examples), "--seconds", str(left), "--skip", str(skip)]
        if args.seed is not None:
            cmd += ["--seed", str(args.seed)]
        env = subproc.env(FUZZ_STRUCTS_AVOID="\n".join(avoid))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        sys.stdout.write(proc.stdout)
        if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
            sys.stdout.write(proc.stderr[-3000:])
        cases = re.findall(r"^case (\d+): (.*)  \[(.*)\]$", proc.stdout, re.M)
        finished = "\nfuzz_structs: " in "\n" + proc.stdout   # ASan exits with status 1
        if finished and proc.returncode in (0, 1) and "Sanitizer" not in proc.stderr:
            summary = [line for line in proc.stdout.splitlines()
                       if line.startswith(("CLASS", "fuzz_structs:"))]
            break
        last = cases[-1] if cases else ("?", "before the first case", "")
        avoid.append(last[2])
        report = [line for line in proc.stderr.splitlines()
                  if "ERROR: AddressSanitizer" in line or "runtime error:" in line]
        crashes.append(f"CRASH (exit status {proc.returncode}) at case {last[0]}: {last[1]}"
                       f"\n    {report[0] if report else ''}")
        print(crashes[-1], flush=True)
        if not cases:
            break
        skip = int(last[0])
    for line in crashes + summary:
        print(line)
    total_failed = len(crashes)
    return 1 if total_failed or any(line.startswith("CLASS") for line in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
