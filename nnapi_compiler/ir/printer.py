"""Deterministic text form of IR programs, for golden tests, debugging and error context."""

from __future__ import annotations

import enum

import attrs

from .ops.base import Constant, Op
from .program import Program
from .types import Value


def _attr(v: object) -> str:
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


def _results(op: Op) -> str:
    return ", ".join(f"{r}:{r.type}" for r in op.results)


def print_op(op: Op) -> str:
    """One op as ``%3:f32[1,8,4,4] = conv_2d %0, %1, %2 {fuse=FUSED_RELU, ...}``."""
    if isinstance(op, Constant):
        return f"{_results(op)} = constant #{op.digest}"
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
