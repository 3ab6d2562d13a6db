"""AdaptiveMaxPool2d, LPPool2d and LocalResponseNorm (issue 10's peer gaps): eager vs the
compiled artifact on the virtual device in both capture dialects (torch.export decomposes
lp_pool2d and local_response_norm; frontend/patterns_refold.py folds them back), whole on
NNAPI with the NNAPI ops each form should become; and the forms NNAPI cannot express go to the
host with the reason named."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnapi_compiler as nc

from ..conftest import Fn, compile_whole, in_dialect

DIALECTS = ["fx", "export"]


def _ops(cm: nc.CompiledModel) -> Counter:
    return Counter(op.mnemonic for op in cm.program.compute_ops())


# -- adaptive_max_pool2d ---------------------------------------------------------------------
ADAPTIVE_MAX = {
    # name: (input H, W, output_size, NNAPI ops)
    "divisible": (8, 9, (2, 3), {"max_pool_2d": 1}),
    "global": (7, 9, 1, {"max_pool_2d": 1}),
    "overlapping-regular": (7, 9, (3, 4), {"max_pool_2d": 1}),  # windows 3 wide, stride 2
    "none-keeps-width": (6, 6, (None, 4), {"max_pool_2d": 1, "gather": 1}),
    "two-window-sizes": (5, 7, (3, 7), {"max_pool_2d": 2, "concatenation": 1, "gather": 1}),
    "irregular-both": (10, 5, (4, 3), {"max_pool_2d": 3, "concatenation": 1, "gather": 2}),
    "output-larger": (3, 4, (5, 4), {"max_pool_2d": 2, "concatenation": 1, "gather": 1}),
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(ADAPTIVE_MAX))
def test_adaptive_max_pool2d(name: str, dialect: str) -> None:
    h, w, size, want = ADAPTIVE_MAX[name]
    model = nn.AdaptiveMaxPool2d(size) if dialect == "fx" else Fn(lambda x: F.adaptive_max_pool2d(x, size))
    cm = compile_whole(model, torch.randn(2, 3, h, w), dialect=dialect)
    assert _ops(cm) == want


class _MaxWithIndices(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, i = F.adaptive_max_pool2d(x, 2, return_indices=True)
        return y + 1, i


@pytest.mark.parametrize("dialect", DIALECTS)
def test_adaptive_max_pool2d_indices_go_to_the_host(dialect: str) -> None:
    model = in_dialect(_MaxWithIndices(), dialect).eval()
    x = torch.randn(1, 3, 6, 6)
    text = str(nc.explain(model, (x,)))
    # fx sees F's return_indices dispatch target, adaptive_max_pool2d_with_indices, unconverted.
    reason = "no NNAPI lowering" if dialect == "fx" else "indices of adaptive_max_pool2d have no NNAPI form"
    assert reason in text, text
    cm = nc.compile(model, (x,))
    with nc.virtual_device():
        got = cm(x)
    ref = model(x)
    assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])


# -- lp_pool2d -------------------------------------------------------------------------------
LP = {
    # name: (LPPool2d arguments, NNAPI ops)
    "p2-k3-s2": ((2, 3, 2), {"l2_pool_2d": 1, "mul": 1}),
    "p2-k2": ((2, 2), {"l2_pool_2d": 1, "mul": 1}),
    "p2-k32-s21-ceil": ((2, (3, 2), (2, 1), True), {"l2_pool_2d": 1, "mul": 1}),
    "p2-k1": ((2, 1), {"l2_pool_2d": 1}),
    "p1-k3-ceil": ((1, 3, None, True), {"average_pool_2d": 1, "mul": 1}),
    "pinf": ((float("inf"), 2), {"abs": 1, "max_pool_2d": 1}),
    "pminusinf-ceil": ((-float("inf"), 3, 2, True), {"abs": 1, "neg": 2, "max_pool_2d": 1}),
}


@pytest.mark.parametrize("target", ["android-10", "android-12"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(LP))
def test_lp_pool2d(name: str, dialect: str, target: str) -> None:
    args, want = LP[name]
    cm = compile_whole(nn.LPPool2d(*args), torch.randn(2, 3, 9, 8) * 2, dialect=dialect, target=target)
    assert _ops(cm) == want


#: Other powers follow PyTorch's formula with POW. Inputs are positive: a window whose average
#: of x^3 nearly cancels has no accurate float32 cube root in either implementation.
LP_POW = {
    "p3-k2": (3, 2), "p1.5-k3-s2-ceil": (1.5, 3, 2, True), "p-1-k2": (-1, 2), "p0.5-k23": (0.5, (2, 3)),
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(LP_POW))
def test_lp_pool2d_other_powers_use_pow(name: str, dialect: str) -> None:
    x = torch.rand(2, 3, 9, 8) * 2 + 0.1
    cm = compile_whole(nn.LPPool2d(*LP_POW[name]), x, dialect=dialect)
    assert _ops(cm) == {"pow": 2, "average_pool_2d": 1, "mul": 1}


def test_lp_pool2d_negative_average_is_nan_as_in_eager() -> None:
    """An odd power of a negative window averages below 0: its 1/p power is NaN in both."""
    x = -torch.rand(1, 2, 4, 4) - 0.5
    cm = nc.compile(nn.LPPool2d(3, 2).eval(), (x,), cpu_fallback=False)
    with nc.virtual_device():
        got = cm(x)
    assert torch.isnan(got).all() and torch.isnan(nn.LPPool2d(3, 2)(x)).all()


# -- local_response_norm ---------------------------------------------------------------------
class _ConvLrn(nn.Module):
    """LRN after a convolution: in NHWC storage the channel window is the last axis."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.lrn = nn.Conv2d(3, 8, 3), nn.LocalResponseNorm(5, 1e-3, 0.75, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lrn(torch.relu(self.conv(x)))


LRN = {
    # name: (model, input shape)
    "size3": (lambda: nn.LocalResponseNorm(3), (2, 6, 5, 7)),
    "size5-params": (lambda: nn.LocalResponseNorm(5, 0.05, 0.6, 2.0), (2, 7, 5, 4)),
    "size1": (lambda: nn.LocalResponseNorm(1, 0.5), (2, 6, 5, 3)),
    "wider-than-channels": (lambda: nn.LocalResponseNorm(7, 0.1), (1, 3, 4, 4)),
    "rank3": (lambda: nn.LocalResponseNorm(3, 0.5), (2, 6, 5)),
    "after-conv": (_ConvLrn, (1, 3, 9, 9)),
}


@pytest.mark.parametrize("target", ["android-10", "android-12"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(LRN))
def test_local_response_norm(name: str, dialect: str, target: str) -> None:
    make, shape = LRN[name]
    cm = compile_whole(make(), torch.randn(*shape) * 3, dialect=dialect, target=target)
    counts = _ops(cm)
    assert counts["local_response_normalization"] == 1 and counts["transpose"] == 0, counts
    (lrn,) = [op for op in cm.program.compute_ops() if op.mnemonic == "local_response_normalization"]
    if name == "after-conv":  # NHWC: the last axis of rank 4, the form without an axis operand
        assert lrn.axis == 3 and len(lrn.nnapi_operands()) == 5


#: Forms NNAPI's LRN op cannot take (an even, asymmetric window; k = 0, its bias must be
#: non-zero): x / POW(banded 1x1 CONV_2D(x*x), beta).
LRN_CONV = {
    "size4": (lambda: nn.LocalResponseNorm(4), (1, 6, 4, 4)),
    "size8-wider-than-channels": (lambda: nn.LocalResponseNorm(8, 0.3), (2, 5, 3, 3)),
    "k0": (lambda: nn.LocalResponseNorm(3, 0.3, 0.5, 0.0), (2, 5, 3, 3)),
    "size2-rank3": (lambda: nn.LocalResponseNorm(2, 0.3, 0.5, 1.5), (2, 5, 3)),
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(LRN_CONV))
def test_local_response_norm_as_a_banded_convolution(name: str, dialect: str) -> None:
    make, shape = LRN_CONV[name]
    cm = compile_whole(make(), torch.randn(*shape) * 3, dialect=dialect)
    counts = _ops(cm)
    assert {n: counts[n] for n in ("mul", "conv_2d", "pow", "div")} == {"mul": 1, "conv_2d": 1, "pow": 1,
                                                                      "div": 1}, counts
    assert "local_response_normalization" not in counts


class _LrnLookalike(nn.Module):
    """x / (1 + 0.1 * x*x)^0.5 with no channel window: not an LRN, must not be refolded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (x * x * 0.1 + 1.0).pow(0.5)


def test_refold_leaves_lookalikes_alone() -> None:
    cm = compile_whole(_LrnLookalike(), torch.randn(1, 4, 5, 5), dialect="export")
    assert "local_response_normalization" not in _ops(cm)
