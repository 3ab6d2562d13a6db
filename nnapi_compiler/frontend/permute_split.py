"""Rank-5/6 permutes between reshapes, rewritten as a chain of rank <= 4 transposes.

MaxViT's grid partition ``x.view(B, g, H // g, g, W // g, C).permute(0, 2, 4, 1, 3, 5)
.reshape(-1, g, g, C)`` interleaves its dims: no two neighbours of the view stay neighbours, so
merging them (``rank_reduce``) leaves rank 5 (6 when B > 1) and NNAPI has no such TRANSPOSE.
But a permutation is a product of simpler ones: a TRANSPOSE of a rank-4 view moves up to four
contiguous *blocks* of dims at once, and between two TRANSPOSEs the data may be re-viewed with
other blocks for free (a RESHAPE keeps the element order). ``(a, b, c, d, C) -> (b, d, a, c, C)``
is ``[a][b c d][C] -> [b c d][a][C]`` then ``[b][c][d a][C] -> [b][d a][c][C]``: two rank-4
TRANSPOSEs with the same elements in the same order as the rank-6 one. The grid reverse is the
inverse, also two.

This module plans the chain (``steps``); ``rank_split.split_permutes`` rewrites the fx nodes
with it. Size-1 dims are dropped and dims that move together are merged first; the shortest
chain of block moves (each with at most four blocks) is found by breadth-first search over the
orderings of the remaining dims (at most 6! states).
"""

from __future__ import annotations

import functools
import math
from collections import deque
from itertools import combinations, permutations
from typing import Any

#: The longest chain of TRANSPOSEs tried; every permutation of up to six dims needs at most 3.
MAX_STEPS = 3


def merged(shape: tuple[int, ...], p: list[int]) -> tuple[list[int], list[int]]:
    """(block sizes, permutation of the blocks): size-1 dims dropped, dims that stay neighbours
    in the same order merged into one block."""
    keep = [d for d in range(len(shape)) if shape[d] != 1]
    order = [d for d in p if shape[d] != 1]
    pos = {d: i for i, d in enumerate(order)}
    blocks: list[list[int]] = []
    for d in keep:
        if blocks and pos[d] == pos[blocks[-1][-1]] + 1:
            blocks[-1].append(d)
        else:
            blocks.append([d])
    sizes = [1] * len(blocks)
    for i, blk in enumerate(blocks):
        for d in blk:
            sizes[i] *= shape[d]
    first = {blk[0]: i for i, blk in enumerate(blocks)}
    return sizes, [first[d] for d in order if d in first]


def _moves(state: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[tuple[int, ...], ...], list[int]]]:
    """Every (new state, groups, permutation of the groups) one rank <= 4 TRANSPOSE reaches."""
    n = len(state)
    out = []
    for k in range(1, min(3, n - 1) + 1):
        for cuts in combinations(range(1, n), k):
            bounds = [0, *cuts, n]
            groups = [state[bounds[i]:bounds[i + 1]] for i in range(k + 1)]
            for q in permutations(range(k + 1)):
                if list(q) != sorted(q):
                    out.append((sum((groups[i] for i in q), ()), tuple(groups), list(q)))
    return out


@functools.cache
def _tree(n: int) -> dict[tuple[int, ...], Any]:
    """Breadth-first tree of the orderings of ``n`` blocks reached from ``range(n)`` within
    MAX_STEPS moves: {ordering: (previous ordering, groups, permutation) or None at the root}."""
    start = tuple(range(n))
    prev: dict[tuple[int, ...], Any] = {start: None}
    todo = deque([(start, 0)])
    while todo:
        state, depth = todo.popleft()
        if depth == MAX_STEPS:
            continue
        for nxt, groups, q in _moves(state):
            if nxt not in prev:
                prev[nxt] = (state, groups, q)
                todo.append((nxt, depth + 1))
    return prev


def plan(perm: tuple[int, ...]) -> list[tuple[tuple[tuple[int, ...], ...], list[int]]] | None:
    """The shortest chain of rank <= 4 block moves taking ``range(n)`` to ``perm``:
    [(groups of the current order, permutation of the groups)], or None beyond MAX_STEPS."""
    prev = _tree(len(perm))
    state = tuple(perm)
    if state not in prev:
        return None
    steps = []
    while prev[state] is not None:
        state, groups, q = prev[state]
        steps.append((groups, q))
    return steps[::-1]


def steps(sizes: list[int], perm: list[int]) -> list[tuple[list[int], list[int]]] | None:
    """The rank <= 4 (shape, permutation) pairs that permute a tensor of ``sizes`` by ``perm``:
    reshape to each shape and permute, in turn; the last result holds the permuted elements in
    order. [] when merging alone does it; None beyond MAX_STEPS (never for rank <= 6)."""
    block_sizes, q = merged(tuple(sizes), list(perm))
    if len(q) <= 4:
        return [] if q == sorted(q) else [(block_sizes, q)]
    chain = plan(tuple(q))
    if chain is None:
        return None
    return [([math.prod(block_sizes[b] for b in g) for g in groups], order) for groups, order in chain]
