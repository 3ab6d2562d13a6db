"""torchvision float zoo: each model compiles entirely to NNAPI, with zero layout conversions
for classification, and its reloaded .ptl matches eager on the virtual device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from .models import CLASSIFICATION, SEGMENTATION, build, example_input


def _outputs(y: object) -> dict[str, torch.Tensor]:
    if isinstance(y, dict):
        return dict(y)
    assert isinstance(y, torch.Tensor)
    return {"out": y}


def _check(name: str, target: str, tmp_path: Path) -> nc.CompiledModel:
    model, x = build(name), example_input(name)
    with torch.no_grad():
        ref = _outputs(model(x))
    cm = nc.compile(model, (x,), target=target)
    assert all(op.mnemonic != "host" for op in cm.program.ops)  # entirely NNAPI
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    path = cm.save(tmp_path / f"{name}.ptl")
    with nc.virtual_device(feature_level=cm.level):
        got = _outputs(_load_for_lite_interpreter(str(path))(x))
    assert got.keys() == ref.keys()
    for k in ref:
        mag = ref[k].abs().max().item()
        err = (got[k] - ref[k]).abs().max().item()
        assert got[k].shape == ref[k].shape
        assert err <= 1e-4 * max(1.0, mag), f"{name}[{k}]: max error {err:.3g}, max |out| {mag:.3g}"
        assert err <= 1e-3 * mag, f"{name}[{k}]: relative error {err / mag:.3g}"
    return cm


#: NNAPI ops per model at Android 10, as docs/benchmarks.md reports them: a pass that stops
#: firing (fold-bn, fuse-activation, ...) changes these with every output still correct.
NNAPI_OPS = {"mobilenet_v2": 64, "mobilenet_v3_small": 145, "mobilenet_v3_large": 162, "resnet18": 31,
             "resnet50": 72, "squeezenet1_1": 39, "shufflenet_v2_x1_0": 117, "mnasnet1_0": 64,
             "efficientnet_b0": 238}


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification(name: str, tmp_path: Path) -> None:
    cm = _check(name, "android-10", tmp_path)
    assert cm.stats["layout_conversions"] == 0
    assert cm.stats["nnapi_ops"] == NNAPI_OPS[name]


@pytest.mark.parametrize("target", ["android-10", "android-11"])
@pytest.mark.parametrize("name", SEGMENTATION)
def test_segmentation(name: str, target: str, tmp_path: Path) -> None:
    cm = _check(name, target, tmp_path)
    # Only exact bilinear at Android 10 may need transposes: three per PyTorch bilinear resize.
    n_bilinear = sum(1 for op in cm.program.ops if op.mnemonic == "fully_connected"
                     and op.result.type.rank == 2 and cm.level < 4) // 2
    assert cm.stats["layout_conversions"] == (3 * n_bilinear if target == "android-10" else 0)


OTHER_CLASSIFICATION = ["alexnet", "googlenet", "densenet121", "regnet_y_400mf",
                        "resnext50_32x4d", "mnasnet0_5"]


@pytest.mark.parametrize("name", OTHER_CLASSIFICATION)
def test_other_torchvision_models(name: str) -> None:
    """The list above is a sample: other models from the same op families work too."""
    import torchvision

    from .models import randomize_batchnorm

    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = getattr(torchvision.models, name)(weights=None, **kw)
    randomize_batchnorm(model, 0)
    model.eval()
    x = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x)
    cm = nc.compile(model, (x,))
    with nc.virtual_device():
        got = cm(x)
    mag = ref.abs().max().item()
    assert (got - ref).abs().max().item() <= 1e-4 * max(1.0, mag)
    # AlexNet at 160 px pools 4x4 -> 6x6: averaging matrices need transposes; the rest need none.
    assert cm.stats["layout_conversions"] == (3 if name == "alexnet" else 0)


#: docs/passes.md's ablation table for resnet18 at FL3: (NNAPI ops, layout conversions) with one
#: pass left out, so that a pass which silently stops firing fails here.
ABLATION = {"default": (31, 0), "fold-bn": (71, 0), "fuse-activation": (48, 0),
            "simplify-reshape": (32, 0), "layout-nhwc": (31, 21)}


@pytest.mark.parametrize("without", sorted(ABLATION))
def test_pass_ablation_table(without: str) -> None:
    from nnapi_compiler.passes.pipeline import DEFAULT_PIPELINE

    pipeline = ",".join(p for p in DEFAULT_PIPELINE.split(",") if p.strip() != without)
    cm = nc.compile(build("resnet18"), (example_input("resnet18"),), pipeline=pipeline)
    assert (cm.stats["nnapi_ops"], cm.stats["layout_conversions"]) == ABLATION[without]
