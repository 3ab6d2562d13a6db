"""Compiled modules inside host code: the TorchScript glue that calls them and switches them.

Two places put whole compiled artifacts (each with its own NNAPI segments) inside TorchScript
host code: a ``torch.cond`` whose branches were compiled separately, and a module that could not
be captured at all, scripted with its capturable children compiled (``opaque.py``). Either way
the host code must forward ``use_cpu()`` and ``init_nnapi()`` to every artifact inside it, so
one switch in the app moves the whole model to the CPU.
"""

from __future__ import annotations

from typing import Any

import torch

from .backend.artifact import quiet_jit
from .backend.generated import define_class


def switch_methods(paths: list[str]) -> str:
    """``use_cpu``/``init_nnapi`` methods forwarding to the compiled modules at ``paths``."""
    use = "\n".join(f"        self.{p}.use_cpu()" for p in paths) or "        pass"
    init = "\n".join(f"        self.{p}.init_nnapi()" for p in paths) or "        pass"
    return (
        "    @torch.jit.export\n"
        "    def use_cpu(self) -> None:\n" + use + "\n\n"
        "    @torch.jit.export\n"
        "    def init_nnapi(self) -> None:\n" + init + "\n"
    )


def cond_module(then_: torch.jit.ScriptModule, else_: torch.jit.ScriptModule,
                n_operands: int) -> torch.nn.Module:
    """``torch.cond`` as TorchScript: ``if pred`` calls one compiled branch or the other."""
    args = ", ".join(f"a{i}" for i in range(n_operands))
    params = "".join(f", a{i}: torch.Tensor" for i in range(n_operands))
    src = (
        "import torch\n\n\n"
        "class CondCall(torch.nn.Module):\n"
        "    def __init__(self, then_, else_) -> None:\n"
        "        super().__init__()\n"
        "        self.then_ = then_\n"
        "        self.else_ = else_\n\n"
        f"    def forward(self, pred: torch.Tensor{params}):\n"
        "        if bool(pred):\n"
        f"            return self.then_({args})\n"
        f"        return self.else_({args})\n\n"
        + switch_methods(["then_", "else_"])
    )
    return define_class(src, "CondCall")(then_, else_)


def dispatch_module(variants: list[torch.jit.ScriptModule],
                    signatures: list[tuple[Any, ...]]) -> torch.nn.Module:
    """A child called with several fixed shapes (an FPN head on each level): one compiled
    variant per shape signature, picked by the inputs' sizes."""
    n = len(signatures[0])
    params = ", ".join(f"a{i}: torch.Tensor" for i in range(n))
    args = ", ".join(f"a{i}" for i in range(n))
    body = ""
    for k, sig in enumerate(signatures):
        test = " and ".join(f"a{i}.size() == {list(shape)}" for i, (shape, _) in enumerate(sig))
        body += f"        if {test}:\n            return self.v{k}({args})\n"
    src = (
        "import torch\n\n\n"
        "class ShapeDispatch(torch.nn.Module):\n"
        "    def __init__(self, variants) -> None:\n"
        "        super().__init__()\n"
        "        for k, v in enumerate(variants):\n"
        "            setattr(self, 'v' + str(k), v)\n\n"
        f"    def forward(self, {params}):\n"
        + body
        + '        raise RuntimeError("no compiled variant for input shape " + str(a0.size()))\n\n'
        + switch_methods([f"v{k}" for k in range(len(signatures))])
    )
    return define_class(src, "ShapeDispatch")(variants)


def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    return quiet_jit(torch.jit.script, module)
