"""Lower an IR program to NNAPI operand/operation tables plus the weights list.

Constants larger than NNAPI's immediate-copy limit (128 bytes) go to numbered weight buffers,
one buffer per distinct content, so identical constants are stored once; small constants and
scalar hyper-parameters are immediate and shared by value.
"""

from __future__ import annotations

import attrs
import torch

from ..errors import VerificationError
from ..ir.constpool import group_key, same_bytes
from ..ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes
from ..ir.ops.base import Constant, NnapiOp
from ..ir.program import Program
from ..ir.types import IntVector, Omitted, Operand, Scalar, Value
from .ser_model import BufferRef, read_ser_model, write_ser_model

IMMEDIATE_LIMIT = 128  # MAX_SIZE_OF_IMMEDIATELY_COPIED_VALUES


@attrs.frozen
class NnapiSegment:
    """Everything the runtime needs for one NNAPI model."""

    flat: FlatModel = attrs.field(eq=False)
    ser_model: torch.Tensor = attrs.field(eq=False)
    weights: tuple[torch.Tensor, ...] = attrs.field(eq=False)
    program: Program

    def resolved(self) -> FlatModel:
        """The model as a device receives it: weight-buffer values read back from ``weights``."""
        return read_ser_model(self.ser_model, list(self.weights))


def _bytes(t: torch.Tensor) -> bytes:
    t = t.contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


@attrs.define(eq=False)
class _Tables:
    model: FlatModel = attrs.field(factory=FlatModel)
    refs: dict[int, BufferRef] = attrs.field(factory=dict)
    weights: list[torch.Tensor] = attrs.field(factory=list)
    by_value: dict[int, int] = attrs.field(factory=dict)  # IR value id -> operand index
    by_literal: dict[object, int] = attrs.field(factory=dict)
    by_buffer: dict[int, int] = attrs.field(factory=dict)  # id(pooled tensor) -> weights index
    pool: dict[str, torch.Tensor] = attrs.field(factory=dict)  # shared by all segments

    def add(self, desc: OperandDesc) -> int:
        self.model.operands.append(desc)
        return len(self.model.operands) - 1

    def literal(self, key: object, desc: OperandDesc, raw: bytes) -> int:
        if key not in self.by_literal:
            idx = self.add(desc)
            self.model.values[idx] = raw
            self.by_literal[key] = idx
        return self.by_literal[key]

    def constant(self, c: Constant) -> int:
        v = c.results[0]
        idx = self.add(v.type.desc())
        raw_len = c.data.numel() * c.data.element_size()
        if raw_len <= IMMEDIATE_LIMIT:
            self.model.values[idx] = _bytes(c.data)
        else:
            shared = pooled(self.pool, c.data)
            if id(shared) not in self.by_buffer:
                self.by_buffer[id(shared)] = len(self.weights)
                self.weights.append(shared)
            self.refs[idx] = BufferRef(self.by_buffer[id(shared)], 0, raw_len)
        return idx


def pooled(pool: dict[str, torch.Tensor], data: torch.Tensor) -> torch.Tensor:
    """The tensor in ``pool`` holding ``data``'s bytes, added if new.

    Keys are a cheap group key (dtype, shape, sampled elements) plus an ordinal, so finding a
    weight compares bytes only with tensors that already agree on those; no weight is hashed.
    """
    base = repr(group_key(data))
    n = 0
    while (key := f"{base}#{n}") in pool:
        if same_bytes(pool[key], data):
            return pool[key]
        n += 1
    pool[key] = data.contiguous()
    return pool[key]


def flatten(p: Program, pool: dict[str, torch.Tensor] | None = None) -> NnapiSegment:
    """Turn ``p`` (NNAPI ops and constants only) into a serialized segment.

    ``pool`` (content key -> tensor, see ``pooled``) is shared by all segments of one model, so
    a weight used by several segments is one tensor object, stored once in the saved artifact.
    """
    t = _Tables(pool={} if pool is None else pool)
    consts = p.constants()
    for v in p.inputs:
        t.by_value[v.id] = t.add(v.type.desc())
    t.model.inputs = [t.by_value[v.id] for v in p.inputs]

    def operand(o: Operand) -> int:
        if isinstance(o, Value):
            if o.id not in t.by_value:
                if o.id not in consts:
                    raise VerificationError(f"{o} is used before it is defined")
                t.by_value[o.id] = t.constant(consts[o.id])
            return t.by_value[o.id]
        if isinstance(o, Scalar):
            desc = OperandDesc(code=int(o.code))
            return t.literal(("s", int(o.code), o.value), desc, scalar_bytes(o.code, o.value))
        if isinstance(o, IntVector):
            desc = OperandDesc(code=4, dims=o.dims)  # TENSOR_INT32
            raw = torch.tensor(o.values, dtype=torch.int32)
            return t.literal(("v", o.values, o.dims), desc, _bytes(raw))
        if isinstance(o, Omitted):  # its own operand, value of length 0
            idx = t.add(OperandDesc(code=int(o.code)))
            t.model.values[idx] = b""
            return idx
        raise TypeError(f"not an NNAPI operand: {o!r}")

    for op in p.ops:
        if isinstance(op, Constant):
            continue
        if not isinstance(op, NnapiOp):
            raise VerificationError(f"{op.mnemonic} is not an NNAPI op and cannot be serialized")
        ins = tuple(operand(o) for o in op.nnapi_operands())
        outs = []
        for r in op.results:
            t.by_value[r.id] = t.add(r.type.desc())
            outs.append(t.by_value[r.id])
        t.model.operations.append(OperationDesc(code=int(op.code), inputs=ins, outputs=tuple(outs)))
    for v in p.outputs:
        if v.id in consts or v.id in {i.id for i in p.inputs}:
            raise VerificationError(f"program output {v} must be computed by an NNAPI op")
    t.model.outputs = [t.by_value[v.id] for v in p.outputs]
    ser = write_ser_model(t.model, t.refs)
    return NnapiSegment(flat=t.model, ser_model=ser, weights=tuple(t.weights), program=p)
