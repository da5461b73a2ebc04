/* Small portable C helpers for _derive.pyx (loan derivation, docs/metrics.md §9).
 *
 * The money helpers (overflow-checked arithmetic, decimal128 rescaling, round half to
 * even) come from _mc_support.h and are shared with _kernels.pyx; this header adds what
 * only the derivation needs: subtraction with overflow check, a prefetch hint, civil-date
 * arithmetic and business-day counting (hashing is mc_mix64 / mc_hash_bytes).
 */
#ifndef METRICCORE_DERIVE_SUPPORT_H
#define METRICCORE_DERIVE_SUPPORT_H

#include <stdint.h>
#include <string.h>
#include "_mc_support.h"

/* a - b -> *r (wrapped); nonzero when the true difference does not fit int64. */
static inline int md_sub_ovf(int64_t a, int64_t b, int64_t* r) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_sub_overflow(a, b, r);
#else
  uint64_t u = (uint64_t)a - (uint64_t)b;
  *r = (int64_t)u;
  return ((a ^ b) & (a ^ *r)) < 0;
#endif
}

/* A read prefetch hint (no-op where the compiler has none). */
static inline void md_prefetch(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 1);
#else
  (void)p;
#endif
}

static inline void md_prefetch_w(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 1, 1);
#else
  (void)p;
#endif
}

/* floor(a / b) for b > 0. */
static inline int64_t md_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b) != 0 && a < 0) q -= 1;
  return q;
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (H. Hinnant's algorithm). */
static inline int64_t md_days_from_civil(int64_t y, int64_t m, int64_t d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Parse exactly "YYYY-MM-DD" (ASCII digits, a real date, year 0001-9999) into days since
 * the epoch. Returns 0 on success, nonzero when the text is not such a date. */
static inline int md_parse_iso_date(const char* p, int64_t n, int32_t* out) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int64_t y, m, d, i, last;
  if (n != 10 || p[4] != '-' || p[7] != '-') return 1;
  for (i = 0; i < 10; i++) {
    if (i == 4 || i == 7) continue;
    if (p[i] < '0' || p[i] > '9') return 1;
  }
  y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
  m = (p[5] - '0') * 10 + (p[6] - '0');
  d = (p[8] - '0') * 10 + (p[9] - '0');
  if (y < 1 || m < 1 || m > 12 || d < 1) return 1;
  last = dim[m - 1];
  if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) last = 29;
  if (d > last) return 1;
  *out = (int32_t)md_days_from_civil(y, m, d);
  return 0;
}

/* Number of Monday-to-Friday days d with d < x. Day 4 (1970-01-05) was a Monday, so
 * counting whole weeks from there is exact for every day number; O(1). */
static inline int64_t md_weekdays_before(int64_t x) {
  int64_t y = x - 4;
  int64_t q = md_floordiv(y, 7);
  int64_t r = y - 7 * q; /* 0 (Monday) .. 6 (Sunday) */
  return 5 * q + (r < 5 ? r : 5);
}

/* Number of entries of the sorted array h[0..n) that are < x (binary search). */
static inline int64_t md_lower_bound(const int32_t* h, int64_t n, int64_t x) {
  int64_t lo = 0, hi = n, mid;
  while (lo < hi) {
    mid = lo + (hi - lo) / 2;
    if ((int64_t)h[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Business days in [a, b]: weekdays minus the holidays among them. ``h`` holds the
 * holidays that fall on weekdays, sorted and distinct. 0 when b < a. */
static inline int64_t md_bdays(int64_t a, int64_t b, const int32_t* h, int64_t nh) {
  int64_t n;
  if (b < a) return 0;
  n = md_weekdays_before(b + 1) - md_weekdays_before(a);
  if (nh > 0) n -= md_lower_bound(h, nh, b + 1) - md_lower_bound(h, nh, a);
  return n;
}


#endif

#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <stdlib.h>

/* A large block for per-loan arrays and payment buffers. On Linux it is 2 MiB aligned and
 * advised to use transparent huge pages: far fewer page faults when it is first written,
 * and fewer TLB misses. Not zeroed. Release with free(). */
static inline void* md_big_alloc(size_t n) {
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
