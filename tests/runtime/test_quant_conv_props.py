"""Quantized conv family on random cases: bit-exact against an independent integer accumulation
(torch's float64 conv of the centered integers, exact below 2^53), and within one output quantum
of the float reference (dequantize, float conv, no requantization)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnapi_compiler.ir.flat import OperandDesc
from nnapi_compiler.reference import fixedpoint as fp

from . import requant_oracle as oracle
from .test_quant_kernels import S8, U8, Q, run

SEEDS = range(6)


def rand_q(g: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    lo, hi = (0, 256) if dtype == torch.uint8 else (-128, 128)
    return torch.randint(lo, hi, shape, generator=g, dtype=torch.int64).to(dtype)


def uniform(g: torch.Generator, a: float, b: float) -> float:
    return fp.f32(a + (b - a) * float(torch.rand((), generator=g, dtype=torch.float64)))


def deq(q: torch.Tensor, scale: float, zp: int) -> torch.Tensor:
    return (q.to(torch.float64) - zp) * fp.f32(scale)


def rand_zp(g: torch.Generator, dtype: torch.dtype) -> int:
    return int(torch.randint(0, 256, (), generator=g)) - (128 if dtype == torch.int8 else 0)


class Case:
    """Random quantized operands for one conv-like op."""

    def __init__(self, seed: int, xshape: tuple, wshape: tuple, cout: int, terms: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.dtype = torch.uint8 if seed % 2 else torch.int8
        self.code = U8 if seed % 2 else S8
        mid = 128 if seed % 2 else 0
        self.s_in, self.s_w = uniform(g, 0.02, 0.1), uniform(g, 0.005, 0.05)
        self.zp_in, self.zp_out = rand_zp(g, self.dtype), rand_zp(g, self.dtype)
        self.zp_w = mid + int(torch.randint(-10, 11, (), generator=g))
        self.s_b = fp.f32(self.s_in * self.s_w)
        # centered weights ~ U(-128, 128) (rms 74) and inputs of rms ~100: the accumulator's
        # spread is ~ 7400 sqrt(K); aim the output spread at ~40 quanta, M from 1/50 to 2x that.
        m_real = uniform(g, 0.02, 2.0) * 40 / (7400 * terms**0.5)
        self.s_out = fp.f32(self.s_b / m_real)
        self.x = rand_q(g, xshape, self.dtype)
        self.w = rand_q(g, wshape, self.dtype)
        self.b = torch.randint(-20000, 20000, (cout,), generator=g, dtype=torch.int32)
        self.fuse = (0, 1, 0, 3, 0, 2)[seed % 6]

    def tensors(self) -> list[Q]:
        return [
            Q(self.x, self.s_in, self.zp_in, feed=True),
            Q(self.w, self.s_w, self.zp_w),
            Q(self.b, self.s_b),
        ]

    def out(self, dims: tuple) -> tuple:
        return (self.code, dims, self.s_out, self.zp_out)

    def exact(self, acc: torch.Tensor) -> torch.Tensor:
        """Requantize an independently computed accumulator (channels last) with the
        independent oracle (``requant_oracle``), not the kernels' own fixed-point helpers."""
        qmin, qmax = (0, 255) if self.dtype == torch.uint8 else (-128, 127)
        lo, hi = oracle.activation_range(self.fuse, self.s_out, self.zp_out, qmin, qmax)
        real = oracle.to_f32(self.s_in * self.s_w) / self.s_out
        return oracle.requantize(acc, self.b, real, self.zp_out, lo, hi).to(self.dtype)

    def check_float(self, got: torch.Tensor, real: torch.Tensor) -> None:
        """|dequantized result - clamp(real)| <= one output quantum."""
        d = OperandDesc(self.code, (1,), self.s_out, self.zp_out)
        lo, hi = fp.activation_range(self.fuse, d)
        want = real.clamp(
            float(deq(torch.tensor(lo), self.s_out, self.zp_out)),
            float(deq(torch.tensor(hi), self.s_out, self.zp_out)),
        )
        err = (deq(got, self.s_out, self.zp_out) - want).abs().max()
        assert float(err) <= fp.f32(self.s_out), (float(err), self.s_out)


def centered(t: torch.Tensor, zp: int) -> torch.Tensor:
    return t.to(torch.float64) - zp


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["conv", "depthwise", "grouped"])
def test_conv_family_random(seed: int, kind: str) -> None:
    g = torch.Generator().manual_seed(100 + seed)
    n, h, w = 2, int(torch.randint(5, 9, (), generator=g)), int(torch.randint(5, 9, (), generator=g))
    kh, kw = int(torch.randint(1, 4, (), generator=g)), int(torch.randint(1, 4, (), generator=g))
    sh, sw, dh, dw = (int(torch.randint(1, 3, (), generator=g)) for _ in range(4))
    pads = [int(torch.randint(0, 2, (), generator=g)) for _ in range(4)]  # l, r, t, b
    groups, mult, cin = 1, 1, int(torch.randint(1, 4, (), generator=g))
    if kind == "grouped":
        groups, cin = 2, 2 * cin
    cout = cin * 2 if kind == "depthwise" else int(torch.randint(1, 3, (), generator=g)) * groups
    mult = cout // cin
    wshape = (1, kh, kw, cout) if kind == "depthwise" else (cout, kh, kw, cin // groups)
    case = Case(seed, (n, h, w, cin), wshape, cout, kh * kw * (cin // groups if kind != "depthwise" else 1))
    nchw = bool(seed % 3 == 0) and kind != "grouped"
    oh = (h + pads[2] + pads[3] - ((kh - 1) * dh + 1)) // sh + 1
    ow = (w + pads[0] + pads[1] - ((kw - 1) * dw + 1)) // sw + 1
    x_in = case.x.permute(0, 3, 1, 2).contiguous() if nchw else case.x
    args = case.tensors()
    args[0] = Q(x_in, case.s_in, case.zp_in, feed=True)
    tail = [*pads, sw, sh]
    if kind == "conv":
        args += [*tail, case.fuse, nchw, dw, dh]
    elif kind == "depthwise":
        args += [*tail, mult, case.fuse, nchw, dw, dh]
    else:
        dh = dw = 1
        oh = (h + pads[2] + pads[3] - kh) // sh + 1
        ow = (w + pads[0] + pads[1] - kw) // sw + 1
        args += [*tail, groups, case.fuse, False]
    op = {"conv": 3, "depthwise": 4, "grouped": 55}[kind]
    dims = (n, cout, oh, ow) if nchw else (n, oh, ow, cout)
    got = run(op, args, case.out(dims))
    if nchw:
        got = got.permute(0, 2, 3, 1)
    # independent accumulation: torch conv (NCHW, OIHW) of the centered integers in float64
    weight = case.w.permute(3, 0, 1, 2) if kind == "depthwise" else case.w.permute(0, 3, 1, 2)
    xc = F.pad(centered(case.x, case.zp_in).permute(0, 3, 1, 2), pads)
    conv_groups = cin if kind == "depthwise" else groups
    acc = F.conv2d(xc, centered(weight, case.zp_w), stride=(sh, sw), dilation=(dh, dw), groups=conv_groups)
    assert torch.equal(got, case.exact(acc.permute(0, 2, 3, 1)))
    real = F.conv2d(
        F.pad(deq(case.x, case.s_in, case.zp_in).permute(0, 3, 1, 2), pads),
        deq(weight, case.s_w, case.zp_w),
        case.b.to(torch.float64) * case.s_b,
        stride=(sh, sw),
        dilation=(dh, dw),
        groups=conv_groups,
    )
    case.check_float(got, real.permute(0, 2, 3, 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_transpose_conv_random(seed: int) -> None:
    g = torch.Generator().manual_seed(200 + seed)
    h, w, cin, cout = 3, 4, int(torch.randint(1, 4, (), generator=g)), 2
    kh, kw, sh, sw = 3, 2, int(torch.randint(1, 3, (), generator=g)), 2
    pads = [0, 1, 1, 0]  # l, r, t, b
    case = Case(seed, (1, h, w, cin), (cout, kh, kw, cin), cout, cin * kh * kw)
    oh, ow = (h - 1) * sh + kh - pads[2] - pads[3], (w - 1) * sw + kw - pads[0] - pads[1]
    got = run(91, [*case.tensors(), *pads, sw, sh, case.fuse, False], case.out((1, oh, ow, cout)))
    weight = case.w.permute(3, 0, 1, 2)  # [Cin, Cout, kh, kw]
    acc = F.conv_transpose2d(
        centered(case.x, case.zp_in).permute(0, 3, 1, 2), centered(weight, case.zp_w), stride=(sh, sw)
    )[:, :, pads[2] : pads[2] + oh, pads[0] : pads[0] + ow]
    assert torch.equal(got, case.exact(acc.permute(0, 2, 3, 1)))
    real = F.conv_transpose2d(
        deq(case.x, case.s_in, case.zp_in).permute(0, 3, 1, 2),
        deq(weight, case.s_w, case.zp_w),
        case.b.to(torch.float64) * case.s_b,
        stride=(sh, sw),
    )[:, :, pads[2] : pads[2] + oh, pads[0] : pads[0] + ow]
    case.check_float(got, real.permute(0, 2, 3, 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_fully_connected_random(seed: int) -> None:
    case = Case(300 + seed, (2, 3, 8), (5, 8), 5, 8)
    got = run(9, [*case.tensors(), case.fuse], case.out((6, 5)))
    xc, wc = centered(case.x.reshape(6, 8), case.zp_in), centered(case.w, case.zp_w)
    assert torch.equal(got, case.exact(xc @ wc.T))
    real = deq(case.x.reshape(6, 8), case.s_in, case.zp_in) @ deq(case.w, case.s_w, case.zp_w).T
    case.check_float(got, real + case.b.to(torch.float64) * case.s_b)


@pytest.mark.parametrize("seed", SEEDS)
def test_multiplier_above_one_uses_the_left_shift(seed: int) -> None:
    """FL3+ allows M >= 1: MBQM shifts left first. Small centered values keep results in range."""
    case = Case(400 + seed, (4, 3), (2, 3), 2, 3)
    g = torch.Generator().manual_seed(seed)
    lo, hi = (0, 255) if case.dtype == torch.uint8 else (-128, 127)
    case.x = (case.zp_in + torch.randint(-3, 4, (4, 3), generator=g)).clamp(lo, hi).to(case.dtype)
    case.w = (case.zp_w + torch.randint(-3, 4, (2, 3), generator=g)).to(case.dtype)
    case.b = torch.randint(-5, 6, (2,), generator=g, dtype=torch.int32)
    case.s_out = fp.f32(case.s_b / uniform(g, 1.0, 6.0))
    case.zp_out, case.fuse = (128, 0) if case.dtype == torch.uint8 else (0, 0)
    got = run(9, [*case.tensors(), case.fuse], case.out((4, 2)), level=3 if seed % 2 else 4)
    xc, wc = centered(case.x, case.zp_in), centered(case.w, case.zp_w)
    assert torch.equal(got, case.exact(xc @ wc.T))
    real = deq(case.x, case.s_in, case.zp_in) @ deq(case.w, case.s_w, case.zp_w).T
    case.check_float(got, real + case.b.to(torch.float64) * case.s_b)
