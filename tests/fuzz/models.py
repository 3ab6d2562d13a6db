"""Layer specs and ``LayerNet``, the nn.Module that interprets a list of them for eager and compile."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .specs import (
    Act,
    AdaptiveAvg,
    Arith,
    BatchNorm,
    ChannelLinear,
    Chunk,
    Concat,
    Conv,
    ConvT,
    GlobalMean,
    Head,
    LastDimLinear,
    Mean,
    Pad,
    Permute,
    Pool,
    Residual,
    Shuffle,
    Slice,
    Softmax,
    Tap,
    Upsample,
)

_ACT_MODULES: dict[str, Any] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid, "silu": nn.SiLU,
}
_INPLACE = {"relu", "relu6", "hardswish", "hardsigmoid", "silu", "hardtanh", "leaky_relu", "elu"}


class Activation(nn.Module):
    """One activation in one spelling (module, functional or in-place)."""

    def __init__(self, spec: Act, channels: int) -> None:
        super().__init__()
        self.spec = spec
        p = spec.params
        mods: dict[str, Any] = {
            **{k: (lambda c=c: c()) for k, c in _ACT_MODULES.items()},
            "hardtanh": lambda: nn.Hardtanh(p[0], p[1]),
            "leaky_relu": lambda: nn.LeakyReLU(p[0]),
            "elu": lambda: nn.ELU(p[0]),
            "prelu": lambda: nn.PReLU(channels if p[0] else 1),
            "clamp": nn.Identity, "clamp_min": nn.Identity, "clamp_max": nn.Identity,
        }
        self.mod = mods[spec.name]()
        if spec.name == "prelu":
            with torch.no_grad():
                self.mod.weight.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        if s.name == "clamp":
            return torch.clamp(x, *s.params)
        if s.name == "clamp_min":
            return x.clamp(min=s.params[0])
        if s.name == "clamp_max":
            return x.clamp(max=s.params[0])
        if s.spelling == "module" or s.name == "prelu":
            return self.mod(x)
        inplace = s.spelling == "inplace" and s.name in _INPLACE
        if inplace:
            x = x * 1.0  # never mutate a tensor the caller can see
        fn = getattr(F, s.name)
        args = {"hardtanh": s.params[:2], "leaky_relu": s.params[:1], "elu": s.params[:1]}
        extra = args.get(s.name, ())
        return fn(x, *extra, inplace=True) if inplace else fn(x, *extra)


class Block(nn.Module):
    """A spec that is not a single torch module: residuals, branches, slicing, padding, ..."""

    def __init__(self, spec: Any, rank: int, subs: list[nn.Module]) -> None:
        super().__init__()
        self.spec = spec
        self.rank = rank
        self.subs = nn.ModuleList(subs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        if isinstance(s, Residual):
            return x + self.subs[1](self.subs[0](x))
        if isinstance(s, Concat):
            outs, it = [], iter(self.subs)
            for b in s.branches:
                outs.append(x if b is None else next(it)(x))
            return torch.cat(outs, dim=1)
        if isinstance(s, Upsample):
            ac = s.align_corners if s.mode == "bilinear" else None
            if s.spelling == "size":
                size = (x.shape[2] * s.scale[0], x.shape[3] * s.scale[1])
                return F.interpolate(x, size=size, mode=s.mode, align_corners=ac)
            scale = (float(s.scale[0]), float(s.scale[1]))
            return F.interpolate(x, scale_factor=scale, mode=s.mode, align_corners=ac)
        if isinstance(s, Shuffle):  # ShuffleNet's spelling, read from the shape as users write it
            b, c, h, w = x.size()
            return x.view(b, s.groups, c // s.groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)
        if isinstance(s, Chunk):
            return torch.cat(x.chunk(s.n, s.dim)[::-1], dim=s.dim)
        if isinstance(s, Slice):
            idx = [slice(None)] * self.rank
            idx[s.dim] = slice(s.start, s.stop, s.step)
            return x[tuple(idx)]
        if isinstance(s, Pad):
            return F.pad(x, s.pads, value=s.value)
        if isinstance(s, Softmax):
            fn = F.log_softmax if s.log else F.softmax
            if s.flat_hw:
                n, c, h, w = x.shape
                return fn(x.reshape(n, c, h * w), dim=s.dim).reshape(n, c, h, w)
            return fn(x, dim=s.dim)
        if isinstance(s, Arith):
            return {"add": lambda: x + s.scalar, "sub": lambda: x - s.scalar,
                    "mul": lambda: x * s.scalar, "div": lambda: x / s.scalar,
                    "rsub": lambda: s.scalar - x, "neg": lambda: -x}[s.op]()
        if isinstance(s, Mean):
            return x.mean(dim=s.dims, keepdim=True)
        if isinstance(s, Permute):
            inv = [s.perm.index(i) for i in range(4)]
            return self.subs[0](x.permute(*s.perm)).permute(*inv)
        if isinstance(s, Head):
            y = {"flatten": lambda: torch.flatten(x, 1), "reshape": lambda: x.reshape(x.shape[0], -1),
                 "module": lambda: self.subs[1](x)}[s.flatten]()
            return self.subs[0](y)
        if isinstance(s, ChannelLinear):
            return self.subs[0](x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        if isinstance(s, GlobalMean):
            return x.mean((2, 3))
        if isinstance(s, LastDimLinear | Tap):
            return self.subs[0](x) if self.subs else x
        raise TypeError(f"unknown spec {s!r}")


def build_layer(spec: Any, shape: tuple[int, ...]) -> nn.Module:
    """The module for ``spec`` applied to a tensor of ``shape`` (weights from the global RNG)."""
    c = shape[1]
    if isinstance(spec, Conv):
        return nn.Conv2d(c, spec.cout, spec.k, spec.stride, spec.padding, spec.dilation,
                         spec.groups, spec.bias)
    if isinstance(spec, ConvT):
        return nn.ConvTranspose2d(c, spec.cout, spec.k, spec.stride, spec.padding,
                                  spec.output_padding, 1, spec.bias, spec.dilation)
    if isinstance(spec, Act):
        return Activation(spec, c)
    if isinstance(spec, Pool):
        if spec.kind == "max":
            return nn.MaxPool2d(spec.k, spec.stride, spec.padding, ceil_mode=spec.ceil_mode)
        return nn.AvgPool2d(spec.k, spec.stride, spec.padding, spec.ceil_mode, spec.count_include_pad)
    if isinstance(spec, AdaptiveAvg):
        return nn.AdaptiveAvgPool2d(spec.out)
    if isinstance(spec, BatchNorm):
        bn = nn.BatchNorm2d(c) if len(shape) == 4 else nn.BatchNorm1d(c)
        with torch.no_grad():
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        return bn.eval()
    if isinstance(spec, Upsample) and spec.spelling == "module":
        ac = spec.align_corners if spec.mode == "bilinear" else None
        return nn.Upsample(scale_factor=(float(spec.scale[0]), float(spec.scale[1])), mode=spec.mode,
                           align_corners=ac)
    if isinstance(spec, Shuffle) and not spec.idiom:
        return nn.ChannelShuffle(spec.groups)
    subs: list[nn.Module] = []
    if isinstance(spec, Residual):
        pad = spec.k // 2 if spec.explicit else "same"
        subs = [nn.Conv2d(c, c, spec.k, padding=pad), Activation(spec.act, c)]
    elif isinstance(spec, Concat):
        subs = [build_layer(b, shape) for b in spec.branches if b is not None]
    elif isinstance(spec, Permute):
        subs = [Activation(spec.act, shape[spec.perm[1]])]
    elif isinstance(spec, Head):
        features = 1
        for d in shape[1:]:
            features *= d
        subs = [nn.Linear(features, spec.units, bias=spec.bias), nn.Flatten()]
    elif isinstance(spec, ChannelLinear):
        subs = [nn.Linear(c, spec.cout, bias=spec.bias)]
    elif isinstance(spec, LastDimLinear):
        subs = [nn.Linear(shape[-1], spec.units)]
    return Block(spec, len(shape), subs)


class LayerNet(nn.Module):
    """Applies one module per spec in order; built once, so eager and compile see the same net."""

    def __init__(self, specs: tuple[Any, ...], in_shape: tuple[int, ...], seed: int,
                 reads_shape: bool = False) -> None:
        super().__init__()
        self.specs = specs
        self.reads_shape = reads_shape
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        layers, shape = [], tuple(in_shape)
        with torch.no_grad():
            for spec in specs:
                layer = build_layer(spec, shape)
                out = layer.eval()(torch.zeros(shape))
                shape = tuple(out.shape)
                layers.append(layer)
        torch.random.set_rng_state(gen_state)
        self.layers = nn.ModuleList(layers)
        self.out_shape = shape
        self.eval()

    def forward(self, x: torch.Tensor) -> Any:
        if self.reads_shape and x.shape[-1] > 0:  # Python on shapes: fx fails, torch.export runs
            x = x * 1.0
        taps = []
        for spec, layer in zip(self.specs, self.layers, strict=True):
            x = layer(x)
            if isinstance(spec, Tap):
                taps.append(x)
        return (x, *taps) if taps else x
