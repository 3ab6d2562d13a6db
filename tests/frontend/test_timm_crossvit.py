"""timm CrossViT compiles whole (issue 10, "timm families"): its small branch reads the image
resized by bicubic ``F.interpolate`` (240 -> 224 in crossvit_tiny_240), which lowers to aten's
cubic-convolution matrices (FULLY_CONNECTED), legal from Android 10.

The model is crossvit_tiny_240's architecture with one multi-scale block instead of three (every
op kind of the full model, a third of its ops, so a test takes seconds) at 120x120 (both patch
sizes divide it and its 112x112 rescale). torch.fx cannot trace CrossViT (``scale_image``
branches on the input size), so the capture is torch.export. The full crossvit_tiny_240 is
measured in docs/benchmarks.md.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from ..conftest import assert_close_scaled, compile_whole

timm = pytest.importorskip("timm")


def _crossvit() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("crossvit_tiny_240", pretrained=False, img_size=120,
                             depth=[[1, 1, 0]]).eval()


@pytest.mark.parametrize("target", ["android-10", "android-13"])
def test_crossvit_compiles_whole(target: str, tmp_path: Path) -> None:
    model = _crossvit()
    x = torch.randn(1, 3, 120, 120)
    cm = compile_whole(model, x, dialect="export", target=target)
    kinds = [op.mnemonic for op in cm.program.compute_ops()]
    assert "fully_connected" in kinds and "interpolate" not in kinds
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "crossvit.ptl")))
    with nc.virtual_device():
        got = mod(x)
    with torch.no_grad():
        ref = model(x)
        ref64 = model.double()(x.double())
    assert_close_scaled(got, ref)
    # Against float64 eager the compiled model is as close as eager float32 is.
    err = (got.double() - ref64).abs().max().item()
    assert err <= 4 * (ref.double() - ref64).abs().max().item() + 1e-6, err


def test_crossvit_branch_resize_is_the_bicubic_matrix_form() -> None:
    """The 120 -> 112 image resize: one [112, 120] matrix per axis, no host op."""
    model = _crossvit()
    x = torch.randn(1, 3, 120, 120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = nc.explain(model, (x,), target="android-10")
    assert not [r for r in report.rows if r.where.startswith("CPU")]
    rows = [r for r in report.rows if "upsample_bicubic2d" in r.target]
    assert len(rows) == 1 and rows[0].detail.count("FULLY_CONNECTED") == 2, rows
