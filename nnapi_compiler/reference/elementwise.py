"""Element-wise kernels: broadcast binary arithmetic, MAXIMUM/MINIMUM, POW, activations, PRELU.

Float math runs in float32 (FLOAT16 operands are widened and the interpreter narrows the result),
following the reference formulas term by term so results match it to rounding. Quantized
operands go to ``quant_elementwise``.
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode, OperandCode
from .common import fuse
from .fixedpoint import activation_range
from .quant_elementwise import (
    bind_quant_binary,
    bind_quant_prelu,
    bind_quant_relu,
    bind_quant_unary,
    check_binary_quant,
    check_mandated,
)
from .registry import FLOAT_TYPES, QUANT8_TYPES, Bound, CheckArgs, In, KernelCall, bound, kernel

_NUMERIC = FLOAT_TYPES | {"INT32"}
_QUANT = FLOAT_TYPES | QUANT8_TYPES
_ANY_RANK = (1, 64)


def _name(op: int) -> str:
    return OpCode(op).name.lower()


def _check_binary(args: CheckArgs) -> str | None:
    if args.inputs[0].code == OperandCode.TENSOR_INT32 and args.values[2] not in (None, 0):
        return "INT32 arithmetic requires fuse code NONE"
    return check_binary_quant(args)


def binary(op: str, a: torch.Tensor, b: torch.Tensor, fuse_code: int) -> torch.Tensor:
    """``op`` "add" / "sub" / "mul" / "div", NumPy broadcasting; INT32 DIV floors."""
    if a.dtype == torch.int32:
        if fuse_code != 0:
            raise ValueError("INT32 arithmetic requires fuse code NONE")
        if op == "add":
            return a + b
        if op == "sub":
            return a - b
        if op == "mul":
            return a * b
        return torch.div(a, b, rounding_mode="floor")
    x, y = a.float(), b.float()
    if op == "add":
        r = x + y
    elif op == "sub":
        r = x - y
    elif op == "mul":
        r = x * y
    else:
        r = x / y
    return fuse(r, fuse_code)


@kernel(
    OpCode.ADD,
    OpCode.SUB,
    OpCode.MUL,
    OpCode.DIV,
    inputs=["TTa"],
    types=_NUMERIC | QUANT8_TYPES,
    check=_check_binary,
)
def _binary(call: KernelCall) -> Bound:
    if call.quantized:
        return bind_quant_binary(call, call.int(2))
    return bound(binary, _name(call.op), In(0), In(1), call.int(2))


@kernel(OpCode.MAXIMUM, OpCode.MINIMUM, inputs=["TT"], types=_NUMERIC | QUANT8_TYPES, rank=_ANY_RANK)
def _max_min(call: KernelCall) -> Bound:
    if call.quantized:
        da, db, out = call.input_descs[0], call.input_descs[1], call.output_descs[0]
        lo, hi = activation_range(0, out)
        return bound(quant_max_min, In(0), In(1), da.scale, da.zero_point, db.scale, db.zero_point,
                     out.scale, out.zero_point, lo, hi, call.op == OpCode.MAXIMUM)
    return bound(max_min, In(0), In(1), call.op == OpCode.MAXIMUM)


def _requant8(q: torch.Tensor, s: float, z: int, so: float, zo: int, lo: int, hi: int) -> torch.Tensor:
    """The reference's requantize(): (q - z) * s / so + zo in double, std::round, clamped."""
    if s == so and z == zo:
        return q
    v = (q.double() - z) * s / so + zo
    v = torch.where(v < 0, torch.ceil(v - 0.5), torch.floor(v + 0.5))
    return v.clamp(lo, hi).to(q.dtype)


def quant_max_min(a: torch.Tensor, b: torch.Tensor, sa: float, za: int, sb: float, zb: int,
                  so: float, zo: int, lo: int, hi: int, is_max: bool) -> torch.Tensor:
    """Quantized MAXIMUM / MINIMUM: each input requantized to the output's parameters (a no-op
    when they are equal, as for a clamp), then compared; broadcasting."""
    x, y = _requant8(a, sa, za, so, zo, lo, hi), _requant8(b, sb, zb, so, zo, lo, hi)
    return torch.maximum(x, y) if is_max else torch.minimum(x, y)


def max_min(a: torch.Tensor, b: torch.Tensor, is_max: bool) -> torch.Tensor:
    """MAXIMUM / MINIMUM with broadcasting (float in float32, INT32 as is)."""
    if a.dtype != torch.int32:
        a, b = a.float(), b.float()
    return torch.maximum(a, b) if is_max else torch.minimum(a, b)


def unary(op: str, x: torch.Tensor) -> torch.Tensor:
    """Every one-input float activation / math op, by lower-case NNAPI op name."""
    x = x.float()
    if op == "relu":
        return torch.clamp_min(x, 0.0)
    if op == "relu1":
        return torch.clamp(x, -1.0, 1.0)
    if op == "relu6":
        return torch.clamp(x, 0.0, 6.0)
    if op == "logistic":
        return torch.sigmoid(x)
    if op == "tanh":
        return torch.tanh(x)
    if op == "hard_swish":
        return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0
    if op == "exp":
        return torch.exp(x)
    if op == "log":
        return torch.log(x)
    if op == "sqrt":
        return torch.sqrt(x)
    if op == "rsqrt":
        return torch.rsqrt(x)
    if op == "sin":
        return torch.sin(x)
    if op == "floor":
        return torch.floor(x)
    if op == "abs":
        return torch.abs(x)
    if op == "neg":
        return torch.neg(x)
    raise ValueError("no unary kernel for " + op)


@kernel(OpCode.RELU, OpCode.RELU1, OpCode.RELU6, inputs=["T"], types=_QUANT, keeps_quant=True)
def _relu(call: KernelCall) -> Bound:
    if call.quantized:
        return bind_quant_relu(call)
    return bound(unary, _name(call.op), In(0))


@kernel(OpCode.LOGISTIC, OpCode.TANH, inputs=["T"], types=_QUANT, check=check_mandated)
def _logistic_tanh(call: KernelCall) -> Bound:
    if call.quantized:
        return bind_quant_unary(call)
    return bound(unary, _name(call.op), In(0))


@kernel(OpCode.HARD_SWISH, inputs=["T"], types=_QUANT, rank=_ANY_RANK)
def _hard_swish(call: KernelCall) -> Bound:
    if call.quantized:
        return bind_quant_unary(call)
    return bound(unary, _name(call.op), In(0))


@kernel(OpCode.FLOOR, inputs=["T"])
def _floor(call: KernelCall) -> Bound:
    return bound(unary, _name(call.op), In(0))


@kernel(
    OpCode.EXP,
    OpCode.LOG,
    OpCode.SQRT,
    OpCode.RSQRT,
    OpCode.SIN,
    inputs=["T"],
    rank=_ANY_RANK,
)
def _math(call: KernelCall) -> Bound:
    return bound(unary, _name(call.op), In(0))


@kernel(OpCode.ABS, OpCode.NEG, inputs=["T"], types=_NUMERIC, rank=_ANY_RANK)
def _abs_neg(call: KernelCall) -> Bound:
    return bound(abs_neg, In(0), call.op == OpCode.ABS)


def abs_neg(x: torch.Tensor, is_abs: bool) -> torch.Tensor:
    """ABS / NEG: INT32 as is, float in float32."""
    if x.dtype == torch.int32:
        return torch.abs(x) if is_abs else torch.neg(x)
    return unary("abs" if is_abs else "neg", x)


def elu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """ELU as the reference writes it: x if x >= 0 else alpha * (exp(x) - 1)."""
    x = x.float()
    return torch.where(x < 0, alpha * (torch.exp(x) - 1.0), x)


@kernel(OpCode.ELU, inputs=["Tf"], rank=_ANY_RANK)
def _elu(call: KernelCall) -> Bound:
    return bound(elu, In(0), call.float(1))


def prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """x where x >= 0, else alpha * x; alpha broadcasts against x."""
    x, alpha = x.float(), alpha.float()
    return torch.where(x >= 0, x, alpha * x)


@kernel(OpCode.PRELU, inputs=["TT"], rank=_ANY_RANK, types=_QUANT)
def _prelu(call: KernelCall) -> Bound:
    if call.quantized:
        return bind_quant_prelu(call)
    return bound(prelu, In(0), In(1))


def power(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """POW: std::pow(a, b) element by element in float32, broadcasting (NaN for a negative base
    with a non-integer exponent)."""
    return torch.pow(a.float(), b.float())


@kernel(OpCode.POW, inputs=["TT"], rank=_ANY_RANK)
def _pow(call: KernelCall) -> Bound:
    return bound(power, In(0), In(1))
