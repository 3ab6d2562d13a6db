"""PT2E-quantized zoo (NnapiQuantizer, torchao prepare/convert): each model compiles to one
NNAPI segment with 8-bit weighted ops and no layout conversion, and >= 99% of output elements
are within 2 quanta of the final dequantize's scale of the converted module run eagerly."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.ir.codes import OperandCode

from ..quant.pt2e_helpers import quanta_error, within
from .pt2e_models import CI, SIGNED, TIMM, TORCHVISION, build_pt2e, example

_QUANT8 = {OperandCode.TENSOR_QUANT8_ASYMM, OperandCode.TENSOR_QUANT8_ASYMM_SIGNED}
_WEIGHTED = {"conv_2d", "depthwise_conv_2d", "grouped_conv_2d", "fully_connected"}


def _case(name: str, target: str) -> object:
    marks = () if (name, target) in CI else (pytest.mark.zoo_full,)
    return pytest.param(name, target, marks=marks, id=f"{name}-{target}")


def check(name: str, target: str, dtype: torch.dtype = torch.uint8) -> None:
    converted = build_pt2e(name, target, activation_dtype=dtype)
    x = example()
    quanta, cm = quanta_error(converted, x, target)
    assert all(op.mnemonic != "host" for op in cm.program.ops)
    assert cm.stats["segments"] == 1 and cm.stats["layout_conversions"] == 0
    weighted = [op for op in cm.program.compute_ops() if op.mnemonic in _WEIGHTED]
    assert weighted and all(op.inputs()[0].type.code in _QUANT8 for op in weighted)
    share = within(quanta)
    assert share >= 0.99, f"{name}@{target}: {share:.4f} within 2 quanta, max {quanta.max():.2f}"


@pytest.mark.parametrize(("name", "target"), [_case(n, t) for n, t in TORCHVISION])
def test_torchvision_pt2e(name: str, target: str) -> None:
    check(name, target)


@pytest.mark.zoo_full
@pytest.mark.parametrize("name", SIGNED)
def test_signed_int8_pt2e(name: str) -> None:
    check(name, "android-11", torch.int8)


@pytest.mark.zoo_full
@pytest.mark.parametrize("name", TIMM)
def test_timm_pt2e(name: str) -> None:
    pytest.importorskip("timm")
    check(name, "android-10")
