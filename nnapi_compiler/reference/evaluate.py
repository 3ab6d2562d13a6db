"""Evaluate one NNAPI op on known values: what constant folding needs, without a device.

The op goes through the same binder and scriptable kernel as on the virtual device; results are
brought to the declared output types the way the interpreter does it (float kernels compute in
float32, a FLOAT16 operand is rounded once at the end).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..ir.codes import OpCode
from ..ir.flat import OperandDesc
from . import KERNELS, KernelCall
from .common import TORCH_DTYPES


def finish_result(result: torch.Tensor, desc: OperandDesc) -> torch.Tensor:
    """``result`` in ``desc``'s dtype (float kernels widen to float32); ValueError if the kernel
    produced another kind of dtype."""
    want = TORCH_DTYPES.get(desc.code)
    if result.dtype != want:
        if not (result.is_floating_point() and want in (torch.float16, torch.float32)):
            raise ValueError(f"kernel produced {result.dtype}, output is {desc.describe()}")
        result = result.to(want)
    return result.contiguous()


def evaluate_op(
    code: int, inputs: Sequence[Any], input_descs: Sequence[OperandDesc], output_descs: Sequence[OperandDesc]
) -> list[torch.Tensor]:
    """Run op ``code`` on decoded ``inputs`` (tensors / Python scalars / None for omitted)."""
    if code not in KERNELS:
        raise ValueError(f"no reference kernel for {OpCode(code).name}")
    call = KernelCall(code, tuple(inputs), tuple(input_descs), tuple(output_descs))
    results = KERNELS[code].run(call)
    if len(results) != len(output_descs):
        raise ValueError(f"{OpCode(code).name} produced {len(results)} results")
    return [finish_result(r, d) for r, d in zip(results, output_descs, strict=True)]
