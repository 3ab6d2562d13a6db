"""Arithmetic: add/sub/mul/div with tensors or Python scalars, broadcasting, alpha; neg; identities.

Python operators (``x + y``, ``x += y``), torch functions, tensor methods (incl. in-place) and
ATen overloads all land here. A Python scalar becomes a one-element broadcast constant.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import nn

from ...ir import ops
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Misuse, Refuse, converter
from ._util import value
from .activation import _aten

_Binary = type[ops.Add] | type[ops.Sub] | type[ops.Mul] | type[ops.Div]


def _is_num(x: Any) -> bool:
    return isinstance(x, bool | int | float)


def _check_float(x: Any) -> None:
    if isinstance(x, torch.Tensor) and not x.is_floating_point():
        raise Refuse(f"arithmetic with a {x.dtype} tensor is not supported")


def binary(ctx: Ctx, cls: _Binary, lhs: Any, rhs: Any) -> Any:
    _check_float(lhs)
    _check_float(rhs)
    if not isinstance(lhs, Value) and not isinstance(rhs, Value):
        raise Refuse("neither operand is a tensor computed from the inputs")
    a, b = ctx.tensor(lhs), ctx.tensor(rhs)
    if max(a.type.rank, b.type.rank) > 4:
        raise Refuse("broadcast arithmetic beyond rank 4 has no NNAPI form")
    return ctx.emit(cls, a=a, b=b)


def _scaled(ctx: Ctx, other: Any, alpha: Any) -> Any:
    if alpha == 1:
        return other
    if _is_num(other):
        return other * alpha
    if isinstance(other, torch.Tensor):
        return other * alpha
    return ctx.emit(ops.Mul, a=value(other), b=ctx.tensor(float(alpha)))


@converter(torch.add, operator.add, operator.iadd, "add", "add_", "__add__", "__iadd__",
           *_aten("add.Tensor", "add_.Tensor", "add.Scalar", "add_.Scalar"),
           sig=lambda input, other, alpha=1: None)
def add(ctx: Ctx, a: dict) -> Any:
    lhs, rhs = a["input"], _scaled(ctx, a["other"], a["alpha"])
    if _is_num(lhs):
        lhs, rhs = rhs, lhs  # addition commutes; keep the tensor first
    return binary(ctx, ops.Add, lhs, rhs)


@converter("__radd__", sig=lambda input, other: None)
def radd(ctx: Ctx, a: dict) -> Any:
    return binary(ctx, ops.Add, a["input"], a["other"])


@converter(torch.sub, operator.sub, operator.isub, "sub", "sub_", "__sub__", "__isub__",
           *_aten("sub.Tensor", "sub_.Tensor", "sub.Scalar", "sub_.Scalar"),
           sig=lambda input, other, alpha=1: None)
def sub(ctx: Ctx, a: dict) -> Any:
    return binary(ctx, ops.Sub, a["input"], _scaled(ctx, a["other"], a["alpha"]))


@converter(torch.rsub, "__rsub__", *_aten("rsub.Scalar", "rsub.Tensor"),
           sig=lambda input, other, alpha=1: None)
def rsub(ctx: Ctx, a: dict) -> Any:
    return binary(ctx, ops.Sub, a["other"], _scaled(ctx, a["input"], a["alpha"]))


@converter(torch.mul, operator.mul, operator.imul, "mul", "mul_", "__mul__", "__imul__",
           "__rmul__", *_aten("mul.Tensor", "mul_.Tensor", "mul.Scalar", "mul_.Scalar"),
           sig=lambda input, other: None)
def mul(ctx: Ctx, a: dict) -> Any:
    lhs, rhs = a["input"], a["other"]
    if _is_num(lhs):
        lhs, rhs = rhs, lhs
    return binary(ctx, ops.Mul, lhs, rhs)


@converter(torch.div, torch.true_divide, operator.truediv, operator.itruediv, "div", "div_",
           "true_divide", "__truediv__", "__itruediv__",
           *_aten("div.Tensor", "div_.Tensor", "div.Scalar", "div_.Scalar"),
           sig=lambda input, other, rounding_mode=None: None)
def div(ctx: Ctx, a: dict) -> Any:
    if a["rounding_mode"] is not None:
        raise Refuse(f"division with rounding_mode={a['rounding_mode']!r} is not supported")
    return binary(ctx, ops.Div, a["input"], a["other"])


@converter("__rtruediv__", sig=lambda input, other: None)
def rtruediv(ctx: Ctx, a: dict) -> Any:
    return binary(ctx, ops.Div, a["other"], a["input"])


@converter(torch.neg, operator.neg, "neg", "neg_", "__neg__", *_aten("neg.default"),
           sig=lambda input: None)
def neg(ctx: Ctx, a: dict) -> Any:
    return ctx.emit(ops.Neg, x=value(a["input"]))


@converter("contiguous", "detach", "clone", torch.clone, torch.detach,
           *_aten("clone.default", "detach.default", "alias.default", "contiguous.default"),
           sig=lambda input, *args, **kwargs: None,
           modules={nn.Identity: lambda m: {},
                    # quantized Dropout is the identity in every mode (its forward returns input)
                    torch.ao.nn.quantized.Dropout: lambda m: {}})
def identity(ctx: Ctx, a: dict) -> Any:
    return value(a["input"])


def _dropout_module(m: nn.Dropout) -> dict[str, Any]:
    return {"training": m.training}


_DROPOUT_MODULES = {m: _dropout_module for m in (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)}
_F = torch.nn.functional


@converter(_F.dropout, _F.dropout1d, _F.dropout2d, _F.dropout3d, _F.alpha_dropout,
           _F.feature_alpha_dropout, torch.dropout, torch.feature_dropout, torch.alpha_dropout,
           torch.feature_alpha_dropout,
           *_aten("dropout.default", "feature_dropout.default", "alpha_dropout.default",
                  "feature_alpha_dropout.default"),
           sig=lambda input, p=0.5, training=True, inplace=False: None,
           modules=_DROPOUT_MODULES)
def dropout(ctx: Ctx, a: dict) -> Any:
    """Every dropout variant in eval mode (and p == 0) is the identity."""
    if a["training"] and a["p"] == 0:
        return value(a["input"])
    if a["training"]:
        raise Misuse("dropout in training mode; call model.eval() first")
    return value(a["input"])


def _torchvision_stochastic_depth() -> list:
    """torchvision.ops.stochastic_depth when torchvision is installed (it is optional)."""
    try:
        from torchvision.ops import stochastic_depth
    except ImportError:
        return []
    return [stochastic_depth]


@converter(*_torchvision_stochastic_depth(),
           sig=lambda input, p, mode, training=True: None)
def stochastic_depth(ctx: Ctx, a: dict) -> Any:
    if a["training"] and a["p"] > 0:
        raise Misuse("stochastic depth in training mode; call model.eval() first")
    return value(a["input"])
