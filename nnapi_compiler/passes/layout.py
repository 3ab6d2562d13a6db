"""Layout propagation: store image tensors NHWC, NNAPI's native layout, and remap axes.

Converters emit ops with PyTorch's NCHW semantics (spatial ops then carry NNAPI's NCHW flag,
which drivers implement with transposes). This pass re-types rank-4 values as NHWC wherever
data flows from or to spatial ops, and rewrites every op for the new storage:

- spatial ops (convs, pools, resizes) read and write NHWC: the layout flag disappears;
- elementwise ops follow their inputs; broadcast constants are permuted, not transposed at run time;
- concat / reductions / softmax / pad / slice / tile axes are remapped to physical axes;
- FULLY_CONNECTED reading an NHWC image gets its weight columns permuted to H, W, C order, so
  the flatten before a classifier costs nothing;
- reshapes read NHWC data directly when its element order equals PyTorch's (C == 1 or
  H*W == 1); only then, or for user permutes, is a TRANSPOSE ever inserted.
Program inputs and outputs that are NHWC are converted by the TorchScript wrapper on the host,
where a channels_last tensor needs no copy at all. Host ops (torch code between NNAPI segments)
are boundaries of the same kind: they read NHWC values as they are (the backend hands them a
channels_last view), and their rank-4 float results that spatial ops want are re-typed NHWC like
program inputs, so no TRANSPOSE appears on either side of a host op.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from ..ir import ops
from ..ir.ops.base import Constant, Op
from ..ir.ops.elementwise import _Binary, _MinMax, _Unary
from ..ir.ops.shape import nhwc_is_contiguous
from ..ir.program import Program
from ..ir.types import DimOrder, TensorType, Value
from .base import PassResult, register
from .rewrite import Rewriter

NHWC = (0, 2, 3, 1)  # physical dim i holds logical dim NHWC[i]
TO_NCHW = (0, 3, 1, 2)
L2P = {0: 0, 1: 3, 2: 1, 3: 2}  # logical axis -> physical axis


def _image(t: object) -> bool:
    return isinstance(t, TensorType) and t.rank == 4 and t.code == t.code.TENSOR_FLOAT32


def _prefers_nhwc(p: Program) -> set[int]:
    """Values (by id) some spatial op reads, directly or through layout-following ops."""
    want: set[int] = set()
    for op in reversed(p.ops):
        through = op.layout_follows and any(r.id in want for r in op.results)
        if op.spatial or through:
            want.update(v.id for v in op.inputs() if _image(v.type))
    return want


def _spatial_regions(p: Program) -> set[int]:
    """Values (by id) of the connected image regions that hold a spatial op.

    A region is a set of rank-4 values (float or quantized) linked by spatial and
    layout-following ops (constants do not link: they are permuted at compile time). Storing a
    region NHWC saves one layout conversion per spatial op in it (each would otherwise carry
    NNAPI's NCHW flag, which drivers implement with transposes), and costs at most the
    conversions at its edges. A region
    without a spatial op saves nothing, so it stays in PyTorch's order: ``x + c`` on an image
    input is one ADD, with no permute on the way in or out.
    """
    consts = set(p.constants())
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    spatial_ids = []
    for op in p.ops:
        if not (op.spatial or op.layout_follows):
            continue
        ids = [v.id for v in (*op.inputs(), *op.results)  # quantized images link too
               if isinstance(v.type, TensorType) and v.type.rank == 4 and v.id not in consts]
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
        if op.spatial and ids:
            spatial_ids.append(ids[0])
    roots = {find(i) for i in spatial_ids}
    return {i for i in parent if find(i) in roots}


def _physical(x: Value) -> tuple[int, ...]:
    n, c, h, w = x.type.shape  # type: ignore[union-attr]
    return (n, h, w, c)


def _stored_nhwc(rw: Rewriter, x: Value) -> Value | None:
    """A value whose stored bytes are ``x`` (NCHW) in NHWC order, if ``x`` was made from one.

    ``t.transpose(1, 2).reshape(N, C, H, W)`` of tokens ``t`` [N, H*W, C], and
    ``y.permute(0, 3, 1, 2)`` of a channels-last ``y`` [N, H, W, C], are NHWC images stored
    as ``t`` and ``y`` are: a RESHAPE relabels them, where a TRANSPOSE would move every byte.
    """
    op = rw.defining(x)
    n, c, h, w = x.type.shape  # type: ignore[union-attr]
    if isinstance(op, ops.Transpose) and op.perm == TO_NCHW and op.x.type.dim_order is DimOrder.CONTIGUOUS:
        return op.x
    if isinstance(op, ops.Reshape) and op.shape == (n, c, h, w):
        t = rw.defining(op.x)
        if isinstance(t, ops.Transpose) and t.perm == (0, 2, 1) and \
                t.x.type.dim_order is DimOrder.CONTIGUOUS and t.x.type.shape == (n, h * w, c):
            return t.x
    return None


def _boundary(p: Program) -> list[Value]:
    """Values that host code produces: program inputs and host op results."""
    return [*p.inputs, *(r for op in p.ops if isinstance(op, ops.HostOp) for r in op.results)]


def _as_nhwc(x: Value) -> Value:
    n, c, h, w = x.type.shape  # type: ignore[union-attr]
    return Value(x.id, attrs.evolve(x.type, shape=(n, h, w, c), dim_order=DimOrder.NHWC))


@attrs.define(eq=False)
class _Layout:
    """The per-op rules; ``physical`` holds ops (by first result id) that already read NHWC."""

    physical: set[int]
    retype: set[int]  # host op results to store NHWC

    # -- conversions -------------------------------------------------------------------
    def nhwc(self, rw: Rewriter, x: Value) -> Value:
        """``x`` as an NHWC value; constants are permuted at compile time."""
        if x.type.dim_order is DimOrder.NHWC:
            return x
        c = rw.constant(x)
        if c is not None:
            data = c.data.reshape((1,) * (4 - c.data.dim()) + tuple(c.data.shape))
            return rw.b.const(data.permute(NHWC).contiguous(), DimOrder.NHWC, c.result.type.quant)
        if x.type.rank < 4:  # type: ignore[union-attr]
            x = rw.b.emit(ops.Reshape, x=x, shape=(1,) * (4 - x.type.rank) + x.type.shape)
        stored = _stored_nhwc(rw, x)
        if stored is not None:
            return rw.b.emit(ops.Reshape, x=stored, shape=_physical(x), out_order=DimOrder.NHWC)
        return rw.b.emit(ops.Transpose, x=x, perm=NHWC, out_order=DimOrder.NHWC)

    def contiguous(self, rw: Rewriter, x: Value) -> Value:
        if x.type.dim_order is DimOrder.CONTIGUOUS:
            return x
        return rw.b.emit(ops.Transpose, x=x, perm=TO_NCHW)

    def rebuild(self, rw: Rewriter, op: Op, **changes: Any) -> Op | tuple[Value, ...]:
        fields = {f.name: getattr(op, f.name) for f in attrs.fields(type(op)) if f.name != "results"}
        fields.update(changes)
        probe = type(op)(results=(), **fields)
        if probe.infer() == tuple(r.type for r in op.results):
            # Same types: keep the original values so an unchanged op stays identical.
            return attrs.evolve(probe, results=op.results)
        return rw.b.op(type(op), **fields).results

    # -- per-op rules --------------------------------------------------------------------
    def visit(self, rw: Rewriter, op: Op) -> Op | tuple[Value, ...] | None:
        if isinstance(op, ops.HostOp):
            return self.host(op)
        if op.results[0].id in self.physical:
            return self.rebuild(rw, op)  # already in physical terms (an earlier run)
        ins = op.inputs()
        any_nhwc = any(x.type.dim_order is DimOrder.NHWC for x in ins)
        if isinstance(op, ops.Transpose | ops.Reshape) and not any_nhwc:
            tokens = self.tokens(rw, op)
            if tokens is not None:
                return tokens
        if op.spatial:
            field = op.input_fields()[0]
            return self.rebuild(rw, op, **{field: self.nhwc(rw, getattr(op, field))})
        if isinstance(op, _Unary | ops.Quantize | ops.Dequantize):
            return self.rebuild(rw, op)
        if not any_nhwc:
            return self.nchw(rw, op)
        if isinstance(op, _Binary | _MinMax | ops.Prelu):
            f0, f1 = op.input_fields()
            return self.rebuild(rw, op, **{f0: self.nhwc(rw, getattr(op, f0)),
                                           f1: self.nhwc(rw, getattr(op, f1))})
        if isinstance(op, ops.Concatenation):
            return self.rebuild(rw, op, xs=tuple(self.nhwc(rw, x) for x in ins), axis=L2P[op.axis])
        if isinstance(op, ops.ArgMax) and op.axis == 1:  # ArgMin too: N, H, W stay in order
            return self.rebuild(rw, op, axis=L2P[1])
        if isinstance(op, ops.Softmax | ops.ChannelShuffle | ops.Gather | ops.LocalResponseNorm):
            return self.rebuild(rw, op, axis=L2P[op.axis])
        if isinstance(op, ops.Tile):
            return self.rebuild(rw, op, multiples=tuple(op.multiples[i] for i in NHWC))
        if isinstance(op, ops.Pad):  # PadV2 too
            return self.rebuild(rw, op, pads=tuple(op.pads[NHWC[i]] for i in range(4)))
        if isinstance(op, ops.StridedSlice) and not op.shrink_mask:
            return self.rebuild(rw, op, begin=tuple(op.begin[i] for i in NHWC),
                                end=tuple(op.end[i] for i in NHWC),
                                strides=tuple(op.strides[i] for i in NHWC))
        if isinstance(op, ops.Mean):
            return self.mean(rw, op, ins[0])
        if isinstance(op, ops.FullyConnected):
            return self.fc(rw, op, ins[0])
        if isinstance(op, ops.Transpose):
            perm = tuple(TO_NCHW[p] for p in op.perm)
            if perm == (0, 1, 2, 3):  # x.permute(0, 2, 3, 1): the NHWC storage itself
                return (rw.b.emit(ops.Reshape, x=ins[0], shape=ins[0].type.shape,
                                  reads_storage=True),)
            return self.rebuild(rw, op, perm=perm)
        if isinstance(op, ops.Reshape) and nhwc_is_contiguous(ins[0].type):
            return self.rebuild(rw, op)
        return self.nchw(rw, op)

    def tokens(self, rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
        """``x.flatten(2).transpose(1, 2)`` of an NHWC ``x``: [N, H*W, C] is its storage.

        Visited after the flatten, which read ``x`` through a TRANSPOSE to NCHW; both become
        unread and the rewrite driver erases them. Also a reshape of such a storage view.
        """
        src = op.x  # type: ignore[attr-defined]
        inner = rw.defining(src)
        if isinstance(op, ops.Reshape):
            if isinstance(inner, ops.Reshape) and inner.reads_storage:
                return (rw.b.emit(ops.Reshape, x=inner.x, shape=op.shape, reads_storage=True),)
            return None
        if op.perm != (0, 2, 1) or not isinstance(inner, ops.Reshape):  # type: ignore[attr-defined]
            return None
        to_nchw = rw.defining(inner.x)
        if not isinstance(to_nchw, ops.Transpose) or to_nchw.perm != TO_NCHW or \
                to_nchw.x.type.dim_order is not DimOrder.NHWC:
            return None
        n, h, w, c = to_nchw.x.type.shape
        if inner.shape != (n, c, h * w):
            return None
        return (rw.b.emit(ops.Reshape, x=to_nchw.x, shape=(n, h * w, c), reads_storage=True),)

    def nchw(self, rw: Rewriter, op: Op) -> Op | tuple[Value, ...]:
        """Anything else reads PyTorch's order."""
        fields = {}
        for name in op.input_fields():
            val = getattr(op, name)
            fields[name] = (tuple(self.contiguous(rw, x) for x in val)
                            if isinstance(val, tuple) else self.contiguous(rw, val))
        return self.rebuild(rw, op, **fields)

    def host(self, op: ops.HostOp) -> Op | None:
        """Host code reads NHWC values as they are; its image results are stored NHWC if wanted."""
        if not any(r.id in self.retype for r in op.results):
            return None
        results = tuple(_as_nhwc(r) if r.id in self.retype else r for r in op.results)
        return attrs.evolve(op, results=results, result_types=tuple(r.type for r in results))

    def mean(self, rw: Rewriter, op: ops.Mean, x: Value) -> Op | tuple[Value, ...]:
        axes = tuple(L2P[a] for a in op.axes)
        kept_logical = [a for a in range(4) if a not in op.axes]
        kept_physical = [NHWC[i] for i in range(4) if NHWC[i] not in op.axes]
        if op.keep_dims or kept_logical == kept_physical:
            return self.rebuild(rw, op, axes=axes)
        return self.rebuild(rw, op, x=self.contiguous(rw, x))

    def fc(self, rw: Rewriter, op: ops.FullyConnected, x: Value) -> Op | tuple[Value, ...]:
        w = rw.constant(op.weights)
        _, h, wd, c = x.type.shape  # type: ignore[union-attr]
        if w is None or w.data.shape[1] != c * h * wd:  # not a flatten of the whole image
            return self.rebuild(rw, op, input=self.contiguous(rw, x))
        units = w.data.shape[0]
        perm_w = w.data.reshape(units, c, h, wd).permute(0, 2, 3, 1).reshape(units, -1)
        return self.rebuild(rw, op, weights=rw.b.const(perm_w.contiguous(), owned=True,
                                                        quant=w.result.type.quant))


@register
@attrs.frozen
class LayoutNHWC:
    """Propagate NHWC storage through the program (see the module docstring)."""

    name: ClassVar[str] = "layout-nhwc"

    def run(self, program: Program) -> PassResult:
        want = _prefers_nhwc(program)
        # Converting a host-made value (program input, host op result) on the host is free for
        # channels_last tensors, so any that an NHWC-friendly op reads is taken NHWC rather than
        # transposed inside NNAPI.
        users = program.users()
        regions = _spatial_regions(program)
        retype = {x.id for x in _boundary(program)
                  if _image(x.type) and x.type.dim_order is DimOrder.CONTIGUOUS and (
                      x.id in want or (x.id in regions and any(
                          u.spatial or u.layout_follows for u in users.get(x.id, []))))}
        physical = {op.results[0].id for op in program.ops if op.results and any(
            x.type.dim_order is DimOrder.NHWC for x in op.inputs())}
        rw = Rewriter.start(program, recursive=False)  # a conversion: never revisit its output
        for x in program.inputs:
            if x.id in retype:
                rw.replace_value(x, _as_nhwc(x))
        layout = _Layout(physical, retype)
        p, changed = rw.run({Constant: lambda rw, op: None, Op: layout.visit})
        return PassResult(p, changed)
