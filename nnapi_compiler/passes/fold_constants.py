"""Constant folding: an NNAPI op whose inputs are all constants becomes a constant.

The op is evaluated by the reference interpreter — the same NNAPI semantics the device
implements — so folding cannot change results.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..ir.builder import Builder
from ..ir.ops.base import NnapiOp, Op
from ..ir.program import Program
from ..ir.types import Value
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops


def _evaluate(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
    from ..backend.flatten import flatten  # the backend serializes; imported late (no cycle)
    from ..runtime.interpreter import execute

    ins = op.inputs()
    consts = [rw.constant(v) for v in ins]
    if not isinstance(op, NnapiOp) or not ins or any(c is None for c in consts):
        return None
    mini = Builder(level=rw.program.level)
    mini.ops.extend(c for c in dict.fromkeys(consts))  # type: ignore[misc]
    mini._next = rw.program.next_id()
    mini.ops.append(op)
    seg = flatten(mini.finish(list(op.results)))
    outs = execute(seg.resolved(), [], rw.program.level)
    return tuple(rw.b.const(t, r.type.dim_order) for t, r in zip(outs, op.results, strict=True))


@register
@attrs.frozen
class FoldConstants:
    name: ClassVar[str] = "fold-constants"

    def run(self, program: Program) -> PassResult:
        nnapi_types = {type(op) for op in program.ops if isinstance(op, NnapiOp)}
        p, changed = rewrite_ops(program, dict.fromkeys(nnapi_types, _evaluate))
        return PassResult(p, changed)
