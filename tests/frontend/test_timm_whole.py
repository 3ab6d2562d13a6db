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

from pathlib import Path
from typing import Any

import pytest

from ..conftest import timm_whole

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("name", ["convnext_atto", "convnextv2_atto", "fastvit_t8", "poolformerv2_s12"])
def test_timm_model_compiles_whole_at_android_10(name: str, tmp_path: Path) -> None:
    timm_whole(name, 64, "android-10", tmp_path)


#: (model, build arguments, input size): GC ViT's 7x7 windows need 224 (56, 28, 14, 7 at its
#: four stages); XCiT and MaxViT are built for 64; CSATv2 and EdgeNeXt take 64 as they are.
ATTENTION = [("gcvit_xxtiny", {}, 224), ("xcit_nano_12_p8_224", {"img_size": 64}, 64), ("csatv2", {}, 64),
             ("edgenext_xx_small", {}, 64), ("maxvit_pico_rw_256", {"img_size": 64}, 64)]


@pytest.mark.parametrize("target", ["android-10", "android-13"])
@pytest.mark.parametrize(("name", "kwargs", "size"), ATTENTION, ids=[a[0] for a in ATTENTION])
def test_timm_attention_model_compiles_whole(name: str, kwargs: dict[str, Any], size: int, target: str,
                                             tmp_path: Path) -> None:
    cm = timm_whole(name, size, target, tmp_path, kwargs)
    print(name, target, "NNAPI ops:", cm.stats["nnapi_ops"])
