"""Math: sqrt, rsqrt, exp, log, sin, abs, floor, reciprocal, square, maximum/minimum of two tensors,
clamp_min/clamp_max, addcmul/addcdiv, pow with the scalar exponents PyTorch itself special-cases,
sum (REDUCE_SUM), vector norms (p = 1, 2) and F.normalize.

``x ** 2`` (StarReLU in timm's PoolFormer/MetaFormer), ``x ** 0.5`` and ``x ** -1`` are what
models write; PyTorch computes those as ``x * x``, ``x * x * x``, ``sqrt``, ``rsqrt``, ``1 / x``
and ``1 / (x * x)``, and so do we (bit for bit where NNAPI's op rounds like PyTorch's). Other
exponents are refused (NNAPI's POW is not implemented by the virtual device).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F

from ...ir import ops
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import axis, value
from .activation import _aten, clamp_value, unary


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


@converter(*unary("sin"), sig=lambda input: None)
def sin(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Sin, x=_float(a["input"]))


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


@converter(torch.clamp_min, "clamp_min", "clamp_min_", *_aten("clamp_min.default", "clamp_min_.default"),
           sig=lambda input, min: None)
def clamp_min(ctx: Ctx, a: dict) -> Any:
    if not isinstance(a["min"], int | float):
        raise Refuse("clamp_min bound must be a number")
    return clamp_value(ctx, a["input"], a["min"], None)


@converter(torch.clamp_max, "clamp_max", "clamp_max_", *_aten("clamp_max.default", "clamp_max_.default"),
           sig=lambda input, max: None)
def clamp_max(ctx: Ctx, a: dict) -> Any:
    if not isinstance(a["max"], int | float):
        raise Refuse("clamp_max bound must be a number")
    return clamp_value(ctx, a["input"], None, a["max"])


def _operands(ctx: Ctx, *xs: Any) -> list[Value]:
    if not any(isinstance(x, Value) for x in xs):
        raise Refuse("no operand is a tensor computed from the inputs")
    return [ctx.tensor(x) for x in xs]


@converter(torch.addcmul, "addcmul", "addcmul_", *_aten("addcmul.default", "addcmul_.default"),
           sig=lambda input, tensor1, tensor2, value=1: None)
def addcmul(ctx: Ctx, a: dict) -> Any:
    """input + value * tensor1 * tensor2, multiplied in PyTorch's order."""
    x, t1, t2 = _operands(ctx, a["input"], a["tensor1"], a["tensor2"])
    if a["value"] != 1:
        t1 = ctx.emit(ops.Mul, a=ctx.tensor(float(a["value"])), b=t1)
    return ctx.emit(ops.Add, a=x, b=ctx.emit(ops.Mul, a=t1, b=t2))


@converter(torch.addcdiv, "addcdiv", "addcdiv_", *_aten("addcdiv.default", "addcdiv_.default"),
           sig=lambda input, tensor1, tensor2, value=1: None)
def addcdiv(ctx: Ctx, a: dict) -> Any:
    """input + value * tensor1 / tensor2, in PyTorch's order."""
    x, t1, t2 = _operands(ctx, a["input"], a["tensor1"], a["tensor2"])
    if a["value"] != 1:
        t1 = ctx.emit(ops.Mul, a=ctx.tensor(float(a["value"])), b=t1)
    return ctx.emit(ops.Add, a=x, b=ctx.emit(ops.Div, a=t1, b=t2))


def _axes(x: Value, dim: Any) -> tuple[int, ...]:
    r = x.type.rank
    if dim is None or dim == [] or dim == ():
        return tuple(range(r))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return tuple(sorted({axis(d, r) for d in dims}))


def _to_example(ctx: Ctx, y: Value) -> Value:
    """A full reduction to a 0-d tensor is carried as shape [1]."""
    want = tuple(ctx.example.shape) or (1,)
    return y if tuple(y.type.shape) == want else ctx.emit(ops.Reshape, x=y, shape=want)


@converter(torch.sum, "sum", *_aten("sum.dim_IntList", "sum.default"),
           sig=lambda input, dim=None, keepdim=False, dtype=None: None)
def sum_(ctx: Ctx, a: dict) -> Any:
    x = _float(a["input"])
    if a["dtype"] not in (None, torch.float32):
        raise Refuse(f"sum with dtype={a['dtype']} is not supported")
    y = ctx.emit(ops.ReduceSum, x=x, axes=_axes(x, a["dim"]), keep_dims=bool(a["keepdim"]))
    return _to_example(ctx, y)


def vector_norm(ctx: Ctx, x: Value, p: Any, dim: Any, keepdim: bool) -> Value:
    """sum(|x|^p)^(1/p) for p = 1 and 2 ("fro" is 2 over vectors)."""
    if p in ("fro", 2, 2.0):
        sq = ctx.emit(ops.ReduceSum, x=ctx.emit(ops.Mul, a=x, b=x), axes=_axes(x, dim), keep_dims=keepdim)
        return ctx.emit(ops.Sqrt, x=sq)
    if p in (1, 1.0):
        return ctx.emit(ops.ReduceSum, x=ctx.emit(ops.Abs, x=x), axes=_axes(x, dim), keep_dims=keepdim)
    raise Refuse(f"norm with p={p!r} is not supported (1, 2 and 'fro' are)")


@converter(torch.norm, "norm", *_aten("norm.ScalarOpt_dim", "norm.Scalar"),
           sig=lambda input, p="fro", dim=None, keepdim=False, out=None, dtype=None: None)
def norm(ctx: Ctx, a: dict) -> Any:
    if a["dtype"] not in (None, torch.float32):
        raise Refuse(f"norm with dtype={a['dtype']} is not supported")
    if a["p"] is None:
        a = {**a, "p": 2}
    return _to_example(ctx, vector_norm(ctx, _float(a["input"]), a["p"], a["dim"], bool(a["keepdim"])))


@converter(torch.linalg.vector_norm, *_aten("linalg_vector_norm.default"),
           sig=lambda input, ord=2, dim=None, keepdim=False, dtype=None: None)
def linalg_vector_norm(ctx: Ctx, a: dict) -> Any:
    if a["dtype"] not in (None, torch.float32):
        raise Refuse(f"vector_norm with dtype={a['dtype']} is not supported")
    return _to_example(ctx, vector_norm(ctx, _float(a["input"]), a["ord"], a["dim"], bool(a["keepdim"])))


@converter(F.normalize, sig=lambda input, p=2.0, dim=1, eps=1e-12, out=None: None)
def normalize(ctx: Ctx, a: dict) -> Any:
    """x / max(norm(x, p, dim, keepdim=True), eps), as F.normalize computes it."""
    if a["out"] is not None:
        raise Refuse("F.normalize with out= is not supported")
    x = _float(a["input"])
    n = vector_norm(ctx, x, a["p"], a["dim"], True)
    n = ctx.emit(ops.Maximum, a=n, b=ctx.tensor(float(a["eps"])))
    return ctx.emit(ops.Div, a=x, b=n)
