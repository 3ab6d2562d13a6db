"""Conv1d / ConvTranspose1d / RNN / GRU / LSTM: one NNAPI segment at Android 10, both capture dialects,
vs eager on the virtual device; the audio models of issue 10 also reloaded from their .ptl."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from ..conftest import Fn, assert_close_scaled
from ..partition import models as M
from .helpers import compile_whole, op_counts


class Rnn(nn.Module):
    """A recurrent layer with every output returned (and an optional initial state input)."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(self.cell, nn.LSTM):
            y, (h, c) = self.cell(x)
            return y, h, c
        y, h = self.cell(x)
        return y, h


class RnnWithState(nn.Module):
    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(self.cell, nn.LSTM):
            y, (h, c) = self.cell(x, (h0, h0 * 0.5))
            return y, h, c
        y, h = self.cell(x, h0)
        return y, h


class Denoiser(nn.Module):
    """Waveform denoiser: Conv1d encoder, ConvTranspose1d decoder, a skip connection."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.enc2 = nn.Conv1d(8, 16, 5, stride=2, padding=2)
        self.dec2 = nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1)
        self.dec1 = nn.ConvTranspose1d(8, 1, 4, stride=2, padding=1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        e1 = F.relu(self.enc1(wave))
        e2 = F.relu(self.enc2(e1))
        d2 = F.relu(self.dec2(e2)) + e1
        return wave - torch.tanh(self.dec1(d2))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
def test_recurrent_layers(cell: type[nn.Module], layers: int, bidirectional: bool, batch_first: bool) -> None:
    m = cell(6, 5, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    x = torch.randn(2, 4, 6) if batch_first else torch.randn(4, 2, 6)
    compile_whole(Rnn(m), x)


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
def test_recurrent_layers_export_dialect(cell: type[nn.Module]) -> None:
    m = cell(6, 5, num_layers=2, bidirectional=True, batch_first=True)
    compile_whole(Rnn(m), torch.randn(2, 4, 6), dialect="export")


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
def test_recurrent_layers_with_initial_state_and_no_bias(cell: type[nn.Module]) -> None:
    m = cell(6, 5, num_layers=2, bidirectional=True, bias=False)
    compile_whole(RnnWithState(m), torch.randn(3, 2, 6), torch.randn(4, 2, 5))


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
def test_unbatched_sequence(cell: type[nn.Module]) -> None:
    compile_whole(Rnn(cell(6, 5, bidirectional=True)), torch.randn(4, 6))


class LstmOutputOnly(nn.Module):
    """An LSTM whose final h and c are dropped: only the output sequence is read."""

    def __init__(self, cell: nn.LSTM) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.cell(x)
        return y


def _lstm(bidirectional: bool, batch_first: bool, steps: int = 20) -> tuple[nn.LSTM, torch.Tensor]:
    m = nn.LSTM(6, 5, num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    return m, torch.randn(2, steps, 6) if batch_first else torch.randn(steps, 2, 6)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("dialect", ["fx", "export"])
def test_lstm_output_only_is_one_sequence_op_per_layer_and_direction_at_android_10(
        dialect: str, bidirectional: bool, batch_first: bool) -> None:
    """FL3's UNIDIRECTIONAL_SEQUENCE_LSTM has no final-state outputs, but none is needed here."""
    m, x = _lstm(bidirectional, batch_first)
    unrolled = op_counts(compile_whole(Rnn(m), x, dialect=dialect))  # reads h_n, c_n: unrolled
    counts = op_counts(compile_whole(LstmOutputOnly(m), x, dialect=dialect))
    dirs = 2 if bidirectional else 1
    assert "sequence_lstm" not in unrolled
    assert counts["sequence_lstm"] == 2 * dirs, counts
    # Bidirectional: a GATHER reverses the backward direction's input and output, and a
    # CONCATENATION joins the directions of each layer. Nothing else.
    want = {"sequence_lstm": 2 * dirs} | ({"gather": 4, "concatenation": 2} if bidirectional else {})
    assert counts == want, counts
    assert sum(unrolled.values()) > 250 * dirs, unrolled  # 20 unrolled steps per layer


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("target", ["android-11", "android-12"])
def test_lstm_with_final_state_uses_the_sequence_op_from_android_11(
        target: str, dialect: str, bidirectional: bool) -> None:
    m, x = _lstm(bidirectional, batch_first=True)
    cm = compile_whole(Rnn(m), x, dialect=dialect, target=target)
    counts = op_counts(cm)
    dirs = 2 if bidirectional else 1
    # h_n and c_n: a CONCATENATION of the final states of the 4 or 2 ops and a RESHAPE each.
    want = {"sequence_lstm": 2 * dirs, "concatenation": 2, "reshape": 2}
    if bidirectional:
        want |= {"gather": 4, "concatenation": 4}
    assert counts == want, counts
    cm = compile_whole(LstmOutputOnly(m), x, dialect=dialect, target=target)
    assert op_counts(cm)["sequence_lstm"] == 2 * dirs


@pytest.mark.parametrize("target", ["android-10", "android-11"])
def test_lstm_sequence_op_with_initial_state_no_bias_and_unbatched(target: str) -> None:
    m = nn.LSTM(6, 5, num_layers=2, bidirectional=True, bias=False)
    cm = compile_whole(RnnWithState(m), torch.randn(3, 2, 6), torch.randn(4, 2, 5), target=target)
    assert ("sequence_lstm" in op_counts(cm)) == (target != "android-10")
    cm = compile_whole(LstmOutputOnly(nn.LSTM(6, 5, bidirectional=True)), torch.randn(4, 6), target=target)
    assert op_counts(cm)["sequence_lstm"] == 2


def test_lstm_sequence_op_reloaded_from_ptl(tmp_path: Path) -> None:
    m = M.Lstm2().eval()
    x = torch.randn(7, 1, 16)
    cm = compile_whole(m, x, target="android-11")
    assert op_counts(cm)["sequence_lstm"] == 2
    with torch.no_grad():
        eager = m(x.clone())
    assert_close_scaled(_reloaded(cm, tmp_path, x), eager)


#: What an unrolled nn.RNN may emit: the cell (FC + ADD + activation) and the sequence plumbing.
RNN_OPS = {"fully_connected", "add", "tanh", "relu", "strided_slice", "reshape", "concatenation",
           "transpose"}


def _check_rnn_ops(cm: nc.CompiledModel, nonlinearity: str) -> int:
    """Assert the ops are the RNN cell's with only the model's activation; return how many
    activations there are (a RELU may be fused into the ADD before it)."""
    counts = op_counts(cm)
    assert set(counts) <= RNN_OPS, counts
    fused_relus = cm.ir().count("fuse=FUSED_RELU}")
    if nonlinearity == "tanh":
        assert "relu" not in counts and not fused_relus, cm.ir()
        return counts.get("tanh", 0)
    assert "tanh" not in counts, counts
    return counts.get("relu", 0) + fused_relus


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn(nonlinearity: str, layers: int, bidirectional: bool, batch_first: bool) -> None:
    m = nn.RNN(6, 5, num_layers=layers, nonlinearity=nonlinearity, bidirectional=bidirectional,
               batch_first=batch_first)
    x = torch.randn(2, 4, 6) if batch_first else torch.randn(4, 2, 6)
    cm = compile_whole(Rnn(m), x)
    assert _check_rnn_ops(cm, nonlinearity) == 4 * layers * (2 if bidirectional else 1)  # one a step


@pytest.mark.parametrize("target", ["android-10", "android-13"])
@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_dialects_and_targets(nonlinearity: str, dialect: str, target: str) -> None:
    m = nn.RNN(6, 5, num_layers=2, nonlinearity=nonlinearity, bidirectional=True, batch_first=True)
    cm = compile_whole(Rnn(m), torch.randn(2, 4, 6), dialect=dialect, target=target)
    _check_rnn_ops(cm, nonlinearity)


@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_with_initial_state_and_no_bias(nonlinearity: str, dialect: str) -> None:
    m = nn.RNN(6, 5, num_layers=2, nonlinearity=nonlinearity, bidirectional=True, bias=False)
    cm = compile_whole(RnnWithState(m), torch.randn(3, 2, 6), torch.randn(4, 2, 5), dialect=dialect)
    _check_rnn_ops(cm, nonlinearity)


@pytest.mark.parametrize("dialect", ["fx", "export"])
def test_rnn_unbatched_and_relu_state_with_bias(dialect: str) -> None:
    """Unbatched input; and a relu RNN whose states grow (no tanh bound), with h0 and biases."""
    compile_whole(Rnn(nn.RNN(6, 5, bidirectional=True)), torch.randn(4, 6), dialect=dialect)
    m = nn.RNN(6, 5, nonlinearity="relu", batch_first=True)
    compile_whole(RnnWithState(m), torch.randn(2, 5, 6), torch.rand(1, 2, 5) * 2, dialect=dialect)


CONV1D = {
    "plain": (lambda: nn.Conv1d(3, 4, 3), (2, 3, 11)),
    "stride-pad": (lambda: nn.Conv1d(3, 4, 5, stride=2, padding=2), (2, 3, 11)),
    "dilation-nobias": (lambda: nn.Conv1d(3, 4, 3, dilation=2, bias=False), (1, 3, 12)),
    "depthwise": (lambda: nn.Conv1d(4, 8, 3, groups=4, padding=1), (2, 4, 9)),
    "grouped": (lambda: nn.Conv1d(4, 6, 3, groups=2), (2, 4, 9)),
    "same": (lambda: nn.Conv1d(3, 4, 4, padding="same"), (2, 3, 10)),
    "unbatched": (lambda: nn.Conv1d(3, 4, 3), (3, 11)),
    "functional": (lambda: Fn(lambda x: F.conv1d(x, torch.ones(2, 3, 2) * 0.5, stride=2)), (2, 3, 11)),
    "tconv": (lambda: nn.ConvTranspose1d(3, 4, 4, stride=2, padding=1), (2, 3, 7)),
    "tconv-outpad": (lambda: nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1), (2, 3, 7)),
    "tconv-dilation": (lambda: nn.ConvTranspose1d(3, 2, 3, dilation=2), (1, 3, 6)),
    "tconv-functional": (lambda: Fn(lambda x: F.conv_transpose1d(x, torch.ones(3, 2, 3) * 0.3)), (2, 3, 6)),
}


@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("name", list(CONV1D))
def test_conv1d(name: str, dialect: str) -> None:
    make, shape = CONV1D[name]
    compile_whole(make(), torch.randn(*shape), dialect=dialect)


def _reloaded(cm: nc.CompiledModel, tmp_path: Path, *xs: torch.Tensor) -> object:
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "m.ptl")))
    with nc.virtual_device(feature_level=cm.level):
        return mod(*xs)


@pytest.mark.parametrize(("model", "shape"), [
    (Denoiser, (2, 1, 64)),
    (M.GruMask, (1, 20, 24)),
    (M.Lstm2, (7, 1, 16)),
])
@pytest.mark.parametrize("dialect", ["fx", "export"])
def test_audio_models_whole_at_android_10(model: type[nn.Module], shape: tuple[int, ...], dialect: str,
                                          tmp_path: Path) -> None:
    m, x = model().eval(), torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's notes on RNN flat weights
        cm = compile_whole(m, x, dialect=dialect)
    with torch.no_grad():
        eager = m(x.clone())
    assert_close_scaled(_reloaded(cm, tmp_path, x), eager)


@pytest.mark.parametrize("wrap", [False, True], ids=["bare", "returned"])
@pytest.mark.parametrize("cell", [nn.RNN, nn.GRU, nn.LSTM])
def test_recurrent_tuple_returned_as_the_model_output(cell: type[nn.Module], wrap: bool) -> None:
    """``return self.lstm(x)``: the nested tuple output is split into its tensors at capture."""
    m = cell(6, 5).eval()
    model = Fn(lambda x: m(x)) if wrap else m
    if wrap:
        model.m = m  # registered as a submodule: a leaf the converter lowers
    compile_whole(model, torch.randn(4, 2, 6))
