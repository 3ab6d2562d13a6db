"""timm models whose only blockers were LayerNorm, GELU, GroupNorm, StarReLU's ``x ** 2`` and
GRN's norm and addcmul (issue 10) compile whole at Android 10: one NNAPI segment, no host op,
and the reloaded ``.ptl`` matches eager on the virtual device (random init, nothing
downloaded)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from ..conftest import assert_close_scaled

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("name", ["convnext_atto", "convnextv2_atto", "fastvit_t8", "poolformerv2_s12"])
def test_timm_model_compiles_whole_at_android_10(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x,), target="android-10")
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / f"{name}.ptl")))
    with nc.virtual_device():
        got = mod(x)
    assert_close_scaled(got, ref)
