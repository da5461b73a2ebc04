"""Run a test script in a fresh interpreter that imports the metriccore under test.

Tests whose failure mode is a crash (a segfault, an abort from the sanitizers) or that
need an interpreter of their own (signals, RSS, a pool that starts small) run their case
here, so that a regression fails the test instead of killing the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import metriccore

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # parent of helpers/


def env(*path: str, **extra: str) -> dict[str, str]:
    """The environment of the child: this one, with metriccore's source directory first on
    PYTHONPATH (so that the child imports the same metriccore), then ``TESTS`` (so that it
    can ``from helpers import ...``) and ``path``, plus ``extra``."""
    out = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(metriccore.__file__)))
    out["PYTHONPATH"] = os.pathsep.join([src, TESTS, *path] + ([out["PYTHONPATH"]]
                                        if out.get("PYTHONPATH") else []))
    out.update(extra)
    return out


def run_python(code: str, timeout: float, path: tuple[str, ...] = (),
               **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child interpreter (environment: :func:`env` with ``path``);
    its return code, stdout and stderr."""
    return subprocess.run([sys.executable, "-c", code],
                          env=env(*path, **extra_env), capture_output=True, text=True,
                          timeout=timeout)


def call_in_child(module: str, function: str, *args: Any, timeout: float = 600) -> Any:
    """``function(*args)`` of the test module ``module``, called in a child interpreter;
    its result, which must be JSON. A crash or an exception in the child fails the calling
    test, with the child's output."""
    # the child imports ``module`` from the folder it was imported from here
    folder = os.path.dirname(os.path.abspath(str(sys.modules[module].__file__)))
    code = (f"import json\nimport {module} as M\n"
            f"print(json.dumps(M.{function}(*{args!r})))\n")
    proc = run_python(code, timeout, path=(folder,))
    assert proc.returncode == 0, f"crashed ({proc.returncode}): {proc.stdout}{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
