"""FULLY_CONNECTED (float): out = act(flatten(x) @ W^T + b), W is [units, input_size].

An input of rank > 2 is flattened to [numel / input_size, input_size] as NNAPI specifies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...ir.codes import OpCode
from .common import fuse
from .registry import KernelCall, kernel


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


@kernel(OpCode.FULLY_CONNECTED, inputs=["TTTa"], rank=(2, 4))
def _fully_connected(call: KernelCall) -> list[torch.Tensor]:
    return [fully_connected(call.tensor(0), call.tensor(1), call.tensor(2), call.int(3))]
