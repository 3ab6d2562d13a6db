"""Rank-5/6 window idioms that merging cannot reduce compile whole as rank <= 4 ops
(``frontend/rank_split.py``): block partitions, overlapping windows (unfold), broadcast
relative-position terms, and timm's HaloAttn, in both capture dialects."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch import nn

from nnapi_compiler.frontend.permute_split import steps

from ..conftest import Fn, assert_close_scaled, compile_whole, in_dialect, run_compiled

DIALECTS = ["fx", "export"]


def _apply(x: torch.Tensor, sizes: list[int], perm: list[int]) -> torch.Tensor:
    y = x.reshape(sizes)
    for shape, p in steps(sizes, perm) or []:
        assert len(shape) <= 4
        y = y.reshape(shape).permute(p)
    return y.reshape(-1)


def test_steps_permute_any_rank_6_by_rank_4_transposes() -> None:
    rng = random.Random(0)
    for _ in range(200):
        sizes = [rng.choice([1, 2, 3, 4]) for _ in range(rng.choice([5, 6]))]
        perm = list(range(len(sizes)))
        rng.shuffle(perm)
        x = torch.arange(float(torch.Size(sizes).numel()))
        want = x.reshape(sizes).permute(perm).reshape(-1)
        assert torch.equal(_apply(x, sizes, perm), want), (sizes, perm)
        # The shortest chain: at most three transposes for six dims; none for a merge-only one.
        assert len(steps(sizes, perm) or []) <= 3
    assert steps([2, 3, 4, 5, 6], [0, 1, 2, 3, 4]) == []
    assert steps([2, 3, 4, 5, 6], [0, 1, 2, 4, 3]) == [([24, 5, 6], [0, 2, 1])]  # merges to rank 3
    for perm in itertools.permutations(range(5)):
        x = torch.arange(720.0)
        assert torch.equal(_apply(x, [2, 3, 4, 5, 6], list(perm)),
                           x.reshape(2, 3, 4, 5, 6).permute(perm).reshape(-1))


class BlockPartition(nn.Module):
    """HaloNet's q partition and its inverse (rank 6 and rank 5 permutes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = x.reshape(-1, c // 2, h // 4, 4, w // 4, 4).permute(0, 1, 3, 5, 2, 4)
        q = q.reshape(b * 2, c // 2, 16, -1).transpose(1, 3)  # [B*heads, blocks, 16, d]
        out = (q * 2.0).transpose(1, 3).reshape(-1, 4, 4, h // 4, w // 4)
        return out.permute(0, 3, 1, 4, 2).contiguous().view(b, c, h, w) + x


class Windows(nn.Module):
    """Overlapping windows: pad, unfold H and W (size 6, step 4), as HaloNet's keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        k = nn.functional.pad(x, [1, 1, 1, 1])
        k = k.unfold(2, 6, 4).unfold(3, 6, 4).reshape(b * 2, c // 2, 4, -1).permute(0, 2, 3, 1)
        return k * 3.0


class RelTerms(nn.Module):
    """Two broadcast rank-5 terms (expand, permute), summed, as HaloNet's relative logits."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        n, h, w, win = a.shape
        ta = a.reshape(n, h, 1, w, win).expand(-1, -1, win, -1, -1).permute(0, 1, 3, 2, 4)
        tb = b.reshape(n, w, 1, h, win).expand(-1, -1, win, -1, -1).permute(0, 3, 1, 4, 2)
        return (ta + tb).reshape(n, h * w, -1)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("target", ["android-10", "android-13"])
def test_block_partition(dialect: str, target: str) -> None:
    cm = compile_whole(BlockPartition(), torch.randn(1, 8, 8, 12), dialect=dialect, target=target)
    assert "gather" not in {op.mnemonic for op in cm.program.compute_ops()}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unfold_windows(dialect: str) -> None:
    cm = compile_whole(Windows(), torch.randn(1, 4, 8, 8), dialect=dialect)
    kinds = [op.mnemonic for op in cm.program.compute_ops()]
    assert kinds.count("gather") == 2, kinds  # one per unfolded dim


@pytest.mark.parametrize("dialect", DIALECTS)
def test_single_unfold(dialect: str) -> None:
    fn = Fn(lambda x: x.unfold(3, 3, 2).reshape(1, 2, -1) + 1.0)
    compile_whole(fn, torch.randn(1, 2, 3, 7), dialect=dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_broadcast_relative_terms(dialect: str) -> None:
    compile_whole(RelTerms(), torch.randn(2, 4, 4, 7), torch.randn(2, 4, 4, 7), dialect=dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("target", ["android-10", "android-13"])
def test_timm_halo_attention(dialect: str, target: str) -> None:
    halo = pytest.importorskip("timm.layers.halo_attn")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 1)
            self.attn = halo.HaloAttn(16, 16, num_heads=2, block_size=4, halo_size=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(self.conv(x))

    compile_whole(Net(), torch.randn(1, 3, 8, 12), dialect=dialect, target=target)


class GridAttentionLayout(nn.Module):
    """MaxViT's grid partition and its reverse (timm ``grid_partition`` / ``grid_reverse``):
    rank-6 permutes that interleave the grid with the image, so merging leaves rank 5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        g = 2
        win = x.view(b, g, h // g, g, w // g, c).permute(0, 2, 4, 1, 3, 5).contiguous()
        win = win.view(-1, g, g, c) * 2.0
        y = win.view(-1, h // g, w // g, g, g, c).permute(0, 3, 1, 4, 2, 5).contiguous()
        return y.view(-1, h, w, c) + x


@pytest.mark.parametrize("dialect", DIALECTS)
def test_grid_partition_and_reverse(dialect: str) -> None:
    compile_whole(GridAttentionLayout(), torch.randn(1, 6, 8, 5), dialect=dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unfolding_a_window_dim_is_left_alone(dialect: str) -> None:
    """``unfold(4, ...)`` after an unfold of a rank-4 tensor reads the window dim: not the
    idiom, so it stays host code, and the result stays right."""
    fn = in_dialect(Fn(lambda x: x.unfold(3, 4, 2).unfold(4, 2, 2).reshape(1, 2, -1) + 1.0),
                    dialect)
    x = torch.randn(1, 2, 3, 8)
    cm, got, ref = run_compiled(fn, x)
    assert cm.stats["host_ops"] > 0
    assert_close_scaled(got, ref)
