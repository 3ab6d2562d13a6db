"""Exact bilinear resizes at Android 10: the polyphase form against the matrix form.

For each segmentation model: NNAPI ops, layout conversions and the largest output difference
from eager (scaled by the output's magnitude), with ``simplify-upsample``'s polyphase form
(GATHER + depthwise conv, passes/upsample.py) and with the matrix form it replaced (two
FULLY_CONNECTED and three TRANSPOSE per resize), plus Android 11 for reference. Then single
resizes by factor s on odd and even sizes.
Run: ``python benchmarks/bilinear.py [--res 128]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnapi_compiler as nc
from nnapi_compiler.passes import upsample
from tests.passes.test_token_layout import SegformerDecoder
from tests.zoo.seg_models import DeepLabV3Plus, PANLike


def _models() -> dict[str, torch.nn.Module]:
    from torchvision.models import segmentation as seg

    return {
        "lraspp_mobilenet_v3_large": seg.lraspp_mobilenet_v3_large(weights=None,
                                                                    weights_backbone=None),
        "deeplabv3_mobilenet_v3_large": seg.deeplabv3_mobilenet_v3_large(
            weights=None, weights_backbone=None, aux_loss=False),
        "DeepLabV3+ (hand)": DeepLabV3Plus(),
        "PAN-like (hand)": PANLike(),
        "Segformer decoder (hand)": SegformerDecoder(),
    }


def _leaf(y: object) -> torch.Tensor:
    return y["out"] if isinstance(y, dict) else y  # type: ignore[return-value]


def measure(model: torch.nn.Module, x: torch.Tensor, target: str, matrix: bool) -> tuple:
    with torch.no_grad():
        ref = _leaf(model(x))
    with warnings.catch_warnings(), mock.patch.object(
            upsample, "_polyphase", (lambda *a: None) if matrix else upsample._polyphase):
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x,), target=target)
    with nc.virtual_device():
        got = _leaf(cm(x))
    err = (got - ref).abs().max().item() / max(1.0, ref.abs().max().item())
    return cm.stats["nnapi_ops"], cm.stats["layout_conversions"], err


class _Up(torch.nn.Module):
    def __init__(self, s: int) -> None:
        super().__init__()
        self.conv, self.s = torch.nn.Conv2d(8, 8, 1), s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=self.s, mode="bilinear")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(1, 3, args.res, args.res)
    print("| model | Android 10, polyphase: ops / conversions / error | Android 10, matrix form "
          "| Android 11 |")
    print("|---|---|---|---|")
    for name, model in _models().items():
        model.eval()
        cells = [measure(model, x, "android-10", False), measure(model, x, "android-10", True),
                 measure(model, x, "android-11", False)]
        print(f"| {name} | " + " | ".join(f"{o} / {c} / {e:.1e}" for o, c, e in cells) + " |")
    print()
    print("| factor | size | polyphase: ops / conversions / error | matrix form |")
    print("|---|---|---|---|")
    for s in (2, 3, 4, 8):
        for size in (7, 8):
            m = _Up(s).eval()
            xi = torch.randn(1, 8, size, size + 1)
            a, b = measure(m, xi, "android-10", False), measure(m, xi, "android-10", True)
            print(f"| {s} | {size}x{size + 1} | " + " | ".join(
                f"{o} / {c} / {e:.1e}" for o, c, e in (a, b)) + " |")


if __name__ == "__main__":
    main()
