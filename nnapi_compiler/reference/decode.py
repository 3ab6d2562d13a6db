"""Operand decoding: an NNAPI operand's raw little-endian bytes as a Python scalar or torch tensor.

Shared by the interpreter (model values and constants), constant folding and the CPU fallback's
code generator, so every user reads a constant the way a driver does.
"""

from __future__ import annotations

import struct

import torch

from ..ir.codes import OperandCode
from ..ir.flat import OperandDesc
from .common import TORCH_DTYPES

SCALAR_FORMATS = {
    OperandCode.INT32: "<i",
    OperandCode.UINT32: "<I",
    OperandCode.FLOAT32: "<f",
    OperandCode.FLOAT16: "<e",
    OperandCode.BOOL: "<B",
}
# Stored dtype read from the raw bytes (QUANT16_ASYMM is uint16, widened to int32 afterwards).
RAW_DTYPES = {
    **TORCH_DTYPES,
    OperandCode.TENSOR_QUANT16_ASYMM: torch.int16,
    OperandCode.TENSOR_BOOL8: torch.uint8,
}


class DecodeError(ValueError):
    """A value that cannot be an operand of its declared type (a driver answers BAD_DATA)."""


def decode_value(desc: OperandDesc, raw: bytes) -> torch.Tensor | int | float | bool | None:
    """Turn an operand's raw little-endian bytes into a Python scalar or a typed torch tensor."""
    if raw == b"":
        return None
    code = desc.code
    if code in SCALAR_FORMATS:
        fmt = SCALAR_FORMATS[OperandCode(code)]
        if len(raw) != struct.calcsize(fmt):
            raise DecodeError(f"{desc.describe()} value has {len(raw)} bytes")
        value = struct.unpack(fmt, raw)[0]
        return bool(value) if code == OperandCode.BOOL else value
    if code not in RAW_DTYPES:
        raise DecodeError(f"cannot decode a value of type {desc.describe()}")
    size = desc.byte_size()
    if not desc.dims or size is None:
        raise DecodeError(f"constant operand {desc.describe()} must be fully specified")
    if len(raw) != size:
        raise DecodeError(f"{desc.describe()} needs {size} bytes, got {len(raw)}")
    t = torch.frombuffer(bytearray(raw), dtype=RAW_DTYPES[code]).reshape(desc.dims)
    if code == OperandCode.TENSOR_QUANT16_ASYMM:
        return t.to(torch.int32) & 0xFFFF
    if code == OperandCode.TENSOR_BOOL8:
        return t != 0
    return t
