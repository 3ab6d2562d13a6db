"""Activations: ReLU family, clamp/hardtanh, sigmoid, tanh, hard-swish/-sigmoid, SiLU, (P/Leaky)ReLU, ELU.

Ops that NNAPI lacks, or lacks at the target, are expressed exactly with legal ones here or
in the legalize pass (HARD_SWISH and ELU exist from FL4 only).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.codes import FuseCode
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import float_island, out_quant, static_tensor, value

aten = torch.ops.aten


def _aten(*names: str) -> list[Any]:
    """ATen overloads by ``name.overload``, skipping ones this torch build lacks."""
    out = []
    for n in names:
        packet, _, overload = n.partition(".")
        op = getattr(getattr(aten, packet, None), overload or "default", None)
        if op is not None:
            out.append(op)
    return out


def unary(name: str, *, methods: tuple[str, ...] = ()) -> list[Any]:
    """Every spelling of a unary op ``name``: torch/F functions, in-place twins, methods, ATen."""
    keys: list[Any] = []
    for mod in (torch, F):
        for n in (name, name + "_"):
            fn = getattr(mod, n, None)
            if fn is not None and fn not in keys:
                keys.append(fn)
    keys += [n for n in (name, name + "_", *methods) if hasattr(torch.Tensor, n)]
    keys += _aten(f"{name}.default", f"{name}_.default")
    return keys


@converter(*unary("relu"), sig=lambda input, inplace=False: None, modules={nn.ReLU: lambda m: {}})
def relu(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Relu, x=value(a["input"]))


def clamp_value(ctx: Ctx, x: Any, lo: float | None, hi: float | None) -> Any:
    """clamp(x, lo, hi) as the cheapest exact NNAPI form."""
    x = value(x)
    fused = {(0.0, None): ops.Relu, (-1.0, 1.0): ops.Relu1, (0.0, 6.0): ops.Relu6}
    key = (None if lo is None else float(lo), None if hi is None else float(hi))
    if key in fused:
        return ctx.emit(fused[key], x=x)
    if lo is not None:
        x = ctx.emit(ops.Maximum, a=x, b=_bound(ctx, x, float(lo)))
    if hi is not None:
        x = ctx.emit(ops.Minimum, a=x, b=_bound(ctx, x, float(hi)))
    return x


def _bound(ctx: Ctx, x: Value, c: float) -> Value:
    """A clamp bound as a constant of ``x``'s type. For a quantized ``x``, ``c`` quantized at
    its scale and zero point, as PyTorch's quantized clamp does, so the clamp stays exact."""
    q = x.type.quant
    if q is None:
        return ctx.tensor(c)
    cq = torch.quantize_per_tensor(torch.tensor([c]), q.scale, q.zero_point, torch.quint8)
    return ctx.b.const(cq.int_repr(), quant=q)


@converter(*unary("relu6"), sig=lambda input, inplace=False: None, modules={nn.ReLU6: lambda m: {}})
def relu6(ctx: Ctx, a: dict) -> Any:
    return clamp_value(ctx, a["input"], 0.0, 6.0)


@converter(*unary("hardtanh"), sig=lambda input, min_val=-1.0, max_val=1.0, inplace=False: None,
           modules={nn.Hardtanh: lambda m: {"min_val": m.min_val, "max_val": m.max_val}})
def hardtanh(ctx: Ctx, a: dict) -> Any:
    return clamp_value(ctx, a["input"], a["min_val"], a["max_val"])


@converter(*unary("clamp"), *unary("clip"), *_aten("clamp.Tensor"),
           sig=lambda input, min=None, max=None: None)
def clamp(ctx: Ctx, a: dict) -> Any:
    lo, hi = a["min"], a["max"]
    if isinstance(lo, torch.Tensor | ops.Op) or isinstance(hi, torch.Tensor):
        raise Refuse("clamp bounds must be numbers")
    if lo is None and hi is None:
        raise Refuse("clamp needs min or max")
    return clamp_value(ctx, a["input"], lo, hi)


@converter(*unary("sigmoid"), sig=lambda input: None, modules={nn.Sigmoid: lambda m: {}})
def sigmoid(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    return ctx.emit(ops.Logistic, x=x, out_quant=out_quant(ctx) if x.type.quant else None)


@converter(*unary("tanh"), sig=lambda input: None, modules={nn.Tanh: lambda m: {}})
def tanh(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    return ctx.emit(ops.Tanh, x=x, out_quant=out_quant(ctx) if x.type.quant else None)


@converter(*unary("hardswish"), sig=lambda input, inplace=False: None,
           modules={nn.Hardswish: lambda m: {}})
def hardswish(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    return ctx.emit(ops.HardSwish, x=x, out_quant=out_quant(ctx) if x.type.quant else None)


@converter(*unary("hardsigmoid"), sig=lambda input, inplace=False: None,
           modules={nn.Hardsigmoid: lambda m: {}})
def hardsigmoid(ctx: Ctx, a: dict) -> Any:
    def f(x: Any) -> Any:
        # relu6(x + 3) / 6, divided (not multiplied by 1/6) to round exactly like eager.
        t = ctx.emit(ops.Add, a=x, b=ctx.tensor(3.0), fuse=FuseCode.FUSED_RELU6)
        return ctx.emit(ops.Div, a=t, b=ctx.tensor(6.0))

    return quant_aware(ctx, a["input"], f)


def quant_aware(ctx: Ctx, x: Any, f: Any) -> Any:
    """Run the float lowering ``f`` directly, or around DEQUANTIZE/QUANTIZE for quantized ``x``."""
    x = value(x)
    return float_island(ctx, x, f) if x.type.quant is not None else f(x)


@converter(*unary("silu"), sig=lambda input, inplace=False: None, modules={nn.SiLU: lambda m: {}})
def silu(ctx: Ctx, a: dict) -> Any:
    return quant_aware(ctx, a["input"],
                       lambda x: ctx.emit(ops.Mul, a=x, b=ctx.emit(ops.Logistic, x=x)))


@converter(*unary("leaky_relu"), sig=lambda input, negative_slope=0.01, inplace=False: None,
           modules={nn.LeakyReLU: lambda m: {"negative_slope": m.negative_slope}})
def leaky_relu(ctx: Ctx, a: dict) -> Any:
    # NNAPI has no leaky ReLU; PRELU with one broadcast slope is the same function.
    alpha = ctx.const(torch.tensor([float(a["negative_slope"])]))
    return quant_aware(ctx, a["input"], lambda x: ctx.emit(ops.Prelu, x=x, alpha=alpha))


@converter(*unary("prelu"), sig=lambda input, weight: None,
           modules={nn.PReLU: lambda m: {"weight": m.weight}})
def prelu(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    w = static_tensor(a["weight"], "PReLU weight").reshape(-1)
    if w.numel() > 1:
        if x.type.rank < 2 or x.type.shape[1] != w.numel():
            raise Refuse("PReLU weight count must equal the channel dim (dim 1)")
        w = w.reshape([w.numel()] + [1] * (x.type.rank - 2))
    return ctx.emit(ops.Prelu, x=x, alpha=ctx.const(w))


@converter(F.elu, F.elu_, "elu", "elu_",
           sig=lambda input, alpha=1.0, inplace=False: None,
           modules={nn.ELU: lambda m: {"alpha": m.alpha}})
def elu(ctx: Ctx, a: dict) -> Any:
    return _elu(ctx, a["input"], float(a["alpha"]))


def _elu(ctx: Ctx, x: Any, alpha: float) -> Any:
    if alpha < 0:
        raise Refuse("ELU with negative alpha is not supported (NNAPI ELU is defined for alpha >= 0)")
    return ctx.emit(ops.Elu, x=value(x), alpha=alpha)


@converter(*_aten("elu.default", "elu_.default"),
           sig=lambda input, alpha=1.0, scale=1.0, input_scale=1.0: None)
def aten_elu(ctx: Ctx, a: dict) -> Any:
    if a["scale"] != 1 or a["input_scale"] != 1:
        raise Refuse("elu with scale/input_scale (SELU/CELU) is not supported")
    return _elu(ctx, a["input"], float(a["alpha"]))
