"""BatchNorm2d in eval mode: a per-channel multiply-add with folded constants."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ..lower import Ctx
from ..registry import Misuse, converter
from ._util import static_tensor, value
from .activation import _aten


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
