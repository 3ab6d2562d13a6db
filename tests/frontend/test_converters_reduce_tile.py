"""Ops peer NNAPI converters lower and we now do too (issue 10): sin, amax / amin, prod,
any / all, dtype conversions (CAST, or SELECT / NOT_EQUAL for bool), repeat / tile (TILE) and
repeat_interleave (TILE or a constant GATHER), and indexing by a constant list (GATHER). Each
compiles whole in both capture dialects and matches eager on the virtual device; reductions and
TILE of NHWC images read the stored layout (no layout conversion) where the kept dims stay in
PyTorch's order. Also XCiT's two blocks that stopped it: a positional encoding computed from
constants (folded) and its cross-covariance q/k/v split."""

from __future__ import annotations

import zlib

import pytest
import torch
from torch import nn

from ..conftest import Fn, compile_whole
from .test_converters_ops import IMG, SEQ

CASES: dict[str, tuple] = {
    "sin": (lambda: Fn(lambda x: torch.sin(x * 3) + x.sin()), SEQ),
    # amax / amin: one dim, several dims, negative dims, keepdim both ways, all dims
    "amax-dim": (lambda: Fn(lambda x: x.amax(1)), IMG),
    "amax-keepdim": (lambda: Fn(lambda x: x.amax(dim=1, keepdim=True) - x), IMG),
    "amax-dims": (lambda: Fn(lambda x: (torch.amax(x, (2, 3)), x.amax((-1, 1), True))), IMG),
    "amax-all": (lambda: Fn(lambda x: (x.amax(), torch.amax(x, dim=[]))), SEQ),
    "amin": (lambda: Fn(lambda x: (x.amin(-1), torch.amin(x, (0, 2), keepdim=True))), SEQ),
    "amin-all": (lambda: Fn(lambda x: x.amin() + x), IMG),
    # prod
    "prod-dim": (lambda: Fn(lambda x: (torch.prod(x, 1), x.prod(-1, keepdim=True))), SEQ),
    "prod-all": (lambda: Fn(lambda x: x.prod()), (2, 3, 4)),
    # any / all of bool, float and int data
    "any": (lambda: Fn(lambda x: ((x > 1).any(), (x > 1).any(-1), torch.any(x > 1.5, 1, True))), SEQ),
    "all": (lambda: Fn(lambda x: ((x > -2).all(), (x > -1).all(1), torch.all(x < 1, -1, True))), SEQ),
    "any-float": (lambda: Fn(lambda x: (x.relu().any(-1), torch.all(x.relu(), 1))), SEQ),
    "any-int": (lambda: Fn(lambda x: (x.argmax(-1).any(-1), x.argmin(1).all())), SEQ),
    "any-dims": (lambda: Fn(lambda x: (x > 1).any(dim=(1, 2))), IMG),
    # dtype conversions
    "to-int": (lambda: Fn(lambda x: ((x * 4).int(), (x * 4).to(torch.int32))), SEQ),
    "to-long": (lambda: Fn(lambda x: ((x * 4).long(), (x * -3).to(torch.int64))), SEQ),
    "int-to-float": (lambda: Fn(lambda x: x.argmax(-1).float() * 0.5 + x[..., 0]), SEQ),
    "bool-to-float": (lambda: Fn(lambda x: (x > 0).float() * x + (x < 0).to(torch.float32)), IMG),
    "bool-to-int": (lambda: Fn(lambda x: ((x > 0).int(), (x > 0.5).long())), SEQ),
    "to-bool": (lambda: Fn(lambda x: ((x * 2).floor().bool(), x.argmax(-1).bool())), SEQ),
    "type-as": (lambda: Fn(lambda x: (x > 0).type_as(x) * x), SEQ),
    "float-int-float": (lambda: Fn(lambda x: (x * 10).int().float() / 10), IMG),
    # repeat / tile
    "repeat": (lambda: Fn(lambda x: x.repeat(1, 2, 3)), SEQ),
    "repeat-new-dims": (lambda: Fn(lambda x: x[0].repeat(2, 1, 2, 1)), SEQ),
    "repeat-image": (lambda: Fn(lambda x: x.repeat(1, 2, 1, 2) * 2), IMG),
    "tile": (lambda: Fn(lambda x: (torch.tile(x, (2,)), x.tile(2, 1, 1))), SEQ),
    "repeat-int": (lambda: Fn(lambda x: x.argmax(-1).repeat(2, 3)), SEQ),
    # repeat_interleave
    "repeat-interleave": (lambda: Fn(lambda x: x.repeat_interleave(3, dim=1)), SEQ),
    "repeat-interleave-batch": (lambda: Fn(lambda x: x[:1].repeat_interleave(4, dim=0) + 1), IMG),
    "repeat-interleave-channels": (lambda: Fn(lambda x: torch.repeat_interleave(x, 2, 1) * 3), IMG),
    "repeat-interleave-tensor": (lambda: Fn(lambda x: x.repeat_interleave(
        torch.tensor([1, 0, 2, 3, 1]), dim=-2)), SEQ),
    "repeat-interleave-flat": (lambda: Fn(lambda x: x[0, :2].repeat_interleave(2)), SEQ),
}


@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_converter(name: str, dialect: str) -> None:
    factory, shape = CASES[name]
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    compile_whole(factory(), torch.randn(*shape), dialect=dialect)


class ConvThen(nn.Module):
    """A conv (so the image is stored NHWC), then ``f`` of its output."""

    def __init__(self, f: object) -> None:
        super().__init__()
        self.conv, self.f = nn.Conv2d(4, 6, 3, padding=1), f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(self.conv(x))  # type: ignore[operator]


NHWC_CASES = {
    # CBAM / csatv2 spatial attention: max and mean over channels, keepdim (no conversion)
    "amax-channels-keepdim": (lambda y: torch.cat([y.amax(1, keepdim=True), y.mean(1, True)], 1), 0),
    "amin-hw": (lambda y: y.amin((2, 3)), 0),  # [N, C] stays in order in NHWC storage
    "amax-h": (lambda y: y.amax(2), 1),  # [N, C, W] is not NHWC's order: reads NCHW
    "prod-w-keepdim": (lambda y: y.prod(3, keepdim=True) + y, 0),
    "tile-image": (lambda y: y.repeat(1, 2, 3, 1) * 2, 0),
    "repeat-interleave-channels": (lambda y: y.repeat_interleave(2, 1).relu(), 0),
    "repeat-interleave-w": (lambda y: torch.repeat_interleave(y, 2, -1), 0),
}


@pytest.mark.parametrize("target", ["android-10", "android-13"])
@pytest.mark.parametrize("name", sorted(NHWC_CASES))
def test_reductions_and_tiles_of_an_nhwc_image(name: str, target: str) -> None:
    """Axes of reductions, TILE multiples and GATHER axes are remapped to NHWC storage: no
    layout conversion inside NNAPI, except for a reduction whose kept dims would reorder."""
    f, conversions = NHWC_CASES[name]
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    cm = compile_whole(ConvThen(f), torch.randn(2, 4, 7, 9), target=target)
    assert cm.stats["layout_conversions"] == conversions


ZIGZAG = [0, 1, 4, 8, 5, 2, 3, 6]
INDEX_CASES = {
    "list": lambda x: x[:, :, ZIGZAG] * 2,  # CSATv2's zigzag order of DCT coefficients
    "tensor-last": lambda x: x[..., torch.tensor([3, -1, 0])] + 1,
    "dim-0": lambda x: x[[1, 0, 1]] - x[0],
}


@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("name", sorted(INDEX_CASES))
def test_constant_advanced_indexing_is_a_gather(name: str, dialect: str) -> None:
    compile_whole(Fn(INDEX_CASES[name]), torch.randn(2, 3, 9), dialect=dialect)


class ConstantBranch(nn.Module):
    """XCiT's positional encoding: a conv (a module call) of a fixed grid, repeated over the
    batch and added. Folded at compile time, in NNAPI it is one constant."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(2, 4, 1)
        self.register_buffer("grid", torch.stack(torch.meshgrid(
            torch.linspace(0, 1, 7), torch.linspace(0, 1, 9), indexing="ij")).unsqueeze(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(self.grid).repeat(x.shape[0], 1, 1, 1)


class CrossCovariance(nn.Module):
    """XCiT's q/k/v split: ``reshape(B, N, 3, H, D).permute(2, 0, 3, 4, 1)``, each piece
    [B, H, D, N], then attention over channels."""

    def __init__(self, c: int = 12, heads: int = 3) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(c, 3 * c), nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 4, 1).unbind(0)
        q, k = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
        a = (q @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((a @ v).permute(0, 3, 1, 2).reshape(b, n, c))


@pytest.mark.parametrize("target", ["android-10", "android-13"])
@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("name", ["constant-branch", "cross-covariance"])
def test_xcit_blocks_compile_whole(name: str, dialect: str, target: str) -> None:
    model, shape = {"constant-branch": (ConstantBranch, IMG),
                    "cross-covariance": (CrossCovariance, SEQ)}[name]
    compile_whole(model(), torch.randn(*shape), dialect=dialect, target=target)


EXPAND_CASES = {
    "float": (lambda x: x[:, :1].expand(-1, 5, -1) * 2, "tile"),
    "new-dims": (lambda x: x[0, 0].expand(2, 3, 12).contiguous() - 1, "tile"),
    "int": (lambda x: x.argmax(-1, keepdim=True).expand(-1, -1, 4), "tile"),
    "bool": (lambda x: (x[:, :, :1] > 0).expand_as(x), "logical_or"),
    "broadcast-to": (lambda x: torch.broadcast_to(x[:1], (3, 5, 12)).contiguous(), "tile"),
}


@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("name", sorted(EXPAND_CASES))
def test_expand_is_a_tile(name: str, dialect: str) -> None:
    """expand / expand_as / broadcast_to (then .contiguous()): TILE for float and int32 data."""
    f, op = EXPAND_CASES[name]
    cm = compile_whole(Fn(f), torch.randn(*SEQ), dialect=dialect)
    assert cm.graph is not None
    assert op in [o.mnemonic for seg in cm.graph.segments for o in seg.program.ops]
