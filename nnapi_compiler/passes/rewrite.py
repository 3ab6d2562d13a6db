"""A tiny worklist rewriter: replace ops by op sequences, renaming uses of replaced results."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..ir.builder import Builder
from ..ir.ops.base import Op
from ..ir.program import Program
from ..ir.types import Value

#: A rewrite gets a builder positioned at the op and the op; it returns replacement results
#: (appending new ops to the builder) or None to keep the op.
Rewrite = Callable[[Builder, Op], "tuple[Value, ...] | None"]


def rewrite_ops(p: Program, rules: dict[type, Rewrite]) -> tuple[Program, bool]:
    """Apply ``rules`` (keyed by op class) once to every op, in program order."""
    b = Builder(level=p.level, inputs=list(p.inputs))
    b._next = p.next_id()
    rename: dict[int, Value] = {}
    changed = False

    def fix(v: Value) -> Value:
        return rename.get(v.id, v)

    for op in p.ops:
        op = op.map_inputs(fix) if op.inputs() else op
        rule = rules.get(type(op))
        new = None
        if rule is not None:
            b.loc = op.loc
            new = rule(b, op)
        if new is None:
            b.ops.append(op)
            continue
        changed = True
        for old, rep in zip(op.results, new, strict=True):
            rename[old.id] = rep
    outputs = tuple(fix(v) for v in p.outputs)
    if not changed:
        return p, False
    return attrs.evolve(p, ops=tuple(b.ops), outputs=outputs), True
