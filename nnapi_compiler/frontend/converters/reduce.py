"""Reductions along axes: mean (MEAN), softmax and log_softmax (SOFTMAX / LOG_SOFTMAX).

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
