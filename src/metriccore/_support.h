/* Small portable C helpers of _kernels.pyx and _derive.pyx, declared for Cython once, in
 * _support.pxd. One prefix, mc_:
 *
 * - overflow-checked int64 arithmetic (GCC/Clang builtins, portable fallback) and the
 *   exact (wrapped int64, carry) accumulators: sums are exact (docs/metrics.md §2, §9.5);
 * - memory: zeroing a hot group record, whether spare buffers are kept, and the large
 *   (huge-page) blocks of the derivation;
 * - hashing (splitmix64), prefetch hints, a relaxed atomic fetch-add for the chunk
 *   counter shared by worker threads, and a millisecond clock that paces the calling
 *   thread's checks for signals;
 * - the offsets of one string of a string / large_string array, checked against bounds
 *   (the string readers of both modules);
 * - money to exact minor units (docs/metrics.md §2), the one statement of the rule: the
 *   per-value rules for float, integer and decimal128 values (mc_money_*, with the one
 *   2**53 limit) that both modules call, round half to even, the float fast paths, and
 *   the decimal128 -> int64 rescaling with round half to even, written with 32-bit limbs
 *   so that it needs no __int128 (MSVC has none);
 * - MC_RESTRICT and MC_CLONES (the multiversioned streaming loops, here and in
 *   _metrics.h).
 *
 * The Arrow ABI structs are in _arrow_abi.h, the calendar in _dates.h and the formulas of
 * the metrics in _metrics.h.
 */
#ifndef METRICCORE_SUPPORT_H
#define METRICCORE_SUPPORT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

/* C99 restrict, spelled for each compiler. */
#if defined(_MSC_VER)
#define MC_RESTRICT __restrict
#else
#define MC_RESTRICT __restrict__
#endif

/* The streaming loops (MC_CLONES: the float money paths below and the column loops of
 * _metrics.h) are compiled several times, for AVX-512, AVX2 and the baseline ISA, and the
 * best one the CPU has is picked when the module loads (GCC function multiversioning,
 * through a glibc ifunc). Only where that exists: x86-64 Linux with glibc and GCC 8 or
 * later; elsewhere (and with METRICCORE_NO_CLONES) they are compiled once. From GCC 12
 * the AVX-512 version targets x86-64-v4 (AVX-512 F, BW, DQ, VL): with byte and mask
 * instructions the loops that mix byte and int64 columns stop spilling (the row flags
 * loop runs twice as fast as with AVX-512F alone). Integer and IEEE double operations
 * give the same results at every width; -ffp-contract=off keeps x*p + c from becoming an
 * FMA in the wider versions too. */
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

/* ---- Overflow-checked arithmetic and exact sums -------------------------------------- */

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

/* a - b -> *r (wrapped); nonzero when the true difference does not fit int64. */
static inline int mc_sub_ovf(int64_t a, int64_t b, int64_t* r) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_sub_overflow(a, b, r);
#else
  uint64_t u = (uint64_t)a - (uint64_t)b;
  *r = (int64_t)u;
  return ((a ^ b) & (a ^ *r)) < 0;
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

/* ---- Memory -------------------------------------------------------------------------- */

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

/* A large block for per-loan arrays and payment buffers. On Linux it is 2 MiB aligned and
 * advised to use transparent huge pages: far fewer page faults when it is first written,
 * and fewer TLB misses. Not zeroed. Release with free(). */
static inline void* mc_big_alloc(size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t huge = (size_t)2 << 20;
  void* p = NULL;
  if (n >= huge) {
    size_t size = (n + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, size) != 0) return NULL;
    madvise(p, size, MADV_HUGEPAGE);
    return p;
  }
#endif
  return malloc(n ? n : 1);
}

/* ---- Hashing, prefetch, atomics, clock ----------------------------------------------- */

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

/* Offsets [*a, *b) of string idx (physical) of a string (int32 offsets) or large_string
 * (int64 offsets, ``large`` nonzero) array. When ``check``, returns nonzero unless
 * lo <= *a <= *b <= hi (a negative, decreasing or too large offset); else returns 0 (the
 * caller has checked the offsets, _kernels.pyx ``offsets_sound``). Shared by the string
 * readers of _kernels.pyx and _derive.pyx. */
static inline int mc_str_span(const void* offsets, int large, int64_t idx, int64_t lo,
                              int64_t hi, int check, int64_t* a, int64_t* b) {
  if (large) {
    *a = ((const int64_t*)offsets)[idx];
    *b = ((const int64_t*)offsets)[idx + 1];
  } else {
    *a = ((const int32_t*)offsets)[idx];
    *b = ((const int32_t*)offsets)[idx + 1];
  }
  return check && (*a < lo || *b < *a || *b > hi);
}

/* Prefetch hints (no-ops where the compiler has none): mc_prefetch keeps the line in every
 * cache level (the group records of the next rows, _kernels.pyx); mc_prefetch_low and
 * mc_prefetch_low_w (ahead of a write) ask for low temporal locality (loan slots, columns
 * and accumulators a little ahead, _derive.pyx). */
#if defined(__GNUC__) || defined(__clang__)
#define MC_PREFETCH(p, rw, locality) __builtin_prefetch((const void*)(p), rw, locality)
#else
#define MC_PREFETCH(p, rw, locality) ((void)(p))
#endif
#define mc_prefetch(p) MC_PREFETCH(p, 0, 3)
#define mc_prefetch_low(p) MC_PREFETCH(p, 0, 1)
#define mc_prefetch_low_w(p) MC_PREFETCH(p, 1, 1)

/* *p += v, atomically (relaxed order); returns the old value. */
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

/* ---- Money to exact minor units (docs/metrics.md §2) --------------------------------- */

/* Round half to even (docs/metrics.md §2, §9.3), as nearbyint() under the default
 * rounding mode, without the libm call (nearbyint must preserve the floating-point
 * environment, which is slow). Adding and subtracting 2**52 leaves exactly the integer
 * nearest to |x|, ties to even (for |x| < 2**52); from 2**52 on every double is already an
 * integer. Needs IEEE double arithmetic in the default rounding mode and no -ffast-math. */
static inline double mc_round_half_even(double x) {
  const double two52 = 4503599627370496.0;
  double a = x < 0 ? -x : x;
  if (a < two52) {
    a = (a + two52) - two52; /* never reassociated without -ffast-math */
    return x < 0 ? -a : a;
  }
  return x;
}

/* The largest float money value in minor units (docs/metrics.md §2): up to 2**53 every
 * integer is a double, so the rounded value is exact. The one spelling of the limit. */
#define MC_TWO53 9007199254740992.0

/* What the per-value money rules return (the callers map them to their own error codes). */
#define MC_MONEY_NAN 1 /* NaN or infinite */
#define MC_MONEY_BIG 2 /* float money beyond 2**53 minor units */
#define MC_MONEY_OVF 1 /* the value leaves int64 minor units */

/* The money rule of one float value (docs/metrics.md §2): round_half_even(x * p) -> *out,
 * where p = 10**money_scale; MC_MONEY_NAN for NaN or infinity, MC_MONEY_BIG when the
 * rounded value exceeds 2**53 in magnitude (then it may not be exact); 0 otherwise. A
 * float32 value is widened to double first (exactly). The streaming fast paths below
 * (mc_f64_minor_fast, mc_f32_minor_fast) compute the same values for a whole chunk when
 * every |x*p| stays below 2**51, and leave any chunk with a larger, NaN or infinite value
 * to the callers' checked loops, which call this function per value: so the results are
 * those of this function whichever path runs. */
static inline int mc_money_f64(double x, double p, int64_t* out) {
  double r = mc_round_half_even(x * p); /* like Python's round() and nearbyint() */
  if (fabs(r) <= MC_TWO53) {
    *out = (int64_t)r;
    return 0;
  }
  /* A NaN or infinite x makes r NaN or infinite (never finite, whatever p), so one compare
   * lets every good value through, and only a bad one asks which rule it breaks. */
  return (isnan(x) || isinf(x)) ? MC_MONEY_NAN : MC_MONEY_BIG;
}

/* The money rule of one integer value: v * mult -> *out (mult = 10**money_scale, or 1);
 * MC_MONEY_OVF when the product leaves int64 (then *out is unset). */
static inline int mc_money_int(int64_t v, int64_t mult, int64_t* out) {
  if (mult != 1 && mc_mul_ovf(v, mult, &v)) return MC_MONEY_OVF;
  *out = v;
  return 0;
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
 * takes the checked path (mc_money_f64 per value). Where the fast path succeeds it agrees
 * with mc_money_f64: |out[i]| < 2**51 <= 2**53 and x[i]*p is finite. */
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

/* The money rule of one decimal128 value: element idx of ``words`` (little-endian two's
 * complement, low word first) times 10**up (up = money_scale - the column's scale; a
 * negative up divides, rounding half to even) -> *out; MC_MONEY_OVF when it leaves int64. */
static inline int mc_money_dec128(const uint64_t* words, int64_t idx, int up, int64_t* out) {
  return mc_dec128_rescale(words[2 * idx], (int64_t)words[2 * idx + 1], up, out) ? MC_MONEY_OVF
                                                                                   : 0;
}

#endif
