"""Pass protocol and pass manager: an ordered list of named passes, verified between steps in tests.

A pass is a small frozen class whose fields are its options and whose ``name`` is kebab-case;
``run(program) -> PassResult`` must report ``changed`` honestly (``changed=False`` means the
returned program equals the input). A pipeline can be written as a string: "legalize".
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol, TextIO

import attrs

from ..errors import InternalError, NnapiCompilerError, VerificationError
from ..ir.printer import print_program
from ..ir.program import Program
from ..ir.verifier import verify


@attrs.frozen
class PassResult:
    program: Program
    changed: bool


class Pass(Protocol):
    name: ClassVar[str]

    def run(self, program: Program) -> PassResult: ...


PASSES: dict[str, Callable[[], Pass]] = {}


def register(cls: type) -> type:
    """Class decorator: make a pass constructible by name in pipeline strings."""
    if cls.name in PASSES:
        raise ValueError(f"pass {cls.name!r} registered twice")
    PASSES[cls.name] = cls
    return cls


def parse_pipeline(text: str) -> list[Pass]:
    """``"legalize"`` (comma-separated names) -> pass instances with default options."""
    out = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        if name not in PASSES:
            raise ValueError(f"unknown pass {name!r}; known: {', '.join(sorted(PASSES))}")
        out.append(PASSES[name]())
    return out


#: Called once with the input program (name "input") and after every pass with its name, the
#: program it returned, its ``changed`` flag and the seconds it took. Hooks verify, print or time.
PassHook = Callable[[str, Program, bool, float], None]


def verify_hook(name: str, program: Program, changed: bool, seconds: float) -> None:
    """Verify the IR (feature-level legality excepted: legalization is itself a pass)."""
    try:
        verify(program, check_level=False)
    except VerificationError as e:
        where = "the input program" if name == "input" else f"pass {name}"
        raise VerificationError(f"after {where}: {e}") from e


@attrs.define(eq=False)
class PrintHook:
    """Print the IR after every pass that changed it (for debugging a pipeline)."""

    stream: TextIO = sys.stderr

    def __call__(self, name: str, program: Program, changed: bool, seconds: float) -> None:
        if changed or name == "input":
            print(f"// after {name}\n{print_program(program)}", file=self.stream)


@attrs.define(eq=False)
class TimeHook:
    """Collect (pass name, seconds) for every pass run."""

    times: list[tuple[str, float]] = attrs.field(factory=list)

    def __call__(self, name: str, program: Program, changed: bool, seconds: float) -> None:
        if name != "input":
            self.times.append((name, seconds))


def _in_pass(e: Exception, name: str, before: list[str]) -> Exception:
    """``e`` (raised inside pass ``name``) with the pass and those run before it named."""
    if isinstance(e, InternalError):
        return InternalError(e.message, e.node, e.source, name, tuple(before))
    if isinstance(e, NnapiCompilerError):  # a user-facing error (e.g. bias overflow): same type
        e.add_note(f"in pass {name} (passes run before it: {', '.join(before) or 'none'})")
        return e
    return InternalError(f"{type(e).__name__}: {e}", pass_name=name, passes_before=tuple(before))


@attrs.define(eq=False)
class PassManager:
    """Runs passes in order, calling every hook on the input and after each pass.

    ``verify_each`` adds ``verify_hook`` (what tests run with). An exception inside a pass is
    re-raised naming the pass and those before it, with the original chained.
    """

    passes: Sequence[Pass]
    verify_each: bool = False
    hooks: list[PassHook] = attrs.field(factory=list)
    log: list[tuple[str, bool]] = attrs.field(factory=list)

    def run(self, program: Program) -> Program:
        # Passes allocate many short-lived objects and no lasting cycles (the IR is immutable,
        # the rewriter unlinks its list). A full collection in the middle would rescan the whole
        # heap (the user's model, the fx graph) again and again: measured, that made compile
        # time grow faster than the model (benchmarks/scaling.py). Collect after, not during.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._run(program)
        finally:
            if paused:
                gc.enable()

    def _run(self, program: Program) -> Program:
        hooks = [verify_hook, *self.hooks] if self.verify_each else list(self.hooks)
        for hook in hooks:
            hook("input", program, False, 0.0)
        done: list[str] = []
        for p in self.passes:
            t0 = time.perf_counter()
            try:
                res = p.run(program)
            except Exception as e:
                err = _in_pass(e, p.name, done)
                if err is e:
                    raise
                raise err from e
            seconds = time.perf_counter() - t0
            if not res.changed and res.program != program:
                raise InternalError("the pass changed the program but said it did not",
                                    pass_name=p.name, passes_before=tuple(done))
            self.log.append((p.name, res.changed))
            program = res.program
            done.append(p.name)
            for hook in hooks:
                hook(p.name, program, res.changed, seconds)
        return program
