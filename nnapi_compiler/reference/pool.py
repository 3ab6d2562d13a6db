"""Pooling kernels: AVERAGE_POOL_2D, MAX_POOL_2D, L2_POOL_2D (float), explicit and implicit.

NNAPI pools ignore padding cells: an average divides by the number of in-bounds cells of its
window, a max never sees the padding. Padding is applied with F.pad (zeros for sums, -inf for
max) and the in-bounds count is the same window sum taken over a tensor of ones.
Quantized pools (output scale/zero point equal to the input's) work on the stored integers:
uint8 average = (sum + n/2) / n (TFLite uint8 AveragePool), int8 average = the sum divided by n
rounded half away from zero (reference_integer_ops::AveragePool), then the fuse clamp in the
integer domain. The sums are exact int64 sums; the reference's uint8 kernel accumulates in
uint16, which only differs for windows of more than 257 cells.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ir.codes import OpCode
from .common import check_rank, from_nchw, fuse, implicit_padding, to_nchw
from .fixedpoint import activation_range
from .registry import FLOAT_TYPES, QUANT8_TYPES, Bound, In, KernelCall, Sig, bound, kernel

AVG = 0
MAX = 1
L2 = 2


def _window_sum(x: torch.Tensor, kernel_hw: list[int], stride_hw: list[int], pads: list[int]) -> torch.Tensor:
    padded = F.pad(x, (pads[0], pads[1], pads[2], pads[3]))
    return F.avg_pool2d(
        padded, (kernel_hw[0], kernel_hw[1]), (stride_hw[0], stride_hw[1]), divisor_override=1
    )


def _check_pool_args(pads: list[int], strides: list[int], filter_wh: list[int]) -> None:
    fw, fh = filter_wh[0], filter_wh[1]
    if min(strides) < 1 or fw < 1 or fh < 1:
        raise ValueError(f"bad stride {strides} or filter {filter_wh}")
    if min(pads) < 0 or max(pads[0], pads[1]) >= fw or max(pads[2], pads[3]) >= fh:
        raise ValueError(f"padding {pads} must be >= 0 and smaller than the filter {filter_wh}")


def _windows(
    x: torch.Tensor, pads: list[int], strides: list[int], filter_wh: list[int], fill: float
) -> torch.Tensor:
    """[N, C, OH, OW, fh*fw] windows of int64 NCHW ``x`` padded with ``fill`` (an exact float)."""
    padded = F.pad(x, (pads[0], pads[1], pads[2], pads[3]), value=fill)
    w = padded.unfold(2, filter_wh[1], strides[1]).unfold(3, filter_wh[0], strides[0])
    return w.reshape(w.shape[0], w.shape[1], w.shape[2], w.shape[3], filter_wh[0] * filter_wh[1])


def quant_pool2d_nhwc(
    x: torch.Tensor,
    kind: int,
    pads: list[int],
    strides: list[int],
    filter_wh: list[int],
    lo: int,
    hi: int,
    nchw: bool,
) -> torch.Tensor:
    """AVG (kind 0) or MAX (kind 1) on uint8/int8 stored values; [lo, hi] is the fuse range."""
    check_rank(x, 4, "input")
    _check_pool_args(pads, strides, filter_wh)
    xin = to_nchw(x, nchw).to(torch.int64)
    if kind == 1:
        y = _windows(xin, pads, strides, filter_wh, -(2.0**40)).amax(dim=-1)
    elif kind == 0:
        total = _windows(xin, pads, strides, filter_wh, 0.0).sum(dim=-1)
        ones = torch.ones_like(xin[:1, :1])
        n = _windows(ones, pads, strides, filter_wh, 0.0).sum(dim=-1)
        half = torch.div(n, 2, rounding_mode="floor")
        if x.dtype == torch.uint8:  # sum >= 0: C division is floor division
            y = torch.div(total + half, n, rounding_mode="floor")
        else:
            signed = torch.where(total > 0, total + half, total - half)
            y = torch.div(signed, n, rounding_mode="trunc")
    else:
        raise ValueError("L2_POOL_2D has no quantized form")
    return from_nchw(torch.clamp(y, lo, hi).to(x.dtype), nchw)


def pool2d_nhwc(
    x: torch.Tensor,
    kind: int,
    pads: list[int],
    strides: list[int],
    filter_wh: list[int],
    fuse_code: int,
    nchw: bool,
) -> torch.Tensor:
    """Pool ``x``; ``pads`` = [left, right, top, bottom], ``strides``/``filter_wh`` = [w, h]."""
    check_rank(x, 4, "input")
    _check_pool_args(pads, strides, filter_wh)
    fw, fh = filter_wh[0], filter_wh[1]
    xin = to_nchw(x, nchw).float()
    k = [fh, fw]
    s = [strides[1], strides[0]]
    if kind == 1:  # MAX
        padded = F.pad(xin, (pads[0], pads[1], pads[2], pads[3]), value=float("-inf"))
        y = F.max_pool2d(padded, (fh, fw), (s[0], s[1]))
    else:
        count = _window_sum(torch.ones_like(xin[:1, :1]), k, s, pads)
        if kind == 0:  # AVG
            y = _window_sum(xin, k, s, pads) / count
        else:
            y = torch.sqrt(_window_sum(xin * xin, k, s, pads) / count)
    return from_nchw(fuse(y, fuse_code), nchw)


_KIND = {OpCode.AVERAGE_POOL_2D: AVG, OpCode.MAX_POOL_2D: MAX, OpCode.L2_POOL_2D: L2}


@kernel(
    OpCode.AVERAGE_POOL_2D,
    OpCode.MAX_POOL_2D,
    OpCode.L2_POOL_2D,
    inputs=[Sig("Tiiiiiiiia", 1, (("b", 3),)), Sig("Tpiiiia", 1, (("b", 3),))],
    rank=(4, 4),
    types=FLOAT_TYPES | QUANT8_TYPES,
    keeps_quant=True,
)
def _pool(call: KernelCall) -> Bound:
    x = call.tensor(0)
    if len(call.inputs) >= 10:
        pads = [call.int(1), call.int(2), call.int(3), call.int(4)]
        strides = [call.int(5), call.int(6)]
        filter_wh = [call.int(7), call.int(8)]
        fuse_code, nchw = call.int(9), call.flag(10)
    else:
        strides = [call.int(2), call.int(3)]
        filter_wh = [call.int(4), call.int(5)]
        fuse_code, nchw = call.int(6), call.flag(7)
        check_rank(x, 4, "input")
        h, w = (x.shape[2], x.shape[3]) if nchw else (x.shape[1], x.shape[2])
        left, right = implicit_padding(w, strides[0], filter_wh[0], 1, call.int(1))
        top, bottom = implicit_padding(h, strides[1], filter_wh[1], 1, call.int(1))
        pads = [left, right, top, bottom]
    if call.quantized:
        lo, hi = activation_range(fuse_code, call.output_descs[0])
        return bound(quant_pool2d_nhwc, In(0), _KIND[call.op], pads, strides, filter_wh, lo, hi, nchw)
    return bound(pool2d_nhwc, In(0), _KIND[call.op], pads, strides, filter_wh, fuse_code, nchw)
