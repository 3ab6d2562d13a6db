"""The rank-5/6 idioms that kept four timm families off NNAPI, each as a minimal model, compiled
whole (one NNAPI segment, no host op, eager numerics) in both capture dialects at Android 10
and Android 13:

- q/k/v pieces of a packed projection viewed at rank 5 in EdgeNeXt's and Visformer's layouts
  (``frontend/patterns_attention.py``);
- SKNet's ``stack`` of branches, softmax over the branch dim, weighted sum
  (``frontend/rank_reduce.py``);
- MaxViT's grid partition and reverse, a rank-6 permute no merge reduces
  (``frontend/permute_split.py``), at batch 1 and 2;
- EdgeNeXt's Fourier position encoding: a conv applied to a tensor built from shapes only
  (folded to a constant by lowering).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st
from torch import nn

from nnapi_compiler.frontend.permute_split import merged, plan
from tests.conftest import compile_whole

from ..fuzz.profiles import examples, register
from .test_rank_reduce import check_rank_rewrite

register()

DIALECTS = ["fx", "export"]
TARGETS = ["android-10", "android-13"]
CASES = list(itertools.product(DIALECTS, TARGETS))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v


class EdgeNextQkv(nn.Module):
    """Cross-covariance attention: ``[B, N, 3C] -> [B, N, 3, H, D] -> [3, B, H, D, N]``."""

    def __init__(self, c: int = 8, heads: int = 2, index: bool = False) -> None:
        super().__init__()
        self.heads, self.index = heads, index
        self.qkv = nn.Linear(c, 3 * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 4, 1)
        q, k, v = (qkv[0], qkv[1], qkv[2]) if self.index else qkv.unbind(0)
        return _attend(q, k, v).permute(0, 3, 1, 2).reshape(b, n, c)


class VisformerQkv(nn.Module):
    """A 1x1-conv projection: ``[B, 3C, H, W] -> [B, 3, heads, D, HW] -> [3, B, heads, HW, D]``."""

    def __init__(self, c: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Conv2d(c, 3 * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.qkv(x).reshape(b, 3, self.heads, c // self.heads, -1).permute(1, 0, 2, 4, 3)
        q, k, v = t.unbind(0)
        return _attend(q, k, v).permute(0, 1, 3, 2).reshape(b, -1, h, w)


class SelectiveKernel(nn.Module):
    """SKNet: two conv branches stacked at dim 1, a softmax over the branch dim, weighted sum."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.paths = nn.ModuleList([nn.Conv2d(c, c, 3, padding=d, dilation=d) for d in (1, 2)])
        self.select = nn.Conv2d(c, 2 * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.stack([torch.relu(p(x)) for p in self.paths], dim=1)
        torch._assert(x.shape[1] == 2, "paths")  # as timm does: a read of the rank-5 shape
        a = self.select(x.sum(1).mean((2, 3), keepdim=True))
        b, c2, h, w = a.shape
        a = torch.softmax(a.view(b, 2, c2 // 2, h, w), dim=1)
        return torch.sum(x * a, dim=1)


class GridAttention(nn.Module):
    """MaxViT's grid partition (dims interleaved) and reverse around a per-window Linear."""

    def __init__(self, c: int = 4, grid: int = 2) -> None:
        super().__init__()
        self.grid = grid
        self.fc = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        g = self.grid
        t = x.view(b, g, h // g, g, w // g, c).permute(0, 2, 4, 1, 3, 5).contiguous().view(-1, g, g, c)
        t = torch.relu(self.fc(t))
        t = t.view(-1, h // g, w // g, g, g, c).permute(0, 3, 1, 4, 2, 5).contiguous()
        return t.view(-1, h, w, c)


class FourierPosition(nn.Module):
    """EdgeNeXt's position encoding: a 1x1 conv of a tensor computed from the input's shape."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.proj = nn.Conv2d(4, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ones(1, 5, 6).cumsum(1)[:, :, :, None] / torch.arange(1, 3).float()
        pos = torch.cat((y.sin(), y.cos()), dim=3).permute(0, 3, 1, 2)
        return x + self.proj(pos)


def _layout(cm) -> int:
    return cm.stats["layout_conversions"]


@pytest.mark.parametrize("dialect,target", CASES)
@pytest.mark.parametrize("index", [False, True], ids=["unbind", "index"])
def test_edgenext_qkv_split_compiles_whole(dialect: str, target: str, index: bool) -> None:
    compile_whole(EdgeNextQkv(index=index), torch.randn(2, 5, 8), dialect=dialect, target=target)


@pytest.mark.parametrize("dialect,target", CASES)
def test_visformer_qkv_split_compiles_whole(dialect: str, target: str) -> None:
    cm = compile_whole(VisformerQkv(), torch.randn(2, 8, 3, 4), dialect=dialect, target=target)
    # One NHWC -> NCHW conversion serves the three pieces, then k's and the output's permutes
    # (Android 10 spells the batch matmul with one more transpose).
    assert _layout(cm) == {"android-10": 4, "android-13": 3}[target], cm.stats


@pytest.mark.parametrize("dialect,target", CASES)
def test_selective_kernel_stack_softmax_compiles_whole(dialect: str, target: str) -> None:
    compile_whole(SelectiveKernel(), torch.randn(2, 4, 6, 6), dialect=dialect, target=target)


@pytest.mark.parametrize("dialect,target", CASES)
@pytest.mark.parametrize("batch", [1, 2])
def test_grid_partition_compiles_whole(dialect: str, target: str, batch: int) -> None:
    cm = compile_whole(GridAttention(), torch.randn(batch, 6, 4, 4), dialect=dialect, target=target)
    assert _layout(cm) == 4, cm.stats  # two TRANSPOSEs each way, none added for layout


@pytest.mark.parametrize("dialect,target", CASES)
def test_module_of_constants_folds(dialect: str, target: str) -> None:
    compile_whole(FourierPosition(), torch.randn(1, 4, 5, 6), dialect=dialect, target=target)


def test_permute_plans_reach_every_permutation_of_six_in_three_steps() -> None:
    for n in (5, 6):
        for p in itertools.permutations(range(n)):
            steps = plan(p)
            assert steps is not None and len(steps) <= 3
            order = tuple(range(n))
            for groups, q in steps:
                assert sum(groups, ()) == order and len(groups) <= 4
                order = sum((groups[i] for i in q), ())
            assert order == p


def test_grid_partition_is_two_transposes() -> None:
    # [B, g, H/g, g, W/g, C] -> [B, H/g, W/g, g, g, C]: nothing merges; B = 1 drops out.
    sizes, q = merged((1, 2, 3, 2, 5, 4), [0, 2, 4, 1, 3, 5])
    assert sizes == [2, 3, 2, 5, 4] and q == [1, 3, 0, 2, 4]
    assert len(plan(tuple(q))) == 2
    sizes, q = merged((2, 2, 3, 2, 5, 4), [0, 2, 4, 1, 3, 5])
    assert len(q) == 6 and len(plan(tuple(q))) == 2


class Permuted(nn.Module):
    """A rank-4 input viewed at rank 5/6, permuted, and viewed back at rank 4."""

    def __init__(self, view: tuple[int, ...], perm: tuple[int, ...]) -> None:
        super().__init__()
        self.view, self.perm = view, perm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x * 2).view(self.view).permute(self.perm).contiguous()
        return torch.relu(y.reshape(x.shape[0], -1, x.shape[2], x.shape[3]))


@st.composite
def permuted(draw: st.DrawFn) -> tuple[nn.Module, torch.Tensor]:
    rank = draw(st.sampled_from([5, 6]))
    view = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    perm = tuple(draw(st.permutations(range(rank))))
    n = 1
    for d in view:
        n *= d
    x = torch.randn(1, n, 1, 1)
    return Permuted(view, perm), x


@settings(max_examples=examples(1.0), deadline=None)
@given(case=permuted())
def test_any_permute_between_reshapes_becomes_rank_4(case: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = case
    note(f"view {model.view} perm {model.perm}")
    check_rank_rewrite(model, x, export=False, merges=True)


class LaterFactor(nn.Module):
    """Pieces cut along a factor that is not the leading one of its source dim: a strided
    gather, not a slice, so the piece split must leave it (it then runs on the CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = x.reshape(b, n, 2, 3, c // 6).unbind(3)
        return q + k * v


def test_split_along_a_later_factor_is_left_alone() -> None:
    check_rank_rewrite(LaterFactor(), torch.randn(2, 3, 12), export=False, merges=False)
