"""The IR parser reads back what the printer writes: random programs, before and after the pipeline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from nnapi_compiler.ir.codes import OperandCode
from nnapi_compiler.ir.parser import ParseError, parse_program, parse_type
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.ir.program import Program
from nnapi_compiler.ir.types import DimOrder, HostType, Quant, TensorType
from nnapi_compiler.passes import pipeline

from ..fuzz.ir_recipes import Recipe
from ..fuzz.ir_strategies import recipes
from ..fuzz.profiles import examples


def _round_trip(p: Program) -> None:
    consts = {c.digest: c.data for c in p.constants().values()}
    text = print_program(p)
    q = parse_program(text, consts)
    assert print_program(q) == text
    assert q == p  # constants compare by bytes: dense<...> values are exact


@settings(max_examples=examples(1.0))
@given(recipe=recipes())
def test_random_programs_read_back_equal(recipe: Recipe) -> None:
    p = recipe.build()
    _round_trip(p)
    _round_trip(pipeline.default_pipeline().run(p))


def test_types() -> None:
    t = TensorType(OperandCode.TENSOR_QUANT8_ASYMM, (1, None, 4, 2), Quant(0.5, 3), DimOrder.NHWC)
    assert parse_type(str(t)) == t
    assert parse_type("host<int64[1, 2]>") == HostType("int64[1, 2]")


@pytest.mark.parametrize(("text", "match"), [
    ("program @fl3 (%0:f32[2]) -> (%1) {\n  %1:f32[2] = frobnicate %0\n}", "unknown op 'frobnicate'"),
    ("program @fl3 (%0:f32[2]) -> (%1) {\n  %1:f32[2] = relu %7\n}", "(?s)line 2: .*%7 is not defined"),
    ("program @fl3 (%0:f32[2]) -> (%1) {\n  %1:f32[2] = constant #w\n}", "pass it in consts"),
    ("program (%0:f32[2]) -> (%0) {\n}", "expected 'program @flN"),
])
def test_errors_name_the_line(text: str, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        parse_program(text)


def test_host_ops_read_back() -> None:
    text = """\
program @fl3 (%0:f32[1,3]) -> (%2, %3) {
  %1:f32[1,3] = host %0 {fn=torch.cumsum}
  %2:f32[1,3] = relu %1
  %3:host<int64[1,3]> = host %1 {fn=torch.argsort}
}"""
    p = parse_program(text)
    assert print_program(p) == text
    assert p.ops[2].result_types == (HostType("int64[1,3]"),)  # type: ignore[attr-defined]
