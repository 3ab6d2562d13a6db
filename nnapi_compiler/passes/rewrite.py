"""A small rewrite driver shared by passes: one ordered walk, rules keyed by op class.

A rule sees the op (its inputs already renamed to earlier replacements) and a ``Rewriter``
that knows the original program's users and outputs and can look up or replace the op that
now defines a value. It returns the replacement results (after appending new ops), or None
to keep the op. Pattern tables stay tiny and the walking logic exists once.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..ir.builder import Builder
from ..ir.ops.base import Constant, Op
from ..ir.program import Program
from ..ir.types import Value

Rule = Callable[["Rewriter", Op], "tuple[Value, ...] | None"]


@attrs.define(eq=False)
class Rewriter:
    """State of one rewrite walk over ``program``."""

    program: Program
    b: Builder
    users: dict[int, list[Op]]
    outputs: set[int]
    rename: dict[int, Value] = attrs.field(factory=dict)
    _defs: dict[int, int] = attrs.field(factory=dict)  # value id -> index in b.ops

    @classmethod
    def start(cls, p: Program) -> Rewriter:
        b = Builder(level=p.level, inputs=list(p.inputs))
        b._next = p.next_id()
        return cls(p, b, p.users(), {v.id for v in p.outputs})

    def fix(self, v: Value) -> Value:
        return self.rename.get(v.id, v)

    def single_use(self, v: Value) -> bool:
        """Read by exactly one op and not a program output (so it can be folded away).

        Values replaced by ``v`` earlier in this walk count too: their readers now read ``v``.
        """
        ids = {v.id} | {old for old, new in self.rename.items() if new.id == v.id}
        readers = sum(len(self.users.get(i, [])) for i in ids)
        return readers == 1 and not ids & self.outputs

    def defining(self, v: Value) -> Op | None:
        """The op that (now) defines ``v``, if it was emitted in this walk."""
        i = self._defs.get(v.id)
        return self.b.ops[i] if i is not None else None

    def constant(self, v: Value) -> Constant | None:
        op = self.defining(v)
        return op if isinstance(op, Constant) else None

    def replace_def(self, old: Op, new: Op) -> None:
        """Swap an already-emitted op for ``new`` (same results).

        Constants the rule just created for ``new`` sit at the end of the op list; they are
        moved in front of it so every value is still defined before use.
        """
        self._defs = {r.id: k for k, op in enumerate(self.b.ops) for r in op.results}
        i = self._defs[old.results[0].id]
        late = [v.id for v in new.inputs() if self._defs.get(v.id, -1) > i]
        moved = [self.b.ops[self._defs[vid]] for vid in late]
        if not all(isinstance(op, Constant) for op in moved):
            raise ValueError("replace_def: the new op reads a non-constant defined after it")
        rest = [op for op in self.b.ops[i + 1 :] if op not in moved]
        self.b.ops[i:] = [*moved, new, *rest]
        self._defs = {r.id: k for k, op in enumerate(self.b.ops) for r in op.results}

    def emit(self, op: Op) -> None:
        for r in op.results:
            self._defs[r.id] = len(self.b.ops)
        self.b.ops.append(op)

    def run(self, rules: dict[type, Rule]) -> tuple[Program, bool]:
        changed = False
        for op in self.program.ops:
            op = op.map_inputs(self.fix) if op.inputs() else op
            rule = rules.get(type(op))
            new = None
            if rule is not None:
                self.b.loc = op.loc
                n_before = len(self.b.ops)
                new = rule(self, op)
                for i in range(n_before, len(self.b.ops)):  # index ops the rule appended
                    for r in self.b.ops[i].results:
                        self._defs[r.id] = i
            if new is None:
                self.emit(op)
                continue
            changed = True
            for old, rep in zip(op.results, new, strict=True):
                self.rename[old.id] = rep
        if not changed:
            return self.program, False
        outputs = tuple(self.fix(v) for v in self.program.outputs)
        return attrs.evolve(self.program, ops=tuple(self.b.ops), outputs=outputs), True


def rewrite_ops(p: Program, rules: dict[type, Rule]) -> tuple[Program, bool]:
    """Apply ``rules`` once to every op, in program order."""
    return Rewriter.start(p).run(rules)
