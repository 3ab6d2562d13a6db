"""Rank-5/6 intermediate views rewritten to rank <= 4 by merging the dims no op separates.

NNAPI tensors have rank <= 4. Models still go through rank-5/6 views whose dims move together:
ResNeSt's radix split ``x.view(b, r, c // r, h, w).sum(1)`` never separates h from w, and Swin /
EfficientViT's window partition ``x.view(B, H//w, w, W//w, w, C).permute(0, 1, 3, 2, 4, 5)
.reshape(-1, w, w, C)`` keeps (B, H//w) and (w, C) together. Merging such adjacent dims gives the
same elements in the same order, at rank <= 4. (The channel-shuffle rewrite in ``patterns.py``
is the special case that NNAPI has one op for.)

A *cluster* is a connected set of fx nodes whose example outputs have rank > 4. For every
boundary between adjacent dims k, k+1 of every cluster value, the ops decide whether it must stay
(a *cut*) or is tied to a boundary of another value (union-find):

- view / reshape into the cluster from rank <= 4, and out of it: free (any grouping reshapes);
- elementwise ops: boundaries tie across operands aligned from the right; a boundary where an
  operand broadcasts one dim and not the other is cut;
- permute / transpose: output boundary j ties to input boundary p[j] when p[j+1] == p[j] + 1,
  otherwise both sides are cut;
- stack of rank-4 (or cluster) tensors along d: the boundaries around d are cut, the others
  tie to the stacked tensors' (a tensor from outside is reshaped to the merged form);
- sum / mean over dims: boundaries between reduced and kept dims are cut; kept neighbours tie;
- softmax / log_softmax over dim d: the boundaries around d are cut;
- linear (over the last dim): the last boundary is cut, the others tie;
- a reader leaving the cluster by selecting one index of dim d (``x[:, i]``, ``select``): the
  boundaries around d are cut.
Any other reader of a cluster value leaves the cluster as it is. When every cluster value has
rank <= 4 after merging, the cluster is rebuilt with merged shapes; operands from outside are
reshaped to the merged form, and results leaving through a reduction are reshaped back.
"""

from __future__ import annotations

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
from .fx_reads import index_of as _index_of
from .fx_reads import is_shape_read as _is_shape_read
from .fx_reads import keepdim as _keepdim
from .fx_reads import known
from .fx_reads import rank as _rank
from .fx_reads import selected_dim as _selected_dim
from .fx_reads import stack_dim as _stack_dim

_RESHAPES = {"view", "reshape", "_unsafe_view", "flatten"}
_ELEMENTWISE = {"add", "sub", "mul", "div", "truediv", "relu", "sigmoid", "neg", "exp", "tanh",
                "hardsigmoid", "hardswish", "silu", "contiguous", "clone"}
_REDUCE = {"sum", "mean"}
_PERMUTE = {"permute", "transpose"}
_SOFTMAX = {"softmax", "log_softmax", "_softmax", "_log_softmax"}
_LINEAR = {"linear"}


class _Boundaries:
    """Union-find over (value, k) boundaries, with a cut flag per class."""

    def __init__(self) -> None:
        self.parent: dict[tuple, tuple] = {}
        self.cut: set[tuple] = set()

    def find(self, a: tuple) -> tuple:
        while self.parent.setdefault(a, a) != a:
            a = self.parent[a]
        return a

    def tie(self, a: tuple, b: tuple) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb
            if ra in self.cut:
                self.cut.add(rb)

    def force(self, a: tuple) -> None:
        self.cut.add(self.find(a))

    def is_cut(self, a: tuple) -> bool:
        return self.find(a) in self.cut


def _groups(shape: tuple[int, ...], node: torch.fx.Node, b: _Boundaries) -> list[list[int]]:
    groups = [[0]]
    for k in range(len(shape) - 1):
        if b.is_cut((node, k)):
            groups.append([k + 1])
        else:
            groups[-1].append(k + 1)
    return groups


def _merged(shape: tuple[int, ...], groups: list[list[int]]) -> list[int]:
    out = []
    for g in groups:
        n = 1
        for d in g:
            n *= shape[d]
        out.append(n)
    return out


def _cluster(seed: torch.fx.Node) -> set[torch.fx.Node] | None:
    """Rank>4 nodes connected to ``seed`` through producers and readers."""
    seen, todo = set(), [seed]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for m in [*n.users, *(a for a in n.all_input_nodes)]:
            if _rank(m) > 4 and m not in seen:
                todo.append(m)
    return seen


def _constrain(cluster: set[torch.fx.Node], b: _Boundaries) -> bool:
    """Record every op's constraints; False when some op cannot be handled."""
    for n in cluster:
        r = _rank(n)
        name = _name(n)
        if n.op not in ("call_function", "call_method"):
            return False
        src = n.args[0] if n.args else None
        if name == "stack":
            d = _stack_dim(n)
            if d is None:
                return False
            for k in (d - 1, d):  # the new dim stays a dim of its own
                if 0 <= k < r - 1:
                    b.force((n, k))
            for a in src:
                if isinstance(a, torch.fx.Node) and a in cluster:  # stacked rank-5 pieces
                    for k in range(r - 1):
                        if k < d - 1:
                            b.tie((n, k), (a, k))
                        elif k > d:
                            b.tie((n, k), (a, k - 1))
            continue
        if name in _RESHAPES:
            if not isinstance(src, torch.fx.Node) or _rank(src) > 4:
                return False  # rank>4 -> rank>4 reshapes are not handled
            continue
        if name in _ELEMENTWISE or n.target in (operator.add, operator.mul, operator.sub,
                                                 operator.truediv):
            out = tuple(_ex(n).shape)
            for a in [*n.args, *n.kwargs.values()]:
                e = _ex(a)
                if not isinstance(e, torch.Tensor):
                    continue
                shape = (1,) * (r - e.dim()) + tuple(e.shape)
                full = [shape[k] == out[k] for k in range(r)]
                prev = None  # a group must broadcast as a whole (size-1 dims go either way)
                for k in range(r):
                    if out[k] == 1:
                        continue
                    if prev is not None and full[prev] != full[k]:
                        b.force((n, k - 1))
                    prev = k
                for k in range(r - 1):
                    if isinstance(a, torch.fx.Node) and a in cluster:
                        off = r - e.dim()
                        if k - off >= 0:
                            b.tie((n, k), (a, k - off))
                        else:
                            b.force((n, k))
            continue
        if not isinstance(src, torch.fx.Node) or src not in cluster:
            return False
        rin = _rank(src)
        if name in _PERMUTE:
            p = _dims(n, rin)
            if p is None:
                return False
            pos = {d: i for i, d in enumerate(p)}
            for j in range(r - 1):
                if p[j + 1] == p[j] + 1:
                    b.tie((n, j), (src, p[j]))
                else:
                    b.force((n, j))
            for k in range(rin - 1):
                if pos[k + 1] != pos[k] + 1:
                    b.force((src, k))
            continue
        if name in _LINEAR:
            if any(isinstance(a, torch.fx.Node) and a in cluster for a in [*n.args[1:], *n.kwargs.values()]):
                return False
            for k in range(rin - 1):
                b.tie((n, k), (src, k))
            b.force((src, rin - 2))
            continue
        if name in _REDUCE or name in _SOFTMAX:
            dims = _dims(n, rin)
            if dims is None:
                return False
            for k in range(rin - 1):
                if (k in dims) != (k + 1 in dims) or (name in _SOFTMAX and k in dims):
                    b.force((src, k))
            if name in _SOFTMAX or _keepdim(n):
                for k in range(rin - 1):
                    b.tie((n, k), (src, k))
                continue
            kept = [k for k in range(rin) if k not in dims]
            for j in range(len(kept) - 1):
                if kept[j + 1] == kept[j] + 1 and r > 4:
                    b.tie((n, j), (src, kept[j]))
                elif r > 4:
                    b.force((n, j))
            continue
        return False
    return True


def _readers_ok(cluster: set[torch.fx.Node], b: _Boundaries) -> bool:
    """Every reader outside the cluster is a reshape or a reduction we rebuild (whose reduced
    dims must then be whole groups)."""
    for n in cluster:
        for u in n.users:
            if u in cluster:
                continue
            name = _name(u)
            if u.op == "output":
                return False
            if _is_shape_read(u):
                continue
            if name in _RESHAPES and u.args and u.args[0] is n:
                continue
            picked = _selected_dim(u, n)
            if picked is not None:
                for k in (picked - 1, picked):
                    if 0 <= k < _rank(n) - 1:
                        b.force((n, k))
                continue
            dims = _dims(u, _rank(n)) if name in _REDUCE and u.args and u.args[0] is n else None
            if dims is None:
                return False
            for k in range(_rank(n) - 1):
                if (k in dims) != (k + 1 in dims):
                    b.force((n, k))
    return True


def reduce_rank(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, torch.fx.Node]:
    """Rewrite every rank>4 cluster that can be merged; returns {replaced node: replacement}."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    done: set[torch.fx.Node] = set()
    changed = False
    for seed in list(gm.graph.nodes):
        if seed in done or _rank(seed) <= 4 or seed.op not in ("call_function", "call_method"):
            continue
        cluster = _cluster(seed)
        done |= cluster
        b = _Boundaries()
        if not _constrain(cluster, b) or not _readers_ok(cluster, b):
            continue
        groups = {n: _groups(tuple(_ex(n).shape), n, b) for n in cluster}
        if any(len(g) > 4 for g in groups.values()):
            continue
        changed = True
        try:
            replaced.update(_rebuild(gm, cluster, groups))
        except Exception:  # an op we misjudged: lowering then sees the cluster as it was
            # New nodes are only read once complete, and each reader is moved over as a whole,
            # so what was built is either unread (removed below) or already correct.
            continue
    if changed:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return replaced


def _rebuild(gm: torch.fx.GraphModule, cluster: set[torch.fx.Node],
             groups: dict[torch.fx.Node, list[list[int]]]) -> dict[torch.fx.Node, torch.fx.Node]:
    g = gm.graph
    new: dict[torch.fx.Node, torch.fx.Node] = {}
    order = [n for n in g.nodes if n in cluster]

    def make(before: torch.fx.Node, target: Callable, args: tuple, kwargs: dict | None = None
             ) -> torch.fx.Node:
        with g.inserting_before(before):
            m = g.call_function(target, args, kwargs or {})
        m.meta = {k: v for k, v in before.meta.items() if k != EXAMPLE}
        m.meta[EXAMPLE] = _evaluate(m)
        return m

    def group_of(n: torch.fx.Node) -> dict[int, int]:
        return {d: i for i, grp in enumerate(groups[n]) for d in grp}

    for n in order:
        shape = tuple(_ex(n).shape)
        merged = _merged(shape, groups[n])
        name = _name(n)
        src = n.args[0]
        if name in _RESHAPES:
            new[n] = make(n, torch.reshape, (src, merged))
        elif name == "stack":  # each piece in the merged form of the dims around the new one
            d = _stack_dim(n)
            assert d is not None
            gd = group_of(n)[d]
            piece = [m for i, m in enumerate(merged) if i != gd]
            parts = [new[a] if a in new else make(n, torch.reshape, (a, piece)) for a in src]
            new[n] = make(n, torch.stack, (parts, gd))
        elif name in _PERMUTE:
            gi = group_of(src)
            p = _dims(n, _rank(src))
            assert p is not None
            perm = list(dict.fromkeys(gi[d] for d in p))
            new[n] = make(n, torch.permute, (new[src], perm))
        elif name in _LINEAR:
            new[n] = make(n, torch.nn.functional.linear, (new[src], *n.args[1:]), dict(n.kwargs))
        elif name in _REDUCE or name in _SOFTMAX:
            gi = group_of(src)
            dims = sorted({gi[d] for d in _dims(n, _rank(src)) or []})
            if name in _SOFTMAX:
                fn = torch.log_softmax if "log" in name else torch.softmax
                new[n] = make(n, fn, (new[src], dims[0]))
            else:
                fn = torch.sum if name == "sum" else torch.mean
                new[n] = make(n, fn, (new[src], dims, _keepdim(n)))
        else:  # elementwise: same op, operands in merged form
            def operand(a: Any, out: tuple = shape, grp: list = groups[n], at: torch.fx.Node = n
                        ) -> Any:
                if isinstance(a, torch.fx.Node) and a in new:
                    return new[a]
                e = _ex(a)
                if not isinstance(e, torch.Tensor) or e.dim() == 0:
                    return a
                full = (1,) * (len(out) - e.dim()) + tuple(e.shape)
                return make(at, torch.reshape, (a, _merged(full, grp)))
            args = tuple(operand(a) for a in n.args)
            kwargs = {k: operand(v) for k, v in n.kwargs.items()}
            with g.inserting_before(n):
                m = g.create_node(n.op, n.target, args, kwargs)
            m.meta = {k: v for k, v in n.meta.items() if k != EXAMPLE}
            m.meta[EXAMPLE] = _evaluate(m)
            new[n] = m
    out: dict[torch.fx.Node, torch.fx.Node] = {}
    for n in order:
        for u in list(n.users):
            if u in cluster:
                continue
            if _is_shape_read(u):  # (an assert on the shape): the value it read, as a constant
                u.op, u.target, u.args, u.kwargs = "call_function", known, (_ex(u),), {}
                continue
            if _name(u) in _RESHAPES:
                u.replace_input_with(n, new[n])
                continue
            gi = group_of(n)
            picked = _selected_dim(u, n)
            if picked is not None:  # one index of a dim that is a group of its own
                r = make(u, torch.select, (new[n], gi[picked], _index_of(u)))
                back = make(u, torch.reshape, (r, list(_ex(u).shape)))
                u.replace_all_uses_with(back)
                out[u] = back
                continue
            # A reduction leaving the cluster: rebuild it merged, then reshape back.
            dims = sorted({gi[d] for d in _dims(u, _rank(n)) or []})
            fn = torch.sum if _name(u) == "sum" else torch.mean
            r = make(u, fn, (new[n], dims, _keepdim(u)))
            back = make(u, torch.reshape, (r, list(_ex(u).shape)))
            u.replace_all_uses_with(back)
            out[u] = back
    return out
