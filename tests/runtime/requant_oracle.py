"""An independent oracle for NNAPI's integer requantization, written from the reference's
definitions (TFLite QuantizeMultiplier, gemmlowp SaturatingRoundingDoublingHighMul and
RoundingDivideByPOT, CalculateActivationRange) in plain Python integers and exact fractions,
one element at a time: it shares no code with the kernels' ``fixedpoint`` helpers."""

from __future__ import annotations

import struct
from fractions import Fraction

import torch

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def to_f32(x: float) -> float:
    """Round a double to float32 and back (what a C ``float`` holds)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _round_half_away(q: Fraction) -> int:
    n = abs(q.numerator) * 2 + q.denominator
    magnitude = n // (2 * q.denominator)
    return magnitude if q >= 0 else -magnitude


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(m, shift): real = m * 2^(shift - 31) to 31 bits, m in [2^30, 2^31), exactly."""
    if real == 0:
        return 0, 0
    r, shift = Fraction(real), 0
    while r >= 1:
        r, shift = r / 2, shift + 1
    while r < Fraction(1, 2):
        r, shift = r * 2, shift - 1
    m = _round_half_away(r * 2**31)
    if m == 2**31:
        m, shift = m // 2, shift + 1
    if shift < -31:
        return 0, 0
    return m, shift


def _high_mul(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudged = ab + (2**30 if ab >= 0 else 1 - 2**30)
    return int(Fraction(nudged, 2**31))  # C division truncates toward zero; so does int()


def _divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder, threshold = x & mask, (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _wrap(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def requantize_one(total: int, m: int, shift: int, zp: int, lo: int, hi: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    shifted = min(max(_wrap(total) * 2**left, INT32_MIN), INT32_MAX)
    return min(max(_divide_by_pot(_high_mul(shifted, m), right) + zp, lo), hi)


def activation_range(fuse: int, scale: float, zp: int, qmin: int, qmax: int) -> tuple[int, int]:
    """The fuse code's clamp in the integer domain: zp + round_half_away(float32(f / scale))."""

    def q(f: float) -> int:
        return zp + _round_half_away(Fraction(to_f32(f / to_f32(scale))))

    lo, hi = {0: (None, None), 1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}[fuse]
    return (qmin if lo is None else max(qmin, q(lo)), qmax if hi is None else min(qmax, q(hi)))


def requantize(acc: torch.Tensor, bias: torch.Tensor, real: float, zp: int, lo: int, hi: int) -> torch.Tensor:
    """Element by element: acc (integer-valued) + bias, scaled by ``real``, plus zp, clamped."""
    m, shift = quantize_multiplier(real)
    flat = acc.round().to(torch.int64).reshape(-1, bias.numel() or 1)
    b = bias.tolist()
    out = [[requantize_one(int(a) + int(c), m, shift, zp, lo, hi) for a, c in zip(row, b, strict=True)]
           for row in flat.tolist()]
    return torch.tensor(out, dtype=torch.int64).reshape(acc.shape)
