"""Fuse RELU / RELU1 / RELU6 into the op that produces their input, as an NNAPI fuse code.

Applies to every op with a fuse-code operand (``fusable`` ops: convs, fully connected,
add/sub/mul/div, pools) when the activation is that result's only reader; the activation op
disappears. Host ops are never fusable: their code runs in TorchScript, not NNAPI.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..ir import ops
from ..ir.codes import FuseCode
from ..ir.ops.base import Op
from ..ir.program import Program
from ..ir.types import Value
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops

CODES = {ops.Relu: FuseCode.FUSED_RELU, ops.Relu1: FuseCode.FUSED_RELU1,
         ops.Relu6: FuseCode.FUSED_RELU6}


def _fuse(rw: Rewriter, act: Op) -> tuple[Value, ...] | None:
    x = act.x  # type: ignore[attr-defined]
    producer = rw.defining(x)
    if producer is None or not producer.fusable or producer.fuse != FuseCode.FUSED_NONE:  # type: ignore[attr-defined]
        return None
    if not rw.single_use(x):
        return None
    rw.replace(producer, attrs.evolve(producer, fuse=CODES[type(act)]))
    return (x,)


@register
@attrs.frozen
class FuseActivation:
    name: ClassVar[str] = "fuse-activation"

    def run(self, program: Program) -> PassResult:
        p, changed = rewrite_ops(program, dict.fromkeys(CODES, _fuse))
        return PassResult(p, changed)
