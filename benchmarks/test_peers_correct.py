"""The benchmark peers compute what metriccore computes (small data, a few seconds).

Run with ``pytest benchmarks/test_peers_correct.py``. A peer whose library is not installed
is skipped.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import metriccore
import peers
from metriccore.synthetic import loan_snapshot

PEER_NAMES = list(peers.PEERS)


def _with_nulls(table: pa.Table, seed: int = 7, share: float = 0.05) -> pa.Table:
    """``table`` with about ``share`` of the values of every column replaced by null (keys
    and ``fimr_tagged`` included), so that null groups and SQL null rules are exercised."""
    rng = np.random.default_rng(seed)
    columns = []
    for name in table.column_names:
        col = table[name].combine_chunks()
        mask = pa.array(rng.random(len(col)) < share)
        columns.append(pc.if_else(mask, pa.scalar(None, col.type), col))
    return pa.table(columns, names=table.column_names)


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    base = loan_snapshot(4_000, n_officers=120, seed=3)
    return {"synthetic": base, "with_nulls": _with_nulls(base), "tiny": loan_snapshot(1_000)}


@pytest.mark.parametrize("by", ["officer_id", ("region", "officer_id"), "branch"],
                         ids=["officer", "region+officer", "branch(dictionary)"])
@pytest.mark.parametrize("data", ["synthetic", "with_nulls", "tiny"])
@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_matches_metriccore(tables: dict[str, pa.Table], name: str, data: str,
                                 by: object) -> None:
    module, fn = peers.PEERS[name]
    pytest.importorskip(module)
    table = tables[data]
    engine = metriccore.officer_metrics(table, by=by, threads=2)
    summary = peers.check_peer(fn(table, by), engine, by)
    assert summary["groups"] == engine.num_rows
    assert summary["max_rel_money"] < 1e-12


def _good_result(tables: dict[str, pa.Table]) -> tuple[pa.Table, pa.Table]:
    table = tables["synthetic"]
    return peers.peer_pyarrow(table), metriccore.officer_metrics(table)


def _replace(t: pa.Table, name: str, values: list[object] | np.ndarray) -> pa.Table:
    i = t.schema.get_field_index(name)
    return t.set_column(i, name, pa.array(values, type=t.schema.field(name).type))


@pytest.mark.parametrize("what", ["missing_group", "count", "money", "ratio", "rdr_null",
                                  "band", "score"])
def test_check_peer_rejects_wrong_results(tables: dict[str, pa.Table], what: str) -> None:
    good, engine = _good_result(tables)
    peers.check_peer(good, engine)
    i = 5
    if what == "missing_group":
        bad = good.slice(1)
    elif what == "count":
        v = good["active_loans"].to_numpy().copy()
        v[i] += 1
        bad = _replace(good, "active_loans", v)
    elif what == "money":
        v = good["par_balance"].to_numpy().copy()
        v[i] += 0.01                      # one cent
        bad = _replace(good, "par_balance", v)
    elif what == "ratio":
        v = good["porr"].to_numpy().copy()
        v[i] *= 1 + 1e-6
        v[i] += 1e-6
        bad = _replace(good, "porr", v)
    elif what == "rdr_null":
        v = good["rdr"].to_pylist()
        v[i] = None
        bad = _replace(good, "rdr", v)
    elif what == "band":
        v = good["fimr_band"].to_pylist()
        v[i] = "red"
        bad = _replace(good, "fimr_band", v)
    else:
        v = good["dqi"].to_numpy().copy()
        v[i] += 1
        bad = _replace(good, "dqi", v)
    with pytest.raises(AssertionError):
        peers.check_peer(bad, engine)


def test_check_peer_catches_a_wrong_definition(tables: dict[str, pa.Table]) -> None:
    """A peer using ``dpd > par_days`` instead of ``>=`` is caught."""
    table = tables["synthetic"]
    engine = metriccore.officer_metrics(table)
    shifted = metriccore.officer_metrics(table, config=metriccore.MetricConfig(par_days=16))
    with pytest.raises(AssertionError, match="par_balance"):
        peers.check_peer(shifted, engine)


def test_floor_reads_every_used_buffer(tables: dict[str, pa.Table]) -> None:
    table = tables["synthetic"]
    views = peers.floor_views(table, "officer_id")
    used = table.select(["officer_id"] + list(peers.INPUT_COLUMNS))
    expected = sum(buf.size for col in used.columns for chunk in col.chunks
                   for buf in chunk.buffers() if buf is not None)
    assert peers.floor_bytes(views) == expected
    assert all(not v.flags.owndata for v in views)     # views, not copies
    assert isinstance(peers.read_once(views), int)
