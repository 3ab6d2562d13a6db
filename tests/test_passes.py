"""Passes: legalize rewrites, honest changed flags, idempotence, pipeline strings."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.ir.types import float_type
from nnapi_compiler.ir.verifier import verify
from nnapi_compiler.passes.base import PassManager, parse_pipeline
from nnapi_compiler.passes.legalize import Legalize

from .fuzz.ir_run import run_program


def _prog(level: int):
    b = Builder(level=level)
    x = b.input(float_type((2, 5)))
    y = b.emit(ops.HardSwish, x=x)
    z = b.emit(ops.Elu, x=y, alpha=0.5)
    return b.finish([z])


def test_legalize_decomposes_below_fl4_and_preserves_semantics() -> None:
    p = _prog(3)
    res = Legalize().run(p)
    assert res.changed
    verify(res.program)
    mnemonics = {op.mnemonic for op in res.program.ops}
    assert not mnemonics & {"hard_swish", "elu"}
    assert "elu" in print_program(p)  # sanity: the input had them
    x = torch.linspace(-6, 6, 10).reshape(2, 5)
    (got,) = run_program(res.program, [x], 3)
    ref = torch.nn.functional.elu(torch.nn.functional.hardswish(x), 0.5)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_legalize_is_a_no_op_at_fl4_and_idempotent() -> None:
    p = _prog(4)
    res = Legalize().run(p)
    assert not res.changed and res.program == p
    once = Legalize().run(_prog(3)).program
    twice = Legalize().run(once)
    assert not twice.changed and twice.program == once


def test_pipeline_string_and_verify_each() -> None:
    pm = PassManager(parse_pipeline("legalize"), verify_each=True)
    pm.run(_prog(3))
    assert pm.log == [("legalize", True)]
    with pytest.raises(ValueError, match="unknown pass"):
        parse_pipeline("legalize,nope")
