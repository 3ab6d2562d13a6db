"""The torchvision model zoo used by tests and benchmarks: seeded, eval mode, weights=None."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

CLASSIFICATION = ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "resnet50",
                  "squeezenet1_1", "shufflenet_v2_x1_0", "mnasnet1_0", "efficientnet_b0"]
SEGMENTATION = ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"]


def build(name: str, seed: int = 0) -> nn.Module:
    """``name`` from torchvision with seeded init and randomized BatchNorm statistics.

    Default init leaves BatchNorm as an identity and some nets' outputs near 1e-9, where any
    error bound scaled by max(1, |output|) would be meaningless; random statistics and affine
    parameters give outputs of order one, so the comparison has teeth.
    """
    torch.manual_seed(seed)
    if name in SEGMENTATION:
        model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None)
    else:
        model = getattr(torchvision.models, name)(weights=None)
    randomize_batchnorm(model, seed)
    return model.eval()


def randomize_batchnorm(model: nn.Module, seed: int) -> None:
    """Seeded random BatchNorm statistics and affine parameters (outputs of order one)."""
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)


def example_input(name: str, seed: int = 0) -> torch.Tensor:
    size = 224 if name in SEGMENTATION else 192
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
