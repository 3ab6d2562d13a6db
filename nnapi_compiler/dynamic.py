"""Compile with dynamic input dims: lower at several sizes, keep what does not depend on them.

Every converter and pass of this compiler works on concrete shapes. Rather than teach each one
symbolic arithmetic, a model with dynamic dims is lowered (and optimized, partitioned, verified)
once per *sample*: the example, and the same inputs with the dynamic dims at other sizes in their
declared ranges (``frontend/dynamic_spec.py``). The programs are then compared op by op:

- an operand dim that differs between samples is unknown: it becomes ``None`` in the IR and
  NNAPI's unspecified dim (0) in the model; the device resolves it at execution;
- a RESHAPE whose target shape differs in exactly one entry gets ``-1`` there (the other entries
  are the same at every sample, so ``-1`` names exactly that size);
- any other difference (an upsampling matrix, a slice end, a pooling window, a constant's shape,
  or a different op sequence) means the node bakes a size into its NNAPI form: the node becomes
  a host op (the original torch code on the CPU) and lowering runs again.

Nodes whose *value* is a size (``x.size(0)``, found by torch's own symbolic shape propagation in
``frontend/symbolic.py``, on a float twin for quantized tensors) are never folded: they are
computed at run time on the CPU, as is everything that reads them. Before lowering, the model
runs at every sample: each tensor's symbolic shape must give its real shape there, and a
non-tensor value that differs between samples also counts as a size. The result is the
example's partitioned model with unknown dims, plus the concrete model of every sample (the
backend compares CPU-path sources across them).
"""

from __future__ import annotations

from typing import Any

import attrs

from .errors import ConversionError
from .frontend.capture import Captured, _record_examples
from .frontend.dynamic_spec import Dynamic
from .frontend.lower import lower
from .frontend.range_check import fit_ranges
from .frontend.symbolic import SYM, Symbols, check_sample, symbolic_run
from .ir.codes import OperandCode
from .ir.constpool import same_bytes
from .ir.model import IOSpec, ModelGraph, Segment, SegmentCall
from .ir.ops.base import Constant, Op
from .ir.ops.host import ArgRef, HostOp
from .ir.ops.resize import ResizeNearest
from .ir.ops.shape import Reshape, StridedSlice
from .ir.program import Program
from .ir.types import DimOrder, TensorType, Value
from .ir.verifier import verify

_MAX_ROUNDS = 8


@attrs.frozen
class DynamicModel:
    """What the backend needs beyond the generalized graph."""

    dyn: Dynamic
    syms: Symbols
    samples: tuple[ModelGraph, ...]  # the concrete graph of every sample; [0] is the example
    node_syms: dict[str, Any]  # fx node name -> symbolic output (shape tuple for a tensor)


def lower_dynamic(cap: Captured, dyn: Dynamic, level: int, fallback: str,
                  pipeline: Any, partition: Any, cpu_only: bool
                  ) -> tuple[Program, ModelGraph, DynamicModel]:
    """(the example's program with unknown dims, the generalized graph, the samples' graphs)."""
    syms = symbolic_run(cap.gm, dyn)
    dyn = fit_ranges(cap.gm, syms, dyn, lambda sample: _record(cap, sample))
    runtime = syms.size_nodes | _varying_values(cap, dyn, syms)
    host: set[str] = set()
    for _ in range(_MAX_ROUNDS):
        progs: list[tuple[Program, IOSpec]] = []
        for sample in reversed(dyn.samples):  # the example last: node examples stay the example's
            _record(cap, sample)
            raw, io = lower(cap, level, fallback, runtime, frozenset(host))
            program = pipeline.run(raw)
            verify(program, check_level=False)
            renamed = dict(zip([v.id for v in io.output_values()], program.outputs, strict=True))
            inputs = {v.id: v for v in program.inputs}
            progs.append((program, io.map_values(lambda v, r=renamed, i=inputs: r.get(v.id, i.get(v.id, v)))))
        progs.reverse()
        diff = _Diff(progs[0][0])
        for p, _ in progs[1:]:
            diff.compare(p)
        blame = diff.finish()
        if not blame:
            break
        if blame <= host:
            raise ConversionError(f"dynamic dims: nodes {sorted(blame)} still depend on a dynamic "
                                  "size after running on the CPU")
        host |= blame
    else:
        raise ConversionError("dynamic dims: could not make the program independent of the sizes")
    graphs = tuple(partition.run(p, io) for p, io in progs)
    for g in graphs:
        for seg in g.segments:
            if seg.placement.value == "nnapi" and not cpu_only:
                verify(seg.program)
    _same_partition(graphs)
    program = _retype_program(progs[0][0], diff)
    graph = _retype_graph(graphs[0], diff, dyn)
    # The samples keep their concrete dims but take the generalized RESHAPE targets, so the CPU
    # path generated from any of them is the same source exactly when it is size-independent.
    samples = tuple(_retype_graph(g, diff, None) for g in graphs)
    node_syms = {n.name: n.meta.get(SYM) for n in cap.gm.graph.nodes}
    return program, graph, DynamicModel(dyn, syms, samples, node_syms)


def _record(cap: Captured, sample: tuple) -> None:
    """Run the model on ``sample`` (every node's example becomes the sample's)."""
    try:
        _record_examples(cap.gm, sample)
    except Exception as e:
        shapes = [list(x.shape) for x in sample if hasattr(x, "shape")]
        raise ConversionError(
            f"dynamic dims: the model fails on inputs of shapes {shapes}, which are inside "
            f"the declared ranges ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "declare the ranges the model supports") from e


def _varying_values(cap: Captured, dyn: Dynamic, syms: Symbols) -> frozenset[str]:
    """Nodes whose non-tensor value differs between the samples (sizes that the symbolic run
    may have missed), after checking every tensor's symbolic shape against every sample."""
    seen: dict[str, list[Any]] = {}
    for sample in dyn.samples[1:] + dyn.samples[:1]:  # the example last: it stays recorded
        _record(cap, sample)
        sizes = {(i, d): int(sample[i].shape[d]) for i, d, _ in dyn.dynamic_dims()}
        for name, v in check_sample(cap.gm, syms, sizes).items():
            seen.setdefault(name, []).append(v)
    return frozenset(n for n, vs in seen.items() if not all(_same(vs[0], v) for v in vs[1:]))


def _same_partition(graphs: tuple[ModelGraph, ...]) -> None:
    g0 = graphs[0]
    for g in graphs[1:]:
        same = (len(g.segments) == len(g0.segments) and len(g.block) == len(g0.block)
                and all(a.placement == b.placement and a.size == b.size
                        for a, b in zip(g.segments, g0.segments, strict=True)))
        if not same:
            raise ConversionError("dynamic dims: the model partitions differently at different "
                                  "sizes; declare fewer dynamic dims or narrower ranges")


class _Diff:
    """Compares the example's program with other samples' programs."""

    def __init__(self, p0: Program) -> None:
        self.p0 = p0
        self.users = p0.users()
        self.vary: dict[int, set[int]] = {}  # value id -> dims that differ
        self.reshape: dict[int, set[int]] = {}  # reshape result id -> target entries that differ
        # strided slice result id -> per program (p0 first): (begin, end, input shape)
        self.slices: dict[int, list[tuple[tuple[int, ...], tuple[int, ...], tuple[Any, ...]]]] = {}
        self.slice_fix: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        # nearest resize result id -> per program (p0 first): (in_h, in_w, out_h, out_w)
        self.resizes: dict[int, list[tuple[int, int, int, int]]] = {}
        self.resize_fix: dict[int, tuple[int, int]] = {}
        self.blame: set[str] = set()
        self.dims = True  # value(): unknown dims become None (False: only RESHAPE targets change)

    def _blame(self, op: Op) -> None:
        if op.loc is not None:
            self.blame.add(op.loc.node)
            return
        users = [u for r in op.results for u in self.users.get(r.id, [])]
        named = [u.loc.node for u in users if u.loc is not None]
        if not named:
            raise ConversionError(f"dynamic dims: {op.mnemonic} depends on a dynamic size and "
                                  "names no model node")
        self.blame.update(named)

    def _types(self, a: Value, b: Value) -> bool:
        ta, tb = a.type, b.type
        if not isinstance(ta, TensorType) or not isinstance(tb, TensorType):
            return type(ta) is type(tb)
        if (ta.code, ta.quant, ta.dim_order, ta.rank) != (tb.code, tb.quant, tb.dim_order, tb.rank):
            return False
        pos = {i for i, (x, y) in enumerate(zip(ta.shape, tb.shape, strict=True)) if x != y}
        if pos:
            self.vary.setdefault(a.id, set()).update(pos)
        return True

    def compare(self, pk: Program) -> None:
        p0 = self.p0
        if len(p0.inputs) != len(pk.inputs) or len(p0.ops) != len(pk.ops):
            self._first_mismatch(pk)
            return
        for a, b in zip(p0.inputs, pk.inputs, strict=True):
            self._types(a, b)
        for a, b in zip(p0.ops, pk.ops, strict=True):
            if (type(a) is not type(b) or [v.id for v in a.inputs()] != [v.id for v in b.inputs()]
                    or [r.id for r in a.results] != [r.id for r in b.results]):
                self._blame(a)
                self._blame(b)
                return
            same_types = all(self._types(x, y) for x, y in zip(a.inputs() + a.results,
                                                                b.inputs() + b.results, strict=True))
            if not same_types or not self._same_attrs(a, b):
                self._blame(a)

    def _first_mismatch(self, pk: Program) -> None:
        for a, b in zip(self.p0.ops, pk.ops, strict=False):
            if type(a) is not type(b) or (a.loc and b.loc and a.loc.node != b.loc.node):
                self._blame(a)
                self._blame(b)
                return
        raise ConversionError("dynamic dims: the program has a different length at another size")

    def _same_attrs(self, a: Op, b: Op) -> bool:
        if isinstance(a, Constant):
            return same_bytes(a.data, b.data)  # type: ignore[attr-defined]
        if isinstance(a, HostOp):
            ca, cb = a.call, b.call  # type: ignore[attr-defined]
            if ca is None or cb is None:
                return ca is cb
            return _same(ca.args, cb.args) and _same(ca.kwargs, cb.kwargs)
        aa, ab = a.attributes(), b.attributes()
        for k in aa:
            if _same(aa[k], ab[k]):
                continue
            if isinstance(a, StridedSlice) and k in ("begin", "end"):
                runs = self.slices.setdefault(a.result.id, [(a.begin, a.end, a.x.type.shape)])
                entry = (b.begin, b.end, b.x.type.shape)  # type: ignore[attr-defined]
                if runs[-1] != entry:  # begin and end may both differ: record the sample once
                    runs.append(entry)
                continue
            if isinstance(a, ResizeNearest) and k in ("out_h", "out_w"):
                self.resizes.setdefault(a.result.id, [_resize_sizes(a)]).append(_resize_sizes(b))
                continue
            if isinstance(a, Reshape) and k == "shape" and len(aa[k]) == len(ab[k]):
                diff = {i for i, (x, y) in enumerate(zip(aa[k], ab[k], strict=True)) if x != y}
                self.reshape.setdefault(a.result.id, set()).update(diff)
                continue
            return False
        return True

    def finish(self) -> set[str]:
        """Nodes to move to the CPU (empty when the program is independent of the sizes)."""
        producers = self.p0.producers()
        for rid, pos in self.reshape.items():
            op = producers[rid]
            if len(pos) != 1 or -1 in op.shape:  # type: ignore[attr-defined]
                self._blame(op)
        for rid, sizes in self.resizes.items():
            scales = _resize_scales(producers[rid], sizes)  # type: ignore[arg-type]
            if scales is None:
                self._blame(producers[rid])
            else:
                self.resize_fix[rid] = scales
        for rid, runs in self.slices.items():
            fixed = _slice_bounds(runs)
            if fixed is None:
                self._blame(producers[rid])
            else:
                self.slice_fix[rid] = fixed
        return self.blame

    def value(self, v: Value) -> Value:
        pos = self.vary.get(v.id) if self.dims else None
        if not pos or not isinstance(v.type, TensorType):
            return v
        shape = tuple(None if i in pos else d for i, d in enumerate(v.type.shape))
        return Value(v.id, v.type.with_shape(shape))

    def op(self, op: Op) -> Op:
        new = op.map_inputs(self.value)
        results = tuple(self.value(r) for r in op.results)
        changes: dict[str, Any] = {"results": results}
        if isinstance(op, HostOp):
            changes["result_types"] = tuple(r.type for r in results)
        if isinstance(op, StridedSlice) and op.result.id in self.slice_fix:
            changes["begin"], changes["end"] = self.slice_fix[op.result.id]
        if isinstance(op, ResizeNearest) and op.result.id in self.resize_fix:
            changes["scale_h"], changes["scale_w"] = map(float, self.resize_fix[op.result.id])
        if isinstance(op, Reshape) and op.result.id in self.reshape:
            pos = self.reshape[op.result.id]
            changes["shape"] = tuple(-1 if i in pos else s for i, s in enumerate(op.shape))
        return attrs.evolve(new, **changes)  # type: ignore[misc]


def _resize_sizes(op: Any) -> tuple[int, int, int, int]:
    shape = op.x.type.shape
    h, w = (shape[2], shape[3]) if op.x.type.dim_order is DimOrder.CONTIGUOUS else shape[1:3]
    return h, w, op.out_h, op.out_w


def _resize_scales(op: ResizeNearest, sizes: list[tuple[int, int, int, int]]
                   ) -> tuple[int, int] | None:
    """Integer factors (k_h, k_w) when the output is exactly k times the input at every sample.

    NNAPI's "by scale" form then gives floor(in * k) = k * in at every size, and its source
    index floor(dst * f32(in / out)) uses f32(1 / k) at every size, as PyTorch's nearest does
    with a scale factor; anything else (a fixed output size, other factors, corner flags, a
    float16 scale operand) bakes the size and goes to the CPU.
    """
    if op.align_corners or op.half_pixel_centers or op.x.type.code is OperandCode.TENSOR_FLOAT16:
        return None
    ks = []
    for pos in ((0, 2), (1, 3)):
        k = {s[pos[1]] // s[pos[0]] if s[pos[1]] % s[pos[0]] == 0 else None for s in sizes}
        if len(k) != 1 or None in k:
            return None
        ks.append(k.pop())
    return ks[0], ks[1]


#: STRIDED_SLICE clamps an end past the dim to the dim (TFLite's ClampedIndex): "to the end".
_END = 2**31 - 1


def _slice_bounds(runs: list[tuple[tuple[int, ...], tuple[int, ...], tuple[Any, ...]]]
                  ) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Size-independent begin/end for a slice whose bounds follow the input dims, else None.

    An entry that differs between samples must sit at a fixed distance from the input dim at
    every sample: an end at the dim becomes "past the end" (clamped), any other offset a
    negative index (counted from the end, as NNAPI does).
    """
    begin, end = list(runs[0][0]), list(runs[0][1])
    for i in range(len(begin)):
        for which, vals in ((begin, [r[0][i] for r in runs]), (end, [r[1][i] for r in runs])):
            if len(set(vals)) == 1:
                continue
            deltas = {v - r[2][i] for v, r in zip(vals, runs, strict=True)}
            if len(deltas) != 1:
                return None
            delta = deltas.pop()
            if delta == 0 and which is end:
                which[i] = _END
            elif delta < 0:
                which[i] = delta
            else:
                return None
    return tuple(begin), tuple(end)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, ArgRef) or isinstance(b, ArgRef):  # compared by identity otherwise
        return isinstance(a, ArgRef) and isinstance(b, ArgRef) and a.index == b.index
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # tensors inside templates
        return repr(a) == repr(b)


def _retype_program(p: Program, d: _Diff) -> Program:
    return attrs.evolve(p, inputs=tuple(d.value(v) for v in p.inputs),
                        ops=tuple(d.op(op) for op in p.ops),
                        outputs=tuple(d.value(v) for v in p.outputs))


def _retype_graph(g: ModelGraph, d: _Diff, dyn: Dynamic | None) -> ModelGraph:
    """``g`` with unknown dims and generalized RESHAPE targets (only the latter if no ``dyn``)."""
    d.dims = dyn is not None
    block = []
    for step in g.block:
        if isinstance(step, SegmentCall):
            block.append(SegmentCall(step.index, tuple(d.value(v) for v in step.args),
                                     tuple(d.value(v) for v in step.results)))
        else:
            block.append(d.op(step))
    segments = tuple(Segment(_retype_program(s.program, d), s.placement, s.reason)
                     for s in g.segments)
    if dyn is None:
        return attrs.evolve(g, block=tuple(block), segments=segments)
    shapes = tuple(tuple(None if s else n for n, s in zip(shape, dims, strict=True)) if dims else shape
                   for shape, dims in zip(g.io.input_shapes, dyn.dims, strict=True))
    io = attrs.evolve(g.io.map_values(d.value), input_shapes=shapes, input_dims=dyn.dims)
    return attrs.evolve(g, io=io, inputs=tuple(d.value(v) for v in g.inputs), block=tuple(block),
                        segments=segments)
