"""Reference kernels: decoding, element-wise, pooling and convolution cases."""
from __future__ import annotations

import struct

import pytest
import torch
import torch.nn.functional as F

from nnapi_compiler.ir.codes import OpCode, ResultCode
from nnapi_compiler.ir.flat import OperandDesc
from nnapi_compiler.runtime.interpreter import (
    InterpreterError,
    decode_value,
)

from .kernel_helpers import (
    F32,
    I32,
    C,
    In,
    close,
    nchw,
    nhwc,
    run1,
)

# --- decoding ------------------------------------------------------------------------------------


def test_decode_scalars_and_tensors() -> None:
    assert decode_value(OperandDesc(C.INT32), struct.pack("<i", -7)) == -7
    assert decode_value(OperandDesc(C.FLOAT32), struct.pack("<f", 0.5)) == 0.5
    assert decode_value(OperandDesc(C.FLOAT16), struct.pack("<e", 1.5)) == 1.5
    assert decode_value(OperandDesc(C.BOOL), b"\x02") is True
    assert decode_value(OperandDesc(C.UINT32), struct.pack("<I", 4000000000)) == 4000000000
    assert decode_value(OperandDesc(F32, (2,)), b"") is None
    t = decode_value(OperandDesc(F32, (2, 2)), struct.pack("<4f", 1, 2, 3, 4))
    assert t.dtype == torch.float32 and t.tolist() == [[1, 2], [3, 4]]
    q16 = decode_value(OperandDesc(C.TENSOR_QUANT16_ASYMM, (2,), 1.0, 0), struct.pack("<2H", 65535, 3))
    assert q16.dtype == torch.int32 and q16.tolist() == [65535, 3]
    cases = {
        C.TENSOR_QUANT8_ASYMM: (torch.uint8, b"\xff\x01", [255, 1]),
        C.TENSOR_QUANT8_ASYMM_SIGNED: (torch.int8, b"\xff\x01", [-1, 1]),
        C.TENSOR_QUANT8_SYMM: (torch.int8, b"\x80\x01", [-128, 1]),
        C.TENSOR_BOOL8: (torch.bool, b"\x00\x05", [False, True]),
        C.TENSOR_QUANT16_SYMM: (torch.int16, struct.pack("<2h", -2, 3), [-2, 3]),
        C.TENSOR_FLOAT16: (torch.float16, struct.pack("<2e", 0.25, -2), [0.25, -2.0]),
        I32: (torch.int32, struct.pack("<2i", -5, 9), [-5, 9]),
    }
    for code, (dtype, raw, values) in cases.items():
        v = decode_value(OperandDesc(code, (2,), 1.0 if code != I32 else 0.0), raw)
        assert v.dtype == dtype and v.tolist() == values, code
    with pytest.raises(InterpreterError) as e:
        decode_value(OperandDesc(F32, (3,)), struct.pack("<2f", 1, 2))
    assert e.value.result_code == ResultCode.BAD_DATA


# --- element-wise --------------------------------------------------------------------------------


def test_add_broadcast_with_relu_fuse() -> None:
    a = torch.randn(2, 1, 3)
    b = torch.randn(3)
    got = run1(OpCode.ADD, [In(a), b, 1], (2, 1, 3))
    assert torch.equal(got, torch.clamp_min(a + b, 0))
    got = run1(OpCode.SUB, [In(a), In(b), 3], (2, 1, 3))
    assert torch.equal(got, torch.clamp(a - b, 0, 6))
    got = run1(OpCode.MUL, [In(a), b, 2], (2, 1, 3))
    assert torch.equal(got, torch.clamp(a * b, -1, 1))


def test_int32_div_is_floor_division() -> None:
    a = torch.tensor([-5, 5, 7, -7], dtype=torch.int32)
    b = torch.tensor([2, -2, 2, -2], dtype=torch.int32)
    got = run1(OpCode.DIV, [In(a), b, 0], (4,))
    assert got.dtype == torch.int32 and got.tolist() == [-3, -3, 3, 3]
    got = run1(OpCode.ADD, [In(a), b, 0], (4,))
    assert got.tolist() == [-3, 3, 9, -9]


def test_int32_div_by_zero_fails_execution() -> None:
    a = torch.tensor([1], dtype=torch.int32)
    with pytest.raises(InterpreterError) as e:
        run1(OpCode.DIV, [In(a), torch.tensor([0], dtype=torch.int32), 0], (1,))
    assert e.value.result_code == ResultCode.OP_FAILED
    assert "#0" in str(e.value) and "DIV" in str(e.value)


def test_float16_add_rounds_like_fp16() -> None:
    a = torch.randn(5).half()
    b = torch.randn(5).half()
    got = run1(OpCode.ADD, [In(a), In(b), 0], (5,))
    assert got.dtype == torch.float16 and torch.equal(got, a + b)


UNARY = [
    (OpCode.RELU, lambda x: torch.clamp_min(x, 0)),
    (OpCode.RELU1, lambda x: torch.clamp(x, -1, 1)),
    (OpCode.RELU6, lambda x: torch.clamp(x, 0, 6)),
    (OpCode.LOGISTIC, lambda x: 1 / (1 + torch.exp(-x))),
    (OpCode.TANH, torch.tanh),
    (OpCode.HARD_SWISH, F.hardswish),
    (OpCode.EXP, torch.exp),
    (OpCode.SIN, torch.sin),
    (OpCode.ABS, torch.abs),
    (OpCode.NEG, lambda x: -x),
    (OpCode.FLOOR, torch.floor),
]


@pytest.mark.parametrize(("code", "ref"), UNARY, ids=[OpCode(c).name for c, _ in UNARY])
def test_unary_float(code, ref) -> None:
    x = torch.linspace(-8, 8, 33).reshape(3, 11)
    close(run1(code, [In(x)], (3, 11)), ref(x))


def test_positive_domain_math_and_elu() -> None:
    x = torch.linspace(0.1, 9, 12)
    close(run1(OpCode.LOG, [In(x)], (12,)), torch.log(x))
    close(run1(OpCode.SQRT, [In(x)], (12,)), torch.sqrt(x))
    close(run1(OpCode.RSQRT, [In(x)], (12,)), 1 / torch.sqrt(x))
    y = torch.linspace(-4, 4, 9)
    close(run1(OpCode.ELU, [In(y), 0.5], (9,)), F.elu(y, alpha=0.5))


def test_int32_abs_neg_max_min() -> None:
    x = torch.tensor([-3, 0, 4], dtype=torch.int32)
    assert run1(OpCode.ABS, [In(x)], (3,)).tolist() == [3, 0, 4]
    assert run1(OpCode.NEG, [In(x)], (3,)).tolist() == [3, 0, -4]
    y = torch.tensor([1], dtype=torch.int32)
    assert run1(OpCode.MAXIMUM, [In(x), y], (3,)).tolist() == [1, 1, 4]
    assert run1(OpCode.MINIMUM, [In(x), y], (3,)).tolist() == [-3, 0, 1]


def test_prelu_broadcasts_alpha_over_channels() -> None:
    x = torch.tensor([[[[-1.0, 2.0, -3.0], [4.0, -5.0, -6.0]]]])  # [1,1,2,3] NHWC
    alpha = torch.tensor([0.5, 2.0, 10.0])
    got = run1(OpCode.PRELU, [In(x), alpha], (1, 1, 2, 3))
    assert got.tolist() == [[[[-0.5, 2.0, -30.0], [4.0, -10.0, -60.0]]]]


# --- pooling -------------------------------------------------------------------------------------

_AVG_3X3 = [[3.0, 3.5, 4.0], [4.5, 5.0, 5.5], [6.0, 6.5, 7.0]]


def test_average_pool_ignores_padding_cells() -> None:
    x = torch.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    explicit = run1(OpCode.AVERAGE_POOL_2D, [In(x), 1, 1, 1, 1, 1, 1, 3, 3, 0], (1, 3, 3, 1))
    assert explicit.reshape(3, 3).tolist() == _AVG_3X3
    implicit = run1(OpCode.AVERAGE_POOL_2D, [In(x), 1, 1, 1, 3, 3, 0], (1, 3, 3, 1))
    assert torch.equal(implicit, explicit)
    layout = run1(OpCode.AVERAGE_POOL_2D, [In(nchw(x)), 1, 1, 1, 3, 3, 0, True], (1, 1, 3, 3))
    assert torch.equal(nhwc(layout), explicit)


def test_l2_pool_hand_case() -> None:
    x = torch.tensor([3.0, 4.0, 0.0, 12.0]).reshape(1, 1, 4, 1)
    got = run1(OpCode.L2_POOL_2D, [In(x), 0, 0, 0, 0, 2, 1, 2, 1, 0], (1, 1, 2, 1))
    close(got.reshape(2), torch.tensor([(25 / 2) ** 0.5, (144 / 2) ** 0.5]))


def test_pools_match_torch_on_random_nhwc() -> None:
    x = torch.randn(2, 3, 9, 7)  # NCHW reference layout
    want_avg = F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)
    got = run1(OpCode.AVERAGE_POOL_2D, [In(nhwc(x)), 1, 1, 1, 1, 2, 2, 3, 3, 0], (2, 5, 4, 3))
    close(nchw(got), want_avg)
    want_max = F.max_pool2d(x, 3, 2, padding=1)
    got = run1(OpCode.MAX_POOL_2D, [In(nhwc(x)), 1, 1, 1, 1, 2, 2, 3, 3, 3], (2, 5, 4, 3))
    close(nchw(got), torch.clamp(want_max, 0, 6))


def test_max_pool_explicit_equals_implicit_same_with_stride() -> None:
    x = torch.randn(1, 8, 6, 2)
    # SAME, stride 2, filter 3: H 8 -> 4 (total pad 1: 0 head, 1 tail); W 6 -> 3 (same).
    implicit = run1(OpCode.MAX_POOL_2D, [In(x), 1, 2, 2, 3, 3, 0], (1, 4, 3, 2))
    explicit = run1(OpCode.MAX_POOL_2D, [In(x), 0, 1, 0, 1, 2, 2, 3, 3, 0], (1, 4, 3, 2))
    assert torch.equal(implicit, explicit)
    padded = F.pad(nchw(x), (0, 1, 0, 1), value=float("-inf"))
    assert torch.equal(nchw(explicit), F.max_pool2d(padded, 3, 2))


def test_pool_padding_must_be_smaller_than_filter() -> None:
    x = torch.randn(1, 3, 3, 1)
    with pytest.raises(InterpreterError) as e:
        run1(OpCode.AVERAGE_POOL_2D, [In(x), 2, 2, 0, 0, 1, 1, 2, 1, 0], (1, 3, 6, 1))
    assert e.value.result_code == ResultCode.OP_FAILED


# --- convolution ---------------------------------------------------------------------------------


def test_conv2d_matches_torch_with_stride_dilation_and_fuse() -> None:
    x = torch.randn(2, 3, 10, 9)
    w = torch.randn(5, 3, 3, 2)  # kh 3, kw 2
    bias = torch.randn(5)
    want = torch.clamp(F.conv2d(x, w, bias, stride=(2, 1), padding=(2, 1), dilation=(2, 1)), 0, 6)
    args = [In(nhwc(x)), w.permute(0, 2, 3, 1).contiguous(), bias, 1, 1, 2, 2, 1, 2, 3]
    got = run1(OpCode.CONV_2D, [*args, False, 1, 2], (2, 5, 10, 5))
    close(nchw(got), want)
    got_nchw = run1(OpCode.CONV_2D, [In(x), *args[1:], True, 1, 2], (2, 5, 5, 10))
    close(got_nchw, want)


def test_conv2d_explicit_equals_implicit_same() -> None:
    x = torch.randn(1, 7, 8, 3)
    w = torch.randn(4, 3, 3, 3)
    bias = torch.randn(4)
    # SAME stride 2 filter 3: H 7 -> 4 (total 2: 1/1), W 8 -> 4 (total 1: 0/1).
    implicit = run1(OpCode.CONV_2D, [In(x), w, bias, 1, 2, 2, 0], (1, 4, 4, 4))
    explicit = run1(OpCode.CONV_2D, [In(x), w, bias, 0, 1, 1, 1, 2, 2, 0], (1, 4, 4, 4))
    assert torch.equal(implicit, explicit)
    want = F.conv2d(F.pad(nchw(x), (0, 1, 1, 1)), w.permute(0, 3, 1, 2), bias, stride=2)
    close(nchw(explicit), want)


def test_depthwise_multiplier_two_hand_case() -> None:
    x = torch.tensor([1.0, 2.0]).reshape(1, 1, 1, 2)
    f = torch.tensor([10.0, 20.0, 30.0, 40.0]).reshape(1, 1, 1, 4)
    bias = torch.tensor([0.5, 0.0, 0.0, -1.0])
    got = run1(OpCode.DEPTHWISE_CONV_2D, [In(x), f, bias, 0, 0, 0, 0, 1, 1, 2, 0], (1, 1, 1, 4))
    # output channel k*2+q reads input channel k
    assert got.reshape(4).tolist() == [10.5, 20.0, 60.0, 79.0]


def test_depthwise_matches_torch_groups() -> None:
    x = torch.randn(1, 3, 8, 8)
    w = torch.randn(6, 1, 3, 3)  # torch depthwise, multiplier 2
    bias = torch.randn(6)
    want = F.conv2d(x, w, bias, padding=1, groups=3)
    f = w.permute(1, 2, 3, 0).contiguous()  # -> [1, kh, kw, Cout]
    got = run1(OpCode.DEPTHWISE_CONV_2D, [In(nhwc(x)), f, bias, 1, 1, 1, 2, 0], (1, 8, 8, 6))
    close(nchw(got), want)
    got = run1(OpCode.DEPTHWISE_CONV_2D, [In(x), f, bias, 1, 1, 1, 2, 0, True, 1, 1], (1, 6, 8, 8))
    close(got, want)


def test_grouped_conv_hand_case_and_torch() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 4)
    f = torch.tensor([[1.0, 10.0], [100.0, 1000.0]]).reshape(2, 1, 1, 2)
    bias = torch.zeros(2)
    got = run1(OpCode.GROUPED_CONV_2D, [In(x), f, bias, 0, 0, 0, 0, 1, 1, 2, 0, False], (1, 1, 1, 2))
    assert got.reshape(2).tolist() == [1 + 20, 300 + 4000]
    xr = torch.randn(2, 6, 7, 7)
    w = torch.randn(4, 3, 3, 3)
    b = torch.randn(4)
    want = F.conv2d(xr, w, b, stride=2, padding=1, groups=2)
    got = run1(
        OpCode.GROUPED_CONV_2D,
        [In(nhwc(xr)), w.permute(0, 2, 3, 1).contiguous(), b, 1, 1, 1, 1, 2, 2, 2, 0, False],
        (2, 4, 4, 4),
    )
    close(nchw(got), want)


def test_transpose_conv_explicit_matches_torch() -> None:
    x = torch.randn(1, 3, 5, 4)
    w = torch.randn(3, 2, 3, 3)  # torch [Cin, Cout, kh, kw]
    bias = torch.randn(2)
    want = F.conv_transpose2d(x, w, bias, stride=2, padding=1)
    f = w.permute(1, 2, 3, 0).contiguous()  # NNAPI [Cout, kh, kw, Cin]
    got = run1(OpCode.TRANSPOSE_CONV_2D, [In(nhwc(x)), f, bias, 1, 1, 1, 1, 2, 2, 0, False], (1, 9, 7, 2))
    close(nchw(got), want)
    got = run1(OpCode.TRANSPOSE_CONV_2D, [In(x), f, bias, 1, 1, 1, 1, 2, 2, 0, True], (1, 2, 9, 7))
    close(got, want)


def test_transpose_conv_hand_cases() -> None:
    x = torch.tensor([1.0, 2.0]).reshape(1, 2, 1, 1)
    f = torch.tensor([1.0, 10.0]).reshape(1, 2, 1, 1)
    got = run1(
        OpCode.TRANSPOSE_CONV_2D,
        [In(x), f, torch.zeros(1), 0, 0, 0, 0, 1, 2, 0, False],
        (1, 4, 1, 1),
    )
    assert got.reshape(4).tolist() == [1.0, 10.0, 2.0, 20.0]
    # Implicit SAME, k=1, stride 2, output 4: head 0, tail -1, so the last row is bias only.
    f1 = torch.tensor([3.0]).reshape(1, 1, 1, 1)
    shape = torch.tensor([1, 4, 1, 1], dtype=torch.int32)
    got = run1(
        OpCode.TRANSPOSE_CONV_2D,
        [In(x), f1, torch.tensor([0.5]), shape, 1, 1, 2, 0, False],
        (1, 4, 1, 1),
    )
    assert got.reshape(4).tolist() == [3.5, 0.5, 6.5, 0.5]


def test_fully_connected_flattens_higher_rank_input() -> None:
    x = torch.arange(12.0).reshape(2, 3, 2)  # -> [3, 4]
    w = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, -1.0]])
    bias = torch.tensor([0.5, -100.0])
    got = run1(OpCode.FULLY_CONNECTED, [In(x), w, bias, 1], (3, 2))
    assert got.tolist() == [[0.5, 0.0], [4.5, 0.0], [8.5, 0.0]]
    xr, wr, br = torch.randn(5, 7), torch.randn(3, 7), torch.randn(3)
    close(run1(OpCode.FULLY_CONNECTED, [In(xr), wr, br, 0], (5, 3)), F.linear(xr, wr, br))
