"""Quantization specs for what NNAPI can express: per-tensor 8-bit activations and weights,
int32 bias at input_scale x weight_scale, and the fixed output parameters NNAPI mandates."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor
from torch.fx import Node
from torchao.quantization.pt2e import (
    FusedMovingAvgObsFakeQuantize,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    ObserverOrFakeQuantize,
)
from torchao.quantization.pt2e.quantizer import (
    DerivedQuantizationSpec,
    FixedQParamsQuantizationSpec,
    QuantizationSpec,
)

# NNAPI's mandated output parameters (scale, zero point) per activation dtype:
# LOGISTIC and SOFTMAX 1/256, TANH 1/128, centred for uint8 and shifted by -128 for int8.
_FIXED = {
    "logistic": {torch.uint8: (1 / 256, 0), torch.int8: (1 / 256, -128)},
    "tanh": {torch.uint8: (1 / 128, 128), torch.int8: (1 / 128, 0)},
    "softmax": {torch.uint8: (1 / 256, 0), torch.int8: (1 / 256, -128)},
}
_RANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}


def _bias_qparams(obs: list[ObserverOrFakeQuantize]) -> tuple[Tensor, Tensor]:
    """Bias scale = input scale x weight scale in float32, as NNAPI and requantize-bias use."""
    act_scale, _ = obs[0].calculate_qparams()
    w_scale, _ = obs[1].calculate_qparams()
    scale = act_scale.float().reshape(()) * w_scale.float().reshape(())
    return scale.reshape(1), torch.zeros(1, dtype=torch.int32)


@attrs.frozen
class NnapiSpecs:
    """The specs one quantizer configuration hands out."""

    act_dtype: torch.dtype = torch.uint8
    is_qat: bool = False

    def act(self) -> QuantizationSpec:
        lo, hi = _RANGE[self.act_dtype]
        if self.is_qat:
            ctr = FusedMovingAvgObsFakeQuantize.with_args(observer=MovingAverageMinMaxObserver,
                                                          eps=2**-12)
        else:
            ctr = HistogramObserver.with_args(eps=2**-12)
        return QuantizationSpec(dtype=self.act_dtype, quant_min=lo, quant_max=hi,
                                qscheme=torch.per_tensor_affine, observer_or_fake_quant_ctr=ctr)

    def weight(self) -> QuantizationSpec:
        # Symmetric int8 in [-127, 127]: exact as NNAPI uint8 after a +128 shift.
        if self.is_qat:
            ctr = FusedMovingAvgObsFakeQuantize.with_args(observer=MovingAverageMinMaxObserver)
        else:
            ctr = MinMaxObserver.with_args()
        return QuantizationSpec(dtype=torch.int8, quant_min=-127, quant_max=127,
                                qscheme=torch.per_tensor_symmetric, observer_or_fake_quant_ctr=ctr)

    def bias(self, x: Node, w: Node, conv: Node) -> DerivedQuantizationSpec:
        return DerivedQuantizationSpec(
            derived_from=[(x, conv), (w, conv)], derive_qparams_fn=_bias_qparams,
            dtype=torch.int32, quant_min=-(2**31) + 1, quant_max=2**31 - 1,
            qscheme=torch.per_tensor_symmetric)

    def fixed(self, kind: str) -> FixedQParamsQuantizationSpec:
        scale, zp = _FIXED[kind][self.act_dtype]
        lo, hi = _RANGE[self.act_dtype]
        return FixedQParamsQuantizationSpec(dtype=self.act_dtype, scale=scale, zero_point=zp,
                                            quant_min=lo, quant_max=hi,
                                            qscheme=torch.per_tensor_affine)
