# Hand-written stub for the compiled module metriccore._derive (docs/metrics.md §9).
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import Overflow, RowError

KIND_INT: int
KIND_FLOAT32: int
KIND_FLOAT64: int
KIND_DECIMAL: int
KIND_BOOL: int
KIND_DATE32: int
KIND_UNITS64: int
KIND_STRING: int
KIND_LARGE_STRING: int

ERROR_REASONS: dict[int, str]
ALLOC_PARTS: dict[int, str]
LOAN_DERIVED_COLUMN: int
REPAYMENT_ALLOC_COLUMN: int

class ColumnSpec:
    def __init__(
        self,
        kind: int,
        *,
        width: int = 0,
        signed: bool = False,
        scale: int = 0,
        per_day: int = 0,
        offset: int = 0,
        length: int = 0,
        validity: int = 0,
        values: int = 0,
        chars: int = 0,
        chars_len: int = 0,
    ) -> None: ...

class Derivation:
    out: dict[str, npt.NDArray[Any]]
    def __init__(
        self,
        loan_cols: list[ColumnSpec | None],
        rep_cols: list[ColumnSpec | None],
        n_loans: int,
        n_rep: int,
        holidays: npt.NDArray[np.int32],
        *,
        money_scale: int,
        as_of: int,
        period_start: int,
        roll_from: int,
    ) -> None: ...
    def loans_pass(self, lo: int, hi: int) -> RowError | None: ...
    def build_index(self) -> RowError | None: ...
    def prepare_output(self) -> npt.NDArray[np.bool_]: ...
    def start_scan(self, n_tasks: int, shift: int) -> int: ...
    def scan(self, task: int, lo: int, hi: int) -> tuple[int, RowError | None]: ...
    def apply(self, blo: int, bhi: int) -> RowError | None: ...
    def next_wave(self) -> None: ...
    def finish(self, blo: int, bhi: int) -> Overflow | None: ...
    def release(self) -> None: ...

def business_days(a: int, b: int, holidays: npt.NDArray[np.int32] | list[int]) -> int: ...
