"""Comparison, logic, selection and arg-reduction NNAPI ops (all FL3): EQUAL ... GREATER_EQUAL
and LOGICAL_AND / OR / NOT produce TENSOR_BOOL8; SELECT picks between two same-shape tensors by
a BOOL8 condition; ARGMAX / ARGMIN reduce one axis to TENSOR_INT32 indices; EXPAND_DIMS and
GATHER with run-time indices serve argmax(keepdim) and embedding lookups; CAST converts
between FLOAT32 and INT32 (float to int truncates toward zero, as PyTorch does).

None of them declares ``layout_follows``: the layout pass gives them PyTorch's (contiguous) order,
which is always exact; their axes and shapes are logical ones.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import OpCode, OperandCode
from ..types import Operand, TensorType, Value, i32
from .base import Loc, NnapiOp
from .elementwise import broadcast_shapes

BOOL8 = OperandCode.TENSOR_BOOL8


def bool_type(shape: tuple[int | None, ...]) -> TensorType:
    return TensorType(BOOL8, tuple(shape))


@attrs.frozen(kw_only=True)
class _Compare(NnapiOp):
    """x <op> y elementwise with broadcasting; same input types; BOOL8 result."""

    results: tuple[Value, ...] = ()
    a: Value
    b: Value
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (bool_type(broadcast_shapes(self.a.type.shape, self.b.type.shape)),)

    def check(self) -> list[str]:
        if self.a.type.code != self.b.type.code:
            return [f"operand types differ: {self.a.type} vs {self.b.type}"]
        if self.a.type.quant != self.b.type.quant:
            return ["quantized comparison operands must share scale and zero point"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.a, self.b]


def _compare(name: str, code: OpCode) -> type[_Compare]:
    cls = attrs.frozen(kw_only=True)(
        type(name, (_Compare,), {"__annotations__": {}, "mnemonic": code.name.lower(), "code": code})
    )
    cls.__doc__ = f"NNAPI {code.name} (BOOL8 result)."
    cls.__module__ = __name__
    return cls


Equal = _compare("Equal", OpCode.EQUAL)
NotEqual = _compare("NotEqual", OpCode.NOT_EQUAL)
Less = _compare("Less", OpCode.LESS)
LessEqual = _compare("LessEqual", OpCode.LESS_EQUAL)
Greater = _compare("Greater", OpCode.GREATER)
GreaterEqual = _compare("GreaterEqual", OpCode.GREATER_EQUAL)


@attrs.frozen(kw_only=True)
class _LogicalBinary(_Compare):
    def check(self) -> list[str]:
        if self.a.type.code != BOOL8 or self.b.type.code != BOOL8:
            return ["logical ops take TENSOR_BOOL8 operands"]
        return []


@attrs.frozen(kw_only=True)
class LogicalAnd(_LogicalBinary):
    mnemonic: ClassVar[str] = "logical_and"
    code: ClassVar[OpCode] = OpCode.LOGICAL_AND


@attrs.frozen(kw_only=True)
class LogicalOr(_LogicalBinary):
    mnemonic: ClassVar[str] = "logical_or"
    code: ClassVar[OpCode] = OpCode.LOGICAL_OR


@attrs.frozen(kw_only=True)
class LogicalNot(NnapiOp):
    mnemonic: ClassVar[str] = "logical_not"
    code: ClassVar[OpCode] = OpCode.LOGICAL_NOT
    results: tuple[Value, ...] = ()
    x: Value
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (self.x.type,)

    def check(self) -> list[str]:
        return [] if self.x.type.code == BOOL8 else ["LOGICAL_NOT takes a TENSOR_BOOL8 operand"]

    def nnapi_operands(self) -> list[Operand]:
        return [self.x]


@attrs.frozen(kw_only=True)
class Select(NnapiOp):
    """cond ? x : y elementwise; NNAPI does not broadcast: all three have one shape."""

    mnemonic: ClassVar[str] = "select"
    code: ClassVar[OpCode] = OpCode.SELECT
    typed_input: ClassVar[int] = 1
    results: tuple[Value, ...] = ()
    cond: Value
    x: Value
    y: Value
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (self.x.type,)

    def check(self) -> list[str]:
        if self.cond.type.code != BOOL8:
            return ["SELECT's condition must be TENSOR_BOOL8"]
        if not self.cond.type.shape == self.x.type.shape == self.y.type.shape:
            return [f"SELECT shapes differ: {self.cond.type}, {self.x.type}, {self.y.type}"]
        if self.x.type != self.y.type:
            return [f"SELECT operand types differ: {self.x.type} vs {self.y.type}"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.cond, self.x, self.y]


@attrs.frozen(kw_only=True)
class ArgMax(NnapiOp):
    """Index of the largest element along ``axis`` (TENSOR_INT32, that axis removed)."""

    mnemonic: ClassVar[str] = "argmax"
    code: ClassVar[OpCode] = OpCode.ARGMAX
    results: tuple[Value, ...] = ()
    x: Value
    axis: int
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        shape = tuple(d for i, d in enumerate(self.x.type.shape) if i != self.axis) or (1,)
        return (TensorType(OperandCode.TENSOR_INT32, shape),)

    def check(self) -> list[str]:
        return [] if 0 <= self.axis < self.x.type.rank else [f"axis {self.axis} out of range"]

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, i32(self.axis)]


@attrs.frozen(kw_only=True)
class ArgMin(ArgMax):
    mnemonic: ClassVar[str] = "argmin"
    code: ClassVar[OpCode] = OpCode.ARGMIN


@attrs.frozen(kw_only=True)
class ExpandDims(NnapiOp):
    """EXPAND_DIMS (FL3): insert a size-1 axis at ``axis``. Unlike RESHAPE (INT32 only from
    FL6) it takes INT32 at FL3, so argmax(keepdim=True) stays in NNAPI."""

    mnemonic: ClassVar[str] = "expand_dims"
    code: ClassVar[OpCode] = OpCode.EXPAND_DIMS
    results: tuple[Value, ...] = ()
    x: Value
    axis: int
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        shape = list(self.x.type.shape)
        shape.insert(self.axis, 1)
        return (self.x.type.with_shape(tuple(shape)),)

    def check(self) -> list[str]:
        return [] if 0 <= self.axis <= self.x.type.rank else [f"axis {self.axis} out of range"]

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, i32(self.axis)]


@attrs.frozen(kw_only=True)
class GatherIndices(NnapiOp):
    """GATHER (FL3) with indices computed at run time (embedding lookups, ``index_select`` by a
    tensor): out = x.shape[:axis] + indices.shape + x.shape[axis+1:]. Out-of-range indices make
    the execution fail, as PyTorch raises for them too."""

    mnemonic: ClassVar[str] = "gather_indices"
    code: ClassVar[OpCode] = OpCode.GATHER
    results: tuple[Value, ...] = ()
    x: Value
    axis: int
    indices: Value
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        s = self.x.type.shape
        shape = (*s[: self.axis], *self.indices.type.shape, *s[self.axis + 1 :])
        return (self.x.type.with_shape(shape),)

    def check(self) -> list[str]:
        if not 0 <= self.axis < self.x.type.rank:
            return [f"axis {self.axis} out of range"]
        if self.indices.type.code != OperandCode.TENSOR_INT32:
            return ["GATHER indices must be TENSOR_INT32"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, i32(self.axis), self.indices]


@attrs.frozen(kw_only=True)
class TopK(NnapiOp):
    """TOPK_V2 (FL3): the ``k`` largest entries along the last axis, sorted descending (equal
    values: the larger index first), and their TENSOR_INT32 indices."""

    mnemonic: ClassVar[str] = "topk"
    code: ClassVar[OpCode] = OpCode.TOPK_V2
    results: tuple[Value, ...] = ()
    x: Value
    k: int
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        shape = (*self.x.type.shape[:-1], self.k)
        return (self.x.type.with_shape(shape), TensorType(OperandCode.TENSOR_INT32, shape))

    def check(self) -> list[str]:
        n = self.x.type.shape[-1] if self.x.type.rank else None
        if n is None or not 1 <= self.k <= n:
            return [f"k={self.k} out of range for {self.x.type}"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, i32(self.k)]


#: CAST pairs legal at FL3 that the compiler emits (FLOAT16 and QUANT8 casts are not used;
#: BOOL8 has only the identity cast, from FL4, so bool conversions use comparisons / SELECT).
CAST_PAIRS = frozenset({(OperandCode.TENSOR_FLOAT32, OperandCode.TENSOR_INT32),
                        (OperandCode.TENSOR_INT32, OperandCode.TENSOR_FLOAT32)})


@attrs.frozen(kw_only=True)
class Cast(NnapiOp):
    """CAST (FL3): the same shape, values converted to ``to``."""

    mnemonic: ClassVar[str] = "cast"
    code: ClassVar[OpCode] = OpCode.CAST
    results: tuple[Value, ...] = ()
    x: Value
    to: OperandCode = attrs.field(converter=OperandCode)
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (TensorType(self.to, self.x.type.shape),)

    def check(self) -> list[str]:
        if (self.x.type.code, self.to) not in CAST_PAIRS:
            return [f"CAST from {self.x.type.code.name} to {self.to.name} is not emitted"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x]
