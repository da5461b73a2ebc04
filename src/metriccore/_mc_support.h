/* Small portable C helpers for _kernels.pyx.
 *
 * - The Arrow C Data Interface structs (the stable ABI described in the Arrow
 *   specification "The Arrow C data interface" / "The Arrow C stream interface").
 *   Guarded by ARROW_C_DATA_INTERFACE / ARROW_C_STREAM_INTERFACE so that they can
 *   coexist with other definitions of the same ABI.
 * - Overflow-checked int64 arithmetic (GCC/Clang builtins, portable fallback).
 * - A relaxed atomic fetch-add for the chunk counter shared by worker threads, and a
 *   millisecond clock that paces the calling thread's checks for signals.
 * - Exact decimal128 -> int64 minor-unit rescaling with round-half-even, written
 *   with 32-bit limbs so that it needs no __int128 (MSVC has none).
 */
#ifndef METRICCORE_MC_SUPPORT_H
#define METRICCORE_MC_SUPPORT_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4
struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};
struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};
#endif

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE
struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);
  void (*release)(struct ArrowArrayStream*);
  void* private_data;
};
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

/* a + b -> *r (wrapped); returns nonzero when the true sum does not fit int64. */
static inline int mc_add_ovf(int64_t a, int64_t b, int64_t* r) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_add_overflow(a, b, r);
#else
  uint64_t u = (uint64_t)a + (uint64_t)b;
  *r = (int64_t)u;
  return ((a ^ *r) & (b ^ *r)) < 0;
#endif
}

/* a * b -> *r; returns nonzero on overflow (then *r is unspecified). */
static inline int mc_mul_ovf(int64_t a, int64_t b, int64_t* r) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_mul_overflow(a, b, r);
#else
  if (a == 0 || b == 0) { *r = 0; return 0; }
  if (a > 0 ? (b > 0 ? a > INT64_MAX / b : b < INT64_MIN / a)
            : (b > 0 ? a < INT64_MIN / b : a < INT64_MAX / b)) return 1;
  *r = a * b;
  return 0;
#endif
}

/* An exact int64 accumulator: true value = acc[0] + acc[1] * 2**64, acc[0] wrapped.
 * It fits int64 exactly when acc[1] == 0, so partial sums may overflow freely. */
static inline void mc_acc_add(int64_t* acc, int64_t v) {
  int64_t s;
  if (mc_add_ovf(acc[0], v, &s)) acc[1] += (v < 0) ? -1 : 1;
  acc[0] = s;
}

static inline void mc_acc_merge(int64_t* dst, const int64_t* src) {
  mc_acc_add(dst, src[0]);
  dst[1] += src[1];
}

/* Zero one 16-word (two cache line) hot record, 64-byte aligned: plain stores, which the
 * compiler merges into vector stores (a memset call or ``rep stos`` costs more than the
 * record for a group created in a row loop). */
static inline void mc_zero16(int64_t* p) {
#if defined(__GNUC__) || defined(__clang__)
  int64_t* q = (int64_t*)__builtin_assume_aligned(p, 64);
#else
  int64_t* q = p;
#endif
  q[0] = 0; q[1] = 0; q[2] = 0; q[3] = 0; q[4] = 0; q[5] = 0; q[6] = 0; q[7] = 0;
  q[8] = 0; q[9] = 0; q[10] = 0; q[11] = 0; q[12] = 0; q[13] = 0; q[14] = 0; q[15] = 0;
}

/* Whether finished calls keep spare buffers for the next (_kernels.pyx, "Spare buffers").
 * The spares are guarded by the GIL, so a free-threaded build keeps none. */
#ifdef Py_GIL_DISABLED
#define MC_KEEP_SPARES 0
#else
#define MC_KEEP_SPARES 1
#endif

/* splitmix64 finaliser: mixes an integer key for an open-addressing table (the group
 * tables of _kernels.pyx and the loan-id tables of _derive.pyx). */
static inline uint64_t mc_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/* Whether p[0:n] is well-formed UTF-8 (as Python's strict decoder and Arrow's validation
 * define it: no overlong forms, no surrogates, nothing beyond U+10FFFF). Shared by the
 * string keys of _kernels.pyx and the string loan ids of _derive.pyx. */
static inline int mc_utf8_valid(const char* text, int64_t n) {
  const uint8_t* s = (const uint8_t*)text;
  int64_t i = 0;
  uint8_t c0, c1;
  uint64_t w;
  while (i < n) {
    if (i + 8 <= n) {
      memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    c0 = s[i];
    if (c0 < 0x80) {
      i += 1;
    } else if (c0 < 0xC2) {
      return 0; /* continuation byte or overlong 2-byte lead */
    } else if (c0 < 0xE0) {
      if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
      i += 2;
    } else if (c0 < 0xF0) {
      if (i + 2 >= n) return 0;
      c1 = s[i + 1];
      if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (c0 == 0xE0 && c1 < 0xA0) ||
          (c0 == 0xED && c1 >= 0xA0))
        return 0; /* bad continuation, overlong, surrogate */
      i += 3;
    } else if (c0 < 0xF5) {
      if (i + 3 >= n) return 0;
      c1 = s[i + 1];
      if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80 ||
          (c0 == 0xF0 && c1 < 0x90) || (c0 == 0xF4 && c1 >= 0x90))
        return 0; /* bad continuation, overlong, > U+10FFFF */
      i += 4;
    } else {
      return 0;
    }
  }
  return 1;
}

/* Hash of a byte string, 8 bytes at a time through mc_mix64 (the length is mixed in, and a
 * short tail is marked, so that strings differing only in trailing zero bytes differ). */
static inline uint64_t mc_hash_bytes(const char* p, int64_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
  uint64_t w;
  int64_t i = 0;
  while (i + 8 <= n) {
    memcpy(&w, p + i, 8);
    h = mc_mix64(h ^ w);
    i += 8;
  }
  if (i < n) {
    w = 0;
    memcpy(&w, p + i, (size_t)(n - i));
    h = mc_mix64(h ^ w ^ (0xffULL << 56));
  }
  return h;
}

/* A read prefetch hint (a no-op where the compiler has none). */
#if defined(__GNUC__) || defined(__clang__)
#define mc_prefetch(p) __builtin_prefetch((const void*)(p), 0, 3)
#else
#define mc_prefetch(p) ((void)(p))
#endif

static inline int64_t mc_fetch_add(int64_t* p, int64_t v) {
#if defined(_MSC_VER) && !defined(__clang__)
  return _InterlockedExchangeAdd64((volatile long long*)p, v);
#else
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#endif
}

/* Milliseconds of a clock that may jump (C11 timespec_get: glibc, musl, macOS 10.15+,
 * MSVC). Only paces how often the calling thread looks for signals between chunks: a jump
 * makes one look early or late, nothing more. */
static inline int64_t mc_now_ms(void) {
  struct timespec ts;
  if (timespec_get(&ts, TIME_UTC) != TIME_UTC) return 0;
  return (int64_t)ts.tv_sec * 1000 + (int64_t)(ts.tv_nsec / 1000000);
}

/* Round half to even, as nearbyint() under the default rounding mode, without the libm
 * call (nearbyint must preserve the floating-point environment, which is slow). Adding and
 * subtracting 2**52 leaves exactly the integer nearest to |x|, ties to even (for
 * |x| < 2**52); from 2**52 on every double is already an integer. Needs IEEE double
 * arithmetic in the default rounding mode and no -ffast-math. */
static inline double mc_round_half_even(double x) {
  const double two52 = 4503599627370496.0;
  double a = x < 0 ? -x : x;
  if (a < two52) {
    a = (a + two52) - two52; /* never reassociated without -ffast-math */
    return x < 0 ? -a : a;
  }
  return x;
}

/* The fast path of float money: out[i] = round_half_even(x[i] * p) for every i, computed
 * as the low bits of t = x*p + 1.5*2**52. While t lies in [2**52, 2**53), where doubles are
 * exactly the integers, the addition rounds half to even (the constant is even, so the
 * parity of the tie-break is that of the result) and bits(t) - bits(1.5*2**52) is the
 * rounded value. Bit patterns of positive doubles are ordered like the doubles, so t lies
 * in that range exactly when the difference o lies in [-2**51, 2**51); a t outside it (|x*p|
 * too large, negative t, NaN, inf) gives an o outside it. The check is therefore an OR over
 * the integers, o ^ (o >> 63) (o for o >= 0, |o| - 1 below): every o is in range when the
 * OR is below 2**51. The same OR, plus one, bounds |out[i]| in ``*mag``. Integer-only after
 * the two float operations, so it vectorises with SSE2 and has no float dependency chain.
 * Returns 0 when some value is out of range: then ``out`` is meaningless and the caller
 * takes the checked path. */
#if defined(_MSC_VER)
#define MC_RESTRICT __restrict
#else
#define MC_RESTRICT __restrict__
#endif
/* The streaming loops below are compiled several times, for AVX-512, AVX2 and the baseline
 * ISA, and the best one the CPU has is picked when the module loads (GCC function
 * multiversioning, through a glibc ifunc). Only where that exists: x86-64 Linux with glibc
 * and GCC 8 or later; elsewhere (and with METRICCORE_NO_CLONES) they are compiled once.
 * From GCC 12 the AVX-512 version targets x86-64-v4 (AVX-512 F, BW, DQ, VL): with byte
 * and mask instructions the loops that mix byte and int64 columns stop spilling (the row
 * flags loop runs twice as fast as with AVX-512F alone). Integer and IEEE double
 * operations give the same results at every width; -ffp-contract=off keeps x*p + c from
 * becoming an FMA in the wider versions too. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) \
    && defined(__linux__) && defined(__GLIBC__) && !defined(METRICCORE_NO_CLONES)
#define MC_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "avx2", "default"), unused))
#elif defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && defined(__x86_64__) \
    && defined(__linux__) && defined(__GLIBC__) && !defined(METRICCORE_NO_CLONES)
#define MC_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), unused))
#elif defined(__GNUC__) || defined(__clang__)
#define MC_CLONES __attribute__((unused))
#else
#define MC_CLONES
#endif
#define MC_DEFINE_FAST_MINOR(NAME, T)                                              \
  MC_CLONES static int NAME(const T* MC_RESTRICT x, int64_t n, double p,              \
                         int64_t* MC_RESTRICT out, double* mag) {                  \
    const double c = 6755399441055744.0;                                           \
    uint64_t cbits, b, m = 0;                                                      \
    int64_t o, i;                                                                  \
    double t;                                                                      \
    memcpy(&cbits, &c, 8);                                                         \
    for (i = 0; i < n; i++) {                                                      \
      t = (double)x[i] * p + c;                                                    \
      memcpy(&b, &t, 8);                                                           \
      o = (int64_t)(b - cbits);                                                    \
      out[i] = o;                                                                  \
      m |= (uint64_t)(o ^ (o >> 63));                                              \
    }                                                                              \
    *mag = (double)m + 1.0;                                                        \
    return m < ((uint64_t)1 << 51);                                                \
  }
MC_DEFINE_FAST_MINOR(mc_f64_minor_fast, double)
MC_DEFINE_FAST_MINOR(mc_f32_minor_fast, float)

/* A bound on |x[i]| for every i < n: the OR of x ^ (x >> 63) (that is x when x >= 0 and
 * |x| - 1 when x < 0) plus one. An OR instead of a max because it vectorises with SSE2. */
MC_CLONES static double mc_mag_i64(const int64_t* MC_RESTRICT x, int64_t n) {
  uint64_t m = 0;
  int64_t i;
  for (i = 0; i < n; i++) m |= (uint64_t)(x[i] ^ (x[i] >> 63));
  return (double)m + 1.0;
}

/* Flag bits of one row, for the accumulation loops (one byte read instead of nine). */
enum {
  MC_F_D16 = 1,      /* 1 <= current_dpd <= 6 */
  MC_F_PAR = 2,      /* current_dpd >= par_days */
  MC_F_PREV16 = 4,   /* 1 <= previous_dpd <= 6 */
  MC_F_ROLLED = 8,   /* ... and 7 <= current_dpd <= 30 */
  MC_F_ACTIVE = 16,  /* outstanding_balance > active_threshold */
  MC_F_NDAYS = 32,   /* active, days_since_last_repayment not null */
  MC_F_NAGE = 64,    /* active, loan_age not null */
  MC_F_FIRST = 128   /* fimr_tagged */
};

/* The flag byte of each of n rows. Every *_ok and ``tagged`` byte is 0 or 1; a null dpd or
 * balance (ok byte 0) sets none of its bits whatever value lies under it. */
MC_CLONES static void mc_row_flags(int64_t n, const int64_t* MC_RESTRICT dpd,
                                   const uint8_t* MC_RESTRICT dpd_ok,
                                   const int64_t* MC_RESTRICT prev,
                                   const uint8_t* MC_RESTRICT prev_ok,
                                   const int64_t* MC_RESTRICT ob,
                                   const uint8_t* MC_RESTRICT ob_ok,
                                   const uint8_t* MC_RESTRICT dsl_ok,
                                   const uint8_t* MC_RESTRICT age_ok,
                                   const uint8_t* MC_RESTRICT tagged, int64_t par_days,
                                   int64_t threshold, uint8_t* MC_RESTRICT flags) {
  int64_t i;
  for (i = 0; i < n; i++) {
    uint64_t d = (uint64_t)dpd[i], q = (uint64_t)prev[i];
    unsigned dv = dpd_ok[i], qv = prev_ok[i];
    unsigned c16 = dv & (d - 1 < 6);
    unsigned cpar = dv & (dpd[i] >= par_days);
    unsigned cq = qv & (q - 1 < 6);
    unsigned cr = cq & dv & (d - 7 < 24);
    unsigned act = ob_ok[i] & (ob[i] > threshold);
    flags[i] = (uint8_t)(c16 | cpar << 1 | cq << 2 | cr << 3 | act << 4
                         | (act & dsl_ok[i]) << 5 | (act & age_ok[i]) << 6 | tagged[i] << 7);
  }
}

/* The metric step of ``finalize``, one column at a time over n groups so that each loop
 * vectorises (the scalar loop was bound by the throughput of scalar divisions). Every
 * division is computed for every lane, with 1.0 standing in for a denominator the formula
 * does not use, and the unused result is then replaced: IEEE division is correctly rounded
 * at every width, comparisons and selects are exact, -ffp-contract=off keeps sums of
 * products from becoming FMAs, so each value is bitwise the one of the scalar formula. */

/* y = (double)x: int64 to the nearest double (every ISA rounds the same way; vectorised
 * where AVX-512DQ has the instruction). */
MC_CLONES static void mc_i64_to_f64(int64_t n, const int64_t* MC_RESTRICT x,
                                    double* MC_RESTRICT y) {
  int64_t i;
  for (i = 0; i < n; i++) y[i] = (double)x[i];
}

/* out = num / den where den > 0, else 0 (a rate whose base is empty is 0). */
MC_CLONES static void mc_ratio(int64_t n, const double* MC_RESTRICT num,
                               const double* MC_RESTRICT den, double* MC_RESTRICT out) {
  int64_t i;
  for (i = 0; i < n; i++) {
    double d = den[i];
    double q = num[i] / (d > 0.0 ? d : 1.0);
    out[i] = d > 0.0 ? q : 0.0;
  }
}

/* x /= p (money aggregates from minor units to major units). */
MC_CLONES static void mc_div_inplace(int64_t n, double* MC_RESTRICT x, double p) {
  int64_t i;
  for (i = 0; i < n; i++) x[i] = x[i] / p;
}

/* Band codes 0 green, 1 watch, 2 flag: ``upper`` when a high value is bad (x <= green is
 * green), else a low value is bad (x >= green is green). */
MC_CLONES static void mc_band(int64_t n, const double* MC_RESTRICT x, double green,
                              double watch, int upper, int8_t* MC_RESTRICT code) {
  int64_t i;
  if (upper) {
    for (i = 0; i < n; i++) code[i] = (int8_t)(x[i] <= green ? 0 : (x[i] <= watch ? 1 : 2));
  } else {
    for (i = 0; i < n; i++) code[i] = (int8_t)(x[i] >= green ? 0 : (x[i] >= watch ? 1 : 2));
  }
}

/* Python's max(a, b) and min(a, b): keep a unless b is strictly beyond it (-0.0 matters). */
static inline double mc_py_max(double a, double b) { return b > a ? b : a; }
static inline double mc_py_min(double a, double b) { return b < a ? b : a; }
static inline double mc_clamp01(double x) { return mc_py_min(1.0, mc_py_max(0.0, x)); }

/* Repayment delay rate, on-time index, penalty, raw risk score and the risk and DQI
 * scores; ``rdr_ok`` is 1 where the rdr is defined. Inputs are the rates and the day
 * sums/counts as doubles. Every output is 8 bytes wide: a byte output made the compiler
 * take 32 groups per iteration and spill most of them to the stack. The scores lie in
 * [0, 100.5), so the round (floor(x + 0.5), a truncation there) goes through int32, which
 * every vector ISA converts to. */
MC_CLONES static void mc_scores(int64_t n, const double* MC_RESTRICT fimr,
                                const double* MC_RESTRICT slip,
                                const double* MC_RESTRICT roll,
                                const double* MC_RESTRICT porr,
                                const double* MC_RESTRICT ayr,
                                const double* MC_RESTRICT sdays,
                                const double* MC_RESTRICT ndays,
                                const double* MC_RESTRICT sage,
                                const double* MC_RESTRICT nage, double* MC_RESTRICT rdr,
                                double* MC_RESTRICT oti, double* MC_RESTRICT pen,
                                double* MC_RESTRICT raw, int64_t* MC_RESTRICT risk,
                                int64_t* MC_RESTRICT dqi, int64_t* MC_RESTRICT rdr_ok) {
  int64_t i;
  for (i = 0; i < n; i++) {
    double nd = ndays[i], na = nage[i];
    double a = sdays[i] / (nd > 0.0 ? nd : 1.0);
    double gm = sage[i] / (na > 0.0 ? na : 1.0);
    /* defined where both counts are positive and the mean age too: one double compare
     * (mixed-width boolean masks would keep the loop from vectorising) */
    int ok = (nd > 0.0 ? (na > 0.0 ? gm : 0.0) : 0.0) > 0.0;
    double r = (1.0 - (a / (ok ? gm : 1.0)) / 0.25) * 100.0;
    double o = mc_clamp01(1.0 - slip[i]);
    double pn = mc_py_min(40.0, mc_py_max(0.0, 40.0 * (1.0 - r / 100.0)));
    double w;
    r = ok ? r : 0.0;
    pn = (ok & (r <= 100.0)) ? pn : 0.0;
    w = (100.0 - 20.0 * mc_clamp01(porr[i]) - 15.0 * mc_clamp01(fimr[i])
         - 10.0 * mc_clamp01(roll[i]) - pn - 15.0 * (1.0 - mc_clamp01(ayr[i])));
    w = mc_py_min(100.0, mc_py_max(0.0, w));
    rdr[i] = r;
    oti[i] = o;
    pen[i] = pn;
    raw[i] = w;
    risk[i] = (int32_t)(w + 0.5);
    dqi[i] = (int32_t)(100.0 * (0.50 * (w / 100.0) + 0.35 * o
                                + 0.15 * (1.0 - mc_clamp01(fimr[i]))) + 0.5);
    rdr_ok[i] = ok;
  }
}

/* Band codes of the integer scores: DQI 0 green (>= dg), 1 watch (>= dw), else 2 flag;
 * risk 0 green (>= kg), 1 watch (>= kw), 3 amber (>= ka), else 4 red. */
MC_CLONES static void mc_score_bands(int64_t n, const int64_t* MC_RESTRICT dqi,
                                     const int64_t* MC_RESTRICT risk, int64_t dg, int64_t dw,
                                     int64_t kg, int64_t kw, int64_t ka,
                                     int8_t* MC_RESTRICT dqi_code,
                                     int8_t* MC_RESTRICT risk_code) {
  int64_t i;
  for (i = 0; i < n; i++) dqi_code[i] = (int8_t)(dqi[i] >= dg ? 0 : (dqi[i] >= dw ? 1 : 2));
  for (i = 0; i < n; i++)
    risk_code[i] = (int8_t)(risk[i] >= kg ? 0 : (risk[i] >= kw ? 1 : (risk[i] >= ka ? 3 : 4)));
}

static const uint64_t MC_POW10[20] = {
  1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
  100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
  10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
  100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL};

/* Magnitude (uint64) with sign -> int64; returns nonzero when it does not fit. */
static inline int mc_signed_fit(uint64_t mag, int neg, int64_t* out) {
  if (neg) {
    if (mag > (uint64_t)1 << 63) return 1;
    *out = (int64_t)(0 - mag);
  } else {
    if (mag > (uint64_t)INT64_MAX) return 1;
    *out = (int64_t)mag;
  }
  return 0;
}

/* The decimal128 two's complement value (lo, hi) times 10**up (up may be negative:
 * then divided, rounding half to even) -> *out. Returns nonzero when the result leaves int64. */
static inline int mc_dec128_rescale(uint64_t lo, int64_t hi, int up, int64_t* out) {
  int neg = hi < 0;
  uint64_t mlo = lo, mhi = (uint64_t)hi;
  if (neg) {  /* two's complement negate the 128-bit value */
    mlo = ~lo + 1;
    mhi = ~(uint64_t)hi + (mlo == 0);
  }
  if (up >= 0) {
    uint64_t p, limit = neg ? (uint64_t)1 << 63 : (uint64_t)INT64_MAX;
    if (mhi == 0 && mlo == 0) { *out = 0; return 0; }
    if (mhi != 0 || up > 18) return 1;
    p = MC_POW10[up];
    if (mlo > limit / p) return 1;
    return mc_signed_fit(mlo * p, neg, out);
  }
  {
    int k = -up, step, t, last = 0, sticky = 0;
    uint64_t q, r, p;
    if (mhi == 0 && k <= 18) {
      p = MC_POW10[k];
      q = mlo / p;
      r = mlo % p;
      if (2 * r > p || (2 * r == p && (q & 1))) q += 1;
      return mc_signed_fit(q, neg, out);
    }
    {
      uint32_t limbs[4] = {(uint32_t)(mhi >> 32), (uint32_t)mhi, (uint32_t)(mlo >> 32),
                           (uint32_t)mlo};
      for (step = 0; step < k; step++) {
        uint64_t rem = 0;
        for (t = 0; t < 4; t++) {
          uint64_t cur = (rem << 32) | limbs[t];
          limbs[t] = (uint32_t)(cur / 10);
          rem = cur % 10;
        }
        if (step + 1 < k) sticky |= (rem != 0);
        else last = (int)rem;
      }
      if (limbs[0] != 0 || limbs[1] != 0) return 1;
      q = ((uint64_t)limbs[2] << 32) | limbs[3];
      if (last > 5 || (last == 5 && (sticky || (q & 1)))) {
        if (q == UINT64_MAX) return 1;
        q += 1;
      }
      return mc_signed_fit(q, neg, out);
    }
  }
}

#endif
