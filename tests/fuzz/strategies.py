"""Hypothesis strategies for random valid float models (``FuzzCase``) over the supported op set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import strategies as st

from . import models as m
from .models import LayerNet

MAX_HW = 16  # spatial extent beyond which growing layers (upsample, strided convT, pad) are skipped
MAX_C = 12
ACTS_PLAIN = ("relu", "relu6", "sigmoid", "tanh", "hardswish", "hardsigmoid", "silu")
ACTS = (*ACTS_PLAIN, "hardtanh", "leaky_relu", "elu", "prelu", "clamp", "clamp_min", "clamp_max")
TARGETS = ("android-10", "android-11")


@dataclass(frozen=True)
class FuzzCase:
    """One random model and its input: what hypothesis prints when a case fails."""

    specs: tuple[Any, ...]
    in_shape: tuple[int, int, int, int]
    channels_last: bool
    target: str
    seed: int
    reads_shape: bool = False  # forces torch.export capture

    def build(self) -> tuple[LayerNet, torch.Tensor]:
        net = LayerNet(self.specs, self.in_shape, self.seed, self.reads_shape)
        x = torch.randn(self.in_shape, generator=torch.Generator().manual_seed(self.seed + 1))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return net, x


def _float(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def activations(draw: st.DrawFn) -> m.Act:
    name = draw(st.sampled_from(ACTS))
    params: tuple[float, ...] = ()
    if name in ("hardtanh", "clamp"):
        lo = draw(st.sampled_from([-1.0, 0.0, draw(_float(-3, 1))]))
        hi = draw(st.sampled_from([1.0, 6.0, lo + draw(_float(0.1, 4))]))
        params = (lo, max(hi, lo + 0.1))
    elif name in ("clamp_min", "clamp_max"):
        params = (draw(_float(-2, 2)),)
    elif name == "leaky_relu":
        params = (draw(st.sampled_from([0.01, draw(_float(-1, 1))])),)
    elif name == "elu":
        params = (draw(st.sampled_from([1.0, draw(_float(0, 2))])),)
    elif name == "prelu":
        params = (float(draw(st.booleans())),)
    spelling = draw(st.sampled_from(["module", "functional", "inplace"]))
    return m.Act(name, params, spelling)


def _kernel(draw: st.DrawFn, size: int, pad: int, dil: int, kmax: int = 5) -> int:
    """A kernel extent whose dilated window fits the padded input."""
    return draw(st.integers(1, max(1, min(kmax, (size + 2 * pad - 1) // dil + 1))))


@st.composite
def convs(draw: st.DrawFn, shape: tuple[int, ...], same_only: bool = False) -> m.Conv:
    _, c, h, w = shape
    kind = draw(st.sampled_from(["plain", "depthwise", "grouped"]))
    divisors = [g for g in range(2, c) if c % g == 0]
    if kind == "grouped" and not divisors:
        kind = "plain"
    dil = (1, 1) if kind == "grouped" else tuple(draw(st.integers(1, 2)) for _ in range(2))
    padding: Any
    if same_only:  # keep H and W: 'same', or its explicit form with an odd kernel
        k = tuple(2 * draw(st.integers(0, 2)) + 1 for _ in range(2))
        explicit = tuple(d * (kk - 1) // 2 for d, kk in zip(dil, k, strict=True))
        padding = draw(st.sampled_from(["same", explicit]))
        stride = (1, 1)
    else:
        mode = draw(st.sampled_from(["same", "valid", "ints"]))
        ph, pw = (draw(st.integers(0, 2)), draw(st.integers(0, 2))) if mode == "ints" else (0, 0)
        padding = (ph, pw) if mode == "ints" else mode
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if mode == "ints" else (1, 1)
        k = (_kernel(draw, h, ph, dil[0]), _kernel(draw, w, pw, dil[1]))
        if mode == "same":  # any kernel fits: the output keeps the input size
            k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    # A 1-wide kernel with dilation > 1 is never drawn: eager torch's oneDNN conv segfaults on
    # some of them (docs/fuzzing.md, tools/torch_conv_segfault.py), and the dilation of a
    # 1-wide kernel changes nothing in the result.
    dil = tuple(1 if kk == 1 else d for kk, d in zip(k, dil, strict=True))
    if kind == "plain":
        groups, cout = 1, draw(st.integers(1, 8))
    elif kind == "depthwise":
        groups, cout = c, c * draw(st.integers(1, 3))
    else:
        groups = draw(st.sampled_from(divisors))
        cout = groups * draw(st.integers(1, 2))
    return m.Conv(cout, k, stride, padding, dil, groups, draw(st.booleans()))


@st.composite
def conv_transposes(draw: st.DrawFn, shape: tuple[int, ...]) -> m.ConvT:
    _, _, h, w = shape
    grow = max(h, w) * 2 <= MAX_HW
    dims = []
    for size in (h, w):
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3 if grow else 1)), draw(st.integers(1, 2))
        p = draw(st.integers(0, ((size - 1) * s + d * (k - 1)) // 2))  # output extent >= 1
        op = draw(st.integers(0, min(p, max(s, d) - 1)))
        dims.append((k, s, d, p, op))
    (kh, sh, dh, ph, oh), (kw, sw, dw, pw, ow) = dims
    return m.ConvT(draw(st.integers(1, 8)), (kh, kw), (sh, sw), (ph, pw), (oh, ow), (dh, dw),
                   draw(st.booleans()))


def _pool_out(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    out = (size + 2 * p - k + ((s - 1) if ceil else 0)) // s + 1
    return out - 1 if ceil and (out - 1) * s >= size + p else out


@st.composite
def pools(draw: st.DrawFn, shape: tuple[int, ...]) -> m.Pool:
    _, _, h, w = shape
    ceil = draw(st.booleans())
    dims = []
    for size in (h, w):
        k = draw(st.integers(1, min(4, size + 2)))
        p = draw(st.integers(0, k // 2))
        k = min(k, size + 2 * p)
        s = draw(st.integers(1, 3))
        dims.append((k, s, p) if _pool_out(size, k, s, p, ceil) >= 1 else (1, 1, 0))
    (kh, sh, ph), (kw, sw, pw) = dims
    return m.Pool(draw(st.sampled_from(["max", "avg"])), (kh, kw), (sh, sw), (ph, pw), ceil,
                  draw(st.booleans()))


@st.composite
def slices(draw: st.DrawFn, shape: tuple[int, ...]) -> m.Slice:
    dim = draw(st.integers(1, len(shape) - 1))
    size = shape[dim]
    step = draw(st.integers(1, 3))
    start = draw(st.integers(-size, size - 1))
    first = start % size
    stop = draw(st.integers(first + 1, size + 2))
    if draw(st.booleans()) and stop <= size:
        stop -= size  # negative stop, same extent
        if stop == 0:
            stop = size
    return m.Slice(dim, start, stop, step)


def _divisor_pair(draw: st.DrawFn, h: int, w: int) -> tuple[int, int]:
    return (draw(st.sampled_from([d for d in range(1, h + 1) if h % d == 0])),
            draw(st.sampled_from([d for d in range(1, w + 1) if w % d == 0])))


@st.composite
def image_layer(draw: st.DrawFn, shape: tuple[int, ...]) -> Any:
    """One layer valid on an NCHW tensor of ``shape``; keeps the result rank 4."""
    _, c, h, w = shape
    small = max(h, w) * 2 <= MAX_HW
    kinds = ["conv", "conv", "act", "act", "pool", "bn", "residual", "concat", "slice", "softmax",
             "arith", "mean", "permute", "adaptive", "convt", "channel_linear", "lastdim_linear",
             "tap", "chunk", "shuffle"]
    if small:
        kinds += ["upsample", "pad"]
    kind = draw(st.sampled_from(kinds))
    if kind == "conv":
        return draw(convs(shape))
    if kind == "convt":
        return draw(conv_transposes(shape))
    if kind == "act":
        return draw(activations())
    if kind == "pool":
        return draw(pools(shape))
    if kind == "bn":
        return m.BatchNorm()
    if kind == "residual":
        return m.Residual(draw(st.sampled_from([1, 3, 5])), draw(activations()), draw(st.booleans()))
    if kind == "concat":
        branches = draw(st.lists(st.one_of(st.none(), convs(shape, True)), min_size=2,
                                 max_size=3))
        return m.Concat(tuple(branches))
    if kind == "slice":
        return draw(slices(shape))
    if kind == "softmax":
        flat = draw(st.booleans())
        return m.Softmax(draw(st.integers(-3, 2) if flat else st.integers(-4, 3)), draw(st.booleans()),
                         flat)
    if kind == "arith":
        op = draw(st.sampled_from(["add", "sub", "mul", "div", "rsub", "neg"]))
        v = draw(_float(-3, 3))
        return m.Arith(op, v if op != "div" or abs(v) >= 0.25 else 0.5)
    if kind == "mean":
        return m.Mean(tuple(sorted(draw(st.sets(st.integers(1, 3), min_size=1)))))
    if kind == "permute":
        return m.Permute(tuple(draw(st.permutations(range(4)))), draw(activations()))
    if kind == "adaptive":
        return m.AdaptiveAvg(draw(st.sampled_from([(1, 1), _divisor_pair(draw, h, w)])))
    if kind == "channel_linear":
        return m.ChannelLinear(draw(st.integers(1, 8)), draw(st.booleans()))
    if kind == "lastdim_linear":
        return m.LastDimLinear(draw(st.integers(1, 8)))
    if kind == "tap":
        return m.Tap()
    if kind == "upsample":
        scale = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        mode = draw(st.sampled_from(["nearest", "bilinear"]))
        spelling = draw(st.sampled_from(["module", "scale", "size"]))
        return m.Upsample(scale, spelling, mode, draw(st.booleans()))
    if kind == "chunk":
        dim = draw(st.integers(1, 3))
        return m.Chunk(draw(st.integers(1, max(1, shape[dim]))), dim)
    if kind == "shuffle":
        groups = draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
        return m.Shuffle(groups, idiom=draw(st.booleans()))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    return m.Pad(pads, draw(st.sampled_from([0.0, draw(_float(-2, 2))])))  # type: ignore[arg-type]


@st.composite
def head_layer(draw: st.DrawFn) -> Any:
    """One layer valid on a rank-2 [N, features] tensor."""
    kind = draw(st.sampled_from(["head", "act", "softmax", "arith", "bn", "tap"]))
    if kind == "bn":
        return m.BatchNorm()
    if kind == "tap":
        return m.Tap()
    if kind == "head":
        return m.Head(draw(st.integers(1, 10)), draw(st.sampled_from(["flatten", "reshape", "module"])),
                      draw(st.booleans()))
    if kind == "act":
        return draw(activations())
    if kind == "softmax":
        return m.Softmax(draw(st.integers(-2, 1)), draw(st.booleans()))
    return m.Arith(draw(st.sampled_from(["add", "mul", "sub"])), draw(_float(-3, 3)))


def _out_shape(spec: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(m.build_layer(spec, shape).eval()(torch.zeros(shape)).shape)


@st.composite
def fuzz_cases(draw: st.DrawFn, max_layers: int = 6) -> FuzzCase:
    n, export = draw(st.integers(1, 3)), draw(st.integers(0, 3)) == 0
    in_shape = (n, draw(st.integers(1, 6)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    shape: tuple[int, ...] = in_shape
    specs: list[Any] = []
    for _ in range(draw(st.integers(1, max_layers))):
        spec = draw(image_layer(shape) if len(shape) == 4 else head_layer())
        shape = _out_shape(spec, shape)
        specs.append(spec)
        if len(shape) == 4 and (shape[1] > MAX_C or max(shape[2:]) > MAX_HW):
            break
    if len(shape) == 4 and draw(st.booleans()):
        head = m.Head(draw(st.integers(1, 10)), draw(st.sampled_from(["flatten", "reshape"])))
        specs.append(draw(st.sampled_from([m.GlobalMean(), head])))
        specs += draw(st.lists(head_layer(), max_size=2))
    return FuzzCase(tuple(specs), in_shape, draw(st.booleans()), draw(st.sampled_from(TARGETS)),
                    draw(st.integers(0, 2**16)), export)
