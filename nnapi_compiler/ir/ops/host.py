"""Host ops: computations NNAPI cannot run, kept as calls executed by PyTorch on the CPU.

A host op names the torch callable it stands for and carries its result types explicitly
(they come from the example run, not from NNAPI rules). The backend refuses to serialize one
into an NNAPI model; partitioning places them in TorchScript between NNAPI segments.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..types import TensorType, Value
from .base import Loc, Op


@attrs.frozen(kw_only=True)
class HostOp(Op):
    mnemonic: ClassVar[str] = "host"
    results: tuple[Value, ...] = ()
    fn: str
    args: tuple[Value, ...] = attrs.field(default=(), converter=tuple)
    result_types: tuple[TensorType, ...] = attrs.field(converter=tuple)
    reason: str = ""
    loc: Loc | None = attrs.field(default=None, eq=False)

    def input_fields(self) -> list[str]:
        return ["args"] if self.args else []

    def infer(self) -> tuple[TensorType, ...]:
        return self.result_types

    def check(self) -> list[str]:
        if not self.fn:
            return ["host op names no callable"]
        if not self.result_types:
            return ["host op has no results"]
        return []
