"""Deterministic text form of IR programs, for golden tests, debugging and error context.

Constants of up to ``INLINE`` elements print their values (``dense<...>``, exact: the shortest
text that reads back to the same float32); larger ones a digest of their bytes.
``parser.parse_program`` reads the text back (given the data of digest-printed constants).
"""

from __future__ import annotations

import enum
import re
import struct

import attrs
import torch

from .ops.base import Constant, Op
from .program import Program
from .types import HostType, TensorType, Value, tensor_digest

_WORD = re.compile(r"[\w.\-]+")


def _attr(v: object) -> str:
    if isinstance(v, TensorType | HostType):
        return str(v)
    if isinstance(v, str):  # a word as is; anything with spaces or commas quoted
        return v if _WORD.fullmatch(v) else repr(v)
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, float):
        return f"{v:.6g}"
    if attrs.has(type(v)):
        inner = ",".join(_attr(getattr(v, f.name)) for f in attrs.fields(type(v)))
        return f"({inner})"
    if isinstance(v, tuple):
        return "[" + ",".join(_attr(x) for x in v) + "]"
    return str(v)


INLINE = 16


def _data(t: torch.Tensor) -> str:
    if t.numel() > INLINE:
        return f"#{tensor_digest(t)}"
    flat = t.detach().reshape(-1)
    if t.is_floating_point():
        vals = [_f32(x) for x in flat.float().tolist()]
    else:
        vals = [str(int(x)) for x in flat.tolist()]
    return f"dense<{', '.join(vals)}>"


def _f32(x: float) -> str:
    """The shortest text that reads back as the same float32."""
    for digits in range(6, 10):
        s = f"{x:.{digits}g}"
        if struct.unpack("<f", struct.pack("<f", float(s)))[0] == x or x != x:
            return s
    return repr(x)


def _results(op: Op) -> str:
    return ", ".join(f"{r}:{r.type}" for r in op.results)


def print_op(op: Op) -> str:
    """One op as ``%3:f32[1,8,4,4] = conv_2d %0, %1, %2 {fuse=FUSED_RELU, ...}``."""
    if isinstance(op, Constant):
        return f"{_results(op)} = constant {_data(op.data)}"
    args = ", ".join(str(v) for v in op.inputs())
    attrs_ = {k: v for k, v in op.attributes().items() if v is not None}  # unset options
    tail = " {" + ", ".join(f"{k}={_attr(v)}" for k, v in attrs_.items()) + "}" if attrs_ else ""
    return f"{_results(op)} = {op.mnemonic} {args}{tail}"


def print_program(p: Program) -> str:
    ins = ", ".join(f"{v}:{v.type}" for v in p.inputs)
    outs = ", ".join(str(v) for v in p.outputs)
    lines = [f"program @fl{p.level} ({ins}) -> ({outs}) {{"]
    lines += [f"  {print_op(op)}" for op in p.ops]
    lines.append("}")
    return "\n".join(lines)


def value_str(v: Value) -> str:
    return f"{v}:{v.type}"
