"""Constant folding: an NNAPI op whose inputs are all constants becomes a constant.

The op is evaluated by the reference kernels — the same NNAPI semantics the device implements —
on its operands exactly as a driver would receive them (values encoded and decoded as NNAPI
bytes, scales rounded to float32), so folding cannot change results.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

import attrs
import torch

from ..ir.flat import OperandDesc, scalar_bytes
from ..ir.ops.base import NnapiOp, Op
from ..ir.program import Program
from ..ir.types import IntVector, Omitted, Operand, Scalar, Value
from ..reference.decode import decode_value
from ..reference.evaluate import evaluate_op
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops


def _as_received(desc: OperandDesc) -> OperandDesc:
    """The description a driver reads back: the scale is stored as a C float."""
    return attrs.evolve(desc, scale=struct.unpack("<f", struct.pack("<f", desc.scale))[0])


def _bytes(t: torch.Tensor) -> bytes:
    t = t.contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _operand(rw: Rewriter, o: Operand) -> tuple[Any, OperandDesc] | None:
    """(decoded value, description) of a constant operand, or None if it is not constant."""
    if isinstance(o, Value):
        c = rw.constant(o)
        if c is None:
            return None
        desc = _as_received(o.type.desc())
        return decode_value(desc, _bytes(c.data)), desc
    if isinstance(o, Scalar):
        desc = OperandDesc(code=int(o.code))
        return decode_value(desc, scalar_bytes(o.code, o.value)), desc
    if isinstance(o, IntVector):
        desc = OperandDesc(code=4, dims=o.dims)  # TENSOR_INT32
        return torch.tensor(o.values, dtype=torch.int32).reshape(o.dims), desc
    if isinstance(o, Omitted):  # an omitted optional input decodes to None
        return None, OperandDesc(code=int(o.code))
    raise TypeError(f"not an NNAPI operand: {o!r}")


def _evaluate(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
    if not isinstance(op, NnapiOp) or not op.inputs():
        return None
    operands = [_operand(rw, o) for o in op.nnapi_operands()]
    if any(x is None for x in operands):
        return None
    values = [x[0] for x in operands if x is not None]
    descs = [x[1] for x in operands if x is not None]
    outs = evaluate_op(int(op.code), values, descs, [_as_received(r.type.desc()) for r in op.results])
    return tuple(rw.b.const(t, r.type.dim_order) for t, r in zip(outs, op.results, strict=True))


@register
@attrs.frozen
class FoldConstants:
    name: ClassVar[str] = "fold-constants"

    def run(self, program: Program) -> PassResult:
        p, changed = rewrite_ops(program, {NnapiOp: _evaluate})  # never a host op
        return PassResult(p, changed)
