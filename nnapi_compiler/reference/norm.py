"""INSTANCE_NORMALIZATION (FL3): per (batch, channel) normalization over H and W.

The reference computes, for each image and channel, the mean and the population variance over
H and W, then ``(x - mean) * gamma / sqrt(var + epsilon) + beta`` with scalar gamma and beta.
Float operands only (FLOAT16 is widened to float32, as the other float kernels do).
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode
from .common import from_nhwc, to_nhwc
from .registry import FLOAT_TYPES, Bound, In, KernelCall, bound, kernel


def instance_norm(x: torch.Tensor, gamma: float, beta: float, eps: float, nchw: bool) -> torch.Tensor:
    v = to_nhwc(x, nchw).float()
    mean = torch.mean(v, dim=[1, 2], keepdim=True)
    d = v - mean
    var = torch.mean(d * d, dim=[1, 2], keepdim=True)
    return from_nhwc(d * gamma / torch.sqrt(var + eps) + beta, nchw)


@kernel(OpCode.INSTANCE_NORMALIZATION, inputs=["Tfffb"], types=FLOAT_TYPES, rank=(4, 4))
def _instance_norm(call: KernelCall) -> Bound:
    return bound(instance_norm, In(0), call.float(1), call.float(2), call.float(3), call.flag(4))
