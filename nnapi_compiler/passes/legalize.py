"""Legalize for the target feature level: rewrite ops the target lacks into exact legal forms.

HARD_SWISH and ELU exist from FL4 (Android 11). Below that (ELU for alpha >= 0, which the
frontend guarantees; exp(x) - 1 rounds within a few ulp of PyTorch's expm1):
  hardswish(x) = x * relu6(x + 3) / 6   -> ADD(fuse RELU6), MUL, DIV
  elu(x)       = max(x, 0) + min(alpha * (exp(x) - 1), 0)  -> EXP, SUB, MUL, MINIMUM, RELU, ADD
DIV (not MUL by 1/6) keeps the rounding of PyTorch's own kernel.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from ..ir import ops
from ..ir.builder import Builder
from ..ir.codes import FuseCode
from ..ir.ops.base import Op
from ..ir.program import Program
from ..ir.types import Value
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops


def _scalar(b: Builder, v: float) -> Value:
    return b.const(torch.tensor([v], dtype=torch.float32))


def hard_swish(rw: Rewriter, op: Op) -> tuple[Value, ...]:
    b, x = rw.b, op.x  # type: ignore[attr-defined]
    quant = op.result.type.quant
    if quant is not None:  # quantized: the same float formula between DEQUANTIZE and QUANTIZE
        x = b.emit(ops.Dequantize, x=x)
    t = b.emit(ops.Add, a=x, b=_scalar(b, 3.0), fuse=FuseCode.FUSED_RELU6)
    t = b.emit(ops.Mul, a=x, b=t)
    y = b.emit(ops.Div, a=t, b=_scalar(b, 6.0))
    if quant is not None:
        y = b.emit(ops.Quantize, x=y, quant=quant, out_code=op.result.type.code)
    return (y,)


def elu(rw: Rewriter, op: Op) -> tuple[Value, ...]:
    b, x, alpha = rw.b, op.x, op.alpha  # type: ignore[attr-defined]
    em1 = b.emit(ops.Sub, a=b.emit(ops.Exp, x=x), b=_scalar(b, 1.0))
    neg = b.emit(ops.Minimum, a=b.emit(ops.Mul, a=em1, b=_scalar(b, alpha)), b=_scalar(b, 0.0))
    return (b.emit(ops.Add, a=b.emit(ops.Relu, x=x), b=neg),)


@register
@attrs.frozen
class Legalize:
    """Rewrite every op whose instance needs a higher feature level than the program's."""

    name: ClassVar[str] = "legalize"

    RULES: ClassVar[dict[type, tuple[int, object]]] = {
        ops.HardSwish: (4, hard_swish),
        ops.Elu: (4, elu),
    }

    def run(self, program: Program) -> PassResult:
        rules = {cls: fn for cls, (lvl, fn) in self.RULES.items() if program.level < lvl}
        p, changed = rewrite_ops(program, rules)  # type: ignore[arg-type]
        return PassResult(p, changed)
