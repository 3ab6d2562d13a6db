"""Data-movement NNAPI ops: reshape, transpose, concatenation, strided slice, padding, gather,
tile, channel shuffle, depth-to-space and space-to-depth.

Axes, perms and slice bounds are physical (NNAPI) axes of the operand as stored.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import OpCode
from ..types import (
    DimOrder,
    IntVector,
    Operand,
    Quant,
    Scalar,
    TensorType,
    Value,
    boolean,
    f32,
    i32,
    with_quant,
)
from .base import Loc, NnapiOp


@attrs.frozen(kw_only=True)
class Reshape(NnapiOp):
    mnemonic: ClassVar[str] = "reshape"
    code: ClassVar[OpCode] = OpCode.RESHAPE
    results: tuple[Value, ...] = ()
    x: Value
    shape: tuple[int, ...] = attrs.field(converter=tuple)
    # Token idioms on NHWC storage (passes/layout.py): ``reads_storage`` reads an NHWC input in
    # its stored order ([N, H, W, C] as [N, H*W, C] is ``x.flatten(2).transpose(1, 2)``);
    # ``out_order=NHWC`` labels the result an NHWC image ([N, H*W, C] tokens stored as
    # [N, H, W, C] are ``t.transpose(1, 2).reshape(N, C, H, W)``). RESHAPE itself always moves
    # stored bytes; these only say what the IR types mean. None (unset, not printed) = off.
    reads_storage: bool | None = None
    out_order: DimOrder | None = None
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (attrs.evolve(self.x.type, shape=self.shape,
                             dim_order=self.out_order or DimOrder.CONTIGUOUS),)

    def check(self) -> list[str]:
        t = self.x.type
        if t.known and t.numel != _prod(self.shape):
            return [f"reshape {t.shape} -> {self.shape} changes the element count"]
        if t.dim_order is DimOrder.NHWC and not nhwc_is_contiguous(t) and not self.reads_storage:
            return ["reshape of NHWC data whose element order differs from PyTorch's"]
        if self.out_order is DimOrder.NHWC and len(self.shape) != 4:
            return ["an NHWC-producing reshape must be rank 4"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, IntVector(self.shape)]


def nhwc_is_contiguous(t: TensorType) -> bool:
    """NHWC bytes are in PyTorch's order when C == 1 or H*W == 1 (so reshapes may read them)."""
    _, h, w, c = t.shape
    return c == 1 or (h is not None and w is not None and h * w == 1)


def _prod(xs: tuple[int, ...]) -> int:
    n = 1
    for x in xs:
        n *= x
    return n


@attrs.frozen(kw_only=True)
class Transpose(NnapiOp):
    """out dim i = in dim perm[i]."""

    mnemonic: ClassVar[str] = "transpose"
    code: ClassVar[OpCode] = OpCode.TRANSPOSE
    results: tuple[Value, ...] = ()
    x: Value
    perm: tuple[int, ...] = attrs.field(converter=tuple)
    # NHWC when this transpose is a layout conversion NCHW -> NHWC (same logical tensor).
    out_order: DimOrder = DimOrder.CONTIGUOUS
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        s = self.x.type.shape
        return (attrs.evolve(self.x.type, shape=tuple(s[p] for p in self.perm),
                             dim_order=self.out_order),)

    def check(self) -> list[str]:
        if sorted(self.perm) != list(range(self.x.type.rank)):
            return [f"perm {self.perm} is not a permutation of rank {self.x.type.rank}"]
        if self.out_order is DimOrder.NHWC and self.x.type.rank != 4:
            return ["an NHWC-producing transpose must be rank 4"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, IntVector(self.perm)]


@attrs.frozen(kw_only=True)
class Concatenation(NnapiOp):
    mnemonic: ClassVar[str] = "concatenation"
    code: ClassVar[OpCode] = OpCode.CONCATENATION
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    xs: tuple[Value, ...] = attrs.field(converter=tuple)
    axis: int
    out_quant: Quant | None = None
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        first = self.xs[0].type
        dims = [x.type.shape[self.axis] for x in self.xs]
        total = None if None in dims else sum(dims)  # type: ignore[arg-type]
        shape = list(first.shape)
        shape[self.axis] = total
        return (with_quant(first.with_shape(tuple(shape)), self.out_quant),)

    def check(self) -> list[str]:
        r = self.xs[0].type.rank
        if not 0 <= self.axis < r:
            return [f"axis {self.axis} out of range for rank {r}"]
        for x in self.xs:
            other = [d for i, d in enumerate(x.type.shape) if i != self.axis]
            ref = [d for i, d in enumerate(self.xs[0].type.shape) if i != self.axis]
            if other != ref or x.type.code != self.xs[0].type.code:
                return [f"input {x} {x.type} does not match {self.xs[0].type} off the axis"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [*self.xs, i32(self.axis)]


@attrs.frozen(kw_only=True)
class StridedSlice(NnapiOp):
    """STRIDED_SLICE with normalized, non-negative begin/end and positive strides."""

    mnemonic: ClassVar[str] = "strided_slice"
    code: ClassVar[OpCode] = OpCode.STRIDED_SLICE
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    begin: tuple[int, ...] = attrs.field(converter=tuple)
    end: tuple[int, ...] = attrs.field(converter=tuple)
    strides: tuple[int, ...] = attrs.field(converter=tuple)
    shrink_mask: int = 0
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        shape = []
        for i, (b, e, s) in enumerate(zip(self.begin, self.end, self.strides, strict=True)):
            if self.shrink_mask >> i & 1:
                continue
            shape.append(max(0, -(-(e - b) // s)))
        # Without shrinking, a slice keeps the dim order (NHWC slices stay NHWC).
        order = self.x.type.dim_order if not self.shrink_mask else DimOrder.CONTIGUOUS
        return (attrs.evolve(self.x.type, shape=tuple(shape) or (1,), dim_order=order),)

    def check(self) -> list[str]:
        r = self.x.type.rank
        if not len(self.begin) == len(self.end) == len(self.strides) == r:
            return ["begin/end/strides must have one entry per dim"]
        if any(s <= 0 for s in self.strides):
            return ["strides must be positive"]
        if self.shrink_mask and self.x.type.dim_order is not DimOrder.CONTIGUOUS:
            return ["shrinking a non-contiguous (NHWC) value would reorder dims"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, IntVector(self.begin), IntVector(self.end), IntVector(self.strides),
                i32(0), i32(0), i32(self.shrink_mask)]


@attrs.frozen(kw_only=True)
class Pad(NnapiOp):
    """PAD (value 0) or, with a nonzero ``value``, PAD_V2; ``pads`` is ((before, after), ...)."""

    mnemonic: ClassVar[str] = "pad"
    code: ClassVar[OpCode] = OpCode.PAD
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    pads: tuple[tuple[int, int], ...] = attrs.field(converter=lambda p: tuple(map(tuple, p)))
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        shape = tuple(
            None if d is None else d + a + b
            for d, (a, b) in zip(self.x.type.shape, self.pads, strict=True)
        )
        return (self.x.type.with_shape(shape),)

    def check(self) -> list[str]:
        if len(self.pads) != self.x.type.rank or any(min(p) < 0 for p in self.pads):
            return [f"pads {self.pads} must be non-negative, one pair per dim"]
        return []

    def _pads_operand(self) -> IntVector:
        return IntVector([v for p in self.pads for v in p], shape=(len(self.pads), 2))

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, self._pads_operand()]


@attrs.frozen(kw_only=True)
class PadV2(Pad):
    mnemonic: ClassVar[str] = "pad_v2"
    code: ClassVar[OpCode] = OpCode.PAD_V2
    value: float = 0.0

    def nnapi_operands(self) -> list[Operand]:
        pad_value: Scalar = f32(self.value)
        return [self.x, self._pads_operand(), pad_value]


@attrs.frozen(kw_only=True)
class ChannelShuffle(NnapiOp):
    """CHANNEL_SHUFFLE (FL3): split ``axis`` into ``groups`` and transpose the two factors."""

    mnemonic: ClassVar[str] = "channel_shuffle"
    code: ClassVar[OpCode] = OpCode.CHANNEL_SHUFFLE
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    groups: int
    axis: int
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (self.x.type,)

    def check(self) -> list[str]:
        size = self.x.type.shape[self.axis] if 0 <= self.axis < self.x.type.rank else None
        if size is None or size % self.groups:
            return [f"axis {self.axis} of {self.x.type} does not split into {self.groups} groups"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, i32(self.groups), i32(self.axis)]


@attrs.frozen(kw_only=True)
class Gather(NnapiOp):
    """GATHER (FL3): pick ``indices`` along ``axis`` (used for exact nearest resampling)."""

    mnemonic: ClassVar[str] = "gather"
    code: ClassVar[OpCode] = OpCode.GATHER
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    axis: int
    indices: tuple[int, ...] = attrs.field(converter=lambda v: tuple(int(i) for i in v))
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        shape = list(self.x.type.shape)
        shape[self.axis] = len(self.indices)
        return (self.x.type.with_shape(tuple(shape)),)

    def check(self) -> list[str]:
        size = self.x.type.shape[self.axis] if 0 <= self.axis < self.x.type.rank else None
        if size is None or any(not 0 <= i < size for i in self.indices):
            return [f"gather indices out of range for axis {self.axis} of {self.x.type}"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, i32(self.axis), IntVector(self.indices)]


@attrs.frozen(kw_only=True)
class Tile(NnapiOp):
    """TILE (FL3): out dim i = in dim i * multiples[i], the input repeated whole along each axis
    (``Tensor.repeat``). Data movement only, so it follows its input's storage order."""

    mnemonic: ClassVar[str] = "tile"
    code: ClassVar[OpCode] = OpCode.TILE
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    multiples: tuple[int, ...] = attrs.field(converter=lambda v: tuple(int(i) for i in v))
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        shape = tuple(None if d is None else d * m
                      for d, m in zip(self.x.type.shape, self.multiples, strict=True))
        return (self.x.type.with_shape(shape),)

    def check(self) -> list[str]:
        if len(self.multiples) != self.x.type.rank or min(self.multiples, default=0) < 1:
            return [f"multiples {self.multiples} do not fit {self.x.type}"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, IntVector(self.multiples)]


@attrs.frozen(kw_only=True)
class _BlockOp(NnapiOp):
    """DEPTH_TO_SPACE / SPACE_TO_DEPTH: move ``block`` x ``block`` pixel blocks to channels.

    Spatial: NHWC storage is NNAPI's native form (FL1); NCHW data carries the FL3 layout flag.
    """

    spatial: ClassVar[bool] = True
    nchw_flag: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    block: int
    loc: Loc | None = attrs.field(default=None, eq=False)

    def _nchw(self) -> bool:
        return self.x.type.dim_order is DimOrder.CONTIGUOUS

    def _nhwc_out(self, n: int, h: int, w: int, c: int) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def infer(self) -> tuple[TensorType, ...]:
        t = self.x.type
        if self._nchw():
            n, c, h, w = t.shape
        else:
            n, h, w, c = t.shape
        n, h, w, c = self._nhwc_out(n, h, w, c)
        return (t.with_shape((n, c, h, w) if self._nchw() else (n, h, w, c)),)

    def required_level(self) -> int:
        return max(self.spec_level(), 3 if self._nchw() else 1)

    def nnapi_operands(self) -> list[Operand]:
        tail: list[Operand] = [boolean(True)] if self._nchw() else []
        return [self.x, i32(self.block), *tail]


@attrs.frozen(kw_only=True)
class DepthToSpace(_BlockOp):
    mnemonic: ClassVar[str] = "depth_to_space"
    code: ClassVar[OpCode] = OpCode.DEPTH_TO_SPACE

    def _nhwc_out(self, n: int, h: int, w: int, c: int) -> tuple[int, int, int, int]:
        b = self.block
        return n, h * b, w * b, c // (b * b)

    def check(self) -> list[str]:
        c = self.x.type.shape[1 if self._nchw() else 3]
        if self.x.type.rank != 4 or self.block < 1 or c % (self.block * self.block):
            return [f"block {self.block} does not fit {self.x.type}"]
        return []


@attrs.frozen(kw_only=True)
class SpaceToDepth(_BlockOp):
    mnemonic: ClassVar[str] = "space_to_depth"
    code: ClassVar[OpCode] = OpCode.SPACE_TO_DEPTH

    def _nhwc_out(self, n: int, h: int, w: int, c: int) -> tuple[int, int, int, int]:
        b = self.block
        return n, h // b, w // b, c * b * b

    def check(self) -> list[str]:
        t = self.x.type
        h, w = t.shape[2:] if self._nchw() else t.shape[1:3]
        if t.rank != 4 or self.block < 1 or h % self.block or w % self.block:
            return [f"block {self.block} does not divide the image of {t}"]
        return []
