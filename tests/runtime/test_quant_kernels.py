"""Quantized kernels, hand-computed: fixed-point helpers and one-op models checked bit for bit.

Every expected value below is worked out in the comments with the TFLite / gemmlowp formulas of
SEMANTICS.md ("Quantized arithmetic"), not by running the code under test.
"""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.ir.codes import OpCode, OperandCode, ResultCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes
from nnapi_compiler.reference import fixedpoint as fp
from nnapi_compiler.runtime.interpreter import InterpreterError, execute

C = OperandCode
U8, S8, I32 = C.TENSOR_QUANT8_ASYMM, C.TENSOR_QUANT8_ASYMM_SIGNED, C.TENSOR_INT32
_CODES = {torch.uint8: U8, torch.int8: S8, torch.int32: I32, torch.float32: C.TENSOR_FLOAT32}


class Q:
    """A tensor operand with quantization params: a constant, or a model input when ``feed``."""

    def __init__(self, t: torch.Tensor, scale: float = 0.0, zp: int = 0, feed: bool = False) -> None:
        self.t, self.scale, self.zp, self.feed = t, scale, zp, feed


def model(code: int, args: list, out: tuple) -> tuple[FlatModel, list[torch.Tensor]]:
    """One-op model; ``out`` = (operand code, dims, scale, zp)."""
    m, feeds = FlatModel(), []
    ins = []
    for a in args:
        if isinstance(a, Q):
            m.operands.append(OperandDesc(_CODES[a.t.dtype], tuple(a.t.shape), a.scale, a.zp))
            k = len(m.operands) - 1
            if a.feed:
                m.inputs.append(k)
                feeds.append(a.t)
            else:
                m.values[k] = a.t.contiguous().view(torch.uint8).numpy().tobytes()
        else:
            sc = C.BOOL if isinstance(a, bool) else C.INT32 if isinstance(a, int) else C.FLOAT32
            m.operands.append(OperandDesc(sc))
            k = len(m.operands) - 1
            m.values[k] = scalar_bytes(sc, a)
        ins.append(k)
    m.operands.append(OperandDesc(out[0], tuple(out[1]), out[2], out[3]))
    m.outputs.append(len(m.operands) - 1)
    m.operations.append(OperationDesc(code, tuple(ins), (len(m.operands) - 1,)))
    return m, feeds


def run(code: int, args: list, out: tuple, level: int = 4) -> torch.Tensor:
    m, feeds = model(code, args, out)
    return execute(m, feeds, level)[0]


def refused(code: int, args: list, out: tuple, level: int = 4) -> str:
    m, feeds = model(code, args, out)
    with pytest.raises(InterpreterError) as e:
        execute(m, feeds, level)
    assert e.value.result_code == ResultCode.BAD_DATA
    return str(e.value)


def u8(*v: int) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.uint8)


def s8(*v: int) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.int8)


def i64(*v: int) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.int64)


# --- fixed-point helpers -------------------------------------------------------------------------


def test_quantize_multiplier_known_values() -> None:
    # frexp(0.5) = (0.5, 0): m = 0.5 * 2^31 = 2^30.   frexp(1.0) = (0.5, 1): (2^30, 1).
    assert fp.quantize_multiplier(0.5) == (1 << 30, 0)
    assert fp.quantize_multiplier(1.0) == (1 << 30, 1)
    # frexp(0.75) = (0.75, 0): 0.75 * 2^31 = 1610612736.   frexp(1.5) = (0.75, 1).
    assert fp.quantize_multiplier(0.75) == (1610612736, 0)
    assert fp.quantize_multiplier(1.5) == (1610612736, 1)
    # 0.5 + 2^-32: q * 2^31 = 2^30 + 0.5 exactly, a tie: half away gives 2^30 + 1 (ties-to-even: 2^30).
    assert fp.quantize_multiplier(0.5 + 2.0**-32) == ((1 << 30) + 1, 0)
    # 1 - 2^-40: q * 2^31 = 2^31 - 2^-9 rounds to 2^31, renormalised to (2^30, shift + 1).
    assert fp.quantize_multiplier(1.0 - 2.0**-40) == (1 << 30, 1)
    # 2^-32 = 0.5 * 2^-31 keeps shift -31; 2^-33 would need -32 and is flushed to (0, 0).
    assert fp.quantize_multiplier(2.0**-32) == (1 << 30, -31)
    assert fp.quantize_multiplier(2.0**-33) == (0, 0)
    assert fp.quantize_multiplier(0.0) == (0, 0)


def test_saturating_rounding_doubling_high_mul() -> None:
    srdhm = fp.saturating_rounding_doubling_high_mul
    # (3 * 2^30 + 2^30) / 2^31 = 2;  (-3 * 2^30 + 1 - 2^30) / 2^31 = -1.99.. -> truncated to -1.
    assert srdhm(i64(3, -3), 1 << 30).tolist() == [2, -1]
    # -2^31 * (2^31 - 1) = -2^62 + 2^31; + 1 - 2^30, / 2^31 = -2^31 + 0.5 + 2^-31 -> -2147483647.
    assert srdhm(i64(fp.INT32_MIN), fp.INT32_MAX).tolist() == [-2147483647]
    # The one overflow: INT32_MIN * INT32_MIN saturates to INT32_MAX.
    assert srdhm(i64(fp.INT32_MIN, 5), fp.INT32_MIN).tolist() == [fp.INT32_MAX, -5]


def test_rounding_divide_by_pot_ties_away_from_zero() -> None:
    rdbpot = fp.rounding_divide_by_pot
    # 5/2 = 2.5 -> 3; -5/2 = -2.5 -> -3 (mask 1, rem 1, threshold 0 + 1 for negatives)
    # 6/4 = 1.5 -> 2; -6/4 = -1.5 -> -2; -7/4 = -1.75 -> -2; 9/8 = 1.125 -> 1.
    assert rdbpot(i64(5, -5), 1).tolist() == [3, -3]
    assert rdbpot(i64(6, -6, -7), 2).tolist() == [2, -2, -2]
    assert rdbpot(i64(9), 3).tolist() == [1]
    assert rdbpot(i64(-9, 9), 0).tolist() == [-9, 9]


def test_multiply_by_quantized_multiplier_double_rounds() -> None:
    mbqm = fp.multiply_by_quantized_multiplier
    # M = 0.5 (2^30, 0): 100 -> SRDHM (100 + 1) / 2 = 50;  3 -> 2 (1.5 up);  -3 -> -1 (-1.5 up).
    assert mbqm(i64(100, 3, -3), 1 << 30, 0).tolist() == [50, 2, -1]
    # M = 0.25 (2^30, -1): 10 -> SRDHM 5 (5.5 truncated), then 5/2 = 2.5 -> 3 (exact 2.5);
    # -10 -> SRDHM (-11 * 2^30 + 1) / 2^31 = -5.49.. -> -5, then -2.5 -> -3.
    assert mbqm(i64(10, -10), 1 << 30, -1).tolist() == [3, -3]
    # M = 1.5 (3 * 2^29, 1): 5 << 1 = 10; 10 * 3 * 2^29 + 2^30 = 2^34; / 2^31 = 8 (7.5 up).
    assert mbqm(i64(5), 3 << 29, 1).tolist() == [8]
    # M = 2 (2^30, 2): 2^30 << 2 overflows int32; saturated to INT32_MAX, then * 0.5 -> 2^30
    # (a wrapping shift would have given 0).
    assert mbqm(i64(1 << 30), 1 << 30, 2).tolist() == [1 << 30]


def test_activation_range_rounds_float32_quotients_half_away() -> None:
    d = OperandDesc(U8, (1,), 0.1, 10)
    # RELU: max(0, 10 + round(0 / 0.1)); RELU6: 6 / f32(0.1) = 59.9999991 -> 60 -> 70;
    # RELU1: -1 / f32(0.1) = -9.99999985 -> -10 -> 0, 1 -> 20.
    assert fp.activation_range(0, d) == (0, 255)
    assert fp.activation_range(1, d) == (10, 255)
    assert fp.activation_range(3, d) == (10, 70)
    assert fp.activation_range(2, d) == (0, 20)
    # int8 scale 0.4: -1 / f32(0.4) = -2.49999996 in double but exactly -2.5 as a float32
    # quotient, and std::round takes it to -3 (a double quotient would round to -2).
    assert fp.activation_range(2, OperandDesc(S8, (1,), 0.4, 0)) == (-3, 3)
    # int8 scale 0.5 zp -128: RELU6 hi = -128 + 12; RELU1 lo = max(-128, -130).
    assert fp.activation_range(3, OperandDesc(S8, (1,), 0.5, -128)) == (-128, -116)
    assert fp.activation_range(2, OperandDesc(S8, (1,), 0.5, -128)) == (-128, -126)


# --- FULLY_CONNECTED and CONV_2D -----------------------------------------------------------------


def test_fully_connected_uint8_by_hand() -> None:
    x = Q(u8(130, 120, 140).reshape(1, 3), 0.5, 128, feed=True)  # centered [2, -8, 12]
    w = Q(u8(104, 96, 100, 100, 101, 99).reshape(2, 3), 0.25, 100)  # [[4, -4, 0], [0, 1, -1]]
    b = Q(torch.tensor([3, -5], dtype=torch.int32), 0.125)
    # acc = [2*4 + 8*4, -8 - 12] + bias = [43, -25]; M = 0.125 / 1 = (2^30, -2).
    # 43: SRDHM (43 + 1) / 2 = 22, 22 / 4 = 5.5 -> 6 (exact 5.375: double rounding) -> 6 + 50.
    # -25: SRDHM (-26 * 2^30 + 1) / 2^31 -> -12, -12 / 4 = -3 -> 47.
    assert run(OpCode.FULLY_CONNECTED, [x, w, b, 0], (U8, (1, 2), 1.0, 50)).tolist() == [[56, 47]]
    # RELU: lo = 50 + round(0) = 50.
    assert run(OpCode.FULLY_CONNECTED, [x, w, b, 1], (U8, (1, 2), 1.0, 50)).tolist() == [[56, 50]]


def _conv_args(fuse: int) -> list:
    x = Q(s8(1, 3, -1, 5, -3, 0, 2, 2, 7).reshape(1, 3, 3, 1), 0.5, -1, feed=True)
    w = Q(s8(1, -1, 2, 0).reshape(1, 2, 2, 1), 0.5, 0)
    b = Q(torch.tensor([-1], dtype=torch.int32), 0.25)
    return [x, w, b, 2, 1, 1, fuse]  # implicit VALID, stride 1


def test_conv_int8_by_hand() -> None:
    # centered input [[2,4,0],[6,-2,1],[3,3,8]], filter [[1,-1],[2,0]]:
    # acc = [[2-4+12, 4-4], [6+2+6, -2-1+6]] = [[10, 0], [14, 3]]; + bias -1 -> [[9, -1], [13, 2]].
    # M = 0.25 / 1 = (2^30, -1): 9 -> SRDHM 5, 5/2 -> 3;  -1 -> SRDHM (-2^31 + 1)/2^31 -> 0;
    # 13 -> 7 -> 3.5 -> 4;  2 -> SRDHM 1.5 -> 1 -> 0.5 -> 1.  Plus zp 3.
    got = run(OpCode.CONV_2D, _conv_args(0), (S8, (1, 2, 2, 1), 1.0, 3))
    assert got.dtype == torch.int8 and got.flatten().tolist() == [6, 3, 7, 4]
    # RELU1 with scale 1, zp 3: [2, 4] in the integer domain.
    got = run(OpCode.CONV_2D, _conv_args(2), (S8, (1, 2, 2, 1), 1.0, 3))
    assert got.flatten().tolist() == [4, 3, 4, 4]
    assert "feature level" in refused(OpCode.CONV_2D, _conv_args(0), (S8, (1, 2, 2, 1), 1.0, 3), level=3)


# --- ADD / SUB / MUL -----------------------------------------------------------------------------


def test_add_sub_different_scales_through_the_tflite_scheme() -> None:
    a = Q(u8(10, 3), 0.5, 0, feed=True)
    b = Q(u8(6, 1), 0.25, 0, feed=True)
    # twice_max = 1: input multipliers 0.5 -> (2^30, 0), 0.25 -> (2^30, -1); output
    # 1 / (2^20 * 1) -> (2^30, -19).
    # [0]: 10 << 20 -> SRDHM 5 * 2^20;  6 << 20 -> SRDHM 3 * 2^20 -> /2 = 1.5 * 2^20;
    #      sum 6.5 * 2^20 -> SRDHM 3407872 -> / 2^19 = 6.5 -> 7 (real 6.5).
    # [1]: 1.5 * 2^20 + 0.25 * 2^20 = 1.75 * 2^20 -> 2 (real 1.75).
    assert run(OpCode.ADD, [a, b, 0], (U8, (2,), 1.0, 0)).tolist() == [7, 2]
    # SUB: a scale 0.5 zp 10 (q 20 -> 5.0), b scale 0.25 zp 4 (q 10 -> 1.5), out zp 100:
    # 5 * 2^20 + MBQM(6 << 20, -2^30, -1) = 5 * 2^20 - 1.5 * 2^20 = 3.5 * 2^20 -> 4 -> 104.
    a2, b2 = Q(u8(20), 0.5, 10, feed=True), Q(u8(10), 0.25, 4, feed=True)
    assert run(OpCode.SUB, [a2, b2, 0], (U8, (1,), 1.0, 100)).tolist() == [104]
    # RELU1 around zp 100: [99, 101].
    assert run(OpCode.SUB, [a2, b2, 2], (U8, (1,), 1.0, 100)).tolist() == [101]


def test_add_broadcasts_int8() -> None:
    a = Q(s8(-128, 0, 127, 10).reshape(2, 2), 1.0, 0, feed=True)
    b = Q(s8(2, -2), 1.0, 0)
    # Same scales: every multiplier is exact (0.5, 0.5, 2 / 2^20), sums are exact integers.
    want = [[-126, -2], [127, 8]]
    assert run(OpCode.ADD, [a, b, 0], (S8, (2, 2), 1.0, 0)).tolist() == want


def test_mul_by_hand() -> None:
    a = Q(u8(3, 3), 0.5, 0, feed=True)
    b = Q(u8(5, 0), 0.5, 5, feed=True)
    # centered products [3 * 0, 3 * -5]; M = 0.25 / 1 -> (2^30, -1); out zp 10.
    # 0 -> 10;  -15 -> SRDHM (-16 * 2^30 + 1) / 2^31 -> -7, -7 / 2 = -3.5 -> -4 (real -3.75) -> 6.
    assert run(OpCode.MUL, [a, b, 0], (U8, (2,), 1.0, 10)).tolist() == [10, 6]
    # 3 * 5 = 15 with zp 0: SRDHM 8, 8 / 2 = 4 (real 3.75).
    b0 = Q(u8(5), 0.5, 0, feed=True)
    assert run(OpCode.MUL, [Q(u8(3), 0.5, 0, feed=True), b0, 0], (U8, (1,), 1.0, 0)).tolist() == [4]


# --- activations, pools, MEAN --------------------------------------------------------------------


def test_relu_family_clamps_in_the_integer_domain() -> None:
    x = Q(u8(0, 5, 10, 50, 70, 71, 255), 0.1, 10, feed=True)
    # RELU6 range [10, 70] (see test_activation_range...).
    got = run(OpCode.RELU6, [x], (U8, (7,), 0.1, 10))
    assert got.tolist() == [10, 10, 10, 50, 70, 70, 70]
    y = Q(s8(-128, -3, -2, 0, 2, 3, 4, 127), 0.4, 0, feed=True)
    assert run(OpCode.RELU1, [y], (S8, (8,), 0.4, 0)).tolist() == [-3, -3, -2, 0, 2, 3, 3, 3]
    assert "scale/zero point" in refused(OpCode.RELU, [y], (S8, (8,), 0.5, 0))


def _pool(x: torch.Tensor, fuse: int = 0) -> list:
    # explicit: pad l=1 r=0 t=0 b=0, stride 1x1, filter w=2 h=1
    return [Q(x.reshape(1, 1, 3, 1), 1.0, 0, feed=True), 1, 0, 0, 0, 1, 1, 2, 1, fuse]


def test_average_pool_rounding_uint8_vs_int8() -> None:
    # windows [pad, 2] (n = 1), [2, 3], [3, 6]: uint8 (sum + n/2) / n = 2, 6/2 = 3, 10/2 = 5.
    got = run(OpCode.AVERAGE_POOL_2D, _pool(u8(2, 3, 6)), (U8, (1, 1, 3, 1), 1.0, 0))
    assert got.flatten().tolist() == [2, 3, 5]
    # int8 rounds half away: -2, (-5 - 1) / 2 = -3 (-2.5), (-9 - 1) / 2 = -5 (-4.5);
    # positive ties go up: (5 + 1) / 2 = 3.
    got = run(OpCode.AVERAGE_POOL_2D, _pool(s8(-2, -3, -6)), (S8, (1, 1, 3, 1), 1.0, 0))
    assert got.flatten().tolist() == [-2, -3, -5]
    got = run(OpCode.AVERAGE_POOL_2D, _pool(s8(-2, 3, 2)), (S8, (1, 1, 3, 1), 1.0, 0))
    assert got.flatten().tolist() == [-2, 1, 3]  # (1 + 1) / 2 = 1 (0.5 -> 1), (5 + 1) / 2 = 3
    # RELU1 at scale 1: [-1, 1].
    got = run(OpCode.AVERAGE_POOL_2D, _pool(s8(-2, -3, -6), 2), (S8, (1, 1, 3, 1), 1.0, 0))
    assert got.flatten().tolist() == [-1, -1, -1]
    got = run(OpCode.MAX_POOL_2D, _pool(s8(-2, -3, 6), 3), (S8, (1, 1, 3, 1), 1.0, 0))
    assert got.flatten().tolist() == [0, 0, 6]  # max [-2, -2, 6], RELU6 range [0, 6]
    bad = refused(OpCode.MAX_POOL_2D, _pool(s8(-2, -3, 6)), (S8, (1, 1, 3, 1), 2.0, 0))
    assert "scale/zero point" in bad


def test_mean_truncates_toward_zero() -> None:
    axes = Q(torch.tensor([1], dtype=torch.int32))
    x = Q(s8(-3, -4, -5, -5, -4, 3).reshape(2, 3), 0.5, -1, feed=True)
    # sums -12 and -6 over 3: -4 and -2 exactly;  keep axis 0 instead below.
    assert run(OpCode.MEAN, [x, axes, 0], (S8, (2,), 0.5, -1)).tolist() == [-4, -2]
    y = Q(s8(-3, -4, -5, -5, -4, 2).reshape(3, 2), 0.5, -1, feed=True)
    # row sums -7, -10, -2 over 2: -3.5 -> -3, -5, -1 -> -1 (C division truncates toward zero;
    # floor would give -4 and round-half-away -4).
    assert run(OpCode.MEAN, [y, axes, 1], (S8, (3, 1), 0.5, -1)).tolist() == [[-3], [-5], [-1]]
    z = Q(u8(3, 4, 250, 255).reshape(2, 2), 0.5, 7, feed=True)
    assert run(OpCode.MEAN, [z, axes, 0], (U8, (2,), 0.5, 7)).tolist() == [3, 252]
