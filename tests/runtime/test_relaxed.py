"""Relaxed float32 computation (``relax_f32_to_f16=True``): the flag reaches NNAPI, and the
virtual device computes such models with float16 range and precision, within a rigorous
rounding-error bound of eager float32.

Error model (interpreter.relax_to_fp16): every float32 operand an op reads and every float32
result it writes is rounded to float16 (unit roundoff u = 2^-11); the arithmetic in between is
float32. For one conv / fully-connected output with K products that gives, to first order,
``|relaxed - exact| <= (2u + u^2 + 2K 2^-24) (|W||x| + |b|) + u |y|``: the two input roundings,
float32 accumulation (also in eager's result), then the output rounding. Below K < 4096, the
first factor is under 3u, which the bounds use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.runtime.device_state import VirtualDevice

U = 2.0**-11  # float16 unit roundoff


def _run(model: nn.Module, x: torch.Tensor, relax: bool) -> tuple[torch.Tensor, VirtualDevice]:
    cm = nc.compile(model.eval(), (x,), relax_f32_to_f16=relax, cpu_fallback=False)
    with nc.virtual_device() as dev:
        y = cm(x)
    return y, dev


def _is_fp16(t: torch.Tensor) -> bool:
    """Every element is a float16 value (what an fp16 accelerator can return)."""
    return bool(torch.equal(t, t.half().float()))


class SmallCnn(nn.Module):
    """conv+relu, strided conv+relu, global mean, linear: the layers the bound below follows."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        return self.fc(x.mean((2, 3)))


def _rounding_bound(m: SmallCnn, x: torch.Tensor) -> torch.Tensor:
    """Elementwise bound on |relaxed - eager| for SmallCnn, propagated layer by layer.

    For a layer y = W x + b whose input carries error e: |W^ x^ - W x| <= (1+u)|W| e (the error
    in, through the rounded weights) + 3u (|W| (|x| + e) + |b|) (this layer's roundings and
    float32 accumulation), then the output rounding adds u (|y| + error). ReLU is 1-Lipschitz;
    the mean of values that are already float16 adds float32 summation error and one rounding.
    """
    def layer(x: torch.Tensor, e: torch.Tensor, lin: nn.Module, y: torch.Tensor) -> torch.Tensor:
        if isinstance(lin, nn.Conv2d):
            def op(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
                return F.conv2d(t, w, b, lin.stride, lin.padding)
        else:
            def op(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
                return F.linear(t, w, b)
        wa, ba = lin.weight.abs(), lin.bias.abs()
        err = (1 + U) * op(e, wa, None) + 3 * U * op(x.abs() + e, wa, ba)
        return err + U * (y.abs() + err)

    with torch.no_grad():
        h1 = F.relu(m.c1(x))
        e = layer(x, torch.zeros_like(x), m.c1, h1)
        h2 = F.relu(m.c2(h1))
        e = layer(h1, e, m.c2, h2)
        g = h2.mean((2, 3))
        k = h2.shape[2] * h2.shape[3]
        e = e.mean((2, 3)) + k * 2.0**-24 * h2.abs().mean((2, 3))
        e = e + U * (g.abs() + e)
        y = m.fc(g)
        return layer(g, e, m.fc, y)


def test_flag_reaches_nnapi() -> None:
    """init2(..., relax) calls Model_relaxComputationFloat32toFloat16, and only when asked."""
    model, x = SmallCnn(), torch.randn(1, 3, 16, 16)
    _, dev = _run(model, x, relax=True)
    assert dev.calls["Model_relaxComputationFloat32toFloat16"] == 1
    assert [c.relaxed for c in dev.compilations] == [True]
    _, dev = _run(model, x, relax=False)
    assert [c.relaxed for c in dev.compilations] == [False]
    cm = nc.compile(model.eval(), (x,), relax_f32_to_f16=True)
    assert all(getattr(cm.script_module, f"segment{i}").relax_f32_to_f16 for i in cm.nnapi_segments())


def test_relaxed_cnn_within_fp16_bound() -> None:
    model, x = SmallCnn().eval(), torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
    relaxed, _ = _run(model, x, relax=True)
    exact, _ = _run(model, x, relax=False)
    bound = _rounding_bound(model, x)
    mag = ref.abs().max().item()
    err = (relaxed - ref).abs()
    # Unrelaxed: float32 to float32 rounding; relaxed: float16-sized errors, and every result
    # is a float16 value.
    assert (exact - ref).abs().max().item() <= 1e-5 * mag
    assert err.max().item() >= 1e-5 * mag, "relaxed results are not measurably different"
    assert _is_fp16(relaxed) and not _is_fp16(exact)
    assert bool((err <= bound).all()), f"worst excess {(err - bound).max().item():.3g}"


def test_single_conv_bound() -> None:
    conv = nn.Conv2d(16, 32, 5, padding=2)
    x = torch.randn(1, 16, 24, 24)
    with torch.no_grad():
        ref = conv(x)
        a = F.conv2d(x.abs(), conv.weight.abs(), conv.bias.abs(), padding=2)
    relaxed, _ = _run(conv, x, relax=True)
    err = (relaxed - ref).abs()
    assert bool((err <= 3 * U * a + U * ref.abs()).all())
    assert err.max().item() > 0.05 * U * ref.abs().max().item()


def test_fp16_range() -> None:
    """Relaxed float32 has float16's range: 1e5 overflows to inf (float32 holds it)."""
    class Scale(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 4.0e4 + 1.0

    x = torch.tensor([[1.0, 2.0, -3.0, 0.5]])
    relaxed, _ = _run(Scale(), x, relax=True)
    exact, _ = _run(Scale(), x, relax=False)
    torch.testing.assert_close(exact, x * 4.0e4 + 1.0)
    assert relaxed[0, 0].item() == 40000.0  # exactly representable in float16 (40001 is not)
    assert relaxed[0, 1:3].isinf().all() and relaxed[0, 1].item() > 0 > relaxed[0, 2].item()


def test_cpu_path_is_float32() -> None:
    """The CPU twin ignores the relaxation (allowed: relaxed means *may* use fp16)."""
    model, x = SmallCnn().eval(), torch.randn(1, 3, 16, 16)
    cm = nc.compile(model, (x,), relax_f32_to_f16=True)
    cm.use_cpu()
    with torch.no_grad():
        torch.testing.assert_close(cm(x), model(x), rtol=1e-5, atol=1e-5)


def test_quantized_ops_are_exact() -> None:
    """Relaxation concerns float32 only: the integer kernels of a quantized model are untouched,
    and only its float32 result (DEQUANTIZE's output) is rounded to float16."""
    from ..quant.helpers import Wrapped, quantize_model

    body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    model = quantize_model(Wrapped(body), [torch.randn(2, 3, 12, 12) for _ in range(3)])
    x = torch.randn(1, 3, 12, 12)
    relaxed, dev = _run(model, x, relax=True)
    exact, _ = _run(model, x, relax=False)
    assert [c.relaxed for c in dev.compilations] == [True]
    assert not torch.equal(relaxed, exact) and torch.equal(relaxed, exact.half().float())
