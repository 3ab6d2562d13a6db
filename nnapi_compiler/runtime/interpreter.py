"""Reference NNAPI interpreter: validates a FlatModel like a driver would, then runs it on the host.

The virtual NNAPI device records the C API calls PyTorch's runtime makes into a FlatModel and
calls ``validate_model`` (at finish) and ``execute`` (at compute). Kernels live in ``reference/``;
this module owns operand decoding, model-level checks, op scheduling and result checking.

A relaxed model (``Model_relaxComputationFloat32toFloat16``) is computed with float16 range and
precision, as an fp16 accelerator would: every TENSOR_FLOAT32 operand an op reads (activations,
weights, biases) and every TENSOR_FLOAT32 result it writes is rounded to the nearest float16
(overflowing to +-inf). The arithmetic in between stays float32, like fp16 hardware that
accumulates in wider registers; storage and the I/O buffers stay float32, as NNAPI requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import NnapiRuntimeError
from ..ir.codes import (
    OP_SPECS,
    OPERAND_MIN_LEVEL,
    QUANT_CODES,
    QUANT_RANGE,
    OpCode,
    OperandCode,
    ResultCode,
    is_tensor_code,
    type_name,
)
from ..ir.flat import FlatModel, OperandDesc, Unschedulable, schedule
from ..reference import KERNELS, KernelCall
from ..reference.common import TORCH_DTYPES
from ..reference.decode import DecodeError
from ..reference.decode import decode_value as reference_decode
from ..reference.registry import CheckArgs

__all__ = ["InterpreterError", "decode_value", "execute", "relax_to_fp16", "validate_model"]

class InterpreterError(NnapiRuntimeError):
    """A model the interpreter refuses (BAD_DATA) or an execution that failed (OP_FAILED)."""

    def __init__(self, message: str, result_code: int = ResultCode.BAD_DATA) -> None:
        super().__init__(message, int(result_code))


def _bad(msg: str) -> InterpreterError:
    return InterpreterError(msg, ResultCode.BAD_DATA)


def _op_name(code: int) -> str:
    try:
        return OpCode(code).name
    except ValueError:
        return f"unknown op code {code}"


def decode_value(desc: OperandDesc, raw: bytes) -> torch.Tensor | int | float | bool | None:
    """The reference decoding of an operand's raw bytes; a malformed value is BAD_DATA."""
    try:
        return reference_decode(desc, raw)
    except DecodeError as e:
        raise _bad(str(e)) from None


def _check_operand(i: int, d: OperandDesc, level: int) -> None:
    try:
        name = OperandCode(d.code).name
    except ValueError:
        raise _bad(f"operand {i}: unknown operand type {d.code}") from None
    if OPERAND_MIN_LEVEL.get(d.code, 99) > level:
        raise _bad(f"operand {i}: type {name} needs feature level {OPERAND_MIN_LEVEL[d.code]}")
    if d.code == OperandCode.TENSOR_QUANT8_SYMM_PER_CHANNEL:
        raise _bad(f"operand {i}: per-channel quantization parameters cannot be expressed")
    if not is_tensor_code(d.code) and d.dims:
        raise _bad(f"operand {i}: scalar {name} must have no dims")
    if d.code in QUANT_CODES:
        lo, hi = QUANT_RANGE[d.code]
        symm = d.code in (OperandCode.TENSOR_QUANT8_SYMM, OperandCode.TENSOR_QUANT16_SYMM)
        if not d.scale > 0 or not lo <= d.zero_point <= hi or (symm and d.zero_point != 0):
            raise _bad(f"operand {i}: bad quantization {d.describe()}")
    elif d.code == OperandCode.TENSOR_INT32:
        if d.scale < 0 or d.zero_point != 0:
            raise _bad(f"operand {i}: TENSOR_INT32 needs scale >= 0 and zero point 0")
    elif d.scale != 0 or d.zero_point != 0:
        raise _bad(f"operand {i}: {name} must have scale 0 and zero point 0")


def _check_types(op_i: int, name: str, op: Any, model: FlatModel, level: int) -> None:
    """Primary tensor type (and filter / output type pairs) legal at ``level`` and implemented."""
    spec = OP_SPECS[op.code]
    primary = KERNELS[op.code].primary  # the operand the spec's type column describes
    if primary >= len(op.inputs):
        raise _bad(f"op #{op_i} {name}: missing input {primary}")
    first = model.operands[op.inputs[primary]].code
    tname = type_name(first)
    if tname not in spec.primary_types_at(level):
        raise _bad(f"op #{op_i} {name}: {tname} input is not legal at feature level {level}")
    if tname not in KERNELS[op.code].types:
        raise _bad(f"op #{op_i} {name}: the interpreter has no {tname} kernel yet")
    entries = spec.types_at(level)
    if any(">" in e for e in entries) and op.outputs:
        out = type_name(model.operands[op.outputs[0]].code)
        if f"{tname}>{out}" not in entries:
            raise _bad(f"op #{op_i} {name}: {tname} -> {out} is not legal at level {level}")
    if any("@" in e for e in entries) and len(op.inputs) > 1:
        second = type_name(model.operands[op.inputs[1]].code)
        if second != tname and f"{tname}@{second}" not in entries:
            raise _bad(f"op #{op_i} {name}: {tname} with {second} filter is not legal")


def _match_signature(op_i: int, name: str, op: Any, model: FlatModel, level: int) -> None:
    descs = [model.operands[k] for k in op.inputs]
    pattern, needed = KERNELS[op.code].match(descs, level)
    if pattern is not None:
        _check_scalar_values(op_i, name, pattern, op, model)
        return
    if needed is not None:
        raise _bad(f"op #{op_i} {name}: this form of the op needs feature level {needed}")
    got = ",".join(OperandCode(d.code).name for d in descs)
    forms = " | ".join(p for sig in KERNELS[op.code].sigs for p, _ in sig.variants())
    raise _bad(f"op #{op_i} {name}: inputs ({got}) match no accepted signature ({forms})")


def _check_scalar_values(op_i: int, name: str, pattern: str, op: Any, model: FlatModel) -> None:
    for pos, (ch, k) in enumerate(zip(pattern, op.inputs, strict=True)):
        raw = model.values.get(k)
        if raw == b"":
            if pos not in KERNELS[op.code].optional:
                raise _bad(f"op #{op_i} {name}: input {pos} may not be omitted")
            continue
        if raw is None or ch not in "ap":
            continue
        v = decode_value(model.operands[k], raw)
        if ch == "a" and v not in (0, 1, 2, 3):
            raise _bad(f"op #{op_i} {name}: bad fuse code {v}")
        if ch == "p" and v not in (1, 2):
            raise _bad(f"op #{op_i} {name}: bad padding code {v}")


def _static_values(op: Any, model: FlatModel) -> list[Any]:
    out: list[Any] = []
    for k in op.inputs:
        d, raw = model.operands[k], model.values.get(k)
        out.append(decode_value(d, raw) if raw and not is_tensor_code(d.code) else None)
    return out


def _check_op(op_i: int, op: Any, model: FlatModel, level: int) -> None:
    name = _op_name(op.code)
    if op.code not in KERNELS:
        raise _bad(f"op #{op_i} {name}: no kernel for this operation")
    if OP_SPECS[op.code].min_level > level:
        raise _bad(
            f"op #{op_i} {name}: needs feature level {OP_SPECS[op.code].min_level}, device is level {level}"
        )
    n = len(model.operands)
    if not op.inputs or any(not 0 <= k < n for k in (*op.inputs, *op.outputs)):
        raise _bad(f"op #{op_i} {name}: operand index out of range or no inputs")
    kspec = KERNELS[op.code]
    if (kspec.outputs is None and not op.outputs) or (
        kspec.outputs is not None and len(op.outputs) != kspec.outputs
    ):
        raise _bad(f"op #{op_i} {name}: {len(op.outputs)} outputs, expected {kspec.outputs}")
    _check_types(op_i, name, op, model, level)
    _match_signature(op_i, name, op, model, level)
    dims = model.operands[op.inputs[0]].dims
    lo, hi = kspec.rank
    if dims and not lo <= len(dims) <= hi:
        raise _bad(f"op #{op_i} {name}: input rank {len(dims)} outside [{lo}, {hi}]")
    first = model.operands[op.inputs[0]]
    if kspec.keeps_quant and first.code in QUANT_CODES:
        for k in op.outputs:
            out = model.operands[k]
            if (out.scale, out.zero_point) != (first.scale, first.zero_point):
                raise _bad(f"op #{op_i} {name}: output {k} must keep the input's scale/zero point")
    if kspec.check is not None:
        err = kspec.check(
            CheckArgs(
                op.code,
                [model.operands[k] for k in op.inputs],
                _static_values(op, model),
                [model.operands[k] for k in op.outputs],
                level,
            )
        )
        if err:
            raise _bad(f"op #{op_i} {name}: {err}")


def _schedule(model: FlatModel) -> list[int]:
    """``flat.schedule``, refusing an unrunnable model with BAD_DATA."""
    try:
        order = schedule(model)
    except Unschedulable as e:
        raise _bad(f"op #{e.op_index} {_op_name(model.operations[e.op_index].code)} reads an "
                   "operand that no operation writes (or the graph has a cycle)") from None
    written = set(model.inputs) | set(model.values)
    written.update(k for op in model.operations for k in op.outputs)
    missing = [k for k in model.outputs if k not in written]
    if missing:
        raise _bad(f"model outputs {missing} are never written")
    return order


def validate_model(model: FlatModel, feature_level: int) -> None:
    """Raise InterpreterError(BAD_DATA) unless the model is valid and runnable at the level."""
    n = len(model.operands)
    for i, d in enumerate(model.operands):
        _check_operand(i, d, feature_level)
    for k, raw in model.values.items():
        if not 0 <= k < n:
            raise _bad(f"value given for operand {k}, which does not exist")
        d = model.operands[k]
        if is_tensor_code(d.code):
            _check_length(k, d, raw)
        elif raw:
            decode_value(d, raw)
    io = [*model.inputs, *model.outputs]
    if any(not 0 <= k < n for k in io) or len(set(io)) != len(io):
        raise _bad("model inputs/outputs are out of range, repeated, or shared")
    if any(k in model.values for k in io):
        raise _bad("a model input or output operand also has a constant value")
    written: set[int] = set(model.inputs)
    for i, op in enumerate(model.operations):
        _check_op(i, op, model, feature_level)
        for k in op.outputs:
            if k in written or k in model.values:
                raise _bad(
                    f"op #{i} {_op_name(op.code)}: operand {k} is written twice "
                    "or is a constant / model input"
                )
            written.add(k)
    _schedule(model)


def _check_length(k: int, d: OperandDesc, raw: bytes) -> None:
    size = d.byte_size() if d.dims else None
    if raw and size is not None and len(raw) != size:
        raise _bad(f"operand {k} {d.describe()} needs {size} bytes, got {len(raw)}")
    if raw and size is None:
        raise _bad(f"constant operand {k} {d.describe()} must be fully specified")


def _shape_ok(shape: Sequence[int], dims: Sequence[int]) -> bool:
    if not dims:
        return True
    return len(shape) == len(dims) and all(d in (0, s) for s, d in zip(shape, dims, strict=True))


def _bind_input(k: int, d: OperandDesc, value: Any) -> Any:
    if not is_tensor_code(d.code):
        if isinstance(value, torch.Tensor):
            value = value.item()
        return bool(value) if d.code == OperandCode.BOOL else value
    if not isinstance(value, torch.Tensor):
        raise _bad(f"model input operand {k} needs a tensor, got {type(value).__name__}")
    want = TORCH_DTYPES[d.code]
    if value.dtype != want:
        raise _bad(f"model input operand {k} is {d.describe()} ({want}), got {value.dtype}")
    if not _shape_ok(value.shape, d.dims):
        raise _bad(f"model input operand {k} has shape {list(value.shape)}, declared {d.dims}")
    return value


def _finish(op_i: int, name: str, result: torch.Tensor, d: OperandDesc) -> torch.Tensor:
    want = TORCH_DTYPES.get(d.code)
    if result.dtype != want:
        if not (result.is_floating_point() and want in (torch.float16, torch.float32)):
            raise InterpreterError(
                f"op #{op_i} {name}: kernel produced {result.dtype}, output is {d.describe()}",
                ResultCode.OP_FAILED,
            )
        result = result.to(want)
    if not _shape_ok(result.shape, d.dims):
        raise InterpreterError(
            f"op #{op_i} {name}: result shape {list(result.shape)} does not match declared {list(d.dims)}",
            ResultCode.OP_FAILED,
        )
    return result.contiguous()


def relax_to_fp16(value: Any, desc: OperandDesc) -> Any:
    """``value`` rounded to float16 range and precision if it is a TENSOR_FLOAT32 operand (still
    stored as float32); anything else unchanged. Used on every op's inputs and results of a
    relaxed model."""
    if desc.code != OperandCode.TENSOR_FLOAT32 or not isinstance(value, torch.Tensor):
        return value
    return value.to(torch.float16).to(torch.float32)


def execute(model: FlatModel, inputs: list[torch.Tensor], feature_level: int) -> list[torch.Tensor]:
    """Run the model on ``inputs`` (one per model input, NNAPI dtype and shape); returns the
    model outputs in NNAPI dtypes and shapes. A relaxed model computes in float16 (see above)."""
    validate_model(model, feature_level)
    if len(inputs) != len(model.inputs):
        raise _bad(f"model has {len(model.inputs)} inputs, got {len(inputs)}")
    env: dict[int, Any] = {
        k: _bind_input(k, model.operands[k], v) for k, v in zip(model.inputs, inputs, strict=True)
    }
    for k, raw in model.values.items():
        env[k] = decode_value(model.operands[k], raw)
    for op_i in _schedule(model):
        op = model.operations[op_i]
        name = _op_name(op.code)
        args = [env[k] for k in op.inputs]
        if model.relaxed:
            args = [relax_to_fp16(v, model.operands[k]) for k, v in zip(op.inputs, args, strict=True)]
        call = KernelCall(
            op=op.code,
            inputs=tuple(args),
            input_descs=tuple(model.operands[k] for k in op.inputs),
            output_descs=tuple(model.operands[k] for k in op.outputs),
        )
        try:
            results = KERNELS[op.code].run(call)
        except InterpreterError:
            raise
        except Exception as e:  # any kernel failure is an execution failure
            raise InterpreterError(f"op #{op_i} {name}: {type(e).__name__}: {e}", ResultCode.OP_FAILED) from e
        if len(results) != len(op.outputs):
            raise InterpreterError(
                f"op #{op_i} {name}: kernel returned {len(results)} results", ResultCode.OP_FAILED
            )
        for k, r in zip(op.outputs, results, strict=True):
            r = _finish(op_i, name, r, model.operands[k])
            env[k] = relax_to_fp16(r, model.operands[k]) if model.relaxed else r
    return [env[k] for k in model.outputs]
