"""Single ops through the PT2E flow (NnapiQuantizer, convert_pt2e, compile) at Android 10 and 11
(uint8, and signed int8 activations at 11):
each becomes its quantized NNAPI op (or a float island where NNAPI has no integer form) and
matches the converted module run eagerly within one quantum of the output scale.

Unary ops read the quantized model input directly: after a convolution, its one-quantum
rounding would be magnified by an op whose output quantum is finer (TANH's 1/128)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.ir.codes import OperandCode

from .pt2e_helpers import calib_batches, quanta_error, quantize_pt2e

X = (1, 8, 10, 10)
_CODE = {torch.uint8: OperandCode.TENSOR_QUANT8_ASYMM, torch.int8: OperandCode.TENSOR_QUANT8_ASYMM_SIGNED}


class Fn(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Body(nn.Module):
    """A 3x3 convolution, then ``fn`` on its output (and the input, for binary ops)."""

    def __init__(self, fn: Callable[..., torch.Tensor], binary: bool = False) -> None:
        super().__init__()
        self.conv, self.fn, self.binary = nn.Conv2d(8, 8, 3, padding=1), fn, binary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fn(y, x) if self.binary else self.fn(y)


class Rank3Linear(nn.Module):
    """FULLY_CONNECTED on a rank-3 input (NNAPI flattens it; a RESHAPE restores the shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(8, 8, 3, padding=1), nn.Linear(100, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(2))


CASES: dict[str, tuple[nn.Module, str]] = {
    # name: (model, NNAPI op it must become)
    "conv_relu": (Body(F.relu), "conv_2d"),
    "conv_relu6": (Body(F.relu6), "conv_2d"),
    "depthwise": (nn.Sequential(nn.Conv2d(8, 16, 3, groups=8), nn.ReLU()), "depthwise_conv_2d"),
    "grouped": (nn.Conv2d(8, 8, 3, groups=2), "grouped_conv_2d"),
    "linear": (nn.Sequential(nn.Flatten(), nn.Linear(800, 10)), "fully_connected"),
    "add_relu": (Body(lambda a, b: F.relu(a + b), binary=True), "add"),
    "mul": (Body(torch.mul, binary=True), "mul"),
    "cat": (Body(lambda a, b: torch.cat([a, b], 1), binary=True), "concatenation"),
    "max_pool": (Fn(lambda y: F.max_pool2d(y, 3, 2, 1)), "max_pool_2d"),
    "avg_pool": (Fn(lambda y: F.avg_pool2d(y, 2)), "average_pool_2d"),
    "global_pool": (Fn(lambda y: F.adaptive_avg_pool2d(y, 1).flatten(1)), "average_pool_2d"),
    "hardswish": (Fn(F.hardswish), "hard_swish"),
    "sigmoid": (Fn(torch.sigmoid), "logistic"),
    "tanh": (Fn(torch.tanh), "tanh"),
    "softmax": (Fn(lambda y: F.softmax(y.flatten(1), dim=1)), "softmax"),
    "upsample": (Fn(lambda y: F.interpolate(y, scale_factor=2.0, mode="nearest")),
                 "resize_nearest_neighbor"),
    "linear_rank3": (Rank3Linear(), "fully_connected"),
}
# No integer form at the target: DEQUANTIZE -> float ops -> QUANTIZE, as the reference computes.
ISLANDS = {("hardswish", "android-10")}


LEVELS = [("android-10", torch.uint8), ("android-11", torch.uint8), ("android-11", torch.int8)]


# Android 11 with uint8 differs from Android 10 only where FL4 adds an integer op.
_MATRIX = [pytest.param(n, t, d, id=f"{n}-{t}-{str(d)[6:]}") for n in sorted(CASES)
           for t, d in LEVELS if not (t == "android-11" and d == torch.uint8 and n != "hardswish")]


@pytest.mark.parametrize(("name", "target", "dtype"), _MATRIX)
def test_pt2e_op(name: str, target: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model, nnapi_op = CASES[name]
    x = torch.randn(*X)
    converted = quantize_pt2e(model, x, calib_batches(X), target, activation_dtype=dtype)
    quanta, cm = quanta_error(converted, x, target, verify_each_pass=True)
    counts = Counter(op.mnemonic for op in cm.program.compute_ops())
    assert "host" not in counts
    codes = {v.type.code for op in cm.program.compute_ops() for v in op.results if v.type.quant}
    assert codes == {_CODE[dtype]}, codes
    if (name, target) not in ISLANDS:
        assert counts[nnapi_op] >= 1, counts
        assert counts["quantize"] == 1 and counts["dequantize"] == 1, counts
    assert quanta.max().item() <= 1 + 1e-4, f"{name}@{target}: max {quanta.max():.2f} quanta"


def test_silu_runs_as_logistic_and_mul() -> None:
    """NnapiQuantizer rewrites SiLU as x * sigmoid(x): 8-bit LOGISTIC and MUL, no float island."""
    torch.manual_seed(0)
    x = torch.randn(*X)
    quanta, cm = quanta_error(quantize_pt2e(Fn(F.silu), x, calib_batches(X)), x)
    counts = Counter(op.mnemonic for op in cm.program.compute_ops())
    assert counts == {"quantize": 1, "logistic": 1, "mul": 1, "dequantize": 1}, counts
    assert quanta.max().item() <= 1 + 1e-4


def test_float_island_for_hardsigmoid() -> None:
    """No integer HARDSIGMOID in NNAPI: DEQUANTIZE, float ops, QUANTIZE, as the reference."""
    torch.manual_seed(0)
    x = torch.randn(*X)
    quanta, cm = quanta_error(quantize_pt2e(Fn(F.hardsigmoid), x, calib_batches(X)), x)
    counts = Counter(op.mnemonic for op in cm.program.compute_ops())
    assert counts["quantize"] == 2 and counts["dequantize"] == 2, counts
    assert quanta.max().item() <= 1 + 1e-4


def test_exported_program_and_explain() -> None:
    torch.manual_seed(0)
    x = torch.randn(*X)
    converted = quantize_pt2e(Body(F.relu), x, calib_batches(X))
    assert converted.training  # convert_pt2e's output is marked training; compile() accepts it
    ep = torch.export.export(converted, (x,))
    quanta, cm = quanta_error(converted, x)
    assert quanta.max().item() <= 1 + 1e-4
    cm_ep = nc.compile(ep, (x,))
    with nc.virtual_device():
        assert torch.equal(cm_ep(x), cm(x))
    text = str(nc.explain(converted, (x,)))
    assert "CONV_2D" in text, text
