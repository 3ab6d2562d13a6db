"""Compile time against model size: a chain of conv-BN-ReLU blocks, in milliseconds per block.

A compiler linear in the op count shows flat ms/block columns: the whole compile, and the pass
pipeline alone (on the lowered program). Times are the
process's CPU time (``time.process_time``), so other load on a shared machine barely moves them.
Run: ``python benchmarks/scaling.py [--blocks 100,200,400,800] [--runs 3]``; medians are printed
as the Markdown table docs/benchmarks.md embeds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnapi_compiler as nc
from nnapi_compiler.frontend.capture import capture
from nnapi_compiler.frontend.lower import lower
from nnapi_compiler.passes.pipeline import default_pipeline


def chain(blocks: int, channels: int = 8) -> nn.Module:
    """``blocks`` x (3x3 conv, BatchNorm with random statistics, ReLU), eval mode."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(blocks):
        bn = nn.BatchNorm2d(channels)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        layers += [nn.Conv2d(channels, channels, 3, padding=1), bn, nn.ReLU()]
    return nn.Sequential(*layers).eval()


def measure(blocks: int, runs: int) -> tuple[float, float]:
    """Median CPU seconds of a ``blocks``-long chain: the whole compile, and the pass pipeline."""
    model, x = chain(blocks), torch.randn(1, 8, 8, 8)
    whole, passes = [], []
    for _ in range(runs):
        t0 = time.process_time()
        nc.compile(model, (x,))
        whole.append(time.process_time() - t0)
        program = lower(capture(model, (x,)), 3)[0]
        t0 = time.process_time()
        default_pipeline().run(program)
        passes.append(time.process_time() - t0)
    return statistics.median(whole), statistics.median(passes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--blocks", default="100,200,400,800")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    # One thread: CPU time then measures the compiler's own work, not torch's idle spinning
    # threads on a busy machine (the example runs on 8x8 images cost next to nothing).
    torch.set_num_threads(1)
    measure(10, 1)  # warm up: first-call costs (imports, TorchScript) are not per block
    print("| blocks | compile CPU s | ms / block | passes CPU s | passes ms / block |")
    print("|---|---|---|---|---|")
    for n in (int(b) for b in args.blocks.split(",")):
        whole, passes = measure(n, args.runs)
        print(f"| {n} | {whole:.2f} | {1000 * whole / n:.2f} | {passes:.2f} | "
              f"{1000 * passes / n:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
