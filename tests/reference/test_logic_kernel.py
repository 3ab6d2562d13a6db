"""Comparison, logic and SELECT kernels against torch, with broadcasting, equal pairs and INT32 /
BOOL8 operands; the interpreter's validation of SELECT's operand roles (a BOOL8 condition and
two value tensors of one type) and of the feature level."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.ir.codes import OpCode, OperandCode
from nnapi_compiler.runtime.interpreter import InterpreterError

from ..runtime.kernel_helpers import In, run1

B8 = OperandCode.TENSOR_BOOL8
_TORCH = {OpCode.EQUAL: torch.eq, OpCode.NOT_EQUAL: torch.ne, OpCode.LESS: torch.lt,
          OpCode.LESS_EQUAL: torch.le, OpCode.GREATER: torch.gt, OpCode.GREATER_EQUAL: torch.ge}


@pytest.mark.parametrize("code", list(_TORCH), ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
def test_comparison_equals_torch(code: OpCode, dtype: torch.dtype) -> None:
    a = torch.randint(-2, 3, (2, 3, 4)).to(dtype)  # small ints: many equal pairs
    b = torch.randint(-2, 3, (3, 1)).to(dtype)
    got = run1(code, [In(a), In(b)], (2, 3, 4), B8, level=3)
    assert got.dtype == torch.bool and torch.equal(got, _TORCH[code](a, b))


def test_comparison_of_nan_and_signed_zero() -> None:
    a = torch.tensor([float("nan"), 0.0, -0.0, 1.0])
    b = torch.tensor([float("nan"), -0.0, 0.0, float("nan")])
    for code, fn in _TORCH.items():
        assert torch.equal(run1(code, [In(a), In(b)], (4,), B8, level=3), fn(a, b)), code.name


def test_logical_ops_equal_torch() -> None:
    a, b = torch.rand(2, 3, 4) > 0.5, torch.rand(3, 1) > 0.5
    assert torch.equal(run1(OpCode.LOGICAL_AND, [In(a), In(b)], (2, 3, 4), level=3), a & b)
    assert torch.equal(run1(OpCode.LOGICAL_OR, [In(a), In(b)], (2, 3, 4), level=3), a | b)
    assert torch.equal(run1(OpCode.LOGICAL_NOT, [In(a)], (2, 3, 4), level=3), ~a)


def test_select_equals_where() -> None:
    c, x, y = torch.rand(2, 5) > 0.5, torch.randn(2, 5), torch.randn(2, 5)
    got = run1(OpCode.SELECT, [In(c), In(x), In(y)], (2, 5), OperandCode.TENSOR_FLOAT32, level=3)
    assert torch.equal(got, torch.where(c, x, y))


def test_select_refuses_wrong_roles_and_levels() -> None:
    c, x = torch.rand(2, 5) > 0.5, torch.randn(2, 5)
    f32 = OperandCode.TENSOR_FLOAT32
    with pytest.raises(InterpreterError, match="feature level"):
        run1(OpCode.SELECT, [In(c), In(x), In(x)], (2, 5), f32, level=2)
    with pytest.raises(InterpreterError):  # a float condition
        run1(OpCode.SELECT, [In(x), In(x), In(x)], (2, 5), f32, level=3)
    with pytest.raises(InterpreterError):  # value types differ
        run1(OpCode.SELECT, [In(c), In(x), In(x.int())], (2, 5), f32, level=3)
    with pytest.raises(InterpreterError):  # BOOL8 values are not in SELECT's type list
        run1(OpCode.SELECT, [In(c), In(c), In(c)], (2, 5), B8, level=3)


def test_logical_and_refuses_float() -> None:
    x = torch.randn(3)
    with pytest.raises(InterpreterError):
        run1(OpCode.LOGICAL_AND, [In(x), In(x)], (3,), B8, level=3)


def test_topk_equals_torch_and_puts_the_larger_index_first_on_ties() -> None:
    from nnapi_compiler.reference.logic import topk

    x = torch.randn(3, 4, 9)
    v, i = topk(x, 4)
    want = torch.topk(x, 4)
    assert torch.equal(v, want.values) and torch.equal(i, want.indices.int())
    v, i = topk(torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]]), 4)
    assert v.tolist() == [[3.0, 3.0, 3.0, 2.0]] and i.tolist() == [[4, 2, 1, 3]]
