"""The four timm families that went through rank-5/6 tensors (EdgeNeXt and Visformer's q/k/v
splits, SKNet's stacked branches, MaxViT's grid partition) compile whole at Android 10 and
Android 13: one NNAPI segment, no host op, and the reloaded ``.ptl`` matches eager on the
virtual device (random init, nothing downloaded). 64x64 is the smallest input MaxViT takes
with its default partition ratio (windows and grids of 2 at the last stage)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from ..conftest import assert_close_scaled

timm = pytest.importorskip("timm")

MODELS = ["edgenext_xx_small", "visformer_tiny", "skresnet18", "maxvit_pico_rw_256"]


@pytest.mark.parametrize("target", ["android-10", "android-13"])
@pytest.mark.parametrize("name", MODELS)
def test_timm_rank5_family_compiles_whole(name: str, target: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = timm.create_model(name, pretrained=False, img_size=64).eval()
        except TypeError:  # a CNN: any size
            model = timm.create_model(name, pretrained=False).eval()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            ref = model(x)
        cm = nc.compile(model, (x,), target=target, cpu_fallback=False)
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / f"{name}.ptl")))
    with nc.virtual_device():
        got = mod(x)
    assert_close_scaled(got, ref)
