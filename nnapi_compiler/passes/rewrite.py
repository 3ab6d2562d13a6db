"""The one rewrite driver every pass uses: a worklist of ops run to a fixed point, rules by op class.

A rule ``rule(rw, op) -> None | tuple[Value, ...] | Op`` looks at one op and returns None to keep
it, the values that replace its results (the op is erased), or an op that takes its place. Ops
the rule builds with ``rw.b`` (a Builder) are inserted before the op being rewritten; new
constants go to the head of the program, where every later op can read them. A rule may also
``rw.replace`` another op, e.g. the producer it fuses into. Rules are found through the class
hierarchy: a rule for ``NnapiOp`` applies to every NNAPI op.

Ops sit in a linked list and every value's readers are kept up to date as ops change, so a
rewrite costs time in the ops it touches, never in the program's size. Ops and users touched by
a rewrite are queued again until no rule applies; ops a rewrite leaves without readers are
erased (every op is pure). ``recursive=False`` visits each original op once instead, for
conversions (layout) whose rules must not see their own output.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

import attrs

from ..errors import InternalError, NnapiCompilerError
from ..ir.builder import Builder
from ..ir.ops.base import Constant, Op
from ..ir.program import Program
from ..ir.types import Value

Rule = Callable[["Rewriter", Op], "tuple[Value, ...] | Op | None"]


@attrs.define(eq=False)
class _Node:
    op: Op
    prev: _Node | None = None
    next: _Node | None = None
    alive: bool = True
    queued: bool = False


@attrs.define(eq=False)
class Rewriter:
    """A program being rewritten: ops in order, with each value's definition and readers."""

    program: Program
    b: Builder
    inputs: list[Value]
    outputs: list[Value]
    recursive: bool = True
    changed: bool = False
    _head: _Node | None = None
    _tail: _Node | None = None
    _const_tail: _Node | None = None  # last constant a rewrite hoisted to the head
    _defs: dict[int, _Node] = attrs.field(factory=dict)
    _uses: dict[int, dict[_Node, int]] = attrs.field(factory=dict)
    _out_count: dict[int, int] = attrs.field(factory=dict)
    _queue: deque[_Node] = attrs.field(factory=deque)
    _current: _Node | None = None

    @classmethod
    def start(cls, p: Program, recursive: bool = True) -> Rewriter:
        rw = cls(p, Builder.after(p), list(p.inputs), list(p.outputs), recursive)
        for v in p.outputs:
            rw._out_count[v.id] = rw._out_count.get(v.id, 0) + 1
        for op in p.ops:
            rw._link(_Node(op), before=None)
        return rw

    # -- queries ---------------------------------------------------------------------------
    def defining(self, v: Value) -> Op | None:
        """The op that now defines ``v`` (None for program inputs)."""
        node = self._defs.get(v.id)
        return node.op if node is not None and node.alive else None

    def constant(self, v: Value) -> Constant | None:
        op = self.defining(v)
        return op if isinstance(op, Constant) else None

    def users(self, v: Value) -> list[Op]:
        """Ops that read ``v`` now (each once)."""
        return [n.op for n in self._uses.get(v.id, {})]

    def use_count(self, v: Value) -> int:
        """Reads of ``v`` by ops (an op reading it twice counts twice) plus program outputs."""
        return sum(self._uses.get(v.id, {}).values()) + self._out_count.get(v.id, 0)

    def single_use(self, v: Value) -> bool:
        """Read by exactly one op and not a program output (so it can be folded away)."""
        return sum(self._uses.get(v.id, {}).values()) == 1 and not self._out_count.get(v.id)

    def ops(self) -> Iterator[Op]:
        node = self._head
        while node is not None:
            yield node.op
            node = node.next

    # -- edits -----------------------------------------------------------------------------
    def replace(self, old: Op, new: Op | Sequence[Value]) -> None:
        """``old`` becomes ``new``: an op in its place, or values that take its results' uses."""
        node = self._defs[old.results[0].id]
        if node.op is not old and node.op != old:
            raise InternalError(f"replace: {old.mnemonic} is not in the program")
        self.changed = True
        if isinstance(new, Op):
            self._flush(before=node)
            if new.results == old.results:  # in place: same values, new operands or attributes
                self._drop_uses(node)
                node.op = new
                self._add_uses(node)
                self._requeue(node)
                for v in dict.fromkeys(old.inputs()):
                    dead = self._dead_producer(v)
                    if dead is not None:
                        self._erase(dead)
                return
            new_node = _Node(new)
            self._link(new_node, before=node)
            self._requeue(new_node)
            new = new.results
        if len(new) != len(old.results):
            raise InternalError(f"replace: {old.mnemonic} has {len(old.results)} results, "
                                f"{len(new)} replacements given")
        for r, v in zip(old.results, new, strict=True):
            if r.id != v.id or r != v:
                self.replace_value(r, v)
        self._erase(node)

    def replace_value(self, old: Value, new: Value) -> None:
        """Every reader of ``old`` (ops, program inputs and outputs) reads ``new`` instead."""
        self.changed = True
        if any(v.id == old.id for v in self.inputs):
            self.inputs = [new if v.id == old.id else v for v in self.inputs]
        if self._out_count.get(old.id):
            self.outputs = [new if v.id == old.id else v for v in self.outputs]
            n = self._out_count.pop(old.id)
            self._out_count[new.id] = self._out_count.get(new.id, 0) + n
        for user in list(self._uses.get(old.id, {})):
            self._drop_uses(user)
            user.op = user.op.map_inputs(lambda v: new if v.id == old.id else v)
            self._add_uses(user)
            self._requeue(user)
        dead = self._dead_producer(old) if new.id != old.id else None
        if dead is not None:
            self._erase(dead)

    def erase(self, op: Op) -> None:
        """Remove ``op``, whose results nobody reads."""
        node = self._defs[op.results[0].id]
        if any(self.use_count(r) for r in op.results):
            raise InternalError(f"erase: {op.mnemonic}'s results are still read")
        self.changed = True
        self._erase(node)

    # -- the driver ------------------------------------------------------------------------
    def run(self, rules: Mapping[type, Rule]) -> tuple[Program, bool]:
        """Apply ``rules`` until none applies (once per original op unless ``recursive``)."""
        dispatch: dict[type, Rule | None] = {}
        node = self._head
        while node is not None:
            node.queued = True
            self._queue.append(node)
            node = node.next
        while self._queue:
            node = self._queue.popleft()
            node.queued = False
            if not node.alive:
                continue
            op = node.op
            cls = type(op)
            if cls not in dispatch:
                dispatch[cls] = next((rules[c] for c in cls.__mro__ if c in rules), None)
            rule = dispatch[cls]
            if rule is None:
                continue
            self._current, self.b.loc = node, op.loc
            try:
                new = rule(self, op)
            except NnapiCompilerError:
                raise
            except Exception as e:
                loc = op.loc
                raise InternalError(
                    f"rule {getattr(rule, '__name__', rule)} failed on {op.mnemonic}: {e}",
                    node=str(loc.node) if loc else "", source=loc.source if loc else "",
                ) from e
            self._flush(before=node)
            if new is not None and node.alive and not (isinstance(new, Op) and new == op):
                self.replace(node.op, new)
        self._current = None
        return self.finish()

    def finish(self) -> tuple[Program, bool]:
        ops = tuple(self.ops())
        node = self._head  # unlink the list: no reference cycles are left for the collector
        while node is not None:
            node.prev, node = None, node.next
        if not self.changed:
            return self.program, False
        p = attrs.evolve(self.program, inputs=tuple(self.inputs), ops=ops,
                         outputs=tuple(self.outputs))
        return p, p != self.program

    # -- internals -------------------------------------------------------------------------
    def _flush(self, before: _Node) -> None:
        """Insert the ops the builder made: constants at the head, the rest before ``before``."""
        made, self.b.ops = self.b.ops, []
        for op in made:
            node = _Node(op)
            if isinstance(op, Constant):
                nxt = self._const_tail.next if self._const_tail is not None else self._head
                self._link(node, before=nxt)
                self._const_tail = node
            elif before.alive:
                self._link(node, before=before)
            else:
                raise InternalError(f"{op.mnemonic} was built before an op the rule erased")
            self._requeue(node)

    def _link(self, node: _Node, before: _Node | None) -> None:
        if before is None:  # append
            node.prev, node.next = self._tail, None
            if self._tail is not None:
                self._tail.next = node
            else:
                self._head = node
            self._tail = node
        else:
            node.prev, node.next = before.prev, before
            if before.prev is not None:
                before.prev.next = node
            else:
                self._head = node
            before.prev = node
        for r in node.op.results:
            self._defs[r.id] = node
        self._add_uses(node)

    def _add_uses(self, node: _Node) -> None:
        for v in node.op.inputs():
            users = self._uses.setdefault(v.id, {})
            users[node] = users.get(node, 0) + 1

    def _drop_uses(self, node: _Node) -> None:
        for v in node.op.inputs():
            users = self._uses[v.id]
            users[node] -= 1
            if not users[node]:
                del users[node]

    def _requeue(self, node: _Node) -> None:
        if self.recursive and not node.queued:
            node.queued = True
            self._queue.append(node)

    def _erase(self, first: _Node) -> None:
        """Unlink ``first``, then every producer that this leaves without readers."""
        stack = [first]
        while stack:
            node = stack.pop()
            if node.alive:
                self._unlink(node)
                for v in dict.fromkeys(node.op.inputs()):
                    dead = self._dead_producer(v)
                    if dead is not None:
                        stack.append(dead)
                    elif v.id in self._defs:
                        self._requeue(self._defs[v.id])  # one reader fewer: a rule may now apply

    def _unlink(self, node: _Node) -> None:
        node.alive = False
        if node.prev is not None:
            node.prev.next = node.next
        else:
            self._head = node.next
        if node.next is not None:
            node.next.prev = node.prev
        else:
            self._tail = node.prev
        if node is self._const_tail:
            self._const_tail = node.prev if node.prev is not None and isinstance(
                node.prev.op, Constant) else None
        for r in node.op.results:
            if self._defs.get(r.id) is node:
                del self._defs[r.id]
        if isinstance(node.op, Constant):
            self.b.forget(node.op)
        self._drop_uses(node)

    def _dead_producer(self, v: Value) -> _Node | None:
        """``v``'s producer if a rewrite left none of its results read (not the op in hand)."""
        node = self._defs.get(v.id)
        if node is None or node is self._current or not node.alive:
            return None
        return None if any(self.use_count(r) for r in node.op.results) else node


def rewrite_ops(p: Program, rules: Mapping[type, Rule], recursive: bool = True) -> tuple[Program, bool]:
    """Apply ``rules`` to ``p`` to a fixed point (see the module docstring)."""
    return Rewriter.start(p, recursive).run(rules)
