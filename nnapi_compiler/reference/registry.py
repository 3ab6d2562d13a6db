"""Kernel registry: which function runs each NNAPI op, and the operand signatures it accepts.

A registered kernel is a *binder*: Python that reads an op's hyper-parameters (scalars, constant
shape vectors, operand descriptions, input shapes), validates them and returns a ``Bound`` call of
one scriptable function. The interpreter runs that call at once; the CPU fallback binds at build
time and emits the same call into TorchScript, so both run one implementation of the arithmetic.

The interpreter validates a model against these declarations (input count, scalar types, feature
level of optional trailing inputs, supported tensor types) before running anything, so a kernel
only sees well-formed calls and a malformed model is refused with BAD_DATA instead of crashing.

Signature patterns, one character per input operand:
``T`` tensor of input 0's type, ``t`` any tensor, ``I`` TENSOR_INT32, ``i`` INT32 scalar,
``a`` INT32 fuse code (0..3), ``p`` INT32 padding code (1 SAME, 2 VALID), ``f`` float scalar of
the tensor type (FLOAT16 for TENSOR_FLOAT16, else FLOAT32), ``v`` PAD_V2 pad value (``f`` for
float tensors, INT32 for quantized ones), ``B`` conv/FC bias (input 0's type for float tensors,
TENSOR_INT32 for quantized ones), ``b`` BOOL scalar. A ``+`` after a character repeats it to fill
the input count (CONCATENATION).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import torch

from ..ir.codes import OpCode, OperandCode
from ..ir.flat import OperandDesc

FLOAT_TYPES = frozenset({"FLOAT32", "FLOAT16"})
QUANT8_TYPES = frozenset({"QUANT8_ASYMM", "QUANT8_ASYMM_SIGNED"})
#: Operand codes of QUANT8_TYPES: the types the integer-exact quantized kernels handle.
QUANT8_CODES = frozenset({OperandCode.TENSOR_QUANT8_ASYMM, OperandCode.TENSOR_QUANT8_ASYMM_SIGNED})
#: Types a pure data-movement kernel handles for any op (values are copied, never interpreted).
MOVE_TYPES = FLOAT_TYPES | QUANT8_TYPES | {"INT32"}


@attrs.frozen
class Sig:
    """One accepted operand list: required ``base`` inputs, then optional trailing groups.

    ``level`` is the feature level the base form needs; each ``(chars, level)`` in ``opt`` is a
    trailing group that may be present (all of it) only if every earlier group is, and that raises
    the needed level to its own.
    """

    base: str
    level: int = 1
    opt: tuple[tuple[str, int], ...] = ()

    def variants(self) -> list[tuple[str, int]]:
        """(full pattern, needed level) for every accepted length of this signature."""
        out = [(self.base, self.level)]
        pattern, level = self.base, self.level
        for chars, lvl in self.opt:
            pattern, level = pattern + chars, max(level, lvl)
            out.append((pattern, level))
        return out


@attrs.frozen
class KernelCall:
    """What a kernel receives: the op code, decoded inputs (tensor, Python scalar, or None if
    omitted), their operand descriptions and the output operand descriptions."""

    op: int
    inputs: tuple[Any, ...]
    input_descs: tuple[OperandDesc, ...]
    output_descs: tuple[OperandDesc, ...]

    @property
    def quantized(self) -> bool:
        """Input 0 is QUANT8_ASYMM / QUANT8_ASYMM_SIGNED: run the integer kernel."""
        return self.input_descs[0].code in QUANT8_CODES

    def tensor(self, i: int) -> torch.Tensor:
        v = self.inputs[i]
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"input {i} must be a tensor, got {v!r}")
        return v

    def opt_tensor(self, i: int) -> torch.Tensor | None:
        if i >= len(self.inputs) or self.inputs[i] is None:
            return None
        return self.tensor(i)

    def int(self, i: int) -> int:
        v = self.inputs[i]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"input {i} must be an INT32 scalar, got {v!r}")
        return v

    def float(self, i: int) -> float:
        v = self.inputs[i]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"input {i} must be a float scalar, got {v!r}")
        return float(v)

    def flag(self, i: int, default: bool = False) -> bool:
        """An optional trailing BOOL input (layout, align_corners, ...); absent means default."""
        if i >= len(self.inputs) or self.inputs[i] is None:
            return default
        return bool(self.inputs[i])

    def ints(self, i: int) -> list[int]:
        return [int(v) for v in self.tensor(i).reshape(-1).tolist()]


@attrs.frozen
class In:
    """A reference to the op's input operand ``index``, a tensor only known at run time."""

    index: int


@attrs.frozen
class Bound:
    """One call of a scriptable kernel function: ``args`` are ``In`` references (or a list of
    them, for a variadic op) or static values (int, float, bool, str, torch.dtype, or lists /
    tuples of them). ``multi``: ``fn`` returns a
    list of tensors (SPLIT) instead of one tensor."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    multi: bool = False

    def run(self, inputs: Sequence[Any]) -> list[torch.Tensor]:
        """Call ``fn`` with the referenced inputs filled in."""
        result = self.fn(*(_fill(a, inputs) for a in self.args))
        return list(result) if self.multi else [result]


def _fill(arg: Any, inputs: Sequence[Any]) -> Any:
    if isinstance(arg, In):
        return inputs[arg.index]
    if isinstance(arg, list) and any(isinstance(a, In) for a in arg):
        return [_fill(a, inputs) for a in arg]
    return arg


def bound(fn: Callable[..., Any], *args: Any) -> Bound:
    return Bound(fn, args)


@attrs.frozen
class CheckArgs:
    """What a static check sees at validation time: the op, its operand descriptions, the values
    of constant scalar inputs (None for tensors and runtime inputs) and the device's level."""

    op: int
    inputs: Sequence[OperandDesc]
    values: Sequence[Any]
    outputs: Sequence[OperandDesc]
    level: int


Kernel = Callable[[KernelCall], Bound]
#: Static check run by validate_model; returns an error text or None.
StaticCheck = Callable[[CheckArgs], "str | None"]


@attrs.frozen
class KernelSpec:
    fn: Kernel
    sigs: tuple[Sig, ...]
    outputs: int | None  # None: any count >= 1 (SPLIT)
    types: frozenset[str]  # primary (input 0) type names this kernel implements
    optional: frozenset[int]  # input positions that may be omitted (value b"")
    rank: tuple[int, int]  # allowed rank range of input 0 when known
    check: StaticCheck | None
    keeps_quant: bool  # quantized outputs must carry input 0's scale and zero point
    primary: int = 0  # the input whose type the spec's type column names (SELECT: 1)

    def run(self, call: KernelCall) -> list[torch.Tensor]:
        """Bind ``call`` and run it (the interpreter's and constant folding's path)."""
        return self.fn(call).run(call.inputs)

    def match(self, descs: Sequence[OperandDesc], level: int) -> tuple[str | None, int | None]:
        """(matching pattern usable at ``level``, None) or (None, lowest level that would
        accept these operands, or None if no signature fits at all)."""
        needed: int | None = None
        for sig in self.sigs:
            for pattern, lvl in sig.variants():
                full = expand_pattern(pattern, len(descs))
                if full is None or not all(
                    char_accepts(c, d, descs[0]) for c, d in zip(full, descs, strict=True)
                ):
                    continue
                if lvl <= level:
                    return full, None
                needed = lvl if needed is None else min(needed, lvl)
        return None, needed

    @property
    def input_counts(self) -> frozenset[int]:
        """Accepted input counts (CONCATENATION's variadic form reports its minimum only)."""
        return frozenset(len(p.replace("+", "")) for s in self.sigs for p, _ in s.variants())


KERNELS: dict[int, KernelSpec] = {}


def kernel(
    *codes: int,
    inputs: Iterable[Sig | str],
    outputs: int | None = 1,
    types: Iterable[str] = FLOAT_TYPES,
    optional: Iterable[int] = (),
    rank: tuple[int, int] = (1, 4),
    check: StaticCheck | None = None,
    keeps_quant: bool = False,
    primary: int = 0,
) -> Callable[[Kernel], Kernel]:
    """Register ``fn`` as the kernel of every op in ``codes``; returns ``fn`` unchanged."""
    sigs = tuple(s if isinstance(s, Sig) else Sig(s) for s in inputs)

    def register(fn: Kernel) -> Kernel:
        for code in codes:
            if code in KERNELS:
                raise RuntimeError(f"duplicate kernel for {OpCode(code).name}: {fn.__qualname__}")
            KERNELS[code] = KernelSpec(
                fn, sigs, outputs, frozenset(types), frozenset(optional), rank, check, keeps_quant,
                primary,
            )
        return fn

    return register


_SCALAR_CHAR_CODES = {
    "i": OperandCode.INT32,
    "a": OperandCode.INT32,
    "p": OperandCode.INT32,
    "b": OperandCode.BOOL,
}


def expand_pattern(pattern: str, count: int) -> str | None:
    """The pattern with its ``+`` repetition filled to ``count`` characters, or None."""
    if "+" not in pattern:
        return pattern if len(pattern) == count else None
    at = pattern.index("+")
    fixed = len(pattern) - 2  # every char except the repeated one and '+'
    reps = count - fixed
    if reps < 1:
        return None
    return pattern[: at - 1] + pattern[at - 1] * reps + pattern[at + 1 :]


def char_accepts(ch: str, desc: OperandDesc, primary: OperandDesc) -> bool:
    """Does operand ``desc`` fit pattern character ``ch`` (``primary`` = input 0)?"""
    code = desc.code
    if ch == "T":
        return code == primary.code
    if ch == "t":
        return desc.is_tensor
    if ch == "I":
        return code == OperandCode.TENSOR_INT32
    if ch in _SCALAR_CHAR_CODES:
        return code == _SCALAR_CHAR_CODES[ch]
    if ch == "B":
        return code == (OperandCode.TENSOR_INT32 if primary.code in QUANT8_CODES else primary.code)
    if ch in ("f", "v"):
        if ch == "v" and primary.code in QUANT8_CODES:
            return code == OperandCode.INT32
        want = OperandCode.FLOAT16 if primary.code == OperandCode.TENSOR_FLOAT16 else (OperandCode.FLOAT32)
        return code == want
    raise ValueError(f"bad signature character {ch!r}")
