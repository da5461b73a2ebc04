# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled core of the loan derivation (docs/metrics.md §9): raw loans and repayments -> the
loan snapshot as of a date.

Plan of one derivation (``metriccore._derivation`` drives it; every method below releases
the GIL and may run on its own thread):

1. ``loans_pass(lo, hi)``: check and convert the loans rows [lo, hi) (money to exact
   minor units, §9.3 step 1 interest total, repayable amount R and daily instalment), and
   ``build_index()`` (at the same time, on another thread): the loan id -> row index,
   a direct table when the integer ids are dense, else an open-addressing hash table.
   It inserts in row order, so the first duplicate it meets is the smallest duplicate row.
2. ``prepare_output()``: output positions of the loans in the snapshot, output arrays.
3. ``scan(task, lo, hi)``: the repayments are read in waves of consecutive rows, each cut
   into a few ranges per thread (tasks). A task reads its rows sequentially: it looks up
   each repayment's loan (in blocks of 32, the next block's slots prefetched while the
   current one is resolved), checks the row, and files a payment that counts (§9.2), in
   row order, in its buffer for the loan's *bucket* (2**shift consecutive loan rows).
4. ``apply(blo, bhi)``: per bucket, the wave's payments of every task (in task, hence row,
   order) are split into principal, interest and fees (§9.3 step 6) and added to their loans'
   exact accumulators, which for one bucket stay in the CPU cache. ``next_wave()`` then
   empties the buffers, keeping their memory for the next wave.
5. ``finish(blo, bhi)``: once every wave is applied, the snapshot columns of the loans of
   the buckets (§9.3: steps 4-5 and the table). A loan is only ever touched by the task
   that owns its bucket, so nothing is merged and every figure is the same whatever the
   thread count; the integer sums do not depend on row order either.

Errors are recorded without the GIL as (row, column position, code) and the smallest wins,
so the reported error is the one the pure-Python reference raises, whatever the schedule.
"""

from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t, INT64_MAX)
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memset, memcmp
from libc.math cimport round, isnan, isinf

import numpy as np
cimport numpy as cnp

from metriccore._support cimport (
    mc_add_ovf, mc_sub_ovf, mc_round_half_even, mc_prefetch_low, mc_prefetch_low_w,
    mc_mix64, mc_hash_bytes, mc_big_alloc, mc_utf8_valid, mc_money_f64, mc_money_int,
    mc_money_dec128, mc_str_span, MC_MONEY_NAN)
from metriccore._errors import Overflow, RowError

cnp.import_array()

cdef extern from "_dates.h" nogil:
    int64_t mc_floordiv(int64_t a, int64_t b)
    int mc_parse_iso_date(const char* p, int64_t n, int32_t* out)
    int64_t mc_bdays(int64_t a, int64_t b, const int32_t* h, int64_t nh)


# --------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------
cdef enum:
    C_ABSENT = 0
    C_INT = 1       # any integer width / signedness
    C_F32 = 2
    C_F64 = 3
    C_DEC = 4       # decimal128(p, s)
    C_BOOL = 5
    C_DAYS32 = 6    # date32
    C_UNITS64 = 7   # date64 or timestamp: int64 units, ``per_day`` of them a day
    C_STR = 8       # utf8, int32 offsets
    C_LSTR = 9      # large utf8, int64 offsets

cdef struct Col:
    int kind
    int width                 # bytes of an integer value
    bint is_signed
    int scale                 # decimal scale
    int64_t per_day           # C_UNITS64 units per day
    int64_t offset            # physical index of row 0
    int64_t length
    const uint8_t* validity   # NULL: no nulls
    const void* values        # values, or offsets for strings
    const char* chars         # string data
    int64_t chars_len         # its size in bytes: every string offset must lie in [0, size]


# Error codes; ``ERROR_REASONS`` maps them to reasons of ``_errors.CATALOGUE``.
cdef enum:
    E_NONE = 0
    E_NULL = 1
    E_DUP = 2
    E_ID_RANGE = 3
    E_NAN = 4
    E_BIG = 5
    E_MONEY_OVF = 6
    E_RATE_NAN = 7
    E_NEG_TERM = 8
    E_INT_OVF = 9
    E_DATE_PARSE = 10
    E_DATE_RANGE = 11
    E_NEGATIVE = 12
    E_INTEREST_OVF = 13
    E_REPAYABLE_OVF = 14
    E_ALLOC_INTEREST = 15
    E_ALLOC_FEES = 16
    E_ALLOC_PRINCIPAL = 17
    E_NOMEM = 18
    E_OFFSETS = 19    # string offsets that decrease, are negative or lie past the data
    E_UTF8 = 20       # a string id (or date) that is not valid UTF-8

# Column positions (the tie-break order of errors on one row: docs/metrics.md §9.1 order, §9.6).
cdef enum:
    L_ID = 0
    L_AMOUNT = 1
    L_RATE = 2
    L_FEE = 3
    L_TERM = 4
    L_DISB = 5
    L_FIRST = 6
    L_MAT = 7
    L_INTEREST = 8    # the derived interest total, checked after the row's columns
    L_REPAYABLE = 9
    N_LOAN_COLS = 8

cdef enum:
    P_ID = 0
    P_DATE = 1
    P_AMOUNT = 2
    P_PRIN = 3
    P_INT = 4
    P_FEES = 5
    P_REV = 6
    P_ALLOC = 7       # allocation of a counted payment, after the row's columns
    N_REP_COLS = 7

# Per-loan totals checked against int64 (``_errors.LOAN_TOTALS`` order).
cdef enum:
    T_PAID = 0
    T_PRINCIPAL = 1
    T_INTEREST = 2
    T_FEES = 3
    T_OUTSTANDING = 4
    T_DUE7 = 5


cdef int _check_schema_constants() except -1:
    """ImportError unless the L_* and P_* columns are in ``_schema``'s role order."""
    from metriccore._schema import LOAN_ROLES, REPAYMENT_ROLES, check_layout
    check_layout("metriccore._derive", "loans column", LOAN_ROLES, N_LOAN_COLS, {
        "loan_id": L_ID, "loan_amount": L_AMOUNT, "interest_rate": L_RATE,
        "fee_amount": L_FEE, "loan_term_days": L_TERM, "disbursement_date": L_DISB,
        "first_payment_due_date": L_FIRST, "maturity_date": L_MAT})
    check_layout("metriccore._derive", "repayments column", REPAYMENT_ROLES, N_REP_COLS, {
        "loan_id": P_ID, "payment_date": P_DATE, "payment_amount": P_AMOUNT,
        "principal_paid": P_PRIN, "interest_paid": P_INT, "fees_paid": P_FEES,
        "is_reversed": P_REV})
    return 0


_check_schema_constants()

cdef enum:
    NULL_DAY = -2147483648    # null date in the per-loan date arrays (INT32_MIN)
    MIN_DAY = -719162         # accepted day numbers: 0001-01-01 ..
    MAX_DAY = 2932896         # .. 9999-12-31

# A double: no enum can hold it (``cdef const`` makes it a C ``static const``).
cdef const double TWO63 = 9223372036854775808.0


cdef inline bint valid_at(const Col* c, int64_t i) noexcept nogil:
    cdef int64_t j
    if c.validity == NULL:
        return True
    j = c.offset + i
    return (c.validity[j >> 3] >> (j & 7)) & 1


cdef inline bint bool_at(const Col* c, int64_t i) noexcept nogil:
    cdef int64_t j = c.offset + i
    return ((<const uint8_t*>c.values)[j >> 3] >> (j & 7)) & 1


cdef inline int read_int(const Col* c, int64_t i, int64_t* out) noexcept nogil:
    """The integer at row ``i``; 1 when it is a uint64 beyond int64 (then *out is unset)."""
    cdef int64_t j = c.offset + i
    cdef uint64_t u
    if c.width == 8:
        if c.is_signed:
            out[0] = (<const int64_t*>c.values)[j]
            return 0
        u = (<const uint64_t*>c.values)[j]
        if u > <uint64_t>INT64_MAX:
            return 1
        out[0] = <int64_t>u
    # (no conditional expressions here: C would convert both arms to their common type,
    # unsigned for int32 / uint32, and -1 would read as 4294967295)
    elif c.width == 4:
        if c.is_signed:
            out[0] = (<const int32_t*>c.values)[j]
        else:
            out[0] = (<const uint32_t*>c.values)[j]
    elif c.width == 2:
        if c.is_signed:
            out[0] = (<const int16_t*>c.values)[j]
        else:
            out[0] = (<const uint16_t*>c.values)[j]
    else:
        if c.is_signed:
            out[0] = (<const int8_t*>c.values)[j]
        else:
            out[0] = (<const uint8_t*>c.values)[j]
    return 0


cdef inline double read_float(const Col* c, int64_t i) noexcept nogil:
    cdef int64_t j = c.offset + i
    if c.kind == C_F64:
        return (<const double*>c.values)[j]
    return <double>(<const float*>c.values)[j]


cdef inline int read_money(const Col* c, int64_t i, int64_t p_int, double p_dbl, int scale,
                           int64_t* out) noexcept nogil:
    """Exact minor units of the money value at row ``i`` (docs/metrics.md §2); an error code."""
    cdef int rc
    if c.kind == C_F64 or c.kind == C_F32:
        rc = mc_money_f64(read_float(c, i), p_dbl, out)
        if rc:
            return E_NAN if rc == MC_MONEY_NAN else E_BIG
        return E_NONE
    if c.kind == C_DEC:
        if mc_money_dec128(<const uint64_t*>c.values, c.offset + i, scale - c.scale, out):
            return E_MONEY_OVF
        return E_NONE
    if read_int(c, i, out) or mc_money_int(out[0], p_int, out):
        return E_MONEY_OVF
    return E_NONE


cdef inline int read_date(const Col* c, int64_t i, int32_t* out) noexcept nogil:
    """Day number of the date at row ``i`` (timestamps floored to the day); an error code."""
    cdef int64_t j = c.offset + i, d, a, b
    if c.kind == C_DAYS32:
        d = (<const int32_t*>c.values)[j]
    elif c.kind == C_UNITS64:
        d = mc_floordiv((<const int64_t*>c.values)[j], c.per_day)
    else:
        if mc_str_span(c.values, c.kind != C_STR, j, 0, c.chars_len, True, &a, &b):
            return E_OFFSETS
        if mc_parse_iso_date(c.chars + a, b - a, out):
            return E_DATE_PARSE
        return E_NONE
    if d < MIN_DAY or d > MAX_DAY:
        return E_DATE_RANGE
    out[0] = <int32_t>d
    return E_NONE


cdef inline void col_prefetch(const Col* c, int64_t i) noexcept nogil:
    """Prefetch the value (or string offset) of row ``i`` of a fixed-width column."""
    cdef int64_t j = c.offset + i
    cdef int size = 8
    if c.kind == C_INT:
        size = c.width
    elif c.kind == C_F32 or c.kind == C_DAYS32 or c.kind == C_STR:
        size = 4
    elif c.kind == C_DEC:
        size = 16
    elif c.kind == C_BOOL:
        return
    mc_prefetch_low(<const char*>c.values + size * j)


cdef inline int string_at(const Col* c, int64_t i, const char** p, int64_t* n) noexcept nogil:
    """Pointer and length of the string at row ``i``; E_OFFSETS when its offsets do not
    delimit a part of the character data (checked as each string is read: two compares;
    callers that re-read a loan id already in the index may ignore the result)."""
    cdef int64_t a, b
    if mc_str_span(c.values, c.kind != C_STR, c.offset + i, 0, c.chars_len, True, &a, &b):
        return E_OFFSETS
    p[0] = c.chars + a
    n[0] = b - a
    return E_NONE


# --------------------------------------------------------------------------------------
# Per-loan state
# --------------------------------------------------------------------------------------
cdef struct LoanAcc:
    # Exact totals of the loan's counted repayments up to as_of: one cache line per loan.
    # ``prin``, ``intw`` and ``feew`` are wrapped int64 sums whose true value is
    # sum + carry * 2**64 (allocated parts may be negative, so a partial sum may leave
    # int64 although the total fits); payment amounts are never negative, so for
    # ``t_asof`` / ``t_roll`` a sticky overflow flag is exact.
    int64_t t_asof        # T(as_of)
    int64_t t_roll        # T(roll_from)
    int64_t prin          # principal paid
    int64_t intw          # interest paid in [period_start, as_of]
    int64_t feew          # fees paid in [period_start, as_of]
    int32_t last          # latest payment date - MIN_DAY + 1; 0 = none (so zeroed = empty)
    int32_t first         # MAX_DAY - earliest payment date + 1; 0 = none
    int32_t c_prin
    int32_t c_intw
    int32_t c_feew
    int32_t flags         # bit 0: t_asof overflowed, bit 1: t_roll overflowed

cdef struct LoanAlloc:
    # What allocating a payment of the loan needs (§9.3 step 6), read once per payment.
    double interest_d     # float64(interest_total)
    double fee_d          # float64(F_minor)
    double repayable_d    # float64(R)
    int32_t in_snapshot
    int32_t positive      # R > 0


cdef struct Rec:
    # A counted payment filed for its loan's bucket: 24 bytes, in row order.
    int64_t row           # -1 - row when the recorded split is used (its parts are filed too)
    int64_t pay
    int32_t k             # loan row
    int32_t date

cdef struct Parts:
    int64_t p
    int64_t i
    int64_t f

# Payments are filed in chains of fixed-size blocks, one chain of records and one of
# recorded splits per (scan task, bucket); the blocks are cut from large per-task chunks
# (see ``Arena``), so filing never copies and the memory comes in huge pages. The block
# size is not a power of two, so that the blocks being filled do not all fall into the
# same few cache sets.
cdef enum:
    BLOCK_BYTES = 16448
    RECS_PER_BLOCK = (BLOCK_BYTES - 16) // 24
    PARTS_PER_BLOCK = (BLOCK_BYTES - 16) // 24
    CHUNK_BYTES = 8388608

cdef struct Block:
    Block* next
    int64_t n             # entries, set when the block is full (the last one: see Buf)
    # followed by the Rec or Parts entries

cdef struct Chain:
    Block* head
    Block* tail
    char* cur             # next free entry of the tail block
    int64_t left          # free entries in the tail block

cdef struct Buf:
    # One (task, bucket) pair's chains; the write positions live here, in a dense array,
    # rather than in the block headers (64 bytes: one cache line).
    Chain recs            # Rec entries
    Chain parts           # Parts entries (one per Rec with row < 0, in the same order)

cdef struct Arena:
    char** chunks
    int64_t n_chunks
    int64_t cap_chunks
    int64_t current       # chunk being cut (chunks after it are free: kept for reuse)
    char* next            # free space of the current chunk
    char* end


cdef inline char* block_entries(const Block* b) noexcept nogil:
    return <char*>b + 16


cdef Block* arena_block(Arena* a) noexcept nogil:
    """A new empty block; NULL when out of memory."""
    cdef void* q
    cdef char* chunk
    cdef Block* b
    if a.next == NULL or a.end - a.next < BLOCK_BYTES:
        if a.next != NULL and a.current + 1 < a.n_chunks:
            a.current += 1                     # a chunk kept from an earlier wave
        else:
            if a.n_chunks == a.cap_chunks:
                q = realloc(a.chunks, (2 * a.cap_chunks + 8) * sizeof(char*))
                if q == NULL:
                    return NULL
                a.chunks = <char**>q
                a.cap_chunks = 2 * a.cap_chunks + 8
            chunk = <char*>mc_big_alloc(CHUNK_BYTES)
            if chunk == NULL:
                return NULL
            a.chunks[a.n_chunks] = chunk
            a.current = a.n_chunks
            a.n_chunks += 1
        a.next = a.chunks[a.current]
        a.end = a.next + CHUNK_BYTES
    b = <Block*>a.next
    a.next += BLOCK_BYTES
    b.next = NULL
    b.n = 0
    return b


cdef void arena_reset(Arena* a) noexcept nogil:
    """Forget every block but keep the chunks: the next wave writes over them."""
    a.current = 0
    a.next = NULL
    a.end = NULL
    if a.n_chunks > 0:
        a.next = a.chunks[0]
        a.end = a.next + CHUNK_BYTES


cdef void arena_free(Arena* a) noexcept nogil:
    cdef int64_t i
    for i in range(a.n_chunks):
        free(a.chunks[i])
    free(a.chunks)
    memset(a, 0, sizeof(Arena))


cdef inline int64_t block_count(const Block* blk, const Block* tail, const void* cur,
                                size_t size) noexcept nogil:
    """Entries in ``blk``: full blocks record it, the tail is filled up to ``cur``."""
    if blk != tail:
        return blk.n
    return (<const char*>cur - (<const char*>blk + 16)) // <int64_t>size


cdef inline char* chain_push(Chain* c, Arena* arena, int64_t per_block,
                             size_t size) noexcept nogil:
    """Room for one more ``size``-byte entry at the end of a chain (a new block when the
    tail is full); NULL when out of memory."""
    cdef Block* blk
    cdef char* entry
    if c.left == 0:
        blk = arena_block(arena)
        if blk == NULL:
            return NULL
        if c.tail == NULL:
            c.head = blk
        else:
            c.tail.n = per_block
            c.tail.next = blk
        c.tail = blk
        c.cur = block_entries(blk)
        c.left = per_block
    entry = c.cur
    c.cur += size
    c.left -= 1
    # each bucket's chains are separate write streams, too many for the hardware
    # prefetchers: ask for the lines a few entries ahead (past a block's end this touches
    # the next block of the chunk, harmlessly)
    mc_prefetch_low_w(c.cur + 12 * size)
    return entry


cdef int buf_push(Buf* b, Arena* arena, int64_t row, int64_t pay, int64_t k, int32_t date,
                  bint split, const int64_t* parts) noexcept nogil:
    """File a payment; nonzero when out of memory."""
    cdef Rec* rec = <Rec*>chain_push(&b.recs, arena, RECS_PER_BLOCK, sizeof(Rec))
    cdef Parts* pp
    if rec == NULL:
        return -1
    rec.pay = pay
    rec.k = <int32_t>k
    rec.date = date
    if not split:
        rec.row = row
        return 0
    rec.row = -1 - row
    pp = <Parts*>chain_push(&b.parts, arena, PARTS_PER_BLOCK, sizeof(Parts))
    if pp == NULL:
        return -1
    pp.p = parts[0]
    pp.i = parts[1]
    pp.f = parts[2]
    return 0


cdef struct Probe:
    # One block of repayment ids being looked up.
    int64_t base
    int64_t nb
    int64_t keys[32]
    uint64_t slot[32]
    uint64_t hashes[32]
    const char* ptr[32]
    int64_t lens[32]
    bint ok[32]
    int err[32]           # E_OFFSETS: the id's string offsets are corrupt


cdef struct IntSlot:
    int64_t key
    int64_t row           # -1: empty

cdef struct StrSlot:
    uint64_t hash
    int64_t row           # -1: empty


cdef void* index_table(int64_t n, size_t slot_size, uint64_t* mask) noexcept nogil:
    """An empty hash table of the loan id index for ``n`` ids: a power of two (>= 16,
    >= 2n) of ``slot_size``-byte slots (IntSlot or StrSlot), every byte 0xff so that each
    slot's row is -1; its mask in ``*mask``. NULL when out of memory."""
    cdef int64_t cap = 16
    cdef void* slots
    while cap < 2 * n:
        cap *= 2
    mask[0] = <uint64_t>(cap - 1)
    slots = malloc(cap * slot_size)
    if slots != NULL:
        memset(slots, 0xff, cap * slot_size)
    return slots


cdef inline void acc_add(int64_t* s, int32_t* carry, int64_t v) noexcept nogil:
    cdef int64_t r
    if mc_add_ovf(s[0], v, &r):
        carry[0] += -1 if v < 0 else 1
    s[0] = r


cdef inline int64_t _row_of(int64_t entry) noexcept nogil:
    """The loan row of an index entry (>= 0: in the snapshot, <= -2: -2 - row outside)."""
    return entry if entry >= 0 else -2 - entry


cdef inline bint fits_int64(double x) noexcept nogil:
    """An integral double is an int64 value."""
    return x >= -TWO63 and x < TWO63


cdef inline int64_t days_past_due(int64_t x, int64_t total, int64_t repayable, double daily,
                                  int32_t first_due, int32_t maturity, const int32_t* h,
                                  int64_t nh) noexcept nogil:
    """dpd at date ``x`` with ``total`` paid by then (docs/metrics.md §9.3 step 4)."""
    cdef int64_t end = x, due_days = 0
    cdef double k
    if maturity != NULL_DAY and maturity < end:
        end = maturity
    if first_due != NULL_DAY:
        due_days = mc_bdays(first_due, end, h, nh)
    if total >= repayable:
        return 0                                  # fully paid
    if daily > 0.0:
        k = round(<double>total / daily)          # C round(): half away from zero
        if k >= <double>due_days:
            return 0
        return due_days - <int64_t>k
    return due_days


cdef inline void note(int64_t* best_row, int* best_col, int* best_code, int64_t* best_extra,
                      int64_t row, int col, int code, int64_t extra) noexcept nogil:
    if row < best_row[0] or (row == best_row[0] and col < best_col[0]):
        best_row[0] = row
        best_col[0] = col
        best_code[0] = code
        best_extra[0] = extra


cdef struct Outputs:
    int64_t* current_dpd
    int64_t* previous_dpd
    uint8_t* previous_dpd_valid
    uint8_t* fimr_tagged
    double* principal_outstanding
    double* interest_collected
    double* fees_collected
    double* fees_due
    double* outstanding_balance
    double* amount_due_7d
    int64_t* days_since_last_repayment
    uint8_t* days_since_last_repayment_valid
    int64_t* loan_age


cdef class Derivation:
    """State of one derivation: the columns, the per-loan arrays, the id index, the
    repayment -> loan map, the accumulators and the output arrays."""
    cdef Col lc[8]
    cdef Col rc[7]
    cdef int64_t n_loans, n_rep
    cdef int64_t p_int
    cdef double p_dbl
    cdef int scale
    cdef int64_t as_of, period_start, roll_from
    cdef bint has_split, has_reversed, string_ids
    cdef object holidays_np
    cdef const int32_t* hol
    cdef int64_t n_hol
    # per loan
    cdef int64_t* amount
    cdef int64_t* fee
    cdef int64_t* repayable
    cdef double* daily
    cdef int32_t* disbursed
    cdef int32_t* first_due
    cdef int32_t* maturity
    cdef LoanAlloc* alloc
    cdef void* acc_raw
    cdef LoanAcc* acc
    cdef int64_t* pos
    cdef int64_t n_out
    # id index
    cdef int mode                 # 0 none, 1 direct, 2 integer hash, 3 string hash
    cdef int64_t id_base
    cdef uint64_t id_span
    cdef int32_t* direct
    cdef IntSlot* islots
    cdef StrSlot* sslots
    cdef uint64_t mask
    # payments filed by the scan tasks, per (task, bucket of 2**shift loans)
    cdef Buf* bufs
    cdef Arena* arenas
    cdef int64_t n_bufs, n_buckets
    cdef int n_tasks, shift
    # outputs
    cdef public object out

    def __cinit__(self):
        self.amount = NULL
        self.fee = NULL
        self.repayable = NULL
        self.daily = NULL
        self.disbursed = NULL
        self.first_due = NULL
        self.maturity = NULL
        self.alloc = NULL
        self.acc_raw = NULL
        self.acc = NULL
        self.pos = NULL
        self.direct = NULL
        self.islots = NULL
        self.sslots = NULL
        self.bufs = NULL
        self.arenas = NULL
        self.n_bufs = 0
        self.n_tasks = 0
        self.mode = 0
        memset(self.lc, 0, sizeof(self.lc))
        memset(self.rc, 0, sizeof(self.rc))

    def __dealloc__(self):
        free(self.amount)
        free(self.fee)
        free(self.repayable)
        free(self.daily)
        free(self.disbursed)
        free(self.first_due)
        free(self.maturity)
        free(self.alloc)
        free(self.acc_raw)
        free(self.pos)
        free(self.direct)
        free(self.islots)
        free(self.sslots)
        self._release()

    def __init__(self, list loan_cols, list rep_cols, int64_t n_loans, int64_t n_rep,
                 object holidays, *, money_scale, int64_t as_of, int64_t period_start,
                 int64_t roll_from):
        """``loan_cols`` / ``rep_cols``: one :class:`ColumnSpec` per role in §9.1 order (None
        for an absent optional column); ``holidays``: sorted distinct weekday holidays
        (int32 array); the dates are day numbers."""
        cdef int k
        cdef int64_t n
        cdef const int32_t[::1] hv
        self.n_loans = n_loans
        self.n_rep = n_rep
        self.p_int = 10**money_scale
        self.p_dbl = <double>self.p_int
        self.scale = money_scale
        self.as_of = as_of
        self.period_start = period_start
        self.roll_from = roll_from
        for k in range(N_LOAN_COLS):
            _set_col(&self.lc[k], loan_cols[k])
        for k in range(N_REP_COLS):
            _set_col(&self.rc[k], rep_cols[k])
        self.has_split = self.rc[P_PRIN].kind != C_ABSENT
        self.has_reversed = self.rc[P_REV].kind != C_ABSENT
        self.string_ids = self.lc[L_ID].kind in (C_STR, C_LSTR)
        self.holidays_np = np.ascontiguousarray(holidays, dtype=np.int32)
        hv = self.holidays_np
        self.n_hol = hv.shape[0]
        self.hol = &hv[0] if self.n_hol > 0 else NULL
        n = n_loans if n_loans > 0 else 1
        self.amount = <int64_t*>malloc(n * sizeof(int64_t))
        self.fee = <int64_t*>malloc(n * sizeof(int64_t))
        self.repayable = <int64_t*>malloc(n * sizeof(int64_t))
        self.daily = <double*>malloc(n * sizeof(double))
        self.disbursed = <int32_t*>malloc(n * sizeof(int32_t))
        self.first_due = <int32_t*>malloc(n * sizeof(int32_t))
        self.maturity = <int32_t*>malloc(n * sizeof(int32_t))
        self.alloc = <LoanAlloc*>mc_big_alloc(n * sizeof(LoanAlloc))
        self.pos = <int64_t*>malloc(n * sizeof(int64_t))
        # zeroed, 64-byte aligned: one cache line per loan
        self.acc_raw = mc_big_alloc(n * sizeof(LoanAcc) + 64)
        if (self.amount == NULL or self.fee == NULL or self.repayable == NULL
                or self.daily == NULL or self.disbursed == NULL or self.first_due == NULL
                or self.maturity == NULL or self.alloc == NULL or self.pos == NULL
                or self.acc_raw == NULL):
            raise MemoryError()
        self.acc = <LoanAcc*>((<uint64_t>self.acc_raw + 63) & ~(<uint64_t>63))
        memset(self.acc, 0, n * sizeof(LoanAcc))

    # ----------------------------------------------------------------------------------
    # 1. loans
    # ----------------------------------------------------------------------------------
    def loans_pass(self, int64_t lo, int64_t hi):
        """Check and convert loans rows [lo, hi); None or the
        ``RowError(row, column, code, extra)`` of the first bad row (the id column is
        checked by ``build_index``)."""
        cdef int64_t row = INT64_MAX, extra = 0
        cdef int col = 0, code = 0
        with nogil:
            self._loans(lo, hi, &row, &col, &code, &extra)
        return None if row == INT64_MAX else RowError(row, col, code, extra)

    cdef void _loans(self, int64_t lo, int64_t hi, int64_t* erow, int* ecol, int* ecode,
                     int64_t* eextra) noexcept nogil:
        cdef int64_t i, L, F, term, it, R
        cdef double r, x
        cdef int32_t d
        cdef int code, k
        cdef int32_t* dates[3]
        dates[0] = self.disbursed
        dates[1] = self.first_due
        dates[2] = self.maturity
        for i in range(lo, hi):
            # loan_amount, interest_rate, fee_amount, loan_term_days: in role order
            if not valid_at(&self.lc[L_AMOUNT], i):
                note(erow, ecol, ecode, eextra, i, L_AMOUNT, E_NULL, 0)
                return
            code = read_money(&self.lc[L_AMOUNT], i, self.p_int, self.p_dbl, self.scale, &L)
            if code:
                note(erow, ecol, ecode, eextra, i, L_AMOUNT, code, 0)
                return
            if not valid_at(&self.lc[L_RATE], i):
                note(erow, ecol, ecode, eextra, i, L_RATE, E_NULL, 0)
                return
            r = read_float(&self.lc[L_RATE], i)
            if isnan(r) or isinf(r):
                note(erow, ecol, ecode, eextra, i, L_RATE, E_RATE_NAN, 0)
                return
            F = 0                                      # a null fee is 0
            if valid_at(&self.lc[L_FEE], i):
                code = read_money(&self.lc[L_FEE], i, self.p_int, self.p_dbl, self.scale, &F)
                if code:
                    note(erow, ecol, ecode, eextra, i, L_FEE, code, 0)
                    return
            if not valid_at(&self.lc[L_TERM], i):
                note(erow, ecol, ecode, eextra, i, L_TERM, E_NULL, 0)
                return
            if read_int(&self.lc[L_TERM], i, &term):
                note(erow, ecol, ecode, eextra, i, L_TERM, E_INT_OVF, 0)
                return
            if term < 0:
                note(erow, ecol, ecode, eextra, i, L_TERM, E_NEG_TERM, 0)
                return
            for k in range(3):
                d = NULL_DAY
                if valid_at(&self.lc[L_DISB + k], i):
                    code = read_date(&self.lc[L_DISB + k], i, &d)
                    if code:
                        note(erow, ecol, ecode, eextra, i, L_DISB + k, code, 0)
                        return
                dates[k][i] = d
            # §9.3 step 1: interest_total = round_half_even(float64(L) * r); R = L + interest + F
            x = mc_round_half_even(<double>L * r)
            if not fits_int64(x):                     # also false for inf and NaN
                note(erow, ecol, ecode, eextra, i, L_INTEREST, E_INTEREST_OVF, 0)
                return
            it = <int64_t>x
            if mc_add_ovf(L, it, &R) or mc_add_ovf(R, F, &R):
                note(erow, ecol, ecode, eextra, i, L_REPAYABLE, E_REPAYABLE_OVF, 0)
                return
            self.amount[i] = L
            self.fee[i] = F
            self.repayable[i] = R
            self.daily[i] = <double>R / <double>term if term > 0 and R > 0 else 0.0
            self.alloc[i].interest_d = <double>it
            self.alloc[i].fee_d = <double>F
            self.alloc[i].repayable_d = <double>R
            self.alloc[i].positive = R > 0
            self.alloc[i].in_snapshot = (self.disbursed[i] != NULL_DAY
                                         and self.disbursed[i] <= self.as_of)

    def build_index(self):
        """The loan id index (sequential, in row order); None or the first bad id row as
        ``RowError(row, column, code, extra)`` where extra is the first row of a duplicate."""
        cdef int64_t row = INT64_MAX, extra = 0
        cdef int code = 0
        cdef int rc
        with nogil:
            if self.string_ids:
                rc = self._index_strings(&row, &code, &extra)
            else:
                rc = self._index_ints(&row, &code, &extra)
        if rc != 0:
            raise MemoryError()
        return None if row == INT64_MAX else RowError(row, L_ID, code, extra)

    cdef int _index_ints(self, int64_t* erow, int* ecode, int64_t* eextra) noexcept nogil:
        cdef const Col* c = &self.lc[L_ID]
        cdef int64_t n = self.n_loans, i, stop = n, v = 0, lo = 0, hi = 0
        cdef uint64_t span, s, h
        cdef bint seen = False
        # Pass 1: the first null or out-of-range id ends the useful rows; min and max before.
        for i in range(n):
            if not valid_at(c, i):
                stop = i
                ecode[0] = E_NULL
                break
            if read_int(c, i, &v):
                stop = i
                ecode[0] = E_ID_RANGE
                break
            if not seen or v < lo:
                lo = v
            if not seen or v > hi:
                hi = v
            seen = True
        span = <uint64_t>hi - <uint64_t>lo
        if seen and span < <uint64_t>(4 * stop + 1024):
            # dense ids: a direct table indexed by id - min
            self.mode = 1
            self.id_base = lo
            self.id_span = span
            self.direct = <int32_t*>malloc((span + 1) * sizeof(int32_t))
            if self.direct == NULL:
                return -1
            memset(self.direct, 0xff, (span + 1) * sizeof(int32_t))
            for i in range(stop):
                read_int(c, i, &v)
                s = <uint64_t>v - <uint64_t>lo
                if self.direct[s] != -1:
                    erow[0] = i
                    ecode[0] = E_DUP
                    eextra[0] = self.direct[s]
                    return 0
                self.direct[s] = <int32_t>i
        else:
            self.mode = 2
            self.islots = <IntSlot*>index_table(stop, sizeof(IntSlot), &self.mask)
            if self.islots == NULL:
                return -1
            for i in range(stop):
                read_int(c, i, &v)
                h = mc_mix64(<uint64_t>v) & self.mask
                while self.islots[h].row != -1:
                    if self.islots[h].key == v:
                        erow[0] = i
                        ecode[0] = E_DUP
                        eextra[0] = self.islots[h].row
                        return 0
                    h = (h + 1) & self.mask
                self.islots[h].key = v
                self.islots[h].row = i
        if stop < n:
            erow[0] = stop
        return 0

    cdef int _index_strings(self, int64_t* erow, int* ecode, int64_t* eextra) noexcept nogil:
        cdef const Col* c = &self.lc[L_ID]
        cdef int64_t n = self.n_loans, i, m, ln
        cdef uint64_t hv, h
        cdef const char* p
        cdef const char* q
        self.mode = 3
        self.sslots = <StrSlot*>index_table(n, sizeof(StrSlot), &self.mask)
        if self.sslots == NULL:
            return -1
        for i in range(n):
            if not valid_at(c, i):
                erow[0] = i
                ecode[0] = E_NULL
                return 0
            if string_at(c, i, &p, &ln):
                erow[0] = i
                ecode[0] = E_OFFSETS
                return 0
            hv = mc_hash_bytes(p, ln)
            h = hv & self.mask
            while self.sslots[h].row != -1:
                if self.sslots[h].hash == hv:
                    string_at(c, self.sslots[h].row, &q, &m)
                    if m == ln and memcmp(p, q, ln) == 0:
                        erow[0] = i
                        ecode[0] = E_DUP
                        eextra[0] = self.sslots[h].row
                        return 0
                h = (h + 1) & self.mask
            # a new id: validated once, here (a later equal id is a duplicate)
            if not mc_utf8_valid(p, ln):
                erow[0] = i
                ecode[0] = E_UTF8
                return 0
            self.sslots[h].hash = hv
            self.sslots[h].row = i
        return 0

    # ----------------------------------------------------------------------------------
    # 2. output positions
    # ----------------------------------------------------------------------------------
    def prepare_output(self):
        """Output position of each loan in the snapshot; allocates the output arrays and
        returns the loans-in-snapshot mask (numpy bool)."""
        cdef int64_t i, n = 0
        in_snap_np = np.empty(self.n_loans, dtype=np.bool_)
        cdef cnp.npy_bool[::1] in_snap = in_snap_np
        with nogil:
            for i in range(self.n_loans):
                in_snap[i] = self.alloc[i].in_snapshot
                self.pos[i] = n
                n += self.alloc[i].in_snapshot
                if not self.alloc[i].in_snapshot:
                    self._mark_outside(i)
        self.n_out = n
        self.out = {
            "current_dpd": np.empty(n, dtype=np.int64),
            "previous_dpd": np.empty(n, dtype=np.int64),
            "previous_dpd_valid": np.empty(n, dtype=np.bool_),
            "fimr_tagged": np.empty(n, dtype=np.bool_),
            "principal_outstanding": np.empty(n, dtype=np.float64),
            "interest_collected": np.empty(n, dtype=np.float64),
            "fees_collected": np.empty(n, dtype=np.float64),
            "fees_due": np.empty(n, dtype=np.float64),
            "outstanding_balance": np.empty(n, dtype=np.float64),
            "amount_due_7d": np.empty(n, dtype=np.float64),
            "days_since_last_repayment": np.empty(n, dtype=np.int64),
            "days_since_last_repayment_valid": np.empty(n, dtype=np.bool_),
            "loan_age": np.empty(n, dtype=np.int64),
        }
        return in_snap_np

    cdef void _mark_outside(self, int64_t i) noexcept nogil:
        """Loan row ``i`` is not in the snapshot: its index entry becomes -2 - i, so that
        the scan knows it (its repayments are checked, then skipped) without another
        look-up. -1 stays "no such loan"."""
        cdef const Col* c = &self.lc[L_ID]
        cdef int64_t v = 0, ln
        cdef uint64_t h, hv
        cdef const char* p
        if self.mode == 1:
            read_int(c, i, &v)
            self.direct[<uint64_t>v - <uint64_t>self.id_base] = <int32_t>(-2 - i)
        elif self.mode == 2:
            read_int(c, i, &v)
            h = mc_mix64(<uint64_t>v) & self.mask
            while self.islots[h].row == -1 or self.islots[h].key != v:
                h = (h + 1) & self.mask
            self.islots[h].row = -2 - i
        else:
            string_at(c, i, &p, &ln)
            hv = mc_hash_bytes(p, ln)
            h = hv & self.mask
            while True:
                if self.sslots[h].hash == hv and self.sslots[h].row == i:
                    break
                h = (h + 1) & self.mask
            self.sslots[h].row = -2 - i

    # ----------------------------------------------------------------------------------
    # 3. repayments: look up, check, keep the counted ones (sequential over rows)
    # ----------------------------------------------------------------------------------
    def start_scan(self, int n_tasks, int shift):
        """Prepare ``n_tasks`` scan tasks per wave (a wave's rows are cut into that many
        consecutive ranges, task 0 first); loans are grouped in buckets of 2**shift rows."""
        cdef int64_t nb
        self.shift = shift
        self.n_buckets = (self.n_loans >> shift) + 1
        self.n_tasks = n_tasks
        nb = self.n_buckets * n_tasks
        self.bufs = <Buf*>calloc(nb, sizeof(Buf))
        self.arenas = <Arena*>calloc(n_tasks, sizeof(Arena))
        if self.bufs == NULL or self.arenas == NULL:
            raise MemoryError()
        self.n_bufs = nb
        return self.n_buckets

    def scan(self, int task, int64_t lo, int64_t hi):
        """Scan repayments [lo, hi) as task ``task``: find each one's loan, check it, and
        file the counted payments up to as_of of loans in the snapshot by loan bucket, in
        row order. Returns ``(unknown, error)``: the number of repayments of unknown
        loans, and None or ``RowError(row, column, code, extra)`` of the first bad row."""
        cdef int64_t unknown = 0, row = INT64_MAX, extra = 0
        cdef int col = 0, code = 0
        with nogil:
            unknown = self._scan(task, lo, hi, &row, &col, &code, &extra)
        if code == E_NOMEM:
            raise MemoryError()
        return unknown, (None if row == INT64_MAX else RowError(row, col, code, extra))

    cdef void _lookup_start(self, Probe* pr, int64_t base, int64_t nb) noexcept nogil:
        """Compute the index slot of the ids of repayments [base, base + nb) (nb <= 32)
        and prefetch them; ``_lookup_finish`` resolves them one block later, so that the
        cache misses of a block overlap the work on the previous one."""
        cdef const Col* c = &self.rc[P_ID]
        cdef int64_t t, r
        pr.base = base
        pr.nb = nb
        for t in range(nb):
            r = base + t
            pr.ok[t] = valid_at(c, r)
            pr.err[t] = E_NONE
            if not pr.ok[t]:
                continue
            if self.mode == 3:
                pr.err[t] = string_at(c, r, &pr.ptr[t], &pr.lens[t])
                if pr.err[t]:
                    pr.ok[t] = False
                    continue
                pr.hashes[t] = mc_hash_bytes(pr.ptr[t], pr.lens[t])
                pr.slot[t] = pr.hashes[t] & self.mask
                mc_prefetch_low(&self.sslots[pr.slot[t]])
                continue
            if read_int(c, r, &pr.keys[t]):
                pr.ok[t] = False                  # beyond int64: no loan has this id
                continue
            if self.mode == 1:
                pr.slot[t] = <uint64_t>pr.keys[t] - <uint64_t>self.id_base
                if pr.slot[t] > self.id_span:
                    pr.ok[t] = False
                    continue
                mc_prefetch_low(&self.direct[pr.slot[t]])
            else:
                pr.slot[t] = mc_mix64(<uint64_t>pr.keys[t]) & self.mask
                mc_prefetch_low(&self.islots[pr.slot[t]])

    cdef int64_t _lookup_finish(self, const Probe* pr, int64_t* found) noexcept nogil:
        """Index entry of each id of the block (-1: no such loan; >= 0: a loan in the
        snapshot; <= -2: -2 - row of a loan outside it); returns the number unknown."""
        cdef const Col* lcid = &self.lc[L_ID]
        cdef int64_t unknown = 0, t, v, m
        cdef uint64_t h
        cdef const char* q
        for t in range(pr.nb):
            found[t] = -1
            if pr.ok[t]:
                h = pr.slot[t]
                if self.mode == 1:
                    found[t] = self.direct[h]
                elif self.mode == 2:
                    v = pr.keys[t]
                    while self.islots[h].row != -1:
                        if self.islots[h].key == v:
                            found[t] = self.islots[h].row
                            break
                        h = (h + 1) & self.mask
                else:
                    while self.sslots[h].row != -1:
                        if self.sslots[h].hash == pr.hashes[t]:
                            string_at(lcid, _row_of(self.sslots[h].row), &q, &m)
                            if m == pr.lens[t] and memcmp(pr.ptr[t], q, m) == 0:
                                found[t] = self.sslots[h].row
                                break
                        h = (h + 1) & self.mask
            unknown += found[t] == -1
        return unknown

    cdef int64_t _scan(self, int task, int64_t lo, int64_t hi, int64_t* erow, int* ecol,
                       int* ecode, int64_t* eextra) noexcept nogil:
        cdef Buf* mine = self.bufs + <int64_t>task * self.n_buckets
        cdef int64_t unknown = 0, base = lo, nb, t, r, k, pay = 0
        cdef int64_t found[32]
        cdef int64_t parts[3]
        cdef int32_t date = 0
        cdef bint date_ok, pay_ok, reversed_, split_used
        cdef int code, j
        cdef Probe probes[2]
        cdef Probe* cur = &probes[0]
        cdef Probe* ahead = &probes[1]
        cdef Probe* swap
        cdef int64_t ahead_rows = 64
        nb = hi - base if hi - base < 32 else 32
        if nb > 0:
            self._lookup_start(cur, base, nb)
        while base < hi:
            nb = cur.nb
            if base + nb < hi:                     # look up the next block's ids early
                self._lookup_start(ahead, base + nb, hi - base - nb if hi - base - nb < 32 else 32)
            unknown += self._lookup_finish(cur, found)
            swap = cur
            cur = ahead
            ahead = swap                           # the block just resolved
            if base + ahead_rows + 32 < hi:        # and the columns a little ahead
                for t in range(0, 32, 8):
                    col_prefetch(&self.rc[P_DATE], base + ahead_rows + t)
                    col_prefetch(&self.rc[P_AMOUNT], base + ahead_rows + t)
                    if self.has_split:
                        for j in range(3):
                            col_prefetch(&self.rc[P_PRIN + j], base + ahead_rows + t)
            for t in range(nb):
                k = found[t]
                r = base + t
                if k == -1:                        # unknown loan: ignored, only counted,
                    if self.mode == 3:             # but a string id must be one (as read
                        code = ahead.err[t]        # by the reference, which decodes it)
                        if (code == E_NONE and ahead.ok[t]
                                and not mc_utf8_valid(ahead.ptr[t], ahead.lens[t])):
                            code = E_UTF8
                        if code:
                            note(erow, ecol, ecode, eextra, r, P_ID, code, 0)
                            return unknown
                    continue
                # check every column of the row, in role order
                date_ok = valid_at(&self.rc[P_DATE], r)
                if date_ok:
                    code = read_date(&self.rc[P_DATE], r, &date)
                    if code:
                        note(erow, ecol, ecode, eextra, r, P_DATE, code, 0)
                        return unknown
                pay_ok = valid_at(&self.rc[P_AMOUNT], r)
                if pay_ok:
                    code = read_money(&self.rc[P_AMOUNT], r, self.p_int, self.p_dbl,
                                      self.scale, &pay)
                    if code == E_NONE and pay < 0:
                        code = E_NEGATIVE
                    if code:
                        note(erow, ecol, ecode, eextra, r, P_AMOUNT, code, 0)
                        return unknown
                split_used = False
                if self.has_split:
                    for j in range(3):
                        parts[j] = 0               # a null part counts 0
                        if valid_at(&self.rc[P_PRIN + j], r):
                            code = read_money(&self.rc[P_PRIN + j], r, self.p_int,
                                              self.p_dbl, self.scale, &parts[j])
                            if code == E_NONE and parts[j] < 0:
                                code = E_NEGATIVE
                            if code:
                                note(erow, ecol, ecode, eextra, r, P_PRIN + j, code, 0)
                                return unknown
                    # the parts are never negative: they sum to 0 exactly when all are 0
                    split_used = (parts[0] | parts[1] | parts[2]) != 0
                reversed_ = (self.has_reversed and valid_at(&self.rc[P_REV], r)
                             and bool_at(&self.rc[P_REV], r))
                # §9.2: a reversed payment, or one without a date or an amount, does not
                # count; nor does one after as_of, nor any payment of a loan outside the
                # snapshot (checked above all the same)
                if k < 0 or reversed_ or not date_ok or not pay_ok or date > self.as_of:
                    continue                       # (k <= -2: a loan outside the snapshot)
                if buf_push(&mine[k >> self.shift], &self.arenas[task], r, pay, k, date,
                            split_used, parts):
                    note(erow, ecol, ecode, eextra, -1, 0, E_NOMEM, 0)
                    return unknown
            base += nb
        return unknown

    # ----------------------------------------------------------------------------------
    # 4. per bucket of loans: split and add the payments, then the snapshot columns
    # ----------------------------------------------------------------------------------
    def apply(self, int64_t blo, int64_t bhi):
        """Add the payments filed in this wave for loan buckets [blo, bhi) to their loans,
        allocating unsplit ones (§9.3 step 6). Returns None or the
        ``RowError(row, column, code, extra)`` of the first repayment whose allocation
        does not fit int64."""
        cdef int64_t row = INT64_MAX, extra = 0, b
        cdef int col = 0, code = 0
        with nogil:
            for b in range(blo, bhi):
                self._apply_bucket(b, &row, &col, &code, &extra)
        return None if row == INT64_MAX else RowError(row, col, code, extra)

    def next_wave(self):
        """Empty the filing buffers for the next wave of rows (keeping their memory)."""
        cdef int t
        memset(self.bufs, 0, self.n_bufs * sizeof(Buf))
        for t in range(self.n_tasks):
            arena_reset(&self.arenas[t])

    def finish(self, int64_t blo, int64_t bhi):
        """The snapshot columns of the loans of buckets [blo, bhi), once every wave is
        applied. Returns None or ``Overflow(loan_row, total)`` of the first loan with a
        total beyond int64 (``total`` indexes ``_errors.LOAN_TOTALS``)."""
        cdef int64_t bad_loan = INT64_MAX, b, klo, khi
        cdef int which = 0
        cdef Outputs o
        _outputs(&o, self.out)
        with nogil:
            for b in range(blo, bhi):
                klo = b << self.shift
                khi = (b + 1) << self.shift
                if khi > self.n_loans:
                    khi = self.n_loans
                self._finish(klo, khi, &o, &bad_loan, &which)
                if bad_loan != INT64_MAX:
                    break
        return None if bad_loan == INT64_MAX else Overflow(bad_loan, which)

    cdef int _apply_bucket(self, int64_t b, int64_t* erow, int* ecol, int* ecode,
                           int64_t* eextra) noexcept nogil:
        """Nonzero after recording an allocation error (the bucket's first, in row order:
        tasks scanned ascending row ranges and each filed its rows in order)."""
        cdef int t
        cdef int64_t j, row, k, principal, interest, fees, pay
        cdef int32_t date
        cdef const Block* blk
        cdef const Block* pblk
        cdef int64_t pi
        cdef const Rec* rec
        cdef const Parts* pp
        cdef const LoanAlloc* al
        cdef LoanAcc* a
        cdef double x
        cdef const Buf* buf
        cdef const Rec* recs
        cdef int64_t n, pn = 0
        for t in range(self.n_tasks):
            buf = &self.bufs[<int64_t>t * self.n_buckets + b]
            blk = buf.recs.head
            pblk = buf.parts.head
            if pblk != NULL:
                pn = block_count(pblk, buf.parts.tail, buf.parts.cur, sizeof(Parts))
            pi = 0
            while blk != NULL:
                n = block_count(blk, buf.recs.tail, buf.recs.cur, sizeof(Rec))
                recs = <const Rec*>block_entries(blk)
                for j in range(n):
                    if j + 16 < n:             # the loan lines of a later payment
                        mc_prefetch_low_w(&self.acc[recs[j + 16].k])
                        mc_prefetch_low(&self.alloc[recs[j + 16].k])
                    rec = recs + j
                    k = rec.k
                    pay = rec.pay
                    date = rec.date
                    if rec.row < 0:                # the recorded split, used as recorded
                        row = -1 - rec.row
                        if pi == pn:
                            pblk = pblk.next
                            pn = block_count(pblk, buf.parts.tail, buf.parts.cur,
                                             sizeof(Parts))
                            pi = 0
                        pp = <const Parts*>block_entries(pblk) + pi
                        pi += 1
                        principal = pp.p
                        interest = pp.i
                        fees = pp.f
                    else:
                        row = rec.row
                        al = &self.alloc[k]
                        if al.positive:
                            # in proportion to R; principal takes the rest, so the three
                            # parts sum to the payment exactly
                            x = mc_round_half_even(<double>pay * al.interest_d / al.repayable_d)
                            if not fits_int64(x):
                                note(erow, ecol, ecode, eextra, row, P_ALLOC,
                                     E_ALLOC_INTEREST, 0)
                                return 1
                            interest = <int64_t>x
                            x = mc_round_half_even(<double>pay * al.fee_d / al.repayable_d)
                            if not fits_int64(x):
                                note(erow, ecol, ecode, eextra, row, P_ALLOC, E_ALLOC_FEES, 0)
                                return 1
                            fees = <int64_t>x
                            if (mc_sub_ovf(pay, interest, &principal)
                                    or mc_sub_ovf(principal, fees, &principal)):
                                note(erow, ecol, ecode, eextra, row, P_ALLOC,
                                     E_ALLOC_PRINCIPAL, 0)
                                return 1
                        else:                      # R <= 0: all of it is principal
                            principal = pay
                            interest = 0
                            fees = 0
                    a = &self.acc[k]
                    if mc_add_ovf(a.t_asof, pay, &a.t_asof):
                        a.flags |= 1
                    if date <= self.roll_from and mc_add_ovf(a.t_roll, pay, &a.t_roll):
                        a.flags |= 2
                    if date - MIN_DAY + 1 > a.last:
                        a.last = date - MIN_DAY + 1
                    if MAX_DAY - date + 1 > a.first:
                        a.first = MAX_DAY - date + 1
                    acc_add(&a.prin, &a.c_prin, principal)
                    if date >= self.period_start:
                        acc_add(&a.intw, &a.c_intw, interest)
                        acc_add(&a.feew, &a.c_feew, fees)
                blk = blk.next
        return 0

    def release(self):
        """Free the filed payments (the snapshot columns are computed)."""
        self._release()

    cdef void _release(self) noexcept:
        cdef int t
        if self.arenas != NULL:
            for t in range(self.n_tasks):
                arena_free(&self.arenas[t])
        free(self.arenas)
        free(self.bufs)
        self.arenas = NULL
        self.bufs = NULL
        self.n_bufs = 0

    cdef void _finish(self, int64_t klo, int64_t khi, Outputs* o, int64_t* bad_loan,
                      int* which) noexcept nogil:
        cdef int64_t k, p, T, R, po, due7, start, stop, last, first
        cdef const LoanAcc* a
        cdef double daily, x, pd = self.p_dbl
        cdef int32_t fd, mat
        cdef int64_t as_of = self.as_of
        for k in range(klo, khi):
            if not self.alloc[k].in_snapshot:
                continue
            a = &self.acc[k]
            # totals that must fit int64, in ``_errors.LOAN_TOTALS`` order
            if a.flags & 1:
                bad_loan[0] = k
                which[0] = T_PAID
                return
            if a.c_prin != 0:
                bad_loan[0] = k
                which[0] = T_PRINCIPAL
                return
            if a.c_intw != 0:
                bad_loan[0] = k
                which[0] = T_INTEREST
                return
            if a.c_feew != 0:
                bad_loan[0] = k
                which[0] = T_FEES
                return
            if mc_sub_ovf(self.amount[k], a.prin, &po):
                if a.prin < 0:                     # the true L - paid is above int64
                    bad_loan[0] = k
                    which[0] = T_OUTSTANDING
                    return
                po = 0                             # ... or below it: floored at 0
            elif po < 0:
                po = 0
            T = a.t_asof
            R = self.repayable[k]
            daily = self.daily[k]
            fd = self.first_due[k]
            mat = self.maturity[k]
            due7 = 0
            if T < R:
                start = as_of + 1
                if fd != NULL_DAY and fd > start:
                    start = fd
                stop = as_of + 7
                if mat != NULL_DAY and mat < stop:
                    stop = mat
                x = mc_round_half_even(daily * <double>mc_bdays(start, stop, self.hol, self.n_hol))
                if not fits_int64(x):
                    bad_loan[0] = k
                    which[0] = T_DUE7
                    return
                due7 = <int64_t>x
            p = self.pos[k]
            o.current_dpd[p] = days_past_due(as_of, T, R, daily, fd, mat, self.hol, self.n_hol)
            if self.disbursed[k] > self.roll_from:
                o.previous_dpd[p] = 0
                o.previous_dpd_valid[p] = 0
            else:
                o.previous_dpd[p] = days_past_due(self.roll_from, a.t_roll, R, daily, fd, mat,
                                                  self.hol, self.n_hol)
                o.previous_dpd_valid[p] = 1
            # §9.3 step 5: tagged when there is no due date, or it has passed without any counted
            # payment on or before it
            first = MAX_DAY + 1 - a.first          # earliest payment date when a.first > 0
            o.fimr_tagged[p] = fd == NULL_DAY or (fd < as_of and not (a.first > 0 and first <= fd))
            o.principal_outstanding[p] = <double>po / pd
            o.interest_collected[p] = <double>a.intw / pd
            o.fees_collected[p] = <double>a.feew / pd
            o.fees_due[p] = <double>self.fee[k] / pd
            o.outstanding_balance[p] = <double>(R - T if T < R else 0) / pd
            o.amount_due_7d[p] = <double>due7 / pd
            if a.last > 0:
                last = a.last + MIN_DAY - 1
                o.days_since_last_repayment[p] = as_of - last
                o.days_since_last_repayment_valid[p] = 1
            else:
                o.days_since_last_repayment[p] = 0
                o.days_since_last_repayment_valid[p] = 0
            o.loan_age[p] = as_of - self.disbursed[k]


cdef void* _ptr(object a) except? NULL:
    cdef cnp.ndarray arr = a
    return cnp.PyArray_DATA(arr)


cdef int _outputs(Outputs* o, dict out) except -1:
    o.current_dpd = <int64_t*>_ptr(out["current_dpd"])
    o.previous_dpd = <int64_t*>_ptr(out["previous_dpd"])
    o.previous_dpd_valid = <uint8_t*>_ptr(out["previous_dpd_valid"])
    o.fimr_tagged = <uint8_t*>_ptr(out["fimr_tagged"])
    o.principal_outstanding = <double*>_ptr(out["principal_outstanding"])
    o.interest_collected = <double*>_ptr(out["interest_collected"])
    o.fees_collected = <double*>_ptr(out["fees_collected"])
    o.fees_due = <double*>_ptr(out["fees_due"])
    o.outstanding_balance = <double*>_ptr(out["outstanding_balance"])
    o.amount_due_7d = <double*>_ptr(out["amount_due_7d"])
    o.days_since_last_repayment = <int64_t*>_ptr(out["days_since_last_repayment"])
    o.days_since_last_repayment_valid = <uint8_t*>_ptr(out["days_since_last_repayment_valid"])
    o.loan_age = <int64_t*>_ptr(out["loan_age"])
    return 0


cdef class ColumnSpec:
    """One input column of a :class:`Derivation`: its kind (``KIND_*``), layout and the
    addresses of its Arrow buffers (0: absent), which the caller keeps alive.

    ``width``: bytes of an integer value; ``signed``: a signed integer; ``scale``: decimal
    scale; ``per_day``: ``KIND_UNITS64`` units per day; ``offset``: the array's offset (the
    physical index of row 0); ``length``: rows; ``validity``, ``values`` (offsets for
    strings), ``chars`` (string data) and ``chars_len`` (its size in bytes).
    """
    cdef Col col

    def __init__(self, int kind, *, int width=0, bint signed=False, int scale=0,
                 int64_t per_day=0, int64_t offset=0, int64_t length=0,
                 uint64_t validity=0, uint64_t values=0, uint64_t chars=0,
                 int64_t chars_len=0):
        memset(&self.col, 0, sizeof(Col))
        self.col.kind = kind
        self.col.width = width
        self.col.is_signed = signed
        self.col.scale = scale
        self.col.per_day = per_day
        self.col.offset = offset
        self.col.length = length
        self.col.validity = <const uint8_t*>validity
        self.col.values = <const void*>values
        self.col.chars = <const char*>chars
        self.col.chars_len = chars_len


cdef int _set_col(Col* c, ColumnSpec spec) except -1:
    if spec is None:
        memset(c, 0, sizeof(Col))
        c.kind = C_ABSENT
        return 0
    c[0] = spec.col
    if c.kind == C_UNITS64 and c.per_day <= 0:
        raise ValueError("per_day must be positive")
    if c.length > 0 and c.values == NULL:
        raise ValueError("missing data buffer")
    return 0


#: Column kinds, for the caller's column specs.
KIND_INT = C_INT
KIND_FLOAT32 = C_F32
KIND_FLOAT64 = C_F64
KIND_DECIMAL = C_DEC
KIND_BOOL = C_BOOL
KIND_DATE32 = C_DAYS32
KIND_UNITS64 = C_UNITS64
KIND_STRING = C_STR
KIND_LARGE_STRING = C_LSTR

#: Error code -> reason of ``metriccore._errors.CATALOGUE`` (allocation errors add the part).
ERROR_REASONS = {
    E_NULL: "null", E_DUP: "duplicate", E_ID_RANGE: "id_range", E_NAN: "nan", E_BIG: "big",
    E_MONEY_OVF: "money_overflow", E_RATE_NAN: "rate_nan", E_NEG_TERM: "negative_term",
    E_INT_OVF: "int_overflow", E_DATE_PARSE: "date_parse", E_DATE_RANGE: "date_range",
    E_NEGATIVE: "negative", E_INTEREST_OVF: "interest_overflow",
    E_REPAYABLE_OVF: "repayable_overflow", E_ALLOC_INTEREST: "alloc_overflow",
    E_ALLOC_FEES: "alloc_overflow", E_ALLOC_PRINCIPAL: "alloc_overflow",
    E_OFFSETS: "offsets", E_UTF8: "utf8",
}
ALLOC_PARTS = {E_ALLOC_INTEREST: "interest", E_ALLOC_FEES: "fees",
               E_ALLOC_PRINCIPAL: "principal"}
#: Column positions of the derived checks (after the table's own columns).
LOAN_DERIVED_COLUMN = L_INTEREST
REPAYMENT_ALLOC_COLUMN = P_ALLOC


def business_days(int64_t a, int64_t b, holidays):
    """bdays(a, b) of docs/metrics.md §9.3 (step 3) between day numbers, counted as the derivation
    counts them (O(1) plus binary searches); ``holidays`` are the weekday holidays, sorted
    and distinct. For tests."""
    cdef const int32_t[::1] h = np.ascontiguousarray(holidays, dtype=np.int32)
    cdef const int32_t* p = &h[0] if h.shape[0] > 0 else NULL
    return mc_bdays(a, b, p, h.shape[0])
