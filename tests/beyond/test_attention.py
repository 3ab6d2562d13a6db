"""scaled_dot_product_attention, nn.MultiheadAttention and nn.TransformerEncoderLayer: one NNAPI
segment with no host op at Android 10 (FL3 forms) and FL6 (BATCH_MATMUL, Android 13), both capture
dialects, vs eager on the virtual device."""

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
from .helpers import compile_whole, op_counts

TARGETS = ["android-10", "fl6"]
CAUSAL = torch.ones(5, 5, dtype=torch.bool).tril()
BIAS = torch.randn(5, 7)

SDPA = {
    "plain": (lambda q: F.scaled_dot_product_attention(q, q * 2, q.relu()), [(2, 2, 5, 4)]),
    "rank3": (lambda q: F.scaled_dot_product_attention(q, q.tanh(), q), [(3, 5, 4)]),
    "scale": (lambda q: F.scaled_dot_product_attention(q, q, q, scale=0.3), [(1, 2, 5, 4)]),
    "causal": (lambda q: F.scaled_dot_product_attention(q, q, q, is_causal=True), [(2, 2, 5, 4)]),
    "bool-mask": (lambda q: F.scaled_dot_product_attention(q, q, q, attn_mask=CAUSAL), [(2, 2, 5, 4)]),
    "float-mask-cross": (lambda q: F.scaled_dot_product_attention(q[:, :, :5], q, q, attn_mask=BIAS),
                         [(1, 2, 7, 4)]),
    "runtime-mask": (lambda q, m: F.scaled_dot_product_attention(q, q, q, attn_mask=m),
                     [(2, 2, 5, 4), (5, 5)]),
    # multi-query attention (MobileNetV4's hybrids): one k/v head broadcast to all query heads
    "multi-query": (lambda q: F.scaled_dot_product_attention(q, q[:, :1] * 2, q[:, 2:].tanh()),
                    [(1, 3, 5, 4)]),
    "multi-query-gqa": (lambda q: F.scaled_dot_product_attention(
        q, q[:, :1], q[:, 2:] + 1, enable_gqa=True), [(2, 3, 5, 4)]),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(SDPA))
def test_sdpa(name: str, target: str) -> None:
    f, shapes = SDPA[name]
    xs = [torch.randn(*s) for s in shapes]
    model = Fn(f) if len(xs) == 1 else Fn2(f)
    compile_whole(model, *xs, target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["plain", "causal", "float-mask-cross", "multi-query"])
def test_sdpa_export(name: str, target: str) -> None:
    f, shapes = SDPA[name]
    compile_whole(Fn(f), *[torch.randn(*s) for s in shapes], dialect="export", target=target)


class Fn2(nn.Module):
    def __init__(self, f: object) -> None:
        super().__init__()
        self.f = f

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.f(a, b)  # type: ignore[operator]


class Mha(nn.Module):
    def __init__(self, batch_first: bool = True, need_weights: bool = False, average: bool = True,
                 cross: bool = False, kdim: int | None = None, masks: bool = False) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, kdim=kdim, vdim=kdim)
        self.need_weights, self.average, self.cross = need_weights, average, cross
        self.kproj = nn.Linear(8, kdim or 8)
        self.masks = masks

    def forward(self, x: torch.Tensor) -> object:
        kv = self.kproj(x[:, :4] if self.cross else x)  # cross: a shorter key sequence
        kw = {}
        if self.masks:
            kw = {"attn_mask": torch.ones(5, 5, dtype=torch.bool).triu(1),
                  "key_padding_mask": torch.tensor([[False] * 4 + [True]] * 2)}
        out, w = self.mha(x, kv, kv, need_weights=self.need_weights, average_attn_weights=self.average, **kw)
        return (out, w) if self.need_weights else out


MHA = {
    "self": {},
    "seq-first": {"batch_first": False},
    "weights": {"need_weights": True},
    "weights-per-head": {"need_weights": True, "average": False},
    "cross-kdim": {"cross": True, "kdim": 6},
    "masks": {"masks": True},
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(MHA))
def test_multihead_attention(name: str, target: str) -> None:
    x = torch.randn(5, 2, 8) if name == "seq-first" else torch.randn(2, 5, 8)
    compile_whole(Mha(**MHA[name]), x, target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["self", "seq-first", "weights"])
def test_multihead_attention_export(name: str, target: str) -> None:
    x = torch.randn(5, 2, 8) if name == "seq-first" else torch.randn(2, 5, 8)
    compile_whole(Mha(**MHA[name]), x, dialect="export", target=target)


def _encoder(activation: str = "relu", norm_first: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation=activation, batch_first=True,
                                      norm_first=norm_first)


@pytest.mark.parametrize(("activation", "norm_first"), [("relu", False), ("gelu", False), ("gelu", True)])
def test_transformer_encoder_layer_whole_at_fl6(activation: str, norm_first: bool,
                                                       tmp_path: Path) -> None:
    """Needs LayerNorm and GELU (branch ``ops``) and BATCH_MATMUL; one segment, no host op."""
    layer, x = _encoder(activation, norm_first).eval(), torch.randn(2, 7, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes on the fast path it skips when traced
        cm = compile_whole(layer, x, dialect="export", target="fl6")
    assert op_counts(cm)["batch_matmul"] == 2
    with torch.no_grad():
        eager = layer(x.clone())
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "m.ptl")))
    with nc.virtual_device(feature_level=cm.level):
        assert_close_scaled(mod(x), eager)


def test_transformer_encoder_layer_whole_at_android_10() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = compile_whole(_encoder("gelu"), torch.randn(2, 7, 16), dialect="export")
    assert "batch_matmul" not in op_counts(cm)


class EncoderStack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)


class CausalEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.layer(x, src_mask=mask, is_causal=True)


class Decoder(nn.Module):
    """Causal self-attention (a float -inf mask) and cross-attention to a memory."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.layer(x, torch.tanh(x[:, :5]), tgt_mask=mask, tgt_is_causal=True)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", [EncoderStack, CausalEncoder, Decoder])
def test_transformer_stacks_and_decoder(model: type[nn.Module], target: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dialect = "fx" if model is Decoder else "export"
        compile_whole(model(), torch.randn(2, 7, 16), dialect=dialect, target=target)


class TimmStyleAttention(nn.Module):
    """timm's ``Attention`` idiom: a rank-5 view of the packed q/k/v projection, unbound."""

    def __init__(self, fused: bool, unbind: bool) -> None:
        super().__init__()
        self.qkv, self.proj = nn.Linear(16, 48), nn.Linear(16, 16)
        self.fused, self.unbind = fused, unbind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, 4, 4).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0) if self.unbind else (qkv[0], qkv[1], qkv[2])
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = ((q * 0.5) @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize(("fused", "unbind"), [(True, True), (False, False)])
def test_timm_style_attention(fused: bool, unbind: bool, dialect: str, target: str) -> None:
    compile_whole(TimmStyleAttention(fused, unbind), torch.randn(2, 5, 16), dialect=dialect, target=target)
