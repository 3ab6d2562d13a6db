"""Every converter, in every spelling, eager vs compiled on the virtual device.

Spellings: module, functional, torch function, tensor method and in-place forms. Inputs use
odd spatial sizes and batch > 1; a channels_last copy of each image input is run too.
"""

from __future__ import annotations

import operator
import zlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ..conftest import Fn, assert_close_scaled, run_compiled

IMG = (2, 4, 7, 9)  # batch 2, odd H and W


def _bn() -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(4)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    return bn


def _prelu(n: int) -> nn.PReLU:
    p = nn.PReLU(n)
    p.weight.data.uniform_(-0.5, 0.5)
    return p


CASES: dict[str, tuple] = {
    # activations
    "relu-module": (lambda: nn.ReLU(), IMG),
    "relu-module-inplace": (lambda: nn.ReLU(inplace=True), IMG),
    "relu-F": (lambda: Fn(F.relu), IMG),
    "relu-F-inplace": (lambda: Fn(lambda x: F.relu(x * 1.0, inplace=True)), IMG),
    "relu-torch": (lambda: Fn(torch.relu), IMG),
    "relu-torch_": (lambda: Fn(lambda x: torch.relu_(x + 0)), IMG),
    "relu-method": (lambda: Fn(lambda x: x.relu()), IMG),
    "relu-method_": (lambda: Fn(lambda x: (x * 1).relu_()), IMG),
    "relu-inplace-rebinds": (lambda: Fn(lambda x: _mutate_then_use(x)), IMG),
    "relu6-module": (lambda: nn.ReLU6(), IMG),
    "relu6-F": (lambda: Fn(F.relu6), IMG),
    "hardtanh-default": (lambda: nn.Hardtanh(), IMG),
    "hardtanh-0-6": (lambda: Fn(lambda x: F.hardtanh(x, 0.0, 6.0)), IMG),
    "hardtanh-general": (lambda: nn.Hardtanh(-0.3, 0.7), IMG),
    "hardtanh-inplace": (lambda: Fn(lambda x: F.hardtanh_(x * 1, -2.0, 2.0)), IMG),
    "clamp-min-max": (lambda: Fn(lambda x: torch.clamp(x, -0.5, 0.5)), IMG),
    "clamp-min": (lambda: Fn(lambda x: x.clamp(min=0.1)), IMG),
    "clamp-max": (lambda: Fn(lambda x: x.clamp(max=0.2)), IMG),
    "clamp-relu": (lambda: Fn(lambda x: x.clamp(min=0)), IMG),
    "clip-inplace": (lambda: Fn(lambda x: (x * 1).clip_(-1, 1)), IMG),
    "sigmoid-module": (lambda: nn.Sigmoid(), IMG),
    "sigmoid-torch": (lambda: Fn(torch.sigmoid), IMG),
    "sigmoid-method_": (lambda: Fn(lambda x: (x * 1).sigmoid_()), IMG),
    "tanh-module": (lambda: nn.Tanh(), IMG),
    "tanh-F": (lambda: Fn(F.tanh), IMG),
    "tanh-method": (lambda: Fn(lambda x: x.tanh()), IMG),
    "hardswish-module": (lambda: nn.Hardswish(), IMG),
    "hardswish-F-inplace": (lambda: Fn(lambda x: F.hardswish(x * 3, inplace=True)), IMG),
    "hardsigmoid-module": (lambda: nn.Hardsigmoid(inplace=True), IMG),
    "hardsigmoid-F": (lambda: Fn(lambda x: F.hardsigmoid(x * 3)), IMG),
    "silu-module": (lambda: nn.SiLU(), IMG),
    "silu-F": (lambda: Fn(F.silu), IMG),
    "leaky-module": (lambda: nn.LeakyReLU(0.2), IMG),
    "leaky-F-inplace": (lambda: Fn(lambda x: F.leaky_relu(x * 1, 0.05, inplace=True)), IMG),
    "prelu-module-channels": (lambda: _prelu(4), IMG),
    "prelu-module-single": (lambda: _prelu(1), IMG),
    "prelu-F": (lambda: Fn(lambda x: F.prelu(x, torch.tensor([0.1, -0.2, 0.3, 0.4]))), IMG),
    "elu-module": (lambda: nn.ELU(0.7), IMG),
    "elu-F-inplace": (lambda: Fn(lambda x: F.elu(x * 1, inplace=True)), IMG),
    # conv family
    "conv-basic": (lambda: nn.Conv2d(4, 6, 3), IMG),
    "conv-stride-pad": (lambda: nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2)), IMG),
    "conv-same": (lambda: nn.Conv2d(4, 6, 4, padding="same"), IMG),
    "conv-valid-nobias": (lambda: nn.Conv2d(4, 6, 2, padding="valid", bias=False), IMG),
    "conv-dilation": (lambda: nn.Conv2d(4, 6, 3, dilation=2, padding=2), IMG),
    "conv-depthwise": (lambda: nn.Conv2d(4, 4, 3, groups=4, padding=1), IMG),
    "conv-depthwise-mult2-stride": (lambda: nn.Conv2d(4, 8, 3, groups=4, stride=2), IMG),
    "conv-depthwise-dilated": (lambda: nn.Conv2d(4, 4, 3, groups=4, dilation=2), IMG),
    "conv-grouped": (lambda: nn.Conv2d(4, 6, 3, groups=2, padding=1), IMG),
    "conv-F": (lambda: Fn(lambda x: F.conv2d(x, torch.ones(3, 4, 1, 1) * 0.1, stride=2)), IMG),
    "convT-basic": (lambda: nn.ConvTranspose2d(4, 3, 3), IMG),
    "convT-stride-pad-outpad": (
        lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), IMG),
    "convT-dilation": (lambda: nn.ConvTranspose2d(4, 3, 3, dilation=2), IMG),
    "linear": (lambda: nn.Linear(9, 5), (3, 9)),
    "linear-3d": (lambda: nn.Linear(9, 5), (2, 3, 9)),
    "linear-F-nobias": (lambda: Fn(lambda x: F.linear(x, torch.ones(2, 9))), (3, 9)),
    "batchnorm": (_bn, IMG),
    # pooling
    "maxpool": (lambda: nn.MaxPool2d(2), IMG),
    "maxpool-pad-stride": (lambda: nn.MaxPool2d(3, stride=2, padding=1), IMG),
    "maxpool-ceil": (lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True), IMG),
    "maxpool-ceil-pad": (lambda: nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True), IMG),
    "maxpool-F": (lambda: Fn(lambda x: F.max_pool2d(x, (2, 3), ceil_mode=True)), IMG),
    "avgpool": (lambda: nn.AvgPool2d(2), IMG),
    "avgpool-pad-include": (lambda: nn.AvgPool2d(3, stride=2, padding=1), IMG),
    "avgpool-pad-exclude": (lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), IMG),
    "avgpool-ceil-include": (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), IMG),
    "avgpool-ceil-exclude": (
        lambda: nn.AvgPool2d(2, 2, 1, ceil_mode=True, count_include_pad=False), IMG),
    "avgpool-F": (lambda: Fn(lambda x: F.avg_pool2d(x, 3, 1)), IMG),
    "adaptive-1": (lambda: nn.AdaptiveAvgPool2d(1), IMG),
    "adaptive-F-divisible": (lambda: Fn(lambda x: F.adaptive_avg_pool2d(x, (1, 3))), IMG),
    # shape ops
    "flatten-module": (lambda: nn.Flatten(), IMG),
    "flatten-torch": (lambda: Fn(lambda x: torch.flatten(x, 2)), IMG),
    "flatten-method": (lambda: Fn(lambda x: x.flatten(1, 2)), IMG),
    "view": (lambda: Fn(lambda x: x.view(2, -1)), IMG),
    "view-list": (lambda: Fn(lambda x: x.view([4, 2, 63])), IMG),
    "reshape": (lambda: Fn(lambda x: torch.reshape(x, (8, 63))), IMG),
    "permute": (lambda: Fn(lambda x: x.permute(0, 2, 3, 1)), IMG),
    "permute-torch": (lambda: Fn(lambda x: torch.permute(x, (3, 1, 0, 2))), IMG),
    "transpose": (lambda: Fn(lambda x: x.transpose(1, -1)), IMG),
    "contiguous": (lambda: Fn(lambda x: x.transpose(1, 2).contiguous() * 2), IMG),
    "squeeze-unsqueeze": (lambda: Fn(lambda x: x[:, :1].squeeze(1).unsqueeze(-1) + 1), IMG),
    "dropout-identity": (lambda: nn.Sequential(nn.Dropout(0.3), nn.Identity(), nn.ReLU()), IMG),
    "F-dropout-eval": (lambda: Fn(lambda x: F.dropout(x, 0.5, training=False).relu()), IMG),
    # arithmetic
    "add-tensor-broadcast": (lambda: Fn(lambda x: x + x[:, :, :1, :]), IMG),
    "add-scalar-left": (lambda: Fn(lambda x: 2.5 + x), IMG),
    "add-alpha": (lambda: Fn(lambda x: torch.add(x, x.relu(), alpha=0.5)), IMG),
    "iadd": (lambda: Fn(_iadd), IMG),
    "add-method_": (lambda: Fn(lambda x: (x * 1).add_(1.5)), IMG),
    "sub": (lambda: Fn(lambda x: x - x.mean(dim=1, keepdim=True)), IMG),
    "rsub": (lambda: Fn(lambda x: 1 - x), IMG),
    "sub-method": (lambda: Fn(lambda x: x.sub(0.5)), IMG),
    "mul": (lambda: Fn(lambda x: x * x.sigmoid()), IMG),
    "mul-scalar-left": (lambda: Fn(lambda x: 3 * x), IMG),
    "mul-const-tensor": (lambda: Fn(lambda x: x * torch.arange(9.0)), IMG),
    "div": (lambda: Fn(lambda x: x / (x.relu() + 1)), IMG),
    "div-scalar": (lambda: Fn(lambda x: x / 7), IMG),
    "rdiv": (lambda: Fn(lambda x: 2 / (x.relu() + 1)), IMG),
    "div-method_": (lambda: Fn(lambda x: (x * 1).div_(3.0)), IMG),
    "neg": (lambda: Fn(lambda x: -x), IMG),
    "cat": (lambda: Fn(lambda x: torch.cat([x, x * 2], dim=1)), IMG),
    "cat-neg-dim": (lambda: Fn(lambda x: torch.cat((x, x.relu(), x), -1)), IMG),
    "mean-keepdim": (lambda: Fn(lambda x: x.mean((2, 3), keepdim=True)), IMG),
    "mean-dim": (lambda: Fn(lambda x: torch.mean(x, dim=-1)), IMG),
    "mean-all": (lambda: Fn(lambda x: x.mean() + x), IMG),
    "mean-scalar-output": (lambda: Fn(lambda x: (x * 2).mean()), IMG),
    "softmax-module-dim1": (lambda: nn.Softmax(dim=1), IMG),
    "softmax-F-last": (lambda: Fn(lambda x: F.softmax(x, dim=-1)), IMG),
    "softmax-method-dim2": (lambda: Fn(lambda x: x.softmax(2)), IMG),
    "softmax-2d": (lambda: Fn(lambda x: torch.softmax(x, 0)), (3, 9)),
    "logsoftmax-module": (lambda: nn.LogSoftmax(dim=1), IMG),
    "logsoftmax-F": (lambda: Fn(lambda x: F.log_softmax(x, -1)), (3, 9)),
    # slicing and padding
    "slice-step": (lambda: Fn(lambda x: x[:, 1:4:2, ::3, 2:]), IMG),
    "slice-negative": (lambda: Fn(lambda x: x[..., -3:, :-2]), IMG),
    "slice-int-index": (lambda: Fn(lambda x: x[:, 2]), IMG),
    "slice-none": (lambda: Fn(lambda x: x[:, None, 1]), IMG),
    "narrow-select": (lambda: Fn(lambda x: x.narrow(3, 1, 4).select(1, -1)), IMG),
    "pad-zero": (lambda: Fn(lambda x: F.pad(x, (1, 2, 0, 3))), IMG),
    "pad-value": (lambda: Fn(lambda x: F.pad(x, (2, 2), value=-1.5)), IMG),
    "pad-channels": (lambda: Fn(lambda x: F.pad(x, (0, 0, 0, 0, 1, 1))), IMG),
    # shape arithmetic (static)
    "size-arith": (lambda: Fn(lambda x: x.view(x.size(0), x.shape[1] * x.size(2), -1)), IMG),
    "size-int-div": (lambda: Fn(lambda x: x[:, : x.shape[1] // 2]), IMG),
    # upsampling (nearest)
    "upsample-scale2": (lambda: nn.Upsample(scale_factor=2), IMG),
    "upsample-size": (lambda: Fn(lambda x: F.interpolate(x, size=(14, 27))), IMG),
    "upsample-nearest2d": (lambda: nn.UpsamplingNearest2d(scale_factor=3), IMG),
    "interpolate-scale": (lambda: Fn(lambda x: F.interpolate(x, scale_factor=(2, 3))), IMG),
}


def _mutate_then_use(x: torch.Tensor) -> torch.Tensor:
    y = x * 2
    y.relu_()  # the result is not used; y itself is mutated
    return y + 1


def _iadd(x: torch.Tensor) -> torch.Tensor:
    y = x * 2
    y += x
    return y


@pytest.mark.parametrize("name", sorted(CASES))
def test_converter(name: str, check) -> None:
    factory, shape = CASES[name]
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)  # hash() of a str changes per process
    model = factory().eval()
    check(model, torch.randn(*shape) * 3)


@pytest.mark.parametrize("name", ["conv-basic", "maxpool-ceil", "softmax-module-dim1",
                                  "slice-step", "cat", "upsample-scale2", "batchnorm"])
def test_channels_last_input(name: str) -> None:
    factory, shape = CASES[name]
    torch.manual_seed(0)
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
    _, got, ref = run_compiled(factory().eval(), x)
    assert_close_scaled(got, ref)


def test_operator_keys_registered() -> None:
    from nnapi_compiler.frontend.registry import REGISTRY

    for key in (operator.add, operator.iadd, operator.getitem, F.relu, "relu_", nn.ReLU):
        assert key in REGISTRY
