"""The one error hierarchy every failure of nnapi_compiler comes from.

Users catch ``NnapiCompilerError``; subclasses say which phase failed. Errors about a model node
carry the node and the user's source line, so a message points at the code to change.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import ParamSpec, TypeVar

import attrs

from .source import source_of

P = ParamSpec("P")
R = TypeVar("R")


class NnapiCompilerError(Exception):
    """Base class of every error nnapi_compiler raises on purpose."""


@attrs.frozen
class Refusal:
    """Why one model node cannot be lowered: the structured record behind an UnsupportedError."""

    node: str
    target: str
    reason: str
    source: str = ""

    def render(self) -> str:
        where = f"\n      at {self.source}" if self.source else ""
        return f"  - {self.node} ({self.target}): {self.reason}{where}"


class ConversionError(NnapiCompilerError):
    """A model (or one of its nodes) cannot be captured or lowered."""


class UnsupportedError(ConversionError):
    """One or more nodes have no NNAPI lowering at the target; lists them all at once."""

    def __init__(self, refusals: list[Refusal], header: str = "") -> None:
        self.refusals = list(refusals)
        head = header or f"{len(self.refusals)} node(s) cannot be lowered to NNAPI:"
        super().__init__("\n".join([head, *(r.render() for r in self.refusals)]))


class CaptureError(ConversionError):
    """Neither torch.fx symbolic tracing nor torch.export could capture the model."""


class VerificationError(NnapiCompilerError):
    """The IR breaks an invariant (SSA, types, arity, feature level, quantization rules)."""


class QuantizationError(NnapiCompilerError):
    """Quantization parameters cannot be represented (e.g. an int32 bias would overflow)."""


class SerModelError(NnapiCompilerError):
    """A serialized NNAPI model (ser_model + weights) is malformed."""


class InputError(NnapiCompilerError, ValueError):
    """A run-time input does not match what the model was compiled for."""


class VirtualDeviceError(NnapiCompilerError):
    """The host virtual NNAPI device could not be built, loaded or used."""


class NnapiRuntimeError(NnapiCompilerError):
    """An NNAPI call failed while running a compiled model; carries the NNAPI result code."""

    def __init__(self, message: str, result_code: int = 0) -> None:
        super().__init__(message)
        self.result_code = result_code


class InternalError(NnapiCompilerError):
    """A bug in nnapi_compiler itself, not in the model; the original exception is chained.

    Names what the compiler was doing, as far as it knows: the pass and the passes run before
    it, and the model node (with its source line) being lowered or rewritten.
    """

    def __init__(self, message: str, node: str = "", source: str = "", pass_name: str = "",
                 passes_before: tuple[str, ...] = ()) -> None:
        self.message, self.node, self.source = message, node, source
        self.pass_name, self.passes_before = pass_name, tuple(passes_before)
        where = (f" in pass {pass_name}" if pass_name else "") + (f" at node {node}" if node else "")
        lines = [f"internal error{where}: {message} (a bug in nnapi_compiler; please report it)"]
        if pass_name:
            before = ", ".join(self.passes_before) or "none"
            lines.append(f"  in pass {pass_name} (passes run before it: {before})")
        if node:
            lines.append(f"  while rewriting {node}" + (f" at {source}" if source else ""))
        super().__init__("\n".join(lines))


def _where(tb: TracebackType | None) -> tuple[str, str, str]:
    """(node, source line, pass) of the innermost frames that know them."""
    node = source = pass_name = ""
    while tb is not None:
        f = tb.tb_frame.f_locals
        fx_node, op, obj = f.get("node"), f.get("op"), f.get("self")
        if hasattr(fx_node, "graph") and hasattr(fx_node, "name"):  # a torch.fx.Node being lowered
            node, source = str(fx_node.name), _source(fx_node)
        loc = getattr(op, "loc", None)
        if loc is not None and hasattr(loc, "node"):  # an IR op carrying its model node
            node, source = str(loc.node), str(getattr(loc, "source", ""))
        name = getattr(type(obj), "name", None)
        if isinstance(name, str) and tb.tb_frame.f_code.co_name == "run":  # a pass's run()
            pass_name = name
        tb = tb.tb_next
    return node, source, pass_name


def _source(fx_node: object) -> str:
    try:
        return source_of(fx_node)
    except Exception:
        return ""


@contextlib.contextmanager
def internal_errors() -> Iterator[None]:
    """Let NnapiCompilerError through; turn any other exception into InternalError (chained)."""
    try:
        yield
    except NnapiCompilerError:
        raise
    except Exception as e:
        node, source, pass_name = _where(e.__traceback__)
        raise InternalError(f"{type(e).__name__}: {e}", node, source, pass_name) from e


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of ``internal_errors``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with internal_errors():
            return fn(*args, **kwargs)

    return wrapper
