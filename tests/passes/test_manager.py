"""The pass manager: hooks that verify, print and time each pass; errors that name the pass."""

from __future__ import annotations

import io
from typing import ClassVar

import attrs
import pytest
import torch

from nnapi_compiler.errors import InternalError, QuantizationError, VerificationError
from nnapi_compiler.ir import ops
from nnapi_compiler.ir.ops.base import Loc, Op
from nnapi_compiler.ir.parser import parse_program
from nnapi_compiler.ir.program import Program
from nnapi_compiler.passes.base import PassManager, PassResult, PrintHook, TimeHook, parse_pipeline
from nnapi_compiler.passes.requantize_bias import quantize_bias
from nnapi_compiler.passes.rewrite import rewrite_ops

PROGRAM = """\
program @fl3 (%0:f32[1,4]) -> (%3) {
  %1:f32[1] = constant dense<1>
  %2:f32[1,4] = add %0, %1 {fuse=FUSED_NONE}
  %3:f32[1,4] = relu %2
}"""


@attrs.frozen
class Raises:
    """A pass that fails with ``error``."""

    error: Exception
    name: ClassVar[str] = "raises"

    def run(self, program: Program) -> PassResult:
        raise self.error


@attrs.frozen
class FailingRule:
    """A pass whose rewrite rule fails on the op it is given."""

    name: ClassVar[str] = "failing-rule"

    def run(self, program: Program) -> PassResult:
        def boom(rw: object, op: Op) -> None:
            raise KeyError("no such thing")

        p, changed = rewrite_ops(program, {ops.Relu: boom})
        return PassResult(p, changed)


@attrs.frozen
class BreaksSsa:
    """A pass that drops the op defining a value still in use."""

    name: ClassVar[str] = "breaks-ssa"

    def run(self, program: Program) -> PassResult:
        return PassResult(attrs.evolve(program, ops=program.ops[1:]), True)


@attrs.frozen
class Dishonest:
    name: ClassVar[str] = "dishonest"

    def run(self, program: Program) -> PassResult:
        return PassResult(attrs.evolve(program, ops=program.ops[:-1]), False)


def _program() -> Program:
    p = parse_program(PROGRAM)
    relu = attrs.evolve(p.ops[-1], loc=Loc("act", "torch.relu", "model.py:12"))
    return attrs.evolve(p, ops=(*p.ops[:-1], relu))


def test_an_exception_in_a_pass_names_it_and_the_passes_before() -> None:
    pm = PassManager([*parse_pipeline("legalize,dce"), Raises(ValueError("bad index"))])
    with pytest.raises(InternalError) as info:
        pm.run(_program())
    e = info.value
    assert (e.pass_name, e.passes_before) == ("raises", ("legalize", "dce"))
    assert isinstance(e.__cause__, ValueError)
    assert "in pass raises (passes run before it: legalize, dce)" in str(e)


def test_a_failing_rule_names_the_model_node_and_source_line() -> None:
    with pytest.raises(InternalError) as info:
        PassManager([FailingRule()]).run(_program())
    e = info.value
    assert (e.pass_name, e.node, e.source) == ("failing-rule", "act", "model.py:12")
    assert "no such thing" in str(e) and "while rewriting act at model.py:12" in str(e)
    assert isinstance(e.__cause__, InternalError) and isinstance(e.__cause__.__cause__, KeyError)


def test_user_facing_errors_keep_their_type_and_gain_the_pass() -> None:
    try:
        quantize_bias(torch.tensor([1e9]), 1e-6, "conv1")
    except QuantizationError as err:
        error = err
    pm = PassManager([*parse_pipeline("legalize"), Raises(error)])
    with pytest.raises(QuantizationError) as info:
        pm.run(_program())
    assert "in pass raises (passes run before it: legalize)" in info.value.__notes__


def test_verify_each_names_the_pass_that_broke_the_ir() -> None:
    with pytest.raises(VerificationError, match="after pass breaks-ssa"):
        PassManager([*parse_pipeline("dce"), BreaksSsa()], verify_each=True).run(_program())
    PassManager([BreaksSsa()]).run(_program())  # not verified without the hook


def test_a_pass_that_hides_a_change_is_caught() -> None:
    with pytest.raises(InternalError, match="changed the program but said it did not"):
        PassManager([Dishonest()]).run(_program())


def test_hooks_print_and_time_each_pass() -> None:
    out, timer = io.StringIO(), TimeHook()
    pm = PassManager(parse_pipeline("fuse-activation,dce"), hooks=[PrintHook(out), timer])
    pm.run(_program())
    assert [name for name, _ in timer.times] == ["fuse-activation", "dce"]
    assert all(s >= 0 for _, s in timer.times)
    text = out.getvalue()
    assert text.startswith("// after input\n") and "// after fuse-activation\n" in text
    assert "{fuse=FUSED_RELU}" in text and "// after dce" not in text  # dce changed nothing
    assert pm.log == [("fuse-activation", True), ("dce", False)]
