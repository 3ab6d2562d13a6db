"""timm models whose only blockers were LayerNorm, GELU, GroupNorm, StarReLU's ``x ** 2`` and
GRN's norm and addcmul (issue 10) compile whole at Android 10: one NNAPI segment, no host op,
and the reloaded ``.ptl`` matches eager on the virtual device (random init, nothing
downloaded). So do GC ViT (``repeat_interleave`` of the global query: TILE) and XCiT (its
cross-covariance q/k/v split permutes ``(2, 0, 3, 4, 1)``; its positional encoding is a conv of
a constant grid, folded at compile time) and CSATv2 (its DCT stem's rank-6 patch permute becomes
rank-4 transposes, its zigzag coefficient order a GATHER, its spatial attention's ``amax``
REDUCE_MAX), EdgeNeXt (a positional encoding folded, like XCiT's) and MaxViT (its rank-6
partitions), at Android 10 and at Android 13, where attention's matrix products are BATCH_MATMUL
instead."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from ..conftest import assert_close_scaled

timm = pytest.importorskip("timm")


def _compile_whole(name: str, kwargs: dict[str, Any], size: int, target: str,
                   tmp_path: Path) -> nc.CompiledModel:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x,), target=target)
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / f"{name}.ptl")))
    with nc.virtual_device():
        got = mod(x)
    assert_close_scaled(got, ref)
    return cm


@pytest.mark.parametrize("name", ["convnext_atto", "convnextv2_atto", "fastvit_t8", "poolformerv2_s12"])
def test_timm_model_compiles_whole_at_android_10(name: str, tmp_path: Path) -> None:
    _compile_whole(name, {}, 64, "android-10", tmp_path)


#: (model, build arguments, input size): GC ViT's 7x7 windows need 224 (56, 28, 14, 7 at its
#: four stages); XCiT and MaxViT are built for 64; CSATv2 and EdgeNeXt take 64 as they are.
ATTENTION = [("gcvit_xxtiny", {}, 224), ("xcit_nano_12_p8_224", {"img_size": 64}, 64), ("csatv2", {}, 64),
             ("edgenext_xx_small", {}, 64), ("maxvit_pico_rw_256", {"img_size": 64}, 64)]


@pytest.mark.parametrize("target", ["android-10", "android-13"])
@pytest.mark.parametrize(("name", "kwargs", "size"), ATTENTION, ids=[a[0] for a in ATTENTION])
def test_timm_attention_model_compiles_whole(name: str, kwargs: dict[str, Any], size: int, target: str,
                                             tmp_path: Path) -> None:
    cm = _compile_whole(name, kwargs, size, target, tmp_path)
    print(name, target, "NNAPI ops:", cm.stats["nnapi_ops"])
