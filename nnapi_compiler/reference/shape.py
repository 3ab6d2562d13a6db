"""Data-movement kernels: RESHAPE, TRANSPOSE, SQUEEZE, EXPAND_DIMS, CONCATENATION, PAD, PAD_V2,
TILE, CHANNEL_SHUFFLE, DEPTH_TO_SPACE, SPACE_TO_DEPTH.

They copy stored values without interpreting them, so they serve every tensor type at once
(float, INT32 and quantized: pass-through ops keep the input's scale and zero point). The two
exceptions follow the reference: PAD fills quantized tensors with the zero point, and
CONCATENATION requantizes an input whose scale/zero point differ from the output's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ir.codes import OpCode, OperandCode
from .common import check_rank, from_nhwc, norm_axis, round_half_away, scalar_shape, to_nhwc
from .registry import MOVE_TYPES, Bound, CheckArgs, In, KernelCall, Sig, bound, kernel

_QUANT_RANGES = {
    OperandCode.TENSOR_QUANT8_ASYMM: (0, 255),
    OperandCode.TENSOR_QUANT8_ASYMM_SIGNED: (-128, 127),
}


def reshape(x: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """RESHAPE; at most one -1 entry, inferred from the element count."""
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise ValueError(f"bad target shape {shape}")
    known = 1
    for d in shape:
        if d != -1:
            known *= d
    if -1 in shape:
        if known == 0:
            raise ValueError(f"cannot infer -1 in {shape} next to a zero dim")
        shape = [x.numel() // known if d == -1 else d for d in shape]
    return x.reshape(shape)


@kernel(OpCode.RESHAPE, inputs=["TI"], types=MOVE_TYPES, keeps_quant=True)
def _reshape(call: KernelCall) -> Bound:
    return bound(reshape, In(0), call.ints(1))


def transpose(x: torch.Tensor, perm: list[int]) -> torch.Tensor:
    return x.permute(perm).contiguous()


def reshape_to(x: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """Reshape to a shape resolved at bind time; a scalar result gets NNAPI's shape [1]."""
    return scalar_shape(x.reshape(shape))


@kernel(OpCode.TRANSPOSE, inputs=["TI"], types=MOVE_TYPES, optional=[1], keeps_quant=True)
def _transpose(call: KernelCall) -> Bound:
    x = call.tensor(0)
    perm_t = call.opt_tensor(1)
    perm = list(range(x.dim() - 1, -1, -1)) if perm_t is None else call.ints(1)
    if sorted(perm) != list(range(x.dim())):
        raise ValueError(f"perm {perm} is not a permutation of {x.dim()} dims")
    return bound(transpose, In(0), perm)


@kernel(OpCode.SQUEEZE, inputs=["TI"], types=MOVE_TYPES, optional=[1], keeps_quant=True)
def _squeeze(call: KernelCall) -> Bound:
    x = call.tensor(0)
    axes = [] if call.opt_tensor(1) is None else call.ints(1)
    if not axes:
        drop = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        drop = {norm_axis(a, x.dim()) for a in axes}
        if any(x.shape[a] != 1 for a in drop):
            raise ValueError(f"cannot squeeze axes {axes} of shape {list(x.shape)}")
    keep = [d for i, d in enumerate(x.shape) if i not in drop]
    return bound(reshape_to, In(0), keep)


@kernel(OpCode.EXPAND_DIMS, inputs=["Ti"], types=MOVE_TYPES, rank=(1, 64), keeps_quant=True)
def _expand_dims(call: KernelCall) -> Bound:
    return bound(unsqueeze, In(0), norm_axis(call.int(1), call.tensor(0).dim() + 1))


def unsqueeze(x: torch.Tensor, axis: int) -> torch.Tensor:
    return x.unsqueeze(axis)


def requantize_concat(
    q: torch.Tensor, src_scale: float, src_zp: int, dst_scale: float, dst_zp: int, lo: int, hi: int
) -> torch.Tensor:
    """TFLite ConcatenationWithScaling, in float32: round(q*s + bias) + zp_out, clamped."""
    if src_scale == dst_scale and src_zp == dst_zp:
        return q
    dst = torch.tensor(dst_scale, dtype=torch.float32)
    scale = torch.tensor(src_scale, dtype=torch.float32) * (1.0 / dst)
    bias = -src_zp * scale
    v = q.float() * scale + bias
    rounded = round_half_away(v)
    return torch.clamp(rounded + dst_zp, lo, hi).to(q.dtype)


def concatenation(
    parts: list[torch.Tensor],
    axis: int,
    src_scales: list[float],
    src_zps: list[int],
    dst: tuple[float, int, int, int],
) -> torch.Tensor:
    """torch.cat along ``axis``; with quantized operands (``src_scales`` not empty) each part is
    first requantized from its (scale, zero point) to ``dst`` = (scale, zero point, lo, hi)."""
    if len(src_scales) > 0:
        parts = [
            requantize_concat(p, src_scales[i], src_zps[i], dst[0], dst[1], dst[2], dst[3])
            for i, p in enumerate(parts)
        ]
    return torch.cat(parts, dim=axis)


def _concat_params(args: CheckArgs) -> str | None:
    """Before FL3, QUANT8_ASYMM inputs had to carry the output's scale and zero point."""
    out = args.outputs[0]
    if args.level >= 3 or out.code != OperandCode.TENSOR_QUANT8_ASYMM:
        return None
    if any((d.scale, d.zero_point) != (out.scale, out.zero_point) for d in args.inputs[:-1]):
        return "before feature level 3 every input must have the output's scale and zero point"
    return None


@kernel(OpCode.CONCATENATION, inputs=["T+i"], types=MOVE_TYPES, check=_concat_params)
def _concatenation(call: KernelCall) -> Bound:
    n = len(call.inputs) - 1
    axis = call.int(n)
    rank = call.tensor(0).dim()
    if not 0 <= axis < rank:
        raise ValueError(f"axis {axis} must be in [0, {rank})")
    out = call.output_descs[0]
    scales: list[float] = []
    zps: list[int] = []
    dst = (0.0, 0, 0, 0)
    if out.code in _QUANT_RANGES:
        scales = [call.input_descs[i].scale for i in range(n)]
        zps = [call.input_descs[i].zero_point for i in range(n)]
        dst = (out.scale, out.zero_point, *_QUANT_RANGES[OperandCode(out.code)])
    return bound(concatenation, [In(i) for i in range(n)], axis, scales, zps, dst)


def pad(x: torch.Tensor, paddings: list[int], value: float) -> torch.Tensor:
    """``paddings`` = [before_0, after_0, before_1, after_1, ...] (NNAPI's [rank, 2] order)."""
    if len(paddings) != 2 * x.dim() or any([p < 0 for p in paddings]):
        raise ValueError(f"paddings {paddings} do not fit rank {x.dim()} or are negative")
    torch_order: list[int] = []
    for axis in range(x.dim() - 1, -1, -1):
        torch_order += [paddings[2 * axis], paddings[2 * axis + 1]]
    return F.pad(x, torch_order, value=value)


@kernel(OpCode.PAD, inputs=["TI"], types=MOVE_TYPES, keeps_quant=True)
def _pad(call: KernelCall) -> Bound:
    desc = call.input_descs[0]
    value = float(desc.zero_point) if desc.code in _QUANT_RANGES else 0.0
    return bound(pad, In(0), call.ints(1), value)


@kernel(OpCode.PAD_V2, inputs=["TIv"], types=MOVE_TYPES, keeps_quant=True)
def _pad_v2(call: KernelCall) -> Bound:
    x = call.tensor(0)
    value = call.inputs[2]
    if not x.is_floating_point():
        info = torch.iinfo(x.dtype)
        if not info.min <= int(value) <= info.max:
            raise ValueError(f"pad value {value} does not fit {x.dtype}")
    return bound(pad, In(0), call.ints(1), float(value))


@kernel(OpCode.TILE, inputs=["TI"], types=MOVE_TYPES, rank=(1, 64), keeps_quant=True)
def _tile(call: KernelCall) -> Bound:
    x = call.tensor(0)
    multiples = call.ints(1)
    if len(multiples) != x.dim() or min(multiples) < 1:
        raise ValueError(f"multiples {multiples} do not fit shape {list(x.shape)}")
    return bound(tile, In(0), multiples)


def tile(x: torch.Tensor, multiples: list[int]) -> torch.Tensor:
    return x.repeat(multiples)


def channel_shuffle(x: torch.Tensor, groups: int, axis: int) -> torch.Tensor:
    """out[k*G + g] = in[g*(C/G) + k] along ``axis``."""
    axis = norm_axis(axis, x.dim())
    c = x.shape[axis]
    if groups < 1 or c % groups != 0:
        raise ValueError(f"{groups} groups do not divide {c} channels")
    shape = list(x.shape)
    split = shape[:axis] + [groups, c // groups] + shape[axis + 1 :]  # noqa: RUF005
    return x.reshape(split).transpose(axis, axis + 1).reshape(shape).contiguous()


@kernel(OpCode.CHANNEL_SHUFFLE, inputs=["Tii"], types=MOVE_TYPES, keeps_quant=True)
def _channel_shuffle(call: KernelCall) -> Bound:
    return bound(channel_shuffle, In(0), call.int(1), call.int(2))


def depth_to_space(x: torch.Tensor, bs: int, nchw: bool) -> torch.Tensor:
    """TF DEPTH_TO_SPACE: out[b, h*bs+i, w*bs+j, c] = in[b, h, w, (i*bs + j)*C_out + c]."""
    check_rank(x, 4, "input")
    v = to_nhwc(x, nchw)
    n, h, w, c = v.shape
    if bs < 1 or c % (bs * bs) != 0:
        raise ValueError(f"block size {bs} does not fit {c} channels")
    y = v.reshape(n, h, w, bs, bs, c // (bs * bs)).permute(0, 1, 3, 2, 4, 5)
    return from_nhwc(y.reshape(n, h * bs, w * bs, c // (bs * bs)), nchw)


def space_to_depth(x: torch.Tensor, bs: int, nchw: bool) -> torch.Tensor:
    """TF SPACE_TO_DEPTH: out[b, h, w, (i*bs + j)*C + c] = in[b, h*bs+i, w*bs+j, c]."""
    check_rank(x, 4, "input")
    v = to_nhwc(x, nchw)
    n, h, w, c = v.shape
    if bs < 1 or h % bs != 0 or w % bs != 0:
        raise ValueError(f"block size {bs} does not divide {h}x{w}")
    y = v.reshape(n, h // bs, bs, w // bs, bs, c).permute(0, 1, 3, 2, 4, 5)
    return from_nhwc(y.reshape(n, h // bs, w // bs, c * bs * bs), nchw)


_BLOCK_SIG = Sig("Ti", 1, (("b", 3),))


@kernel(OpCode.DEPTH_TO_SPACE, inputs=[_BLOCK_SIG], types=MOVE_TYPES, rank=(4, 4), keeps_quant=True)
def _depth_to_space(call: KernelCall) -> Bound:
    return bound(depth_to_space, In(0), call.int(1), call.flag(2))


@kernel(OpCode.SPACE_TO_DEPTH, inputs=[_BLOCK_SIG], types=MOVE_TYPES, rank=(4, 4), keeps_quant=True)
def _space_to_depth(call: KernelCall) -> Bound:
    return bound(space_to_depth, In(0), call.int(1), call.flag(2))
