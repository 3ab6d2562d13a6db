"""Compile-time misuse: train mode, mismatched or non-float32 examples, non-tensors, bad targets."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnapi_compiler as nc

from ..conftest import Fn

IMG = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(0))


def _conv() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()


def _relu() -> nn.Module:
    return Fn(F.relu).eval()


def _eval_but_last(*layers: nn.Module) -> nn.Module:
    """An eval-mode model whose last layer was left in training mode."""
    model = nn.Sequential(*layers).eval()
    layers[-1].train()
    return model


CASES: list[tuple[str, Any, Any, type[nc.NnapiCompilerError], str]] = [
    ("train mode", lambda: nn.Sequential(nn.Conv2d(3, 4, 3)), (IMG,), nc.ConversionError,
     r"training mode; call model.eval\(\)"),
    ("batchnorm left in train mode", lambda: _eval_but_last(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)),
     (IMG,), nc.UnsupportedError, "BatchNorm2d must be in eval mode"),
    ("dropout left in train mode", lambda: _eval_but_last(nn.Conv2d(3, 4, 3), nn.Dropout(0.5)),
     (IMG,), nc.UnsupportedError, "dropout in training mode"),
    ("wrong channel count", _conv, (torch.randn(1, 4, 6, 6),), nc.CaptureError,
     r"expected input\[1, 4, 6, 6\] to have 3 channels, but got 4"),
    ("image smaller than the kernel", _conv, (torch.randn(1, 3, 2, 2),), nc.CaptureError,
     "Kernel size can't be greater than actual input size"),
    ("wrong rank", _conv, (torch.randn(3, 6, 6, 2, 2),), nc.CaptureError, "4D .batched. input to conv2d"),
    ("float64 into float32 weights", _conv, (IMG.double(),), nc.CaptureError,
     r"Input type \(double\) and bias type \(float\) should be the same"),
    ("float64", _relu, (IMG.double(),), nc.ConversionError, "has dtype torch.float64"),
    ("float16", _relu, (IMG.half(),), nc.ConversionError, "has dtype torch.float16"),
    ("int16", lambda: Fn(lambda x: x * 2).eval(), (torch.arange(6, dtype=torch.int16).reshape(1, 6),),
     nc.ConversionError, "has dtype torch.int16"),  # int64 tensors are index inputs (issue 10)
    ("int32", lambda: Fn(lambda x: x + 1).eval(), (torch.ones(1, 6, dtype=torch.int32),), nc.ConversionError,
     "has dtype torch.int32"),
    ("bool", lambda: Fn(lambda x: x.float()).eval(), (torch.ones(2, dtype=torch.bool),), nc.ConversionError,
     "has dtype torch.bool"),
    ("complex", lambda: Fn(lambda x: x * 2).eval(), (torch.randn(2, dtype=torch.cfloat),), nc.ConversionError,
     "has dtype torch.complex64"),
    ("int input", lambda: Fn(lambda x: x).eval(), (3,), nc.ConversionError,
     "input 'x' is a int; only tensors"),
    ("float input", lambda: Fn(lambda x: torch.ones(2) * x).eval(), (3.0,), nc.ConversionError,
     "input 'x' is a float"),
    ("None input", lambda: Fn(lambda x: x).eval(), (None,), nc.ConversionError, "input 'x' is a NoneType"),
    ("list input", lambda: Fn(lambda x: x[0] + x[1]).eval(), ([torch.randn(2), torch.randn(2)],),
     nc.ConversionError, "input 'x' is a list"),
    ("dict input", lambda: Fn(lambda x: x["a"] * 2).eval(), ({"a": torch.randn(2)},), nc.ConversionError,
     "input 'x' is a dict"),
    ("no example inputs", _conv, (), nc.CaptureError, "Expected positional argument for parameter input"),
    ("not a module", lambda: (lambda x: x), (IMG,), nc.ConversionError,
     "must be a torch.nn.Module, got function"),
    ("output is the input", lambda: Fn(lambda x: x).eval(), (IMG,), nc.ConversionError,
     "computes no tensor from its inputs"),
    ("output is a constant", lambda: Fn(lambda x: torch.ones(3)).eval(), (IMG,), nc.ConversionError,
     "does not depend on the inputs"),
]


@pytest.mark.parametrize(("case", "make", "inputs", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_compile_inputs_raise_a_named_error(
    case: str, make: Any, inputs: Any, error: type[nc.NnapiCompilerError], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        nc.compile(make(), inputs)
    assert isinstance(info.value, nc.NnapiCompilerError)


@pytest.mark.parametrize(("target", "message"), [
    ("android-99", "unknown target 'android-99'"),
    ("fl9", "unknown target|outside 1..8"),
    (42, "feature level 42 is outside 1..8"),
    (0, "outside 1..8"),
])
def test_bad_targets_are_refused(target: Any, message: str) -> None:
    with pytest.raises(nc.ConversionError, match=message):
        nc.compile(_conv(), (IMG,), target=target)


@pytest.mark.parametrize(("target", "level"), [("android-9", 2), ("android-8.1", 1)])
def test_targets_before_android_10_compile_cpu_only(target: str, level: int) -> None:
    with pytest.warns(UserWarning, match=f"feature level {level}: PyTorch Mobile's NNAPI runtime"):
        cm = nc.compile(_conv(), (IMG,), target=target)
    assert cm.stats["segments"] == 0 and cm.stats["cpu_segments"] == 1


def test_a_failed_compile_leaves_the_model_untouched() -> None:
    model = _conv()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(nc.CaptureError):
        nc.compile(model, (torch.randn(1, 4, 6, 6),))
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        ref = model(IMG)
    cm = nc.compile(model, (IMG,))  # and it still compiles afterwards
    with nc.virtual_device():
        assert torch.allclose(cm(IMG), ref, atol=1e-5)


def test_requires_grad_and_channels_last_examples_compile() -> None:
    x = IMG.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    model = _conv()
    cm = nc.compile(model, (x,))
    with nc.virtual_device():
        got = cm(IMG)
    with torch.no_grad():
        assert torch.allclose(got, model(IMG), atol=1e-5)
    assert x.grad is None
