"""Side-by-side comparison with torch.backends._nnapi on the torchvision zoo, in one process.

For every model: compile-time ratio (medians over interleaved runs; torch's prototype timed as
trace + mutation removal + convert), NNAPI op counts, layout conversions (TRANSPOSE ops plus
ops using NNAPI's NCHW flag), ser_model / weight / .ptl bytes, and "not convertible" where
torch's prototype fails. Run: ``python benchmarks/compare.py [--runs 3] [--out table.md]``
(``--out`` writes the bare Markdown table; docs/benchmarks.md embeds it; ``--clock cpu`` reads
CPU time instead of wall time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.backends._nnapi.prepare import convert_model_to_nnapi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnapi_compiler as nc
from nnapi_compiler.backend.ser_model import read_ser_model
from nnapi_compiler.ir.flat import FlatModel, layout_conversions
from tests.zoo.models import CLASSIFICATION, SEGMENTATION, build, example_input
from tests.zoo.quant_models import QUANT_MODELS, build_quantized, quant_input


def ptl_bytes(module: torch.jit.ScriptModule) -> int:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.ptl"
        module._save_for_lite_interpreter(str(path))
        return path.stat().st_size


def theirs(model: torch.nn.Module, x: torch.Tensor, nhwc: bool = False) -> torch.jit.ScriptModule:
    traced = torch.jit.trace(model, x, strict=False)
    torch._C._jit_pass_inline(traced.graph)  # bring submodules' in-place ops into view
    torch._C._jit_pass_remove_mutation(traced.graph)
    if nhwc:  # torch's prototype converts quantized models only with NHWC-flagged inputs
        x = x.contiguous(memory_format=torch.channels_last)
        x.nnapi_nhwc = True
    return convert_model_to_nnapi(traced, x)


def _their_flat(module: torch.jit.ScriptModule) -> tuple[FlatModel, int, int]:
    seg = module.mod if hasattr(module, "mod") else module
    ser, weights = seg.ser_model, list(seg.weights)
    return read_ser_model(ser, weights), ser.numel() * 4, sum(w.numel() * w.element_size()
                                                              for w in weights)


#: The clock compile times are read from: wall time by default, CPU time with ``--clock cpu``
#: (on a machine loaded by other work, wall times swing by 2-5x; CPU time barely moves).
CLOCK: list[Callable[[], float]] = [time.perf_counter]


def row(name: str, runs: int, quantized: bool = False) -> dict[str, object]:
    if quantized:
        model, x = build_quantized(name), quant_input()
    else:
        model, x = build(name), example_input(name)
    t_ours, t_theirs, err = [], [], ""
    cm, their = None, None
    for _ in range(runs):
        t0 = CLOCK[0]()
        cm = nc.compile(model, (x,))
        t_ours.append(CLOCK[0]() - t0)
        if not err:
            t0 = CLOCK[0]()
            try:
                their = theirs(model, x, nhwc=quantized)
                t_theirs.append(CLOCK[0]() - t0)
            except Exception as e:
                err = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
    assert cm is not None
    flat = cm.segment.flat
    r: dict[str, object] = {
        "model": f"{name} (quantized)" if quantized else name,
        "ours_ops": len(flat.operations),
        "ours_layout": cm.stats["layout_conversions"],
        "ours_ser": cm.stats["ser_model_bytes"],
        "ours_weights": cm.stats["weight_bytes"],
        "ours_ptl": ptl_bytes(cm.script_module),
        "ours_s": statistics.median(t_ours),
    }
    if their is None:
        r["theirs"] = f"not convertible ({err})"
        return r
    tflat, tser, tw = _their_flat(their)
    r.update(theirs_ops=len(tflat.operations), theirs_layout=layout_conversions(tflat),
             theirs_ser=tser, theirs_weights=tw, theirs_ptl=ptl_bytes(their),
             theirs_s=statistics.median(t_theirs))
    return r


def table(rows: list[dict[str, object]]) -> str:
    head = ("| model | compile time ratio (ours/theirs) | NNAPI ops ours / theirs | layout conversions "
            "ours / theirs | ser_model B ours / theirs | weights B ours / theirs | .ptl B ours / theirs |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "theirs" in r:
            lines.append(f"| {r['model']} | {r['ours_s']:.2f}s / — | {r['ours_ops']} / — | "
                         f"{r['ours_layout']} / — | {r['ours_ser']} / — | {r['ours_weights']} / — | "
                         f"{r['ours_ptl']} / — ({r['theirs']}) |")
            continue
        lines.append(
            f"| {r['model']} | {r['ours_s'] / r['theirs_s']:.2f} ({r['ours_s']:.2f}s / "
            f"{r['theirs_s']:.2f}s) | {r['ours_ops']} / {r['theirs_ops']} "
            f"({r['ours_ops'] / r['theirs_ops']:.2f}) | {r['ours_layout']} / {r['theirs_layout']} | "
            f"{r['ours_ser']} / {r['theirs_ser']} | {r['ours_weights']} / {r['theirs_weights']} | "
            f"{r['ours_ptl']} / {r['theirs_ptl']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--models", default=",".join(CLASSIFICATION + SEGMENTATION))
    p.add_argument("--quantized", default=",".join(QUANT_MODELS),
                   help="quantized zoo models (torch's prototype gets NHWC-flagged inputs)")
    p.add_argument("--out", type=Path)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: process CPU time with torch on one thread (robust to machine load)")
    args = p.parse_args(argv)
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
        torch.set_num_threads(1)
    rows = [row(n, args.runs) for n in args.models.split(",") if n]
    rows += [row(n, args.runs, quantized=True) for n in args.quantized.split(",") if n]
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
