"""The rewrite driver: dispatch through the class hierarchy, fixed point, dead-op erasure, cost."""

from __future__ import annotations

import torch

from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.ops.base import NnapiOp, Op
from nnapi_compiler.ir.ops.elementwise import _Binary
from nnapi_compiler.ir.parser import parse_program
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.ir.program import Program
from nnapi_compiler.ir.types import Value, float_type
from nnapi_compiler.ir.verifier import verify
from nnapi_compiler.passes.fold_bn import _mul_or_add
from nnapi_compiler.passes.rewrite import Rewriter, rewrite_ops

CHAIN = """\
program @fl3 (%0:f32[2]) -> (%4) {
  %1:f32[2] = relu %0
  %2:f32[2] = relu %1
  %3:f32[2] = relu %2
  %4:f32[2] = relu %3
}"""


def _relu_of_relu(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
    inner = rw.defining(op.x)  # type: ignore[attr-defined]
    return (inner.result,) if isinstance(inner, ops.Relu) else None


def test_runs_to_a_fixed_point_and_erases_what_it_leaves_unread() -> None:
    p, changed = rewrite_ops(parse_program(CHAIN), {ops.Relu: _relu_of_relu})
    assert changed
    assert print_program(p) == "program @fl3 (%0:f32[2]) -> (%1) {\n  %1:f32[2] = relu %0\n}"


def test_without_recursion_a_rule_never_sees_its_own_output() -> None:
    for recursive, want in ((True, 2), (False, 1)):
        calls = 0

        def relu_first(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
            nonlocal calls
            calls += 1
            if isinstance(rw.defining(op.x), ops.Relu):  # type: ignore[attr-defined]
                return None
            return (rw.b.emit(ops.Tanh, x=rw.b.emit(ops.Relu, x=op.x)),)  # type: ignore[attr-defined]

        p = parse_program("program @fl3 (%0:f32[2]) -> (%1) {\n  %1:f32[2] = tanh %0\n}")
        out, _ = rewrite_ops(p, {ops.Tanh: relu_first}, recursive=recursive)
        assert calls == want and [op.mnemonic for op in out.ops] == ["relu", "tanh"]


def test_rules_dispatch_through_the_class_hierarchy() -> None:
    seen: list[str] = []

    def note(rw: Rewriter, op: Op) -> None:
        seen.append(op.mnemonic)

    p = parse_program("""\
program @fl3 (%0:f32[2]) -> (%3) {
  %1:f32[2] = add %0, %0 {fuse=FUSED_NONE}
  %2:f32[2] = mul %1, %1 {fuse=FUSED_NONE}
  %3:f32[2] = relu %2
}""")
    rewrite_ops(p, {_Binary: note})
    assert seen == ["add", "mul"]
    seen.clear()
    rewrite_ops(p, {NnapiOp: note, ops.Relu: lambda rw, op: None})  # the most derived wins
    assert seen == ["add", "mul"]


def test_ops_dead_before_the_run_stay_for_dce() -> None:
    p = parse_program("""\
program @fl3 (%0:f32[2]) -> (%2) {
  %1:f32[2] = tanh %0
  %2:f32[2] = relu %0
}""")
    out, changed = rewrite_ops(p, {ops.Relu: lambda rw, op: None})
    assert not changed and out is p


def test_new_constants_go_to_the_head_and_are_shared() -> None:
    def add_one(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
        if not isinstance(op, ops.Tanh):
            return None
        one = rw.b.const(torch.ones(2))
        assert rw.b.const(torch.ones(2)) == one  # identical data, one value
        return (rw.b.emit(ops.Add, a=op.x, b=one),)

    p = parse_program(CHAIN.replace("relu %2", "tanh %2"))
    out, _ = rewrite_ops(p, {ops.Tanh: add_one})
    verify(out)
    assert out.ops[0].mnemonic == "constant" and out.ops[-2].mnemonic == "add"


def _blocks(n: int) -> Program:
    b = Builder()
    x = b.input(float_type((1, 2, 4, 4)))
    for i in range(n):
        w = torch.full((2, 1, 1, 2), float(i + 1))
        x = b.emit(ops.Conv2d, input=x, filter=b.const(w), bias=b.const(torch.zeros(2) + i))
        x = b.emit(ops.Mul, a=x, b=b.const(torch.tensor([2.0, 3.0 + i]).reshape(2, 1, 1)))
        x = b.emit(ops.Add, a=x, b=b.const(torch.tensor([1.0, -1.0 - i]).reshape(2, 1, 1)))
    return b.finish([x])


def test_work_grows_linearly_with_the_program() -> None:
    """fold-bn's rule calls (the driver's unit of work) per block stay flat as programs grow."""
    calls: dict[int, int] = {}
    for n in (25, 100):
        count = 0

        def counting(rw: Rewriter, op: Op) -> tuple[Value, ...] | None:
            nonlocal count
            count += 1
            return _mul_or_add(rw, op)

        p, _ = rewrite_ops(_blocks(n), {ops.Mul: counting, ops.Add: counting})
        assert [op.mnemonic for op in p.compute_ops()] == ["conv_2d"] * n
        calls[n] = count
    assert calls[100] == 4 * calls[25]
