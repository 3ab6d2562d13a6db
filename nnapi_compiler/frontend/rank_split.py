"""Rank-5/6 window idioms that merging cannot reduce, rewritten as rank <= 4 data movement.

``rank_reduce`` merges the dims that no op separates. Blocked local attention (timm's HaloNet)
separates them for real: its block partition ``x.view(B, C, nh, b, nw, b).permute(0, 1, 3, 5,
2, 4)`` interleaves two pairs, so even merged it is a rank-5 permute. These fx rewrites run
before ``reduce_rank`` and turn such idioms into rank <= 4 ops with the same elements:

- **permute of rank > 4** read from a reshape of a rank <= 4 tensor: size-1 dims dropped,
  adjacent dims that stay adjacent merged, and what is left done as a sequence of rank-4
  transposes, each moving one dim to its place (``[A, B, d, C] -> [A, d, B, C]``). A reshape
  reading the result reads the last transpose directly; other readers get a reshape back to
  the permuted rank-5/6 shape (``reduce_rank`` may then merge them).
- **unfold** (overlapping windows, ``x.unfold(d, size, step)``, chained over dims of a rank-4
  tensor): one index_select (GATHER) per unfolded dim lays the windows out side by side, then a
  reshape and a permute move the window dims last, as the permute rule above.
- **expand then permute** becomes permute then expand, and an expand whose only readers are
  broadcasting arithmetic that produces the same shape without it is dropped (HaloNet's
  relative-position logits, two broadcast rank-5 terms summed).
All are pure data movement (or broadcasting), so the results are exact.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx

from .capture import EXAMPLE
from .fx_names import op_name as _name
from .fx_reads import dims as _dims
from .fx_reads import evaluate as _evaluate
from .fx_reads import ex as _ex
from .fx_reads import rank as _rank
from .permute_split import steps


class _NoChain(Exception):
    """A permute of more than six dims that merging does not reduce: left as written."""


_RESHAPES = {"view", "reshape", "_unsafe_view", "flatten"}
_TO_SHAPE = {"view", "reshape", "_unsafe_view"}  # readers whose result does not depend on rank
_COPIES = {"contiguous", "clone"}
_BROADCASTING = {"add", "sub", "mul", "div"}
_OPERATORS = (operator.add, operator.sub, operator.mul, operator.truediv)


def _make(gm: torch.fx.GraphModule, before: torch.fx.Node, target: Callable | str, args: tuple
          ) -> torch.fx.Node:
    with gm.graph.inserting_before(before):
        if isinstance(target, str):
            m = gm.graph.call_method(target, args, {})
        else:
            m = gm.graph.call_function(target, args, {})
    m.meta = {k: v for k, v in before.meta.items() if k != EXAMPLE}
    m.meta[EXAMPLE] = _evaluate(m)
    return m


def _transposed(gm: torch.fx.GraphModule, at: torch.fx.Node, src: torch.fx.Node,
                sizes: list[int], perm: list[int]) -> torch.fx.Node:
    """``src`` (any shape with ``sizes``' elements) permuted by ``perm`` as rank <= 4 ops; the
    result has the permuted elements in order, in some rank <= 4 shape."""
    chain = steps(sizes, perm)
    if chain is None:  # rank > 6: no planned chain
        raise _NoChain
    x = src
    for shape, p in chain:
        x = _make(gm, at, torch.reshape, (x, shape))
        x = _make(gm, at, torch.permute, (x, p))
    return x


def _through_copies(n: torch.fx.Node) -> list[torch.fx.Node]:
    """``n``'s readers, looking through ``.contiguous()`` / ``.clone()`` with one reader."""
    out = []
    for u in n.users:
        if _name(u) in _COPIES and u.op != "output":
            out.extend(_through_copies(u))
        else:
            out.append(u)
    return out


def _replace_permute(gm: torch.fx.GraphModule, node: torch.fx.Node, src: torch.fx.Node,
                     sizes: list[int], perm: list[int]) -> torch.fx.Node:
    """Replace the rank>4 ``node`` (``src`` viewed as ``sizes`` permuted by ``perm``)."""
    t = _transposed(gm, node, src, sizes, perm)
    if t is src:
        t = _make(gm, node, torch.reshape, (src, [math.prod(sizes)]))
    for u in _through_copies(node):
        if _name(u) in _TO_SHAPE and u.op != "output" and _rank(u) <= 4:
            u.replace_input_with(u.args[0], t)
    if node.users:  # other readers keep the rank-5/6 view (reduce_rank may merge it)
        back = _make(gm, node, torch.reshape, (t, list(_ex(node).shape)))
        node.replace_all_uses_with(back)
        return back
    return t


def split_permutes(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """Rank>4 permutes of reshapes of rank<=4 tensors, as rank-4 transposes."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    for n in list(gm.graph.nodes):
        if n.op not in ("call_function", "call_method") or _name(n) not in ("permute", "transpose"):
            continue
        src = n.args[0] if n.args else None
        if _rank(n) <= 4 or not isinstance(src, torch.fx.Node) or _name(src) not in _RESHAPES:
            continue
        base = src.args[0] if src.args else None
        if not isinstance(base, torch.fx.Node) or not 0 <= _rank(base) <= 4 or len(src.users) != 1:
            continue
        p = _dims(n, _rank(src))
        if p is None or any(u.op == "output" for u in _through_copies(n)):
            continue  # a rank>4 model output stays rank>4 whatever we do: leave it as written
        try:
            replaced[n] = _replace_permute(gm, n, base, list(_ex(src).shape), p)
        except _NoChain:
            continue
    return _finish(gm, replaced)


def _unfold_chain(n: torch.fx.Node) -> tuple[torch.fx.Node, list[tuple[int, int, int]]] | None:
    """(rank-4 source, [(dim, size, step), ...] outermost first) of a chain of unfolds."""
    steps = []
    while n.op in ("call_function", "call_method") and _name(n) == "unfold":
        args = list(n.args[1:]) + [n.kwargs.get(k) for k in ("dimension", "size", "step")
                                   if k in n.kwargs]
        if len(args) != 3 or not all(isinstance(a, int) for a in args):
            return None
        steps.append((args[0], args[1], args[2]))
        n = n.args[0]
        if not isinstance(n, torch.fx.Node):
            return None
    steps.reverse()
    if not steps or _rank(n) > 4 or _rank(n) < 1:
        return None
    return n, steps


def split_unfolds(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """The last unfold of every chain on a rank<=4 tensor, as GATHERs and rank-4 transposes."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    for n in list(gm.graph.nodes):
        if n.op not in ("call_function", "call_method") or _name(n) != "unfold":
            continue
        if any(_name(u) == "unfold" and u.args[0] is n for u in n.users):
            continue  # not the last of its chain
        chain = _unfold_chain(n)
        if chain is None:
            continue
        base, steps = chain
        rank = _rank(base)
        shape = list(_ex(base).shape)
        dims = [d % (rank + k) for k, (d, _, _) in enumerate(steps)]  # each unfold adds a dim
        if len(set(dims)) != len(dims) or max(dims) >= rank:
            continue  # unfolding a window dim again: not this idiom
        x = base
        split: dict[int, tuple[int, int]] = {}
        for d, (_, size, step) in zip(dims, steps, strict=True):
            count = (shape[d] - size) // step + 1
            idx = torch.tensor([w * step + k for w in range(count) for k in range(size)])
            name = f"_unfold_index_{d}"
            while hasattr(gm, name):
                name += "_"
            gm.register_buffer(name, idx)
            with gm.graph.inserting_before(n):
                c = gm.graph.get_attr(name)
            c.meta = {EXAMPLE: idx}
            x = _make(gm, n, torch.index_select, (x, d, c))
            split[d] = (count, size)
        sizes, windows, order = [], [], []
        for d in range(rank):  # [.., count, size, ..]: windows side by side, then each dim last
            if d in split:
                order.append(len(sizes))
                windows.append(len(sizes) + 1)
                sizes += list(split[d])
            else:
                order.append(len(sizes))
                sizes.append(shape[d])
        win_of = {d: windows[k] for k, d in enumerate(sorted(split))}
        perm = order + [win_of[d] for d in dims]
        try:
            replaced[n] = _replace_permute(gm, n, x, sizes, perm)
        except _NoChain:  # the GATHERs just made are dead: _finish removes them
            continue
    return _finish(gm, replaced)


def commute_expands(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """permute(expand(x)) -> expand(permute(x)), and a rank>4 expand read only by broadcasting
    arithmetic dropped where the arithmetic gives the same shape without it."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    for n in list(gm.graph.nodes):
        if n.op not in ("call_function", "call_method") or _name(n) != "permute" or _rank(n) <= 4:
            continue
        e = n.args[0]
        if not isinstance(e, torch.fx.Node) or _name(e) != "expand" or len(e.users) != 1:
            continue
        x = e.args[0]
        p = _dims(n, _rank(e))
        if not isinstance(x, torch.fx.Node) or p is None or _rank(x) != _rank(e):
            continue
        q = _make(gm, n, torch.permute, (x, p))
        big = _make(gm, n, "expand", (q, list(_ex(n).shape)))
        n.replace_all_uses_with(big)
        replaced[n] = big
    for n in list(gm.graph.nodes):
        if n.op not in ("call_function", "call_method") or _name(n) != "expand" or _rank(n) <= 4:
            continue
        x = n.args[0]
        if not isinstance(x, torch.fx.Node) or not n.users or not all(_drops(u, n, x) for u in n.users):
            continue
        n.replace_all_uses_with(x)
        replaced[n] = x
    return _finish(gm, replaced)


def _drops(u: torch.fx.Node, e: torch.fx.Node, x: torch.fx.Node) -> bool:
    """Does ``u`` compute the same thing with ``x`` in place of its broadcast ``e``?"""
    if u.op == "output" or not (_name(u) in _BROADCASTING or u.target in _OPERATORS):
        return False
    shapes = []
    for a in [*u.args, *u.kwargs.values()]:
        v = _ex(x if a is e else a)
        if isinstance(v, torch.Tensor):
            shapes.append(tuple(v.shape))
    try:
        return tuple(torch.broadcast_shapes(*shapes)) == tuple(_ex(u).shape)
    except RuntimeError:
        return False


def _finish(gm: torch.fx.GraphModule, replaced: dict[torch.fx.Node, Any]
            ) -> dict[torch.fx.Node, torch.fx.Node]:
    if replaced:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return replaced
