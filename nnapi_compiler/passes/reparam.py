"""Structural reparameterization: parallel linear branches of one input, summed, become one conv.

RepVGG, MobileOne, FastViT and RepGhost train with parallel branches that read the same tensor
``x``: a kxk conv, a 1x1 conv, an identity (often through its own BatchNorm), summed. Once
``fold-bn`` has folded each branch's BatchNorm into its conv, every branch is a linear function of
``x`` and so is their sum, which is one conv:

    conv_a(x) + conv_b(x)  ==  conv(x; w_a ⊕ w_b, b_a + b_b)
    conv_a(x) + (x * s + t) ==  conv(x; w_a + s·δ, b_a + t)

where ``⊕`` pads both kernels to the union of their receptive windows (each placed at its own
offset, so a 1x1 branch sits at the centre of a 3x3 one when their paddings say so) and ``δ`` is
the identity as a kernel: a delta at the window position that reads ``x`` at the output's own
pixel, on the channel diagonal (per group for grouped convs, per channel for depthwise ones).

The rule fires on one ADD at a time; an ADD of two terms over the same ``x`` (at least one a conv)
becomes one conv, which the next ADD of a longer sum (``a + b + c``, ``out += branch``) sees as a
term in its turn, so whole branch trees collapse. A term is a conv of ``x`` (weights and bias
constant, no fused activation, read only by this ADD), ``x * s (+ t ...)`` with per-channel
constants, or ``x`` itself. SUB merges with the second term negated, and a MUL of a conv by a
per-channel constant scales it (FastViT's RepMixer ``x + g * (mixer(x) - norm(x))``). The ADD's
fused activation moves to the merged conv. Exactness: only zeros are
added to kernels and every window position reads the same input element as before (zero padding
on both sides), so the result equals the sum up to float32 rounding of the summed weights.
Float32 only: quantized kernels would need a new scale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import attrs
import torch

from ..ir import ops
from ..ir.codes import FuseCode, OperandCode
from ..ir.ops.base import Op
from ..ir.ops.conv import HW, Padding, out_size
from ..ir.program import Program
from ..ir.types import DimOrder, Value
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops

_CONVS = (ops.Conv2d, ops.DepthwiseConv2d, ops.GroupedConv2d)


@attrs.frozen
class _Term:
    """One summand: ``conv`` applied to ``x``, or the per-channel affine ``x * scale + shift``."""

    x: Value
    conv: Op | None = None
    scale: torch.Tensor | None = None  # [C] (affine terms only)
    shift: torch.Tensor | None = None  # [C]


def _f32_image(v: Value) -> bool:
    t = v.type
    return (getattr(t, "code", None) == OperandCode.TENSOR_FLOAT32 and t.rank == 4  # type: ignore[union-attr]
            and t.dim_order is DimOrder.CONTIGUOUS and t.quant is None)  # type: ignore[union-attr]


def _channel_vector(rw: Rewriter, v: Value, channels: int) -> torch.Tensor | None:
    """Constant ``v`` as one float per channel (dim 1 of a rank-4 NCHW value), if it is that."""
    c = rw.constant(v)
    if c is None or v.type.dim_order is not DimOrder.CONTIGUOUS or c.data.dtype != torch.float32:
        return None
    data = c.data
    if data.numel() == 1:
        return data.reshape(1).expand(channels).clone()
    want = [1, channels, 1, 1]
    if data.numel() != channels or list(data.shape) not in (want, want[1:]):
        return None
    return data.reshape(-1)


def _conv_term(rw: Rewriter, v: Value) -> _Term | None:
    op = rw.defining(v)
    if not isinstance(op, _CONVS) or op.fuse != FuseCode.FUSED_NONE or op.dilation != HW(1, 1):
        return None
    if op.out_quant is not None or not _f32_image(op.input) or not rw.single_use(v):
        return None
    w, b = rw.constant(op.filter), rw.constant(op.bias)
    if w is None or b is None or w.data.dtype != torch.float32 or b.data.dtype != torch.float32:
        return None
    return _Term(op.input, conv=op)


def _affine_term(rw: Rewriter, v: Value) -> _Term:
    """``v`` as ``x * s + t`` (MUL and ADD by per-channel constants, read once), else as ``x``."""
    channels = v.type.shape[1]  # type: ignore[union-attr]
    shift = scale = None
    op = rw.defining(v)
    while isinstance(op, ops.Add) and op.fuse == FuseCode.FUSED_NONE and rw.single_use(v):
        for a, b in ((op.a, op.b), (op.b, op.a)):  # (x * s + t) + t2 ...: shifts add up
            t = _channel_vector(rw, b, channels)
            if t is not None and a.type == v.type:
                shift, v = (t if shift is None else shift + t), a
                break
        else:
            break
        op = rw.defining(v)
    op = rw.defining(v)
    if isinstance(op, ops.Mul) and op.fuse == FuseCode.FUSED_NONE and rw.single_use(v):
        for a, b in ((op.a, op.b), (op.b, op.a)):
            s = _channel_vector(rw, b, channels)
            if s is not None and a.type == v.type:
                scale, v = s, a
                break
    one = torch.ones(channels)
    return _Term(v, scale=one if scale is None else scale,
                 shift=torch.zeros(channels) if shift is None else shift)


def _term(rw: Rewriter, v: Value) -> _Term | None:
    if not _f32_image(v):
        return None
    return _conv_term(rw, v) or _affine_term(rw, v)


def _window(op: Op) -> tuple[int, int, int, int]:
    """(first row, first col, kh, kw) the kernel reads, relative to output pixel x stride."""
    _, kh, kw, _ = op.filter.type.shape  # type: ignore[attr-defined]
    return -op.padding.top, -op.padding.left, kh, kw  # type: ignore[attr-defined]


def _as_kernel(term: _Term, like: Op, rw: Rewriter) -> tuple[torch.Tensor, torch.Tensor, tuple] | None:
    """``term`` as (filter in ``like``'s layout, bias, window), or None if ``like`` cannot hold it."""
    if term.conv is not None:
        c = term.conv
        if type(c) is not type(like) or c.stride != like.stride:  # type: ignore[attr-defined]
            return None
        if getattr(c, "groups", 1) != getattr(like, "groups", 1) or \
                getattr(c, "multiplier", 1) != getattr(like, "multiplier", 1):
            return None
        return rw.constant(c.filter).data, rw.constant(c.bias).data, _window(c)  # type: ignore[attr-defined, union-attr]
    # The identity (scaled): a 1x1 kernel at offset 0, which needs stride 1 and Cout == Cin.
    if like.stride != HW(1, 1) or like.result.type != term.x.type or \
            getattr(like, "multiplier", 1) != 1:
        return None
    cout = like.result.type.shape[1]
    assert term.scale is not None and term.shift is not None
    if isinstance(like, ops.DepthwiseConv2d):
        w = term.scale.reshape(1, 1, 1, cout).clone()
    else:
        per_group = like.filter.type.shape[3]  # type: ignore[attr-defined]
        w = torch.zeros(cout, 1, 1, per_group)
        idx = torch.arange(cout)
        w[idx, 0, 0, idx % per_group] = term.scale
    return w, term.shift, (0, 0, 1, 1)


def _merge(rw: Rewriter, add: Op, conv: Op, other: _Term, signs: tuple[float, float] = (1, 1)
           ) -> Op | None:
    mine = _as_kernel(_Term(conv.input, conv=conv), conv, rw)  # type: ignore[attr-defined]
    theirs = _as_kernel(other, conv, rw)
    if mine is None or theirs is None:
        return None
    (w1, b1, (r1, c1, h1, k1)), (w2, b2, (r2, c2, h2, k2)) = mine, theirs
    if signs != (1, 1):
        w1, b1, w2, b2 = w1 * signs[0], b1 * signs[0], w2 * signs[1], b2 * signs[1]
    top, left = min(r1, r2), min(c1, c2)
    kh, kw = max(r1 + h1, r2 + h2) - top, max(c1 + k1, c2 + k2) - left
    w = torch.zeros(w1.shape[0], kh, kw, w1.shape[3], dtype=torch.float32)
    w[:, r1 - top:r1 - top + h1, c1 - left:c1 - left + k1, :] += w1
    w[:, r2 - top:r2 - top + h2, c2 - left:c2 - left + k2, :] += w2
    _, _, in_h, in_w = conv.input.type.shape  # type: ignore[attr-defined]
    _, _, oh, ow = add.result.type.shape
    s = conv.stride  # type: ignore[attr-defined]
    bottom = max(0, (oh - 1) * s.h + kh - in_h + top)
    right = max(0, (ow - 1) * s.w + kw - in_w + left)
    if out_size(in_h, kh, s.h, 1, -top, bottom) != oh or out_size(in_w, kw, s.w, 1, -left, right) != ow:
        return None
    return attrs.evolve(conv, results=add.results, filter=rw.b.const(w, owned=True),
                        bias=rw.b.const((b1 + b2).contiguous(), owned=True),
                        padding=Padding(-top, bottom, -left, right), fuse=add.fuse)


def _shifted_conv(rw: Rewriter, add: Op, a: Value, b: Value, sign: float = 1.0,
                  merged: frozenset[int] | set[int] = frozenset()) -> Op | None:
    """A merged sum plus a per-channel constant (``fold-bn`` ran before the sum was one conv),
    or any conv plus one under a fused activation (which ``fold-bn`` leaves alone)."""
    term = _conv_term(rw, a) if _f32_image(a) else None
    if term is None or term.conv is None or add.result.type != a.type:
        return None
    if a.id not in merged and add.fuse == FuseCode.FUSED_NONE:  # type: ignore[attr-defined]
        return None  # fold-bn's job (and its ablation stays meaningful)
    t = _channel_vector(rw, b, a.type.shape[1])  # type: ignore[union-attr]
    if t is None:
        return None
    bias = rw.constant(term.conv.bias).data + sign * t  # type: ignore[attr-defined, union-attr]
    return attrs.evolve(term.conv, results=add.results, fuse=add.fuse,
                        bias=rw.b.const(bias.contiguous(), owned=True))


def _sum_of_branches(rw: Rewriter, add: Op, merged: set[int]) -> Op | None:
    for a, b in ((add.a, add.b), (add.b, add.a)):  # type: ignore[attr-defined]
        if isinstance(add, ops.Sub) and a is not add.a:  # type: ignore[attr-defined]
            break  # t - conv(x) would negate the conv: left to the branch rule
        shifted = _shifted_conv(rw, add, a, b, -1.0 if isinstance(add, ops.Sub) else 1.0, merged)
        if shifted is not None:
            return shifted
    if add.a.type != add.b.type or add.a.id == add.b.id:  # type: ignore[attr-defined]
        return None
    terms = [_term(rw, add.a), _term(rw, add.b)]  # type: ignore[attr-defined]
    if None in terms:
        return None
    t0, t1 = terms
    assert t0 is not None and t1 is not None
    if t0.x.id != t1.x.id:
        return None
    signs = (1.0, -1.0) if isinstance(add, ops.Sub) else (1.0, 1.0)
    if t0.conv is None:
        t0, t1, signs = t1, t0, (signs[1], signs[0])
    if t0.conv is None:
        return None
    return _merge(rw, add, t0.conv, t1, signs)


def _scaled_conv(rw: Rewriter, mul: Op, merged: set[int]) -> Op | None:
    """A merged conv times a per-channel constant (FastViT's layer scale on its branches)."""
    if mul.fuse != FuseCode.FUSED_NONE:  # type: ignore[attr-defined]
        return None
    for a, b in ((mul.a, mul.b), (mul.b, mul.a)):  # type: ignore[attr-defined]
        term = _conv_term(rw, a) if _f32_image(a) and a.id in merged else None
        if term is None or term.conv is None or mul.result.type != a.type:
            continue
        s = _channel_vector(rw, b, a.type.shape[1])  # type: ignore[union-attr]
        if s is None:
            continue
        conv = term.conv
        field, axis = conv.weighted  # type: ignore[misc]
        w = rw.constant(getattr(conv, field)).data  # type: ignore[union-attr]
        shape = [1] * w.dim()
        shape[axis] = -1
        bias = rw.constant(conv.bias).data * s  # type: ignore[attr-defined, union-attr]
        return attrs.evolve(conv, results=mul.results, bias=rw.b.const(bias, owned=True),
                            **{field: rw.b.const((w * s.reshape(shape)).contiguous(), owned=True)})
    return None


@register
@attrs.frozen
class Reparameterize:
    """Merge summed parallel conv / affine / identity branches of one input into one conv."""

    name: ClassVar[str] = "reparameterize"

    def run(self, program: Program) -> PassResult:
        merged: set[int] = set()  # results of convs this pass built

        def track(rule: Callable[[Rewriter, Op, set[int]], Op | None]) -> Callable:
            def apply(rw: Rewriter, op: Op) -> Op | None:
                new = rule(rw, op, merged)
                if new is not None:
                    merged.add(new.results[0].id)
                return new
            return apply

        p, changed = rewrite_ops(program, {ops.Add: track(_sum_of_branches),
                                           ops.Sub: track(_sum_of_branches),
                                           ops.Mul: track(_scaled_conv)})
        return PassResult(p, changed)
