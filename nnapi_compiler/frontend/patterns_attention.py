"""fx rewrites of packed q/k/v projection splits that go through rank-5 tensors.

nn.MultiheadAttention, as torch.export spells it:
``F.multi_head_attention_forward`` splits the packed ``[L, B, 3E]`` in-projection with
``proj.unflatten(-1, (3, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()`` and then
``[0]``, ``[1]``, ``[2]``: a detour through a rank-5 tensor NNAPI cannot hold. Piece ``i`` is
exactly ``proj[..., i*E:(i+1)*E]``, one STRIDED_SLICE, so each select becomes that slice.

timm's ``Attention`` (ViT and the hybrids built from it): ``qkv(x).reshape(B, N, 3, H, D)
.permute(2, 0, 3, 1, 4).unbind(0)`` (or ``[i]`` / ``select(0, i)``). Piece ``i`` is exactly
``qkv[..., i*H*D:(i+1)*H*D].reshape(B, N, H, D).permute(0, 2, 1, 3)``: rank 4 throughout. The
same holds for any permute that puts the q/k/v dim first: XCiT's cross-covariance attention
permutes ``(2, 0, 3, 4, 1)``, so each piece is ``.reshape(B, N, H, D).permute(0, 2, 3, 1)``.
"""

from __future__ import annotations

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


def _perm_dims(node: torch.fx.Node) -> list[int] | None:
    rest = list(node.args[1:]) or [node.kwargs.get("dims")]
    dims = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else rest
    return [d % 5 for d in dims] if all(isinstance(d, int) for d in dims) and len(dims) == 5 else None


def _pieces(perm: torch.fx.Node) -> dict[torch.fx.Node, int] | None:
    """{node reading piece i along dim 0 of ``perm``: i}, or None if some user reads otherwise."""
    out: dict[torch.fx.Node, int] = {}
    for u in perm.users:
        name = _name(u)
        if name == "select" and _arg(u, 1, "dim") == 0 and isinstance(_arg(u, 2, "index"), int):
            out[u] = int(_arg(u, 2, "index"))  # type: ignore[arg-type]
        elif name == "getitem" and isinstance(u.args[1], int):
            out[u] = u.args[1]
        elif name == "unbind" and _arg(u, 1, "dim") in (0, None):
            for g in u.users:
                if _name(g) != "getitem" or not isinstance(g.args[1], int):
                    return None
                out[g] = g.args[1]
        else:
            return None
    return out


def split_head_permute(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """Rewrite every timm-style rank-5 q/k/v split in ``gm``; returns {replaced: replacement}."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    for perm in list(gm.graph.nodes):
        if perm.op not in ("call_function", "call_method") or _name(perm) != "permute":
            continue
        r5, dims = perm.args[0], _perm_dims(perm)
        if dims is None or dims[0] != 2 or sorted(dims) != [0, 1, 2, 3, 4] or \
                not isinstance(r5, torch.fx.Node) or _name(r5) not in ("view", "reshape", "_unsafe_view"):
            continue
        # The rank-4 permute of each piece: dims 0, 1, 3, 4 of the rank-5 view are the piece's
        # 0, 1, 2, 3 ([B, N, H, D]); timm's (2, 0, 3, 1, 4) gives (0, 2, 1, 3).
        perm4 = [{0: 0, 1: 1, 3: 2, 4: 3}[d] for d in dims[1:]]
        src = r5.args[0]
        ex5, ex = r5.meta.get(EXAMPLE), src.meta.get(EXAMPLE) if isinstance(src, torch.fx.Node) else None
        if not isinstance(ex5, torch.Tensor) or not isinstance(ex, torch.Tensor) or ex5.dim() != 5:
            continue
        b, t, n, h, d = ex5.shape
        if tuple(ex.shape) != (b, t, n * h * d):
            continue
        pieces = _pieces(perm)
        if not pieces:
            continue
        for node, i in pieces.items():
            i %= n
            lo, hi = i * h * d, (i + 1) * h * d
            with gm.graph.inserting_before(node):
                sl = gm.graph.call_function(aten.slice.Tensor, (src, -1, lo, hi))
                r4 = gm.graph.call_function(aten.reshape.default, (sl, [b, t, h, d]))
                p4 = gm.graph.call_function(aten.permute.default, (r4, perm4))
            part = ex[..., lo:hi]
            heads = part.reshape(b, t, h, d)
            for new, val in ((sl, part), (r4, heads), (p4, heads.permute(*perm4))):
                new.meta = {**node.meta, EXAMPLE: val.clone()}
            node.replace_all_uses_with(p4)
            replaced[node] = p4
    if replaced:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return replaced
