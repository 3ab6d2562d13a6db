"""Repetition: ``Tensor.repeat`` / ``torch.tile`` (TILE) and ``repeat_interleave`` with constant
repeats (TILE along a size-1 dim, else a constant-index GATHER), all FL3 and exact (data movement).

``repeat`` with more sizes than the tensor has dims views it with leading 1s first (a RESHAPE);
``tile`` with fewer dims pads its sizes with leading 1s, as PyTorch does.
"""

from __future__ import annotations

from typing import Any

import torch

from ...ir import ops
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import axis, dims_arg, value
from .activation import _aten
from .shape import reshape_to


def tile_value(ctx: Ctx, x: Value, multiples: list[int]) -> Value:
    """``x.repeat(multiples)``: leading 1s added to ``x`` when ``multiples`` is longer."""
    if len(multiples) < x.type.rank:
        raise Refuse("repeat needs at least as many sizes as the tensor has dims")
    if any(m < 0 for m in multiples):
        raise Refuse(f"negative repeat sizes {multiples}")
    if len(multiples) > 4:
        raise Refuse(f"repeat to rank {len(multiples)} (> 4) has no NNAPI form")
    if 0 in multiples:
        raise Refuse("repeat with a zero size makes an empty tensor")
    shape = (1,) * (len(multiples) - x.type.rank) + tuple(x.type.shape)
    x = reshape_to(ctx, x, shape)
    if all(m == 1 for m in multiples):
        return x
    return ctx.emit(ops.Tile, x=x, multiples=tuple(multiples))


@converter("repeat", *_aten("repeat.default"), sig=lambda input, *sizes: None, typed=True)
def repeat(ctx: Ctx, a: dict) -> Any:
    return tile_value(ctx, value(a["input"]), dims_arg(a["sizes"]))


@converter(torch.tile, "tile", *_aten("tile.default"), sig=lambda input, *dims: None, typed=True)
def tile(ctx: Ctx, a: dict) -> Any:
    x = value(a["input"])
    dims = dims_arg(a["dims"])
    return tile_value(ctx, x, [1] * (x.type.rank - len(dims)) + dims)


def _repeats(r: Any, n: int) -> list[int]:
    """Per-element repeat counts from an int or a constant 1-D (or one-element) tensor."""
    if isinstance(r, Value):
        raise Refuse("repeat_interleave with repeats computed at run time has no static shape")
    if isinstance(r, torch.Tensor):
        if r.is_floating_point() or r.dim() > 1:
            raise Refuse("repeat_interleave repeats must be an int or a 1-D integer tensor")
        counts = [int(v) for v in r.reshape(-1).tolist()]
        counts = counts * n if len(counts) == 1 else counts
    elif isinstance(r, int) and not isinstance(r, bool):
        counts = [r] * n
    else:
        raise Refuse(f"repeat_interleave repeats {r!r} is not an int or a tensor")
    if len(counts) != n or any(c < 0 for c in counts):
        raise Refuse(f"repeat_interleave repeats {counts} do not fit a dim of size {n}")
    return counts


@converter(torch.repeat_interleave, "repeat_interleave",
           *_aten("repeat_interleave.self_int", "repeat_interleave.self_Tensor"),
           sig=lambda input, repeats=None, dim=None, output_size=None: None, typed=True)
def repeat_interleave(ctx: Ctx, a: dict) -> Any:
    """Each element repeated ``repeats`` times in place along ``dim`` (flattened if None)."""
    if a["repeats"] is None:
        raise Refuse("repeat_interleave(repeats) alone computes indices, not data")
    x = value(a["input"])
    if a["dim"] is None:
        x = reshape_to(ctx, x, (x.type.numel,))
        d = 0
    else:
        d = axis(a["dim"], x.type.rank)
    n = x.type.shape[d]
    counts = _repeats(a["repeats"], n)
    if sum(counts) == 0:
        raise Refuse("repeat_interleave to an empty tensor")
    if n == 1:
        multiples = [1] * x.type.rank
        multiples[d] = counts[0]
        return tile_value(ctx, x, multiples)
    if all(c == 1 for c in counts):
        return x
    indices = [i for i, c in enumerate(counts) for _ in range(c)]
    return ctx.emit(ops.Gather, x=x, axis=d, indices=tuple(indices))
