"""Quantized CONV_2D / DEPTHWISE_CONV_2D / GROUPED_CONV_2D / TRANSPOSE_CONV_2D / FULLY_CONNECTED.

acc = sum((q_in - zp_in) * (q_w - zp_w)) + bias, then out = clamp(MBQM(acc, M) + zp_out, act)
with M = float32(in_scale * w_scale) / out_scale, as the reference computes it.

Exactness of the accumulation: centered values satisfy |q - zp| <= 255 for uint8 and int8, so a
product is at most 255 * 255 < 2^16 and a sum of K products (and every partial sum, in any
order) is below K * 2^16. float64 holds every integer below 2^53 exactly and IEEE multiply, add
and FMA of such integers are exact, so matmul / einsum in float64 (whatever blocking or order
BLAS picks) returns the exact integer whenever K < 2^37. ``_check_terms`` enforces that bound
(K = kh * kw * channels per group, or input_size for FULLY_CONNECTED). Patches are gathered with
``Tensor.unfold`` (data movement only), never with a fast-convolution algorithm.
The exact sum plus the int32 bias is reduced to int32 two's complement like the reference's int32
accumulator; that needs over 33,000 extreme terms, so it never happens in real models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ir.codes import OperandCode
from .common import from_nhwc, to_nhwc
from .fixedpoint import activation_range, f32, quantize_multiplier, requantize, wrap_int32
from .registry import QUANT8_CODES, CheckArgs, KernelCall


def _check_terms(k: int) -> None:
    if k >= 1 << 37:
        raise ValueError(f"{k} products per output exceed the exact float64 accumulation bound 2^37")


def conv_multiplier(in_scale: float, w_scale: float, out_scale: float) -> float:
    """M_real = in_scale * w_scale / out_scale; the scale product is a float32 product."""
    return f32(f32(in_scale) * f32(w_scale)) / f32(out_scale)


def check_conv_quant(args: CheckArgs) -> str | None:
    """Bias scale must match in_scale * w_scale (1e-6 relative); before FL3 QUANT8_ASYMM needs
    M_real < 1 (out_scale > in_scale * w_scale)."""
    x, w, b = args.inputs[0], args.inputs[1], args.inputs[2]
    if x.code not in QUANT8_CODES:
        return None
    product, bias_scale = f32(f32(x.scale) * f32(w.scale)), f32(b.scale)
    if abs(product - bias_scale) > 1e-6 * min(product, bias_scale):
        return f"bias scale {b.scale:g} must equal input scale * filter scale = {product:g}"
    m_real = conv_multiplier(x.scale, w.scale, args.outputs[0].scale)
    if args.level < 3 and x.code == OperandCode.TENSOR_QUANT8_ASYMM and m_real >= 1.0:
        return "before feature level 3 the output scale must exceed input scale * filter scale"
    return None


def conv_acc(
    xc: torch.Tensor,
    wc: torch.Tensor,
    pads: list[int],
    strides: list[int],
    dilations: list[int],
    groups: int,
) -> torch.Tensor:
    """Exact integer-valued float64 accumulator [N, OH, OW, Cout] of centered NHWC ``xc`` with
    centered filter ``wc`` [Cout, kh, kw, Cin/groups]; pads = [l, r, t, b], strides/dilations [w, h]."""
    n, _, _, c = xc.shape
    cout, kh, kw, cg = wc.shape
    if groups < 1 or c != cg * groups or cout % groups != 0:
        raise ValueError(f"filter {list(wc.shape)} does not fit {c} input channels in {groups} groups")
    if min(pads) < 0 or min(strides) < 1 or min(dilations) < 1:
        raise ValueError(f"bad padding {pads}, stride {strides} or dilation {dilations}")
    _check_terms(kh * kw * cg)
    xp = F.pad(xc, (0, 0, pads[0], pads[1], pads[2], pads[3]))
    ekh, ekw = (kh - 1) * dilations[1] + 1, (kw - 1) * dilations[0] + 1
    p = xp.unfold(1, ekh, strides[1]).unfold(2, ekw, strides[0])  # [N, OH, OW, C, ekh, ekw]
    p = p[..., :: dilations[1], :: dilations[0]]
    oh, ow = p.shape[1], p.shape[2]
    p = p.reshape(n, oh, ow, groups, cg, kh, kw)
    w = wc.reshape(groups, cout // groups, kh, kw, cg)
    return torch.einsum("nhwgcij,goijc->nhwgo", p, w).reshape(n, oh, ow, cout)


def transpose_conv_acc(
    xc: torch.Tensor, wc: torch.Tensor, pads: list[int], strides: list[int]
) -> torch.Tensor:
    """Exact accumulator of a transposed conv, filter [Cout, kh, kw, Cin]: every input pixel
    scatters x @ w[:, i, j, :]^T to output (h*sh - pad_t + i, w*sw - pad_l + j); a negative tail
    padding extends the output with zeros (bias only)."""
    n, h, w, cin = xc.shape
    cout, kh, kw, _ = wc.shape
    sw, sh = strides
    if pads[0] < 0 or pads[2] < 0 or min(strides) < 1:
        raise ValueError(f"bad transpose conv padding {pads} / stride {strides}")
    _check_terms(cin * kh * kw)
    full = torch.zeros(n, (h - 1) * sh + kh, (w - 1) * sw + kw, cout, dtype=torch.float64)
    for i in range(kh):
        for j in range(kw):
            full[:, i : i + (h - 1) * sh + 1 : sh, j : j + (w - 1) * sw + 1 : sw] += xc @ wc[:, i, j, :].T
    out_h = full.shape[1] - pads[2] - pads[3]
    out_w = full.shape[2] - pads[0] - pads[1]
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"transpose conv output size {out_h}x{out_w} is not positive")
    full = F.pad(full, (0, 0, 0, max(0, -pads[1]), 0, max(0, -pads[3])))
    return full[:, pads[2] : pads[2] + out_h, pads[0] : pads[0] + out_w]


def requant_params(call: KernelCall, fuse_code: int) -> tuple[int, int, int, int, int, int, int]:
    """(zp_in, zp_filter, multiplier, shift, zp_out, lo, hi): the static half of a quantized
    conv / FC, computed on the host from the operand descriptions."""
    x, w, out = call.input_descs[0], call.input_descs[1], call.output_descs[0]
    m, shift = quantize_multiplier(conv_multiplier(x.scale, w.scale, out.scale))
    lo, hi = activation_range(fuse_code, out)
    return x.zero_point, w.zero_point, m, shift, out.zero_point, lo, hi


def finish_acc(
    acc: torch.Tensor, bias: torch.Tensor, m: int, shift: int, zp_out: int, lo: int, hi: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Add the int32 bias and requantize the exact accumulator into the output's type."""
    b = bias.to(torch.int64)
    if b.dim() != 1 or b.shape[0] != acc.shape[-1]:
        raise ValueError(f"bias {list(b.shape)} does not match {acc.shape[-1]} output channels")
    total = wrap_int32(acc.to(torch.int64) + b)
    return requantize(total, m, shift, zp_out, lo, hi).to(dtype)


def quant_conv2d(
    x: torch.Tensor,
    filt: torch.Tensor,
    bias: torch.Tensor,
    pads: list[int],
    strides: list[int],
    dilations: list[int],
    groups: int,
    depthwise: bool,
    nchw: bool,
    q: tuple[int, int, int, int, int, int, int],
) -> torch.Tensor:
    """CONV_2D / GROUPED_CONV_2D (filter [Cout, kh, kw, Cin/groups]) and DEPTHWISE_CONV_2D
    (filter [1, kh, kw, Cout], run as a grouped conv); ``q`` from ``requant_params``."""
    zp_x, zp_w, m, shift, zp_out, lo, hi = q
    f = filt.permute(3, 1, 2, 0) if depthwise else filt
    xc = to_nhwc(x, nchw).to(torch.float64) - zp_x
    wc = f.to(torch.float64) - zp_w
    acc = conv_acc(xc, wc, pads, strides, dilations, groups)
    return from_nhwc(finish_acc(acc, bias, m, shift, zp_out, lo, hi, x.dtype), nchw)


def quant_transpose_conv2d(
    x: torch.Tensor,
    filt: torch.Tensor,
    bias: torch.Tensor,
    pads: list[int],
    strides: list[int],
    nchw: bool,
    q: tuple[int, int, int, int, int, int, int],
) -> torch.Tensor:
    zp_x, zp_w, m, shift, zp_out, lo, hi = q
    xc = to_nhwc(x, nchw).to(torch.float64) - zp_x
    wc = filt.to(torch.float64) - zp_w
    if wc.dim() != 4 or wc.shape[3] != xc.shape[3]:
        raise ValueError(f"filter {list(wc.shape)} does not match {xc.shape[3]} input channels")
    acc = transpose_conv_acc(xc, wc, pads, strides)
    return from_nhwc(finish_acc(acc, bias, m, shift, zp_out, lo, hi, x.dtype), nchw)


def quant_fully_connected(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, q: tuple[int, int, int, int, int, int, int]
) -> torch.Tensor:
    zp_x, zp_w, m, shift, zp_out, lo, hi = q
    if w.dim() != 2 or w.shape[1] == 0 or x.numel() % w.shape[1] != 0:
        raise ValueError(f"input {list(x.shape)} does not fit weights {list(w.shape)}")
    _check_terms(w.shape[1])
    xc = x.reshape(-1, w.shape[1]).to(torch.float64) - zp_x
    wc = w.to(torch.float64) - zp_w
    return finish_acc(xc @ wc.T, bias, m, shift, zp_out, lo, hi, x.dtype)
