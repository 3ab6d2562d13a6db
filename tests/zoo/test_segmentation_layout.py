"""Segmentation models at Android 10 have no layout conversion, as at Android 11.

Their bilinear resizes (integer factors, align_corners=False) take the polyphase form (GATHER +
depthwise conv, passes/upsample.py) instead of the matrix form's three TRANSPOSEs each; the
Segformer decoder's token idioms are reshapes of NHWC storage (passes/layout.py). Random init;
the artifact runs on the virtual device and must match eager.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import assert_close_scaled, run_compiled
from tests.passes.test_token_layout import SegformerDecoder
from tests.zoo.seg_models import DeepLabV3Plus, PANLike


def _build(name: str) -> torch.nn.Module:
    if name == "deeplabv3+":
        return DeepLabV3Plus()
    if name == "pan":
        return PANLike()
    if name == "segformer":
        return SegformerDecoder()
    from torchvision.models import segmentation as seg

    fn = getattr(seg, name)
    kw = {"aux_loss": False} if name.startswith("deeplab") else {}
    return fn(weights=None, weights_backbone=None, **kw)


@pytest.mark.parametrize("name", ["deeplabv3+", "pan", "segformer", "lraspp_mobilenet_v3_large",
                                  "deeplabv3_mobilenet_v3_large"])
def test_segmentation_at_android_10_has_no_layout_conversion(name: str) -> None:
    model = _build(name).eval()
    cm, got, ref = run_compiled(model, torch.randn(1, 3, 64, 64), target="android-10")
    if isinstance(ref, dict):  # torchvision returns an OrderedDict, the artifact a dict
        got, ref = got["out"], ref["out"]
    assert_close_scaled(got, ref, rtol=1e-4, atol=1e-4)
    assert cm.stats["layout_conversions"] == 0, cm.stats
    assert cm.stats["segments"] == 1 and cm.stats["host_ops"] == 0, cm.stats
