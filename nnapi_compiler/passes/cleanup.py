"""Clean-ups: dead-code elimination, sharing of identical constants, reshape simplification.

- ``dce``: drop ops whose results nobody reads (every op is pure; a host op whose results are
  read stays).
- ``share-constants``: identical constants (same bytes and type) become one value; bytes are
  compared only between constants that already agree on type and a sample of elements.
- ``simplify-reshape``: reshape of a reshape reads the original; a reshape to the same shape
  vanishes; a flatten feeding FULLY_CONNECTED is dropped where FC's implicit flatten
  ([numel / K, K]) gives the same rows.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..ir import ops
from ..ir.constpool import ConstPool
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
        p, changed = rewrite_ops(program, {Op: _erase_if_dead})
        return PassResult(p, changed)


def _erase_if_dead(rw: Rewriter, op: Op) -> None:
    # Erasing an op erases the producers it leaves unread too, so one sweep is a full DCE.
    if not any(rw.use_count(r) for r in op.results):
        rw.erase(op)


@register
@attrs.frozen
class ShareConstants:
    name: ClassVar[str] = "share-constants"

    def run(self, program: Program) -> PassResult:
        seen: ConstPool[Value] = ConstPool()

        def share(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
            assert isinstance(op, Constant)
            first = seen.find(op.data, op.result.type)
            if first is None:
                seen.add(op.data, op.result, op.result.type)
                return None
            return None if first == op.result else (first,)

        p, changed = rewrite_ops(program, {Constant: share})
        return PassResult(p, changed)


def _reshape(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
    assert isinstance(op, ops.Reshape)
    if op.result.type == op.x.type:
        return (op.x,)
    inner = rw.defining(op.x)
    if isinstance(inner, ops.Reshape) and inner.x.type.dim_order is DimOrder.CONTIGUOUS:
        if inner.x.type == op.result.type:  # the chain is the identity
            return (inner.x,)
        return attrs.evolve(op, x=inner.x)  # the outer reshape's fields (out_order) kept
    return None


def _fc(rw: Rewriter, op: Op) -> Op | None:
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
    return attrs.evolve(op, input=inner.x)  # every other field (fuse, out_quant) kept


@register
@attrs.frozen
class SimplifyReshape:
    name: ClassVar[str] = "simplify-reshape"

    def run(self, program: Program) -> PassResult:
        # Reshapes a rewrite leaves unread are erased by the driver itself.
        p, changed = rewrite_ops(program, {ops.Reshape: _reshape, ops.FullyConnected: _fc})
        return PassResult(p, changed)
