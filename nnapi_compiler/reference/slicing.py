"""Indexing kernels: STRIDED_SLICE, SLICE, SPLIT, GATHER (any tensor type; values are copied).

STRIDED_SLICE resolves begin/end exactly as the reference's stridedSlicePrepare does (TF
ClampedIndex, masks, ceil((end-begin)/stride) elements, shrunk axes must select one element).
"""

from __future__ import annotations

import math

import torch

from ..ir.codes import OpCode
from .common import norm_axis, scalar_shape
from .registry import MOVE_TYPES, Bound, CheckArgs, In, KernelCall, bound, kernel


def _clamped_index(index: int, dim: int, positive_stride: bool) -> int:
    """TFLite ClampedIndex: where a (possibly negative) begin/end lands on an axis of ``dim``."""
    if positive_stride:
        if index >= dim:
            return dim
        return min(max(index, -dim), dim) % dim if dim else 0
    if index < -dim:
        return -1
    return min(max(index, -dim), dim - 1) % dim if dim else 0


def strided_slice_indices(
    shape: list[int],
    begin: list[int],
    end: list[int],
    strides: list[int],
    begin_mask: int,
    end_mask: int,
    shrink_mask: int,
) -> tuple[list[list[int]], list[int]]:
    """Per axis, the input indices taken; and the output shape (shrunk axes dropped)."""
    rank = len(shape)
    if not len(begin) == len(end) == len(strides) == rank:
        raise ValueError(f"begin/end/strides must each have {rank} values")
    picks: list[list[int]] = []
    out_shape: list[int] = []
    for i, dim in enumerate(shape):
        stride = strides[i]
        if stride == 0:
            raise ValueError("stride must be non-zero")
        pos = stride > 0
        b = (0 if pos else dim - 1) if begin_mask >> i & 1 else _clamped_index(begin[i], dim, pos)
        e = (dim if pos else -1) if end_mask >> i & 1 else _clamped_index(end[i], dim, pos)
        count = max(0, math.ceil((e - b) / stride))
        if shrink_mask >> i & 1:
            if count != 1:
                raise ValueError(f"shrunk axis {i} selects {count} elements, expected 1")
        else:
            out_shape.append(count)
        picks.append([b + k * stride for k in range(count)])
    return picks, out_shape


def strided_slice(
    x: torch.Tensor,
    begin: list[int],
    end: list[int],
    strides: list[int],
    begin_mask: int,
    end_mask: int,
    shrink_mask: int,
) -> torch.Tensor:
    picks, out_shape = strided_slice_indices(
        list(x.shape), begin, end, strides, begin_mask, end_mask, shrink_mask
    )
    y = x
    for axis, idx in enumerate(picks):
        y = y.index_select(axis, torch.tensor(idx, dtype=torch.long))
    return scalar_shape(y.reshape(out_shape))


@kernel(OpCode.STRIDED_SLICE, inputs=["TIIIiii"], types=MOVE_TYPES, keeps_quant=True)
def _strided_slice(call: KernelCall) -> Bound:
    masks = (call.int(4), call.int(5), call.int(6))
    return bound(strided_slice, In(0), call.ints(1), call.ints(2), call.ints(3), *masks)


def slice_(x: torch.Tensor, begin: list[int], size: list[int]) -> torch.Tensor:
    """SLICE: ``size`` -1 means to the end; begin + size must stay inside the tensor."""
    if not len(begin) == len(size) == x.dim():
        raise ValueError(f"begin/size must each have {x.dim()} values")
    y = x
    for axis, (b, s) in enumerate(zip(begin, size, strict=True)):
        dim = x.shape[axis]
        n = dim - b if s == -1 else s
        if b < 0 or n < 0 or b + n > dim:
            raise ValueError(f"slice begin {b} size {s} out of range for dim {dim}")
        y = y.narrow(axis, b, n)
    return y.contiguous()


@kernel(OpCode.SLICE, inputs=["TII"], types=MOVE_TYPES, rank=(1, 64), keeps_quant=True)
def _slice(call: KernelCall) -> Bound:
    return bound(slice_, In(0), call.ints(1), call.ints(2))


def _split_count_matches(args: CheckArgs) -> str | None:
    n = args.values[2]
    if n is not None and n != len(args.outputs):
        return f"num_splits {n} but {len(args.outputs)} outputs"
    return None


@kernel(
    OpCode.SPLIT,
    inputs=["Tii"],
    outputs=None,
    types=MOVE_TYPES,
    rank=(1, 64),
    check=_split_count_matches,
    keeps_quant=True,
)
def _split(call: KernelCall) -> Bound:
    x = call.tensor(0)
    axis, n = norm_axis(call.int(1), x.dim()), call.int(2)
    if n < 1 or x.shape[axis] % n != 0 or n != len(call.output_descs):
        raise ValueError(f"cannot split {x.shape[axis]} into {n} equal pieces")
    return Bound(split, (In(0), axis, x.shape[axis] // n), multi=True)


def split(x: torch.Tensor, axis: int, size: int) -> list[torch.Tensor]:
    return [p.contiguous() for p in torch.split(x, size, dim=axis)]


def gather(x: torch.Tensor, axis: int, indices: torch.Tensor) -> torch.Tensor:
    """out shape = x.shape[:axis] + indices.shape + x.shape[axis+1:]; indices in bounds."""
    axis = norm_axis(axis, x.dim())
    flat = indices.reshape(-1).long()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= x.shape[axis]):
        raise ValueError(f"gather index out of range [0, {x.shape[axis]})")
    y = x.index_select(axis, flat)
    return y.reshape(list(x.shape[:axis]) + list(indices.shape) + list(x.shape[axis + 1 :]))


@kernel(OpCode.GATHER, inputs=["TiI"], types=MOVE_TYPES, rank=(1, 64), keeps_quant=True)
def _gather(call: KernelCall) -> Bound:
    return bound(gather, In(0), call.int(1), In(2))
