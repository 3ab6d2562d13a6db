"""Quantized element-wise, pooling, MEAN, resize and activation kernels on random cases: within one
output quantum of the float reference (dequantize, compute in float64, clamp to the representable
range), exact where the reference is exact (MAX_POOL, uint8 RESIZE_BILINEAR's truncation)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnapi_compiler.ir.codes import OpCode, OperandCode
from nnapi_compiler.ir.flat import OperandDesc
from nnapi_compiler.reference import fixedpoint as fp

from .test_quant_conv_props import SEEDS, deq, rand_q, rand_zp, uniform
from .test_quant_kernels import S8, U8, Q, run

F32 = OperandCode.TENSOR_FLOAT32


def kind(seed: int) -> tuple[torch.dtype, int]:
    return (torch.uint8, U8) if seed % 2 else (torch.int8, S8)


def within_one_quantum(got: torch.Tensor, real: torch.Tensor, out: tuple, fuse: int = 0) -> None:
    """|dequantized result - real clamped to the output's fuse range| <= one output quantum."""
    code, _, scale, zp = out
    lo, hi = fp.activation_range(fuse, OperandDesc(code, (1,), scale, zp))
    lo_r, hi_r = (float(deq(torch.tensor(v), scale, zp)) for v in (lo, hi))
    err = (deq(got, scale, zp) - real.to(torch.float64).clamp(lo_r, hi_r)).abs().max()
    assert float(err) <= fp.f32(scale), (float(err), scale)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op", [OpCode.ADD, OpCode.SUB, OpCode.MUL])
def test_add_sub_mul_random(seed: int, op: int) -> None:
    g = torch.Generator().manual_seed(500 + seed)
    dtype, code = kind(seed)
    s1, s2 = uniform(g, 0.01, 0.2), uniform(g, 0.01, 0.2)
    za, zb, zo = rand_zp(g, dtype), rand_zp(g, dtype), rand_zp(g, dtype)
    a, b = rand_q(g, (2, 3, 4), dtype), rand_q(g, (3, 1) if seed % 3 else (4,), dtype)
    if op == OpCode.MUL:
        s_out = fp.f32(s1 * s2 * uniform(g, 20.0, 300.0))
    else:
        s_out = fp.f32(max(s1, s2) * uniform(g, 0.5, 3.0))
    fuse = (0, 1, 3)[seed % 3]
    out = (code, (2, 3, 4), s_out, zo)
    got = run(op, [Q(a, s1, za, feed=True), Q(b, s2, zb, feed=True), fuse], out)
    x, y = deq(a, s1, za), deq(b, s2, zb)
    real = {OpCode.ADD: x + y, OpCode.SUB: x - y, OpCode.MUL: x * y}[op]
    within_one_quantum(got, real, out, fuse)


@pytest.mark.parametrize("seed", SEEDS)
def test_pools_random(seed: int) -> None:
    g = torch.Generator().manual_seed(600 + seed)
    dtype, code = kind(seed)
    scale, zp = uniform(g, 0.01, 0.5), rand_zp(g, dtype)
    x = rand_q(g, (2, 7, 7, 3), dtype)
    out = (code, (2, 4, 4, 3), scale, zp)
    args = [Q(x, scale, zp, feed=True), 1, 2, 2, 3, 3, 0]  # SAME: pads 1 / 1, stride 2, 3x3
    real_in = deq(x, scale, zp).permute(0, 3, 1, 2)
    got = run(OpCode.AVERAGE_POOL_2D, args, out)
    real = F.avg_pool2d(real_in, 3, 2, padding=1, count_include_pad=False).permute(0, 2, 3, 1)
    within_one_quantum(got, real, out)
    got = run(OpCode.MAX_POOL_2D, args, out)
    want = F.max_pool2d(x.to(torch.float64).permute(0, 3, 1, 2), 3, 2, padding=1).permute(0, 2, 3, 1)
    assert torch.equal(got, want.to(dtype))


@pytest.mark.parametrize("seed", SEEDS)
def test_mean_random(seed: int) -> None:
    g = torch.Generator().manual_seed(700 + seed)
    dtype, code = kind(seed)
    scale, zp = uniform(g, 0.01, 0.5), rand_zp(g, dtype)
    x = rand_q(g, (2, 3, 4, 5), dtype)
    axes = [[1, 2], [-1], [0, 3], [2]][seed % 4]
    keep = seed % 3 == 0
    real = deq(x, scale, zp).mean(dim=axes, keepdim=keep)
    out = (code, tuple(real.shape), scale, zp)
    got = run(
        OpCode.MEAN, [Q(x, scale, zp, feed=True), Q(torch.tensor(axes, dtype=torch.int32)), int(keep)], out
    )
    within_one_quantum(got, real, out)


def _resize_args(x: Q, seed: int, out_hw: tuple[int, int]) -> list:
    align, half = (seed % 3 == 1), (seed % 3 == 2)
    return [x, out_hw[1], out_hw[0], False, align, half]


@pytest.mark.parametrize("seed", SEEDS)
def test_resize_bilinear_random(seed: int) -> None:
    g = torch.Generator().manual_seed(800 + seed)
    scale, zp = uniform(g, 0.01, 0.5), 7
    out_hw = (int(torch.randint(2, 12, (), generator=g)), int(torch.randint(2, 12, (), generator=g)))
    x = rand_q(g, (1, 4, 5, 2), torch.uint8)
    got = run(
        OpCode.RESIZE_BILINEAR,
        _resize_args(Q(x, scale, zp, feed=True), seed, out_hw),
        (U8, (1, *out_hw, 2), scale, zp),
    )
    # the reference's generic (float) kernel on the stored values, cast to uint8: truncation
    raw = run(OpCode.RESIZE_BILINEAR, _resize_args(Q(x.float(), feed=True), seed, out_hw),
              (F32, (1, *out_hw, 2), 0.0, 0))
    assert torch.equal(got, raw.trunc().to(torch.uint8))
    if seed % 3:  # and that float path is F.interpolate's (an independent oracle) to float32
        # rounding; the legacy coordinates (neither flag) have no PyTorch equivalent
        want = F.interpolate(x.float().permute(0, 3, 1, 2), size=out_hw, mode="bilinear",
                             align_corners=seed % 3 == 1).permute(0, 2, 3, 1)
        torch.testing.assert_close(raw, want, rtol=0.0, atol=255 * 2**-20)
    # int8: fixed-point coordinates are exact for a factor of 2, so it is within one quantum
    y = rand_q(g, (1, 3, 4, 2), torch.int8)
    args = _resize_args(Q(y, scale, -3, feed=True), seed, (6, 8))
    out = (S8, (1, 6, 8, 2), scale, -3)
    got = run(OpCode.RESIZE_BILINEAR, args, out)
    args[0] = Q(deq(y, scale, -3).float(), feed=True)
    within_one_quantum(got, run(OpCode.RESIZE_BILINEAR, args, (F32, (1, 6, 8, 2), 0.0, 0)), out)


@pytest.mark.parametrize("seed", SEEDS)
def test_activations_random(seed: int) -> None:
    g = torch.Generator().manual_seed(900 + seed)
    dtype, code = kind(seed)
    scale, zp = uniform(g, 0.01, 0.1), rand_zp(g, dtype)
    x = rand_q(g, (2, 3, 16), dtype)
    real_x = deq(x, scale, zp)
    feed = Q(x, scale, zp, feed=True)
    signed = dtype == torch.int8
    cases = [
        (OpCode.LOGISTIC, [feed], (code, (2, 3, 16), 1 / 256, -128 if signed else 0), torch.sigmoid(real_x)),
        (OpCode.TANH, [feed], (code, (2, 3, 16), 1 / 128, 0 if signed else 128), torch.tanh(real_x)),
        (
            OpCode.SOFTMAX,
            [feed, 0.7, 1],
            (code, (2, 3, 16), 1 / 256, -128 if signed else 0),
            torch.softmax(real_x * fp.f32(0.7), dim=1),
        ),
    ]
    for op, args, out, real in cases:
        within_one_quantum(run(op, args, out), real, out)
    out = (code, (2, 3, 16), uniform(g, 0.01, 0.1), rand_zp(g, dtype))
    real = real_x * torch.clamp(real_x + 3, 0, 6) / 6
    within_one_quantum(run(OpCode.HARD_SWISH, [feed], out), real, out)
    alpha = rand_q(g, (16,), dtype)
    a_scale, a_zp = uniform(g, 0.001, 0.01), rand_zp(g, dtype)
    real = torch.where(real_x >= 0, real_x, deq(alpha, a_scale, a_zp) * real_x)
    within_one_quantum(run(OpCode.PRELU, [feed, Q(alpha, a_scale, a_zp)], out), real, out)
