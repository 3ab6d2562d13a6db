"""Reads the printer's text form back into a Program, so pass tests can be written as IR text.

The grammar is exactly what ``print_program`` writes. Constants print as ``constant #digest``
(their bytes are not in the text); to read one, give its data in ``consts`` under the name after
``#``, or write the values inline: ``constant dense<1, 2, 3>`` (flat, in the type's shape; one
value fills the whole tensor). Attributes are converted with the op class's field types.
"""

from __future__ import annotations

import ast
import enum
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs
import torch

from ..errors import NnapiCompilerError
from .codes import OperandCode
from .ops import op_classes
from .ops.base import Constant, Op, _field_names
from .program import Program
from .types import _SHORT, DimOrder, HostType, Quant, TensorType, Value


class ParseError(NnapiCompilerError):
    """IR text that does not follow the printer's grammar."""


_CODES = {short: code for code, short in _SHORT.items()}
_TYPE = re.compile(r"([A-Za-z0-9_]+)\[([^\]]*)\](?:\(s=([^,]+),zp=(-?\d+)\))?(?::(\w+))?$")
_HEADER = re.compile(r"program @fl(\d+) \((.*)\) -> \((.*)\) \{$")
_CLOSE = {"[": "]", "(": ")", "<": ">", "{": "}"}


def parse_type(text: str) -> TensorType | HostType:
    """``f32[1,?,4](s=0.5,zp=3):nhwc`` or ``host<desc>``."""
    text = text.strip()
    if text.startswith("host<") and text.endswith(">"):
        return HostType(text[5:-1])
    m = _TYPE.match(text)
    if m is None:
        raise ParseError(f"not a type: {text!r}")
    short, dims, scale, zp, order = m.groups()
    code = _CODES.get(short) or OperandCode[short]
    shape = tuple(None if d == "?" else int(d) for d in dims.split(",") if d)
    quant = Quant(float(scale), int(zp)) if scale is not None else None
    return TensorType(code, shape, quant, DimOrder(order) if order else DimOrder.CONTIGUOUS)


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside brackets and quotes; parts are stripped, empty text gives []."""
    parts, depth, start, quote = [], 0, 0, ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote and text[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _CLOSE:
            depth += 1
        elif ch in _CLOSE.values() and not (ch == ">" and depth == 0):
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    return [*parts, last] if parts or last else []


def _raw(text: str) -> Any:
    """Attribute text as nested lists (``[...]``), tuples (``(...)``) and strings."""
    text = text.strip()
    if text[:1] == "[" and text[-1:] == "]":
        return [_raw(t) for t in split_top(text[1:-1])]
    if text[:1] == "(" and text[-1:] == ")":
        return tuple(_raw(t) for t in split_top(text[1:-1]))
    if text[:1] in "'\"":
        return ast.literal_eval(text)
    return text


def _convert(raw: Any, hint: Any) -> Any:
    """``raw`` (from ``_raw``) as a value of type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw == "None" and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(raw, arg)
            except (ValueError, TypeError, KeyError, ParseError):
                continue
        raise ParseError(f"{raw!r} is none of {hint}")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(x, args[0]) for x in raw)
        return tuple(_convert(x, a) for x, a in zip(raw, args, strict=True))
    if hint in (TensorType, HostType):
        return parse_type(raw)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint[raw]
    if hint is bool:
        if raw not in ("True", "False"):
            raise ValueError(f"not a bool: {raw!r}")
        return raw == "True"
    if hint in (int, float):
        return hint(raw)
    if hint is str:
        return raw
    if isinstance(hint, type) and attrs.has(hint):
        hints = typing.get_type_hints(hint)
        fields = [f for f in attrs.fields(hint) if f.init]
        return hint(*(_convert(x, hints[f.name]) for x, f in zip(raw, fields, strict=True)))
    raise ParseError(f"cannot read an attribute of type {hint}")


@attrs.define(eq=False)
class _Reader:
    consts: Mapping[str, torch.Tensor]
    values: dict[int, Value] = attrs.field(factory=dict)
    mnemonics: dict[str, type[Op]] = attrs.field(
        factory=lambda: {c.mnemonic: c for c in op_classes()})

    def define(self, text: str) -> Value:
        name, _, t = text.partition(":")
        if not name.startswith("%"):
            raise ParseError(f"not a value definition: {text!r}")
        v = Value(int(name[1:]), parse_type(t))
        if v.id in self.values:
            raise ParseError(f"{name} is defined twice")
        self.values[v.id] = v
        return v

    def use(self, text: str) -> Value:
        if not text.startswith("%") or int(text[1:]) not in self.values:
            raise ParseError(f"{text} is not defined")
        return self.values[int(text[1:])]

    def op(self, line: str) -> Op:
        lhs, eq, rhs = line.partition(" = ")
        if not eq:
            raise ParseError("expected '<results> = <op> ...'")
        rhs, attr_text = (rhs[:-1].split(" {", 1) if rhs.endswith("}") else (rhs, ""))
        mnemonic, _, arg_text = rhs.partition(" ")
        results = tuple(self.define(r) for r in split_top(lhs))
        if mnemonic == "constant":
            return Constant(results=results, data=self.constant(arg_text.strip(), results[0]))
        cls = self.mnemonics.get(mnemonic)
        if cls is None:
            raise ParseError(f"unknown op {mnemonic!r}")
        hints = typing.get_type_hints(cls)
        fields: dict[str, Any] = {}
        args = [self.use(a) for a in split_top(arg_text)]
        value_fields = _field_names(cls)
        singles = sum(1 for f in value_fields if typing.get_origin(hints[f]) is not tuple)
        for f in value_fields:
            if typing.get_origin(hints[f]) is tuple:
                n = len(args) - singles
                fields[f], args = tuple(args[:n]), args[n:]
            else:
                fields[f], args, singles = args[0], args[1:], singles - 1
        for item in split_top(attr_text):
            key, _, val = item.partition("=")
            fields[key] = _convert(_raw(val), hints[key])
        if "result_types" in hints and "result_types" not in fields:  # a host op's: as printed
            fields["result_types"] = tuple(r.type for r in results)
        return cls(results=results, **fields)

    def constant(self, text: str, v: Value) -> torch.Tensor:
        assert isinstance(v.type, TensorType)
        if text.startswith("#"):
            if text[1:] not in self.consts:
                raise ParseError(f"constant {text} has no data: pass it in consts")
            data = self.consts[text[1:]]
        elif text.startswith("dense<") and text.endswith(">"):
            data = torch.tensor([float(x) for x in split_top(text[6:-1])], dtype=torch.float64)
        else:
            raise ParseError(f"constant needs '#name' or 'dense<...>', got {text!r}")
        data = data.to(v.type.torch_dtype)
        shape = tuple(v.type.shape)
        return data.expand(shape).clone() if data.numel() == 1 else data.reshape(shape).clone()


def parse_program(text: str, consts: Mapping[str, torch.Tensor] | None = None) -> Program:
    """The Program that ``text`` (as ``print_program`` writes it) describes."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    reader = _Reader(consts or {})
    m = _HEADER.match(lines[0]) if lines else None
    if m is None or lines[-1] != "}":
        raise ParseError("expected 'program @flN (<inputs>) -> (<outputs>) { ... }'")
    inputs = tuple(reader.define(t) for t in split_top(m.group(2)))
    body = []
    for i, line in enumerate(lines[1:-1], start=2):
        try:
            body.append(reader.op(line))
        except (ParseError, ValueError, TypeError, KeyError) as e:
            raise ParseError(f"line {i}: {line}\n  {e}") from e
    outputs = tuple(reader.use(t) for t in split_top(m.group(3)))
    return Program(inputs=inputs, ops=tuple(body), outputs=outputs, level=int(m.group(1)))
