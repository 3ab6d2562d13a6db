"""Builds IR programs: allocates SSA values, infers result types, shares identical constants."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import torch

from .codes import OperandCode
from .constpool import ConstPool
from .ops.base import Constant, Loc, Op
from .program import Program
from .types import DimOrder, Quant, TensorType, Value

OpT = TypeVar("OpT", bound=Op)

_QUANT_CODE = {torch.uint8: OperandCode.TENSOR_QUANT8_ASYMM,
               torch.int8: OperandCode.TENSOR_QUANT8_ASYMM_SIGNED}
_CODE_FOR_DTYPE = {
    torch.float32: "TENSOR_FLOAT32",
    torch.int32: "TENSOR_INT32",
    torch.float16: "TENSOR_FLOAT16",
    torch.bool: "TENSOR_BOOL8",
    torch.uint8: "TENSOR_QUANT8_ASYMM",
    torch.int8: "TENSOR_QUANT8_ASYMM_SIGNED",
}


@attrs.define(eq=False)
class Builder:
    """Appends ops in order; ``loc`` is stamped on every op created while it is set."""

    level: int = 3
    ops: list[Op] = attrs.field(factory=list)
    inputs: list[Value] = attrs.field(factory=list)
    loc: Loc | None = None
    _next: int = 0
    _consts: ConstPool[Value] = attrs.field(factory=ConstPool)

    @classmethod
    def after(cls, p: Program) -> Builder:
        """A builder for ops added to ``p`` (by a pass): its new values reuse none of p's ids."""
        return cls(level=p.level, next=p.next_id())

    def _value(self, t: TensorType) -> Value:
        v = Value(self._next, t)
        self._next += 1
        return v

    def input(self, t: TensorType) -> Value:
        v = self._value(t)
        self.inputs.append(v)
        return v

    def op(self, cls: type[OpT], **fields: Any) -> OpT:
        """Create ``cls(**fields)``, infer its result types, append it, return it."""
        fields.setdefault("loc", self.loc)
        probe = cls(results=(), **fields)
        results = tuple(self._value(t) for t in probe.infer())
        op = attrs.evolve(probe, results=results)
        self.ops.append(op)
        return op

    def emit(self, cls: type[Op], **fields: Any) -> Value:
        """Like ``op`` for single-result ops; returns the result value."""
        return self.op(cls, **fields).result

    def const(self, data: torch.Tensor, dim_order: DimOrder = DimOrder.CONTIGUOUS,
              quant: Quant | None = None, owned: bool = False) -> Value:
        """A constant tensor value; identical data (dtype, shape, bytes) yield the same value.

        ``quant`` makes a uint8 tensor TENSOR_QUANT8_ASYMM (int8: ..._SIGNED) and gives an
        int32 tensor (a quantized bias) its scale. ``owned`` says ``data`` was just computed and
        nobody else holds it, so it is not copied (weights are tens of megabytes).
        """
        # Our own copy with standard strides (size-1 dims of permuted views keep odd strides):
        # reshape(-1) copies a non-contiguous tensor already; a view is cloned only if not owned.
        src = data.detach()
        flat = src.reshape(-1)
        if not owned and flat.data_ptr() == src.data_ptr():
            flat = flat.clone()
        data = flat.reshape(src.shape)
        if data.dtype == torch.float64:
            data = data.float()
        if data.dtype == torch.int64:
            data = data.int()
        found = self._consts.find(data, (dim_order, quant))
        if found is not None:
            return found
        code = OperandCode[_CODE_FOR_DTYPE[data.dtype]]
        if quant is not None and data.dtype in _QUANT_CODE:
            code = _QUANT_CODE[data.dtype]
        v = self._value(TensorType(code, tuple(data.shape), quant, dim_order))
        self.ops.append(Constant(results=(v,), data=data, loc=self.loc))
        self._consts.add(data, v, (dim_order, quant))
        return v

    def forget(self, c: Constant) -> None:
        """``c`` was erased: ``const`` must not hand out its value any more."""
        t = c.result.type
        self._consts.remove(c.data, c.result, (t.dim_order, t.quant))

    def mark(self) -> int:
        """A point to roll back to: what a refused converter emitted is dropped again."""
        return len(self.ops)

    def rollback(self, mark: int) -> None:
        for op in self.ops[mark:]:
            if isinstance(op, Constant):
                self.forget(op)
        del self.ops[mark:]

    def finish(self, outputs: list[Value] | tuple[Value, ...]) -> Program:
        return Program(inputs=tuple(self.inputs), ops=tuple(self.ops), outputs=tuple(outputs),
                       level=self.level)
