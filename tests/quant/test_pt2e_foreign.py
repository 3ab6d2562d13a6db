"""Graphs quantized by another quantizer compile too: torchao's X86InductorQuantizer gives
per-channel int8 weights (converted to per-tensor with a warning naming the layer and the
weight error) and leaves the final linear layer in float (SQNR >= 30 dB against the reference)."""

from __future__ import annotations

import warnings

import torch
import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
from torch import nn

import nnapi_compiler as nc

from .pt2e_helpers import calib_batches, quantize_pt2e, sqnr_db

X = (1, 3, 14, 14)


def test_x86_inductor_quantizer_per_channel_weights() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(200, 10))
    x = torch.randn(*X)
    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    converted = quantize_pt2e(model, x, calib_batches(X), quantizer=quantizer)
    assert any("dequantize_per_channel" in str(n.target) for n in converted.graph.nodes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cm = nc.compile(converted, (x,), verify_each_pass=True)
    notes = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert len(notes) == 2 and all("per-channel weights requantized" in m for m in notes), notes
    assert notes[0].startswith("conv2d") and "max weight error" in notes[0]
    ops = [op.mnemonic for op in cm.program.compute_ops()]
    assert ops.count("conv_2d") == 1 and ops.count("depthwise_conv_2d") == 1
    with torch.no_grad():
        ref = converted(x)
    with nc.virtual_device():
        got = cm(x)
    assert sqnr_db(got, ref) >= 30
