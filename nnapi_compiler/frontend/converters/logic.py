"""Comparisons, logic, ``torch.where`` / ``masked_fill`` and argmax / argmin (issue 10).

Comparisons (``==``, ``torch.gt``, ``x.le(0.5)``, ATen ``*.Tensor`` / ``*.Scalar``) become
EQUAL ... GREATER_EQUAL with a TENSOR_BOOL8 result; ``&``, ``|``, ``~`` and ``logical_*`` on bool
tensors become LOGICAL_AND / OR / NOT. ``torch.where`` is SELECT, which does not broadcast, so each
operand is first broadcast exactly (values by MUL with ones, conditions by LOGICAL_OR with false,
Python scalars as full constants). argmax / argmin are ARGMAX / ARGMIN: NNAPI's result is int32
where PyTorch's is int64; the value is carried as TENSOR_INT32 and a model output is cast back
on the host (see ``lower._outputs``). Embedding lookups and ``index_select`` by a tensor are GATHER
with run-time int32 indices (int64 model inputs are narrowed by the wrapper, range-checked).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.codes import OperandCode
from ...ir.types import Value
from ..capture import EXAMPLE
from ..lower import Ctx, _tuple_fields
from ..registry import Refuse, converter
from ._util import axis, static_tensor, value
from .activation import _aten

_BOOL = OperandCode.TENSOR_BOOL8
_I32 = OperandCode.TENSOR_INT32
_F32 = OperandCode.TENSOR_FLOAT32
_DTYPE = {_F32: torch.float32, _I32: torch.int32, _BOOL: torch.bool}


def _const_like(ctx: Ctx, x: Any, code: OperandCode, shape: tuple[int, ...] = (1,)) -> Value:
    """A Python number or constant tensor as a constant of ``code``, refusing lossy changes."""
    dtype = _DTYPE[code]
    t = x.detach() if isinstance(x, torch.Tensor) else torch.tensor(x)
    if t.is_quantized or t.is_complex():
        raise Refuse(f"operand of dtype {t.dtype} is not supported")
    if dtype != torch.float32 and t.is_floating_point():
        raise Refuse(f"mixing a {dtype} tensor with a floating-point operand is not supported")
    if dtype == torch.int32 and t.dtype == torch.int64 and t.numel() and (
            int(t.min()) < -2**31 or int(t.max()) >= 2**31):
        raise Refuse("an int64 constant outside the int32 range")
    if dtype == torch.bool and t.dtype != torch.bool:
        raise Refuse("a bool tensor combined with a number")
    out = torch.empty(shape if t.dim() == 0 else t.shape, dtype=dtype)
    return ctx.const(out.copy_(t))  # a fresh tensor with standard strides (t may be expanded)


def _operands(ctx: Ctx, lhs: Any, rhs: Any) -> tuple[Value, Value]:
    """Both operands as IR values of one NNAPI type (float32, int32 or bool)."""
    vals = [v for v in (lhs, rhs) if isinstance(v, Value)]
    if not vals:
        raise Refuse("neither operand is a tensor computed from the inputs")
    code = vals[0].type.code
    if code not in _DTYPE:
        raise Refuse(f"{code.name} operands are not supported")
    if len(vals) == 2 and vals[1].type.code != code:
        raise Refuse(f"operands of different types ({code.name}, {vals[1].type.code.name})")
    a = lhs if isinstance(lhs, Value) else _const_like(ctx, lhs, code)
    b = rhs if isinstance(rhs, Value) else _const_like(ctx, rhs, code)
    if max(a.type.rank, b.type.rank) > 4:
        raise Refuse("broadcasting beyond rank 4 has no NNAPI form")
    return a, b


def _compare(ctx: Ctx, a: dict, cls: type[ops.NnapiOp]) -> Value:
    x, y = _operands(ctx, a["input"], a["other"])
    return ctx.emit(cls, a=x, b=y)


_SIG = lambda input, other: None  # noqa: E731


def _spellings(*names: str) -> list[Any]:
    """torch functions, Tensor methods and ATen overloads of one comparison."""
    return [*(getattr(torch, n) for n in names if hasattr(torch, n)), *names,
            *_aten(*(f"{n}.{o}" for n in names for o in ("Tensor", "Scalar")))]


@converter(operator.eq, *_spellings("eq", "__eq__"), sig=_SIG, typed=True)
def eq(ctx: Ctx, a: dict) -> Any:
    return _compare(ctx, a, ops.Equal)


@converter(operator.ne, *_spellings("ne", "__ne__", "not_equal"), sig=_SIG, typed=True)
def ne(ctx: Ctx, a: dict) -> Any:
    return _compare(ctx, a, ops.NotEqual)


@converter(operator.lt, *_spellings("lt", "__lt__", "less"), sig=_SIG, typed=True)
def lt(ctx: Ctx, a: dict) -> Any:
    return _compare(ctx, a, ops.Less)


@converter(operator.le, *_spellings("le", "__le__", "less_equal"), sig=_SIG, typed=True)
def le(ctx: Ctx, a: dict) -> Any:
    return _compare(ctx, a, ops.LessEqual)


@converter(operator.gt, *_spellings("gt", "__gt__", "greater"), sig=_SIG, typed=True)
def gt(ctx: Ctx, a: dict) -> Any:
    return _compare(ctx, a, ops.Greater)


@converter(operator.ge, *_spellings("ge", "__ge__", "greater_equal"), sig=_SIG, typed=True)
def ge(ctx: Ctx, a: dict) -> Any:
    return _compare(ctx, a, ops.GreaterEqual)


def _bools(ctx: Ctx, lhs: Any, rhs: Any) -> tuple[Value, Value]:
    x, y = _operands(ctx, lhs, rhs)
    if x.type.code != _BOOL:
        raise Refuse("bitwise operations on non-bool tensors are not supported")
    return x, y


@converter(torch.logical_and, operator.and_, "logical_and", "__and__", "__rand__",
           *_aten("logical_and.default", "bitwise_and.Tensor", "bitwise_and.Scalar",
                  "__and__.Tensor", "__and__.Scalar"), sig=_SIG, typed=True)
def logical_and(ctx: Ctx, a: dict) -> Any:
    x, y = _bools(ctx, a["input"], a["other"])
    return ctx.emit(ops.LogicalAnd, a=x, b=y)


@converter(torch.logical_or, operator.or_, "logical_or", "__or__", "__ror__",
           *_aten("logical_or.default", "bitwise_or.Tensor", "bitwise_or.Scalar",
                  "__or__.Tensor", "__or__.Scalar"), sig=_SIG, typed=True)
def logical_or(ctx: Ctx, a: dict) -> Any:
    x, y = _bools(ctx, a["input"], a["other"])
    return ctx.emit(ops.LogicalOr, a=x, b=y)


@converter(torch.logical_not, operator.invert, "logical_not", "__invert__", "bitwise_not",
           *_aten("logical_not.default", "bitwise_not.default"), sig=lambda input: None, typed=True)
def logical_not(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    if x.type.code != _BOOL:
        raise Refuse("logical_not / ~ of a non-bool tensor is not supported")
    return ctx.emit(ops.LogicalNot, x=x)


def _broadcast(ctx: Ctx, x: Any, code: OperandCode, shape: tuple[int, ...]) -> Value:
    """``x`` broadcast to ``shape`` exactly: constants expanded at compile time, values by
    MUL with ones (x * 1 is x, signed zeros and NaN included) or LOGICAL_OR with false."""
    if not isinstance(x, Value):
        t = x.detach() if isinstance(x, torch.Tensor) else torch.tensor(x)
        if t.dim() > len(shape):
            raise Refuse("operand has more dims than the result")
        return _const_like(ctx, t.expand(shape), code, shape)
    if x.type.code != code:
        raise Refuse(f"where() operands of different types ({x.type.code.name}, {code.name})")
    if tuple(x.type.shape) == shape:
        return x
    src = (1,) * (len(shape) - x.type.rank) + tuple(x.type.shape)
    ones = [t if s == 1 else 1 for s, t in zip(src, shape, strict=True)]
    if code == _BOOL:
        return ctx.emit(ops.LogicalOr, a=x, b=ctx.const(torch.zeros(ones, dtype=torch.bool)))
    return ctx.emit(ops.Mul, a=x, b=ctx.const(torch.ones(ones, dtype=_DTYPE[code])))


def select(ctx: Ctx, cond: Any, x: Any, y: Any) -> Value:
    ex = ctx.example
    shape = tuple(ex.shape) or (1,)
    if len(shape) > 4:
        raise Refuse("where() beyond rank 4 has no NNAPI form")
    code = {torch.float32: _F32, torch.int32: _I32, torch.int64: _I32}.get(ex.dtype)
    if code is None:
        raise Refuse(f"where() producing {ex.dtype} is not supported")
    c = value(cond, "the condition")
    if c.type.code != _BOOL:
        raise Refuse("the condition must be a bool tensor")
    return ctx.emit(ops.Select, cond=_broadcast(ctx, c, _BOOL, shape),
                    x=_broadcast(ctx, x, code, shape), y=_broadcast(ctx, y, code, shape))


@converter("where", sig=lambda input, condition, other: None, typed=True)
def where_method(ctx: Ctx, a: dict) -> Any:
    return select(ctx, a["condition"], a["input"], a["other"])


@converter(torch.where, *_aten("where.self", "where.ScalarOther", "where.ScalarSelf",
                                         "where.Scalar"),
           sig=lambda condition, input, other: None, typed=True)
def where(ctx: Ctx, a: dict) -> Any:
    return select(ctx, a["condition"], a["input"], a["other"])


@converter(torch.masked_fill, "masked_fill", "masked_fill_",
           *_aten("masked_fill.Scalar", "masked_fill.Tensor", "masked_fill_.Scalar",
                  "masked_fill_.Tensor"),
           sig=lambda input, mask, value: None, typed=True)
def masked_fill(ctx: Ctx, a: dict) -> Any:
    fill = a["value"]
    if isinstance(fill, Value):
        raise Refuse("masked_fill with a fill value computed at run time is not supported")
    return select(ctx, a["mask"], fill, a["input"])


def _arg(ctx: Ctx, a: dict, cls: type[ops.ArgMax]) -> Value:
    x = value(a["input"])
    if x.type.code not in (_F32, _I32):
        raise Refuse(f"argmax/argmin of {x.type.code.name} is not supported")
    dim = a["dim"]
    if dim is None:
        if x.type.rank != 1:
            x = ctx.emit(ops.Reshape, x=x, shape=(x.type.numel,))
        dim = 0
    d = axis(dim, x.type.rank)
    y = ctx.emit(cls, x=x, axis=d)
    want = tuple(ctx.example.shape) or (1,)
    if tuple(y.type.shape) != want:  # keepdim: RESHAPE takes INT32 only from FL6
        if a["dim"] is None:
            for _ in range(len(want) - 1):
                y = ctx.emit(ops.ExpandDims, x=y, axis=0)
        else:
            y = ctx.emit(ops.ExpandDims, x=y, axis=d)
    return y


_ARG_SIG = lambda input, dim=None, keepdim=False: None  # noqa: E731


@converter(torch.argmax, "argmax", *_aten("argmax.default"), sig=_ARG_SIG, typed=True)
def argmax(ctx: Ctx, a: dict) -> Any:
    return _arg(ctx, a, ops.ArgMax)


@converter(torch.argmin, "argmin", *_aten("argmin.default"), sig=_ARG_SIG, typed=True)
def argmin(ctx: Ctx, a: dict) -> Any:
    return _arg(ctx, a, ops.ArgMin)


def _indices(x: Any) -> Value:
    idx = value(x, "the indices")
    if idx.type.code != _I32:
        raise Refuse(f"indices of type {idx.type.code.name} are not supported")
    return idx


def _lookup(ctx: Ctx, weight: Any, indices: Any, max_norm: Any) -> Value:
    if max_norm is not None:
        raise Refuse("embedding with max_norm renormalizes its weight in place; not supported")
    w = static_tensor(weight, "the embedding weight")
    if w.dim() != 2:
        raise Refuse("the embedding weight must be 2-D")
    idx = _indices(indices)
    if idx.type.rank + 1 > 4:
        raise Refuse("embedding of indices beyond rank 3 has no NNAPI form")
    return ctx.emit(ops.GatherIndices, x=ctx.const(w), axis=0, indices=idx)


@converter(F.embedding, sig=lambda input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
           scale_grad_by_freq=False, sparse=False: None,
           modules={nn.Embedding: lambda m: {"weight": m.weight, "max_norm": m.max_norm}}, typed=True)
def embedding(ctx: Ctx, a: dict) -> Any:
    """nn.Embedding / F.embedding: GATHER of the weight's rows (padding_idx only affects training)."""
    return _lookup(ctx, a["weight"], a["input"], a["max_norm"])


@converter(*_aten("embedding.default"), sig=lambda weight, indices, padding_idx=-1,
           scale_grad_by_freq=False, sparse=False: None, typed=True)
def embedding_aten(ctx: Ctx, a: dict) -> Any:
    return _lookup(ctx, a["weight"], a["indices"], None)


@converter(torch.index_select, "index_select", *_aten("index_select.default"),
           sig=lambda input, dim, index: None, typed=True)
def index_select(ctx: Ctx, a: dict) -> Any:
    """GATHER along ``dim``: constant indices are immediate, run-time ones an int32 tensor (a
    constant float table indexed at run time is an embedding lookup)."""
    x, index = a["input"], a["index"]
    if isinstance(x, torch.Tensor) and isinstance(index, Value) and x.is_floating_point():
        x = ctx.const(static_tensor(x, "the table"))
    x = value(x)
    if x.type.code not in (_F32, _I32):
        raise Refuse(f"index_select of {x.type.code.name} is not supported")
    d = axis(a["dim"], x.type.rank)
    if isinstance(index, torch.Tensor):
        if index.dim() > 1 or index.is_floating_point():
            raise Refuse("index_select needs a 1-D integer index")
        n = x.type.shape[d]
        flat = [int(i) for i in index.reshape(-1).tolist()]
        if any(not 0 <= i < n for i in flat):  # torch refuses negative indices too
            raise Refuse(f"index_select index out of range for a dim of size {n}")
        return ctx.emit(ops.Gather, x=x, axis=d, indices=tuple(flat))
    idx = _indices(index)
    if idx.type.rank != 1:
        raise Refuse("index_select needs a 1-D index")
    return ctx.emit(ops.GatherIndices, x=x, axis=d, indices=idx)


@converter(torch.topk, "topk", *_aten("topk.default"),
           sig=lambda input, k, dim=-1, largest=True, sorted=True: None, typed=True)
def topk(ctx: Ctx, a: dict) -> Any:
    """TOPK_V2 along the last dim (values sorted descending, int32 indices carried for int64).
    ``largest=False`` on float data is ``-topk(-x)`` (negation is exact). Equal values come out
    larger index first (NNAPI's order); PyTorch leaves the order of ties unspecified."""
    x = value(a["input"])
    if x.type.code not in (_F32, _I32):
        raise Refuse(f"topk of {x.type.code.name} is not supported")
    if axis(a["dim"], x.type.rank) != x.type.rank - 1:
        raise Refuse("topk along a dim other than the last (TOPK_V2 works on the last dim only)")
    if not a["sorted"]:
        raise Refuse("topk(sorted=False) leaves the order unspecified; TOPK_V2 sorts")
    k = int(a["k"])
    largest = bool(a["largest"])
    if not largest and x.type.code != _F32:
        raise Refuse("topk(largest=False) of integers (negation can overflow)")
    src = x if largest else ctx.emit(ops.Neg, x=x)
    values, indices = ctx.b.op(ops.TopK, x=src, k=k).results
    if not largest:
        values = ctx.emit(ops.Neg, x=values)
    return (values, indices)


@converter(getattr, sig=lambda input, name: None, typed=True)
def field(ctx: Ctx, a: dict) -> Any:
    """``.values`` / ``.indices`` of a multi-result op's named tuple (``torch.topk(x, k).values``)."""
    obj, name = a["input"], a["name"]
    if not isinstance(obj, tuple) or ctx.node is None:
        raise Refuse("attribute of something other than an op's result tuple")
    parent = ctx.node.args[0]
    ex = parent.meta.get(EXAMPLE) if isinstance(parent, torch.fx.Node) else None
    fields = _tuple_fields(ex) if isinstance(ex, tuple) and len(ex) == len(obj) else ()
    if name not in fields:
        raise Refuse(f"no field {name!r} in the result")
    return obj[fields.index(name)]
