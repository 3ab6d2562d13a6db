"""torchvision quantized zoo (qnnpack, eager-mode static quantization): each model compiles
entirely to NNAPI with no layout conversion, and >= 99% of outputs are within 2 quanta of eager.
The same models with per-channel (x86 qconfig) weights, converted to per-tensor, are held to
the same bound; their measured error is reported in docs/quantization.md."""

from __future__ import annotations

import warnings

import pytest
import torch

import nnapi_compiler as nc

from ..quant.helpers import output_scale
from .quant_models import QUANT_MODELS, build_quantized, quant_input

#: docs/quantization.md, measured: (NNAPI ops, max error in quanta) per (model, qconfig).
MEASURED = {
    ("mobilenet_v2", "qnnpack"): (66, 1), ("mobilenet_v3_large", "qnnpack"): (230, 2),
    ("resnet18", "qnnpack"): (33, 2), ("shufflenet_v2_x1_0", "qnnpack"): (119, 1),
    ("mobilenet_v2", "x86"): (66, 1), ("mobilenet_v3_large", "x86"): (230, 3),
    ("resnet18", "x86"): (33, 2), ("shufflenet_v2_x1_0", "x86"): (119, 1),
}


@pytest.mark.parametrize("qconfig", ["qnnpack", "x86"])
@pytest.mark.parametrize("name", QUANT_MODELS)
def test_quantized_model(name: str, qconfig: str) -> None:
    model, x = build_quantized(name, qconfig), quant_input()
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # per-channel conversion notices
        cm = nc.compile(model, (x,))
    assert all(op.mnemonic != "host" for op in cm.program.ops)
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    assert cm.stats["layout_conversions"] == 0
    with nc.virtual_device():
        got = cm(x)
    quanta = ((got - ref).abs() / output_scale(model, x)).flatten()
    within = (quanta <= 2 + 1e-4).float().mean().item()
    assert within >= 0.99, f"{name}/{qconfig}: {within:.4f} within 2 quanta, max {quanta.max():.1f}"
    ops, worst = MEASURED[(name, qconfig)]
    assert quanta.max().item() <= worst + 1e-4, f"{name}/{qconfig}: max error {quanta.max():.2f} quanta"
    assert cm.stats["nnapi_ops"] == ops
