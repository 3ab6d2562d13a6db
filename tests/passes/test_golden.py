"""Before/after IR for each pass on small programs, plus semantics, idempotence and honest flags."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from nnapi_compiler.backend.flatten import flatten
from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.ops.resize import Interpolate
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.ir.program import Program
from nnapi_compiler.ir.types import float_type
from nnapi_compiler.ir.verifier import verify
from nnapi_compiler.passes import pipeline  # noqa: F401 - registers every pass
from nnapi_compiler.passes.base import PASSES
from nnapi_compiler.runtime.interpreter import execute


def _w(*shape: int) -> torch.Tensor:
    return torch.arange(torch.Size(shape).numel(), dtype=torch.float32).reshape(shape) / 10 - 1


def conv_bn_relu() -> Program:
    b = Builder()
    x = b.input(float_type((1, 2, 4, 4)))
    y = b.emit(ops.Conv2d, input=x, filter=b.const(_w(3, 1, 1, 2)), bias=b.const(torch.ones(3)))
    y = b.emit(ops.Mul, a=y, b=b.const(torch.tensor([2.0, 3.0, 4.0]).reshape(3, 1, 1)))
    y = b.emit(ops.Add, a=y, b=b.const(torch.tensor([0.5, -0.5, 1.0]).reshape(3, 1, 1)))
    return b.finish([b.emit(ops.Relu6, x=y)])


def add_relu_shared() -> Program:
    b = Builder()
    x = b.input(float_type((1, 4)))
    s = b.emit(ops.Add, a=x, b=x)
    r = b.emit(ops.Relu, x=s)
    t = b.emit(ops.Sub, a=x, b=b.const(torch.ones(1)))
    return b.finish([r, b.emit(ops.Relu1, x=t), s])  # s is also an output: no fusion into it


def image_head() -> Program:
    b = Builder()
    x = b.input(float_type((1, 2, 6, 6)))
    y = b.emit(ops.Conv2d, input=x, filter=b.const(_w(4, 3, 3, 2)), bias=b.const(torch.zeros(4)),
               padding=ops.Padding(1, 1, 1, 1))
    y = b.emit(ops.Add, a=y, b=b.const(torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1)))
    c = b.emit(ops.Concatenation, xs=(y, y), axis=1)
    m = b.emit(ops.Mean, x=c, axes=(2, 3), keep_dims=True)
    f = b.emit(ops.Reshape, x=m, shape=(1, 8))
    s = b.emit(ops.Softmax, x=c, axis=1)
    return b.finish([b.emit(ops.FullyConnected, input=f, weights=b.const(_w(3, 8)),
                            bias=b.const(torch.zeros(3))), s])


def upsample_nearest() -> Program:
    b = Builder(level=3)
    x = b.input(float_type((1, 2, 3, 5)))
    return b.finish([b.emit(Interpolate, x=x, mode="nearest", out_h=6, out_w=8)])


def dead_and_duplicates() -> Program:
    b = Builder()
    x = b.input(float_type((2, 3)))
    b.emit(ops.Relu, x=x)  # dead
    one = b.const(torch.ones(3))
    y = b.emit(ops.Add, a=x, b=one)
    return b.finish([b.emit(ops.Mul, a=y, b=one)])


PROGRAMS: dict[str, tuple[Callable[[], Program], str]] = {
    "fold-bn": (conv_bn_relu, "fold-bn"),
    "fuse-activation": (add_relu_shared, "fuse-activation"),
    "layout-nhwc": (image_head, "layout-nhwc"),
    "simplify-upsample": (upsample_nearest, "simplify-upsample"),
    "dce": (dead_and_duplicates, "dce"),
}


GOLDEN = {
    "fold-bn": """\
program @fl3 (%0:f32[1,2,4,4]) -> (%8) {
  %9:f32[3,1,1,2] = constant #86b4ae8ce238
  %11:f32[3] = constant #a746ad602cfc
  %3:f32[1,3,4,4] = conv_2d %0, %9, %11 {padding=(0,0,0,0), stride=(1,1), dilation=(1,1), fuse=FUSED_NONE}
  %8:f32[1,3,4,4] = relu6 %3
}""",
    "fuse-activation": """\
program @fl3 (%0:f32[1,4]) -> (%2, %4, %1) {
  %1:f32[1,4] = add %0, %0 {fuse=FUSED_NONE}
  %2:f32[1,4] = relu %1
  %3:f32[1] = constant #e9b738347b11
  %4:f32[1,4] = sub %0, %3 {fuse=FUSED_RELU1}
}""",
    "layout-nhwc": """\
program @fl3 (%0:f32[1,6,6,2]:nhwc) -> (%12, %18) {
  %14:f32[1,1,1,4]:nhwc = constant #66efc0af4155
  %1:f32[4,3,3,2] = constant #a953c06cd3f3
  %2:f32[4] = constant #667db0c66161
  %13:f32[1,6,6,4]:nhwc = conv_2d %0, %1, %2 {padding=(1,1,1,1), stride=(1,1), dilation=(1,1), fuse=FUSED_NONE}
  %15:f32[1,6,6,4]:nhwc = add %13, %14 {fuse=FUSED_NONE}
  %16:f32[1,6,6,8]:nhwc = concatenation %15, %15 {axis=3}
  %17:f32[1,1,1,8]:nhwc = mean %16 {axes=[1,2], keep_dims=True}
  %8:f32[1,8] = reshape %17 {shape=[1,8]}
  %18:f32[1,6,6,8]:nhwc = softmax %16 {axis=3, beta=1}
  %10:f32[3,8] = constant #b8d5ea61346c
  %11:f32[3] = constant #44851945cc0c
  %12:f32[1,3] = fully_connected %8, %10, %11 {fuse=FUSED_NONE}
}""",
    "simplify-upsample": """\
program @fl3 (%0:f32[1,2,3,5]) -> (%2) {
  %2:f32[1,2,6,8] = resize_nearest_neighbor %0 {out_h=6, out_w=8, align_corners=False, half_pixel_centers=False}
}""",
    "dce": """\
program @fl3 (%0:f32[2,3]) -> (%4) {
  %2:f32[3] = constant #a203889155ba
  %3:f32[2,3] = add %0, %2 {fuse=FUSED_NONE}
  %4:f32[2,3] = mul %3, %2 {fuse=FUSED_NONE}
}""",
}


def _run(p: Program, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Execute ``p`` on PyTorch-layout inputs; return PyTorch-layout outputs."""
    phys = [x.permute(0, 2, 3, 1).contiguous() if v.type.dim_order.value == "nhwc" else x
            for x, v in zip(inputs, p.inputs, strict=True)]
    outs = execute(flatten(p).resolved(), phys, p.level)
    return [o.permute(0, 3, 1, 2) if v.type.dim_order.value == "nhwc" else o
            for o, v in zip(outs, p.outputs, strict=True)]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_before_after(name: str) -> None:
    make, pass_name = PROGRAMS[name]
    res = PASSES[pass_name]().run(make())
    assert res.changed
    assert print_program(res.program) == GOLDEN[name]
    verify(res.program)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_idempotent_and_honest(name: str) -> None:
    make, pass_name = PROGRAMS[name]
    once = PASSES[pass_name]().run(make()).program
    again = PASSES[pass_name]().run(once)
    assert not again.changed and again.program == once


@pytest.mark.parametrize("name", ["fold-bn", "fuse-activation", "layout-nhwc", "dce"])
def test_semantics_preserved(name: str) -> None:
    make, pass_name = PROGRAMS[name]
    before = make()
    after = PASSES[pass_name]().run(before).program
    torch.manual_seed(0)
    inputs = [torch.randn(v.type.shape) for v in before.inputs]
    for got, ref in zip(_run(after, inputs), _run(before, inputs), strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_upsample_semantics_against_torch() -> None:
    after = PASSES["simplify-upsample"]().run(upsample_nearest()).program
    x = torch.randn(1, 2, 3, 5)
    (got,) = _run(after, [x])
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
