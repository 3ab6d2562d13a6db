"""Matrix products: matmul / bmm / ``@`` / einsum, lowered to the best legal form per level.

Forms, by target feature level (both operands computed at run time unless said otherwise):

- a constant 2-D right operand (``x @ W``): one FULLY_CONNECTED with ``W^T`` as its weights, at
  every level;
- FL6+: one BATCH_MATMUL; an operand that is the transpose of its last two dims is read through
  the ``adj`` flag instead of a TRANSPOSE;
- below FL6, one batch (or a 2-D right operand): one FULLY_CONNECTED whose *weights operand is a
  run-time tensor* (NNAPI does not require FC weights to be constant): ``a @ b = FC(a, b^T)``;
- below FL6, several batches: ``MUL`` of ``a[B, M, 1, K]`` and ``b^T[B, 1, N, K]`` then
  ``REDUCE_SUM`` over K (FL3, 4 ops whatever the batch) while the ``[B, M, N, K]`` product stays
  under ``BROADCAST_LIMIT`` elements; otherwise one FULLY_CONNECTED per batch on STRIDED_SLICEs,
  joined by CONCATENATION.

Each form sums the same products, so all are exact up to float summation order, as torch's own
kernels are. Batch dims broadcast as torch.matmul's do when one side has none.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

import torch

from ...ir import ops
from ...ir.ops.base import Op
from ...ir.types import DimOrder, Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import value
from .activation import _aten

#: Largest ``[B, M, N, K]`` broadcast product (elements) the FL3 MUL + REDUCE_SUM form may make.
BROADCAST_LIMIT = 1 << 20


def defining(ctx: Ctx, v: Value) -> Op | None:
    """The op (emitted so far) whose result is ``v``."""
    for op in reversed(ctx.b.ops):
        if v in op.results:
            return op
    return None


def _swap_perm(rank: int) -> tuple[int, ...]:
    return (*range(rank - 2), rank - 1, rank - 2)


def _untransposed(ctx: Ctx, v: Value) -> Value | None:
    """``u`` if ``v`` is ``u`` with its last two dims swapped by a TRANSPOSE, else None."""
    op = defining(ctx, v)
    if (isinstance(op, ops.Transpose) and op.perm == _swap_perm(v.type.rank)
            and op.out_order is DimOrder.CONTIGUOUS and op.x.type.dim_order is DimOrder.CONTIGUOUS):
        return op.x
    return None


def swap_last(ctx: Ctx, v: Value) -> Value:
    """``v`` with its last two dims swapped (reusing the source of a TRANSPOSE that made ``v``)."""
    u = _untransposed(ctx, v)
    return u if u is not None else ctx.emit(ops.Transpose, x=v, perm=_swap_perm(v.type.rank))


def reshape(ctx: Ctx, v: Value, shape: tuple[int, ...]) -> Value:
    if tuple(v.type.shape) == tuple(shape):
        return v
    if len(shape) > 4:
        raise Refuse(f"an intermediate of rank {len(shape)} (> 4) has no NNAPI form")
    return ctx.emit(ops.Reshape, x=v, shape=tuple(shape))


def _fc(ctx: Ctx, x: Value, w: Value) -> Value:
    """x[rows, K] @ w[N, K]^T as one FULLY_CONNECTED (``w`` may be a run-time tensor)."""
    n = w.type.shape[0]
    return ctx.emit(ops.FullyConnected, input=x, weights=w, bias=ctx.const(torch.zeros(n)))


def matmul_runtime(ctx: Ctx, a: Value, b: Value) -> Value:
    """a[*batch, M, K] @ b[*batch, K, N] for equal batch dims (rank 2..4), best form for the level."""
    *batch, m, k = a.type.shape
    n = b.type.shape[-1]
    if a.type.quant is not None or b.type.quant is not None:
        raise Refuse("quantized matrix products are not supported (float only)")
    if a.type.rank != b.type.rank or tuple(b.type.shape[:-2]) != tuple(batch) or b.type.shape[-2] != k:
        raise Refuse(f"matmul of {a.type.shape} and {b.type.shape}: batch dims must match")
    if not 2 <= a.type.rank <= 4:
        raise Refuse(f"matmul of rank {a.type.rank} has no NNAPI form")
    if ctx.level >= ops.BatchMatmul.spec_level():
        ua, ub = _untransposed(ctx, a), _untransposed(ctx, b)
        return ctx.emit(ops.BatchMatmul, x=ua if ua is not None else a, y=ub if ub is not None else b,
                        adj_x=ua is not None, adj_y=ub is not None)
    bt = swap_last(ctx, b)  # [*batch, N, K]: FC weights and the broadcast form both want b^T
    nb = math.prod(batch)
    if nb == 1:
        y = _fc(ctx, reshape(ctx, a, (m, k)), reshape(ctx, bt, (n, k)))
    elif nb * m * n * k <= BROADCAST_LIMIT:
        prod = ctx.emit(ops.Mul, a=reshape(ctx, a, (nb, m, 1, k)), b=reshape(ctx, bt, (nb, 1, n, k)))
        y = ctx.emit(ops.ReduceSum, x=prod, axes=(3,), keep_dims=False)
    else:
        a2, b2 = reshape(ctx, a, (nb * m, k)), reshape(ctx, bt, (nb * n, k))
        parts = [
            _fc(ctx, ctx.emit(ops.StridedSlice, x=a2, begin=(i * m, 0), end=((i + 1) * m, k), strides=(1, 1)),
                ctx.emit(ops.StridedSlice, x=b2, begin=(i * n, 0), end=((i + 1) * n, k), strides=(1, 1)))
            for i in range(nb)
        ]
        y = ctx.emit(ops.Concatenation, xs=tuple(parts), axis=0)
    return reshape(ctx, y, (*batch, m, n))


def matmul_any(ctx: Ctx, a: Any, b: Any) -> Value:
    """torch.matmul semantics for run-time or constant operands (1-D and broadcast batch cases)."""
    if not isinstance(a, Value) and not isinstance(b, Value):
        raise Refuse("matmul of two constants")  # folded before lowering; never reached
    if isinstance(b, torch.Tensor) and b.dim() == 2 and isinstance(a, Value) and a.type.quant is None:
        w = b.detach().float()
        x = a if a.type.rank >= 2 else reshape(ctx, a, (1, a.type.shape[0]))
        y = ctx.emit(ops.FullyConnected, input=x, weights=ctx.const(w.t().contiguous()),
                     bias=ctx.const(torch.zeros(w.shape[1])))
        return reshape(ctx, y, (*a.type.shape[:-1], w.shape[1]))
    a, b = ctx.tensor(a), ctx.tensor(b)
    sa, sb = tuple(a.type.shape), tuple(b.type.shape)
    if len(sa) == 1:
        return reshape(ctx, matmul_any(ctx, reshape(ctx, a, (1, sa[0])), b), (*sb[:-2], sb[-1]))
    if len(sb) == 1:
        return reshape(ctx, matmul_any(ctx, a, reshape(ctx, b, (sb[0], 1))), sa[:-1])
    if sa[:-2] == sb[:-2]:
        return matmul_runtime(ctx, a, b)
    if len(sb) == 2:  # batches of a against one matrix: fold a's batch into its rows
        rows = math.prod(sa[:-1])
        y = matmul_runtime(ctx, reshape(ctx, a, (rows, sa[-1])), b)
        return reshape(ctx, y, (*sa[:-1], sb[-1]))
    if len(sa) == 2:  # one matrix against batches of b: (b^T a^T)^T, b's batch folded into rows
        bt = swap_last(ctx, b)  # [*batch, N, K]
        rows = math.prod(sb[:-2]) * sb[-1]
        y = matmul_runtime(ctx, reshape(ctx, bt, (rows, sb[-2])), swap_last(ctx, a))  # [rows, M]
        return swap_last(ctx, reshape(ctx, y, (*sb[:-2], sb[-1], sa[0])))
    raise Refuse(f"matmul broadcasting batch dims {sa[:-2]} against {sb[:-2]} is not supported")


@converter(torch.matmul, operator.matmul, "matmul", "__matmul__", *_aten("matmul.default"),
           sig=lambda input, other: None)
def matmul(ctx: Ctx, a: dict) -> Any:
    return matmul_any(ctx, a["input"], a["other"])


@converter(torch.bmm, "bmm", *_aten("bmm.default"), sig=lambda input, mat2: None)
def bmm(ctx: Ctx, a: dict) -> Any:
    x = a["input"]
    if isinstance(x, Value) and x.type.rank != 3:
        raise Refuse(f"bmm needs rank-3 operands, got {x.type.shape}")
    return matmul_any(ctx, x, a["mat2"])


@converter(torch.mm, "mm", *_aten("mm.default"), sig=lambda input, mat2: None)
def mm(ctx: Ctx, a: dict) -> Any:
    return matmul_any(ctx, a["input"], a["mat2"])


@converter(torch.addmm, "addmm", *_aten("addmm.default"),
           sig=lambda input, mat1, mat2, beta=1, alpha=1: None)
def addmm(ctx: Ctx, a: dict) -> Any:
    """``beta * input + alpha * (mat1 @ mat2)``: a linear layer with a constant weight and bias
    is one FULLY_CONNECTED; otherwise the matrix product, then MUL / ADD as needed."""
    bias, x, w, beta, alpha = a["input"], a["mat1"], a["mat2"], a["beta"], a["alpha"]
    if not all(isinstance(k, int | float) for k in (beta, alpha)):
        raise Refuse("addmm with tensor beta/alpha")
    if (isinstance(x, Value) and x.type.quant is None and isinstance(w, torch.Tensor)
            and w.dim() == 2 and isinstance(bias, torch.Tensor) and bias.numel() == w.shape[1]
            and bias.dim() <= 1 and beta == 1 and alpha == 1):
        return ctx.emit(ops.FullyConnected, input=x, weights=ctx.const(w.detach().float().t().contiguous()),
                        bias=ctx.const(bias.detach().float().reshape(-1)))
    y = matmul_any(ctx, x, w)
    if alpha != 1:
        y = ctx.emit(ops.Mul, a=y, b=ctx.tensor(float(alpha)))
    if beta == 0:
        return y
    if isinstance(bias, torch.Tensor):
        return ctx.emit(ops.Add, a=y, b=ctx.tensor(bias.detach().float() * beta))
    if beta != 1:
        bias = ctx.emit(ops.Mul, a=value(bias), b=ctx.tensor(float(beta)))
    return ctx.emit(ops.Add, a=y, b=ctx.tensor(bias))


def _permute(ctx: Ctx, v: Value, perm: list[int]) -> Value:
    return v if perm == sorted(perm) else ctx.emit(ops.Transpose, x=v, perm=tuple(perm))


def _parse(eq: str, n: int) -> tuple[list[str], str]:
    eq = eq.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if "." in eq or len(terms) != n or not all(re.fullmatch("[a-zA-Z]*", t) for t in (*terms, out)):
        raise Refuse(f"einsum {eq!r}: only explicit letter subscripts are supported")
    if not arrow:  # implicit output: letters seen once, in alphabetical order
        out = "".join(sorted(c for c in set(lhs) if lhs.count(c) == 1 and c != ","))
    if any(len(set(t)) != len(t) for t in (*terms, out)):
        raise Refuse(f"einsum {eq!r}: repeated subscripts (diagonals) are not supported")
    return terms, out


@converter(torch.einsum, *_aten("einsum.default"), sig=lambda equation, *operands: None)
def einsum(ctx: Ctx, a: dict) -> Any:
    """Two operands: permute + reshape to one batched matmul ([batch, M, K] @ [batch, K, N]); one
    operand: a permute and a REDUCE_SUM. Letters in only one input and not the output are summed
    out first."""
    xs = a["operands"]
    if len(xs) == 1 and isinstance(xs[0], list | tuple):
        xs = tuple(xs[0])
    terms, out = _parse(a["equation"], len(xs))
    vals = [value(x, "einsum operand") if isinstance(x, Value) else ctx.tensor(x) for x in xs]
    size = {c: d for t, v in zip(terms, vals, strict=True) for c, d in zip(t, v.type.shape, strict=True)}
    for i, (t, v) in enumerate(zip(terms, vals, strict=True)):  # sum out letters used nowhere else
        others = out + "".join(terms[j] for j in range(len(terms)) if j != i)
        lone = [k for k, c in enumerate(t) if c not in others]
        if len(lone) == len(t):
            raise Refuse("einsum reducing an operand to a scalar is not supported")
        if lone:
            vals[i] = ctx.emit(ops.ReduceSum, x=v, axes=tuple(lone), keep_dims=False)
            terms[i] = "".join(c for c in t if c in others)
    if len(vals) == 1:
        (t,) = terms
        return _permute(ctx, vals[0], [t.index(c) for c in out])
    (ta, tb), (va, vb) = terms, vals
    batch = [c for c in out if c in ta and c in tb]
    ms = [c for c in out if c in ta and c not in tb]
    ns = [c for c in out if c in tb and c not in ta]
    ks = [c for c in ta if c in tb and c not in out]
    pa = _permute(ctx, va, [ta.index(c) for c in (*batch, *ms, *ks)])
    pb = _permute(ctx, vb, [tb.index(c) for c in (*batch, *ks, *ns)])
    nb, m, k, n = (math.prod(size[c] for c in g) for g in (batch, ms, ks, ns))
    lead = (nb,) if batch else ()
    y = matmul_runtime(ctx, reshape(ctx, pa, (*lead, m, k)), reshape(ctx, pb, (*lead, k, n)))
    order = [*batch, *ms, *ns]
    y = reshape(ctx, y, tuple(size[c] for c in order) or (1,))
    return _permute(ctx, y, [order.index(c) for c in out]) if out else y
