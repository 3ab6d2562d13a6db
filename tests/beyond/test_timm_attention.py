"""timm transformers whose blockers were matmul / attention / the rank-5 q/k/v split compile
whole: one NNAPI segment, no host op, reloaded ``.ptl`` matches eager on the virtual device
(random init, nothing downloaded). Small images keep the token count, and the test, short."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import timm_whole

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("target", ["android-10", "fl6"])
def test_vit_tiny_compiles_whole(target: str, tmp_path: Path) -> None:
    cm = timm_whole("vit_tiny_patch16_224", 64, target, tmp_path, {"img_size": 64})
    assert ("batch_matmul" in cm.ir()) == (target == "fl6")


@pytest.mark.parametrize(("name", "kwargs", "size"), [
    ("levit_128s", {"img_size": 64}, 64),
    ("mobilevit_xxs", {}, 64),
    ("efficientvit_b0", {}, 64),
])
def test_timm_hybrid_compiles_whole_at_fl6(name: str, kwargs: dict, size: int, tmp_path: Path) -> None:
    timm_whole(name, size, "fl6", tmp_path, kwargs)
