"""Axis-reducing NNAPI ops: MEAN, REDUCE_SUM / MAX / MIN / PROD / ANY / ALL, SOFTMAX, LOG_SOFTMAX
(axes are physical NNAPI axes), INSTANCE_NORMALIZATION (statistics over H and W) and
LOCAL_RESPONSE_NORMALIZATION (a window along one axis)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import OpCode
from ..types import DimOrder, IntVector, Operand, Quant, TensorType, Value, boolean, f32, i32, with_quant
from .base import Loc, NnapiOp


@attrs.frozen(kw_only=True)
class Mean(NnapiOp):
    mnemonic: ClassVar[str] = "mean"
    code: ClassVar[OpCode] = OpCode.MEAN
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    axes: tuple[int, ...] = attrs.field(converter=lambda a: tuple(sorted(a)))
    keep_dims: bool
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        s = self.x.type.shape
        if self.keep_dims:
            shape = tuple(1 if i in self.axes else d for i, d in enumerate(s))
            return (self.x.type.with_shape(shape),)
        shape = tuple(d for i, d in enumerate(s) if i not in self.axes) or (1,)
        return (attrs.evolve(self.x.type, shape=shape, dim_order=DimOrder.CONTIGUOUS),)

    def check(self) -> list[str]:
        r = self.x.type.rank
        if not self.axes or any(not 0 <= a < r for a in self.axes) or len(set(self.axes)) < len(self.axes):
            return [f"axes {self.axes} invalid for rank {r}"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, IntVector(self.axes), i32(1 if self.keep_dims else 0)]


@attrs.frozen(kw_only=True)
class ReduceSum(Mean):
    """REDUCE_SUM (FL3): like MEAN (and remapped like it by the layout pass), but its keep_dims
    operand is a BOOL."""

    mnemonic: ClassVar[str] = "reduce_sum"
    code: ClassVar[OpCode] = OpCode.REDUCE_SUM

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, IntVector(self.axes), boolean(self.keep_dims)]


@attrs.frozen(kw_only=True)
class ReduceMax(ReduceSum):
    """REDUCE_MAX (FL3; a quantized result keeps the input's scale and zero point)."""

    mnemonic: ClassVar[str] = "reduce_max"
    code: ClassVar[OpCode] = OpCode.REDUCE_MAX


@attrs.frozen(kw_only=True)
class ReduceMin(ReduceSum):
    mnemonic: ClassVar[str] = "reduce_min"
    code: ClassVar[OpCode] = OpCode.REDUCE_MIN


@attrs.frozen(kw_only=True)
class ReduceProd(ReduceSum):
    mnemonic: ClassVar[str] = "reduce_prod"
    code: ClassVar[OpCode] = OpCode.REDUCE_PROD


@attrs.frozen(kw_only=True)
class ReduceAny(ReduceSum):
    """REDUCE_ANY (FL3): logical or of TENSOR_BOOL8 values."""

    mnemonic: ClassVar[str] = "reduce_any"
    code: ClassVar[OpCode] = OpCode.REDUCE_ANY


@attrs.frozen(kw_only=True)
class ReduceAll(ReduceSum):
    mnemonic: ClassVar[str] = "reduce_all"
    code: ClassVar[OpCode] = OpCode.REDUCE_ALL


@attrs.frozen(kw_only=True)
class Softmax(NnapiOp):
    """exp((x - max) * beta) / sum along ``axis`` (the axis operand needs FL3)."""

    mnemonic: ClassVar[str] = "softmax"
    code: ClassVar[OpCode] = OpCode.SOFTMAX
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    axis: int
    beta: float = 1.0
    out_quant: Quant | None = None  # mandated 1/256 for quantized softmax
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (with_quant(self.x.type, self.out_quant),)

    def check(self) -> list[str]:
        if not 0 <= self.axis < self.x.type.rank:
            return [f"axis {self.axis} out of range"]
        return []

    def required_level(self) -> int:
        return 3

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, f32(self.beta), i32(self.axis)]


@attrs.frozen(kw_only=True)
class LogSoftmax(Softmax):
    mnemonic: ClassVar[str] = "log_softmax"
    code: ClassVar[OpCode] = OpCode.LOG_SOFTMAX


@attrs.frozen(kw_only=True)
class InstanceNorm(NnapiOp):
    """INSTANCE_NORMALIZATION (FL3): (x - mean) * gamma / sqrt(var + eps) + beta per image and
    channel over H and W, with scalar gamma and beta. Spatial (its layout flag is mandatory)."""

    mnemonic: ClassVar[str] = "instance_normalization"
    code: ClassVar[OpCode] = OpCode.INSTANCE_NORMALIZATION
    spatial: ClassVar[bool] = True
    nchw_flag: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    gamma: float = 1.0
    beta: float = 0.0
    epsilon: float = 1e-5
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (self.x.type,)

    def check(self) -> list[str]:
        if self.x.type.rank != 4 or self.x.type.quant is not None:
            return ["INSTANCE_NORMALIZATION needs a rank-4 float tensor"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        nchw = self.x.type.dim_order is DimOrder.CONTIGUOUS
        return [self.x, f32(self.gamma), f32(self.beta), f32(self.epsilon), boolean(nchw)]


@attrs.frozen(kw_only=True)
class LocalResponseNorm(NnapiOp):
    """LOCAL_RESPONSE_NORMALIZATION: x / (bias + alpha * sum of x^2 over [d - radius, d + radius]
    along ``axis``)^beta. The axis operand (and ranks below 4) need FL3; without it the axis is
    the last of a rank-4 tensor."""

    mnemonic: ClassVar[str] = "local_response_normalization"
    code: ClassVar[OpCode] = OpCode.LOCAL_RESPONSE_NORMALIZATION
    layout_follows: ClassVar[bool] = True
    results: tuple[Value, ...] = ()
    x: Value
    axis: int
    radius: int
    bias: float
    alpha: float
    beta: float
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        return (self.x.type,)

    def _last_of_rank4(self) -> bool:
        return self.x.type.rank == 4 and self.axis == 3

    def check(self) -> list[str]:
        errs = []
        if self.x.type.quant is not None or not 1 <= self.x.type.rank <= 4:
            errs.append("LOCAL_RESPONSE_NORMALIZATION needs a float tensor of rank 1 to 4")
        if not 0 <= self.axis < self.x.type.rank:
            errs.append(f"axis {self.axis} out of range")
        if self.radius < 0 or self.bias == 0.0:
            errs.append(f"radius {self.radius} must be >= 0 and bias {self.bias} non-zero")
        return errs

    def required_level(self) -> int:
        return self.spec_level() if self._last_of_rank4() else max(self.spec_level(), 3)

    def nnapi_operands(self) -> list[Operand]:
        ops: list[Operand] = [self.x, i32(self.radius), f32(self.bias), f32(self.alpha), f32(self.beta)]
        return ops if self._last_of_rank4() else [*ops, i32(self.axis)]
