"""TFLite / gemmlowp fixed-point helpers, exactly as the NNAPI reference CPU kernels use them.

Scales are C ``float`` in the reference, so every scale is first rounded to float32 (``f32``) and
products of two scales are float32 products, as in ``GetQuantizedConvolutionMultiplier``.
Tensor helpers work on int64 tensors holding int32 values and are plain typed functions (no
Python-only constructs) so they can be scripted for the CPU fallback; multipliers, shifts and
activation bounds are computed once, on the host, from the operand descriptions.
"""

from __future__ import annotations

import math
import struct

import torch

from ..ir.codes import QUANT_RANGE
from ..ir.flat import OperandDesc
from .common import TORCH_DTYPES, round_half_away

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (the reference stores scales as C floats)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def round_half_away_scalar(x: float) -> int:
    """std::round on one value: to nearest, ties away from zero (Python's round() ties to even)."""
    if not math.isfinite(x):
        raise ValueError(f"cannot round {x}")
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: (m, shift) with real ~= m * 2^(shift - 31), m in [2^30, 2^31).

    frexp gives real = q * 2^shift with q in [0.5, 1); m = round(q * 2^31), half away from zero
    (q * 2^31 is exact in double, so adding 0.5 and flooring is exact for q > 0). m == 2^31 is
    renormalised to 2^30 with shift + 1. A shift below -31 would shift every bit out: the reference
    flushes those to m = 0, shift = 0. real == 0 gives (0, 0).
    """
    if real == 0.0:
        return 0, 0
    if not (real > 0.0 and math.isfinite(real)):
        raise ValueError(f"multiplier must be positive and finite, got {real}")
    q, shift = math.frexp(real)
    m = math.floor(q * (1 << 31) + 0.5)
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return m, shift


def wrap_int32(x: torch.Tensor) -> torch.Tensor:
    """Reduce int64 values to int32 two's complement, as the reference's int32 arithmetic does."""
    return ((x + (1 << 31)) & ((1 << 32) - 1)) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: torch.Tensor, b: int) -> torch.Tensor:
    """gemmlowp SaturatingRoundingDoublingHighMul of int32 values ``a`` (int64 tensor) and ``b``.

    (a*b + nudge) / 2^31 with C division (truncation toward 0); nudge = 2^30 for a*b >= 0, else
    1 - 2^30 (= 2^30 - (2^31 - 1)). |a*b| <= 2^62 fits int64. The one overflow, a = b = INT32_MIN,
    saturates to INT32_MAX.
    """
    ab = a * b
    nudged = ab + (1 << 30) - (ab < 0).to(torch.int64) * ((1 << 31) - 1)
    high = torch.div(nudged, 1 << 31, rounding_mode="trunc")
    if b == -(1 << 31):  # literals: TorchScript cannot read module-level ints
        high = torch.where(a == -(1 << 31), torch.full_like(high, (1 << 31) - 1), high)
    return high


def rounding_divide_by_pot(x: torch.Tensor, exponent: int) -> torch.Tensor:
    """gemmlowp RoundingDivideByPOT: arithmetic shift right by ``exponent`` rounding to nearest,
    ties away from zero (int64 ``>>`` is arithmetic and ``&`` is two's complement)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).to(torch.int64)
    return (x >> exponent) + (remainder > threshold).to(torch.int64)


def multiply_by_quantized_multiplier(x: torch.Tensor, multiplier: int, shift: int) -> torch.Tensor:
    """TFLite MultiplyByQuantizedMultiplier(x, m, shift) on int32 values held in int64.

    The reference computes x * 2^max(shift, 0) in int32, which C leaves undefined on overflow;
    we saturate (as the NEON saturating shifts do). Overflow only happens when the real result is
    far outside every 8-bit range, where the output clamp makes saturation the exact answer.
    """
    left = min(max(shift, 0), 31)
    right = max(-shift, 0)
    shifted = torch.clamp(x * (1 << left), -(1 << 31), (1 << 31) - 1)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def requantize(acc: torch.Tensor, multiplier: int, shift: int, zp_out: int, lo: int, hi: int) -> torch.Tensor:
    """clamp(MBQM(acc) + zp_out, lo, hi) on an int64 tensor of int32 accumulators."""
    return torch.clamp(multiply_by_quantized_multiplier(acc, multiplier, shift) + zp_out, lo, hi)


def quant_range(desc: OperandDesc) -> tuple[int, int]:
    lo, hi = QUANT_RANGE[desc.code]
    return lo, hi


def activation_range(fuse_code: int, desc: OperandDesc) -> tuple[int, int]:
    """CalculateActivationRange{Uint8,Int8}: the fuse code's float range in ``desc``'s integer
    domain. quantize(f) = zp + (int) std::round(f / scale), float32 division (the float32 quotient
    equals the double quotient rounded to float32, since 53 >= 2*24 + 2)."""
    qmin, qmax = quant_range(desc)
    scale = f32(desc.scale)

    def quantize(f: float) -> int:
        v = f32(f / scale)
        v = max(min(v, 2.0**31), -(2.0**31))  # (int) of an out-of-range float is UB; clamp first
        return desc.zero_point + round_half_away_scalar(v)

    if fuse_code == 0:
        return qmin, qmax
    if fuse_code == 1:
        return max(qmin, quantize(0.0)), qmax
    if fuse_code == 2:
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    if fuse_code == 3:
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    raise ValueError(f"unknown fuse code {fuse_code}")


def dequantize_exact(q: torch.Tensor, zero_point: int, scale: float) -> torch.Tensor:
    """(q - zp) * scale in float64: exact for 8-bit values and a float32 ``scale`` (see f32)."""
    return (q.to(torch.float64) - zero_point) * scale


def quantize_real(
    y: torch.Tensor, zero_point: int, scale: float, lo: int, hi: int, dtype: torch.dtype
) -> torch.Tensor:
    """clamp(zp + round_half_away(y / scale), lo, hi) as ``dtype``; y is float64 (the float path
    of the "dequantize, compute, requantize" kernels, within half a quantum before clamping);
    ``scale`` is a float32 value (see f32)."""
    q = round_half_away(y.to(torch.float64) / scale) + zero_point
    return torch.clamp(q, lo, hi).to(dtype)


def quant_params(desc: OperandDesc) -> tuple[int, float, int, int, torch.dtype]:
    """(zero point, float32 scale, lo, hi, stored dtype) of a quantized operand."""
    lo, hi = quant_range(desc)
    return desc.zero_point, f32(desc.scale), lo, hi, TORCH_DTYPES[desc.code]
