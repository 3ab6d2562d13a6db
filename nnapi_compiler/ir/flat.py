"""The NNAPI model exactly as the C API sees it: operand table, values, operations, I/O.

This is the meeting point of three parts that must agree byte for byte: the backend lowers an IR
program to a ``FlatModel`` and serializes it; the ser_model reader parses bytes back into one; the
virtual device records the C calls the runtime replays into one and hands it to the interpreter.
"""

from __future__ import annotations

import struct

import attrs

from .codes import ELEMENT_BYTES, OpCode, OperandCode, is_tensor_code


@attrs.frozen
class OperandDesc:
    """One ``ANeuralNetworksOperandType``; a dim of 0 means unknown."""

    code: int
    dims: tuple[int, ...] = ()
    scale: float = 0.0
    zero_point: int = 0

    @property
    def is_tensor(self) -> bool:
        return is_tensor_code(self.code)

    def byte_size(self) -> int | None:
        """Bytes of a fully specified value of this type, or None while any dim is unknown."""
        if any(d == 0 for d in self.dims):
            return None
        n = ELEMENT_BYTES.get(self.code)
        if n is None:
            return None
        for d in self.dims:
            n *= d
        return n

    def describe(self) -> str:
        q = f" scale={self.scale:g} zp={self.zero_point}" if self.scale else ""
        return f"{OperandCode(self.code).name}{list(self.dims)}{q}"


@attrs.frozen
class OperationDesc:
    """One ``ANeuralNetworksModel_addOperation`` call."""

    code: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@attrs.define
class FlatModel:
    """A whole NNAPI model; ``values`` maps operand index to its raw little-endian bytes.

    An operand listed in ``values`` with ``b""`` is an omitted optional operand.
    """

    operands: list[OperandDesc] = attrs.field(factory=list)
    values: dict[int, bytes] = attrs.field(factory=dict)
    operations: list[OperationDesc] = attrs.field(factory=list)
    inputs: list[int] = attrs.field(factory=list)
    outputs: list[int] = attrs.field(factory=list)
    relaxed: bool = False


class Unschedulable(ValueError):
    """An operation reads an operand no operation writes (or the graph has a cycle)."""

    def __init__(self, op_index: int) -> None:
        super().__init__(f"op #{op_index} reads an operand that no operation writes "
                         "(or the graph has a cycle)")
        self.op_index = op_index


def schedule(model: FlatModel, also_ready: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """Operation indices in an order where every input is ready: the model's own order when it
    is one (NNAPI lets operations be added in any order). ``also_ready``: operands given
    otherwise (values read from weight buffers). Raises Unschedulable."""
    ready = set(model.inputs) | set(model.values) | set(also_ready)
    remaining = list(range(len(model.operations)))
    order: list[int] = []
    while remaining:
        pending = []
        for i in remaining:
            op = model.operations[i]
            if all(k in ready for k in op.inputs):
                order.append(i)
                ready.update(op.outputs)
            else:
                pending.append(i)
        if len(pending) == len(remaining):
            raise Unschedulable(pending[0])
        remaining = pending
    return order


def scalar_bytes(code: int, value: float | int | bool) -> bytes:
    """Encode one scalar operand value the way NNAPI reads it."""
    fmt = {
        OperandCode.INT32: "<i",
        OperandCode.UINT32: "<I",
        OperandCode.FLOAT32: "<f",
        OperandCode.FLOAT16: "<e",
        OperandCode.BOOL: "<?",
    }[OperandCode(code)]
    return struct.pack(fmt, value)


def layout_conversions(m: FlatModel) -> int:
    """TRANSPOSE ops plus ops using NNAPI's NCHW flag (drivers turn each into transposes).

    Works on any model as the runtime receives it: ours and torch's prototype's alike. Which
    op codes carry the flag is declared on the op classes (``nchw_flag``).
    """
    from .ops import LAYOUT_FLAG_CODES  # ops import types, which import this module

    n = 0
    for op in m.operations:
        if op.code == OpCode.TRANSPOSE:
            n += 1
        elif op.code in LAYOUT_FLAG_CODES:
            flags = [i for i in op.inputs if m.operands[i].code == OperandCode.BOOL]
            n += bool(flags) and struct.unpack("<?", m.values[flags[0]][:1])[0]
    return n
