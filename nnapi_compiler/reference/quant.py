"""QUANTIZE, DEQUANTIZE and CAST, with the reference's rounding and saturation rules.

QUANTIZE: q = clamp(zp + round_half_away(x / scale)) (std::round, division in float32).
DEQUANTIZE: x = scale * (q - zp) in float32. CAST converts raw stored values, ignoring scale and
zero point: to uint8 it saturates to [0, 255] first; float to int truncates toward zero.
"""

from __future__ import annotations

import torch

from ..ir.codes import QUANT_RANGE, OpCode
from ..ir.flat import OperandDesc
from .common import TORCH_DTYPES, round_half_away
from .registry import FLOAT_TYPES, Bound, In, KernelCall, bound, kernel

_ANY_RANK = (1, 64)


def quantize(
    x: torch.Tensor, scale: float, zero_point: int, qmin: int, qmax: int, dtype: torch.dtype
) -> torch.Tensor:
    q = round_half_away(x.float() / torch.tensor(scale, dtype=torch.float32))
    return torch.clamp(q.double() + zero_point, qmin, qmax).to(dtype)


def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    return torch.tensor(scale, dtype=torch.float32) * (q.to(torch.int32) - zero_point).float()


def _quant_params(desc: OperandDesc) -> tuple[float, int, int, int, torch.dtype]:
    lo, hi = QUANT_RANGE[desc.code]
    return desc.scale, desc.zero_point, lo, hi, TORCH_DTYPES[desc.code]


@kernel(OpCode.QUANTIZE, inputs=["T"], rank=_ANY_RANK)
def _quantize(call: KernelCall) -> Bound:
    scale, zp, lo, hi, dtype = _quant_params(call.output_descs[0])
    if not scale > 0:
        raise ValueError(f"output scale must be positive, got {scale}")
    return bound(quantize, In(0), scale, zp, lo, hi, dtype)


@kernel(OpCode.DEQUANTIZE, inputs=["T"], types={"QUANT8_ASYMM", "QUANT8_ASYMM_SIGNED", "QUANT8_SYMM"})
def _dequantize(call: KernelCall) -> Bound:
    desc = call.input_descs[0]
    return bound(dequantize, In(0), desc.scale, desc.zero_point)


def cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Convert stored values; uint8 targets saturate, float -> int truncates toward zero."""
    if x.dtype == dtype:
        return x.clone()
    if dtype == torch.uint8:
        x = torch.clamp(x, 0, 255)
    return x.to(dtype)


@kernel(
    OpCode.CAST,
    inputs=["T"],
    rank=_ANY_RANK,
    types=FLOAT_TYPES
    | {
        "INT32",
        "QUANT8_ASYMM",
        "QUANT8_ASYMM_SIGNED",
        "QUANT8_SYMM",
        "QUANT16_ASYMM",
        "QUANT16_SYMM",
        "BOOL8",
    },
)
def _cast(call: KernelCall) -> Bound:
    return bound(cast, In(0), TORCH_DTYPES[call.output_descs[0].code])
