"""Float ConvTranspose2d forms TRANSPOSE_CONV_2D cannot take (grouped and depthwise ones, and
output_padding beyond padding) as the convolution they equal on a zero-inserted input: PAD,
DEPTH_TO_SPACE, then CONV_2D / GROUPED_CONV_2D / DEPTHWISE_CONV_2D (conv.py
``_transpose_as_conv``); eager vs the virtual device in both capture dialects, whole on NNAPI.
Quantized forms: tests/quant/test_quant_conv_transpose.py."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnapi_compiler as nc

from ..conftest import Fn, compile_whole

CASES = {
    # name: (module, NNAPI ops)
    "grouped-s1": (lambda: nn.ConvTranspose2d(4, 6, 3, groups=2), {"grouped_conv_2d": 1}),
    "grouped-s2-outpad": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                                     groups=2),
                          {"pad": 1, "depth_to_space": 1, "grouped_conv_2d": 1}),
    "grouped-s2-dilated": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2),
                           {"pad": 1, "depth_to_space": 1, "grouped_conv_2d": 1}),
    "depthwise-k4-s2": (lambda: nn.ConvTranspose2d(4, 8, 4, stride=2, padding=1, groups=4),
                        {"pad": 1, "depth_to_space": 1, "depthwise_conv_2d": 1}),
    "depthwise-k2-s2-nobias": (lambda: nn.ConvTranspose2d(4, 4, 2, stride=2, groups=4, bias=False),
                               {"pad": 1, "depth_to_space": 1, "depthwise_conv_2d": 1}),
    "s3-outpad-beyond-padding": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=3, output_padding=2),
                                 {"pad": 1, "depth_to_space": 1, "conv_2d": 1}),
}


@pytest.mark.parametrize("target", ["android-10", "android-12"])
@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_transposed_as_conv(name: str, dialect: str, target: str) -> None:
    make, want = CASES[name]
    cm = compile_whole(make(), torch.randn(2, 4, 5, 6), dialect=dialect, target=target)
    counts = Counter(op.mnemonic for op in cm.program.compute_ops())
    assert counts == want, counts


def test_functional_grouped() -> None:
    w, b = torch.randn(4, 3, 3, 3), torch.randn(6)
    model = Fn(lambda x: F.conv_transpose2d(x, w, b, stride=2, padding=1, groups=2))
    cm = compile_whole(model, torch.randn(1, 4, 5, 5), dialect="export")
    assert Counter(op.mnemonic for op in cm.program.compute_ops())["grouped_conv_2d"] == 1


@pytest.mark.parametrize(("module", "reason"), [
    (lambda: nn.ConvTranspose2d(4, 6, 3, stride=(2, 1), groups=2), "with unequal strides"),
    (lambda: nn.ConvTranspose2d(4, 6, 2, stride=2, padding=2, output_padding=1, groups=2),
     "whose padding exceeds kernel - 1"),
])
def test_forms_with_no_nnapi_equivalent_go_to_the_host(module: object, reason: str) -> None:
    model = module().eval()  # type: ignore[operator]
    x = torch.randn(1, 4, 5, 5)
    text = str(nc.explain(model, (x,)))
    assert reason in text, text
    cm = nc.compile(model, (x,))
    with nc.virtual_device():
        got = cm(x)
    torch.testing.assert_close(got, model(x))
