"""Elementwise NNAPI ops: broadcast binaries (with fuse codes), min/max, POW, unary activations, PRELU."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import FuseCode, OpCode
from ..types import Operand, Quant, TensorType, Value, f32, i32, with_quant
from .base import Loc, NnapiOp


def broadcast_shapes(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> tuple[int | None, ...]:
    """NumPy broadcasting from trailing dims, as NNAPI's ADD/MUL/... define it."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out: list[int | None] = []
    for x, y in zip(a, b, strict=True):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        else:
            raise ValueError(f"shapes {a} and {b} do not broadcast")
    return tuple(out)


@attrs.frozen(kw_only=True)
class _Binary(NnapiOp):
    """Two-input broadcast op with a fused activation."""

    fusable: ClassVar[bool] = True
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    a: Value
    b: Value
    fuse: FuseCode = attrs.field(default=FuseCode.FUSED_NONE, converter=FuseCode)
    out_quant: Quant | None = None  # quantized result parameters (free for these ops)
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        t = self.a.type.with_shape(broadcast_shapes(self.a.type.shape, self.b.type.shape))
        return (with_quant(t, self.out_quant),)

    def check(self) -> list[str]:
        if self.a.type.code != self.b.type.code:
            return [f"operand types differ: {self.a.type} vs {self.b.type}"]
        if max(self.a.type.rank, self.b.type.rank) > 4:
            return ["rank > 4"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.a, self.b, i32(self.fuse)]


@attrs.frozen(kw_only=True)
class Add(_Binary):
    mnemonic: ClassVar[str] = "add"
    code: ClassVar[OpCode] = OpCode.ADD


@attrs.frozen(kw_only=True)
class Sub(_Binary):
    mnemonic: ClassVar[str] = "sub"
    code: ClassVar[OpCode] = OpCode.SUB


@attrs.frozen(kw_only=True)
class Mul(_Binary):
    mnemonic: ClassVar[str] = "mul"
    code: ClassVar[OpCode] = OpCode.MUL


@attrs.frozen(kw_only=True)
class Div(_Binary):
    mnemonic: ClassVar[str] = "div"
    code: ClassVar[OpCode] = OpCode.DIV


@attrs.frozen(kw_only=True)
class _MinMax(NnapiOp):
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    a: Value
    b: Value
    out_quant: Quant | None = None
    loc: Loc | None = attrs.field(default=None, eq=False)

    infer = _Binary.infer
    check = _Binary.check

    def nnapi_operands(self) -> list[Operand]:
        return [self.a, self.b]


@attrs.frozen(kw_only=True)
class Maximum(_MinMax):
    mnemonic: ClassVar[str] = "maximum"
    code: ClassVar[OpCode] = OpCode.MAXIMUM


@attrs.frozen(kw_only=True)
class Minimum(_MinMax):
    mnemonic: ClassVar[str] = "minimum"
    code: ClassVar[OpCode] = OpCode.MINIMUM


@attrs.frozen(kw_only=True)
class _Unary(NnapiOp):
    """One tensor in, same type out."""

    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    out_quant: Quant | None = None  # e.g. HARD_SWISH's free or LOGISTIC's mandated params
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (with_quant(self.x.type, self.out_quant),)

    def nnapi_operands(self) -> list[Operand]:
        return [self.x]


def _unary(name: str, code: OpCode) -> type[_Unary]:
    cls = attrs.frozen(kw_only=True)(
        type(name, (_Unary,), {"__annotations__": {}, "mnemonic": code.name.lower(), "code": code})
    )
    cls.__doc__ = f"NNAPI {code.name}."
    cls.__module__ = __name__
    return cls


Relu = _unary("Relu", OpCode.RELU)
Relu1 = _unary("Relu1", OpCode.RELU1)
Relu6 = _unary("Relu6", OpCode.RELU6)
Logistic = _unary("Logistic", OpCode.LOGISTIC)
Tanh = _unary("Tanh", OpCode.TANH)
HardSwish = _unary("HardSwish", OpCode.HARD_SWISH)
Exp = _unary("Exp", OpCode.EXP)
Log = _unary("Log", OpCode.LOG)
Sqrt = _unary("Sqrt", OpCode.SQRT)
Rsqrt = _unary("Rsqrt", OpCode.RSQRT)
Abs = _unary("Abs", OpCode.ABS)
Neg = _unary("Neg", OpCode.NEG)
Floor = _unary("Floor", OpCode.FLOOR)
Sin = _unary("Sin", OpCode.SIN)


@attrs.frozen(kw_only=True)
class Elu(_Unary):
    mnemonic: ClassVar[str] = "elu"
    code: ClassVar[OpCode] = OpCode.ELU
    alpha: float = 1.0

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, f32(self.alpha)]


@attrs.frozen(kw_only=True)
class Prelu(NnapiOp):
    """out = x if x >= 0 else alpha * x, alpha broadcast against x."""

    mnemonic: ClassVar[str] = "prelu"
    code: ClassVar[OpCode] = OpCode.PRELU
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    alpha: Value
    out_quant: Quant | None = None
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        t = self.x.type.with_shape(broadcast_shapes(self.x.type.shape, self.alpha.type.shape))
        return (with_quant(t, self.out_quant),)

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, self.alpha]


@attrs.frozen(kw_only=True)
class Pow(_MinMax):
    """POW (FL3, float only): a ** b, broadcast as the binaries are."""

    mnemonic: ClassVar[str] = "pow"
    code: ClassVar[OpCode] = OpCode.POW

    def check(self) -> list[str]:
        if self.a.type.quant is not None or self.b.type.quant is not None:
            return ["POW takes float tensors only"]
        return _Binary.check(self)  # type: ignore[arg-type]
