"""Helpers of the test suite, imported as a package (``from helpers import strategies as S``).

* ``strategies``: implementation loading, bitwise table comparison, hypothesis strategies of
  loan snapshots in many physical layouts;
* ``derive_strategies``: hypothesis strategies of raw loans and repayments (``derive_snapshot``);
* ``producers``: hostile Arrow C stream / array producers (ctypes structs that can be patched);
* ``subproc``: runs a case in a child interpreter that finds metriccore and this package;
* ``fuzz_structs``: the structure fuzzer, run in a child (``python -m helpers.fuzz_structs``).

``tests/conftest.py`` makes the package importable (pytest puts ``tests/`` on ``sys.path``
when it imports that file); child interpreters get ``tests/`` on ``PYTHONPATH`` from
``subproc.env``.
"""
