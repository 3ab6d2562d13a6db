"""UNIDIRECTIONAL_SEQUENCE_LSTM's reference kernel against torch.nn.LSTM run in float64 (both
major orders, with and without the FL4 final-state outputs), a float64 loop for the clipped
relu variant, and the interpreter's refusals (state outputs before FL4, unimplemented operands)."""

from __future__ import annotations

import pytest
import torch

from nnapi_compiler.runtime.interpreter import InterpreterError

from ..runtime.kernel_helpers import close
from .cases import sequence_lstm_model


def _weights(g: torch.Generator, n_in: int, units: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.randn(*s, generator=g) * 0.5 for s in ((4 * units, n_in), (4 * units, units),
                                                               (4 * units,), (4 * units,)))


@pytest.mark.parametrize("time_major", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_sequence_lstm_equals_torch_lstm(time_major: bool, with_state: bool) -> None:
    g = torch.Generator().manual_seed(3)
    steps, batch, n_in, units = 7, 3, 5, 6
    w_ih, w_hh, b_ih, b_hh = _weights(g, n_in, units)
    x = torch.randn(steps, batch, n_in, generator=g)
    h0, c0 = torch.randn(batch, units, generator=g), torch.randn(batch, units, generator=g)
    ref = torch.nn.LSTM(n_in, units).double()
    with torch.no_grad():
        for name, t in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                           (w_ih, w_hh, b_ih, b_hh), strict=True):
            getattr(ref, name).copy_(t.double())
        want, (h_n, c_n) = ref(x.double(), (h0.double()[None], c0.double()[None]))
    arg = x if time_major else x.transpose(0, 1).contiguous()
    b = sequence_lstm_model(arg, w_ih, w_hh, b_ih + b_hh, h0, c0, time_major, with_state)
    got = b.run(level=4 if with_state else 3)
    assert len(got) == (3 if with_state else 1)
    close(got[0], (want if time_major else want.transpose(0, 1)).float())
    if with_state:
        close(got[1], h_n[0].float())
        close(got[2], c_n[0].float())


def test_sequence_lstm_cell_clip_and_relu_follow_the_definition() -> None:
    g = torch.Generator().manual_seed(5)
    w_ih, w_hh, b, _ = _weights(g, 3, 4)
    x = torch.randn(2, 6, 3, generator=g) * 3
    h0, c0 = torch.zeros(2, 4), torch.zeros(2, 4)
    clip = 0.75
    got = sequence_lstm_model(x, w_ih, w_hh, b, h0, c0, False, True, activation=1,
                              cell_clip=clip).run(level=4)
    h, c, outs = h0.double(), c0.double(), []
    for t in range(6):
        z = x[:, t].double() @ w_ih.double().T + h @ w_hh.double().T + b.double()
        i, f, gg, o = z.chunk(4, 1)
        c = (torch.sigmoid(f) * c + torch.sigmoid(i) * torch.relu(gg)).clamp(-clip, clip)
        h = torch.sigmoid(o) * torch.relu(c)
        outs.append(h)
    close(got[0], torch.stack(outs, 1).float())
    close(got[1], h.float())
    close(got[2], c.float())
    assert float(got[2].abs().max()) <= clip


def test_sequence_lstm_state_outputs_need_fl4() -> None:
    g = torch.Generator().manual_seed(1)
    w_ih, w_hh, b, _ = _weights(g, 3, 2)
    b_ = sequence_lstm_model(torch.randn(4, 1, 3), w_ih, w_hh, b, torch.zeros(1, 2), torch.zeros(1, 2),
                             True, True)
    with pytest.raises(InterpreterError, match="feature level 4"):
        b_.run(level=3)


def test_sequence_lstm_refuses_a_projection() -> None:
    g = torch.Generator().manual_seed(2)
    w_ih, w_hh, b, _ = _weights(g, 3, 2)
    b_ = sequence_lstm_model(torch.randn(4, 1, 3), w_ih, w_hh, b, torch.zeros(1, 2), torch.zeros(1, 2),
                             True, False)
    op = b_.model.operations[0]
    proj = op.inputs[16]  # give the omitted projection weights a value
    b_.model.operands[proj] = type(b_.model.operands[proj])(b_.model.operands[proj].code, (2, 2))
    b_.model.values[proj] = torch.eye(2).numpy().tobytes()
    with pytest.raises(InterpreterError, match="projection"):
        b_.run(level=3)
