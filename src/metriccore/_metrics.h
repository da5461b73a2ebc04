/* The formulas of docs/metrics.md: which loans count for which aggregate (§3), and the
 * metric, score and band column loops of the metric step (§4, §5), evaluated as §6 says.
 * Used by _kernels.pyx (its ``finalize`` and per-chunk row pass), declared there. The
 * pure-Python metriccore.reference implements the same sections and agrees bit for bit.
 * MC_CLONES and MC_RESTRICT come from _support.h.
 */
#ifndef METRICCORE_METRICS_H
#define METRICCORE_METRICS_H

#include <stdint.h>
#include "_support.h"

/* ---- Row flags: which loans count for which aggregate (docs/metrics.md §3) ----------- */

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

/* The flag byte of each of n rows: the buckets of docs/metrics.md §3 (ranges inclusive; a
 * null dpd is in no bucket and a null balance is not active, §1). Every *_ok and ``tagged``
 * byte is 0 or 1; a null dpd or balance (ok byte 0) sets none of its bits whatever value
 * lies under it. */
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

/* ---- The metric step (docs/metrics.md §4, §5, §6) ----------------------------------- */

/* The metric step of ``finalize``, one column at a time over n groups so that each loop
 * vectorises (the scalar loop was bound by the throughput of scalar divisions). Every
 * division is computed for every lane, with 1.0 standing in for a denominator the formula
 * does not use, and the unused result is then replaced: IEEE division is correctly rounded
 * at every width, comparisons and selects are exact, -ffp-contract=off keeps sums of
 * products from becoming FMAs, so each value is bitwise the one of the scalar formula. */

/* y = (double)x: an exact count or total to the nearest double, once (docs/metrics.md §6;
 * every ISA rounds the same way; vectorised where AVX-512DQ has the instruction). */
MC_CLONES static void mc_i64_to_f64(int64_t n, const int64_t* MC_RESTRICT x,
                                    double* MC_RESTRICT y) {
  int64_t i;
  for (i = 0; i < n; i++) y[i] = (double)x[i];
}

/* out = num / den where den > 0, else 0: safe(num, den) of docs/metrics.md §4 (a rate
 * whose base is empty is 0, never NaN: §6). */
MC_CLONES static void mc_ratio(int64_t n, const double* MC_RESTRICT num,
                               const double* MC_RESTRICT den, double* MC_RESTRICT out) {
  int64_t i;
  for (i = 0; i < n; i++) {
    double d = den[i];
    double q = num[i] / (d > 0.0 ? d : 1.0);
    out[i] = d > 0.0 ? q : 0.0;
  }
}

/* x /= p: a money total from minor to currency units, float64(total) / 10**money_scale
 * (docs/metrics.md §6). */
MC_CLONES static void mc_div_inplace(int64_t n, double* MC_RESTRICT x, double p) {
  int64_t i;
  for (i = 0; i < n; i++) x[i] = x[i] / p;
}

/* The bands of the rates, docs/metrics.md §5 (a boundary belongs to the better band).
 * Codes 0 green, 1 watch, 2 flag: ``upper`` when a high value is bad (x <= green is green),
 * else a low value is bad (x >= green is green). */
MC_CLONES static void mc_band(int64_t n, const double* MC_RESTRICT x, double green,
                              double watch, int upper, int8_t* MC_RESTRICT code) {
  int64_t i;
  if (upper) {
    for (i = 0; i < n; i++) code[i] = (int8_t)(x[i] <= green ? 0 : (x[i] <= watch ? 1 : 2));
  } else {
    for (i = 0; i < n; i++) code[i] = (int8_t)(x[i] >= green ? 0 : (x[i] >= watch ? 1 : 2));
  }
}

/* Python's max(a, b) and min(a, b): keep a unless b is strictly beyond it (-0.0 matters),
 * as docs/metrics.md §6 says; clamp01 as in §4. */
static inline double mc_py_max(double a, double b) { return b > a ? b : a; }
static inline double mc_py_min(double a, double b) { return b < a ? b : a; }
static inline double mc_clamp01(double x) { return mc_py_min(1.0, mc_py_max(0.0, x)); }

/* The formulas of docs/metrics.md §4, in its order: repayment delay rate, on-time index,
 * penalty, raw risk score and the risk and DQI scores; ``rdr_ok`` is 1 where the rdr is
 * defined. Inputs are the rates and the day sums/counts as doubles. Every output is 8
 * bytes wide: a byte output made the compiler take 32 groups per iteration and spill most
 * of them to the stack. The scores lie in [0, 100.5), so round_half_up (floor(x + 0.5), a
 * truncation there) goes through int32, which every vector ISA converts to. */
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

/* The bands of the integer scores, docs/metrics.md §5: DQI 0 green (>= dg), 1 watch
 * (>= dw), else 2 flag; risk 0 green (>= kg), 1 watch (>= kw), 3 amber (>= ka), else 4 red.
 */
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

#endif
