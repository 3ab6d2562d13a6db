"""Models with control flow that neither torch.fx nor torch.export captures, torch.cond models,
and torchvision detectors with weights that give distinct, unsaturated detections."""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from tests.partition.models import stack


class DataDependent(nn.Module):
    """Two conv stacks, an ``if`` on tensor values, a loop counted by the input's shape, a
    ``cumsum`` (no NNAPI form), then a third conv stack."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = stack(3, 8), stack(8, 8)
        self.pos, self.neg = stack(8, 8), stack(8, 8)
        self.c = stack(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(self.a(x))
        if x.mean() > 0:  # noqa: SIM108 - a statement-level branch is what is being tested
            y = self.pos(y)
        else:
            y = self.neg(y) * 2.0
        for _ in range(x.shape[2] // 4):
            y = y + 0.25
        y = torch.cumsum(y, dim=1)
        return self.c(y)


class Nested(nn.Module):
    """Uncapturable control flow two levels down: opened up all the way."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = DataDependent()
        self.head = stack(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x)
        if y.sum() > 0:
            return self.head(y)
        return self.head(-y)


class Cond(nn.Module):
    """torch.cond between two compiled branches, after and before NNAPI stacks."""

    def __init__(self) -> None:
        super().__init__()
        self.a = stack(3, 8)
        self.t, self.f = stack(8, 8), stack(8, 8)
        self.c = stack(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        y = torch.cond(x.mean() > 0, lambda v: self.t(v), lambda v: self.f(v) * 2.0, (y,))
        return self.c(y)


def _randomize(model: nn.Module, seed: int) -> None:
    """He-initialised weights and random (frozen) BatchNorm statistics: torchvision's default
    init gives every box the same score, which would make any comparison a comparison of ties."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g)
                               * (2.0 / m.weight[0].numel()) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
            elif isinstance(m, FrozenBatchNorm2d | nn.BatchNorm2d):
                c = m.weight.shape[0]
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)
                m.running_mean.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)


def detector(name: str, seed: int = 0) -> nn.Module:
    """A torchvision detector (``weights=None``) with weights that give distinct detections."""
    kw: dict = {"weights": None, "weights_backbone": None}
    if name == "maskrcnn_resnet50_fpn":
        kw.update(min_size=320, max_size=320)
    model = getattr(torchvision.models.detection, name)(**kw).eval()
    _randomize(model, seed)
    if hasattr(model, "roi_heads"):  # small box deltas, unsaturated class scores
        with torch.no_grad():
            model.rpn.head.bbox_pred.weight.mul_(0.01)
            model.roi_heads.box_predictor.bbox_pred.weight.mul_(0.01)
            model.roi_heads.box_predictor.cls_score.weight.mul_(0.01)
    return model


def image(seed: int = 1) -> list[torch.Tensor]:
    return [torch.rand(3, 320, 320, generator=torch.Generator().manual_seed(seed))]
