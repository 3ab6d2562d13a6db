"""Reference interpreter and kernels: hand-computed cases, torch cross-checks, model validation."""

from __future__ import annotations

import struct

import pytest
import torch
import torch.nn.functional as F

from nnapi_compiler.backend.ser_model import read_ser_model
from nnapi_compiler.ir.codes import OpCode, OperandCode, ResultCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes
from nnapi_compiler.runtime.interpreter import (
    InterpreterError,
    decode_value,
    execute,
    validate_model,
)

C = OperandCode
F32 = C.TENSOR_FLOAT32
I32 = C.TENSOR_INT32
_CODES = {
    torch.float32: C.TENSOR_FLOAT32,
    torch.float16: C.TENSOR_FLOAT16,
    torch.int32: C.TENSOR_INT32,
    torch.uint8: C.TENSOR_QUANT8_ASYMM,
    torch.int8: C.TENSOR_QUANT8_ASYMM_SIGNED,
}


class In:
    """A runtime model input (the other tensor arguments of ``run1`` become constants)."""

    def __init__(self, t: torch.Tensor, scale: float = 0.0, zp: int = 0) -> None:
        self.t, self.scale, self.zp = t, scale, zp


class Omit:
    """An omitted optional operand of the given type."""

    def __init__(self, code: int, dims: tuple[int, ...]) -> None:
        self.code, self.dims = code, dims


def _raw(t: torch.Tensor) -> bytes:
    return t.contiguous().view(torch.uint8).numpy().tobytes()


class Builder:
    """Builds FlatModels operand by operand, remembering which tensors feed the inputs."""

    def __init__(self) -> None:
        self.model = FlatModel()
        self.feeds: list[torch.Tensor] = []

    def _add(self, desc: OperandDesc, raw: bytes | None = None) -> int:
        self.model.operands.append(desc)
        k = len(self.model.operands) - 1
        if raw is not None:
            self.model.values[k] = raw
        return k

    def arg(self, a: object) -> int:
        if isinstance(a, In):
            code = _CODES[a.t.dtype]
            k = self._add(OperandDesc(code, tuple(a.t.shape), a.scale, a.zp))
            self.model.inputs.append(k)
            self.feeds.append(a.t)
            return k
        if isinstance(a, Omit):
            return self._add(OperandDesc(a.code, a.dims), b"")
        if isinstance(a, torch.Tensor):
            return self._add(OperandDesc(_CODES[a.dtype], tuple(a.shape)), _raw(a))
        if isinstance(a, bool):
            return self._add(OperandDesc(C.BOOL), scalar_bytes(C.BOOL, a))
        if isinstance(a, int):
            return self._add(OperandDesc(C.INT32), scalar_bytes(C.INT32, a))
        if isinstance(a, float):
            return self._add(OperandDesc(C.FLOAT32), scalar_bytes(C.FLOAT32, a))
        raise TypeError(a)

    def tmp(self, code: int, dims: tuple[int, ...], scale: float = 0.0, zp: int = 0) -> int:
        return self._add(OperandDesc(code, dims, scale, zp))

    def out(self, code: int, dims: tuple[int, ...], scale: float = 0.0, zp: int = 0) -> int:
        k = self.tmp(code, dims, scale, zp)
        self.model.outputs.append(k)
        return k

    def op(self, code: int, ins: list[int], outs: list[int]) -> None:
        self.model.operations.append(OperationDesc(code, tuple(ins), tuple(outs)))

    def run(self, level: int = 4) -> list[torch.Tensor]:
        return execute(self.model, self.feeds, level)


def one_op(code, args, out_dims, out_code=None, n_out=1, scale=0.0, zp=0) -> Builder:
    b = Builder()
    ins = [b.arg(a) for a in args]
    if out_code is None:
        first = args[0].t if isinstance(args[0], In) else args[0]
        out_code = _CODES[first.dtype]
    outs = [b.out(out_code, tuple(out_dims), scale, zp) for _ in range(n_out)]
    b.op(code, ins, outs)
    return b


def run1(code, args, out_dims, out_code=None, level=4, **kw) -> torch.Tensor:
    return one_op(code, args, out_dims, out_code, **kw).run(level)[0]


def close(got: torch.Tensor, want: torch.Tensor) -> None:
    """float32 comparison: rtol 1e-5, atol 1e-5 scaled to the output magnitude."""
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * scale)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).contiguous()


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2).contiguous()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


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


# --- shape ops -----------------------------------------------------------------------------------


def ints(*v: int) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.int32)


def test_reshape_transpose_squeeze_expand() -> None:
    x = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(run1(OpCode.RESHAPE, [In(x), ints(4, -1)], (4, 6)), x.reshape(4, 6))
    assert torch.equal(run1(OpCode.TRANSPOSE, [In(x), ints(1, 2, 0)], (3, 4, 2)), x.permute(1, 2, 0))
    assert torch.equal(run1(OpCode.TRANSPOSE, [In(x), Omit(I32, (3,))], (4, 3, 2)), x.permute(2, 1, 0))
    y = torch.arange(6.0).reshape(1, 3, 1, 2)
    assert run1(OpCode.SQUEEZE, [In(y), Omit(I32, (0,))], (3, 2)).shape == (3, 2)
    assert run1(OpCode.SQUEEZE, [In(y), ints(-2)], (1, 3, 2)).shape == (1, 3, 2)
    assert run1(OpCode.SQUEEZE, [In(torch.ones(1, 1)), Omit(I32, (0,))], (1,)).shape == (1,)
    with pytest.raises(InterpreterError):
        run1(OpCode.SQUEEZE, [In(y), ints(1)], (0, 0, 0))
    assert run1(OpCode.EXPAND_DIMS, [In(x), -1], (2, 3, 4, 1)).shape == (2, 3, 4, 1)
    i = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    assert torch.equal(run1(OpCode.RESHAPE, [In(i), ints(-1)], (6,), level=6), i.reshape(6))


def test_concatenation_last_input_is_axis() -> None:
    a, b = torch.randn(2, 1, 3), torch.randn(2, 2, 3)
    got = run1(OpCode.CONCATENATION, [In(a), b, In(a), 1], (2, 4, 3))
    assert torch.equal(got, torch.cat([a, b, a], 1))
    with pytest.raises(InterpreterError):
        run1(OpCode.CONCATENATION, [In(a), b, -2], (2, 3, 3))


def test_concatenation_requantizes_differing_inputs() -> None:
    a = torch.tensor([10, 20], dtype=torch.uint8)  # scale 0.5 zp 10: reals 0, 5
    b = torch.tensor([3, 255], dtype=torch.uint8)  # scale 1.0 zp 0 (= output): copied raw
    got = run1(OpCode.CONCATENATION, [In(a, 0.5, 10), In(b, 1.0, 0), 0], (4,), scale=1.0, zp=0)
    # a: round(q*0.5 - 5) + 0 -> [0, 5]
    assert got.dtype == torch.uint8 and got.tolist() == [0, 5, 3, 255]


def test_strided_slice_negative_indices_strides_and_shrink() -> None:
    x = torch.arange(24.0).reshape(2, 3, 4)
    args = [In(x), ints(-1, 0, -1), ints(2, 3, -5), ints(1, 1, -2), 0, 0, 1]
    got = run1(OpCode.STRIDED_SLICE, args, (3, 2))
    assert got.tolist() == [[15, 13], [19, 17], [23, 21]]
    # masks with a negative stride reverse the whole axis
    args = [In(x), ints(0, 0, 0), ints(0, 0, 0), ints(1, -1, 1), 0b111, 0b111, 0]
    assert torch.equal(run1(OpCode.STRIDED_SLICE, args, (2, 3, 4)), x.flip(1))
    # end past the axis clamps; begin below -dim clamps to 0
    args = [In(x), ints(-9, 1, 0), ints(9, 99, 4), ints(1, 1, 3), 0, 0, 0]
    assert torch.equal(run1(OpCode.STRIDED_SLICE, args, (2, 2, 2)), x[:, 1:, ::3])
    # all axes shrunk -> [1]
    args = [In(x), ints(1, 2, 3), ints(2, 3, 4), ints(1, 1, 1), 0, 0, 0b111]
    assert run1(OpCode.STRIDED_SLICE, args, (1,)).tolist() == [23]


def test_strided_slice_shrink_of_several_elements_fails() -> None:
    x = torch.arange(4.0)
    with pytest.raises(InterpreterError) as e:
        run1(OpCode.STRIDED_SLICE, [In(x), ints(0), ints(3), ints(1), 0, 0, 1], (1,))
    assert e.value.result_code == ResultCode.OP_FAILED


def test_slice_pad_split_gather_tile() -> None:
    x = torch.arange(12.0).reshape(3, 4)
    assert torch.equal(run1(OpCode.SLICE, [In(x), ints(1, 1), ints(-1, 2)], (2, 2)), x[1:, 1:3])
    got = run1(OpCode.PAD, [In(x), ints(0, 1, 2, 0).reshape(2, 2)], (4, 6))
    assert torch.equal(got, F.pad(x, (2, 0, 0, 1)))
    got = run1(OpCode.PAD_V2, [In(x), ints(1, 0, 0, 1).reshape(2, 2), 7.5], (4, 5))
    assert torch.equal(got, F.pad(x, (0, 1, 1, 0), value=7.5))
    q = torch.tensor([[1, 2]], dtype=torch.uint8)
    got = run1(OpCode.PAD, [In(q, 0.1, 9), ints(0, 0, 1, 1).reshape(2, 2)], (1, 4), scale=0.1, zp=9)
    assert got.tolist() == [[9, 1, 2, 9]]
    outs = one_op(OpCode.SPLIT, [In(x), 1, 2], (3, 2), n_out=2).run()
    assert torch.equal(outs[0], x[:, :2]) and torch.equal(outs[1], x[:, 2:])
    idx = torch.tensor([[3, 0], [1, 1]], dtype=torch.int32)
    assert torch.equal(run1(OpCode.GATHER, [In(x), 1, idx], (3, 2, 2)), x[:, idx.long()])
    assert torch.equal(run1(OpCode.TILE, [In(x), ints(2, 1)], (6, 4)), x.repeat(2, 1))


def test_gather_out_of_range_index_fails_execution() -> None:
    x = torch.arange(4.0)
    with pytest.raises(InterpreterError) as e:
        run1(OpCode.GATHER, [In(x), 0, In(ints(4))], (1,))
    assert e.value.result_code == ResultCode.OP_FAILED


def test_channel_shuffle_depth_to_space_space_to_depth() -> None:
    x = torch.arange(6.0).reshape(1, 6)
    got = run1(OpCode.CHANNEL_SHUFFLE, [In(x), 2, -1], (1, 6))
    assert got.tolist() == [[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]]
    d = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).reshape(1, 1, 1, 8)
    got = run1(OpCode.DEPTH_TO_SPACE, [In(d), 2], (1, 2, 2, 2))
    assert got.tolist() == [[[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]]]
    layout = run1(OpCode.DEPTH_TO_SPACE, [In(nchw(d)), 2, True], (1, 2, 2, 2))
    assert torch.equal(nhwc(layout), got)
    back = run1(OpCode.SPACE_TO_DEPTH, [In(got), 2], (1, 1, 1, 8))
    assert torch.equal(back, d)
    r = torch.randn(2, 4, 6, 3)
    s2d = run1(OpCode.SPACE_TO_DEPTH, [In(r), 2], (2, 2, 3, 12))
    assert torch.equal(run1(OpCode.DEPTH_TO_SPACE, [In(s2d), 2], (2, 4, 6, 3)), r)


# --- reductions ----------------------------------------------------------------------------------


def test_mean_and_reduce_ops() -> None:
    x = torch.randn(2, 3, 4)
    close(run1(OpCode.MEAN, [In(x), ints(-1, 0, 2), 1], (1, 3, 1)), x.mean(dim=(0, 2), keepdim=True))
    close(run1(OpCode.MEAN, [In(x), ints(1), 0], (2, 4)), x.mean(1))
    close(run1(OpCode.REDUCE_SUM, [In(x), ints(0, 1, 2), False], (1,)), x.sum().reshape(1))
    assert torch.equal(run1(OpCode.REDUCE_MAX, [In(x), ints(1), True], (2, 1, 4)), x.amax(1, keepdim=True))
    assert torch.equal(run1(OpCode.REDUCE_MIN, [In(x), ints(-3), False], (3, 4)), x.amin(0))
    close(run1(OpCode.REDUCE_PROD, [In(x), ints(0, 2), False], (3,)), x.prod(2).prod(0))
    # an empty axis list reduces nothing (torch's dim=[] would reduce everything)
    no_axes = In(torch.zeros(0, dtype=torch.int32))
    assert torch.equal(run1(OpCode.REDUCE_MAX, [In(x), no_axes, False], (2, 3, 4)), x)


def test_softmax_log_softmax_argmax() -> None:
    x = torch.randn(3, 5)
    close(run1(OpCode.SOFTMAX, [In(x), 0.5], (3, 5)), torch.softmax(x * 0.5, -1))
    close(run1(OpCode.SOFTMAX, [In(x), 2.0, 0], (3, 5)), torch.softmax(x * 2.0, 0))
    close(run1(OpCode.LOG_SOFTMAX, [In(x), 1.5, -2], (3, 5)), torch.log_softmax(x * 1.5, 0))
    t = torch.tensor([[1.0, 3.0, 3.0], [2.0, -1.0, -1.0]])
    assert run1(OpCode.ARGMAX, [In(t), 1], (2,), out_code=I32).tolist() == [1, 0]
    assert run1(OpCode.ARGMIN, [In(t), -1], (2,), out_code=I32).tolist() == [0, 1]
    v = torch.tensor([4, 9, 9], dtype=torch.int32)
    assert run1(OpCode.ARGMAX, [In(v), 0], (1,), out_code=I32).tolist() == [1]


def test_softmax_matches_torch_on_random_4d() -> None:
    x = torch.randn(2, 4, 5, 6) * 4
    close(run1(OpCode.SOFTMAX, [In(x), 1.0, 1], (2, 4, 5, 6)), torch.softmax(x, 1))
    close(run1(OpCode.SOFTMAX, [In(x), 1.0], (2, 4, 5, 6), level=2), torch.softmax(x, -1))


# --- resize --------------------------------------------------------------------------------------


def _row(values: list[float]) -> torch.Tensor:
    return torch.tensor(values).reshape(1, 1, -1, 1)


def _resize(code, x, out_w, *flags) -> list[float]:
    args = [In(x), out_w, 1, False, *flags]
    return run1(code, args, (1, 1, out_w, 1)).reshape(-1).tolist()


def test_resize_nearest_coordinate_rules() -> None:
    x = _row([10.0, 20.0, 30.0])  # 3 -> 5: scale 0.6, or 0.5 with align_corners
    nn = OpCode.RESIZE_NEAREST_NEIGHBOR
    assert _resize(nn, x, 5) == [10, 10, 20, 20, 30]  # floor(o * 0.6)
    assert _resize(nn, x, 5, False, True) == [10, 10, 20, 30, 30]  # floor((o + .5) * .6)
    assert _resize(nn, x, 5, True, False) == [10, 20, 20, 30, 30]  # round(o * .5), ties away


def test_resize_bilinear_coordinate_rules() -> None:
    x = _row([0.0, 10.0])  # 2 -> 4
    bl = OpCode.RESIZE_BILINEAR
    assert _resize(bl, x, 4) == [0.0, 5.0, 10.0, 10.0]
    assert _resize(bl, x, 4, False, True) == [0.0, 2.5, 7.5, 10.0]
    got = _resize(bl, x, 4, True, False)
    close(torch.tensor(got), torch.tensor([0.0, 10 / 3, 20 / 3, 10.0]))


def test_resize_bilinear_matches_torch_interpolate() -> None:
    x = torch.randn(2, 3, 5, 7)
    for align, half in ((False, True), (True, False)):
        want = F.interpolate(x, size=(8, 11), mode="bilinear", align_corners=align)
        got = run1(OpCode.RESIZE_BILINEAR, [In(nhwc(x)), 11, 8, False, align, half], (2, 8, 11, 3))
        close(nchw(got), want)
        got = run1(OpCode.RESIZE_BILINEAR, [In(x), 11, 8, True, align, half], (2, 3, 8, 11))
        close(got, want)


def test_resize_by_scale_and_layout() -> None:
    x = torch.randn(1, 3, 3, 2)
    by_scale = run1(OpCode.RESIZE_NEAREST_NEIGHBOR, [In(x), 1.5, 1.5, False], (1, 4, 4, 2))
    by_size = run1(OpCode.RESIZE_NEAREST_NEIGHBOR, [In(x), 4, 4, False], (1, 4, 4, 2))
    assert torch.equal(by_scale, by_size)
    twice = run1(OpCode.RESIZE_NEAREST_NEIGHBOR, [In(nchw(x)), 2.0, 2.0, True], (1, 2, 6, 6))
    assert torch.equal(twice, nchw(x).repeat_interleave(2, 2).repeat_interleave(2, 3))
    bl = run1(OpCode.RESIZE_BILINEAR, [In(x), 6, 6], (1, 6, 6, 2), level=1)
    assert bl.shape == (1, 6, 6, 2)


def test_resize_flag_rules_are_validated() -> None:
    x = torch.randn(1, 2, 2, 1)
    with pytest.raises(InterpreterError) as e:
        run1(OpCode.RESIZE_BILINEAR, [In(x), 4, 4, False, True, True], (1, 4, 4, 1))
    assert e.value.result_code == ResultCode.BAD_DATA
    with pytest.raises(InterpreterError, match="feature level 4"):
        run1(OpCode.RESIZE_BILINEAR, [In(x), 4, 4, False, True], (1, 4, 4, 1), level=3)


# --- quantize / dequantize / cast ----------------------------------------------------------------


def test_quantize_rounds_half_away_and_saturates() -> None:
    x = torch.tensor([0.25, -0.25, 1.25, 200.0, -100.0, 0.74])
    got = run1(OpCode.QUANTIZE, [In(x)], (6,), out_code=C.TENSOR_QUANT8_ASYMM, scale=0.5, zp=10)
    assert got.dtype == torch.uint8 and got.tolist() == [11, 9, 13, 255, 0, 11]
    got = run1(OpCode.QUANTIZE, [In(x)], (6,), out_code=C.TENSOR_QUANT8_ASYMM_SIGNED, scale=0.5, zp=-1)
    assert got.dtype == torch.int8 and got.tolist() == [0, -2, 2, 127, -128, 0]


def test_dequantize() -> None:
    q = torch.tensor([0, 10, 255], dtype=torch.uint8)
    got = run1(OpCode.DEQUANTIZE, [In(q, 0.5, 10)], (3,), out_code=F32)
    assert got.tolist() == [-5.0, 0.0, 122.5]
    s = torch.tensor([-128, 3], dtype=torch.int8)
    got = run1(OpCode.DEQUANTIZE, [In(s, 0.25, 2)], (2,), out_code=F32)
    assert got.tolist() == [-32.5, 0.25]


def test_cast_truncates_and_saturates() -> None:
    x = torch.tensor([-1.7, 2.9, 300.0, 7.9])
    assert run1(OpCode.CAST, [In(x)], (4,), out_code=I32).tolist() == [-1, 2, 300, 7]
    u8 = run1(OpCode.CAST, [In(x)], (4,), out_code=C.TENSOR_QUANT8_ASYMM, scale=1.0)
    assert u8.tolist() == [0, 2, 255, 7]
    i = torch.tensor([-3, 1000], dtype=torch.int32)
    assert run1(OpCode.CAST, [In(i)], (2,), out_code=F32).tolist() == [-3.0, 1000.0]
    assert run1(OpCode.CAST, [In(i)], (2,), out_code=C.TENSOR_QUANT8_ASYMM, scale=1.0).tolist() == [
        0,
        255,
    ]


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
    b = one_op(OpCode.MAXIMUM, [In(q, 0.5, 0), In(q, 0.5, 0)], (2,), scale=1.0)
    assert "no QUANT8_ASYMM kernel" in _bad_data(b.model, 4)
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
    from nnapi_compiler.runtime.kernels import kernel

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
    torch.testing.assert_close(nchw(got).float(), want, rtol=1e-3, atol=1e-3 * float(want.abs().max()))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_core_kernels_are_scriptable() -> None:
    from nnapi_compiler.runtime.kernels import (
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
