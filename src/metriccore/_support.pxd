# The helpers of _support.h shared by _kernels.pyx and _derive.pyx, declared once: overflow
# and exact sums, memory, hashing, prefetch, atomics, clock, string offsets, and money to exact
# minor units (docs/metrics.md §2). Only C declarations: there is no module _support to import.
from libc.stdint cimport int64_t, uint64_t


cdef extern from "_support.h" nogil:
    # overflow-checked arithmetic and the exact (wrapped int64, carry) accumulators
    int mc_add_ovf(int64_t a, int64_t b, int64_t* r)
    int mc_sub_ovf(int64_t a, int64_t b, int64_t* r)
    int mc_mul_ovf(int64_t a, int64_t b, int64_t* r)
    void mc_acc_add(int64_t* acc, int64_t v)
    void mc_acc_merge(int64_t* dst, const int64_t* src)
    # memory
    void mc_zero16(int64_t* p)
    bint MC_KEEP_SPARES
    void* mc_big_alloc(size_t n)
    # hashing, prefetch, atomics, clock
    uint64_t mc_mix64(uint64_t x)
    uint64_t mc_hash_bytes(const char* p, int64_t n)
    bint mc_utf8_valid(const char* text, int64_t n)
    void mc_prefetch(const void* p)
    void mc_prefetch_low(const void* p)
    void mc_prefetch_low_w(const void* p)
    int64_t mc_fetch_add(int64_t* p, int64_t v)
    int64_t mc_now_ms()
    # money to exact minor units
    double mc_round_half_even(double x)
    int mc_f64_minor_fast(const double* x, int64_t n, double p, int64_t* out, double* mag)
    int mc_f32_minor_fast(const float* x, int64_t n, double p, int64_t* out, double* mag)
    double mc_mag_i64(const int64_t* x, int64_t n)
    # the per-value money rules (float, integer, decimal128) and what they return
    int MC_MONEY_NAN
    int MC_MONEY_BIG
    int MC_MONEY_OVF
    int mc_money_f64(double x, double p, int64_t* out)
    int mc_money_int(int64_t v, int64_t mult, int64_t* out)
    int mc_money_dec128(const uint64_t* words, int64_t idx, int up, int64_t* out)
    # the offsets of one string of a string / large_string array, checked against bounds
    int mc_str_span(const void* offsets, bint large, int64_t idx, int64_t lo, int64_t hi,
                    bint check, int64_t* a, int64_t* b)
