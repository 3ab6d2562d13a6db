"""Interpreter validation and execution errors, and torch's own converter's output."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnapi_compiler.backend.ser_model import read_ser_model
from nnapi_compiler.ir.codes import OpCode, ResultCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc
from nnapi_compiler.runtime.interpreter import (
    InterpreterError,
    execute,
    validate_model,
)

from .kernel_helpers import (
    F32,
    I32,
    Builder,
    In,
    Omit,
    close,
    ints,
    nchw,
    nhwc,
    one_op,
    run1,
)

# --- validation and execution errors -------------------------------------------------------------


def _bad_data(model: FlatModel, level: int) -> str:
    with pytest.raises(InterpreterError) as e:
        validate_model(model, level)
    assert e.value.result_code == ResultCode.BAD_DATA
    return str(e.value)


def test_validate_rejects_op_above_feature_level() -> None:
    b = one_op(OpCode.HARD_SWISH, [In(torch.randn(3))], (3,))
    assert "HARD_SWISH" in _bad_data(b.model, 3)
    validate_model(b.model, 4)


def test_validate_rejects_wrong_input_count() -> None:
    b = one_op(OpCode.ADD, [In(torch.randn(3)), In(torch.randn(3))], (3,))
    assert "#0 ADD" in _bad_data(b.model, 4)


def test_validate_rejects_unknown_op_code() -> None:
    b = one_op(12345, [In(torch.randn(3))], (3,))
    assert "12345" in _bad_data(b.model, 8)


def test_validate_rejects_float16_below_level_3() -> None:
    b = one_op(OpCode.ADD, [In(torch.randn(3).half()), In(torch.randn(3).half()), 0], (3,))
    _bad_data(b.model, 2)
    validate_model(b.model, 3)


def test_validate_rejects_bad_scalars_and_optional_features() -> None:
    b = one_op(OpCode.ADD, [In(torch.randn(3)), In(torch.randn(3)), 0.0], (3,))
    assert "signature" in _bad_data(b.model, 4)
    b = one_op(OpCode.ADD, [In(torch.randn(3)), In(torch.randn(3)), 7], (3,))
    assert "fuse" in _bad_data(b.model, 4)
    i = torch.tensor([1], dtype=torch.int32)
    b = one_op(OpCode.ADD, [In(i), In(i), 1], (1,))
    assert "NONE" in _bad_data(b.model, 4)
    x, w, bias = torch.randn(1, 3, 3, 1), torch.randn(1, 1, 1, 1), torch.randn(1)
    b = one_op(OpCode.CONV_2D, [In(x), w, bias, 2, 1, 1, 0, True], (1, 3, 3, 1))
    assert "feature level 3" in _bad_data(b.model, 2)
    validate_model(b.model, 3)
    b = one_op(OpCode.RESHAPE, [In(x), Omit(I32, (1,))], (9,))
    assert "omitted" in _bad_data(b.model, 4)
    b = one_op(OpCode.CONV_2D, [In(x.reshape(3, 3)), w, bias, 2, 1, 1, 0], (3, 3))
    assert "rank" in _bad_data(b.model, 4)


def test_validate_rejects_unimplemented_types_and_bad_graphs() -> None:
    q = torch.tensor([1, 2], dtype=torch.uint8)
    b = one_op(OpCode.RSQRT, [In(q, 0.5, 0)], (2,), scale=1.0)  # QUANT8 RSQRT exists from FL7
    assert "no QUANT8_ASYMM kernel" in _bad_data(b.model, 7)
    b = one_op(OpCode.RELU, [In(torch.randn(2))], (2,))
    b.model.operands[b.model.outputs[0]] = OperandDesc(F32, (2,), 0.5, 0)
    assert "scale 0" in _bad_data(b.model, 4)
    b = Builder()
    b.arg(In(torch.randn(2)))
    t = b.tmp(F32, (2,))
    b.op(OpCode.RELU, [t], [b.out(F32, (2,))])  # t is never written
    assert "no operation writes" in _bad_data(b.model, 4)
    b = Builder()
    x = b.arg(In(torch.randn(2)))
    b.op(OpCode.RELU, [x], [b.out(F32, (2,))])
    b.op(OpCode.RELU, [x], [x])  # writing a model input
    assert "written twice" in _bad_data(b.model, 4)


def test_kernel_failure_becomes_op_failed() -> None:
    b = one_op(OpCode.RESHAPE, [In(torch.randn(2, 3)), In(ints(4, -1))], (0, 0))
    with pytest.raises(InterpreterError) as e:
        b.run()
    assert e.value.result_code == ResultCode.OP_FAILED
    assert "op #0 RESHAPE" in str(e.value)


def test_declared_shape_mismatch_is_op_failed() -> None:
    b = one_op(OpCode.RELU, [In(torch.randn(2, 3))], (3, 2))
    with pytest.raises(InterpreterError) as e:
        b.run()
    assert e.value.result_code == ResultCode.OP_FAILED
    b = one_op(OpCode.RELU, [In(torch.randn(2, 3))], (0, 3))  # unknown dim is accepted
    assert b.run()[0].shape == (2, 3)


def test_input_dtype_mismatch_is_bad_data() -> None:
    b = one_op(OpCode.RELU, [In(torch.randn(2))], (2,))
    with pytest.raises(InterpreterError) as e:
        execute(b.model, [torch.zeros(2, dtype=torch.float64)], 4)
    assert e.value.result_code == ResultCode.BAD_DATA


def test_ops_run_in_dependency_order_with_intermediates() -> None:
    b = Builder()
    x = b.arg(In(torch.tensor([-2.0, 3.0])))
    t = b.tmp(F32, (2,))
    out = b.out(F32, (2,))
    b.op(OpCode.MUL, [t, b.arg(torch.tensor([10.0])), b.arg(0)], [out])  # added first
    b.op(OpCode.RELU, [x], [t])
    assert b.run()[0].tolist() == [0.0, 30.0]
    b.model.relaxed = True
    assert b.run()[0].tolist() == [0.0, 30.0]


# --- PyTorch's own converter (torch.backends._nnapi) ---------------------------------------------


class _TorchConverterNet(torch.nn.Module):
    """Uses most ops torch's converter emits, in NCHW (layout flag) or NHWC operands."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.prelu = torch.nn.PReLU()
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.max_pool2d(torch.relu(self.conv(x)), 2, 2)
        y = F.hardtanh(self.dw(y), 0.0, 6.0)
        u = self.up(y)
        y = F.interpolate(torch.sigmoid(u) * u, scale_factor=2.0, mode="nearest")
        y = torch.cat([y, y - torch.full((1, 1, 1, 1), 1.0)], dim=1)
        z = self.prelu(y).mean(dim=[2, 3])[:, :4]
        return torch.log_softmax(self.fc(z), dim=1), torch.softmax(z.reshape(2, -1), dim=1)


def _torch_convert(module: torch.nn.Module, example: torch.Tensor) -> FlatModel:
    from torch.backends._nnapi.serializer import serialize_model

    frozen = torch.jit.freeze(torch.jit.trace(module.eval(), example.clone()))
    ser, weights, *_ = serialize_model(frozen, [example])
    return read_ser_model(torch.tensor(ser, dtype=torch.int32), weights)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_runs_torch_converter_output_nchw() -> None:
    net = _TorchConverterNet()
    x = torch.randn(2, 3, 16, 16)
    model = _torch_convert(net, x)
    used = {int(op.code) for op in model.operations}
    assert {
        OpCode.TRANSPOSE_CONV_2D,
        OpCode.DEPTHWISE_CONV_2D,
        OpCode.RESIZE_NEAREST_NEIGHBOR,
        OpCode.STRIDED_SLICE,
        OpCode.LOG_SOFTMAX,
        OpCode.PRELU,
    } <= used
    with torch.no_grad():
        want = net(x)
    got = execute(model, [x], 3)
    for g, w in zip(got, want, strict=True):
        close(g, w)


class _AvgNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.dw = torch.nn.Conv2d(6, 6, 3, padding=1, groups=6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(torch.relu(self.conv(x)), 2, 2)
        y = self.dw(y) + y
        return F.adaptive_avg_pool2d(y, (1, 1)).flatten(1)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_runs_torch_converter_output_nhwc() -> None:
    net = _AvgNet()
    x = torch.randn(1, 3, 17, 15)
    tagged = x.clone()
    tagged.nnapi_nhwc = True
    model = _torch_convert(net, tagged)
    assert model.operands[model.inputs[0]].dims == (1, 17, 15, 3)
    with torch.no_grad():
        want = net(x)
    close(execute(model, [nhwc(x)], 3)[0], want)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torch_converter_padded_avg_pool_follows_nnapi_not_eager() -> None:
    # torch's converter maps count_include_pad=True pooling to AVERAGE_POOL_2D, which ignores
    # padding cells: the interpreter must give NNAPI's answer, not eager PyTorch's.
    class Pool(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(x, 3, 1, padding=1)

    x = torch.randn(1, 2, 5, 5)
    got = execute(_torch_convert(Pool(), x), [x], 3)[0]
    close(got, F.avg_pool2d(x, 3, 1, padding=1, count_include_pad=False))
    assert not torch.allclose(got, Pool()(x))


# --- registry, quantized pass-through, TorchScript ----------------------------------------------


def test_registry_refuses_duplicate_kernels() -> None:
    from nnapi_compiler.reference import kernel

    def fn(call):
        return []

    with pytest.raises(RuntimeError, match="duplicate kernel for RELU"):
        kernel(OpCode.RELU, inputs=["T"])(fn)


def test_quantized_data_movement_keeps_raw_values_and_params() -> None:
    q = torch.tensor([[1, 200], [30, 4]], dtype=torch.uint8)
    got = run1(OpCode.TRANSPOSE, [In(q, 0.5, 3), ints(1, 0)], (2, 2), scale=0.5, zp=3)
    assert got.dtype == torch.uint8 and got.tolist() == [[1, 30], [200, 4]]
    got = run1(OpCode.REDUCE_MAX, [In(q, 0.5, 3), ints(1), False], (2,), scale=0.5, zp=3)
    assert got.tolist() == [200, 30]
    img = q.reshape(1, 2, 2, 1)
    got = run1(
        OpCode.RESIZE_NEAREST_NEIGHBOR,
        [In(img, 0.5, 3), 4, 4, False],
        (1, 4, 4, 1),
        scale=0.5,
        zp=3,
    )
    assert torch.equal(got, img.repeat_interleave(2, 1).repeat_interleave(2, 2))
    b = one_op(OpCode.TRANSPOSE, [In(q, 0.5, 3), ints(1, 0)], (2, 2), scale=0.25, zp=3)
    assert "scale/zero point" in _bad_data(b.model, 4)


def test_float16_conv_is_computed_in_float32_and_rounded() -> None:
    x = torch.randn(1, 5, 5, 2).half()
    w = torch.randn(3, 3, 3, 2).half()
    bias = torch.randn(3).half()
    got = run1(OpCode.CONV_2D, [In(x), w, bias, 1, 1, 1, 0], (1, 5, 5, 3), level=3)
    assert got.dtype == torch.float16
    want = F.conv2d(nchw(x).float(), w.permute(0, 3, 1, 2).float(), bias.float(), padding=1)
    # Exactly the float32 result rounded once to fp16: a tolerance of 1e-3 could not tell that
    # from a result accumulated in fp16, which differs in the last bits.
    assert torch.equal(nchw(got), want.half())


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_core_kernels_are_scriptable() -> None:
    from nnapi_compiler.reference import (
        conv,
        elementwise,
        fully_connected,
        pool,
        quant,
        reduce,
        resize,
        shape,
        slicing,
    )

    core = [
        conv.conv2d_nhwc,
        conv.transpose_conv2d_nhwc,
        pool.pool2d_nhwc,
        elementwise.binary,
        elementwise.unary,
        elementwise.elu,
        elementwise.prelu,
        fully_connected.fully_connected,
        resize.resize_nhwc,
        shape.reshape,
        shape.pad,
        shape.channel_shuffle,
        shape.depth_to_space,
        shape.space_to_depth,
        slicing.strided_slice,
        slicing.slice_,
        slicing.gather,
        reduce.reduce,
        reduce.softmax,
        reduce.log_softmax,
        reduce.arg_min_max,
        quant.quantize,
        quant.dequantize,
        quant.cast,
    ]
    x = torch.randn(1, 4, 4, 2)
    scripted = torch.jit.script(pool.pool2d_nhwc)
    args = (x, 0, [1, 1, 1, 1], [1, 1], [3, 3], 0, False)
    assert torch.equal(scripted(*args), pool.pool2d_nhwc(*args))
    for fn in core:
        torch.jit.script(fn)


@pytest.mark.parametrize("op", [OpCode.MAXIMUM, OpCode.MINIMUM])
def test_quantized_maximum_minimum_requantize_then_compare(op: OpCode) -> None:
    """Each input is requantized to the output's parameters (double, std::round, clamped),
    then compared; with equal parameters (a quantized clamp) the stored values pass through."""
    a = torch.arange(0, 256, 5, dtype=torch.uint8)
    b = torch.tensor([100], dtype=torch.uint8)
    got = one_op(op, [In(a, 0.05, 120), In(b, 0.02, 90)], (a.numel(),), scale=0.04, zp=128).run(4)[0]

    def to_out(q: torch.Tensor, s: float, z: int) -> torch.Tensor:
        v = (q.double() - z) * s / 0.04 + 128
        return (torch.sign(v) * torch.floor(v.abs() + 0.5)).clamp(0, 255)

    x, y = to_out(a, 0.05, 120), to_out(b, 0.02, 90)
    want = torch.maximum(x, y) if op == OpCode.MAXIMUM else torch.minimum(x, y)
    assert torch.equal(got.double(), want)
    same = one_op(op, [In(a, 0.05, 120), In(b, 0.05, 120)], (a.numel(),), scale=0.05, zp=120).run(4)[0]
    assert torch.equal(same, torch.maximum(a, b) if op == OpCode.MAXIMUM else torch.minimum(a, b))
