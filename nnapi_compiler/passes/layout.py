"""Layout propagation: store image tensors NHWC, NNAPI's native layout, and remap axes.

Converters emit ops with PyTorch's NCHW semantics (spatial ops then carry NNAPI's NCHW flag,
which drivers implement with transposes). This pass re-types rank-4 values as NHWC wherever
data flows from or to spatial ops, and rewrites every op for the new storage:

- spatial ops (convs, pools, resizes) read and write NHWC: the layout flag disappears;
- elementwise ops follow their inputs; broadcast constants are permuted, not transposed at run time;
- concat / mean / softmax / pad / slice axes are remapped to physical axes;
- FULLY_CONNECTED reading an NHWC image gets its weight columns permuted to H, W, C order, so
  the flatten before a classifier costs nothing;
- reshapes read NHWC data directly when its element order equals PyTorch's (C == 1 or
  H*W == 1); only then, or for user permutes, is a TRANSPOSE ever inserted.
Program inputs and outputs that are NHWC are converted by the TorchScript wrapper on the host,
where a channels_last tensor needs no copy at all.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from ..ir import ops
from ..ir.builder import Builder
from ..ir.ops.base import Constant, Op
from ..ir.ops.elementwise import _Binary, _MinMax, _Unary
from ..ir.ops.host import HostOp
from ..ir.ops.resize import Interpolate
from ..ir.ops.shape import nhwc_is_contiguous
from ..ir.program import Program
from ..ir.types import DimOrder, TensorType, Value
from .base import PassResult, register

NHWC = (0, 2, 3, 1)  # physical dim i holds logical dim NHWC[i]
TO_NCHW = (0, 3, 1, 2)
L2P = {0: 0, 1: 3, 2: 1, 3: 2}  # logical axis -> physical axis
SPATIAL = (ops.Conv2d, ops.DepthwiseConv2d, ops.GroupedConv2d, ops.TransposeConv2d,
           ops.AveragePool2d, ops.MaxPool2d, ops.ResizeNearest, ops.ResizeBilinear, Interpolate)
FOLLOW = (_Unary, _Binary, _MinMax, ops.Prelu, ops.Concatenation, ops.Mean, ops.Softmax,
          ops.Pad, ops.StridedSlice, ops.ChannelShuffle, ops.Gather, ops.Quantize, ops.Dequantize)


def _image(t: TensorType) -> bool:
    return isinstance(t, TensorType) and t.rank == 4 and t.code == t.code.TENSOR_FLOAT32


def _as_nhwc(t: TensorType) -> TensorType:
    n, c, h, w = t.shape
    return attrs.evolve(t, shape=(n, h, w, c), dim_order=DimOrder.NHWC)


def _prefers_nhwc(p: Program) -> set[int]:
    """Values (by id) some spatial op reads, directly or through layout-following ops."""
    want: set[int] = set()
    for op in reversed(p.ops):
        through = isinstance(op, FOLLOW) and any(r.id in want for r in op.results)
        if isinstance(op, SPATIAL) or through:
            want.update(v.id for v in op.inputs() if _image(v.type))
    return want


@attrs.define(eq=False)
class _Walk:
    p: Program
    b: Builder
    rename: dict[int, Value] = attrs.field(factory=dict)
    consts: dict[int, Constant] = attrs.field(factory=dict)
    want: set[int] = attrs.field(factory=set)

    # -- conversions -------------------------------------------------------------------
    def v(self, x: Value) -> Value:
        return self.rename.get(x.id, x)

    def nhwc(self, x: Value) -> Value:
        """``x`` (already renamed) as an NHWC value; constants are permuted at compile time."""
        if x.type.dim_order is DimOrder.NHWC:
            return x
        if x.id in self.consts:
            data = self.consts[x.id].data
            data = data.reshape((1,) * (4 - data.dim()) + tuple(data.shape))
            return self.b.const(data.permute(NHWC).contiguous(), DimOrder.NHWC, x.type.quant)
        if x.type.rank < 4:
            x = self.b.emit(ops.Reshape, x=x, shape=(1,) * (4 - x.type.rank) + x.type.shape)
        return self.b.emit(ops.Transpose, x=x, perm=NHWC, out_order=DimOrder.NHWC)

    def contiguous(self, x: Value) -> Value:
        if x.type.dim_order is DimOrder.CONTIGUOUS:
            return x
        return self.b.emit(ops.Transpose, x=x, perm=TO_NCHW)

    def rebuild(self, op: Op, **changes: Any) -> None:
        fields = {f.name: getattr(op, f.name) for f in attrs.fields(type(op)) if f.name != "results"}
        for name in op.input_fields():
            val = fields[name]
            fields[name] = tuple(self.v(x) for x in val) if isinstance(val, tuple) else self.v(val)
        fields.update(changes)
        new = self.b.op(type(op), **fields)
        if tuple(r.type for r in new.results) == tuple(r.type for r in op.results):
            # Same types: keep the original values so an unchanged op stays identical.
            self.b.ops[-1] = attrs.evolve(new, results=op.results)
            return
        for old, rep in zip(op.results, new.results, strict=True):
            self.rename[old.id] = rep

    # -- per-op rules --------------------------------------------------------------------
    def visit(self, op: Op) -> None:
        if isinstance(op, Constant):
            self.b.ops.append(op)
            self.consts[op.result.id] = op
            return
        if isinstance(op, HostOp):
            self._host(op)
            return
        if any(x.type.dim_order is DimOrder.NHWC for x in op.inputs()):
            self.rebuild(op)  # already in physical terms (an earlier run): nothing to remap
            return
        ins = [self.v(x) for x in op.inputs()]
        any_nhwc = any(x.type.dim_order is DimOrder.NHWC for x in ins)
        if isinstance(op, SPATIAL):
            field = op.input_fields()[0]
            self.rebuild(op, **{field: self.nhwc(self.v(getattr(op, field)))})
        elif isinstance(op, _Unary | ops.Quantize | ops.Dequantize):
            self.rebuild(op)
        elif isinstance(op, _Binary | _MinMax | ops.Prelu) and any_nhwc:
            f0, f1 = op.input_fields()
            self.rebuild(op, **{f0: self.nhwc(self.v(getattr(op, f0))),
                                f1: self.nhwc(self.v(getattr(op, f1)))})
        elif isinstance(op, ops.Concatenation) and any_nhwc:
            self.rebuild(op, xs=tuple(self.nhwc(x) for x in ins), axis=L2P[op.axis])
        elif isinstance(op, ops.Softmax | ops.ChannelShuffle | ops.Gather) and any_nhwc:
            self.rebuild(op, axis=L2P[op.axis])
        elif isinstance(op, ops.Pad) and any_nhwc:  # PadV2 too
            self.rebuild(op, pads=tuple(op.pads[NHWC[i]] for i in range(4)))
        elif isinstance(op, ops.StridedSlice) and any_nhwc and not op.shrink_mask:
            self.rebuild(op, begin=tuple(op.begin[i] for i in NHWC),
                         end=tuple(op.end[i] for i in NHWC),
                         strides=tuple(op.strides[i] for i in NHWC))
        elif isinstance(op, ops.Mean) and any_nhwc:
            self._mean(op, ins[0])
        elif isinstance(op, ops.FullyConnected) and any_nhwc:
            self._fc(op, ins[0])
        elif isinstance(op, ops.Transpose) and any_nhwc:
            self.rebuild(op, perm=tuple(TO_NCHW[p] for p in op.perm))
        elif isinstance(op, ops.Reshape) and any_nhwc and nhwc_is_contiguous(ins[0].type):
            self.rebuild(op)
        else:  # anything else reads PyTorch's order
            fields = {}
            for name in op.input_fields():
                val = getattr(op, name)
                fields[name] = (tuple(self.contiguous(self.v(x)) for x in val)
                                if isinstance(val, tuple) else self.contiguous(self.v(val)))
            self.rebuild(op, **fields)

    def _host(self, op: HostOp) -> None:
        """Host code reads and writes PyTorch's layout; the backend converts NHWC values at the
        boundary on the host (a channels_last view), so no TRANSPOSE is emitted for it. A result
        that spatial ops want NHWC is re-typed NHWC, like a program input."""
        types = tuple(
            _as_nhwc(t) if r.id in self.want and isinstance(t, TensorType) and _image(t)
            and t.dim_order is DimOrder.CONTIGUOUS else t
            for r, t in zip(op.results, op.result_types, strict=True))
        self.rebuild(op, result_types=types)

    def _mean(self, op: ops.Mean, x: Value) -> None:
        axes = tuple(L2P[a] for a in op.axes)
        kept_logical = [a for a in range(4) if a not in op.axes]
        kept_physical = [NHWC[i] for i in range(4) if NHWC[i] not in op.axes]
        if op.keep_dims or kept_logical == kept_physical:
            self.rebuild(op, axes=axes)
        else:
            self.rebuild(op, x=self.contiguous(x))

    def _fc(self, op: ops.FullyConnected, x: Value) -> None:
        w = self.consts.get(self.v(op.weights).id)
        _, h, wd, c = x.type.shape
        if w is None or w.data.shape[1] != c * h * wd:  # not a flatten of the whole image
            self.rebuild(op, input=self.contiguous(x))
            return
        units = w.data.shape[0]
        perm_w = w.data.reshape(units, c, h, wd).permute(0, 2, 3, 1).reshape(units, -1)
        self.rebuild(op, weights=self.b.const(perm_w.contiguous(), quant=w.result.type.quant))


@register
@attrs.frozen
class LayoutNHWC:
    """Propagate NHWC storage through the program (see the module docstring)."""

    name: ClassVar[str] = "layout-nhwc"

    def run(self, program: Program) -> PassResult:
        want = _prefers_nhwc(program)
        # Converting an input on the host is free for channels_last tensors, so any input an
        # NHWC-friendly op reads is taken NHWC rather than transposed inside NNAPI.
        users = program.users()
        want |= {x.id for x in program.inputs
                 if any(isinstance(u, SPATIAL + FOLLOW) for u in users.get(x.id, []))}
        b = Builder(level=program.level)
        b._next = program.next_id()
        walk = _Walk(program, b, want=want)
        for x in program.inputs:
            if x.id in want and _image(x.type) and x.type.dim_order is DimOrder.CONTIGUOUS:
                nx = Value(x.id, _as_nhwc(x.type))
                walk.rename[x.id] = nx
                b.inputs.append(nx)
            else:
                b.inputs.append(x)
        for op in program.ops:
            walk.visit(op)
        new = attrs.evolve(program, inputs=tuple(b.inputs), ops=tuple(b.ops),
                           outputs=tuple(walk.v(o) for o in program.outputs))
        if new == program:
            return PassResult(program, False)
        return PassResult(new, True)
