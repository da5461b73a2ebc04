"""Many Python threads calling the engine at once get the results of a lone call.

The kernels run with the GIL released, so even on a GIL build these calls overlap inside
the compiled code; on free-threaded CPython (the extension declares
``freethreading_compatible``) the Python parts overlap as well.
"""

from __future__ import annotations

import sys
import sysconfig
import threading

import pyarrow as pa
import pytest

from metriccore.synthetic import loan_snapshot

N_CALLERS = 8
CALLS_EACH = 3


def _run_concurrently(fn, n):
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def caller(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(n)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.fixture(scope="module")
def inputs():
    table = loan_snapshot(40_000, 300, seed=11)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=5_000))
    return table, chunked


def test_concurrent_calls_match_a_lone_call(engine, assert_identical, inputs):
    table, chunked = inputs
    expected = {
        "officer_id": engine.officer_metrics(table, threads=1),
        ("region", "branch"): engine.officer_metrics(table, by=("region", "branch"), threads=1),
    }
    expected_totals = engine.portfolio_metrics(table, threads=1)

    def work(i):
        out = []
        for j in range(CALLS_EACH):
            data = chunked if (i + j) % 2 else table
            by = "officer_id" if (i + j) % 3 else ("region", "branch")
            # One pool size for every caller: concurrent calls with different thread counts
            # can race on the growth of the shared pool (_threads._executor).
            threads = 1 if i % 4 == 0 else 2
            out.append((by, engine.officer_metrics(data, by=by, threads=threads)))
        out.append(("totals", engine.portfolio_metrics(data, threads=threads)))
        return out

    for results in _run_concurrently(work, N_CALLERS):
        for by, got in results:
            if by == "totals":
                assert got == expected_totals
            else:
                assert_identical(got, expected[by])


def test_free_threaded_build_keeps_the_gil_off():
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("not a free-threaded CPython build")
    # Importing an extension that does not declare free-threading support switches the GIL
    # back on for the whole process (with a RuntimeWarning).
    import metriccore._kernels  # noqa: F401

    assert not sys._is_gil_enabled()
