"""torchvision detectors (``weights=None``): the whole model is scripted host code; backbone,
FPN and RPN head run on NNAPI; anchors, box decoding, NMS and RoIAlign run on the CPU.

Outputs must match eager (same detections, labels and masks; boxes and scores to float
tolerance) through the virtual device and through the reloaded ``.pt``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import nnapi_compiler as nc

from .models import detector, image

#: detector -> submodules that must run on NNAPI, and the least share of FLOPs on NNAPI.
DETECTORS = {
    "ssdlite320_mobilenet_v3_large": ({"backbone", "head.classification_head",
                                       "head.regression_head"}, 0.95),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ({"backbone", "rpn.head.conv"}, 0.5),
    "maskrcnn_resnet50_fpn": ({"backbone", "rpn.head.conv"}, 0.5),
}


def _same_detections(got: list[dict], ref: list[dict]) -> None:
    """The same detections: equal count and labels, boxes and scores to float tolerance.

    Detections are compared as a set (each eager detection matched to one of ours): two whose
    scores differ by float rounding alone may come out in either order. With random weights the
    backbone's features reach |x| ~ 2.5e3, where float32 summed in another order (NNAPI's NHWC
    convolutions against aten's) differs by ~1e-2 (5e-6 relative); through box decoding that is
    a few hundredths of a pixel, so boxes are compared to 0.1 px (3e-4 of the 320 px image)
    and scores to 1e-3.
    """
    assert isinstance(got, list) and len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        assert set(g) == set(r)
        n = r["scores"].numel()
        assert n > 0 and g["scores"].numel() == n  # there are detections to compare
        free = set(range(n))
        for i in range(n):
            j = next((j for j in sorted(free, key=lambda j: abs(j - i))
                      if g["labels"][j] == r["labels"][i]
                      and torch.allclose(g["boxes"][j], r["boxes"][i], rtol=0, atol=0.1)
                      and torch.allclose(g["scores"][j], r["scores"][i], rtol=0, atol=1e-3)),
                     None)
            assert j is not None, f"eager detection {i} ({r['labels'][i]}, {r['scores'][i]}) unmatched"
            free.remove(j)
            if "masks" in r:
                torch.testing.assert_close(g["masks"][j], r["masks"][i], rtol=0, atol=1e-3)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detector_matches_eager_with_backbone_on_nnapi(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, x = detector(name), image()
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x,))
    must, share = DETECTORS[name]
    compiled = {path for path, ok, _ in cm.stats["scripted"] if ok}
    assert must <= compiled, cm.stats["scripted"]
    assert cm.stats["nnapi_flops_share"] >= share, cm.stats["nnapi_flops_share"]
    with nc.virtual_device():
        _same_detections(cm(x), ref)
    # torchvision's detectors pass ImageList objects, which the lite interpreter cannot hold;
    # PyTorch Mobile's full-JIT runtime loads the .pt.
    with pytest.raises(nc.ConversionError, match="lite interpreter cannot hold"):
        cm.save(tmp_path / f"{name}.ptl")
    mod = torch.jit.load(str(cm.save(tmp_path / f"{name}.pt")))
    with nc.virtual_device():
        _same_detections(mod(x), ref)
    mod.use_cpu()  # the switch reaches every compiled part; no NNAPI call is made after it
    _same_detections(mod(x), ref)
