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
from ..ir.types import TensorType


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


_TS_NAMES = {"List": typing.List, "Tuple": typing.Tuple, "Optional": typing.Optional,  # noqa: UP006
             "Dict": typing.Dict, "Tensor": torch.Tensor, "int": int, "float": float,  # noqa: UP006
             "bool": bool, "str": str}


def returned_type(module: torch.jit.ScriptModule) -> Any:
    """The Python annotation of what a scripted host call returns (e.g. ``List[Tensor]`` for
    ``torch.unbind``, where eager returns a tuple): the type its readers must declare."""
    text = module.forward.schema.returns[0].type.annotation_str
    try:
        return eval(text, {"__builtins__": {}}, _TS_NAMES)
    except (NameError, SyntaxError, TypeError):
        return None


def host_module(op: HostOp, arg_types: dict[int, Any] | None = None) -> torch.fx.GraphModule:
    """A scriptable module whose forward(*args) performs ``op``'s call.

    ``arg_types`` (value id -> annotation) gives the TorchScript type of inputs that earlier host
    calls returned; other inputs are annotated from their example values.
    """
    call = op.call
    if call is None:
        raise ValueError(f"host op {op.fn} carries no call")
    known = arg_types or {}
    g = torch.fx.Graph()
    root = torch.nn.Module()
    params = [g.placeholder(f"a{i}", type_expr=known.get(v.id) or ts_type(ex))
              for i, (v, ex) in enumerate(zip(op.args, call.examples, strict=True))]
    for i, (v, ex) in enumerate(zip(op.args, call.examples, strict=True)):
        # bool and int64 tensors travel as NNAPI int32: give the torch code its own dtype back
        if (isinstance(ex, torch.Tensor) and isinstance(v.type, TensorType)
                and v.type.torch_dtype != ex.dtype and not ex.is_quantized):
            params[i] = g.call_method("to", (params[i], ex.dtype))
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
