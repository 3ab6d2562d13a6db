"""Upsample simplification: replace every canonical Interpolate by its exact NNAPI form.

Both PyTorch and NNAPI define resizing per axis as a fixed linear map from input rows to
output rows. This pass computes that map — an [out, in] matrix in float32 — the way each
implementation does (PyTorch's aten kernels; NNAPI's reference kernel per SEMANTICS.md), and
picks the cheapest NNAPI form whose maps equal PyTorch's on both axes at the target level:

1. RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR, without flags or (FL4+) with align_corners or
   half_pixel_centers;
2. otherwise nearest becomes GATHER per axis (exact index selection, FL3);
3. otherwise bilinear by integer factors on NHWC data becomes GATHER (nearest with edge
   replication) then a depthwise conv per axis (``_polyphase``): no TRANSPOSE;
4. otherwise bilinear becomes two FULLY_CONNECTED ops with PyTorch's own interpolation
   matrices (exact coefficients), with the transposes that bring each axis last;
5. bicubic has no NNAPI resize op at any level: it is always the matrix form, with
   ``cubic_map``'s matrices (aten's cubic convolution, A = -0.75, clamped border taps).
Bilinear maps are compared within 2 float32 ulps: both kernels compute the same coefficients
and differ only in float rounding order, as the matrix form itself does.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from ..ir import ops
from ..ir.ops.base import Op
from ..ir.ops.resize import Interpolate
from ..ir.program import Program
from ..ir.types import DimOrder, Value
from .base import PassResult, register
from .rewrite import Rewriter, rewrite_ops

F32 = torch.float32


def _f(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=F32)


def _one_hot(idx: torch.Tensor, size: int) -> torch.Tensor:
    m = torch.zeros(len(idx), size, dtype=F32)
    m[torch.arange(len(idx)), idx.clamp(0, size - 1)] = 1.0
    return m


def _scale(size: int, out: int, scale: float | None) -> torch.Tensor:
    """aten compute_scales_value in float32."""
    return _f(1.0 / scale) if scale else _f(size) / _f(out)


#: aten's cubic convolution parameter (``get_cubic_upsample_coefficients``), as in TensorFlow.
CUBIC_A = -0.75


def cubic_map(size: int, out: int, align: bool, scale: float | None,
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """PyTorch's [out, in] bicubic matrix for one axis, computed in ``dtype`` as aten computes
    it for an input of that dtype (``upsample_bicubic2d``, antialias off).

    Output ``o`` reads the source coordinate ``s*o`` (align_corners) or ``s*(o+0.5)-0.5``, with no
    clamp at 0 (unlike bilinear); its floor ``i`` (at most ``size-1``) and fraction ``t`` (clamped
    to [0, 1]) pick four taps ``i-1..i+2`` with Keys' cubic-convolution weights
    ``W(t+1), W(t), W(1-t), W(2-t)``. Taps outside the axis read the border sample (aten clamps
    the index), so their weights add up on the border column.
    """
    def c(x: float) -> torch.Tensor:
        return torch.tensor(x, dtype=dtype)

    if align:
        s = c(size - 1) / c(out - 1) if out > 1 else c(0.0)
        src = s * torch.arange(out, dtype=dtype)
    else:
        s = c(1.0 / scale) if scale else c(size) / c(out)  # compute_scales_value
        src = s * (torch.arange(out, dtype=dtype) + c(0.5)) - c(0.5)
    i0 = torch.floor(src).long().clamp(max=size - 1)
    t = (src - i0.to(dtype)).clamp(0, 1)
    a = c(CUBIC_A)

    def near(x: torch.Tensor) -> torch.Tensor:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: torch.Tensor) -> torch.Tensor:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = (far(t + 1), near(t), near(1 - t), far((1 - t) + 1))
    m = torch.zeros(out, size, dtype=dtype)
    o = torch.arange(out)
    for k, w in enumerate(weights):
        m.index_put_((o, (i0 - 1 + k).clamp(0, size - 1)), w, accumulate=True)
    return m


def torch_map(mode: str, size: int, out: int, align: bool, scale: float | None) -> torch.Tensor:
    """PyTorch's [out, in] resampling matrix for one axis (float32 arithmetic as in aten).

    Bicubic is computed in float64 and rounded once: aten's float32 coefficients are these
    within float32 rounding, and the rounded exact ones are the closer to what it means.
    """
    if mode == "bicubic":
        return cubic_map(size, out, align, scale).to(F32)
    o = torch.arange(out)
    if out == size and mode != "nearest-exact":
        return torch.eye(out, dtype=F32)
    if mode == "area":  # adaptive average pooling: window [floor(i*in/out), ceil((i+1)*in/out))
        m = torch.zeros(out, size, dtype=F32)
        for i in range(out):
            lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
            m[i, lo:hi] = 1.0 / (hi - lo)
        return m
    if mode == "nearest":
        if out == 2 * size:
            return _one_hot(o // 2, size)
        return _one_hot(torch.floor(o.to(F32) * _scale(size, out, scale)).long(), size)
    if mode == "nearest-exact":
        src = ((o.double() + 0.5) * _scale(size, out, scale).double()).to(F32)
        return _one_hot(torch.floor(src).long(), size)
    if align:
        s = _f(size - 1) / _f(out - 1) if out > 1 else _f(0.0)
        src = s * o.to(F32)
    else:
        s = _scale(size, out, scale)
        src = (s * (o.to(F32) + _f(0.5)) - _f(0.5)).clamp(min=0)
    i0 = src.long().clamp(max=size - 1)
    l1 = (src - i0.to(F32)).clamp(0, 1)
    i1 = torch.where(i0 < size - 1, i0 + 1, i0)
    m = torch.zeros(out, size, dtype=F32)
    m.index_put_((o, i0), 1 - l1, accumulate=True)
    m.index_put_((o, i1), l1, accumulate=True)
    return m


def nnapi_map(bilinear: bool, size: int, out: int, align: bool, half: bool) -> torch.Tensor:
    """NNAPI's reference [out, in] matrix for RESIZE_* with the given flags (SEMANTICS.md)."""
    s = _f(size - 1) / _f(out - 1) if align and out > 1 else _f(size) / _f(out)
    o = torch.arange(out).to(F32)
    if not bilinear:
        src = (o + _f(0.5)) * s if half else o * s
        idx = torch.round(src) if align else torch.floor(src)
        return _one_hot(idx.long().clamp(max=size - 1), size)
    src = (o + _f(0.5)) * s - _f(0.5) if half else o * s
    i0 = torch.floor(src).long().clamp(min=0)
    i1 = torch.ceil(src).long().clamp(max=size - 1)
    w = src - i0.to(F32)
    m = torch.zeros(out, size, dtype=F32)
    m.index_put_((torch.arange(out), i0), 1 - w, accumulate=True)
    m.index_put_((torch.arange(out), i1), w, accumulate=True)
    return m


def _equal(a: torch.Tensor, b: torch.Tensor, bilinear: bool) -> bool:
    if not bilinear:
        return torch.equal(a, b)
    return torch.allclose(a, b, rtol=2 * torch.finfo(F32).eps, atol=0.0)


def _axes(x: Value) -> tuple[int, int]:
    return (1, 2) if x.type.dim_order is DimOrder.NHWC else (2, 3)


def _lower(rw: Rewriter, op: Op) -> tuple[Value, ...]:
    assert isinstance(op, Interpolate)
    x, b = op.x, rw.b
    _, ah, aw = 0, *_axes(x)
    h, w = x.type.shape[ah], x.type.shape[aw]
    bilinear = op.mode in ("bilinear", "area", "bicubic")  # linear maps, not selections
    want_h = torch_map(op.mode, h, op.out_h, op.align_corners, op.scale_h)
    want_w = torch_map(op.mode, w, op.out_w, op.align_corners, op.scale_w)
    if torch.equal(want_h, torch.eye(h)) and torch.equal(want_w, torch.eye(w)):
        return (x,)
    cls = ops.ResizeBilinear if bilinear else ops.ResizeNearest
    for align, half in ((False, False), (True, False), (False, True)):
        if op.mode in ("area", "bicubic") or ((align or half) and rw.program.level < 4):
            continue
        if _equal(nnapi_map(bilinear, h, op.out_h, align, half), want_h, bilinear) and \
                _equal(nnapi_map(bilinear, w, op.out_w, align, half), want_w, bilinear):
            return (b.emit(cls, x=x, out_h=op.out_h, out_w=op.out_w, align_corners=align,
                           half_pixel_centers=half),)
    if not bilinear:
        y = x
        for axis, m in ((ah, want_h), (aw, want_w)):
            if not (m.shape[0] == m.shape[1] and torch.equal(m, torch.eye(m.shape[0]))):
                y = b.emit(ops.Gather, x=y, axis=axis, indices=m.argmax(1).tolist())
        return (y,)
    if op.mode == "bilinear" and x.type.quant is None and x.type.dim_order is DimOrder.NHWC:
        y = _polyphase(rw, x, want_h, want_w)
        if y is not None:
            return (y,)
    if x.type.quant is not None:  # the matrices are float: resample between (DE)QUANTIZE
        y = _matrix_form(rw, b.emit(ops.Dequantize, x=x), want_h, want_w)
        return (b.emit(ops.Quantize, x=y, quant=x.type.quant, out_code=x.type.code),)
    return (_matrix_form(rw, x, want_h, want_w),)


def _box(s: int) -> list[float]:
    """The kernel that turns nearest x s into half-pixel bilinear x s (see ``_polyphase``)."""
    if s % 2:
        return [1.0 / s] * s
    return [0.5 / s] + [1.0 / s] * (s - 1) + [0.5 / s]


def _axis_plan(size: int, want: torch.Tensor) -> tuple[list[int], list[float]] | None:
    """(GATHER indices, kernel) with ``valid_conv(gather(x), kernel) == want @ x`` on one axis.

    Half-pixel bilinear by an integer factor s puts input sample i at output coordinate
    s*i + (s-1)/2, exactly where nearest x s centres its block of copies. Output phase r then
    mixes x[i] with one neighbour, in proportions that a phase-independent kernel reproduces on
    the nearest-upsampled signal: a box of s taps 1/s (odd s), or s+1 taps
    [1/2s, 1/s, ..., 1/s, 1/2s] (even s; s = 2 gives [1/4, 1/2, 1/4]). PyTorch clamps source
    coordinates at the borders, which is edge replication: the GATHER indices clamp too. The
    composite map is checked against PyTorch's own (``want``), so any other case (align_corners,
    non-integer factors) returns None.
    """
    out = want.shape[0]
    if out % size or out == size:
        return None
    s = out // size
    k = _box(s)
    m = len(k) // 2
    idx = [min(max((p - m) // s, 0), size - 1) for p in range(out + 2 * m)]
    composite = torch.zeros(out, size, dtype=torch.float64)
    for o in range(out):
        for j, kj in enumerate(k):
            composite[o, idx[o + j]] += kj
    # PyTorch computes each source coordinate in float32 (values up to ``size``), so its own
    # coefficients are the ideal ones within a few ulps of ``size``; ours are the ideal ones.
    eps = torch.finfo(F32).eps
    if not torch.allclose(composite.to(F32), want, rtol=2 * eps, atol=4 * eps * size):
        return None
    return idx, k


def _polyphase(rw: Rewriter, x: Value, mh: torch.Tensor, mw: torch.Tensor) -> Value | None:
    """Bilinear resize by integer factors on NHWC data: GATHER per axis, then DEPTHWISE_CONV_2D.

    No TRANSPOSE (the matrix form needs three at FL3). Factors 2 and 3 take 3 ops (two GATHERs
    and one 3x3 depthwise conv); larger factors convolve each axis on its own (1-D kernels), so
    the work per output stays about 2(s+1) multiply-adds instead of (s+1)^2.
    """
    b = rw.b
    h, w = x.type.shape[1], x.type.shape[2]
    eye_h = mh.shape[0] == h and torch.equal(mh, torch.eye(h))
    eye_w = mw.shape[0] == w and torch.equal(mw, torch.eye(w))
    plan_h = None if eye_h else _axis_plan(h, mh)
    plan_w = None if eye_w else _axis_plan(w, mw)
    if (plan_h is None and not eye_h) or (plan_w is None and not eye_w):
        return None
    c = x.type.shape[3]
    kh = torch.tensor(plan_h[1] if plan_h else [1.0], dtype=F32)
    kw = torch.tensor(plan_w[1] if plan_w else [1.0], dtype=F32)
    bias = b.const(torch.zeros(c))

    def conv(y: Value, k2: torch.Tensor) -> Value:
        filt = k2.reshape(1, *k2.shape, 1).expand(1, *k2.shape, c).contiguous()
        return b.emit(ops.DepthwiseConv2d, input=y, filter=b.const(filt, owned=True), bias=bias)

    y = x
    separate = len(kh) * len(kw) > 9
    for axis, plan, k2 in ((1, plan_h, kh.reshape(-1, 1)), (2, plan_w, kw.reshape(1, -1))):
        if plan is not None:
            y = b.emit(ops.Gather, x=y, axis=axis, indices=plan[0])
            if separate:
                y = conv(y, k2)
    return y if separate else conv(y, torch.outer(kh, kw))


def _fc_last(rw: Rewriter, x: Value, m: torch.Tensor) -> Value:
    """Contract the last dim of ``x`` with ``m`` [out, in] (FULLY_CONNECTED + RESHAPE)."""
    b = rw.b
    y = b.emit(ops.FullyConnected, input=x, weights=b.const(m), bias=b.const(torch.zeros(m.shape[0])))
    return b.emit(ops.Reshape, x=y, shape=(*x.type.shape[:-1], m.shape[0]))


def _is_eye(m: torch.Tensor) -> bool:
    return m.shape[0] == m.shape[1] and torch.equal(m, torch.eye(m.shape[0], dtype=m.dtype))


def _matrix_form(rw: Rewriter, x: Value, mh: torch.Tensor, mw: torch.Tensor) -> Value:
    b = rw.b
    nhwc = x.type.dim_order is DimOrder.NHWC
    if _is_eye(mh):  # one axis resized: one matrix, and W is already last in NCHW
        if not nhwc:
            return _fc_last(rw, x, mw)
        t = _fc_last(rw, b.emit(ops.Transpose, x=x, perm=(0, 1, 3, 2)), mw)  # [N,H,C,OW]
        return b.emit(ops.Transpose, x=t, perm=(0, 1, 3, 2), out_order=DimOrder.NHWC)
    if _is_eye(mw):
        t = _fc_last(rw, b.emit(ops.Transpose, x=x, perm=(0, 2, 3, 1) if nhwc else (0, 1, 3, 2)), mh)
        if nhwc:  # [N,W,C,OH] -> [N,OH,W,C]
            return b.emit(ops.Transpose, x=t, perm=(0, 3, 1, 2), out_order=DimOrder.NHWC)
        return b.emit(ops.Transpose, x=t, perm=(0, 1, 3, 2))
    if nhwc:  # [N,H,W,C] -> [N,H,C,W] -> [N,OW,C,H] -> NHWC
        t = _fc_last(rw, b.emit(ops.Transpose, x=x, perm=(0, 1, 3, 2)), mw)
        t = _fc_last(rw, b.emit(ops.Transpose, x=t, perm=(0, 3, 2, 1)), mh)
        return b.emit(ops.Transpose, x=t, perm=(0, 3, 1, 2), out_order=DimOrder.NHWC)
    t = _fc_last(rw, x, mw)  # [N,C,H,OW]
    t = _fc_last(rw, b.emit(ops.Transpose, x=t, perm=(0, 1, 3, 2)), mh)  # [N,C,OW,OH]
    return b.emit(ops.Transpose, x=t, perm=(0, 1, 3, 2))


@register
@attrs.frozen
class SimplifyUpsample:
    name: ClassVar[str] = "simplify-upsample"

    def run(self, program: Program) -> PassResult:
        p, changed = rewrite_ops(program, {Interpolate: _lower})
        return PassResult(p, changed)
