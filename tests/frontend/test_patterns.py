"""fx rewrites (frontend/patterns.py): regressions in both dialects, and properties of every rewrite."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from hypothesis import given, note, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils import _pytree as pytree

from nnapi_compiler.frontend.capture import capture
from nnapi_compiler.frontend.patterns import rewrite

from ..fuzz.profiles import examples, register

register()

PRE = ("none", "maxpool", "pad", "conv")
SPLIT = ("view", "reshape")
SWAP = ("transpose12", "transpose21", "transpose_neg", "permute")
JOIN = ("contiguous_view", "reshape", "flatten")


class Shuffle(nn.Module):
    """A channel-shuffle block written the way users write it, in one of many spellings.

    ``export`` adds a Python branch on a shape, which symbolic tracing cannot follow, so the
    model is captured by torch.export. ``leak`` also returns the transposed rank-5 tensor, so
    the idiom has another user and must not be rewritten.
    """

    def __init__(self, c: int, g: int, pre: str = "none", split: str = "view",
                 swap: str = "transpose12", join: str = "contiguous_view", tail: bool = False,
                 leak: bool = False, export: bool = False) -> None:
        super().__init__()
        self.g, self.pre, self.split, self.swap, self.join = g, pre, split, swap, join
        self.tail, self.leak, self.export = tail, leak, export
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> Any:
        if self.pre == "maxpool":
            x = F.max_pool2d(x, 2, ceil_mode=True)
        elif self.pre == "pad":
            x = F.pad(x, (1, 0, 0, 1))
        elif self.pre == "conv":
            x = self.conv(x)
        if self.export and x.shape[-1] > 0:
            x = x * 1.0
        b, c, h, w = x.size()
        g = self.g
        y = x.view(b, g, c // g, h, w) if self.split == "view" else x.reshape(b, g, c // g, h, w)
        t = {"transpose12": lambda: y.transpose(1, 2), "transpose21": lambda: y.transpose(2, 1),
             "transpose_neg": lambda: torch.transpose(y, -4, -3),
             "permute": lambda: y.permute(0, 2, 1, 3, 4)}[self.swap]()
        if self.join == "contiguous_view":
            out = t.contiguous().view(b, c, h, w)
        elif self.join == "reshape":
            out = t.reshape(b, c, h, w)
        else:
            out = t.flatten(1, 2)
        if self.tail:
            out = F.relu(out)
        return (out, t) if self.leak else out


def _call(gm: torch.fx.GraphModule, x: torch.Tensor) -> list[torch.Tensor]:
    return pytree.tree_leaves(gm(x.clone()))


def check_rewrite(model: nn.Module, x: torch.Tensor) -> tuple[str, int]:
    """Capture, rewrite; assert the graph lints, every output is defined and nothing changed
    numerically. Returns (dialect, number of rewrites)."""
    model = model.eval()
    with torch.no_grad():
        cap = capture(model, (x,))
        before = _call(cap.gm, x)
        found = rewrite(cap)
        cap.gm.graph.lint()
        nodes = set(cap.gm.graph.nodes)
        out_node = next(n for n in cap.gm.graph.nodes if n.op == "output")
        assert all(n in nodes for n in cap.out_leaves if isinstance(n, torch.fx.Node))
        assert pytree.tree_leaves(out_node.args[0]) == cap.out_leaves
        after = _call(cap.gm, x)
        eager = pytree.tree_leaves(model(x.clone()))
    assert len(after) == len(before) == len(eager)
    for a, b, e in zip(after, before, eager, strict=True):
        assert torch.equal(a, b), "the rewrite changed what the graph computes"
        assert torch.equal(a, e)
    return cap.dialect, found


@pytest.mark.parametrize("export", [False, True], ids=["fx", "export"])
@pytest.mark.parametrize("pre", ["maxpool", "pad"])
@pytest.mark.parametrize("g", [1, 2])
def test_channel_shuffle_as_the_model_output_compiles(export: bool, pre: str, g: int, check) -> None:
    """Regression: the rewritten node was still named by the captured output list (KeyError)."""
    model = Shuffle(4, g, pre=pre, export=export)
    x = torch.randn(1, 4, 5, 6)
    assert capture(model.eval(), (x,)).dialect == ("export" if export else "fx")
    cm = check(model, x)
    assert "channel_shuffle" in cm.ir().lower()


@st.composite
def shuffles(draw: st.DrawFn) -> tuple[Shuffle, torch.Tensor, bool]:
    g = draw(st.sampled_from([1, 2, 3]))
    c = g * draw(st.integers(1, 3))
    model = Shuffle(c, g, pre=draw(st.sampled_from(PRE)), split=draw(st.sampled_from(SPLIT)),
                    swap=draw(st.sampled_from(SWAP)), join=draw(st.sampled_from(JOIN)),
                    tail=draw(st.booleans()), leak=draw(st.integers(0, 3)) == 0, export=draw(st.booleans()))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    shape = (draw(st.integers(1, 2)), c, draw(st.integers(2, 5)), draw(st.integers(2, 5)))
    x = torch.randn(shape, generator=gen)
    return model, x, not model.leak


@settings(max_examples=examples(1.0))
@given(case=shuffles())
def test_rewrites_keep_the_graph_valid_and_equivalent(case: tuple[Shuffle, torch.Tensor, bool]) -> None:
    model, x, expected = case
    note(repr(vars(model)))
    dialect, found = check_rewrite(model, x)
    note(f"dialect={dialect} found={found}")
    assert dialect == ("export" if model.export else "fx")
    assert found == int(expected), "the idiom was not recognized, or something else was rewritten"
