"""Moves execution data between the caller's buffers and torch tensors (interpreter dtypes)."""

from __future__ import annotations

import ctypes

import torch

from ..ir.codes import OperandCode, ResultCode, is_tensor_code
from ..ir.flat import OperandDesc
from .driver_checks import fail

_C = OperandCode
#: operand type -> (dtype of the bytes in memory, dtype the interpreter sees). Unsigned types
#: wider than a byte are moved as the signed type of their width and widened by masking, not as
#: torch.uint16/uint32: those dtypes do not exist in torch 2.1, the runtime apps ship.
STORAGE: dict[int, tuple[torch.dtype, torch.dtype]] = {
    _C.FLOAT32: (torch.float32, torch.float32),
    _C.TENSOR_FLOAT32: (torch.float32, torch.float32),
    _C.INT32: (torch.int32, torch.int32),
    _C.TENSOR_INT32: (torch.int32, torch.int32),
    _C.UINT32: (torch.int32, torch.int64),
    _C.TENSOR_QUANT8_ASYMM: (torch.uint8, torch.uint8),
    _C.TENSOR_QUANT8_ASYMM_SIGNED: (torch.int8, torch.int8),
    _C.TENSOR_QUANT8_SYMM: (torch.int8, torch.int8),
    _C.TENSOR_QUANT8_SYMM_PER_CHANNEL: (torch.int8, torch.int8),
    _C.TENSOR_QUANT16_ASYMM: (torch.int16, torch.int32),
    _C.TENSOR_QUANT16_SYMM: (torch.int16, torch.int16),
    _C.FLOAT16: (torch.float16, torch.float16),
    _C.TENSOR_FLOAT16: (torch.float16, torch.float16),
    _C.BOOL: (torch.uint8, torch.bool),
    _C.TENSOR_BOOL8: (torch.uint8, torch.bool),
}
#: unsigned type -> its bit width (values 0 .. 2^bits - 1)
_UNSIGNED_BITS = {_C.UINT32: 32, _C.TENSOR_QUANT16_ASYMM: 16}


def _storage(desc: OperandDesc, what: str) -> tuple[torch.dtype, torch.dtype]:
    if desc.code not in STORAGE:
        fail(ResultCode.BAD_DATA, f"{what}: {desc.describe()} cannot be an execution argument")
    return STORAGE[desc.code]


def read_tensor(desc: OperandDesc, address: int, length: int, what: str) -> torch.Tensor:
    """Copy ``length`` bytes at ``address`` (already checked against ``desc``) into a tensor."""
    raw, dtype = _storage(desc, what)
    shape = desc.dims
    if length == 0:
        return torch.empty(shape, dtype=dtype)
    view = torch.frombuffer((ctypes.c_char * length).from_address(address), dtype=raw)
    t = view.clone().reshape(shape)  # copy now: the caller's buffer is only borrowed
    if dtype == torch.bool:
        return t != 0  # NNAPI reads any nonzero byte as true
    if desc.code in _UNSIGNED_BITS:  # the signed reading's two's complement, as unsigned
        return t.to(dtype) & ((1 << _UNSIGNED_BITS[desc.code]) - 1)
    return t.to(dtype)


def check_shape(shape: tuple[int, ...], declared: OperandDesc, what: str) -> None:
    """An output shape agrees with the operand's declared rank and known dims."""
    if not is_tensor_code(declared.code):
        if shape not in ((), (1,)):
            fail(ResultCode.OP_FAILED, f"{what}: scalar output has shape {list(shape)}")
        return
    if not declared.dims:
        return
    if len(shape) != len(declared.dims) or any(
        d and s != d for s, d in zip(shape, declared.dims, strict=True)
    ):
        fail(ResultCode.OP_FAILED, f"{what}: shape {list(shape)} contradicts {declared.describe()}")


def to_storage(t: torch.Tensor, desc: OperandDesc, what: str) -> torch.Tensor:
    """An interpreter output as contiguous memory in the layout of an operand of type ``desc``."""
    raw, dtype = _storage(desc, what)
    if not isinstance(t, torch.Tensor):
        fail(ResultCode.OP_FAILED, f"{what}: interpreter returned {type(t).__name__}, not a tensor")
    t = t.detach()
    if desc.code in _UNSIGNED_BITS and t.dtype in (torch.int32, torch.int64):
        bits = _UNSIGNED_BITS[desc.code]
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= 1 << bits):
            fail(ResultCode.OP_FAILED,
                 f"{what}: values outside [0, {(1 << bits) - 1}] for {desc.describe()}")
        t = t.to(torch.int64)
        t = torch.where(t >= 1 << (bits - 1), t - (1 << bits), t).to(raw)
    elif t.dtype != dtype:
        fail(
            ResultCode.OP_FAILED,
            f"{what}: interpreter returned {t.dtype} for {desc.describe()} (expected {dtype})",
        )
    elif dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.contiguous()
