"""ser_model writer/reader: round trip, buffer references, and malformed inputs."""

from __future__ import annotations

import struct

import pytest
import torch

from nnapi_compiler.backend.flatten import flatten
from nnapi_compiler.backend.ser_model import BufferRef, read_ser_model, write_ser_model
from nnapi_compiler.errors import SerModelError
from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes
from nnapi_compiler.ir.types import float_type


def _model() -> tuple[FlatModel, dict[int, BufferRef], list[torch.Tensor]]:
    w = torch.arange(6, dtype=torch.float32)
    m = FlatModel(
        operands=[OperandDesc(3, (2, 3)), OperandDesc(3, (2, 3)), OperandDesc(1),
                  OperandDesc(5, (2, 3), 0.5, 7), OperandDesc(3, (2, 3))],
        values={2: scalar_bytes(1, 0), 3: bytes(range(6))},
        operations=[OperationDesc(0, (0, 1, 2), (4,))],
        inputs=[0], outputs=[4],
    )
    return m, {1: BufferRef(0, 0, 24)}, [w]


def test_round_trip_resolves_buffers() -> None:
    m, refs, weights = _model()
    ser = write_ser_model(m, refs)
    assert ser.dtype == torch.int32
    back = read_ser_model(ser, weights)
    assert back.operands == m.operands and back.operations == m.operations
    assert back.inputs == m.inputs and back.outputs == m.outputs
    assert back.values[1] == weights[0].numpy().tobytes()
    assert back.values[3] == bytes(range(6))  # odd-length payload padded and cut back


def test_flatten_round_trip_and_sharing() -> None:
    b = Builder()
    x = b.input(float_type((1, 64)))
    w = b.const(torch.randn(64, 64))
    y = b.emit(ops.FullyConnected, input=x, weights=w, bias=b.const(torch.zeros(64)))
    y = b.emit(ops.FullyConnected, input=y, weights=w, bias=b.const(torch.zeros(64)), fuse=1)
    seg = flatten(b.finish([y]))
    assert len(seg.weights) == 2  # the 64x64 weight once, the shared 64-float bias once
    back = read_ser_model(seg.ser_model, list(seg.weights))
    assert back.operands == seg.flat.operands and back.operations == seg.flat.operations
    fuse_operands = [op.inputs[3] for op in back.operations]
    assert fuse_operands[0] != fuse_operands[1]  # NONE and RELU are distinct immediates
    assert back.operations[0].inputs[1] == back.operations[1].inputs[1]  # one weight operand


@pytest.mark.parametrize("cut", [0, 4, 23, 30, 60, -1])
def test_truncation_is_reported(cut: int) -> None:
    m, refs, weights = _model()
    raw = bytes(write_ser_model(m, refs).numpy().tobytes())
    with pytest.raises(SerModelError):
        read_ser_model(raw[:cut], weights)


def test_malformed_fields_are_reported() -> None:
    m, refs, weights = _model()
    raw = bytearray(write_ser_model(m, refs).numpy().tobytes())
    bad_version = bytearray(raw)
    struct.pack_into("<i", bad_version, 0, 2)
    with pytest.raises(SerModelError, match="version"):
        read_ser_model(bytes(bad_version), weights)
    huge = bytearray(raw)
    struct.pack_into("<i", huge, 4, 1 << 30)
    with pytest.raises(SerModelError, match="out of range"):
        read_ser_model(bytes(huge), weights)
    with pytest.raises(SerModelError, match="weight buffer"):
        read_ser_model(bytes(raw), [])
    with pytest.raises(SerModelError, match="trailing"):
        read_ser_model(bytes(raw) + b"\0\0\0\0", weights)
    short_weights = [torch.zeros(2)]
    with pytest.raises(SerModelError, match="reads bytes"):
        read_ser_model(bytes(raw), short_weights)
