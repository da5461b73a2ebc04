"""Run a test script in a fresh interpreter that imports the metriccore under test.

Tests whose failure mode is a crash (a segfault, an abort from the sanitizers) or that
need an interpreter of their own (signals, RSS, a pool that starts small) run their case
here, so that a regression fails the test instead of killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import metriccore

TESTS = os.path.dirname(os.path.abspath(__file__))


def env(**extra: str) -> dict[str, str]:
    """The environment of the child: this one, with metriccore's source directory first on
    PYTHONPATH (so that the child imports the same metriccore), plus ``extra``."""
    out = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(metriccore.__file__)))
    out["PYTHONPATH"] = os.pathsep.join([src] + ([out["PYTHONPATH"]] if out.get("PYTHONPATH")
                                                 else []))
    out.update(extra)
    return out


def run_python(code: str, timeout: float, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (``TESTS`` is defined first: the tests directory) in a child interpreter;
    its return code, stdout and stderr."""
    return subprocess.run([sys.executable, "-c", f"TESTS = {TESTS!r}\n" + code],
                          env=env(**extra_env), capture_output=True, text=True,
                          timeout=timeout)
