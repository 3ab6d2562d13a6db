"""Shape ops: view/reshape/flatten/squeeze/unsqueeze (one RESHAPE to the static shape),
permute/transpose (TRANSPOSE), cat and stack (CONCATENATION), expand (TILE), channel shuffle,
and pixel shuffle / unshuffle (DEPTH_TO_SPACE / SPACE_TO_DEPTH with a channel GATHER)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.codes import OperandCode
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


@converter(torch.stack, *_aten("stack.default"), sig=lambda tensors, dim=0: None)
def stack(ctx: Ctx, a: dict) -> Any:
    """Each input reshaped with a 1 inserted at ``dim``, then one CONCATENATION."""
    xs = [ctx.tensor(t) for t in a["tensors"]]
    d = axis(a["dim"], xs[0].type.rank + 1)
    parts = []
    for x in xs:
        shape = list(x.type.shape)
        shape.insert(d, 1)
        parts.append(reshape_to(ctx, x, tuple(shape)))
    if len(parts) == 1:
        return parts[0]
    return ctx.emit(ops.Concatenation, xs=tuple(parts), axis=d)


# PyTorch's pixel shuffle reads channel c * r^2 + i * r + j for output channel c at offset (i, j)
# of each block; NNAPI's DEPTH_TO_SPACE reads channel (i * r + j) * C + c. A constant channel
# GATHER (FL3) before DEPTH_TO_SPACE (or after SPACE_TO_DEPTH) maps one order to the other.


def _dcr_order(c_out: int, r: int) -> tuple[int, ...]:
    """Source channel (PyTorch order) of each channel in NNAPI's depth-to-space order."""
    return tuple(c * r * r + k for k in range(r * r) for c in range(c_out))


@converter(torch.pixel_shuffle, F.pixel_shuffle, *_aten("pixel_shuffle.default"),
           sig=lambda input, upscale_factor: None,
           modules={nn.PixelShuffle: lambda m: {"upscale_factor": m.upscale_factor}})
def pixel_shuffle(ctx: Ctx, a: dict) -> Any:
    x, r = value(a["input"]), int(a["upscale_factor"])
    if x.type.rank != 4:
        raise Refuse("pixel_shuffle is lowered for 4-D NCHW tensors only")
    if r == 1:
        return x
    c_out = x.type.shape[1] // (r * r)
    if c_out > 1:
        x = ctx.emit(ops.Gather, x=x, axis=1, indices=_dcr_order(c_out, r))
    return ctx.emit(ops.DepthToSpace, x=x, block=r)


@converter(torch.pixel_unshuffle, F.pixel_unshuffle, *_aten("pixel_unshuffle.default"),
           sig=lambda input, downscale_factor: None,
           modules={nn.PixelUnshuffle: lambda m: {"downscale_factor": m.downscale_factor}})
def pixel_unshuffle(ctx: Ctx, a: dict) -> Any:
    x, r = value(a["input"]), int(a["downscale_factor"])
    if x.type.rank != 4:
        raise Refuse("pixel_unshuffle is lowered for 4-D NCHW tensors only")
    if r == 1:
        return x
    c = x.type.shape[1]
    y = ctx.emit(ops.SpaceToDepth, x=x, block=r)
    if c == 1:
        return y
    order = _dcr_order(c, r)  # NNAPI channel p holds PyTorch channel order[p]
    inverse = [0] * len(order)
    for p, src in enumerate(order):
        inverse[src] = p
    return ctx.emit(ops.Gather, x=y, axis=1, indices=tuple(inverse))


@converter("expand", "expand_as", torch.broadcast_to, "broadcast_to",
           *_aten("expand.default", "expand_as.default", "broadcast_to.default"),
           sig=lambda input, *args, **kwargs: None, typed=True)
def expand(ctx: Ctx, a: dict) -> Any:
    """Broadcast to the example's shape: a RESHAPE adding leading 1s, then TILE along the
    size-1 dims (data movement, exact for float, int32 and quantized data alike; bool, which
    TILE does not take, is LOGICAL_OR with false)."""
    x = value(a["input"])
    target = tuple(ctx.example.shape)
    if tuple(x.type.shape) == target:
        return x
    if len(target) > 4:
        raise Refuse(f"expand to rank {len(target)} (> 4) has no NNAPI form")
    src = (1,) * (len(target) - x.type.rank) + tuple(x.type.shape)
    multiples = tuple(t if s == 1 else 1 for s, t in zip(src, target, strict=True))
    x = reshape_to(ctx, x, src)
    if x.type.code == OperandCode.TENSOR_BOOL8:
        return ctx.emit(ops.LogicalOr, a=x, b=ctx.const(torch.zeros(multiples, dtype=torch.bool)))
    return ctx.emit(ops.Tile, x=x, multiples=multiples)
