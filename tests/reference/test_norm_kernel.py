"""INSTANCE_NORMALIZATION's reference kernel against torch's instance_norm (both layouts), and
LOCAL_RESPONSE_NORMALIZATION's against a float64 loop over its definition; their validation of
operand types and the feature level."""

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


def _lrn64(x: torch.Tensor, radius: int, bias: float, alpha: float, beta: float, axis: int) -> torch.Tensor:
    """The spec's formula, element by element along ``axis``, in float64."""
    v = x.double().movedim(axis, -1)
    out = torch.empty_like(v)
    n = v.shape[-1]
    for d in range(n):
        window = v[..., max(0, d - radius): min(n, d + radius + 1)]
        out[..., d] = v[..., d] / (bias + alpha * (window * window).sum(-1)) ** beta
    return out.movedim(-1, axis).float()


@pytest.mark.parametrize(("shape", "radius", "axis", "level"), [
    ((2, 4, 5, 7), 2, None, 2),  # FL1 form: rank 4, the last axis, no axis operand
    ((2, 4, 5, 7), 9, 3, 3),     # a window wider than the axis
    ((2, 7, 5, 4), 1, 1, 3),     # NCHW channels
    ((3, 6), 0, 0, 3),           # radius 0: x / (bias + alpha x^2)^beta
])
def test_local_response_normalization_equals_its_definition(shape: tuple, radius: int, axis: int | None,
                                                           level: int) -> None:
    x = torch.randn(*shape) * 2
    bias, alpha, beta = 1.5, 0.3, 0.75
    args = [In(x), radius, bias, alpha, beta] + ([] if axis is None else [axis])
    got = run1(OpCode.LOCAL_RESPONSE_NORMALIZATION, args, shape, level=level)
    close(got, _lrn64(x, radius, bias, alpha, beta, -1 if axis is None else axis))


def test_local_response_normalization_axis_and_low_ranks_need_fl3() -> None:
    with pytest.raises(InterpreterError):
        run1(OpCode.LOCAL_RESPONSE_NORMALIZATION, [In(torch.randn(1, 3, 3, 2)), 1, 1.0, 0.1, 0.5, 1],
             (1, 3, 3, 2), level=2)
    with pytest.raises(InterpreterError):
        run1(OpCode.LOCAL_RESPONSE_NORMALIZATION, [In(torch.randn(3, 2)), 1, 1.0, 0.1, 0.5], (3, 2), level=2)
    with pytest.raises(InterpreterError):  # NNAPI requires a non-zero bias
        run1(OpCode.LOCAL_RESPONSE_NORMALIZATION, [In(torch.randn(1, 3, 3, 2)), 1, 0.0, 0.1, 0.5],
             (1, 3, 3, 2), level=3)
