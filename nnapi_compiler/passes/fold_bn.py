"""Fold a per-channel affine (BatchNorm in eval mode, lowered as MUL then ADD by constants)
into the preceding convolution or fully connected layer's weights and bias.

y = (conv(x) * s) + t  ==  conv'(x)  with  w'[o] = w[o] * s[o],  b' = b * s + t.
Only when the conv result has no other user, so nothing else observes the unscaled value.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from ..ir import ops
from ..ir.codes import FuseCode
from ..ir.ops.base import Op
from ..ir.program import Program
from ..ir.types import DimOrder, Value
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops


def _per_channel(rw: Rewriter, layer: Op, other: Value) -> torch.Tensor | None:
    """The constant ``other`` as one value per output channel of ``layer``, if it is that."""
    c = rw.constant(other)
    if c is None or other.type.dim_order is not DimOrder.CONTIGUOUS:
        return None
    out = layer.result.type
    channels = out.shape[1] if out.rank >= 2 else None
    data = c.data
    if data.numel() == 1:
        return data.reshape(1).expand(channels).clone()
    if data.numel() != channels:
        return None
    # Must broadcast along dim 1 only: shape [..., C, 1, 1] aligned to the result's dim 1.
    want = [1] * out.rank
    want[1] = channels
    if list(data.shape) != want[len(want) - data.dim():] and list(data.shape) != want:
        return None
    return data.reshape(-1)


def _fold(rw: Rewriter, layer: Op, scale: torch.Tensor | None, shift: torch.Tensor | None) -> Op:
    assert layer.weighted is not None
    field, axis = layer.weighted
    w = rw.constant(getattr(layer, field))
    bias = rw.constant(layer.bias)  # type: ignore[attr-defined]
    assert w is not None and bias is not None  # _foldable_layer checked
    new_w, new_b = w.data, bias.data
    if scale is not None:
        shape = [1] * new_w.dim()
        shape[axis] = -1
        new_w = new_w * scale.reshape(shape)
        new_b = new_b * scale
    if shift is not None:
        new_b = new_b + shift
    # An ADD or SUB leaves the weights as they are: no new constant (and no copy of its bytes).
    weights = getattr(layer, field) if scale is None else rw.b.const(new_w, owned=True)
    return attrs.evolve(layer, **{field: weights, "bias": rw.b.const(new_b, owned=True)})


def _foldable_layer(rw: Rewriter, v: Value) -> Op | None:
    """The weighted NNAPI layer defining ``v``, if its weights and bias may absorb an affine."""
    layer = rw.defining(v)
    if layer is None or layer.weighted is None or layer.fuse != FuseCode.FUSED_NONE:  # type: ignore[attr-defined]
        return None
    if not rw.single_use(v) or layer.result.type.dim_order is not DimOrder.CONTIGUOUS:
        return None
    if rw.constant(getattr(layer, layer.weighted[0])) is None or rw.constant(layer.bias) is None:  # type: ignore[attr-defined]
        return None
    return layer


def _mul_or_add(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
    if op.fuse != FuseCode.FUSED_NONE:  # type: ignore[attr-defined]
        return None
    a, b = op.a, op.b  # type: ignore[attr-defined]
    if rw.constant(a) is not None:
        a, b = b, a
        if isinstance(op, ops.Sub):
            return None
    layer = _foldable_layer(rw, a)
    if layer is None or op.result.type.shape != layer.result.type.shape:
        return None
    vec = _per_channel(rw, layer, b)
    if vec is None:
        return None
    if isinstance(op, ops.Mul):
        new = _fold(rw, layer, vec, None)
    elif isinstance(op, ops.Add):
        new = _fold(rw, layer, None, vec)
    else:  # Sub: x - t
        new = _fold(rw, layer, None, -vec)
    rw.replace(layer, new)
    return (new.result,)


@register
@attrs.frozen
class FoldBatchNorm:
    """Fold constant per-channel MUL/ADD/SUB that follow a conv or FC into its weights."""

    name: ClassVar[str] = "fold-bn"

    def run(self, program: Program) -> PassResult:
        # MUL then ADD: the ADD folds once the MUL is gone (the driver runs to a fixed point).
        p, changed = rewrite_ops(program, {ops.Mul: _mul_or_add, ops.Add: _mul_or_add,
                                           ops.Sub: _mul_or_add})
        return PassResult(p, changed)
