# Hand-written stub for the compiled module metriccore._kernels.
from typing import Any

import numpy as np
import numpy.typing as npt

from ._config import MetricConfig
from ._errors import Overflow, RowError

CHUNK_ROWS: int

KIND_BOOL: int
KIND_INT: int
KIND_FLOAT32: int
KIND_FLOAT64: int
KIND_DEC128: int
KIND_UTF8: int
KIND_LARGE_UTF8: int
KIND_STRING_VIEW: int
KIND_DICT: int

ERROR_CODES: dict[int, str]


class ColumnType:
    kind: int
    width: int
    is_signed: bool
    dec_scale: int
    value: ColumnType | None
    name: str

class ArrowInput:
    names: list[str]
    num_rows: int
    @staticmethod
    def from_stream(capsule: object) -> ArrowInput: ...
    @staticmethod
    def from_array(schema_capsule: object, array_capsule: object) -> ArrowInput: ...
    def column_type(self, index: int) -> ColumnType: ...
    def schema_key(self) -> bytes: ...
    def export_addresses(self) -> tuple[int, list[int]]: ...

class Partial:
    key_types: list[ColumnType]
    def __init__(self, key_types: list[ColumnType]) -> None: ...
    @property
    def n_groups(self) -> int: ...
    def merge(self, other: Partial) -> None: ...
    def key_arrays(
        self,
    ) -> list[tuple[Any, npt.NDArray[np.bool_]]]: ...

def int_key_column(
    part: Partial, t: ColumnType
) -> tuple[npt.NDArray[np.int64], tuple[int, tuple[Any, ...]]] | None: ...

class _Job: ...

class KernelConfig:
    def __init__(self, config: MetricConfig) -> None: ...

def prepare(
    src: ArrowInput,
    indices: list[int],
    types: list[ColumnType],
    names: list[str],
    config: KernelConfig,
) -> _Job: ...
def n_chunks(job: _Job) -> int: ...
def cancel(job: _Job) -> None: ...
def work(
    job: _Job, part: Partial, workers: int = 1, check_signals: bool = False
) -> RowError | None: ...

class Finalized:
    length: int
    def __init__(self) -> None: ...
    def columns(self) -> list[tuple[int, tuple[npt.NDArray[np.uint8] | None, ...]]]: ...

def finalize(
    part: Partial,
    order: npt.NDArray[np.int64],
    config: KernelConfig,
    res: Finalized,
) -> Overflow | None: ...
def take_strings(
    offsets: npt.NDArray[np.int64],
    data: npt.NDArray[np.uint8],
    order: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]: ...
def export_batch(
    columns: list[tuple[int, tuple[Any, ...]]], body: Finalized, length: int
) -> int: ...
def free_exported(address: int) -> None: ...
