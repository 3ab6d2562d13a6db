"""Nearest-neighbour upsampling (F.interpolate, nn.Upsample, nn.UpsamplingNearest2d).

Lowered to RESIZE_NEAREST_NEIGHBOR only when NNAPI's source index for every output row and
column equals PyTorch's (both computed in float32, as the two kernels do); otherwise refused.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import image
from .activation import _aten


def _torch_nearest(out: int, size: int, scale: float | None) -> list[int]:
    """PyTorch's nearest source indices (aten compute_scales_value + nearest_idx)."""
    if out == size:
        return list(range(out))
    if out == 2 * size:
        return [o >> 1 for o in range(out)]
    s = torch.tensor(1.0 / scale if scale else size / out, dtype=torch.float32)
    idx = torch.floor(torch.arange(out, dtype=torch.float32) * s).long().clamp(max=size - 1)
    return idx.tolist()


def _nnapi_nearest(out: int, size: int) -> list[int]:
    """NNAPI's nearest source indices without align_corners/half_pixel_centers."""
    s = torch.tensor(size, dtype=torch.float32) / torch.tensor(out, dtype=torch.float32)
    idx = torch.floor(torch.arange(out, dtype=torch.float32) * s).long().clamp(max=size - 1)
    return idx.tolist()


def _upsample_module(m: nn.Upsample) -> dict[str, Any]:
    return {"size": m.size, "scale_factor": m.scale_factor, "mode": m.mode,
            "align_corners": m.align_corners,
            "recompute_scale_factor": getattr(m, "recompute_scale_factor", None)}


@converter(F.interpolate, F.upsample, F.upsample_nearest,
           sig=lambda input, size=None, scale_factor=None, mode="nearest", align_corners=None,
           recompute_scale_factor=None, antialias=False: None,
           modules={nn.Upsample: _upsample_module, nn.UpsamplingNearest2d: _upsample_module})
def interpolate(ctx: Ctx, a: dict) -> Any:
    x = image(a["input"])
    if a["mode"] != "nearest":
        raise Refuse(f"interpolate mode={a['mode']!r} is not supported yet (only 'nearest')")
    if a["antialias"]:
        raise Refuse("antialias has no NNAPI form")
    _, _, oh, ow = ctx.example.shape
    sf = a["scale_factor"]
    if sf is None or a["recompute_scale_factor"]:
        sh = sw = None
    else:
        sh, sw = (sf, sf) if isinstance(sf, int | float) else tuple(sf)
    return _nearest(ctx, x, oh, ow, sh, sw)


@converter(*_aten("upsample_nearest2d.vec"), sig=lambda input, output_size, scale_factors: None)
def upsample_nearest2d_vec(ctx: Ctx, a: dict) -> Any:
    x = image(a["input"])
    _, _, oh, ow = ctx.example.shape
    sh, sw = (None, None) if a["output_size"] is not None or not a["scale_factors"] \
        else tuple(a["scale_factors"])
    return _nearest(ctx, x, oh, ow, sh, sw)


@converter(*_aten("upsample_nearest2d.default"),
           sig=lambda input, output_size, scales_h=None, scales_w=None: None)
def upsample_nearest2d(ctx: Ctx, a: dict) -> Any:
    x = image(a["input"])
    _, _, oh, ow = ctx.example.shape
    return _nearest(ctx, x, oh, ow, a["scales_h"], a["scales_w"])


def _nearest(ctx: Ctx, x: Any, oh: int, ow: int, sh: float | None, sw: float | None) -> Any:
    _, _, h, w = x.type.shape
    if _torch_nearest(oh, h, sh) != _nnapi_nearest(oh, h) or \
            _torch_nearest(ow, w, sw) != _nnapi_nearest(ow, w):
        raise Refuse("this scale factor picks different source pixels in NNAPI than in PyTorch")
    if (oh, ow) == (h, w):
        return x
    return ctx.emit(ops.ResizeNearest, x=x, out_h=oh, out_w=ow)
