"""The error of relaxed float32 (``relax_f32_to_f16=True``) on the float zoo, against eager.

Each torchvision model (tests/zoo/models.py: seeded, random BatchNorm statistics) is compiled for
Android 10 twice, without and with relaxation, and run on the virtual NNAPI device, which
computes a relaxed model with float16 range and precision (every float32 operand an op reads or
writes rounded to float16). Printed: max absolute error and relative error (max abs error /
max |eager output|) of each, as the Markdown table docs/user_guide.md embeds.
Run: ``python benchmarks/relaxed_fp16.py [--models resnet18,...]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnapi_compiler as nc
from tests.zoo.models import CLASSIFICATION, SEGMENTATION, build, example_input


def errors(name: str) -> tuple[float, tuple[float, float], tuple[float, float]]:
    """(max |eager|, (abs, rel) error unrelaxed, (abs, rel) error relaxed) of the main output."""
    model, x = build(name), example_input(name)
    with torch.no_grad():
        ref = model(x)
    ref = ref["out"] if isinstance(ref, dict) else ref
    mag = ref.abs().max().item()
    out = []
    for relax in (False, True):
        cm = nc.compile(model, (x,), relax_f32_to_f16=relax, cpu_fallback=False)
        with nc.virtual_device():
            got = cm(x)
        got = got["out"] if isinstance(got, dict) else got
        err = (got - ref).abs().max().item()
        out.append((err, err / mag))
    return mag, out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", default=",".join(CLASSIFICATION + SEGMENTATION))
    args = p.parse_args(argv)
    print("| model | max \\|eager\\| | float32: max abs error | relaxed: max abs error "
          "| relaxed: relative error |")
    print("|---|---:|---:|---:|---:|")
    for name in args.models.split(","):
        mag, (e32, _), (e16, r16) = errors(name)
        print(f"| {name} | {mag:.3g} | {e32:.2g} | {e16:.2g} | {r16:.2g} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
