"""Reliability: calls interrupted by signals (Ctrl-C, a request time-out).

Backends run metriccore under time-outs raised from ``signal.setitimer`` handlers, and
people press Ctrl-C. An exception raised by a signal handler in the calling thread must

* never leave a worker thread reading buffers the call frees as it unwinds (columns it
  concatenated, imported arrays): every call stops its workers, or waits for them, before
  it leaves, whatever exception unwinds it;
* surface promptly: ``officer_metrics`` runs the handlers between chunks (every 10 ms of
  the calling thread's work), cancels its workers and raises;
* leave the process usable: the next call gives the right answer.

The signal cases run in a child interpreter (``subproc``), so that a crash fails the test
rather than the test run; with ``ARROW_DEFAULT_MEMORY_POOL=system`` a read of freed
buffers is a segfault or, in the sanitizer job, an AddressSanitizer report.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from helpers import strategies as S
from helpers import subproc

S.require_engine_module()
from metriccore import _threads  # noqa: E402

SANITIZED = bool(os.environ.get("METRICCORE_SANITIZED"))
SLOWDOWN = 10.0 if SANITIZED else 1.0

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"),
                                reason="needs signal.setitimer (POSIX)")


# ------------------------------------------------------------------------------------------
# the rule itself: run_tasks leaves only once its workers are done
# ------------------------------------------------------------------------------------------

class Boom(Exception):
    pass


def test_run_tasks_waits_for_running_workers_and_starts_no_more():
    started: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()

    def task(i: int):
        def run():
            with lock:
                started.append(i)
            if i == 0:
                time.sleep(0.05)      # the pool workers are busy with tasks 1.. by now
                raise Boom()
            time.sleep(0.2)
            with lock:
                finished.append(i)
            return i
        return run

    with pytest.raises(Boom):
        _threads.run_tasks([task(i) for i in range(40)], threads=4)
    with lock:
        running_at_exit = set(started) - set(finished) - {0}
        n_started = len(started)
    assert running_at_exit == set(), "run_tasks left while workers were still running"
    time.sleep(0.5)
    with lock:
        assert len(started) == n_started, "a worker started another task after the failure"
    assert 1 < n_started < 40


def test_run_tasks_survives_an_interrupt_while_it_waits():
    finished: list[int] = []

    def slow(i: int):
        def run():
            time.sleep(0.3)
            finished.append(i)
            return i
        return run

    def on_alarm(signum, frame):
        raise Boom()

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        # the calling thread takes task 0 and then waits for the others; the alarm fires
        # while it waits (0.3 s into the 0.3 s tasks of 4 threads), or in its own task
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Boom):
            _threads.run_tasks([slow(i) for i in range(8)], threads=4)
        n_done = len(finished)
        time.sleep(0.5)
        assert len(finished) == n_done, "a task ran on after run_tasks had left"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    # and the pool still works
    assert _threads.run_tasks([lambda: 1, lambda: 2, lambda: 3], threads=3) == [1, 2, 3]


# ------------------------------------------------------------------------------------------
# derive_snapshot / officer_metrics_as_of under time-outs
# ------------------------------------------------------------------------------------------

DERIVE_TIMEOUTS = r"""
import json, signal, sys, threading, time
import pyarrow as pa
import metriccore as mc
from metriccore.synthetic import raw_loan_book

loans, rep = raw_loan_book(N_LOANS, seed=11)
# repayments in 10 chunks: the derivation concatenates them into buffers of its own,
# which are freed as an interrupted call unwinds
rep = pa.Table.from_batches(rep.to_batches(max_chunksize=-(-rep.num_rows // 10)))
as_of = "2024-06-30"

class TimeOut(Exception):
    pass

def on_alarm(signum, frame):
    raise TimeOut()

signal.signal(signal.SIGALRM, on_alarm)

def workers_busy_in_metriccore():
    # pool threads running metriccore's task loop (``worker``, which calls the compiled
    # tasks) at this moment; an idle pool thread waits in concurrent.futures
    busy = []
    frames = sys._current_frames()
    for t in threading.enumerate():
        f = frames.get(t.ident)
        while f is not None and t is not threading.current_thread():
            code = f.f_code
            if code.co_name == "worker" and "metriccore" in code.co_filename:
                busy.append(t.name)
                break
            f = f.f_back
    return busy

report = {"interrupted": 0, "finished": 0, "busy_after": []}
for fn, args in ((mc.derive_snapshot, ()), (mc.officer_metrics_as_of, ("officer_id",))):
    expected = fn(loans, rep, as_of, *args, threads=2)
    t0 = time.perf_counter()
    fn(loans, rep, as_of, *args, threads=2)
    span = time.perf_counter() - t0
    for k in range(ROUNDS):
        signal.setitimer(signal.ITIMER_REAL, span * (k + 0.5) / ROUNDS)
        try:
            fn(loans, rep, as_of, *args, threads=2)
            signal.setitimer(signal.ITIMER_REAL, 0)
            report["finished"] += 1
        except TimeOut:
            report["interrupted"] += 1
            report["busy_after"] += workers_busy_in_metriccore()
    # the process is usable: the same call gives the same table
    assert fn(loans, rep, as_of, *args, threads=2).equals(expected), fn.__name__
print(json.dumps(report))
"""


def test_timed_out_derivation_stops_its_workers_before_it_unwinds():
    proc = subproc.run_python(
        f"N_LOANS = {50_000 if SANITIZED else 200_000}\nROUNDS = 12\n" + DERIVE_TIMEOUTS,
        timeout=300 * SLOWDOWN, ARROW_DEFAULT_MEMORY_POOL="system")
    assert proc.returncode == 0, f"child exited with {proc.returncode}\n{proc.stdout}{proc.stderr}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(report)
    assert report["interrupted"] >= 12, report   # the time-outs really fell inside calls
    assert report["busy_after"] == [], report


# ------------------------------------------------------------------------------------------
# officer_metrics: prompt interrupts
# ------------------------------------------------------------------------------------------

PROMPT = r"""
import json, os, signal, threading, time
import pyarrow as pa
import metriccore as mc
from metriccore.synthetic import loan_snapshot

base = loan_snapshot(200_000, seed=5)
expected = mc.officer_metrics(base, threads=2)
# a very long call without the memory: the same record batches many times over
batches = base.to_batches()
big = pa.Table.from_batches(batches * REPEAT)
t0 = time.perf_counter()
mc.officer_metrics(pa.Table.from_batches(batches * 50), threads=2)
seconds_per_row = (time.perf_counter() - t0) / (50 * base.num_rows)

class TimeOut(Exception):
    pass

def on_alarm(signum, frame):
    raise TimeOut()

signal.signal(signal.SIGALRM, on_alarm)
out = {"rows": big.num_rows, "full_call_estimate_s": seconds_per_row * big.num_rows,
       "latency_ms": []}
for threads in (1, 2, 2):
    sent = []
    def ctrl_c():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    timer = threading.Timer(0.3, ctrl_c)
    timer.start()
    try:
        mc.officer_metrics(big, threads=threads)
        out.setdefault("finished", []).append(threads)
    except KeyboardInterrupt:
        out["latency_ms"].append((time.perf_counter() - sent[0]) * 1000)
    timer.join()
    # a time-out from setitimer, too
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    t0 = time.perf_counter()
    try:
        mc.officer_metrics(big, threads=threads)
        out.setdefault("finished", []).append(threads)
    except TimeOut:
        out["latency_ms"].append((time.perf_counter() - t0 - 0.3) * 1000)
    assert mc.officer_metrics(base, threads=threads).equals(expected)
print(json.dumps(out))
"""


def test_interrupts_surface_promptly_in_officer_metrics():
    proc = subproc.run_python(f"REPEAT = {300 if SANITIZED else 1500}\n" + PROMPT,
                              timeout=300 * SLOWDOWN)
    assert proc.returncode == 0, f"child exited with {proc.returncode}\n{proc.stdout}{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert "finished" not in out, out          # every call was interrupted midway
    assert out["full_call_estimate_s"] > 2.0, out
    assert len(out["latency_ms"]) == 6
    # checked every 10 ms of the calling thread's work; 100 ms is the promise
    assert min(out["latency_ms"]) < 100 * SLOWDOWN, out
    assert max(out["latency_ms"]) < 1000 * SLOWDOWN, out
