"""``torch.cond`` in a torch.export graph: compile each branch, call them from a TorchScript ``if``.

NNAPI's own IF cannot be used (the runtime has no ``setOperandValueFromModel``), so the
predicate is evaluated on the host and each branch becomes a compiled artifact of its own (its
own NNAPI segments and host code). The ``cond`` node is replaced by a call of a ``CondCall``
module, which lowering turns into a host call like any module it cannot convert; the weights a
branch reads (lifted by torch.export into operands) are bound back into the branch as constants,
so they reach NNAPI as weights rather than as run-time inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.fx

from .frontend.capture import EXAMPLE, Captured
from .nested import cond_module


def _cond_op() -> object:
    return getattr(getattr(torch.ops, "higher_order", None), "cond", None)


def _bind_constants(branch: torch.fx.GraphModule, operands: list[torch.fx.Node]) -> torch.fx.GraphModule:
    """``branch`` with the placeholders of constant operands replaced by its own buffers."""
    g = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    places = [n for n in branch.graph.nodes if n.op == "placeholder"]
    for i, (ph, operand) in enumerate(zip(places, operands, strict=True)):
        if operand.op == "get_attr":
            name = f"nnc_bound{i}"
            branch.register_buffer(name, operand.meta[EXAMPLE].detach().clone())
            env[ph] = g.get_attr(name)
        else:
            env[ph] = g.placeholder(ph.name)
    for n in branch.graph.nodes:
        if n.op != "placeholder":
            env[n] = g.node_copy(n, lambda x: env[x])
    return torch.fx.GraphModule(branch, g)


def compile_conds(cap: Captured, compile_child: Callable[[torch.nn.Module, tuple], Any]) -> list:
    """Replace every ``torch.cond`` in ``cap.gm`` by a call of its compiled branches; returns
    the compiled branches (then, else of each cond in turn)."""
    op = _cond_op()
    out: list[Any] = []
    if op is None:
        return out
    gm, done = cap.gm, 0
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target is not op:
            continue
        pred, then_g, else_g, operands = node.args[:4]
        operands = list(operands)
        dynamic = [o for o in operands if o.op != "get_attr"]
        examples = tuple(o.meta[EXAMPLE] for o in dynamic)
        branches = [compile_child(_bind_constants(gm.get_submodule(str(g.target)), operands),
                                  examples) for g in (then_g, else_g)]
        out += branches
        name = f"nnc_cond{done}"
        gm.add_submodule(name, cond_module(branches[0].script_module, branches[1].script_module,
                                           len(dynamic)))
        with gm.graph.inserting_before(node):
            call = gm.graph.call_module(name, (pred, *dynamic))
        call.meta.update(node.meta)
        node.replace_all_uses_with(call)
        gm.graph.erase_node(node)
        for g in (then_g, else_g):
            if not g.users:
                gm.graph.erase_node(g)
        done += 1
    if done:
        gm.graph.lint()
        gm.recompile()
    return out
