"""Normalization: BatchNorm in eval mode (a per-channel multiply-add with folded constants);
LayerNorm, GroupNorm and InstanceNorm as exact FL3 decompositions (see below); LocalResponseNorm
as LOCAL_RESPONSE_NORMALIZATION (odd sizes) or a banded 1x1 convolution (even ones)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Misuse, Refuse, converter
from ._util import static_tensor, value
from .activation import _aten
from .conv import emit_conv2d


def _bn_module(m: nn.BatchNorm2d) -> dict[str, Any]:
    if m.training or m.running_mean is None:
        raise Misuse("BatchNorm2d must be in eval mode with running statistics")
    return {"running_mean": m.running_mean, "running_var": m.running_var, "weight": m.weight,
            "bias": m.bias, "training": False, "eps": m.eps}


def batch_norm_value(ctx: Ctx, a: dict) -> Any:
    if a["training"]:
        raise Misuse("batch_norm in training mode")
    x = value(a["input"])
    mean = static_tensor(a["running_mean"], "running_mean")
    var = static_tensor(a["running_var"], "running_var")
    c = mean.numel()
    w = static_tensor(a["weight"], "weight") if a["weight"] is not None else torch.ones(c)
    b = static_tensor(a["bias"], "bias") if a["bias"] is not None else torch.zeros(c)
    scale = w / torch.sqrt(var + a["eps"])
    shift = b - mean * scale
    bshape = [c] + [1] * (x.type.rank - 2)
    y = ctx.emit(ops.Mul, a=x, b=ctx.const(scale.reshape(bshape)))
    return ctx.emit(ops.Add, a=y, b=ctx.const(shift.reshape(bshape)))


@converter(F.batch_norm,
           sig=lambda input, running_mean, running_var, weight=None, bias=None, training=False,
           momentum=0.1, eps=1e-5: None,
           modules={nn.BatchNorm2d: _bn_module, nn.BatchNorm1d: _bn_module})
def batch_norm(ctx: Ctx, a: dict) -> Any:
    return batch_norm_value(ctx, a)


@converter(*_aten("batch_norm.default"),
           sig=lambda input, weight, bias, running_mean, running_var, training, momentum, eps,
           cudnn_enabled=False: None)
def aten_batch_norm(ctx: Ctx, a: dict) -> Any:
    return batch_norm_value(ctx, a)


# -- LayerNorm, GroupNorm, InstanceNorm: statistics over axes, in two passes like PyTorch --------
#
# NNAPI has no layer or group normalization. Each is built from MEAN, SUB, MUL, ADD and RSQRT
# (FL3): mean, centred values, population variance (mean of squares of the centred values, as
# PyTorch computes it), then (x - mean) * rsqrt(var + eps) and the per-element affine. Group
# statistics are channel means averaged within each group by a 1x1 GROUPED_CONV_2D whose
# weights are 1 / (channels per group): a spatial op, so an NHWC image stays NHWC with no
# reshape or transpose (mean of equal-sized means is the group mean). One channel per group on an
# image (InstanceNorm2d, GroupNorm(C, C)) is NNAPI's INSTANCE_NORMALIZATION.


def normalize(ctx: Ctx, x: Value, stats: Any) -> tuple[Value, Value]:
    """(x - mean, population variance), ``stats(t)`` giving the broadcastable mean of ``t``."""
    d = ctx.emit(ops.Sub, a=x, b=stats(x))
    var = stats(ctx.emit(ops.Mul, a=d, b=d))
    return d, var


def _finish(ctx: Ctx, d: Value, var: Value, eps: float, weight: Any, bias: Any,
            shape: tuple[int, ...]) -> Value:
    r = ctx.emit(ops.Rsqrt, x=ctx.emit(ops.Add, a=var, b=ctx.tensor(float(eps))))
    return _affine(ctx, ctx.emit(ops.Mul, a=d, b=r), weight, bias, shape)


def _affine(ctx: Ctx, y: Value, weight: Any, bias: Any, shape: tuple[int, ...]) -> Value:
    if weight is not None:
        y = ctx.emit(ops.Mul, a=y, b=ctx.const(static_tensor(weight, "weight").reshape(shape)))
    if bias is not None:
        y = ctx.emit(ops.Add, a=y, b=ctx.const(static_tensor(bias, "bias").reshape(shape)))
    return y


def layer_norm_value(ctx: Ctx, x: Any, normalized_shape: Any, weight: Any, bias: Any,
                     eps: float) -> Value:
    x = value(x)
    if x.type.quant is not None:
        raise Refuse("quantized layer_norm is not supported")
    shape = tuple(int(s) for s in normalized_shape)
    r = x.type.rank
    if not shape or len(shape) > r or tuple(x.type.shape[r - len(shape):]) != shape:
        raise Refuse(f"normalized_shape {shape} does not match the input's last dims {x.type.shape}")
    if r > 4:
        raise Refuse("layer_norm beyond rank 4 has no NNAPI form")
    axes = tuple(range(r - len(shape), r))

    def stats(t: Value) -> Value:
        return ctx.emit(ops.Mean, x=t, axes=axes, keep_dims=True)

    d, var = normalize(ctx, x, stats)
    return _finish(ctx, d, var, eps, weight, bias, shape)


def _ln_module(m: nn.LayerNorm) -> dict[str, Any]:
    return {"normalized_shape": m.normalized_shape, "weight": m.weight, "bias": m.bias, "eps": m.eps}


@converter(F.layer_norm, torch.layer_norm, *_aten("layer_norm.default"),
           sig=lambda input, normalized_shape, weight=None, bias=None, eps=1e-5,
           cudnn_enable=True: None,
           modules={nn.LayerNorm: _ln_module})
def layer_norm(ctx: Ctx, a: dict) -> Any:
    return layer_norm_value(ctx, a["input"], a["normalized_shape"], a["weight"], a["bias"], a["eps"])


def group_norm_value(ctx: Ctx, x: Any, groups: int, weight: Any, bias: Any, eps: float) -> Value:
    """GroupNorm over [N, C, *] (rank 2 to 4); groups == C is instance normalization."""
    x = value(x)
    if x.type.quant is not None:
        raise Refuse("quantized group/instance norm is not supported")
    if not 2 <= x.type.rank <= 4:
        raise Refuse(f"group/instance norm of a rank-{x.type.rank} tensor has no NNAPI form")
    shape = tuple(x.type.shape)
    c = shape[1]
    if groups < 1 or c % groups:
        raise Refuse(f"{c} channels do not split into {groups} groups")
    img = x if len(shape) == 4 else ctx.emit(ops.Reshape, x=x, shape=shape + (1,) * (4 - len(shape)))
    k = c // groups
    spatial_axes = (2, 3)

    def stats(t: Value) -> Value:
        if groups == 1:
            return ctx.emit(ops.Mean, x=t, axes=(1, 2, 3), keep_dims=True)
        m = ctx.emit(ops.Mean, x=t, axes=spatial_axes, keep_dims=True)
        if k == 1:
            return m
        w = torch.full((c, 1, 1, k), 1.0 / k)
        return ctx.emit(ops.GroupedConv2d, input=m, filter=ctx.const(w),
                        bias=ctx.const(torch.zeros(c)), groups=groups)

    if k == 1 and len(shape) == 4:
        # Per-channel statistics of an image: NNAPI's own INSTANCE_NORMALIZATION (FL3), whose
        # scalar gamma/beta leave the per-channel affine to MUL/ADD.
        y = ctx.emit(ops.InstanceNorm, x=img, epsilon=float(eps))
        return _affine(ctx, y, weight, bias, (c, 1, 1))
    d, var = normalize(ctx, img, stats)
    y = _finish(ctx, d, var, eps, weight, bias, (c, 1, 1))
    return y if len(shape) == 4 else ctx.emit(ops.Reshape, x=y, shape=shape)


def _gn_module(m: nn.GroupNorm) -> dict[str, Any]:
    return {"num_groups": m.num_groups, "weight": m.weight, "bias": m.bias, "eps": m.eps}


@converter(F.group_norm, torch.group_norm, *_aten("group_norm.default"),
           sig=lambda input, num_groups, weight=None, bias=None, eps=1e-5,
           cudnn_enabled=True: None,
           modules={nn.GroupNorm: _gn_module})
def group_norm(ctx: Ctx, a: dict) -> Any:
    return group_norm_value(ctx, a["input"], int(a["num_groups"]), a["weight"], a["bias"], a["eps"])


def _in_module(m: nn.modules.instancenorm._InstanceNorm) -> dict[str, Any]:
    return {"running_mean": m.running_mean, "running_var": m.running_var, "weight": m.weight,
            "bias": m.bias, "use_input_stats": m.training or not m.track_running_stats,
            "eps": m.eps}


@converter(F.instance_norm,
           sig=lambda input, running_mean=None, running_var=None, weight=None, bias=None,
           use_input_stats=True, momentum=0.1, eps=1e-5: None,
           modules={nn.InstanceNorm1d: _in_module, nn.InstanceNorm2d: _in_module})
def instance_norm(ctx: Ctx, a: dict) -> Any:
    return instance_norm_value(ctx, a)


@converter(torch.instance_norm, *_aten("instance_norm.default"),
           sig=lambda input, weight, bias, running_mean, running_var, use_input_stats, momentum,
           eps, cudnn_enabled=False: None)
def aten_instance_norm(ctx: Ctx, a: dict) -> Any:
    return instance_norm_value(ctx, a)


def instance_norm_value(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    if not a["use_input_stats"]:  # eval with tracked statistics: a per-channel affine
        return batch_norm_value(ctx, {**a, "training": False})
    if x.type.rank < 3:
        raise Refuse("instance norm needs a spatial dim")
    return group_norm_value(ctx, x, x.type.shape[1], a["weight"], a["bias"], a["eps"])


# -- LocalResponseNorm -------------------------------------------------------------------------
# PyTorch divides x by (k + alpha * mean of x^2 over channels [c - size//2, c + (size-1)//2])^beta,
# the mean always over ``size`` (zero padding counts). For odd ``size`` the window is symmetric,
# which is NNAPI's LOCAL_RESPONSE_NORMALIZATION with radius size//2, bias k and alpha/size. An
# even window is one channel longer on one side, which that op cannot express: it becomes
# x / POW(CONV_2D(x*x), beta), a 1x1 convolution whose banded weights (alpha/size inside each
# channel's window) and bias (k) compute k + alpha * mean exactly up to float32 summation order.


def _lrn_module(m: nn.LocalResponseNorm) -> dict[str, Any]:
    return {"size": m.size, "alpha": m.alpha, "beta": m.beta, "k": m.k}


@converter(F.local_response_norm, sig=lambda input, size, alpha=1e-4, beta=0.75, k=1.0: None,
           modules={nn.LocalResponseNorm: _lrn_module})
def local_response_norm(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    size, alpha, beta, k = int(a["size"]), float(a["alpha"]), float(a["beta"]), float(a["k"])
    if x.type.quant is not None or not 3 <= x.type.rank <= 4:
        raise Refuse("local_response_norm needs a float tensor of rank 3 or 4")
    if size < 1:
        raise Refuse(f"local_response_norm size {size} must be positive")
    if size % 2 == 1 and k != 0.0:
        return ctx.emit(ops.LocalResponseNorm, x=x, axis=1, radius=size // 2, bias=k,
                        alpha=alpha / size, beta=beta)
    # An even window, or k = 0 (NNAPI's op requires a non-zero bias): the banded 1x1 convolution.
    c = x.type.shape[1]
    lo, hi = size // 2, (size - 1) // 2
    band = torch.zeros(c, c, 1, 1)
    for o in range(c):
        band[o, max(0, o - lo): min(c, o + hi + 1)] = alpha / size
    shape = tuple(x.type.shape)
    img = x if len(shape) == 4 else ctx.emit(ops.Reshape, x=x, shape=(*shape, 1))
    sq = ctx.emit(ops.Mul, a=img, b=img)
    den = emit_conv2d(ctx, {"input": sq, "groups": 1, "stride": 1, "dilation": 1, "padding": 0},
                      band, torch.full((c,), k))
    den = ctx.emit(ops.Pow, a=den, b=ctx.const(torch.tensor([beta])))
    y = ctx.emit(ops.Div, a=img, b=den)
    return y if len(shape) == 4 else ctx.emit(ops.Reshape, x=y, shape=shape)
