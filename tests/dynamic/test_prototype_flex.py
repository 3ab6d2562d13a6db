"""Ports of the flexible-shape cases of torch's own NNAPI tests (test/test_nnapi.py, float).

The prototype (``torch.backends._nnapi``) marks a dynamic dim with a size-0 dim in the
conversion input; the same example compiles here, and the artifact then runs the prototype
test's real input and a second size, matching eager on the virtual device.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import nnapi_compiler as nc
from tests.conftest import assert_close_scaled


class SliceModule(nn.Module):
    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t[1:, 1:5:2, :]


class ToCPU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(x.to("cpu"))


class Detach(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.detach())


def _prelu4() -> nn.Module:
    m = nn.PReLU(4)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    return m


def _conv(in_ch: int, out_ch: int, k: int, stride: int, pad: int, groups: int, bias: bool) -> Any:
    return lambda: nn.Conv2d(in_ch, out_ch, k, stride, pad, groups=groups, bias=bias)


# (name, module factory, flexible example, [real inputs to run])
CASES = [
    ("prelu", _prelu4, (1, 4, 0, 0), [(1, 4, 3, 3), (1, 4, 7, 2)]),
    ("slice", SliceModule, (4, 6, 0), [(4, 6, 2), (4, 6, 9)]),
    ("softmax", lambda: nn.Softmax(dim=1), (0, 0), [(2, 2), (5, 3)]),
    ("to_cpu", ToCPU, (1, 2, 0, 0), [(1, 2, 3, 3), (1, 2, 5, 8)]),
    ("detach", Detach, (1, 2, 0, 0), [(1, 2, 3, 3), (1, 2, 4, 1)]),
    ("avg_pool_2", lambda: nn.AvgPool2d(2), (2, 3, 0, 0), [(2, 3, 12, 16), (2, 3, 9, 7)]),
    ("avg_pool_3x4", lambda: nn.AvgPool2d((3, 4)), (2, 3, 0, 0), [(2, 3, 12, 16), (2, 3, 10, 9)]),
    ("avg_pool_3x4_s12", lambda: nn.AvgPool2d((3, 4), (1, 2)), (2, 3, 0, 0),
     [(2, 3, 12, 16), (2, 3, 5, 11)]),
    ("upsample_size", lambda: nn.UpsamplingNearest2d(size=(24, 32)), (2, 3, 0, 0),
     [(2, 3, 12, 16), (2, 3, 7, 5)]),
    ("upsample_scale", lambda: nn.UpsamplingNearest2d(scale_factor=(2.0, 2.0)), (2, 3, 0, 0),
     [(2, 3, 12, 16), (2, 3, 7, 5)]),
    ("linear", lambda: nn.Linear(16, 32), (0, 16), [(2, 16), (7, 16)]),
    ("conv_3x3", _conv(4, 8, 3, 1, 0, 1, True), (0, 4, 0, 0), [(2, 4, 16, 16), (1, 4, 9, 13)]),
    ("conv_3x3_nobias", _conv(4, 8, 3, 1, 0, 1, False), (0, 4, 0, 0), [(2, 4, 16, 16), (3, 4, 5, 6)]),
    ("conv_3x3_p1", _conv(4, 16, 3, 1, 1, 1, True), (0, 4, 0, 0), [(2, 4, 16, 16), (1, 4, 3, 8)]),
    ("conv_3x3_s2", _conv(8, 8, 3, 2, 0, 1, True), (0, 8, 0, 0), [(2, 8, 16, 16), (1, 8, 17, 10)]),
    ("conv_5x5", _conv(4, 8, 5, 1, 0, 1, True), (0, 4, 0, 0), [(2, 4, 16, 16), (2, 4, 11, 20)]),
    ("conv_3x3_dw", _conv(4, 4, 3, 1, 0, 4, True), (0, 4, 0, 0), [(2, 4, 16, 16), (1, 4, 7, 7)]),
    ("conv_1x1", _conv(8, 4, 1, 1, 0, 1, True), (0, 8, 0, 0), [(2, 8, 16, 16), (4, 8, 3, 2)]),
    ("conv_transpose", lambda: nn.ConvTranspose2d(5, 7, 2), (4, 5, 0, 0),
     [(4, 5, 3, 3), (4, 5, 6, 2)]),
]


# The prototype's "-nhwc" variants: the same cases with channels_last inputs (4-d only).
NHWC = [(f"{c[0]}-nhwc", *c[1:], True) for c in CASES if len(c[2]) == 4]


@pytest.mark.parametrize("name, factory, flex, runs, nhwc",
                         [(*c, False) for c in CASES] + NHWC,
                         ids=[c[0] for c in CASES] + [c[0] for c in NHWC])
def test_prototype_flexible_case(name: str, factory: Any, flex: tuple, runs: list,
                                 nhwc: bool) -> None:
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    model = factory().eval()
    cm = nc.compile(model, (torch.zeros(flex).contiguous(memory_format=fmt),))
    with nc.virtual_device():
        for shape in runs:
            x = torch.randn(shape).contiguous(memory_format=fmt)
            with torch.no_grad():
                ref = model(x.clone())
            assert_close_scaled(cm(x.clone()), ref, rtol=1e-4, atol=2e-4)
