"""Differential fuzzing of partial delegation: random float models with ops NNAPI lacks inserted.

Each case is a random model from ``fuzz_cases`` with host-only ops (cumsum, flip, sort, cummax,
logcumsumexp) inserted between random layers. The compiled artifact runs NNAPI segments with host
code between them on the virtual device, and again on its CPU path; both must match eager.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st

import nnapi_compiler as nc

from ..conftest import assert_close_scaled
from .models import LayerNet
from .profiles import examples
from .strategies import FuzzCase, fuzz_cases

HOST_OPS = ("cumsum", "flip", "sort", "cummax", "logcumsumexp")


def host_op(kind: str, x: torch.Tensor, dim: int) -> torch.Tensor:
    if kind == "cumsum":
        return torch.cumsum(x, dim)
    if kind == "flip":
        return x.flip(dim)
    if kind == "sort":
        return torch.sort(x, dim=dim).values
    if kind == "cummax":
        return torch.cummax(x, dim).values
    return torch.logcumsumexp(x, dim) * 0.5


class Islands(torch.nn.Module):
    """A LayerNet with host-only ops after some layers (``inserts``: layer index -> (op, dim))."""

    def __init__(self, net: LayerNet, inserts: dict[int, tuple[str, int]]) -> None:
        super().__init__()
        self.net = net
        self.inserts = inserts

    def forward(self, x: torch.Tensor) -> Any:
        if self.net.reads_shape and x.shape[-1] > 0:  # Python on shapes: torch.export captures it
            x = x * 1.0
        for i, layer in enumerate(self.net.layers):
            x = layer(x)
            if i in self.inserts:
                kind, dim = self.inserts[i]
                x = host_op(kind, x, dim % x.dim())
        return x


@st.composite
def island_cases(draw: st.DrawFn) -> tuple[FuzzCase, dict[int, tuple[str, int]]]:
    case = draw(fuzz_cases(max_layers=5).filter(lambda c: not _taps(c)))
    positions = draw(st.sets(st.integers(0, len(case.specs) - 1), min_size=1, max_size=2))
    return case, {p: (draw(st.sampled_from(HOST_OPS)), draw(st.integers(0, 3))) for p in positions}


def _taps(case: FuzzCase) -> bool:
    return any(type(s).__name__ == "Tap" for s in case.specs)


@settings(max_examples=examples(0.3), deadline=None)
@given(island_cases())
def test_partitioned_models_match_eager_on_nnapi_and_cpu(data: tuple[FuzzCase, dict]) -> None:
    case, inserts = data
    net, x = case.build()
    model = Islands(net, inserts).eval()
    with torch.no_grad():
        ref = model(x.clone())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x.clone(),), target=case.target)
    note(repr(inserts))
    note(cm.ir())
    assert cm.stats["host_ops"] >= 1
    with nc.virtual_device():
        got = cm(x.clone())
    assert_close_scaled(got, ref)
    cm.use_cpu()
    assert_close_scaled(cm(x.clone()), ref)
