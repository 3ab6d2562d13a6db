"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR with the reference's exact coordinate arithmetic.

Every coordinate is computed in float32 exactly as the AOSP kernel / TFLite reference do (scale =
float(in)/float(out) or (in-1)/(out-1) with align_corners; half-pixel offsets; roundf / floorf;
clamping), and bilinear blending keeps the reference's evaluation order, so float results are
bit-exact with it barring compiler FMA contraction. Quantized operands keep their scale/zero
point: uint8 bilinear is the generic float kernel whose result is cast to uint8 (truncation);
int8 bilinear is TFLite's int8 overload (10-bit fixed-point coordinates, 20-bit weights, rounded
half away) from the TFLite commit SEMANTICS.md cites; whether AOSP's copy has it is unsettled.
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode, OperandCode
from .common import check_rank, from_nhwc, round_half_away, to_nhwc
from .registry import FLOAT_TYPES, QUANT8_TYPES, Bound, CheckArgs, In, KernelCall, Sig, bound, kernel


def _f32(v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float32)


def resize_scale(in_size: int, out_size: int, align_corners: bool) -> torch.Tensor:
    """The float32 source/destination ratio of one axis."""
    if align_corners and out_size > 1:
        return _f32(float(in_size - 1)) / _f32(float(out_size - 1))
    return _f32(float(in_size)) / _f32(float(out_size))


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> torch.Tensor:
    scale = resize_scale(in_size, out_size, align_corners)
    o = torch.arange(out_size, dtype=torch.float32)
    src = (o + 0.5) * scale if half_pixel else o * scale
    idx = round_half_away(src) if align_corners else torch.floor(src)
    idx = torch.clamp_max(idx, in_size - 1)
    if half_pixel:
        idx = torch.clamp_min(idx, 0)
    return idx.long()


def bilinear_coords(
    in_size: int, out_size: int, align_corners: bool, half_pixel: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower index, upper index, float32 source coordinate minus lower index) per output."""
    scale = resize_scale(in_size, out_size, align_corners)
    o = torch.arange(out_size, dtype=torch.float32)
    src = (o + 0.5) * scale - 0.5 if half_pixel else o * scale
    lo = torch.clamp_min(torch.floor(src), 0)
    hi = torch.clamp_max(torch.ceil(src), in_size - 1)
    return lo.long(), hi.long(), src - lo


def _coords_10(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> list[torch.Tensor]:
    """TFLite int8 ResizeBilinear coordinates: (source * 1024, lower index, upper index); every
    division is C integer division (truncation toward zero)."""
    if align_corners and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = ((1 << 10) * in_size + out_size // 2) // out_size
    o = torch.arange(out_size, dtype=torch.int64)
    src = o * scale + scale // 2 - (1 << 9) if half_pixel else o * scale
    lo = torch.clamp_min(torch.div(src, 1 << 10, rounding_mode="trunc"), 0)
    hi = torch.clamp_max(torch.div(src + (1 << 10) - 1, 1 << 10, rounding_mode="trunc"), in_size - 1)
    return [src, lo, hi]


def bilinear_int8(
    v: torch.Tensor, out_h: int, out_w: int, align_corners: bool, half_pixel: bool
) -> torch.Tensor:
    """int8 NHWC bilinear resize in TFLite's fixed-point arithmetic."""
    iy, y0, y1 = _coords_10(v.shape[1], out_h, align_corners, half_pixel)
    ix, x0, x1 = _coords_10(v.shape[2], out_w, align_corners, half_pixel)
    f = v.to(torch.int64)
    top, bottom = f.index_select(1, y0), f.index_select(1, y1)
    v00, v01 = top.index_select(2, x0), top.index_select(2, x1)
    v10, v11 = bottom.index_select(2, x0), bottom.index_select(2, x1)
    dy = (iy - (y0 << 10)).reshape(1, -1, 1, 1)
    dx = (ix - (x0 << 10)).reshape(1, 1, -1, 1)
    one = 1 << 10
    out20 = v00 * (one - dy) * (one - dx) + v10 * dy * (one - dx) + v01 * (one - dy) * dx + v11 * dy * dx
    rounded = torch.where(out20 > 0, out20 + (1 << 19), out20 - (1 << 19))
    return torch.div(rounded, 1 << 20, rounding_mode="trunc").to(torch.int8)


def resize_nhwc(
    x: torch.Tensor,
    out_h: int,
    out_w: int,
    bilinear: bool,
    nchw: bool,
    align_corners: bool,
    half_pixel: bool,
) -> torch.Tensor:
    check_rank(x, 4, "input")
    if half_pixel and align_corners:
        raise ValueError("half_pixel_centers requires align_corners = false")
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"output size {out_h}x{out_w} must be positive")
    v = to_nhwc(x, nchw)
    in_h, in_w = v.shape[1], v.shape[2]
    if not bilinear:
        ys = nearest_indices(in_h, out_h, align_corners, half_pixel)
        xs = nearest_indices(in_w, out_w, align_corners, half_pixel)
        return from_nhwc(v.index_select(1, ys).index_select(2, xs), nchw)
    if v.dtype == torch.int8:
        return from_nhwc(bilinear_int8(v, out_h, out_w, align_corners, half_pixel), nchw)
    y0, y1, dy = bilinear_coords(in_h, out_h, align_corners, half_pixel)
    x0, x1, dx = bilinear_coords(in_w, out_w, align_corners, half_pixel)
    f = v.float()
    top, bottom = f.index_select(1, y0), f.index_select(1, y1)
    v00, v01 = top.index_select(2, x0), top.index_select(2, x1)
    v10, v11 = bottom.index_select(2, x0), bottom.index_select(2, x1)
    dy = dy.reshape(1, -1, 1, 1)
    dx = dx.reshape(1, 1, -1, 1)
    out = v00 * (1 - dy) * (1 - dx) + v10 * dy * (1 - dx) + v01 * (1 - dy) * dx + v11 * dy * dx
    if v.dtype == torch.uint8:  # static_cast<uint8_t>(float): truncation
        out = torch.clamp(torch.trunc(out), 0, 255).to(torch.uint8)
    return from_nhwc(out, nchw)


def resize_scaled_nhwc(
    x: torch.Tensor,
    scale_h: float,
    scale_w: float,
    bilinear: bool,
    nchw: bool,
    align_corners: bool,
    half_pixel: bool,
) -> torch.Tensor:
    """RESIZE "by scale": the output size floor(in * scale) in float32, taken at run time (a CPU
    path then serves every input size, as the NNAPI form does)."""
    check_rank(x, 4, "input")
    in_h, in_w = (x.shape[2], x.shape[3]) if nchw else (x.shape[1], x.shape[2])
    out_h = int(torch.floor(_f32(float(in_h)) * _f32(scale_h)))
    out_w = int(torch.floor(_f32(float(in_w)) * _f32(scale_w)))
    return resize_nhwc(x, out_h, out_w, bilinear, nchw, align_corners, half_pixel)


def output_size(call: KernelCall, nchw: bool) -> tuple[int, int]:
    """(out_h, out_w) from INT32 sizes, or floor(float(in) * scale) in float32 for scales."""
    x = call.tensor(0)
    check_rank(x, 4, "input")
    if call.input_descs[1].code == OperandCode.INT32:
        return call.int(2), call.int(1)
    in_h, in_w = (x.shape[2], x.shape[3]) if nchw else (x.shape[1], x.shape[2])
    out_h = torch.floor(_f32(in_h) * _f32(call.float(2)))
    out_w = torch.floor(_f32(in_w) * _f32(call.float(1)))
    return int(out_h), int(out_w)


def _flags_compatible(args: CheckArgs) -> str | None:
    if len(args.values) > 5 and args.values[4] and args.values[5]:
        return "half_pixel_centers requires align_corners = false"
    return None


MAX_RESULT_ELEMENTS = 1 << 29  # a bound any real driver would also refuse (2 GiB of float32)


def _run(call: KernelCall) -> Bound:
    nchw = call.flag(3)
    out_h, out_w = output_size(call, nchw)
    x = call.tensor(0)
    n, c = (x.shape[0], x.shape[1]) if nchw else (x.shape[0], x.shape[3])
    if out_h < 1 or out_w < 1 or n * c * out_h * out_w > MAX_RESULT_ELEMENTS:
        raise ValueError(f"resize to {out_h}x{out_w} is empty or too large")
    bilinear = call.op == OpCode.RESIZE_BILINEAR
    if call.input_descs[1].code != OperandCode.INT32:
        return bound(resize_scaled_nhwc, In(0), call.float(2), call.float(1), bilinear, nchw,
                     call.flag(4), call.flag(5))
    return bound(resize_nhwc, In(0), out_h, out_w, bilinear, nchw, call.flag(4), call.flag(5))


_FLAGS = (("b", 4), ("b", 4))


@kernel(
    OpCode.RESIZE_BILINEAR,
    rank=(4, 4),
    check=_flags_compatible,
    types=FLOAT_TYPES | QUANT8_TYPES,
    inputs=[Sig("Tii", 1, (("b", 3), *_FLAGS)), Sig("Tff", 3, (("b", 3), *_FLAGS))],
    keeps_quant=True,
)
def _resize_bilinear(call: KernelCall) -> Bound:
    return _run(call)


@kernel(
    OpCode.RESIZE_NEAREST_NEIGHBOR,
    rank=(4, 4),
    check=_flags_compatible,
    types=FLOAT_TYPES | QUANT8_TYPES,
    inputs=[Sig("Tiib", 3, _FLAGS), Sig("Tffb", 3, _FLAGS)],
    keeps_quant=True,
)
def _resize_nearest(call: KernelCall) -> Bound:
    return _run(call)
