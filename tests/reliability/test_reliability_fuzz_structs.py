"""Reliability: the structure fuzzer (issue 10).

``helpers/fuzz_structs.py`` mutates the fields of the ``ArrowSchema`` / ``ArrowArray`` structs
that a ctypes producer (``producers.RawStream`` / ``producers.RawArray``, mirrored structs)
hands to ``officer_metrics`` / ``portfolio_metrics``: NULL pointers (format, buffers,
children, entries, dictionary), counts (n_buffers, n_children), lengths, offsets,
null_count, flags, names, metadata, format strings, string offsets, string views and
UTF-8. Every case must end in the reference's result or a ``ValueError`` / ``TypeError``.

It runs in a child interpreter, which prints every case before running it, so that a crash
(a signal, an ASan report) fails this test with the case that caused it instead of killing
the test run. Derandomised; bounded by a number of cases and a wall-time cap (fewer cases
under ``METRICCORE_SANITIZED=1``). ``METRICCORE_FUZZ_EXAMPLES`` / ``METRICCORE_FUZZ_SECONDS``
run it longer (see tests/README.md, "Structure fuzzing").
"""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import strategies as S
from helpers import subproc

S.require_engine_module()

HERE = os.path.dirname(os.path.abspath(__file__))
SANITIZED = os.environ.get("METRICCORE_SANITIZED") == "1"


def _budget() -> tuple[int, float]:
    examples = int(os.environ.get("METRICCORE_FUZZ_EXAMPLES", "0")) or S.examples(
        60 if SANITIZED else 250)
    seconds = float(os.environ.get("METRICCORE_FUZZ_SECONDS", "0")) or (
        90.0 if SANITIZED else 30.0)
    return examples, seconds


def test_mutated_structs_give_the_reference_answer_or_a_clear_error():
    examples, seconds = _budget()
    proc = subprocess.run(
        [sys.executable, "-m", "helpers.fuzz_structs", "--examples", str(examples),
         "--seconds", str(seconds)],
        capture_output=True, text=True, timeout=seconds * 4 + 120, cwd=HERE, env=subproc.env())
    out = proc.stdout
    cases = [line for line in out.splitlines() if line.startswith("case ")]
    last = cases[-1] if cases else "(no case started)"
    tail = "\n".join(out.splitlines()[-40:]) + "\n--- stderr ---\n" + proc.stderr[-4000:]
    assert proc.returncode >= 0, (
        f"the fuzzer's interpreter died (signal {-proc.returncode}) on\n{last}\n{tail}")
    assert "Sanitizer" not in proc.stderr and "runtime error:" not in proc.stderr, (
        f"sanitizer report on\n{last}\n{tail}")
    assert proc.returncode == 0, f"exit status {proc.returncode}; last case\n{last}\n{tail}"
    summary = [line for line in out.splitlines() if line.startswith("fuzz_structs:")]
    assert summary and summary[-1].endswith(" 0 failed"), tail
    # the loop really ran cases (a fuzzer that runs nothing would pass vacuously)
    assert len(cases) >= min(examples, 20), f"only {len(cases)} cases ran\n{tail}"
