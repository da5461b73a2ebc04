"""The DuckDB and polars derivations of ``derive_peers.py`` compute exactly what
``metriccore.reference.derive_snapshot`` computes (same ids in the same order, same values
bit for bit, same unknown-repayment count), on small books, so that timing them against
metriccore compares like with like. A peer whose library is missing is skipped.

    python -m pytest benchmarks/test_derive_peers_correct.py
"""

from __future__ import annotations

import datetime
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import derive_peers
from metriccore import reference
from metriccore.synthetic import raw_loan_book

HOLIDAYS = [datetime.date(2024, 1, 1), datetime.date(2024, 4, 1), datetime.date(2024, 5, 27),
            datetime.date(2024, 6, 12), datetime.date(2024, 6, 16)]   # the last one a Sunday


def _bits(values: list) -> list:
    return [struct.pack("<d", v) if isinstance(v, float) else v for v in values]


@pytest.fixture(scope="module")
def books():
    return [raw_loan_book(2_000, 10, n_officers=40, seed=seed, split=split)
            for seed, split in ((1, True), (2, False))]


@pytest.mark.parametrize("peer", sorted(derive_peers.PEERS))
@pytest.mark.parametrize("as_of,period_start,roll_from", [
    (datetime.date(2024, 6, 15), None, None),
    (datetime.date(2024, 3, 3), datetime.date(2024, 2, 15), datetime.date(2023, 12, 1)),
    (datetime.date(2023, 9, 30), None, datetime.date(2023, 9, 30)),
])
def test_peer_equals_reference(books, peer, as_of, period_start, roll_from):
    pytest.importorskip(peer)
    for loans, repayments in books:
        kw = {"period_start": period_start, "roll_from": roll_from, "holidays": HOLIDAYS}
        want = reference.derive_snapshot(loans, repayments, as_of, **kw)
        got = derive_peers.PEERS[peer](loans, repayments, as_of, **kw)
        assert got.schema.metadata == want.schema.metadata
        assert got.num_rows == want.num_rows
        for name in ["loan_id"] + derive_peers.SNAPSHOT:
            got_values = _bits(got.column(name).to_pylist())
            assert got_values == _bits(want.column(name).to_pylist()), name
