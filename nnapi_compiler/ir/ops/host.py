"""Host ops: computations NNAPI cannot run, kept as calls executed by PyTorch on the CPU.

A host op stands for one node of the captured graph that was refused (no NNAPI form at the
target, or it reads a value only host code can hold). It carries its result types explicitly
(they come from the example run, not from NNAPI rules) and a ``HostCall`` saying how to call the
original torch code again. The backend refuses to serialize one into an NNAPI model;
partitioning places them in the TorchScript host code between NNAPI segments.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import attrs
import torch

from ..types import HostType, TensorType, Value
from .base import Loc, Op


class CallKind(enum.Enum):
    """The fx node kinds a host call can be (the same names as ``torch.fx.Node.op``)."""

    FUNCTION = "call_function"
    METHOD = "call_method"
    MODULE = "call_module"


@attrs.define(eq=False)
class ArgRef:
    """Placeholder inside a host call's argument template: the host op's ``args[index]``."""

    index: int


@attrs.define(eq=False)
class HostCall:
    """How to call the torch code again: fx node kind, target, and the argument templates.

    Compared by identity: a host op keeps the same call through every pass. ``args``/``kwargs``
    hold ``ArgRef`` where the op's input values go and the static values (ints, lists, dtypes,
    constant tensors) everywhere else; ``module`` is the submodule of a ``call_module`` call.
    ``examples`` are example values of the inputs (for TorchScript type annotations).
    """

    kind: CallKind
    target: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    module: torch.nn.Module | None = None
    examples: tuple[Any, ...] = ()
    inplace: bool = False  # an in-place spelling: the backend calls it on a copy of input 0


@attrs.frozen(kw_only=True)
class HostOp(Op):
    mnemonic: ClassVar[str] = "host"
    results: tuple[Value, ...] = ()
    fn: str
    args: tuple[Value, ...] = attrs.field(default=(), converter=tuple)
    result_types: tuple[TensorType | HostType, ...] = attrs.field(converter=tuple)
    reason: str = ""
    call: HostCall | None = attrs.field(default=None, repr=False)
    loc: Loc | None = attrs.field(default=None, eq=False)

    def input_fields(self) -> list[str]:
        return ["args"] if self.args else []

    def attributes(self) -> dict[str, Any]:
        return {"fn": self.fn}

    def infer(self) -> tuple[TensorType | HostType, ...]:
        return self.result_types

    def check(self) -> list[str]:
        if not self.fn:
            return ["host op names no callable"]
        if not self.result_types:
            return ["host op has no results"]
        return []
