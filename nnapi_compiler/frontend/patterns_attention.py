"""fx rewrite of nn.MultiheadAttention's packed-projection split, as torch.export spells it.

``F.multi_head_attention_forward`` splits the packed ``[L, B, 3E]`` in-projection with
``proj.unflatten(-1, (3, E)).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous()`` and then
``[0]``, ``[1]``, ``[2]``: a detour through a rank-5 tensor NNAPI cannot hold. Piece ``i`` is
exactly ``proj[..., i*E:(i+1)*E]``, one STRIDED_SLICE, so each select becomes that slice.
"""

from __future__ import annotations

import torch
import torch.fx

from .capture import EXAMPLE

aten = torch.ops.aten


def _name(node: torch.fx.Node) -> str:
    t = node.target
    if node.op == "call_method":
        return str(t)
    if isinstance(t, torch._ops.OpOverload):
        return t._schema.name.split("::")[-1]
    return getattr(t, "__name__", "")


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
