"""Bias requantization: PyTorch keeps quantized conv/linear bias in float; NNAPI wants INT32
with scale = input_scale * weight_scale and zero point 0.

The integer bias is computed the way PyTorch's quantized kernels do (float32 multiply by the
reciprocal scale, round half to even), so NNAPI adds exactly the bias PyTorch adds; for PT2E
graphs this recovers the int32 bias convert_pt2e stored (the same float32 scale product). A value
that does not fit in int32 raises QuantizationError naming the layer; nothing wraps silently.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from ..errors import QuantizationError
from ..ir.codes import OperandCode
from ..ir.ops.base import NnapiOp, Op
from ..ir.program import Program
from ..ir.types import Quant, Value
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops

INT32_MAX = 2**31 - 1


def quantize_bias(bias: torch.Tensor, scale: float, where: str) -> torch.Tensor:
    inv = torch.tensor(1.0, dtype=torch.float32) / torch.tensor(scale, dtype=torch.float32)
    q = torch.round(bias.float() * inv)  # torch.round is half-to-even, like nearbyint
    worst = q.abs().max().item() if q.numel() else 0.0
    if worst > INT32_MAX:
        raise QuantizationError(
            f"{where}: bias {bias.abs().max().item():.6g} at scale {scale:.6g} "
            f"(input scale x weight scale) needs {worst:.3g}, beyond int32"
        )
    return q.to(torch.int32)


def _requant(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
    if op.weighted is None:
        return None
    x = op.inputs()[0]
    w = getattr(op, op.weighted[0])
    bias = op.bias  # type: ignore[attr-defined]
    if x.type.quant is None or bias.type.code != OperandCode.TENSOR_FLOAT32:
        return None
    c = rw.constant(bias)
    if c is None or w.type.quant is None:
        return None
    scale = float(torch.tensor(x.type.quant.scale, dtype=torch.float32)
                  * torch.tensor(w.type.quant.scale, dtype=torch.float32))
    q = quantize_bias(c.data, scale, str(op.loc or op.mnemonic))
    new_bias = rw.b.const(q, quant=Quant(scale, 0))
    return attrs.evolve(op, bias=new_bias)


@register
@attrs.frozen
class RequantizeBias:
    name: ClassVar[str] = "requantize-bias"

    def run(self, program: Program) -> PassResult:
        p, changed = rewrite_ops(program, {NnapiOp: _requant})
        return PassResult(p, changed)
