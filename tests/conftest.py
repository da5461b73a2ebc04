"""pytest configuration: makes ``tests/strategies.py`` importable, registers hypothesis
profiles and provides the implementation fixtures.

Fixtures
--------
impl
    Parametrized over ``reference`` and ``engine`` (the compiled ``metriccore``); a parameter
    whose implementation does not exist yet is skipped (set ``METRICCORE_REQUIRE_ENGINE=1`` to
    make a missing engine a failure).
reference, engine
    The two implementations, each skipped when unavailable.
assert_identical
    :func:`strategies.assert_tables_identical` (bitwise table comparison).

Environment
-----------
HYPOTHESIS_PROFILE=default|ci|thorough, METRICCORE_EXAMPLES_SCALE=<float> (multiplies every
``max_examples``).
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import strategies  # noqa: E402

_common = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile("default", **_common)
settings.register_profile("ci", derandomize=True, **_common)
settings.register_profile("thorough", **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
