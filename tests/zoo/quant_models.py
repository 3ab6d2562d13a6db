"""torchvision.models.quantization zoo: weights=None, fused, calibrated on seeded random data,
converted with qnnpack (per-tensor by default, per-channel with ``qconfig="x86"``)."""

from __future__ import annotations

import torch
import torch.ao.quantization as tq
import torchvision.models.quantization as qm
from torch import nn

from .models import randomize_batchnorm

QUANT_MODELS = ["mobilenet_v2", "mobilenet_v3_large", "resnet18", "shufflenet_v2_x1_0"]


def build_quantized(name: str, qconfig: str = "qnnpack", size: int = 160, seed: int = 0) -> nn.Module:
    torch.backends.quantized.engine = "qnnpack"
    torch.manual_seed(seed)
    model = getattr(qm, name)(weights=None, quantize=False).eval()
    randomize_batchnorm(model, seed)
    model.fuse_model(is_qat=False)
    model.qconfig = tq.get_default_qconfig(qconfig)
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        for i in range(4):
            model(torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(100 + i)))
    tq.convert(model, inplace=True)
    return model


def quant_input(size: int = 160, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
