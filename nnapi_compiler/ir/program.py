"""An IR program: typed inputs, an ordered list of ops (SSA), and outputs, for one target level."""

from __future__ import annotations

import attrs

from .ops.base import Constant, Op
from .types import Value


@attrs.frozen
class Program:
    """A whole model (or segment) in IR form; immutable, rewritten with ``attrs.evolve``."""

    inputs: tuple[Value, ...] = attrs.field(converter=tuple)
    ops: tuple[Op, ...] = attrs.field(converter=tuple)
    outputs: tuple[Value, ...] = attrs.field(converter=tuple)
    level: int = 3

    def producers(self) -> dict[int, Op]:
        """Value id -> the op that defines it."""
        return {r.id: op for op in self.ops for r in op.results}

    def users(self) -> dict[int, list[Op]]:
        """Value id -> ops that read it, in program order."""
        out: dict[int, list[Op]] = {}
        for op in self.ops:
            for v in op.inputs():
                out.setdefault(v.id, []).append(op)
        return out

    def constants(self) -> dict[int, Constant]:
        return {op.results[0].id: op for op in self.ops if isinstance(op, Constant)}

    def compute_ops(self) -> list[Op]:
        return [op for op in self.ops if not isinstance(op, Constant)]

    def next_id(self) -> int:
        ids = [v.id for v in self.inputs] + [r.id for op in self.ops for r in op.results]
        return max(ids, default=-1) + 1
