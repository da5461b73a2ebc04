"""Deterministic synthetic loan snapshots: the embedded default data set.

:func:`loan_snapshot` builds a realistic microfinance loan book (weekly-instalment loans of a
lender organised in regions, branches and loan officers) with exactly the snapshot columns that
:func:`metriccore.officer_metrics` reads, plus the keys ``officer_id``, ``branch`` and
``region``. It is used by ``python -m metriccore demo``, by the tests and by the benchmarks.

The table is a pure function of ``(n_loans, n_officers, seed)``: the same arguments give the
same table, bit for bit, for a given NumPy version (NumPy does not promise identical random
streams across releases, and a few distributions go through the platform's ``exp``/``log``).
Rows are generated with NumPy's ``default_rng`` (PCG64), vectorised, in chunks of 2**16 rows,
each chunk from its own child of ``SeedSequence(seed)``, so memory beyond the result stays
small and 10 million loans take seconds. It says nothing about any real lender.
"""

from __future__ import annotations

import datetime
import operator
from typing import Any

import numpy as np
import pyarrow as pa

from metriccore._schema import BOOL_COLUMNS, DAY_COLUMNS, INPUT_COLUMNS

__all__ = ["DEFAULT_SEED", "DEFAULT_AS_OF", "loan_snapshot", "raw_loan_book"]

#: Seed of the embedded default data set (``loan_snapshot``'s default).
DEFAULT_SEED = 0

#: Rows generated per chunk; also the chunk (record batch) size of the returned table.
_CHUNK_ROWS = 1 << 16

#: Officers per branch, on average.
_OFFICERS_PER_BRANCH = 20

_REGIONS = ("Lagos", "South-West", "South-East", "South-South", "North-Central", "North")

# Loan products: tenor in weeks (one instalment a week), each listed once per 5% of the book.
_WEEKS_LUT = np.repeat(np.array([12, 16, 20, 24, 26, 52], dtype=np.int64), [3, 5, 3, 4, 3, 2])

_MONTHLY_FLAT_RATE = 0.045  # interest, flat on the loan amount, per 30 days of tenor
_FEE_RATE = 0.025           # upfront management fee, fraction of the loan amount
_MATURED_SHARE = 0.15       # loans past their maturity date (closed or overdue)
_PERIOD_DAYS = 15           # the snapshot is taken on the 15th: month-to-date window
_ROLL_DAYS = 30             # previous_dpd is the dpd 30 days before the snapshot
_FIRST_DUE_DAYS = 7         # first instalment falls due 7 days after disbursement
_MAX_AGE = 720

_SCHEMA = pa.schema(
    [pa.field("officer_id", pa.int32(), nullable=False),
     pa.field("branch", pa.dictionary(pa.int32(), pa.string()), nullable=False),
     pa.field("region", pa.string(), nullable=False)]
    + [pa.field(name,
                pa.bool_() if name in BOOL_COLUMNS
                else pa.int64() if name in DAY_COLUMNS
                else pa.float64(),
                nullable=name in ("previous_dpd", "days_since_last_repayment"))
       for name in INPUT_COLUMNS])


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]  # TypeError handled
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def loan_snapshot(n_loans: int, n_officers: int = 1000, seed: int = DEFAULT_SEED) -> pa.Table:
    """Generate a deterministic synthetic loan snapshot.

    The loan book is a weekly-instalment microfinance portfolio. Each officer belongs to one
    branch (about ``n_officers / 20`` branches, at least one) and each branch to one of up to
    six regions. Officers (and, less strongly, branches and regions) differ in quality, so
    their FIMR, slippage, roll, AYR, DQI and risk bands differ too. Typical shape (default
    arguments): about 95% of loans current, 2% at 1-6 days past due, 1% at 7-30 and a 2.5%
    tail beyond 30; about 4% tagged as first-instalment misses; about 14% closed or with a
    balance at or below the default active threshold of 2000; ``days_since_last_repayment``
    null (no repayment yet) for about 5% of loans and ``previous_dpd`` null for the ~19%
    younger than 30 days. Amounts are in a naira-like currency (loans of 20,000 to
    5,000,000 with 2-decimal minor units).

    Parameters
    ----------
    n_loans : int
        Number of loan rows, ``>= 0``.
    n_officers : int, default 1000
        Number of loan officers, ``>= 1``, ids ``1..n_officers``. Officers get different
        portfolio sizes; with few loans some officers get none and do not appear.
    seed : int, default DEFAULT_SEED
        Seed of the generator, ``>= 0``.

    Returns
    -------
    pyarrow.Table
        ``n_loans`` rows in record batches of up to 2**16 rows, with columns:

        - ``officer_id`` (int32): 1-based officer id.
        - ``branch`` (dictionary<int32, string>): ``"BR-001"``, ``"BR-002"``, ...; the
          dictionary lists every branch, in order, in every chunk.
        - ``region`` (string): the branch's region, e.g. ``"Lagos"``.
        - ``fimr_tagged`` (bool): the first instalment was missed.
        - ``current_dpd`` (int64), ``previous_dpd`` (int64, null for loans younger than 30
          days, which did not exist at the start of the roll period).
        - ``principal_outstanding``, ``amount_due_7d``, ``interest_collected``,
          ``fees_collected``, ``fees_due``, ``outstanding_balance`` (float64 currency units,
          whole cents: every value is ``k / 100`` for an integer ``k``).
        - ``days_since_last_repayment`` (int64, null when the loan has no repayment yet).
        - ``loan_age`` (int64, 0 to 720 days).

        Invariants: ``0 <= principal_outstanding <= outstanding_balance``, principal never
        exceeds the loan amount, all money is non-negative, ``days_since_last_repayment <=
        loan_age``, and ``current_dpd`` / ``previous_dpd`` are non-negative.

    Raises
    ------
    TypeError
        If an argument is not an integer (``bool`` is rejected).
    ValueError
        If ``n_loans < 0``, ``n_officers < 1``, ``n_officers >= 2**31`` or ``seed < 0``.

    Examples
    --------
    >>> from metriccore.synthetic import loan_snapshot
    >>> table = loan_snapshot(10_000, n_officers=50, seed=1)
    >>> table.num_rows
    10000
    >>> table.column_names[:3]
    ['officer_id', 'branch', 'region']
    """
    n_loans = _count("n_loans", n_loans, 0)
    n_officers = _count("n_officers", n_officers, 1)
    seed = _count("seed", seed, 0)
    if n_officers > np.iinfo(np.int32).max:
        raise ValueError(f"n_officers must be < 2**31, got {n_officers}")

    n_chunks = max(1, -(-n_loans // _CHUNK_ROWS))
    root = np.random.SeedSequence(seed)
    org_seed, *chunk_seeds = root.spawn(1 + n_chunks)
    org = _organisation(n_officers, np.random.default_rng(org_seed))

    batches = []
    for k, chunk_seed in enumerate(chunk_seeds):
        size = min(_CHUNK_ROWS, n_loans - k * _CHUNK_ROWS)
        batches.append(_chunk(size, org, np.random.default_rng(chunk_seed)))
    return pa.Table.from_batches(batches, schema=_SCHEMA)


def _organisation(n_officers: int, rng: np.random.Generator) -> dict[str, object]:
    """Branches, regions, officer portfolio weights and officer risk multipliers."""
    n_branches = max(1, n_officers // _OFFICERS_PER_BRANCH)
    n_regions = min(len(_REGIONS), n_branches)
    width = max(3, len(str(n_branches)))
    branch_names = pa.array([f"BR-{b:0{width}d}" for b in range(1, n_branches + 1)], pa.string())
    # Every branch gets an officer and every region a branch (shuffled round-robin).
    branch_of_officer = rng.permutation(np.arange(n_officers) % n_branches).astype(np.int32)
    region_of_branch = rng.permutation(np.arange(n_branches) % n_regions).astype(np.int32)
    region_effect = rng.lognormal(0.0, 0.15, n_regions)
    branch_effect = rng.lognormal(0.0, 0.25, n_branches) * region_effect[region_of_branch]
    officer_risk = rng.lognormal(-0.1, 0.6, n_officers) * branch_effect[branch_of_officer]
    # Portfolio sizes differ: an officer is drawn with probability proportional to a lognormal
    # weight, through a lookup table over a fine grid of the cumulative weights (one gather
    # per loan instead of a binary search).
    cdf = np.cumsum(rng.lognormal(0.0, 0.5, n_officers))
    cdf /= cdf[-1]
    grid = 1 << max(16, min(24, (16 * n_officers - 1).bit_length()))
    lut = np.searchsorted(cdf, (np.arange(grid) + 0.5) / grid, side="right")
    return {
        "branch_names": branch_names,
        "region_names": pa.array(_REGIONS[:n_regions], pa.string()),
        "branch_of_officer": branch_of_officer,
        "region_of_branch": region_of_branch,
        "officer_risk": np.clip(officer_risk, 0.15, 8.0),
        "officer_lut": np.minimum(lut, n_officers - 1).astype(np.int32),
    }


def _draw_officers(org: dict[str, Any], rng: np.random.Generator,
                   n: int) -> tuple[dict[str, pa.Array], np.ndarray]:
    """The key columns (``officer_id``, ``branch``, ``region``) of ``n`` loans drawn from
    ``org``, and each loan's officer risk multiplier (one draw from ``rng``)."""
    lut = org["officer_lut"]
    officer = lut[rng.integers(0, lut.size, n)]
    branch = org["branch_of_officer"][officer]
    region = org["region_of_branch"][branch]
    keys = {
        "officer_id": pa.array(officer + 1, pa.int32()),
        "branch": pa.DictionaryArray.from_arrays(pa.array(branch, pa.int32()),
                                                 org["branch_names"]),
        "region": org["region_names"].take(pa.array(region, pa.int32())),
    }
    return keys, org["officer_risk"][officer]


def _dpd_in_state(state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Days past due drawn within each state's range (state > 0 only)."""
    n = state.size
    return np.select(
        [state == 1, state == 2],
        [rng.integers(1, 7, n), rng.integers(7, 31, n)],
        30 + rng.geometric(1 / 45, n)).astype(np.int64)


def _chunk(n: int, org: dict[str, Any], rng: np.random.Generator) -> pa.RecordBatch:
    # Money is computed in minor units (kobo/cents) held exactly as integer-valued float64
    # (all far below 2**53) and divided by 100 at the end.

    # --- who: officer, branch, region --------------------------------------------------
    keys, risk = _draw_officers(org, rng, n)

    # --- product and age: 85% of loans within their tenor, 15% past maturity ----------------
    weeks = _WEEKS_LUT[rng.integers(0, _WEEKS_LUT.size, n)]
    tenor = 7 * weeks
    v = rng.random(n)
    matured = v < _MATURED_SHARE
    age = np.where(matured,
                   tenor + (v / _MATURED_SHARE * (_MAX_AGE + 1 - tenor)),
                   (v - _MATURED_SHARE) / (1.0 - _MATURED_SHARE) * tenor).astype(np.int64)
    np.clip(age, 0, _MAX_AGE, out=age)

    # --- delinquency: state 0..3 (current, 1-6, 7-30, >30 dpd) 30 days ago, then one month
    # of transitions; a riskier officer (risk > 1) has proportionally more late loans.
    u = rng.random(n) / risk
    prev_state = (u < 0.050).astype(np.int8)
    prev_state += u < 0.038
    prev_state += u < 0.030
    has_prev = age >= _ROLL_DAYS
    prev_state[~has_prev] = 0
    u = rng.random(n)
    w = u / risk
    cur_state = (w < 0.018).astype(np.int8)
    cur_state += w < 0.002
    # loans late 30 days ago (a few percent): cure, stay, roll forward
    was_late = np.flatnonzero(prev_state)
    ps, ul, rl = prev_state[was_late], u[was_late], risk[was_late]
    cure = np.minimum(0.9, 0.8 / np.sqrt(rl))           # 1-6 -> current
    stay = np.minimum(0.15, 1.0 - cure)                 # 1-6 -> 1-6, the rest rolls to 7-30
    cur_state[was_late] = np.select(
        [ps == 1, ps == 2],
        [np.where(ul < cure, 0, np.where(ul < cure + stay, 1, 2)),
         np.searchsorted(np.array([0.15, 0.25, 0.50]), ul, side="right")],
        np.where(ul < 0.03, 0, 3))

    prev_dpd = np.zeros(n, np.int64)
    prev_dpd[was_late] = _dpd_in_state(ps, rng)
    is_late = np.flatnonzero(cur_state)
    cs = cur_state[is_late]
    cur_dpd = np.zeros(n, np.int64)
    drawn = _dpd_in_state(cs, rng)
    # beyond 30 days a loan keeps ageing: about 21 business days a month
    pl = prev_dpd[is_late]
    older = (cs == 3) & (pl >= 7)
    drawn[older] = np.maximum(31, pl[older] + rng.integers(18, 23, int(older.sum())))
    cur_dpd[is_late] = drawn
    # dpd counts business days from the first due date and stops at maturity
    np.minimum(cur_dpd, np.maximum(0, (np.minimum(age, tenor) - _FIRST_DUE_DAYS) * 5 // 7),
               out=cur_dpd)
    np.minimum(prev_dpd,
               np.maximum(0, (np.minimum(age - _ROLL_DAYS, tenor) - _FIRST_DUE_DAYS) * 5 // 7),
               out=prev_dpd)

    # --- money -----------------------------------------------------------------------------
    amount = np.rint(rng.lognormal(np.log(100_000.0), 0.6, n) * np.sqrt(weeks / 16.0) / 5_000.0)
    amount = np.clip(amount * 5_000.0, 20_000.0, 5_000_000.0)        # whole currency units
    loan = amount * 100.0
    interest = np.rint(amount * (_MONTHLY_FLAT_RATE / 30.0) * tenor) * 100.0
    fee = np.rint(amount * _FEE_RATE) * 100.0
    repayable = loan + interest + fee
    instalment = np.rint(repayable / weeks)
    interest_share = interest / repayable
    fee_share = fee / repayable

    # instalments paid on their due dates (every 7 days); late loans are ~5 business days
    # behind per instalment and half of them made a part-payment since
    paid_count = np.minimum(weeks, age // 7)
    late = np.flatnonzero(cur_dpd)                      # after the caps above
    paid_count[late] = np.maximum(0, paid_count[late] - (-(-cur_dpd[late] // 5)))
    paid_full = np.minimum(repayable, paid_count * instalment)
    closed = (age >= tenor) & (cur_dpd == 0)            # matured and fully repaid
    paid_full[closed] = repayable[closed]
    since = age - 7 * paid_count
    paid = paid_full.copy()
    partial = np.zeros(n)
    m = late.size
    part = np.where(rng.random(m) < 0.5, np.rint(instalment[late] * rng.random(m)), 0.0)
    paid[late] = np.maximum(0.0, np.minimum(paid_full[late] + part, repayable[late] - 100.0))
    partial[late] = paid[late] - np.minimum(paid[late], paid_full[late])
    since_late = since[late]
    since[late] = np.where(partial[late] > 0,
                           rng.integers(0, 1 << 30, m) % (np.minimum(since_late, 29) + 1),
                           since_late)
    never_paid = paid == 0
    balance = repayable - paid

    # month-to-date collections: instalments falling due in the window plus part-payments
    in_window = np.maximum(0, paid_count - np.maximum(0, (age - _PERIOD_DAYS) // 7))
    full = np.minimum(paid, paid_full)
    collected = full - np.minimum(full, (paid_count - in_window) * instalment)
    collected += np.where(since < _PERIOD_DAYS, partial, 0.0)
    interest_collected = np.rint(collected * interest_share)
    fees_collected = np.rint(collected * fee_share)
    # payments split in proportion to the repayable amount; principal takes the remainder
    principal_paid = paid - np.rint(paid * interest_share) - np.rint(paid * fee_share)
    principal = np.clip(loan - principal_paid, 0.0, np.minimum(loan, balance))
    due_7d = np.where(age < tenor, instalment, 0.0)

    # --- first-instalment misses: officer quality, more among late loans -------------------
    p = 0.027 * risk
    troubled = np.flatnonzero(cur_state | prev_state)
    p[troubled] *= np.select([cur_state[troubled] == 3, cur_state[troubled] >= 1], [5.0, 3.0], 2.0)
    tagged = (age > _FIRST_DUE_DAYS) & (never_paid | (rng.random(n) < p))

    def money(minor: np.ndarray) -> pa.Array:
        return pa.array(minor / 100.0, pa.float64())

    columns = {
        **keys,
        "fimr_tagged": pa.array(tagged, pa.bool_()),
        "current_dpd": pa.array(cur_dpd, pa.int64()),
        "previous_dpd": pa.array(prev_dpd, pa.int64(), mask=~has_prev),
        "principal_outstanding": money(principal),
        "amount_due_7d": money(due_7d),
        "interest_collected": money(interest_collected),
        "fees_collected": money(fees_collected),
        "fees_due": money(fee),
        "outstanding_balance": money(balance),
        "days_since_last_repayment": pa.array(since, pa.int64(), mask=never_paid),
        "loan_age": pa.array(age, pa.int64()),
    }
    return pa.RecordBatch.from_arrays([columns[f.name] for f in _SCHEMA], schema=_SCHEMA)


#: The date ``raw_loan_book`` builds its book around (loans disbursed before and after it).
DEFAULT_AS_OF = datetime.date(2024, 6, 15)

_RAW_LOANS_SCHEMA = pa.schema([
    pa.field("loan_id", pa.int64(), nullable=False),
    pa.field("officer_id", pa.int32(), nullable=False),
    pa.field("branch", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("region", pa.string(), nullable=False),
    pa.field("loan_amount", pa.float64(), nullable=False),
    pa.field("interest_rate", pa.float64(), nullable=False),
    pa.field("fee_amount", pa.float64()),
    pa.field("loan_term_days", pa.int32(), nullable=False),
    pa.field("disbursement_date", pa.date32(), nullable=False),
    pa.field("first_payment_due_date", pa.date32()),
    pa.field("maturity_date", pa.date32()),
])


def raw_loan_book(n_loans: int, repayments_per_loan: int = 10, n_officers: int = 1000,
                  seed: int = DEFAULT_SEED, split: bool = True
                  ) -> tuple[pa.Table, pa.Table]:
    """Generate deterministic raw ``loans`` and ``repayments`` tables (docs/metrics.md §9.1 inputs).

    A weekly-instalment microfinance book like :func:`loan_snapshot`'s, before derivation:
    loans disbursed over the two years up to :data:`DEFAULT_AS_OF` (1% in the month after
    it), and about ``n_loans * repayments_per_loan`` repayments in ledger order (sorted by
    payment date) up to 60 days after :data:`DEFAULT_AS_OF`, so that a derivation as of a
    date in that range sees past and later payments alike. Each payment pays for the
    instalments due since the previous one; riskier officers' borrowers pay later, fall
    short more often and more often stop paying.

    Parameters
    ----------
    n_loans : int
        Number of loans, ``>= 0``.
    repayments_per_loan : int, default 10
        Average number of repayments per loan, ``>= 0``.
    n_officers : int, default 1000
        Number of loan officers, ``>= 1``.
    seed : int, default DEFAULT_SEED
        Seed of the generator, ``>= 0``.
    split : bool, default True
        Add the recorded split columns ``principal_paid``, ``interest_paid`` and
        ``fees_paid``, filled for about 60% of the repayments (null elsewhere).

    Returns
    -------
    (loans, repayments) : tuple of pyarrow.Table
        ``loans``: ``loan_id`` (int64, dense, ascending), ``officer_id`` (int32),
        ``branch`` (dictionary), ``region`` (string), ``loan_amount`` (float64, whole
        currency units), ``interest_rate`` (float64, flat over the term),
        ``fee_amount`` (float64, 2% null), ``loan_term_days`` (int32),
        ``disbursement_date``, ``first_payment_due_date`` (0.5% null) and
        ``maturity_date`` (1% null), all date32.
        ``repayments``: ``loan_id`` (int64; 0.1% refer to no loan), ``payment_date``
        (date32), ``payment_amount`` (float64, whole cents), the split columns when
        ``split``, and ``is_reversed`` (bool, 1% true, 5% null).
    """
    n_loans = _count("n_loans", n_loans, 0)
    per_loan = _count("repayments_per_loan", repayments_per_loan, 0)
    n_officers = _count("n_officers", n_officers, 1)
    seed = _count("seed", seed, 0)
    root = np.random.SeedSequence(seed)
    org_seed, loan_seed, pay_seed = root.spawn(3)
    org: dict[str, Any] = _organisation(n_officers, np.random.default_rng(org_seed))
    rng = np.random.default_rng(loan_seed)
    n = n_loans
    as_of = (DEFAULT_AS_OF - datetime.date(1970, 1, 1)).days

    # --- loans ---------------------------------------------------------------------------
    keys, risk = _draw_officers(org, rng, n)
    weeks = _WEEKS_LUT[rng.integers(0, _WEEKS_LUT.size, n)]
    term = 7 * weeks
    age = rng.integers(0, _MAX_AGE + 1, n)
    after = rng.random(n) < 0.01                                # disbursed after as_of
    age[after] = -rng.integers(1, 31, int(after.sum()))
    disbursed = as_of - age
    first_due = disbursed + _FIRST_DUE_DAYS
    maturity = disbursed + term
    amount = np.rint(rng.lognormal(np.log(100_000.0), 0.6, n) * np.sqrt(weeks / 16.0) / 5_000.0)
    amount = np.clip(amount * 5_000.0, 20_000.0, 5_000_000.0)
    rate = np.round(_MONTHLY_FLAT_RATE * term / 30.0, 4)
    fee = np.rint(amount * _FEE_RATE)
    interest = np.rint(amount * 100.0 * rate)
    repayable = amount * 100.0 + interest + fee * 100.0       # minor units

    def date_array(days: np.ndarray, null_share: float) -> pa.Array:
        mask = rng.random(days.size) < null_share if null_share else None
        return pa.array(days.astype(np.int32), pa.date32(), mask=mask)

    loans = pa.table({
        "loan_id": pa.array(100_000 + np.arange(n, dtype=np.int64)),
        **keys,
        "loan_amount": pa.array(amount, pa.float64()),
        "interest_rate": pa.array(rate, pa.float64()),
        "fee_amount": pa.array(fee, pa.float64(), mask=rng.random(n) < 0.02),
        "loan_term_days": pa.array(term, pa.int32()),
        "disbursement_date": date_array(disbursed, 0.0),
        "first_payment_due_date": date_array(first_due, 0.005),
        "maturity_date": date_array(maturity, 0.01),
    }, schema=_RAW_LOANS_SCHEMA)

    # --- repayments ----------------------------------------------------------------------
    # The ledger runs to 60 days after DEFAULT_AS_OF. Loan i has n_due instalments due by
    # then and makes about repayments_per_loan * n_due / mean(n_due) payments, each paying
    # for the instalments due since the previous one, on the due date of the first of them
    # plus a delay (longer for riskier officers' borrowers). Some borrowers stop paying
    # part-way (more so for risky officers) and some payments fall short.
    rng = np.random.default_rng(pay_seed)
    end = as_of + 60
    n_due = np.clip((end - first_due) // 7 + 1, 0, weeks)
    stops = rng.random(n) < np.minimum(0.05 * risk, 0.6)
    n_due[stops] = (n_due[stops] * rng.random(int(stops.sum()))).astype(np.int64)
    mean_due = max(float(n_due.mean()), 1.0) if n else 1.0
    count = np.minimum(np.rint(per_loan * n_due / mean_due), 3 * n_due).astype(np.int64)
    m = int(count.sum())
    loan = np.repeat(np.arange(n, dtype=np.int64), count)
    j = np.arange(m, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)  # 0, 1, ..
    c, d = count[loan], n_due[loan]
    first_k, next_k = j * d // c, (j + 1) * d // c                   # instalments covered
    late = np.minimum(rng.geometric(np.clip(0.7 / risk[loan], 0.05, 0.98)) - 1, 40)
    date = first_due[loan] + 7 * first_k + np.where(rng.random(m) < 0.15, late * 2, 0)
    pay = np.rint(repayable[loan] * (next_k - first_k) / weeks[loan])  # minor units
    partial = rng.random(m) < 0.03 * np.minimum(risk[loan], 4.0)
    pay[partial] = np.rint(pay[partial] * rng.uniform(0.3, 0.95, int(partial.sum())))
    order = np.argsort(date, kind="stable")                          # ledger order
    loan, date, pay = loan[order], date[order], pay[order]
    ids = 100_000 + loan.astype(np.int64)
    stray = rng.random(m) < 0.001
    ids[stray] = -1 - rng.integers(0, 1 << 40, int(stray.sum()))
    columns = {
        "loan_id": pa.array(ids, pa.int64()),
        "payment_date": pa.array(date.astype(np.int32), pa.date32()),
        "payment_amount": pa.array(pay / 100.0, pa.float64()),
    }
    if split:
        share_i = (interest / repayable)[loan]
        share_f = (fee * 100.0 / repayable)[loan]
        part_i = np.rint(pay * share_i)
        part_f = np.rint(pay * share_f)
        no_split = rng.random(m) >= 0.6
        columns["principal_paid"] = pa.array((pay - part_i - part_f) / 100.0, mask=no_split)
        columns["interest_paid"] = pa.array(part_i / 100.0, mask=no_split)
        columns["fees_paid"] = pa.array(part_f / 100.0, mask=no_split)
    columns["is_reversed"] = pa.array(rng.random(m) < 0.01, pa.bool_(),
                                      mask=rng.random(m) < 0.05)
    return loans, pa.table(columns)
