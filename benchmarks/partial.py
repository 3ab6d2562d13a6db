"""Partial delegation on timm's hybrids and sequence models, side by side with torch's prototype.

For each model: our segments, host ops, NNAPI ops, share of FLOPs on NNAPI (as
torch.utils.flop_counter counts them), compile seconds, artifact bytes with and without the CPU
fallback; and whether ``torch.backends._nnapi`` converts it at all (it is all-or-nothing).
Then torchvision's detectors (scripted, capturable parts compiled): segments, ops, FLOPs share.
Run: ``python benchmarks/partial.py [--res 224] [--out table.md]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnapi_compiler as nc
from benchmarks.compare import ptl_bytes, theirs

MODELS = ["convnext_atto", "fastvit_t8", "levit_128s", "vit_tiny_patch16_224", "mobilevit_xxs",
          "efficientvit_b0", "mobilenetv4_hybrid_medium"]


def _timm(name: str, res: int) -> torch.nn.Module:
    import timm

    kw = {"img_size": res} if name.startswith(("vit_", "levit")) else {}
    return timm.create_model(name, pretrained=False, **kw).eval()


def prototype(model: torch.nn.Module, x: torch.Tensor) -> str:
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory():
            warnings.simplefilter("ignore")
            theirs(model, x)
        return "converts"
    except Exception as e:  # the prototype fails in many ways; report the first line
        return f"fails: {type(e).__name__}: {str(e).splitlines()[0][:60] if str(e) else ''}"


def row(name: str, res: int) -> str:
    torch.manual_seed(0)
    model, x = _timm(name, res), torch.randn(1, 3, res, res)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        cm = nc.compile(model, (x,))
        dt = time.perf_counter() - t0
        lean = nc.compile(model, (x,), cpu_fallback=False)
    s = cm.stats
    full, bare = ptl_bytes(cm.script_module), ptl_bytes(lean.script_module)
    return (f"| {name} | {s['segments']} | {s['host_ops']} | {s['cpu_segments']} | {s['nnapi_ops']} | "
            f"{100 * s['nnapi_flops_share']:.1f}% | {dt:.1f} | {full / bare:.3f} | "
            f"{prototype(model, x)} |")


DETECTORS = ["ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn",
             "maskrcnn_resnet50_fpn"]


def detector_row(name: str) -> str:
    """A torchvision detector (scripted, with its capturable parts compiled) at 320x320."""
    from tests.control.models import detector, image

    torch.manual_seed(0)
    model, x = detector(name), image()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        cm = nc.compile(model, (x,))
        dt = time.perf_counter() - t0
    s = cm.stats
    on = [p for p, ok, why in s["scripted"] if ok and not why.startswith(("0 NNAPI", "scripted"))]
    return (f"| {name} | {s['segments']} | {s['nnapi_ops']} | {100 * s['nnapi_flops_share']:.1f}% | "
            f"{dt:.1f} | {', '.join(on)} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--res", type=int, default=224)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    lines = ["| model | NNAPI segments | host ops | CPU segments | NNAPI ops | FLOPs on NNAPI | "
             "compile s | .ptl size with / without CPU fallback | torch.backends._nnapi |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in MODELS:
        lines.append(row(name, args.res))
        print(lines[-1], flush=True)
    lines += ["", "| detector | NNAPI segments | NNAPI ops | FLOPs on NNAPI | compile s | compiled parts |",
              "|---|---|---|---|---|---|"]
    for name in DETECTORS:
        lines.append(detector_row(name))
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
