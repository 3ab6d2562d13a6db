"""Helpers shared by the reference kernels: fused activations, implicit padding, layouts, dtypes.

Plain typed functions of tensors and ints, so the same code can later be scripted for the CPU
fallback.
"""

from __future__ import annotations

import torch

from ..ir.codes import OperandCode

TORCH_DTYPES: dict[int, torch.dtype] = {
    OperandCode.TENSOR_FLOAT32: torch.float32,
    OperandCode.TENSOR_FLOAT16: torch.float16,
    OperandCode.TENSOR_INT32: torch.int32,
    OperandCode.TENSOR_QUANT8_ASYMM: torch.uint8,
    OperandCode.TENSOR_QUANT8_ASYMM_SIGNED: torch.int8,
    OperandCode.TENSOR_QUANT8_SYMM: torch.int8,
    OperandCode.TENSOR_QUANT8_SYMM_PER_CHANNEL: torch.int8,
    OperandCode.TENSOR_BOOL8: torch.bool,
    OperandCode.TENSOR_QUANT16_SYMM: torch.int16,
    OperandCode.TENSOR_QUANT16_ASYMM: torch.int32,  # uint16 values, widened
}


def fuse(x: torch.Tensor, code: int) -> torch.Tensor:
    """Apply a FuseCode to a float result: 0 none, 1 relu, 2 relu1, 3 relu6."""
    if code == 0:
        return x
    if code == 1:
        return torch.clamp_min(x, 0.0)
    if code == 2:
        return torch.clamp(x, -1.0, 1.0)
    if code == 3:
        return torch.clamp(x, 0.0, 6.0)
    raise ValueError(f"unknown fuse code {code}")


def implicit_padding(
    in_size: int, stride: int, filter_size: int, dilation: int, scheme: int
) -> tuple[int, int]:
    """(head, tail) padding of one spatial axis for PADDING_SAME / PADDING_VALID."""
    if scheme == 2:  # PADDING_VALID
        return 0, 0
    if scheme != 1:  # PADDING_SAME
        raise ValueError("unknown padding code " + str(scheme))
    eff = (filter_size - 1) * dilation + 1
    out = (in_size + stride - 1) // stride
    total = max(0, (out - 1) * stride + eff - in_size)
    return total // 2, total - total // 2


def transpose_conv_padding(out_size: int, stride: int, filter_size: int, scheme: int) -> tuple[int, int]:
    """TRANSPOSE_CONV_2D implicit padding, derived from the output size; tail may be negative."""
    if scheme == 2:  # PADDING_VALID
        return 0, 0
    if scheme != 1:  # PADDING_SAME
        raise ValueError("unknown padding code " + str(scheme))
    n = (out_size + stride - 1) // stride
    tmp = (n - 1) * stride + filter_size
    head = (tmp - out_size) // 2 if tmp > out_size else 0
    return head, (tmp - out_size) - head


def round_half_away(v: torch.Tensor) -> torch.Tensor:
    """C ``roundf``: to nearest, ties away from zero (torch.round rounds ties to even)."""
    t = torch.trunc(v)
    return t + torch.where(torch.abs(v - t) >= 0.5, torch.sign(v), torch.zeros_like(v))


def to_nhwc(x: torch.Tensor, nchw: bool) -> torch.Tensor:
    """View a rank-4 operand in NHWC order (it is NCHW when the layout flag is set)."""
    return x.permute(0, 2, 3, 1) if nchw else x


def from_nhwc(x: torch.Tensor, nchw: bool) -> torch.Tensor:
    """Turn an NHWC result back into the operand's layout, contiguous."""
    return (x.permute(0, 3, 1, 2) if nchw else x).contiguous()


def to_nchw(x: torch.Tensor, nchw: bool) -> torch.Tensor:
    """View a rank-4 operand in NCHW order, as torch.nn.functional wants it."""
    return x if nchw else x.permute(0, 3, 1, 2)


def from_nchw(x: torch.Tensor, nchw: bool) -> torch.Tensor:
    return (x if nchw else x.permute(0, 2, 3, 1)).contiguous()


def check_rank(x: torch.Tensor, rank: int, what: str) -> None:
    if x.dim() != rank:
        raise ValueError(f"{what} must have rank {rank}, got shape {list(x.shape)}")


def norm_axis(axis: int, rank: int) -> int:
    """Map an axis in [-rank, rank) to [0, rank), refusing anything else."""
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def scalar_shape(x: torch.Tensor) -> torch.Tensor:
    """NNAPI has no rank-0 tensors: a result reduced to a scalar has shape [1]."""
    return x.reshape(1) if x.dim() == 0 else x
