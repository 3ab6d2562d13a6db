"""Eager-mode quantized models (torch.ao.quantization convert, qnnpack): Quantize/DeQuantize,
quantized Conv2d/ConvReLU2d, ConvTranspose2d and Linear/LinearReLU, QFunctional add/add_relu/mul/cat/
add_scalar/mul_scalar, quantize_per_tensor/dequantize mid-model, and quantized activations.

Weights: PyTorch's qint8 weights become NNAPI uint8 exactly by shifting values and zero point
by 128. Per-channel weights cannot be expressed through PyTorch Mobile's NNAPI runtime (it has
no setOperandSymmPerChannelQuantParams); they convert exactly when every channel shares one
scale, else they are requantized to one per-tensor scale (the largest channel scale, so no
value clips) and the change is reported as a warning with its worst weight error.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.ao.nn.intrinsic.quantized as nniq
import torch.ao.nn.quantized as nnq

from ...ir import ops
from ...ir.codes import FuseCode
from ...ir.types import Quant, Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import float_island, out_quant, value
from .conv import emit_conv2d, emit_transpose_conv2d


def uint8_weight(w: torch.Tensor, where: str) -> tuple[torch.Tensor, Quant]:
    """A quantized weight as (uint8 values, per-tensor Quant) for NNAPI."""
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scales = w.q_per_channel_scales().double()
        zps = w.q_per_channel_zero_points()
        if bool((scales == scales[0]).all()) and bool((zps == zps[0]).all()):
            ints, scale, zp = w.int_repr().int(), float(scales[0]), int(zps[0])
        else:
            real = w.dequantize()
            scale, zp = float(scales.max()), 0
            ints = torch.round(real / scale).clamp(-127, 127).int()
            err = (ints.float() * scale - real).abs().max().item()
            warnings.warn(f"{where}: per-channel weights requantized to one scale {scale:.4g} "
                          f"(NNAPI through PyTorch Mobile has no per-channel parameters); "
                          f"max weight error {err:.3g}", RuntimeWarning, stacklevel=2)
    else:
        ints, scale, zp = w.int_repr().int(), w.q_scale(), w.q_zero_point()
    if w.dtype == torch.qint8 or w.qscheme() in (torch.per_channel_affine,
                                                  torch.per_channel_symmetric):
        ints, zp = ints + 128, zp + 128  # int8 -> uint8 exactly: shift values and zero point
    return ints.clamp(0, 255).to(torch.uint8), Quant(scale, zp)


def _fuse(relu: bool) -> FuseCode:
    return FuseCode.FUSED_RELU if relu else FuseCode.FUSED_NONE


def _qconv_module(m: nnq.Conv2d) -> dict[str, Any]:
    if getattr(m, "padding_mode", "zeros") != "zeros":
        raise Refuse(f"padding_mode={m.padding_mode!r} is not supported")
    return {"weight": m.weight(), "bias": m.bias(), "stride": m.stride, "padding": m.padding,
            "dilation": m.dilation, "groups": m.groups, "relu": isinstance(m, nniq.ConvReLU2d)}


@converter(sig=lambda input, weight, bias, stride, padding, dilation, groups, relu: None,
           modules={nnq.Conv2d: _qconv_module, nniq.ConvReLU2d: _qconv_module})
def quantized_conv2d(ctx: Ctx, a: dict) -> Any:
    w, wq = uint8_weight(a["weight"], ctx.node.name if ctx.node else "conv")
    bias = a["bias"].detach().float() if a["bias"] is not None else torch.zeros(w.shape[0])
    return emit_conv2d(ctx, a, w, bias, w_quant=wq, fuse=_fuse(a["relu"]), out_quant=out_quant(ctx))


def _qtconv_module(m: nnq.ConvTranspose2d) -> dict[str, Any]:
    if getattr(m, "padding_mode", "zeros") != "zeros":
        raise Refuse(f"padding_mode={m.padding_mode!r} is not supported")
    return {"weight": m.weight(), "bias": m.bias(), "stride": m.stride, "padding": m.padding,
            "output_padding": m.output_padding, "groups": m.groups, "dilation": m.dilation}


@converter(sig=lambda input, weight, bias, stride, padding, output_padding, groups, dilation: None,
           modules={nnq.ConvTranspose2d: _qtconv_module})
def quantized_conv_transpose2d(ctx: Ctx, a: dict) -> Any:
    """TRANSPOSE_CONV_2D on uint8: weight [Cin, Cout/groups, kh, kw] as for the float form."""
    w, wq = uint8_weight(a["weight"], ctx.node.name if ctx.node else "conv_transpose")
    bias = a["bias"].detach().float() if a["bias"] is not None else None
    return emit_transpose_conv2d(ctx, a, w, bias, w_quant=wq, out_quant=out_quant(ctx))


def _qlinear_module(m: nnq.Linear) -> dict[str, Any]:
    return {"weight": m.weight(), "bias": m.bias(), "relu": isinstance(m, nniq.LinearReLU)}


@converter(sig=lambda input, weight, bias, relu: None,
           modules={nnq.Linear: _qlinear_module, nniq.LinearReLU: _qlinear_module})
def quantized_linear(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    w, wq = uint8_weight(a["weight"], ctx.node.name if ctx.node else "linear")
    units = w.shape[0]
    bias = a["bias"].detach().float() if a["bias"] is not None else torch.zeros(units)
    y = ctx.emit(ops.FullyConnected, input=x, weights=ctx.b.const(w, quant=wq),
                 bias=ctx.const(bias), fuse=_fuse(a["relu"]), out_quant=out_quant(ctx))
    if x.type.rank != 2:
        y = ctx.emit(ops.Reshape, x=y, shape=(*x.type.shape[:-1], units))
    return y


def _quantize_module(m: nnq.Quantize) -> dict[str, Any]:
    return {"scale": float(m.scale), "zero_point": int(m.zero_point), "dtype": m.dtype}


@converter(torch.quantize_per_tensor, *([torch.ops.aten.quantize_per_tensor.default]),
           sig=lambda input, scale, zero_point, dtype: None,
           modules={nnq.Quantize: _quantize_module})
def quantize(ctx: Ctx, a: dict) -> Any:
    if a["dtype"] != torch.quint8:
        raise Refuse(f"quantize to {a['dtype']} is not supported (quint8 only)")
    return ctx.emit(ops.Quantize, x=value(a["input"]), quant=out_quant(ctx))


@converter(torch.dequantize, "dequantize", sig=lambda input: None,
           modules={nnq.DeQuantize: lambda m: {}})
def dequantize(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    if x.type.quant is None:
        return x
    return ctx.emit(ops.Dequantize, x=x)


def _qbinary(ctx: Ctx, cls: type[ops.Add] | type[ops.Mul], a: Any, b: Any, relu: bool) -> Any:
    return ctx.emit(cls, a=value(a), b=value(b), fuse=_fuse(relu), out_quant=out_quant(ctx))


@converter(torch.ops.quantized.add, sig=lambda qa, qb, scale, zero_point: None)
def qadd(ctx: Ctx, a: dict) -> Any:
    return _qbinary(ctx, ops.Add, a["qa"], a["qb"], False)


@converter(torch.ops.quantized.add_relu, sig=lambda qa, qb, scale, zero_point: None)
def qadd_relu(ctx: Ctx, a: dict) -> Any:
    return _qbinary(ctx, ops.Add, a["qa"], a["qb"], True)


@converter(torch.ops.quantized.mul, sig=lambda qa, qb, scale, zero_point: None)
def qmul(ctx: Ctx, a: dict) -> Any:
    return _qbinary(ctx, ops.Mul, a["qa"], a["qb"], False)


@converter(torch.ops.quantized.cat, sig=lambda qx, dim, scale, zero_point: None)
def qcat(ctx: Ctx, a: dict) -> Any:
    xs = tuple(value(x) for x in a["qx"])
    axis = a["dim"] % xs[0].type.rank
    return ctx.emit(ops.Concatenation, xs=xs, axis=axis, out_quant=out_quant(ctx))


def _scalar_const(ctx: Ctx, c: float) -> Value:
    """A one-element uint8 constant holding ``c`` exactly (q = 255 or 0 at scale |c| / 255)."""
    scale = abs(c) / 255.0
    return ctx.b.const(torch.tensor([255 if c > 0 else 0], dtype=torch.uint8),
                       quant=Quant(scale, 0 if c > 0 else 255))


@converter(torch.ops.quantized.add_scalar, sig=lambda qa, b: None)
def qadd_scalar(ctx: Ctx, a: dict) -> Any:
    x = value(a["qa"])
    if float(a["b"]) == 0.0:
        return x
    return ctx.emit(ops.Add, a=x, b=_scalar_const(ctx, float(a["b"])), out_quant=out_quant(ctx))


@converter(torch.ops.quantized.mul_scalar, sig=lambda qa, b: None)
def qmul_scalar(ctx: Ctx, a: dict) -> Any:
    x = value(a["qa"])
    if float(a["b"]) == 0.0:
        raise Refuse("multiplying a quantized tensor by 0 is not supported")
    return ctx.emit(ops.Mul, a=x, b=_scalar_const(ctx, float(a["b"])), out_quant=out_quant(ctx))


@converter(sig=lambda input: None, modules={nnq.ReLU6: lambda m: {}})
def qrelu6(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Relu6, x=value(a["input"]))


@converter(sig=lambda input: None, modules={nnq.Hardswish: lambda m: {}})
def qhardswish(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.HardSwish, x=value(a["input"]), out_quant=out_quant(ctx))


def _qleaky_module(m: nnq.LeakyReLU) -> dict[str, Any]:
    return {"negative_slope": m.negative_slope}


@converter(sig=lambda input, negative_slope=0.01: None, modules={nnq.LeakyReLU: _qleaky_module})
def qleaky_relu(ctx: Ctx, a: dict) -> Any:
    slope = float(a["negative_slope"])
    return float_island(ctx, value(a["input"]), lambda xf: ctx.emit(
        ops.Prelu, x=xf, alpha=ctx.const(torch.tensor([slope]))))
