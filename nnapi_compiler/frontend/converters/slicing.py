"""Indexing and padding: ``x[...]`` with ints, slices (with steps), None and Ellipsis, or one
constant index list (GATHER);
narrow/select/slice spellings (STRIDED_SLICE), chunk/split/unbind, F.pad and the ``nn.*Pad*d``
modules (constant: PAD / PAD_V2; reflect, replicate and circular: GATHER) and roll (GATHER)."""

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
        return _constant_index(ctx, x, idx)
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


def _gather_constant(ctx: Ctx, x: Value, d: int, index: Any) -> Value:
    """``x`` indexed along ``d`` by a constant 1-D integer list or tensor: one GATHER."""
    t = index if isinstance(index, torch.Tensor) else torch.tensor(index)
    if isinstance(index, Value) or t.dim() != 1 or t.dtype not in (torch.int64, torch.int32):
        raise Refuse("advanced indexing is supported with one constant 1-D integer index only")
    n = x.type.shape[d]
    flat = [int(i) for i in t.tolist()]
    if not flat or any(not -n <= i < n for i in flat):
        raise Refuse(f"index out of range for a dim of size {n}")
    return ctx.emit(ops.Gather, x=x, axis=d, indices=tuple(i % n for i in flat))


def _constant_index(ctx: Ctx, x: Value, idx: tuple) -> Value:
    """``x[:, :, perm]`` (CSATv2's zigzag order of DCT coefficients): full slices, then one
    constant list of indices."""
    full = slice(None)
    lists = [k for k, i in enumerate(idx) if isinstance(i, Value | torch.Tensor | list)]
    rest = [i for k, i in enumerate(idx) if k != lists[0]]
    if len(lists) != 1 or any(i is not Ellipsis and i != full for i in rest) or \
            sum(i is Ellipsis for i in idx) > 1:
        raise Refuse("advanced indexing is supported as x[:, ..., index] with one constant index")
    k = lists[0]
    d = k if Ellipsis not in idx[:k] else x.type.rank - (len(idx) - k)
    return _gather_constant(ctx, x, axis(d, x.type.rank), idx[k])


@converter(*_aten("index.Tensor"), sig=lambda input, indices: None)
def aten_index(ctx: Ctx, a: dict) -> Any:
    """torch.export's spelling of ``x[:, :, index]``: None for each leading full slice."""
    x, indices = value(a["input"]), list(a["indices"])
    given = [k for k, i in enumerate(indices) if i is not None]
    if len(given) != 1:
        raise Refuse("advanced indexing is supported with one constant index only")
    return _gather_constant(ctx, x, given[0], indices[given[0]])


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
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > x.type.rank:
        raise Refuse(f"bad pad spec {pad}")
    if any(p < 0 for p in pad):
        raise Refuse("negative padding (cropping) is not supported")
    pairs = [(0, 0)] * x.type.rank
    for i in range(len(pad) // 2):
        pairs[x.type.rank - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if not any(a or b for a, b in pairs):
        return x
    if mode in _INDEX_PADS:
        return _index_pad(ctx, x, pairs, mode)
    if mode != "constant":
        raise Refuse(f"F.pad mode={mode!r} is not supported")
    v = 0.0 if val is None else float(val)
    if v == 0.0:
        return ctx.emit(ops.Pad, x=x, pads=tuple(pairs))
    return ctx.emit(ops.PadV2, x=x, pads=tuple(pairs), value=v)


def _reflect(i: int, n: int) -> int:
    while not 0 <= i < n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


#: Source index of padded position ``i`` (in [-before, n + after)) for each non-constant mode.
_INDEX_PADS = {
    "reflect": _reflect,
    "replicate": lambda i, n: min(max(i, 0), n - 1),
    "circular": lambda i, n: i % n,
}


def _index_pad(ctx: Ctx, x: Value, pairs: list[tuple[int, int]], mode: str) -> Value:
    """Reflection / replication / circular padding: one GATHER (FL3) per padded dim.

    Each padded dim reads its source positions with constant indices (exact: values are
    copied). MIRROR_PAD (FL7) covers only reflection; GATHER serves every mode at Android 10.
    """
    src = _INDEX_PADS[mode]
    for d, (before, after) in enumerate(pairs):
        if not before and not after:
            continue
        n = x.type.shape[d]
        if mode == "reflect" and max(before, after) >= n:
            raise Refuse(f"reflection padding {before, after} must be smaller than the dim ({n})")
        if mode == "circular" and max(before, after) > n:
            raise Refuse(f"circular padding {before, after} must not exceed the dim ({n})")
        idx = [src(i, n) for i in range(-before, n + after)]
        x = ctx.emit(ops.Gather, x=x, axis=d, indices=tuple(idx))
    return x


def _pad_module(mode: str) -> Any:
    def args(m: torch.nn.Module) -> dict[str, Any]:
        return {"pad": list(m.padding), "mode": mode, "value": getattr(m, "value", None)}

    return args


_PAD_MODULES = {
    **{getattr(torch.nn, f"ConstantPad{k}d"): _pad_module("constant") for k in (1, 2, 3)},
    **{getattr(torch.nn, f"ZeroPad{k}d"): _pad_module("constant") for k in (1, 2, 3)
       if hasattr(torch.nn, f"ZeroPad{k}d")},
    **{getattr(torch.nn, f"ReflectionPad{k}d"): _pad_module("reflect") for k in (1, 2, 3)},
    **{getattr(torch.nn, f"ReplicationPad{k}d"): _pad_module("replicate") for k in (1, 2, 3)},
    **{getattr(torch.nn, f"CircularPad{k}d"): _pad_module("circular") for k in (1, 2, 3)
       if hasattr(torch.nn, f"CircularPad{k}d")},
}


@converter(F.pad, torch.constant_pad_nd, *_aten("pad.default"),
           sig=lambda input, pad, mode="constant", value=None: None, modules=_PAD_MODULES)
def pad(ctx: Ctx, a: dict) -> Any:
    return _pad_value(ctx, a["input"], a["pad"], a["mode"], a["value"])


@converter(*_aten("constant_pad_nd.default"), sig=lambda input, pad, value=0: None)
def constant_pad_nd(ctx: Ctx, a: dict) -> Any:
    return _pad_value(ctx, a["input"], a["pad"], "constant", a["value"])


@converter(*_aten("reflection_pad1d.default", "reflection_pad2d.default", "reflection_pad3d.default"),
           sig=lambda input, padding: None)
def aten_reflection_pad(ctx: Ctx, a: dict) -> Any:
    return _pad_value(ctx, a["input"], a["padding"], "reflect", None)


@converter(*_aten("replication_pad1d.default", "replication_pad2d.default",
                  "replication_pad3d.default"),
           sig=lambda input, padding: None)
def aten_replication_pad(ctx: Ctx, a: dict) -> Any:
    return _pad_value(ctx, a["input"], a["padding"], "replicate", None)


@converter(torch.roll, "roll", *_aten("roll.default"), sig=lambda input, shifts, dims=(): None)
def roll(ctx: Ctx, a: dict) -> Any:
    """torch.roll as one GATHER (FL3) per rolled dim; without dims, roll the flattened tensor."""
    x = value(a["input"])
    shifts = [a["shifts"]] if isinstance(a["shifts"], int) else list(a["shifts"])
    dims = [a["dims"]] if isinstance(a["dims"], int) else list(a["dims"])
    shape = tuple(x.type.shape)
    if not dims:
        if len(shifts) != 1:
            raise Refuse("roll without dims takes one shift")
        x = reshape_to(ctx, x, (x.type.numel,))
        dims = [0]
    if len(shifts) != len(dims):
        raise Refuse("roll needs one shift per dim")
    for s, d in zip(shifts, dims, strict=True):
        d = axis(d, x.type.rank)
        n = x.type.shape[d]
        if s % n:
            x = ctx.emit(ops.Gather, x=x, axis=d, indices=tuple((i - s) % n for i in range(n)))
    return reshape_to(ctx, x, shape)


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


@converter(torch.unbind, "unbind", *_aten("unbind.int"), sig=lambda input, dim=0: None)
def unbind(ctx: Ctx, a: dict) -> Any:
    """One STRIDED_SLICE per index, reshaped to drop the dim (a no-op reshape when it is 1)."""
    x = value(a["input"])
    d = axis(a["dim"], x.type.rank)
    out = []
    for i, piece in enumerate(ctx.example):
        begin = [0] * x.type.rank
        begin[d] = i
        end = list(x.type.shape)
        end[d] = i + 1
        s = ctx.emit(ops.StridedSlice, x=x, begin=tuple(begin), end=tuple(end),
                     strides=(1,) * x.type.rank)
        out.append(reshape_to(ctx, s, tuple(piece.shape) or (1,)))
    return tuple(out)
