"""Rank-5/6 views merged to rank <= 4 (frontend/rank_reduce.py), in both capture dialects.

Properties of every rewrite: the graph lints, every output is defined, no node is left with a
rank > 4 example when the dims can be merged, and the graph computes what eager does. Models that
lower entirely (window partitions) are also compiled and run on the virtual device.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.fx
from hypothesis import given, note, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils import _pytree as pytree

from nnapi_compiler.frontend.capture import EXAMPLE, capture
from nnapi_compiler.frontend.patterns import rewrite
from tests.conftest import assert_close_scaled, in_dialect, run_compiled

from ..fuzz.profiles import examples, register

register()


def _export_branch(x: torch.Tensor, export: bool) -> torch.Tensor:
    # A Python branch on a shape: symbolic tracing cannot follow it, so torch.export captures.
    if export and x.shape[-1] > 0:
        x = x * 1.0
    return x


class RadixSplit(nn.Module):
    """ResNeSt's split attention: a radix view, summed, weighted by a softmax over the radix."""

    def __init__(self, c: int, r: int, export: bool = False) -> None:
        super().__init__()
        self.r, self.export = r, export
        self.conv = nn.Conv2d(c, c * r, 3, padding=1)
        self.fc = nn.Conv2d(c, c * r, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _export_branch(self.conv(x), self.export)
        b, rc, h, w = x.shape
        x5 = x.reshape(b, self.r, rc // self.r, h, w)
        gap = x5.sum(dim=1).mean((2, 3), keepdim=True)
        a = torch.softmax(self.fc(gap).view(b, self.r, rc // self.r, 1, 1), dim=1)
        return (x5 * a).sum(dim=1)


class Windows(nn.Module):
    """Swin / EfficientViT window partition and reverse around a per-window Linear."""

    def __init__(self, c: int, win: int, export: bool = False) -> None:
        super().__init__()
        self.win, self.export = win, export
        self.fc = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _export_branch(x, self.export)
        b, h, w, c = x.shape
        k = self.win
        t = x.view(b, h // k, k, w // k, k, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, k, k, c)
        t = torch.relu(self.fc(t))
        t = t.view(b, h // k, w // k, k, k, c).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(b, h, w, c)


class Scrambled(nn.Module):
    """A rank-5 permute that separates every dim: nothing merges, but it is a chain of rank-4
    transposes (``rank_split.split_permutes``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.view(b, 2, c // 2, h, w).permute(0, 3, 1, 4, 2).reshape(b, h * 2, w * (c // 2))


class Inseparable(nn.Module):
    """A rank-5 product whose operand broadcasts every other dim: no boundary may merge and no
    reshape reads it, so nothing may change."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = x.view(b, 2, c // 2, h, w)
        return (y * y[:1, :, :1, :, :1]).sum(dim=(1, 3))


def _ranks(gm: torch.fx.GraphModule) -> list[int]:
    return [n.meta[EXAMPLE].dim() for n in gm.graph.nodes
            if isinstance(n.meta.get(EXAMPLE), torch.Tensor)]


def check_rank_rewrite(model: nn.Module, x: torch.Tensor, export: bool, merges: bool) -> None:
    model = model.eval()
    with torch.no_grad():
        cap = capture(model, (x,))
        assert cap.dialect == ("export" if export else "fx")
        before = pytree.tree_leaves(cap.gm(x.clone()))
        rewrite(cap)
        cap.gm.graph.lint()
        nodes = set(cap.gm.graph.nodes)
        out_node = next(n for n in cap.gm.graph.nodes if n.op == "output")
        assert all(n in nodes for n in cap.out_leaves if isinstance(n, torch.fx.Node))
        assert pytree.tree_leaves(out_node.args[0]) == cap.out_leaves
        after = pytree.tree_leaves(cap.gm(x.clone()))
        eager = pytree.tree_leaves(model(x.clone()))
    for a, b_, e in zip(after, before, eager, strict=True):
        torch.testing.assert_close(a, b_, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(a, e, rtol=1e-6, atol=1e-6)
    assert (max(_ranks(cap.gm)) <= 4) == merges, _ranks(cap.gm)


@pytest.mark.parametrize("export", [False, True], ids=["fx", "export"])
def test_radix_split_is_rank_4(export: bool) -> None:
    check_rank_rewrite(RadixSplit(4, 2, export), torch.randn(1, 4, 5, 6), export, merges=True)


@pytest.mark.parametrize("export", [False, True], ids=["fx", "export"])
def test_window_partition_compiles_whole(export: bool) -> None:
    model, x = Windows(4, 2, export), torch.randn(1, 6, 4, 4)
    check_rank_rewrite(model, x, export, merges=True)
    cm, got, ref = run_compiled(model, x)
    assert_close_scaled(got, ref)
    assert cm.stats["host_ops"] == 0 and cm.stats["segments"] == 1, cm.stats


def test_inseparable_dims_are_left_alone() -> None:
    check_rank_rewrite(Inseparable(), torch.randn(2, 4, 3, 5), export=False, merges=False)


@pytest.mark.parametrize("export", [False, True], ids=["fx", "export"])
@pytest.mark.parametrize("batch", [1, 2])
def test_scrambled_permute_becomes_rank_4_transposes(export: bool, batch: int) -> None:
    check_rank_rewrite(in_dialect(Scrambled(), "export" if export else "fx"),
                       torch.randn(batch, 4, 3, 5), export=export, merges=True)


class DctStem(nn.Module):
    """CSATv2's stem: k x k patches (a rank-6 permute nothing merges), a separable transform
    (linear over the last dim, transposes of the last two), a constant reordering of the
    coefficients, then a rank-5 permute whose channel slices feed three convs."""

    def __init__(self, k: int, export: bool = False) -> None:
        super().__init__()
        self.k, self.export = k, export
        self.register_buffer("t", torch.randn(k, k))
        self.order = torch.randperm(k * k).tolist()
        self.convs = nn.ModuleList(nn.Conv2d(k * k, 2, 1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _export_branch(x, self.export)
        b, c, h, w = x.shape
        k = self.k
        x = x.reshape(b, c, h // k, k, w // k, k).permute(0, 2, 4, 1, 3, 5)
        x = torch.nn.functional.linear(torch.nn.functional.linear(x, self.t).transpose(-1, -2), self.t)
        x = x.transpose(-1, -2).reshape(-1, c, k * k)[:, :, self.order]
        x = x.reshape(b, h // k, w // k, c, -1).permute(0, 3, 4, 1, 2).contiguous()
        return torch.cat([conv(x[:, i]) for i, conv in enumerate(self.convs)], 1)


@pytest.mark.parametrize("export", [False, True], ids=["fx", "export"])
def test_dct_stem_compiles_whole(export: bool) -> None:
    model, x = DctStem(4, export), torch.randn(2, 3, 8, 12)
    check_rank_rewrite(model, x, export, merges=True)
    cm, got, ref = run_compiled(model, x)
    assert_close_scaled(got, ref)
    assert cm.stats["host_ops"] == 0 and cm.stats["segments"] == 1, cm.stats


class Permuted(nn.Module):
    def __init__(self, shape: tuple[int, ...], perm: list[int]) -> None:
        super().__init__()
        self.shape, self.perm = shape, perm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.shape).permute(self.perm).reshape(x.shape[0], -1) * 2


@settings(max_examples=examples(1.0), deadline=None)
@given(dims=st.lists(st.integers(1, 3), min_size=5, max_size=6), data=st.data())
def test_any_rank_5_6_permute_is_rewritten_exactly(dims: list[int], data: st.DataObject) -> None:
    perm = data.draw(st.permutations(range(len(dims))))
    n = 1
    for d in dims:
        n *= d
    check_rank_rewrite(Permuted(tuple(dims), list(perm)), torch.randn(1, n), export=False, merges=True)


@st.composite
def cases(draw: st.DrawFn) -> tuple[nn.Module, torch.Tensor, bool]:
    export = draw(st.booleans())
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        c, r = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        shape = (draw(st.integers(1, 2)), c, draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        return RadixSplit(c, r, export), torch.randn(shape, generator=gen), export
    k = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), k * draw(st.integers(1, 3)), k * draw(st.integers(1, 3)),
             draw(st.integers(1, 3)))
    return Windows(shape[3], k, export), torch.randn(shape, generator=gen), export


@settings(max_examples=examples(1.0), deadline=None)
@given(case=cases())
def test_rank_rewrites_keep_the_graph_valid_and_equivalent(case: Any) -> None:
    model, x, export = case
    note(f"{type(model).__name__} {vars(model).get('r', vars(model).get('win'))} {tuple(x.shape)}")
    check_rank_rewrite(model, x, export, merges=True)
