"""Helpers for PT2E-quantized tests: export + NnapiQuantizer + calibrate + convert, and the
error of the compiled model against the converted module run eagerly (the PT2E reference)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
from torchao.quantization.pt2e.quantizer import Quantizer

import nnapi_compiler as nc
from nnapi_compiler.quantization import NnapiQuantizer

QD = torch.ops.quantized_decomposed


def quantize_pt2e(model: torch.nn.Module, x: torch.Tensor, calib: Sequence[torch.Tensor],
                  target: str = "android-10", quantizer: Quantizer | None = None,
                  **qkw: Any) -> torch.fx.GraphModule:
    """Export ``model`` on ``x``, prepare with ``quantizer`` (NnapiQuantizer by default),
    calibrate on ``calib`` and convert."""
    gm = torch.export.export(model.eval(), (x,)).module()
    prepared = prepare_pt2e(gm, quantizer or NnapiQuantizer(target, **qkw))
    with torch.no_grad():
        for c in calib:
            prepared(c)
    return convert_pt2e(prepared)


def calib_batches(shape: Sequence[int], n: int = 4, seed: int = 100) -> list[torch.Tensor]:
    return [torch.randn(*shape, generator=torch.Generator().manual_seed(seed + i)) for i in range(n)]


def final_dq_scale(gm: torch.fx.GraphModule) -> float:
    """Scale of the last activation dequantize before the output (the output quantum)."""
    dqs = [n for n in gm.graph.nodes if n.target == QD.dequantize_per_tensor.default
           and n.args[0].op != "get_attr"]
    return float(dqs[-1].args[1])


def quanta_error(converted: torch.fx.GraphModule, x: torch.Tensor, target: str = "android-10",
                 **kw: Any) -> tuple[torch.Tensor, nc.CompiledModel]:
    """|compiled - reference| per output element in quanta of the final dequantize's scale."""
    with torch.no_grad():
        ref = converted(x)
    cm = nc.compile(converted, (x,), target=target, **kw)
    with nc.virtual_device(), warnings.catch_warnings():
        # A model the virtual device refuses would silently run on the CPU path instead.
        warnings.filterwarnings("error", message="NNAPI is unavailable")
        got = cm(x)
    return ((got - ref).abs() / final_dq_scale(converted)).flatten(), cm


def within(quanta: torch.Tensor, n: float = 2) -> float:
    return (quanta <= n + 1e-4).float().mean().item()


def sqnr_db(got: torch.Tensor, ref: torch.Tensor) -> float:
    noise = (got - ref).pow(2).mean()
    return (10 * torch.log10(ref.pow(2).mean() / noise)).item() if noise > 0 else float("inf")
