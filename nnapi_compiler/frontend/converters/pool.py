"""Pooling: MaxPool2d and AvgPool2d (padding, ceil_mode, count_include_pad), AdaptiveAvgPool2d.

NNAPI pools ignore padding cells and divide by the in-bounds count; ``ceil_mode`` becomes extra
tail padding, and ``count_include_pad=True`` an explicit zero PAD, so every form is exact.
"""

from __future__ import annotations

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
