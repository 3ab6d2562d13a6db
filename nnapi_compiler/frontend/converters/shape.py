"""Shape ops: view/reshape/flatten/squeeze/unsqueeze (one RESHAPE to the static shape),
permute/transpose (TRANSPOSE) and cat (CONCATENATION)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...ir import ops
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import axis, dims_arg, value
from .activation import _aten


def reshape_to(ctx: Ctx, x: Any, shape: tuple[int, ...]) -> Any:
    x = value(x)
    if tuple(x.type.shape) == tuple(shape):
        return x
    if len(shape) > 4:
        raise Refuse(f"reshape to rank {len(shape)} (> 4) has no NNAPI form")
    return ctx.emit(ops.Reshape, x=x, shape=tuple(shape))


@converter(torch.reshape, "view", "reshape", "view_as", "reshape_as", "flatten", "squeeze",
           "unsqueeze", "squeeze_", "unsqueeze_", torch.flatten, torch.squeeze, torch.unsqueeze,
           *_aten("view.default", "reshape.default", "_unsafe_view.default", "flatten.using_ints",
                  "squeeze.dim", "squeeze.dims", "squeeze.default", "unsqueeze.default",
                  "squeeze_.dim", "unsqueeze_.default"),
           sig=lambda input, *args, **kwargs: None,
           modules={nn.Flatten: lambda m: {}, nn.Unflatten: lambda m: {}})
def reshape(ctx: Ctx, a: dict) -> Any:
    # Shapes are static: the result shape is the example's, whatever the spelling computed.
    return reshape_to(ctx, a["input"], tuple(ctx.example.shape))


@converter(torch.permute, "permute", *_aten("permute.default"),
           sig=lambda input, *dims: None)
def permute(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    perm = [axis(d, x.type.rank) for d in dims_arg(a["dims"])]
    if perm == list(range(x.type.rank)):
        return x
    return ctx.emit(ops.Transpose, x=x, perm=tuple(perm))


@converter(torch.transpose, "transpose", "transpose_", *_aten("transpose.int"),
           sig=lambda input, dim0, dim1: None)
def transpose(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    r = x.type.rank
    d0, d1 = axis(a["dim0"], r), axis(a["dim1"], r)
    perm = list(range(r))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    if d0 == d1:
        return x
    return ctx.emit(ops.Transpose, x=x, perm=tuple(perm))


@converter(torch.t, "t", *_aten("t.default"), sig=lambda input: None)
def t(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    if x.type.rank < 2:
        return x
    return ctx.emit(ops.Transpose, x=x, perm=(1, 0))


@converter(torch.cat, torch.concat, torch.concatenate, *_aten("cat.default"),
           sig=lambda tensors, dim=0: None)
def cat(ctx: Ctx, a: dict) -> Any:
    xs = [ctx.tensor(t) for t in a["tensors"]]
    ex = [x for x in xs if x.type.numel]  # torch skips empty inputs
    if len(ex) == 1:
        return ex[0]
    return ctx.emit(ops.Concatenation, xs=tuple(ex), axis=axis(a["dim"], xs[0].type.rank))


@converter(torch.channel_shuffle, *_aten("channel_shuffle.default", "native_channel_shuffle.default"),
           sig=lambda input, groups: None,
           modules={nn.ChannelShuffle: lambda m: {"groups": m.groups}})
def channel_shuffle(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    if x.type.rank < 2:
        raise Refuse("channel shuffle needs a channel dim")
    return ctx.emit(ops.ChannelShuffle, x=x, groups=int(a["groups"]), axis=1)
