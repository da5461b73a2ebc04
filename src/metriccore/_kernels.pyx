# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled core of metriccore: per-group aggregates over Arrow buffers.

Conventions
-----------
* Input arrives through the Arrow C Data Interface (PyCapsules). Buffers are read in
  place; nothing is copied and libarrow is not linked.
* Rows are cut into chunks of ``CHUNK_ROWS`` rows (never spanning two record batches).
  Worker threads take chunks from a shared atomic counter with the GIL released. Each
  worker owns a ``Partial``: its own key dictionary, group table and accumulators.
* Money is converted to exact int64 minor units, and every total is exact, so it is
  independent of which worker summed which chunk, of chunking and of row order; partials
  merge by integer addition. Per chunk, column passes convert the input into scratch
  columns and one flag byte per row; the row loop then adds into a small "hot" record per
  group with plain int64 adds, which cannot overflow while the worker's magnitude budget
  (rows x largest |value| since the last fold) stays below 2**62. ``part_fold`` moves hot
  records into exact ``(wrapped int64, carry)`` pairs before the budget could be exceeded;
  a chunk whose own bound is too large goes straight to the pairs (the checked path). A
  lone worker's partial that never needed a fold is finalized from its hot records.
* Group tables and scratch columns of finished calls are kept (bounded) and reused, and
  result buffers come from pyarrow's memory pool: small calls would otherwise spend as
  long in malloc and free as in their rows.
* While one chunk's (compute-bound) row loop runs, the worker prefetches the input of the
  next chunk it has already claimed, so the (memory-bound) passes find it in cache.
* Group ids are private to a partial (first-seen order); the output order comes from
  sorting the decoded keys, so it never depends on the thread schedule either.
* Errors found without the GIL are recorded as (row, column, code); the smallest
  (row, column) wins, so the reported error does not depend on the schedule.
* The float64 metric step (``finalize``) evaluates every formula in the order of
  ``metriccore.reference``; with ``-ffp-contract=off`` and no fast-math both give the
  same bits.
"""

cimport cython
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uintptr_t,
                          uint64_t, INT64_MIN, INT64_MAX, UINT64_MAX)
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memset, memcmp, strlen
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.exc cimport PyErr_CheckSignals
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF

import numpy as np
cimport numpy as cnp
from pyarrow import allocate_buffer as _allocate_buffer

from metriccore._errors import Overflow, RowError

from metriccore._arrow cimport ArrowSchema, ArrowArray, ArrowArrayStream
from metriccore._support cimport (
    mc_add_ovf, mc_acc_add, mc_acc_merge, mc_zero16, MC_KEEP_SPARES, mc_fetch_add,
    mc_now_ms, mc_f64_minor_fast, mc_f32_minor_fast, mc_mag_i64, mc_mix64, mc_hash_bytes,
    mc_prefetch, mc_utf8_valid, mc_money_f64, mc_money_int, mc_money_dec128, mc_str_span,
    MC_MONEY_NAN)

cnp.import_array()

# The formulas (docs/metrics.md §3-§5): the row flags and the metric, score and band loops.
cdef extern from "_metrics.h" nogil:
    enum:
        MC_F_D16
        MC_F_PAR
        MC_F_PREV16
        MC_F_ROLLED
        MC_F_ACTIVE
        MC_F_NDAYS
        MC_F_NAGE
        MC_F_FIRST
    void mc_row_flags(int64_t n, const int64_t* dpd, const uint8_t* dpd_ok, const int64_t* prev,
                      const uint8_t* prev_ok, const int64_t* ob, const uint8_t* ob_ok,
                      const uint8_t* dsl_ok, const uint8_t* age_ok, const uint8_t* tagged,
                      int64_t par_days, int64_t threshold, uint8_t* flags)
    void mc_i64_to_f64(int64_t n, const int64_t* x, double* y)
    void mc_ratio(int64_t n, const double* num, const double* den, double* out)
    void mc_div_inplace(int64_t n, double* x, double p)
    void mc_band(int64_t n, const double* x, double green, double watch, int upper,
                 int8_t* code)
    void mc_scores(int64_t n, const double* fimr, const double* slip, const double* roll,
                   const double* porr, const double* ayr, const double* sdays,
                   const double* ndays, const double* sage, const double* nage, double* rdr,
                   double* oti, double* pen, double* raw, int64_t* risk, int64_t* dqi,
                   int64_t* rdr_ok)
    void mc_score_bands(int64_t n, const int64_t* dqi, const int64_t* risk, int64_t dg,
                        int64_t dw, int64_t kg, int64_t kw, int64_t ka, int8_t* dqi_code,
                        int8_t* risk_code)


#: Rows per chunk: the unit of work a thread takes. Small enough that the per-chunk
#: scratch columns stay in L2, large enough that the shared counter is rarely touched.
cdef enum:
    CH = 4096
CHUNK_ROWS = CH

# --------------------------------------------------------------------------------------
# Column kinds
# --------------------------------------------------------------------------------------
cdef enum:
    K_BOOL = 1
    K_INT = 2
    K_FLOAT32 = 3
    K_FLOAT64 = 4
    K_DEC128 = 5
    K_UTF8 = 6
    K_LUTF8 = 7
    K_VIEW = 8
    K_DICT = 9

# Error codes recorded in nogil code and turned into exceptions by ``raise_row_error``.
cdef enum:
    E_NONE = 0
    E_NAN = 1          # NaN or infinite money
    E_BIG = 2          # float money beyond 2**53 minor units
    E_MONEY_OVF = 3    # money value leaves int64 minor units
    E_DAY_OVF = 4      # integer value leaves int64
    E_DICT_INDEX = 5   # dictionary index out of range
    E_VIEW_BUF = 6     # string view refers to a missing data buffer
    E_NOMEM = 7
    E_OFFSETS = 8      # string offsets negative, decreasing or past the array's last offset
    E_VIEW_BOUNDS = 9  # string view of negative length or past the end of its data buffer
    E_UTF8 = 10        # string key is not valid UTF-8

# Roles, in docs/metrics.md §1 order (also the tie-break order of errors, §7).
cdef enum:
    R_FIMR = 0
    R_DPD = 1
    R_PREV = 2
    R_P = 3
    R_DUE7 = 4
    R_INTC = 5
    R_FEEC = 6
    R_FEED = 7
    R_OB = 8
    R_DSL = 9
    R_AGE = 10
    N_ROLES = 11

# Accumulator layout of one group: 5 plain counts, then 11 exact (sum, carry) pairs.
cdef enum:
    A_LOANS = 0
    A_FIRST = 1
    A_ACTIVE = 2
    A_NDAYS = 3
    A_NAGE = 4
    A_PORT = 5
    A_D16 = 7
    A_PAR = 9
    A_PREV16 = 11
    A_ROLLED = 13
    A_DUE7 = 15
    A_INTC = 17
    A_FEEC = 19
    A_FEED = 21
    A_SDAYS = 23
    A_SAGE = 25
    NACC = 27

# The hot record of one group (16 int64 = two cache lines, 13 used): the five counts packed
# as 21-bit fields into two words, then the 11 sums as plain int64 (each folds into the exact
# pair of the same name). Plain adds are exact while the worker's ``budget`` (a bound on |any
# hot sum|) stays below HOT_LIMIT and fewer than 2**21 rows went in since the last fold;
# ``part_fold`` moves hot records into the exact accumulators and clears them.
cdef enum:
    H_COUNTS_A = 0        # loans | first_miss << 21 | active_loans << 42
    H_COUNTS_B = 1        # n_days_since_last_repayment | n_loan_age << 21
    H_PORT = 2
    H_DUE7 = 3
    H_INTC = 4
    H_FEEC = 5
    H_FEED = 6
    H_SDAYS = 7
    H_SAGE = 8
    H_D16 = 9             # the bucket sums, added in a second pass over selected rows
    H_PAR = 10
    H_PREV16 = 11
    H_ROLLED = 12
    NSUMS_END = 13
    NHOT = 16

# Bit positions of the MC_F_* flags (_mc_support.h) that the hot loop shifts out of a row's
# flag byte (checked against the header's masks below, when the module is imported).
cdef enum:
    F_ACTIVE_BIT = 4
    F_NDAYS_BIT = 5
    F_NAGE_BIT = 6
    F_FIRST_BIT = 7         # the top bit of the byte: no mask needed after the shift

if ((1 << F_ACTIVE_BIT) != MC_F_ACTIVE or (1 << F_NDAYS_BIT) != MC_F_NDAYS
        or (1 << F_NAGE_BIT) != MC_F_NAGE or (1 << F_FIRST_BIT) != MC_F_FIRST):
    raise ImportError("metriccore._kernels: the flag bit positions disagree with MC_F_*")

cdef enum:
    FIELD_BITS = 21                       # width of one packed count
    FIELD_MASK = (1 << FIELD_BITS) - 1
    HOT_MAX_ROWS = 1 << FIELD_BITS        # rows between folds, so no packed count overflows

#: 2**62: the bound is summed in float64 (relative error far below 2**-30 over any
#: realistic number of chunks), so staying below 2**62 keeps every hot sum inside int64.
#: (A double: no enum can hold it; ``cdef const`` makes it a C ``static const``.)
cdef const double HOT_LIMIT = 4611686018427387904.0

#: Output aggregates in docs/metrics.md §3 (output) order: (accumulator slot, is an exact pair).
cdef int[16] OUT_SLOT = [A_LOANS, A_FIRST, A_PORT, A_D16, A_PAR, A_PREV16, A_ROLLED, A_DUE7,
                         A_INTC, A_FEEC, A_FEED, A_ACTIVE, A_SDAYS, A_NDAYS, A_SAGE, A_NAGE]
cdef bint[16] OUT_PAIR = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0]

cdef struct Col:
    int kind
    int width            # bytes of an integer value or dictionary index
    bint is_signed
    int dec_scale
    int64_t offset       # physical index of logical row 0 (parent offset included)
    int64_t length
    const uint8_t* validity   # NULL when the column has no nulls
    const void* values        # data / offsets / views buffer
    const char* chars         # utf8 data buffer
    const char** vbufs        # string view data buffers
    const int64_t* vsizes     # their sizes in bytes (the view array's last buffer)
    int64_t n_vbufs
    int64_t str_lo            # utf8 / large utf8: every string read lies in
    int64_t str_hi            # chars[str_lo:str_hi] (the array's first and last offsets)
    Col* dict                 # dictionary values of a K_DICT column


cdef struct Conf:
    int64_t p_int             # 10**money_scale
    double p_dbl
    int scale
    int64_t par_days
    int64_t threshold         # active_threshold in minor units (floored)


cdef struct Plan:
    int n_keys
    int n_cols                # n_keys + N_ROLES
    int64_t n_batches
    int64_t* batch_rows
    int64_t* batch_base       # global row number of each batch's first row
    Col* cols                 # n_batches * n_cols
    Col* dicts                # n_batches * n_cols (only K_DICT slots are used)
    int64_t n_chunks
    int64_t* chunk_batch
    int64_t* chunk_start
    int64_t next_chunk        # shared, atomically incremented
    int64_t max_rows          # rows of the largest batch
    int64_t total_rows
    Conf conf


# --------------------------------------------------------------------------------------
# Bitmaps (hashing: mc_mix64 / mc_hash_bytes in _support.h)
# --------------------------------------------------------------------------------------
#: SPREAD[b]: the 8 bytes (in memory order) holding bit k of ``b`` in byte k: a bitmap byte
#: turned into eight 0/1 bytes with one table load.
cdef uint64_t[256] SPREAD
cdef void _init_spread() noexcept:
    cdef int b, k
    cdef uint8_t bytes8[8]
    for b in range(256):
        for k in range(8):
            bytes8[k] = (b >> k) & 1
        memcpy(&SPREAD[b], bytes8, 8)
_init_spread()


cdef inline bint bit_at(const uint8_t* bm, int64_t i) noexcept nogil:
    return (bm[i >> 3] >> (i & 7)) & 1


# --------------------------------------------------------------------------------------
# String interner: distinct byte strings -> dense codes (one per string key column)
# --------------------------------------------------------------------------------------
cdef struct Interner:
    char* arena
    int64_t arena_len
    int64_t arena_cap
    int64_t* offs
    int64_t* lens
    uint64_t* hashes
    int64_t n
    int64_t cap
    int64_t* slots            # -1 empty, else code
    int64_t mask


cdef void interner_free(Interner* t) noexcept nogil:
    free(t.arena)
    free(t.offs)
    free(t.lens)
    free(t.hashes)
    free(t.slots)
    memset(t, 0, sizeof(Interner))


#: An open-addressing slot: -1 empty, else the code (interner) or group id (Part) filed there.
ctypedef fused slot_t:
    int32_t
    int64_t


cdef int slots_build(const uint64_t* hashes, int64_t n, int64_t nslots,
                     slot_t** out) noexcept nogil:
    """Replace ``out[0]`` with a table of ``nslots`` (a power of two) slots filing entries
    ``0 .. n-1`` by ``hashes`` (linear probing, in entry order); -1 when out of memory
    (``out[0]`` is then left as it was). The rebuild path of the interner and group tables;
    their look-ups probe the table inline."""
    cdef slot_t* slots = <slot_t*>malloc(nslots * sizeof(slot_t))
    cdef int64_t c, s
    if slots == NULL:
        return -1
    memset(slots, 0xff, nslots * sizeof(slot_t))
    for c in range(n):
        s = <int64_t>(hashes[c] & <uint64_t>(nslots - 1))
        while slots[s] >= 0:
            s = (s + 1) & (nslots - 1)
        slots[s] = <slot_t>c
    free(out[0])
    out[0] = slots
    return 0


cdef int interner_rehash(Interner* t, int64_t nslots) noexcept nogil:
    if slots_build(t.hashes, t.n, nslots, &t.slots) != 0:
        return -1
    t.mask = nslots - 1
    return 0


cdef int64_t interner_put(Interner* t, const char* p, int64_t n) noexcept nogil:
    """Code of the byte string ``p[:n]``, inserting it if new; -1 when out of memory, -2
    when it is new and not valid UTF-8 (so each distinct key is validated once, when it is
    first met; an invalid one is never inserted)."""
    cdef uint64_t h = mc_hash_bytes(p, n)
    cdef int64_t s, c, newcap
    cdef void* q
    if t.slots == NULL and interner_rehash(t, 64) != 0:
        return -1
    s = <int64_t>(h & <uint64_t>t.mask)
    while True:
        c = t.slots[s]
        if c < 0:
            break
        # n == 0: no memcmp, whose pointers must not be NULL even for 0 bytes (the arena
        # is NULL while only empty strings have been seen)
        if t.hashes[c] == h and t.lens[c] == n and (
                n == 0 or memcmp(t.arena + t.offs[c], p, n) == 0):
            return c
        s = (s + 1) & t.mask
    if not mc_utf8_valid(p, n):
        return -2
    if t.n == t.cap:
        newcap = 64 if t.cap == 0 else 2 * t.cap
        q = realloc(t.offs, newcap * sizeof(int64_t))
        if q == NULL:
            return -1
        t.offs = <int64_t*>q
        q = realloc(t.lens, newcap * sizeof(int64_t))
        if q == NULL:
            return -1
        t.lens = <int64_t*>q
        q = realloc(t.hashes, newcap * sizeof(uint64_t))
        if q == NULL:
            return -1
        t.hashes = <uint64_t*>q
        t.cap = newcap
    if t.arena_len + n > t.arena_cap:
        newcap = 2 * t.arena_cap + n + 256
        q = realloc(t.arena, newcap)
        if q == NULL:
            return -1
        t.arena = <char*>q
        t.arena_cap = newcap
    c = t.n
    if n > 0:
        memcpy(t.arena + t.arena_len, p, n)
    t.offs[c] = t.arena_len
    t.lens[c] = n
    t.hashes[c] = h
    t.arena_len += n
    t.n += 1
    t.slots[s] = c
    if 2 * t.n > t.mask + 1:
        if interner_rehash(t, 2 * (t.mask + 1)) != 0:
            return -1
    return c


# --------------------------------------------------------------------------------------
# Partial: one worker's (or one chunk's) groups and accumulators
# --------------------------------------------------------------------------------------
cdef struct Part:
    int n_keys
    bint* is_str              # per key column: codes are interner codes
    Interner* interners       # per key column (unused for integer keys)
    int64_t G                 # number of groups
    int64_t cap
    int64_t* gkeys            # cap * n_keys codes
    uint32_t* gnull           # null bit mask of each group's key
    uint64_t* ghash
    int64_t* acc              # cap * NACC exact accumulators
    int64_t* hot              # cap * NHOT, 64-byte aligned (inside hot_raw)
    void* hot_raw
    double budget             # bound on |every hot sum| since the last fold
    int64_t hot_rows          # rows added to hot records since the last fold
    int64_t acc_init          # groups [0, acc_init) have initialised exact accumulators
    bint hot_stale            # hot records of groups < G were folded but not zeroed
    int32_t* slots            # group table: -1 empty, else group id
    int64_t mask
    int32_t* direct           # one key: group id of each non-null code < dcap, -1 unseen
    int64_t dcap


cdef void part_free(Part* t) noexcept nogil:
    cdef int j
    if t.interners != NULL:
        for j in range(t.n_keys):
            interner_free(&t.interners[j])
    free(t.interners)
    free(t.is_str)
    free(t.gkeys)
    free(t.gnull)
    free(t.ghash)
    free(t.acc)
    free(t.hot_raw)
    free(t.slots)
    free(t.direct)
    memset(t, 0, sizeof(Part))


cdef int part_rehash(Part* t, int64_t nslots) noexcept nogil:
    if slots_build(t.ghash, t.G, nslots, &t.slots) != 0:
        return -1
    t.mask = nslots - 1
    return 0


cdef int part_resize(Part* t, int64_t newcap) noexcept nogil:
    """Room for ``newcap`` groups. Nothing new is zeroed here: a group's hot record is
    zeroed when the group is created, its exact accumulators by ``part_acc_ready`` or
    ``part_fold``, so that reserving room for many groups costs nothing until they exist."""
    cdef void* q
    cdef int64_t* hot
    cdef int nk = t.n_keys if t.n_keys > 0 else 1
    if newcap > 2147483647:
        return -1
    q = realloc(t.gkeys, newcap * nk * sizeof(int64_t))
    if q == NULL:
        return -1
    t.gkeys = <int64_t*>q
    q = realloc(t.gnull, newcap * sizeof(uint32_t))
    if q == NULL:
        return -1
    t.gnull = <uint32_t*>q
    q = realloc(t.ghash, newcap * sizeof(uint64_t))
    if q == NULL:
        return -1
    t.ghash = <uint64_t*>q
    q = realloc(t.acc, newcap * NACC * sizeof(int64_t))
    if q == NULL:
        return -1
    t.acc = <int64_t*>q
    # Hot records stay 64-byte aligned so that each spans exactly two cache lines.
    q = malloc(newcap * NHOT * sizeof(int64_t) + 64)
    if q == NULL:
        return -1
    hot = <int64_t*>((<uintptr_t>q + 63) & ~(<uintptr_t>63))
    if t.G > 0:
        memcpy(hot, t.hot, t.G * NHOT * sizeof(int64_t))
    free(t.hot_raw)
    t.hot_raw = q
    t.hot = hot
    t.cap = newcap
    return 0


cdef inline int part_grow(Part* t) noexcept nogil:
    return part_resize(t, 64 if t.cap == 0 else 2 * t.cap)


cdef int part_reserve(Part* t, int64_t groups) noexcept nogil:
    """Room for ``groups`` groups without regrowing (and a group table sized for them)."""
    cdef int64_t nslots = t.mask + 1
    if groups > t.cap and part_resize(t, groups) != 0:
        return -1
    while nslots < 2 * groups:
        nslots *= 2
    if nslots > t.mask + 1:
        return part_rehash(t, nslots)
    return 0


cdef void part_acc_ready(Part* t) noexcept nogil:
    """Zero the exact accumulators of the groups created since they were last ready."""
    if t.acc_init < t.G:
        memset(t.acc + t.acc_init * NACC, 0, (t.G - t.acc_init) * NACC * sizeof(int64_t))
        t.acc_init = t.G


cdef inline void pair_set(int64_t* acc, int64_t v) noexcept nogil:
    """Set the exact pair ``acc`` to the int64 value ``v`` (no carry)."""
    acc[0] = v
    acc[1] = 0


cdef void part_fold(Part* t, bint clear=True) noexcept nogil:
    """Add every hot record into the exact accumulators and clear it (or, with ``clear``
    false, mark the hot records stale: the last fold of a worker, whose hot records are
    normally never used again, skips zeroing them)."""
    cdef int64_t g
    cdef int64_t* h
    cdef int64_t* a
    if t.hot_rows == 0:
        part_acc_ready(t)
        return
    # Groups created since the accumulators were last ready take their hot record as is.
    # (Written out pair by pair: with constant offsets the compiler needs no table of
    # offsets, which it kept reloading from the stack.)
    for g in range(t.acc_init, t.G):
        h = t.hot + g * NHOT
        a = t.acc + g * NACC
        a[A_LOANS] = h[H_COUNTS_A] & FIELD_MASK
        a[A_FIRST] = (h[H_COUNTS_A] >> FIELD_BITS) & FIELD_MASK
        a[A_ACTIVE] = h[H_COUNTS_A] >> (2 * FIELD_BITS)
        a[A_NDAYS] = h[H_COUNTS_B] & FIELD_MASK
        a[A_NAGE] = h[H_COUNTS_B] >> FIELD_BITS
        pair_set(a + A_PORT, h[H_PORT])
        pair_set(a + A_DUE7, h[H_DUE7])
        pair_set(a + A_INTC, h[H_INTC])
        pair_set(a + A_FEEC, h[H_FEEC])
        pair_set(a + A_FEED, h[H_FEED])
        pair_set(a + A_SDAYS, h[H_SDAYS])
        pair_set(a + A_SAGE, h[H_SAGE])
        pair_set(a + A_D16, h[H_D16])
        pair_set(a + A_PAR, h[H_PAR])
        pair_set(a + A_PREV16, h[H_PREV16])
        pair_set(a + A_ROLLED, h[H_ROLLED])
    for g in range(t.acc_init):
        h = t.hot + g * NHOT
        a = t.acc + g * NACC
        a[A_LOANS] += h[H_COUNTS_A] & FIELD_MASK
        a[A_FIRST] += (h[H_COUNTS_A] >> FIELD_BITS) & FIELD_MASK
        a[A_ACTIVE] += h[H_COUNTS_A] >> (2 * FIELD_BITS)
        a[A_NDAYS] += h[H_COUNTS_B] & FIELD_MASK
        a[A_NAGE] += h[H_COUNTS_B] >> FIELD_BITS
        mc_acc_add(a + A_PORT, h[H_PORT])
        mc_acc_add(a + A_DUE7, h[H_DUE7])
        mc_acc_add(a + A_INTC, h[H_INTC])
        mc_acc_add(a + A_FEEC, h[H_FEEC])
        mc_acc_add(a + A_FEED, h[H_FEED])
        mc_acc_add(a + A_SDAYS, h[H_SDAYS])
        mc_acc_add(a + A_SAGE, h[H_SAGE])
        mc_acc_add(a + A_D16, h[H_D16])
        mc_acc_add(a + A_PAR, h[H_PAR])
        mc_acc_add(a + A_PREV16, h[H_PREV16])
        mc_acc_add(a + A_ROLLED, h[H_ROLLED])
    if not clear:
        t.hot_stale = True
    elif t.G > 0:
        memset(t.hot, 0, t.G * NHOT * sizeof(int64_t))
    t.budget = 0.0
    t.hot_rows = 0
    t.acc_init = t.G


cdef inline uint64_t key_hash(const int64_t* codes, int64_t stride, int n_keys,
                              uint32_t nulls) noexcept nogil:
    cdef uint64_t h = <uint64_t>0x9E3779B97F4A7C15ULL ^ <uint64_t>nulls
    cdef int j
    for j in range(n_keys):
        h = mc_mix64(h ^ <uint64_t>codes[j * stride])
    return h


cdef inline int64_t part_find(Part* t, const int64_t* codes, int64_t stride,
                              uint32_t nulls) noexcept nogil:
    """Group id of the key ``codes[j * stride]`` (j < n_keys) with null mask ``nulls``,
    inserting a new zeroed group when unseen; -1 when out of memory."""
    cdef uint64_t h = key_hash(codes, stride, t.n_keys, nulls)
    cdef int64_t s = <int64_t>(h & <uint64_t>t.mask)
    cdef int64_t g
    cdef int j
    cdef bint same
    while True:
        g = t.slots[s]
        if g < 0:
            break
        if t.ghash[g] == h and t.gnull[g] == nulls:
            same = True
            for j in range(t.n_keys):
                if t.gkeys[g * t.n_keys + j] != codes[j * stride]:
                    same = False
                    break
            if same:
                return g
        s = (s + 1) & t.mask
    if t.G == t.cap and part_grow(t) != 0:
        return -1
    g = t.G
    mc_zero16(t.hot + g * NHOT)
    for j in range(t.n_keys):
        t.gkeys[g * t.n_keys + j] = codes[j * stride]
    t.gnull[g] = nulls
    t.ghash[g] = h
    t.G += 1
    t.slots[s] = <int32_t>g
    if 2 * t.G > t.mask + 1 and part_rehash(t, 2 * (t.mask + 1)) != 0:
        return -1
    return g


#: Codes below this get a direct-mapped slot (4 bytes each) for one-key grouping: officer
#: ids, dictionary and interned string codes are small dense integers.
cdef enum:
    DIRECT_LIMIT = 1 << 20


cdef inline int64_t part_new_direct(Part* t, int64_t code) noexcept nogil:
    """A new group for the non-null key ``code`` < ``dcap`` of a one-key table, which the
    direct map says is unseen. The slot table is neither searched nor written: lookups of
    such codes never reach it (``part_rehash`` still files the group by its hash)."""
    cdef int64_t g
    if t.G == t.cap and part_grow(t) != 0:
        return -1
    g = t.G
    mc_zero16(t.hot + g * NHOT)
    t.gkeys[g] = code
    t.gnull[g] = 0
    t.ghash[g] = key_hash(&code, 1, 1, 0)
    t.G += 1
    t.direct[code] = <int32_t>g
    if 2 * t.G > t.mask + 1 and part_rehash(t, 2 * (t.mask + 1)) != 0:
        return -1
    return g


cdef inline int64_t part_find1(Part* t, int64_t code, uint32_t nulls) noexcept nogil:
    """``part_find`` for one key column, through the direct map when the code is small.

    The map is exact: every group whose non-null code is below ``dcap`` is in it (such
    groups are made only here, and the map is widened to cover each one as it is made), so
    an unseen small code makes a new group straight away (``part_new_direct``)."""
    cdef int64_t g, newcap
    cdef void* q
    if nulls == 0 and <uint64_t>code < <uint64_t>t.dcap:
        g = t.direct[code]
        if g >= 0:
            return g
        return part_new_direct(t, code)
    g = part_find(t, &code, 1, nulls)
    if g >= 0 and nulls == 0 and 0 <= code < DIRECT_LIMIT:
        # code >= dcap: widen the map to cover it (no other group lies in the new range)
        newcap = 2 * t.dcap
        if newcap <= code:
            newcap = code + 1
        if newcap < 1024:
            newcap = 1024
        if newcap > DIRECT_LIMIT:
            newcap = DIRECT_LIMIT
        q = realloc(t.direct, newcap * sizeof(int32_t))
        if q == NULL:
            return -1
        t.direct = <int32_t*>q
        memset(t.direct + t.dcap, 0xff, (newcap - t.dcap) * sizeof(int32_t))
        t.dcap = newcap
        t.direct[code] = <int32_t>g
    return g


cdef int part_init(Part* t, int n_keys, const bint* is_str) noexcept nogil:
    """An empty group table, starting from a spare one's buffers if there is one (call it
    with the GIL held: it guards the spares)."""
    memset(t, 0, sizeof(Part))
    t.n_keys = n_keys
    part_take_spare(t)
    t.is_str = <bint*>calloc(n_keys + 1, sizeof(bint))
    t.interners = <Interner*>calloc(n_keys + 1, sizeof(Interner))
    if t.is_str == NULL or t.interners == NULL:
        return -1
    if t.slots == NULL and part_rehash(t, 64) != 0:
        return -1
    if n_keys > 0:
        memcpy(t.is_str, is_str, n_keys * sizeof(bint))
        return 0
    # The portfolio (no key columns) always has its one group, even for zero rows.
    if t.cap == 0 and part_grow(t) != 0:
        return -1
    t.G = 1
    t.gnull[0] = 0
    t.ghash[0] = 0
    mc_zero16(t.hot)
    return 0


cdef int part_merge(Part* dst, Part* src) noexcept nogil:
    """Add every group of ``src`` into ``dst`` (exact integer sums: order-free)."""
    cdef int nk = src.n_keys
    cdef int64_t** trans = NULL
    cdef int64_t* codes = NULL
    cdef int64_t g, d, c, a
    cdef int j, rc = 0
    cdef Interner* si
    # Both are folded partials normally; make sure, since only ready accumulators are read.
    part_fold(src)
    part_fold(dst)
    if nk == 0:
        for a in range(A_PORT):
            dst.acc[a] += src.acc[a]
        a = A_PORT
        while a < NACC:
            mc_acc_merge(dst.acc + a, src.acc + a)
            a += 2
        return 0
    trans = <int64_t**>calloc(nk, sizeof(int64_t*))
    codes = <int64_t*>malloc(nk * sizeof(int64_t))
    if trans == NULL or codes == NULL:
        rc = -1
    # Interner codes are private to a partial: translate src's string codes to dst's.
    j = 0
    while rc == 0 and j < nk:
        if src.is_str[j]:
            si = &src.interners[j]
            trans[j] = <int64_t*>malloc((si.n + 1) * sizeof(int64_t))
            if trans[j] == NULL:
                rc = -1
                break
            for c in range(si.n):
                trans[j][c] = interner_put(&dst.interners[j], si.arena + si.offs[c], si.lens[c])
                if trans[j][c] < 0:
                    rc = -1
                    break
        j += 1
    g = 0
    while rc == 0 and g < src.G:
        for j in range(nk):
            c = src.gkeys[g * nk + j]
            if src.is_str[j] and not (src.gnull[g] >> j) & 1:
                c = trans[j][c]
            codes[j] = c
        if nk == 1:
            d = part_find1(dst, codes[0], src.gnull[g])  # direct map for small int codes
        else:
            d = part_find(dst, codes, 1, src.gnull[g])
        if d < 0:
            rc = -1
            break
        if d >= dst.acc_init:
            part_acc_ready(dst)
        for a in range(A_PORT):
            dst.acc[d * NACC + a] += src.acc[g * NACC + a]
        a = A_PORT
        while a < NACC:
            mc_acc_merge(dst.acc + d * NACC + a, src.acc + g * NACC + a)
            a += 2
        g += 1
    if trans != NULL:
        for j in range(nk):
            free(trans[j])
    free(trans)
    free(codes)
    return rc


# --------------------------------------------------------------------------------------
# Per-chunk column passes: Arrow values -> scratch arrays. Each returns the index (within
# the chunk) of its first bad row, or -1, with the error code in ``*code``.
# --------------------------------------------------------------------------------------
ctypedef fused any_int:
    int8_t
    int16_t
    int32_t
    int64_t
    uint8_t
    uint16_t
    uint32_t
    uint64_t


cdef int64_t int_pass_t(const any_int* vals, const Col* c, int64_t start, int64_t n,
                        int64_t mult, int64_t null_value, int64_t* out, uint8_t* valid,
                        int bad_code, int* code) noexcept nogil:
    """Integers (times ``mult`` when mult != 1) -> int64; overflow is ``bad_code``.

    ``valid`` (may be NULL) receives 1 per non-null row; nulls become ``null_value``."""
    cdef int64_t i, idx
    if c.validity == NULL and mult == 1 and not (any_int is uint64_t):
        vals = vals + c.offset + start
        for i in range(n):  # plain widening: vectorised
            out[i] = vals[i]
        if valid != NULL:
            memset(valid, 1, n)
        return -1
    cdef uint8_t bit
    cdef int64_t m
    if mult == 1 and not (any_int is uint64_t):
        # Nullable, no scaling: branch-free select (nulls fall at random, so a branch on
        # them would mispredict).
        for i in range(n):
            idx = c.offset + start + i
            bit = bit_at(c.validity, idx)
            m = -<int64_t>bit  # all ones when valid
            out[i] = (<int64_t>vals[idx] & m) | (null_value & ~m)
            if valid != NULL:
                valid[i] = bit
        return -1
    for i in range(n):
        idx = c.offset + start + i
        if c.validity != NULL and not bit_at(c.validity, idx):
            out[i] = null_value
            if valid != NULL:
                valid[i] = 0
            continue
        if any_int is uint64_t:
            if vals[idx] > <uint64_t>INT64_MAX:
                code[0] = bad_code
                return i
        if mc_money_int(<int64_t>vals[idx], mult, &out[i]):
            code[0] = bad_code
            return i
        if valid != NULL:
            valid[i] = 1
    return -1


cdef int64_t int_pass(const Col* c, int64_t start, int64_t n, int64_t mult,
                      int64_t null_value, int64_t* out, uint8_t* valid, int bad_code,
                      int* code) noexcept nogil:
    if c.width == 1:
        if c.is_signed:
            return int_pass_t(<const int8_t*>c.values, c, start, n, mult, null_value, out,
                              valid, bad_code, code)
        return int_pass_t(<const uint8_t*>c.values, c, start, n, mult, null_value, out,
                          valid, bad_code, code)
    if c.width == 2:
        if c.is_signed:
            return int_pass_t(<const int16_t*>c.values, c, start, n, mult, null_value, out,
                              valid, bad_code, code)
        return int_pass_t(<const uint16_t*>c.values, c, start, n, mult, null_value, out,
                          valid, bad_code, code)
    if c.width == 4:
        if c.is_signed:
            return int_pass_t(<const int32_t*>c.values, c, start, n, mult, null_value, out,
                              valid, bad_code, code)
        return int_pass_t(<const uint32_t*>c.values, c, start, n, mult, null_value, out,
                          valid, bad_code, code)
    if c.is_signed:
        return int_pass_t(<const int64_t*>c.values, c, start, n, mult, null_value, out,
                          valid, bad_code, code)
    return int_pass_t(<const uint64_t*>c.values, c, start, n, mult, null_value, out,
                      valid, bad_code, code)


cdef void bits_to_bytes(const uint8_t* bm, const uint8_t* mask, int64_t off, int64_t n,
                        uint8_t* out) noexcept nogil:
    """``out[i]`` = bit ``off + i`` of ``bm``, ANDed with that of ``mask`` unless it is NULL
    (0 or 1). Writes up to 7 bytes past ``n``."""
    cdef int64_t k, i
    cdef const uint8_t* b
    cdef const uint8_t* m
    cdef uint8_t byte
    if off & 7 == 0:
        # whole bitmap bytes: AND them, then spread each byte to 8 bytes with one table load
        b = bm + (off >> 3)
        m = NULL
        if mask != NULL:
            m = mask + (off >> 3)
        for k in range((n + 7) >> 3):
            byte = b[k] if m == NULL else b[k] & m[k]
            memcpy(out + 8 * k, &SPREAD[byte], 8)
        return
    for i in range(n):
        out[i] = bit_at(bm, off + i) and (mask == NULL or bit_at(mask, off + i))


cdef int64_t day_pass(const Col* c, int64_t start, int64_t n, int64_t null_value,
                      int64_t* scratch, uint8_t* vscratch, const uint8_t* ones,
                      const int64_t** out, const uint8_t** valid, int* code) noexcept nogil:
    """A day column as int64 values and 0/1 validity bytes. int64 is used in place (what
    lies under a null is then arbitrary: callers mask it with the validity); other types
    are widened into ``scratch`` with nulls as ``null_value``."""
    cdef int64_t r
    if c.kind == K_INT and c.width == 8 and c.is_signed:
        out[0] = <const int64_t*>c.values + c.offset + start
        if c.validity == NULL:
            valid[0] = ones
        else:
            bits_to_bytes(c.validity, NULL, c.offset + start, n, vscratch)
            valid[0] = vscratch
        return -1
    r = int_pass(c, start, n, 1, null_value, scratch, vscratch, E_DAY_OVF, code)
    out[0] = scratch
    valid[0] = vscratch
    return r


cdef double day_mag(const Col* c, const int64_t* vals, int64_t n) noexcept nogil:
    """A bound on |value| over a day column's chunk (``vals`` from ``day_pass``)."""
    if c.kind == K_INT and c.width < 8:
        return <double>((<int64_t>1) << (8 * c.width))
    return mc_mag_i64(vals, n)


ctypedef fused any_float:
    float
    double


cdef int64_t float_pass_t(const any_float* vals, const Col* c, int64_t start, int64_t n,
                          double p, int64_t* out, uint8_t* valid, double* mag,
                          int* code) noexcept nogil:
    cdef int64_t i, idx
    cdef int ok, rc
    # Fast path over the whole chunk (nulls included: whatever lies under a null slot is
    # overwritten below, and if it is NaN or huge the checked loop takes over).
    if any_float is double:
        ok = mc_f64_minor_fast(vals + c.offset + start, n, p, out, mag)
    else:
        ok = mc_f32_minor_fast(vals + c.offset + start, n, p, out, mag)
    if ok:
        if c.validity == NULL:
            if valid != NULL:
                memset(valid, 1, n)
        else:
            for i in range(n):
                idx = c.offset + start + i
                out[i] = out[i] & -<int64_t>bit_at(c.validity, idx)  # 0 under a null
                if valid != NULL:
                    valid[i] = bit_at(c.validity, idx)
        return -1
    # Checked path: the money rule value by value (mc_money_f64, docs/metrics.md §2), exact
    # for every |x*p| <= 2**53, finding the first bad row. (Taken, for instance, for NaN
    # under null slots, as pandas-converted columns have.)
    for i in range(n):
        idx = c.offset + start + i
        if c.validity != NULL and not bit_at(c.validity, idx):
            out[i] = 0
            if valid != NULL:
                valid[i] = 0
            continue
        rc = mc_money_f64(<double>vals[idx], p, &out[i])
        if rc:
            code[0] = E_NAN if rc == MC_MONEY_NAN else E_BIG
            return i
        if valid != NULL:
            valid[i] = 1
    mag[0] = mc_mag_i64(out, n)  # nulls are 0 here
    return -1


cdef int64_t dec_pass(const Col* c, int64_t start, int64_t n, int scale, int64_t* out,
                      uint8_t* valid, int* code) noexcept nogil:
    cdef const uint64_t* words = <const uint64_t*>c.values
    cdef int64_t i, idx
    cdef int up = scale - c.dec_scale
    for i in range(n):
        idx = c.offset + start + i
        if c.validity != NULL and not bit_at(c.validity, idx):
            out[i] = 0
            if valid != NULL:
                valid[i] = 0
            continue
        if mc_money_dec128(words, idx, up, &out[i]):
            code[0] = E_MONEY_OVF
            return i
        if valid != NULL:
            valid[i] = 1
    return -1


cdef int64_t money_pass(const Col* c, int64_t start, int64_t n, const Conf* cf,
                        int64_t* out, uint8_t* valid, double* mag, int* code) noexcept nogil:
    """Money -> exact minor units (0 where null), docs/metrics.md §2; ``*mag`` receives a bound
    on |out[i]| (meaningful only when no bad row was found)."""
    cdef int64_t r
    if c.kind == K_FLOAT64:
        return float_pass_t(<const double*>c.values, c, start, n, cf.p_dbl, out, valid, mag,
                            code)
    if c.kind == K_FLOAT32:
        return float_pass_t(<const float*>c.values, c, start, n, cf.p_dbl, out, valid, mag,
                            code)
    if c.kind == K_DEC128:
        r = dec_pass(c, start, n, cf.scale, out, valid, code)
    else:
        r = int_pass(c, start, n, cf.p_int, 0, out, valid, E_MONEY_OVF, code)
    if r < 0:
        mag[0] = mc_mag_i64(out, n)
    return r


cdef inline void bool_pass(const Col* c, int64_t start, int64_t n, uint8_t* out) noexcept nogil:
    """1 where the value is true, 0 where false or null (a null is not tagged). Writes up to
    7 bytes past ``n``."""
    bits_to_bytes(<const uint8_t*>c.values, c.validity, c.offset + start, n, out)


cdef inline int64_t read_index(const Col* c, int64_t idx) noexcept nogil:
    """Integer ``idx`` (physical) as int64; -1 for a uint64 beyond int64.

    Written as separate branches: a conditional expression mixing signed and unsigned
    types would take the unsigned type in Cython and lose the sign."""
    if c.width == 1:
        if c.is_signed:
            return <int64_t>(<const int8_t*>c.values)[idx]
        return <int64_t>(<const uint8_t*>c.values)[idx]
    if c.width == 2:
        if c.is_signed:
            return <int64_t>(<const int16_t*>c.values)[idx]
        return <int64_t>(<const uint16_t*>c.values)[idx]
    if c.width == 4:
        if c.is_signed:
            return <int64_t>(<const int32_t*>c.values)[idx]
        return <int64_t>(<const uint32_t*>c.values)[idx]
    if c.is_signed:
        return (<const int64_t*>c.values)[idx]
    if (<const uint64_t*>c.values)[idx] > <uint64_t>INT64_MAX:
        return -1
    return <int64_t>(<const uint64_t*>c.values)[idx]


ctypedef fused any_offset:
    int32_t
    int64_t


cdef bint offsets_sound(const any_offset* o, int64_t n, any_offset lo,
                        any_offset hi) noexcept nogil:
    """Whether every string that the offsets ``o[0..n]`` delimit lies in ``[lo, hi]``:
    ``o[0] >= lo``, ``o[n] <= hi`` and no offset decreases. One vectorised pass over a
    chunk's offsets, after which the chunk's strings need no check of their own."""
    cdef int64_t i
    cdef int bad = 0
    if o[0] < lo or o[n] > hi:
        return False
    for i in range(n):
        bad |= o[i + 1] < o[i]
    return bad == 0


cdef inline int string_at(const Col* c, int64_t idx, const char** p, int64_t* n,
                          bint check) noexcept nogil:
    """Pointer and length of string ``idx`` (physical); an E_* code for a string that does
    not lie inside the array's data. String views are always checked; string offsets when
    ``check`` (else the caller has checked them with ``offsets_sound``)."""
    cdef const uint8_t* view
    cdef int32_t len32, buf, off
    cdef int64_t a, b
    if c.kind == K_UTF8 or c.kind == K_LUTF8:
        # str_lo >= 0 and str_hi is the array's last offset (trusted to be inside the data
        # buffer): a negative, decreasing or too large offset is caught here
        if mc_str_span(c.values, c.kind == K_LUTF8, idx, c.str_lo, c.str_hi, check, &a, &b):
            return E_OFFSETS
        p[0] = c.chars + a
        n[0] = b - a
        return 0
    # string_view: 16-byte views, inline up to 12 bytes, else (prefix, buffer, offset)
    view = <const uint8_t*>c.values + 16 * idx
    memcpy(&len32, view, 4)
    n[0] = len32
    if len32 < 0:
        return E_VIEW_BOUNDS
    if len32 <= 12:
        p[0] = <const char*>(view + 4)
        return 0
    memcpy(&buf, view + 8, 4)
    memcpy(&off, view + 12, 4)
    if buf < 0 or buf >= c.n_vbufs:
        return E_VIEW_BUF
    # the variadic buffer sizes are transmitted (the last buffer): the view must fit
    if off < 0 or <int64_t>off + len32 > c.vsizes[buf]:
        return E_VIEW_BOUNDS
    p[0] = c.vbufs[buf] + off
    return 0


cdef struct DictCache:
    int64_t batch              # batch whose dictionary is cached, -1 for none
    int64_t cap
    uint8_t* state             # 0 unresolved, 1 value, 2 null
    int64_t* code


cdef struct Scratch:
    int32_t* gid
    int32_t* sel                # rows of the chunk that fall in some dpd bucket
    uint8_t* flags              # MC_F_* bits of each row
    uint8_t* tagged
    int64_t* dpd
    int64_t* prev
    uint8_t* dpd_ok
    uint8_t* prev_ok
    int64_t* money              # 5 * CH: P, due7, intc, feec, feed
    int64_t* ob
    uint8_t* active
    int64_t* dsl
    int64_t* age
    uint8_t* dsl_ok
    uint8_t* age_ok
    uint8_t* ones               # cap ones: the validity of a column without nulls
    int64_t cap                 # rows of each scratch column: min(CH, largest batch)
    int64_t* codes              # n_keys * CH
    uint32_t* nulls
    DictCache* dcache           # per key column
    int nk                      # key columns (the sizes of codes and dcache)


cdef int64_t key_pass(const Col* c, int j, int64_t start, int64_t n, int64_t batch,
                      Interner* it, DictCache* dc, int64_t* codes, uint32_t* nulls,
                      int* code) noexcept nogil:
    """Key column ``j`` -> int64 codes: integer keys as themselves (uint64 bit pattern),
    strings as interner codes; nulls set bit ``j`` of ``nulls`` and code 0."""
    cdef int64_t i, idx, di, v
    cdef const char* p
    cdef int64_t ln
    cdef const Col* d
    cdef void* q
    # string offsets: one vectorised check of the chunk's offsets; where it fails (corrupt
    # offsets, or only those of null slots), every string read is checked, which finds
    # the first bad row
    cdef bint check = True
    if c.kind == K_UTF8:
        check = not offsets_sound(<const int32_t*>c.values + c.offset + start, n,
                                  <int32_t>c.str_lo, <int32_t>c.str_hi)
    elif c.kind == K_LUTF8:
        check = not offsets_sound(<const int64_t*>c.values + c.offset + start, n,
                                  c.str_lo, c.str_hi)
    for i in range(n):
        idx = c.offset + start + i
        if c.validity != NULL and not bit_at(c.validity, idx):
            codes[i] = 0
            nulls[i] |= (<uint32_t>1) << j
            continue
        if c.kind == K_INT:
            if c.width == 8 and not c.is_signed:
                codes[i] = <int64_t>(<const uint64_t*>c.values)[idx]
            else:
                codes[i] = read_index(c, idx)
        elif c.kind == K_DICT:
            d = c.dict
            di = read_index(c, idx)
            if di < 0 or di >= d.length:
                code[0] = E_DICT_INDEX
                return i
            if dc.batch != batch:
                # dictionaries may differ per batch: resolve entries lazily, once per batch
                if d.length > dc.cap:
                    q = realloc(dc.state, d.length)
                    if q == NULL:
                        code[0] = E_NOMEM
                        return i
                    dc.state = <uint8_t*>q
                    q = realloc(dc.code, d.length * sizeof(int64_t))
                    if q == NULL:
                        code[0] = E_NOMEM
                        return i
                    dc.code = <int64_t*>q
                    dc.cap = d.length
                memset(dc.state, 0, d.length)
                dc.batch = batch
            if dc.state[di] == 0:
                idx = d.offset + di
                if d.validity != NULL and not bit_at(d.validity, idx):
                    dc.state[di] = 2
                elif d.kind == K_INT:
                    dc.code[di] = (<int64_t>(<const uint64_t*>d.values)[idx]
                                   if d.width == 8 and not d.is_signed else read_index(d, idx))
                    dc.state[di] = 1
                else:
                    v = string_at(d, idx, &p, &ln, True)
                    if v != 0:
                        code[0] = <int>v
                        return i
                    v = interner_put(it, p, ln)
                    if v < 0:
                        code[0] = E_UTF8 if v == -2 else E_NOMEM
                        return i
                    dc.code[di] = v
                    dc.state[di] = 1
            if dc.state[di] == 2:
                codes[i] = 0
                nulls[i] |= (<uint32_t>1) << j
            else:
                codes[i] = dc.code[di]
        else:
            v = string_at(c, idx, &p, &ln, check)
            if v != 0:
                code[0] = <int>v
                return i
            v = interner_put(it, p, ln)
            if v < 0:
                code[0] = E_UTF8 if v == -2 else E_NOMEM
                return i
            codes[i] = v
    return -1


cdef int gid_int_t(const any_int* vals, const Col* c, int64_t start, int64_t n, Part* t,
                   int32_t* gid) noexcept nogil:
    """Group ids of one integer key column's rows, read straight from the Arrow values
    (``key_pass`` + ``part_find1`` fused for the common single integer key); -1 when out
    of memory."""
    cdef int64_t i, code, g
    cdef int64_t off = c.offset + start
    vals = vals + off
    for i in range(n):
        if c.validity != NULL and not bit_at(c.validity, off + i):
            g = part_find1(t, 0, 1)
        else:
            code = <int64_t>vals[i]  # uint64 keys: their bit pattern, as key_pass reads them
            if <uint64_t>code < <uint64_t>t.dcap and t.direct[code] >= 0:
                g = t.direct[code]
            else:
                g = part_find1(t, code, 0)
        if g < 0:
            return -1
        gid[i] = <int32_t>g
    return 0


cdef int gid_int(const Col* c, int64_t start, int64_t n, Part* t, int32_t* gid) noexcept nogil:
    if c.width == 1:
        if c.is_signed:
            return gid_int_t(<const int8_t*>c.values, c, start, n, t, gid)
        return gid_int_t(<const uint8_t*>c.values, c, start, n, t, gid)
    if c.width == 2:
        if c.is_signed:
            return gid_int_t(<const int16_t*>c.values, c, start, n, t, gid)
        return gid_int_t(<const uint16_t*>c.values, c, start, n, t, gid)
    if c.width == 4:
        if c.is_signed:
            return gid_int_t(<const int32_t*>c.values, c, start, n, t, gid)
        return gid_int_t(<const uint32_t*>c.values, c, start, n, t, gid)
    if c.is_signed:
        return gid_int_t(<const int64_t*>c.values, c, start, n, t, gid)
    return gid_int_t(<const uint64_t*>c.values, c, start, n, t, gid)


cdef inline void note_error(int64_t row, int col, int code, int64_t* best_row, int* best_col,
                            int* best_code) noexcept nogil:
    if row < best_row[0] or (row == best_row[0] and col < best_col[0]):
        best_row[0] = row
        best_col[0] = col
        best_code[0] = code


# The next chunk's input is prefetched while the row loop of this one runs (that loop is
# compute-bound, the column passes are memory-bound): a cursor over the next chunk's
# fixed-width value buffers, advanced a few cache lines per row.
cdef enum:
    PF_MAX = 40

cdef struct Prefetch:
    const char* p[PF_MAX]
    int64_t left[PF_MAX]     # bytes of range k not yet prefetched
    int n
    int k


cdef void pf_plan(const Plan* pl, int64_t chunk, Prefetch* pf) noexcept nogil:
    """Point ``pf`` at the value buffers of ``chunk`` (nothing when chunk < 0)."""
    cdef int64_t b, start, n
    cdef const Col* c
    cdef int j, w
    pf.n = 0
    pf.k = 0
    if chunk < 0:
        return
    b = pl.chunk_batch[chunk]
    start = pl.chunk_start[chunk]
    n = pl.batch_rows[b] - start
    if n > CH:
        n = CH
    for j in range(pl.n_cols):
        c = pl.cols + b * pl.n_cols + j
        if c.kind == K_INT or c.kind == K_DICT:
            w = c.width
        elif c.kind == K_FLOAT64:
            w = 8
        elif c.kind == K_FLOAT32:
            w = 4
        elif c.kind == K_DEC128:
            w = 16
        else:
            continue
        if pf.n < PF_MAX:
            pf.p[pf.n] = <const char*>c.values + (c.offset + start) * w
            pf.left[pf.n] = n * w
            pf.n += 1


cdef inline void pf_step(Prefetch* pf) noexcept nogil:
    """Prefetch the next cache line of the plan, if any."""
    if pf.k >= pf.n:
        return
    mc_prefetch(pf.p[pf.k])
    pf.p[pf.k] += 64
    pf.left[pf.k] -= 64
    if pf.left[pf.k] <= 0:
        pf.k += 1


cdef void process_chunk(Plan* pl, Part* part, Scratch* s, int64_t chunk, int64_t next_chunk,
                        int64_t* err_row, int* err_col, int* err_code) noexcept nogil:
    cdef int64_t b = pl.chunk_batch[chunk]
    cdef int64_t start = pl.chunk_start[chunk]
    cdef int64_t n = pl.batch_rows[b] - start
    cdef int64_t base, i, r, g, p
    cdef const Col* cols = pl.cols + b * pl.n_cols
    cdef const Col* rc
    cdef const Conf* cf = &pl.conf
    cdef int nk = pl.n_keys, j, code = 0
    cdef int64_t bad_row = INT64_MAX
    cdef int bad_col = 0, bad_code = 0
    cdef int64_t* acc
    cdef int64_t* h
    cdef const int64_t* dpd
    cdef const int64_t* prev
    cdef const int64_t* dsl
    cdef const int64_t* age
    cdef const uint8_t* dpd_ok
    cdef const uint8_t* prev_ok
    cdef const uint8_t* dsl_ok
    cdef const uint8_t* age_ok
    cdef const int64_t* P = s.money
    cdef const int64_t* due7 = s.money + s.cap
    cdef const int64_t* intc = s.money + 2 * s.cap
    cdef const int64_t* feec = s.money + 3 * s.cap
    cdef const int64_t* feed = s.money + 4 * s.cap
    cdef int64_t ok, ok2, k, j2, f
    cdef Prefetch pf
    cdef const uint8_t* flags = s.flags
    cdef double mag = 1.0, m, bound
    cdef bint int_key
    if n > CH:
        n = CH
    base = pl.batch_base[b] + start

    # Column passes (each records its first bad row; the smallest (row, column) wins).
    # ``mag`` collects a bound on |value| of every summed column.
    # One integer key: group ids come straight from its values, after the checks below.
    int_key = nk == 1 and cols[0].kind == K_INT
    if nk > 0 and not int_key:
        memset(s.nulls, 0, n * sizeof(uint32_t))
    for j in range(0 if int_key else nk):
        r = key_pass(&cols[j], j, start, n, b, &part.interners[j], &s.dcache[j],
                     s.codes + j * s.cap, s.nulls, &code)
        if r >= 0:
            note_error(r, j, code, &bad_row, &bad_col, &bad_code)
    rc = cols + nk
    bool_pass(&rc[R_FIMR], start, n, s.tagged)
    r = day_pass(&rc[R_DPD], start, n, INT64_MIN, s.dpd, s.dpd_ok, s.ones, &dpd, &dpd_ok,
                 &code)
    if r >= 0:
        note_error(r, nk + R_DPD, code, &bad_row, &bad_col, &bad_code)
    r = day_pass(&rc[R_PREV], start, n, INT64_MIN, s.prev, s.prev_ok, s.ones, &prev,
                 &prev_ok, &code)
    if r >= 0:
        note_error(r, nk + R_PREV, code, &bad_row, &bad_col, &bad_code)
    for j in range(5):
        r = money_pass(&rc[R_P + j], start, n, cf, s.money + j * s.cap, NULL, &m, &code)
        if r >= 0:
            note_error(r, nk + R_P + j, code, &bad_row, &bad_col, &bad_code)
        elif m > mag:
            mag = m
    r = money_pass(&rc[R_OB], start, n, cf, s.ob, s.active, &m, &code)
    if r >= 0:
        note_error(r, nk + R_OB, code, &bad_row, &bad_col, &bad_code)
    r = day_pass(&rc[R_DSL], start, n, 0, s.dsl, s.dsl_ok, s.ones, &dsl, &dsl_ok, &code)
    if r >= 0:
        note_error(r, nk + R_DSL, code, &bad_row, &bad_col, &bad_code)
    r = day_pass(&rc[R_AGE], start, n, 0, s.age, s.age_ok, s.ones, &age, &age_ok, &code)
    if r >= 0:
        note_error(r, nk + R_AGE, code, &bad_row, &bad_col, &bad_code)
    if bad_row != INT64_MAX:
        note_error(base + bad_row, bad_col, bad_code, err_row, err_col, err_code)
        return
    m = day_mag(&rc[R_DSL], dsl, n)
    if m > mag:
        mag = m
    m = day_mag(&rc[R_AGE], age, n)
    if m > mag:
        mag = m

    # Group ids of the chunk's rows.
    if nk == 0:
        memset(s.gid, 0, n * sizeof(int32_t))
    elif int_key:
        if gid_int(&cols[0], start, n, part, s.gid) != 0:
            note_error(-1, 0, E_NOMEM, err_row, err_col, err_code)
            return
    elif nk == 1:
        for i in range(n):
            g = part_find1(part, s.codes[i], s.nulls[i])
            if g < 0:
                note_error(-1, 0, E_NOMEM, err_row, err_col, err_code)
                return
            s.gid[i] = <int32_t>g
    else:
        for i in range(n):
            g = part_find(part, s.codes + i, s.cap, s.nulls[i])
            if g < 0:
                note_error(-1, 0, E_NOMEM, err_row, err_col, err_code)
                return
            s.gid[i] = <int32_t>g

    # Every hot sum grows by at most n * mag in this chunk: fold first if that could leave
    # int64 (or a count field overflow), and take the checked path when even one chunk could.
    bound = <double>n * mag
    if part.budget + bound >= HOT_LIMIT or part.hot_rows + n >= HOT_MAX_ROWS:
        part_fold(part)
    mc_row_flags(n, dpd, dpd_ok, prev, prev_ok, s.ob, s.active, dsl_ok, age_ok, s.tagged,
                 cf.par_days, cf.threshold, s.flags)
    if bound < HOT_LIMIT:
        if part.hot_stale:
            memset(part.hot, 0, part.G * NHOT * sizeof(int64_t))
            part.hot_stale = False
        part.budget += bound
        part.hot_rows += n
        # Rows in a dpd bucket are few (most loans are current): they are listed in ``sel``
        # and their bucket sums added in a second, short loop. Branch-free otherwise:
        # activity and nulls vary from row to row without a pattern.
        pf_plan(pl, next_chunk, &pf)
        k = 0
        for i in range(n):
            pf_step(&pf)
            pf_step(&pf)
            h = part.hot + <int64_t>s.gid[i] * NHOT
            f = flags[i]
            s.sel[k] = <int32_t>i
            k += (f & (MC_F_D16 | MC_F_PAR | MC_F_PREV16)) != 0  # ROLLED implies PREV16
            ok = (f >> F_NDAYS_BIT) & 1
            ok2 = (f >> F_NAGE_BIT) & 1
            h[H_COUNTS_A] += (1 + ((f >> F_FIRST_BIT) << FIELD_BITS)
                              + (((f >> F_ACTIVE_BIT) & 1) << (2 * FIELD_BITS)))
            h[H_COUNTS_B] += ok + (ok2 << FIELD_BITS)
            h[H_PORT] += P[i]
            h[H_DUE7] += due7[i]
            h[H_INTC] += intc[i]
            h[H_FEEC] += feec[i]
            h[H_FEED] += feed[i]
            h[H_SDAYS] += dsl[i] & -ok
            h[H_SAGE] += age[i] & -ok2
        for j2 in range(k):
            i = s.sel[j2]
            h = part.hot + <int64_t>s.gid[i] * NHOT
            p = P[i]
            f = flags[i]
            h[H_D16] += p & -(f & 1)
            h[H_PAR] += p & -((f >> 1) & 1)
            h[H_PREV16] += p & -((f >> 2) & 1)
            h[H_ROLLED] += p & -((f >> 3) & 1)
        return

    # Checked path (values near the int64 range): every add goes to the exact pairs.
    part_acc_ready(part)
    for i in range(n):
        acc = part.acc + <int64_t>s.gid[i] * NACC
        f = flags[i]
        p = P[i]
        acc[A_LOANS] += 1
        acc[A_FIRST] += (f & MC_F_FIRST) != 0
        acc[A_ACTIVE] += (f & MC_F_ACTIVE) != 0
        acc[A_NDAYS] += (f & MC_F_NDAYS) != 0
        acc[A_NAGE] += (f & MC_F_NAGE) != 0
        mc_acc_add(acc + A_PORT, p)
        if f & MC_F_D16:
            mc_acc_add(acc + A_D16, p)
        if f & MC_F_PAR:
            mc_acc_add(acc + A_PAR, p)
        if f & MC_F_PREV16:
            mc_acc_add(acc + A_PREV16, p)
        if f & MC_F_ROLLED:
            mc_acc_add(acc + A_ROLLED, p)
        mc_acc_add(acc + A_DUE7, due7[i])
        mc_acc_add(acc + A_INTC, intc[i])
        mc_acc_add(acc + A_FEEC, feec[i])
        mc_acc_add(acc + A_FEED, feed[i])
        if f & MC_F_NDAYS:
            mc_acc_add(acc + A_SDAYS, dsl[i])
        if f & MC_F_NAGE:
            mc_acc_add(acc + A_SAGE, age[i])


cdef void scratch_free(Scratch* s, int nk) noexcept nogil:
    cdef int j
    free(s.gid)
    free(s.sel)
    free(s.flags)
    free(s.tagged)
    free(s.dpd)
    free(s.prev)
    free(s.dpd_ok)
    free(s.prev_ok)
    free(s.money)
    free(s.ob)
    free(s.active)
    free(s.dsl)
    free(s.age)
    free(s.dsl_ok)
    free(s.age_ok)
    free(s.ones)
    free(s.codes)
    free(s.nulls)
    if s.dcache != NULL:
        for j in range(nk):
            free(s.dcache[j].state)
            free(s.dcache[j].code)
    free(s.dcache)
    memset(s, 0, sizeof(Scratch))


cdef int scratch_init(Scratch* s, int nk, int64_t cap) noexcept nogil:
    cdef int j
    memset(s, 0, sizeof(Scratch))
    s.nk = nk
    s.cap = cap if cap > 0 else 1
    cap = s.cap
    # byte columns get 8 spare bytes: bitmaps are spread a whole byte (8 rows) at a time
    s.gid = <int32_t*>malloc(cap * sizeof(int32_t))
    s.sel = <int32_t*>malloc(cap * sizeof(int32_t))
    s.flags = <uint8_t*>malloc(cap + 8)
    s.tagged = <uint8_t*>malloc(cap + 8)
    s.dpd = <int64_t*>malloc(cap * sizeof(int64_t))
    s.prev = <int64_t*>malloc(cap * sizeof(int64_t))
    s.dpd_ok = <uint8_t*>malloc(cap + 8)
    s.prev_ok = <uint8_t*>malloc(cap + 8)
    s.money = <int64_t*>malloc(5 * cap * sizeof(int64_t))
    s.ob = <int64_t*>malloc(cap * sizeof(int64_t))
    s.active = <uint8_t*>malloc(cap + 8)
    s.dsl = <int64_t*>malloc(cap * sizeof(int64_t))
    s.age = <int64_t*>malloc(cap * sizeof(int64_t))
    s.dsl_ok = <uint8_t*>malloc(cap + 8)
    s.age_ok = <uint8_t*>malloc(cap + 8)
    s.ones = <uint8_t*>malloc(cap + 8)
    s.codes = <int64_t*>malloc((nk + 1) * cap * sizeof(int64_t))
    s.nulls = <uint32_t*>malloc(cap * sizeof(uint32_t))
    s.dcache = <DictCache*>calloc(nk + 1, sizeof(DictCache))
    if (s.gid == NULL or s.sel == NULL or s.flags == NULL or s.tagged == NULL
            or s.dpd == NULL or s.prev == NULL or s.dpd_ok == NULL or s.prev_ok == NULL
            or s.money == NULL or s.ob == NULL or s.active == NULL or s.dsl == NULL
            or s.age == NULL or s.dsl_ok == NULL or s.age_ok == NULL or s.ones == NULL
            or s.codes == NULL or s.nulls == NULL or s.dcache == NULL):
        return -1
    memset(s.ones, 1, cap)
    for j in range(nk):
        s.dcache[j].batch = -1
    return 0


# --------------------------------------------------------------------------------------
# Spare buffers. A small call spent about as long in malloc and free of its group table
# and scratch columns as in its rows, and freeing blocks this large (over 64 KiB) makes
# glibc consolidate its free lists, which slows every small allocation after it. So the
# buffers of finished group tables and scratch areas, up to a bounded size and number, are
# kept and reused (at most N_SPARE of each: about 5 MB in all). Taken and given back only
# with the GIL held, which is the lock (the functions are nogil only to be callable
# from nogil helpers such as part_init; every caller holds the GIL). A free-threaded build
# has no such lock and keeps no spares (MC_KEEP_SPARES is 0 there).
# --------------------------------------------------------------------------------------
cdef enum:
    N_SPARE = 4
    SPARE_MAX_GROUPS = 2048     # a group table's capacity in groups
    SPARE_MAX_DIRECT = 4096     # direct-map entries kept with it (reset on every reuse)

cdef struct PartBufs:
    int64_t cap
    int64_t gkeys_words         # capacity of gkeys in codes (cap * key columns)
    int64_t* gkeys
    uint32_t* gnull
    uint64_t* ghash
    int64_t* acc
    void* hot_raw
    int64_t* hot
    int32_t* slots
    int64_t mask
    int32_t* direct
    int64_t dcap

cdef PartBufs _spare_parts[N_SPARE]
cdef int _n_spare_parts = 0
cdef Scratch _spare_scratch[N_SPARE]
cdef int _n_spare_scratch = 0


cdef void part_bufs_swap(Part* t, PartBufs* b) noexcept nogil:
    """Exchange the group-table buffers (and their sizes) of ``t`` and ``b``: taking a spare
    swaps it into a table that has none, keeping one swaps the table's into an empty slot."""
    t.cap, b.cap = b.cap, t.cap
    t.gkeys, b.gkeys = b.gkeys, t.gkeys
    t.gnull, b.gnull = b.gnull, t.gnull
    t.ghash, b.ghash = b.ghash, t.ghash
    t.acc, b.acc = b.acc, t.acc
    t.hot_raw, b.hot_raw = b.hot_raw, t.hot_raw
    t.hot, b.hot = b.hot, t.hot
    t.slots, b.slots = b.slots, t.slots
    t.mask, b.mask = b.mask, t.mask
    t.direct, b.direct = b.direct, t.direct
    t.dcap, b.dcap = b.dcap, t.dcap


cdef void part_take_spare(Part* t) noexcept nogil:
    """Give the empty table ``t`` (fresh from ``part_init``'s memset) spare buffers, if any:
    its capacity is what the spare's key array holds for ``t``'s key count."""
    global _n_spare_parts
    cdef int64_t nk = t.n_keys if t.n_keys > 0 else 1
    cdef int64_t words
    if not MC_KEEP_SPARES or _n_spare_parts == 0:
        return
    _n_spare_parts -= 1
    words = _spare_parts[_n_spare_parts].gkeys_words
    part_bufs_swap(t, &_spare_parts[_n_spare_parts])
    if words < t.cap * nk:
        t.cap = words // nk
    memset(t.slots, 0xff, (t.mask + 1) * sizeof(int32_t))
    if t.direct != NULL:
        memset(t.direct, 0xff, t.dcap * sizeof(int32_t))


cdef void part_release(Part* t) noexcept nogil:
    """``part_free``, keeping the buffers of a small table as a spare."""
    global _n_spare_parts
    cdef PartBufs* b
    if (MC_KEEP_SPARES and _n_spare_parts < N_SPARE and t.cap > 0
            and t.cap <= SPARE_MAX_GROUPS and t.slots != NULL):
        if t.dcap > SPARE_MAX_DIRECT:     # too large to reset on every reuse
            free(t.direct)
            t.direct = NULL
            t.dcap = 0
        b = &_spare_parts[_n_spare_parts]
        _n_spare_parts += 1
        memset(b, 0, sizeof(PartBufs))
        b.gkeys_words = t.cap * (t.n_keys if t.n_keys > 0 else 1)
        part_bufs_swap(t, b)              # t is left without buffers for part_free
    part_free(t)


cdef int scratch_take(Scratch* s, int nk, int64_t cap) noexcept nogil:
    """``scratch_init``, from a spare scratch area with room for ``cap`` rows if there is one."""
    global _n_spare_scratch
    cdef int i, j
    for i in range(_n_spare_scratch - 1 if MC_KEEP_SPARES else -1, -1, -1):
        if _spare_scratch[i].nk == nk and _spare_scratch[i].cap >= cap:
            s[0] = _spare_scratch[i]
            _n_spare_scratch -= 1
            _spare_scratch[i] = _spare_scratch[_n_spare_scratch]
            for j in range(nk):
                s.dcache[j].batch = -1   # cached dictionary codes belong to another job
            return 0
    return scratch_init(s, nk, cap)


cdef enum:
    SPARE_FIN_BYTES = 1 << 20  # finalize's scratch kept up to this size (18K groups)
cdef void* _spare_fin = NULL
cdef int64_t _spare_fin_bytes = 0


cdef void* fin_scratch_take(int64_t nbytes) noexcept nogil:
    """``malloc(nbytes)`` for finalize, from the spare block when it is big enough."""
    global _spare_fin, _spare_fin_bytes
    cdef void* p
    if MC_KEEP_SPARES and _spare_fin != NULL and _spare_fin_bytes >= nbytes:
        p = _spare_fin
        _spare_fin = NULL
        return p
    return malloc(nbytes)


cdef void fin_scratch_give(void* p, int64_t nbytes) noexcept nogil:
    """``free(p)``, keeping a block of at most SPARE_FIN_BYTES as the spare (the larger of it
    and the current spare)."""
    global _spare_fin, _spare_fin_bytes
    if (MC_KEEP_SPARES and nbytes <= SPARE_FIN_BYTES
            and (_spare_fin == NULL or nbytes > _spare_fin_bytes)):
        free(_spare_fin)
        _spare_fin = p
        _spare_fin_bytes = nbytes
    else:
        free(p)


cdef void scratch_give(Scratch* s) noexcept nogil:
    """``scratch_free``, keeping a chunk-sized scratch area as a spare. Only for an area
    that ``scratch_take`` built completely (a partly allocated one is freed)."""
    global _n_spare_scratch
    if MC_KEEP_SPARES and _n_spare_scratch < N_SPARE and s.cap <= CH:
        _spare_scratch[_n_spare_scratch] = s[0]
        _n_spare_scratch += 1
        memset(s, 0, sizeof(Scratch))
    else:
        scratch_free(s, s.nk)


# --------------------------------------------------------------------------------------
# Python-facing objects
# --------------------------------------------------------------------------------------
_INT_FORMATS = {
    "c": (1, True, "int8"), "C": (1, False, "uint8"), "s": (2, True, "int16"),
    "S": (2, False, "uint16"), "i": (4, True, "int32"), "I": (4, False, "uint32"),
    "l": (8, True, "int64"), "L": (8, False, "uint64"),
}
_STRING_FORMATS = {"u": (K_UTF8, "string"), "U": (K_LUTF8, "large_string"),
                   "vu": (K_VIEW, "string_view")}
# Type names as pyarrow prints them, so that both implementations word errors alike.
_OTHER_NAMES = {"n": "null", "b": "bool", "e": "halffloat", "f": "float", "g": "double",
                "z": "binary", "Z": "large_binary", "vz": "binary_view", "tdD": "date32[day]",
                "tdm": "date64[ms]", "tts": "time32[s]", "ttm": "time32[ms]",
                "ttu": "time64[us]", "ttn": "time64[ns]"}
_UNITS = {"s": "s", "m": "ms", "u": "us", "n": "ns"}
_NESTED = {"+l": "list", "+L": "large_list", "+vl": "list_view", "+vL": "large_list_view"}


cdef str _fmt(const char* f):
    return f.decode("utf-8", "replace")


# wraparound on: the [-1] / [:-1] below index Python lists and strings, which the
# module-wide wraparound=False would turn into out-of-bounds reads.
@cython.wraparound(True)
cdef str _describe(ArrowSchema* sc):
    """The type of ``sc`` as pyarrow prints it (for error messages)."""
    cdef str fmt = _fmt(sc.format)
    cdef int64_t i
    if sc.dictionary != NULL:
        return (f"dictionary<values={_describe(sc.dictionary)}, indices={_describe_plain(fmt)}, "
                f"ordered={int(sc.flags & 1)}>")
    children = []
    for i in range(sc.n_children):
        name = sc.children[i].name
        children.append(("" if name == NULL else name.decode("utf-8", "replace"),
                         _describe(sc.children[i])))
    if fmt in _NESTED and children:
        return f"{_NESTED[fmt]}<{children[0][0]}: {children[0][1]}>"
    if fmt.startswith("+w:") and children:
        return f"fixed_size_list<{children[0][0]}: {children[0][1]}>[{fmt[3:]}]"
    if fmt == "+s":
        return "struct<" + ", ".join(f"{n}: {t}" for n, t in children) + ">"
    if fmt == "+m" and children:
        inner = _describe(sc.children[0])  # struct<key: K, value: V>
        # no negative indices here: this module is compiled with wraparound=False
        kv = inner[len("struct<"):len(inner) - 1].split(", ", 1)
        return "map<" + ", ".join(x.split(": ", 1)[len(x.split(": ", 1)) - 1] for x in kv) + ">"
    return _describe_plain(fmt)


cdef str _describe_plain(str fmt):
    if fmt in _INT_FORMATS:
        return _INT_FORMATS[fmt][2]
    if fmt in _STRING_FORMATS:
        return _STRING_FORMATS[fmt][1]
    if fmt in _OTHER_NAMES:
        return _OTHER_NAMES[fmt]
    if fmt.startswith("d:"):
        parts = fmt[2:].split(",")
        bits = parts[2] if len(parts) > 2 else "128"
        return f"decimal{bits}({parts[0]}, {parts[1] if len(parts) > 1 else '?'})"
    if fmt.startswith("w:"):
        return f"fixed_size_binary[{fmt[2:]}]"
    if fmt.startswith("ts") and len(fmt) >= 4:
        tz = fmt[4:]
        unit = _UNITS.get(fmt[2], fmt[2])
        return f"timestamp[{unit}, tz={tz}]" if tz else f"timestamp[{unit}]"
    if fmt.startswith("tD") and len(fmt) == 3:
        return f"duration[{_UNITS.get(fmt[2], fmt[2])}]"
    return f"format {fmt!r}"


cdef class ColumnType:
    """How one input column is read (parsed from its Arrow C format string)."""
    cdef public int kind
    cdef public int width
    cdef public bint is_signed
    cdef public int dec_scale
    cdef public ColumnType value      # dictionary value type
    cdef public str name              # readable Arrow type name

    def __repr__(self):
        return f"ColumnType({self.name})"


cdef ColumnType _parse_plain(str fmt):
    cdef ColumnType t = ColumnType()
    t.kind = 0
    if fmt == "b":
        t.kind = K_BOOL
    elif fmt in _INT_FORMATS:
        t.kind = K_INT
        t.width, t.is_signed, _ = _INT_FORMATS[fmt]
    elif fmt == "f":
        t.kind = K_FLOAT32
    elif fmt == "g":
        t.kind = K_FLOAT64
    elif fmt in _STRING_FORMATS:
        t.kind = _STRING_FORMATS[fmt][0]
    elif fmt.startswith("d:"):
        parts = fmt[2:].split(",")
        if len(parts) == 2 or (len(parts) == 3 and parts[2] == "128"):
            try:
                t.dec_scale = int(parts[1])
                t.kind = K_DEC128
            except ValueError:
                t.kind = 0
    return t


cdef ColumnType _parse_schema_type(ArrowSchema* sc):
    cdef ColumnType t
    if sc.dictionary != NULL:
        t = _parse_plain(_fmt(sc.format))
        if t.kind != K_INT:
            t.kind = 0
            return t
        t.value = _parse_plain(_fmt(sc.dictionary.format))
        t.kind = K_DICT if t.value.kind in (K_INT, K_UTF8, K_LUTF8, K_VIEW) else 0
    else:
        t = _parse_plain(_fmt(sc.format))
    t.name = _describe(sc)
    return t


cdef object _stream_error(ArrowArrayStream* st, int rc):
    cdef const char* msg = st.get_last_error(st) if st.get_last_error != NULL else NULL
    text = msg.decode("utf-8", "replace") if msg != NULL else f"error code {rc}"
    return ValueError(f"the Arrow stream failed: {text}")


cdef class ArrowInput:
    """The record batches of one input, imported through the Arrow C Data Interface.

    Holds the producer's buffers alive (zero-copy) until it is garbage collected.
    """
    cdef object _keep                 # capsules owning what we borrow
    cdef ArrowSchema _schema          # owned copy when read from a stream
    cdef ArrowSchema* schema
    cdef ArrowArray* arrays
    cdef int64_t n_arrays
    cdef int64_t cap
    cdef public list names
    cdef public int64_t num_rows

    def __cinit__(self):
        self.schema = NULL
        self.arrays = NULL
        self.n_arrays = 0
        self.cap = 0
        memset(&self._schema, 0, sizeof(ArrowSchema))

    def __dealloc__(self):
        cdef int64_t i
        for i in range(self.n_arrays):
            if self.arrays[i].release != NULL:
                self.arrays[i].release(&self.arrays[i])
        free(self.arrays)
        if self._schema.release != NULL:
            self._schema.release(&self._schema)

    cdef ArrowArray* _slot(self) except NULL:
        cdef void* q
        if self.n_arrays == self.cap:
            q = realloc(self.arrays, (2 * self.cap + 4) * sizeof(ArrowArray))
            if q == NULL:
                raise MemoryError()
            self.arrays = <ArrowArray*>q
            self.cap = 2 * self.cap + 4
        memset(&self.arrays[self.n_arrays], 0, sizeof(ArrowArray))
        return &self.arrays[self.n_arrays]

    @staticmethod
    def from_stream(object capsule):
        """Import every batch of an ``arrow_array_stream`` PyCapsule."""
        cdef ArrowInput self = ArrowInput()
        cdef ArrowArrayStream* st
        cdef ArrowArray* out
        cdef int rc
        if not PyCapsule_IsValid(capsule, b"arrow_array_stream"):
            raise TypeError("__arrow_c_stream__ did not return an 'arrow_array_stream' PyCapsule")
        st = <ArrowArrayStream*>PyCapsule_GetPointer(capsule, b"arrow_array_stream")
        self._keep = capsule
        if st.release == NULL:
            raise ValueError("the Arrow stream was already released")
        rc = st.get_schema(st, &self._schema)
        if rc != 0:
            raise _stream_error(st, rc)
        self.schema = &self._schema
        self._check_schema()
        while True:
            PyErr_CheckSignals()      # a long stream stays interruptible between batches
            out = self._slot()
            rc = st.get_next(st, out)
            if rc != 0:
                raise _stream_error(st, rc)
            if out.release == NULL:
                break
            self.n_arrays += 1
            self._check_batch(out)
        return self

    @staticmethod
    def from_array(object schema_capsule, object array_capsule):
        """Import one struct array (a record batch) from ``__arrow_c_array__`` capsules."""
        cdef ArrowInput self = ArrowInput()
        cdef ArrowArray* src
        cdef ArrowArray* out
        if not (PyCapsule_IsValid(schema_capsule, b"arrow_schema")
                and PyCapsule_IsValid(array_capsule, b"arrow_array")):
            raise TypeError("__arrow_c_array__ did not return 'arrow_schema' and "
                            "'arrow_array' PyCapsules")
        self._keep = (schema_capsule, array_capsule)
        self.schema = <ArrowSchema*>PyCapsule_GetPointer(schema_capsule, b"arrow_schema")
        self._check_schema()
        src = <ArrowArray*>PyCapsule_GetPointer(array_capsule, b"arrow_array")
        if src.release == NULL:
            raise ValueError("the Arrow array was already released")
        out = self._slot()
        memcpy(out, src, sizeof(ArrowArray))
        src.release = NULL            # moved: the capsule no longer owns it
        self.n_arrays = 1
        self._check_batch(out)
        return self

    cdef _check_schema(self):
        cdef int64_t i
        if not _schema_tree_sound(self.schema, 0):
            _check_schema_tree(self.schema, "", 0)   # raises, naming what is wrong
        if _fmt(self.schema.format) != "+s":
            raise TypeError("expected a table-like Arrow input (a struct / record batch), "
                            f"got Arrow type {_describe(self.schema)}")
        if self.schema.dictionary != NULL:
            raise ValueError("the Arrow schema of a table-like input has a dictionary: a "
                             "struct cannot be dictionary-encoded")
        self.names = []
        for i in range(self.schema.n_children):
            name = self.schema.children[i].name
            self.names.append(name.decode("utf-8", "replace") if name != NULL else "")
        self.num_rows = 0

    cdef _check_batch(self, ArrowArray* a):
        if a.n_children != self.schema.n_children:
            raise ValueError(f"a record batch has {a.n_children} columns but the schema has "
                             f"{self.schema.n_children}")
        if a.n_children > 0 and a.children == NULL:
            raise ValueError(f"a record batch has {a.n_children} columns but a NULL children "
                             "array")
        if a.n_buffers < 0 or (a.n_buffers > 0 and a.buffers == NULL):
            raise ValueError(f"a record batch has {a.n_buffers} buffers but a NULL buffers "
                             "array")
        if a.null_count != 0 and a.n_buffers > 0 and a.buffers[0] != NULL:
            raise ValueError("top-level (struct) nulls are not supported in a table input")
        if a.length < 0 or a.offset < 0:
            raise ValueError("a record batch has a negative length or offset")
        if a.offset > INT64_MAX - a.length:
            raise ValueError("a record batch's offset + length overflows int64")
        if a.length > INT64_MAX - self.num_rows:
            raise ValueError("the record batches' lengths add up to more than int64 can hold")
        self.num_rows += a.length

    def export_addresses(self):
        """Check every batch as a whole, then hand out the C structs for pyarrow's importer:
        ``(schema address, [address of each batch])``.

        For the consumers that carry every column through pyarrow (``derive_snapshot``):
        pyarrow's importer reads through every pointer of every column, so each batch's
        whole array tree is checked against the schema first (``_check_array_tree``).
        ``pyarrow.Schema._import_from_c`` / ``pyarrow.RecordBatch._import_from_c`` then
        *move* the structs (they mark ours released), so each address may be imported
        once; what is not imported is released with this object. Keep it alive until the
        imports are done."""
        cdef int64_t i
        cdef ArrowSchema* sc = self.schema
        if sc == NULL or sc.release == NULL:
            raise ValueError("the Arrow schema was already handed out")
        for i in range(self.n_arrays):
            _check_array_tree(&self.arrays[i], sc, "a record batch", 0)
        return (<uintptr_t>sc, [<uintptr_t>&self.arrays[i] for i in range(self.n_arrays)])

    def column_type(self, int index):
        """The :class:`ColumnType` of column ``index``."""
        return _parse_schema_type(self.schema.children[index])

    def schema_key(self):
        """Bytes that identify the schema: every column's name, format, flags, children and
        dictionary, recursively (the metadata is left out). Equal keys give equal
        ``names`` and ``column_type`` results, so a caller can cache what it derives from
        them."""
        cdef bytes out = PyBytes_FromStringAndSize(NULL, _schema_key(self.schema, NULL, 0))
        _schema_key(self.schema, PyBytes_AS_STRING(out), 0)
        return out


cdef enum:
    MAX_SCHEMA_DEPTH = 64


cdef bint _schema_tree_sound(const ArrowSchema* sc, int depth) noexcept nogil:
    """Whether ``_check_schema_tree`` would pass: the same checks without building any
    message, so that a sound schema (every call's case) costs no Python objects."""
    cdef int64_t i
    if depth > MAX_SCHEMA_DEPTH or sc.format == NULL or sc.n_children < 0:
        return False
    if sc.n_children > 0 and sc.children == NULL:
        return False
    for i in range(sc.n_children):
        if sc.children[i] == NULL or not _schema_tree_sound(sc.children[i], depth + 1):
            return False
    return sc.dictionary == NULL or _schema_tree_sound(sc.dictionary, depth + 1)


cdef int _check_schema_tree(ArrowSchema* sc, str where, int depth) except -1:
    """Every pointer the C Data Interface requires of ``sc`` and of its children and
    dictionary, recursively, must be set: a NULL ``format``, ``children`` array or child
    would be read through by ``_describe``, ``column_type`` and ``schema_key``.

    ``where`` names the schema for the error ("" for the top one, else "column 'x'" and so
    on); the depth is bounded, so that a producer's cyclic schema is an error too."""
    cdef int64_t i
    cdef str sub
    cdef const char* cname
    what = f"{where}: the Arrow schema" if where else "the Arrow schema"
    if depth > MAX_SCHEMA_DEPTH:
        raise ValueError(f"{what} is nested more than {MAX_SCHEMA_DEPTH} levels deep")
    if sc.format == NULL:
        raise ValueError(f"{what} has a NULL format")
    if sc.n_children < 0:
        raise ValueError(f"{what} has a negative number of children")
    if sc.n_children > 0 and sc.children == NULL:
        raise ValueError(f"{what} has {sc.n_children} children but a NULL children array")
    for i in range(sc.n_children):
        if sc.children[i] == NULL:
            raise ValueError(f"{what} has a NULL child {i}")
        cname = sc.children[i].name
        name = "" if cname == NULL else cname.decode("utf-8", "replace")
        sub = f"column {name!r}" if depth == 0 else f"{where}, child {i} ({name!r})"
        _check_schema_tree(sc.children[i], sub, depth + 1)
    if sc.dictionary != NULL:
        _check_schema_tree(sc.dictionary, f"{where or 'the schema'}, dictionary", depth + 1)
    return 0


cdef int _check_array_tree(ArrowArray* a, ArrowSchema* sc, str where, int depth) except -1:
    """Every pointer the C Data Interface requires of array ``a`` (of schema ``sc``, already
    checked by ``_check_schema_tree``) and of its children and dictionary, recursively:
    ``buffers`` and ``children`` arrays, each child, a dictionary exactly when the schema
    has one; and lengths and offsets not negative. Buffer contents are pyarrow's to
    validate (``validate(full=True)``)."""
    cdef int64_t i
    cdef const char* cname
    if a == NULL:
        raise ValueError(f"{where}: missing Arrow array")
    if a.release == NULL:
        raise ValueError(f"{where}: the Arrow array was already released")
    if a.n_buffers < 0 or (a.n_buffers > 0 and a.buffers == NULL):
        raise ValueError(f"{where}: malformed Arrow array: {a.n_buffers} buffers but a NULL "
                         "buffers array")
    if a.n_children != sc.n_children:
        raise ValueError(f"{where}: malformed Arrow array: {a.n_children} children, but "
                         f"its schema has {sc.n_children}")
    if a.n_children > 0 and a.children == NULL:
        raise ValueError(f"{where}: malformed Arrow array: {a.n_children} children but a "
                         "NULL children array")
    if (a.dictionary != NULL) != (sc.dictionary != NULL):
        raise ValueError(f"{where}: malformed Arrow array: "
                         f"{'a' if a.dictionary != NULL else 'no'} dictionary, but its "
                         f"schema has {'one' if sc.dictionary != NULL else 'none'}")
    if a.length < 0 or a.offset < 0:
        raise ValueError(f"{where}: the Arrow array has a negative length or offset")
    for i in range(a.n_children):
        cname = sc.children[i].name
        name = "" if cname == NULL else cname.decode("utf-8", "replace")
        sub = f"column {name!r}" if depth == 0 else f"{where}, child {i} ({name!r})"
        if a.children[i] == NULL:
            raise ValueError(f"{sub}: missing Arrow array (a NULL child)")
        _check_array_tree(a.children[i], sc.children[i], sub, depth + 1)
    if a.dictionary != NULL:
        _check_array_tree(a.dictionary, sc.dictionary, f"{where}, dictionary", depth + 1)
    return 0


cdef int64_t _key_str(const char* text, char* out, int64_t at) noexcept nogil:
    cdef int64_t ln = -1 if text == NULL else <int64_t>strlen(text)
    if out != NULL:
        memcpy(out + at, &ln, 8)
        if ln > 0:
            memcpy(out + at + 8, text, ln)
    return at + 8 + (ln if ln > 0 else 0)


cdef int64_t _schema_key(ArrowSchema* sc, char* out, int64_t at) noexcept nogil:
    """Write the key of ``sc`` at ``out + at`` (only measure when ``out`` is NULL); returns
    the end position. Strings are length-prefixed (8 bytes, -1 for NULL) and so is the
    dictionary (-1: none), so that different schemas never give the same bytes."""
    cdef int64_t i, has_dict = -1 if sc.dictionary == NULL else 0
    at = _key_str(sc.name, out, at)
    at = _key_str(sc.format, out, at)
    if out != NULL:
        memcpy(out + at, &sc.flags, 8)
        memcpy(out + at + 8, &sc.n_children, 8)
        memcpy(out + at + 16, &has_dict, 8)
    at += 24
    for i in range(sc.n_children):
        at = _schema_key(sc.children[i], out, at)
    if sc.dictionary != NULL:
        at = _schema_key(sc.dictionary, out, at)
    return at


cdef int _check_layout(ArrowArray* a, int kind, str name, str what) except -1:
    """``a``'s buffers, children and dictionary must be those of its schema type ``kind``.

    The C Data Interface carries no type per batch: a stream batch that does not match the
    stream's schema (a producer bug) shows up only here, as a different layout. Reading it
    with the schema's layout would read past its buffers."""
    cdef bint ok
    if a == NULL:
        raise ValueError(f"column {name!r}: missing Arrow {what}")
    if kind == K_VIEW:
        ok = a.n_buffers >= 3        # validity, views, data buffers..., buffer sizes
    elif kind in (K_UTF8, K_LUTF8):
        ok = a.n_buffers == 3
    else:
        ok = a.n_buffers == 2
    if ok and a.buffers == NULL:
        raise ValueError(f"column {name!r}: malformed Arrow {what}: {a.n_buffers} buffers "
                         "but a NULL buffers array")
    if not ok or a.n_children != 0 or (a.dictionary != NULL) != (kind == K_DICT):
        raise ValueError(f"column {name!r}: malformed Arrow {what}: {a.n_buffers} buffers, "
                         f"{a.n_children} children and "
                         f"{'a' if a.dictionary != NULL else 'no'} dictionary do not match "
                         "the schema's type (did the stream's schema change between batches?)")
    if a.length < 0 or a.offset < 0:
        raise ValueError(f"column {name!r}: the Arrow {what} has a negative length or offset")
    if a.offset > INT64_MAX - a.length:
        raise ValueError(f"column {name!r}: the Arrow {what}'s offset + length overflows int64")
    return 0


cdef int _fill_strings(Col* c, ArrowArray* a, str name, str what) except -1:
    """Point ``c.chars`` at the character data of a string array; the spec lets a producer
    leave it NULL when it is empty (every string empty or null).

    Sets the bounds ``string_at`` checks every string it reads against: offsets from
    max(0, first offset) to the last offset of the array. The C Data Interface does not
    transmit the data buffer's size, so the last offset is trusted to lie within it."""
    cdef int64_t first = 0, last = 0
    c.chars = <const char*>a.buffers[2]
    if a.length > 0 and c.values != NULL:
        if c.kind == K_UTF8:
            first = (<const int32_t*>c.values)[a.offset]
            last = (<const int32_t*>c.values)[a.offset + a.length]
        else:
            first = (<const int64_t*>c.values)[a.offset]
            last = (<const int64_t*>c.values)[a.offset + a.length]
    c.str_lo = first if first > 0 else 0
    c.str_hi = last
    if c.chars != NULL or a.length == 0 or c.values == NULL:
        return 0
    if last != first:
        raise ValueError(f"column {name!r}: missing data buffer in the Arrow {what}")
    c.chars = ""                   # all strings are empty: never dereferenced
    return 0


cdef int _fill_views(Col* c, ArrowArray* a, str name, str what) except -1:
    """Point ``c.vbufs`` / ``c.vsizes`` at the variadic data buffers of a string_view array
    and at their sizes (its last buffer), which ``string_at`` checks every view against."""
    cdef int64_t i
    c.vbufs = <const char**>(a.buffers + 2)
    c.n_vbufs = a.n_buffers - 3
    c.vsizes = <const int64_t*>a.buffers[a.n_buffers - 1]
    if a.length == 0:
        # no view is read: a producer may leave every buffer of an empty array NULL, data
        # buffers of a zero-length slice included (whatever sizes it still declares)
        return 0
    if c.n_vbufs > 0 and c.vsizes == NULL:
        raise ValueError(f"column {name!r}: missing buffer sizes (last buffer) in the Arrow "
                         f"{what} of type string_view")
    for i in range(c.n_vbufs):
        if c.vbufs[i] == NULL and c.vsizes[i] != 0:
            raise ValueError(f"column {name!r}: missing data buffer {i} in the Arrow {what} "
                             "of type string_view")
    return 0


cdef int _fill_col(Col* c, Col* dslot, ArrowArray* parent, ArrowArray* a, ColumnType t,
                   str name) except -1:
    """Point ``c`` at the buffers of child array ``a`` (checked against its type)."""
    _check_layout(a, t.kind, name, "array")
    memset(c, 0, sizeof(Col))
    c.kind = t.kind
    c.width = t.width
    c.is_signed = t.is_signed
    c.dec_scale = t.dec_scale
    # the batch's rows are the child's [a.offset + parent.offset, ... + parent.length); both
    # offset + length sums were checked not to overflow, so neither can these
    if a.length < parent.length + parent.offset:
        raise ValueError(f"column {name!r}: a child array is shorter than its record batch")
    c.offset = a.offset + parent.offset
    c.length = a.length
    if a.null_count != 0 and a.buffers[0] != NULL:
        c.validity = <const uint8_t*>a.buffers[0]
    c.values = a.buffers[1]
    if c.values == NULL and a.length > 0:
        raise ValueError(f"column {name!r}: missing data buffer")
    if t.kind in (K_UTF8, K_LUTF8):
        _fill_strings(c, a, name, "array")
    elif t.kind == K_VIEW:
        _fill_views(c, a, name, "array")
    if t.kind == K_DICT:
        _fill_dict(dslot, a.dictionary, t.value, name)
        c.dict = dslot
    return 0


cdef int _fill_dict(Col* c, ArrowArray* a, ColumnType t, str name) except -1:
    _check_layout(a, t.kind, name, "dictionary")
    memset(c, 0, sizeof(Col))
    c.kind = t.kind
    c.width = t.width
    c.is_signed = t.is_signed
    c.offset = a.offset
    c.length = a.length
    if a.null_count != 0 and a.buffers[0] != NULL:
        c.validity = <const uint8_t*>a.buffers[0]
    c.values = a.buffers[1]
    if c.values == NULL and a.length > 0:
        raise ValueError(f"column {name!r}: missing data buffer in the Arrow dictionary")
    if t.kind in (K_UTF8, K_LUTF8):
        _fill_strings(c, a, name, "dictionary")
    elif t.kind == K_VIEW:
        _fill_views(c, a, name, "dictionary")
    return 0


cdef class Partial:
    """Per-group exact accumulators of some rows: the unit that threads produce and merge.

    ``merge`` adds another partial's groups (exact integer sums, so any merge order gives
    the same totals); the float64 ratio step lives apart, in :func:`finalize`.
    """
    cdef Part p
    cdef public list key_types

    def __cinit__(self, list key_types):
        cdef int nk = len(key_types)
        cdef bint* is_str
        cdef int j
        if nk > 32:  # key nulls are a uint32 bit mask per group (see key_pass)
            raise ValueError(f"at most 32 key columns are supported, got {nk}")
        is_str = <bint*>calloc(nk + 1, sizeof(bint))
        if is_str == NULL:
            raise MemoryError()
        for j in range(nk):
            is_str[j] = (<ColumnType>key_types[j]).kind != K_INT and not (
                (<ColumnType>key_types[j]).kind == K_DICT
                and (<ColumnType>key_types[j]).value.kind == K_INT)
        self.key_types = key_types
        rc = part_init(&self.p, nk, is_str)
        free(is_str)
        if rc != 0:
            raise MemoryError()

    def __dealloc__(self):
        part_release(&self.p)

    @property
    def n_groups(self):
        return self.p.G

    def merge(self, Partial other):
        """Add ``other``'s groups into this partial."""
        cdef int rc
        if other.p.n_keys != self.p.n_keys:
            raise ValueError("cannot merge partials with different key columns")
        with nogil:
            rc = part_merge(&self.p, &other.p)
        if rc != 0:
            raise MemoryError()

    def key_arrays(self):
        """Per key column: (values, nulls) numpy arrays, one entry per group.

        Integer keys give int64 values (the uint64 bit pattern for uint64); string keys give
        ``(offsets int64, bytes uint8)`` of the group's key instead of values.
        """
        cdef int nk = self.p.n_keys, j
        cdef int64_t G = self.p.G, g, total
        cdef cnp.ndarray[cnp.int64_t] vals
        cdef cnp.ndarray[cnp.uint8_t] nulls
        cdef cnp.ndarray[cnp.int64_t] offs
        cdef cnp.ndarray[cnp.uint8_t] data
        cdef Interner* it
        out = []
        for j in range(nk):
            vals = np.empty(G, dtype=np.int64)
            nulls = np.empty(G, dtype=np.uint8)
            for g in range(G):
                vals[g] = self.p.gkeys[g * nk + j]
                nulls[g] = (self.p.gnull[g] >> j) & 1
            if not self.p.is_str[j]:
                out.append((vals, nulls.astype(bool)))
                continue
            it = &self.p.interners[j]
            offs = np.zeros(G + 1, dtype=np.int64)
            total = 0
            for g in range(G):
                if not nulls[g]:
                    total += it.lens[vals[g]]
                offs[g + 1] = total
            data = np.empty(total, dtype=np.uint8)
            for g in range(G):
                if not nulls[g] and it.lens[vals[g]] > 0:
                    memcpy(&data[offs[g]], it.arena + it.offs[vals[g]], it.lens[vals[g]])
            out.append(((offs, data), nulls.astype(bool)))
        return out


cdef void _int_key_values(Partial part, const int64_t* order, int64_t G, int width,
                          char* values) noexcept nogil:
    """The key of each group in ``order``, truncated to the key's width as numpy's astype
    does."""
    cdef int64_t i, x
    for i in range(G):
        x = part.p.gkeys[order[i]]
        if width == 1:
            (<int8_t*>values)[i] = <int8_t>x
        elif width == 2:
            (<int16_t*>values)[i] = <int16_t>x
        elif width == 4:
            (<int32_t*>values)[i] = <int32_t>x
        else:
            (<int64_t*>values)[i] = x


def int_key_column(Partial part, ColumnType t):
    """Group order and output column of a single integer key, by a counting sort.

    ``t`` is the key's type (integers, or a dictionary of integers). Returns
    ``(order, (null_count, (validity, values)))``: the group ids sorted by key ascending with
    the null group last, and the key column in that order as Arrow buffers (values in the
    key's own integer type, ``validity`` None without a null group). Returns None when the
    keys span more than a few times as many values as there are groups: the caller sorts.
    """
    cdef ColumnType inner = t.value if t.kind == K_DICT else t
    cdef int64_t G = part.p.G, g, i, n_valid = 0, null_g = -1, span, x
    cdef uint64_t u, lo = UINT64_MAX, hi = 0
    cdef uint64_t flip = 0 if (inner.width == 8 and not inner.is_signed) else (<uint64_t>1) << 63
    cdef int width = inner.width
    cdef int32_t* slot
    if part.p.n_keys != 1 or part.p.is_str[0] or inner.kind != K_INT:
        raise ValueError("int_key_column needs a partial with one integer key")
    dtype = _INT_DTYPES[(width, bool(inner.is_signed))]
    order_np = np.empty(G, dtype=np.int64)
    values_np = np.empty(G, dtype=dtype)
    cdef int64_t* order = <int64_t*>cnp.PyArray_DATA(<cnp.ndarray>order_np)
    cdef char* values = <char*>cnp.PyArray_DATA(<cnp.ndarray>values_np)
    # Usually every key is a small non-negative code, so the (exact) direct map already
    # lists the groups in key order: one scan, when the map is not much sparser than that.
    cdef const int32_t* direct = part.p.direct
    if direct != NULL and part.p.dcap <= 4 * G + 1024:
        i = 0
        with nogil:
            for x in range(part.p.dcap):
                if direct[x] >= 0:
                    order[i] = direct[x]
                    i += 1
            if i == G:
                _int_key_values(part, order, G, width, values)
        if i == G:
            return order_np, (0, (None, values_np))
    # keys as unsigned numbers in key order (signed ones shifted by 2**63)
    for g in range(G):
        if part.p.gnull[g] & 1:
            null_g = g
            continue
        u = (<uint64_t>part.p.gkeys[g]) ^ flip
        if u < lo:
            lo = u
        if u > hi:
            hi = u
        n_valid += 1
    if n_valid > 0 and hi - lo > <uint64_t>(4 * G + 1024):
        return None
    span = <int64_t>(hi - lo) + 1 if n_valid > 0 else 0
    slot = <int32_t*>malloc((span + 1) * sizeof(int32_t))
    if slot == NULL:
        raise MemoryError()
    with nogil:
        memset(slot, 0xff, (span + 1) * sizeof(int32_t))     # -1: no group
        for g in range(G):
            if not (part.p.gnull[g] & 1):
                slot[<int64_t>(((<uint64_t>part.p.gkeys[g]) ^ flip) - lo)] = <int32_t>g
        i = 0
        for x in range(span):
            if slot[x] >= 0:
                order[i] = slot[x]
                i += 1
        if null_g >= 0:
            order[i] = null_g
        _int_key_values(part, order, G, width, values)
    free(slot)
    if null_g < 0:
        return order_np, (0, (None, values_np))
    validity_np = np.zeros((G + 7) // 8, dtype=np.uint8)
    cdef uint8_t* bits = <uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>validity_np)
    for i in range(G - 1):            # every group valid but the last (the null one)
        bits[i >> 3] |= <uint8_t>(1 << (i & 7))
    return order_np, (1, (validity_np, values_np))


_INT_DTYPES = {(1, True): np.int8, (1, False): np.uint8, (2, True): np.int16,
               (2, False): np.uint16, (4, True): np.int32, (4, False): np.uint32,
               (8, True): np.int64, (8, False): np.uint64}


cdef class _Job:
    """One call's plan: column pointers of every batch, the chunk list, the config."""
    cdef Plan pl
    cdef ArrowInput src

    def __cinit__(self):
        memset(&self.pl, 0, sizeof(Plan))

    def __dealloc__(self):
        free(self.pl.batch_rows)
        free(self.pl.batch_base)
        free(self.pl.cols)
        free(self.pl.dicts)
        free(self.pl.chunk_batch)
        free(self.pl.chunk_start)


cdef class KernelConfig:
    """The numbers of a ``MetricConfig`` that :func:`prepare` and :func:`finalize` use,
    converted once per configuration (the caller caches it): ``10**money_scale``,
    ``money_scale``, ``par_days``, ``active_threshold_minor``; the ratio band thresholds as
    float64 and the score band thresholds as int64 (docs/metrics.md §5)."""
    cdef Conf conf
    cdef double fimr_green, fimr_watch, slippage_green, slippage_watch
    cdef double roll_green, roll_watch, ayr_green, ayr_watch
    cdef int64_t dqi_green, dqi_watch, risk_green, risk_watch, risk_amber

    def __init__(self, config):
        scale = config.money_scale
        self.conf.p_int = 10**scale
        self.conf.p_dbl = <double>self.conf.p_int
        self.conf.scale = scale
        self.conf.par_days = config.par_days
        self.conf.threshold = config.active_threshold_minor
        self.fimr_green = float(config.fimr_green)
        self.fimr_watch = float(config.fimr_watch)
        self.slippage_green = float(config.slippage_green)
        self.slippage_watch = float(config.slippage_watch)
        self.roll_green = float(config.roll_green)
        self.roll_watch = float(config.roll_watch)
        self.ayr_green = float(config.ayr_green)
        self.ayr_watch = float(config.ayr_watch)
        self.dqi_green = config.dqi_green
        self.dqi_watch = config.dqi_watch
        self.risk_green = config.risk_green
        self.risk_watch = config.risk_watch
        self.risk_amber = config.risk_amber


cdef _Job _build_job(ArrowInput src, list indices, list types, list names,
                     KernelConfig config):
    cdef _Job job = _Job()
    cdef Plan* pl = &job.pl
    cdef int nc = len(indices), k
    cdef int64_t b, nb = src.n_arrays, start, nchunks = 0, base = 0, ci
    cdef ArrowArray* arr
    job.src = src
    pl.n_cols = nc
    pl.n_keys = nc - N_ROLES
    pl.n_batches = nb
    pl.conf = config.conf
    pl.batch_rows = <int64_t*>calloc(nb + 1, sizeof(int64_t))
    pl.batch_base = <int64_t*>calloc(nb + 1, sizeof(int64_t))
    pl.cols = <Col*>calloc(nb * nc + 1, sizeof(Col))
    pl.dicts = <Col*>calloc(nb * nc + 1, sizeof(Col))
    if pl.batch_rows == NULL or pl.batch_base == NULL or pl.cols == NULL or pl.dicts == NULL:
        raise MemoryError()
    for b in range(nb):
        arr = &src.arrays[b]
        pl.batch_rows[b] = arr.length
        if arr.length > pl.max_rows:
            pl.max_rows = arr.length
        pl.batch_base[b] = base
        base += arr.length
        nchunks += (arr.length + CH - 1) // CH
        for k in range(nc):
            _fill_col(&pl.cols[b * nc + k], &pl.dicts[b * nc + k], arr,
                      arr.children[<int>indices[k]], <ColumnType>types[k], names[k])
    pl.n_chunks = nchunks
    pl.total_rows = base
    pl.chunk_batch = <int64_t*>malloc((nchunks + 1) * sizeof(int64_t))
    pl.chunk_start = <int64_t*>malloc((nchunks + 1) * sizeof(int64_t))
    if pl.chunk_batch == NULL or pl.chunk_start == NULL:
        raise MemoryError()
    ci = 0
    for b in range(nb):
        start = 0
        while start < pl.batch_rows[b]:
            pl.chunk_batch[ci] = b
            pl.chunk_start[ci] = start
            start += CH
            ci += 1
    return job


def prepare(ArrowInput src, list indices, list types, list names,
            KernelConfig config not None):
    """Plan a computation over ``src``.

    Parameters
    ----------
    src : ArrowInput
    indices : list of int
        Input column index of every key column, then of every role (docs/metrics.md §1 order).
    types : list of ColumnType
        Their parsed types (already checked by the caller).
    names : list of str
        Their names, for error messages.
    config : KernelConfig
        The configuration's numbers.
    """
    return _build_job(src, indices, types, names, config)


def n_chunks(_Job job):
    """Number of fixed-size chunks the job's rows are cut into."""
    return job.pl.n_chunks


cdef enum:
    # How often (milliseconds of work) the calling thread looks for signals between chunks.
    SIGNAL_CHECK_MS = 10


cdef inline void _cancel(Plan* pl) noexcept nogil:
    """Push the shared chunk counter past the end: every worker stops claiming chunks."""
    mc_fetch_add(&pl.next_chunk, pl.n_chunks + 1)


cdef bint _signal_handler_raised(PyObject** box) noexcept with gil:
    """Run the pending signal handlers (the GIL is taken here, out of ``work``'s loop);
    when one raises, keep its exception in ``*box`` (a new reference) and return True."""
    try:
        PyErr_CheckSignals()
    except BaseException as exc:
        Py_INCREF(exc)
        box[0] = <PyObject*>exc
        return True
    return False


def cancel(_Job job):
    """Stop the job's workers: each returns once it has finished the chunks it holds."""
    _cancel(&job.pl)


def work(_Job job, Partial part, int64_t workers=1, bint check_signals=False):
    """Process chunks from the job's shared counter until none are left (GIL released).

    ``workers`` is how many workers share the job (it decides when to stop claiming the
    next chunk ahead). With ``check_signals`` (the calling thread, when it is the main
    thread) the worker runs the pending signal handlers every ``SIGNAL_CHECK_MS`` of work;
    when one raises (``KeyboardInterrupt``, a time-out) it cancels the job, so that every
    worker stops after its current chunk, and re-raises that exception.

    Returns ``None`` or the ``RowError(global_row, column_position, error_code)`` of the
    first bad row this worker met (row -1 for out of memory).
    """
    cdef Scratch s
    cdef int64_t c, nxt, err_row = INT64_MAX, next_check = 0
    cdef int err_col = 0, err_code = 0
    cdef bint interrupted = False
    cdef PyObject* interrupt_box = NULL      # the handler's exception (a new reference)
    cdef Plan* pl = &job.pl
    cdef int scratch_rc = scratch_take(&s, pl.n_keys, pl.max_rows if pl.max_rows < CH else CH)
    with nogil:
        if check_signals:
            next_check = mc_now_ms() + SIGNAL_CHECK_MS
        if scratch_rc != 0:
            err_row = -1
            err_code = E_NOMEM
        elif part_reserve(&part.p, pl.total_rows if pl.total_rows < 1024 else 1024) != 0:
            err_row = -1
            err_code = E_NOMEM
        else:
            # While many chunks are left, a worker claims its next chunk before working on
            # the current one, so that the current one's row loop can prefetch the next
            # one's input. Near the end it stops claiming ahead, so that no worker sits on a
            # chunk while another finds none (and few chunks spread over all workers).
            c = mc_fetch_add(&pl.next_chunk, 1)
            while c < pl.n_chunks:
                nxt = -1
                if pl.n_chunks - c > 4 * workers:
                    nxt = mc_fetch_add(&pl.next_chunk, 1)
                    if nxt >= pl.n_chunks:
                        nxt = -1
                process_chunk(pl, &part.p, &s, c, nxt, &err_row, &err_col, &err_code)
                if check_signals and mc_now_ms() >= next_check:
                    if _signal_handler_raised(&interrupt_box):
                        interrupted = True
                        _cancel(pl)
                        break
                    next_check = mc_now_ms() + SIGNAL_CHECK_MS
                c = nxt if nxt >= 0 else mc_fetch_add(&pl.next_chunk, 1)
            if workers > 1 and not interrupted:
                # the partial will be merged, which reads the exact accumulators: fold here,
                # in parallel, rather than in the serial merge (a lone worker's partial goes
                # to finalize, which reads never-folded hot records directly)
                part_fold(&part.p, False)
    if scratch_rc == 0:
        scratch_give(&s)
    else:
        scratch_free(&s, s.nk)   # partly allocated: never kept as a spare
    if interrupted:
        interrupt = <object>interrupt_box
        Py_DECREF(interrupt)
        raise interrupt
    if err_row == INT64_MAX:
        return None
    return RowError(err_row, err_col, err_code)


#: Column kinds, for the caller's type checks.
KIND_BOOL = K_BOOL
KIND_INT = K_INT
KIND_FLOAT32 = K_FLOAT32
KIND_FLOAT64 = K_FLOAT64
KIND_DEC128 = K_DEC128
KIND_UTF8 = K_UTF8
KIND_LARGE_UTF8 = K_LUTF8
KIND_STRING_VIEW = K_VIEW
KIND_DICT = K_DICT

ERROR_CODES = {E_NAN: "nan", E_BIG: "big", E_MONEY_OVF: "money_overflow",
               E_DAY_OVF: "int_overflow", E_DICT_INDEX: "dict_index",
               E_VIEW_BUF: "view_buffer", E_NOMEM: "nomem", E_OFFSETS: "string_offsets",
               E_VIEW_BOUNDS: "view_bounds", E_UTF8: "utf8"}


# --------------------------------------------------------------------------------------
# The float64 step: aggregates -> metrics and bands (docs/metrics.md §4, §5, §6)
# --------------------------------------------------------------------------------------
# (the formulas are the column loops mc_ratio ... mc_score_bands of _metrics.h)


#: The result columns after the keys, in output order: 16 aggregates (money as float64),
#: 11 float metrics (``rdr`` nullable), 2 integer scores, 6 bands (Arrow ``string``). The
#: names and order are ``_schema``'s (AGGREGATES, FLOAT_METRICS, INT_METRICS, BANDS),
#: checked when the module is imported (``_check_schema_constants``).
cdef enum:
    B_LOANS = 0
    B_FIRST = 1
    B_PORT = 2                 # B_PORT .. B_FEED: the money aggregates
    B_D16 = 3
    B_PAR = 4
    B_PREV16 = 5
    B_ROLLED = 6
    B_DUE7 = 7
    B_INTC = 8
    B_FEEC = 9
    B_FEED = 10
    B_ACTIVE = 11
    B_SDAYS = 12
    B_NDAYS = 13
    B_SAGE = 14
    B_NAGE = 15
    N_AGGS = 16
    B_FIMR = 16
    B_SLIP = 17
    B_ROLL = 18
    B_FRR = 19
    B_PORR = 20
    B_YIELD = 21
    B_AYR = 22
    B_RDR = 23
    B_OTI = 24
    B_PEN = 25
    B_RAW = 26
    B_RISK = 27
    B_DQI = 28
    N_FIXED = 29               # the 8-byte columns: aggregates, metrics and scores
    B_FIMR_BAND = 29           # the bands, in the order of their codes
    B_SLIP_BAND = 30
    B_ROLL_BAND = 31
    B_AYR_BAND = 32
    B_DQI_BAND = 33
    B_RISK_BAND = 34
    N_BODY = 35
    N_BANDS = N_BODY - N_FIXED
    N_BODY_BUFS = 2 * N_FIXED + 3 * N_BANDS   # validity, values; validity, offsets, chars


cdef int _check_schema_constants() except -1:
    """ImportError unless the R_* roles are in ``_schema.INPUT_COLUMNS`` order and the B_*
    positions above are those of ``_schema``'s output columns."""
    from metriccore._schema import (AGGREGATES, BANDS, FLOAT_METRICS, INPUT_COLUMNS,
                                    INT_METRICS, check_layout)
    check_layout("metriccore._kernels", "snapshot column", INPUT_COLUMNS, N_ROLES, {
        "fimr_tagged": R_FIMR, "current_dpd": R_DPD, "previous_dpd": R_PREV,
        "principal_outstanding": R_P, "amount_due_7d": R_DUE7, "interest_collected": R_INTC,
        "fees_collected": R_FEEC, "fees_due": R_FEED, "outstanding_balance": R_OB,
        "days_since_last_repayment": R_DSL, "loan_age": R_AGE})
    names = [name for name, _ in AGGREGATES] + [*FLOAT_METRICS, *INT_METRICS, *BANDS]
    check_layout("metriccore._kernels", "result column", names, N_BODY, {
        "loans": B_LOANS, "first_miss": B_FIRST, "portfolio": B_PORT,
        "dpd1to6_balance": B_D16, "par_balance": B_PAR, "prev_dpd1to6_balance": B_PREV16,
        "rolled_balance": B_ROLLED, "amount_due_7d": B_DUE7, "interest_collected": B_INTC,
        "fees_collected": B_FEEC, "fees_due": B_FEED, "active_loans": B_ACTIVE,
        "sum_days_since_last_repayment": B_SDAYS, "n_days_since_last_repayment": B_NDAYS,
        "sum_loan_age": B_SAGE, "n_loan_age": B_NAGE, "fimr": B_FIMR, "slippage": B_SLIP,
        "roll": B_ROLL, "frr": B_FRR, "porr": B_PORR, "yield": B_YIELD, "ayr": B_AYR,
        "rdr": B_RDR, "oti": B_OTI, "pen_rdr": B_PEN, "risk_score_raw": B_RAW,
        "risk_score": B_RISK, "dqi": B_DQI, "fimr_band": B_FIMR_BAND,
        "slippage_band": B_SLIP_BAND, "roll_band": B_ROLL_BAND, "ayr_band": B_AYR_BAND,
        "dqi_band": B_DQI_BAND, "risk_band": B_RISK_BAND})
    # finalize writes the money aggregates (and only they) as doubles
    if [money for _, money in AGGREGATES] != [B_PORT <= k <= B_FEED for k in range(N_AGGS)]:
        raise ImportError("metriccore._kernels: the money aggregates are not "
                          "_schema.AGGREGATES' money columns")
    # ... the float metrics as doubles and the scores as int64
    if len(FLOAT_METRICS) != B_RISK - N_AGGS or len(INT_METRICS) != N_FIXED - B_RISK:
        raise ImportError("metriccore._kernels: the float and integer metrics are not "
                          "_schema's FLOAT_METRICS and INT_METRICS")
    return 0


_check_schema_constants()

# Band names by code (0 green, 1 watch, 2 flag, 3 amber, 4 red). The strings are written two
# rows at a time: BAND_PAIR[5 * a + b] holds name a then name b, zero-padded to 16 bytes.
cdef int32_t[5] BAND_LEN = [5, 5, 4, 5, 3]
cdef char BAND_PAIR[25][16]
cdef int32_t BAND_PAIR_LEN[25]


cdef void _init_band_pairs() noexcept:
    cdef const char* names[5]
    cdef int a, b
    names[0] = "green"
    names[1] = "watch"
    names[2] = "flag"
    names[3] = "amber"
    names[4] = "red"
    memset(BAND_PAIR, 0, sizeof(BAND_PAIR))
    for a in range(5):
        for b in range(5):
            memcpy(&BAND_PAIR[5 * a + b][0], names[a], BAND_LEN[a])
            memcpy(&BAND_PAIR[5 * a + b][BAND_LEN[a]], names[b], BAND_LEN[b])
            BAND_PAIR_LEN[5 * a + b] = BAND_LEN[a] + BAND_LEN[b]


_init_band_pairs()


cdef class Finalized:
    """The result columns after the keys (aggregates, metrics, scores, bands) in output
    order, in two memory blocks: fixed-width columns, then the band strings.

    Built by :func:`finalize`; :func:`export_batch` exports it without per-column Python
    objects, and :meth:`columns` gives per-column numpy views (for the per-column path).
    """
    # One pyarrow buffer (pyarrow's memory pool, not malloc: freeing a block this large
    # through glibc made it consolidate its free lists on every call): the fixed-width
    # buffers, then the band characters from byte ``strings_at``.
    cdef object block
    cdef char* block_data
    cdef int64_t strings_at
    cdef readonly int64_t length
    cdef int64_t null_count[N_BODY]
    cdef int n_buffers[N_BODY]
    # per buffer: 0 none, 1 fixed-width part, 2 strings part; its byte offset (from the
    # start of that part) and size
    cdef int buf_block[N_BODY_BUFS]
    cdef int64_t buf_off[N_BODY_BUFS]
    cdef int64_t buf_size[N_BODY_BUFS]

    cdef const void* _address(self, int b):
        if self.buf_block[b] == 0:
            return NULL
        if self.buf_block[b] == 1:
            return self.block_data + self.buf_off[b]
        return self.block_data + self.strings_at + self.buf_off[b]

    def columns(self):
        """Every column as ``(null_count, buffers)``, buffers as numpy uint8 views or None."""
        out = []
        cdef int i, _j, b = 0
        for i in range(N_BODY):
            bufs = []
            for _j in range(self.n_buffers[i]):
                if self.buf_block[b] == 0:
                    bufs.append(None)
                else:
                    start = self.buf_off[b] + (0 if self.buf_block[b] == 1 else self.strings_at)
                    bufs.append(np.frombuffer(self.block, dtype=np.uint8)[
                        start:start + self.buf_size[b]])
                b += 1
            out.append((self.null_count[i], tuple(bufs)))
        return out


cdef inline int64_t _aligned(int64_t nbytes) noexcept nogil:
    # buffers start on 64-byte boundaries of their block, as Arrow recommends
    return (nbytes + 63) & ~(<int64_t>63)


def finalize(Partial part, const int64_t[::1] order, KernelConfig config not None,
             Finalized res not None):
    """Aggregates, metrics, scores and bands of every group, in ``order``, into ``res``.

    Parameters
    ----------
    part : Partial
        The merged partial.
    order : int64 array
        Group ids in output order.
    config : KernelConfig
        The money scale and the band thresholds.
    res : Finalized
        A new ``Finalized()``, filled with the result columns after the keys: aggregates
        (money as ``float64(aggregate) / 10**money_scale``), float metrics (``rdr`` null
        where it is undefined), scores and bands.

    Returns
    -------
    None or Overflow
        ``Overflow(position, aggregate_index)`` of the first aggregate that does not fit
        int64 (index 16 is ``yield``); ``res`` is then not to be used.
    """
    cdef int64_t n = order.shape[0], i, g, yl
    cdef int k, b
    cdef double p_dbl = config.conf.p_dbl
    cdef double fg = config.fimr_green, fw = config.fimr_watch
    cdef double sg = config.slippage_green, sw = config.slippage_watch
    cdef double rg = config.roll_green, rw = config.roll_watch
    cdef double ag = config.ayr_green, aw = config.ayr_watch
    cdef int64_t dg = config.dqi_green, dw = config.dqi_watch
    cdef int64_t kg = config.risk_green, kw = config.risk_watch, ka = config.risk_amber
    cdef int64_t col_bytes = _aligned(8 * n), bits_bytes = (n + 7) // 8
    cdef int64_t off_bytes = _aligned(4 * (n + 1)), pos = 0, total
    cdef int64_t band_total[N_BANDS]
    cdef int pair
    # Fixed-width part: N_FIXED value columns, the rdr validity bitmap, N_BANDS band offset
    # buffers and the band codes (scratch, N_BANDS * n bytes); then the band strings: at
    # most 5 bytes a row in each band column, plus 16 of slack.
    res.strings_at = _aligned(N_FIXED * col_bytes + _aligned(bits_bytes) + N_BANDS * off_bytes
                              + N_BANDS * n)
    res.block = _allocate_buffer(res.strings_at + 5 * N_BANDS * n + 16)
    res.block_data = <char*><uintptr_t>res.block.address
    res.length = n
    cdef char* base = res.block_data
    cdef char* cols[N_FIXED]
    for k in range(N_FIXED):
        cols[k] = base + k * col_bytes
    cdef uint8_t* rdr_bits = <uint8_t*>(base + N_FIXED * col_bytes)
    cdef int64_t offs_at = N_FIXED * col_bytes + _aligned(bits_bytes)
    cdef int32_t* offs[N_BANDS]
    for k in range(N_BANDS):
        offs[k] = <int32_t*>(base + offs_at + k * off_bytes)
    cdef int8_t* codes = <int8_t*>(base + offs_at + N_BANDS * off_bytes)
    cdef int64_t v[N_AGGS]
    cdef int64_t carry
    cdef const int64_t* acc
    cdef const int64_t* hot
    cdef const char* acc_ahead
    cdef bint from_hot
    cdef int64_t bad_pos = -1, bad_agg = 0, n_rdr = 0
    cdef int64_t ok
    cdef int8_t c
    cdef double* dc[N_FIXED]
    # Scratch for the metric loops: loans, first_miss and the four day sums/counts as
    # doubles, then the rdr-defined flags (7 * n words; a spare one when it is big enough).
    cdef double* tmp = <double*>fin_scratch_take(7 * 8 * n + 8)
    if tmp == NULL:
        raise MemoryError()
    cdef int64_t* rdr_ok = <int64_t*>(tmp + 6 * n)
    for k in range(N_FIXED):
        dc[k] = <double*>cols[k]
    cdef uint8_t* strings = <uint8_t*>(base + res.strings_at)
    cdef uint8_t* data
    with nogil:
        # A partial that was never folded (one worker, every chunk on the hot path) holds
        # all its sums in the hot records, exact int64 values: read them there. Otherwise
        # fold, and read only the exact accumulators (a partial never worked or merged may
        # still hold hot records or uninitialised rows).
        from_hot = part.p.acc_init == 0
        if not from_hot:
            part_fold(&part.p)
        memset(rdr_bits, 0, bits_bytes)
        # 1. Gather each group's aggregates in output order: the integer columns, and the
        # rest as doubles (money still in minor units) for the column loops below.
        for i in range(n):
            g = order[i]
            if from_hot:
                hot = part.p.hot + g * NHOT
                if i + 8 < n:
                    # the groups are visited in key order, not memory order: fetch ahead
                    acc_ahead = <const char*>(part.p.hot + order[i + 8] * NHOT)
                    mc_prefetch(acc_ahead)
                    mc_prefetch(acc_ahead + 64)
                v[B_LOANS] = hot[H_COUNTS_A] & FIELD_MASK
                v[B_FIRST] = (hot[H_COUNTS_A] >> FIELD_BITS) & FIELD_MASK
                v[B_PORT] = hot[H_PORT]
                v[B_D16] = hot[H_D16]
                v[B_PAR] = hot[H_PAR]
                v[B_PREV16] = hot[H_PREV16]
                v[B_ROLLED] = hot[H_ROLLED]
                v[B_DUE7] = hot[H_DUE7]
                v[B_INTC] = hot[H_INTC]
                v[B_FEEC] = hot[H_FEEC]
                v[B_FEED] = hot[H_FEED]
                v[B_ACTIVE] = hot[H_COUNTS_A] >> (2 * FIELD_BITS)
                v[B_SDAYS] = hot[H_SDAYS]
                v[B_NDAYS] = hot[H_COUNTS_B] & FIELD_MASK
                v[B_SAGE] = hot[H_SAGE]
                v[B_NAGE] = hot[H_COUNTS_B] >> FIELD_BITS
            else:
                acc = part.p.acc + g * NACC
                if i + 8 < n:
                    acc_ahead = <const char*>(part.p.acc + order[i + 8] * NACC)
                    for k in range(0, NACC * 8, 64):
                        mc_prefetch(acc_ahead + k)
                # Branch-free gather first; the first carry is looked up only when there is
                # one. (Written out, not looped over OUT_SLOT: with constant slots the
                # compiler turns this into plain loads and stores.)
                carry = (acc[A_PORT + 1] | acc[A_D16 + 1] | acc[A_PAR + 1]
                         | acc[A_PREV16 + 1] | acc[A_ROLLED + 1] | acc[A_DUE7 + 1]
                         | acc[A_INTC + 1] | acc[A_FEEC + 1] | acc[A_FEED + 1]
                         | acc[A_SDAYS + 1] | acc[A_SAGE + 1])
                if carry != 0:
                    for k in range(N_AGGS):
                        if OUT_PAIR[k] and acc[OUT_SLOT[k] + 1] != 0:
                            bad_pos = i
                            bad_agg = k
                            break
                    break
                v[B_LOANS] = acc[A_LOANS]
                v[B_FIRST] = acc[A_FIRST]
                v[B_PORT] = acc[A_PORT]
                v[B_D16] = acc[A_D16]
                v[B_PAR] = acc[A_PAR]
                v[B_PREV16] = acc[A_PREV16]
                v[B_ROLLED] = acc[A_ROLLED]
                v[B_DUE7] = acc[A_DUE7]
                v[B_INTC] = acc[A_INTC]
                v[B_FEEC] = acc[A_FEEC]
                v[B_FEED] = acc[A_FEED]
                v[B_ACTIVE] = acc[A_ACTIVE]
                v[B_SDAYS] = acc[A_SDAYS]
                v[B_NDAYS] = acc[A_NDAYS]
                v[B_SAGE] = acc[A_SAGE]
                v[B_NAGE] = acc[A_NAGE]
            if mc_add_ovf(v[B_INTC], v[B_FEEC], &yl):
                bad_pos = i
                bad_agg = N_AGGS      # yield: the index after the aggregates
                break
            (<int64_t*>cols[B_LOANS])[i] = v[B_LOANS]
            (<int64_t*>cols[B_FIRST])[i] = v[B_FIRST]
            for k in range(B_PORT, B_FEED + 1):   # the money aggregates
                dc[k][i] = <double>v[k]
            for k in range(B_ACTIVE, N_AGGS):
                (<int64_t*>cols[k])[i] = v[k]
            dc[B_YIELD][i] = <double>yl
        if bad_pos < 0:
            # loans, first_miss and the day sums/counts (B_SDAYS .. B_NAGE) as doubles,
            # from their int64 columns: tmp holds loans, first_miss, then those four
            mc_i64_to_f64(n, <int64_t*>cols[B_LOANS], tmp)
            mc_i64_to_f64(n, <int64_t*>cols[B_FIRST], tmp + n)
            for k in range(4):
                mc_i64_to_f64(n, <int64_t*>cols[B_SDAYS + k], tmp + (2 + k) * n)
            # 2. The metrics, one column at a time (vectorised). Rates first, while money
            # is in minor units.
            mc_ratio(n, tmp + n, tmp, dc[B_FIMR])                # fimr = first_miss / loans
            mc_ratio(n, dc[B_D16], dc[B_DUE7], dc[B_SLIP])       # slippage = d16 / due7
            mc_ratio(n, dc[B_ROLLED], dc[B_PREV16], dc[B_ROLL])  # roll = rolled / prev16
            mc_ratio(n, dc[B_FEEC], dc[B_FEED], dc[B_FRR])       # frr = fees / fees_due
            mc_ratio(n, dc[B_PAR], dc[B_PORT], dc[B_PORR])       # porr = par / portfolio
            mc_ratio(n, dc[B_YIELD], dc[B_PAR], dc[B_AYR])       # ayr = yield / par
            mc_band(n, dc[B_FIMR], fg, fw, 1, codes + (B_FIMR_BAND - N_FIXED) * n)
            mc_band(n, dc[B_SLIP], sg, sw, 1, codes + (B_SLIP_BAND - N_FIXED) * n)
            mc_band(n, dc[B_ROLL], rg, rw, 1, codes + (B_ROLL_BAND - N_FIXED) * n)
            mc_band(n, dc[B_AYR], ag, aw, 0, codes + (B_AYR_BAND - N_FIXED) * n)
            for k in range(B_PORT, B_FEED + 1):
                mc_div_inplace(n, dc[k], p_dbl)
            mc_div_inplace(n, dc[B_YIELD], p_dbl)
            mc_scores(n, dc[B_FIMR], dc[B_SLIP], dc[B_ROLL], dc[B_PORR], dc[B_AYR],
                      tmp + 2 * n, tmp + 3 * n, tmp + 4 * n, tmp + 5 * n, dc[B_RDR],
                      dc[B_OTI], dc[B_PEN], dc[B_RAW], <int64_t*>cols[B_RISK],
                      <int64_t*>cols[B_DQI], rdr_ok)
            mc_score_bands(n, <int64_t*>cols[B_DQI], <int64_t*>cols[B_RISK], dg, dw, kg, kw,
                           ka, codes + (B_DQI_BAND - N_FIXED) * n,
                           codes + (B_RISK_BAND - N_FIXED) * n)
            for i in range(n):
                ok = rdr_ok[i]
                rdr_bits[i >> 3] |= <uint8_t>(ok << (i & 7))
                n_rdr += ok
        if bad_pos < 0:
            # Band strings and offsets in one pass per column, two rows a step (offsets
            # int32: at most 5 bytes a row, and n < 2**31 / 5 groups here). Each pair of
            # names is one 16-byte store (the next one overwrites the padding): the block
            # has 16 bytes of slack.
            pos = 0
            for k in range(N_BANDS):
                data = strings + pos
                total = 0
                offs[k][0] = 0
                for i in range(0, n - 1, 2):
                    pair = 5 * codes[k * n + i] + codes[k * n + i + 1]
                    memcpy(data + total, &BAND_PAIR[pair][0], 16)
                    offs[k][i + 1] = <int32_t>(total + BAND_LEN[codes[k * n + i]])
                    total += BAND_PAIR_LEN[pair]
                    offs[k][i + 2] = <int32_t>total
                if n & 1:
                    c = codes[k * n + n - 1]
                    memcpy(data + total, &BAND_PAIR[5 * c][0], 8)
                    total += BAND_LEN[c]
                    offs[k][n] = <int32_t>total
                band_total[k] = total
                pos += total
    fin_scratch_give(tmp, 7 * 8 * n + 8)
    if bad_pos >= 0:
        return Overflow(bad_pos, bad_agg)
    # column descriptors
    b = 0
    pos = 0
    for k in range(N_FIXED):
        res.null_count[k] = 0
        res.n_buffers[k] = 2
        res.buf_block[b] = 0
        res.buf_block[b + 1] = 1
        res.buf_off[b + 1] = k * col_bytes
        res.buf_size[b + 1] = 8 * n
        if k == B_RDR and n_rdr < n:
            res.null_count[k] = n - n_rdr
            res.buf_block[b] = 1
            res.buf_off[b] = N_FIXED * col_bytes
            res.buf_size[b] = bits_bytes
        b += 2
    for k in range(N_BANDS):
        res.null_count[N_FIXED + k] = 0
        res.n_buffers[N_FIXED + k] = 3
        res.buf_block[b] = 0
        res.buf_block[b + 1] = 1
        res.buf_off[b + 1] = offs_at + k * off_bytes
        res.buf_size[b + 1] = 4 * (n + 1)
        res.buf_block[b + 2] = 2
        res.buf_off[b + 2] = pos
        res.buf_size[b + 2] = band_total[k]
        pos += band_total[k]
        b += 3
    return None


# --------------------------------------------------------------------------------------
# Output export: the result columns as one Arrow C struct array (one import into pyarrow
# instead of one call per column)
# --------------------------------------------------------------------------------------


cdef struct OutPriv:
    PyObject* keep            # the Python objects owning every buffer
    ArrowArray* children
    ArrowArray** child_ptrs
    const void** bufs


cdef void _release_child(ArrowArray* a) noexcept nogil:
    a.release = NULL          # buffers belong to the root's ``keep``


cdef void _release_root(ArrowArray* a) noexcept nogil:
    cdef OutPriv* p = <OutPriv*>a.private_data
    cdef int64_t i
    for i in range(a.n_children):
        if p.children[i].release != NULL:
            p.children[i].release(&p.children[i])
    with gil:  # the consumer may release from any thread, GIL held or not
        Py_DECREF(<object>p.keep)
    free(p.children)
    free(p.child_ptrs)
    free(p.bufs)
    free(p)
    a.release = NULL


def export_batch(list columns, Finalized body, int64_t length):
    """Export ``columns`` and then ``body``'s columns as an Arrow C struct array; returns
    its address.

    Each of ``columns`` (the keys) is ``(null_count, buffers)`` where ``buffers`` is a tuple
    of C-contiguous numpy arrays or None (the validity bitmap first, as in the Arrow
    layout). The struct is meant for ``pyarrow.RecordBatch._import_from_c(address,
    schema)``, which moves it; the caller then frees the address with
    :func:`free_exported`.
    """
    cdef int64_t nk = len(columns), nc = nk + N_BODY, nb = N_BODY_BUFS, i, j, _j, k = 0, bb = 0
    cdef OutPriv* p
    cdef ArrowArray* root
    cdef ArrowArray* ch
    cdef object arr
    cdef cnp.ndarray a
    for col in columns:
        nb += len(col[1])
    p = <OutPriv*>calloc(1, sizeof(OutPriv))
    root = <ArrowArray*>calloc(1, sizeof(ArrowArray))
    if p == NULL or root == NULL:
        free(p)
        free(root)
        raise MemoryError()
    p.children = <ArrowArray*>calloc(nc + 1, sizeof(ArrowArray))
    p.child_ptrs = <ArrowArray**>calloc(nc + 1, sizeof(ArrowArray*))
    p.bufs = <const void**>calloc(nb + 2, sizeof(void*))
    if p.children == NULL or p.child_ptrs == NULL or p.bufs == NULL:
        free(p.children)
        free(p.child_ptrs)
        free(p.bufs)
        free(p)
        free(root)
        raise MemoryError()
    # Owns every buffer: the key arrays and ``body`` (a list only when there are keys).
    keep = body
    if nk:
        keep = [body]
    for i in range(nc):
        ch = &p.children[i]
        p.child_ptrs[i] = ch
        ch.length = length
        ch.offset = 0
        ch.buffers = &p.bufs[k]
        ch.release = _release_child
        if i >= nk:
            ch.null_count = body.null_count[i - nk]
            ch.n_buffers = body.n_buffers[i - nk]
            for _j in range(ch.n_buffers):
                p.bufs[k] = body._address(bb)
                bb += 1
                k += 1
            continue
        null_count, buffers = columns[i]
        ch.null_count = null_count
        ch.n_buffers = len(buffers)
        for j in range(len(buffers)):
            arr = buffers[j]
            if arr is None:
                p.bufs[k] = NULL
            else:
                a = <cnp.ndarray>arr
                if not cnp.PyArray_IS_C_CONTIGUOUS(a):
                    raise ValueError("export_batch needs C-contiguous buffers")
                p.bufs[k] = cnp.PyArray_DATA(a)
                keep.append(a)
            k += 1
    root.length = length
    root.null_count = 0
    root.n_buffers = 1
    root.buffers = &p.bufs[nb]   # the struct's validity: none
    p.bufs[nb] = NULL
    root.n_children = nc
    root.children = p.child_ptrs
    root.private_data = p
    p.keep = <PyObject*>keep
    Py_INCREF(keep)
    root.release = _release_root
    return <uintptr_t>root


def free_exported(uintptr_t address):
    """Free the struct of an exported array, releasing it first if it was not moved."""
    cdef ArrowArray* root = <ArrowArray*>address
    if root.release != NULL:
        root.release(root)
    free(root)


def take_strings(const int64_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] order):
    """Strings ``order`` of (int64 offsets, bytes) as Arrow ``string`` buffers (int32 offsets)."""
    cdef int64_t n = order.shape[0], i, g, total = 0, ln
    offsets_np = np.empty(n + 1, dtype=np.int32)
    cdef int32_t[::1] out_offsets = offsets_np
    out_offsets[0] = 0
    for i in range(n):
        g = order[i]
        total += offsets[g + 1] - offsets[g]
        if total > 2147483647:
            raise OverflowError("string keys exceed 2 GiB")
        out_offsets[i + 1] = <int32_t>total
    data_np = np.empty(total, dtype=np.uint8)
    cdef uint8_t[::1] out = data_np
    for i in range(n):
        g = order[i]
        ln = offsets[g + 1] - offsets[g]
        if ln > 0:
            memcpy(&out[out_offsets[i]], &data[offsets[g]], ln)
    return offsets_np, data_np
