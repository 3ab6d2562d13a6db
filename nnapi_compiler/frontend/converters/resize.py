"""Upsampling: F.interpolate / nn.Upsample / UpsamplingNearest2d / UpsamplingBilinear2d and the
ATen upsample ops (nearest, nearest-exact, bilinear, bicubic), all normalized to one canonical
Interpolate op with PyTorch's coordinate semantics (mode, align_corners, and the scale factors
PyTorch really uses). The simplify-upsample pass then picks the exact NNAPI form for the target.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import nn

from ...ir.ops.resize import Interpolate
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import image
from .activation import _aten

_MODES = {"nearest", "nearest-exact", "bilinear", "bicubic", "area"}


def _upsample_module(m: nn.Upsample) -> dict[str, Any]:
    return {"size": m.size, "scale_factor": m.scale_factor, "mode": m.mode,
            "align_corners": m.align_corners,
            "recompute_scale_factor": getattr(m, "recompute_scale_factor", None)}


def _scales(sf: Any) -> tuple[float | None, float | None]:
    if sf is None:
        return None, None
    if isinstance(sf, int | float):
        return float(sf), float(sf)
    return float(sf[0]), float(sf[1])


def interpolate_value(ctx: Ctx, x: Any, mode: str, align: bool | None,
                      scales: tuple[float | None, float | None]) -> Any:
    x = image(x)
    if mode not in _MODES:
        raise Refuse(f"interpolate mode={mode!r} is not supported (supported: "
                     f"{', '.join(sorted(_MODES))})")
    _, _, oh, ow = ctx.example.shape
    return ctx.emit(Interpolate, x=x, mode=mode, out_h=oh, out_w=ow, align_corners=bool(align),
                    scale_h=scales[0], scale_w=scales[1])


@converter(F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear,
           sig=lambda input, size=None, scale_factor=None, mode="nearest", align_corners=None,
           recompute_scale_factor=None, antialias=False: None,
           modules={nn.Upsample: _upsample_module, nn.UpsamplingNearest2d: _upsample_module,
                    nn.UpsamplingBilinear2d: _upsample_module})
def interpolate(ctx: Ctx, a: dict) -> Any:
    if a["antialias"]:
        raise Refuse("antialias has no NNAPI form")
    mode = a["mode"]
    if ctx.node is not None and ctx.node.target is F.upsample_bilinear:
        mode, a["align_corners"] = "bilinear", True  # upsample_bilinear always aligns corners
    if ctx.node is not None and ctx.node.op == "call_module" and \
            isinstance(ctx.module(), nn.UpsamplingBilinear2d):
        a["align_corners"] = True
    given = a["scale_factor"] is not None and not a["recompute_scale_factor"]
    return interpolate_value(ctx, a["input"], mode, a["align_corners"],
                             _scales(a["scale_factor"]) if given else (None, None))


@converter(*_aten("upsample_nearest2d.vec"), sig=lambda input, output_size, scale_factors: None)
def upsample_nearest2d_vec(ctx: Ctx, a: dict) -> Any:
    sc = _scales(a["scale_factors"]) if a["output_size"] is None else (None, None)
    return interpolate_value(ctx, a["input"], "nearest", False, sc)


@converter(*_aten("_upsample_nearest_exact2d.vec"),
           sig=lambda input, output_size, scale_factors: None)
def upsample_nearest_exact2d_vec(ctx: Ctx, a: dict) -> Any:
    sc = _scales(a["scale_factors"]) if a["output_size"] is None else (None, None)
    return interpolate_value(ctx, a["input"], "nearest-exact", False, sc)


@converter(*_aten("upsample_bilinear2d.vec"),
           sig=lambda input, output_size, align_corners, scale_factors: None)
def upsample_bilinear2d_vec(ctx: Ctx, a: dict) -> Any:
    sc = _scales(a["scale_factors"]) if a["output_size"] is None else (None, None)
    return interpolate_value(ctx, a["input"], "bilinear", a["align_corners"], sc)


@converter(*_aten("upsample_nearest2d.default"),
           sig=lambda input, output_size, scales_h=None, scales_w=None: None)
def upsample_nearest2d(ctx: Ctx, a: dict) -> Any:
    return interpolate_value(ctx, a["input"], "nearest", False, (a["scales_h"], a["scales_w"]))


@converter(*_aten("upsample_bilinear2d.default"),
           sig=lambda input, output_size, align_corners, scales_h=None, scales_w=None: None)
def upsample_bilinear2d(ctx: Ctx, a: dict) -> Any:
    return interpolate_value(ctx, a["input"], "bilinear", a["align_corners"],
                             (a["scales_h"], a["scales_w"]))


@converter(*_aten("upsample_bicubic2d.vec"),
           sig=lambda input, output_size, align_corners, scale_factors: None)
def upsample_bicubic2d_vec(ctx: Ctx, a: dict) -> Any:
    sc = _scales(a["scale_factors"]) if a["output_size"] is None else (None, None)
    return interpolate_value(ctx, a["input"], "bicubic", a["align_corners"], sc)


@converter(*_aten("upsample_bicubic2d.default"),
           sig=lambda input, output_size, align_corners, scales_h=None, scales_w=None: None)
def upsample_bicubic2d(ctx: Ctx, a: dict) -> Any:
    return interpolate_value(ctx, a["input"], "bicubic", a["align_corners"],
                             (a["scales_h"], a["scales_w"]))
