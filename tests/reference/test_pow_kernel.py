"""POW's reference kernel against float64 pow: broadcasting, a negative base (NaN unless the
exponent is an integer), and its feature level (FL3)."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.ir.codes import OpCode
from nnapi_compiler.runtime.interpreter import InterpreterError

from ..runtime.kernel_helpers import In, close, run1


def test_pow_equals_float64_pow_with_broadcasting() -> None:
    base = torch.rand(2, 3, 4) * 3 + 0.01
    exponent = torch.tensor([-1.5, 0.5, 3.0, 1 / 3])
    got = run1(OpCode.POW, [In(base), In(exponent)], (2, 3, 4), level=3)
    close(got, (base.double() ** exponent.double()).float())


def test_pow_of_a_negative_base() -> None:
    base = torch.tensor([-2.0, -0.5, 4.0])
    got = run1(OpCode.POW, [In(base), In(torch.tensor([3.0, 0.5, 0.5]))], (3,), level=3)
    assert got[0].item() == -8.0 and torch.isnan(got[1]) and got[2].item() == 2.0


def test_pow_needs_fl3() -> None:
    with pytest.raises(InterpreterError):
        run1(OpCode.POW, [In(torch.rand(3)), In(torch.rand(3))], (3,), level=2)
