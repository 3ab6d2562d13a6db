"""Conversions between float and quantized tensors: QUANTIZE (FL3) and DEQUANTIZE."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import OpCode, OperandCode
from ..types import Operand, Quant, TensorType, Value
from .base import Loc, NnapiOp


@attrs.frozen(kw_only=True)
class Quantize(NnapiOp):
    """q = clamp(zp + round(x / scale)) (round half away from zero), to uint8 or int8."""

    mnemonic: ClassVar[str] = "quantize"
    code: ClassVar[OpCode] = OpCode.QUANTIZE
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    quant: Quant
    out_code: OperandCode = attrs.field(default=OperandCode.TENSOR_QUANT8_ASYMM, converter=OperandCode)
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (attrs.evolve(self.x.type, code=self.out_code, quant=self.quant),)

    def nnapi_operands(self) -> list[Operand]:
        return [self.x]


@attrs.frozen(kw_only=True)
class Dequantize(NnapiOp):
    """x = (q - zp) * scale, as float32."""

    mnemonic: ClassVar[str] = "dequantize"
    code: ClassVar[OpCode] = OpCode.DEQUANTIZE
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (attrs.evolve(self.x.type, code=OperandCode.TENSOR_FLOAT32, quant=None),)

    def nnapi_operands(self) -> list[Operand]:
        return [self.x]
