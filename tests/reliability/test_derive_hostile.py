"""Hostile input to derive_snapshot / officer_metrics_as_of (issue 10 items 3-5).

Foreign producers (``producers.RawStream``) with NULL pointers in their exported structs or
corrupt string offsets and views used to crash the derivation (inside pyarrow's importer
or kernels, or in ``_derive.pyx``), or to give a snapshot that fails
``validate(full=True)``; those cases run in a fresh interpreter (``_in_subprocess``), so
that a regression is a failed test, not a dead test run. Invalid UTF-8 ids and dates of
pyarrow tables used to pass through the engine while the reference raised
``UnicodeDecodeError``: both now raise the same ``ValueError``, naming column and row.
"""

from __future__ import annotations


import pyarrow as pa
import pytest

from helpers import derive_strategies as DS
from helpers import producers as P
from helpers import subproc
import metriccore
from metriccore import reference

AS_OF = "2024-06-30"
V = "ValueError"


def _book(id_type: pa.DataType = pa.string(), string_dates: bool = False):
    """12 loans (string ids ``L<n>``), 3 repayments each, as pyarrow tables."""
    loans, repayments = DS.np_case_tables(12, 3, 1)
    loans = loans.set_column(0, "loan_id", loans.column(0).cast(pa.string()).cast(id_type))
    repayments = repayments.set_column(0, "loan_id",
                                       repayments.column(0).cast(pa.string()).cast(id_type))
    if string_dates:
        i = loans.schema.get_field_index("disbursement_date")
        loans = loans.set_column(i, "disbursement_date", loans.column(i).cast(pa.string()))
    return loans, repayments


def _stream(table: pa.Table, patch=None, schema_patch=None) -> P.RawStream:
    """``table`` in two batches of rows (rows 6-... in the second); ``patch`` applied to
    the second batch only."""
    first, second = table.slice(0, 6).to_batches() + table.slice(6).to_batches()
    return P.RawStream(table.schema, [first, P.Item(second, patch)], schema_patch=schema_patch)


def _set(i: int, value):
    """An edit of copied offsets: element ``offset + i`` of the child set to ``value``."""
    def edit(words, child):
        words[child.offset + i] = value
    return edit


def _view_word(row: int, word: int, value: int):
    def edit(words, child):
        words[4 * (child.offset + row) + word] = value
    return edit


def _raw_strings(t: pa.DataType, values: list[bytes], offsets: list[int] | None = None,
                 data: bytes | None = None) -> pa.Array:
    """A string array of type ``t`` from raw bytes (pyarrow does not validate them); with
    ``offsets`` / ``data``: exactly those buffers (int32 offsets: type string)."""
    if offsets is None:
        offsets = [0]
        for v in values:
            offsets.append(offsets[-1] + len(v))
        data = b"".join(values)
    width = pa.int32() if t == pa.string() else pa.int64()
    base = pa.string() if t == pa.string() else pa.large_string()
    arr = pa.Array.from_buffers(base, len(offsets) - 1, [
        None, pa.py_buffer(pa.array(offsets, width).buffers()[1]), pa.py_buffer(data)])
    if pa.types.is_dictionary(t):
        return pa.DictionaryArray.from_arrays(pa.array(range(len(arr)), t.index_type),
                                              arr.cast(t.value_type))
    return arr if t in (pa.string(), pa.large_string()) else arr.cast(t)


def _with_column(table: pa.Table, name: str, arr: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, arr)


def _ids(table: pa.Table) -> list[bytes]:
    return [v.encode() for v in table.column("loan_id").cast(pa.string()).to_pylist()]


def _with_corrupt_ids(table: pa.Table, offsets_edit) -> pa.Table:
    """``table`` with its loan_id column rebuilt as a string array whose offsets are
    edited by ``offsets_edit``."""
    ids = _ids(table)
    offsets = [0]
    for v in ids:
        offsets.append(offsets[-1] + len(v))
    offsets_edit(offsets)
    arr = _raw_strings(pa.string(), [], offsets=offsets, data=b"".join(ids))
    return _with_column(table, "loan_id", arr)


def _corrupt_loans(offsets_edit) -> tuple[pa.Table, pa.Table]:
    """A pyarrow table (no foreign producer) whose loan_id offsets are edited."""
    loans, repayments = _book()
    return _with_corrupt_ids(loans, offsets_edit), repayments


def _corrupt_repayment_ids(offsets_edit) -> tuple[pa.Table, pa.Table]:
    loans, repayments = _book()
    return loans, _with_corrupt_ids(repayments, offsets_edit)


def _corrupt_dates() -> tuple[pa.Table, pa.Table]:
    loans, repayments = _book(string_dates=True)
    texts = [v.encode() for v in loans.column("disbursement_date").to_pylist()]
    offsets = [0]
    for v in texts:
        offsets.append(offsets[-1] + len(v))
    offsets[5] = offsets[4] - 3                      # row 4 ends before it starts
    arr = _raw_strings(pa.string(), [], offsets=offsets, data=b"".join(texts))
    return _with_column(loans, "disbursement_date", arr), repayments


def _set_item(i: int, value: int):
    def edit(offsets):
        offsets[i] = value
    return edit


def _foreign_loans(patch=None, schema_patch=None, id_type=pa.string(), **kw):
    loans, repayments = _book(id_type, **kw)
    return _stream(loans, patch, schema_patch), repayments


def _foreign_repayments(patch=None, schema_patch=None):
    loans, repayments = _book()
    return loans, _stream(repayments, patch, schema_patch)


DSTR = pa.dictionary(pa.int32(), pa.string())
VIEW = pa.string_view()
BATCH2 = "rows 6 to 11"

#: group -> name -> (callable returning (loans, repayments), exception name, fragment)
CASES: dict[str, dict[str, tuple]] = {
    "pointers": {
        "top format": (lambda: _foreign_loans(schema_patch=P.null_format()), V,
                       "loans: the Arrow schema has a NULL format"),
        "id format": (lambda: _foreign_loans(schema_patch=P.null_format(0)), V,
                      "loans: column 'loan_id': the Arrow schema has a NULL format"),
        "carried column format": (lambda: _foreign_loans(schema_patch=P.null_format(3)), V,
                                  "loans: column 'region': the Arrow schema has a NULL format"),
        "dictionary format": (lambda: _foreign_loans(schema_patch=P.null_format(2, True)), V,
                              "loans: column 'branch', dictionary: the Arrow schema has a "
                              "NULL format"),
        "schema child": (lambda: _foreign_repayments(schema_patch=P.null_schema_child(3)), V,
                         "repayments: the Arrow schema has a NULL child 3"),
        "schema children": (lambda: _foreign_loans(schema_patch=P.null_schema_children), V,
                            "loans: the Arrow schema has 11 children but a NULL children "
                            "array"),
        "batch children": (lambda: _foreign_loans(P.null_children_array), V,
                           "loans: a record batch has 11 columns but a NULL children array"),
        "batch buffers": (lambda: _foreign_repayments(P.null_buffers_array(None)), V,
                          "repayments: a record batch has 1 buffers but a NULL buffers array"),
        "id buffers": (lambda: _foreign_loans(P.null_buffers_array(0)), V,
                       "loans: column 'loan_id': malformed Arrow array: 3 buffers but a NULL "
                       "buffers array"),
        "carried column buffers": (lambda: _foreign_loans(P.null_buffers_array(3)), V,
                                   "loans: column 'region': malformed Arrow array: 3 buffers "
                                   "but a NULL buffers array"),
        "dictionary buffers": (lambda: _foreign_loans(P.null_buffers_array(2, True)), V,
                               "loans: column 'branch', dictionary: malformed Arrow array: 3 "
                               "buffers but a NULL buffers array"),
    },
    "offsets": {
        # foreign producers: validate(full=True) after the checked import
        "decreasing": (lambda: _foreign_loans(P.edit_offsets(0, _set(3, 0))), V,
                       f"loans column 'loan_id' {BATCH2}"),
        "past the data": (lambda: _foreign_loans(P.edit_offsets(0, _set(2, 1 << 30))), V,
                          f"loans column 'loan_id' {BATCH2}"),
        "negative": (lambda: _foreign_loans(P.edit_offsets(0, _set(1, -100))), V,
                     f"loans column 'loan_id' {BATCH2}"),
        "repayment ids": (lambda: _foreign_repayments(P.edit_offsets(0, _set(2, 1 << 30))), V,
                          "repayments column 'loan_id' rows 6 to "),
        "carried column": (lambda: _foreign_loans(P.edit_offsets(3, _set(2, 1 << 30))), V,
                           f"loans column 'region' {BATCH2}"),
        "string date": (lambda: _foreign_loans(P.edit_offsets(8, _set(2, 1 << 30)),
                                               string_dates=True), V,
                        f"loans column 'disbursement_date' {BATCH2}"),
        "dictionary values": (lambda: _foreign_loans(P.edit_offsets(2, _set(1, 1 << 30),
                                                                    dictionary=True)), V,
                              f"loans column 'branch' {BATCH2}"),
        "view past its buffer": (lambda: _foreign_loans(P.edit_views(0, _view_word(2, 0, 4000)),
                                                        id_type=VIEW), V,
                                 f"loans column 'loan_id' {BATCH2}"),
        # pyarrow tables with corrupt offsets: checked by _derive.pyx as it reads them
        "pyarrow table, decreasing": (lambda: _corrupt_loans(_set_item(4, 1)), V,
                                      "loans column 'loan_id' row 3: corrupt string offsets"),
        "pyarrow table, past the data": (lambda: _corrupt_loans(_set_item(6, 1 << 30)), V,
                                         "loans column 'loan_id' row 5: corrupt string "
                                         "offsets"),
        "pyarrow table, repayment id": (lambda: _corrupt_repayment_ids(_set_item(8, -5)), V,
                                        "repayments column 'loan_id' row 7: corrupt string "
                                        "offsets"),
        "pyarrow table, string date": (_corrupt_dates, V,
                                       "loans column 'disbursement_date' row 4: corrupt "
                                       "string offsets"),
    },
}


def run_cases(group: str) -> list[tuple[str, str, str, str]]:
    """derive_snapshot and officer_metrics_as_of on every case of ``group``: (case,
    function, exception name, message); then a valid call, to show the interpreter is
    still usable."""
    out = []
    for name, (make, _, _) in CASES[group].items():
        for fn in (metriccore.derive_snapshot, metriccore.officer_metrics_as_of):
            try:
                result = fn(*make(), AS_OF, threads=2)
                result.validate(full=True)
                out.append((name, fn.__name__, "no error", ""))
            except Exception as exc:  # reported to the parent test
                out.append((name, fn.__name__, type(exc).__name__, str(exc)))
            P.forget_streams()
    loans, repayments = _book()
    assert metriccore.derive_snapshot(loans, repayments, AS_OF).equals(
        reference.derive_snapshot(loans, repayments, AS_OF))
    return out


def _in_subprocess(group: str) -> None:
    got = {(name, fn): (exc, msg) for name, fn, exc, msg in
           subproc.call_in_child("test_derive_hostile", "run_cases", group)}
    assert len(got) == 2 * len(CASES[group])
    for (name, fn), (exc, msg) in got.items():
        _, want, fragment = CASES[group][name]
        assert exc == want and fragment in msg, (name, fn, exc, msg, fragment)


def test_null_pointers_in_foreign_producers_are_errors():
    # issue 10 item 3 on the derivation: a NULL format (top, id, carried column,
    # dictionary), a NULL child or children array in the schema; a NULL children or
    # buffers array in the batch, a column or a dictionary. Each used to segfault in
    # pyarrow's importer.
    _in_subprocess("pointers")


def test_corrupt_string_offsets_are_errors():
    # issue 10 item 4 on the derivation: decreasing, negative and too large offsets and a
    # view past its buffer from a foreign producer (named by table, column and the rows of
    # the batch), and in pyarrow tables (named by table, column and row)
    _in_subprocess("offsets")


# ------------------------------------------------------------------------------------------
# issue 10 item 5: invalid UTF-8. Engine and reference raise the same ValueError.
# ------------------------------------------------------------------------------------------

BAD = [b"\xff", b"a\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok \xe2\x82",
       b"a-long-loan-identifier-\x80"]


def _bad_loan_ids(t: pa.DataType, bad: bytes) -> tuple[pa.Table, pa.Table]:
    loans, repayments = _book()
    ids = _ids(loans)
    ids[4] = bad
    return _with_column(loans, "loan_id", _raw_strings(t, ids)), repayments


def _bad_repayment_id(t: pa.DataType, bad: bytes) -> tuple[pa.Table, pa.Table]:
    loans, repayments = _book()
    ids = _ids(repayments)
    ids[9] = bad
    return loans, _with_column(repayments, "loan_id", _raw_strings(t, ids))


def _bad_date(bad: bytes) -> tuple[pa.Table, pa.Table]:
    loans, repayments = _book(string_dates=True)
    texts = [v.encode() for v in loans.column("disbursement_date").to_pylist()]
    texts[7] = bad
    return _with_column(loans, "disbursement_date", _raw_strings(pa.string(), texts)), repayments


def _both_raise(loans: pa.Table, repayments: pa.Table, fragment: str) -> None:
    for fn in (metriccore.derive_snapshot, reference.derive_snapshot,
               metriccore.officer_metrics_as_of, reference.officer_metrics_as_of):
        with pytest.raises(ValueError) as info:
            fn(loans, repayments, AS_OF)
        assert str(info.value) == fragment, (fn, str(info.value))


@pytest.mark.parametrize("t", [pa.string(), pa.large_string(), VIEW, DSTR])
@pytest.mark.parametrize("bad", BAD)
def test_invalid_utf8_loan_id_is_an_error(t, bad):
    _both_raise(*_bad_loan_ids(t, bad), "loans column 'loan_id' row 4: string is not valid UTF-8")


@pytest.mark.parametrize("t", [pa.string(), VIEW])
def test_invalid_utf8_id_of_an_unknown_loan_is_an_error(t):
    # no loan has this id; the reference reads (decodes) it all the same
    _both_raise(*_bad_repayment_id(t, b"\xffL1"),
                "repayments column 'loan_id' row 9: string is not valid UTF-8")


def test_invalid_utf8_string_date_is_an_error():
    # the error names the date instead of failing to show it (_value_text)
    _both_raise(*_bad_date(b"2024-01-\xff1"),
                "loans column 'disbursement_date' row 7: string is not valid UTF-8")


def test_invalid_utf8_from_a_foreign_producer_is_an_error():
    loans, repayments = _bad_loan_ids(pa.string(), b"\xff")
    stream = _stream(loans)  # row 4: in the first batch
    for fn in (metriccore.derive_snapshot, reference.derive_snapshot):
        with pytest.raises(ValueError, match="loans column 'loan_id' rows 0 to 5 .*UTF8"):
            fn(stream, repayments, AS_OF)
    P.forget_streams()


def test_valid_foreign_producers_give_the_reference_answer():
    # the checked import changes nothing for valid input: odd but valid patches too
    loans, repayments = _book(DSTR)
    want = reference.derive_snapshot(loans, repayments, AS_OF)
    for patch in (None, P.drop_validity(loans.schema), P.unknown_null_count(loans.schema)):
        got = metriccore.derive_snapshot(_stream(loans, patch), P.GeneratorStream(
            repayments.schema, repayments.to_batches), AS_OF)
        assert got.equals(want)
        got.validate(full=True)
    P.forget_streams()
