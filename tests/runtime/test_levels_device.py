"""A virtual device at feature level N refuses what a level-N driver refuses, with NNAPI's codes.

Each case is one operation built through the C entry points: the op itself, its operand type, an
optional input or an operand rank is legal from some level on (operations.tsv). Below that level
``addOperation`` returns BAD_DATA, as NNAPI's validator does; at that level the same model
finishes and compiles.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import attrs
import pytest

from nnapi_compiler.errors import VirtualDeviceError
from nnapi_compiler.ir.codes import OpCode, OperandCode, ResultCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes
from nnapi_compiler.runtime.device import last_error, virtual_device

from .conftest import CApi, compile_model

C = OperandCode
R = ResultCode


@attrs.frozen
class Case:
    """One op: input 0 is the model input; every other input is a constant."""

    code: int
    x: OperandDesc
    consts: tuple[tuple[OperandDesc, bytes], ...]
    out: OperandDesc
    legal_from: int  # lowest level that accepts it (9: none does)


def t32(*dims: int, code: int = C.TENSOR_FLOAT32) -> OperandDesc:
    return OperandDesc(code, dims)


def i32(v: int) -> tuple[OperandDesc, bytes]:
    return OperandDesc(C.INT32), scalar_bytes(C.INT32, v)


def f32(v: float) -> tuple[OperandDesc, bytes]:
    return OperandDesc(C.FLOAT32), scalar_bytes(C.FLOAT32, v)


def flag(v: bool) -> tuple[OperandDesc, bytes]:
    return OperandDesc(C.BOOL), scalar_bytes(C.BOOL, v)


def vec(*values: int) -> tuple[OperandDesc, bytes]:
    return OperandDesc(C.TENSOR_INT32, (len(values),)), struct.pack(f"<{len(values)}i", *values)


def binary(code: int, *dims: int) -> Case:
    return Case(code, t32(*dims), ((t32(*dims), b"\0" * 4 * _n(dims)), i32(0)), t32(*dims), 1)


def _n(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


NEVER = 9
CASES = {
    # operand rank (the tsv's "rank<=4" / "rank 4" / "before FL3 only rank 2 or 4")
    "add_rank4": binary(OpCode.ADD, 1, 2, 2, 3),
    "add_rank5": attrs.evolve(binary(OpCode.ADD, 1, 1, 2, 2, 3), legal_from=NEVER),
    "relu_rank5": Case(OpCode.RELU, t32(1, 1, 2, 2, 3), (), t32(1, 1, 2, 2, 3), NEVER),
    "reshape_rank5_in": Case(OpCode.RESHAPE, t32(1, 2, 3, 4, 5), (vec(1, 120),), t32(1, 120), NEVER),
    "reshape_rank5_out": Case(OpCode.RESHAPE, t32(1, 120), (vec(1, 2, 3, 4, 5),), t32(1, 2, 3, 4, 5), NEVER),
    "softmax_rank2": Case(OpCode.SOFTMAX, t32(2, 5), (f32(1.0),), t32(2, 5), 1),
    "softmax_rank3": Case(OpCode.SOFTMAX, t32(2, 3, 5), (f32(1.0),), t32(2, 3, 5), 3),
    "pool_rank3": Case(
        OpCode.MAX_POOL_2D, t32(1, 4, 4), (i32(2), i32(1), i32(1), i32(2), i32(2), i32(0)),
        t32(1, 2, 2), NEVER),
    # op not at the level
    "hard_swish": Case(OpCode.HARD_SWISH, t32(2, 3), (), t32(2, 3), 4),
    "transpose": Case(OpCode.TRANSPOSE, t32(2, 3), (vec(1, 0),), t32(3, 2), 2),
    # operand type of the op only from a later level
    "reshape_int32": Case(OpCode.RESHAPE, t32(2, 3, code=C.TENSOR_INT32), (vec(6),),
                          t32(6, code=C.TENSOR_INT32), 6),
    # optional trailing inputs added by later levels
    "softmax_axis": Case(OpCode.SOFTMAX, t32(2, 5), (f32(1.0), i32(-1)), t32(2, 5), 3),
    "resize_flags": Case(OpCode.RESIZE_BILINEAR, t32(1, 2, 2, 1),
                         (i32(4), i32(4), flag(False), flag(False), flag(True)), t32(1, 4, 4, 1), 4),
    "resize_layout": Case(OpCode.RESIZE_BILINEAR, t32(1, 2, 2, 1), (i32(4), i32(4), flag(False)),
                          t32(1, 4, 4, 1), 3),
}


def _replay(capi: CApi, case: Case) -> tuple[int, int]:
    """(the first failing addOperand's or else addOperation's code, then Model_finish's code
    or -1 if not reached). A scalar type newer than the device fails already at addOperand."""
    m = capi.model()
    descs = [case.x, *(d for d, _ in case.consts), case.out]
    for d in descs:
        rc = capi.add_operand(m, d.code, d.dims, d.scale, d.zero_point)
        if rc != R.NO_ERROR:
            return rc, -1
    for k, (_, raw) in enumerate(case.consts, start=1):
        assert capi.set_value(m, k, raw) == R.NO_ERROR
    n = len(descs)
    rc = capi.add_operation(m, case.code, list(range(n - 1)), [n - 1])
    if rc != R.NO_ERROR:
        return rc, -1
    assert capi.identify(m, [0], [n - 1]) == R.NO_ERROR
    return rc, capi.Model_finish(m)


@pytest.mark.parametrize("name", sorted(CASES))
def test_device_refuses_below_the_level_and_accepts_at_it(capi: CApi, name: str) -> None:
    case = CASES[name]
    below = min(case.legal_from, 9) - 1
    if below >= 1:
        with virtual_device(feature_level=below):
            rc, _ = _replay(capi, case)
        assert rc == R.BAD_DATA, f"level {below} accepted {name}"
        assert "level" in last_error() or "rank" in last_error()
    if case.legal_from <= 8:
        with virtual_device(feature_level=case.legal_from):
            assert _replay(capi, case) == (R.NO_ERROR, R.NO_ERROR), last_error()


@pytest.mark.parametrize("level", [3, 8])
def test_rank5_reshape_is_refused_through_torch_runtime(level: int) -> None:
    """What the issue saw: a rank-5 RESHAPE fails in torch's NNAPI runtime (not silently run)."""
    case = CASES["reshape_rank5_in"]
    model = FlatModel(
        operands=[case.x, case.consts[0][0], case.out],
        values={1: case.consts[0][1]},
        operations=[OperationDesc(OpCode.RESHAPE, (0, 1), (2,))],
        inputs=[0],
        outputs=[2],
    )
    with virtual_device(feature_level=level), pytest.raises(RuntimeError):
        compile_model(model)
    assert "rank 5" in last_error()


@pytest.mark.parametrize(("given", "level"), [(4, 4), ("android-11", 4), ("FL6", 6), (30, 4),
                                              (1000007, 7), ("android-15", 8)])
def test_virtual_device_takes_the_same_level_names_as_compile(given: object, level: int) -> None:
    with virtual_device(feature_level=given) as dev:  # type: ignore[arg-type]
        assert dev.feature_level == level
        assert dev.api_level == (26 + level if level <= 5 else 1_000_000 + level)


@pytest.mark.parametrize("bad", [0, 9, "android-16", 2.0, True, None])
def test_virtual_device_refuses_unknown_levels(bad: object) -> None:
    with pytest.raises(VirtualDeviceError, match="feature_level"), virtual_device(bad):  # type: ignore[arg-type]
        pass
