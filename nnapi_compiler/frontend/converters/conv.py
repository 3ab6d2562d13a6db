"""Convolutions: Conv2d (plain, depthwise with any multiplier, grouped, dilated, 'same'/'valid')
and ConvTranspose2d, lowered to CONV_2D / DEPTHWISE_CONV_2D / GROUPED_CONV_2D / TRANSPOSE_CONV_2D
(grouped transposed ones as the convolution they equal, on a zero-inserted input);
and Linear, lowered to FULLY_CONNECTED (plus a RESHAPE for inputs of rank > 2).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.types import Quant, Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import image, pair, static_tensor, value
from .activation import _aten


def _conv_module(m: nn.Conv2d) -> dict[str, Any]:
    if m.padding_mode != "zeros":
        raise Refuse(f"padding_mode={m.padding_mode!r} is not supported (only 'zeros')")
    return {"weight": m.weight, "bias": m.bias, "stride": m.stride, "padding": m.padding,
            "dilation": m.dilation, "groups": m.groups}


def _explicit_padding(padding: Any, k: tuple[int, int], d: tuple[int, int]) -> ops.Padding:
    if isinstance(padding, ops.Padding):
        return padding
    if padding == "valid":
        return ops.Padding()
    if padding == "same":
        # PyTorch puts the odd extra row/column at the end, as NNAPI's SAME does.
        th, tw = d[0] * (k[0] - 1), d[1] * (k[1] - 1)
        return ops.Padding(th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = pair(padding, "padding")
    return ops.Padding(ph, ph, pw, pw)


@converter(F.conv2d, torch.conv2d, *_aten("conv2d.default", "conv2d.padding"),
           sig=lambda input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1: None,
           modules={nn.Conv2d: _conv_module})
def conv2d(ctx: Ctx, a: dict) -> Any:
    w = static_tensor(a["weight"], "conv weight")
    bias = static_tensor(a["bias"], "conv bias") if a["bias"] is not None else torch.zeros(w.shape[0])
    return emit_conv2d(ctx, a, w, bias)


def emit_conv2d(ctx: Ctx, a: dict, w: torch.Tensor, bias: torch.Tensor,
                w_quant: Quant | None = None, **extra: Any) -> Any:
    """CONV_2D / DEPTHWISE_CONV_2D / GROUPED_CONV_2D for weight ``w`` in PyTorch's OIHW layout.

    ``w`` is float, or (with ``w_quant``) the uint8 integer weight; ``extra`` carries fuse code
    and output quantization for quantized convolutions.
    """
    x = image(a["input"])
    cout, cin_g, kh, kw = w.shape
    groups = int(a["groups"])
    stride, dil = pair(a["stride"], "stride"), pair(a["dilation"], "dilation")
    fields = dict(
        input=x, bias=ctx.const(bias),
        padding=_explicit_padding(a["padding"], (kh, kw), dil),
        stride=ops.HW(*stride), dilation=ops.HW(*dil), **extra,
    )
    cin = x.type.shape[1]

    def filt(t: torch.Tensor) -> Any:
        return ctx.b.const(t, quant=w_quant)

    if groups == 1:
        return ctx.emit(ops.Conv2d, filter=filt(w.permute(0, 2, 3, 1)), **fields)
    if groups == cin and cin_g == 1:
        # Depthwise: filter [1, kh, kw, Cout], output channel k*mult+q reads input channel k.
        return ctx.emit(ops.DepthwiseConv2d, filter=filt(w.permute(1, 2, 3, 0)),
                        multiplier=cout // cin, **fields)
    if dil != (1, 1):
        raise Refuse("grouped convolution with dilation has no NNAPI form")
    return ctx.emit(ops.GroupedConv2d, filter=filt(w.permute(0, 2, 3, 1)), groups=groups, **fields)


def tconv_module(m: nn.ConvTranspose1d | nn.ConvTranspose2d) -> dict[str, Any]:
    """A transposed conv module's arguments (1-d and 2-d alike) as its functional form takes them."""
    if m.padding_mode != "zeros":
        raise Refuse(f"padding_mode={m.padding_mode!r} is not supported")
    return {"weight": m.weight, "bias": m.bias, "stride": m.stride, "padding": m.padding,
            "output_padding": m.output_padding, "groups": m.groups, "dilation": m.dilation}


@converter(F.conv_transpose2d, torch.conv_transpose2d, *_aten("conv_transpose2d.input"),
           sig=lambda input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
           dilation=1: None,
           modules={nn.ConvTranspose2d: tconv_module})
def conv_transpose2d(ctx: Ctx, a: dict) -> Any:
    w = static_tensor(a["weight"], "conv_transpose weight")  # [Cin, Cout/groups, kh, kw]
    bias = static_tensor(a["bias"], "bias") if a["bias"] is not None else None
    return emit_transpose_conv2d(ctx, a, w, bias)


def emit_transpose_conv2d(ctx: Ctx, a: dict, w: torch.Tensor, bias: torch.Tensor | None,
                          w_quant: Quant | None = None, **extra: Any) -> Any:
    """TRANSPOSE_CONV_2D for weight ``w`` in PyTorch's [Cin, Cout/groups, kh, kw] layout, or the
    convolution it equals where that op cannot take it (see ``_transpose_as_conv``).

    ``w`` is float, or (with ``w_quant``) the 8-bit integer weight, whose zero point then fills
    the taps a dilated kernel inserts (a centered weight of 0, so they add nothing exactly).
    ``extra`` carries fuse code and output quantization for quantized transposed convolutions.
    """
    x = image(a["input"])
    groups = int(a["groups"])
    cin, cout_g, kh, kw = w.shape
    dh, dw = pair(a["dilation"], "dilation")
    if (dh, dw) != (1, 1):
        # A dilated kernel is the kernel with (d-1) zeros between taps: exact, no dilation input.
        zero = 0 if w_quant is None else w_quant.zero_point
        dil = torch.full((cin, cout_g, dh * (kh - 1) + 1, dw * (kw - 1) + 1), zero, dtype=w.dtype)
        dil[:, :, ::dh, ::dw] = w
        w = dil
    ph, pw = pair(a["padding"], "padding")
    oph, opw = pair(a["output_padding"], "output_padding")
    stride = pair(a["stride"], "stride")
    bias = bias if bias is not None else torch.zeros(cout_g * groups)
    if groups != 1 or oph > ph or opw > pw:
        return _transpose_as_conv(ctx, x, w, bias, stride, (ph, pw), (oph, opw), groups, w_quant, extra)
    return ctx.emit(
        ops.TransposeConv2d, input=x, filter=ctx.b.const(w.permute(1, 2, 3, 0), quant=w_quant),
        bias=ctx.const(bias), padding=ops.Padding(ph, ph - oph, pw, pw - opw),
        stride=ops.HW(*stride), **extra,
    )


def _transpose_as_conv(ctx: Ctx, x: Value, w: torch.Tensor, bias: torch.Tensor,
                       stride: tuple[int, int], padding: tuple[int, int],
                       output_padding: tuple[int, int], groups: int, w_quant: Quant | None,
                       extra: dict[str, Any]) -> Any:
    """A transposed convolution TRANSPOSE_CONV_2D cannot express (it has no groups, and its
    tail padding cannot be negative, which output_padding > padding needs) as the convolution it
    equals: the input with s-1 zeros inserted after every pixel, convolved (stride 1, groups
    kept) with the flipped kernel and padding k-1-p before, k-1-p+output_padding after.

    The zeros come from a PAD of s*s-1 channel blocks (logical zero, the zero point when
    quantized) and DEPTH_TO_SPACE, which puts channel block 0 at offset (0, 0) of each s x s
    block; it leaves s-1 zero rows and columns at the end, taken off the tail padding. Every
    product of the transposed convolution appears once and the zeros add exact zeros, so the
    integer accumulator (quantized) is the same; the convolution does s*s times the multiplies.
    """
    sh, sw = stride
    cin, cout_g, kh, kw = w.shape
    head = (kh - 1 - padding[0], kw - 1 - padding[1])
    tail = (head[0] + output_padding[0] - (sh - 1), head[1] + output_padding[1] - (sw - 1))
    if sh != sw:
        raise Refuse("a grouped transposed convolution (or one with output_padding > padding) "
                     "with unequal strides has no NNAPI form")
    if min(*head, *tail) < 0:
        raise Refuse("a grouped transposed convolution (or one with output_padding > padding) "
                     "whose padding exceeds kernel - 1 has no NNAPI form")
    if sh > 1:
        c = x.type.shape[1]
        x = ctx.emit(ops.Pad, x=x, pads=((0, 0), (0, c * (sh * sh - 1)), (0, 0), (0, 0)))
        x = ctx.emit(ops.DepthToSpace, x=x, block=sh)
    g, cin_g = groups, cin // groups
    wc = (w.reshape(g, cin_g, cout_g, kh, kw).transpose(1, 2)
          .reshape(g * cout_g, cin_g, kh, kw).flip(2, 3))
    conv = {"input": x, "groups": g, "stride": 1, "dilation": 1,
            "padding": ops.Padding(head[0], tail[0], head[1], tail[1])}
    return emit_conv2d(ctx, conv, wc, bias, w_quant=w_quant, **extra)


@converter(F.linear, *_aten("linear.default"), sig=lambda input, weight, bias=None: None,
           modules={nn.Linear: lambda m: {"weight": m.weight, "bias": m.bias}})
def linear(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    if isinstance(a["weight"], Value) or isinstance(a["bias"], Value):
        # Run-time weights: NNAPI's FULLY_CONNECTED does not require constant operands.
        w_val = ctx.tensor(a["weight"])
        units = w_val.type.shape[0]
        b_val = ctx.tensor(a["bias"]) if a["bias"] is not None else ctx.const(torch.zeros(units))
        y = ctx.emit(ops.FullyConnected, input=x, weights=w_val, bias=b_val)
        return y if x.type.rank == 2 else ctx.emit(ops.Reshape, x=y, shape=(*x.type.shape[:-1], units))
    w = static_tensor(a["weight"], "linear weight")
    units = w.shape[0]
    bias = static_tensor(a["bias"], "linear bias") if a["bias"] is not None else torch.zeros(units)
    y = ctx.emit(ops.FullyConnected, input=x, weights=ctx.const(w), bias=ctx.const(bias))
    if x.type.rank != 2:
        y = ctx.emit(ops.Reshape, x=y, shape=(*x.type.shape[:-1], units))
    return y
