"""BATCH_MATMUL: a matrix product over the last two dims, batched over the leading ones (FL6).

``adj_x`` / ``adj_y`` transpose the last two dims of an operand first. Both operands have the
same rank (2..4) and the same batch dims (NNAPI does not broadcast them). Float and INT32 only:
the signed-quantized form is not implemented here (the compiler never emits it).
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode
from .registry import FLOAT_TYPES, Bound, In, KernelCall, bound, kernel


def batch_matmul(x: torch.Tensor, y: torch.Tensor, adj_x: bool, adj_y: bool) -> torch.Tensor:
    if x.dim() != y.dim() or x.dim() < 2 or x.dim() > 4:
        raise ValueError(f"BATCH_MATMUL needs equal ranks in 2..4, got {list(x.shape)} and {list(y.shape)}")
    if x.shape[:-2] != y.shape[:-2]:
        raise ValueError(f"BATCH_MATMUL batch dims differ: {list(x.shape)} and {list(y.shape)}")
    a = x.transpose(-1, -2) if adj_x else x
    b = y.transpose(-1, -2) if adj_y else y
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"BATCH_MATMUL inner dims differ: {list(a.shape)} @ {list(b.shape)}")
    if x.dtype == torch.int32:
        # Integer products accumulate exactly in int64, then wrap to int32 as the reference does.
        prods = a.to(torch.int64).unsqueeze(-1) * b.to(torch.int64).unsqueeze(-3)
        return torch.sum(prods, dim=-2).to(torch.int32)
    return torch.matmul(a.float(), b.float())


@kernel(OpCode.BATCH_MATMUL, inputs=["TTbb"], types=FLOAT_TYPES | {"INT32"}, rank=(2, 4))
def _batch_matmul(call: KernelCall) -> Bound:
    return bound(batch_matmul, In(0), In(1), call.flag(2), call.flag(3))
