"""Elementwise math: sqrt, rsqrt, exp, log, abs, floor, reciprocal, square, maximum/minimum of
two tensors, and pow with the scalar exponents PyTorch itself special-cases.

``x ** 2`` (StarReLU in timm's PoolFormer/MetaFormer), ``x ** 0.5`` and ``x ** -1`` are what
models write; PyTorch computes those as ``x * x``, ``x * x * x``, ``sqrt``, ``rsqrt``, ``1 / x``
and ``1 / (x * x)``, and so do we (bit for bit where NNAPI's op rounds like PyTorch's). Other
exponents are refused (NNAPI's POW is not implemented by the virtual device).
"""

from __future__ import annotations

import operator
from typing import Any

import torch

from ...ir import ops
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import value
from .activation import _aten, unary


def _float(x: Any) -> Value:
    v = value(x)
    if v.type.quant is not None:
        raise Refuse("quantized inputs are not supported by this op")
    return v


@converter(*unary("sqrt"), sig=lambda input: None)
def sqrt(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Sqrt, x=_float(a["input"]))


@converter(*unary("rsqrt"), sig=lambda input: None)
def rsqrt(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Rsqrt, x=_float(a["input"]))


@converter(*unary("exp"), sig=lambda input: None)
def exp(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Exp, x=_float(a["input"]))


@converter(*unary("log"), sig=lambda input: None)
def log(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Log, x=_float(a["input"]))


@converter(*unary("abs"), *unary("absolute"), sig=lambda input: None)
def abs_(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Abs, x=_float(a["input"]))


@converter(*unary("floor"), sig=lambda input: None)
def floor(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Floor, x=_float(a["input"]))


@converter(*unary("reciprocal"), sig=lambda input: None)
def reciprocal(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Div, a=ctx.tensor(1.0), b=_float(a["input"]))


@converter(*unary("square"), sig=lambda input: None)
def square(ctx: Ctx, a: dict) -> Any:
    x = _float(a["input"])
    return ctx.emit(ops.Mul, a=x, b=x)


@converter(torch.maximum, "maximum", *_aten("maximum.default"),
           sig=lambda input, other: None)
def maximum(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Maximum, a=ctx.tensor(a["input"]), b=ctx.tensor(a["other"]))


@converter(torch.minimum, "minimum", *_aten("minimum.default"), sig=lambda input, other: None)
def minimum(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Minimum, a=ctx.tensor(a["input"]), b=ctx.tensor(a["other"]))


def pow_value(ctx: Ctx, x: Value, e: float) -> Value:
    """x ** e for the exponents PyTorch's CPU kernel special-cases, computed the same way."""
    if e == 1:
        return x
    if e == 2:
        return ctx.emit(ops.Mul, a=x, b=x)
    if e == 3:
        return ctx.emit(ops.Mul, a=ctx.emit(ops.Mul, a=x, b=x), b=x)
    if e == 0.5:
        return ctx.emit(ops.Sqrt, x=x)
    if e == -0.5:
        return ctx.emit(ops.Rsqrt, x=x)
    if e == -1:
        return ctx.emit(ops.Div, a=ctx.tensor(1.0), b=x)
    if e == -2:
        return ctx.emit(ops.Div, a=ctx.tensor(1.0), b=ctx.emit(ops.Mul, a=x, b=x))
    raise Refuse(f"pow with exponent {e} is not supported (2, 3, 0.5, -0.5, -1, -2 are)")


@converter(*unary("pow"), operator.pow, operator.ipow, "__pow__", "__ipow__", *_aten("pow.Tensor_Scalar"),
           sig=lambda input, exponent: None)
def pow_(ctx: Ctx, a: dict) -> Any:
    e = a["exponent"]
    if isinstance(e, torch.Tensor) and e.numel() == 1 and not isinstance(e, Value):
        e = e.item()
    if isinstance(e, bool) or not isinstance(e, int | float):
        raise Refuse("pow needs a Python number exponent")
    return pow_value(ctx, _float(a["input"]), float(e))
