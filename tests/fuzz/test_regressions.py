"""Named regression tests for bugs the fuzzers found (and that are fixed); see docs/fuzzing.md."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import torch
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.backend.ser_model import BufferRef, read_ser_model, write_ser_model
from nnapi_compiler.errors import SerModelError, VerificationError
from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.codes import OpCode, OperandCode, ResultCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes
from nnapi_compiler.ir.types import float_type
from nnapi_compiler.ir.verifier import verify
from nnapi_compiler.passes import pipeline  # noqa: F401 - registers every pass
from nnapi_compiler.passes.base import PASSES
from nnapi_compiler.runtime.device import last_error

from ..conftest import assert_close_scaled, run_compiled
from .ir_run import run_program

F32 = OperandCode.TENSOR_FLOAT32


def _add() -> FlatModel:
    t = OperandDesc(F32, (2, 2))
    return FlatModel([t, t, OperandDesc(OperandCode.INT32), t], {1: bytes(16), 2: scalar_bytes(1, 0)},
                     [OperationDesc(OpCode.ADD, (0, 1, 2), (3,))], [0], [3])


def _runtime_refuses(ser: torch.Tensor, weights: list[torch.Tensor]) -> bool:
    with nc.virtual_device():
        try:
            torch.classes._nnapi.Compilation().init2(ser, weights, 1, False)
        except RuntimeError:
            return True
    return False


@pytest.mark.parametrize("variant", ["float32 ser_model", "int64 ser_model", "strided ser_model",
                                     "strided weight"])
def test_reader_refuses_tensors_that_torchs_runtime_refuses(variant: str) -> None:
    """Found by the loader fuzz: read_ser_model parsed a non-contiguous weight buffer (and any
    dtype or stride of ser_model) that Compilation.init2 refuses, so an artifact could pass our
    checks and fail on the phone. The reader is now at least as strict as the runtime."""
    model = _add()
    model.values.pop(1)
    ser = write_ser_model(model, {1: BufferRef(0, 0, 16)})
    weights = [torch.zeros(4)]
    if variant == "float32 ser_model":
        ser = ser.view(torch.float32)
    elif variant == "int64 ser_model":
        ser = ser.to(torch.int64)
    elif variant == "strided ser_model":
        ser = ser.repeat_interleave(2)[::2]
    else:
        weights = [torch.zeros(8)[::2]]
    assert _runtime_refuses(ser, weights)
    with pytest.raises(SerModelError):
        read_ser_model(ser, weights)
    assert not _runtime_refuses(write_ser_model(model, {1: BufferRef(0, 0, 16)}), [torch.zeros(4)])


UNWRITABLE = {
    "operand code above int32": FlatModel([OperandDesc(2**31)]),
    "negative dim": FlatModel([OperandDesc(F32, (-1,))]),
    "dim above uint32": FlatModel([OperandDesc(F32, (2**32,))]),
    "scale beyond float32": FlatModel([OperandDesc(OperandCode.TENSOR_QUANT8_ASYMM, (1,), 1e39, 0)]),
    "operation reads operand -1": FlatModel([OperandDesc(F32, (1,))], {}, [OperationDesc(0, (-1,), (0,))]),
    "input index above uint32": FlatModel([OperandDesc(F32, (1,))], inputs=[2**32]),
    "value for a missing operand": FlatModel([OperandDesc(F32, (1,))], {5: b"1234"}),
    "output names a missing operand": FlatModel([OperandDesc(F32, (1,))], outputs=[1]),
}


@pytest.mark.parametrize("name", sorted(UNWRITABLE))
def test_writer_refuses_models_it_cannot_write_faithfully(name: str) -> None:
    """Found by the ser_model round-trip fuzz: write_ser_model raised struct.error /
    OverflowError on out-of-range fields, and silently wrote indices the reader then refused."""
    with pytest.raises(SerModelError, match="cannot serialize"):
        write_ser_model(UNWRITABLE[name])


def test_writer_refuses_a_negative_buffer_reference() -> None:
    with pytest.raises(SerModelError, match="cannot serialize"):
        write_ser_model(FlatModel([OperandDesc(F32, (1,))]), {0: BufferRef(-1, 0, 4)})


def test_reshape_chain_back_to_its_start_vanishes_in_one_run() -> None:
    """Found by the pass-property fuzz: simplify-reshape rewrote reshape(reshape(x, s1), s0)
    with s0 == x.shape into a same-shape reshape, which only a second run removed (not
    idempotent), and a program output could become a program input that flatten refused."""
    b = Builder(level=3)
    x = b.input(float_type((2, 3, 4, 5)))
    chain = b.emit(ops.Reshape, x=b.emit(ops.Reshape, x=x, shape=(2, 60)), shape=(2, 3, 4, 5))
    p = b.finish([b.emit(ops.Relu, x=chain), chain])
    once = PASSES["simplify-reshape"]().run(p)
    assert once.changed and not any(isinstance(op, ops.Reshape) for op in once.program.ops)
    assert once.program.outputs[1] == x  # the chain is the identity: the output is the input
    assert PASSES["simplify-reshape"]().run(once.program).program == once.program
    data = torch.randn(2, 3, 4, 5)
    assert_close_scaled(run_program(once.program, [data]), run_program(p, [data]))


class _RepeatedOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = torch.relu(self.conv(x))
        return y, y.flatten(1).reshape(y.shape), x.reshape(x.shape[0], -1).reshape(x.shape)


def test_outputs_that_passes_make_inputs_or_repeats_are_served() -> None:
    """The model-level form of the bug above: an output that the passes reduce to another
    output or to the model input is served by the wrapper, and the model matches eager."""
    _, got, ref = run_compiled(_RepeatedOutputs(), torch.randn(2, 3, 5, 5))
    assert_close_scaled(got, ref)


class _ReadsShape(nn.Module):
    """Python on shapes makes fx fail, so torch.export captures it (aten.conv2d.padding)."""

    def __init__(self, padding: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, (3, 2), padding=padding, dilation=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 1:  # a branch on a shape: symbolic tracing fails here
            x = x * 2.0
        return self.conv(x)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_export_captured_conv_with_string_padding(padding: str) -> None:
    """Found by the model fuzz: under torch.export, Conv2d(padding='same'/'valid') is the
    overload aten.conv2d.padding, which had no converter (UnsupportedError)."""
    cm, got, ref = run_compiled(_ReadsShape(padding), torch.randn(2, 3, 7, 6))
    assert cm.stats["capture"] == "export"
    assert_close_scaled(got, ref)


class _LinearAfterMean(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((1, 2, 3)).unsqueeze(1))


def test_linear_after_a_rank_1_value() -> None:
    """Found by the pass-property fuzz: simplify-reshape dropped the reshape [N] -> [N, 1] in
    front of FULLY_CONNECTED, whose rank-1 input the device refused at Model_finish; the IR
    verifier did not check the rank either."""
    _, got, ref = run_compiled(_LinearAfterMean(), torch.randn(2, 3, 4, 4))
    assert_close_scaled(got, ref)
    b = Builder(level=3)
    x = b.input(float_type((4,)))
    fc = b.emit(ops.FullyConnected, input=b.emit(ops.Reshape, x=x, shape=(4, 1)),
                weights=b.const(torch.ones(2, 1)), bias=b.const(torch.zeros(2)))
    p = PASSES["simplify-reshape"]().run(b.finish([fc])).program
    verify(p)
    bad = attrs.evolve(p.ops[-1], input=x)
    with pytest.raises(VerificationError, match="rank >= 2"):
        verify(attrs.evolve(p, ops=(*p.ops[:-1], bad)))


def test_conv_with_one_input_channel_and_a_width_one_output() -> None:
    """Found by the model fuzz: the interpreter's conv permuted the NNAPI filter into a view
    with ambiguous strides, and torch's conv2d then computed garbage (uninitialized memory
    through the runtime) whenever Cin == 1, N > 1 and the output width is 1."""
    _, got, ref = run_compiled(nn.Conv2d(1, 2, (1, 2), (1, 2), (2, 1)), torch.randn(3, 1, 3, 1))
    assert_close_scaled(got, ref)


@pytest.mark.parametrize(("word", "value", "match"), [(1, -1000, "header counts out of range"),
                                                      (3, 2**24, "header counts out of range"),
                                                      (0, 2, "bad header or version")])
def test_artifact_checks_the_ser_model_header_before_torchs_loader(word: int, value: int, match: str) -> None:
    """Found by the loader fuzz: negative header counts crash PyTorch's own loader (SIGSEGV);
    the artifact now refuses them before calling it."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    cm = nc.compile(model, (torch.randn(1, 3, 6, 6),), cpu_fallback=False)
    seg = cm.script_module.segment0
    seg.release()
    seg.ser_model[word] = value
    with nc.virtual_device() as dev, pytest.raises(nc.NnapiRuntimeError, match=match):
        cm(torch.randn(1, 3, 6, 6))
    assert not dev.calls  # refused before any NNAPI call


def test_resize_to_a_huge_size_fails_cleanly() -> None:
    """Found while fuzzing the device: RESIZE_NEAREST_NEIGHBOR to 100000 x 100000 with unknown
    output dims tried to allocate 40 GB at execution. The driver now refuses it at Model_finish
    (OUT_OF_MEMORY), before any execution can allocate."""
    i32 = OperandCode.INT32
    model = FlatModel([OperandDesc(F32, (1, 2, 2, 1)), OperandDesc(i32), OperandDesc(i32),
                       OperandDesc(F32, (1, 0, 0, 1)), OperandDesc(OperandCode.BOOL)],
                      {1: scalar_bytes(i32, 100000), 2: scalar_bytes(i32, 100000),
                       4: scalar_bytes(OperandCode.BOOL, False)},
                      [OperationDesc(OpCode.RESIZE_NEAREST_NEIGHBOR, (0, 1, 2, 4), (3,))], [0], [3])
    with nc.virtual_device():
        comp = torch.classes._nnapi.Compilation()
        oom = f"Model_finish ?failed with error {int(ResultCode.OUT_OF_MEMORY)}"
        with pytest.raises(RuntimeError, match=oom):
            comp.init2(write_ser_model(model), [], 1, False)
    assert "beyond the device's limit" in last_error()


@pytest.mark.parametrize(("inputs", "target", "error", "match"), [
    ((torch.randn(1, 3, 6, 6),) * 2, "android-10", nc.CaptureError, "takes 1 positional inputs"),
    ((torch.randn(1, 3, 6, 6),), None, nc.ConversionError, "target must be a string"),
    ((torch.tensor(3.0),), "android-10", nc.ConversionError, r"has shape \[\]"),
    ((torch.randn(1, 3, 6, 6).double(),), "android-10", nc.CaptureError,
     "fails on the example inputs at node"),
], ids=["extra example input", "target None", "0-d tensor", "model fails on the examples"])
def test_compile_input_mistakes_raise_compiler_errors(
    inputs: tuple[torch.Tensor, ...], target: Any, error: type[Exception], match: str
) -> None:
    """Found by the compile-time hardening: a bare ValueError from the artifact builder, an
    AttributeError, 0-d examples that compiled into models that could never run, and a model
    that fails on its own example inputs (an InternalError found by the error-hierarchy fuzz).
    A size-0 dim is no longer a mistake: it marks a dynamic dim (tests/dynamic)."""
    with pytest.raises(error, match=match):
        nc.compile(nn.Sequential(nn.Conv2d(3, 4, 3)).eval(), inputs, target=target)
