"""Indexing and padding: ``x[...]`` with ints, slices (with steps), None and Ellipsis;
narrow/select/slice spellings (STRIDED_SLICE), and constant F.pad (PAD / PAD_V2)."""

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
from .activation import _aten
from .shape import reshape_to


def strided_slice(ctx: Ctx, x: Value, dims: dict[int, slice | int]) -> Any:
    """Slice ``x`` with a per-dim slice or int (an int drops the dim); then match the example."""
    shape = x.type.shape
    begin, end, strides, shrink = [], [], [], 0
    for d, size in enumerate(shape):
        s = dims.get(d, slice(None))
        if isinstance(s, int):
            i = s + size if s < 0 else s
            if not 0 <= i < size:
                raise Refuse(f"index {s} out of range for dim {d} of size {size}")
            begin.append(i)
            end.append(i + 1)
            strides.append(1)
            shrink |= 1 << d
        else:
            if s.step is not None and s.step <= 0:
                raise Refuse("slice steps must be positive")
            b, e, st = s.indices(size)
            begin.append(b)
            end.append(max(b, e))
            strides.append(st)
    if begin == [0] * len(shape) and end == list(shape) and set(strides) <= {1} and not shrink:
        y = x
    else:
        y = ctx.emit(ops.StridedSlice, x=x, begin=tuple(begin), end=tuple(end),
                     strides=tuple(strides), shrink_mask=shrink)
    return reshape_to(ctx, y, tuple(ctx.example.shape))


@converter(operator.getitem, sig=lambda input, index: None)
def getitem(ctx: Ctx, a: dict) -> Any:
    x, idx = a["input"], a["index"]
    if isinstance(x, list | tuple):
        return x[idx]  # element of a multi-result op (e.g. chunk/split)
    x = value(x)
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(isinstance(i, Value | torch.Tensor | list) for i in idx):
        raise Refuse("advanced (tensor/list) indexing is not supported")
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    dims: dict[int, slice | int] = {}
    d = 0
    for i in idx:
        if i is Ellipsis:
            d += x.type.rank - n_real
        elif i is None:
            continue  # new axes come back with the final reshape
        else:
            if not isinstance(i, int | slice):
                raise Refuse(f"unsupported index {i!r}")
            dims[d] = i
            d += 1
    return strided_slice(ctx, x, dims)


@converter(*_aten("slice.Tensor"), sig=lambda input, dim=0, start=None, end=None, step=1: None)
def aten_slice(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    return strided_slice(ctx, x, {axis(a["dim"], x.type.rank): slice(a["start"], a["end"], a["step"])})


@converter(torch.select, "select", *_aten("select.int"), sig=lambda input, dim, index: None)
def select(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    return strided_slice(ctx, x, {axis(a["dim"], x.type.rank): int(a["index"])})


@converter(torch.narrow, "narrow", *_aten("narrow.default"), sig=lambda input, dim, start, length: None)
def narrow(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    d = axis(a["dim"], x.type.rank)
    start = a["start"] % x.type.shape[d] if a["start"] < 0 else a["start"]
    return strided_slice(ctx, x, {d: slice(start, start + a["length"])})


def _pad_value(ctx: Ctx, x: Any, pad: Any, mode: str, val: Any) -> Any:
    x = value(x)
    if mode != "constant":
        raise Refuse(f"F.pad mode={mode!r} is not supported (only 'constant')")
    pad = list(pad)
    if len(pad) % 2 or len(pad) // 2 > x.type.rank:
        raise Refuse(f"bad pad spec {pad}")
    if any(p < 0 for p in pad):
        raise Refuse("negative padding (cropping) is not supported")
    pairs = [(0, 0)] * x.type.rank
    for i in range(len(pad) // 2):
        pairs[x.type.rank - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if not any(a or b for a, b in pairs):
        return x
    v = 0.0 if val is None else float(val)
    if v == 0.0:
        return ctx.emit(ops.Pad, x=x, pads=tuple(pairs))
    return ctx.emit(ops.PadV2, x=x, pads=tuple(pairs), value=v)


@converter(F.pad, torch.constant_pad_nd, *_aten("pad.default"),
           sig=lambda input, pad, mode="constant", value=None: None)
def pad(ctx: Ctx, a: dict) -> Any:
    return _pad_value(ctx, a["input"], a["pad"], a["mode"], a["value"])


@converter(*_aten("constant_pad_nd.default"), sig=lambda input, pad, value=0: None)
def constant_pad_nd(ctx: Ctx, a: dict) -> Any:
    return _pad_value(ctx, a["input"], a["pad"], "constant", a["value"])


def _pieces(ctx: Ctx, x: Value, dim: int) -> tuple:
    """Slices of ``x`` along ``dim`` sized like the example's pieces (one STRIDED_SLICE each)."""
    d = axis(dim, x.type.rank)
    out, start = [], 0
    for piece in ctx.example:
        size = piece.shape[d]
        begin = [0] * x.type.rank
        begin[d] = start
        end = list(x.type.shape)
        end[d] = start + size
        out.append(ctx.emit(ops.StridedSlice, x=x, begin=tuple(begin), end=tuple(end),
                            strides=(1,) * x.type.rank))
        start += size
    return tuple(out)


@converter(torch.chunk, "chunk", *_aten("chunk.default"), sig=lambda input, chunks, dim=0: None)
def chunk(ctx: Ctx, a: dict) -> Any:
    return _pieces(ctx, value(a["input"]), a["dim"])


@converter(torch.split, "split", *_aten("split.Tensor", "split_with_sizes.default"),
           sig=lambda input, split_size_or_sections, dim=0: None)
def split(ctx: Ctx, a: dict) -> Any:
    return _pieces(ctx, value(a["input"]), a["dim"])
