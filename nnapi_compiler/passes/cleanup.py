"""Clean-ups: dead-code elimination, sharing of identical constants, reshape simplification.

- ``dce``: drop ops whose results nobody reads (every NNAPI op is pure).
- ``share-constants``: identical constants (same digest and type) become one value.
- ``simplify-reshape``: reshape of a reshape reads the original; a reshape to the same shape
  vanishes; a flatten feeding FULLY_CONNECTED is dropped where FC's implicit flatten
  ([numel / K, K]) gives the same rows.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..ir import ops
from ..ir.ops.base import Constant, Op
from ..ir.program import Program
from ..ir.types import DimOrder, Value
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops


@register
@attrs.frozen
class DeadCodeElimination:
    name: ClassVar[str] = "dce"

    def run(self, program: Program) -> PassResult:
        live = {v.id for v in program.outputs}
        keep: list[Op] = []
        for op in reversed(program.ops):
            if any(r.id in live for r in op.results):
                keep.append(op)
                live.update(v.id for v in op.inputs())
        if len(keep) == len(program.ops):
            return PassResult(program, False)
        return PassResult(attrs.evolve(program, ops=tuple(reversed(keep))), True)


@register
@attrs.frozen
class ShareConstants:
    name: ClassVar[str] = "share-constants"

    def run(self, program: Program) -> PassResult:
        seen: dict[tuple, Value] = {}

        def share(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
            assert isinstance(op, Constant)
            key = (op.digest, op.result.type)
            if key in seen:
                return (seen[key],)
            seen[key] = op.result
            return None

        p, changed = rewrite_ops(program, {Constant: share})
        return PassResult(p, changed)


def _reshape(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
    assert isinstance(op, ops.Reshape)
    if op.x.type.shape == op.shape and op.x.type.dim_order is DimOrder.CONTIGUOUS:
        return (op.x,)
    inner = rw.defining(op.x)
    if isinstance(inner, ops.Reshape) and inner.x.type.dim_order is DimOrder.CONTIGUOUS:
        if inner.x.type.shape == op.shape:  # the chain is the identity
            return (inner.x,)
        return (rw.b.emit(ops.Reshape, x=inner.x, shape=op.shape),)
    return None


def _fc(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
    assert isinstance(op, ops.FullyConnected)
    inner = rw.defining(op.input)
    if not isinstance(inner, ops.Reshape) or inner.x.type.dim_order is not DimOrder.CONTIGUOUS:
        return None
    k = op.weights.type.shape[1]
    src = inner.x.type
    if src.rank < 2 or not src.known or src.numel % k or src.shape[0] != op.input.type.shape[0]:
        return None
    if src.numel // k != src.shape[0]:  # FC would not see the same rows
        return None
    new = attrs.evolve(op, input=inner.x)  # every other field (fuse, out_quant) kept
    rw.b.ops.append(new)
    return new.results


@register
@attrs.frozen
class SimplifyReshape:
    name: ClassVar[str] = "simplify-reshape"

    def run(self, program: Program) -> PassResult:
        p, changed = rewrite_ops(program, {ops.Reshape: _reshape, ops.FullyConnected: _fc})
        if changed:
            p = DeadCodeElimination().run(p).program
        return PassResult(p, changed)
