"""Reference kernels: shape ops, reductions, resize, quantize/dequantize/cast."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnapi_compiler.ir.codes import OpCode, ResultCode
from nnapi_compiler.runtime.interpreter import (
    InterpreterError,
)

from .kernel_helpers import (
    F32,
    I32,
    C,
    In,
    Omit,
    close,
    ints,
    nchw,
    nhwc,
    one_op,
    run1,
)

# --- shape ops -----------------------------------------------------------------------------------




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
    close(bl, _legacy_bilinear(x, 6, 6).float())


def _legacy_bilinear(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """NNAPI's FL1 bilinear (no flags: src = o * in / out, edge clamped), NHWC, in float64,
    written from the definition as an oracle independent of the kernel."""

    def axis_map(size: int, out: int) -> torch.Tensor:
        m = torch.zeros(out, size, dtype=torch.float64)
        for o in range(out):
            src = o * size / out
            i0 = min(int(src), size - 1)
            i1, frac = min(i0 + 1, size - 1), src - i0
            m[o, i0] += 1 - frac
            m[o, i1] += frac
        return m

    mh, mw = axis_map(x.shape[1], out_h), axis_map(x.shape[2], out_w)
    return torch.einsum("ph,nhwc,qw->npqc", mh, x.double(), mw)


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
