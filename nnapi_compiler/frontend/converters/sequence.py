"""Sequence layers: Conv1d / ConvTranspose1d (CONV_2D / TRANSPOSE_CONV_2D on an [N, C, 1, L]
view); nn.LSTM as NNAPI's UNIDIRECTIONAL_SEQUENCE_LSTM where that is exact, else, like nn.RNN
and nn.GRU, unrolled over its static sequence length (FL3 ops only).

UNIDIRECTIONAL_SEQUENCE_LSTM (FL3) is ATen's LSTM cell (gates i, f, g, o; TANH activation; no
clipping, peephole, projection or layer norm, whose operands are omitted): one op per layer and
direction, with torch's packed ``weight_ih`` / ``weight_hh`` split into the four per-gate
matrices NNAPI takes and its two biases summed into one. The backward direction reads and
writes the sequence reversed along time (GATHER), and a CONCATENATION joins the directions of a
bidirectional layer. The final h and c are outputs only from FL4 on, so at FL3 the op is used
only when the model reads nothing of the LSTM but its output sequence (checked on the fx users
of the node); an LSTM whose h_n or c_n is read at FL3 is unrolled. From FL4 the op always is used.

Unrolled recurrences use FULLY_CONNECTED, LOGISTIC, TANH, RELU and elementwise ops in exactly
the order of ATen's cells, so results match eager up to float summation order:

- RNN: ``h' = act(x W + b + h U + c)`` with ``act`` tanh or relu;
- GRU: ``r, z = sigmoid(x W_rz + b + h U_rz + c)``, ``n = tanh(x W_n + b_n + r * (h U_n + c_n))``,
  ``h' = n + z * (h - n)``;
- LSTM: ``i, f, o = sigmoid(...)``, ``g = tanh(...)`` of ``x W + b + h U + c``, ``c' = f * c + i * g``,
  ``h' = o * tanh(c')``.

The input projections of all steps are one FULLY_CONNECTED per layer and direction; each step
adds one FC for the recurrent projection. Step outputs are joined by one CONCATENATION along
the feature axis, which is a batch-major ``[B, T, D*H]`` sequence after a free RESHAPE.
UNIDIRECTIONAL_SEQUENCE_RNN (FL3) is not used: its activation is a FuseCode (no tanh,
nn.RNN's default) and its final state too is only an output from FL4 on. NNAPI has no GRU op.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Misuse, Refuse, converter
from ._util import static_tensor, value
from .activation import _aten
from .conv import conv_transpose2d, emit_conv2d, tconv_module
from .linalg import reshape


def _single(v: Any, name: str) -> int:
    if isinstance(v, int):
        return v
    if isinstance(v, list | tuple) and len(v) == 1 and isinstance(v[0], int):
        return v[0]
    raise Refuse(f"{name} {v!r} is not one int")


def _conv1d_module(m: nn.Conv1d) -> dict[str, Any]:
    if m.padding_mode != "zeros":
        raise Refuse(f"padding_mode={m.padding_mode!r} is not supported (only 'zeros')")
    return {"weight": m.weight, "bias": m.bias, "stride": m.stride, "padding": m.padding,
            "dilation": m.dilation, "groups": m.groups}


def _as_image(ctx: Ctx, x: Any) -> Value:
    """[N, C, L] (or unbatched [C, L]) as an [N, C, 1, L] image."""
    x = value(x)
    if x.type.rank not in (2, 3):
        raise Refuse(f"expected an [N, C, L] or [C, L] input, got {x.type.shape}")
    n = x.type.shape[0] if x.type.rank == 3 else 1
    return reshape(ctx, x, (n, x.type.shape[-2], 1, x.type.shape[-1]))


@converter(F.conv1d, torch.conv1d, *_aten("conv1d.default", "conv1d.padding"),
           sig=lambda input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1: None,
           modules={nn.Conv1d: _conv1d_module})
def conv1d(ctx: Ctx, a: dict) -> Any:
    w = static_tensor(a["weight"], "conv weight")  # [Cout, Cin/g, k]
    bias = static_tensor(a["bias"], "conv bias") if a["bias"] is not None else torch.zeros(w.shape[0])
    pad = a["padding"] if isinstance(a["padding"], str) else (0, _single(a["padding"], "padding"))
    a4 = {"input": _as_image(ctx, a["input"]), "groups": a["groups"], "padding": pad,
          "stride": (1, _single(a["stride"], "stride")), "dilation": (1, _single(a["dilation"], "dilation"))}
    return reshape(ctx, emit_conv2d(ctx, a4, w.unsqueeze(2), bias), tuple(ctx.example.shape))


@converter(F.conv_transpose1d, torch.conv_transpose1d, *_aten("conv_transpose1d.default"),
           sig=lambda input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
           dilation=1: None,
           modules={nn.ConvTranspose1d: tconv_module})
def conv_transpose1d(ctx: Ctx, a: dict) -> Any:
    w = static_tensor(a["weight"], "conv_transpose weight")  # [Cin, Cout/g, k]
    a4 = {"input": _as_image(ctx, a["input"]), "weight": w.unsqueeze(2), "bias": a["bias"],
          "stride": (1, _single(a["stride"], "stride")), "padding": (0, _single(a["padding"], "padding")),
          "output_padding": (0, _single(a["output_padding"], "output_padding")), "groups": a["groups"],
          "dilation": (1, _single(a["dilation"], "dilation"))}
    return reshape(ctx, conv_transpose2d(ctx, a4), tuple(ctx.example.shape))


# -- recurrent layers -----------------------------------------------------------------------


def _recurrent_module(m: nn.RNN | nn.GRU | nn.LSTM) -> dict[str, Any]:
    if getattr(m, "proj_size", 0):
        raise Refuse("LSTM with proj_size is not supported")
    return {"params": list(m._flat_weights), "has_biases": m.bias, "num_layers": m.num_layers,
            "dropout": m.dropout, "train": m.training, "bidirectional": m.bidirectional,
            "batch_first": m.batch_first}


def _recurrent_sig(input, hx=None, params=None, has_biases=True, num_layers=1, dropout=0.0,
                   train=False, bidirectional=False, batch_first=False):
    return None


def _rnn_module(m: nn.RNN) -> dict[str, Any]:
    return {**_recurrent_module(m), "nonlinearity": m.nonlinearity}


def _rnn_sig(input, hx=None, params=None, has_biases=True, num_layers=1, dropout=0.0,
             train=False, bidirectional=False, batch_first=False, nonlinearity=None):
    return None


def _fc(ctx: Ctx, x: Value, w: torch.Tensor, b: torch.Tensor | None) -> Value:
    bias = b if b is not None else torch.zeros(w.shape[0])
    return ctx.emit(ops.FullyConnected, input=x, weights=ctx.const(w), bias=ctx.const(bias))


def _step(ctx: Ctx, seq: Value, ta: int, t: int) -> Value:
    """Step ``t`` of a rank-3 sequence whose time axis is ``ta``, as [B, G]."""
    end = list(seq.type.shape)
    begin = [0, 0, 0]
    begin[ta], end[ta] = t, t + 1
    return ctx.emit(ops.StridedSlice, x=seq, begin=tuple(begin), end=tuple(end), strides=(1, 1, 1),
                    shrink_mask=1 << ta)


def _cols(ctx: Ctx, v: Value, lo: int, hi: int) -> Value:
    rows = v.type.shape[0]
    return ctx.emit(ops.StridedSlice, x=v, begin=(0, lo), end=(rows, hi), strides=(1, 1))


def _project(ctx: Ctx, seq: Value, w: torch.Tensor, b: torch.Tensor | None) -> Value:
    """The input projection of every step at once: [d0, d1, in] -> [d0, d1, G]."""
    y = _fc(ctx, seq, w, b)
    return reshape(ctx, y, (*seq.type.shape[:2], w.shape[0]))


def _gru_step(ctx: Ctx, gx_rz: Value, gx_n: Value, h: Any, w: list[torch.Tensor | None],
              hid: int) -> Value:
    w_hh, b_hh = w[1], w[3]
    assert w_hh is not None
    h = ctx.tensor(h)
    gh_rz = _fc(ctx, h, w_hh[: 2 * hid], None if b_hh is None else b_hh[: 2 * hid])
    gh_n = _fc(ctx, h, w_hh[2 * hid:], None if b_hh is None else b_hh[2 * hid:])
    rz = ctx.emit(ops.Logistic, x=ctx.emit(ops.Add, a=gx_rz, b=gh_rz))
    r, z = _cols(ctx, rz, 0, hid), _cols(ctx, rz, hid, 2 * hid)
    n = ctx.emit(ops.Tanh, x=ctx.emit(ops.Add, a=gx_n, b=ctx.emit(ops.Mul, a=r, b=gh_n)))
    return ctx.emit(ops.Add, a=n, b=ctx.emit(ops.Mul, a=z, b=ctx.emit(ops.Sub, a=h, b=n)))


def _lstm_step(ctx: Ctx, gx: Value, h: Any, c: Any, w: list[torch.Tensor | None],
               hid: int) -> tuple[Value, Value]:
    w_hh = w[1]
    assert w_hh is not None
    gates = ctx.emit(ops.Add, a=gx, b=_fc(ctx, ctx.tensor(h), w_hh, w[3]))
    sig = ctx.emit(ops.Logistic, x=gates)
    i, f, o = (_cols(ctx, sig, k * hid, (k + 1) * hid) for k in (0, 1, 3))
    g = ctx.emit(ops.Tanh, x=_cols(ctx, gates, 2 * hid, 3 * hid))
    c = ctx.emit(ops.Add, a=ctx.emit(ops.Mul, a=f, b=ctx.tensor(c)), b=ctx.emit(ops.Mul, a=i, b=g))
    return ctx.emit(ops.Mul, a=o, b=ctx.emit(ops.Tanh, x=c)), c


def _rnn_step(ctx: Ctx, gx: Value, h: Any, w: list[torch.Tensor | None], act: type) -> Value:
    w_hh = w[1]
    assert w_hh is not None
    return ctx.emit(act, x=ctx.emit(ops.Add, a=gx, b=_fc(ctx, ctx.tensor(h), w_hh, w[3])))


def _state(ctx: Ctx, hx: Any, k: int, batch: int, hid: int) -> Any:
    """Initial state ``k`` ([B, H]): a constant, a slice of a run-time state, or zeros."""
    if hx is None:
        return torch.zeros(batch, hid)
    if isinstance(hx, torch.Tensor):
        return hx.detach().float().reshape(-1, batch, hid)[k]
    hx = reshape(ctx, value(hx, "initial state"), (hx.type.numel // (batch * hid), batch, hid))
    return _step(ctx, hx, 0, k)


def _state_used(ctx: Ctx) -> bool:
    """Does the model read the LSTM's final h or c? Every use but ``output = result[0]`` counts
    (a getitem of the state that nothing reads does not)."""
    node = ctx.node
    if node is None:
        return True
    for user in node.users:
        if user.op != "call_function" or user.target is not operator.getitem:
            return True
        if user.args[1] != 0 and user.users:
            return True
    return False


def _sequence_lstm(ctx: Ctx, seq: Value, time_major: bool, params: list[torch.Tensor], per: int,
                   dirs: int, layers: int, hx: Any, cx: Any, batch: int, hid: int,
                   with_state: bool) -> tuple[Value, list[Value], list[Value]]:
    """Each layer and direction as one UNIDIRECTIONAL_SEQUENCE_LSTM on ``seq`` (time-major
    or batch-major, kept so throughout); the backward direction reads and writes the sequence
    reversed along time by a GATHER. Returns the last layer's output and the final h and c."""
    ta = 0 if time_major else 1
    steps = seq.type.shape[ta]
    backwards = tuple(range(steps - 1, -1, -1))
    finals_h: list[Value] = []
    finals_c: list[Value] = []
    for layer in range(layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, w_hh = params[per * k], params[per * k + 1]
            bias = (params[per * k + 2] + params[per * k + 3] if per == 4
                    else torch.zeros(4 * hid))  # NNAPI's one bias per gate: b_ih + b_hh
            src = ctx.emit(ops.Gather, x=seq, axis=ta, indices=backwards) if d else seq
            op = ctx.b.op(ops.SequenceLstm, x=src,
                          params=(*(ctx.const(w[g * hid:(g + 1) * hid]) for w in (w_ih, w_hh)
                                    for g in range(4)),
                                  *(ctx.const(bias[g * hid:(g + 1) * hid]) for g in range(4))),
                          h0=ctx.tensor(_state(ctx, hx, k, batch, hid)),
                          c0=ctx.tensor(_state(ctx, cx, k, batch, hid)),
                          time_major=time_major, with_state=with_state)
            y = op.results[0]
            outs.append(ctx.emit(ops.Gather, x=y, axis=ta, indices=backwards) if d else y)
            if with_state:
                finals_h.append(op.results[1])
                finals_c.append(op.results[2])
        seq = outs[0] if dirs == 1 else ctx.emit(ops.Concatenation, xs=tuple(outs), axis=2)
    return seq, finals_h, finals_c


def _recurrent(ctx: Ctx, a: dict, cell: str, act: type | None = None,
               sequence: Callable[..., tuple[Value, list[Value], list[Value]]] | None = None) -> Any:
    """Unroll a GRU (``cell="gru"``), an LSTM (``"lstm"``) or an RNN (``"rnn"``, whose
    activation op ``act`` is TANH or RELU), or for an LSTM use ``sequence`` (``_sequence_lstm``)
    where the sequence op is exact at the target."""
    lstm = cell == "lstm"
    if a["train"]:
        raise Misuse("recurrent layer in training mode")
    x = value(a["input"])
    if x.type.rank not in (2, 3) or x.type.quant is not None:
        raise Refuse(f"expected a float rank-2 or rank-3 sequence, got {x.type}")
    unbatched, batch_first = x.type.rank == 2, bool(a["batch_first"])
    if unbatched:
        x, batch_first = reshape(ctx, x, (x.type.shape[0], 1, x.type.shape[1])), False
    ta = 1 if batch_first else 0
    steps, batch = x.type.shape[ta], x.type.shape[1 - ta]
    dirs = 2 if a["bidirectional"] else 1
    per = 4 if a["has_biases"] else 2
    params = [static_tensor(p, "recurrent weight") for p in a["params"]]
    if len(params) != per * dirs * a["num_layers"]:
        raise Refuse(f"expected {per * dirs * a['num_layers']} weight tensors, got {len(params)}")
    hid = params[1].shape[1]
    hx, cx = (a["hx"] if a["hx"] is not None else (None, None)) if lstm else (a["hx"], None)
    seq, finals_h, finals_c = x, [], []
    # UNIDIRECTIONAL_SEQUENCE_LSTM is the same cell; its final states are outputs from FL4 on,
    # so at FL3 it is used only when the model reads nothing but the output sequence.
    state_used = _state_used(ctx)
    sequence_op = sequence is not None and (ctx.level >= 4 or not state_used)
    layers = 0 if sequence_op else a["num_layers"]
    if sequence is not None and sequence_op:
        seq, finals_h, finals_c = sequence(
            ctx, x, not batch_first, params, per, dirs, a["num_layers"], hx, cx, batch, hid,
            with_state=state_used)
    for layer in range(layers):
        outs: list[list[Value]] = []
        for d in range(dirs):
            k = layer * dirs + d
            w: list[torch.Tensor | None] = params[k * per:(k + 1) * per] + [None] * (4 - per)
            assert w[0] is not None
            order = range(steps - 1, -1, -1) if d else range(steps)
            h, c = _state(ctx, hx, k, batch, hid), _state(ctx, cx, k, batch, hid)
            hs: dict[int, Value] = {}
            if lstm:
                gx = _project(ctx, seq, w[0], w[2])
                for t in order:
                    h, c = _lstm_step(ctx, _step(ctx, gx, ta, t), h, c, w, hid)
                    hs[t] = h
                finals_c.append(c)
            elif cell == "rnn":
                assert act is not None
                gx = _project(ctx, seq, w[0], w[2])
                for t in order:
                    h = _rnn_step(ctx, _step(ctx, gx, ta, t), h, w, act)
                    hs[t] = h
            else:
                b_ih = w[2]
                gx_rz = _project(ctx, seq, w[0][: 2 * hid], None if b_ih is None else b_ih[: 2 * hid])
                gx_n = _project(ctx, seq, w[0][2 * hid:], None if b_ih is None else b_ih[2 * hid:])
                for t in order:
                    h = _gru_step(ctx, _step(ctx, gx_rz, ta, t), _step(ctx, gx_n, ta, t), h, w, hid)
                    hs[t] = h
            finals_h.append(h)
            outs.append([hs[t] for t in range(steps)])
        # [B, H] pieces in (t, direction) order along the features: a batch-major sequence.
        pieces = tuple(outs[d][t] for t in range(steps) for d in range(dirs))
        seq = reshape(ctx, ctx.emit(ops.Concatenation, xs=pieces, axis=1), (batch, steps, dirs * hid))
        ta = 1
    out = seq
    if unbatched:
        out = reshape(ctx, out, (steps, dirs * hid))
    elif sequence_op:
        pass  # already in the input's major order
    elif not batch_first:
        out = (reshape(ctx, out, (steps, 1, dirs * hid)) if batch == 1
               else ctx.emit(ops.Transpose, x=out, perm=(1, 0, 2)))
    state_shape = (len(finals_h), hid) if unbatched else (len(finals_h), batch, hid)

    def stack(vs: list[Any]) -> Value:
        xs = tuple(ctx.tensor(v) for v in vs)
        joined = xs[0] if len(xs) == 1 else ctx.emit(ops.Concatenation, xs=xs, axis=0)
        return reshape(ctx, joined, state_shape)

    if lstm:
        if not finals_h:  # sequence op without state outputs: nothing reads them
            return (out, None, None) if ctx.node is not None and ctx.node.op == "call_function" \
                else (out, (None, None))
        h_n, c_n = stack(finals_h), stack(finals_c)
        # nn.LSTM returns (output, (h_n, c_n)); aten.lstm.input the flat (output, h_n, c_n).
        aten_spelling = ctx.node is not None and ctx.node.op == "call_function"
        return (out, h_n, c_n) if aten_spelling else (out, (h_n, c_n))
    return out, stack(finals_h)


@converter(*_aten("rnn_tanh.input", "rnn_relu.input"), sig=_rnn_sig, modules={nn.RNN: _rnn_module})
def rnn(ctx: Ctx, a: dict) -> Any:
    act = a["nonlinearity"]
    if act is None:  # aten.rnn_tanh / aten.rnn_relu: the overload names the activation
        assert ctx.node is not None
        act = "relu" if ctx.node.target in _aten("rnn_relu.input") else "tanh"
    acts = {"tanh": ops.Tanh, "relu": ops.Relu}
    if act not in acts:
        raise Refuse(f"RNN nonlinearity {act!r} is not tanh or relu")
    return _recurrent(ctx, a, cell="rnn", act=acts[act])


@converter(*_aten("gru.input"), sig=_recurrent_sig, modules={nn.GRU: _recurrent_module})
def gru(ctx: Ctx, a: dict) -> Any:
    return _recurrent(ctx, a, cell="gru")


@converter(*_aten("lstm.input"), sig=_recurrent_sig, modules={nn.LSTM: _recurrent_module})
def lstm(ctx: Ctx, a: dict) -> Any:
    return _recurrent(ctx, a, cell="lstm", sequence=_sequence_lstm)
