"""INSTANCE_NORMALIZATION's reference kernel against torch's instance_norm (both layouts), and
its validation of operand types and the feature level."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnapi_compiler.ir.codes import OpCode
from nnapi_compiler.runtime.interpreter import InterpreterError

from ..runtime.kernel_helpers import In, close, nchw, nhwc, run1


@pytest.mark.parametrize("layout_nchw", [False, True])
def test_instance_normalization_equals_torch(layout_nchw: bool) -> None:
    x = torch.randn(2, 5, 6, 7) * 3 + 1  # NCHW
    gamma, beta, eps = 1.7, -0.3, 1e-3
    want = F.instance_norm(x, eps=eps) * gamma + beta
    arg = x if layout_nchw else nhwc(x)
    out_dims = tuple(arg.shape)
    got = run1(OpCode.INSTANCE_NORMALIZATION, [In(arg), gamma, beta, eps, layout_nchw], out_dims, level=3)
    close(got if layout_nchw else nchw(got), want)


def test_instance_normalization_needs_fl3() -> None:
    x = torch.randn(1, 3, 3, 2)
    with pytest.raises(InterpreterError):
        run1(OpCode.INSTANCE_NORMALIZATION, [In(x), 1.0, 0.0, 1e-5, False], (1, 3, 3, 2), level=2)
