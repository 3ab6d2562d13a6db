"""UNIDIRECTIONAL_SEQUENCE_LSTM: an LSTM layer run over every step of a static sequence.

Per step t, with gate weights W_x* [U, in], W_h* [U, out] and biases b_* [U]:
``i = sigmoid(x W_xi^T + h W_hi^T + b_i)``, likewise f and o, ``g = act(x W_xc^T + h W_hc^T + b_c)``,
``c' = f * c + i * g`` (clipped to [-cell_clip, cell_clip] when cell_clip > 0), ``h' = o * act(c')``.
The output sequence holds every h'; from FL4 the op may also return the final h and c.

Implemented: the full-gate cell without peephole, projection or layer normalization. Those
optional operands must be omitted; a model that gives them is refused when the op is bound, so a
missing feature is an error, never a silently different result.
"""

from __future__ import annotations

import torch

from ..ir.codes import OpCode
from ..ir.legality import outputs_level
from .registry import FLOAT_TYPES, Bound, CheckArgs, In, KernelCall, Sig, kernel

# Input positions: 0 x, 1-4 W_x{i,f,c,o}, 5-8 W_h{i,f,c,o}, 9-11 peephole, 12-15 biases,
# 16-17 projection, 18 h0, 19 c0, 20 activation, 21 cell_clip, 22 proj_clip, 23 time_major,
# 24-27 layer-norm weights.
_OPTIONAL = (1, 5, 9, 10, 11, 12, 16, 17, 24, 25, 26, 27)
_UNSUPPORTED = {9: "peephole weights", 10: "peephole weights", 11: "peephole weights",
                16: "projection", 17: "projection", 24: "layer normalization",
                25: "layer normalization", 26: "layer normalization", 27: "layer normalization"}
_ACTIVATIONS = (0, 1, 3, 4, 6)


def _act(x: torch.Tensor, code: int) -> torch.Tensor:
    if code == 0:
        return x
    if code == 1:
        return torch.clamp_min(x, 0.0)
    if code == 3:
        return torch.clamp(x, 0.0, 6.0)
    if code == 4:
        return torch.tanh(x)
    if code == 6:
        return torch.sigmoid(x)
    raise ValueError(f"unknown LSTM activation {code}")


def sequence_lstm(x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
                  h0: torch.Tensor, c0: torch.Tensor, activation: int, cell_clip: float,
                  time_major: bool, with_state: bool) -> list[torch.Tensor]:
    """``weights``: W_xi, W_xf, W_xc, W_xo, W_hi, W_hf, W_hc, W_ho; ``biases``: b_i, b_f, b_c, b_o."""
    seq = x.float() if time_major else x.float().transpose(0, 1)  # [T, B, in]
    w_x = torch.cat([w.float() for w in weights[:4]], 0)  # [4U, in], gates i, f, c, o
    w_h = torch.cat([w.float() for w in weights[4:]], 0)  # [4U, U]
    bias = torch.cat([b.float() for b in biases], 0)
    units = biases[0].shape[0]
    h, c = h0.float(), c0.float()
    outs: list[torch.Tensor] = []
    for t in range(seq.shape[0]):
        gates = torch.nn.functional.linear(seq[t], w_x, bias) + torch.nn.functional.linear(h, w_h)
        i = torch.sigmoid(gates[:, :units])
        f = torch.sigmoid(gates[:, units:2 * units])
        g = _act(gates[:, 2 * units:3 * units], activation)
        o = torch.sigmoid(gates[:, 3 * units:])
        c = f * c + i * g
        if cell_clip > 0.0:
            c = torch.clamp(c, -cell_clip, cell_clip)
        h = o * _act(c, activation)
        outs.append(h)
    out = torch.stack(outs, 0)
    if not time_major:
        out = out.transpose(0, 1)
    result = [out.contiguous().to(x.dtype)]
    if with_state:
        result.append(h.to(x.dtype))
        result.append(c.to(x.dtype))
    return result


def _check(args: CheckArgs) -> str | None:
    try:
        need = outputs_level(args.op, len(args.outputs))
    except ValueError as e:
        return str(e)
    if need is not None and need > args.level:
        return f"{len(args.outputs)} outputs (the final states) need feature level {need}"
    act = args.values[20]
    if act is not None and act not in _ACTIVATIONS:
        return f"activation {act} is not one of {_ACTIVATIONS}"
    return None


@kernel(OpCode.UNIDIRECTIONAL_SEQUENCE_LSTM, inputs=[Sig("TTTTTTTTTtttTTTTttTTiffbtttt", 3)],
        outputs=None, types=FLOAT_TYPES, optional=_OPTIONAL, rank=(3, 3), check=_check)
def _sequence_lstm(call: KernelCall) -> Bound:
    if any(call.opt_tensor(p) is None for p in (1, 5, 12)):
        raise ValueError("UNIDIRECTIONAL_SEQUENCE_LSTM without an input gate (CIFG) is not "
                         "implemented")
    for pos, what in _UNSUPPORTED.items():
        if call.opt_tensor(pos) is not None:
            raise ValueError(f"UNIDIRECTIONAL_SEQUENCE_LSTM with {what} is not implemented")
    weights = [In(k) for k in range(1, 9)]
    biases = [In(k) for k in range(12, 16)]
    return Bound(sequence_lstm, (In(0), weights, biases, In(18), In(19), call.int(20),
                                 call.float(21), bool(call.inputs[23]),
                                 len(call.output_descs) == 3), multi=True)
