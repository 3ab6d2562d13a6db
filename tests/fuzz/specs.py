"""Layer specs: frozen dataclasses describing one layer each; printed when a fuzz case fails."""

from __future__ import annotations

from dataclasses import dataclass

Pair = tuple[int, int]


@dataclass(frozen=True)
class Conv:
    cout: int
    k: Pair
    stride: Pair = (1, 1)
    padding: Pair | str = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True


@dataclass(frozen=True)
class ConvT:
    cout: int
    k: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    bias: bool = True


@dataclass(frozen=True)
class Act:
    name: str
    params: tuple[float, ...] = ()
    spelling: str = "module"  # "module" | "functional" | "inplace"


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" | "avg"
    k: Pair
    stride: Pair
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True


@dataclass(frozen=True)
class AdaptiveAvg:
    out: Pair


@dataclass(frozen=True)
class BatchNorm:
    pass


@dataclass(frozen=True)
class Residual:
    k: int  # odd kernel of the 'same' conv in the branch
    act: Act
    explicit: bool = False  # padding k // 2 instead of 'same'


@dataclass(frozen=True)
class Concat:
    branches: tuple[Conv | None, ...]  # None: the input itself


@dataclass(frozen=True)
class Upsample:
    scale: Pair
    spelling: str = "module"  # "module" | "scale" | "size"
    mode: str = "nearest"  # "nearest" | "bilinear"
    align_corners: bool = False  # bilinear only


@dataclass(frozen=True)
class Chunk:
    """x.chunk(n, dim), concatenated back in reverse order."""

    n: int
    dim: int


@dataclass(frozen=True)
class Shuffle:
    """nn.ChannelShuffle, or (``idiom``) the view / transpose / contiguous / view spelling."""

    groups: int
    idiom: bool = False


@dataclass(frozen=True)
class Slice:
    dim: int
    start: int
    stop: int
    step: int


@dataclass(frozen=True)
class Pad:
    pads: tuple[int, int, int, int]  # left, right, top, bottom
    value: float = 0.0


@dataclass(frozen=True)
class Softmax:
    dim: int
    log: bool = False
    flat_hw: bool = False  # reshape to [N, C, H*W] first, and back afterwards


@dataclass(frozen=True)
class Arith:
    op: str  # "add" | "sub" | "mul" | "div" | "rsub"
    scalar: float


@dataclass(frozen=True)
class Mean:
    dims: tuple[int, ...]


@dataclass(frozen=True)
class Permute:
    perm: tuple[int, int, int, int]
    act: Act


@dataclass(frozen=True)
class Head:
    units: int
    flatten: str = "flatten"  # "flatten" | "reshape" | "module"
    bias: bool = True


@dataclass(frozen=True)
class ChannelLinear:
    """permute to NHWC, nn.Linear over channels, permute back."""

    cout: int
    bias: bool = True


@dataclass(frozen=True)
class LastDimLinear:
    units: int


@dataclass(frozen=True)
class GlobalMean:
    """x.mean((2, 3)): image [N, C, H, W] -> features [N, C]."""


@dataclass(frozen=True)
class Tap:
    """The current tensor is also a model output (outputs become a tuple)."""
