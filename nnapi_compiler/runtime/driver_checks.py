"""The checks a real NNAPI driver makes on each call; a failure raises DriverError with its code."""

from __future__ import annotations

import ctypes
import heapq
import math
from collections.abc import Mapping
from typing import NoReturn

from ..errors import NnapiRuntimeError
from ..ir.codes import (
    ELEMENT_BYTES,
    OP_SPECS,
    OPERAND_MIN_LEVEL,
    QUANT_CODES,
    QUANT_RANGE,
    OperandCode,
    ResultCode,
    is_tensor_code,
    type_name,
)
from ..ir.flat import FlatModel, OperandDesc, OperationDesc
from ..ir.legality import RANK_RULES, inputs_level, rank_problem
from .shim import OperandType

MAX_RANK = 8  # REVERSE, the highest-rank op in the spec, takes up to 8 dims
MAX_BYTES = 1 << 31  # no operand value, input or output may be larger
MAX_LIST = 1 << 16  # operands in one addOperation / identifyInputsAndOutputs call
_OEM_CODES = frozenset({OperandCode.OEM_SCALAR, OperandCode.TENSOR_OEM_BYTE})
_SYMMETRIC = frozenset({OperandCode.TENSOR_QUANT8_SYMM, OperandCode.TENSOR_QUANT16_SYMM})
_PER_CHANNEL = OperandCode.TENSOR_QUANT8_SYMM_PER_CHANNEL


class DriverError(NnapiRuntimeError):
    """A call the device rejects; ``result_code`` is what the C function returns."""

    def __init__(self, result_code: int, message: str) -> None:
        super().__init__(message, int(result_code))


def fail(code: int, message: str) -> NoReturn:
    raise DriverError(code, message)


def op_name(code: int) -> str:
    spec = OP_SPECS.get(code)
    return spec.name if spec else f"operation type {code}"


# -- reading and writing caller memory (pointers are Python ints; None is NULL) --------------


def read_u32_array(ptr: int | None, count: int, what: str) -> tuple[int, ...]:
    if count == 0:
        return ()
    if count > MAX_LIST:
        fail(ResultCode.BAD_DATA, f"{what}: count {count} exceeds {MAX_LIST}")
    if not ptr:
        fail(ResultCode.UNEXPECTED_NULL, f"{what} is NULL but its count is {count}")
    return tuple((ctypes.c_uint32 * count).from_address(ptr))


def read_ptr_array(ptr: int | None, count: int, what: str) -> tuple[int, ...]:
    if count == 0 or count > MAX_LIST:
        fail(ResultCode.BAD_DATA, f"{what}: count {count} is not in [1, {MAX_LIST}]")
    if not ptr:
        fail(ResultCode.UNEXPECTED_NULL, f"{what} is NULL")
    return tuple(p or 0 for p in (ctypes.c_void_p * count).from_address(ptr))


def read_operand_type(ptr: int | None, what: str) -> OperandDesc:
    """Decode an ``ANeuralNetworksOperandType*`` without trusting its dimension count."""
    if not ptr:
        fail(ResultCode.UNEXPECTED_NULL, f"{what}: operand type is NULL")
    t = OperandType.from_address(ptr)
    if t.dimensionCount > MAX_RANK:
        fail(ResultCode.BAD_DATA, f"{what}: dimensionCount {t.dimensionCount} exceeds {MAX_RANK}")
    dims = read_u32_array(t.dimensions, t.dimensionCount, f"{what}: dimensions")
    return OperandDesc(code=t.type, dims=dims, scale=t.scale, zero_point=t.zeroPoint)


def write_out(ctype: type, ptr: int | None, value: int, what: str) -> None:
    """Store ``value`` through an out-pointer of C type ``ctype``."""
    if not ptr:
        fail(ResultCode.UNEXPECTED_NULL, f"{what}: output pointer is NULL")
    ctype.from_address(ptr).value = value


# -- operands ----------------------------------------------------------------------------------


def known_size(desc: OperandDesc) -> int | None:
    """Byte size of a fully specified operand; None for unknown dims or an unknown-rank tensor."""
    if is_tensor_code(desc.code) and not desc.dims:
        return None
    return desc.byte_size()


def _check_quant(desc: OperandDesc, what: str) -> None:
    code, scale, zp = desc.code, desc.scale, desc.zero_point
    name = OperandCode(code).name
    if not math.isfinite(scale):
        fail(ResultCode.BAD_DATA, f"{what}: {name} scale {scale} is not finite")
    if code in QUANT_CODES:
        lo, hi = (0, 0) if code in _SYMMETRIC else QUANT_RANGE[code]
        if scale <= 0:
            fail(ResultCode.BAD_DATA, f"{what}: {name} needs scale > 0, got {scale}")
        if not lo <= zp <= hi:
            fail(ResultCode.BAD_DATA, f"{what}: {name} zero point {zp} is outside [{lo}, {hi}]")
    elif code == OperandCode.TENSOR_INT32:
        if scale < 0 or zp != 0:
            fail(ResultCode.BAD_DATA, f"{what}: TENSOR_INT32 needs scale >= 0 and zero point 0")
    elif scale != 0 or zp != 0:
        fail(ResultCode.BAD_DATA, f"{what}: {name} must have scale 0 and zero point 0")


def check_operand(desc: OperandDesc, level: int, what: str) -> None:
    """Type code known and legal at ``level``, dims sane, quantization rules of the type."""
    code = desc.code
    if code not in OPERAND_MIN_LEVEL:
        fail(ResultCode.BAD_DATA, f"{what}: unknown operand type {code}")
    name = OperandCode(code).name
    if code in _OEM_CODES:
        fail(ResultCode.BAD_DATA, f"{what}: OEM operand type {name} is not supported")
    if OPERAND_MIN_LEVEL[code] > level:
        fail(
            ResultCode.BAD_DATA,
            f"{what}: {name} needs feature level {OPERAND_MIN_LEVEL[code]}, device has {level}",
        )
    if not is_tensor_code(code):
        if desc.dims:
            fail(ResultCode.BAD_DATA, f"{what}: scalar {name} must have no dimensions")
    elif not desc.dims and level < 3:
        fail(ResultCode.BAD_DATA, f"{what}: tensors of unknown rank need feature level 3")
    n = ELEMENT_BYTES.get(code, 1)
    for d in desc.dims:
        n *= max(d, 1)
    if n > MAX_BYTES:
        fail(ResultCode.BAD_DATA, f"{what}: {desc.describe()} is larger than {MAX_BYTES} bytes")
    _check_quant(desc, what)


def check_value_length(desc: OperandDesc, length: int, what: str) -> None:
    if desc.code == OperandCode.MODEL:
        fail(ResultCode.BAD_DATA, f"{what}: MODEL operands need setOperandValueFromModel")
    size = known_size(desc)
    if size is None:
        fail(ResultCode.BAD_DATA, f"{what}: constant {desc.describe()} is not fully specified")
    if length != size:
        fail(ResultCode.BAD_DATA, f"{what}: value has {length} bytes, {desc.describe()} needs {size}")


# -- operations and the finished graph ----------------------------------------------------------


def check_operation(
    model: FlatModel,
    code: int,
    inputs: tuple[int, ...],
    outputs: tuple[int, ...],
    level: int,
    writers: Mapping[int, int],
) -> None:
    what = f"operation {len(model.operations)} ({op_name(code)})"
    spec = OP_SPECS.get(code)
    if spec is None or spec.name == "OEM_OPERATION":
        fail(ResultCode.BAD_DATA, f"{what}: operation type {code} is not supported")
    if spec.min_level > level:
        fail(ResultCode.BAD_DATA, f"{what} needs feature level {spec.min_level}, device has {level}")
    if not outputs:
        fail(ResultCode.BAD_DATA, f"{what} has no outputs")
    n = len(model.operands)
    for k in (*inputs, *outputs):
        if k >= n:
            fail(ResultCode.BAD_DATA, f"{what} uses operand {k}, but the model has {n}")
    why = level_problem(model, code, inputs, outputs, level)
    if why:
        fail(ResultCode.BAD_DATA, f"{what}: {why}")
    if len(set(outputs)) != len(outputs):
        fail(ResultCode.BAD_DATA, f"{what} lists an output operand twice: {list(outputs)}")
    for o in outputs:
        if o in model.values:
            fail(ResultCode.BAD_DATA, f"{what} writes operand {o}, which is a constant")
        if o in writers:
            fail(
                ResultCode.BAD_DATA,
                f"{what} writes operand {o}, already written by operation {writers[o]}",
            )


def level_problem(
    model: FlatModel, code: int, inputs: tuple[int, ...], outputs: tuple[int, ...], level: int
) -> str:
    """What a level-``level`` driver refuses in this operation ("" if nothing), from
    operations.tsv: the op itself, its primary operand type, its input count (optional inputs
    added by later levels) and its operand ranks. Operand indices must be in range."""
    spec = OP_SPECS[code]
    if spec.min_level > level:
        return f"{spec.name} needs feature level {spec.min_level}, device has {level}"
    descs = [model.operands[k] for k in (*inputs, *outputs)]
    if inputs and is_tensor_code(descs[0].code):
        primary = type_name(descs[0].code)
        legal = spec.primary_types_at(level)
        if "*" not in legal and primary not in legal and primary in spec.primary_types_at(99):
            return f"{spec.name} takes {primary} only from a later feature level than {level}"
    try:
        need = inputs_level(code, len(inputs))
    except ValueError as e:
        return str(e)
    if need is not None and need > level:
        return f"{spec.name} with {len(inputs)} inputs needs feature level {need}, device has {level}"
    rule = RANK_RULES[code]
    first = (descs[len(inputs)] if rule.which == "output" and outputs
             else descs[0] if inputs else None)
    known = first is not None and is_tensor_code(first.code) and bool(first.dims)
    ranks = [len(d.dims) for d in descs if is_tensor_code(d.code)]
    return rank_problem(code, level, len(first.dims) if known else None, ranks)


def check_io_list(model: FlatModel, indices: tuple[int, ...], what: str) -> None:
    n = len(model.operands)
    if len(set(indices)) != len(indices):
        fail(ResultCode.BAD_DATA, f"model {what} list an operand twice: {list(indices)}")
    for k in indices:
        if k >= n:
            fail(ResultCode.BAD_DATA, f"model {what} name operand {k}, but the model has {n}")
        if k in model.values:
            fail(ResultCode.BAD_DATA, f"model {what} name operand {k}, which is a constant")


def check_graph(model: FlatModel, level: int, writers: Mapping[int, int]) -> list[OperationDesc]:
    """Model_finish checks; returns the operations in a run order (stable topological sort)."""
    if not model.operations:
        fail(ResultCode.BAD_DATA, "model has no operations")
    if not model.outputs:
        fail(ResultCode.BAD_DATA, "model has no outputs (identifyInputsAndOutputs not called?)")
    inputs = set(model.inputs)
    for i in model.inputs:
        if i in writers:
            fail(ResultCode.BAD_DATA, f"model input operand {i} is written by operation {writers[i]}")
    for o in model.outputs:
        if o in inputs:
            fail(ResultCode.BAD_DATA, f"operand {o} is both a model input and a model output")
        if o not in writers:
            fail(ResultCode.BAD_DATA, f"model output operand {o} is not written by any operation")
    for k, desc in enumerate(model.operands):
        if desc.code == _PER_CHANNEL:
            fail(
                ResultCode.BAD_DATA,
                f"operand {k} is {desc.describe()} without per-channel scales "
                "(setOperandSymmPerChannelQuantParams is not available through this runtime)",
            )
    if level < 3:
        for k in (*model.inputs, *model.outputs):
            if known_size(model.operands[k]) is None:
                fail(ResultCode.BAD_DATA, f"model I/O operand {k} must be fully specified below FL3")
    defined = set(model.values) | inputs | set(writers)
    deps: list[set[int]] = []
    for j, op in enumerate(model.operations):
        for i in op.inputs:
            if i not in defined:
                fail(
                    ResultCode.BAD_DATA,
                    f"operation {j} ({op_name(op.code)}) reads operand {i}, which has no value, "
                    "is not a model input and is written by no operation",
                )
        deps.append({writers[i] for i in op.inputs if i in writers})
    return _run_order(model.operations, deps)


def _run_order(ops: list[OperationDesc], deps: list[set[int]]) -> list[OperationDesc]:
    users: list[list[int]] = [[] for _ in ops]
    pending = [len(d) for d in deps]
    for j, d in enumerate(deps):
        for k in d:
            users[k].append(j)
    ready = [j for j, n in enumerate(pending) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        j = heapq.heappop(ready)
        order.append(j)
        for u in users[j]:
            pending[u] -= 1
            if pending[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(ops):
        stuck = sorted(set(range(len(ops))) - set(order))
        fail(ResultCode.BAD_DATA, f"operations {stuck} form a cycle")
    return [ops[j] for j in order]


def check_device_can_run(model: FlatModel, level: int, refuse_ops: frozenset[int]) -> None:
    """Compilation_finish: every op and operand type exists at ``level`` and is not refused."""
    for j, op in enumerate(model.operations):
        spec = OP_SPECS[op.code]
        if op.code in refuse_ops:
            fail(ResultCode.BAD_DATA, f"device refuses operation {j} ({spec.name})")
        why = level_problem(model, op.code, op.inputs, op.outputs, level)
        if why:
            fail(ResultCode.BAD_DATA, f"operation {j}: {why}")
    for k, desc in enumerate(model.operands):
        if OPERAND_MIN_LEVEL[desc.code] > level:
            fail(
                ResultCode.BAD_DATA,
                f"operand {k} ({desc.describe()}) is not available at level {level}",
            )


# -- execution arguments ------------------------------------------------------------------------


def resolve_io_type(declared: OperandDesc, given: OperandDesc | None, what: str) -> OperandDesc:
    """An execution argument's type: the model's, refined by the caller's (which must agree)."""
    if given is None:
        return declared
    if (given.code, given.scale, given.zero_point) != (
        declared.code,
        declared.scale,
        declared.zero_point,
    ):
        fail(
            ResultCode.BAD_DATA,
            f"{what}: type {given.describe()} does not match the model's {declared.describe()}",
        )
    if not declared.dims:
        return given
    if len(given.dims) != len(declared.dims) or any(
        g and d and g != d for g, d in zip(given.dims, declared.dims, strict=True)
    ):
        fail(
            ResultCode.BAD_DATA,
            f"{what}: dims {list(given.dims)} do not match the model's {declared.describe()}",
        )
    dims = tuple(g or d for g, d in zip(given.dims, declared.dims, strict=True))
    return OperandDesc(given.code, dims, given.scale, given.zero_point)
