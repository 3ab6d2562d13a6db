"""BATCH_MATMUL, REDUCE_SUM and FULLY_CONNECTED with run-time weights on the virtual device, vs torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnapi_compiler.ir.codes import OpCode, ResultCode
from nnapi_compiler.runtime.interpreter import InterpreterError, validate_model

from .kernel_helpers import In, close, ints, one_op, run1


@pytest.mark.parametrize(("adj_x", "adj_y"), [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
def test_batch_matmul_matches_torch(batch: tuple[int, ...], adj_x: bool, adj_y: bool) -> None:
    x, y = torch.randn(*batch, 4, 5), torch.randn(*batch, 5, 6)
    xs = x.transpose(-1, -2).contiguous() if adj_x else x
    ys = y.transpose(-1, -2).contiguous() if adj_y else y
    got = run1(OpCode.BATCH_MATMUL, [In(xs), In(ys), adj_x, adj_y], (*batch, 4, 6), level=6)
    close(got, x @ y)


def test_batch_matmul_int32_is_exact() -> None:
    x = torch.randint(-50, 50, (2, 3, 4), dtype=torch.int32)
    y = torch.randint(-50, 50, (2, 4, 5), dtype=torch.int32)
    got = run1(OpCode.BATCH_MATMUL, [In(x), In(y), False, False], (2, 3, 5), level=6)
    assert torch.equal(got, (x.long() @ y.long()).int())


def test_batch_matmul_needs_level_6_and_equal_batch_dims() -> None:
    b = one_op(OpCode.BATCH_MATMUL, [In(torch.randn(2, 3, 4)), In(torch.randn(2, 4, 5)), False, False],
               (2, 3, 5))
    with pytest.raises(InterpreterError) as e:
        validate_model(b.model, 5)
    assert e.value.result_code == ResultCode.BAD_DATA and "BATCH_MATMUL" in str(e.value)
    validate_model(b.model, 6)
    with pytest.raises(InterpreterError):
        run1(OpCode.BATCH_MATMUL, [In(torch.randn(2, 3, 4)), In(torch.randn(3, 4, 5)), False, False],
             (2, 3, 5), level=6)


def test_fully_connected_accepts_run_time_weights() -> None:
    """NNAPI does not require FULLY_CONNECTED weights to be constant: the FL3 matmul form."""
    x, w, bias = torch.randn(5, 7), torch.randn(3, 7), torch.zeros(3)
    close(run1(OpCode.FULLY_CONNECTED, [In(x), In(w), bias, 0], (5, 3), level=3), F.linear(x, w))


def test_reduce_sum_keep_dims_flag_is_bool() -> None:
    x = torch.randn(2, 5, 3)
    got = run1(OpCode.REDUCE_SUM, [In(x), ints(1, -1), True], (2, 1, 1), level=3)
    close(got, x.sum((1, 2), keepdim=True))
    close(run1(OpCode.REDUCE_SUM, [In(x), ints(0), False], (5, 3), level=3), x.sum(0))
