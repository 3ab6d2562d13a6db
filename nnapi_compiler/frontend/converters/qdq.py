"""PT2E quantized ops (``quantized_call`` nodes from ``frontend.qdq``): CONV_2D / depthwise /
grouped, TRANSPOSE_CONV_2D, FULLY_CONNECTED, ADD, MUL, CONCATENATION and HARD_SWISH with the
output parameters the graph's quantize node chose; LOGISTIC / TANH / SOFTMAX when those are
NNAPI's mandated output parameters; any other op (or one of these on float operands) as a
float island (DEQUANTIZE, float op, QUANTIZE), which is what the PT2E reference computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import _pytree as pytree

from ...ir import ops
from ...ir.codes import FuseCode, OperandCode
from ...ir.types import Quant, Value
from ..lower import Ctx
from ..qdq import quantize, quantized_call
from ..registry import REGISTRY, Refuse, converter
from ._util import value
from .conv import emit_conv2d, emit_transpose_conv2d
from .quantized import uint8_weight

aten = torch.ops.aten
Emitter = Callable[[Ctx, dict, Quant, FuseCode], Value]

_FUSE = {None: FuseCode.FUSED_NONE, aten.relu.default: FuseCode.FUSED_RELU,
         aten.relu_.default: FuseCode.FUSED_RELU, aten.hardtanh.default: FuseCode.FUSED_RELU6,
         aten.hardtanh_.default: FuseCode.FUSED_RELU6}


_SIGNED = OperandCode.TENSOR_QUANT8_ASYMM_SIGNED
_CODES = {torch.quint8: OperandCode.TENSOR_QUANT8_ASYMM, torch.qint8: _SIGNED}


def _qweight(ctx: Ctx, w: Any, x: Value) -> tuple[torch.Tensor, Quant]:
    """NNAPI weights of the input's 8-bit type: uint8, or int8 for signed activations (FL4)."""
    if not isinstance(w, torch.Tensor) or not w.is_quantized:
        raise Refuse("weight is not quantized")
    ints, q = uint8_weight(w, ctx.node.name if ctx.node else "weight")
    if x.type.code == _SIGNED:  # undo uint8_weight's exact +128 shift
        return (ints.int() - 128).to(torch.int8), Quant(q.scale, q.zero_point - 128)
    return ints, q


def _bias(b: Any, n: int) -> torch.Tensor:
    if b is None:
        return torch.zeros(n)
    if isinstance(b, Value) or not isinstance(b, torch.Tensor):
        raise Refuse("bias must be a constant")
    return b.detach().float()


def _quantized(x: Any) -> Value:
    v = value(x)
    if v.type.quant is None:
        raise Refuse("input is not quantized")
    return v


def _conv(ctx: Ctx, a: dict, out: Quant, fuse: FuseCode) -> Value:
    w, wq = _qweight(ctx, a["weight"], _quantized(a["input"]))
    return emit_conv2d(ctx, a, w, _bias(a["bias"], w.shape[0]), w_quant=wq, fuse=fuse, out_quant=out)


def _tconv(ctx: Ctx, a: dict, out: Quant, fuse: FuseCode) -> Value:
    w, wq = _qweight(ctx, a["weight"], _quantized(a["input"]))  # [Cin, Cout/groups, kh, kw]
    bias = _bias(a["bias"], w.shape[1] * int(a["groups"]))
    return emit_transpose_conv2d(ctx, a, w, bias, w_quant=wq, fuse=fuse, out_quant=out)


def _linear(ctx: Ctx, a: dict, out: Quant, fuse: FuseCode) -> Value:
    x = _quantized(a["input"])
    w, wq = _qweight(ctx, a["weight"], x)
    units = w.shape[0]
    y = ctx.emit(ops.FullyConnected, input=x, weights=ctx.b.const(w, quant=wq),
                 bias=ctx.const(_bias(a["bias"], units)), fuse=fuse, out_quant=out)
    if x.type.rank != 2:
        y = ctx.emit(ops.Reshape, x=y, shape=(*x.type.shape[:-1], units))
    return y


def _binary(cls: type[ops.Add] | type[ops.Mul]) -> Emitter:
    def emit(ctx: Ctx, a: dict, out: Quant, fuse: FuseCode) -> Value:
        if a.get("alpha", 1) != 1:
            raise Refuse("add with alpha != 1")
        return ctx.emit(cls, a=_quantized(a["input"]), b=_quantized(a["other"]), fuse=fuse,
                        out_quant=out)
    return emit


def _cat(ctx: Ctx, a: dict, out: Quant, fuse: FuseCode) -> Value:
    xs = tuple(_quantized(x) for x in a["tensors"])
    return ctx.emit(ops.Concatenation, xs=xs, axis=a["dim"] % xs[0].type.rank, out_quant=out)


def _hardswish(ctx: Ctx, a: dict, out: Quant, fuse: FuseCode) -> Value:
    return ctx.emit(ops.HardSwish, x=_quantized(a["input"]), out_quant=out)


def _fixed(cls: type[ops.Logistic] | type[ops.Tanh] | type[ops.Softmax], scale: float,
           zero_point: int) -> Emitter:
    """LOGISTIC / TANH / SOFTMAX, whose output parameters NNAPI mandates (the zero point shifted
    by -128 for int8): used when the graph's quantize node chose exactly those (NnapiQuantizer
    does), else a float island."""

    def emit(ctx: Ctx, a: dict, out: Quant, fuse: FuseCode) -> Value:
        x = _quantized(a["input"])
        mandated = Quant(scale, zero_point - 128 * (x.type.code == _SIGNED))
        if not _same(out, mandated) or fuse != FuseCode.FUSED_NONE:
            raise Refuse(f"output quantization {out} is not NNAPI's mandated {mandated}")
        if cls is ops.Softmax:
            return ctx.emit(cls, x=x, axis=a["dim"] % x.type.rank, out_quant=out)
        return ctx.emit(cls, x=x, out_quant=out)
    return emit


EMITTERS: dict[Any, Emitter] = {
    aten.conv2d.default: _conv, aten.conv_transpose2d.input: _tconv, aten.linear.default: _linear,
    aten.add.Tensor: _binary(ops.Add), aten.add_.Tensor: _binary(ops.Add),
    aten.mul.Tensor: _binary(ops.Mul), aten.mul_.Tensor: _binary(ops.Mul),
    aten.cat.default: _cat, aten.hardswish.default: _hardswish,
    aten.hardswish_.default: _hardswish,
    aten.sigmoid.default: _fixed(ops.Logistic, 1 / 256, 0),
    aten.sigmoid_.default: _fixed(ops.Logistic, 1 / 256, 0),
    aten.tanh.default: _fixed(ops.Tanh, 1 / 128, 128),
    aten.tanh_.default: _fixed(ops.Tanh, 1 / 128, 128),
    aten.softmax.int: _fixed(ops.Softmax, 1 / 256, 0),
    aten._softmax.default: _fixed(ops.Softmax, 1 / 256, 0),
}


def _bind(fn: Any, args: tuple, kwargs: dict) -> dict:
    entry = REGISTRY.get(fn)
    if entry is None:
        raise Refuse(f"no NNAPI lowering for {fn}")
    return entry.bind(args, kwargs)


def _float_island(ctx: Ctx, fn: Any, post: Any, args: tuple, kwargs: dict, out: Quant) -> Value:
    """DEQUANTIZE the quantized inputs, lower ``fn`` (and ``post``) in float, QUANTIZE."""

    def deq(x: Any) -> Any:
        if isinstance(x, Value) and x.type.quant is not None:
            return ctx.emit(ops.Dequantize, x=x)
        if isinstance(x, torch.Tensor) and x.is_quantized:
            return x.dequantize()
        return x

    bound = _bind(fn, args, kwargs)  # refuses before any op is emitted
    y = REGISTRY[fn].fn(ctx, pytree.tree_map(deq, bound))
    if post is not None:
        bounds = (0.0, 6.0) if post in (aten.hardtanh.default, aten.hardtanh_.default) else ()
        y = REGISTRY[post].fn(ctx, _bind(post, (y, *bounds), {}))
    return ctx.emit(ops.Quantize, x=value(y), quant=out, out_code=_CODES[ctx.example.dtype])


def _out_quant(ctx: Ctx, scale: float, zero_point: int, dtype: torch.dtype) -> Quant:
    if dtype == torch.qint8 and ctx.level < 4:
        raise Refuse("signed int8 activations (QUANT8_ASYMM_SIGNED) need Android 11 (FL4)")
    if dtype not in _CODES:
        raise Refuse(f"quantized activations of dtype {dtype} are not supported")
    return Quant(scale, zero_point)


@converter(quantize, sig=lambda input, scale, zero_point, dtype: None)
def lower_quantize(ctx: Ctx, a: dict) -> Any:
    out = _out_quant(ctx, a["scale"], a["zero_point"], a["dtype"])
    return ctx.emit(ops.Quantize, x=value(a["input"]), quant=out, out_code=_CODES[a["dtype"]])


def _same(q: Quant | None, out: Quant) -> bool:
    if q is None:
        return False
    f32 = torch.tensor([q.scale, out.scale], dtype=torch.float32)
    return bool(f32[0] == f32[1]) and q.zero_point == out.zero_point


@converter(quantized_call, sig=lambda fn, post, scale, zero_point, dtype, *args, **kwargs: None)
def lower_quantized_call(ctx: Ctx, a: dict) -> Any:
    fn, post, args, kwargs = a["fn"], a["post"], a["args"], a["kwargs"]
    out = _out_quant(ctx, a["scale"], a["zero_point"], a["dtype"])
    emitter = EMITTERS.get(fn)
    if emitter is not None:
        try:
            return emitter(ctx, _bind(fn, args, kwargs), out, _FUSE[post])
        except Refuse:
            pass  # e.g. float weights or a float operand: the float island below is exact
    return _float_island(ctx, fn, post, args, kwargs, out)
