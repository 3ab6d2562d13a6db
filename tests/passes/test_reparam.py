"""Structural reparameterization (passes/reparam.py): parallel branches summed become one conv.

Each block is compiled end to end and run on the virtual device against eager; the op count says
whether the branches merged. BatchNorm statistics are randomized so folding is exercised.
"""

from __future__ import annotations

import warnings

import pytest
import timm
import torch
from torch import nn

import nnapi_compiler as nc
from tests.conftest import assert_close_scaled, run_compiled


def _bn(c: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return bn


class RepBlock(nn.Module):
    """Parallel conv+BN branches (kernel sizes ``kernels``), an optional identity BN, summed."""

    def __init__(self, c: int, kernels: tuple, stride: int = 1, groups: int = 1,
                 identity: str | None = "bn", act: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleList()
        for k in kernels:
            kh, kw = (k, k) if isinstance(k, int) else k
            conv = nn.Conv2d(c, c, (kh, kw), stride, (kh // 2, kw // 2), groups=groups, bias=False)
            self.branches.append(nn.Sequential(conv, _bn(c)))
        self.identity = _bn(c) if identity == "bn" else None
        self.plain_identity = identity == "plain"
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.identity(x) if self.identity is not None else (x if self.plain_identity else 0)
        for b in self.branches:
            out = out + b(x)
        return self.act(out)


CASES = {
    "repvgg": dict(kernels=(3, 1)),
    "repvgg-stride2": dict(kernels=(3, 1), stride=2, identity=None),
    "mobileone-dw": dict(kernels=(3, 3, 3, 1), groups=8),
    "grouped": dict(kernels=(3, 1), groups=2),
    "acnet-asymmetric": dict(kernels=(3, (1, 3), (3, 1))),
    "5x5-3x3-plain-identity": dict(kernels=(5, 3), identity="plain", act=False),
    "dw-stride2-5x5": dict(kernels=(5, 1), stride=2, groups=8, identity=None),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("size", [9, 12])
def test_branches_become_one_conv(case: str, size: int) -> None:
    model = RepBlock(8, **CASES[case]).eval()
    cm, got, ref = run_compiled(model, torch.randn(1, 8, size, size))
    assert_close_scaled(got, ref)
    assert cm.stats["nnapi_ops"] == 1, cm.stats  # the conv, with the ReLU fused


class SharedBranch(nn.Module):
    """A branch whose conv result is also read elsewhere: it must stay a conv of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.a(x)
        return a + self.b(x), a


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(y)


class Dilated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(x)


@pytest.mark.parametrize("model", [SharedBranch(), TwoInputs(), Dilated()],
                         ids=["shared", "two-inputs", "dilated"])
def test_branches_that_cannot_merge_stay(model: nn.Module) -> None:
    inputs = [torch.randn(1, 4, 8, 8) for _ in range(2 if isinstance(model, TwoInputs) else 1)]
    cm, got, ref = run_compiled(model, *inputs)
    assert_close_scaled(got, ref)
    assert cm.stats["nnapi_ops"] == 3, cm.stats  # two convs and the ADD


def test_pass_can_be_left_out() -> None:
    from nnapi_compiler.passes.pipeline import DEFAULT_PIPELINE

    model = RepBlock(8, kernels=(3, 1)).eval()
    text = DEFAULT_PIPELINE.replace("reparameterize,", "")
    cm, got, ref = run_compiled(model, torch.randn(1, 8, 8, 8), pipeline=text)
    assert_close_scaled(got, ref)
    assert cm.stats["nnapi_ops"] > 1


@pytest.mark.parametrize("name", ["repvgg_a0", "mobileone_s0", "fastvit_t8"])
def test_timm_reparameterizable_models_match_timms_own_reparameterization(name: str) -> None:
    model = timm.create_model(name, pretrained=False).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 64, 64)
    cm, got, ref = run_compiled(model, x)
    assert_close_scaled(got, ref, rtol=1e-4, atol=1e-4)
    if name != "fastvit_t8":  # its GELUs may run as host code, depending on the converters
        assert cm.stats["segments"] == 1 and cm.stats["host_ops"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = nc.compile(timm.utils.reparameterize_model(model), (x,))
    assert cm.stats["nnapi_ops"] <= fused.stats["nnapi_ops"], (cm.stats, fused.stats)


class RepMixer(nn.Module):
    """FastViT's token mixer: ``x + gamma * (mixer(x) - norm(x))``, mixer a MobileOne block
    (depthwise conv + BN, 1x1 depthwise conv + BN, identity BN), norm an identity BN."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.mixer = RepBlock(c, kernels=(3, 1), groups=c, act=False)
        self.norm = _bn(c)
        self.gamma = nn.Parameter(torch.rand(c, 1, 1) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * (self.mixer(x) - self.norm(x))


def test_fastvit_repmixer_becomes_one_conv() -> None:
    cm, got, ref = run_compiled(RepMixer(8).eval(), torch.randn(1, 8, 7, 9))
    assert_close_scaled(got, ref)
    assert cm.stats["nnapi_ops"] == 1, cm.stats
