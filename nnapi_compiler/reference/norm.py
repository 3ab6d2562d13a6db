"""INSTANCE_NORMALIZATION (FL3): per (batch, channel) normalization over H and W; and
LOCAL_RESPONSE_NORMALIZATION: each element over a window of squares along one axis.

The reference computes, for each image and channel, the mean and the population variance over
H and W, then ``(x - mean) * gamma / sqrt(var + epsilon) + beta`` with scalar gamma and beta.
Float operands only (FLOAT16 is widened to float32, as the other float kernels do).
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode
from .common import from_nhwc, to_nhwc
from .registry import FLOAT_TYPES, Bound, CheckArgs, In, KernelCall, Sig, bound, kernel


def instance_norm(x: torch.Tensor, gamma: float, beta: float, eps: float, nchw: bool) -> torch.Tensor:
    v = to_nhwc(x, nchw).float()
    mean = torch.mean(v, dim=[1, 2], keepdim=True)
    d = v - mean
    var = torch.mean(d * d, dim=[1, 2], keepdim=True)
    return from_nhwc(d * gamma / torch.sqrt(var + eps) + beta, nchw)


@kernel(OpCode.INSTANCE_NORMALIZATION, inputs=["Tfffb"], types=FLOAT_TYPES, rank=(4, 4))
def _instance_norm(call: KernelCall) -> Bound:
    return bound(instance_norm, In(0), call.float(1), call.float(2), call.float(3), call.flag(4))


def local_response_norm(x: torch.Tensor, radius: int, bias: float, alpha: float, beta: float,
                        axis: int) -> torch.Tensor:
    """out[d] = x[d] / (bias + alpha * sum(x[j]^2 for |j - d| <= radius, j in range))^beta,
    along ``axis``, in float32 as the reference computes it."""
    v = torch.movedim(x.float(), axis, -1)
    sq = torch.nn.functional.pad(v * v, [radius, radius])
    total = sq.unfold(-1, 2 * radius + 1, 1).sum(-1)
    return torch.movedim(v / torch.pow(bias + alpha * total, beta), -1, axis)


def _check_lrn(args: CheckArgs) -> str | None:
    x = args.inputs[0]
    if args.level < 3 and len(x.dims) != 4:
        return "before feature level 3 LOCAL_RESPONSE_NORMALIZATION takes rank 4 only"
    if args.values[1] is not None and args.values[1] < 0:
        return f"radius {args.values[1]} must not be negative"
    if args.values[2] == 0.0:
        return "bias must not be zero"
    return None


@kernel(OpCode.LOCAL_RESPONSE_NORMALIZATION, inputs=[Sig("Tifff", 1, (("i", 3),))], types=FLOAT_TYPES,
        rank=(1, 4), check=_check_lrn)
def _local_response_norm(call: KernelCall) -> Bound:
    rank = call.tensor(0).dim()
    axis = call.int(5) if len(call.inputs) > 5 else -1
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return bound(local_response_norm, In(0), call.int(1), call.float(2), call.float(3), call.float(4),
                 axis % rank)
