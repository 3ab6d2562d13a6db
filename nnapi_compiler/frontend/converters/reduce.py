"""Reductions along axes: mean (MEAN), amax / amin / prod (REDUCE_MAX / MIN / PROD), any / all
(REDUCE_ANY / ALL), softmax and log_softmax (SOFTMAX / LOG_SOFTMAX).

Axes are logical (PyTorch's) here; the layout pass maps them to physical axes when it stores a
tensor NHWC (every reduction is a ``Mean`` subclass for that pass). ``any`` / ``all`` of float or
int32 data first compare with zero (NOT_EQUAL), which is what PyTorch's truth value is.

A quantized mean over height and/or width becomes AVERAGE_POOL_2D with the whole axis as its
window, as adaptive pooling to 1x1 does: NNAPI's quantized MEAN truncates the average (one
quantum low on half the outputs), AVERAGE_POOL_2D rounds to nearest, as PyTorch does (bit-exact
against qnnpack). A quantized mean over other axes stays MEAN: PyTorch's own kernel for those
rounds differently again, and pooling them would not be exact either (within one quantum).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.codes import OperandCode
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import axis, value
from .activation import _aten


@converter(torch.mean, "mean", *_aten("mean.dim", "mean.default"),
           sig=lambda input, dim=None, keepdim=False, dtype=None: None)
def mean(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    if a["dtype"] not in (None, torch.float32):
        raise Refuse(f"mean with dtype={a['dtype']} is not supported")
    r = x.type.rank
    dims = a["dim"]
    axes = list(range(r)) if dims is None or dims == [] else (
        [dims] if isinstance(dims, int) else list(dims))
    norm = {axis(d, r) for d in axes}
    if x.type.quant is not None and r == 4 and norm <= {2, 3}:
        y = _quantized_mean(ctx, x, norm)
    else:
        y = ctx.emit(ops.Mean, x=x, axes=tuple(sorted(norm)), keep_dims=bool(a["keepdim"]))
    if tuple(y.type.shape) != tuple(ctx.example.shape):  # full reduction to a 0-d tensor
        y = ctx.emit(ops.Reshape, x=y, shape=tuple(ctx.example.shape) or (1,))
    return y


def _quantized_mean(ctx: Ctx, x: Any, axes: set[int]) -> Any:
    """Mean over height and/or width of an NCHW quantized tensor as AVERAGE_POOL_2D (keepdim)."""
    _, _, h, w = x.type.shape
    k = ops.HW(h if 2 in axes else 1, w if 3 in axes else 1)
    return ctx.emit(ops.AveragePool2d, input=x, kernel=k, stride=k)


def _softmax(ctx: Ctx, a: dict, cls: type[ops.Softmax]) -> Any:
    x = value(a["input"])
    dim = a["dim"]
    if dim is None:  # deprecated but defined: PyTorch's implicit choice (F._get_softmax_dim)
        dim = 0 if x.type.rank in (0, 1, 3) else 1
    if x.type.rank > 4:
        raise Refuse("softmax beyond rank 4 has no NNAPI form")
    return ctx.emit(cls, x=x, axis=axis(dim, x.type.rank))


@converter(F.softmax, torch.softmax, "softmax", *_aten("softmax.int", "_softmax.default"),
           sig=lambda input, dim=None, *rest, **kw: None,
           modules={nn.Softmax: lambda m: {"dim": m.dim}, nn.Softmax2d: lambda m: {"dim": -3}})
def softmax(ctx: Ctx, a: dict) -> Any:
    return _softmax(ctx, a, ops.Softmax)


@converter(F.log_softmax, torch.log_softmax, "log_softmax",
           *_aten("log_softmax.int", "_log_softmax.default"),
           sig=lambda input, dim=None, *rest, **kw: None,
           modules={nn.LogSoftmax: lambda m: {"dim": m.dim}})
def log_softmax(ctx: Ctx, a: dict) -> Any:
    return _softmax(ctx, a, ops.LogSoftmax)


def reduce_axes(x: Value, dim: Any) -> tuple[int, ...]:
    """Logical axes of a reduction; no dim (None, [] or ()) means all of them, as in PyTorch."""
    r = x.type.rank
    if dim is None or dim == [] or dim == ():
        return tuple(range(r))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return tuple(sorted({axis(d, r) for d in dims}))


def _reduce(ctx: Ctx, cls: type[ops.Mean], x: Value, dim: Any, keepdim: bool) -> Value:
    if x.type.rank > 4:
        raise Refuse(f"reduction of a rank-{x.type.rank} tensor has no NNAPI form")
    y = ctx.emit(cls, x=x, axes=reduce_axes(x, dim), keep_dims=bool(keepdim))
    want = tuple(ctx.example.shape) or (1,)
    return y if tuple(y.type.shape) == want else ctx.emit(ops.Reshape, x=y, shape=want)


def _float_or_quant(x: Any) -> Value:
    v = value(x)
    if v.type.code not in (OperandCode.TENSOR_FLOAT32, OperandCode.TENSOR_QUANT8_ASYMM):
        raise Refuse(f"{v.type.code.name} input is not supported (REDUCE_MAX/MIN take float "
                     "and quant8)")
    return v


_AMAX_SIG = lambda input, dim=(), keepdim=False: None  # noqa: E731


@converter(torch.amax, "amax", *_aten("amax.default"), sig=_AMAX_SIG)
def amax(ctx: Ctx, a: dict) -> Any:
    """REDUCE_MAX: exact (a quantized result keeps the input's scale and zero point, as
    PyTorch's does)."""
    return _reduce(ctx, ops.ReduceMax, _float_or_quant(a["input"]), a["dim"], a["keepdim"])


@converter(torch.amin, "amin", *_aten("amin.default"), sig=_AMAX_SIG)
def amin(ctx: Ctx, a: dict) -> Any:
    return _reduce(ctx, ops.ReduceMin, _float_or_quant(a["input"]), a["dim"], a["keepdim"])


@converter(torch.prod, "prod", *_aten("prod.dim_int", "prod.default"),
           sig=lambda input, dim=None, keepdim=False, dtype=None: None)
def prod(ctx: Ctx, a: dict) -> Any:
    """REDUCE_PROD of float32 data (products are rounded per step, possibly in another order
    than PyTorch's, so results agree to float32 rounding, not bit for bit)."""
    x = value(a["input"])
    if x.type.code != OperandCode.TENSOR_FLOAT32 or a["dtype"] not in (None, torch.float32):
        raise Refuse("prod of non-float32 data is not supported (REDUCE_PROD takes float)")
    return _reduce(ctx, ops.ReduceProd, x, a["dim"], a["keepdim"])


def _truth(ctx: Ctx, x: Any) -> Value:
    """A bool tensor as it is; float32 / int32 data as ``x != 0`` (NaN is true, as in PyTorch)."""
    v = value(x)
    code = v.type.code
    if code == OperandCode.TENSOR_BOOL8:
        return v
    if code == OperandCode.TENSOR_FLOAT32:
        return ctx.emit(ops.NotEqual, a=v, b=ctx.const(torch.zeros(1)))
    if code == OperandCode.TENSOR_INT32:
        return ctx.emit(ops.NotEqual, a=v, b=ctx.const(torch.zeros(1, dtype=torch.int32)))
    raise Refuse(f"any/all of {code.name} is not supported")


_ANY_SIG = lambda input, dim=None, keepdim=False: None  # noqa: E731


@converter(torch.any, "any", *_aten("any.default", "any.dim", "any.dims"), sig=_ANY_SIG, typed=True)
def any_(ctx: Ctx, a: dict) -> Any:
    return _reduce(ctx, ops.ReduceAny, _truth(ctx, a["input"]), a["dim"], a["keepdim"])


@converter(torch.all, "all", *_aten("all.default", "all.dim", "all.dims"), sig=_ANY_SIG, typed=True)
def all_(ctx: Ctx, a: dict) -> Any:
    return _reduce(ctx, ops.ReduceAll, _truth(ctx, a["input"]), a["dim"], a["keepdim"])
