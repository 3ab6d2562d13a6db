"""Convolution kernels: CONV_2D, DEPTHWISE_CONV_2D, GROUPED_CONV_2D, TRANSPOSE_CONV_2D.

NNAPI filters keep fixed layouts (CONV/GROUPED/TRANSPOSE [Cout,kh,kw,Cin'], DEPTHWISE
[1,kh,kw,Cout]); for float they are permuted to torch's layouts and the work is done by
torch.nn.functional on NCHW views in float32. Asymmetric explicit padding is applied with F.pad
(zeros), which is exactly NNAPI's "out-of-range positions count as zero". Quantized operands go
to the integer-exact kernels of ``quant_conv``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ir.codes import OpCode, OperandCode
from .common import (
    check_rank,
    from_nchw,
    fuse,
    implicit_padding,
    to_nchw,
    transpose_conv_padding,
)
from .quant_conv import check_conv_quant, quant_conv2d, quant_transpose_conv2d, requant_params
from .registry import FLOAT_TYPES, QUANT8_TYPES, Bound, In, KernelCall, Sig, bound, kernel

_LAYOUT_DILATION = (("b", 3), ("ii", 3))
_TYPES = FLOAT_TYPES | QUANT8_TYPES


def conv2d_nhwc(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    pads: list[int],
    strides: list[int],
    dilations: list[int],
    groups: int,
    fuse_code: int,
    nchw: bool,
) -> torch.Tensor:
    """Float 2-D convolution. ``weight`` is torch's [Cout, Cin/groups, kh, kw];
    ``pads`` = [left, right, top, bottom], ``strides``/``dilations`` = [w, h]."""
    check_rank(x, 4, "input")
    if min(pads) < 0:
        raise ValueError(f"negative padding {pads}")
    if min(strides) < 1 or min(dilations) < 1:
        raise ValueError(f"stride {strides} and dilation {dilations} must be >= 1")
    xin = F.pad(to_nchw(x, nchw).float(), (pads[0], pads[1], pads[2], pads[3]))
    xin = xin.clone(memory_format=torch.contiguous_format)
    # A permuted filter can look both contiguous and channels_last (size-1 dims); torch's conv
    # then picks a wrong kernel for some shapes. A fresh standard-strided copy is unambiguous.
    y = F.conv2d(
        xin,
        weight.float().clone(memory_format=torch.contiguous_format),
        bias.float(),
        stride=(strides[1], strides[0]),
        dilation=(dilations[1], dilations[0]),
        groups=groups,
    )
    return from_nchw(fuse(y, fuse_code), nchw)


def conv2d_nnapi(
    x: torch.Tensor,
    filt: torch.Tensor,
    bias: torch.Tensor,
    pads: list[int],
    strides: list[int],
    dilations: list[int],
    groups: int,
    depthwise: bool,
    fuse_code: int,
    nchw: bool,
) -> torch.Tensor:
    """Float CONV_2D / GROUPED_CONV_2D (filter [Cout, kh, kw, Cin/groups]) and DEPTHWISE_CONV_2D
    (filter [1, kh, kw, Cout]) on the NNAPI filter layout."""
    weight = filt.permute(3, 0, 1, 2) if depthwise else filt.permute(0, 3, 1, 2)
    return conv2d_nhwc(x, weight, bias, pads, strides, dilations, groups, fuse_code, nchw)


def _bind_conv(
    call: KernelCall,
    pads: list[int],
    strides: list[int],
    dilations: list[int],
    groups: int,
    depthwise: bool,
    fuse_code: int,
    nchw: bool,
) -> Bound:
    geometry = (pads, strides, dilations, groups, depthwise)
    if call.quantized:
        return bound(quant_conv2d, In(0), In(1), In(2), *geometry, nchw, requant_params(call, fuse_code))
    return bound(conv2d_nnapi, In(0), In(1), In(2), *geometry, fuse_code, nchw)


def _spatial(call: KernelCall, nchw: bool) -> tuple[int, int]:
    """(height, width) of input 0."""
    shape = call.tensor(0).shape
    return (shape[2], shape[3]) if nchw else (shape[1], shape[2])


def _resolve_pads(
    call: KernelCall, pad_code: int, nchw: bool, strides: list[int], dilations: list[int]
) -> list[int]:
    """Explicit [left, right, top, bottom] from an implicit padding code."""
    f = call.tensor(1).shape  # [*, kh, kw, *] for every conv filter layout
    h, w = _spatial(call, nchw)
    left, right = implicit_padding(w, strides[0], f[2], dilations[0], pad_code)
    top, bottom = implicit_padding(h, strides[1], f[1], dilations[1], pad_code)
    return [left, right, top, bottom]


def _conv_args(
    call: KernelCall, explicit: bool, extra: int
) -> tuple[list[int], list[int], list[int], int, int, bool]:
    """Parse the shared conv operand tail. ``extra`` = hyper-parameters between the strides and
    the fuse code (1 for depthwise multiplier / groups). Returns pads, strides, dilations, the
    extra value (or 0), fuse code and the layout flag."""
    base = 7 if explicit else 4  # index of stride_w
    strides = [call.int(base), call.int(base + 1)]
    extra_val = call.int(base + 2) if extra else 0
    fuse_at = base + 2 + extra
    nchw = call.flag(fuse_at + 1)
    dilations = [1, 1]
    if len(call.inputs) > fuse_at + 2:
        dilations = [call.int(fuse_at + 2), call.int(fuse_at + 3)]
    if explicit:
        pads = [call.int(3), call.int(4), call.int(5), call.int(6)]
    else:
        pads = _resolve_pads(call, call.int(3), nchw, strides, dilations)
    return pads, strides, dilations, extra_val, call.int(fuse_at), nchw


def _is_explicit(call: KernelCall, at: int, min_count: int) -> bool:
    n = len(call.inputs)
    return n >= min_count and call.input_descs[at].code == OperandCode.INT32


@kernel(
    OpCode.CONV_2D,
    inputs=[Sig("TTBiiiiiia", 1, _LAYOUT_DILATION), Sig("TTBpiia", 1, _LAYOUT_DILATION)],
    rank=(4, 4),
    types=_TYPES,
    check=check_conv_quant,
)
def _conv_2d(call: KernelCall) -> Bound:
    pads, strides, dil, _, fuse_code, nchw = _conv_args(call, _is_explicit(call, 7, 10), 0)
    return _bind_conv(call, pads, strides, dil, 1, False, fuse_code, nchw)


@kernel(
    OpCode.DEPTHWISE_CONV_2D,
    inputs=[Sig("TTBiiiiiiia", 1, _LAYOUT_DILATION), Sig("TTBpiiia", 1, _LAYOUT_DILATION)],
    rank=(4, 4),
    types=_TYPES,
    check=check_conv_quant,
)
def _depthwise_conv_2d(call: KernelCall) -> Bound:
    pads, strides, dil, mult, fuse_code, nchw = _conv_args(call, _is_explicit(call, 8, 11), 1)
    x, f = call.tensor(0), call.tensor(1)
    check_rank(x, 4, "input")
    c_in = x.shape[1] if nchw else x.shape[3]
    if f.dim() != 4 or f.shape[0] != 1 or f.shape[3] != c_in * mult:
        raise ValueError(
            f"depthwise filter {list(f.shape)} does not match {c_in} input channels x multiplier {mult}"
        )
    return _bind_conv(call, pads, strides, dil, c_in, True, fuse_code, nchw)  # Cin groups


@kernel(
    OpCode.GROUPED_CONV_2D,
    inputs=[Sig("TTBiiiiiiiab", 3), Sig("TTBpiiiab", 3)],
    rank=(4, 4),
    types=_TYPES,
    check=check_conv_quant,
)
def _grouped_conv_2d(call: KernelCall) -> Bound:
    pads, strides, dil, groups, fuse_code, nchw = _conv_args(call, len(call.inputs) == 12, 1)
    f = call.tensor(1)
    if groups < 1 or f.shape[0] % groups != 0:
        raise ValueError(f"{f.shape[0]} output channels not divisible by {groups} groups")
    return _bind_conv(call, pads, strides, dil, groups, False, fuse_code, nchw)


def transpose_conv2d_nhwc(
    x: torch.Tensor,
    filt: torch.Tensor,
    bias: torch.Tensor,
    pads: list[int],
    strides: list[int],
    fuse_code: int,
    nchw: bool,
) -> torch.Tensor:
    """Float transposed conv, NNAPI filter [Cout, kh, kw, Cin]; ``pads`` = [l, r, t, b] where
    the tails may be negative (the output then extends past the full result, bias only)."""
    check_rank(x, 4, "input")
    if pads[0] < 0 or pads[2] < 0 or min(strides) < 1:
        raise ValueError(f"bad transpose conv padding {pads} / stride {strides}")
    weight = filt.float().permute(3, 0, 1, 2).clone(memory_format=torch.contiguous_format)
    xin = to_nchw(x, nchw).float().clone(memory_format=torch.contiguous_format)  # see conv2d_nhwc
    full = F.conv_transpose2d(xin, weight, stride=(strides[1], strides[0]))
    h, w = x.shape[2:4] if nchw else x.shape[1:3]
    kh, kw = filt.shape[1], filt.shape[2]
    out_h = h * strides[1] + kh - strides[1] - pads[2] - pads[3]
    out_w = w * strides[0] + kw - strides[0] - pads[0] - pads[1]
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"transpose conv output size {out_h}x{out_w} is not positive")
    full = F.pad(full, (0, max(0, -pads[1]), 0, max(0, -pads[3])))
    y = full[:, :, pads[2] : pads[2] + out_h, pads[0] : pads[0] + out_w]
    y = y + bias.float().reshape(1, -1, 1, 1)
    return from_nchw(fuse(y, fuse_code), nchw)


@kernel(
    OpCode.TRANSPOSE_CONV_2D,
    inputs=[Sig("TTBiiiiiiab", 3), Sig("TTBIpiiab", 3)],
    rank=(4, 4),
    types=_TYPES,
    check=check_conv_quant,
)
def _transpose_conv_2d(call: KernelCall) -> Bound:
    if len(call.inputs) == 11:
        pads = [call.int(3), call.int(4), call.int(5), call.int(6)]
        strides = [call.int(7), call.int(8)]
        fuse_code, nchw = call.int(9), call.flag(10)
    else:
        out_shape = call.ints(3)
        if len(out_shape) != 4:
            raise ValueError(f"output shape operand must have 4 values, got {out_shape}")
        strides = [call.int(5), call.int(6)]
        fuse_code, nchw = call.int(7), call.flag(8)
        out_h, out_w = (out_shape[2], out_shape[3]) if nchw else (out_shape[1], out_shape[2])
        f = call.tensor(1).shape
        scheme = call.int(4)
        left, right = transpose_conv_padding(out_w, strides[0], f[2], scheme)
        top, bottom = transpose_conv_padding(out_h, strides[1], f[1], scheme)
        pads = [left, right, top, bottom]
    if call.quantized:
        q = requant_params(call, fuse_code)
        return bound(quant_transpose_conv2d, In(0), In(1), In(2), pads, strides, nchw, q)
    return bound(transpose_conv2d_nhwc, In(0), In(1), In(2), pads, strides, fuse_code, nchw)
