"""Regressions found in review: each was a wrong or unloadable model before its fix."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.types import float_type
from nnapi_compiler.passes.cleanup import SimplifyReshape

from ..conftest import Fn, assert_close_scaled, run_compiled


class BnTwoReaders(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        self.bn.running_mean.uniform_(-1, 1)
        self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.bn(self.conv(x))
        return y, y + 1.0


def test_fold_bn_keeps_a_scaled_value_that_has_other_readers() -> None:
    _, got, ref = run_compiled(BnTwoReaders(), torch.randn(1, 3, 8, 8))
    assert_close_scaled(got, ref)


def test_identity_resize_of_an_input_is_returned_by_the_wrapper() -> None:
    _, got, ref = run_compiled(Fn(lambda x: (F.interpolate(x, size=x.shape[-2:]), x.relu())),
                               torch.randn(1, 2, 5, 5))
    assert_close_scaled(got, ref)


def test_output_that_a_pass_makes_a_duplicate() -> None:
    _, got, ref = run_compiled(
        Fn(lambda x: (x.relu(), F.interpolate(x.relu(), size=x.shape[-2:], mode="bilinear"))),
        torch.randn(1, 2, 5, 5))
    assert_close_scaled(got, ref)


def test_simplify_reshape_removes_identity_chains_in_one_run() -> None:
    b = Builder()
    x = b.input(float_type((1, 2, 4, 4)))
    y = b.emit(ops.Reshape, x=x, shape=(4, 8))
    y = b.emit(ops.Reshape, x=y, shape=(1, 2, 4, 4))
    p = b.finish([b.emit(ops.Relu, x=y)])
    once = SimplifyReshape().run(p)
    assert once.changed and [op.mnemonic for op in once.program.ops] == ["relu"]
    assert not SimplifyReshape().run(once.program).changed
