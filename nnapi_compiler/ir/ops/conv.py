"""Spatial NNAPI ops: convolutions (plain, depthwise, grouped, transposed) and 2-D pools.

All use explicit padding. The NCHW layout flag is not an attribute: it follows from the input's
dim order (CONTIGUOUS rank-4 data is NCHW), so the layout pass changes it by changing types.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import FuseCode, OpCode
from ..types import DimOrder, Operand, Quant, TensorType, Value, boolean, i32, with_quant
from .base import Loc, NnapiOp


def _positive(_s: object, a: attrs.Attribute, v: HW) -> None:
    if v.h < 1 or v.w < 1:
        raise ValueError(f"{a.name} must be >= 1, got {v}")


@attrs.frozen
class HW:
    """A (height, width) pair: strides, dilations, kernel sizes."""

    h: int
    w: int


@attrs.frozen
class Padding:
    """Explicit padding in rows/columns added before (top/left) and after (bottom/right)."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    def __attrs_post_init__(self) -> None:
        if min(self.top, self.bottom, self.left, self.right) < 0:
            raise ValueError(f"negative padding {self}")

    def nnapi(self) -> list[Operand]:
        return [i32(self.left), i32(self.right), i32(self.top), i32(self.bottom)]


def out_size(size: int | None, k: int, stride: int, dilation: int, head: int, tail: int) -> int | None:
    """NNAPI explicit-padding output extent: (in + pads - eff_k) // stride + 1."""
    if size is None:
        return None
    return (size + head + tail - ((k - 1) * dilation + 1)) // stride + 1


def _nchw(x: Value) -> bool:
    return x.type.dim_order is DimOrder.CONTIGUOUS


def _spatial(t: TensorType) -> tuple[int | None, int | None, int | None, int | None]:
    """(N, H, W, C) of a rank-4 image value in either dim order."""
    n, a, b, c = t.shape
    return (n, b, c, a) if t.dim_order is DimOrder.CONTIGUOUS else (n, a, b, c)


def _image(t: TensorType, n: int | None, h: int | None, w: int | None, c: int | None) -> TensorType:
    shape = (n, c, h, w) if t.dim_order is DimOrder.CONTIGUOUS else (n, h, w, c)
    return t.with_shape(shape)


@attrs.frozen(kw_only=True)
class _ConvBase(NnapiOp):
    fusable: ClassVar[bool] = True
    spatial: ClassVar[bool] = True
    nchw_flag: ClassVar[bool] = True
    weighted: ClassVar[tuple[str, int] | None] = ("filter", 0)  # filter [Cout, kh, kw, Cin]
    results: tuple[Value, ...] = ()
    input: Value
    filter: Value
    bias: Value
    padding: Padding = Padding()
    stride: HW = attrs.field(default=HW(1, 1), validator=_positive)
    dilation: HW = attrs.field(default=HW(1, 1), validator=_positive)
    fuse: FuseCode = attrs.field(default=FuseCode.FUSED_NONE, converter=FuseCode)
    out_quant: Quant | None = None  # quantized output parameters
    loc: Loc | None = attrs.field(default=None, eq=False)

    def _kernel(self) -> HW:
        _, kh, kw, _ = self.filter.type.shape
        return HW(kh, kw)

    def _out_channels(self) -> int:
        return self.filter.type.shape[0]

    def infer(self) -> tuple[TensorType, ...]:
        n, h, w, _ = _spatial(self.input.type)
        k = self._kernel()
        p = self.padding
        oh = out_size(h, k.h, self.stride.h, self.dilation.h, p.top, p.bottom)
        ow = out_size(w, k.w, self.stride.w, self.dilation.w, p.left, p.right)
        return (with_quant(_image(self.input.type, n, oh, ow, self._out_channels()), self.out_quant),)

    def check(self) -> list[str]:
        errs = []
        if self.input.type.rank != 4 or self.filter.type.rank != 4:
            errs.append("input and filter must be rank 4")
        elif self.bias.type.shape != (self._out_channels(),):
            errs.append(f"bias shape {self.bias.type.shape} != ({self._out_channels()},)")
        return errs

    def required_level(self) -> int:
        level = self.spec_level()
        if _nchw(self.input) or self.dilation != HW(1, 1):
            level = max(level, 3)
        return level

    def _tail(self) -> list[Operand]:
        ops: list[Operand] = [i32(self.stride.w), i32(self.stride.h), i32(self.fuse)]
        if _nchw(self.input) or self.dilation != HW(1, 1):
            ops.append(boolean(_nchw(self.input)))
        if self.dilation != HW(1, 1):
            ops += [i32(self.dilation.w), i32(self.dilation.h)]
        return ops


@attrs.frozen(kw_only=True)
class Conv2d(_ConvBase):
    """CONV_2D; filter [Cout, kh, kw, Cin]."""

    mnemonic: ClassVar[str] = "conv_2d"
    code: ClassVar[OpCode] = OpCode.CONV_2D

    def check(self) -> list[str]:
        errs = super().check()
        if not errs and self.filter.type.shape[3] != _spatial(self.input.type)[3]:
            errs.append("filter Cin != input channels")
        return errs

    def nnapi_operands(self) -> list[Operand]:
        return [self.input, self.filter, self.bias, *self.padding.nnapi(), *self._tail()]


@attrs.frozen(kw_only=True)
class DepthwiseConv2d(_ConvBase):
    """DEPTHWISE_CONV_2D; filter [1, kh, kw, Cin * multiplier]."""

    mnemonic: ClassVar[str] = "depthwise_conv_2d"
    code: ClassVar[OpCode] = OpCode.DEPTHWISE_CONV_2D
    weighted: ClassVar[tuple[str, int] | None] = ("filter", 3)  # filter [1, kh, kw, Cout]
    multiplier: int = 1

    def _out_channels(self) -> int:
        return self.filter.type.shape[3]

    def check(self) -> list[str]:
        errs = super().check()
        cin = _spatial(self.input.type)[3]
        if not errs and cin is not None and self._out_channels() != cin * self.multiplier:
            errs.append("filter channels != input channels * multiplier")
        return errs

    def nnapi_operands(self) -> list[Operand]:
        tail = self._tail()
        return [self.input, self.filter, self.bias, *self.padding.nnapi(),
                *tail[:2], i32(self.multiplier), *tail[2:]]


@attrs.frozen(kw_only=True)
class GroupedConv2d(_ConvBase):
    """GROUPED_CONV_2D (FL3); filter [Cout, kh, kw, Cin/groups]; no dilation operand exists."""

    mnemonic: ClassVar[str] = "grouped_conv_2d"
    code: ClassVar[OpCode] = OpCode.GROUPED_CONV_2D
    groups: int = 1

    def check(self) -> list[str]:
        errs = super().check()
        if self.dilation != HW(1, 1):
            errs.append("GROUPED_CONV_2D has no dilation")
        return errs

    def nnapi_operands(self) -> list[Operand]:
        return [self.input, self.filter, self.bias, *self.padding.nnapi(),
                i32(self.stride.w), i32(self.stride.h), i32(self.groups), i32(self.fuse),
                boolean(_nchw(self.input))]


@attrs.frozen(kw_only=True)
class TransposeConv2d(_ConvBase):
    """TRANSPOSE_CONV_2D (FL3); filter [Cout, kh, kw, Cin]; out = (in-1)*s + k - pads."""

    mnemonic: ClassVar[str] = "transpose_conv_2d"
    code: ClassVar[OpCode] = OpCode.TRANSPOSE_CONV_2D

    def infer(self) -> tuple[TensorType, ...]:
        n, h, w, _ = _spatial(self.input.type)
        k = self._kernel()
        p = self.padding
        oh = None if h is None else (h - 1) * self.stride.h + k.h - p.top - p.bottom
        ow = None if w is None else (w - 1) * self.stride.w + k.w - p.left - p.right
        return (with_quant(_image(self.input.type, n, oh, ow, self._out_channels()), self.out_quant),)

    def nnapi_operands(self) -> list[Operand]:
        return [self.input, self.filter, self.bias, *self.padding.nnapi(),
                i32(self.stride.w), i32(self.stride.h), i32(self.fuse), boolean(_nchw(self.input))]


@attrs.frozen(kw_only=True)
class _Pool(NnapiOp):
    fusable: ClassVar[bool] = True
    spatial: ClassVar[bool] = True
    nchw_flag: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    input: Value
    kernel: HW = attrs.field(validator=_positive)
    padding: Padding = Padding()
    stride: HW = attrs.field(default=HW(1, 1), validator=_positive)
    fuse: FuseCode = attrs.field(default=FuseCode.FUSED_NONE, converter=FuseCode)
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        n, h, w, c = _spatial(self.input.type)
        p = self.padding
        oh = out_size(h, self.kernel.h, self.stride.h, 1, p.top, p.bottom)
        ow = out_size(w, self.kernel.w, self.stride.w, 1, p.left, p.right)
        return (_image(self.input.type, n, oh, ow, c),)

    def check(self) -> list[str]:
        p, k = self.padding, self.kernel
        if max(p.top, p.bottom) >= k.h or max(p.left, p.right) >= k.w:
            return [f"pool padding {p} must be smaller than the window {k}"]
        return []

    def required_level(self) -> int:
        return max(self.spec_level(), 3 if _nchw(self.input) else 1)

    def nnapi_operands(self) -> list[Operand]:
        ops: list[Operand] = [self.input, *self.padding.nnapi(), i32(self.stride.w),
                              i32(self.stride.h), i32(self.kernel.w), i32(self.kernel.h),
                              i32(self.fuse)]
        if _nchw(self.input):
            ops.append(boolean(True))
        return ops


@attrs.frozen(kw_only=True)
class AveragePool2d(_Pool):
    """AVERAGE_POOL_2D: divides by the number of in-bounds cells (padding is ignored)."""

    mnemonic: ClassVar[str] = "average_pool_2d"
    code: ClassVar[OpCode] = OpCode.AVERAGE_POOL_2D


@attrs.frozen(kw_only=True)
class MaxPool2d(_Pool):
    """MAX_POOL_2D over in-bounds cells."""

    mnemonic: ClassVar[str] = "max_pool_2d"
    code: ClassVar[OpCode] = OpCode.MAX_POOL_2D


@attrs.frozen(kw_only=True)
class L2Pool2d(_Pool):
    """L2_POOL_2D (float only): sqrt(sum of squares / number of in-bounds cells)."""

    mnemonic: ClassVar[str] = "l2_pool_2d"
    code: ClassVar[OpCode] = OpCode.L2_POOL_2D
