"""Whole models per architecture family, eager vs virtual device, and the saved .ptl artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from ..conftest import assert_close_scaled, run_compiled


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(48, 64), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.net(x), dim=1)


def _vgg_block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True)]


class VGGish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_vgg_block(3, 8), *_vgg_block(8, 16), *_vgg_block(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Linear(16, 32), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(32, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2-style block: expand 1x1, depthwise 3x3, project 1x1, residual add."""

    def __init__(self, c: int, expand: int, stride: int) -> None:
        super().__init__()
        h = c * expand
        self.use_res = stride == 1
        self.block = nn.Sequential(
            nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(inplace=True),
            nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h),
            nn.Hardswish(inplace=True),
            nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res:
            out += x
        return out


class ResDepthwise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(True))
        self.blocks = nn.Sequential(InvertedResidual(8, 2, 1), InvertedResidual(8, 3, 2),
                                    InvertedResidual(8, 2, 1))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean([2, 3]))


def _init(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


MODELS = {"mlp": (MLP, (4, 3, 4, 4)), "vgg": (VGGish, (2, 3, 33, 31)),
          "resnet-depthwise": (ResDepthwise, (2, 3, 32, 30))}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("target", ["android-10", "android-11"])
def test_model_family(name: str, target: str, tmp_path: Path) -> None:
    cls, shape = MODELS[name]
    torch.manual_seed(1)
    x = torch.randn(*shape)
    cm, got, ref = run_compiled(_init(cls()), x, target=target)
    assert_close_scaled(got, ref)
    # The saved lite-interpreter file reloads and gives identical output on the device.
    path = cm.save(tmp_path / f"{name}.ptl")
    reloaded = _load_for_lite_interpreter(str(path))
    with nc.virtual_device():
        again = reloaded(x)
    assert torch.equal(again, got)


def test_channels_last_model_input() -> None:
    x = torch.randn(2, 3, 32, 30).contiguous(memory_format=torch.channels_last)
    _, got, ref = run_compiled(_init(ResDepthwise()), x)
    assert_close_scaled(got, ref)


def test_hardswish_legal_at_android_10_uses_no_fl4_op() -> None:
    cm = nc.compile(_init(ResDepthwise()), (torch.randn(1, 3, 16, 16),))
    codes = {op.code for op in cm.segment.flat.operations}
    assert 99 not in codes  # HARD_SWISH
    cm11 = nc.compile(_init(ResDepthwise()), (torch.randn(1, 3, 16, 16),), target="android-11")
    assert 99 in {op.code for op in cm11.segment.flat.operations}


def test_torch_jit_save_roundtrip(tmp_path: Path) -> None:
    x = torch.randn(4, 3, 4, 4)
    cm, got, _ = run_compiled(_init(MLP()), x)
    cm.script_module.segment0.release()
    torch.jit.save(cm.script_module, str(tmp_path / "m.pt"))
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    with nc.virtual_device():
        assert torch.equal(loaded(x), got)


def test_wrong_inputs_fail_before_nnapi() -> None:
    cm = nc.compile(_init(MLP()), (torch.randn(4, 3, 4, 4),))
    with nc.virtual_device():
        with pytest.raises(nc.InputError, match="dtype"):
            cm(torch.randn(4, 3, 4, 4, dtype=torch.float64))
        with pytest.raises(nc.InputError, match="shape"):
            cm(torch.randn(4, 3, 4))
        with pytest.raises(nc.InputError, match="expected 1 inputs"):
            cm(torch.randn(4, 3, 4, 4), torch.randn(1))
        # The artifact itself (what runs on the phone) checks too, before any NNAPI call.
        with pytest.raises(torch.jit.Error, match="must have shape"):
            cm.script_module(torch.randn(2, 3, 4, 4))


def test_outside_virtual_device_fails_cleanly() -> None:
    cm = nc.compile(_init(MLP()), (torch.randn(4, 3, 4, 4),), cpu_fallback=False)
    with pytest.raises(nc.NnapiRuntimeError):
        cm(torch.randn(4, 3, 4, 4))


def test_without_nnapi_the_cpu_path_matches_eager() -> None:
    model, x = _init(MLP()).eval(), torch.randn(4, 3, 4, 4)
    with torch.no_grad():
        ref = model(x)
    cm = nc.compile(model, (x,))
    with nc.virtual_device(available=False), pytest.warns(RuntimeWarning, match="on the CPU"):
        got = cm(x)
    assert_close_scaled(got, ref)


def test_conv_with_ambiguous_filter_strides_matches_eager() -> None:
    # Cin == 1, batch > 1, output width 1: a permuted filter looks channels_last to torch.
    torch.manual_seed(0)
    _, got, ref = run_compiled(nn.Conv2d(1, 2, (1, 2), (1, 2), (2, 1)), torch.randn(3, 1, 3, 1))
    assert_close_scaled(got, ref)


def test_damaged_ser_model_header_fails_cleanly() -> None:
    cm = nc.compile(_init(MLP()), (torch.randn(4, 3, 4, 4),), cpu_fallback=False)
    seg = cm.script_module.segment0
    seg.ser_model[1] = -5  # a negative operand count would crash PyTorch's own loader
    with nc.virtual_device(), pytest.raises(nc.NnapiRuntimeError, match="malformed ser_model"):
        cm(torch.randn(4, 3, 4, 4))
