"""The wrapper's pieces for dynamic input dims: input range checks, output sizes, CPU paths.

- Inputs: static dims must match exactly; a dynamic dim must lie in its declared range, and dims
  sharing a name must be equal. Anything else raises a ValueError naming the input and dim
  before NNAPI sees the tensor (the Python side turns it into ``InputError``).
- NNAPI segment outputs with unknown dims: ``Compilation.run`` passes the output buffers with no
  type and resizes them afterwards to the dims the device reports, so the buffers must be large
  enough. The wrapper allocates them at their exact size, computed from torch's symbolic shape
  of the fx node that produced the value (checked against every compiled sample).
- The CPU path of a segment is generated from each sample's concrete flat model; the sources
  must be identical (no size baked into a kernel call), else compilation fails.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConversionError
from ..frontend.symbolic import expr_src
from ..ir.model import ModelGraph, SegmentCall
from ..ir.types import DimOrder, TensorType, Value
from .cpu_segment import _out_quant, build_cpu_segment, cpu_source
from .flatten import NnapiSegment, flatten
from .ser_model import read_refs


def dim_var(i: int, d: int) -> str:
    return f"_d{i}_{d}"


def check_src(graph: ModelGraph) -> list[str]:
    """TorchScript lines checking every input's dtype, rank, static dims and dynamic ranges."""
    io = graph.io
    lines: list[str] = []
    first: dict[str, str] = {}
    assert io.input_dims is not None
    for i, (name, dt, shape, dims) in enumerate(zip(io.input_names, io.input_dtypes, io.input_shapes,
                                                    io.input_dims, strict=True)):
        lines += [f"if {name}.dtype != {_dtype(dt)}:",
                  f'    raise ValueError("input \'{name}\' must have dtype {dt}")',
                  f"if {name}.dim() != {len(shape)}:",
                  f'    raise ValueError("input \'{name}\' must have rank {len(shape)}, got " + '
                  f"str({name}.dim()))"]
        for d, (n, spec) in enumerate(zip(shape, dims, strict=True)):
            if spec is None:
                lines += [f"if {name}.size({d}) != {n}:",
                          f'    raise ValueError("input \'{name}\' must have size {n} in dim {d}, '
                          f'got " + str({name}.size({d})))']
                continue
            v = dim_var(i, d)
            cond = f"{v} < {spec.min}" + (f" or {v} > {spec.max}" if spec.max is not None else "")
            lines += [f"{v} = {name}.size({d})",
                      f"if {cond}:",
                      f'    raise ValueError("input \'{name}\' dim {d} (dynamic dim {spec}) got " + '
                      f"str({v}))"]
            if spec.name in first:
                lines += [f"if {v} != {first[spec.name]}:",
                          f'    raise ValueError("input \'{name}\' dim {d} must equal the other '
                          f'dims named {spec.name!r}")']
            first.setdefault(spec.name, v)
        q = graph.inputs[i].type.quant if isinstance(graph.inputs[i].type, TensorType) else None
        if q is not None:
            lines += [f"if abs({name}.q_scale() - {q.scale!r}) > {q.scale!r} * 1e-6 or "
                      f"{name}.q_zero_point() != {q.zero_point}:",
                      f'    raise ValueError("input \'{name}\' must be quantized with scale '
                      f'{q.scale!r} and zero point {q.zero_point}")']
    return lines


def _dtype(dt: torch.dtype) -> str:
    return "torch." + str(dt).removeprefix("torch.")


def out_shapes_src(step: SegmentCall, graph: ModelGraph, dm: Any) -> str | None:
    """Source of the segment's output shapes (physical), or None when all of them are static."""
    if all(not isinstance(r.type, TensorType) or r.type.known for r in step.results):
        return None
    names = {(i, d): dim_var(i, d) for i, d, _ in _dyn_dims(graph)}
    shapes = []
    for j, r in enumerate(step.results):
        dims = _physical_dims(step, j, r, graph, dm)
        shapes.append("[" + ", ".join(str(x) if isinstance(x, int) else expr_src(dm.syms, x, names)
                                      for x in dims) + "]")
    return "[" + ", ".join(shapes) + "]"


def _dyn_dims(graph: ModelGraph) -> list[tuple[int, int, Any]]:
    dims = graph.io.input_dims or ()
    return [(i, d, s) for i, ds in enumerate(dims) for d, s in enumerate(ds) if s is not None]


def _physical_dims(step: SegmentCall, j: int, r: Value, graph: ModelGraph, dm: Any) -> list[Any]:
    t = r.type
    assert isinstance(t, TensorType)
    if t.known:
        return list(t.shape)
    seg = graph.segments[step.index].program
    op = seg.producers().get(r.id)
    sym = dm.node_syms.get(op.loc.node) if op is not None and op.loc is not None else None
    where = f"segment {step.index} output {j} ({t}, from {op.loc if op is not None else '?'})"
    if not isinstance(sym, tuple) or len(sym) != t.rank:
        raise ConversionError(f"dynamic dims: cannot size {where}: no symbolic shape")
    dims = [sym[p] for p in ((0, 2, 3, 1) if t.dim_order is DimOrder.NHWC else range(t.rank))]
    dims = [x if t.shape[k] is None else t.shape[k] for k, x in enumerate(dims)]
    for sample, g in zip(dm.dyn.samples, dm.samples, strict=True):
        sizes = {(i, d): int(sample[i].shape[d]) for i, d, _ in _dyn_dims(graph)}
        want = g.segments[step.index].program.outputs[j].type.shape
        got = [x if isinstance(x, int) else dm.syms.value(x, sizes) for x in dims]
        if list(want) != got:
            raise ConversionError(f"dynamic dims: cannot size {where}: its symbolic shape gives "
                                  f"{got}, the compiled sample has {list(want)}")
    return dims


def cpu_segment(index: int, dm: Any, pools: list[dict[str, torch.Tensor]]) -> torch.nn.Module:
    """The CPU path of segment ``index``, identical at every sample (else an error)."""
    flats: list[NnapiSegment] = [flatten(g.segments[index].program, pool)
                                 for g, pool in zip(dm.samples, pools, strict=True)]
    srcs = []
    for fl in flats:
        model, refs = read_refs(fl.ser_model, list(fl.weights))
        src, consts, _ = cpu_source(model, refs, fl.weights, _out_quant(fl, model), "S")
        srcs.append((src, consts))
    for src, consts in srcs[1:]:
        if src != srcs[0][0] or len(consts) != len(srcs[0][1]) or any(
                not torch.equal(a, b) for a, b in zip(consts, srcs[0][1], strict=True)):
            raise ConversionError(f"dynamic dims: the CPU path of segment {index} depends on the "
                                  "input sizes (a kernel call bakes a size)")
    return build_cpu_segment(flats[0])
