"""IR value types: tensor types with NNAPI operand code, shape, quantization and dim order.

Every field is validated on construction (and on ``attrs.evolve``), so an IR value can never
carry, say, a quantized type without a scale or a zero point outside its type's range.
"""

from __future__ import annotations

import enum
import hashlib

import attrs
import torch

from .codes import QUANT_CODES, QUANT_RANGE, SCALAR_CODES, OperandCode, is_tensor_code
from .flat import OperandDesc


class DimOrder(enum.Enum):
    """How a value's NNAPI (physical) dims relate to PyTorch's logical dims.

    CONTIGUOUS: physical order equals PyTorch's order (NCHW for images). NHWC: a rank-4 logical
    NCHW tensor stored channels-last; its ``shape`` is the physical [N, H, W, C].
    """

    CONTIGUOUS = "contiguous"
    NHWC = "nhwc"


_SHORT = {
    OperandCode.TENSOR_FLOAT32: "f32",
    OperandCode.TENSOR_FLOAT16: "f16",
    OperandCode.TENSOR_INT32: "i32",
    OperandCode.TENSOR_QUANT8_ASYMM: "u8",
    OperandCode.TENSOR_QUANT8_ASYMM_SIGNED: "i8",
    OperandCode.TENSOR_BOOL8: "b8",
}

TORCH_DTYPE = {
    OperandCode.TENSOR_FLOAT32: torch.float32,
    OperandCode.TENSOR_FLOAT16: torch.float16,
    OperandCode.TENSOR_INT32: torch.int32,
    OperandCode.TENSOR_QUANT8_ASYMM: torch.uint8,
    OperandCode.TENSOR_QUANT8_ASYMM_SIGNED: torch.int8,
    OperandCode.TENSOR_BOOL8: torch.bool,
}


@attrs.frozen
class Quant:
    """Affine quantization: real = (q - zero_point) * scale."""

    scale: float = attrs.field(converter=float)
    zero_point: int = attrs.field(converter=int)

    @scale.validator
    def _scale_positive(self, _a: attrs.Attribute, v: float) -> None:
        if not v > 0:
            raise ValueError(f"quantization scale must be > 0, got {v}")


def _shape_ok(_self: object, _a: attrs.Attribute, shape: tuple[int | None, ...]) -> None:
    for d in shape:
        if d is not None and (not isinstance(d, int) or d < 0):
            raise ValueError(f"dims must be non-negative ints or None (unknown), got {shape}")


@attrs.frozen
class TensorType:
    """The type of an IR tensor value; ``shape`` is the NNAPI (physical) shape."""

    code: OperandCode = attrs.field(converter=OperandCode)
    shape: tuple[int | None, ...] = attrs.field(converter=tuple, validator=_shape_ok)
    quant: Quant | None = None
    dim_order: DimOrder = DimOrder.CONTIGUOUS

    def __attrs_post_init__(self) -> None:
        if not is_tensor_code(self.code):
            raise ValueError(f"{self.code.name} is not a tensor operand type")
        if self.code in QUANT_CODES:
            if self.quant is None:
                raise ValueError(f"{self.code.name} needs quantization parameters")
            lo, hi = QUANT_RANGE[self.code]
            if not lo <= self.quant.zero_point <= hi:
                raise ValueError(
                    f"zero point {self.quant.zero_point} outside [{lo}, {hi}] for {self.code.name}"
                )
        elif self.quant is not None and self.code != OperandCode.TENSOR_INT32:
            raise ValueError(f"{self.code.name} cannot carry quantization parameters")
        if self.dim_order is DimOrder.NHWC and len(self.shape) != 4:
            raise ValueError("NHWC dim order needs rank 4")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def known(self) -> bool:
        return all(d is not None for d in self.shape)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            if d is None:
                raise ValueError("numel of a shape with unknown dims")
            n *= d
        return n

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPE[self.code]

    @property
    def logical_shape(self) -> tuple[int | None, ...]:
        """The shape PyTorch sees (NCHW for an NHWC-stored image)."""
        if self.dim_order is DimOrder.NHWC:
            n, h, w, c = self.shape
            return (n, c, h, w)
        return self.shape

    def with_shape(self, shape: tuple[int | None, ...]) -> TensorType:
        return attrs.evolve(self, shape=tuple(shape))

    def desc(self) -> OperandDesc:
        q = self.quant
        return OperandDesc(
            code=int(self.code),
            dims=tuple(0 if d is None else d for d in self.shape),
            scale=q.scale if q else 0.0,
            zero_point=q.zero_point if q else 0,
        )

    def __str__(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        s = f"{_SHORT.get(self.code, self.code.name)}[{dims}]"
        if self.quant is not None:
            s += f"(s={self.quant.scale!r},zp={self.quant.zero_point})"  # exact: the parser reads it back
        if self.dim_order is not DimOrder.CONTIGUOUS:
            s += f":{self.dim_order.value}"
        return s


def with_quant(t: TensorType, q: Quant | None) -> TensorType:
    """``t`` with its quantization replaced by ``q`` (no change when ``q`` is None)."""
    return t if q is None else attrs.evolve(t, quant=q)


def float_type(shape: tuple[int | None, ...], dim_order: DimOrder = DimOrder.CONTIGUOUS) -> TensorType:
    return TensorType(OperandCode.TENSOR_FLOAT32, tuple(shape), None, dim_order)


def int_type(shape: tuple[int | None, ...]) -> TensorType:
    return TensorType(OperandCode.TENSOR_INT32, tuple(shape))


@attrs.frozen
class HostType:
    """The type of a value that only host (CPU) code reads or writes: an int64 tensor, a tuple
    returned by an LSTM, ... It has no NNAPI operand type, so no NNAPI op may touch it."""

    desc: str

    @property
    def dim_order(self) -> DimOrder:
        return DimOrder.CONTIGUOUS

    def __str__(self) -> str:
        return f"host<{self.desc}>"


@attrs.frozen
class Value:
    """An SSA value: defined once (by an op or as a program input), typed."""

    id: int
    type: TensorType | HostType

    def __str__(self) -> str:
        return f"%{self.id}"


@attrs.frozen
class Scalar:
    """An immediate scalar hyper-parameter in an op's NNAPI operand list."""

    code: OperandCode = attrs.field(converter=OperandCode)
    value: int | float | bool

    def __attrs_post_init__(self) -> None:
        if self.code not in SCALAR_CODES:
            raise ValueError(f"{self.code.name} is not a scalar operand type")


def i32(v: int) -> Scalar:
    return Scalar(OperandCode.INT32, int(v))


def f32(v: float) -> Scalar:
    return Scalar(OperandCode.FLOAT32, float(v))


def boolean(v: bool) -> Scalar:
    return Scalar(OperandCode.BOOL, bool(v))


@attrs.frozen
class IntVector:
    """An immediate TENSOR_INT32 operand (shapes, perms, axes, paddings) given by value."""

    values: tuple[int, ...] = attrs.field(converter=lambda v: tuple(int(x) for x in v))
    shape: tuple[int, ...] | None = None  # defaults to [len(values)]

    @property
    def dims(self) -> tuple[int, ...]:
        return self.shape if self.shape is not None else (len(self.values),)


@attrs.frozen
class Omitted:
    """An optional tensor operand left without a value (NNAPI's ``setOperandValue(NULL, 0)``):
    it keeps its place in the operand list, e.g. an LSTM's absent peephole weights."""

    code: OperandCode = attrs.field(converter=OperandCode, default=OperandCode.TENSOR_FLOAT32)


#: One entry in an op's positional NNAPI operand list.
Operand = Value | Scalar | IntVector | Omitted


def tensor_digest(t: torch.Tensor) -> str:
    """Content hash of a constant (dtype, shape and bytes): identical constants share storage."""
    t = t.detach().contiguous()
    h = hashlib.sha1(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.numel():
        flat = t.reshape(-1)
        h.update((flat if t.dtype == torch.bool else flat.view(torch.uint8)).numpy().tobytes())
    return h.hexdigest()[:12]
