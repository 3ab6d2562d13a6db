"""timm transformers whose blockers were matmul / attention / the rank-5 q/k/v split compile
whole: one NNAPI segment, no host op, reloaded ``.ptl`` matches eager on the virtual device
(random init, nothing downloaded). Small images keep the token count, and the test, short."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from ..conftest import assert_close_scaled

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("target", ["android-10", "fl6"])
def test_vit_tiny_compiles_whole(target: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x,), target=target)
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    assert ("batch_matmul" in cm.ir()) == (target == "fl6")
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "vit.ptl")))
    with nc.virtual_device(feature_level=cm.level):
        got = mod(x)
    assert_close_scaled(got, ref)


@pytest.mark.parametrize(("name", "kwargs", "size"), [
    ("levit_128s", {"img_size": 64}, 64),
    ("mobilevit_xxs", {}, 64),
    ("efficientvit_b0", {}, 64),
])
def test_timm_hybrid_compiles_whole_at_fl6(name: str, kwargs: dict, size: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x,), target="fl6")
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / f"{name}.ptl")))
    with nc.virtual_device(feature_level=cm.level):
        got = mod(x)
    assert_close_scaled(got, ref)
