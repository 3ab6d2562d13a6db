"""Passes on programs with host ops: none evaluates, fuses into or folds one; layout treats them
as boundaries (no TRANSPOSE on either side); the verifier checks their SSA but not NNAPI rules."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.errors import VerificationError
from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.ir.program import Program
from nnapi_compiler.ir.types import DimOrder, HostType, TensorType, Value, float_type
from nnapi_compiler.ir.verifier import verify
from nnapi_compiler.passes import pipeline
from nnapi_compiler.passes.base import PASSES


def _host(b: Builder, fn: str, *args: Value, types: tuple[TensorType | HostType, ...]) -> Value:
    return b.op(ops.HostOp, fn=fn, args=args, result_types=types, reason="test").results[0]


def _conv(b: Builder, x: Value, c: int = 3) -> Value:
    w = torch.arange(c * c, dtype=torch.float32).reshape(c, 1, 1, c) / 10
    return b.emit(ops.Conv2d, input=x, filter=b.const(w), bias=b.const(torch.zeros(c)))


def _mnemonics(p: Program) -> list[str]:
    return [op.mnemonic for op in p.compute_ops()]


def test_fold_constants_never_evaluates_a_host_op() -> None:
    b = Builder()
    x = b.input(float_type((4,)))
    h = _host(b, "torch.cumsum", b.const(torch.ones(4)), types=(float_type((4,)),))
    p = b.finish([b.emit(ops.Add, a=x, b=h)])
    res = PASSES["fold-constants"]().run(p)
    assert not res.changed and _mnemonics(res.program) == ["host", "add"]


def test_fuse_activation_never_fuses_into_a_host_producer() -> None:
    b = Builder()
    x = b.input(float_type((1, 4)))
    p = b.finish([b.emit(ops.Relu, x=_host(b, "torch.cumsum", x, types=(float_type((1, 4)),)))])
    res = PASSES["fuse-activation"]().run(p)
    assert not res.changed and _mnemonics(res.program) == ["host", "relu"]


def test_fold_bn_never_folds_into_a_host_op() -> None:
    b = Builder()
    x = b.input(float_type((1, 3, 4, 4)))
    h = _host(b, "torch.flip", x, types=(float_type((1, 3, 4, 4)),))
    y = b.emit(ops.Mul, a=h, b=b.const(torch.tensor([2.0, 3.0, 4.0]).reshape(3, 1, 1)))
    p = b.finish([b.emit(ops.Add, a=y, b=b.const(torch.ones(3, 1, 1)))])
    res = PASSES["fold-bn"]().run(p)
    assert not res.changed and _mnemonics(res.program) == ["host", "mul", "add"]


def test_dce_keeps_a_used_host_op_and_drops_an_unused_one() -> None:
    b = Builder()
    x = b.input(float_type((1, 4)))
    _host(b, "torch.sort", x, types=(float_type((1, 4)), HostType("int64[1,4]")))  # unread
    used = _host(b, "torch.cumsum", x, types=(float_type((1, 4)),))
    p = b.finish([b.emit(ops.Relu, x=used)])
    res = PASSES["dce"]().run(p)
    assert res.changed and _mnemonics(res.program) == ["host", "relu"]
    assert res.program.compute_ops()[0].fn == "torch.cumsum"  # type: ignore[attr-defined]


def conv_host_conv() -> Program:
    """conv -> host (reads the image) -> conv, and a host op making a non-tensor value."""
    b = Builder()
    x = b.input(float_type((1, 3, 4, 4)))
    y = _conv(b, x)
    h = _host(b, "torch.flip", y, types=(float_type((1, 3, 4, 4)),))
    z = b.emit(ops.Relu, x=_conv(b, h))
    idx = _host(b, "torch.argsort", z, types=(HostType("int64[1,3,4,4]"),))
    return b.finish([z, idx])


def test_layout_puts_no_transpose_on_either_side_of_a_host_op() -> None:
    res = PASSES["layout-nhwc"]().run(conv_host_conv())
    assert res.changed
    verify(res.program)  # HostOp's result_types follow its re-typed results
    text = print_program(res.program)
    assert "transpose" not in text, text
    host, *_ = [op for op in res.program.ops if isinstance(op, ops.HostOp)]
    assert host.args[0].type.dim_order is DimOrder.NHWC  # read as is: a channels_last view
    assert host.results[0].type.dim_order is DimOrder.NHWC  # converted on the host
    assert host.result_types == (host.results[0].type,)
    convs = [op for op in res.program.ops if isinstance(op, ops.Conv2d)]
    assert all(c.input.type.dim_order is DimOrder.NHWC for c in convs)
    assert not PASSES["layout-nhwc"]().run(res.program).changed


def test_layout_keeps_a_host_result_nchw_when_no_spatial_op_wants_it() -> None:
    b = Builder()
    x = b.input(float_type((1, 3, 4, 4)))
    h = _host(b, "torch.flip", x, types=(float_type((1, 3, 4, 4)),))
    p = b.finish([b.emit(ops.Reshape, x=h, shape=(1, 48))])
    assert not PASSES["layout-nhwc"]().run(p).changed


@pytest.mark.parametrize("name", sorted(PASSES))
def test_every_pass_runs_on_host_ops(name: str) -> None:
    res = PASSES[name]().run(conv_host_conv())
    verify(res.program, check_level=False)
    assert sum(isinstance(op, ops.HostOp) for op in res.program.ops) == 2


def test_default_pipeline_with_host_ops() -> None:
    out = pipeline.default_pipeline(verify_each=True).run(conv_host_conv())
    verify(out)  # full legality: host ops and HostType values are exempt from NNAPI rules
    assert _mnemonics(out) == ["conv_2d", "host", "conv_2d", "host"]  # relu fused
    assert "transpose" not in print_program(out)


def test_verifier_checks_host_op_ssa() -> None:
    b = Builder()
    x = b.input(float_type((4,)))
    late = Value(99, float_type((4,)))
    b.ops.append(ops.HostOp(results=(Value(1, float_type((4,))),), fn="torch.cumsum",
                            args=(x, late), result_types=(float_type((4,)),)))
    with pytest.raises(VerificationError, match="uses %99 before it is defined"):
        verify(b.finish([b.ops[0].results[0]]))
