"""Reproduce eager PyTorch's segfault in oneDNN's conv2d, with torch alone (no nnapi_compiler).

Found by the differential fuzz (docs/fuzzing.md, "Nightly campaign record"): a channels_last
input, batch >= 2, >= 2 input channels, bias, and a 1-wide kernel dimension with dilation 2 and
stride 2 kills the process with SIGSEGV inside ``torch.nn.functional.conv2d``. Seen with torch
2.14.1 (oneDNN 3.12, AVX-512 build) on an AMD EPYC host; with ``torch.backends.mkldnn`` disabled
the same call returns. Each variant runs in ``python -I`` (isolated: it cannot import this
repository), so a crash is torch's.

    python tools/torch_conv_segfault.py
"""

from __future__ import annotations

import signal
import subprocess
import sys

#: The smallest failing call found: [2, 2, 2, 1] channels_last input, 1x1 kernel.
SNIPPET = """
import sys, torch
import torch.nn.functional as F
torch.backends.mkldnn.enabled = sys.argv[1] == "onednn"
g = torch.Generator().manual_seed(0)
x = torch.randn(2, 2, 2, 1, generator=g).contiguous(memory_format=torch.channels_last)
w, b = torch.randn(1, 2, 1, 1, generator=g), torch.randn(1, generator=g)
y = F.conv2d(x, w, b, stride=(1, 2), padding=(0, 1), dilation=(1, 2))
ref = F.conv2d(x.double().contiguous(), w.double(), b.double(), (1, 2), (0, 1), (1, 2))
print(tuple(y.shape), float((y.double() - ref).abs().max()))
"""


def run(onednn: bool) -> subprocess.CompletedProcess[str]:
    """Run the snippet in an isolated interpreter, with or without torch's oneDNN backend."""
    return subprocess.run([sys.executable, "-I", "-c", SNIPPET, "onednn" if onednn else "native"],
                          capture_output=True, text=True, timeout=120, check=False)


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    if proc.returncode < 0:
        return f"killed by {signal.Signals(-proc.returncode).name}"
    return f"exit {proc.returncode}: {proc.stdout.strip() or proc.stderr.strip()[-200:]}"


def main() -> None:
    for onednn in (True, False):
        print(f"conv2d with oneDNN {'on' if onednn else 'off'}: {describe(run(onednn))}")


if __name__ == "__main__":
    main()
