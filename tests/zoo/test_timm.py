"""timm's mobile hybrids and transformers (random init, nothing downloaded), entirely on NNAPI.

Each compiles with default options at Android 10 into one NNAPI segment with no host op: LayerNorm,
GELU, attention's matrix products and the rest are lowered (issue 10; before, they ran as CPU
host code between many small segments). The reloaded ``.ptl`` must match eager on the virtual
device.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import timm
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc
from tests.conftest import assert_close_scaled

#: (model, input resolution): small inputs keep CI fast; ViT and LeViT take ``img_size``.
HYBRIDS = [
    ("convnext_atto", 64),
    ("fastvit_t8", 64),
    ("levit_128s", 64),
    ("vit_tiny_patch16_224", 64),
    ("mobilevit_xxs", 64),
    ("efficientvit_b0", 64),
    ("mobilenetv4_hybrid_medium", 64),
]


@pytest.mark.parametrize(("name", "res"), HYBRIDS)
def test_timm_hybrid_runs_entirely_on_nnapi(name: str, res: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    kw = {"img_size": res} if name.startswith(("vit_", "levit")) else {}
    model = timm.create_model(name, pretrained=False, **kw).eval()
    x = torch.randn(1, 3, res, res)
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x,))
    assert (cm.stats["segments"], cm.stats["host_ops"]) == (1, 0), cm.stats
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / f"{name}.ptl")))
    with nc.virtual_device():
        got = mod(x)
    assert_close_scaled(got, ref)
