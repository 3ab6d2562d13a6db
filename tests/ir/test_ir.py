"""IR: spec tables, typed values, printer golden output, verifier negative cases."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import torch

from nnapi_compiler.errors import VerificationError
from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.codes import OP_SPECS, OpCode, OperandCode, parse_target
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.ir.types import DimOrder, Quant, TensorType, Value, float_type
from nnapi_compiler.ir.verifier import verify
from tools.sync_spec import sha256sums

SPEC = Path(__file__).resolve().parents[3] / "shared" / "nnapi"


def test_spec_tables_match_their_pinned_hashes_and_shared() -> None:
    """The package's tables are the pinned ones (checked on every machine); where
    ../shared/nnapi sits beside the checkout, it must still hash to the pins too."""
    pkg = Path(__file__).resolve().parents[2] / "nnapi_compiler" / "ir" / "spec"
    pinned = (pkg / "SHA256SUMS").read_text()
    assert sha256sums(pkg) == pinned, "the package's spec tables differ from their pinned hashes"
    if SPEC.is_dir():
        assert sha256sums(SPEC) == pinned, "../shared/nnapi changed: run tools/sync_spec.py"


def test_codes_and_levels_come_from_the_tables() -> None:
    assert OpCode.CONV_2D == 3 and OpCode.HARD_SWISH == 99 and OpCode.RESIZE_NEAREST_NEIGHBOR == 94
    assert OP_SPECS[OpCode.HARD_SWISH].min_level == 4
    assert OP_SPECS[OpCode.DIV].min_level == 2
    assert "FLOAT16" not in OP_SPECS[OpCode.ADD].primary_types_at(2)
    assert "FLOAT16" in OP_SPECS[OpCode.ADD].primary_types_at(3)
    assert parse_target("android-11") == 4 and parse_target("FL6") == 6 and parse_target(3) == 3
    with pytest.raises(ValueError):
        parse_target("android-99")


def test_type_validators() -> None:
    with pytest.raises(ValueError, match="scale"):
        Quant(0.0, 0)
    with pytest.raises(ValueError, match="zero point"):
        TensorType(OperandCode.TENSOR_QUANT8_ASYMM, (1,), Quant(0.1, 300))
    with pytest.raises(ValueError, match="needs quantization"):
        TensorType(OperandCode.TENSOR_QUANT8_ASYMM, (1,))
    with pytest.raises(ValueError, match="not a tensor"):
        TensorType(OperandCode.INT32, (1,))
    with pytest.raises(ValueError, match="rank 4"):
        float_type((1, 2), DimOrder.NHWC)
    t = float_type((1, 8, 4, 4))
    with pytest.raises(ValueError):
        attrs.evolve(t, shape=(1, -2))


def _small() -> tuple[Builder, Value]:
    b = Builder()
    x = b.input(float_type((1, 3, 5, 5)))
    w = b.const(torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3, 3))
    bias = b.const(torch.zeros(2))
    y = b.emit(ops.Conv2d, input=x, filter=w, bias=bias, padding=ops.Padding(1, 1, 1, 1),
               stride=ops.HW(2, 2), fuse=1)
    return b, y


GOLDEN = """\
program @fl3 (%0:f32[1,3,5,5]) -> (%6) {
  %1:f32[2,3,3,3] = constant #22aa62a472fd
  %2:f32[2] = constant dense<0, 0>
  %3:f32[1,2,3,3] = conv_2d %0, %1, %2 {padding=(1,1,1,1), stride=(2,2), dilation=(1,1), fuse=FUSED_RELU}
  %4:f32[1,2,1,1] = max_pool_2d %3 {kernel=(3,3), padding=(0,0,0,0), stride=(1,1), fuse=FUSED_NONE}
  %5:f32[1,2] = reshape %4 {shape=[1,2]}
  %6:f32[1,2] = softmax %5 {axis=1, beta=1}
}"""


def test_printer_golden() -> None:
    b, y = _small()
    y = b.emit(ops.MaxPool2d, input=y, kernel=ops.HW(3, 3))
    y = b.emit(ops.Reshape, x=y, shape=(1, 2))
    y = b.emit(ops.Softmax, x=y, axis=1)
    p = b.finish([y])
    verify(p)
    assert print_program(p) == GOLDEN


def test_identical_constants_are_shared() -> None:
    b = Builder()
    assert b.const(torch.ones(3)) == b.const(torch.ones(3))
    assert b.const(torch.ones(3)) != b.const(torch.zeros(3))


def test_verifier_rejects_op_above_target_level() -> None:
    b = Builder(level=3)
    x = b.input(float_type((1, 4)))
    p = b.finish([b.emit(ops.HardSwish, x=x)])
    with pytest.raises(VerificationError, match="needs feature level 4"):
        verify(p)
    verify(attrs.evolve(p, level=4))


def test_verifier_rejects_wrong_result_type_with_context() -> None:
    b, y = _small()
    p = b.finish([y])
    conv = p.ops[-1]
    bad = attrs.evolve(conv, results=(Value(conv.result.id, float_type((1, 2, 5, 5))),))
    with pytest.raises(VerificationError, match=r"!= inferred f32\[1,2,3,3\]") as e:
        verify(attrs.evolve(p, ops=(*p.ops[:-1], bad)))
    assert ">>" in str(e.value)  # the failing op is marked in the printed context


def test_verifier_rejects_use_before_definition_and_redefinition() -> None:
    b, y = _small()
    p = b.finish([y])
    with pytest.raises(VerificationError, match="before it is defined"):
        verify(attrs.evolve(p, ops=p.ops[::-1]))
    with pytest.raises(VerificationError, match="redefines"):
        verify(attrs.evolve(p, ops=(*p.ops, p.ops[-1])))
    with pytest.raises(VerificationError, match="never defined"):
        verify(attrs.evolve(p, outputs=(Value(99, y.type),)))


def test_verifier_rejects_bad_shapes_and_types() -> None:
    b = Builder()
    x = b.input(float_type((1, 4)))
    w = b.const(torch.ones(3, 5))
    with pytest.raises(VerificationError, match="flatten"):
        verify(b.finish([b.emit(ops.FullyConnected, input=x, weights=w, bias=b.const(torch.ones(3)))]))
    b = Builder()
    x = b.input(float_type((1, 4)))
    i = b.const(torch.ones(1, 4, dtype=torch.int32))
    with pytest.raises(VerificationError, match="operand types differ"):
        verify(b.finish([b.emit(ops.Add, a=x, b=i)]))
    b = Builder()
    x = b.input(float_type((1, 3, 4, 4)))
    with pytest.raises(VerificationError, match="smaller than the window"):
        verify(b.finish([b.emit(ops.MaxPool2d, input=x, kernel=ops.HW(2, 2),
                                padding=ops.Padding(2, 0, 0, 0))]))
    b = Builder()
    x = b.input(float_type((1, 3, 4, 4)))
    with pytest.raises(VerificationError, match="not a permutation"):
        verify(b.finish([b.emit(ops.Transpose, x=x, perm=(0, 1, 1, 2))]))


def test_host_op_prints_verifies_and_is_not_serialized() -> None:
    from nnapi_compiler.backend.flatten import flatten

    b = Builder()
    x = b.input(float_type((1, 3)))
    y = b.emit(ops.HostOp, fn="torch.cumsum", args=(x,), result_types=(float_type((1, 3)),),
               reason="no NNAPI op")
    z = b.emit(ops.Relu, x=y)
    p = b.finish([z])
    verify(p)  # host ops are legal at every level: they never reach NNAPI
    assert "%1:f32[1,3] = host %0 {fn=torch.cumsum}" in print_program(p)
    with pytest.raises(VerificationError, match="not an NNAPI op"):
        flatten(p)
    b.op(ops.HostOp, fn="f", args=(x,), result_types=())
    with pytest.raises(VerificationError, match="no results"):
        verify(b.finish([z]))
