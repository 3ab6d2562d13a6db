"""Inline torch.export's no-op higher-order wrappers, so their bodies are lowered like any code.

``torch.export`` wraps a region that switches autocast off (timm's attention does this) as
``higher_order.wrap_with_autocast(device, dtype, enabled=False, cache, body, *args)``. With
autocast disabled the wrapper changes nothing, so its body is copied into the parent graph and
lowered op by op (to NNAPI, or as host calls). An enabled autocast region would compute in
reduced precision, which neither NNAPI nor a host call reproduces: it is refused at capture.
"""

from __future__ import annotations

import operator

import torch
import torch.fx

from ..errors import CaptureError


def _autocast_wrapper() -> object:
    return getattr(getattr(torch.ops, "higher_order", None), "wrap_with_autocast", None)


def inline_higher_order(gm: torch.fx.GraphModule) -> int:
    """Inline every disabled-autocast wrapper in ``gm``; returns how many were inlined."""
    wrapper = _autocast_wrapper()
    done = 0
    for node in list(gm.graph.nodes):
        if wrapper is None or node.op != "call_function" or node.target is not wrapper:
            continue
        _device, _dtype, enabled, _cache, body, *operands = node.args
        if enabled:
            raise CaptureError(f"{node.name}: an enabled autocast region (reduced precision) has "
                               "no NNAPI or host equivalent; disable autocast before compiling")
        prefix = str(body.target)
        sub = gm.get_submodule(prefix)
        val_map = dict(zip([n for n in sub.graph.nodes if n.op == "placeholder"], operands,
                           strict=True))
        with gm.graph.inserting_before(node):
            out = gm.graph.graph_copy(sub.graph, val_map)
        for new in val_map.values():
            if isinstance(new, torch.fx.Node) and new.op in ("get_attr", "call_module") \
                    and new not in operands:
                new.target = f"{prefix}.{new.target}"  # the body's attributes live under it
        outs = out if isinstance(out, tuple | list) else (out,)
        for user in list(node.users):
            if user.op == "call_function" and user.target is operator.getitem:
                user.replace_all_uses_with(outs[user.args[1]])
                gm.graph.erase_node(user)
            else:
                user.replace_input_with(node, outs[0] if len(outs) == 1 else node)
        if node.users:
            raise CaptureError(f"{node.name}: the autocast region's result is used as a whole")
        gm.graph.erase_node(node)
        if not body.users:
            gm.graph.erase_node(body)
        done += 1
    if done:
        gm.graph.lint()
        gm.recompile()
    return done
