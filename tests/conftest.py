"""pytest configuration: registers hypothesis profiles and provides the implementation
fixtures.

The tests live in folders by subject (``officer/``, ``derive/``, ``api/``, ``reliability/``);
their helpers are the package ``helpers/``. pytest (default ``prepend`` import mode) puts
this file's directory, ``tests/``, on ``sys.path`` when it imports this conftest, before any
test module, so that ``from helpers import strategies as S`` works wherever ``tests/`` is
(in the repository, or copied to a temporary directory as ``.ci/run`` does). Child
interpreters get ``tests/`` on ``PYTHONPATH`` from ``helpers.subproc.env``.

Fixtures
--------
impl
    Parametrized over ``reference`` and ``engine`` (the compiled ``metriccore``). A missing
    or broken engine fails the tests (``METRICCORE_ALLOW_MISSING_ENGINE=1`` skips them
    instead, for work on the pure-Python parts only).
reference, engine
    The two implementations.
assert_identical
    :func:`strategies.assert_tables_identical` (bitwise table comparison).

Environment
-----------
HYPOTHESIS_PROFILE=default|ci|thorough (default: ``ci``, derandomised, when the ``CI``
variable is set), METRICCORE_EXAMPLES_SCALE=<float> (multiplies every ``max_examples``).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from helpers import strategies

_common = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.large_base_example, HealthCheck.filter_too_much],
    "print_blob": True,
}
settings.register_profile("default", **_common)
settings.register_profile("ci", derandomize=True, **_common)
settings.register_profile("thorough", **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


@pytest.fixture(params=strategies.IMPL_NAMES, scope="session")
def impl(request):
    return strategies.load_impl(request.param)


@pytest.fixture(scope="session")
def reference():
    return strategies.load_impl("reference")


@pytest.fixture(scope="session")
def engine():
    return strategies.load_impl("engine")


@pytest.fixture(scope="session")
def assert_identical():
    return strategies.assert_tables_identical
