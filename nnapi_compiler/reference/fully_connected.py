"""FULLY_CONNECTED: out = act(flatten(x) @ W^T + b), W is [units, input_size].

An input of rank > 2 is flattened to [numel / input_size, input_size] as NNAPI specifies.
Quantized operands go to the integer-exact kernel of ``quant_conv``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ir.codes import OpCode
from .common import fuse
from .quant_conv import check_conv_quant, quant_fully_connected, requant_params
from .registry import FLOAT_TYPES, QUANT8_TYPES, Bound, In, KernelCall, bound, kernel


def fully_connected(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, fuse_code: int
) -> torch.Tensor:
    if weight.dim() != 2 or bias.dim() != 1 or bias.shape[0] != weight.shape[0]:
        raise ValueError(f"weights {list(weight.shape)} / bias {list(bias.shape)} mismatch")
    input_size = weight.shape[1]
    if input_size == 0 or x.numel() % input_size != 0:
        raise ValueError(f"input {list(x.shape)} is not a multiple of input size {input_size}")
    flat = x.float().reshape(x.numel() // input_size, input_size)
    return fuse(F.linear(flat, weight.float(), bias.float()), fuse_code)


@kernel(
    OpCode.FULLY_CONNECTED,
    inputs=["TTBa"],
    rank=(2, 4),
    types=FLOAT_TYPES | QUANT8_TYPES,
    check=check_conv_quant,
)
def _fully_connected(call: KernelCall) -> Bound:
    if call.quantized:
        return bound(quant_fully_connected, In(0), In(1), In(2), requant_params(call, call.int(3)))
    return bound(fully_connected, In(0), In(1), In(2), call.int(3))
