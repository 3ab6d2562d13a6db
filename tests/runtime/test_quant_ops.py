"""Quantized kernels: more hand-computed cases, model validation of quantization rules, scripting."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.ir.codes import OpCode, OperandCode
from nnapi_compiler.ir.flat import OperandDesc
from nnapi_compiler.runtime.interpreter import InterpreterError, validate_model

from .test_quant_kernels import S8, U8, Q, model, refused, run, s8, u8

C = OperandCode


def bias(*v: int, scale: float) -> Q:
    return Q(torch.tensor(v, dtype=torch.int32), scale)


# --- resize, logistic ----------------------------------------------------------------------------


def test_resize_bilinear_uint8_truncates_the_float_result() -> None:
    # in [0, 100, 200] -> 7 wide: scale f32(3/7); sources 0, .43, .86, 1.29, 1.71, 2.14, 2.57
    # give 0, 42.86, 85.71, 128.57, 171.43, 200, 200, cast to uint8 by truncation.
    x = Q(u8(0, 100, 200).reshape(1, 1, 3, 1), 0.5, 3, feed=True)
    got = run(OpCode.RESIZE_BILINEAR, [x, 7, 1], (U8, (1, 1, 7, 1), 0.5, 3))
    assert got.flatten().tolist() == [0, 42, 85, 128, 171, 200, 200]


def test_resize_bilinear_int8_fixed_point() -> None:
    # scale_10 = (3 * 1024 + 7 / 2) / 7 = 439; sources 0, 439, 878, 1317, 1756, 2195, 2634.
    # x=1: 1024 * (-100 * 439) = -44953600 -> (- 2^19) / 2^20 = -43.37 -> -43;
    # x=2: -100 * 878 -> -86;  x=3: x0 = 1, dx = 293: 100 * (293 - 731) -> -43;
    # x=4: dx = 732: 100 * (732 - 292) -> 43.47 -> 43;  x=5, 6: clamped to index 2 -> 100.
    x = Q(s8(0, -100, 100).reshape(1, 1, 3, 1), 0.5, 3, feed=True)
    got = run(OpCode.RESIZE_BILINEAR, [x, 7, 1], (S8, (1, 1, 7, 1), 0.5, 3))
    assert got.flatten().tolist() == [0, -43, -86, -43, 43, 100, 100]
    bad = refused(OpCode.RESIZE_BILINEAR, [x, 7, 1], (S8, (1, 1, 7, 1), 0.25, 3))
    assert "scale/zero point" in bad


def test_logistic_and_tanh_mandated_outputs() -> None:
    x = Q(u8(128, 255, 0, 132), 0.25, 128, feed=True)
    # reals 0, 31.75, -32, 1: sigmoid 0.5 -> 128/256; ~1 -> 256 clamped to 255; ~0 -> 0;
    # sigmoid(1) = 0.7311 -> 187.16 -> 187.
    assert run(OpCode.LOGISTIC, [x], (U8, (4,), 1 / 256, 0)).tolist() == [128, 255, 0, 187]
    # tanh: 128 + 128 * [0, ~1, ~-1, tanh(1)] = [128, 256 clamped to 255, 0, 128 + 97.48 -> 225].
    assert run(OpCode.TANH, [x], (U8, (4,), 1 / 128, 128)).tolist() == [128, 255, 0, 225]
    y = Q(s8(0, 4), 0.25, 0, feed=True)
    # int8 logistic: zp -128: [0.5 * 256 - 128, sigmoid(1) * 256 - 128 = 59.16 -> 59].
    assert run(OpCode.LOGISTIC, [y], (S8, (2,), 1 / 256, -128)).tolist() == [0, 59]


# --- validation ----------------------------------------------------------------------------------


def _fc(bias_scale: float, out_scale: float = 1.0) -> list:
    x = Q(u8(1, 2, 3, 4).reshape(1, 4), 0.5, 0, feed=True)
    w = Q(u8(1, 2, 3, 4, 5, 6, 7, 8).reshape(2, 4), 0.25, 0)
    return [x, w, bias(1, 2, scale=bias_scale), 0]


def test_bias_scale_must_match_input_times_filter_scale() -> None:
    # in * w = 0.125; the reference allows 1e-6 relative.
    assert "bias scale" in refused(OpCode.FULLY_CONNECTED, _fc(0.13), (U8, (1, 2), 1.0, 0))
    assert "bias scale" in refused(OpCode.FULLY_CONNECTED, _fc(0.125 * (1 + 3e-6)), (U8, (1, 2), 1.0, 0))
    m, _ = model(OpCode.FULLY_CONNECTED, _fc(0.125 * (1 + 4e-7)), (U8, (1, 2), 1.0, 0))
    validate_model(m, 4)
    conv = [Q(u8(1).reshape(1, 1, 1, 1), 0.5, 0, feed=True), Q(u8(2).reshape(1, 1, 1, 1), 0.5, 0)]
    args = [*conv, bias(1, scale=0.5), 2, 1, 1, 0]
    assert "bias scale" in refused(OpCode.CONV_2D, args, (U8, (1, 1, 1, 1), 1.0, 0))
    # a quantized conv needs an INT32 bias
    args = [*conv, Q(u8(1), 0.25, 0), 2, 1, 1, 0]
    assert "signature" in refused(OpCode.CONV_2D, args, (U8, (1, 1, 1, 1), 1.0, 0))


def test_multiplier_of_one_or_more_needs_feature_level_3() -> None:
    x = Q(u8(1, 2, 3, 4).reshape(1, 2, 2, 1), 0.5, 0, feed=True)
    w = Q(u8(1).reshape(1, 1, 1, 1), 0.5, 0)
    args = [x, w, bias(0, scale=0.25), 2, 1, 1, 0]
    # M = 0.25 / 0.25 = 1: refused at FL2, fine at FL3; M = 0.25 / 0.3 < 1 is fine at FL2.
    assert "feature level 3" in refused(OpCode.CONV_2D, args, (U8, (1, 2, 2, 1), 0.25, 0), level=2)
    m, _ = model(OpCode.CONV_2D, args, (U8, (1, 2, 2, 1), 0.25, 0))
    validate_model(m, 3)
    m, _ = model(OpCode.CONV_2D, args, (U8, (1, 2, 2, 1), 0.3, 0))
    validate_model(m, 2)
    assert "feature level 3" in refused(OpCode.FULLY_CONNECTED, _fc(0.125), (U8, (1, 2), 0.1, 0), level=2)
    m, _ = model(OpCode.FULLY_CONNECTED, _fc(0.125), (U8, (1, 2), 0.1, 0))
    validate_model(m, 3)


def test_signed_types_and_quantized_sub_need_their_levels() -> None:
    a = Q(s8(1, 2), 0.5, 0, feed=True)
    assert "QUANT8_ASYMM_SIGNED" in refused(OpCode.ADD, [a, a, 0], (S8, (2,), 1.0, 0), level=3)
    b = Q(u8(1, 2), 0.5, 0, feed=True)
    assert "not legal at feature level 2" in refused(OpCode.SUB, [b, b, 0], (U8, (2,), 1.0, 0), level=2)
    m, _ = model(OpCode.SUB, [b, b, 0], (U8, (2,), 1.0, 0))
    validate_model(m, 3)


def test_mul_and_add_multiplier_limits() -> None:
    a = Q(u8(1, 2), 0.5, 0, feed=True)
    # MUL: 0.5 * 0.5 / 0.25 = 1 is not < 1 at any level.
    assert "MUL multiplier" in refused(OpCode.MUL, [a, a, 0], (U8, (2,), 0.25, 0))
    # ADD output multiplier 1 / (2^20 * s_out) >= 1 for s_out <= 2^-20.
    assert "output multiplier" in refused(OpCode.ADD, [a, a, 0], (U8, (2,), 2.0**-21, 0))


@pytest.mark.parametrize(
    ("code", "out"),
    [
        (OpCode.LOGISTIC, (U8, (2,), 1 / 128, 0)),
        (OpCode.LOGISTIC, (S8, (2,), 1 / 256, 0)),
        (OpCode.TANH, (U8, (2,), 1 / 128, 0)),
        (OpCode.TANH, (S8, (2,), 1 / 128, 1)),
        (OpCode.SOFTMAX, (U8, (2,), 1 / 256, 1)),
        (OpCode.SOFTMAX, (S8, (2,), 1 / 256, 0)),
    ],
)
def test_mandated_output_params(code: int, out: tuple) -> None:
    t = u8(1, 2) if out[0] == U8 else s8(1, 2)
    args = [Q(t, 0.5, 0, feed=True)] + ([1.0] if code == OpCode.SOFTMAX else [])
    assert "must have scale" in refused(code, args, out)


def test_per_channel_filters_stay_refused() -> None:
    x = Q(u8(1).reshape(1, 1, 1, 1), 0.5, 0, feed=True)
    m, _ = model(
        OpCode.CONV_2D,
        [x, Q(s8(1).reshape(1, 1, 1, 1)), bias(0, scale=0.0), 2, 1, 1, 0],
        (U8, (1, 1, 1, 1), 1.0, 0),
    )
    m.operands[1] = OperandDesc(C.TENSOR_QUANT8_SYMM_PER_CHANNEL, (1, 1, 1, 1))
    with pytest.raises(InterpreterError, match="per-channel"):
        validate_model(m, 4)


def test_concatenation_params_before_level_3() -> None:
    a, b = Q(u8(1, 2), 0.5, 0, feed=True), Q(u8(3), 0.25, 0, feed=True)
    assert "feature level 3" in refused(OpCode.CONCATENATION, [a, b, 0], (U8, (3,), 0.5, 0), level=2)
    assert run(OpCode.CONCATENATION, [a, b, 0], (U8, (3,), 0.5, 0), level=3).tolist() == [1, 2, 2]


def test_zero_batch_from_level_3() -> None:
    x = Q(torch.zeros(0, 3, 3, 2, dtype=torch.uint8), 0.5, 3, feed=True)
    w = Q(torch.ones(2, 2, 2, 2, dtype=torch.uint8), 0.5, 1)
    b = bias(0, 0, scale=0.25)
    got = run(OpCode.CONV_2D, [x, w, b, 2, 1, 1, 0], (U8, (0, 2, 2, 2), 1.0, 0), level=3)
    assert got.shape == (0, 2, 2, 2)
    got = run(OpCode.AVERAGE_POOL_2D, [x, 1, 1, 1, 2, 2, 0], (U8, (0, 3, 3, 2), 0.5, 3), level=3)
    assert got.shape == (0, 3, 3, 2)
    xf = Q(torch.zeros(0, 4, dtype=torch.uint8), 0.5, 3, feed=True)
    wf = Q(torch.ones(2, 4, dtype=torch.uint8), 0.5, 1)
    assert run(OpCode.FULLY_CONNECTED, [xf, wf, b, 0], (U8, (0, 2), 1.0, 0), level=3).shape == (0, 2)


class _QuantNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 8, 3, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)
        self.add = torch.ao.nn.quantized.FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        y = torch.nn.functional.avg_pool2d(self.add.add(y, self.dw(y)), 2, 2)
        return self.fc(y.flatten(1))


@pytest.mark.filterwarnings("ignore")
def test_runs_torch_converter_output_for_a_quantized_net() -> None:
    """PyTorch's own NNAPI converter on an eager-quantized net (per-tensor weights): our integer
    kernels agree with torch's quantized CPU kernels to one output quantum."""
    engine = torch.backends.quantized.engine
    torch.backends.quantized.engine = "qnnpack"  # the engine PyTorch's converter expects
    try:
        got, want, flat = _convert_quant_net()
    finally:
        torch.backends.quantized.engine = engine
    assert {OpCode.CONV_2D, OpCode.DEPTHWISE_CONV_2D, OpCode.ADD, OpCode.FULLY_CONNECTED} <= {
        int(op.code) for op in flat.operations
    }
    out = flat.operands[flat.outputs[0]]
    assert (out.scale, out.zero_point) == (want.q_scale(), want.q_zero_point())
    assert int((got.int() - want.int_repr().int()).abs().max()) <= 1


def _convert_quant_net() -> tuple:
    from torch.backends._nnapi.serializer import serialize_model

    from nnapi_compiler.backend.ser_model import read_ser_model
    from nnapi_compiler.runtime.interpreter import execute

    torch.manual_seed(0)
    net = torch.ao.quantization.QuantWrapper(_QuantNet()).eval()
    net.qconfig = torch.ao.quantization.QConfig(
        activation=torch.ao.quantization.HistogramObserver.with_args(reduce_range=False),
        weight=torch.ao.quantization.default_weight_observer,
    )
    torch.ao.quantization.prepare(net, inplace=True)
    for _ in range(8):
        net(torch.randn(1, 4, 8, 8))
    torch.ao.quantization.convert(net, inplace=True)
    scale, zp = float(net.quant.scale), int(net.quant.zero_point)
    qx = torch.quantize_per_tensor(torch.randn(1, 4, 8, 8), scale, zp, torch.quint8)
    with torch.no_grad():
        want = net.module(qx)
        ser, weights, *_ = serialize_model(torch.jit.freeze(torch.jit.trace(net.module, qx)), [qx])
    flat = read_ser_model(torch.tensor(ser, dtype=torch.int32), weights)
    return execute(flat, [qx.int_repr()], 3)[0], want, flat


# --- scripting -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_quantized_core_kernels_are_scriptable() -> None:
    from nnapi_compiler.reference import fixedpoint, pool, quant_conv, quant_elementwise, reduce, resize

    core = [
        fixedpoint.wrap_int32,
        fixedpoint.saturating_rounding_doubling_high_mul,
        fixedpoint.rounding_divide_by_pot,
        fixedpoint.multiply_by_quantized_multiplier,
        fixedpoint.requantize,
        quant_conv.conv_acc,
        quant_conv.transpose_conv_acc,
        quant_elementwise.quant_add_sub,
        quant_elementwise.quant_mul,
        pool.quant_pool2d_nhwc,
        reduce.quant_mean,
        resize.bilinear_int8,
    ]
    for fn in core:
        torch.jit.script(fn)
    mbqm = torch.jit.script(fixedpoint.multiply_by_quantized_multiplier)
    x = torch.tensor([10, -10, 5, 1 << 30], dtype=torch.int64)
    for m, s in [(1 << 30, -1), (3 << 29, 1), (1 << 30, 2)]:
        assert torch.equal(mbqm(x, m, s), fixedpoint.multiply_by_quantized_multiplier(x, m, s))
