"""The short name of what an fx node calls, the same for both capture dialects.

The fx rewrites (``patterns``, ``patterns_attention``, ``rank_reduce``) match idioms by name:
``x.view(...)`` (a method), ``torch.reshape`` (a function) and ``aten.view.default`` (an ATen
overload) must all read as ``view``/``reshape`` so one rule covers both capture dialects.
"""

from __future__ import annotations

import torch
import torch.fx


def op_name(node: torch.fx.Node) -> str:
    """``"view"`` for ``x.view``, ``aten.view.default`` and a function named ``view``."""
    t = node.target
    if node.op == "call_method":
        return str(t)
    if isinstance(t, torch._ops.OpOverload):
        return t._schema.name.split("::")[-1]
    return getattr(t, "__name__", "")
