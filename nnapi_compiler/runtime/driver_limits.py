"""The virtual driver's size limits: what it refuses before allocating (documented in docs/fuzzing.md).

A model is a few kilobytes of numbers that can ask for terabytes: a padding, a resize size, a
tile multiple or a broadcast picked from a damaged file. A real driver infers every shape before
it allocates and fails with OUT_OF_MEMORY; so does this one. At ``Model_finish`` each operation
whose working size follows from its parameters is bounded by ``MAX_WORK_ELEMENTS``: the padded
input of windowed ops, the output of RESIZE, PAD, TILE, TRANSPOSE_CONV_2D and of broadcasting
binary ops. Unknown dims count as 1 (the compiler always declares them). The bounds are
conservative upper bounds, never estimates that could undercount.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from ..ir.codes import OpCode, OperandCode, ResultCode
from ..ir.flat import FlatModel, OperandDesc, OperationDesc
from .driver_checks import fail

#: Elements any single operation may produce or pad to (kernels may compute in 64-bit: 2 GiB).
MAX_WORK_ELEMENTS = 1 << 28
#: Bytes of constant values one model may hold in total (each is copied once by the driver).
MAX_VALUE_BYTES = 1 << 31

#: op -> (pads l, r, t, b when explicit; stride w, h; dilation w, h or None, when implicit)
_CONV_AT = {OpCode.CONV_2D: (3, 4, 8), OpCode.DEPTHWISE_CONV_2D: (3, 4, 9),
            OpCode.GROUPED_CONV_2D: (3, 4, None)}
_EXPLICIT_FROM = {OpCode.CONV_2D: 10, OpCode.DEPTHWISE_CONV_2D: 11, OpCode.GROUPED_CONV_2D: 12,
                  OpCode.AVERAGE_POOL_2D: 10, OpCode.MAX_POOL_2D: 10, OpCode.L2_POOL_2D: 10}
_PADS = (OpCode.PAD, OpCode.PAD_V2, OpCode.MIRROR_PAD)
_RESIZE = (OpCode.RESIZE_BILINEAR, OpCode.RESIZE_NEAREST_NEIGHBOR)
_BINARY = (OpCode.ADD, OpCode.SUB, OpCode.MUL, OpCode.DIV, OpCode.MAXIMUM, OpCode.MINIMUM,
           OpCode.PRELU)


def _dims(desc: OperandDesc) -> list[int]:
    return [max(d, 1) for d in desc.dims]


def _int(model: FlatModel, k: int | None) -> int:
    """A scalar INT32/UINT32 constant's magnitude; 0 when absent or not such a constant."""
    if k is None or k >= len(model.operands):
        return 0
    raw, code = model.values.get(k), model.operands[k].code
    if not raw or len(raw) != 4 or code not in (OperandCode.INT32, OperandCode.UINT32):
        return 0
    return abs(struct.unpack("<i" if code == OperandCode.INT32 else "<I", raw)[0])


def _ceil_float(model: FlatModel, k: int) -> int | None:
    raw = model.values.get(k)
    if not raw or len(raw) != 4 or model.operands[k].code != OperandCode.FLOAT32:
        return None
    x = abs(struct.unpack("<f", raw)[0])
    return math.ceil(x) if math.isfinite(x) else None


def _ints(model: FlatModel, k: int) -> list[int]:
    raw = model.values.get(k) or b""
    if model.operands[k].code != OperandCode.TENSOR_INT32:
        return []
    return [abs(x) for x in struct.unpack(f"<{len(raw) // 4}i", raw[: len(raw) // 4 * 4])]


def _spatial(d: Sequence[int], extra_h: int, extra_w: int, scale: tuple[int, int] = (1, 1)) -> int:
    """Elements of a rank-4 tensor whose two spatial dims grow; the larger of NHWC and NCHW."""
    if len(d) != 4:
        return math.prod(d) * max(extra_h + scale[0], 1) * max(extra_w + scale[1], 1)
    nhwc = d[0] * d[3] * (d[1] * scale[0] + extra_h) * (d[2] * scale[1] + extra_w)
    nchw = d[0] * d[1] * (d[2] * scale[0] + extra_h) * (d[3] * scale[1] + extra_w)
    return max(nhwc, nchw)


def _windowed(model: FlatModel, op: OperationDesc) -> int:
    """The padded input of a conv or pool: explicit pads, or at most window + stride for SAME."""
    code, ins = OpCode(op.code), op.inputs
    d = _dims(model.operands[ins[0]])
    pads_at, stride_at, dil_at = _CONV_AT.get(code, (1, 2, None))
    if len(ins) >= _EXPLICIT_FROM[code]:
        left, right, top, bottom = (_int(model, ins[pads_at + i]) for i in range(4))
        return _spatial(d, top + bottom, left + right)
    if code in _CONV_AT:
        f = _dims(model.operands[ins[1]])
        kh, kw = (f[1], f[2]) if len(f) == 4 else (1, 1)
    else:
        kw, kh = _int(model, ins[4]), _int(model, ins[5])
    sw, sh = _int(model, ins[stride_at]), _int(model, ins[stride_at + 1])
    has_dil = dil_at is not None and len(ins) > dil_at + 1
    dw, dh = (_int(model, ins[dil_at]), _int(model, ins[dil_at + 1])) if has_dil else (1, 1)
    return _spatial(d, kh * max(dh, 1) + sh, kw * max(dw, 1) + sw)


def _transpose_conv(model: FlatModel, op: OperationDesc) -> int:
    ins = op.inputs
    shape = _ints(model, ins[3])
    if shape:  # implicit padding: the output shape is given
        return math.prod(x or 1 for x in shape)
    d, f = _dims(model.operands[ins[0]]), _dims(model.operands[ins[1]])
    k, cout, cin = max(f[1:3], default=1), f[0], f[-1]
    sw, sh = _int(model, ins[7]), _int(model, ins[8])
    return _spatial(d, k, k, (max(sh, 1), max(sw, 1))) * -(-cout // cin)


def _broadcast(a: list[int], b: list[int]) -> int:
    r = max(len(a), len(b))
    a, b = [1] * (r - len(a)) + a, [1] * (r - len(b)) + b
    return math.prod(max(x, y) for x, y in zip(a, b, strict=True))


def _work(model: FlatModel, op: OperationDesc) -> int:
    """An upper bound on the elements ``op`` produces or pads to; 0 when its outputs bound it."""
    code, ins = op.code, op.inputs
    d = _dims(model.operands[ins[0]])
    if code in _EXPLICIT_FROM:
        return _windowed(model, op)
    if code in _RESIZE:
        scales = [_ceil_float(model, k) for k in ins[1:3]]
        if model.operands[ins[1]].code == OperandCode.FLOAT32:
            sw, sh = (s if s is not None else 0 for s in scales)
            return _spatial(d, 0, 0, (max(sh, 1), max(sw, 1)))
        return _spatial(d, _int(model, ins[2]), _int(model, ins[1]))
    if code in _PADS:
        pads = _ints(model, ins[1])
        return math.prod(x + sum(pads[2 * i : 2 * i + 2]) for i, x in enumerate(d))
    if code == OpCode.SPACE_TO_BATCH_ND:
        pads = _ints(model, ins[2]) + [0] * 4
        return _spatial(d, pads[0] + pads[1], pads[2] + pads[3])
    if code == OpCode.TILE:
        return math.prod(d) * math.prod(m or 1 for m in _ints(model, ins[1]))
    if code == OpCode.TRANSPOSE_CONV_2D:
        return _transpose_conv(model, op)
    if code in _BINARY:
        return _broadcast(d, _dims(model.operands[ins[1]]))
    return 0


def check_work(model: FlatModel) -> None:
    """Refuse (OUT_OF_MEMORY) an operation whose parameters ask for more than the limit."""
    for j, op in enumerate(model.operations):
        try:
            work = _work(model, op)
        except (IndexError, KeyError, ValueError, struct.error):
            continue  # a malformed signature: the interpreter's own checks reject it
        if work > MAX_WORK_ELEMENTS:
            fail(
                ResultCode.OUT_OF_MEMORY,
                f"operation {j} ({OpCode(op.code).name}) needs about {work:,} elements, "
                f"beyond the device's limit of {MAX_WORK_ELEMENTS:,}",
            )


def check_value_total(model: FlatModel, length: int) -> None:
    """Refuse (OUT_OF_MEMORY) a value that would take the model's constants past the limit."""
    total = sum(len(v) for v in model.values.values()) + length
    if total > MAX_VALUE_BYTES:
        fail(
            ResultCode.OUT_OF_MEMORY,
            f"constant values would total {total:,} bytes, beyond the device's limit of {MAX_VALUE_BYTES:,}",
        )
