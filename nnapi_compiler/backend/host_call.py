"""TorchScript for one host op: the original torch call, rebuilt as a one-node fx GraphModule.

torch.fx already knows how to print any call target as Python (module calls, methods, torch and
aten functions, dtype and device arguments), and a GraphModule scripts like any module, so each
host op becomes a small submodule of the wrapper instead of hand-written source. ATen overloads
were turned into their packets at lowering, because TorchScript cannot call ``aten.op.default``.
"""

from __future__ import annotations

import typing
from typing import Any

import torch
import torch.fx

from ..ir.ops.host import ArgRef, CallKind, HostOp


def ts_type(example: Any) -> Any:
    """The TorchScript type annotation of a value like ``example``."""
    if isinstance(example, torch.Tensor):
        return torch.Tensor
    if isinstance(example, bool | int | float):
        return type(example)
    if isinstance(example, tuple):
        return typing.Tuple[tuple(ts_type(e) for e in example)]  # noqa: UP006 - TorchScript
    if isinstance(example, list) and example:
        return typing.List[ts_type(example[0])]  # noqa: UP006 - TorchScript
    return torch.Tensor


def host_module(op: HostOp) -> torch.fx.GraphModule:
    """A scriptable module whose forward(*args) performs ``op``'s call."""
    call = op.call
    if call is None:
        raise ValueError(f"host op {op.fn} carries no call")
    g = torch.fx.Graph()
    root = torch.nn.Module()
    params = [g.placeholder(f"a{i}", type_expr=ts_type(ex)) for i, ex in enumerate(call.examples)]
    if call.inplace and params:  # the in-place spelling mutates a copy, never a shared value
        params[0] = g.call_method("clone", (params[0],))

    def fill(x: Any) -> Any:
        if isinstance(x, ArgRef):
            return params[x.index]
        if isinstance(x, torch.Tensor):
            name = f"k{len(list(root.buffers()))}"
            root.register_buffer(name, x.detach().clone())
            return g.get_attr(name)
        return x

    args = torch.fx.node.map_aggregate(call.args, fill)
    kwargs = torch.fx.node.map_aggregate(call.kwargs, fill)
    if call.kind is CallKind.MODULE:
        root.add_module("m", call.module)
        out = g.call_module("m", args, kwargs)
    elif call.kind is CallKind.METHOD:
        out = g.call_method(call.target, args, kwargs)
    else:
        out = g.call_function(call.target, args, kwargs)
    g.output(out)
    return torch.fx.GraphModule(root, g, class_name="HostCall")
