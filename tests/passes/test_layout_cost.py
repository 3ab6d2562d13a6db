"""Layout cost model (passes/layout.py): NHWC only for image regions that hold a spatial op, and
outputs in the memory format eager returns (channels_last only when the input was)."""

from __future__ import annotations

import torch
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.api import Options, lower_and_partition
from nnapi_compiler.ir.types import DimOrder
from tests.conftest import assert_close_scaled, run_compiled


class AddConst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.arange(3.0).reshape(1, 3, 1, 1)


class Elementwise(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * y - 0.5


class TwoRegions(nn.Module):
    """A conv on ``x`` (NHWC pays) and, apart from it, elementwise work on ``y`` (it does not)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.relu(self.conv(x)), y * 2.0 + 1.0


class Residual(nn.Module):
    """``conv(x) + y``: ``y`` joins the conv's region, so it is taken NHWC on the host."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + y


def _orders(model: nn.Module, *inputs: torch.Tensor) -> list[DimOrder]:
    low = lower_and_partition(model.eval(), inputs, Options())
    return [v.type.dim_order for v in low.program.inputs]


def _transposes(cm: nc.CompiledModel) -> int:
    return cm.stats["layout_conversions"]


def test_no_spatial_op_stays_nchw_and_costs_nothing() -> None:
    x = torch.randn(1, 3, 4, 5)
    cm, got, ref = run_compiled(AddConst(), x)
    assert_close_scaled(got, ref)
    assert cm.stats["nnapi_ops"] == 1 and _transposes(cm) == 0
    assert got.is_contiguous()
    assert _orders(AddConst(), x) == [DimOrder.CONTIGUOUS]


def test_elementwise_graph_of_two_images_stays_nchw() -> None:
    x, y = torch.randn(1, 3, 4, 5), torch.randn(1, 3, 4, 5)
    cm, got, ref = run_compiled(Elementwise(), x, y)
    assert_close_scaled(got, ref)
    assert _transposes(cm) == 0 and got.is_contiguous()
    assert _orders(Elementwise(), x, y) == [DimOrder.CONTIGUOUS, DimOrder.CONTIGUOUS]


def test_each_region_chooses_on_its_own() -> None:
    x, y = torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6)
    cm, got, ref = run_compiled(TwoRegions(), x, y)
    assert_close_scaled(got, ref)
    assert _transposes(cm) == 0
    assert _orders(TwoRegions(), x, y) == [DimOrder.NHWC, DimOrder.CONTIGUOUS]
    assert got[0].is_contiguous() and got[1].is_contiguous()


def test_an_input_added_to_a_conv_result_joins_its_region() -> None:
    x, y = torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6)
    cm, got, ref = run_compiled(Residual(), x, y)
    assert_close_scaled(got, ref)
    assert _transposes(cm) == 0
    assert _orders(Residual(), x, y) == [DimOrder.NHWC, DimOrder.NHWC]


def test_outputs_in_eager_memory_format() -> None:

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    cm = nc.compile(model, (x,))
    assert _transposes(cm) == 0
    xcl = x.to(memory_format=torch.channels_last)
    with nc.virtual_device():
        got, got_cl = cm(x), cm(xcl)
    with torch.no_grad():
        ref, ref_cl = model(x), model(xcl)
    assert_close_scaled(got, ref)
    assert_close_scaled(got_cl, ref_cl)
    assert ref.is_contiguous() and got.is_contiguous()
    assert ref_cl.is_contiguous(memory_format=torch.channels_last)
    assert got_cl.is_contiguous(memory_format=torch.channels_last)
