"""explain()'s report: where every node of the captured model runs, why, and a summary.

Built from the partitioned model level, so it says exactly what compile() does: the same
predicate placed each op (``verifier.nnapi_refusal``). ``to_dot`` draws segments and host calls
with networkx's graph of the host block as Graphviz DOT text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import networkx as nx
import torch.fx

from .frontend.capture import Captured, source_of
from .ir.model import ModelGraph, Placement, SegmentCall
from .ir.ops.host import HostOp


@attrs.frozen
class Row:
    """One captured node: where it runs and why."""

    node: str
    target: str
    where: str  # "NNAPI segment 0", "CPU (host code)", "CPU segment 1", "folded away"
    detail: str  # its NNAPI ops, or the reason it runs on the CPU
    source: str = ""


@attrs.frozen
class Report:
    dialect: str
    level: int
    rows: tuple[Row, ...]
    graph: ModelGraph | None = attrs.field(eq=False, repr=False)  # None: a scripted model
    nnapi_flops: int = 0
    total_flops: int = 0
    capture_error: str = ""  # why a scripted model could not be captured whole

    @classmethod
    def scripted(cls, op: Any, level: int, capture_error: str) -> Report:
        """A model that could not be captured: one row per submodule, compiled or TorchScript."""
        def where(s: Any) -> str:
            if not s.compiled:
                return "CPU (TorchScript)"
            return "CPU (compiled)" if s.reason.startswith("0 NNAPI") else "NNAPI (compiled)"

        rows = tuple(Row(s.path, "", where(s), s.reason) for s in op.log)
        return cls("scripted", level, rows, None, op.nnapi_flops, op.total_flops, capture_error)

    @property
    def flops_share(self) -> float:
        return self.nnapi_flops / self.total_flops if self.total_flops else 1.0

    @classmethod
    def build(cls, cap: Captured, graph: ModelGraph, level: int, flops: tuple[int, int]) -> Report:
        where: dict[str, tuple[str, list[str]]] = {}
        for i, seg in enumerate(graph.segments):
            label = (f"NNAPI segment {i}" if seg.placement is Placement.NNAPI
                     else f"CPU segment {i}")
            for op in seg.program.compute_ops():
                key = op.loc.node if op.loc else "(inserted by passes)"
                entry = where.setdefault(key, (label, []))
                entry[1].append(op.mnemonic.upper())
        reasons = {i: s.reason for i, s in enumerate(graph.segments)}
        hosts = {op.loc.node: op for op in graph.host_ops() if op.loc}
        rows = []
        for node in cap.gm.graph.nodes:
            if node.op not in ("call_module", "call_function", "call_method"):
                continue
            rows.append(_row(node, where, hosts, reasons))
        return cls(cap.dialect, level, tuple(rows), graph, *flops)

    def summary(self) -> str:
        g = self.graph
        if g is None:
            n = sum(r.where.startswith("NNAPI") for r in self.rows)
            return (f"not capturable whole, so scripted as TorchScript host code; feature level "
                    f"{self.level}: {n} submodule(s) compiled for NNAPI; "
                    f"{100 * self.flops_share:.1f}% of FLOPs on NNAPI\n"
                    + "\n".join(f"  {ln}" for ln in self.capture_error.splitlines()))
        lines = [f"captured with {self.dialect}; feature level {self.level}: "
                 f"{len(g.nnapi_segments())} NNAPI segment(s), "
                 f"{len(g.segments) - len(g.nnapi_segments())} CPU segment(s), "
                 f"{len(g.host_ops())} host op(s); "
                 f"{100 * self.flops_share:.1f}% of FLOPs on NNAPI"]
        for i, s in enumerate(g.segments):
            why = f" ({s.reason})" if s.placement is Placement.CPU and s.reason else ""
            lines.append(f"  segment {i}: {s.placement.value}, {s.size} ops{why}")
        return "\n".join(lines)

    def __str__(self) -> str:
        w = max([len(r.node) for r in self.rows] + [4])
        lines = [self.summary(), "", f"{'node'.ljust(w)}  where              detail"]
        for r in self.rows:
            lines.append(f"{r.node.ljust(w)}  {r.where.ljust(17)}  {r.detail}  [{r.target}]")
            if r.source and not r.where.startswith("NNAPI"):
                lines.append(f"{''.ljust(w)}  at {r.source}")
        return "\n".join(lines)

    def dataflow(self) -> nx.DiGraph:
        """Segments and host calls as nodes, values passed between them as edges (for a scripted
        model: its submodules, each child under its parent)."""
        g = nx.DiGraph()
        if self.graph is None:  # a scripted model: its module tree, each part where it runs
            g.add_node("model", label="model (TorchScript)", kind="host")
            for r in self.rows:
                kind = "nnapi" if r.where.startswith("NNAPI") else "host"
                g.add_node(r.node, label=f"{r.node}\\n{r.where}", kind=kind)
                g.add_edge(r.node.rpartition(".")[0] or "model", r.node)
            return g
        made: dict[int, str] = {v.id: "inputs" for v in self.graph.inputs}
        g.add_node("inputs", label="inputs", kind="io")
        for k, step in enumerate(self.graph.block):
            if isinstance(step, SegmentCall):
                seg = self.graph.segments[step.index]
                name = f"segment{step.index}"
                g.add_node(name, label=f"{seg.placement.value} segment {step.index}\\n{seg.size} ops",
                           kind=seg.placement.value)
                reads = step.args
            else:
                assert isinstance(step, HostOp)
                name = f"host{k}"
                g.add_node(name, label=f"CPU: {step.fn}", kind="host")
                reads = step.args
            for v in reads:
                if v.id in made:
                    g.add_edge(made[v.id], name)
            made.update((r.id, name) for r in step.results)
        g.add_node("outputs", label="outputs", kind="io")
        for v in self.graph.io.output_values():
            if v.id in made:
                g.add_edge(made[v.id], "outputs")
        return g

    def to_dot(self, path: str | Path | None = None) -> str:
        """Graphviz DOT text of the partitioned graph (written to ``path`` if given)."""
        colors = {"nnapi": "palegreen", "cpu": "lightsalmon", "host": "lightgoldenrod", "io": "white"}
        g = self.dataflow()
        lines = ["digraph partition {", "  node [shape=box, style=filled];"]
        for n, d in g.nodes(data=True):
            # containers on a scripted model's paths (a ModuleList) appear only as edge ends
            kind = d.get("kind", "host")
            lines.append(f'  "{n}" [label="{d.get("label", n)}", fillcolor={colors[kind]}];')
        lines += [f'  "{a}" -> "{b}";' for a, b in g.edges]
        lines.append("}")
        text = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text


def _row(node: torch.fx.Node, where: dict[str, tuple[str, list[str]]], hosts: dict[str, HostOp],
         reasons: dict[int, str]) -> Row:
    target = str(node.target) if node.op != "call_function" else getattr(
        node.target, "__name__", str(node.target))
    src = source_of(node)
    if node.name in hosts:
        return Row(node.name, target, "CPU (host code)", hosts[node.name].reason, src)
    if node.name in where:
        label, mnemonics = where[node.name]
        detail = ", ".join(mnemonics)
        if label.startswith("CPU"):
            detail += f" — {reasons[int(label.split()[-1])]}"
        return Row(node.name, target, label, detail, src)
    return Row(node.name, target, "folded away", "shape arithmetic, identity, or fused into a "
               "neighbour", src)
