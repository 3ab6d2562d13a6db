"""Every kernel the IR can emit, scripted as the CPU fallback runs it, equals the interpreter's
result on random inputs: float, INT32 and quantized (uint8 and int8), bit for bit."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.backend.cpu_segment import build_cpu_module
from nnapi_compiler.ir.codes import MAX_LEVEL, OpCode, OperandCode
from nnapi_compiler.runtime.interpreter import execute

from .cases import FAMILIES

_QUANT = {OperandCode.TENSOR_QUANT8_ASYMM, OperandCode.TENSOR_QUANT8_ASYMM_SIGNED}
CASES = [(family, name) for family, cases in FAMILIES.items() for name in cases]


def _as_arg(t: torch.Tensor, code: int, scale: float, zp: int) -> torch.Tensor:
    """What the NNAPI segment module receives: quantized operands as quantized tensors."""
    return torch._make_per_tensor_quantized_tensor(t, scale, zp) if code in _QUANT else t


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize(("family", "name"), CASES, ids=[f"{f}-{n}" for f, n in CASES])
def test_scripted_kernel_equals_interpreter(family: str, name: str) -> None:
    b = FAMILIES[family][name](torch.Generator().manual_seed(len(name)))
    model = b.model
    want = execute(model, b.feeds, MAX_LEVEL)
    descs = [model.operands[k] for k in model.inputs]
    args = [_as_arg(t, d.code, d.scale, d.zero_point) for t, d in zip(b.feeds, descs, strict=True)]
    got = torch.jit.script(build_cpu_module(model, {}, []))(args)
    assert len(got) == len(want)
    for g, w, k in zip(got, want, model.outputs, strict=True):
        out = model.operands[k]
        if out.code in _QUANT:
            assert g.is_quantized and (g.q_scale(), g.q_zero_point()) == (out.scale, out.zero_point)
            g = g.int_repr()
        assert g.dtype == w.dtype and g.shape == w.shape
        assert torch.equal(g, w), f"{name}: max difference {(g.double() - w.double()).abs().max()}"


def _subclasses(cls: type) -> list[type]:
    return [c for s in cls.__subclasses__() for c in (s, *_subclasses(s))]


def test_cases_cover_every_op_the_ir_emits() -> None:
    import nnapi_compiler.ir.ops  # noqa: F401  (defines every op class)
    from nnapi_compiler.ir.ops.base import NnapiOp

    emitted = {int(c.code) for c in _subclasses(NnapiOp) if hasattr(c, "code")}
    g = torch.Generator().manual_seed(0)
    covered = {
        op.code for cases in FAMILIES.values() for make in cases.values() for op in make(g).model.operations
    }
    assert not emitted - covered, sorted(OpCode(c).name for c in emitted - covered)
