"""The PT2E-quantized zoo: torchvision and timm mobile nets, weights=None, randomized BatchNorm,
exported, quantized with NnapiQuantizer and calibrated on 4 seeded random batches."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from ..quant.pt2e_helpers import calib_batches, quantize_pt2e
from .models import randomize_batchnorm

# (name, target): mobilenet_v3_large at both levels (HARD_SWISH is integer from Android 11).
TORCHVISION = [("mobilenet_v2", "android-10"), ("resnet18", "android-10"),
               ("mobilenet_v3_large", "android-10"), ("mobilenet_v3_large", "android-11"),
               ("efficientnet_b0", "android-10"), ("shufflenet_v2_x1_0", "android-10")]
# Signed int8 activations (QUANT8_ASYMM_SIGNED), legal from Android 11.
SIGNED = ["mobilenet_v2", "mobilenet_v3_large"]
TIMM = ["mobilenetv3_large_100", "mobilenetv2_100", "efficientnet_lite0", "mnasnet_100"]
CI = {("mobilenet_v2", "android-10"), ("resnet18", "android-10")}
SIZE = 160


def build_float(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    if name in TIMM:
        import timm

        model = timm.create_model(name, pretrained=False)
        # timm's default init counts a depthwise filter's fan-out per group (sqrt(C) larger
        # weights than torchvision's): the random network then amplifies every 1-LSB rounding
        # difference layer after layer (mobilenetv2_100: 43% of outputs within 2 quanta with
        # timm's init, 100% within 1 with torchvision's). Use torchvision's init, as the zoo does.
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
    else:
        model = getattr(torchvision.models, name)(weights=None)
    randomize_batchnorm(model, seed)
    return model.eval()


def example(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def build_pt2e(name: str, target: str = "android-10", **qkw: object) -> torch.fx.GraphModule:
    return quantize_pt2e(build_float(name), example(), calib_batches((1, 3, SIZE, SIZE)),
                         target, **qkw)
