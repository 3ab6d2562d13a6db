"""Helpers for quantized tests: eager-mode static quantization with qnnpack, and quanta error."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.ao.nn.quantized as nnq
import torch.ao.quantization as tq
from torch import nn

import nnapi_compiler as nc


class Wrapped(nn.Module):
    """QuantStub -> body -> DeQuantStub, so a single quantized op can be tested."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.quant, self.body, self.dequant = tq.QuantStub(), body, tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.body(self.quant(x)))


def quantize_model(model: nn.Module, calib: list[torch.Tensor],
                   fuse: Callable[[nn.Module], None] | None = None,
                   qconfig: str = "qnnpack") -> nn.Module:
    """Static eager-mode quantization with the qnnpack engine, calibrated on ``calib``."""
    torch.backends.quantized.engine = "qnnpack"
    model = model.eval()
    if fuse is not None:
        fuse(model)
    model.qconfig = tq.get_default_qconfig(qconfig)
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        for x in calib:
            model(x)
    tq.convert(model, inplace=True)
    return model


def quanta_error(model: nn.Module, x: torch.Tensor, out_scale: float,
                 target: str = "android-10") -> torch.Tensor:
    """|compiled - eager| per output element, in units of the output quantum."""
    torch.backends.quantized.engine = "qnnpack"
    with torch.no_grad():
        ref = model(x)
    cm = nc.compile(model, (x,), target=target, verify_each_pass=True)
    with nc.virtual_device(), warnings.catch_warnings():
        # A model the virtual device refuses would silently run on the CPU path instead.
        warnings.filterwarnings("error", message="NNAPI is unavailable")
        got = cm(x)
    return ((got - ref).abs() / out_scale).flatten()


def output_scale(model: nn.Module, x: torch.Tensor) -> float:
    """Scale of the quantized tensor the model's last DeQuantize receives (its output quantum)."""
    seen: dict[str, float] = {}
    last = [m for m in model.modules() if isinstance(m, nnq.DeQuantize)][-1]
    h = last.register_forward_pre_hook(lambda _m, a: seen.update(scale=a[0].q_scale()))
    with torch.no_grad():
        model(x)
    h.remove()
    return seen["scale"]
