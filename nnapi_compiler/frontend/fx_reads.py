"""What an fx node of a captured graph reads and means, from its example values: the rank and
example of a value, the dims a permute / reduction / softmax names, the dim a ``stack`` adds or
a ``select`` picks, whether a node only reads a shape, and a node evaluated on its inputs'
examples. Shared by the rank rewrites (``rank_reduce``, ``rank_split``), which decide from these
how a rank-5/6 idiom can be rebuilt at rank <= 4."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx

from .capture import EXAMPLE
from .fx_names import op_name as _name


def ex(a: Any) -> Any:
    return a.meta.get(EXAMPLE) if isinstance(a, torch.fx.Node) else a


def rank(a: Any) -> int:
    e = ex(a)
    return e.dim() if isinstance(e, torch.Tensor) else -1


def dims(node: torch.fx.Node, ndim: int) -> list[int] | None:
    """The dims argument of a reduction / softmax / permute / transpose, normalized."""
    name = _name(node)
    rest = list(node.args[1:])
    if name == "transpose":
        d = rest[:2] or [node.kwargs.get("dim0"), node.kwargs.get("dim1")]
        if not all(isinstance(x, int) for x in d):
            return None
        p = list(range(ndim))
        a, b = d[0] % ndim, d[1] % ndim
        p[a], p[b] = p[b], p[a]
        return p
    if name == "permute":
        d = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else (
            rest or node.kwargs.get("dims"))
    else:
        d = rest[0] if rest else node.kwargs.get("dim")
    if isinstance(d, int):
        d = [d]
    if not isinstance(d, list | tuple) or not all(isinstance(x, int) for x in d):
        return None
    return [x % ndim for x in d]


def stack_dim(node: torch.fx.Node) -> int | None:
    """The normalized ``dim`` of a ``stack`` whose tensors are a list of nodes."""
    tensors = node.args[0] if node.args else None
    d = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    if not isinstance(tensors, list | tuple) or not isinstance(d, int):
        return None
    if not all(isinstance(a, torch.fx.Node) and rank(a) == rank(node) - 1 for a in tensors):
        return None
    return d % rank(node)


def keepdim(node: torch.fx.Node) -> bool:
    if len(node.args) > 2 and isinstance(node.args[2], bool):
        return node.args[2]
    return bool(node.kwargs.get("keepdim", False))


_SHAPE_ATTRS = {"shape", "ndim", "dtype", "device"}
_SHAPE_METHODS = {"size", "dim", "numel"}


def is_shape_read(u: torch.fx.Node) -> bool:
    """``x.shape``, ``x.ndim``, ``x.size()``...: reads of what the example already knows."""
    if u.op == "call_function" and u.target is getattr:
        return len(u.args) > 1 and u.args[1] in _SHAPE_ATTRS
    return u.op == "call_method" and u.target in _SHAPE_METHODS


def known(value: Any) -> Any:
    """The value a shape read of a rewritten node gave (that node is gone; its shape is fixed)."""
    return value


def selected_dim(u: torch.fx.Node, n: torch.fx.Node) -> int | None:
    """The dim ``u`` picks one index of, when ``u`` is ``n[:, ..., i]`` or ``n.select(d, i)``."""
    if not u.args or u.args[0] is not n:
        return None
    name, r = _name(u), rank(n)
    if name == "select" and len(u.args) == 3 and all(isinstance(a, int) for a in u.args[1:]):
        return u.args[1] % r  # type: ignore[operator]
    if name != "getitem" or not isinstance(u.args[1], tuple):
        return None
    idx = u.args[1]
    full = slice(None)
    ints = [k for k, i in enumerate(idx) if isinstance(i, int) and not isinstance(i, bool)]
    if len(ints) != 1 or len(idx) > r or any(i != full for k, i in enumerate(idx) if k != ints[0]):
        return None
    return ints[0]


def index_of(u: torch.fx.Node) -> int:
    """The index a ``selected_dim`` reader picks."""
    if _name(u) == "select":
        return int(u.args[2])  # type: ignore[arg-type]
    return next(i for i in u.args[1] if isinstance(i, int))  # type: ignore[union-attr]


def evaluate(node: torch.fx.Node) -> Any:
    args = torch.fx.node.map_arg(node.args, ex)
    kwargs = torch.fx.node.map_arg(node.kwargs, ex)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    return node.target(*args, **kwargs)  # type: ignore[operator]
