"""Teacher-forced references for the quantized fuzz: each stage of a ``quant_cases`` model is run
by PyTorch on the *compiled* model's values of its inputs, and compared with the compiled
model's value of its output. A difference is then the stage's own rounding, not an earlier
stage's difference amplified by later weights, so it can be held to what one op's arithmetic
warrants (docs/fuzzing.md, "The bound"):

- an op that requantizes by the same integer arithmetic as qnnpack, or moves values without
  arithmetic, is bit-exact (0 quanta);
- an op whose rounding differs (NNAPI's fixed-point multiplier against qnnpack's float, NNAPI
  MEAN's truncation, RESIZE_BILINEAR, a float reference in PT2E, an add_scalar that PyTorch
  requantizes) is at most 1 quantum off;
- an average (pooling, a mean over H and/or W) is exact except where the average of the
  stored integers is a tie, which qnnpack rounds to even and NNAPI away from zero: 1 there;
- an activation evaluated in float (sigmoid, tanh, hard-sigmoid/-swish, leaky ReLU, ELU,
  GELU) is exact except within 1e-3 quanta of a rounding boundary, computed by a float64
  reference: 1 there;
- a conv/linear whose per-channel weights the compiler requantized to one scale is at most
  ``1 + sum_k |x_k| e_k / s_out`` off, with ``e_k`` the largest change that requantization can
  make to weight k, computed here from the weights and the input.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.ao.nn.quantized as nnq
import torch.nn.functional as F
from torch import fx

from .quant_cases import QCase

QD = torch.ops.quantized_decomposed

#: Eager stages that may round differently from qnnpack (at most one quantum); all others must
#: be bit-exact. PT2E's reference computes each op in float between dequantize and quantize,
#: so there every stage but data movement may be one quantum off.
EAGER_ONE = {"conv", "linear", "add", "mul", "mean-c", "upsample-bilinear"}
PT2E_EXACT = {"upsample-nearest"}
#: Eager averages: exact except on ties (``_ties``).
AVERAGES = {"avgpool", "mean-hw", "mean-h"}


def stage_name(kind: str, p: dict[str, Any]) -> str:
    if kind == "mean":
        return f"mean-{p['mode']}"
    if kind == "upsample":
        return f"upsample-{p['mode']}"
    return kind


def _requant(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A compiled float tap as the quantized tensor it dequantized from (exact round trip)."""
    q = torch.quantize_per_tensor(t.contiguous(), like.q_scale(), like.q_zero_point(), torch.quint8)
    assert torch.equal(q.dequantize(), t), "a compiled output is not on its quantization grid"
    return q


def eager_stages(model: Any, case: QCase, x: torch.Tensor, got: tuple[torch.Tensor, ...]
                 ) -> list[tuple[str, torch.Tensor, torch.Tensor, float]]:
    """[(stage, compiled, reference, bound)] in quanta, for every tap of an eager model."""
    with torch.no_grad():
        eager = model.taps(x)
    got_q = [x, *got] if case.quint8_io else [_requant(g, e) for g, e in zip(got, eager, strict=True)]
    out = []
    if not case.quint8_io:  # tap 0: the input QUANTIZE, round to nearest on both sides
        out.append(("quantize", got_q[0], eager[0], torch.zeros(())))
    for i, (m, s) in enumerate(zip(model.stages, case.stages, strict=True)):
        ins = [got_q[j] for j in s.srcs]
        with torch.no_grad():
            ref = m(*ins)
        name = stage_name(s.kind, s.p)
        bound = torch.ones(()) if name in EAGER_ONE else torch.zeros(())
        if case.per_channel and s.kind in ("conv", "linear"):
            bound = 1 + _per_channel_slack(m, ins[0], ref.q_scale())
        if name in AVERAGES:
            bound = _ties(name, s.p, ins[0])
        if name in FLOAT_ACTS:
            bound = _near_ties(name, s.p, ins[0], ref.q_scale(), ref.q_zero_point())
        if s.kind == "scalar" and s.p["op"] == "add" and ref.q_scale() != ins[0].q_scale():
            # PyTorch adds a scalar by shifting the zero point when the result fits, exactly;
            # otherwise it requantizes at a new scale, which NNAPI's ADD rounds differently.
            bound = torch.ones(())
        out.append((name, got_q[i + 1], ref, bound))
    return out


def _ties(name: str, p: dict[str, Any], xq: torch.Tensor) -> torch.Tensor:
    """1 where an average of the stored integers is exactly halfway between two, else 0.
    qnnpack rounds those ties to even, NNAPI's AVERAGE_POOL_2D away from zero; every other
    average rounds the same on both. Padding counts as the zero point (``count_include_pad``)."""
    d = (xq.int_repr().long() - xq.q_zero_point()).double()
    if name == "avgpool":
        k, stride, pad = (2, 2, 0) if p["halve"] else (3, 1, 1)
        total, n = F.avg_pool2d(d, k, stride, pad, divisor_override=1), k * k
    else:
        dims = {"mean-hw": (2, 3), "mean-h": (2,)}[name]
        total = d.sum(dims, keepdim=True)
        n = int(torch.tensor([d.shape[i] for i in dims]).prod())
    return (torch.remainder(2 * total, 2 * n) == n).float()


#: Activations both sides compute by evaluating the function in float on the dequantized input
#: and rounding once at the output scale, as float64 references.
FLOAT_ACTS: dict[str, Any] = {
    "sigmoid": lambda x, p: torch.sigmoid(x),
    "tanh": lambda x, p: torch.tanh(x),
    "hardsigmoid": lambda x, p: (x + 3).clamp(0, 6) / 6,
    "hardswish": lambda x, p: x * (x + 3).clamp(0, 6) / 6,
    "leaky_relu": lambda x, p: torch.where(x >= 0, x, x * p["slope"]),
    "elu": lambda x, p: torch.where(x > 0, x, p["alpha"] * torch.expm1(x)),
    "gelu": lambda x, p: 0.5 * x * (1 + torch.erf(x / 2**0.5)),
}


def _near_ties(name: str, p: dict[str, Any], xq: torch.Tensor, s_out: float, zp_out: int
               ) -> torch.Tensor:
    """1 where the exact result lies within 1e-3 output quanta of a rounding boundary, else 0.
    Both sides evaluate the function in float32 (a few ulps apart, different formulas) and
    round once; NNAPI's QUANTIZE rounds halves away from zero, PyTorch's to even (hardsigmoid
    at scale 1/256 meets exact halves). Elsewhere the two must agree exactly."""
    t = FLOAT_ACTS[name](xq.dequantize().double(), p) / s_out + zp_out
    return ((t - torch.floor(t) - 0.5).abs() < 1e-3).float()


def _per_channel_slack(m: torch.nn.Module, xq: torch.Tensor, s_out: float) -> torch.Tensor:
    """Per output element, how far (in output quanta) requantizing per-channel weights to one
    scale can move the accumulator: the compiler uses s = the largest channel scale and
    rounds to [-127, 127], so weight k moves by at most max(s / 2, |w_k| - 127 s); the bias,
    requantized at s_in * s instead of s_in * s_c, by at most s_in * s."""
    layer = m.conv if hasattr(m, "conv") else m.fc
    w = layer.weight()
    if w.qscheme() not in (torch.per_channel_affine, torch.per_channel_symmetric):
        return torch.zeros(())
    real = w.dequantize().double()
    s = w.q_per_channel_scales().double().max()
    e = torch.maximum(torch.full_like(real, float(s) / 2), real.abs() - 127 * s)
    xr = xq.dequantize().double().abs()
    if isinstance(layer, nnq.Linear):
        move = xr.flatten(1) @ e.T
    else:
        move = F.conv2d(xr, e, None, layer.stride, layer.padding, layer.dilation, layer.groups)
        if not isinstance(m.pool, torch.nn.Identity):  # max pooling moves no value further
            move = F.max_pool2d(move, 2, ceil_mode=True)
    return ((move + xq.q_scale() * s) / s_out).float()


def pt2e_stages(gm: fx.GraphModule, case: QCase, x: torch.Tensor, got: tuple[torch.Tensor, ...]
                ) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The same for a converted PT2E module: an fx interpreter runs the reference graph and,
    at each tap's quantize node, records the reference and continues with the compiled value."""
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    taps: dict[fx.Node, int] = {}
    for j, dq in enumerate(out_node.args[0]):
        assert dq.target == QD.dequantize_per_tensor.default, dq.format_node()
        q = dq.args[0]
        assert q.target == QD.quantize_per_tensor.default, q.format_node()
        taps[q] = j
    refs: dict[int, tuple[torch.Tensor, torch.Tensor, float, int]] = {}

    class Forced(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            v = super().run_node(n)
            if n in taps:
                j = taps[n]
                _, scale, zp, lo, hi, dtype = (self.env[a] if isinstance(a, fx.Node) else a
                                               for a in n.args)
                forced = QD.quantize_per_tensor.default(got[j], scale, zp, lo, hi, dtype)
                assert torch.equal(QD.dequantize_per_tensor.default(
                    forced, scale, zp, lo, hi, dtype), got[j]), "compiled tap off the grid"
                refs[j] = (forced, v, float(scale), int(zp))
                return forced
            return v

    with torch.no_grad():
        Forced(gm).run(x)
    out = []
    for j, s in enumerate(case.stages):
        forced, ref, scale, zp = refs[j]
        name = stage_name(s.kind, s.p)
        bound = torch.zeros(()) if name in PT2E_EXACT else torch.ones(())
        out.append((name, _Q(forced, scale, zp), _Q(ref, scale, zp), bound))
    return out


class _Q:
    """Integer values of a decomposed-quantized tensor, read like a quantized tensor."""

    def __init__(self, ints: torch.Tensor, scale: float, zp: int) -> None:
        self.ints, self.scale, self.zp = ints, scale, zp

    def int_repr(self) -> torch.Tensor:
        return self.ints

    def q_scale(self) -> float:
        return self.scale


def quanta(got: Any, ref: Any) -> torch.Tensor:
    """|got - ref| in quanta of their (shared) scale: integer differences of the stored values."""
    assert abs(got.q_scale() - ref.q_scale()) <= 1e-12 * ref.q_scale()
    return (got.int_repr().int() - ref.int_repr().int()).abs().float()
