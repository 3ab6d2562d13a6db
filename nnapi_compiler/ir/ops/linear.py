"""FULLY_CONNECTED: out[b, u] = sum_i in[b, i] * w[u, i] + bias[u] (input flattened to 2-D);
BATCH_MATMUL: a matrix product over the last two dims of two run-time tensors (FL6)."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import FuseCode, OpCode
from ..types import DimOrder, Operand, Quant, TensorType, Value, boolean, i32, with_quant
from .base import Loc, NnapiOp


@attrs.frozen(kw_only=True)
class FullyConnected(NnapiOp):
    mnemonic: ClassVar[str] = "fully_connected"
    code: ClassVar[OpCode] = OpCode.FULLY_CONNECTED
    fusable: ClassVar[bool] = True
    weighted: ClassVar[tuple[str, int] | None] = ("weights", 0)  # weights [units, in]
    results: tuple[Value, ...] = ()
    input: Value
    weights: Value
    bias: Value
    fuse: FuseCode = attrs.field(default=FuseCode.FUSED_NONE, converter=FuseCode)
    out_quant: Quant | None = None
    loc: Loc | None = attrs.field(default=None, eq=False)

    def infer(self) -> tuple[TensorType, ...]:
        units, size = self.weights.type.shape
        t = self.input.type
        batch = t.numel // size if t.known else None
        t = attrs.evolve(t, shape=(batch, units), dim_order=DimOrder.CONTIGUOUS)
        return (with_quant(t, self.out_quant),)

    def check(self) -> list[str]:
        t = self.input.type
        units, size = self.weights.type.shape
        if t.rank < 2:
            return [f"FULLY_CONNECTED input must have rank >= 2, got {t.shape}"]
        if self.bias.type.shape != (units,):
            return [f"bias shape {self.bias.type.shape} != ({units},)"]
        if t.known and t.numel % size:
            return [f"input {t.shape} does not flatten to rows of {size}"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.input, self.weights, self.bias, i32(self.fuse)]


@attrs.frozen(kw_only=True)
class BatchMatmul(NnapiOp):
    """out[..., i, j] = sum_k x'[..., i, k] * y'[..., k, j], x' = adj_x ? x^T : x (last two dims).

    Both operands are run-time tensors of equal rank (2..4) and equal batch dims (FL6).
    """

    mnemonic: ClassVar[str] = "batch_matmul"
    code: ClassVar[OpCode] = OpCode.BATCH_MATMUL
    results: tuple[Value, ...] = ()
    x: Value
    y: Value
    adj_x: bool = False
    adj_y: bool = False
    loc: Loc | None = attrs.field(default=None, eq=False)

    def _dims(self) -> tuple[tuple[int | None, ...], int | None, int | None, int | None, int | None]:
        xs, ys = self.x.type.shape, self.y.type.shape
        r, k = (xs[-1], xs[-2]) if self.adj_x else (xs[-2], xs[-1])
        k2, c = (ys[-1], ys[-2]) if self.adj_y else (ys[-2], ys[-1])
        return xs[:-2], r, k, k2, c

    def infer(self) -> tuple[TensorType, ...]:
        batch, r, _, _, c = self._dims()
        return (attrs.evolve(self.x.type, shape=(*batch, r, c), dim_order=DimOrder.CONTIGUOUS),)

    def check(self) -> list[str]:
        xt, yt = self.x.type, self.y.type
        if not 2 <= xt.rank <= 4 or xt.rank != yt.rank:
            return [f"BATCH_MATMUL needs equal ranks in 2..4, got {xt.shape} and {yt.shape}"]
        batch, _, k, k2, _ = self._dims()
        if batch != yt.shape[:-2]:
            return [f"batch dims differ: {xt.shape} and {yt.shape}"]
        if k is not None and k2 is not None and k != k2:
            return [f"inner dims differ: {xt.shape} and {yt.shape} (adj {self.adj_x}, {self.adj_y})"]
        return []

    def nnapi_operands(self) -> list[Operand]:
        return [self.x, self.y, boolean(self.adj_x), boolean(self.adj_y)]
