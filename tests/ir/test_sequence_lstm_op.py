"""The SequenceLstm IR op (UNIDIRECTIONAL_SEQUENCE_LSTM): its NNAPI operand list with the omitted
optional operands, its level (final-state outputs are FL4, per operations.tsv's outputs column),
the verifier's refusal at FL3, and the IR text round trip."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.backend.flatten import flatten
from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.codes import OpCode
from nnapi_compiler.ir.legality import outputs_level
from nnapi_compiler.ir.parser import parse_program
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.ir.program import Program
from nnapi_compiler.ir.types import Omitted, float_type
from nnapi_compiler.ir.verifier import VerificationError, verify


def _program(level: int, with_state: bool, time_major: bool = False) -> Program:
    b = Builder(level=level)
    x = b.input(float_type((5, 2, 3) if time_major else (2, 5, 3)))
    g = torch.Generator().manual_seed(0)
    params = (*(b.const(torch.randn(4, 3, generator=g)) for _ in range(4)),
              *(b.const(torch.randn(4, 4, generator=g)) for _ in range(4)),
              *(b.const(torch.randn(4, generator=g)) for _ in range(4)))
    h0 = b.input(float_type((2, 4)))
    op = b.op(ops.SequenceLstm, x=x, params=params, h0=h0, c0=b.const(torch.zeros(2, 4)),
              time_major=time_major, with_state=with_state)
    return b.finish(op.results)


def test_outputs_level_comes_from_the_table() -> None:
    code = int(OpCode.UNIDIRECTIONAL_SEQUENCE_LSTM)
    assert outputs_level(code, 1) == 3
    assert outputs_level(code, 3) == 4
    with pytest.raises(ValueError, match="no form with 2 outputs"):
        outputs_level(code, 2)
    assert outputs_level(int(OpCode.ADD), 1) is None


@pytest.mark.parametrize("with_state", [False, True])
def test_operands_and_level(with_state: bool) -> None:
    p = _program(4, with_state)
    op = p.ops[-1]
    assert isinstance(op, ops.SequenceLstm)
    assert op.required_level() == (4 if with_state else 3)
    assert [r.type.shape for r in op.results] == [(2, 5, 4)] + [(2, 4)] * 2 * with_state
    operands = op.nnapi_operands()
    assert len(operands) == 28
    assert [i for i, o in enumerate(operands) if isinstance(o, Omitted)] == [
        9, 10, 11, 16, 17, 24, 25, 26, 27]
    verify(p)
    flat = flatten(p).flat
    omitted = [k for k in flat.operations[0].inputs if flat.values.get(k) == b""]
    assert len(omitted) == 9


def test_final_state_outputs_are_refused_at_fl3() -> None:
    verify(_program(3, with_state=False))
    with pytest.raises(VerificationError, match=r"3 outputs .* needs feature level 4"):
        verify(_program(3, with_state=True))


@pytest.mark.parametrize("time_major", [False, True])
def test_reads_back_equal(time_major: bool) -> None:
    p = _program(4, True, time_major)
    consts = {c.digest: c.data for c in p.constants().values()}
    text = print_program(p)
    q = parse_program(text, consts)
    assert print_program(q) == text
    assert q == p
