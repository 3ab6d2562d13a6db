"""Unsigned execution arguments (UINT32, TENSOR_QUANT16_ASYMM) keep their full range although
they are moved as signed tensors (torch 2.1, the runtime apps ship, has no torch.uint16/uint32)."""

from __future__ import annotations

import ctypes
import struct

import pytest
import torch

from nnapi_compiler.ir.codes import OperandCode
from nnapi_compiler.ir.flat import OperandDesc
from nnapi_compiler.runtime import driver_io
from nnapi_compiler.runtime.driver_checks import DriverError

C = OperandCode


@pytest.mark.parametrize(
    ("desc", "fmt", "values"),
    [
        (OperandDesc(C.UINT32, ()), "<I", [0xFFFFFFFF]),
        (OperandDesc(C.UINT32, ()), "<I", [0x80000000]),
        (OperandDesc(C.TENSOR_QUANT16_ASYMM, (4,), 0.5, 7), "<4H", [0, 1, 0x8000, 0xFFFF]),
    ],
)
def test_high_values_round_trip(desc: OperandDesc, fmt: str, values: list[int]) -> None:
    raw = struct.pack(fmt, *values)
    buf = ctypes.create_string_buffer(raw, len(raw))
    t = driver_io.read_tensor(desc, ctypes.addressof(buf), len(raw), "input 0")
    assert t.flatten().tolist() == values  # read as unsigned, widened
    back = driver_io.to_storage(t, desc, "output 0")
    assert ctypes.string_at(back.data_ptr(), back.nbytes) == raw


def test_out_of_range_output_is_op_failed() -> None:
    desc = OperandDesc(C.TENSOR_QUANT16_ASYMM, (2,), 0.5, 0)
    with pytest.raises(DriverError, match=r"outside \[0, 65535\]"):
        driver_io.to_storage(torch.tensor([1, 65536], dtype=torch.int32), desc, "output 0")
