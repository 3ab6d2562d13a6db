"""Replayable IR program recipes: steps that build NNAPI ops and constants with ``Builder``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.codes import FuseCode
from nnapi_compiler.ir.ops.base import Constant
from nnapi_compiler.ir.ops.resize import Interpolate
from nnapi_compiler.ir.program import Program
from nnapi_compiler.ir.types import Quant, Value, float_type

Params = tuple[tuple[str, Any], ...]
# Insertion order is drawing order: hypothesis favours early entries, so the fusable
# activations come first (sorted order made ``abs`` the most drawn and fusion rare).
UNARY = {"relu": ops.Relu, "relu6": ops.Relu6, "relu1": ops.Relu1, "logistic": ops.Logistic,
         "tanh": ops.Tanh, "hard_swish": ops.HardSwish, "abs": ops.Abs, "neg": ops.Neg}
POSITIVE = {"sqrt": ops.Sqrt, "log": ops.Log, "rsqrt": ops.Rsqrt}  # applied to |x| + 0.5
BINARY = {"add": ops.Add, "sub": ops.Sub, "mul": ops.Mul, "div": ops.Div, "max": ops.Maximum,
          "min": ops.Minimum}
# Repeated kinds are drawn more often: the composites give fold-bn, fuse-activation and
# legalize (ELU, HARD_SWISH below FL4) something to do; tests/fuzz/changed_rates.py measures it.
SPATIAL = ("conv", "dwconv", "gconv", "tconv", "maxpool", "avgpool", "resize", "bn", "interp", "interp",
           "conv_bn", "conv_bn", "conv_bn", "conv_act", "conv_act")
ANY_RANK = ("unary", "unary", "positive", "exp", "elu", "elu", "prelu", "binary_const", "binary_const",
            "binary_value", "softmax", "mean", "transpose", "concat", "slice", "pad", "fc", "fc_act",
            "reshape", "dup_const", "const_expr", "qfc", "hard_swish")
#: Steps whose result no later step reads: Interpolate is evaluated outside the interpreter.
TERMINAL = ("interp",)
CONST_OPS = {"add": ops.Add, "mul": ops.Mul, "max": ops.Maximum}


@dataclass(frozen=True)
class Step:
    kind: str
    args: tuple[int, ...]  # indices into the value pool
    params: Params


@dataclass(frozen=True)
class Recipe:
    """Everything needed to rebuild the same program: equal recipes build equal programs."""

    level: int
    seed: int
    inputs: tuple[tuple[int, ...], ...]
    steps: tuple[Step, ...]
    outputs: tuple[int, ...]

    def build(self) -> Program:
        b = Builder(level=self.level)
        pool = [b.input(float_type(s)) for s in self.inputs]
        for i, step in enumerate(self.steps):
            gen = torch.Generator().manual_seed(self.seed * 1000 + i)
            pool.append(apply(b, step, [pool[a] for a in step.args], gen))
        return b.finish([pool[k] for k in self.outputs])

    def example_inputs(self) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        return [torch.randn(s, generator=gen) for s in self.inputs]


def _rand(gen: torch.Generator, shape: tuple[int, ...], lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    return torch.rand(shape, generator=gen) * (hi - lo) + lo


def _same_const(b: Builder, like: Value) -> Value:
    """A second constant value with exactly the data of the constant ``like`` (not shared)."""
    src = next(op for op in b.ops if isinstance(op, Constant) and op.result == like)
    v = b._value(like.type)
    b.ops.append(Constant(results=(v,), data=src.data.clone()))
    return v


def apply(b: Builder, step: Step, args: list[Value], gen: torch.Generator) -> Value:
    p, x = dict(step.params), args[0]
    shape, k = x.type.shape, step.kind
    fuse = FuseCode(p.get("fuse", 0))
    if k in ("conv", "dwconv", "gconv", "tconv"):
        c, (kh, kw) = shape[1], p["k"]
        cout = {"conv": p.get("cout"), "dwconv": c * p.get("mult", 1), "gconv": p.get("cout"),
                "tconv": p.get("cout")}[k]
        cin = {"conv": c, "dwconv": 1, "gconv": c // p.get("groups", 1), "tconv": c}[k]
        w = _rand(gen, (1, kh, kw, cout) if k == "dwconv" else (cout, kh, kw, cin), -0.5, 0.5)
        common = dict(input=x, filter=b.const(w), bias=b.const(_rand(gen, (cout,))),
                      padding=ops.Padding(*p["pad"]), stride=ops.HW(*p["stride"]), fuse=fuse)
        if k == "tconv":
            return b.emit(ops.TransposeConv2d, **common)
        if k == "gconv":
            return b.emit(ops.GroupedConv2d, groups=p["groups"], **common)
        cls, extra = (ops.Conv2d, {}) if k == "conv" else (ops.DepthwiseConv2d, {"multiplier": p["mult"]})
        return b.emit(cls, dilation=ops.HW(*p["dil"]), **common, **extra)
    if k in ("maxpool", "avgpool"):
        cls = ops.MaxPool2d if k == "maxpool" else ops.AveragePool2d
        return b.emit(cls, input=x, kernel=ops.HW(*p["k"]), stride=ops.HW(*p["stride"]),
                      padding=ops.Padding(*p["pad"]), fuse=fuse)
    if k == "resize":
        flags = b.level >= 4  # the coordinate flags exist from FL4; nothing legalizes them
        return b.emit(ops.ResizeNearest, x=x, out_h=p["out"][0], out_w=p["out"][1],
                      align_corners=p["ac"] and flags, half_pixel_centers=p["hp"] and flags)
    if k == "bn":  # per-channel MUL then ADD, as the frontend lowers BatchNorm
        c = shape[1]
        y = b.emit(ops.Mul, a=x, b=b.const(_rand(gen, (c, 1, 1), 0.5, 1.5)))
        return b.emit(ops.Add, a=y, b=b.const(_rand(gen, (c, 1, 1))), fuse=fuse)
    if k == "unary":
        return b.emit(UNARY[p["op"]], x=x)
    if k == "positive":
        t = b.emit(ops.Add, a=b.emit(ops.Abs, x=x), b=b.const(torch.tensor([0.5])))
        return b.emit(POSITIVE[p["op"]], x=t)
    if k == "exp":
        return b.emit(ops.Exp, x=b.emit(ops.Tanh, x=x))
    if k == "elu":
        return b.emit(ops.Elu, x=x, alpha=p["alpha"])
    if k == "prelu":
        return b.emit(ops.Prelu, x=x, alpha=b.const(_rand(gen, p["shape"])))
    if k == "binary_const":
        lo = 0.5 if p["op"] == "div" else -1.0
        c = _rand(gen, p["shape"], lo, 2.0)
        extra = {"fuse": fuse} if p["op"] in ("add", "sub", "mul", "div") else {}
        a, bb = (b.const(c), x) if p["swap"] and p["op"] != "div" else (x, b.const(c))
        return b.emit(BINARY[p["op"]], a=a, b=bb, **extra)
    if k == "binary_value":
        extra = {"fuse": fuse} if p["op"] in ("add", "sub", "mul") else {}
        return b.emit(BINARY[p["op"]], a=x, b=args[1], **extra)
    if k == "softmax":
        cls = ops.LogSoftmax if p["log"] else ops.Softmax
        return b.emit(cls, x=x, axis=p["axis"], beta=p["beta"])
    if k == "mean":
        return b.emit(ops.Mean, x=x, axes=p["axes"], keep_dims=p["keep"])
    if k == "transpose":
        return b.emit(ops.Transpose, x=x, perm=p["perm"])
    if k == "concat":
        return b.emit(ops.Concatenation, xs=tuple(args), axis=p["axis"])
    if k == "slice":
        return b.emit(ops.StridedSlice, x=x, begin=p["begin"], end=p["end"], strides=p["strides"],
                      shrink_mask=p["shrink"])
    if k == "pad":
        if p["value"]:
            return b.emit(ops.PadV2, x=x, pads=p["pads"], value=p["value"])
        return b.emit(ops.Pad, x=x, pads=p["pads"])
    if k == "fc":
        size = x.type.numel // shape[0] if p["flat"] else shape[-1]
        src = b.emit(ops.Reshape, x=x, shape=(shape[0], size)) if p["flat"] else x
        w, bias = _rand(gen, (p["units"], size), -0.5, 0.5), _rand(gen, (p["units"],))
        return b.emit(ops.FullyConnected, input=src, weights=b.const(w), bias=b.const(bias), fuse=fuse)
    if k == "reshape":
        return b.emit(ops.Reshape, x=x, shape=p["shape"])
    if k in ("conv_bn", "conv_act"):  # an unfused conv and what fold-bn / fuse-activation take
        y = apply(b, Step("conv", step.args, tuple((n, 0 if n == "fuse" else v) for n, v in step.params)),
                  args, gen)
        if k == "conv_bn":
            return apply(b, Step("bn", step.args, (("fuse", p["fuse"]),)), [y], gen)
        return b.emit(UNARY[("relu", "relu6", "relu1")[p["fuse"] % 3]], x=y)
    if k == "fc_act":
        y = apply(b, Step("fc", step.args, tuple((n, 0 if n == "fuse" else v) for n, v in step.params)),
                  args, gen)
        return b.emit(UNARY[("relu", "relu6", "relu1")[p["fuse"] % 3]], x=y)
    if k == "hard_swish":
        return b.emit(ops.HardSwish, x=x)
    if k == "interp":
        return b.emit(Interpolate, x=x, mode=p["mode"], out_h=p["out"][0], out_w=p["out"][1],
                      align_corners=p["ac"])
    if k == "const_expr":  # x + f(c1, c2): a constant-only subexpression for fold-constants
        c1, c2 = b.const(_rand(gen, (shape[-1],))), b.const(_rand(gen, (shape[-1],)))
        folded = b.emit(CONST_OPS[p["op"]], a=c1, b=c2)
        if p["relu"]:
            folded = b.emit(ops.Relu, x=folded)
        return b.emit(ops.Add, a=x, b=folded)
    if k == "qfc":  # quantize -> quantized FULLY_CONNECTED with a float bias -> dequantize
        size = x.type.numel // shape[0]
        src = b.emit(ops.Reshape, x=x, shape=(shape[0], size)) if x.type.rank != 2 else x
        q = b.emit(ops.Quantize, x=src, quant=Quant(p["in_scale"], p["in_zp"]))
        w = (torch.rand((p["units"], size), generator=gen) * 255).round().to(torch.uint8)
        y = b.emit(ops.FullyConnected, input=q, weights=b.const(w, quant=Quant(p["w_scale"], 128)),
                   bias=b.const(_rand(gen, (p["units"],))), out_quant=Quant(p["out_scale"], p["out_zp"]))
        return b.emit(ops.Dequantize, x=y)
    if k == "dup_const":  # x + c1 + c2 with c2 an unshared copy of c1
        c1 = b.const(_rand(gen, (shape[-1],)))
        return b.emit(ops.Add, a=b.emit(ops.Add, a=x, b=c1), b=_same_const(b, c1))
    raise ValueError(f"unknown step {k}")
