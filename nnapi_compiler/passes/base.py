"""Pass protocol and pass manager: an ordered list of named passes, verified between steps in tests.

A pass is a small frozen class whose fields are its options and whose ``name`` is kebab-case;
``run(program) -> PassResult`` must report ``changed`` honestly (``changed=False`` means the
returned program equals the input). A pipeline can be written as a string: "legalize".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol

import attrs

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


@attrs.define(eq=False)
class PassManager:
    """Runs passes in order; with ``verify_each`` the verifier checks the IR after every pass.

    Feature-level legality is not checked between passes (legalization is itself a pass);
    the caller verifies the final program in full.
    """

    passes: Sequence[Pass]
    verify_each: bool = False
    log: list[tuple[str, bool]] = attrs.field(factory=list)

    def run(self, program: Program) -> Program:
        if self.verify_each:
            verify(program, check_level=False)
        for p in self.passes:
            res = p.run(program)
            if not res.changed and res.program != program:
                raise AssertionError(f"pass {p.name} changed the program but said it did not")
            self.log.append((p.name, res.changed))
            program = res.program
            if self.verify_each:
                verify(program, check_level=False)
        return program
