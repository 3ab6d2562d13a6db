"""fx-level rewrites of multi-node idioms into the single op they spell, before lowering.

Channel shuffle (ShuffleNet): ``x.view(b, g, c // g, h, w).transpose(1, 2).contiguous()
.view(b, c, h, w)`` goes through a rank-5 tensor NNAPI cannot hold; it is exactly
``torch.channel_shuffle(x, g)``, which lowers to one CHANNEL_SHUFFLE.

Rank-5/6 views whose dims move together (ResNeSt's radix split, window partitions) are merged
to rank <= 4 by ``rank_reduce.reduce_rank``, the general form of the same idea; a rank-5/6
permute of a view that merging leaves above rank 4 (MaxViT's grid partition, HaloNet's
blocks) becomes the shortest chain of rank-4 TRANSPOSEs (``rank_split.split_permutes``, planned
by ``permute_split.steps``), before merging and again after it.

A rewrite replaces nodes the captured output list may name directly (when the idiom is the
model's output), so ``rewrite`` remaps ``Captured.out_leaves`` through every replacement.
"""

from __future__ import annotations

import torch
import torch.fx

from .capture import EXAMPLE, Captured
from .fx_names import op_name as _name
from .patterns_attention import split_head_permute, split_packed_projection
from .patterns_refold import refold
from .rank_reduce import reduce_rank
from .rank_split import commute_expands, split_permutes, split_unfolds

_RESHAPES = {"view", "reshape", "flatten"}


def _shape(node: torch.fx.Node) -> tuple[int, ...] | None:
    ex = node.meta.get(EXAMPLE)
    return tuple(ex.shape) if isinstance(ex, torch.Tensor) else None


def _only_user(node: torch.fx.Node) -> torch.fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _is_transpose_12(node: torch.fx.Node) -> bool:
    """Does ``node`` swap dims 1 and 2 of a rank-5 tensor (transpose or permute)?"""
    if _name(node) == "permute":
        rest = list(node.args[1:]) or [node.kwargs.get("dims")]
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else rest
        return all(isinstance(d, int) for d in dims) and [d % 5 for d in dims] == [0, 2, 1, 3, 4]
    if _name(node) not in ("transpose", "transpose.int"):
        return False
    dims = [a for a in node.args[1:3]] or [node.kwargs.get("dim0"), node.kwargs.get("dim1")]
    return sorted(d % 5 for d in dims if isinstance(d, int)) == [1, 2]


def rewrite(cap: Captured) -> int:
    """Apply every fx rewrite to ``cap`` in place; returns how many idioms were rewritten."""
    replaced = refold(cap.gm)  # first: LRN's rank-5 view must not reach reduce_rank
    replaced.update(fuse_channel_shuffle(cap.gm))
    replaced.update(split_packed_projection(cap.gm))
    replaced.update(split_head_permute(cap.gm))
    for split in (split_unfolds, commute_expands, split_permutes):  # windows merging cannot take
        replaced.update(split(cap.gm))
    replaced.update(reduce_rank(cap.gm))  # rank-5/6 views the shuffle rewrite did not take
    split = split_permutes(cap.gm)  # rank-5/6 permutes that merging did not reduce
    if split:
        replaced.update(split)
        replaced.update(reduce_rank(cap.gm))  # the views around them are reshapes now
    cap.out_leaves = [replaced.get(x, x) if isinstance(x, torch.fx.Node) else x for x in cap.out_leaves]
    return len(replaced)


def fuse_channel_shuffle(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """Rewrite every channel-shuffle idiom in ``gm``; returns {replaced node: its replacement}."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    for split in list(gm.graph.nodes):
        if split.op not in ("call_method", "call_function") or _name(split) not in _RESHAPES:
            continue
        s5, src = _shape(split), split.args[0] if split.args else None
        if s5 is None or len(s5) != 5 or not isinstance(src, torch.fx.Node):
            continue
        s4 = _shape(src)
        if s4 is None or len(s4) != 4 or (s4[0], s4[1], s4[2], s4[3]) != (s5[0], s5[1] * s5[2], s5[3], s5[4]):
            continue
        tr = _only_user(split)
        if tr is None or not _is_transpose_12(tr):
            continue
        nxt = _only_user(tr)
        if nxt is not None and _name(nxt) == "contiguous":
            nxt = _only_user(nxt)
        if nxt is None or _name(nxt) not in _RESHAPES or _shape(nxt) != s4:
            continue
        with gm.graph.inserting_before(nxt):
            new = gm.graph.call_function(torch.channel_shuffle, (src, s5[1]))
        new.meta = dict(nxt.meta)
        nxt.replace_all_uses_with(new)
        replaced[nxt] = new
    if replaced:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return replaced
