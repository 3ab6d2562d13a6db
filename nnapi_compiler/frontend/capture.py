"""Capture a model as an fx graph and record example values on every node.

``torch.fx.symbolic_trace`` (torch's own modules are leaves) comes first: it keeps module
structure and works for eager-mode quantized models. When it fails — typically because Python
reads shapes (``b, c, h, w = x.size()``) — ``torch.export`` specializes the code on the example
shapes instead. Both dialects end as one GraphModule plus the example value of every node,
computed once by running the example inputs through the graph; converters never re-run torch.
"""

from __future__ import annotations

import enum
import inspect
import operator
from typing import Any

import attrs
import torch
import torch.fx
from torch.utils import _pytree as pytree

from ..errors import CaptureError
from ..flops import counter
from ..source import source_of  # also re-exported for the frontend
from .inline import inline_higher_order
from .registry import REGISTRY

EXAMPLE = "nnc_example"
FLOPS = "nnc_flops"  # floating-point operations of the node on the example inputs


class LeafTracer(torch.fx.Tracer):
    """Symbolic tracer that keeps torch's own (float and quantized) modules as single nodes.

    A torch module is a leaf when a converter is registered for its class or when it has no
    children (``nn.LayerNorm``, ``nn.GRU``: refused as one node, it runs as one host call). A
    composite torch module without a converter (``nn.TransformerEncoderLayer``,
    ``nn.MultiheadAttention``) is traced through, so its parts can still run on NNAPI.
    """

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
        mod = type(m).__module__
        if isinstance(m, torch.nn.Sequential | torch.nn.ModuleList | torch.nn.ModuleDict):
            return False
        if not mod.startswith(("torch.nn.", "torch.ao.nn.")):
            return False
        return type(m) in REGISTRY or next(m.children(), None) is None


class Dialect(str, enum.Enum):
    """Which capture produced the graph (a str, so it prints and compares as "fx"/"export")."""

    FX = "fx"
    EXPORT = "export"

    def __str__(self) -> str:
        return self.value


@attrs.define(eq=False)
class Captured:
    """A captured model: graph, dialect, input names and the output structure."""

    gm: torch.fx.GraphModule
    dialect: Dialect
    input_names: list[str]
    out_spec: pytree.TreeSpec
    out_leaves: list[Any]  # fx Nodes or Python constants, in pytree order
    trace_error: str = ""


def _defaults(model: torch.nn.Module, n: int) -> dict[str, Any]:
    """Forward parameters after the ``n`` given inputs that keep their defaults (``mask=None``).

    Tracing specializes on them, as a call without them would, instead of making them inputs.
    """
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    rest = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)][n:]
    return {p.name: p.default for p in rest if p.default is not p.empty}


def _input_names(model: torch.nn.Module, n: int) -> list[str]:
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in params) or not params:
        return [f"input{i}" for i in range(n)]
    if len(names) < n:
        raise CaptureError(f"{type(model).__name__}.forward takes {len(names)} positional inputs "
                           f"({', '.join(names)}), but {n} example inputs were given")
    return names[:n]


def _record_examples(gm: torch.fx.GraphModule, inputs: tuple) -> None:
    """Run the graph once; store every node's example output in ``node.meta[EXAMPLE]``."""

    class Recorder(torch.fx.Interpreter):
        last: torch.fx.Node | None = None

        def run_node(self, n: torch.fx.Node) -> Any:
            self.last = n
            args = pytree.tree_leaves(self.fetch_args_kwargs_from_env(n))
            if isinstance(n.target, torch._ops.HigherOrderOperator) or any(
                    isinstance(t, torch.Tensor) and t.is_quantized for t in args):
                # torch.cond & co.: FlopCounterMode's module tracker breaks on their branches
                # under no_grad; their branches are compiled (and counted) on their own.
                # Quantized tensors (issue 11): it decomposes some of their ops
                # (upsample_nearest2d) into float-only prims and fails; counted as 0.
                out, n.meta[FLOPS] = super().run_node(n), 0
            else:
                with counter() as flops:
                    out = super().run_node(n)
                n.meta[FLOPS] = flops.get_total_flops()
            # Clone tensors: a later in-place op must not change what this node produced.
            n.meta[EXAMPLE] = pytree.tree_map(
                lambda t: t.detach().clone() if isinstance(t, torch.Tensor) else t, out
            )
            return out

    rec = Recorder(gm)
    try:
        with torch.no_grad():
            rec.run(*inputs)
    except Exception as e:  # the user's model fails on the user's inputs: say where
        node = rec.last
        where = ""
        if node is not None:
            src = source_of(node)
            where = f" at node {node.name}" + (f" ({src})" if src else "")
        raise CaptureError(f"the model fails on the example inputs{where}: "
                           f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                           ) from e


def _single_module_graph(model: torch.nn.Module, names: list[str]) -> torch.fx.GraphModule:
    """A graph calling ``model`` once: torch's own modules are leaves even at the root."""
    graph = torch.fx.Graph()
    args = [graph.placeholder(n) for n in names]
    graph.output(graph.call_module("root", tuple(args)))
    return torch.fx.GraphModule({"root": model}, graph)


def _split_tuple_outputs(gm: torch.fx.GraphModule) -> None:
    """An output that is a node returning a tuple (``return self.lstm(x)``) becomes a tuple of
    ``getitem`` nodes, recursively, so every output leaf is one tensor (or constant)."""
    out_node = next(n for n in gm.graph.nodes if n.op == "output")

    def split(x: Any) -> Any:
        ex = x.meta.get(EXAMPLE) if isinstance(x, torch.fx.Node) else None
        if not isinstance(ex, tuple | list):
            return x
        parts = []
        for i, e in enumerate(ex):
            with gm.graph.inserting_before(out_node):
                item = gm.graph.call_function(operator.getitem, (x, i))
            item.meta[EXAMPLE] = e
            item.meta[FLOPS] = 0
            parts.append(split(item))
        return type(ex)(parts) if type(ex) in (tuple, list) else tuple(parts)

    new = pytree.tree_map(split, out_node.args[0])
    if new is not out_node.args[0]:
        out_node.args = (new,)
        gm.recompile()


def capture(model: torch.nn.Module, inputs: tuple, dynamic: Any = None) -> Captured:
    """Capture ``model`` called on ``inputs``; raises CaptureError if neither dialect works.

    ``dynamic`` (a ``dynamic_spec.Dynamic``) makes torch.export keep those dims symbolic.
    """
    from . import converters  # noqa: F401 - a module is a leaf iff a converter is registered
    names = _input_names(model, len(inputs))
    trace_error = ""
    try:
        if LeafTracer().is_leaf_module(model, ""):
            gm = _single_module_graph(model, names)  # e.g. a bare nn.Conv2d or quantized module
        else:
            graph = LeafTracer().trace(model, concrete_args=_defaults(model, len(inputs)) or None)
            gm = torch.fx.GraphModule(model, graph)
        _record_examples(gm, inputs)
        _split_tuple_outputs(gm)
        out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
        leaves, spec = pytree.tree_flatten(out)
        return Captured(gm, Dialect.FX, names, spec, leaves)
    except Exception as e:
        trace_error = f"{type(e).__name__}: {e}"
    try:
        ds = None
        if dynamic is not None:
            ds = tuple({d: torch.export.Dim.DYNAMIC for d, sp in enumerate(dims) if sp} or None
                       for dims in dynamic.dims)
        ep = torch.export.export(model, inputs, strict=False, dynamic_shapes=ds)
        gm = ep.module()
    except Exception as e:
        raise CaptureError(
            "could not capture the model.\n"
            f"  torch.fx.symbolic_trace: {trace_error}\n"
            f"  torch.export: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from e
    inline_higher_order(gm)
    _record_examples(gm, inputs)
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    flat = list(out_node.args[0])
    spec = ep.call_spec.out_spec
    if spec is None:
        flat_leaves, spec = pytree.tree_flatten(out_node.args[0])
        flat = flat_leaves
    return Captured(gm, Dialect.EXPORT, names, spec, flat, trace_error)
