"""Token-layout idioms on NHWC storage (passes/layout.py) cost no TRANSPOSE.

``x.flatten(2).transpose(1, 2)`` ([B, C, H, W] -> [B, HW, C]) and its inverse
``t.transpose(1, 2).reshape(B, C, H, W)`` are reshapes of NHWC storage, and so are ConvNeXt's
``permute(0, 2, 3, 1)`` / ``permute(0, 3, 1, 2)``. Every model here is checked against eager on the
virtual device and by its layout-conversion count (TRANSPOSEs plus NCHW-flagged ops).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import assert_close_scaled, run_compiled


class TokenMLP(nn.Module):
    """conv -> tokens -> Linear -> image -> conv (a MetaFormer / Segformer stage)."""

    def __init__(self, spelling: str = "transpose") -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 8)
        self.b = nn.Conv2d(8, 4, 1)
        self.spelling = spelling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        b, c, h, w = y.shape
        if self.spelling == "transpose":
            t = y.flatten(2).transpose(1, 2)
            t = torch.relu(self.fc(t))
            y = t.transpose(1, 2).reshape(b, c, h, w)
        elif self.spelling == "permute":
            t = y.flatten(2).permute(0, 2, 1)
            t = torch.relu(self.fc(t))
            y = t.permute(0, 2, 1).reshape(b, -1, h, w)
        else:  # channels-last, as ConvNeXt spells it
            t = torch.relu(self.fc(y.permute(0, 2, 3, 1)))
            y = t.permute(0, 3, 1, 2)
        return self.b(y)


class PatchEmbed(nn.Module):
    """ViT's patch embedding: a strided conv, then tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 16, 4, stride=4)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.proj(x).flatten(2).transpose(1, 2)
        return self.head(t)


class SegformerDecoder(nn.Module):
    """A Segformer-style all-MLP decoder over a 4-stage conv encoder (timm has no Segformer).

    Each stage's features become tokens, go through a per-stage Linear, come back as an image,
    are upsampled (bilinear) to the first stage's size, concatenated, fused by a 1x1 conv + BN +
    ReLU and classified by a 1x1 conv.
    """

    def __init__(self, emb: int = 16, classes: int = 5) -> None:
        super().__init__()
        chans = (8, 16, 24, 32)
        self.stages = nn.ModuleList()
        cin = 3
        for c in chans:
            self.stages.append(nn.Sequential(nn.Conv2d(cin, c, 3, stride=2, padding=1), nn.ReLU()))
            cin = c
        self.mlps = nn.ModuleList(nn.Linear(c, emb) for c in chans)
        self.fuse = nn.Sequential(nn.Conv2d(4 * emb, emb, 1, bias=False), nn.BatchNorm2d(emb),
                                  nn.ReLU())
        self.cls = nn.Conv2d(emb, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        size = feats[0].shape[2:]
        outs = []
        for f, mlp in zip(feats, self.mlps, strict=True):
            n, _, h, w = f.shape
            t = mlp(f.flatten(2).transpose(1, 2))
            img = t.permute(0, 2, 1).reshape(n, -1, h, w)
            if img.shape[2:] != size:
                img = F.interpolate(img, size=size, mode="bilinear", align_corners=False)
            outs.append(img)
        return self.cls(self.fuse(torch.cat(outs[::-1], dim=1)))


@pytest.mark.parametrize("spelling", ["transpose", "permute", "channels-last"])
def test_token_round_trip_is_free(spelling: str) -> None:
    cm, got, ref = run_compiled(TokenMLP(spelling), torch.randn(1, 3, 6, 7))
    assert_close_scaled(got, ref)
    assert cm.stats["layout_conversions"] == 0, cm.stats
    assert cm.stats["nnapi_ops"] <= 7, cm.stats  # conv, reshape, FC, reshape, ReLU, reshape, conv


def test_patch_embedding_is_free() -> None:
    cm, got, ref = run_compiled(PatchEmbed(), torch.randn(1, 3, 16, 20))
    assert_close_scaled(got, ref)
    assert cm.stats["layout_conversions"] == 0, cm.stats


def test_segformer_decoder_at_android_11_has_no_transpose() -> None:
    cm, got, ref = run_compiled(SegformerDecoder(), torch.randn(1, 3, 64, 64), target="android-11")
    assert_close_scaled(got, ref, rtol=1e-4, atol=1e-4)
    assert cm.stats["layout_conversions"] == 0, cm.stats


def test_cpu_twin_reads_token_reshapes_as_the_device_does(tmp_path: Path) -> None:
    """The CPU fallback scripts the same reference kernels: storage reshapes must agree."""
    import nnapi_compiler as nc
    from tests.backend.test_cpu_segment import _run_both, segment_args

    model, x = SegformerDecoder().eval(), torch.randn(1, 3, 32, 32)
    cm = nc.compile(model, (x,))
    got, want = _run_both(cm, segment_args(cm.segment, x), tmp_path)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
