"""Hand-written segmentation heads with the resizes real ones use (no library needed).

``DeepLabV3Plus``: a strided conv encoder, ASPP (dilated 3x3 branches and an image-pooling
branch upsampled back), the ASPP output upsampled x4 to the low-level features, concatenated,
fused, and upsampled x4 to the input. ``PANLike``: a feature-pyramid attention head that
upsamples x2 at every level, as segmentation-models-pytorch's PAN does, plus a final x4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class DeepLabV3Plus(nn.Module):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(_cbr(3, 16, stride=2), _cbr(16, 24, stride=2))  # /4
        self.deep = nn.Sequential(_cbr(24, 32, stride=2), _cbr(32, 48, stride=2))  # /16
        self.aspp = nn.ModuleList([_cbr(48, 32, 1), _cbr(48, 32, dilation=2),
                                   _cbr(48, 32, dilation=3)])
        self.pool = _cbr(48, 32, 1)
        self.project = _cbr(4 * 32, 32, 1)
        self.low = _cbr(24, 16, 1)
        self.fuse = _cbr(32 + 16, 32)
        self.cls = nn.Conv2d(32, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.stem(x)
        deep = self.deep(low)
        pooled = self.pool(F.adaptive_avg_pool2d(deep, 1))
        branches = [b(deep) for b in self.aspp]
        branches.append(F.interpolate(pooled, size=deep.shape[-2:], mode="bilinear",
                                      align_corners=False))
        y = self.project(torch.cat(branches, 1))
        y = F.interpolate(y, size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = self.fuse(torch.cat([y, self.low(low)], 1))
        return F.interpolate(self.cls(y), size=x.shape[-2:], mode="bilinear", align_corners=False)


class PANLike(nn.Module):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        chans = (16, 24, 32, 48)
        self.stages = nn.ModuleList()
        cin = 3
        for i, c in enumerate(chans):
            self.stages.append(_cbr(cin, c, stride=4 if i == 0 else 2))
            cin = c
        self.lateral = nn.ModuleList(_cbr(c, 32, 1) for c in chans)
        self.attn = nn.ModuleList(nn.Conv2d(32, 32, 1) for _ in chans[:-1])
        self.cls = nn.Conv2d(32, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        y = x
        for s in self.stages:
            y = s(y)
            feats.append(y)
        top = self.lateral[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            up = F.interpolate(top, scale_factor=2, mode="bilinear", align_corners=False)
            lat = self.lateral[i](feats[i])
            top = up + lat * torch.sigmoid(self.attn[i](up))
        return F.interpolate(self.cls(top), scale_factor=4, mode="bilinear", align_corners=False)
