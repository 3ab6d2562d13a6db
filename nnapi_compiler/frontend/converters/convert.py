"""Conversions: ``x.to(...)``, ``x.float()`` / ``.int()`` / ``.long()`` / ``.bool()``,
``x.type_as(y)``, ``x.cpu()`` and their ATen forms (``_to_copy``).

A conversion that leaves the tensor as it is (a device move to the CPU, the dtype it already
has, int64 to int32 and back: int64 is carried as int32) is the identity. Real dtype changes
between the types NNAPI carries are exact where NNAPI allows them at FL3:

- float32 <-> int32 / int64: CAST (float to int truncates toward zero, as PyTorch does; an int64
  result is carried as int32, so values beyond the int32 range differ, as for every int64 value
  we carry);
- bool -> float / int: SELECT between ones and zeros (CAST takes BOOL8 only to BOOL8, from FL4);
- float / int -> bool: NOT_EQUAL with zero (PyTorch's truth value; NaN is true).

Other dtypes (float16, float64, uint8, quantized) are refused: no NNAPI tensor carries them here.
"""

from __future__ import annotations

from typing import Any

import torch

from ...ir import ops
from ...ir.codes import OperandCode
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import value
from .activation import _aten

_F32, _I32, _BOOL = OperandCode.TENSOR_FLOAT32, OperandCode.TENSOR_INT32, OperandCode.TENSOR_BOOL8
#: The NNAPI type that carries each PyTorch dtype a conversion may produce.
_CARRIED = {torch.float32: _F32, torch.int32: _I32, torch.int64: _I32, torch.bool: _BOOL}
_TORCH = {_F32: torch.float32, _I32: torch.int32}
_NOOP_KEYS = {"device", "dtype", "non_blocking", "copy", "memory_format", "layout", "pin_memory"}


def convert(ctx: Ctx, x: Value, to: OperandCode) -> Value:
    """``x`` as an NNAPI ``to`` tensor, converted as PyTorch's ``Tensor.to`` converts values."""
    src = x.type.code
    if src == to:
        return x
    if src == _BOOL:
        ones = torch.ones(x.type.shape, dtype=_TORCH[to])
        return ctx.emit(ops.Select, cond=x, x=ctx.const(ones), y=ctx.const(torch.zeros_like(ones)))
    if to == _BOOL:
        return ctx.emit(ops.NotEqual, a=x, b=ctx.const(torch.zeros(1, dtype=_TORCH[src])))
    return ctx.emit(ops.Cast, x=x, to=to)


@converter("to", "cpu", "float", "int", "long", "bool", "type_as",
           *_aten("to.dtype", "to.device", "to.dtype_layout", "to.other", "_to_copy.default",
                  "lift_fresh_copy.default", "type_as.default"),
           sig=lambda input, *args, **kwargs: None, typed=True)
def to(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    ex = ctx.example
    if not isinstance(ex, torch.Tensor) or ex.device.type != "cpu":
        raise Refuse(f"conversion to {getattr(ex, 'device', type(ex).__name__)} is not a CPU tensor")
    if any(k not in _NOOP_KEYS for k in a["kwargs"]):
        raise Refuse(f"unexpected conversion arguments {sorted(a['kwargs'])}")
    if ex.dtype == x.type.torch_dtype:
        return x
    src, to = x.type.code, _CARRIED.get(ex.dtype)
    if to is None or src not in (_F32, _I32, _BOOL) or x.type.quant is not None:
        raise Refuse(f"conversion from {x.type.torch_dtype} to {ex.dtype} is not supported "
                     "(float32, int32, int64 and bool are)")
    return convert(ctx, x, to)
