"""The error catalogue (``metriccore._errors``): every error code of the compiled modules
names a reason of the catalogue, and a reason's exception is built from its entry."""

from __future__ import annotations

import pytest

from helpers import strategies as S
from metriccore import _errors

S.require_engine_module()


def test_every_error_code_of_the_compiled_modules_has_a_reason():
    from metriccore import _derive as D
    from metriccore import _kernels as K

    reasons = set(K.ERROR_CODES.values()) | set(D.ERROR_REASONS.values())
    assert reasons <= set(_errors.CATALOGUE), reasons - set(_errors.CATALOGUE)
    assert set(D.ALLOC_PARTS) <= set(D.ERROR_REASONS)
    assert {D.ERROR_REASONS[code] for code in D.ALLOC_PARTS} == {"alloc_overflow"}


def test_an_error_is_its_reasons_type_and_message_after_the_place():
    exc = _errors.error("duplicate", "loans column 'id' row 4", first=1)
    assert type(exc) is ValueError
    assert str(exc) == "loans column 'id' row 4: duplicate loan_id (first at row 1)"
    exc = _errors.error("money_overflow", "column 'fees_due' row 0")
    assert type(exc) is OverflowError
    assert str(exc) == "column 'fees_due' row 0: value does not fit int64 minor units"
    exc = _errors.error("nomem")
    assert type(exc) is MemoryError and str(exc) == "metriccore ran out of memory"
    with pytest.raises(KeyError):
        _errors.error("no such reason")
