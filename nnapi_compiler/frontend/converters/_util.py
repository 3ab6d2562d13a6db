"""Small helpers shared by converters: argument normalization and axis arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ...ir import ops
from ...ir.types import Quant, Value
from ..registry import Refuse


def pair(v: Any, name: str = "value") -> tuple[int, int]:
    """An int or a 1-/2-sequence as (h, w)."""
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, Sequence) and len(v) in (1, 2) and all(isinstance(x, int) for x in v):
        return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])
    raise Refuse(f"{name} {v!r} is not an int or a pair of ints")


def axis(dim: int, rank: int) -> int:
    if not -rank <= dim < rank:
        raise Refuse(f"dim {dim} out of range for rank {rank}")
    return dim % rank


def dims_arg(dims: tuple) -> list[int]:
    """Varargs dims (``x.permute(0, 2, 1)``) or one list (``x.permute([0, 2, 1])``)."""
    if len(dims) == 1 and isinstance(dims[0], list | tuple | torch.Size):
        dims = tuple(dims[0])
    return [int(d) for d in dims]


def value(x: Any, what: str = "input") -> Value:
    """The IR value of a run-time tensor argument; refuses constants where data must flow."""
    if not isinstance(x, Value):
        raise Refuse(f"{what} must be a tensor computed from the model inputs")
    return x


def static_tensor(x: Any, what: str) -> torch.Tensor:
    """A compile-time constant tensor argument (weights); refuses data computed at run time."""
    if isinstance(x, Value):
        raise Refuse(f"{what} must be a constant (a parameter or buffer), not computed at run time")
    if not isinstance(x, torch.Tensor):
        raise Refuse(f"{what} must be a tensor, got {type(x).__name__}")
    if x.is_quantized:
        raise Refuse(f"{what} is quantized; quantized models are not supported yet")
    return x.detach().float()


def image(x: Any) -> Value:
    v = value(x)
    if v.type.rank != 4:
        raise Refuse(f"expected a 4-D NCHW tensor, got rank {v.type.rank}")
    return v


def out_quant(ctx: Any) -> Quant:
    """The quantization PyTorch chose for the current node's output."""
    ex = ctx.example
    if not isinstance(ex, torch.Tensor) or not ex.is_quantized:
        raise Refuse("expected a quantized result")
    if ex.dtype != torch.quint8:
        raise Refuse(f"quantized activations of dtype {ex.dtype} are not supported (quint8 only)")
    return Quant(ex.q_scale(), ex.q_zero_point())


def float_island(ctx: Any, x: Value, fn: Any) -> Any:
    """Apply the float lowering ``fn`` to a quantized ``x``: DEQUANTIZE, float ops, QUANTIZE.

    Used for activations with no integer NNAPI form at the target; PyTorch's own quantized
    kernels compute these in float (or a float-built table) too, so results stay within a
    quantum.
    """
    y = fn(ctx.emit(ops.Dequantize, x=x))
    return ctx.emit(ops.Quantize, x=y, quant=out_quant(ctx))
