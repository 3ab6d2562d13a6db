"""Legality at a target level, from operations.tsv: one test per rule kind, parametrized over ops.

Rule kinds: the op exists at the level, its primary operand type exists at the level, the operand
types exist at the level, optional trailing inputs (layout flag, dilation, align_corners...) exist
at the level, and operand ranks. The parser of the table's wordings is tested on every row.
"""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.codes import _OPERATION_ROWS, OP_SPECS, OpCode, OperandCode
from nnapi_compiler.ir.legality import (
    DRIVER_RANK_CAP,
    RANK_RULES,
    SIGNATURES,
    SpecError,
    inputs_level,
    parse_rank_rule,
    parse_signatures,
    rank_problem,
)
from nnapi_compiler.ir.ops.elementwise import _Unary
from nnapi_compiler.ir.types import DimOrder, Quant, TensorType, float_type
from nnapi_compiler.ir.verifier import nnapi_refusal
from nnapi_compiler.reference import KERNELS

UNARY = sorted((c for c in vars(ops).values() if isinstance(c, type) and issubclass(c, _Unary)
                and c is not _Unary), key=lambda c: c.__name__)


# -- the parser ----------------------------------------------------------------------------------


def test_every_row_parses() -> None:
    assert set(RANK_RULES) == set(SIGNATURES) == {int(r["code"]) for r in _OPERATION_ROWS}
    for r in _OPERATION_ROWS:
        rule = RANK_RULES[int(r["code"])]
        words = any(s.strip().lower().startswith(("rank", "input rank", "output rank", "before fl"))
                    for s in r["notes"].split(";"))
        assert rule.stated == words, r["name"]
        if "[" in r["inputs"] and any(f"[{i} " in r["inputs"] for i in range(20)):
            assert SIGNATURES[int(r["code"])], r["name"]


@pytest.mark.parametrize("notes", [
    "rank at most 4", "rank<=4 (rank<3 since FL4)", "rank >= 2", "rank 4 or 5", "before FL3 rank 2",
])
def test_unknown_rank_wording_fails_loudly(notes: str) -> None:
    with pytest.raises(SpecError):
        parse_rank_rule(notes, "0 input:T")


def test_unknown_optional_input_wording_fails_loudly() -> None:
    with pytest.raises(SpecError):
        parse_signatures("0 input:T; [1 axis:INT32 FL3]; 2 beta:FLOAT32", 1)
    with pytest.raises(SpecError):
        parse_signatures("0 input:T; [axis FL3] [1 x]", 1)


def test_parsed_rules_say_what_the_table_says() -> None:
    r = RANK_RULES
    assert (r[OpCode.CONV_2D].lo, r[OpCode.CONV_2D].hi) == (4, 4)
    assert (r[OpCode.ADD].lo, r[OpCode.ADD].hi) == (1, 4)
    assert (r[OpCode.BATCH_MATMUL].lo, r[OpCode.BATCH_MATMUL].hi) == (2, 4)
    assert r[OpCode.REVERSE].hi == 8 and r[OpCode.ABS].hi is None
    assert r[OpCode.FILL].which == "output" and r[OpCode.UNIDIRECTIONAL_SEQUENCE_LSTM].lo == 3
    assert r[OpCode.SOFTMAX].early == {2, 4} and r[OpCode.SOFTMAX].until == 3
    assert r[OpCode.L2_NORMALIZATION].early == {4}
    assert r[OpCode.LOCAL_RESPONSE_NORMALIZATION].early == {4}
    assert inputs_level(OpCode.CONV_2D, 13) == 3 and inputs_level(OpCode.CONV_2D, 7) == 1
    assert inputs_level(OpCode.RESIZE_BILINEAR, 4) == 3
    assert inputs_level(OpCode.RESIZE_BILINEAR, 6) == 4
    assert inputs_level(OpCode.SOFTMAX, 3) == 3 and inputs_level(OpCode.ADD, 3) is None
    with pytest.raises(ValueError, match="takes"):
        inputs_level(OpCode.SOFTMAX, 4)


# -- rule: operand rank, parametrized over every op of each rank wording ---------------------


def _ops(pred) -> list[int]:
    return [c for c, rule in RANK_RULES.items() if rule.stated and pred(rule)]


@pytest.mark.parametrize("code", _ops(lambda r: r.lo == r.hi), ids=lambda c: OpCode(c).name)
def test_rank_exact(code: int) -> None:
    n = RANK_RULES[code].lo
    assert rank_problem(code, 8, n, [n]) == ""
    assert "rank" in rank_problem(code, 8, n - 1, [n - 1])
    assert "rank" in rank_problem(code, 8, n + 1, [n + 1])


@pytest.mark.parametrize("code", _ops(lambda r: r.hi is not None and r.lo != r.hi),
                         ids=lambda c: OpCode(c).name)
def test_rank_upper_bound(code: int) -> None:
    hi = RANK_RULES[code].hi
    assert rank_problem(code, 8, hi, [hi]) == ""
    assert "rank" in rank_problem(code, 8, hi + 1, [hi + 1])
    assert "rank" in rank_problem(code, 8, 2 if hi > 2 else 1, [2, hi + 1])  # any operand


@pytest.mark.parametrize("code", _ops(lambda r: r.hi is None), ids=lambda c: OpCode(c).name)
def test_rank_unbounded_in_the_header_is_capped_for_drivers(code: int) -> None:
    lo = RANK_RULES[code].lo
    assert rank_problem(code, 8, max(lo, DRIVER_RANK_CAP), [DRIVER_RANK_CAP]) == ""
    assert "rank" in rank_problem(code, 8, DRIVER_RANK_CAP + 1, [DRIVER_RANK_CAP + 1])
    if lo > 1:
        assert "rank" in rank_problem(code, 8, lo - 1, [lo - 1])


@pytest.mark.parametrize("code", _ops(lambda r: bool(r.early)), ids=lambda c: OpCode(c).name)
def test_rank_narrower_before_a_level(code: int) -> None:
    rule = RANK_RULES[code]
    narrow = [k for k in range(1, 5) if k not in rule.early]
    for k in narrow:
        assert "rank" in rank_problem(code, rule.until - 1, k, [k])
        assert rank_problem(code, rule.until, k, [k]) == ""
    for k in rule.early:
        assert rank_problem(code, rule.until - 1, k, [k]) == ""


def _unary_op(cls: type, rank: int, code: int = OperandCode.TENSOR_FLOAT32) -> ops.Op:
    b = Builder()
    x = b.input(TensorType(code, (1, 2, 3, 4, 5)[:rank]))
    return b.op(cls, x=x)


@pytest.mark.parametrize("cls", UNARY, ids=lambda c: c.__name__)
def test_verifier_refuses_rank_5_for_every_unary_op(cls: type) -> None:
    assert "rank" not in nnapi_refusal(_unary_op(cls, 4), 8)
    assert "rank 5" in nnapi_refusal(_unary_op(cls, 5), 8)


def test_verifier_refuses_rank_5_reshape_and_rank_3_softmax_before_fl3() -> None:
    b = Builder()
    x = b.input(float_type((1, 2, 3, 4, 5)))
    assert "rank 5" in nnapi_refusal(b.op(ops.Reshape, x=x, shape=(1, 120)), 8)
    y = b.input(float_type((1, 120)))
    assert "rank" in nnapi_refusal(b.op(ops.Reshape, x=y, shape=(1, 2, 3, 4, 5)), 8)
    assert nnapi_refusal(b.op(ops.Reshape, x=y, shape=(2, 3, 4, 5)), 3) == ""


# -- rule: the op exists at the level --------------------------------------------------------


@pytest.mark.parametrize("cls", UNARY, ids=lambda c: c.__name__)
def test_verifier_refuses_ops_newer_than_the_target(cls: type) -> None:
    level = OP_SPECS[cls.code].min_level
    op = _unary_op(cls, 2)
    assert nnapi_refusal(op, level) == ""
    if level > 1:
        assert f"needs feature level {level}" in nnapi_refusal(op, level - 1)


# -- rule: operand types exist at the level (for this op) ------------------------------------


@pytest.mark.parametrize(("code", "level"), [
    (OperandCode.TENSOR_FLOAT16, 3), (OperandCode.TENSOR_QUANT8_ASYMM_SIGNED, 4),
])
def test_verifier_refuses_operand_types_newer_than_the_target(code: int, level: int) -> None:
    b = Builder()
    quant = None if code == OperandCode.TENSOR_FLOAT16 else Quant(0.1, 0)
    t = TensorType(code, (2, 3), quant)
    op = b.op(ops.Relu, x=b.input(t))
    assert nnapi_refusal(op, level) == ""
    assert "level" in nnapi_refusal(op, level - 1)


def test_verifier_refuses_a_primary_type_the_op_takes_only_later() -> None:
    b = Builder()
    op = b.op(ops.Reshape, x=b.input(TensorType(OperandCode.TENSOR_INT32, (2, 3))), shape=(6,))
    assert nnapi_refusal(op, 6) == ""
    assert "INT32" in nnapi_refusal(op, 5)


# -- rule: optional inputs and the scalar types they use -------------------------------------


def _conv(dilation: int, nchw: bool) -> ops.Op:
    b = Builder()
    shape = (1, 3, 9, 9) if nchw else (1, 9, 9, 3)
    x = b.input(float_type(shape, DimOrder.CONTIGUOUS if nchw else DimOrder.NHWC))
    w = b.const(torch.ones(2, 3, 3, 3))
    return b.op(ops.Conv2d, input=x, filter=w, bias=b.const(torch.zeros(2)),
                padding=ops.Padding(0, 0, 0, 0), stride=ops.HW(1, 1),
                dilation=ops.HW(dilation, dilation), fuse=0)


@pytest.mark.parametrize(("dilation", "nchw"), [(2, False), (1, True)])
def test_verifier_refuses_optional_inputs_newer_than_the_target(dilation: int, nchw: bool) -> None:
    op = _conv(dilation, nchw)
    assert nnapi_refusal(op, 3) == ""
    why = nnapi_refusal(op, 2)
    assert "optional inputs" in why and "needs feature level 3" in why
    assert "scalar BOOL needs feature level 3" in why
    assert nnapi_refusal(_conv(1, False), 1) == ""


@pytest.mark.parametrize("code", sorted(c for c in KERNELS if SIGNATURES[c]),
                         ids=lambda c: OpCode(c).name)
def test_interpreter_signatures_agree_with_the_table(code: int) -> None:
    """The virtual device's hand-declared input forms never accept an optional input earlier
    than operations.tsv allows, and take no input count the table lacks."""
    for sig in KERNELS[code].sigs:
        for pattern, level in sig.variants():
            assert inputs_level(code, len(pattern)) <= level, (pattern, level)
