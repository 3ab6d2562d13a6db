"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR by output size (or by scale, for dynamic dims),
with the FL4 coordinate flags."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import OpCode
from ..types import DimOrder, Operand, TensorType, Value, boolean, f32, i32
from .base import Loc, NnapiOp, Op


@attrs.frozen(kw_only=True)
class _Resize(NnapiOp):
    spatial: ClassVar[bool] = True
    nchw_flag: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    out_h: int
    out_w: int
    align_corners: bool = False
    half_pixel_centers: bool = False
    #: NNAPI's "by scale" form (output size floor(in * scale)), set only for dynamic dims
    #: (``nnapi_compiler/dynamic.py``); out_h/out_w stay the example's sizes.
    scale_h: float | None = None
    scale_w: float | None = None
    loc: Loc | None = attrs.field(default=None, eq=False)

    def _nchw(self) -> bool:
        return self.x.type.dim_order is DimOrder.CONTIGUOUS

    def infer(self) -> tuple[TensorType, ...]:
        t = self.x.type
        n, a, _, c = t.shape
        shape = (n, a, self.out_h, self.out_w) if self._nchw() else (n, self.out_h, self.out_w, c)
        return (t.with_shape(shape),)

    def check(self) -> list[str]:
        if self.half_pixel_centers and self.align_corners:
            return ["half_pixel_centers requires align_corners = false"]
        return []

    def required_level(self) -> int:
        level = max(self.spec_level(), 3)
        return max(level, 4) if self.align_corners or self.half_pixel_centers else level

    def nnapi_operands(self) -> list[Operand]:
        size: list[Operand] = ([f32(self.scale_w), f32(self.scale_h)]
                               if self.scale_h is not None and self.scale_w is not None
                               else [i32(self.out_w), i32(self.out_h)])
        ops: list[Operand] = [self.x, *size, boolean(self._nchw())]
        if self.align_corners or self.half_pixel_centers:
            ops += [boolean(self.align_corners), boolean(self.half_pixel_centers)]
        return ops


@attrs.frozen(kw_only=True)
class ResizeNearest(_Resize):
    mnemonic: ClassVar[str] = "resize_nearest_neighbor"
    code: ClassVar[OpCode] = OpCode.RESIZE_NEAREST_NEIGHBOR


@attrs.frozen(kw_only=True)
class ResizeBilinear(_Resize):
    mnemonic: ClassVar[str] = "resize_bilinear"
    code: ClassVar[OpCode] = OpCode.RESIZE_BILINEAR


@attrs.frozen(kw_only=True)
class Interpolate(Op):
    """PyTorch's ``F.interpolate`` as PyTorch defines it (canonical form from every spelling).

    Not an NNAPI op: the simplify-upsample pass replaces it by the exact NNAPI form for the
    target (a RESIZE op when NNAPI's coordinates equal PyTorch's, else GATHER / matrix forms).
    ``scale_h``/``scale_w`` are the user's scale factors when PyTorch uses them for
    coordinates (given and not recomputed), else None.
    """

    mnemonic: ClassVar[str] = "interpolate"
    spatial: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    mode: str  # "nearest" | "nearest-exact" | "bilinear" | "bicubic" | "area" (adaptive avg pool)
    out_h: int
    out_w: int
    align_corners: bool = False
    scale_h: float | None = None
    scale_w: float | None = None
    loc: Loc | None = attrs.field(default=None, eq=False)

    infer = _Resize.infer

    def check(self) -> list[str]:
        if self.mode not in ("nearest", "nearest-exact", "bilinear", "bicubic", "area"):
            return [f"unknown interpolation mode {self.mode!r}"]
        if self.align_corners and self.mode not in ("bilinear", "bicubic"):
            return ["align_corners applies to bilinear and bicubic only"]
        return []

    def _nchw(self) -> bool:
        return self.x.type.dim_order is DimOrder.CONTIGUOUS
