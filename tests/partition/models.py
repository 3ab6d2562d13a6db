"""Small models with NNAPI-refused nodes between NNAPI-friendly stacks, for partitioning tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def stack(cin: int, cout: int, n: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.BatchNorm2d(cout),
                   nn.ReLU()]
    return nn.Sequential(*layers)


class TwoStacks(nn.Module):
    """conv stack -> cumsum, flip, sort (no NNAPI form) -> conv stack."""

    def __init__(self) -> None:
        super().__init__()
        self.a = stack(3, 8)
        self.b = stack(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        y = torch.cumsum(y, dim=1)
        y = y.flip(3)
        y = torch.sort(y, dim=2).values
        return self.b(y)


class SharedWeights(nn.Module):
    """The same conv stack before and after a host op: its weights must be stored once."""

    def __init__(self) -> None:
        super().__init__()
        self.s = stack(8, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s(torch.cumsum(self.s(x), dim=3))


class InplaceHost(nn.Module):
    """An in-place host op on a value an NNAPI op also reads (order must not matter)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = stack(3, 4)
        self.b = stack(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        t = y * 2.0
        y.cumsum_(1)
        return self.b(y) + t


class GruHead(nn.Module):
    """conv features -> a recurrent layer over time (tuple output) -> linear. With a cell that
    has no NNAPI lowering (an LSTM with ``proj_size``), the recurrent layer is a host module."""

    def __init__(self, cell: Callable[..., nn.Module] = nn.GRU) -> None:
        super().__init__()
        self.conv = stack(1, 8)
        self.gru = cell(8 * 8, 16, batch_first=True)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)  # [1, 8, 8, T]
        y = y.permute(0, 3, 1, 2).reshape(1, y.shape[3], 64)
        out, _ = self.gru(y)
        return torch.sigmoid(self.fc(out))


class ShapeReader(nn.Module):
    """Python reads the shape (symbolic tracing fails: torch.export captures it) + a host op."""

    def __init__(self) -> None:
        super().__init__()
        self.a = stack(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, _ = x.size()
        y = self.a(x)
        if h > 4:
            y = torch.cumsum(y, dim=2)
        return y.relu() + 1.0


class Masked(nn.Module):
    """A forward argument with a default that the example inputs leave out (timm's attn_mask)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = stack(3, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.a(x)
        if mask is not None:
            y = y * mask
        return y


class Encoder(nn.Module):
    """nn.TransformerEncoderLayer (batch_first): a composite torch module, traced through."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class Attention(nn.Module):
    """nn.MultiheadAttention, traced through (its projections can run on NNAPI)."""

    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


class GruMask(nn.Module):
    """RNNoise-style mask estimator: frames -> GRU -> Linear -> sigmoid mask x input."""

    def __init__(self, bins: int = 24) -> None:
        super().__init__()
        self.inp = nn.Linear(bins, 32)
        self.gru = nn.GRU(32, 32, batch_first=True)
        self.out = nn.Linear(32, bins)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(torch.tanh(self.inp(frames)))
        return torch.sigmoid(self.out(h)) * frames


class Lstm2(nn.Module):
    """A 2-layer LSTM over feature frames with a linear read-out of every step."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(16, 24, num_layers=2)
        self.head = nn.Linear(24, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, (h, c) = self.lstm(x)
        return self.head(y).relu() + h[-1].sum() * 0.0 + c.mean()


class Cumsum(nn.Module):
    """One torch.cumsum inside an otherwise convolutional net."""

    def __init__(self) -> None:
        super().__init__()
        self.a = stack(3, 8)
        self.b = stack(8, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(self.a(x).cumsum(dim=2))
        return self.fc(self.pool(y).flatten(1))
