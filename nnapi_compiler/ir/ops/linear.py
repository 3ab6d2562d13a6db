"""FULLY_CONNECTED: out[b, u] = sum_i in[b, i] * w[u, i] + bias[u] (input flattened to 2-D)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import FuseCode, OpCode
from ..types import DimOrder, Operand, Quant, TensorType, Value, i32, with_quant
from .base import Loc, NnapiOp


@attrs.frozen(kw_only=True)
class FullyConnected(NnapiOp):
    mnemonic: ClassVar[str] = "fully_connected"
    code: ClassVar[OpCode] = OpCode.FULLY_CONNECTED
    fusable: ClassVar[bool] = True
    weighted: ClassVar[tuple[str, int] | None] = ("weights", 0)  # weights [units, in]
    results: tuple[Value, ...] = ()
    input: Value
    weights: Value
    bias: Value
    fuse: FuseCode = attrs.field(default=FuseCode.FUSED_NONE, converter=FuseCode)
    out_quant: Quant | None = None
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        units, size = self.weights.type.shape
        t = self.input.type
        batch = t.numel // size if t.known else None
        t = attrs.evolve(t, shape=(batch, units), dim_order=DimOrder.CONTIGUOUS)
        return (with_quant(t, self.out_quant),)

    def check(self) -> list[str]:
        t = self.input.type
        units, size = self.weights.type.shape
        if t.rank < 2:
            return [f"FULLY_CONNECTED input must have rank >= 2, got {t.shape}"]
        if self.bias.type.shape != (units,):
            return [f"bias shape {self.bias.type.shape} != ({units},)"]
        if t.known and t.numel % size:
            return [f"input {t.shape} does not flatten to rows of {size}"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.input, self.weights, self.bias, i32(self.fuse)]
