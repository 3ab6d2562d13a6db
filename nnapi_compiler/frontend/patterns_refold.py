"""fx rewrites that refold functional ops torch.export decomposes back into the one call their
converters lower (symbolic tracing keeps these calls whole, so both dialects then agree).

- ``F.lp_pool2d(x, p, k, s, ceil)`` exports as ``pow(x, p) -> avg_pool2d -> sign * relu(abs)
  -> mul(kh * kw) -> pow(1 / p)``. Its pieces would need a host SIGN, where LPPool2d is one
  L2_POOL_2D (p = 2) or AVERAGE_POOL_2D (p = 1) and a MUL.
- ``F.local_response_norm(x, size, alpha, beta, k)`` exports through a rank-5 view, a 3-D
  average pool over channels and ``pow(beta)``, none of which NNAPI holds at rank 4; refolded it
  is one LOCAL_RESPONSE_NORMALIZATION where that is exact.

Each rule checks every constant against what the functional form would have produced, and that
each intermediate feeds only the idiom, so a look-alike computation is never rewritten.
"""

from __future__ import annotations

import math

import torch
import torch.fx
import torch.nn.functional as F

from .fx_names import op_name

Node = torch.fx.Node


def _arg(n: Node, i: int, name: str, default: object = None) -> object:
    if len(n.args) > i:
        return n.args[i]
    return n.kwargs.get(name, default)


def _sole(n: object, name: str, users: int = 1) -> Node | None:
    """``n`` when it is a node calling ``name`` with exactly ``users`` users."""
    if isinstance(n, Node) and n.op == "call_function" and op_name(n) == name and len(n.users) == users:
        return n
    return None


def _scalar(n: Node, i: int) -> float | None:
    v = _arg(n, i, "other" if i == 1 else "exponent")
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _ints(v: object) -> list[int] | None:
    """A list or tuple of ints as a list; anything else (an int, None, a node) as None."""
    if isinstance(v, list | tuple) and all(isinstance(i, int) for i in v):
        return list(v)
    return None


def _replace(gm: torch.fx.GraphModule, last: Node, fn: object, args: tuple,
             done: dict[Node, Node]) -> None:
    with gm.graph.inserting_before(last):
        new = gm.graph.call_function(fn, args)
    new.meta = dict(last.meta)
    last.replace_all_uses_with(new)
    done[last] = new


def _lp_pool(gm: torch.fx.GraphModule, last: Node, done: dict[Node, Node]) -> None:
    """``last`` = pow(mul(mul(sign(a), relu(abs(a))), kh * kw), 1 / p), a = avg_pool2d(x^p)."""
    scaled = _arg(last, 0, "self")
    inv_p = _scalar(last, 1)
    scaled = _sole(scaled, "mul")
    if scaled is None or inv_p is None:
        return
    both, kprod = _sole(_arg(scaled, 0, "self"), "mul"), _scalar(scaled, 1)
    if both is None or kprod is None:
        return
    sign, relu = _sole(_arg(both, 0, "self"), "sign"), _sole(_arg(both, 1, "other"), "relu")
    ab = _sole(_arg(relu, 0, "self"), "abs") if relu is not None else None
    if sign is None or ab is None or _arg(sign, 0, "self") is not _arg(ab, 0, "input"):
        return
    pool = _sole(_arg(sign, 0, "self"), "avg_pool2d", users=2)
    powed = _sole(_arg(pool, 0, "self"), "pow") if pool is not None else None
    if pool is None or powed is None:
        return
    p = _scalar(powed, 1)
    kernel, stride = _ints(_arg(pool, 1, "kernel_size")), _ints(_arg(pool, 2, "stride", []))
    padding, ceil = _ints(_arg(pool, 3, "padding", [0, 0])), _arg(pool, 4, "ceil_mode", False)
    if (p is None or p == 0 or inv_p != 1.0 / p or kernel is None or stride is None
            or len(kernel) != 2 or kprod != kernel[0] * kernel[1] or padding is None or any(padding)
            or _arg(pool, 6, "divisor_override") is not None):
        return
    _replace(gm, last, F.lp_pool2d, (_arg(powed, 0, "self"), p, kernel, stride or None, bool(ceil)), done)


def _lrn(gm: torch.fx.GraphModule, last: Node, done: dict[Node, Node]) -> None:
    """``last`` = x / pow(add(mul(avg over [c - size//2, c + (size-1)//2] of x*x, alpha), k), beta)."""
    x, powed = _arg(last, 0, "self"), _sole(_arg(last, 1, "other"), "pow")
    add = _sole(_arg(powed, 0, "self"), "add") if powed is not None else None
    mul = _sole(_arg(add, 0, "self"), "mul") if add is not None else None
    if mul is None or add.kwargs.get("alpha", 1) != 1 or len(add.args) > 2:
        return
    beta, k, alpha = _scalar(powed, 1), _scalar(add, 1), _scalar(mul, 1)
    node = _arg(mul, 0, "self")
    if _sole(node, "view") is not None:  # rank >= 4: the view back to the input's shape
        node = _arg(node, 0, "self")
    sq = _sole(node, "squeeze")
    pool = _sole(_arg(sq, 0, "self"), "avg_pool3d") or _sole(_arg(sq, 0, "self"), "avg_pool2d") \
        if sq is not None and _arg(sq, 1, "dim") == 1 else None
    pad = _sole(_arg(pool, 0, "self"), "pad") or _sole(_arg(pool, 0, "self"), "constant_pad_nd") \
        if pool is not None else None
    if pad is None or None in (beta, k, alpha):
        return
    kernel, stride = _ints(_arg(pool, 1, "kernel_size")), _ints(_arg(pool, 2, "stride", []))
    if not kernel or stride is None:
        return
    size = kernel[0]
    spatial = len(kernel) - 1
    want_pad = [0, 0] * spatial + [size // 2, (size - 1) // 2]
    if op_name(pad) == "pad":
        zero = _arg(pad, 2, "mode", "constant") == "constant" and _arg(pad, 3, "value") in (None, 0)
    else:
        zero = _arg(pad, 2, "value", 0) == 0
    if (not zero or kernel[1:] != [1] * spatial or stride != [1] * len(kernel)
            or _ints(_arg(pad, 1, "pad")) != want_pad
            or _ints(_arg(pool, 3, "padding", [0] * len(kernel))) != [0] * len(kernel)
            or _arg(pool, 4, "ceil_mode", False) or not _arg(pool, 5, "count_include_pad", True)
            or _arg(pool, 6, "divisor_override") is not None):
        return
    split = _sole(_arg(pad, 0, "self"), "view") or _sole(_arg(pad, 0, "self"), "unsqueeze")
    square = _sole(_arg(split, 0, "self"), "mul") if split is not None else None
    if square is None or not (_arg(square, 0, "self") is x and _arg(square, 1, "other") is x):
        return
    if not all(math.isfinite(v) for v in (alpha, beta, k)):
        return
    _replace(gm, last, F.local_response_norm, (x, int(size), alpha, beta, k), done)


def refold(gm: torch.fx.GraphModule) -> dict[Node, Node]:
    """Refold every lp_pool2d / local_response_norm idiom; returns {replaced: replacement}."""
    done: dict[Node, Node] = {}
    for n in list(gm.graph.nodes):
        if n.op != "call_function" or n in done:
            continue
        if op_name(n) == "pow":
            _lp_pool(gm, n, done)
        elif op_name(n) == "div" and len(n.args) == 2 and not n.kwargs:
            _lrn(gm, n, done)
    if done:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return done
