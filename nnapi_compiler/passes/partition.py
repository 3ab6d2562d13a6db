"""Partitioning: cut one optimized mixed program into NNAPI segments and host code.

The last pass, and the only one whose output is the model level (``ir.model.ModelGraph``), not a
``Program``. An op goes to NNAPI iff ``verifier.nnapi_refusal`` finds nothing wrong with it at the
target: the same predicate explain() prints, so the two cannot disagree. Host ops stay host code;
NNAPI-IR ops that the target cannot run, and segments trimmed by ``min_segment_ops`` or
``max_segments``, run on the CPU through the reference kernels.

Ops are scheduled with Kahn's algorithm, always continuing with an op of the kind just run while
one is ready; maximal runs of one kind in that order become segments. A run of a topological
order is convex by construction (a path leaving it and coming back would have to pass through an
op ordered inside it); networkx checks it anyway, on the graph of segments and host ops.
"""

from __future__ import annotations

import heapq
from typing import ClassVar

import attrs
import networkx as nx
import torch

from ..errors import VerificationError
from ..ir.model import IOSpec, ModelGraph, Placement, Segment, SegmentCall, Step
from ..ir.ops.base import Constant, Op
from ..ir.ops.host import HostOp
from ..ir.program import Program
from ..ir.types import DimOrder, Value
from ..ir.verifier import nnapi_refusal

#: Kinds of scheduled ops: one NNAPI compilation, the CPU reference kernels, a host torch call.
NNAPI, CPU, HOST = Placement.NNAPI, Placement.CPU, "host"


def _schedule(ops: list[Op], kinds: list[object]) -> list[int]:
    """A topological order of ``ops`` (indices) that keeps ops of one kind together."""
    producer = {r.id: i for i, op in enumerate(ops) for r in op.results}
    deps = [{producer[v.id] for v in op.inputs() if v.id in producer} for op in ops]
    users: list[list[int]] = [[] for _ in ops]
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
    waiting = [len(ds) for ds in deps]
    ready: dict[object, list[int]] = {}
    for i, n in enumerate(waiting):
        if n == 0:
            heapq.heappush(ready.setdefault(kinds[i], []), i)
    order: list[int] = []
    current: object = None
    while len(order) < len(ops):
        if not ready.get(current):
            current = min((k for k in ready if ready[k]), key=lambda k: ready[k][0])
        i = heapq.heappop(ready[current])
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready.setdefault(kinds[u], []), u)
    return order


def _runs(order: list[int], kinds: list[object]) -> list[list[int]]:
    """Maximal runs of equal kind; every host op is a run of its own."""
    runs: list[list[int]] = []
    for i in order:
        if runs and kinds[i] != HOST and kinds[runs[-1][0]] == kinds[i]:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


@attrs.frozen
class Partition:
    """Cut a mixed program into segments and a host block (see the module docstring).

    ``min_segment_ops``: an NNAPI segment with fewer compute ops runs on the CPU instead, unless
    it is the whole model. ``max_segments``: only that many of the largest segments stay on NNAPI.
    ``nnapi=False`` puts every segment on the CPU (targets older than Android 10).
    """

    name: ClassVar[str] = "partition"
    min_segment_ops: int = 1
    max_segments: int | None = None
    nnapi: bool = True

    def run(self, program: Program, io: IOSpec) -> ModelGraph:
        consts = program.constants()
        ops = [op for op in program.ops if not isinstance(op, Constant)]
        kinds: list[object] = []
        reasons: list[str] = []
        for op in ops:
            why = nnapi_refusal(op, program.level)
            kinds.append(HOST if isinstance(op, HostOp) else CPU if why else NNAPI)
            reasons.append(why)
        order = _schedule(ops, kinds)
        runs = self._trim(_runs(order, kinds), ops, kinds, reasons)
        runs = _runs([i for run in runs for i in run], kinds)  # merge neighbours made alike
        return self._build(program, io, ops, kinds, reasons, runs, consts)

    def _trim(self, runs: list[list[int]], ops: list[Op], kinds: list[object],
              reasons: list[str]) -> list[list[int]]:
        """Move segments that do not pay for an NNAPI call to the CPU (kinds edited in place)."""
        segs = [r for r in runs if kinds[r[0]] == NNAPI]
        whole = len(runs) == 1

        def to_cpu(run: list[int], why: str) -> None:
            for i in run:
                kinds[i], reasons[i] = CPU, why

        for r in segs:
            if not self.nnapi:
                to_cpu(r, "the target has no NNAPI runtime PyTorch Mobile can use")
            elif len(r) < self.min_segment_ops and not whole:
                to_cpu(r, f"segment of {len(r)} op(s) < min_segment_ops={self.min_segment_ops}")
        kept = [r for r in segs if kinds[r[0]] == NNAPI]
        if self.max_segments is not None and len(kept) > self.max_segments:
            by_size = sorted(kept, key=lambda r: (-len(r), r[0]))
            for r in by_size[self.max_segments:]:
                to_cpu(r, f"not among the {self.max_segments} largest segments (max_segments)")
        return runs

    def _build(self, program: Program, io: IOSpec, ops: list[Op], kinds: list[object],
               reasons: list[str], runs: list[list[int]], consts: dict[int, Constant]) -> ModelGraph:
        defined_in: dict[int, int] = {}  # value id -> run index
        for k, run in enumerate(runs):
            for i in run:
                defined_in.update((r.id, k) for r in ops[i].results)
        read_outside: dict[int, set[int]] = {}  # value id -> runs reading it
        for k, run in enumerate(runs):
            for i in run:
                for v in ops[i].inputs():
                    read_outside.setdefault(v.id, set()).add(k)
        model_outs = {v.id for v in io.output_values()}
        block: list[Step] = []
        segments: list[Segment] = []
        host_consts: dict[int, Constant] = {}
        dag = nx.DiGraph()
        for k, run in enumerate(runs):
            dag.add_node(k)
            for i in run:
                for v in ops[i].inputs():
                    if v.id in defined_in and defined_in[v.id] != k:
                        dag.add_edge(defined_in[v.id], k)
            if kinds[run[0]] == HOST:
                host = ops[run[0]]
                host_consts.update((v.id, consts[v.id]) for v in host.inputs() if v.id in consts)
                block.append(host)
                continue
            seg_ops = [ops[i] for i in run]
            ins: dict[int, Value] = {}
            used_consts: dict[int, Constant] = {}
            for op in seg_ops:
                for v in op.inputs():
                    if v.id in consts:
                        used_consts.setdefault(v.id, consts[v.id])
                    elif defined_in.get(v.id) != k:
                        ins.setdefault(v.id, v)
            outs = [r for op in seg_ops for r in op.results
                    if r.id in model_outs or read_outside.get(r.id, set()) - {k}]
            if not outs:
                continue  # nothing reads it (dce removes such ops before partitioning)
            placement = kinds[run[0]]
            why = "; ".join(dict.fromkeys(reasons[i] for i in run if reasons[i]))
            seg = Program(tuple(ins.values()), (*used_consts.values(), *seg_ops), tuple(outs),
                          program.level)
            block.append(SegmentCall(len(segments), seg.inputs, seg.outputs))
            segments.append(Segment(seg, placement, why))  # type: ignore[arg-type]
        if not nx.is_directed_acyclic_graph(dag):
            raise VerificationError("partitioning produced a non-convex segment (a cycle through "
                                    "host code)")
        for v in io.output_values():
            if v.id in consts:
                host_consts[v.id] = consts[v.id]
        logical = {vid: _logical(c) for vid, c in host_consts.items()}
        return ModelGraph(io, program.inputs, block, segments, logical, program.level)


def _logical(c: Constant) -> torch.Tensor:
    """A constant in PyTorch's dim order (NHWC-stored constants are permuted back)."""
    if c.result.type.dim_order is DimOrder.NHWC:
        return c.data.permute(0, 3, 1, 2)
    return c.data
