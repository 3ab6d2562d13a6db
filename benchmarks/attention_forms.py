"""Which matrix-product form attention compiles to at each feature level, and its op count.

Prints the markdown table of docs/linalg.md: for scaled_dot_product_attention,
nn.MultiheadAttention and nn.TransformerEncoderLayer (batch_first, GELU), the NNAPI op count,
host op count and the ops the two attention products became, at Android 10 / 11 / 12 / 13.
Run from the repository root: ``python benchmarks/attention_forms.py``.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nnapi_compiler as nc

TARGETS = ("android-10", "android-11", "android-12", "fl6")
PRODUCT_OPS = ("batch_matmul", "fully_connected", "mul", "reduce_sum", "concatenation", "strided_slice",
               "transpose", "softmax")


class Sdpa(nn.Module):
    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q.tanh(), q.relu())


class Mha(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


def _encoder(d: int, heads: int) -> nn.Module:
    return nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, activation="gelu", batch_first=True)


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "sdpa, 1 head, L=16, D=8": (Sdpa, (1, 1, 16, 8)),
    "sdpa, 4 heads, L=16, D=8": (Sdpa, (1, 4, 16, 8)),
    "sdpa, 3 heads, L=197, D=64 (ViT-tiny)": (Sdpa, (1, 3, 197, 64)),
    "MultiheadAttention(64, 4), L=16": (lambda: Mha(64, 4), (1, 16, 64)),
    "TransformerEncoderLayer(64, 4), L=16": (lambda: _encoder(64, 4), (1, 16, 64)),
    "TransformerEncoderLayer(64, 4), B=2, L=16": (lambda: _encoder(64, 4), (2, 16, 64)),
}


def counts(cm: nc.CompiledModel) -> Counter[str]:
    c: Counter[str] = Counter()
    for line in cm.ir().splitlines():
        if "=" in line:
            name = line.split("=", 1)[1].strip().split(" ")[0]
            if name != "constant":
                c[name] += 1
    return c


def main() -> None:
    print("| model | target | NNAPI ops | host ops | matmul-related ops |")
    print("|---|---|---|---|---|")
    for name, (make, shape) in CASES.items():
        torch.manual_seed(0)
        model, x = make().eval(), torch.randn(*shape)
        for target in TARGETS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cm = nc.compile(model, (x,), target=target)
            with nc.virtual_device(feature_level=cm.level), torch.no_grad():
                err = (cm(x) - model(x)).abs().max().item()
            assert err < 1e-4, (name, target, err)
            c = counts(cm)
            forms = ", ".join(f"{c[o]} {o.upper()}" for o in PRODUCT_OPS if c[o])
            print(f"| {name} | {target} | {cm.stats['nnapi_ops']} | {cm.stats['host_ops']} | {forms} |")


if __name__ == "__main__":
    main()
