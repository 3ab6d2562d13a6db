"""Before/after IR text for each pass on small programs, plus semantics, idempotence and honest flags.

Each case is a pass name, the program it reads and the program it must return, both as the IR
text ``print_program`` writes (``parse_program`` reads the first). Big constants are named in
the input (``#filter``, data in ``CONSTS``) and print as a digest of their bytes; small ones are
written out (``dense<...>``).
"""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.parser import parse_program
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.ir.program import Program
from nnapi_compiler.ir.types import float_type
from nnapi_compiler.ir.verifier import verify
from nnapi_compiler.passes import pipeline  # noqa: F401 - registers every pass
from nnapi_compiler.passes.base import PASSES

from ..fuzz.ir_run import run_program


def _w(*shape: int) -> torch.Tensor:
    return torch.arange(torch.Size(shape).numel(), dtype=torch.float32).reshape(shape) / 10 - 1


CONSTS = {"filter": _w(4, 3, 3, 2), "fc": _w(3, 8)}
DIGESTS = {"#filter": "#a953c06cd3f3", "#fc": "#b8d5ea61346c"}  # how the printer shows them

#: case -> (pass, program before, program the pass must return)
GOLDEN: dict[str, tuple[str, str, str]] = {
    "fold-bn": ("fold-bn", """\
program @fl3 (%0:f32[1,2,4,4]) -> (%8) {
  %1:f32[3,1,1,2] = constant dense<-1, -0.9, -0.8, -0.7, -0.6, -0.5>
  %2:f32[3] = constant dense<1, 1, 1>
  %3:f32[1,3,4,4] = conv_2d %0, %1, %2 {padding=(0,0,0,0), stride=(1,1), dilation=(1,1), fuse=FUSED_NONE}
  %4:f32[3,1,1] = constant dense<2, 3, 4>
  %5:f32[1,3,4,4] = mul %3, %4 {fuse=FUSED_NONE}
  %6:f32[3,1,1] = constant dense<0.5, -0.5, 1>
  %7:f32[1,3,4,4] = add %5, %6 {fuse=FUSED_NONE}
  %8:f32[1,3,4,4] = relu6 %7
}""", """\
program @fl3 (%0:f32[1,2,4,4]) -> (%8) {
  %9:f32[3,1,1,2] = constant dense<-2, -1.8, -2.4, -2.1, -2.4, -2>
  %11:f32[3] = constant dense<2.5, 2.5, 5>
  %3:f32[1,3,4,4] = conv_2d %0, %9, %11 {padding=(0,0,0,0), stride=(1,1), dilation=(1,1), fuse=FUSED_NONE}
  %8:f32[1,3,4,4] = relu6 %3
}"""),
    "fuse-activation": ("fuse-activation", """\
program @fl3 (%0:f32[1,4]) -> (%2, %5, %1) {
  %1:f32[1,4] = add %0, %0 {fuse=FUSED_NONE}
  %2:f32[1,4] = relu %1
  %3:f32[1] = constant dense<1>
  %4:f32[1,4] = sub %0, %3 {fuse=FUSED_NONE}
  %5:f32[1,4] = relu1 %4
}""", """\
program @fl3 (%0:f32[1,4]) -> (%2, %4, %1) {
  %1:f32[1,4] = add %0, %0 {fuse=FUSED_NONE}
  %2:f32[1,4] = relu %1
  %3:f32[1] = constant dense<1>
  %4:f32[1,4] = sub %0, %3 {fuse=FUSED_RELU1}
}"""),
    "layout-nhwc": ("layout-nhwc", """\
program @fl3 (%0:f32[1,2,6,6]) -> (%12, %9) {
  %1:f32[4,3,3,2] = constant #filter
  %2:f32[4] = constant dense<0, 0, 0, 0>
  %3:f32[1,4,6,6] = conv_2d %0, %1, %2 {padding=(1,1,1,1), stride=(1,1), dilation=(1,1), fuse=FUSED_NONE}
  %4:f32[4,1,1] = constant dense<1, 2, 3, 4>
  %5:f32[1,4,6,6] = add %3, %4 {fuse=FUSED_NONE}
  %6:f32[1,8,6,6] = concatenation %5, %5 {axis=1}
  %7:f32[1,8,1,1] = mean %6 {axes=[2,3], keep_dims=True}
  %8:f32[1,8] = reshape %7 {shape=[1,8]}
  %9:f32[1,8,6,6] = softmax %6 {axis=1, beta=1}
  %10:f32[3,8] = constant #fc
  %11:f32[3] = constant dense<0, 0, 0>
  %12:f32[1,3] = fully_connected %8, %10, %11 {fuse=FUSED_NONE}
}""", """\
program @fl3 (%0:f32[1,6,6,2]:nhwc) -> (%12, %18) {
  %14:f32[1,1,1,4]:nhwc = constant dense<1, 2, 3, 4>
  %1:f32[4,3,3,2] = constant #a953c06cd3f3
  %2:f32[4] = constant dense<0, 0, 0, 0>
  %13:f32[1,6,6,4]:nhwc = conv_2d %0, %1, %2 {padding=(1,1,1,1), stride=(1,1), dilation=(1,1), fuse=FUSED_NONE}
  %15:f32[1,6,6,4]:nhwc = add %13, %14 {fuse=FUSED_NONE}
  %16:f32[1,6,6,8]:nhwc = concatenation %15, %15 {axis=3}
  %17:f32[1,1,1,8]:nhwc = mean %16 {axes=[1,2], keep_dims=True}
  %8:f32[1,8] = reshape %17 {shape=[1,8]}
  %18:f32[1,6,6,8]:nhwc = softmax %16 {axis=3, beta=1}
  %10:f32[3,8] = constant #b8d5ea61346c
  %11:f32[3] = constant dense<0, 0, 0>
  %12:f32[1,3] = fully_connected %8, %10, %11 {fuse=FUSED_NONE}
}"""),
    "simplify-upsample": ("simplify-upsample", """\
program @fl3 (%0:f32[1,2,3,5]) -> (%1) {
  %1:f32[1,2,6,8] = interpolate %0 {mode=nearest, out_h=6, out_w=8, align_corners=False}
}""", """\
program @fl3 (%0:f32[1,2,3,5]) -> (%2) {
  %2:f32[1,2,6,8] = resize_nearest_neighbor %0 {out_h=6, out_w=8, align_corners=False, half_pixel_centers=False}
}"""),
    "dce": ("dce", """\
program @fl3 (%0:f32[2,3]) -> (%4) {
  %1:f32[2,3] = relu %0
  %2:f32[3] = constant dense<1, 1, 1>
  %3:f32[2,3] = add %0, %2 {fuse=FUSED_NONE}
  %4:f32[2,3] = mul %3, %2 {fuse=FUSED_NONE}
}""", """\
program @fl3 (%0:f32[2,3]) -> (%4) {
  %2:f32[3] = constant dense<1, 1, 1>
  %3:f32[2,3] = add %0, %2 {fuse=FUSED_NONE}
  %4:f32[2,3] = mul %3, %2 {fuse=FUSED_NONE}
}"""),
    "share-constants": ("share-constants", """\
program @fl3 (%0:f32[2,3]) -> (%4) {
  %1:f32[3] = constant dense<1, 2, 3>
  %2:f32[3] = constant dense<1, 2, 3>
  %3:f32[2,3] = add %0, %1 {fuse=FUSED_NONE}
  %4:f32[2,3] = mul %3, %2 {fuse=FUSED_NONE}
}""", """\
program @fl3 (%0:f32[2,3]) -> (%4) {
  %1:f32[3] = constant dense<1, 2, 3>
  %3:f32[2,3] = add %0, %1 {fuse=FUSED_NONE}
  %4:f32[2,3] = mul %3, %1 {fuse=FUSED_NONE}
}"""),
    "simplify-reshape": ("simplify-reshape", """\
program @fl3 (%0:f32[1,2,4,4]) -> (%3) {
  %1:f32[4,8] = reshape %0 {shape=[4,8]}
  %2:f32[1,2,4,4] = reshape %1 {shape=[1,2,4,4]}
  %3:f32[1,2,4,4] = relu %2
}""", """\
program @fl3 (%0:f32[1,2,4,4]) -> (%3) {
  %3:f32[1,2,4,4] = relu %0
}"""),
}


def before(name: str) -> Program:
    return parse_program(GOLDEN[name][1], CONSTS)


def after(name: str) -> Program:
    return PASSES[GOLDEN[name][0]]().run(before(name)).program


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_input_text_reads_back_as_written(name: str) -> None:
    text = GOLDEN[name][1]
    for ref, digest in DIGESTS.items():
        text = text.replace(ref, digest)
    assert print_program(before(name)) == text


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_before_after(name: str) -> None:
    pass_name, _, expected = GOLDEN[name]
    res = PASSES[pass_name]().run(before(name))
    assert res.changed
    assert print_program(res.program) == expected
    verify(res.program)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_idempotent_and_honest(name: str) -> None:
    once = after(name)
    again = PASSES[GOLDEN[name][0]]().run(once)
    assert not again.changed and again.program == once


@pytest.mark.parametrize("name", sorted(set(GOLDEN) - {"simplify-upsample"}))  # see below
def test_semantics_preserved(name: str) -> None:
    p = before(name)
    torch.manual_seed(0)
    inputs = [torch.randn(v.type.shape) for v in p.inputs]
    for got, ref in zip(run_program(after(name), inputs), run_program(p, inputs), strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_upsample_semantics_against_torch() -> None:
    x = torch.randn(1, 2, 3, 5)
    (got,) = run_program(after("simplify-upsample"), [x])
    torch.testing.assert_close(got, torch.nn.functional.interpolate(x, size=(6, 8)))


@pytest.mark.parametrize("pass_name", sorted(PASSES))
def test_unchanged_program_is_returned_as_is(pass_name: str) -> None:
    b = Builder()
    x = b.input(float_type((2, 3)))
    p = b.finish([b.emit(ops.Tanh, x=x)])
    res = PASSES[pass_name]().run(p)
    assert not res.changed and res.program == p


def test_fold_constants_evaluates_with_nnapi_semantics() -> None:
    b = Builder()
    x = b.input(float_type((1, 3)))
    c = b.emit(ops.Relu6, x=b.const(torch.tensor([[-1.0, 3.0, 9.0]])))
    p = b.finish([b.emit(ops.Add, a=x, b=c)])
    res = PASSES["fold-constants"]().run(p)
    assert res.changed and [op.mnemonic for op in res.program.compute_ops()] == ["add"]
    (folded,) = [op for op in res.program.ops if op.mnemonic == "constant"
                 and torch.equal(op.data, torch.tensor([[0.0, 3.0, 6.0]]))]
    assert folded.result in res.program.ops[-1].inputs()
