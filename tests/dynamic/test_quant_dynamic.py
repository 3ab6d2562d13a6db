"""Quantized models with dynamic dims (issue 9): eager-mode (qnnpack, QuantStub/DeQuantStub) and
PT2E. One artifact runs several sizes on the virtual device: bit-exact with a static compile at
each size, and within tests/quant's quanta conventions of the eager reference."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
import torch.ao.nn.quantized as nnq
import torch.ao.quantization as tq
from torch import nn
from torch.export import Dim

import nnapi_compiler as nc
from nnapi_compiler.errors import ConversionError
from tests.quant.helpers import Wrapped, output_scale, quantize_model


def quanta(cm: nc.CompiledModel, model: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
    """|compiled - eager| per output, in quanta; the NNAPI path only (never a silent CPU run)."""
    with torch.no_grad():
        ref = model(x.clone())
    with nc.virtual_device(), warnings.catch_warnings():
        warnings.filterwarnings("error", message="NNAPI is unavailable")
        got = cm(x.clone())
    assert got.shape == ref.shape
    return ((got - ref).abs() / scale).flatten()


def same_as_static(cm: nc.CompiledModel, model: Any, x: torch.Tensor) -> None:
    """The dynamic artifact computes exactly what a compile at ``x``'s shape computes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        static = nc.compile(model, (x,))
    with nc.virtual_device():
        assert torch.equal(cm(x.clone()), static(x.clone()))


class QNet(nn.Module):
    """Fully convolutional, eager-quantized: strided conv, fused ReLU, max pooling, a
    QFunctional skip add."""

    def __init__(self) -> None:
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.r1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.skip = nnq.FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.r1(self.c1(self.quant(x))))
        return self.dequant(self.skip.add(self.c2(y), y))


def _fuse(m: nn.Module) -> None:
    tq.fuse_modules(m, [["c1", "r1"]], inplace=True)


def test_eager_quantized_dynamic_batch_and_hw() -> None:
    torch.manual_seed(0)
    model = quantize_model(QNet(), [torch.randn(2, 3, 16, 16) for _ in range(4)], _fuse)
    spec = ({0: Dim("n", max=8), 2: Dim("h", min=4, max=64), 3: Dim("w", min=4, max=64)},)
    cm = nc.compile(model, (torch.randn(2, 3, 16, 16),), dynamic_shapes=spec)
    assert (cm.stats["segments"], cm.stats["host_ops"], cm.stats["cpu_segments"]) == (1, 0, 0)
    for shape in ((2, 3, 16, 16), (1, 3, 9, 13), (5, 3, 31, 4), (8, 3, 64, 33)):
        x = torch.randn(shape)
        err = quanta(cm, model, x, output_scale(model, x))
        # tests/quant: a QFunctional add is at most one quantum off on at most 25% of outputs
        assert err.max().item() <= 1 + 1e-4 and (err > 0.5).float().mean().item() <= 0.25
        same_as_static(cm, model, x)
    with nc.virtual_device(), pytest.raises(nc.InputError,
                                            match=r"outside its dynamic range \(h in \[4, 64\]\)"):
        cm(torch.randn(1, 3, 65, 16))


class QClassifier(nn.Module):
    """A quantized flatten + linear with a dynamic batch: ``reshape(x.size(0), -1)`` (the size is
    read at run time, so the reshape runs on the CPU, as for a float model) or ``flatten``."""

    def __init__(self, flat: bool) -> None:
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.fc, self.flat = nn.Linear(48, 5), flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.quant(x)
        y = torch.flatten(y, 1) if self.flat else y.reshape(y.size(0), -1)
        return self.dequant(self.fc(y))


@pytest.mark.parametrize("flat", [False, True], ids=["reshape-size", "flatten"])
def test_eager_quantized_flatten_linear_and_saved_ptl(flat: bool, tmp_path: Any) -> None:
    from torch.jit.mobile import _load_for_lite_interpreter

    torch.manual_seed(0)
    model = quantize_model(QClassifier(flat), [torch.randn(4, 3, 4, 4) for _ in range(4)])
    cm = nc.compile(model, (torch.randn(3, 3, 4, 4),), dynamic_shapes=({0: Dim("b", max=16)},))
    if flat:
        assert (cm.stats["segments"], cm.stats["host_ops"], cm.stats["cpu_segments"]) == (1, 0, 0)
    lite = _load_for_lite_interpreter(str(cm.save(tmp_path / "qcls.ptl")))
    for b in (1, 3, 7, 16):
        x = torch.randn(b, 3, 4, 4)
        err = quanta(cm, model, x, output_scale(model, x))
        assert err.max().item() <= 1 + 1e-4 and (err > 0.5).float().mean().item() <= 0.01
        same_as_static(cm, model, x)
        with nc.virtual_device():
            assert torch.equal(lite(x.clone()), cm(x.clone()))


def test_quint8_input_size_zero_convention() -> None:
    """A quantized model input with a size-0 dim (the prototype's convention)."""
    torch.manual_seed(0)
    model = quantize_model(Wrapped(nn.Conv2d(3, 4, 3)), [torch.randn(1, 3, 8, 8) for _ in range(3)])
    body = model.body.eval()
    cm = nc.compile(body, (torch.quantize_per_tensor(torch.zeros(1, 3, 0, 0), 0.05, 120,
                                                     torch.quint8),))
    for shape in ((1, 3, 8, 8), (1, 3, 5, 17)):
        xq = torch.quantize_per_tensor(torch.randn(shape), 0.05, 120, torch.quint8)
        with nc.virtual_device():
            got = cm(xq)
        ref = body(xq)
        assert got.dtype == torch.quint8 and got.q_scale() == ref.q_scale()
        diff = (got.int_repr().int() - ref.int_repr().int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean().item() <= 0.01  # tests/quant conv


class QMatmul(nn.Module):
    """A quantized op with no symbolic shape rule (quantized::matmul)."""

    def __init__(self) -> None:
        super().__init__()
        self.quant = nnq.Quantize(0.05, 128, torch.quint8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.quant(x)
        return torch.ops.quantized.matmul(q, q, 0.1, 128).dequantize()


def test_quantized_node_without_a_shape_rule_is_refused() -> None:
    with pytest.raises(ConversionError, match="no symbolic shape rule for the quantized node"):
        nc.compile(QMatmul().eval(), (torch.randn(3, 4, 4),), dynamic_shapes=({0: Dim("b")},))


def test_a_wrong_shape_rule_is_caught_by_the_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """The float twin's shapes are checked against every compiled sample."""
    from nnapi_compiler.frontend import symbolic_quant

    monkeypatch.setattr(symbolic_quant, "_SAME_SHAPE", (*symbolic_quant._SAME_SHAPE, nnq.Conv2d))
    monkeypatch.setattr(symbolic_quant, "_CONV", {})
    torch.manual_seed(0)
    model = quantize_model(Wrapped(nn.Conv2d(3, 4, 3)), [torch.randn(1, 3, 8, 8) for _ in range(3)])
    with pytest.raises(ConversionError, match="but its symbolic shape gives"):
        nc.compile(model, (torch.randn(1, 3, 8, 8),), dynamic_shapes=({2: Dim("h", min=4)},))


class _ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(torch.relu(self.c1(x)))


def test_pt2e_dynamic_batch() -> None:
    """PT2E: export with the dynamic batch, quantize, compile with the same declaration."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from nnapi_compiler.quantization import NnapiQuantizer
    from tests.quant.pt2e_helpers import calib_batches, final_dq_scale

    torch.manual_seed(0)
    spec = ({0: Dim("b", min=1, max=8)},)
    x = torch.randn(2, 3, 16, 16)
    gm = torch.export.export(_ConvNet().eval(), (x,), dynamic_shapes=spec).module()
    prepared = prepare_pt2e(gm, NnapiQuantizer("android-10"))
    with torch.no_grad():
        for c in calib_batches((2, 3, 16, 16)):
            prepared(c)
    converted = convert_pt2e(prepared)
    cm = nc.compile(converted, (x,), dynamic_shapes=spec)
    assert (cm.stats["segments"], cm.stats["host_ops"], cm.stats["cpu_segments"]) == (1, 0, 0)
    for b in (1, 2, 5, 8):
        xb = torch.randn(b, 3, 16, 16)
        assert quanta(cm, converted, xb, final_dq_scale(converted)).max().item() <= 1 + 1e-4
        same_as_static(cm, converted, xb)


def test_pt2e_exported_with_static_shapes_is_refused_clearly() -> None:
    from tests.quant.pt2e_helpers import calib_batches, quantize_pt2e

    x = torch.randn(2, 3, 16, 16)
    converted = quantize_pt2e(_ConvNet(), x, calib_batches((2, 3, 16, 16)))
    with pytest.raises(ConversionError, match="export with the same dynamic_shapes"):
        nc.compile(converted, (x,), dynamic_shapes=({0: Dim("b", min=1, max=8)},))
