"""Pooling: MaxPool2d and AvgPool2d (padding, ceil_mode, count_include_pad), AdaptiveAvgPool2d,
AdaptiveMaxPool2d and LPPool2d.

NNAPI pools ignore padding cells and divide by the in-bounds count; ``ceil_mode`` becomes extra
tail padding, and ``count_include_pad=True`` an explicit zero PAD, so every form is exact.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.ops.resize import Interpolate
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import image, pair
from .activation import _aten


def torch_pool_out(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    """PyTorch's pooled extent (pooling_output_shape) for dilation 1."""
    out = (size + 2 * p - k + ((s - 1) if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _tail(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    """Tail padding that makes NNAPI's floor-mode extent equal PyTorch's."""
    out = torch_pool_out(size, k, s, p, ceil)
    tail = max(p, (out - 1) * s + k - size - p)
    assert (size + p + tail - k) // s + 1 == out
    return tail


def _window(x: Any, a: dict) -> tuple[ops.HW, ops.HW, tuple[int, int], bool]:
    kh, kw = pair(a["kernel_size"], "kernel_size")
    stride = a["stride"]
    sh, sw = (kh, kw) if stride is None or stride == [] or stride == () else pair(stride, "stride")
    ph, pw = pair(a["padding"], "padding")
    if pair(a.get("dilation", 1), "dilation") != (1, 1):
        raise Refuse("pool dilation has no NNAPI form")
    return ops.HW(kh, kw), ops.HW(sh, sw), (ph, pw), bool(a["ceil_mode"])


def _pool_module(m: nn.MaxPool2d | nn.AvgPool2d) -> dict[str, Any]:
    out = {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
           "ceil_mode": m.ceil_mode}
    if isinstance(m, nn.MaxPool2d):
        out.update(dilation=m.dilation, return_indices=m.return_indices)
    else:
        out.update(count_include_pad=m.count_include_pad, divisor_override=m.divisor_override)
    return out


@converter(F.max_pool2d, torch.max_pool2d, *_aten("max_pool2d.default"),
           sig=lambda input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
           return_indices=False: None,
           modules={nn.MaxPool2d: _pool_module})
def max_pool2d(ctx: Ctx, a: dict) -> Any:
    if a["return_indices"]:
        raise Refuse("return_indices=True has no NNAPI form")
    x = image(a["input"])
    k, s, (ph, pw), ceil = _window(x, a)
    _, _, h, w = x.type.shape
    pad = ops.Padding(ph, _tail(h, k.h, s.h, ph, ceil), pw, _tail(w, k.w, s.w, pw, ceil))
    return ctx.emit(ops.MaxPool2d, input=x, kernel=k, stride=s, padding=pad)


@converter(F.avg_pool2d, *_aten("avg_pool2d.default"),
           sig=lambda input, kernel_size, stride=None, padding=0, ceil_mode=False,
           count_include_pad=True, divisor_override=None: None,
           modules={nn.AvgPool2d: _pool_module})
def avg_pool2d(ctx: Ctx, a: dict) -> Any:
    if a["divisor_override"] is not None:
        raise Refuse("divisor_override is not supported")
    x = image(a["input"])
    k, s, (ph, pw), ceil = _window(x, a)
    _, _, h, w = x.type.shape
    if a["count_include_pad"] and (ph or pw):
        # PyTorch counts padding cells in the divisor; NNAPI ignores them. Pad explicitly.
        x = ctx.emit(ops.Pad, x=x, pads=((0, 0), (0, 0), (ph, ph), (pw, pw)))
        pad = ops.Padding(0, _tail(h, k.h, s.h, ph, ceil) - ph, 0, _tail(w, k.w, s.w, pw, ceil) - pw)
    else:
        pad = ops.Padding(ph, _tail(h, k.h, s.h, ph, ceil), pw, _tail(w, k.w, s.w, pw, ceil))
    return ctx.emit(ops.AveragePool2d, input=x, kernel=k, stride=s, padding=pad)


@converter(F.adaptive_avg_pool2d, *_aten("adaptive_avg_pool2d.default", "_adaptive_avg_pool2d.default"),
           sig=lambda input, output_size: None,
           modules={nn.AdaptiveAvgPool2d: lambda m: {"output_size": m.output_size}})
def adaptive_avg_pool2d(ctx: Ctx, a: dict) -> Any:
    x = image(a["input"])
    _, _, h, w = x.type.shape
    size = a["output_size"]
    oh, ow = (size, size) if isinstance(size, int) else tuple(size)
    oh, ow = oh or h, ow or w
    if (oh, ow) == (h, w):
        return x
    if (oh, ow) == (1, 1) and x.type.quant is None:
        return ctx.emit(ops.Mean, x=x, axes=(2, 3), keep_dims=True)
    if (oh, ow) == (1, 1):  # quantized: AVERAGE_POOL rounds like PyTorch, MEAN truncates
        return ctx.emit(ops.AveragePool2d, input=x, kernel=ops.HW(h, w), stride=ops.HW(h, w))
    if h % oh or w % ow:  # uneven or overlapping windows: PyTorch's per-axis averaging matrices
        return ctx.emit(Interpolate, x=x, mode="area", out_h=oh, out_w=ow)
    k = ops.HW(h // oh, w // ow)
    return ctx.emit(ops.AveragePool2d, input=x, kernel=k, stride=k)


def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one axis: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _regular(wins: list[tuple[int, int]]) -> tuple[int, int] | None:
    """(kernel, stride) when every window has one size and they start at multiples of a stride."""
    sizes = {e - s for s, e in wins}
    stride = wins[1][0] - wins[0][0] if len(wins) > 1 else 1
    if len(sizes) != 1 or stride < 1 or any(s != i * stride for i, (s, _) in enumerate(wins)):
        return None
    return sizes.pop(), stride


def _max_along(ctx: Ctx, x: Any, axis: int, wins: list[tuple[int, int]]) -> Any:
    """Exact adaptive max along one spatial ``axis`` (2 = H, 3 = W). Regular windows are one
    MAX_POOL; irregular ones a stride-1 MAX_POOL per distinct window size k (the max over
    [j, j+k) for every j), concatenated, then GATHER picks each window's row at its start."""
    reg = _regular(wins)
    if reg == (1, 1):
        return x
    if reg is not None:
        k, s = reg
        kern, stride = (ops.HW(k, 1), ops.HW(s, 1)) if axis == 2 else (ops.HW(1, k), ops.HW(1, s))
        return ctx.emit(ops.MaxPool2d, input=x, kernel=kern, stride=stride)
    pooled, offset, base = [], {}, 0
    for k in sorted({e - s for s, e in wins}):
        kern = ops.HW(k, 1) if axis == 2 else ops.HW(1, k)
        pooled.append(ctx.emit(ops.MaxPool2d, input=x, kernel=kern, stride=ops.HW(1, 1)))
        offset[k], base = base, base + x.type.shape[axis] - k + 1
    y = pooled[0] if len(pooled) == 1 else ctx.emit(ops.Concatenation, xs=tuple(pooled), axis=axis)
    return ctx.emit(ops.Gather, x=y, axis=axis, indices=[offset[e - s] + s for s, e in wins])


def _indices_used(ctx: Ctx) -> bool:
    """Does the graph read the indices half of an ATen (values, indices) result?"""
    node = ctx.node
    return node is not None and any(
        u.target is operator.getitem and u.args[1] == 1 and (u.users or u in _graph_outputs(u))
        for u in node.users)


def _graph_outputs(n: Any) -> set[Any]:
    out = next(o for o in n.graph.nodes if o.op == "output")
    return set(out.all_input_nodes)


@converter(F.adaptive_max_pool2d, *_aten("adaptive_max_pool2d.default"),
           sig=lambda input, output_size, return_indices=False: None,
           modules={nn.AdaptiveMaxPool2d: lambda m: {"output_size": m.output_size,
                                                      "return_indices": m.return_indices}})
def adaptive_max_pool2d(ctx: Ctx, a: dict) -> Any:
    """MAX_POOL_2D where PyTorch's adaptive windows are regular (one size, one stride: always
    when the input size divides by the output's); otherwise per-axis MAX_POOL + GATHER."""
    if a["return_indices"] or _indices_used(ctx):
        raise Refuse("the indices of adaptive_max_pool2d have no NNAPI form")
    x = image(a["input"])
    _, _, h, w = x.type.shape
    size = a["output_size"]
    oh, ow = (size, size) if isinstance(size, int) else tuple(size)
    oh, ow = oh or h, ow or w
    wins_h, wins_w = _adaptive_windows(h, oh), _adaptive_windows(w, ow)
    reg_h, reg_w = _regular(wins_h), _regular(wins_w)
    if reg_h and reg_w:
        y = x if reg_h == reg_w == (1, 1) else ctx.emit(
            ops.MaxPool2d, input=x, kernel=ops.HW(reg_h[0], reg_w[0]), stride=ops.HW(reg_h[1], reg_w[1]))
    else:
        y = _max_along(ctx, _max_along(ctx, x, 2, wins_h), 3, wins_w)
    return (y, None) if isinstance(ctx.example, tuple | list) else y


def _lp_module(m: nn.LPPool2d) -> dict[str, Any]:
    return {"norm_type": m.norm_type, "kernel_size": m.kernel_size, "stride": m.stride,
            "ceil_mode": m.ceil_mode}


@converter(F.lp_pool2d, sig=lambda input, norm_type, kernel_size, stride=None, ceil_mode=False: None,
           modules={nn.LPPool2d: _lp_module})
def lp_pool2d(ctx: Ctx, a: dict) -> Any:
    """PyTorch's power-average pool, (k * avg_pool(x^p))^(1/p) with k = kh * kw and the average
    over the in-bounds cells of each window, as NNAPI's pools take it:

    - p = 2: L2_POOL_2D is sqrt(avg(x^2)), so the result is that times sqrt(k);
    - p = 1: AVERAGE_POOL_2D times k;
    - p = +-inf: PyTorch's own max_pool2d(|x|) and -max_pool2d(-|x|), with ABS / NEG;
    - any other p: PyTorch's formula with POW (FL3): POW, AVERAGE_POOL_2D, MUL, POW. Its
      ``sign(a) * relu(abs(a))`` is ``a`` itself, and a negative average gives NaN in both.
    """
    x = image(a["input"])
    if x.type.quant is not None:
        raise Refuse("lp_pool2d of a quantized tensor is not supported")
    p = float(a["norm_type"])
    k, s, _, ceil = _window(x, {**a, "padding": 0})
    _, _, h, w = x.type.shape
    pad = ops.Padding(0, _tail(h, k.h, s.h, 0, ceil), 0, _tail(w, k.w, s.w, 0, ceil))
    if p in (float("inf"), -float("inf")):
        ax = ctx.emit(ops.Abs, x=x)
        if p > 0:
            return ctx.emit(ops.MaxPool2d, input=ax, kernel=k, stride=s, padding=pad)
        y = ctx.emit(ops.MaxPool2d, input=ctx.emit(ops.Neg, x=ax), kernel=k, stride=s, padding=pad)
        return ctx.emit(ops.Neg, x=y)
    if p == 2.0:
        y, factor = ctx.emit(ops.L2Pool2d, input=x, kernel=k, stride=s, padding=pad), (k.h * k.w) ** 0.5
    elif p == 1.0:
        y, factor = ctx.emit(ops.AveragePool2d, input=x, kernel=k, stride=s, padding=pad), k.h * k.w
    elif ctx.level >= ops.Pow.spec_level() and not math.isnan(p):
        xp = ctx.emit(ops.Pow, a=x, b=_scalar(ctx, p))
        y = ctx.emit(ops.AveragePool2d, input=xp, kernel=k, stride=s, padding=pad)
        y = ctx.emit(ops.Mul, a=y, b=_scalar(ctx, k.h * k.w))
        return ctx.emit(ops.Pow, a=y, b=_scalar(ctx, 1.0 / p))
    else:
        raise Refuse(f"lp_pool2d with norm_type {p:g} needs POW (feature level 3)")
    return y if factor == 1.0 else ctx.emit(ops.Mul, a=y, b=_scalar(ctx, factor))


def _scalar(ctx: Ctx, v: float) -> Any:
    return ctx.const(torch.tensor([v], dtype=torch.float32))
