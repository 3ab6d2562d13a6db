"""Probe eager ``conv2d`` with the differential fuzz's conv layers, for crashes of the process.

Why: one run of the differential campaign died with SIGSEGV inside eager PyTorch's conv2d (the
reference ``net(x)``), at a time the machine was short of memory. This script tests the two
explanations without our compiler in the loop (it imports torch and the fuzz's layer specs only):

- ``--mode cap``: each child process sets ``RLIMIT_AS`` to its own address-space size plus a
  small headroom, then runs every conv. A clean outcome is ``RuntimeError``/``MemoryError``
  from torch; a crash is the child dying by a signal.
- ``--mode sample``: no cap; ``--cases`` random convs uniformly within the generator's ranges
  (channels_last 70 % of the time), in one child that restarts after a crash; prints each
  crashing conv.
- ``--mode plain``: no cap; the generator's ranges plus their extremes (large padding and
  dilation, every group count, empty and 1x1 outputs, channels_last and strided inputs).

Conv layers are drawn by the fuzz's own strategy (``tests.fuzz.strategies.convs``) on shapes
from its ranges. Run from the repository root::

    PYTHONPATH=. python tools/conv_crash_probe.py --mode cap --cases 2000
    PYTHONPATH=. python tools/conv_crash_probe.py --mode plain --cases 20000
    PYTHONPATH=. python tools/conv_crash_probe.py --mode sample --cases 20000 --seed 1
    PYTHONPATH=. python tools/conv_crash_probe.py --mode sample --cases 40000 --seed 2 --rule

Prints one line per child: its cap, how many convs ran, raised, and how it ended.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import random
import signal
import subprocess
import sys
from typing import Any

LAYOUTS = ("contiguous", "channels_last", "strided", "permuted")


def fuzz_convs(count: int, seed: int) -> list[tuple[Any, tuple[int, int, int, int], str]]:
    """``count`` (conv spec, input shape, layout) triples drawn by the fuzz's ``convs`` strategy."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tests.fuzz.strategies import MAX_C, MAX_HW, convs

    out: list[Any] = []
    shapes = st.tuples(st.integers(1, 3), st.integers(1, MAX_C), st.integers(1, MAX_HW),
                       st.integers(1, MAX_HW))

    @settings(max_examples=count, database=None, derandomize=True, deadline=None)
    @given(st.data(), shapes, st.sampled_from(LAYOUTS))
    def draw(data: st.DataObject, shape: tuple[int, int, int, int], layout: str) -> None:
        out.append((data.draw(convs(shape, data.draw(st.booleans()))), shape, layout))

    del seed  # derandomized: the same list every run
    draw()
    return out


def extreme_convs(seed: int) -> list[tuple[Any, tuple[int, int, int, int], str]]:
    """Beyond the generator's ranges: big padding/dilation/stride, all groups, tiny outputs."""
    from tests.fuzz.specs import Conv

    rng = random.Random(seed)
    out: list[Any] = []
    for c, h, w in [(1, 1, 1), (3, 1, 16), (12, 16, 1), (12, 16, 16), (6, 2, 3)]:
        groups = [g for g in range(1, c + 1) if c % g == 0]
        for g, pad, dil, stride, k, layout in itertools.product(
                groups, (0, 2, 7, 31), (1, 2, 5), (1, 3, 17), (1, 3, 5), LAYOUTS):
            cout = g * rng.randint(1, 3)
            if (h + 2 * pad - dil * (k - 1) - 1) < 0 or (w + 2 * pad - dil * (k - 1) - 1) < 0:
                continue  # torch refuses a kernel larger than the padded input, cleanly
            out.append((Conv(cout, (k, k), (stride, stride), (pad, pad), (dil, dil), g,
                             rng.random() < 0.5), (rng.randint(1, 3), c, h, w), layout))
            out.append((Conv(cout, (k, k), (1, 1), "same", (dil, dil), g, True),
                        (1, c, h, w), layout))
    return out


def sampled_convs(count: int, seed: int,
                  rule: bool = False) -> list[tuple[Any, tuple[int, int, int, int], str]]:
    """Convs uniform over the generator's ranges (the probe of the oneDNN crash); ``rule``: skip
    a 1-wide kernel with dilation > 1, as the generator now does."""
    from tests.fuzz.specs import Conv

    rng = random.Random(seed)
    out: list[Any] = []
    for _ in range(count):
        n, cin, h, w = rng.randint(1, 3), rng.randint(1, 12), rng.randint(1, 16), rng.randint(1, 16)
        s, p = (rng.randint(1, 3), rng.randint(1, 3)), (rng.randint(0, 2), rng.randint(0, 2))
        d, k = (rng.randint(1, 2), rng.randint(1, 2)), (rng.randint(1, 5), rng.randint(1, 5))
        g = rng.choice([q for q in range(1, cin + 1) if cin % q == 0])
        cout, layout, bias = g * rng.randint(1, 3), rng.random() < 0.7, rng.random() < 0.5
        if rule and any(kk == 1 and dd > 1 for kk, dd in zip(k, d, strict=True)):
            continue
        if h + 2 * p[0] - d[0] * (k[0] - 1) - 1 < 0 or w + 2 * p[1] - d[1] * (k[1] - 1) - 1 < 0:
            continue
        out.append((Conv(cout, k, s, p, d, g, bias), (n, cin, h, w),
                    "channels_last" if layout else "contiguous"))
    return out


def _input(shape: tuple[int, int, int, int], layout: str):
    import torch

    if layout == "channels_last":
        return torch.randn(shape).contiguous(memory_format=torch.channels_last)
    if layout == "strided":  # a step-2 view, as the fuzz's Slice layer produces
        n, c, h, w = shape
        return torch.randn(n, c, h, 2 * w)[..., ::2]
    if layout == "permuted":  # NHWC storage seen as NCHW, as Permute/ChannelLinear produce
        n, c, h, w = shape
        return torch.randn(n, h, w, c).permute(0, 3, 1, 2)
    return torch.randn(shape)


def child(headroom_mb: int, warm: bool, progress_file: str = "") -> None:
    """Read cases from stdin, cap the address space, run each conv, print the tally."""
    import resource

    import torch

    from tests.fuzz.models import build_layer

    cases = pickle.load(sys.stdin.buffer)
    progress = open(progress_file, "w") if progress_file else None  # noqa: SIM115
    torch.manual_seed(0)
    built = [(build_layer(spec, shape), _input(shape, layout)) for spec, shape, layout in cases]
    if warm:  # threads and oneDNN's primitive cache exist before the cap
        with torch.no_grad():
            built[0][0](built[0][1])
    if headroom_mb >= 0:
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
        cap = vm + headroom_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    ran = raised = 0
    with torch.no_grad():
        for i, (conv, x) in enumerate(built):
            if progress:  # survives a crash: the parent reads which conv killed the child
                progress.seek(0)
                progress.write(f"{i:10d}")
                progress.flush()
            try:
                conv(x)
                ran += 1
            except (RuntimeError, MemoryError):
                raised += 1
    sys.stdout.write(f"ran={ran} raised={raised}\n")
    sys.stdout.flush()


def run_child(cases: list[Any], headroom_mb: int, warm: bool, progress: str = "") -> str:
    """Run one child; describe how it ended (its tally, or the signal that killed it)."""
    proc = subprocess.run([sys.executable, __file__, "--child", str(headroom_mb),
                           "--warm" if warm else "--cold", "--progress", progress],
                          input=pickle.dumps(cases), capture_output=True, check=False)
    if proc.returncode < 0:
        return f"killed by {signal.Signals(-proc.returncode).name}"
    tail = proc.stdout.decode().strip() or proc.stderr.decode().strip().splitlines()[-1:]
    return f"exit {proc.returncode} {tail}"


def sample(cases: list[Any]) -> None:
    """Run ``cases`` uncapped; after a crash, report the conv and go on with the next one."""
    import tempfile

    crashes = start = 0
    with tempfile.NamedTemporaryFile("r", suffix=".idx") as progress:
        while start < len(cases):
            outcome = run_child(cases[start:], -1, False, progress.name)
            if not outcome.startswith("killed"):
                break
            progress.seek(0)
            i = start + int(progress.read())
            crashes += 1
            print(f"{outcome}: {cases[i]!r}", flush=True)
            start = i + 1
    print(f"{len(cases)} sampled convs, {crashes} crashes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["cap", "plain", "sample"], default="cap")
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--progress", default="", help=argparse.SUPPRESS)
    ap.add_argument("--rule", action="store_true", help="sample: skip dilated 1-wide kernels")
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.warm, args.progress)
        return
    if args.mode == "sample":
        sample(sampled_convs(args.cases, args.seed, args.rule))
        return
    cases = fuzz_convs(args.cases, args.seed)
    if args.mode == "plain":
        cases += extreme_convs(args.seed)
        print(f"{len(cases)} convs, no cap: {run_child(cases, -1, True)}")
        return
    for headroom, warm in itertools.product((0, 1, 4, 16, 64, 256, 1024), (True, False)):
        print(f"{len(cases)} convs, cap = size + {headroom} MB, {'warm' if warm else 'cold'}: "
              f"{run_child(cases, headroom, warm)}", flush=True)


if __name__ == "__main__":
    main()
