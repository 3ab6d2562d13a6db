"""Upsample simplification: every interpolate form exact on the virtual device, at FL3 and FL4,
with the cheapest NNAPI form that is exact at the target."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnapi_compiler.passes.upsample import nnapi_map, torch_map

from .conftest import Fn, assert_close_scaled, run_compiled

CASES = {
    "bilinear-size": (lambda x: F.interpolate(x, size=(14, 27), mode="bilinear"), "resize_bilinear"),
    "bilinear-x2": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), "resize_bilinear"),
    "bilinear-align-x3": (
        lambda x: F.interpolate(x, scale_factor=3, mode="bilinear", align_corners=True),
        "resize_bilinear"),
    "bilinear-fractional": (lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear"),
                            "fully_connected"),
    "bilinear-recompute": (
        lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear", recompute_scale_factor=True),
        "resize_bilinear"),
    "bilinear-down": (lambda x: F.interpolate(x, size=(3, 4), mode="bilinear"), "resize_bilinear"),
    "upsampling-bilinear2d": (lambda x: nn.UpsamplingBilinear2d(scale_factor=2)(x), "resize_bilinear"),
    "nearest-fractional": (lambda x: F.interpolate(x, scale_factor=1.7), "gather"),
    "nearest-exact": (lambda x: F.interpolate(x, size=(10, 20), mode="nearest-exact"),
                      "resize_nearest_neighbor"),
    "nearest-down": (lambda x: F.interpolate(x, size=(5, 4)), "resize_nearest_neighbor"),
}


@pytest.mark.parametrize("target", ["android-10", "android-11"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_interpolate_exact(name: str, target: str) -> None:
    fn, fl4_form = CASES[name]
    torch.manual_seed(0)
    cm, got, ref = run_compiled(Fn(fn), torch.randn(2, 3, 7, 9), target=target)
    assert_close_scaled(got, ref)
    kinds = {op.mnemonic for op in cm.program.compute_ops()}
    if target == "android-11":
        assert fl4_form in kinds, kinds
    if "bilinear" in name and target == "android-10":
        # RESIZE_BILINEAR at FL3 has neither align_corners nor half-pixel centers.
        assert "resize_bilinear" not in kinds
        if name in ("bilinear-size", "bilinear-x2"):  # integer factors: GATHER + depthwise conv
            assert kinds == {"gather", "depthwise_conv_2d"}, kinds
            assert cm.stats["layout_conversions"] == 0
        else:
            assert "fully_connected" in kinds


@pytest.mark.parametrize("factor", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("size", [(5, 7), (6, 8)])
def test_integer_bilinear_at_fl3_is_gather_and_depthwise_conv(factor: int, size: tuple) -> None:
    """Nearest with edge replication (GATHER), then the polyphase kernel: no TRANSPOSE, and as
    close to eager as the matrix form (measured in docs/passes/simplify-upsample.md)."""
    class Up(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(self.conv(x), scale_factor=factor, mode="bilinear")

    cm, got, ref = run_compiled(Up(), torch.randn(1, 3, *size))
    assert_close_scaled(got, ref)
    assert cm.stats["layout_conversions"] == 0
    kinds = [op.mnemonic for op in cm.program.compute_ops()]
    assert kinds.count("gather") == 2 and "fully_connected" not in kinds, kinds
    assert kinds.count("depthwise_conv_2d") == (1 if factor <= 3 else 2), kinds  # 3x3 at most


def test_bilinear_polyphase_kernels() -> None:
    from nnapi_compiler.passes.upsample import _axis_plan, _box

    assert _box(2) == [0.25, 0.5, 0.25]
    assert _box(3) == [1 / 3] * 3
    assert _box(4) == [0.125, 0.25, 0.25, 0.25, 0.125]
    for s in (2, 3, 4, 7):
        for n in (1, 2, 5, 6):
            assert _axis_plan(n, torch_map("bilinear", n, n * s, False, float(s))) is not None
    # align_corners and fractional factors are not polyphase-periodic: the matrix form stays.
    assert _axis_plan(5, torch_map("bilinear", 5, 10, True, 2.0)) is None
    assert _axis_plan(6, torch_map("bilinear", 6, 10, False, None)) is None


def test_segmentation_style_head_has_no_transpose_at_fl3() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, stride=4, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(self.conv(x), size=x.shape[-2:], mode="bilinear")

    cm, got, ref = run_compiled(Head(), torch.randn(1, 3, 32, 40))
    assert_close_scaled(got, ref)
    assert cm.stats["layout_conversions"] == 0  # x4: the polyphase form (was 3 TRANSPOSEs)
    cm11, got, ref = run_compiled(Head(), torch.randn(1, 3, 32, 40), target="android-11")
    assert_close_scaled(got, ref)
    assert cm11.stats["layout_conversions"] == 0


def test_maps_agree_where_the_forms_are_equivalent() -> None:
    # Nearest x2 without flags is PyTorch's nearest x2.
    assert torch.equal(nnapi_map(False, 5, 10, False, False), torch_map("nearest", 5, 10, False, 2.0))
    # Half-pixel bilinear is PyTorch's align_corners=False bilinear.
    assert torch.allclose(nnapi_map(True, 7, 14, False, True),
                          torch_map("bilinear", 7, 14, False, None), rtol=1e-6, atol=0)
    # ... but not NNAPI's flag-less bilinear.
    assert not torch.allclose(nnapi_map(True, 7, 14, False, False),
                              torch_map("bilinear", 7, 14, False, None))
    # Rows of every bilinear map sum to one.
    m = torch_map("bilinear", 9, 23, False, None)
    assert torch.allclose(m.sum(1), torch.ones(23))


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 2, 5, 7)])
def test_adaptive_avg_pool_with_uneven_or_growing_windows(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    for fn in (lambda x: F.adaptive_avg_pool2d(x, (6, 3)), lambda x: F.interpolate(x, size=(3, 2),
                                                                                     mode="area")):
        cm, got, ref = run_compiled(Fn(fn), torch.randn(*shape))
        assert_close_scaled(got, ref)
        assert "fully_connected" in {op.mnemonic for op in cm.program.compute_ops()}
