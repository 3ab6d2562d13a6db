"""Quantized element-wise kernels: ADD, SUB, MUL (integer-exact, TFLite scheme), RELU/RELU1/RELU6
(integer clamp in the input's domain), and "dequantize, compute in float64, requantize" kernels
for the ops whose reference uses gemmlowp fixed-point approximations (LOGISTIC, TANH, SOFTMAX) or
integer kernels of its own (HARD_SWISH with int16 multipliers, PRELU with two requantizations).
Those five are not bit-exact with the reference. Their bound: dequantization is exact, float64
evaluation errs by ~1e-16 relative, and round-half-away requantization then lands within half an
output quantum of the real result clamped to the output's representable range; the tests check
one quantum.
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode, OperandCode
from .fixedpoint import (
    activation_range,
    dequantize_exact,
    f32,
    multiply_by_quantized_multiplier,
    quant_params,
    quantize_multiplier,
    quantize_real,
)
from .registry import QUANT8_CODES, Bound, CheckArgs, In, KernelCall, bound

_LEFT_SHIFT = 20
_SIGNED = OperandCode.TENSOR_QUANT8_ASYMM_SIGNED
#: Output (scale, zero point) the reference demands, per op and signedness.
MANDATED = {
    OpCode.LOGISTIC: {False: (1.0 / 256, 0), True: (1.0 / 256, -128)},
    OpCode.SOFTMAX: {False: (1.0 / 256, 0), True: (1.0 / 256, -128)},
    OpCode.TANH: {False: (1.0 / 128, 128), True: (1.0 / 128, 0)},
}
_RELU_FUSE = {OpCode.RELU: 1, OpCode.RELU1: 2, OpCode.RELU6: 3}


def add_sub_multipliers(s1: float, s2: float, s_out: float) -> tuple[float, float, float]:
    """Real multipliers of the TFLite ADD scheme: inputs s_i / (2 max), output 2 max / (2^20 s_out)."""
    twice_max = 2.0 * max(f32(s1), f32(s2))
    return f32(s1) / twice_max, f32(s2) / twice_max, twice_max / ((1 << _LEFT_SHIFT) * f32(s_out))


def mul_multiplier(s1: float, s2: float, s_out: float) -> float:
    return f32(f32(s1) * f32(s2)) / f32(s_out)


def _below_one(name: str, real: float) -> str | None:
    if not 0.0 < real < 1.0:
        return f"{name} multiplier {real:g} must be in (0, 1); the output scale is too small"
    return None


def check_binary_quant(args: CheckArgs) -> str | None:
    """The reference quantizes these multipliers with QuantizeMultiplierSmallerThanOneExp."""
    a, b, out = args.inputs[0], args.inputs[1], args.outputs[0]
    if a.code not in QUANT8_CODES:
        return None
    if args.op == OpCode.MUL:
        return _below_one("MUL", mul_multiplier(a.scale, b.scale, out.scale))
    if args.op in (OpCode.ADD, OpCode.SUB):
        return _below_one("output", add_sub_multipliers(a.scale, b.scale, out.scale)[2])
    return None


def check_mandated(args: CheckArgs) -> str | None:
    """LOGISTIC / SOFTMAX / TANH quantized outputs have fixed scale and zero point."""
    x, out = args.inputs[0], args.outputs[0]
    if x.code not in QUANT8_CODES:
        return None
    scale, zp = MANDATED[OpCode(args.op)][x.code == _SIGNED]
    if (f32(out.scale), out.zero_point) != (scale, zp):
        return f"quantized output must have scale {scale:g} and zero point {zp}"
    return None


def quant_add_sub(
    a: torch.Tensor,
    b: torch.Tensor,
    zp_a: int,
    zp_b: int,
    mult_a: tuple[int, int],
    mult_b: tuple[int, int],
    mult_out: tuple[int, int],
    zp_out: int,
    lo: int,
    hi: int,
) -> torch.Tensor:
    """TFLite quantized Add (broadcasting): each centered input << 20 is scaled by its multiplier,
    the int32 sum is scaled by the output multiplier. SUB passes input 2's multiplier negated."""
    sa = multiply_by_quantized_multiplier((a.to(torch.int64) - zp_a) << 20, mult_a[0], mult_a[1])
    sb = multiply_by_quantized_multiplier((b.to(torch.int64) - zp_b) << 20, mult_b[0], mult_b[1])
    raw = multiply_by_quantized_multiplier(sa + sb, mult_out[0], mult_out[1]) + zp_out
    return torch.clamp(raw, lo, hi)


def quant_mul(
    a: torch.Tensor,
    b: torch.Tensor,
    zp_a: int,
    zp_b: int,
    mult: tuple[int, int],
    zp_out: int,
    lo: int,
    hi: int,
) -> torch.Tensor:
    """TFLite quantized Mul (broadcasting): MBQM((a - zp_a) * (b - zp_b)) + zp_out, clamped."""
    prod = (a.to(torch.int64) - zp_a) * (b.to(torch.int64) - zp_b)
    return torch.clamp(multiply_by_quantized_multiplier(prod, mult[0], mult[1]) + zp_out, lo, hi)


def quant_add_sub_cast(
    a: torch.Tensor,
    b: torch.Tensor,
    zp_a: int,
    zp_b: int,
    mult_a: tuple[int, int],
    mult_b: tuple[int, int],
    mult_out: tuple[int, int],
    zp_out: int,
    lo: int,
    hi: int,
) -> torch.Tensor:
    return quant_add_sub(a, b, zp_a, zp_b, mult_a, mult_b, mult_out, zp_out, lo, hi).to(a.dtype)


def quant_mul_cast(
    a: torch.Tensor,
    b: torch.Tensor,
    zp_a: int,
    zp_b: int,
    mult: tuple[int, int],
    zp_out: int,
    lo: int,
    hi: int,
) -> torch.Tensor:
    return quant_mul(a, b, zp_a, zp_b, mult, zp_out, lo, hi).to(a.dtype)


def bind_quant_binary(call: KernelCall, fuse_code: int) -> Bound:
    da, db, out = call.input_descs[0], call.input_descs[1], call.output_descs[0]
    lo, hi = activation_range(fuse_code, out)
    if call.op == OpCode.MUL:
        mult = quantize_multiplier(mul_multiplier(da.scale, db.scale, out.scale))
        return bound(quant_mul_cast, In(0), In(1), da.zero_point, db.zero_point, mult, out.zero_point, lo, hi)
    if call.op not in (OpCode.ADD, OpCode.SUB):
        raise ValueError(f"no quantized kernel for {OpCode(call.op).name}")
    reals = add_sub_multipliers(da.scale, db.scale, out.scale)
    if any(_below_one("", r) for r in reals):
        raise ValueError(f"multipliers {reals} must be in (0, 1)")
    ma, mb, mo = (quantize_multiplier(r) for r in reals)
    if call.op == OpCode.SUB:
        mb = (-mb[0], mb[1])
    zps = (da.zero_point, db.zero_point)
    return bound(quant_add_sub_cast, In(0), In(1), *zps, ma, mb, mo, out.zero_point, lo, hi)


def quant_clamp(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Clamp stored quantized values to [lo, hi], keeping their dtype."""
    return torch.clamp(x.to(torch.int64), lo, hi).to(x.dtype)


def bind_quant_relu(call: KernelCall) -> Bound:
    """RELU/RELU1/RELU6 clamp the stored values to the activation's range in the input's domain."""
    lo, hi = activation_range(_RELU_FUSE[OpCode(call.op)], call.input_descs[0])
    return bound(quant_clamp, In(0), lo, hi)


def hard_swish64(x: torch.Tensor) -> torch.Tensor:
    return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


QParams = tuple[int, float, int, int, torch.dtype]


def quant_unary(x: torch.Tensor, op: str, zp_in: int, scale_in: float, out: QParams) -> torch.Tensor:
    """LOGISTIC, TANH, HARD_SWISH: dequantize exactly to float64, apply, requantize into ``out``
    = (zero point, scale, lo, hi, dtype), rounding half away."""
    v = dequantize_exact(x, zp_in, scale_in)
    if op == "logistic":
        y = torch.sigmoid(v)
    elif op == "tanh":
        y = torch.tanh(v)
    elif op == "hard_swish":
        y = hard_swish64(v)
    else:
        raise ValueError("no quantized unary kernel for " + op)
    return quantize_real(y, out[0], out[1], out[2], out[3], out[4])


def bind_quant_unary(call: KernelCall) -> Bound:
    x = call.input_descs[0]
    out = quant_params(call.output_descs[0])
    return bound(quant_unary, In(0), OpCode(call.op).name.lower(), x.zero_point, f32(x.scale), out)


def quant_prelu(
    x: torch.Tensor, alpha: torch.Tensor, zp_x: int, scale_x: float, zp_a: int, scale_a: float, out: QParams
) -> torch.Tensor:
    a = dequantize_exact(alpha, zp_a, scale_a)
    v = dequantize_exact(x, zp_x, scale_x)
    return quantize_real(torch.where(v >= 0, v, a * v), out[0], out[1], out[2], out[3], out[4])


def bind_quant_prelu(call: KernelCall) -> Bound:
    x, a = call.input_descs[0], call.input_descs[1]
    out = quant_params(call.output_descs[0])
    return bound(quant_prelu, In(0), In(1), x.zero_point, f32(x.scale), a.zero_point, f32(a.scale), out)


def quant_softmax(
    x: torch.Tensor, beta: float, axis: int, zp_in: int, scale_in: float, out: QParams
) -> torch.Tensor:
    """exp(beta (x - max)) / sum along ``axis`` in float64 (beta > 0, so the max commutes)."""
    v = dequantize_exact(x, zp_in, scale_in)
    return quantize_real(torch.softmax(v * beta, dim=axis), out[0], out[1], out[2], out[3], out[4])


def bind_quant_softmax(call: KernelCall, beta: float, axis: int) -> Bound:
    x = call.input_descs[0]
    out = quant_params(call.output_descs[0])
    return bound(quant_softmax, In(0), beta, axis, x.zero_point, f32(x.scale), out)
