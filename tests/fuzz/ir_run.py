"""Run an IR program on the reference interpreter: flatten, serialize, parse back, execute."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
import torch.nn.functional as F

from nnapi_compiler.backend.flatten import flatten
from nnapi_compiler.backend.ser_model import read_ser_model
from nnapi_compiler.ir.codes import MAX_LEVEL
from nnapi_compiler.ir.ops.resize import Interpolate
from nnapi_compiler.ir.program import Program
from nnapi_compiler.ir.types import DimOrder, TensorType
from nnapi_compiler.runtime.interpreter import execute

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def to_physical(x: torch.Tensor, t: TensorType) -> torch.Tensor:
    """A logical (PyTorch-order) tensor in the storage order of type ``t``."""
    return x.permute(TO_NHWC).contiguous() if t.dim_order is DimOrder.NHWC else x.contiguous()


def to_logical(y: torch.Tensor, t: TensorType) -> torch.Tensor:
    return y.permute(TO_NCHW).contiguous() if t.dim_order is DimOrder.NHWC else y


def computed_outputs(p: Program) -> Program:
    """``p`` with only the outputs NNAPI must compute: distinct, neither inputs nor constants."""
    skip = {v.id for v in p.inputs} | set(p.constants())
    return attrs.evolve(p, outputs=tuple(dict.fromkeys(v for v in p.outputs if v.id not in skip)))


def run_program(p: Program, inputs: Sequence[torch.Tensor], level: int = MAX_LEVEL) -> list[torch.Tensor]:
    """Outputs of ``p`` on ``inputs``, both in PyTorch's logical order, whatever the dim orders.

    Outputs that are program inputs, constants or repeats are served directly (as
    ``api.normalize_outputs`` makes the artifact do); the rest go through the real serializer:
    ``flatten`` then ``read_ser_model`` (which resolves the weight buffers that
    ``NnapiSegment.flat`` leaves out), then ``interpreter.execute``. Runs at the highest feature
    level by default, so programs before legalization run too.
    """
    results: dict[int, torch.Tensor] = {v.id: x for x, v in zip(inputs, p.inputs, strict=True)}
    results.update({k: c.data for k, c in p.constants().items()})
    q = computed_outputs(p)
    computed = q.outputs
    if computed:  # outputs that passes turned into inputs or duplicates are served as compile does
        seg = flatten(q)
        flat = read_ser_model(seg.ser_model, seg.weights)
        phys = [to_physical(x, v.type) for x, v in zip(inputs, q.inputs, strict=True)]
        outs = execute(flat, phys, level)
        results.update({v.id: to_logical(y, v.type) for y, v in zip(outs, computed, strict=True)})
    return [results[v.id] for v in p.outputs]


def _interpolate(x: torch.Tensor, op: Interpolate) -> torch.Tensor:
    """PyTorch's own F.interpolate / adaptive pooling: the oracle for the Interpolate op."""
    size = (op.out_h, op.out_w)
    if op.mode == "area":
        return F.adaptive_avg_pool2d(x, size)
    ac = op.align_corners if op.mode == "bilinear" else None
    return F.interpolate(x, size=size, mode=op.mode, align_corners=ac)


def reference_run(p: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """What an unoptimized program computes, for programs ``run_program`` cannot execute as is.

    Interpolate ops (which only feed outputs in fuzzed programs) are computed with PyTorch's
    ``F.interpolate``, independently of simplify-upsample. A quantized layer's float bias has
    no NNAPI reading until requantize-bias gives it one, so that pass is applied first; its own
    arithmetic is checked against PyTorch by the quantized tests, not here.
    """
    from nnapi_compiler.passes.base import PASSES

    p = PASSES["requantize-bias"]().run(p).program
    interps = {op.result.id: op for op in p.ops if isinstance(op, Interpolate)}
    if not interps:
        return run_program(p, inputs)
    readers = {v.id for op in p.ops for v in op.inputs() if not isinstance(op, Interpolate)}
    assert not readers & set(interps), "an Interpolate result is read by another op"
    outs = tuple(interps[v.id].x if v.id in interps else v for v in p.outputs)
    prefix = attrs.evolve(p, ops=tuple(op for op in p.ops if not isinstance(op, Interpolate)), outputs=outs)
    got = run_program(prefix, inputs)
    return [_interpolate(y, interps[v.id]) if v.id in interps else y
            for y, v in zip(got, p.outputs, strict=True)]
