"""Quantized ConvTranspose2d, eager mode (qnnpack prepare/convert) and PT2E, lowered to one
uint8 (int8 at Android 11 under PT2E) TRANSPOSE_CONV_2D, or (grouped, or output_padding beyond
padding) the convolution it equals on a zero-inserted input.

Two checks per eager case: the virtual device is bit-exact against NNAPI's integer arithmetic
computed independently here (float64 transposed convolution of the centered integers, exact
below 2^53, plus the int32 bias, requantized by tests/runtime/requant_oracle.py); and it is
within one output quantum of qnnpack, which requantizes in float where NNAPI uses a fixed-point
multiplier (the share of outputs one quantum off is measured and pinned, as for Conv2d).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.ir.codes import OperandCode
from nnapi_compiler.passes.requantize_bias import quantize_bias

from ..runtime import requant_oracle as oracle
from .helpers import Wrapped, output_scale, quanta_error, quantize_model
from .pt2e_helpers import calib_batches, quantize_pt2e
from .pt2e_helpers import quanta_error as pt2e_quanta_error

X = (2, 4, 7, 9)
#: name: (module factory, bound on the share of outputs one quantum off qnnpack, the NNAPI
#: op it becomes). Measured at seed 0, device vs qnnpack integers: 0.34%, 0.36%, 0.23%, 0,
#: 0.60%, 0.55% and 0.26%, in the order below. Grouped ones, and output_padding > padding,
#: are the convolution they equal on a zero-inserted input (conv.py ``_transpose_as_conv``).
CASES: dict[str, tuple[Callable[[], nn.Module], float, str]] = {
    "k3-s1": (lambda: nn.ConvTranspose2d(4, 6, 3), 0.004, "transpose_conv_2d"),
    "k3-s2-outpad": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
                     0.004, "transpose_conv_2d"),
    "k4-s2-nobias": (lambda: nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, bias=False), 0.003,
                     "transpose_conv_2d"),
    "k3x2-s21-dilated": (lambda: nn.ConvTranspose2d(4, 5, (3, 2), stride=(2, 1), padding=(2, 1),
                                                    output_padding=(1, 0), dilation=2), 0.004,
                         "transpose_conv_2d"),
    "grouped-s2-outpad": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                                     groups=2), 0.006, "grouped_conv_2d"),
    "depthwise-k4-s2": (lambda: nn.ConvTranspose2d(4, 8, 4, stride=2, padding=1, groups=4), 0.006,
                        "depthwise_conv_2d"),
    "outpad-beyond-padding": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1), 0.003,
                              "conv_2d"),
}


def _quantized(name: str) -> nn.Module:
    torch.manual_seed(0)
    return quantize_model(Wrapped(CASES[name][0]()), [torch.randn(*X) for _ in range(4)])


def _nnapi_integer_result(body: nn.Module, xq: torch.Tensor) -> torch.Tensor:
    """What NNAPI's TRANSPOSE_CONV_2D must return for quantized ``body`` on ``xq`` (uint8)."""
    w = body.weight()
    s_in, s_w, s_out = xq.q_scale(), w.q_scale(), body.scale
    scale_b = float(torch.tensor(s_in, dtype=torch.float32) * torch.tensor(s_w, dtype=torch.float32))
    bias = body.bias() if body.bias() is not None else torch.zeros(w.shape[1] * body.groups)
    acc = F.conv_transpose2d(
        xq.int_repr().double() - xq.q_zero_point(), w.int_repr().double() - w.q_zero_point(),
        stride=body.stride, padding=body.padding, output_padding=body.output_padding,
        dilation=body.dilation, groups=body.groups,
    )
    real = oracle.to_f32(s_in * s_w) / s_out
    out = oracle.requantize(acc.permute(0, 2, 3, 1), quantize_bias(bias, scale_b, "bias"), real,
                            int(body.zero_point), 0, 255)
    return out.permute(0, 3, 1, 2)


@pytest.mark.parametrize("target", ["android-10", "android-11"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_bit_exact_to_nnapi_and_within_one_quantum_of_qnnpack(name: str, target: str) -> None:
    model = _quantized(name)
    body = model.body.eval()
    assert isinstance(body, torch.ao.nn.quantized.ConvTranspose2d)
    xq = model.quant(torch.randn(*X))
    cm = nc.compile(body, (xq,), target=target, cpu_fallback=False, verify_each_pass=True)
    counts = Counter(op.mnemonic for op in cm.program.compute_ops())
    assert counts[CASES[name][2]] == 1 and "host" not in counts, counts
    with nc.virtual_device():
        got = cm(xq)
    assert got.dtype == torch.quint8 and got.q_scale() == body.scale
    assert torch.equal(got.int_repr().long(), _nnapi_integer_result(body, xq))
    with torch.no_grad():
        ref = body(xq)
    diff = (got.int_repr().int() - ref.int_repr().int()).abs()
    assert diff.max().item() <= 1
    assert diff.float().mean().item() <= CASES[name][1], diff.float().mean().item()


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_float_in_float_out(name: str) -> None:
    """QuantStub -> ConvTranspose2d -> DeQuantStub: QUANTIZE, TRANSPOSE_CONV_2D, DEQUANTIZE."""
    model = _quantized(name)
    x = torch.randn(*X)
    err = quanta_error(model, x, output_scale(model, x))
    assert err.max().item() <= 1.0 + 1e-4 and (err > 0.5).float().mean().item() <= CASES[name][1]


def test_unequal_strides_of_a_grouped_one_run_on_the_host_with_the_reason() -> None:
    """No NNAPI form: TRANSPOSE_CONV_2D has no groups, DEPTH_TO_SPACE no unequal blocks."""
    torch.manual_seed(0)
    model = quantize_model(Wrapped(nn.ConvTranspose2d(4, 6, 3, stride=(2, 1), groups=2)), [torch.randn(*X)])
    x = torch.randn(*X)
    text = str(nc.explain(model, (x,)))
    assert "with unequal strides has no NNAPI form" in text, text
    cm = nc.compile(model, (x,))
    with nc.virtual_device():
        got = cm(x)
    with torch.no_grad():
        assert torch.equal(got, model(x))


class _TConvRelu(nn.Module):
    def __init__(self, **kw: int) -> None:
        super().__init__()
        self.t = nn.ConvTranspose2d(8, 6, 3, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.t(x))


PT2E = {"s1": {}, "s2-outpad": {"stride": 2, "padding": 1, "output_padding": 1},
        "s2-dilated": {"stride": 2, "padding": 2, "dilation": 2},
        "s2-grouped": {"stride": 2, "padding": 1, "groups": 2}}
_CODE = {torch.uint8: OperandCode.TENSOR_QUANT8_ASYMM, torch.int8: OperandCode.TENSOR_QUANT8_ASYMM_SIGNED}


@pytest.mark.parametrize(("target", "dtype"), [("android-10", torch.uint8), ("android-11", torch.int8)])
@pytest.mark.parametrize("name", sorted(PT2E))
def test_pt2e(name: str, target: str, dtype: torch.dtype) -> None:
    """NnapiQuantizer annotates conv_transpose2d; ReLU fuses; one TRANSPOSE_CONV_2D results."""
    torch.manual_seed(0)
    xs = (1, 8, 6, 7)
    x = torch.randn(*xs)
    converted = quantize_pt2e(_TConvRelu(**PT2E[name]), x, calib_batches(xs), target,
                              activation_dtype=dtype)
    quanta, cm = pt2e_quanta_error(converted, x, target, verify_each_pass=True)
    counts = Counter(op.mnemonic for op in cm.program.compute_ops())
    want = {"pad": 1, "depth_to_space": 1, "grouped_conv_2d": 1} if "groups" in PT2E[name] \
        else {"transpose_conv_2d": 1}
    assert counts == {"quantize": 1, **want, "dequantize": 1}, counts
    codes = {v.type.code for op in cm.program.compute_ops() for v in op.results if v.type.quant}
    assert codes == {_CODE[dtype]}, codes
    assert quanta.max().item() <= 1 + 1e-4
    assert (quanta > 0.5).float().mean().item() <= 0.002
