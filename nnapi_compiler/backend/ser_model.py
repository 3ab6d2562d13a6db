"""Writer and bounds-checked reader of the runtime's ``ser_model`` format (version 1).

Layout (all little-endian 32-bit): header {version, operand_count, value_count, operation_count,
input_count, output_count}; operand records {type, dim_count, scale(f32), zero_point}; value
records {operand index, source_type, source_length}; operation records {op code, input_count,
output_count}; all operand dims; value payloads padded to 4 bytes (source 0 = immediate bytes,
source 2 = {buffer index, offset, length} into the ``weights`` list); operation input/output
indices; model inputs; model outputs. This is what ``torch.classes._nnapi.Compilation.init2``
replays as NNAPI calls.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import attrs
import torch

from ..errors import SerModelError
from ..ir.flat import FlatModel, OperandDesc, OperationDesc

VERSION = 1
SOURCE_IMMEDIATE = 0
SOURCE_NUMBERED_BUFFER = 2
_MAX_COUNT = 1 << 24  # the runtime's own sanity limit on every count


@attrs.frozen
class BufferRef:
    """A value stored in ``weights[buffer]`` at ``offset`` for ``length`` bytes."""

    buffer: int
    offset: int
    length: int


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _check_writable(model: FlatModel, refs: Mapping[int, BufferRef]) -> None:
    """Refuse what would serialize into bytes that the reader (and the runtime) reject."""
    n = len(model.operands)
    lists = [("value", [*model.values, *refs]), ("model input", model.inputs),
             ("model output", model.outputs)]
    lists += [(f"operation {i}", [*op.inputs, *op.outputs]) for i, op in enumerate(model.operations)]
    for what, indices in lists:
        bad = [k for k in indices if not 0 <= k < n]
        if bad:
            raise SerModelError(f"cannot serialize: {what} names operand {bad[0]}, but there are {n}")
    counts = [len(model.operands), len(model.values), len(model.operations), len(model.inputs),
              len(model.outputs), *(len(o.dims) for o in model.operands)]
    counts += [len(x) for op in model.operations for x in (op.inputs, op.outputs)]
    if max(counts, default=0) >= _MAX_COUNT:
        raise SerModelError(f"cannot serialize: a count reaches the runtime's limit {_MAX_COUNT}")


def write_ser_model(model: FlatModel, refs: Mapping[int, BufferRef] | None = None) -> torch.Tensor:
    """Serialize ``model``; operands in ``refs`` point into the weights list, the rest are immediate.

    Returns the int32 tensor the runtime expects as ``ser_model``. Raises SerModelError for a
    model that cannot be written faithfully (an index out of range, a field outside its 32-bit
    type, a scale beyond float32), so whatever is written reads back equal.
    """
    refs = refs or {}
    _check_writable(model, refs)
    try:
        return _write(model, refs)
    except (struct.error, OverflowError) as e:
        raise SerModelError(f"cannot serialize: a field is out of range for its type ({e})") from None


def _write(model: FlatModel, refs: Mapping[int, BufferRef]) -> torch.Tensor:
    value_items = sorted(set(model.values) | set(refs))
    out = bytearray()
    out += struct.pack(
        "<6i",
        VERSION,
        len(model.operands),
        len(value_items),
        len(model.operations),
        len(model.inputs),
        len(model.outputs),
    )
    for o in model.operands:
        out += struct.pack("<iIfi", o.code, len(o.dims), o.scale, o.zero_point)
    payloads = []
    for idx in value_items:
        if idx in refs:
            r = refs[idx]
            payload = struct.pack("<3I", r.buffer, r.offset, r.length)
            out += struct.pack("<iiI", idx, SOURCE_NUMBERED_BUFFER, len(payload))
        else:
            payload = model.values[idx]
            out += struct.pack("<iiI", idx, SOURCE_IMMEDIATE, len(payload))
        payloads.append(_pad4(payload))
    for op in model.operations:
        out += struct.pack("<iII", op.code, len(op.inputs), len(op.outputs))
    for o in model.operands:
        out += struct.pack(f"<{len(o.dims)}I", *o.dims)
    for p in payloads:
        out += p
    for op in model.operations:
        out += struct.pack(f"<{len(op.inputs) + len(op.outputs)}I", *op.inputs, *op.outputs)
    out += struct.pack(f"<{len(model.inputs)}I", *model.inputs)
    out += struct.pack(f"<{len(model.outputs)}I", *model.outputs)
    return torch.frombuffer(bytearray(out), dtype=torch.int32).clone()


class _Cursor:
    """Reads little-endian records from a byte string, refusing to step past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise SerModelError(
                f"ser_model truncated: {what} needs {size} bytes at offset {self.pos}, "
                f"only {len(self.data) - self.pos} left"
            )
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return vals

    def take_bytes(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise SerModelError(f"ser_model truncated: {what} needs {n} bytes at offset {self.pos}")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b


def _check_count(name: str, n: int) -> int:
    if not 0 <= n < _MAX_COUNT:
        raise SerModelError(f"ser_model {name} = {n} is out of range [0, {_MAX_COUNT})")
    return n


def _as_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _check_tensors(ser_model: torch.Tensor | bytes, weights: Sequence[torch.Tensor]) -> None:
    """What the runtime's ``init2`` refuses before parsing: it reads the tensors' memory as is."""
    if isinstance(ser_model, torch.Tensor):
        if ser_model.dtype not in (torch.int32, torch.uint8):
            raise SerModelError(f"ser_model must be an int32 (or uint8) tensor, got {ser_model.dtype}")
        if not ser_model.is_contiguous():
            raise SerModelError("ser_model must be a contiguous tensor")
    for i, w in enumerate(weights):
        if not isinstance(w, torch.Tensor):
            raise SerModelError(f"weight buffer {i} is a {type(w).__name__}, not a tensor")
        if not w.is_contiguous():
            raise SerModelError(f"weight buffer {i} must be contiguous (the runtime refuses others)")


def read_ser_model(ser_model: torch.Tensor | bytes, weights: Sequence[torch.Tensor] = ()) -> FlatModel:
    """Parse and bounds-check ``ser_model`` into the model a device receives (see ``read_refs``)."""
    return read_refs(ser_model, weights)[0]


def read_refs(
    ser_model: torch.Tensor | bytes, weights: Sequence[torch.Tensor] = ()
) -> tuple[FlatModel, dict[int, BufferRef]]:
    """The parsed model and, per operand read from a weight buffer, where it is read from.

    Parse and bounds-check ``ser_model``; buffer references are resolved against ``weights``.

    Raises SerModelError on anything malformed: a ser_model tensor that is not contiguous int32
    or uint8, non-contiguous weights (the runtime refuses both), truncation, bad version or
    counts (negative ones included), unknown source types, buffer references out of range,
    trailing bytes, operand indices out of range. It is at least as strict as the runtime's
    own loader, so whatever it parses, ``init2`` parses too.
    """
    _check_tensors(ser_model, weights)
    data = _as_bytes(ser_model) if isinstance(ser_model, torch.Tensor) else bytes(ser_model)
    cur = _Cursor(data)
    version, n_operands, n_values, n_ops, n_in, n_out = cur.take("<6i", "header")
    if version != VERSION:
        raise SerModelError(f"ser_model version {version} is not {VERSION}")
    for name, n in [("operand_count", n_operands), ("value_count", n_values),
                    ("operation_count", n_ops), ("input_count", n_in), ("output_count", n_out)]:
        _check_count(name, n)
    operand_heads = [cur.take("<iIfi", f"operand {i}") for i in range(n_operands)]
    value_heads = [cur.take("<iiI", f"value {i}") for i in range(n_values)]
    op_heads = [cur.take("<iII", f"operation {i}") for i in range(n_ops)]
    operands = []
    for i, (code, ndim, scale, zp) in enumerate(operand_heads):
        _check_count(f"operand {i} dim_count", ndim)
        dims = cur.take(f"<{ndim}I", f"operand {i} dims")
        operands.append(OperandDesc(code=code, dims=tuple(dims), scale=scale, zero_point=zp))
    values: dict[int, bytes] = {}
    refs: dict[int, BufferRef] = {}
    for i, (idx, source, length) in enumerate(value_heads):
        if not 0 <= idx < n_operands:
            raise SerModelError(f"value {i} names operand {idx}, but there are {n_operands}")
        raw = cur.take_bytes(length + (-length % 4), f"value {i} payload")[:length]
        if source == SOURCE_IMMEDIATE:
            values[idx] = raw
        elif source == SOURCE_NUMBERED_BUFFER:
            if length != 12:
                raise SerModelError(f"value {i}: buffer reference must be 12 bytes, got {length}")
            buf, off, n = struct.unpack("<3I", raw)
            if buf >= len(weights):
                raise SerModelError(f"value {i} names weight buffer {buf}, but there are {len(weights)}")
            wb = _as_bytes(weights[buf])
            if off + n > len(wb):
                raise SerModelError(
                    f"value {i} reads bytes [{off}, {off + n}) of weight buffer {buf} "
                    f"which has {len(wb)}"
                )
            values[idx] = wb[off : off + n]
            refs[idx] = BufferRef(buf, off, n)
        else:
            raise SerModelError(f"value {i} has unknown source type {source}")
    operations = []
    for i, (code, n_i, n_o) in enumerate(op_heads):
        _check_count(f"operation {i} input_count", n_i)
        _check_count(f"operation {i} output_count", n_o)
        ins = cur.take(f"<{n_i}I", f"operation {i} inputs")
        outs = cur.take(f"<{n_o}I", f"operation {i} outputs")
        for k in (*ins, *outs):
            if k >= n_operands:
                raise SerModelError(f"operation {i} uses operand {k}, but there are {n_operands}")
        operations.append(OperationDesc(code=code, inputs=tuple(ins), outputs=tuple(outs)))
    model_in = cur.take(f"<{n_in}I", "model inputs")
    model_out = cur.take(f"<{n_out}I", "model outputs")
    for k in (*model_in, *model_out):
        if k >= n_operands:
            raise SerModelError(f"model input/output names operand {k}, but there are {n_operands}")
    if cur.pos != len(data):
        raise SerModelError(f"ser_model has {len(data) - cur.pos} trailing bytes")
    model = FlatModel(
        operands=operands,
        values=values,
        operations=operations,
        inputs=list(model_in),
        outputs=list(model_out),
    )
    return model, refs
