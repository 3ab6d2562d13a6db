"""Where torch's prototype converter is silently wrong (ceil_mode, softmax/slices on NHWC), we match eager."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.backends._nnapi.prepare import convert_model_to_nnapi

import nnapi_compiler as nc
from nnapi_compiler.runtime.device import last_error

from ..conftest import Fn, assert_close_scaled


def ours(model: nn.Module, x: torch.Tensor, target: str = "android-10") -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        cm = nc.compile(model, (x,), target=target)
    with nc.virtual_device():
        return cm(x)


def prototype(model: nn.Module, x: torch.Tensor, nhwc: bool) -> torch.Tensor:
    """torch.backends._nnapi's conversion of ``model``, run on the same virtual device."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x)
        arg = x.clone()
        arg.nnapi_nhwc = nhwc  # the prototype's way to ask for NHWC
        converted = convert_model_to_nnapi(traced, arg)
    with nc.virtual_device():
        return converted(arg)


POOLS = [
    nn.MaxPool2d(2, 2, ceil_mode=True), nn.AvgPool2d(2, 2, ceil_mode=True),
    nn.AvgPool2d(3, 2, ceil_mode=True), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), nn.AvgPool2d(2, 3, 1, ceil_mode=True),
]


@pytest.mark.parametrize("pool", POOLS, ids=repr)
@pytest.mark.parametrize("size", [5, 6, 7])
def test_ceil_mode_pooling_matches_eager(pool: nn.Module, size: int) -> None:
    x = torch.randn(2, 3, size, size)
    assert_close_scaled(ours(pool.eval(), x), pool(x))


@pytest.mark.parametrize(("pool", "size"), [(POOLS[0], 5), (POOLS[1], 5), (POOLS[2], 6)], ids=repr)
def test_the_prototype_ignores_ceil_mode(pool: nn.Module, size: int) -> None:
    x = torch.randn(1, 3, size, size)
    ref = pool(x)
    assert_close_scaled(ours(pool.eval(), x), ref)
    assert ref.shape == (1, 3, 3, 3)
    assert prototype(pool.eval(), x, nhwc=False).shape == (1, 3, 2, 2)  # floor mode, silently


@pytest.mark.parametrize("target", ["android-10", "android-11"])
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_softmax_over_channels_of_an_image_matches_eager(target: str, log: bool, channels_last: bool) -> None:
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.LogSoftmax(1) if log else nn.Softmax(1)).eval()
    x = torch.randn(2, 3, 6, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert_close_scaled(ours(model, x, target), model(x))


def test_the_prototype_softmaxes_the_wrong_axis_of_nhwc_images() -> None:
    model = Fn(lambda t: F.softmax(t, dim=1)).eval()
    x = torch.randn(1, 3, 4, 4)
    ref = model(x)
    assert_close_scaled(ours(model, x), ref)
    assert torch.allclose(prototype(model, x, nhwc=False), ref, atol=1e-6)
    wrong = prototype(model, x, nhwc=True)  # runs without error ...
    assert wrong.shape == ref.shape and (wrong - ref).abs().max() > 0.05  # ... and is wrong


SLICES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "channels": lambda t: t[:, 1:3], "channels step": lambda t: t[:, ::2], "channel index": lambda t: t[:, 2],
    "height": lambda t: t[:, :, 1:3], "height step": lambda t: t[:, :, 1::2], "width": lambda t: t[..., :-1],
    "width step": lambda t: t[..., ::2], "all three": lambda t: t[:, 1:, ::2, 1:4:2],
    "narrow": lambda t: t.narrow(1, 1, 2), "select row": lambda t: t.select(2, 3),
}


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("name", sorted(SLICES))
def test_slicing_an_image_matches_eager(name: str, channels_last: bool) -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = Fn(lambda t: SLICES[name](F.relu(conv(t)))).eval()
    x = torch.randn(2, 3, 5, 6)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert_close_scaled(ours(model, x), model(x))


@pytest.mark.parametrize("name", ["channels", "height"])
def test_the_prototype_slices_nhwc_data_along_nchw_axes(name: str) -> None:
    """Its STRIDED_SLICE declares the right shape but slices the wrong physical axis; the
    virtual device computes the op and refuses the contradiction (a phone may not)."""
    model = Fn(SLICES[name]).eval()
    x = torch.randn(1, 4, 4, 4)
    assert_close_scaled(ours(model, x), model(x))
    with pytest.raises(RuntimeError, match="Execution_compute"):
        prototype(model, x, nhwc=True)
    assert "STRIDED_SLICE: result shape" in last_error()
