"""The engine's two accumulation paths and the fold between them.

Each worker adds into plain int64 "hot" sums while a running bound on their magnitude
(rows x largest |value| per chunk) stays below 2**62, folds them into exact (sum, carry)
pairs when the bound would pass it, and sends chunks whose own bound is too large straight
to the exact pairs. These tables are built so that every path is taken, in several orders,
and the results must equal the pure-Python reference bit for bit.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from helpers import strategies as S

CHUNK = 4096
MONEY = ("principal_outstanding", "amount_due_7d", "interest_collected", "fees_collected",
         "fees_due", "outstanding_balance")


def _table(money: np.ndarray, days: np.ndarray, groups: int, seed: int) -> pa.Table:
    """A snapshot whose money columns are ``money`` (int64 currency units, so exact) and
    whose day columns are ``days``; dpd values spread over every bucket."""
    rng = np.random.default_rng(seed)
    n = len(money)
    dpd = rng.integers(0, 40, n)
    prev = rng.integers(-1, 10, n)
    columns = {
        "officer_id": pa.array(rng.integers(0, groups, n, dtype=np.int32)),
        "fimr_tagged": pa.array(rng.random(n) < 0.1),
        "current_dpd": pa.array(dpd, mask=rng.random(n) < 0.05),
        "previous_dpd": pa.array(prev, mask=rng.random(n) < 0.2),
        "days_since_last_repayment": pa.array(days, mask=rng.random(n) < 0.1),
        "loan_age": pa.array(days[::-1].copy()),
    }
    for k, name in enumerate(MONEY):
        columns[name] = pa.array(np.roll(money, k))
    return pa.table(columns)


def _blocks(*magnitudes: float, seed: int = 0) -> np.ndarray:
    """One chunk of signed int64 values per magnitude (currency units)."""
    rng = np.random.default_rng(seed)
    parts = [(rng.random(CHUNK) * 2 - 1) * m for m in magnitudes]
    return np.concatenate(parts).astype(np.int64)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("order", ["as_built", "reversed", "shuffled"])
def test_fold_and_checked_paths_match_reference(engine, reference, threads, order):
    # 2**41 units = ~2**47.6 minor units: a chunk's bound is ~2**60, so hot sums fold every
    # few chunks; 2**47 units (~2**53.6 minor) sends a chunk to the exact pairs directly.
    mags = [2.0**41] * 6 + [2.0**47] + [2.0**41] * 3 + [10.0] * 2 + [2.0**47, 2.0**41]
    money = _blocks(*mags)
    days = _blocks(*([2.0**50] * 3 + [100.0] * (len(mags) - 3)), seed=1)
    if order == "reversed":
        money, days = money[::-1].copy(), days[::-1].copy()
    elif order == "shuffled":
        perm = np.random.default_rng(2).permutation(len(money))
        money, days = money[perm], days[perm]
    table = _table(money, days, groups=7, seed=3)
    got = engine.officer_metrics(table, threads=threads)
    S.assert_tables_identical(got, reference.officer_metrics(table))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("big", [2**42, 2**48], ids=["hot", "checked"])
def test_partial_sums_beyond_int64_cancel_exactly(engine, reference, threads, big):
    # Big positive chunks first, then as many big negative ones, into one group: the running
    # sum passes int64 on the way while every total fits. 2**42 units (~2**48.6 minor) go
    # through the hot sums, which must fold in time; 2**48 units go to the exact pairs.
    money = np.concatenate([np.full(6 * CHUNK, big), np.full(6 * CHUNK, -big),
                            np.arange(CHUNK)]).astype(np.int64)
    days = np.ones(len(money), dtype=np.int64)
    table = _table(money, days, groups=1, seed=4)
    got = engine.officer_metrics(table, threads=threads)
    S.assert_tables_identical(got, reference.officer_metrics(table))
    assert got["portfolio"][0].as_py() == float(sum(range(CHUNK)))


def test_many_groups_fold(engine, reference):
    # Folding walks every group of the worker: many groups, each fold must leave none behind.
    money = _blocks(*([2.0**41] * 10), seed=5)
    table = _table(money, money.copy(), groups=5000, seed=6)
    S.assert_tables_identical(engine.officer_metrics(table, threads=2),
                              reference.officer_metrics(table))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("big", [2**42, 2**48], ids=["hot", "checked"])
def test_total_beyond_int64_is_an_overflow_error(engine, reference, threads, big):
    # Twelve chunks of +2**42 units (~2**48.6 minor) sum past 2**64: the hot sums must fold
    # before they could wrap, or the total would come back wrapped instead of raising.
    money = np.full(12 * CHUNK, big, dtype=np.int64)
    table = _table(money, np.ones(len(money), dtype=np.int64), groups=1, seed=7)
    for impl in (engine, reference):
        with pytest.raises(OverflowError, match="aggregate 'portfolio' overflows int64"):
            impl.officer_metrics(table, threads=threads)


@pytest.mark.parametrize("big", [2**49, 2**55], ids=["hot", "checked"])
def test_day_sum_beyond_int64_is_an_overflow_error(engine, reference, big):
    # Day columns are summed too (over active loans): their magnitude bound must cover them.
    n = 12 * CHUNK
    table = _table(np.full(n, 10**7, dtype=np.int64), np.full(n, big, dtype=np.int64),
                   groups=1, seed=8)
    for impl in (engine, reference):
        with pytest.raises(OverflowError, match="overflows int64"):
            impl.officer_metrics(table, threads=1)


def test_a_partial_never_worked_finalizes_to_zeros(engine):
    # Exact accumulators are set lazily (by the first fold); finalize must not read them
    # before, even for a partial that no worker touched (the portfolio's one group).
    from metriccore import _officer
    from metriccore import _kernels as K

    numbers = _officer._kernel_config(_officer.MetricConfig())
    part = K.Partial([])
    result = K.Finalized()
    assert K.finalize(part, np.zeros(1, dtype=np.int64), numbers, result) is None
    _, (_, loans) = result.columns()[0]
    _, (_, portfolio) = result.columns()[2]
    assert np.frombuffer(loans, dtype=np.int64).tolist() == [0]
    assert np.frombuffer(portfolio, dtype=np.float64).tolist() == [0.0]


@pytest.mark.parametrize("threads", [1, 2])
def test_nan_under_null_money_slots(engine, reference, threads):
    # pandas-style float columns keep NaN under their null slots: the fast conversion
    # rejects such chunks, the checked one skips the nulls and still bounds the magnitudes.
    rng = np.random.default_rng(9)
    n = 3 * CHUNK + 17
    values = np.round(rng.random(n) * 1e6, 2)
    values[rng.random(n) < 0.1] = np.nan
    table = _table(np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64), groups=5, seed=10)
    money = pa.array(values, from_pandas=True)
    assert money.null_count > 0
    for name in MONEY:
        table = table.set_column(table.schema.get_field_index(name), name, money)
    S.assert_tables_identical(engine.officer_metrics(table, threads=threads),
                              reference.officer_metrics(table))


# One integer key: groups of codes in [0, 2**20) are found and made through a direct map
# that widens as larger codes arrive, the others (negative, huge, null) through the hash
# table; group tables of earlier calls are reused. Every mix must match the reference.
_KEY_MIXES = {
    "small_dense": lambda rng, n: rng.integers(0, 600, n),
    "widening": lambda rng, n: np.sort(rng.integers(0, 300_000, n)),
    "widening_shuffled": lambda rng, n: rng.integers(0, 300_000, n),
    "beyond_map": lambda rng, n: rng.choice([-7, -1, 0, 5, 2**20 - 1, 2**20, 2**40], n),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mix", sorted(_KEY_MIXES))
@pytest.mark.parametrize("key_type", [pa.int64(), pa.uint64(), pa.int32()])
def test_one_integer_key_lookup_paths(engine, reference, threads, mix, key_type):
    rng = np.random.default_rng(len(mix))
    n = 3 * CHUNK + 17
    codes = _KEY_MIXES[mix](rng, n)
    if key_type == pa.uint64() or key_type == pa.int32():
        codes = np.abs(codes) % (2**31)
    money = _blocks(10.0, 10.0, 10.0, 10.0, seed=5)[:n]
    table = _table(money, np.arange(n, dtype=np.int64) % 90, groups=1, seed=6)
    keys = pa.array(codes, type=key_type, mask=rng.random(n) < 0.02)
    table = table.set_column(0, "officer_id", keys)
    expected = reference.officer_metrics(table)
    for _ in range(2):   # the second call starts from the first one's spare tables
        S.assert_tables_identical(engine.officer_metrics(table, threads=threads), expected)
    # and a call on a smaller key set right after still finds only its own groups
    head = table.slice(0, 50)
    S.assert_tables_identical(engine.officer_metrics(head, threads=threads),
                              reference.officer_metrics(head))
