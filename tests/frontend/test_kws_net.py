"""A small keyword-spotting net (issue 10): Conv2d on a log-mel spectrogram, GroupNorm, exact
GELU, pooling, a linear head and log_softmax. At Android 10 it compiles to one NNAPI segment
with no host op and no layout conversion, in both capture dialects, and matches eager."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnapi_compiler.frontend.capture import capture

from ..conftest import assert_close_scaled, run_compiled


class KeywordSpotter(nn.Module):
    """[batch, 1, mel bins, frames] -> log-probabilities of ``classes`` keywords."""

    def __init__(self, classes: int = 12, export_only: bool = False) -> None:
        super().__init__()
        self.export_only = export_only
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GroupNorm(8, 32), nn.GELU(),
            nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.GroupNorm(1, 32), nn.GELU(),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.export_only and x.shape[-1] == 0:  # a shape branch: fx cannot trace it
            return x
        y = self.body(x).mean((2, 3))
        return F.log_softmax(self.head(y), dim=-1)


def _randomize_norms(m: nn.Module) -> None:
    with torch.no_grad():
        for g in m.modules():
            if isinstance(g, nn.GroupNorm):
                g.weight.uniform_(0.5, 1.5)
                g.bias.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("dialect", ["fx", "export"])
def test_keyword_spotter_is_one_nnapi_segment(dialect: str) -> None:
    model = KeywordSpotter(export_only=dialect == "export").eval()
    _randomize_norms(model)
    x = torch.randn(2, 1, 40, 49)  # 40 mel bins, 49 frames
    assert capture(model, (x,)).dialect == dialect
    cm, got, ref = run_compiled(model, x, target="android-10")
    assert_close_scaled(got, ref)
    stats = cm.stats
    assert (stats["segments"], stats["cpu_segments"], stats["host_ops"]) == (1, 0, 0)
    assert stats["layout_conversions"] == 0
