"""Bicubic F.interpolate: aten's per-axis cubic-convolution maps, applied as matrices on NNAPI.

The reference is F.interpolate in float64 (aten's own kernel, independent of our matrices).
Eager float32 is not a tight reference here: aten rounds each source coordinate to float32, so
its coefficients carry an error that grows with the axis length (about 1e-4 at 240 -> 224);
the compiled resize uses the float64 coefficients rounded once, and lands within float32 matmul
rounding of the exact result.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.passes.upsample import cubic_map

from .conftest import Fn, assert_close_scaled, compile_whole, in_dialect, run_compiled

EPS = torch.finfo(torch.float32).eps


def _aten_map(size: int, out: int, align: bool, dtype: torch.dtype,
              scale: float | None = None) -> torch.Tensor:
    """aten's [out, in] map for one axis, read off by resizing the identity (one channel per
    input row; the width of 1 stays 1, which bicubic leaves exactly as it is)."""
    e = torch.eye(size, dtype=dtype).reshape(1, size, size, 1)
    if scale is None:
        y = F.interpolate(e, size=(out, 1), mode="bicubic", align_corners=align)
    else:
        y = F.interpolate(e, scale_factor=(scale, 1.0), mode="bicubic", align_corners=align)
    return y[0, :, :, 0].T


SIZES = [(1, 3), (2, 5), (4, 8), (5, 3), (7, 13), (14, 28), (17, 40), (64, 59), (240, 224),
         (8, 1), (3, 1), (6, 6)]


@pytest.mark.parametrize("align", [False, True])
def test_cubic_map_is_atens_float64_kernel(align: bool) -> None:
    for size, out in SIZES:
        want = _aten_map(size, out, align, torch.float64)
        torch.testing.assert_close(cubic_map(size, out, align, None), want, rtol=0, atol=1e-13)
    for size in (4, 7, 10):  # a given scale factor is used as 1/scale (not in/out)
        for scale in (0.5, 1.5, 2.0, 2.5, 1 / 3, 1.05):
            want = _aten_map(size, 0, align, torch.float64, scale)
            got = cubic_map(size, want.shape[0], align, None if align else scale)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-13)


def test_cubic_map_shape_of_the_kernel() -> None:
    # Rows sum to one; the identity size is the identity exactly; x2 has the known taps.
    for size, out in SIZES:
        for align in (False, True):
            m = cubic_map(size, out, align, None)
            torch.testing.assert_close(m.sum(1), torch.ones(out, dtype=torch.float64))
    assert torch.equal(cubic_map(6, 6, False, None), torch.eye(6, dtype=torch.float64))
    # x2, align_corners=False: output 5 reads 2.25, so taps 1..4 weigh W(1.25), W(.25), W(.75), W(1.75)
    row = cubic_map(8, 16, False, None)[5, 1:5]
    torch.testing.assert_close(row, torch.tensor([-0.10546875, 0.87890625, 0.26171875, -0.03515625],
                                                 dtype=torch.float64), rtol=0, atol=0)


def test_atens_float32_coefficients_are_the_exact_ones_within_coordinate_rounding() -> None:
    """Why eager float32 is not the tight reference: its error scales with the axis length."""
    for size, out in SIZES:
        for align in (False, True):
            err = (_aten_map(size, out, align, torch.float32).double()
                   - cubic_map(size, out, align, None)).abs().max().item()
            assert err <= 2 * EPS * max(size, out), (size, out, align, err)


def _tight(got: torch.Tensor, x: torch.Tensor, size: tuple[int, int], align: bool,
           scale: float | None = None) -> float:
    """Max error of ``got`` against float64 F.interpolate, asserted within float32 matmul
    rounding: a few ulps of max|x| times the L1 norms of the two axis maps."""
    if scale is None:
        ref = F.interpolate(x.double(), size=size, mode="bicubic", align_corners=align)
    else:
        ref = F.interpolate(x.double(), scale_factor=scale, mode="bicubic", align_corners=align,
                            recompute_scale_factor=False)
    h, w = x.shape[-2:]
    oh, ow = ref.shape[-2:]
    gain = (cubic_map(h, oh, align, scale).abs().sum(1).max()
            * cubic_map(w, ow, align, scale).abs().sum(1).max()).item()
    err = (got.double() - ref).abs().max().item()
    assert err <= 4 * EPS * x.abs().max().item() * gain, err
    return err


CASES = {  # name: (input shape, output size or None, align_corners, scale_factor or None)
    "up-any": ((1, 3, 7, 9), (16, 21), False, None),
    "up-any-align": ((1, 3, 7, 9), (16, 21), True, None),
    "down-any": ((2, 3, 17, 23), (10, 9), False, None),
    "down-any-align": ((2, 3, 17, 23), (10, 9), True, None),
    "x2": ((1, 4, 8, 8), (16, 16), False, None),
    "one-axis-w": ((1, 2, 9, 12), (9, 5), False, None),
    "one-axis-h": ((1, 2, 9, 12), (20, 12), True, None),
    "scale-fractional": ((1, 3, 6, 7), None, False, 1.7),
    "scale-down": ((1, 3, 12, 10), None, False, 0.6),
}


def _fn(size: tuple[int, int] | None, align: bool, scale: float | None) -> nn.Module:
    if scale is not None:
        return Fn(lambda t: F.interpolate(t, scale_factor=scale, mode="bicubic", align_corners=align))
    return Fn(lambda t: F.interpolate(t, size=size, mode="bicubic", align_corners=align))


@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("target", ["android-10", "android-13"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_bicubic_whole_and_exact(name: str, target: str, dialect: str) -> None:
    shape, size, align, scale = CASES[name]
    x = torch.randn(*shape)
    cm = compile_whole(_fn(size, align, scale), x, dialect=dialect, target=target)
    with torch.no_grad(), nc.virtual_device():
        got = cm(x.clone())
    _tight(got, x, tuple(got.shape[-2:]) if scale is None else None, align, scale)
    kinds = [op.mnemonic for op in cm.program.compute_ops()]
    resized = sum(a != b for a, b in zip(shape[-2:], got.shape[-2:], strict=True))
    assert kinds.count("fully_connected") == resized, kinds  # one matrix per resized axis
    assert "resize_bilinear" not in kinds and "resize_nearest_neighbor" not in kinds


@pytest.mark.parametrize("dialect", ["fx", "export"])
def test_large_downscale_is_closer_to_exact_than_eager_float32(dialect: str) -> None:
    """crossvit's 240 -> 224 resize of the image: the compiled form is within float32 matmul
    rounding of float64 aten; eager float32 itself is farther (its coordinate rounding)."""
    x = torch.randn(1, 3, 240, 240)
    fn = in_dialect(_fn((224, 224), False, None), dialect)
    cm, got, ref32 = run_compiled(fn, x, target="android-10", cpu_fallback=False)
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    err = _tight(got, x, (224, 224), False)
    eager_err = (ref32.double() - F.interpolate(x.double(), size=(224, 224), mode="bicubic")
                 ).abs().max().item()
    assert err < eager_err / 10, (err, eager_err)


class PosEmbed(nn.Module):
    """A position-embedding parameter resized to the input's size, as ViTs do for new sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, 4, 5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = F.interpolate(self.pos, size=x.shape[-2:], mode="bicubic", align_corners=False)
        return x + pos


@pytest.mark.parametrize("dialect", ["fx", "export"])
def test_bicubic_of_a_constant_is_folded(dialect: str) -> None:
    x = torch.randn(1, 4, 12, 9)
    cm = compile_whole(PosEmbed(), x, dialect=dialect, target="android-10")
    kinds = [op.mnemonic for op in cm.program.compute_ops()]
    assert kinds == ["add"], kinds  # the resized embedding is a constant: the resize is free


def test_antialias_is_refused_to_host() -> None:
    fn = Fn(lambda t: F.interpolate(t, size=(4, 4), mode="bicubic", antialias=True))
    cm, got, ref = run_compiled(fn, torch.randn(1, 2, 9, 9))
    assert cm.stats["host_ops"] == 1
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("size", [(9, 5), (20, 12), (20, 5)])
def test_matrix_form_in_nchw_storage(size: tuple[int, int]) -> None:
    """Without layout-nhwc the resize stays NCHW: W is last, so a W-only map needs no TRANSPOSE."""
    from nnapi_compiler.passes.pipeline import DEFAULT_PIPELINE

    pipeline = DEFAULT_PIPELINE.replace("layout-nhwc,", "")
    assert pipeline != DEFAULT_PIPELINE
    x = torch.randn(1, 2, 9, 12)
    cm, got, ref = run_compiled(_fn(size, False, None), x, pipeline=pipeline, cpu_fallback=False)
    assert (cm.stats["segments"], cm.stats["host_ops"]) == (1, 0)
    _tight(got, x, size, False)
    assert_close_scaled(got, ref)
    kinds = [op.mnemonic for op in cm.program.compute_ops()]
    resized = [size[0] != 9, size[1] != 12]
    assert kinds.count("fully_connected") == sum(resized), kinds
    assert kinds.count("transpose") == (0 if resized == [False, True] else 2), kinds
