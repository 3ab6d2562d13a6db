"""One-op models with random inputs, one or more per NNAPI op the IR can emit (float, quantized
uint8 and int8, INT32), for checking the scripted kernels against the interpreter."""

from __future__ import annotations

from collections.abc import Callable

import torch

from nnapi_compiler.ir.codes import OpCode
from nnapi_compiler.ir.flat import OperandDesc

from ..runtime.kernel_helpers import _CODES, Builder, In, Omit, one_op

Op = OpCode
F32 = _CODES[torch.float32]
S8 = _CODES[torch.int8]
G = torch.Generator


class QConst:
    """A constant quantized tensor operand (weights), stored as a model value."""

    def __init__(self, t: torch.Tensor, scale: float, zp: int = 0) -> None:
        self.t, self.scale, self.zp = t, scale, zp


class QBuilder(Builder):
    def arg(self, a: object) -> int:
        if isinstance(a, QConst):
            desc = OperandDesc(_CODES[a.t.dtype], tuple(a.t.shape), a.scale, a.zp)
            raw = a.t.contiguous().view(torch.uint8).numpy().tobytes()
            self.model.operands.append(desc)
            self.model.values[len(self.model.operands) - 1] = raw
            return len(self.model.operands) - 1
        return super().arg(a)


def qop(
    code: int, args: list, out_dims: tuple, out_code: int, scale: float, zp: int, n_out: int = 1
) -> Builder:
    b = QBuilder()
    ins = [b.arg(a) for a in args]
    b.op(code, ins, [b.out(out_code, out_dims, scale, zp) for _ in range(n_out)])
    return b


def f(g: G, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g)


def q(g: G, dtype: torch.dtype, *shape: int) -> torch.Tensor:
    lo, hi = (0, 256) if dtype == torch.uint8 else (-128, 128)
    return torch.randint(lo, hi, shape, generator=g, dtype=torch.int32).to(dtype)


def ints(*v: int) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.int32)


def bias(g: G, n: int) -> torch.Tensor:
    return torch.randint(-2000, 2000, (n,), generator=g, dtype=torch.int32)


def _conv_cases() -> dict[str, Callable[[G], Builder]]:
    def qconv(dt: torch.dtype, code: int, filt: tuple, out_c: int, tail: list) -> Callable[[G], Builder]:
        def make(g: G) -> Builder:
            x = In(q(g, dt, 1, 7, 6, 4), 0.05, 3)
            w = QConst(q(g, dt, *filt), 0.02, 1 if dt == torch.uint8 else 0)
            b = QConst(bias(g, out_c), 0.05 * 0.02)
            out = (1, 7, 6, out_c) if code != Op.TRANSPOSE_CONV_2D else (1, 14, 12, out_c)
            return qop(code, [x, w, b, *tail], out, _CODES[dt], 0.3, 2 if dt == torch.uint8 else -3)

        return make

    cases: dict[str, Callable[[G], Builder]] = {
        "conv2d_explicit": lambda g: one_op(
            Op.CONV_2D, [In(f(g, 1, 7, 6, 4)), f(g, 5, 3, 3, 4), f(g, 5), 1, 1, 1, 1, 1, 1, 1], (1, 7, 6, 5)
        ),
        "conv2d_same_stride_relu6": lambda g: one_op(
            Op.CONV_2D, [In(f(g, 1, 7, 6, 4)), f(g, 5, 3, 3, 4), f(g, 5), 1, 2, 2, 3], (1, 4, 3, 5)
        ),
        "conv2d_nchw_dilated": lambda g: one_op(
            Op.CONV_2D,
            [In(f(g, 1, 4, 9, 9)), f(g, 3, 3, 3, 4), f(g, 3), 1, 1, 1, 0, True, 2, 2],
            (1, 3, 9, 9),
        ),
        "depthwise": lambda g: one_op(
            Op.DEPTHWISE_CONV_2D,
            [In(f(g, 1, 7, 6, 4)), f(g, 1, 3, 3, 8), f(g, 8), 1, 1, 1, 2, 1],
            (1, 7, 6, 8),
        ),
        "grouped": lambda g: one_op(
            Op.GROUPED_CONV_2D,
            [In(f(g, 1, 7, 6, 4)), f(g, 6, 3, 3, 2), f(g, 6), 1, 1, 1, 2, 0, False],
            (1, 7, 6, 6),
        ),
        "transpose_conv": lambda g: one_op(
            Op.TRANSPOSE_CONV_2D,
            [In(f(g, 1, 7, 6, 4)), f(g, 3, 2, 2, 4), f(g, 3), 0, 0, 0, 0, 2, 2, 0, False],
            (1, 14, 12, 3),
        ),
    }
    for dt, tag in ((torch.uint8, "u8"), (torch.int8, "s8")):
        cases[f"conv2d_{tag}"] = qconv(dt, Op.CONV_2D, (5, 3, 3, 4), 5, [1, 1, 1, 1])
        cases[f"depthwise_{tag}"] = qconv(dt, Op.DEPTHWISE_CONV_2D, (1, 3, 3, 4), 4, [1, 1, 1, 1, 3])
        cases[f"grouped_{tag}"] = qconv(dt, Op.GROUPED_CONV_2D, (6, 3, 3, 2), 6, [1, 1, 1, 2, 1, False])
        cases[f"transpose_conv_{tag}"] = qconv(
            dt, Op.TRANSPOSE_CONV_2D, (3, 2, 2, 4), 3, [0, 0, 0, 0, 2, 2, 0, False]
        )
    return cases


def _pool_cases() -> dict[str, Callable[[G], Builder]]:
    cases: dict[str, Callable[[G], Builder]] = {}
    for code in (Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D, Op.L2_POOL_2D):
        name = code.name.lower()
        cases[name] = lambda g, c=code: one_op(
            c, [In(f(g, 1, 7, 6, 3)), 1, 1, 1, 1, 2, 2, 3, 3, 0], (1, 4, 3, 3)
        )
        cases[name + "_same_nchw"] = lambda g, c=code: one_op(
            c, [In(f(g, 1, 3, 7, 6)), 1, 2, 2, 3, 3, 1, True], (1, 3, 4, 3)
        )
    for code in (Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D):
        for dt, tag in ((torch.uint8, "u8"), (torch.int8, "s8")):
            cases[f"{code.name.lower()}_{tag}"] = lambda g, c=code, d=dt: qop(
                c,
                [In(q(g, d, 1, 7, 6, 3), 0.1, 5), 1, 1, 1, 1, 2, 2, 3, 3, 1],
                (1, 4, 3, 3),
                _CODES[d],
                0.1,
                5,
            )
    return cases


def _binary(code: int, dt: torch.dtype, fuse: int) -> Callable[[G], Builder]:
    def make(g: G) -> Builder:
        if dt == torch.float32:
            return one_op(code, [In(f(g, 2, 3, 4)), In(f(g, 1, 3, 1) + 3.0), fuse], (2, 3, 4))
        if dt == torch.int32:
            a = torch.randint(-50, 50, (2, 3), generator=g, dtype=torch.int32)
            b = torch.randint(1, 9, (3,), generator=g, dtype=torch.int32)
            return one_op(code, [In(a), In(b), 0], (2, 3))
        out_scale = 0.2 if code == Op.MUL else 0.08
        return qop(
            code,
            [In(q(g, dt, 2, 3, 4), 0.05, 7), In(q(g, dt, 3, 1), 0.03, -2 if dt == torch.int8 else 9), fuse],
            (2, 3, 4),
            _CODES[dt],
            out_scale,
            4,
        )

    return make


def _quant_unary(code: int, dt: torch.dtype, zp_in: int, scale: float, zp: int) -> Callable[[G], Builder]:
    return lambda g: qop(code, [In(q(g, dt, 2, 5), 0.05, zp_in)], (2, 5), _CODES[dt], scale, zp)


def _elementwise_cases() -> dict[str, Callable[[G], Builder]]:
    cases: dict[str, Callable[[G], Builder]] = {}
    for code in (Op.ADD, Op.SUB, Op.MUL, Op.DIV):
        cases[code.name.lower()] = _binary(code, torch.float32, 1)
        cases[code.name.lower() + "_i32"] = _binary(code, torch.int32, 0)
    for code in (Op.ADD, Op.SUB, Op.MUL):
        for dt, tag in ((torch.uint8, "u8"), (torch.int8, "s8")):
            cases[f"{code.name.lower()}_{tag}"] = _binary(code, dt, 3 if code == Op.ADD else 0)
    for code in (Op.MAXIMUM, Op.MINIMUM):
        cases[code.name.lower()] = lambda g, c=code: one_op(c, [In(f(g, 2, 3)), In(f(g, 3))], (2, 3))
    unary = (
        Op.RELU,
        Op.RELU1,
        Op.RELU6,
        Op.LOGISTIC,
        Op.TANH,
        Op.HARD_SWISH,
        Op.FLOOR,
        Op.EXP,
        Op.SQRT,
        Op.RSQRT,
        Op.LOG,
        Op.SIN,
        Op.ABS,
        Op.NEG,
    )
    for code in unary:
        positive = code in (Op.SQRT, Op.RSQRT, Op.LOG)
        cases[code.name.lower()] = lambda g, c=code, p=positive: one_op(
            c, [In(f(g, 2, 5).abs() + 0.1 if p else f(g, 2, 5) * 4)], (2, 5)
        )
    cases["abs_i32"] = lambda g: one_op(
        Op.ABS, [In(torch.randint(-9, 9, (4,), generator=g, dtype=torch.int32))], (4,)
    )
    # Output (scale, uint8 zero point, int8 zero point): the mandated ones for LOGISTIC / TANH.
    outs = {Op.LOGISTIC: (1 / 256, 0, -128), Op.TANH: (1 / 128, 128, 0), Op.HARD_SWISH: (0.03, 20, -100)}
    for code in (Op.RELU, Op.RELU1, Op.RELU6, Op.LOGISTIC, Op.TANH, Op.HARD_SWISH):
        scale, zu, zs = outs.get(code, (0.05, 100, -20))  # the RELUs keep the input's params
        for dt, tag, zp_in, zp in ((torch.uint8, "u8", 100, zu), (torch.int8, "s8", -20, zs)):
            cases[f"{code.name.lower()}_{tag}"] = _quant_unary(code, dt, zp_in, scale, zp)
    cases["elu"] = lambda g: one_op(Op.ELU, [In(f(g, 2, 5)), 0.7], (2, 5))
    cases["pow"] = lambda g: one_op(Op.POW, [In(f(g, 2, 5).abs()), f(g, 5)], (2, 5))
    cases["prelu"] = lambda g: one_op(Op.PRELU, [In(f(g, 1, 3, 3, 4)), f(g, 4)], (1, 3, 3, 4))
    for dt, tag in ((torch.uint8, "u8"), (torch.int8, "s8")):
        cases[f"prelu_{tag}"] = lambda g, d=dt: qop(
            Op.PRELU,
            [In(q(g, d, 1, 3, 3, 4), 0.05, 10), QConst(q(g, d, 4), 0.01, 3)],
            (1, 3, 3, 4),
            _CODES[d],
            0.07,
            12,
        )
    return cases


def _reduce_cases() -> dict[str, Callable[[G], Builder]]:
    cases: dict[str, Callable[[G], Builder]] = {
        "mean": lambda g: one_op(Op.MEAN, [In(f(g, 1, 5, 4, 3)), ints(1, 2), 1], (1, 1, 1, 3)),
        "mean_drop": lambda g: one_op(Op.MEAN, [In(f(g, 2, 5, 3)), ints(-1, 0), 0], (5,)),
        "softmax": lambda g: one_op(Op.SOFTMAX, [In(f(g, 2, 7)), 0.8], (2, 7)),
        "softmax_axis": lambda g: one_op(Op.SOFTMAX, [In(f(g, 2, 7, 3)), 1.0, 1], (2, 7, 3)),
        "log_softmax": lambda g: one_op(Op.LOG_SOFTMAX, [In(f(g, 2, 7)), 1.5, -1], (2, 7)),
        "reduce_sum": lambda g: one_op(Op.REDUCE_SUM, [In(f(g, 2, 5, 4, 3)), ints(1, 2), True], (2, 1, 1, 3)),
        "reduce_sum_drop": lambda g: one_op(Op.REDUCE_SUM, [In(f(g, 2, 5, 3)), ints(0, -1), False], (5,)),
        "reduce_max": lambda g: one_op(Op.REDUCE_MAX, [In(f(g, 2, 5, 4, 3)), ints(1, 3), True], (2, 1, 4, 1)),
        "reduce_min_drop": lambda g: one_op(Op.REDUCE_MIN, [In(f(g, 2, 5, 3)), ints(-1), False], (2, 5)),
        "reduce_prod": lambda g: one_op(Op.REDUCE_PROD, [In(f(g, 2, 5, 3)), ints(0, 2), False], (5,)),
        "reduce_any": lambda g: one_op(Op.REDUCE_ANY, [In(f(g, 3, 4, 5) > 1), ints(1, 2), False], (3,)),
        "reduce_all": lambda g: one_op(Op.REDUCE_ALL, [In(f(g, 3, 4, 5) > -1.5), ints(-1), True], (3, 4, 1)),
    }
    for dt, tag in ((torch.uint8, "u8"), (torch.int8, "s8")):
        cases[f"reduce_max_{tag}"] = lambda g, d=dt: qop(
            Op.REDUCE_MAX, [In(q(g, d, 2, 5, 3), 0.1, 3), ints(1), False], (2, 3), _CODES[d], 0.1, 3
        )
    for dt, tag, zp in ((torch.uint8, "u8", 0), (torch.int8, "s8", -128)):
        cases[f"mean_{tag}"] = lambda g, d=dt: qop(
            Op.MEAN, [In(q(g, d, 1, 5, 4, 3), 0.1, 3), ints(1, 2), 1], (1, 1, 1, 3), _CODES[d], 0.1, 3
        )
        cases[f"softmax_{tag}"] = lambda g, d=dt, z=zp: qop(
            Op.SOFTMAX, [In(q(g, d, 2, 7), 0.1, 3), 1.0], (2, 7), _CODES[d], 1 / 256, z
        )
    return cases


def _shape_cases() -> dict[str, Callable[[G], Builder]]:
    cases: dict[str, Callable[[G], Builder]] = {
        "reshape": lambda g: one_op(Op.RESHAPE, [In(f(g, 2, 3, 4)), ints(4, -1)], (4, 6)),
        "transpose": lambda g: one_op(Op.TRANSPOSE, [In(f(g, 2, 3, 4)), ints(2, 0, 1)], (4, 2, 3)),
        "pad": lambda g: one_op(Op.PAD, [In(f(g, 1, 3, 4, 2)), ints(0, 0, 1, 2, 0, 1, 0, 0)], (1, 6, 5, 2)),
        "pad_v2": lambda g: one_op(
            Op.PAD_V2, [In(f(g, 1, 3, 4, 2)), ints(0, 1, 1, 0, 2, 0, 0, 0), -1.5], (2, 4, 6, 2)
        ),
        "channel_shuffle": lambda g: one_op(Op.CHANNEL_SHUFFLE, [In(f(g, 1, 2, 2, 6)), 3, -1], (1, 2, 2, 6)),
        "strided_slice": lambda g: one_op(
            Op.STRIDED_SLICE,
            [In(f(g, 2, 6, 5)), ints(1, 1, -1), ints(2, 6, 0), ints(1, 2, -2), 0, 0, 1],
            (3, 2),
        ),
        "gather": lambda g: one_op(Op.GATHER, [In(f(g, 3, 5, 2)), 1, ints(4, 0, 4)], (3, 3, 2)),
        "gather_runtime_indices": lambda g: one_op(Op.GATHER, [In(f(g, 3, 5)), 0, In(ints(2, 0))], (2, 5)),
        "concatenation": lambda g: one_op(
            Op.CONCATENATION, [In(f(g, 1, 2, 2, 3)), In(f(g, 1, 2, 2, 1)), f(g, 1, 2, 2, 2), 3], (1, 2, 2, 6)
        ),
        "squeeze": lambda g: one_op(Op.SQUEEZE, [In(f(g, 1, 3, 1, 2)), ints(2)], (1, 3, 2)),
        "expand_dims": lambda g: one_op(Op.EXPAND_DIMS, [In(f(g, 3, 2)), -1], (3, 2, 1)),
        "tile": lambda g: one_op(Op.TILE, [In(f(g, 3, 2)), ints(2, 3)], (6, 6)),
        "depth_to_space": lambda g: one_op(Op.DEPTH_TO_SPACE, [In(f(g, 1, 2, 3, 8)), 2], (1, 4, 6, 2)),
        "space_to_depth": lambda g: one_op(Op.SPACE_TO_DEPTH, [In(f(g, 1, 4, 6, 2)), 2], (1, 2, 3, 8)),
        "instance_normalization": lambda g: one_op(
            Op.INSTANCE_NORMALIZATION, [In(f(g, 2, 5, 4, 3)), 1.5, -0.25, 1e-3, False], (2, 5, 4, 3)
        ),
        "instance_normalization_nchw": lambda g: one_op(
            Op.INSTANCE_NORMALIZATION, [In(f(g, 2, 3, 5, 4)), 0.5, 2.0, 1e-5, True], (2, 3, 5, 4)
        ),
        "local_response_normalization": lambda g: one_op(
            Op.LOCAL_RESPONSE_NORMALIZATION, [In(f(g, 2, 3, 4, 5)), 1, 1.5, 0.2, 0.75], (2, 3, 4, 5)
        ),
        "local_response_normalization_axis": lambda g: one_op(
            Op.LOCAL_RESPONSE_NORMALIZATION, [In(f(g, 2, 5, 4)), 2, 2.0, 1e-2, 0.5, 1], (2, 5, 4)
        ),
        "slice": lambda g: one_op(Op.SLICE, [In(f(g, 3, 5)), ints(1, 2), ints(-1, 2)], (2, 2)),
        "split": lambda g: one_op(Op.SPLIT, [In(f(g, 3, 6)), 1, 3], (3, 2), n_out=3),
    }
    for dt, tag in ((torch.uint8, "u8"), (torch.int8, "s8")):
        cases[f"concatenation_{tag}"] = lambda g, d=dt: qop(
            Op.CONCATENATION,
            [In(q(g, d, 1, 2, 2, 3), 0.1, 5), In(q(g, d, 1, 2, 2, 2), 0.07, -3 if d == torch.int8 else 3), 3],
            (1, 2, 2, 5),
            _CODES[d],
            0.12,
            1,
        )
        cases[f"pad_{tag}"] = lambda g, d=dt: qop(
            Op.PAD,
            [In(q(g, d, 1, 3, 4, 2), 0.1, 5), ints(0, 0, 1, 1, 2, 0, 0, 0)],
            (1, 5, 6, 2),
            _CODES[d],
            0.1,
            5,
        )
        cases[f"pad_v2_{tag}"] = lambda g, d=dt: qop(
            Op.PAD_V2,
            [In(q(g, d, 1, 3, 4, 2), 0.1, 5), ints(0, 0, 1, 1, 2, 0, 0, 0), 7],
            (1, 5, 6, 2),
            _CODES[d],
            0.1,
            5,
        )
        cases[f"strided_slice_{tag}"] = lambda g, d=dt: qop(
            Op.STRIDED_SLICE,
            [In(q(g, d, 1, 4, 4, 6), 0.1, 5), ints(0, 0, 0, 0), ints(1, 4, 4, 3), ints(1, 1, 1, 1), 0, 0, 0],
            (1, 4, 4, 3),
            _CODES[d],
            0.1,
            5,
        )
    return cases


def _resize_cases() -> dict[str, Callable[[G], Builder]]:
    cases: dict[str, Callable[[G], Builder]] = {}
    for code in (Op.RESIZE_BILINEAR, Op.RESIZE_NEAREST_NEIGHBOR):
        name = code.name.lower()
        flags = [False] if code == Op.RESIZE_NEAREST_NEIGHBOR else []
        cases[name] = lambda g, c=code, fl=flags: one_op(c, [In(f(g, 1, 3, 5, 2)), 7, 4, *fl], (1, 4, 7, 2))
        cases[name + "_align"] = lambda g, c=code: one_op(
            c, [In(f(g, 1, 3, 5, 2)), 9, 6, False, True, False], (1, 6, 9, 2)
        )
        cases[name + "_half_pixel"] = lambda g, c=code: one_op(
            c, [In(f(g, 1, 3, 5, 2)), 9, 6, False, False, True], (1, 6, 9, 2)
        )
        cases[name + "_scale_nchw"] = lambda g, c=code: one_op(
            c, [In(f(g, 1, 2, 3, 5)), 1.5, 2.0, True], (1, 2, 6, 7)
        )
        for dt, tag in ((torch.uint8, "u8"), (torch.int8, "s8")):
            cases[f"{name}_{tag}"] = lambda g, c=code, d=dt: qop(
                c,
                [In(q(g, d, 1, 3, 5, 2), 0.1, 5), 9, 6, False, False, True],
                (1, 6, 9, 2),
                _CODES[d],
                0.1,
                5,
            )
    return cases


def _quant_cases() -> dict[str, Callable[[G], Builder]]:
    cases: dict[str, Callable[[G], Builder]] = {}
    for dt, tag, zp in ((torch.uint8, "u8", 130), (torch.int8, "s8", -7)):
        cases[f"quantize_{tag}"] = lambda g, d=dt, z=zp: qop(
            Op.QUANTIZE, [In(f(g, 3, 9) * 3)], (3, 9), _CODES[d], 0.02, z
        )
        cases[f"dequantize_{tag}"] = lambda g, d=dt, z=zp: qop(
            Op.DEQUANTIZE, [In(q(g, d, 3, 9), 0.02, z)], (3, 9), F32, 0.0, 0
        )
    return cases


def _linear_cases() -> dict[str, Callable[[G], Builder]]:
    cases: dict[str, Callable[[G], Builder]] = {
        "fully_connected": lambda g: one_op(
            Op.FULLY_CONNECTED, [In(f(g, 2, 12)), f(g, 5, 12), f(g, 5), 1], (2, 5)
        ),
        "fully_connected_flatten": lambda g: one_op(
            Op.FULLY_CONNECTED, [In(f(g, 1, 2, 2, 3)), f(g, 4, 6), f(g, 4), 0], (2, 4)
        ),
        "fully_connected_runtime_weights": lambda g: one_op(
            Op.FULLY_CONNECTED, [In(f(g, 3, 6)), In(f(g, 4, 6)), f(g, 4), 0], (3, 4)
        ),
        "batch_matmul": lambda g: one_op(
            Op.BATCH_MATMUL, [In(f(g, 2, 3, 4, 5)), In(f(g, 2, 3, 5, 6)), False, False], (2, 3, 4, 6)
        ),
        "batch_matmul_adj": lambda g: one_op(
            Op.BATCH_MATMUL, [In(f(g, 3, 5, 4)), In(f(g, 3, 6, 5)), True, True], (3, 4, 6)
        ),
    }
    for dt, tag in ((torch.uint8, "u8"), (torch.int8, "s8")):
        cases[f"fully_connected_{tag}"] = lambda g, d=dt: qop(
            Op.FULLY_CONNECTED,
            [
                In(q(g, d, 2, 12), 0.05, 4),
                QConst(q(g, d, 5, 12), 0.02, 2 if d == torch.uint8 else 0),
                QConst(bias(g, 5), 0.05 * 0.02),
                1,
            ],
            (2, 5),
            _CODES[d],
            0.25,
            6,
        )
    return cases


def _fuse_cases() -> dict[str, Callable[[G], Builder]]:
    """Every fuse code on a float and a quantized op that takes one."""
    cases: dict[str, Callable[[G], Builder]] = {}
    for fuse in range(4):
        cases[f"conv2d_fuse{fuse}"] = lambda g, a=fuse: one_op(
            Op.CONV_2D, [In(f(g, 1, 5, 5, 2) * 3), f(g, 4, 3, 3, 2), f(g, 4), 1, 1, 1, a], (1, 5, 5, 4)
        )
        cases[f"add_u8_fuse{fuse}"] = _binary(Op.ADD, torch.uint8, fuse)
        cases[f"max_pool_s8_fuse{fuse}"] = lambda g, a=fuse: qop(
            Op.MAX_POOL_2D,
            [In(q(g, torch.int8, 1, 4, 4, 2), 0.02, -5), 1, 1, 1, 2, 2, a],
            (1, 4, 4, 2),
            S8,
            0.02,
            -5,
        )
    return cases


#: Kernel family -> {case name -> one-op model builder}.
def _logic_cases() -> dict[str, Callable[[G], Builder]]:
    b8 = _CODES[torch.bool]

    def bits(g: G, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g) > 0.5

    cases: dict[str, Callable[[G], Builder]] = {}
    for code in (Op.EQUAL, Op.NOT_EQUAL, Op.LESS, Op.LESS_EQUAL, Op.GREATER, Op.GREATER_EQUAL):
        # rounded values, so equal pairs occur
        cases[code.name.lower()] = lambda g, c=code: one_op(
            c, [In(f(g, 2, 3, 4).round()), f(g, 3, 1).round()], (2, 3, 4), b8)
        cases[code.name.lower() + "_i32"] = lambda g, c=code: one_op(
            c, [In(torch.randint(-3, 3, (4, 5), generator=g, dtype=torch.int32)), In(ints(0, 1, -1, 2, 0))],
            (4, 5), b8)
    cases["equal_bool"] = lambda g: one_op(Op.EQUAL, [In(bits(g, 3, 4)), In(bits(g, 4))], (3, 4), b8)
    cases["logical_and"] = lambda g: one_op(Op.LOGICAL_AND, [In(bits(g, 2, 3, 4)), In(bits(g, 4))], (2, 3, 4))
    cases["logical_or"] = lambda g: one_op(Op.LOGICAL_OR, [In(bits(g, 3, 1)), In(bits(g, 3, 5))], (3, 5))
    cases["logical_not"] = lambda g: one_op(Op.LOGICAL_NOT, [In(bits(g, 2, 7))], (2, 7))
    cases["select"] = lambda g: one_op(
        Op.SELECT, [In(bits(g, 2, 3, 4)), In(f(g, 2, 3, 4)), f(g, 2, 3, 4)], (2, 3, 4), F32)
    cases["select_i32"] = lambda g: one_op(
        Op.SELECT, [In(bits(g, 5)), In(ints(1, 2, 3, 4, 5)), ints(0, 0, 7, 0, 0)], (5,), _CODES[torch.int32])
    i32 = _CODES[torch.int32]
    cases["argmax"] = lambda g: one_op(Op.ARGMAX, [In(f(g, 2, 3, 4).round()), 1], (2, 4), i32)

    def topk(g: G) -> Builder:
        b = Builder()
        ins = [b.arg(In(f(g, 2, 3, 6).round())), b.arg(4)]  # rounded: ties occur
        b.op(Op.TOPK_V2, ins, [b.out(F32, (2, 3, 4)), b.out(i32, (2, 3, 4))])
        return b

    cases["topk_v2"] = topk
    cases["argmin"] = lambda g: one_op(Op.ARGMIN, [In(f(g, 2, 3, 4).round()), -1], (2, 3), i32)
    cases["cast_float_to_int"] = lambda g: one_op(Op.CAST, [In(f(g, 3, 4) * 5)], (3, 4), i32)
    cases["cast_int_to_float"] = lambda g: one_op(
        Op.CAST, [In(torch.randint(-99, 99, (3, 4), generator=g, dtype=torch.int32))], (3, 4), F32)
    return cases


def sequence_lstm_model(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b: torch.Tensor,
                        h0: torch.Tensor, c0: torch.Tensor, time_major: bool, with_state: bool,
                        activation: int = 4, cell_clip: float = 0.0) -> Builder:
    """A one-op UNIDIRECTIONAL_SEQUENCE_LSTM model from torch-packed weights (gates i, f, g, o
    stacked in ``w_ih`` [4U, in], ``w_hh`` [4U, U] and ``b`` [4U]); x, h0 and c0 are inputs."""
    u = w_hh.shape[1]
    none = Omit(F32, ())
    gates = lambda t: [t[k * u:(k + 1) * u].contiguous() for k in range(4)]  # noqa: E731
    args = [In(x), *gates(w_ih), *gates(w_hh), none, none, none, *gates(b), none, none,
            In(h0), In(c0), activation, cell_clip, 0.0, time_major, none, none, none, none]
    b_ = Builder()
    ins = [b_.arg(a) for a in args]
    t_, n = (x.shape[0], x.shape[1]) if time_major else (x.shape[1], x.shape[0])
    seq = (t_, n, u) if time_major else (n, t_, u)
    outs = [b_.out(F32, seq)] + ([b_.out(F32, (n, u)), b_.out(F32, (n, u))] if with_state else [])
    b_.op(Op.UNIDIRECTIONAL_SEQUENCE_LSTM, ins, outs)
    return b_


def _recurrent_cases() -> dict[str, Callable[[G], Builder]]:
    def lstm(g: G, time_major: bool, with_state: bool) -> Builder:
        x = f(g, 5, 2, 3) if time_major else f(g, 2, 5, 3)
        return sequence_lstm_model(x, f(g, 16, 3), f(g, 16, 4), f(g, 16), f(g, 2, 4), f(g, 2, 4),
                                   time_major, with_state)

    return {
        "sequence_lstm": lambda g: lstm(g, True, False),
        "sequence_lstm_state": lambda g: lstm(g, False, True),
    }


FAMILIES: dict[str, dict[str, Callable[[G], Builder]]] = {
    "recurrent": _recurrent_cases(),
    "logic": _logic_cases(),
    "conv": _conv_cases(),
    "pool": _pool_cases(),
    "linear": _linear_cases(),
    "elementwise": _elementwise_cases(),
    "reduce": _reduce_cases(),
    "shape": _shape_cases(),
    "resize": _resize_cases(),
    "quant": _quant_cases(),
    "fuse": _fuse_cases(),
}
