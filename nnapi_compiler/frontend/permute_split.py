"""A rank-5/6 permute that no merging of dims reduces, written as rank-4 TRANSPOSEs.

``rank_reduce`` merges dims that every op keeps together; a permute that interleaves all of its
dims (CSATv2's patch extraction ``x.reshape(b, c, h//k, k, w//k, k).permute(0, 2, 4, 1, 3, 5)``)
leaves nothing to merge. Any permutation is a sequence of swaps of two adjacent blocks of dims,
and swapping blocks A and B in ``[prefix, A, B, suffix]`` is one rank-4 transpose ``(0, 2, 1, 3)``
of the merged shape ``[prod(prefix), prod(A), prod(B), prod(suffix)]``. So the permute becomes:
reshape to that shape, transpose, ... (one swap per output position out of place, at most
rank - 1), then a reshape to the permute's own shape. The same elements land in the same order;
the rank-5/6 views left on either side are reshapes, which ``rank_reduce`` then merges with
their readers.
"""

from __future__ import annotations

import math

import torch
import torch.fx

from .capture import EXAMPLE
from .fx_names import op_name as _name


def block_swaps(perm: list[int]) -> list[tuple[int, int, int]]:
    """The swaps that turn ``range(len(perm))`` into ``perm``: (start, split, end) each swaps
    ``order[start:split]`` with ``order[split:end]``."""
    order = list(range(len(perm)))
    swaps = []
    for j in range(len(perm)):
        i = order.index(perm[j])
        if i == j:
            continue
        m = 1  # move the longest run that is already in its target order
        while i + m < len(order) and j + m < len(perm) and order[i + m] == perm[j + m]:
            m += 1
        swaps.append((j, i, i + m))
        order = order[:j] + order[i:i + m] + order[j:i] + order[i + m:]
    assert order == perm
    return swaps


def _perm(node: torch.fx.Node, rank: int) -> list[int] | None:
    rest = list(node.args[1:]) or [node.kwargs.get("dims")]
    dims = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else rest
    if len(dims) != rank or not all(isinstance(d, int) for d in dims):
        return None
    return [d % rank for d in dims]


def split_permutes(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """Rewrite every rank > 4 permute of ``gm``; returns {replaced permute: its replacement}."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    for node in list(gm.graph.nodes):
        if node.op not in ("call_function", "call_method") or _name(node) != "permute":
            continue
        src = node.args[0]
        ex = src.meta.get(EXAMPLE) if isinstance(src, torch.fx.Node) else None
        if not isinstance(ex, torch.Tensor) or ex.dim() <= 4:
            continue
        perm = _perm(node, ex.dim())
        if perm is None or any(u.op == "output" for u in node.users):
            continue  # a rank > 4 model output stays as it is: host code makes it either way
        cur, val, order = src, ex, list(range(ex.dim()))
        for start, split, end in block_swaps(perm):
            size = [int(ex.shape[d]) for d in order]
            merged = [math.prod(size[:start]), math.prod(size[start:split]),
                      math.prod(size[split:end]), math.prod(size[end:])]
            with gm.graph.inserting_before(node):
                r4 = gm.graph.call_function(torch.reshape, (cur, merged))
                cur = gm.graph.call_function(torch.permute, (r4, [0, 2, 1, 3]))
            r4.meta = {**node.meta, EXAMPLE: val.reshape(merged)}
            val = r4.meta[EXAMPLE].permute(0, 2, 1, 3).contiguous()
            cur.meta = {**node.meta, EXAMPLE: val}
            order = order[:start] + order[split:end] + order[start:split] + order[end:]
        with gm.graph.inserting_before(node):
            out = gm.graph.call_function(torch.reshape, (cur, list(node.meta[EXAMPLE].shape)))
        out.meta = {**node.meta, EXAMPLE: val.reshape(node.meta[EXAMPLE].shape)}
        node.replace_all_uses_with(out)
        replaced[node] = out
    if replaced:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return replaced
