"""Comparison, logic and SELECT kernels (float, INT32 and BOOL8 operands).

Comparisons broadcast NumPy-style and return BOOL8 (torch.bool). SELECT does not broadcast.
(ARGMAX / ARGMIN live in ``reduce``.)
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode, OperandCode
from .registry import FLOAT_TYPES, Bound, CheckArgs, In, KernelCall, bound, kernel

_ANY_RANK = (1, 64)
_BOOL = OperandCode.TENSOR_BOOL8

_COMPARE = {
    OpCode.EQUAL: "eq",
    OpCode.NOT_EQUAL: "ne",
    OpCode.LESS: "lt",
    OpCode.LESS_EQUAL: "le",
    OpCode.GREATER: "gt",
    OpCode.GREATER_EQUAL: "ge",
}


def compare(op: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``op`` one of eq / ne / lt / le / gt / ge, with broadcasting; float16 compared as is."""
    if op == "eq":
        return torch.eq(a, b)
    if op == "ne":
        return torch.ne(a, b)
    if op == "lt":
        return torch.lt(a, b)
    if op == "le":
        return torch.le(a, b)
    if op == "gt":
        return torch.gt(a, b)
    return torch.ge(a, b)


@kernel(*_COMPARE, inputs=["TT"], types=FLOAT_TYPES | {"INT32", "BOOL8"}, rank=_ANY_RANK)
def _compare(call: KernelCall) -> Bound:
    return bound(compare, _COMPARE[OpCode(call.op)], In(0), In(1))


def logical(op: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LOGICAL_AND ("and") / LOGICAL_OR ("or") of BOOL8 tensors, with broadcasting."""
    return torch.logical_and(a, b) if op == "and" else torch.logical_or(a, b)


@kernel(OpCode.LOGICAL_AND, OpCode.LOGICAL_OR, inputs=["TT"], types={"BOOL8"}, rank=_ANY_RANK)
def _logical(call: KernelCall) -> Bound:
    return bound(logical, "and" if call.op == OpCode.LOGICAL_AND else "or", In(0), In(1))


def logical_not(x: torch.Tensor) -> torch.Tensor:
    return torch.logical_not(x)


@kernel(OpCode.LOGICAL_NOT, inputs=["T"], types={"BOOL8"}, rank=_ANY_RANK)
def _logical_not(call: KernelCall) -> Bound:
    return bound(logical_not, In(0))


def select(cond: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """cond ? x : y; all three of one shape (NNAPI's SELECT does not broadcast)."""
    if cond.shape != x.shape or x.shape != y.shape:
        raise ValueError("SELECT operands must have one shape")
    return torch.where(cond, x, y)


def _check_select(args: CheckArgs) -> str | None:
    cond, x, y = args.inputs
    if cond.code != _BOOL:
        return "SELECT's input 0 must be TENSOR_BOOL8"
    if y.code != x.code or (x.scale, x.zero_point) != (y.scale, y.zero_point):
        return "SELECT's inputs 1 and 2 must have one type"
    out = args.outputs[0]
    if (out.code, out.scale, out.zero_point) != (x.code, x.scale, x.zero_point):
        return "SELECT's output must have its inputs' type"
    return None


@kernel(OpCode.SELECT, inputs=["ttt"], types=FLOAT_TYPES | {"INT32"}, rank=_ANY_RANK,
        check=_check_select, primary=1)
def _select(call: KernelCall) -> Bound:
    return bound(select, In(0), In(1), In(2))


def topk(x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """TOPK_V2: the k largest along the last axis, descending; equal values put the larger index
    first (NNAPI's stated order): a stable descending sort of the reversed axis."""
    n = x.shape[-1]
    if k < 1 or k > n:
        raise ValueError("TOPK_V2 needs 1 <= k <= the last dim")
    values, order = torch.sort(x.flip([-1]), dim=-1, descending=True, stable=True)
    return [values[..., :k].contiguous(), (n - 1 - order[..., :k]).to(torch.int32).contiguous()]


@kernel(OpCode.TOPK_V2, inputs=["Ti"], outputs=2, types=FLOAT_TYPES | {"INT32"}, rank=_ANY_RANK)
def _topk(call: KernelCall) -> Bound:
    return Bound(topk, (In(0), call.int(1)), multi=True)
