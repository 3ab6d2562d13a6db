"""NnapiQuantizer annotations per op, read from convert_pt2e's output: per-tensor weights,
int32 bias at input x weight scale (reproduced exactly by requantize-bias), fused ReLU/ReLU6,
shared parameters for concatenation / pooling / data movement, NNAPI's fixed output
parameters for LOGISTIC / TANH / SOFTMAX, and signed int8 only from Android 11."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnapi_compiler.ir import ops
from nnapi_compiler.quantization import NnapiQuantizer

from .pt2e_helpers import QD, calib_batches, quanta_error, quantize_pt2e

X = (1, 3, 12, 12)


def _q_nodes(gm: torch.fx.GraphModule, after: str) -> list[torch.fx.Node]:
    """quantize_per_tensor nodes fed by an op whose target name contains ``after``."""
    return [n for n in gm.graph.nodes if n.target == QD.quantize_per_tensor.default
            and after in str(n.args[0].target)]


def _qparams(n: torch.fx.Node) -> tuple[float, int, int, int, torch.dtype]:
    return tuple(n.args[1:6])  # type: ignore[return-value]


def _convert(model: nn.Module, target: str = "android-10", **kw: object) -> torch.fx.GraphModule:
    return quantize_pt2e(model, torch.randn(*X), calib_batches(X), target, **kw)


class ConvRelu(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 8, 3), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


@pytest.mark.parametrize("act", [nn.ReLU(), nn.ReLU6()], ids=["relu", "relu6"])
def test_conv_weight_bias_and_fused_activation(act: nn.Module) -> None:
    torch.manual_seed(0)
    gm = _convert(ConvRelu(act))
    conv = next(n for n in gm.graph.nodes if n.target == torch.ops.aten.conv2d.default)
    x_dq, w_dq, b_dq = conv.args[:3]
    assert w_dq.args[2:6] == (0, -127, 127, torch.int8)  # symmetric per-tensor int8
    assert w_dq.target == QD.dequantize_per_tensor.default
    assert b_dq.args[2:] == (0, -(2**31) + 1, 2**31 - 1, torch.int32)
    expect = torch.tensor(x_dq.args[1], dtype=torch.float32) * torch.tensor(w_dq.args[1],
                                                                             dtype=torch.float32)
    assert torch.tensor(b_dq.args[1], dtype=torch.float32) == expect
    # The activation is fused: no quantize between the convolution and it.
    assert [u.target for u in conv.users] != [QD.quantize_per_tensor.default]
    assert len(_q_nodes(gm, "conv2d")) == 0


def test_requantize_bias_reproduces_pt2e_int32_bias() -> None:
    torch.manual_seed(0)
    model = ConvRelu(nn.ReLU())
    with torch.no_grad():
        model.conv.bias.mul_(50)  # large enough that every bias is many accumulator quanta
    gm = _convert(model)
    b_dq = next(n for n in gm.graph.nodes if n.target == torch.ops.aten.conv2d.default).args[2]
    pt2e_ints = getattr(gm, b_dq.args[0].target)
    _, cm = quanta_error(gm, torch.randn(*X))
    conv = next(op for op in cm.program.compute_ops() if isinstance(op, ops.Conv2d))
    ours = cm.program.constants()[conv.bias.id].data
    assert conv.bias.type.quant.zero_point == 0
    assert torch.equal(ours, pt2e_ints)


class CatPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.a(x), self.b(x) * 3], 1)
        return torch.flatten(nn.functional.max_pool2d(y, 2), 1)


def test_shared_parameters_for_cat_pool_and_reshape() -> None:
    torch.manual_seed(0)
    gm = _convert(CatPool())
    shared = {_qparams(q) for op in ("mul", "cat", "max_pool2d", "flatten") for q in _q_nodes(gm, op)}
    conv_a, conv_b = (_qparams(q) for q in _q_nodes(gm, "conv2d"))  # a feeds cat, b feeds mul
    assert len(shared) == 1 and conv_a in shared and conv_b not in shared, (shared, conv_a, conv_b)


@pytest.mark.parametrize(("act", "target", "dtype", "expect"), [
    (nn.Sigmoid(), "android-10", torch.uint8, (1 / 256, 0)),
    (nn.Tanh(), "android-10", torch.uint8, (1 / 128, 128)),
    (nn.Softmax(dim=1), "android-10", torch.uint8, (1 / 256, 0)),
    (nn.Sigmoid(), "android-11", torch.int8, (1 / 256, -128)),
    (nn.Tanh(), "android-11", torch.int8, (1 / 128, 0)),
], ids=["sigmoid", "tanh", "softmax", "sigmoid-int8", "tanh-int8"])
def test_fixed_output_parameters(act: nn.Module, target: str, dtype: torch.dtype,
                                 expect: tuple[float, int]) -> None:
    torch.manual_seed(0)
    gm = _convert(ConvRelu(act), target, activation_dtype=dtype)
    name = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Softmax: "softmax"}[type(act)]
    (q,) = _q_nodes(gm, name)
    assert _qparams(q)[:2] == expect and _qparams(q)[4] == dtype


def test_signed_activations_need_android_11() -> None:
    with pytest.raises(ValueError, match="Android 11"):
        NnapiQuantizer("android-10", activation_dtype=torch.int8)
    assert NnapiQuantizer("android-11", activation_dtype=torch.int8).level == 4
    with pytest.raises(ValueError, match="Android 10"):
        NnapiQuantizer("android-9")
