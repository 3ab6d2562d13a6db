"""fx rewrites of packed q/k/v projection splits that go through rank-5 tensors.

nn.MultiheadAttention, as torch.export spells it:
``F.multi_head_attention_forward`` splits the packed ``[L, B, 3E]`` in-projection with
``proj.unflatten(-1, (3, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()`` and then
``[0]``, ``[1]``, ``[2]``: a detour through a rank-5 tensor NNAPI cannot hold. Piece ``i`` is
exactly ``proj[..., i*E:(i+1)*E]``, one STRIDED_SLICE, so each select becomes that slice.

A packed projection viewed at rank 5, optionally permuted, then cut into pieces along one dim
(``unbind``, ``select``, ``[i]``), in any layout: timm's ``Attention`` (ViT and the hybrids)
``qkv(x).reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4).unbind(0)``, EdgeNeXt's cross-covariance
attention ``.permute(2, 0, 3, 4, 1)``, Visformer's 1x1-conv projection ``[B, 3C, H, W]
.reshape(B, 3, H, D, -1).permute(1, 0, 2, 4, 3)``. When the dims before the split dim ``k`` of
the view are exactly the source's first ``j`` dims and the split dim is the leading factor of
source dim ``j``, piece ``i`` is the slice ``src[j][i*R:(i+1)*R]`` (R = size of dim j / pieces),
viewed without dim ``k`` and permuted with ``k`` left out: slice, reshape and permute, all at
rank <= 4 (cut along another factor it would be a strided gather, and is left as it is).
"""

from __future__ import annotations

import math

import torch
import torch.fx

from .capture import EXAMPLE
from .fx_names import op_name as _name

aten = torch.ops.aten


def _arg(node: torch.fx.Node, i: int, name: str) -> object:
    return node.args[i] if len(node.args) > i else node.kwargs.get(name)


def _only(node: torch.fx.Node, name: str) -> torch.fx.Node | None:
    users = list(node.users)
    if len(users) == 1 and users[0].op in ("call_function", "call_method") and _name(users[0]) == name:
        return users[0]
    return None


def split_packed_projection(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """Rewrite every packed q/k/v split in ``gm``; returns {replaced select: its slice}."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    for unflat in list(gm.graph.nodes):
        if unflat.op not in ("call_function", "call_method") or _name(unflat) != "unflatten":
            continue
        src, sizes = unflat.args[0], _arg(unflat, 2, "sizes")
        ex = src.meta.get(EXAMPLE) if isinstance(src, torch.fx.Node) else None
        if (not isinstance(ex, torch.Tensor) or _arg(unflat, 1, "dim") not in (-1, ex.dim() - 1)
                or not isinstance(sizes, list | tuple) or len(sizes) != 2):
            continue
        n, e = sizes
        uns = _only(unflat, "unsqueeze")
        tr = _only(uns, "transpose") if uns is not None and _arg(uns, 1, "dim") == 0 else None
        if tr is None or [_arg(tr, 1, "dim0"), _arg(tr, 2, "dim1")] != [0, -2]:
            continue
        sq = _only(tr, "squeeze")
        if sq is None or _arg(sq, 1, "dim") != -2:
            continue
        last = _only(sq, "contiguous") or sq
        selects = list(last.users)
        if not all(_name(s) == "select" and _arg(s, 1, "dim") == 0 and isinstance(_arg(s, 2, "index"), int)
                   for s in selects):
            continue
        for s in selects:
            i = int(_arg(s, 2, "index")) % n  # type: ignore[arg-type]
            with gm.graph.inserting_before(s):
                new = gm.graph.call_function(aten.slice.Tensor, (src, -1, i * e, (i + 1) * e))
            new.meta = dict(s.meta)
            new.meta[EXAMPLE] = ex[..., i * e:(i + 1) * e].clone()
            s.replace_all_uses_with(new)
            replaced[s] = new
    if replaced:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return replaced


def _dims(node: torch.fx.Node, rank: int) -> list[int] | None:
    rest = list(node.args[1:]) or [node.kwargs.get("dims")]
    dims = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else rest
    ok = len(dims) == rank and all(isinstance(d, int) for d in dims)
    return [d % rank for d in dims] if ok else None


def _pieces(node: torch.fx.Node, rank: int) -> tuple[int, dict[torch.fx.Node, int]] | None:
    """(dim, {node reading piece i along dim of ``node``: i}), or None if some user reads
    otherwise or users cut along different dims."""
    out: dict[torch.fx.Node, int] = {}
    dims: set[int] = set()
    for u in node.users:
        name = _name(u)
        if name == "select" and isinstance(_arg(u, 1, "dim"), int) and isinstance(_arg(u, 2, "index"), int):
            dims.add(int(_arg(u, 1, "dim")) % rank)  # type: ignore[arg-type]
            out[u] = int(_arg(u, 2, "index"))  # type: ignore[arg-type]
        elif name == "getitem" and isinstance(u.args[1], int):
            dims.add(0)
            out[u] = u.args[1]
        elif name == "unbind" and isinstance(_arg(u, 1, "dim") or 0, int):
            dims.add(int(_arg(u, 1, "dim") or 0) % rank)  # type: ignore[arg-type]
            for g in u.users:
                if _name(g) != "getitem" or not isinstance(g.args[1], int):
                    return None
                out[g] = g.args[1]
        else:
            return None
    return (dims.pop(), out) if len(dims) == 1 and out else None


def _source_dim(src: tuple[int, ...], view: tuple[int, ...], k: int) -> int | None:
    """The dim ``j`` of ``src`` whose leading factor is dim ``k`` of its view ``view``."""
    before = 1
    for d in view[:k]:
        before *= d
    acc = 1
    for j, n in enumerate(src):
        if acc == before and n % view[k] == 0 and n > 0:
            return j
        acc *= n
    return None


def split_head_permute(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """Rewrite every rank-5/6 packed split (view, optional permute, pieces) in ``gm`` to slices;
    returns {replaced piece: its replacement}."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    for view in list(gm.graph.nodes):
        if view.op not in ("call_function", "call_method") or _name(view) not in (
                "view", "reshape", "_unsafe_view"):
            continue
        src = view.args[0]
        exv, ex = view.meta.get(EXAMPLE), src.meta.get(EXAMPLE) if isinstance(src, torch.fx.Node) else None
        if not isinstance(exv, torch.Tensor) or not isinstance(ex, torch.Tensor) or (
                exv.dim() != 5 or ex.dim() > 4):
            continue
        shape, rank = tuple(exv.shape), exv.dim()
        bases = [(u, _dims(u, rank)) for u in view.users if _name(u) == "permute"]
        for base, p in [*bases, (view, list(range(rank)))]:
            found = _pieces(base, rank) if p is not None else None
            if found is None:
                continue
            axis, pieces = found
            k = p[axis]
            j = _source_dim(tuple(ex.shape), shape, k)
            if j is None:
                continue
            size = ex.shape[j] // shape[k]
            rest = [d for i, d in enumerate(shape) if i != k]
            q = [d - (d > k) for d in p if d != k]
            whole, at = src, j
            if ex.dim() == 4 and j < 3:
                # A rank-4 source may be stored NHWC; the pieces' views need the logical order,
                # so view it once as [before j, dim j, after j] (one layout conversion for all
                # the pieces instead of one per piece) and slice that.
                flat = [math.prod(ex.shape[:j]), ex.shape[j], math.prod(ex.shape[j + 1:])]
                with gm.graph.inserting_before(base):
                    whole = gm.graph.call_function(aten.reshape.default, (src, flat))
                whole.meta = {**base.meta, EXAMPLE: ex.reshape(flat).clone()}
                at = 1
            for node, i in pieces.items():
                i %= shape[k]
                part = whole.meta[EXAMPLE].narrow(at, i * size, size)
                with gm.graph.inserting_before(node):
                    new = [gm.graph.call_function(aten.slice.Tensor, (whole, at, i * size, (i + 1) * size)),
                           None, None]
                    new[1] = gm.graph.call_function(aten.reshape.default, (new[0], rest))
                    vals = [part, part.reshape(rest)]
                    if q != sorted(q):
                        new[2] = gm.graph.call_function(aten.permute.default, (new[1], q))
                        vals.append(vals[1].permute(q))
                made = [n for n in new if n is not None]
                for n, val in zip(made, vals, strict=True):
                    n.meta = {**node.meta, EXAMPLE: val.clone()}
                node.replace_all_uses_with(made[-1])
                replaced[node] = made[-1]
    if replaced:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return replaced
