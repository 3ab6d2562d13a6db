"""Random quantized models for the quantized differential fuzz: a replayable case (a list of
stages over a pool of tapped tensors) and the two ways to quantize it, eager mode (qnnpack,
per-tensor or per-channel weights, float or quint8 model I/O) and PT2E (torch.export,
``NnapiQuantizer``, ``convert_pt2e``).

Every stage's result is a model output (a *tap*), so the test can feed each stage the
compiled model's own values for its inputs (see ``quant_oracle``). A stage is one
requantizing op, optionally followed by ops that keep the scale and move no value by more
than its input moved (ReLU, ReLU6, max pooling): the error bound of a stage is then the
bound of its one requantizing op.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.ao.nn.quantized as nnq
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from ..quant.helpers import quantize_model

#: Activation stages; each maps to the float module both quantization flows start from.
ACTS: dict[str, Any] = {
    "hardswish": nn.Hardswish, "sigmoid": nn.Sigmoid, "hardsigmoid": nn.Hardsigmoid,
    "tanh": nn.Tanh, "leaky_relu": lambda p: nn.LeakyReLU(p["slope"]),
    "elu": lambda p: nn.ELU(p["alpha"]), "gelu": nn.GELU, "silu": nn.SiLU,
    "clamp": lambda p: _Fn("clamp", p["lo"], p["hi"]),
}
#: Stage kinds each flow can quantize. Eager mode has no quantized SiLU (torch runs
#: ``aten::silu`` on a quantized tensor and fails); NnapiQuantizer annotates neither ELU,
#: clamp, bilinear upsampling nor scalar QFunctional ops, so PT2E leaves them in float. A PT2E
#: GELU fails to compile (InternalError, docs/fuzzing.md open finding 7) and is left out
#: until GELU lands as an op.
KINDS = {
    "eager": ["conv", "add", "mul", "cat", "avgpool", "mean", "upsample", "scalar",
              *sorted(set(ACTS) - {"silu"})],
    "pt2e": ["conv", "add", "mul", "cat", "avgpool", "mean", "upsample",
             *sorted(set(ACTS) - {"elu", "clamp", "gelu"})],
}
MAX_HW = 16


@dataclass(frozen=True)
class Stage:
    """One stage: ``kind`` applied to the taps ``srcs`` (indices; tap 0 is the model input)."""

    kind: str
    srcs: tuple[int, ...]
    p: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QCase:
    flow: str                      # "eager" | "pt2e"
    shape: tuple[int, int, int, int]
    stages: tuple[Stage, ...]
    per_channel: bool              # eager only: per-channel conv/linear weights (qconfig x86)
    quint8_io: bool                # eager only: the model takes and returns quint8 tensors
    target: str
    seed: int

    def labels(self) -> set[str]:
        """What this case exercises, for the coverage assertion."""
        out = {self.flow, self.target}
        out |= {"per-channel"} if self.per_channel else set()
        out |= {"quint8-io"} if self.quint8_io else set()
        for s in self.stages:
            out.add(s.kind)
            out |= {f"{s.kind}-{k}-{v}" for k, v in s.p.items() if k in ("mode", "act", "pool", "op")}
            out |= {"conv-depthwise"} if s.p.get("depthwise") else set()
        return out


@st.composite
def qcases(draw: st.DrawFn) -> QCase:
    """A case from one drawn seed. Hypothesis's own choices among many alternatives favour some
    of them from run to run (under ``derandomize`` one kind was drawn in none of 400 cases), so
    the structure comes from ``random.Random(seed)``, which keeps every kind near its share;
    the case is printed when it fails, and ``case_from_seed`` replays it."""
    return case_from_seed(draw(st.integers(0, 2**64 - 1)))


def case_from_seed(seed: int) -> QCase:
    r = random.Random(seed)
    flow = r.choice(["eager", "pt2e"])
    shape = (r.randint(1, 2), r.choice([2, 3, 4]), r.randint(3, 8), r.randint(3, 8))
    shapes = [shape]
    stages: list[Stage] = []
    used_by_cat: set[int] = set()
    for i in range(r.randint(1, 4)):
        src = r.randrange(len(shapes))
        stage, out = _stage(r, flow, src, shapes, i == 0, used_by_cat)
        stages.append(stage)
        shapes.append(out)
    if r.randrange(4) == 0:  # a linear head on a random tap (last: its output is 2-D)
        stages.append(Stage("linear", (r.randrange(len(shapes)),),
                            {"units": r.randint(1, 5), "act": r.choice(["relu", "none"])}))
    eager = flow == "eager"
    return QCase(flow, shape, tuple(stages), eager and r.random() < 0.5,
                 eager and r.randrange(4) == 0, r.choice(["android-10", "android-11"]),
                 r.randrange(2**16))


def _stage(r: random.Random, flow: str, src: int, shapes: list[tuple[int, ...]], first: bool,
           used_by_cat: set[int]) -> tuple[Stage, tuple[int, ...]]:
    n, c, h, w = shapes[src]
    # Convolutions (the ops with the most arithmetic) start half the models, and weigh three
    # times any other kind after that.
    kind = "conv" if first and r.random() < 0.5 else r.choice(["conv", "conv", *KINDS[flow]])
    if kind == "conv":
        depthwise = c > 1 and r.random() < 0.5
        cout = c if depthwise else r.choice([c, 4])
        k = r.choice([1, 3])
        pool = r.choice(["max", "none"]) if min(h, w) >= 2 else "none"
        p = {"cin": c, "cout": cout, "k": k, "depthwise": depthwise, "pool": pool,
             "act": r.choice(["relu", "relu6", "none"])}
        return Stage(kind, (src,), p), (n, cout, *((-(-h // 2), -(-w // 2)) if pool == "max"
                                                  else (h, w)))
    if kind == "cat" and flow == "pt2e" and src in used_by_cat:
        kind = "add"  # a tensor in two PT2E cats can hit open finding 8 (RecursionError)
    if kind in ("add", "mul", "cat"):
        same = [i for i, s in enumerate(shapes)
                if (s == shapes[src] if kind != "cat" else (s[0], s[2], s[3]) == (n, h, w))
                and not (kind == "cat" and flow == "pt2e" and i in used_by_cat)]
        other = r.choice(same)
        p = {"op": r.choice(["add", "add_relu"])} if kind == "add" else {}
        out = (n, c + shapes[other][1], h, w) if kind == "cat" else shapes[src]
        if kind == "cat":
            used_by_cat |= {src, other}
        return Stage(kind, (src, other), p), out
    if kind == "avgpool":
        halve = min(h, w) >= 2 and r.random() < 0.5
        return Stage(kind, (src,), {"halve": halve}), (n, c, h // 2, w // 2) if halve else shapes[src]
    if kind == "mean":
        mode = r.choice(["hw", "h", "c"])
        return Stage(kind, (src,), {"mode": mode}), {"hw": (n, c, 1, 1), "h": (n, c, 1, w),
                                                     "c": (n, 1, h, w)}[mode]
    if kind == "upsample":
        mode = r.choice(["nearest", "bilinear"] if flow == "eager" else ["nearest"])
        factor = 2 if 2 * max(h, w) <= MAX_HW else 1
        return Stage(kind, (src,), {"mode": mode, "factor": factor}), (n, c, factor * h, factor * w)
    if kind == "scalar":
        return Stage(kind, (src,), {"op": r.choice(["add", "mul"]),
                                    "c": r.choice([-1.3, -0.4, 0.7, 2.5])}), shapes[src]
    p = {"slope": r.choice([0.01, 0.2, 1.5]), "alpha": r.choice([0.5, 1.0]),
         "lo": r.choice([-2.0, -0.5, 0.0]), "hi": r.choice([0.25, 1.0, 3.0])}
    return Stage(kind, (src,), {k: p[k] for k in _ACT_PARAMS.get(kind, ())}), shapes[src]


_ACT_PARAMS = {"leaky_relu": ("slope",), "elu": ("alpha",), "clamp": ("lo", "hi")}


class _Fn(nn.Module):
    """A tensor method as a module (``x.clamp(lo, hi)``, ``x.mean(dims, keepdim=True)``)."""

    def __init__(self, name: str, *args: Any) -> None:
        super().__init__()
        self.name, self.args = name, args

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "mean":
            return x.mean(self.args[0], keepdim=True)
        if self.name == "up":
            return F.interpolate(x, scale_factor=self.args[0], mode=self.args[1])
        return getattr(x, self.name)(*self.args)


class ConvStage(nn.Module):
    def __init__(self, p: dict[str, Any]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(p["cin"], p["cout"], p["k"], padding=p["k"] // 2,
                              groups=p["cin"] if p["depthwise"] else 1)
        self.act = {"relu": nn.ReLU, "relu6": nn.ReLU6, "none": nn.Identity}[p["act"]]()
        self.pool = nn.MaxPool2d(2, ceil_mode=True) if p["pool"] == "max" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.conv(x)))


class LinearStage(nn.Module):
    def __init__(self, features: int, p: dict[str, Any]) -> None:
        super().__init__()
        self.fc = nn.Linear(features, p["units"])
        self.act = nn.ReLU() if p["act"] == "relu" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x.flatten(1)))


class FunctionalStage(nn.Module):
    """A QFunctional op (eager quantization needs one to quantize add/mul/cat/scalars)."""

    def __init__(self, op: str, c: float | None = None) -> None:
        super().__init__()
        self.f, self.op, self.c = nnq.FloatFunctional(), op, c

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op == "cat":
            return self.f.cat(list(xs), 1)
        if self.c is not None:
            return getattr(self.f, f"{self.op}_scalar")(xs[0], self.c)
        return getattr(self.f, self.op)(*xs)


def stage_module(s: Stage, shapes: list[tuple[int, ...]]) -> nn.Module:
    if s.kind == "conv":
        return ConvStage(s.p)
    if s.kind == "linear":
        _n, *rest = shapes[s.srcs[0]]
        return LinearStage(int(torch.tensor(rest).prod()), s.p)
    if s.kind in ("add", "mul", "cat"):
        return FunctionalStage(s.p.get("op", s.kind))
    if s.kind == "scalar":
        return FunctionalStage(s.p["op"], s.p["c"])
    if s.kind == "avgpool":
        return nn.AvgPool2d(2) if s.p["halve"] else nn.AvgPool2d(3, 1, 1)
    if s.kind == "mean":
        return _Fn("mean", {"hw": (2, 3), "h": (2,), "c": (1,)}[s.p["mode"]])
    if s.kind == "upsample":
        return _Fn("up", float(s.p["factor"]), s.p["mode"])
    ctor = ACTS[s.kind]
    return ctor(s.p) if s.p else ctor()


class TapNet(nn.Module):
    """The case's stages; returns every tap. Eager mode wraps it in Quant/DeQuant stubs (tap 0,
    the quantized input, is returned too); ``raw`` skips the stubs (quint8 model I/O)."""

    def __init__(self, case: QCase) -> None:
        super().__init__()
        shapes: list[tuple[int, ...]] = [case.shape]
        mods = []
        with torch.no_grad():
            x = torch.zeros(case.shape)
            taps = [x]
            for s in case.stages:
                m = stage_module(s, shapes)
                taps.append(m(*[taps[i] for i in s.srcs]))
                shapes.append(tuple(taps[-1].shape))
                mods.append(m)
        self.stages = nn.ModuleList(mods)
        self.srcs = [s.srcs for s in case.stages]
        self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
        self.stubs, self.raw = case.flow == "eager", False

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = [x if self.raw or not self.stubs else self.quant(x)]
        for m, srcs in zip(self.stages, self.srcs, strict=True):
            taps.append(m(*[taps[i] for i in srcs]))
        return taps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        taps = self.taps(x)
        if self.raw or not self.stubs:
            return tuple(taps[1:])
        return tuple(self.dequant(t) for t in taps)


def build(case: QCase) -> tuple[nn.Module, torch.Tensor]:
    """The quantized model and its example input (quint8 for quint8 I/O)."""
    from ..quant.pt2e_helpers import quantize_pt2e

    torch.manual_seed(case.seed)
    net = TapNet(case).eval()
    calib = [torch.randn(*case.shape) for _ in range(3)]
    x = torch.randn(*case.shape)
    if case.flow == "pt2e":
        return quantize_pt2e(net, x, calib, target=case.target), x
    model = quantize_model(net, calib, qconfig="x86" if case.per_channel else "qnnpack")
    for m in model.modules():
        if isinstance(m, nnq.ReLU6) or (isinstance(m, _Fn) and m.name == "clamp"):
            # torch 2.14's quantized relu6, clamp and hardtanh misread channels_last input (the
            # layout qnnpack convs return): eager is wrong there (docs/fuzzing.md, open
            # finding 6), so the reference gets contiguous input.
            m.register_forward_pre_hook(lambda _m, a: (a[0].contiguous(),))
    if case.quint8_io:
        xq = model.quant(x)
        model.raw = True
        return model, xq
    return model, x
