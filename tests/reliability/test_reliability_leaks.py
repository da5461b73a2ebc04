"""Reliability: no leaks, for successful and for failing calls.

Each test runs a fresh interpreter (so that nothing else the suite does moves its memory)
that warms up, then makes thousands of calls and reports:

* RSS growth (``/proc/self/statm``): must stay under 5 MB (C memory: the kernel's
  partials, plans, imported arrays and schemas);
* ``pyarrow.total_allocated_bytes()`` growth: must be exactly 0 (every imported batch is
  released: the inputs are *fresh* arrays for every call in the stream tests, so a batch
  that is never released keeps its buffers);
* growth of the number of gc-tracked Python objects: must stay tiny.

Under the sanitizer build (``METRICCORE_SANITIZED=1``) ASan's allocator keeps freed memory
in quarantine, so RSS means nothing there: the loops are shorter and only the exact
checks apply.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from helpers import strategies as S
from helpers import subproc

S.require_engine_module()

SANITIZED = bool(os.environ.get("METRICCORE_SANITIZED"))
RSS_LIMIT = 5 * 2**20

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads RSS from /proc/self/statm")

PRELUDE = r"""
import gc, json, os, sys, time
import pyarrow as pa
import metriccore as mc
from metriccore.synthetic import loan_snapshot

PAGE = os.sysconf("SC_PAGE_SIZE")

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE

def measure(loop, n, warmup):
    loop(warmup)
    gc.collect()
    r0, a0, o0 = rss(), pa.total_allocated_bytes(), len(gc.get_objects())
    t0 = time.perf_counter()
    loop(n // 2)
    gc.collect()
    r_half = rss()
    loop(n - n // 2)
    seconds = time.perf_counter() - t0
    gc.collect()
    return {"calls": n, "seconds": round(seconds, 2), "rss_growth": rss() - r0,
            "rss_growth_second_half": rss() - r_half,
            "arrow_growth": pa.total_allocated_bytes() - a0,
            "object_growth": len(gc.get_objects()) - o0, "rss_mb": round(rss() / 2**20, 1)}
"""

SUCCESS = PRELUDE + r"""
table = loan_snapshot(10_000, seed=3)
calls = [
    lambda: mc.officer_metrics(table),
    lambda: mc.officer_metrics(table, by=("region", "branch"), threads=1),
    lambda: mc.officer_metrics(table, by="branch", threads=3),
    lambda: mc.portfolio_metrics(table),
]

def loop(n):
    for i in range(n):
        calls[i % len(calls)]()

print(json.dumps(measure(loop, N, WARMUP)))
"""

FAILURE = PRELUDE + r"""
import math
from helpers import producers as P
table = loan_snapshot(10_000, seed=4)
batches = table.to_batches(max_chunksize=3000)
nan_last = table.set_column(
    table.schema.get_field_index("fees_due"), "fees_due",
    pa.array([1.0] * (table.num_rows - 1) + [math.nan]))        # fails after the kernel ran
wrong_type = table.set_column(table.schema.get_field_index("loan_age"), "loan_age",
                              pa.array(["x"] * table.num_rows))
huge = table.set_column(table.schema.get_field_index("fees_due"), "fees_due",
                        pa.array([2**62] * table.num_rows, pa.int64()))  # total overflows

def fresh():
    # new buffers on every call: an imported batch never released would keep them
    return [b.take(pa.array(range(b.num_rows))) for b in batches]

def raising():
    yield from fresh()[:2]
    raise ConnectionError("gone")

def changed():
    first, second, *rest = fresh()
    i = second.schema.get_field_index("current_dpd")
    yield first
    yield second.set_column(i, "current_dpd", pa.array(["7"] * second.num_rows))

failures = [
    (ValueError, lambda: mc.officer_metrics(nan_last)),
    (TypeError, lambda: mc.officer_metrics(wrong_type)),
    (ValueError, lambda: mc.officer_metrics(table, by="no_such_column")),
    (OverflowError, lambda: mc.officer_metrics(huge, config=mc.MetricConfig(money_scale=0))),
    (ValueError, lambda: mc.officer_metrics(P.GeneratorStream(table.schema, raising))),
    (ValueError, lambda: mc.officer_metrics(P.GeneratorStream(table.schema, changed))),
    (ValueError, lambda: mc.officer_metrics(
        P.RawStream(table.schema, fresh()[:3] + [P.Fail("gone")]))),
    (ValueError, lambda: mc.officer_metrics(
        P.RawStream(table.schema, [P.Item(b, P.shorten_child(4)) for b in fresh()]))),
]

def loop(n):
    for i in range(n):
        exc, call = failures[i % len(failures)]
        try:
            call()
        except exc:
            pass
        else:
            raise AssertionError(f"failure {i % len(failures)} did not raise")
        P.forget_streams()   # the ctypes streams are kept until no capsule is alive

print(json.dumps(measure(loop, N, WARMUP)))
"""


def _run(script: str, n: int, warmup: int) -> dict:
    proc = subproc.run_python(f"N = {n}\nWARMUP = {warmup}\n" + script, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(report: dict, rss_keys: tuple[str, ...] = ("rss_growth",)) -> None:
    print(f"\n{report}")
    assert report["arrow_growth"] == 0, report
    assert report["object_growth"] < 100, report
    if not SANITIZED:
        # a leak grows in every window; allocator noise moves only some of them
        assert min(report[k] for k in rss_keys) < RSS_LIMIT, report


def test_no_leak_over_10000_calls():
    n = 600 if SANITIZED else 10_000
    _check(_run(SUCCESS, n, warmup=min(500, n)))


def test_failing_calls_leak_nothing():
    # The failing producers (ctypes structs, generators, exception tracebacks) move the
    # allocator's high-water mark by several MB, up or down, at random points of the run
    # (seen: -13 MB overall with +7.7 MB in the second half); a leak grows with every call,
    # so it must show both over the whole run and over its second half.
    n = 400 if SANITIZED else 4_000
    _check(_run(FAILURE, n, warmup=min(400, n)),
           rss_keys=("rss_growth", "rss_growth_second_half"))
