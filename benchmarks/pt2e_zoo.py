"""The PT2E-quantized zoo (NnapiQuantizer) next to the eager-mode quantized versions of the same
models: NNAPI ops, QUANTIZE/DEQUANTIZE ops, layout conversions, weight bytes, and the share of
output elements within 1 and 2 quanta of the converted module run eagerly.

Run: ``python benchmarks/pt2e_zoo.py [--models mobilenet_v2@android-10,...] [--out table.md]``
(needs torchao: ``pip install -e '.[quant]'``; timm models also need timm).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnapi_compiler as nc
from tests.quant.pt2e_helpers import quanta_error, within
from tests.zoo.pt2e_models import SIGNED, TIMM, TORCHVISION, build_pt2e, example
from tests.zoo.quant_models import QUANT_MODELS, build_quantized, quant_input


def _eager_ops(name: str, target: str) -> str:
    """NNAPI op count of the eager-mode (qnnpack) quantized version, where torchvision has one."""
    if name not in QUANT_MODELS:
        return "—"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(build_quantized(name), (quant_input(),), target=target)
    return str(cm.stats["nnapi_ops"])


def row(name: str, target: str, dtype: torch.dtype) -> str:
    converted = build_pt2e(name, target, activation_dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quanta, cm = quanta_error(converted, example(), target)
    counts = Counter(op.mnemonic for op in cm.program.compute_ops())
    qdq = counts["quantize"] + counts["dequantize"]
    eager = _eager_ops(name, target)
    return (f"| {name} | {target} {str(dtype)[6:]} | {cm.stats['nnapi_ops']} | {eager} | {qdq} | "
            f"{cm.stats['layout_conversions']} | {cm.stats['weight_bytes']} | "
            f"{quanta.max().item():.0f} | {100 * within(quanta, 1):.2f}% | {100 * within(quanta):.2f}% |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    default = ([f"{n}@{t}" for n, t in TORCHVISION] + [f"{n}@android-11:int8" for n in SIGNED]
               + [f"{n}@android-10" for n in TIMM])
    p.add_argument("--models", default=",".join(default),
                   help="name@target[:int8], comma-separated (uint8 activations unless :int8)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    lines = ["| model | target, activations | NNAPI ops (PT2E) | NNAPI ops (eager quantized) "
             "| QUANTIZE + DEQUANTIZE | layout conversions | weight bytes | max error (quanta) "
             "| ≤ 1 quantum | ≤ 2 quanta |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for spec in args.models.split(","):
        name, _, rest = spec.partition("@")
        target, _, act = rest.partition(":")
        lines.append(row(name, target or "android-10", torch.int8 if act == "int8" else torch.uint8))
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
