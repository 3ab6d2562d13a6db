"""The one error hierarchy every failure of nnapi_compiler comes from.

Users catch ``NnapiCompilerError``; subclasses say which phase failed. Errors about a model node
carry the node and the user's source line, so a message points at the code to change.
"""

from __future__ import annotations

import attrs


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
    """A bug in nnapi_compiler itself (a pass or rewrite rule failed); the original is chained.

    Names what the compiler was doing: the pass, the passes run before it, and the model node
    (with its source line) whose op was being rewritten.
    """

    def __init__(self, message: str, node: str = "", source: str = "", pass_name: str = "",
                 passes_before: tuple[str, ...] = ()) -> None:
        self.message, self.node, self.source = message, node, source
        self.pass_name, self.passes_before = pass_name, tuple(passes_before)
        lines = [message]
        if pass_name:
            before = ", ".join(self.passes_before) or "none"
            lines.append(f"  in pass {pass_name} (passes run before it: {before})")
        if node:
            lines.append(f"  while rewriting {node}" + (f" at {source}" if source else ""))
        super().__init__("\n".join(lines))
