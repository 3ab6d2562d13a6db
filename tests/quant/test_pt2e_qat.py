"""Quantization-aware training through torchao's prepare_qat_pt2e with NnapiQuantizer(is_qat=True):
conv-BN-ReLU blocks are trained with fake quantization, BN folded by convert_pt2e, and the
compiled model matches the converted module within the issue's bar."""

from __future__ import annotations

import torch
from torch import nn
from torchao.quantization.pt2e import move_exported_model_to_eval
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

from nnapi_compiler.ir.codes import OperandCode
from nnapi_compiler.quantization import NnapiQuantizer

from .pt2e_helpers import quanta_error, within


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = torch.relu(y + self.branch(y))
        return self.head(nn.functional.adaptive_avg_pool2d(y, 1).flatten(1))


def test_qat_small_model() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    gm = torch.export.export(SmallNet().train(), (x,)).module()
    prepared = prepare_qat_pt2e(gm, NnapiQuantizer("android-10", is_qat=True))
    opt = torch.optim.SGD(prepared.parameters(), lr=0.05)
    target = torch.randn(2, 4, generator=torch.Generator().manual_seed(1))
    losses = []
    for step in range(8):
        batch = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(10 + step))
        loss = nn.functional.mse_loss(prepared(batch), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    move_exported_model_to_eval(prepared)
    converted = convert_pt2e(prepared)
    bn = [n for n in converted.graph.nodes if "batch_norm" in str(n.target)]
    assert not bn, "convert_pt2e folds BatchNorm into the convolutions"
    quanta, cm = quanta_error(converted, x, verify_each_pass=True)
    counts = {op.mnemonic for op in cm.program.compute_ops()}
    assert {"conv_2d", "depthwise_conv_2d", "add", "fully_connected"} <= counts
    conv = next(op for op in cm.program.compute_ops() if op.mnemonic == "conv_2d")
    assert conv.inputs()[0].type.code == OperandCode.TENSOR_QUANT8_ASYMM
    assert within(quanta) >= 0.99, f"max {quanta.max():.2f} quanta"
