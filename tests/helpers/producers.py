"""Hand-made producers of the Arrow C stream interface, for hostile-input tests.

:class:`RawStream` is an ``ArrowArrayStream`` written in Python with ctypes (no dependency
beyond pyarrow): its ``get_next`` exports pyarrow record batches one by one, and can then
*patch* the exported C structs (drop a validity buffer, set ``null_count`` to -1, null out
an empty data buffer, or break the struct on purpose), fail with an error code and message,
or export a batch whose schema is not the stream's. This builds streams that pyarrow
itself would never produce (pyarrow validates what it exports), which is what a consumer
of foreign producers must survive.

:class:`GeneratorStream` is the ordinary Python route: a ``pyarrow.RecordBatchReader``
over a generator (which may raise midway, or yield a batch of another schema).

Ownership: every exported ``ArrowArray`` is released by the consumer. The capsule of a
:class:`RawStream` has no destructor: a destructor written with ctypes would run Python
code, and a capsule may well be destroyed while an exception is propagating (a consumer
that fails drops it then), where running Python code is not allowed. The exported stream
(a few hundred bytes of ctypes memory) is instead kept in a registry that
:func:`forget_streams` clears once no capsule is in use any more (after a test).
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_char_p, c_int, c_int64, c_void_p
from typing import Any
from collections.abc import Callable, Iterable

import pyarrow as pa

EIO = 5
EINVAL = 22


class ArrowSchema(ctypes.Structure):
    pass


ArrowSchema._fields_ = [
    ("format", c_char_p), ("name", c_char_p), ("metadata", c_char_p), ("flags", c_int64),
    ("n_children", c_int64), ("children", POINTER(POINTER(ArrowSchema))),
    ("dictionary", POINTER(ArrowSchema)), ("release", c_void_p), ("private_data", c_void_p),
]


class ArrowArray(ctypes.Structure):
    pass


ArrowArray._fields_ = [
    ("length", c_int64), ("null_count", c_int64), ("offset", c_int64), ("n_buffers", c_int64),
    ("n_children", c_int64), ("buffers", POINTER(c_void_p)),
    ("children", POINTER(POINTER(ArrowArray))), ("dictionary", POINTER(ArrowArray)),
    ("release", c_void_p), ("private_data", c_void_p),
]


class ArrowArrayStream(ctypes.Structure):
    # function pointers as plain addresses, so that a test can leave any of them NULL
    _fields_ = [("get_schema", c_void_p), ("get_next", c_void_p), ("get_last_error", c_void_p),
                ("release", c_void_p), ("private_data", c_void_p)]


_GET_SCHEMA = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)
_GET_NEXT = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)
_GET_LAST_ERROR = ctypes.CFUNCTYPE(c_void_p, c_void_p)
_RELEASE = ctypes.CFUNCTYPE(None, c_void_p)

_PyCapsule_New = ctypes.pythonapi.PyCapsule_New
_PyCapsule_New.restype = ctypes.py_object
_PyCapsule_New.argtypes = [c_void_p, c_char_p, c_void_p]
_STREAM_NAME = b"arrow_array_stream"   # must outlive every capsule: a module constant

#: Exported streams (their capsules hold raw pointers into them); see forget_streams.
_LIVE: dict[int, _Export] = {}


def forget_streams() -> None:
    """Free every stream (and mirror) exported so far. Only when none of their capsules is
    alive."""
    _LIVE.clear()
    forget_mirrors()


class Fail:
    """A ``get_next`` (or ``get_schema``) that returns ``code`` with ``message``."""

    def __init__(self, message: str | None = "producer failed", code: int = EIO):
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        return f"Fail({self.message!r}, {self.code})"


class Item:
    """One ``get_next`` result: ``batch`` exported, then ``patch(ArrowArray)`` applied."""

    def __init__(self, batch: pa.RecordBatch, patch: Callable[[ArrowArray], None] | None = None,
                 what: str = ""):
        self.batch = batch
        self.patch = patch
        self.what = what

    def __repr__(self) -> str:
        return f"Item({self.batch.num_rows} rows{', ' + self.what if self.what else ''})"


class RawStream:
    """An ``__arrow_c_stream__`` producer implemented with ctypes.

    ``schema`` is what ``get_schema`` exports (or a :class:`Fail`, or a
    :class:`MutatedSchema`); ``items`` are what the successive ``get_next`` calls produce:
    :class:`Item`, :class:`Mutated`, ``pa.RecordBatch`` or :class:`Fail`; after the last one
    the stream ends. ``last_error=False`` leaves the ``get_last_error`` callback NULL;
    ``released=True`` hands out an already released stream; ``schema_patch(ArrowSchema)`` is
    applied to the schema ``get_schema`` exports.
    """

    def __init__(self, schema: pa.Schema | Fail | MutatedSchema, items: Iterable[Any], *,
                 last_error: bool = True, null_message: bool = False, released: bool = False,
                 schema_patch: Callable[[ArrowSchema], None] | None = None):
        self.schema = schema
        self.schema_patch = schema_patch
        self.items = list(items)
        self.last_error = last_error
        self.null_message = null_message
        self.released = released
        self.exported = 0            # batches handed to the consumer
        self.get_next_calls = 0
        self.capsules = 0

    def __repr__(self) -> str:
        return f"RawStream({self.schema if isinstance(self.schema, Fail) else 'schema'}, {self.items})"

    def __arrow_c_stream__(self, requested_schema=None):
        return _Export(self).capsule()


class _Export:
    """One exported stream (a producer may be exported several times)."""

    def __init__(self, producer: RawStream):
        self.p = producer
        self.pos = 0
        self.error = ctypes.create_string_buffer(b"")
        self.null_message = producer.null_message
        self.cb = (_GET_SCHEMA(self._get_schema), _GET_NEXT(self._get_next),
                   _GET_LAST_ERROR(self._get_last_error), _RELEASE(self._release))
        self.stream = ArrowArrayStream()
        addr = lambda f: ctypes.cast(f, c_void_p).value  # noqa: E731
        self.stream.get_schema = addr(self.cb[0])
        self.stream.get_next = addr(self.cb[1])
        self.stream.get_last_error = addr(self.cb[2]) if producer.last_error else None
        self.stream.release = None if producer.released else addr(self.cb[3])

    def capsule(self):
        _LIVE[id(self)] = self
        self.p.capsules += 1
        return _PyCapsule_New(ctypes.addressof(self.stream), _STREAM_NAME, None)

    def _fail(self, f: Fail) -> int:
        self.error = ctypes.create_string_buffer((f.message or "").encode())
        self.null_message = self.p.null_message or f.message is None
        return f.code

    def _get_schema(self, stream, out) -> int:
        try:
            if isinstance(self.p.schema, Fail):
                return self._fail(self.p.schema)
            if isinstance(self.p.schema, MutatedSchema):
                self.p.schema.export(out)
                return 0
            self.p.schema._export_to_c(out)
            if self.p.schema_patch is not None:
                self.p.schema_patch(ArrowSchema.from_address(out))
            return 0
        except BaseException as exc:
            return self._fail(Fail(f"get_schema raised {exc!r}", EINVAL))

    def _get_next(self, stream, out) -> int:
        try:
            self.p.get_next_calls += 1
            if self.pos >= len(self.p.items):
                ctypes.memset(out, 0, ctypes.sizeof(ArrowArray))  # end of stream
                return 0
            item = self.p.items[self.pos]
            self.pos += 1
            if isinstance(item, Fail):
                return self._fail(item)
            if isinstance(item, Mutated):
                item.export(out)
                self.p.exported += 1
                return 0
            if isinstance(item, pa.RecordBatch):
                item = Item(item)
            item.batch._export_to_c(out)
            if item.patch is not None:
                item.patch(ArrowArray.from_address(out))
            self.p.exported += 1
            return 0
        except BaseException as exc:
            return self._fail(Fail(f"get_next raised {exc!r}", EINVAL))

    def _get_last_error(self, stream):
        if self.null_message:
            return None
        return ctypes.addressof(self.error)

    def _release(self, stream) -> None:
        # at the address released: a consumer may have moved the struct (pyarrow does)
        ArrowArrayStream.from_address(stream).release = None


# ------------------------------------------------------------------------------------------
# patches of an exported record batch (the struct ArrowArray): odd but valid ...
# ------------------------------------------------------------------------------------------

def _children(arr: ArrowArray) -> list[ArrowArray]:
    return [arr.children[i].contents for i in range(arr.n_children)]


def _flat(types: list[pa.DataType], arr: ArrowArray):
    """(type, child array) of every column, and of every dictionary (as its value type)."""
    for t, child in zip(types, _children(arr)):
        yield t, child
        if pa.types.is_dictionary(t) and child.dictionary:
            yield t.value_type, child.dictionary.contents


def _simple(t: pa.DataType) -> bool:
    """Types whose only child-less layout we fully understand (no nested children)."""
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_decimal(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
            or pa.types.is_string_view(t) or pa.types.is_dictionary(t))


def drop_validity(schema: pa.Schema) -> Callable[[ArrowArray], None]:
    """A NULL validity buffer wherever ``null_count`` is 0 (the spec allows it)."""
    types = list(schema.types)

    def patch(arr: ArrowArray) -> None:
        for t, child in _flat(types, arr):
            if _simple(t) and child.null_count == 0 and child.n_buffers > 0:
                child.buffers[0] = None
    return patch


def unknown_null_count(schema: pa.Schema) -> Callable[[ArrowArray], None]:
    """``null_count = -1`` (unknown) wherever a validity buffer is present: the consumer
    must then read the bitmap."""
    types = list(schema.types)

    def patch(arr: ArrowArray) -> None:
        for t, child in _flat(types, arr):
            if _simple(t) and child.n_buffers > 0 and child.buffers[0]:
                child.null_count = -1
    return patch


def null_empty_buffers(schema: pa.Schema) -> Callable[[ArrowArray], None]:
    """NULL for every buffer of size 0 (allowed since apache/arrow#14805): the character
    data of string arrays whose strings are all empty, and every buffer of zero-length
    arrays, offsets included."""
    types = list(schema.types)

    def patch(arr: ArrowArray) -> None:
        for t, child in _flat(types, arr):
            if not _simple(t) or pa.types.is_dictionary(t):
                continue
            if child.length == 0 and child.null_count == 0:
                for b in range(child.n_buffers):
                    if not (pa.types.is_string_view(t) and b == child.n_buffers - 1):
                        child.buffers[b] = None
            elif (pa.types.is_string(t) or pa.types.is_large_string(t)) and child.buffers[1]:
                width = ctypes.c_int32 if pa.types.is_string(t) else ctypes.c_int64
                offs = ctypes.cast(child.buffers[1], POINTER(width))
                if offs[child.offset] == offs[child.offset + child.length]:
                    child.buffers[2] = None
    return patch


def chain(*patches):
    def patch(arr: ArrowArray) -> None:
        for p in patches:
            p(arr)
    return patch


# ... and invalid (each must give a clear exception)

_KEEP: list[Any] = []   # ctypes memory that patched structs point to


def shorten_child(index: int) -> Callable[[ArrowArray], None]:
    def patch(arr: ArrowArray) -> None:
        child = arr.children[index].contents
        child.length = max(0, arr.length + arr.offset - child.offset - 1)
    return patch


def null_data_buffer(index: int) -> Callable[[ArrowArray], None]:
    def patch(arr: ArrowArray) -> None:
        arr.children[index].contents.buffers[1] = None
    return patch


def null_buffer(index: int, buffer: int) -> Callable[[ArrowArray], None]:
    def patch(arr: ArrowArray) -> None:
        arr.children[index].contents.buffers[buffer] = None
    return patch


def struct_nulls(arr: ArrowArray) -> None:
    bitmap = ctypes.create_string_buffer(b"\x00" * ((arr.length + 7) // 8 + 8))
    _KEEP.append(bitmap)
    arr.buffers[0] = ctypes.addressof(bitmap)
    arr.null_count = arr.length


def negative_offset(index: int) -> Callable[[ArrowArray], None]:
    def patch(arr: ArrowArray) -> None:
        arr.children[index].contents.offset = -1
    return patch


def _restoring(struct: ArrowSchema | ArrowArray, fields: list[str],
               undo: Callable[[], None] | None = None) -> None:
    """Make ``struct``'s release put ``fields`` back (as they are now) and call ``undo``
    before calling the producer's own release, which reads them (pyarrow's release walks
    ``children``). The consumer may move the struct, so the fields are restored at the
    address released. Pointers are saved as plain addresses: a ctypes pointer read from a
    struct shares the struct's memory, so it would follow the patch."""
    offsets = [getattr(type(struct), f).offset for f in fields]
    base = ctypes.addressof(struct)
    saved = [(o, c_void_p.from_address(base + o).value) for o in offsets]
    orig = _RELEASE(struct.release)

    def release(addr):
        for o, v in saved:
            c_void_p.from_address(addr + o).value = v
        if undo is not None:
            undo()
        orig(addr)
    cb = _RELEASE(release)
    _KEEP.append((cb, orig))
    struct.release = ctypes.cast(cb, c_void_p).value


def _schema_at(top: ArrowSchema, column: int | None, dictionary: bool) -> ArrowSchema:
    sc = top if column is None else top.children[column].contents
    return sc.dictionary.contents if dictionary else sc


def null_format(column: int | None = None, dictionary: bool = False):
    """Schema patch: a NULL ``format`` (of the top schema, of column ``column``, or of that
    column's dictionary). Releasing reads no format, so nothing needs restoring."""
    def patch(top: ArrowSchema) -> None:
        _schema_at(top, column, dictionary).format = None
    return patch


def null_schema_child(index: int):
    """Schema patch: a NULL entry ``index`` in the top schema's ``children``."""
    def patch(top: ArrowSchema) -> None:
        slot = c_void_p.from_address(ctypes.cast(top.children, c_void_p).value
                                     + index * ctypes.sizeof(c_void_p))
        saved = slot.value

        def undo() -> None:
            slot.value = saved
        _restoring(top, [], undo)
        slot.value = None
    return patch


def null_schema_children(top: ArrowSchema) -> None:
    """Schema patch: a NULL ``children`` array (``n_children`` unchanged)."""
    _restoring(top, ["children"])
    top.children = None


def null_children_array(arr: ArrowArray) -> None:
    """Patch: the record batch's ``children`` array is NULL (``n_children`` unchanged)."""
    _restoring(arr, ["children"])
    arr.children = None


def null_buffers_array(index: int | None, dictionary: bool = False):
    """Patch: a NULL ``buffers`` array (of the record batch when ``index`` is None, else of
    column ``index`` or of its dictionary). Releasing reads no buffers."""
    def patch(arr: ArrowArray) -> None:
        target = arr if index is None else arr.children[index].contents
        if dictionary:
            target = target.dictionary.contents
        target.buffers = None
    return patch


def edit_buffer(index: int, buffer: int, ctype, per_row: int, extra: int,
                edit: Callable[[Any, ArrowArray], None], dictionary: bool = False):
    """Patch: column ``index``'s (or its dictionary's) buffer ``buffer`` replaced by an
    edited copy of its first ``per_row * (offset + length) + extra`` elements of ``ctype``
    (the producer's buffer itself is left alone): ``edit(copy, child)``."""
    def patch(arr: ArrowArray) -> None:
        child = arr.children[index].contents
        if dictionary:
            child = child.dictionary.contents
        n = per_row * (child.offset + child.length) + extra
        copy = (ctype * max(n, 1))()
        ctypes.memmove(copy, child.buffers[buffer], n * ctypes.sizeof(ctype))
        edit(copy, child)
        _KEEP.append(copy)
        child.buffers[buffer] = ctypes.addressof(copy)
    return patch


def edit_offsets(index: int, edit: Callable[[Any, ArrowArray], None], large: bool = False,
                 dictionary: bool = False):
    """Patch: the string offsets of column ``index`` (or of its dictionary) edited."""
    return edit_buffer(index, 1, c_int64 if large else ctypes.c_int32, 1, 1, edit, dictionary)


def edit_views(index: int, edit: Callable[[Any, ArrowArray], None], dictionary: bool = False):
    """Patch: the 16-byte views of a string_view column edited, as int32 words: view ``i``
    is ``words[4i]`` (length), ``words[4i+1]`` (prefix), ``words[4i+2]`` (buffer index) and
    ``words[4i+3]`` (offset)."""
    return edit_buffer(index, 1, ctypes.c_int32, 4, 0, edit, dictionary)


# ------------------------------------------------------------------------------------------
# the plain Python route
# ------------------------------------------------------------------------------------------

class GeneratorStream:
    """``pyarrow.RecordBatchReader.from_batches(schema, generator())`` behind
    ``__arrow_c_stream__``; ``make`` returns a fresh generator for every export."""

    def __init__(self, schema: pa.Schema, make: Callable[[], Iterable[pa.RecordBatch]]):
        self.schema = schema
        self.make = make

    def __arrow_c_stream__(self, requested_schema=None):
        reader = pa.RecordBatchReader.from_batches(self.schema, self.make())
        return reader.__arrow_c_stream__(requested_schema)


# ------------------------------------------------------------------------------------------
# mirrored structs: every field of every exported struct may be mutated (the structure fuzzer)
# ------------------------------------------------------------------------------------------
#
# ``_export_to_c`` gives structs whose release callbacks walk their own ``children``,
# ``n_children`` and ``dictionary`` (pyarrow's do), so patching those fields in place would
# break the release. A *mirror* is a copy of an exported tree in ctypes memory owned here:
# the same buffers (borrowed from the export, the "keeper", which stays intact), but its own
# buffer-pointer arrays (with spare NULL slots), children arrays, structs and strings. Any
# field of a mirror may be changed; its release callbacks only mark it released (and the
# root's releases the keeper). Everything stays allocated until forget_streams(), which also
# releases the keepers that no consumer released.

_MIRRORS: list[Any] = []     # (keeper, [ctypes objects]) of every mirror; see forget_streams
_SPARE = 4                   # NULL slots after the real buffers / children of a mirror


def _release_fn(addr: int | None) -> Callable[[int], None]:
    return _RELEASE(addr)  # type: ignore[no-any-return]


class _Mirror:
    """A mutable ctypes copy of an exported ArrowArray or ArrowSchema tree."""

    def __init__(self, struct_type: type, export: Callable[[int], None]):
        self.struct_type = struct_type
        self.keeper = struct_type()
        export(ctypes.addressof(self.keeper))
        self.objs: list[Any] = []
        self.released = False
        self.cb_root = _RELEASE(self._release_root)
        self.cb_child = _RELEASE(self._release_child)
        self.nodes: list[Any] = []        # every mirrored struct, root first
        self.root = self._copy(self.keeper, root=True)
        _MIRRORS.append(self)

    def _copy(self, src: Any, root: bool = False) -> Any:
        dst = self.struct_type()
        ctypes.memmove(ctypes.addressof(dst), ctypes.addressof(src), ctypes.sizeof(dst))
        self.objs.append(dst)
        self.nodes.append(dst)
        is_array = self.struct_type is ArrowArray
        if is_array and src.n_buffers > 0 and src.buffers:
            bufs = (c_void_p * (src.n_buffers + _SPARE))()
            for i in range(src.n_buffers):
                bufs[i] = src.buffers[i]
            self.objs.append(bufs)
            dst.buffers = ctypes.cast(bufs, POINTER(c_void_p))
        ptr_t = POINTER(self.struct_type)
        if src.n_children > 0 and src.children:
            kids = (ptr_t * (src.n_children + _SPARE))()
            for i in range(src.n_children):
                kids[i] = ctypes.pointer(self._copy(src.children[i].contents))
            self.objs.append(kids)
            dst.children = ctypes.cast(kids, POINTER(ptr_t))
        if src.dictionary:
            dst.dictionary = ctypes.pointer(self._copy(src.dictionary.contents))
        dst.release = ctypes.cast(self.cb_root if root else self.cb_child, c_void_p).value
        dst.private_data = None
        return dst

    def keep(self, obj: Any) -> Any:
        self.objs.append(obj)
        return obj

    def release_keeper(self) -> None:
        if not self.released and self.keeper.release:
            self.released = True
            _release_fn(self.keeper.release)(ctypes.addressof(self.keeper))

    def _release_root(self, addr: int) -> None:
        # ``addr`` may be a moved copy of the root: mark that one released
        self.struct_type.from_address(addr).release = None
        self.release_keeper()

    def _release_child(self, addr: int) -> None:
        self.struct_type.from_address(addr).release = None


def mirror_array(export: Callable[[int], None]) -> _Mirror:
    """Mirror what ``export(address)`` writes (``batch._export_to_c``)."""
    return _Mirror(ArrowArray, export)


def mirror_schema(export: Callable[[int], None]) -> _Mirror:
    return _Mirror(ArrowSchema, export)


def forget_mirrors() -> None:
    """Release every keeper that no consumer released, and free every mirror."""
    for m in _MIRRORS:
        m.release_keeper()
    _MIRRORS.clear()


class Mutated:
    """One ``get_next`` result whose exported struct is a mirror: ``batch`` exported,
    mirrored, then ``mutate(mirror)`` applied (it may change any field of any node)."""

    def __init__(self, batch: pa.RecordBatch, mutate: Callable[[_Mirror], None] | None,
                 what: str = ""):
        self.batch = batch
        self.mutate = mutate
        self.what = what

    def __repr__(self) -> str:
        return f"Mutated({self.batch.num_rows} rows, {self.what})"

    def export(self, out: int) -> None:
        m = mirror_array(self.batch._export_to_c)
        if self.mutate is not None:
            self.mutate(m)
        ctypes.memmove(out, ctypes.addressof(m.root), ctypes.sizeof(ArrowArray))


class MutatedSchema:
    """A stream schema exported as a mirror, then ``mutate(mirror)`` applied."""

    def __init__(self, schema: pa.Schema, mutate: Callable[[_Mirror], None] | None,
                 what: str = ""):
        self.schema = schema
        self.mutate = mutate
        self.what = what

    def __repr__(self) -> str:
        return f"MutatedSchema({self.what})"

    def mirror(self) -> _Mirror:
        m = mirror_schema(self.schema._export_to_c)
        if self.mutate is not None:
            self.mutate(m)
        return m

    def export(self, out: int) -> None:
        m = self.mirror()
        ctypes.memmove(out, ctypes.addressof(m.root), ctypes.sizeof(ArrowSchema))


_ARRAY_NAME = b"arrow_array"
_SCHEMA_NAME = b"arrow_schema"


class RawArray:
    """An ``__arrow_c_array__`` producer of one record batch: the schema and the array are
    mirrors (mutated by ``schema.mutate`` / ``item.mutate``). The capsules have no
    destructor (see the module docstring): the consumer moves the array out and borrows the
    schema; forget_streams() releases whatever it did not take."""

    def __init__(self, schema: MutatedSchema, item: Mutated):
        self.schema = schema
        self.item = item

    def __repr__(self) -> str:
        return f"RawArray({self.schema}, {self.item})"

    def __arrow_c_array__(self, requested_schema=None):
        sm = self.schema.mirror()
        am = mirror_array(self.item.batch._export_to_c)
        if self.item.mutate is not None:
            self.item.mutate(am)
        return (_PyCapsule_New(ctypes.addressof(sm.root), _SCHEMA_NAME, None),
                _PyCapsule_New(ctypes.addressof(am.root), _ARRAY_NAME, None))
