"""Reduction kernels: MEAN, REDUCE_SUM/MAX/MIN/PROD/ANY/ALL, SOFTMAX, LOG_SOFTMAX, ARGMAX/ARGMIN.

Axes follow NNAPI: duplicates allowed, negative axes count from the end, an empty axis list
reduces nothing (unlike torch, where dim=[] reduces everything), and a result reduced to a
scalar has shape [1]. Quantized MEAN (output params equal the input's) divides the exact int64
sum of the stored values by the count with C division (truncation toward zero), as the
reference's Mean<T, int32_t>; quantized SOFTMAX goes through ``quant_elementwise``.
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode
from .common import norm_axis, scalar_shape
from .quant_elementwise import bind_quant_softmax, check_mandated
from .registry import FLOAT_TYPES, MOVE_TYPES, QUANT8_TYPES, Bound, In, KernelCall, Sig, bound, kernel


def _axes(x: torch.Tensor, axes: list[int]) -> list[int]:
    """Distinct normalized axes, ascending."""
    out: list[int] = []
    for a in axes:
        d = norm_axis(a, x.dim())
        if d not in out:
            out.append(d)
    out.sort()
    return out


def reduce(op: str, x: torch.Tensor, axes: list[int], keep_dims: bool) -> torch.Tensor:
    """MEAN / REDUCE_* over ``axes``; MIN/MAX keep the stored dtype (valid for quant types)."""
    dims = _axes(x, axes)
    if not dims:
        return x if op == "reduce_max" or op == "reduce_min" else x.float()
    if op == "reduce_max":
        y = torch.amax(x, dim=dims, keepdim=keep_dims)
    elif op == "reduce_min":
        y = torch.amin(x, dim=dims, keepdim=keep_dims)
    elif op == "reduce_sum":
        y = torch.sum(x.float(), dim=dims, keepdim=keep_dims)
    elif op == "reduce_prod":
        y = x.float()
        for i in range(len(dims) - 1, -1, -1):  # last axis first keeps indices valid
            y = torch.prod(y, dim=dims[i], keepdim=keep_dims)
    else:
        y = torch.mean(x.float(), dim=dims, keepdim=keep_dims)
    return scalar_shape(y)


def quant_mean(x: torch.Tensor, axes: list[int], keep_dims: bool) -> torch.Tensor:
    """sum(q) / count on the stored values, C division (truncates toward zero)."""
    dims = _axes(x, axes)
    if not dims:
        return x.clone()
    count = 1
    for d in dims:
        count *= x.shape[d]
    if count == 0:
        raise ValueError("MEAN over an empty axis")
    total = torch.sum(x.to(torch.int64), dim=dims, keepdim=keep_dims)
    return scalar_shape(torch.div(total, count, rounding_mode="trunc").to(x.dtype))


@kernel(OpCode.MEAN, inputs=["TIi"], types=FLOAT_TYPES | QUANT8_TYPES, keeps_quant=True)
def _mean(call: KernelCall) -> Bound:
    if call.quantized:
        return bound(quant_mean, In(0), call.ints(1), call.int(2) > 0)
    return bound(reduce, OpCode(call.op).name.lower(), In(0), call.ints(1), call.int(2) > 0)


@kernel(OpCode.REDUCE_SUM, OpCode.REDUCE_PROD, inputs=["TIb"])
def _reduce_arith(call: KernelCall) -> Bound:
    return bound(reduce, OpCode(call.op).name.lower(), In(0), call.ints(1), call.flag(2))


@kernel(
    OpCode.REDUCE_MAX,
    OpCode.REDUCE_MIN,
    inputs=["TIb"],
    types=FLOAT_TYPES | QUANT8_TYPES,
    keeps_quant=True,
)
def _reduce_select(call: KernelCall) -> Bound:
    return bound(reduce, OpCode(call.op).name.lower(), In(0), call.ints(1), call.flag(2))


def reduce_logical(is_any: bool, x: torch.Tensor, axes: list[int], keep_dims: bool) -> torch.Tensor:
    """REDUCE_ANY (logical or) / REDUCE_ALL (logical and) of BOOL8 values over ``axes``."""
    dims = _axes(x, axes)
    y = x
    for i in range(len(dims) - 1, -1, -1):  # last axis first keeps indices valid
        y = torch.any(y, dim=dims[i], keepdim=keep_dims) if is_any else \
            torch.all(y, dim=dims[i], keepdim=keep_dims)
    return scalar_shape(y)


@kernel(OpCode.REDUCE_ANY, OpCode.REDUCE_ALL, inputs=["TIb"], types={"BOOL8"})
def _reduce_logical(call: KernelCall) -> Bound:
    return bound(reduce_logical, call.op == OpCode.REDUCE_ANY, In(0), call.ints(1), call.flag(2))


def softmax(x: torch.Tensor, beta: float, axis: int) -> torch.Tensor:
    """exp((x - max) * beta) / sum, along ``axis``."""
    axis = norm_axis(axis, x.dim())
    x = x.float()
    e = torch.exp((x - torch.amax(x, dim=axis, keepdim=True)) * beta)
    return e / torch.sum(e, dim=axis, keepdim=True)


def log_softmax(x: torch.Tensor, beta: float, axis: int) -> torch.Tensor:
    """(x - max) * beta - log(sum(exp((x - max) * beta))), along ``axis``."""
    axis = norm_axis(axis, x.dim())
    x = x.float()
    z = (x - torch.amax(x, dim=axis, keepdim=True)) * beta
    return z - torch.log(torch.sum(torch.exp(z), dim=axis, keepdim=True))


@kernel(
    OpCode.SOFTMAX,
    inputs=[Sig("Tf", 1, (("i", 3),))],
    types=FLOAT_TYPES | QUANT8_TYPES,
    check=check_mandated,
)
def _softmax(call: KernelCall) -> Bound:
    beta = call.float(1)
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    axis = call.int(2) if len(call.inputs) > 2 else -1
    if call.quantized:
        return bind_quant_softmax(call, beta, norm_axis(axis, call.tensor(0).dim()))
    return bound(softmax, In(0), beta, axis)


@kernel(OpCode.LOG_SOFTMAX, inputs=["Tfi"], rank=(1, 64))
def _log_softmax(call: KernelCall) -> Bound:
    return bound(log_softmax, In(0), call.float(1), call.int(2))


def arg_min_max(x: torch.Tensor, axis: int, is_max: bool) -> torch.Tensor:
    """Index of the first extreme value along ``axis``, as INT32."""
    axis = norm_axis(axis, x.dim())
    if x.shape[axis] == 0:
        raise ValueError("ARGMAX/ARGMIN over an empty axis")
    v = x.float() if x.dtype in (torch.float16, torch.uint8, torch.int8) else x
    y = torch.argmax(v, dim=axis) if is_max else torch.argmin(v, dim=axis)
    return scalar_shape(y.to(torch.int32))


@kernel(OpCode.ARGMAX, OpCode.ARGMIN, inputs=["Ti"], types=MOVE_TYPES, rank=(1, 64))
def _arg_min_max(call: KernelCall) -> Bound:
    return bound(arg_min_max, In(0), call.int(1), call.op == OpCode.ARGMAX)
