"""Helpers for the virtual device tests: hand-built NNAPI models and direct calls into the shim."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence

import pytest
import torch

from nnapi_compiler.backend.ser_model import BufferRef, write_ser_model
from nnapi_compiler.ir.codes import OpCode, OperandCode, ResultCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes
from nnapi_compiler.runtime import shim

F32 = OperandCode.TENSOR_FLOAT32
NO_ERROR = ResultCode.NO_ERROR


def add_model(
    shape: Sequence[int] = (2, 3),
    code: int = F32,
    scale: float = 0.0,
    zp: int = 0,
    out_dims: Sequence[int] | None = None,
) -> FlatModel:
    """out = a + b with FUSED_NONE: inputs 0, 1; fuse scalar 2; output 3."""
    t = OperandDesc(code, tuple(shape), scale, zp)
    out = OperandDesc(code, tuple(shape if out_dims is None else out_dims), scale, zp)
    return FlatModel(
        operands=[t, t, OperandDesc(OperandCode.INT32), out],
        values={2: scalar_bytes(OperandCode.INT32, 0)},
        operations=[OperationDesc(OpCode.ADD, (0, 1, 2), (3,))],
        inputs=[0, 1],
        outputs=[3],
    )


def compile_model(
    model: FlatModel,
    weights: Sequence[torch.Tensor] = (),
    refs: dict[int, BufferRef] | None = None,
    relax: bool = False,
) -> torch.ScriptObject:
    """Serialize ``model`` and replay it through PyTorch's real NNAPI runtime."""
    comp = torch.classes._nnapi.Compilation()
    comp.init2(write_ser_model(model, refs), list(weights), 1, relax)
    return comp


def c_name(field: str) -> str:
    return "ANeuralNetworks" + ("_" + field if field[0].islower() else field)


class CApi:
    """The shim's exported NNAPI functions, called the way a C program would call them."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.fns = {}
        for field, ret, args in shim.SIGNATURES:
            fn = getattr(lib, c_name(field))
            fn.restype, fn.argtypes = ret, list(args)
            self.fns[field] = fn

    def __getattr__(self, field: str) -> ctypes._CFuncPtr:
        return self.fns[field]

    def create(self, fn: str, *args: object) -> tuple[int, int]:
        """Call a creator; returns (result code, handle written to its out-pointer)."""
        out = ctypes.c_void_p()
        rc = self.fns[fn](*args, ctypes.addressof(out))
        return rc, out.value or 0

    def model(self) -> int:
        rc, handle = self.create("Model_create")
        assert rc == NO_ERROR
        return handle

    def add_operand(
        self,
        m: int,
        code: int,
        dims: Sequence[int] = (),
        scale: float = 0.0,
        zp: int = 0,
        count: int | None = None,
    ) -> int:
        arr = (ctypes.c_uint32 * max(len(dims), 1))(*dims)
        n = len(dims) if count is None else count
        t = shim.OperandType(code, n, ctypes.addressof(arr) if dims else None, scale, zp)
        return self.Model_addOperand(m, ctypes.addressof(t))

    def set_value(self, m: int, index: int, data: bytes | None) -> int:
        buf = ctypes.create_string_buffer(data or b"\0", max(len(data or b""), 1))
        ptr = ctypes.addressof(buf) if data is not None else None
        return self.Model_setOperandValue(m, index, ptr, len(data or b""))

    @staticmethod
    def _u32(values: Sequence[int]) -> ctypes.Array:
        return (ctypes.c_uint32 * max(len(values), 1))(*values)

    def add_operation(self, m: int, code: int, ins: Sequence[int], outs: Sequence[int]) -> int:
        a, b = self._u32(ins), self._u32(outs)
        return self.Model_addOperation(m, code, len(ins), a, len(outs), b)

    def identify(self, m: int, ins: Sequence[int], outs: Sequence[int]) -> int:
        a, b = self._u32(ins), self._u32(outs)
        return self.Model_identifyInputsAndOutputs(m, len(ins), a, len(outs), b)

    def build(self, flat: FlatModel, finish: bool = True) -> int:
        """Replay ``flat`` call by call; every call must succeed. Returns the model handle."""
        m = self.model()
        for d in flat.operands:
            assert self.add_operand(m, d.code, d.dims, d.scale, d.zero_point) == NO_ERROR
        for k, raw in sorted(flat.values.items()):
            assert self.set_value(m, k, raw) == NO_ERROR
        for op in flat.operations:
            assert self.add_operation(m, op.code, op.inputs, op.outputs) == NO_ERROR
        assert self.identify(m, flat.inputs, flat.outputs) == NO_ERROR
        if finish:
            assert self.Model_finish(m) == NO_ERROR
        return m

    def execution(self, m: int) -> int:
        rc, comp = self.create("Compilation_create", m)
        assert rc == NO_ERROR and self.Compilation_finish(comp) == NO_ERROR
        rc, ex = self.create("Execution_create", comp)
        assert rc == NO_ERROR
        return ex

    def bind(self, ex: int, index: int, t: torch.Tensor, output: bool = False) -> int:
        fn = self.Execution_setOutput if output else self.Execution_setInput
        return fn(ex, index, None, t.data_ptr(), t.nbytes)


@pytest.fixture(scope="session")
def capi() -> CApi:
    return CApi(shim.load())


def f32_bytes(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)
