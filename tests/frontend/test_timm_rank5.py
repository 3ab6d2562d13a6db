"""The four timm families that went through rank-5/6 tensors (EdgeNeXt and Visformer's q/k/v
splits, SKNet's stacked branches, MaxViT's grid partition) compile whole at Android 10 and
Android 13: one NNAPI segment, no host op, and the reloaded ``.ptl`` matches eager on the
virtual device (random init, nothing downloaded). 64x64 is the smallest input MaxViT takes
with its default partition ratio (windows and grids of 2 at the last stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..conftest import timm_whole

timm = pytest.importorskip("timm")

#: (model, build arguments): the transformers are built for 64x64; the CNNs take any size.
MODELS = [("edgenext_xx_small", {}), ("visformer_tiny", {"img_size": 64}), ("skresnet18", {}),
          ("maxvit_pico_rw_256", {"img_size": 64})]


@pytest.mark.parametrize("target", ["android-10", "android-13"])
@pytest.mark.parametrize(("name", "kwargs"), MODELS, ids=[m[0] for m in MODELS])
def test_timm_rank5_family_compiles_whole(name: str, kwargs: dict[str, Any], target: str,
                                          tmp_path: Path) -> None:
    timm_whole(name, 64, target, tmp_path, kwargs, cpu_fallback=False)
