"""Shared helpers of the beyond-CNN tests: both capture dialects, whole-NNAPI assertions."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nnapi_compiler.frontend.capture import capture

from ..conftest import assert_close_scaled, run_compiled


class Exported(nn.Module):
    """Runs ``inner``, but reads an input's shape in Python control flow so that symbolic tracing
    fails and capture takes torch.export's ATen spellings."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *xs: torch.Tensor) -> Any:
        if xs[0].shape[0] > 0:
            return self.inner(*xs)
        return self.inner(*xs)


def in_dialect(model: nn.Module, dialect: str) -> nn.Module:
    return Exported(model) if dialect == "export" else model


def compile_whole(model: nn.Module, *xs: torch.Tensor, dialect: str = "fx",
                  target: str = "android-10", **kw: Any) -> Any:
    """Compile in ``dialect`` at ``target``; assert one NNAPI segment, no host op, eager match."""
    model = in_dialect(model.eval(), dialect)
    assert capture(model, tuple(x.clone() for x in xs)).dialect == dialect
    cm, got, ref = run_compiled(model, *xs, target=target, cpu_fallback=False, **kw)
    assert cm.stats["host_ops"] == 0 and cm.stats["segments"] == 1, cm.stats
    assert_close_scaled(got, ref)
    return cm


def op_counts(cm: Any) -> dict[str, int]:
    """NNAPI op mnemonics of a compiled model and how often each occurs."""
    counts: dict[str, int] = {}
    for line in cm.ir().splitlines():
        if "=" in line:
            name = line.split("=", 1)[1].strip().split(" ")[0]
            if name != "constant":
                counts[name] = counts.get(name, 0) + 1
    return counts
