"""Attention: ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention`` (module form; the
torch.export spelling is plain linear / view / sdpa / bmm nodes, see ``patterns_attention``).

``softmax(s * q k^T + m) v`` is lowered as two matrix products (``linalg``: BATCH_MATMUL at FL6,
FULLY_CONNECTED with run-time weights or MUL + REDUCE_SUM below) around one SOFTMAX whose
``beta`` operand applies the scale ``s``: ``softmax(s * x) == softmax_beta=s(x)`` for ``s > 0``,
so the scale costs no op. A constant additive mask ``m`` is added as ``m / s`` before it
(``-inf`` stays ``-inf``); a causal mask is the constant ``0 / -inf`` upper triangle. ``q k^T``
reads ``k`` through BATCH_MATMUL's ``adj_y`` flag (FL6) or as FC weights (below): no TRANSPOSE.
"""

from __future__ import annotations

import math
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
from .linalg import matmul_runtime, reshape, swap_last


def _additive(mask: Any, what: str, true_masks: bool = False) -> Any:
    """A mask as an additive float tensor, or a Value. A bool mask is -inf where it excludes:
    where False for scaled_dot_product_attention, where True (``true_masks``) for
    nn.MultiheadAttention's ``attn_mask`` and ``key_padding_mask``."""
    if mask is None or isinstance(mask, Value):
        return mask
    if not isinstance(mask, torch.Tensor):
        raise Refuse(f"{what} must be a tensor")
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape).masked_fill(mask if true_masks else ~mask, float("-inf"))
    return mask.detach().float()


def attention(ctx: Ctx, q: Value, k: Value, v: Value, mask: Any = None, is_causal: bool = False,
              scale: float | None = None) -> tuple[Value, Value]:
    """(softmax(scale * q k^T + mask) v, the attention probabilities), batch dims equal."""
    e, (length, s) = q.type.shape[-1], (q.type.shape[-2], k.type.shape[-2])
    scale = 1.0 / math.sqrt(e) if scale is None else float(scale)
    if is_causal:
        if mask is not None:
            raise Refuse("attn_mask and is_causal together")
        mask = torch.ones(length, s, dtype=torch.bool).tril()
    mask = _additive(mask, "attn_mask")
    beta = 1.0
    if scale > 0 and not isinstance(mask, Value):
        beta = scale  # folded into SOFTMAX's beta
    else:
        q = ctx.emit(ops.Mul, a=q, b=ctx.const(torch.tensor([scale])))
    scores = matmul_runtime(ctx, q, swap_last(ctx, k))
    if mask is not None:
        m = mask if isinstance(mask, Value) else ctx.const(mask / beta)
        if m.type.rank > scores.type.rank:
            raise Refuse(f"attn_mask {m.type.shape} does not broadcast to the scores {scores.type.shape}")
        scores = ctx.emit(ops.Add, a=scores, b=m)
    probs = ctx.emit(ops.Softmax, x=scores, axis=scores.type.rank - 1, beta=beta)
    return matmul_runtime(ctx, probs, v), probs


@converter(F.scaled_dot_product_attention, *_aten("scaled_dot_product_attention.default"),
           sig=lambda query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
           enable_gqa=False: None)
def sdpa(ctx: Ctx, a: dict) -> Any:
    if a["dropout_p"]:
        raise Misuse(f"scaled_dot_product_attention with dropout_p={a['dropout_p']} (training)")
    q, k, v = (value(a[n], n) for n in ("query", "key", "value"))
    batch = tuple(q.type.shape[:-2])
    k, v = _broadcast_batch(ctx, k, batch, q), _broadcast_batch(ctx, v, batch, q)
    return attention(ctx, q, k, v, a["attn_mask"], bool(a["is_causal"]), a["scale"])[0]


def _broadcast_batch(ctx: Ctx, t: Value, batch: tuple[int, ...], q: Value) -> Value:
    """``t`` (key or value) with its batch dims broadcast to the query's, as sdpa broadcasts
    them (multi-query attention: one k/v head for all query heads, MobileNetV4's hybrids): a MUL
    by ones, exact. ``enable_gqa``'s grouped heads (k heads dividing q heads) are not
    broadcasting and stay refused by this rule."""
    shape = tuple(t.type.shape)
    if shape[:-2] == batch:
        return t
    if len(shape) - 2 != len(batch) or any(s not in (1, b) for s, b in zip(shape[:-2], batch,
                                                                           strict=True)):
        raise Refuse(f"query/key/value batch dims differ: {q.type.shape}, {shape}")
    ones = [b if s == 1 else 1 for s, b in zip(shape[:-2], batch, strict=True)] + [1, 1]
    return ctx.emit(ops.Mul, a=t, b=ctx.const(torch.ones(ones)))


def _mha_module(m: nn.MultiheadAttention) -> dict[str, Any]:
    if m.training and m.dropout:
        raise Misuse("MultiheadAttention in training mode")
    if m.bias_k is not None or m.add_zero_attn:
        raise Refuse("MultiheadAttention with add_bias_kv or add_zero_attn is not supported")
    e = m.embed_dim
    if m.in_proj_weight is not None:
        w = m.in_proj_weight.detach()
        wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
    else:
        wq, wk, wv = m.q_proj_weight, m.k_proj_weight, m.v_proj_weight
    b = m.in_proj_bias.detach() if m.in_proj_bias is not None else torch.zeros(3 * e)
    return {"module": m, "weights": (wq, wk, wv), "biases": (b[:e], b[e:2 * e], b[2 * e:])}


def _mha_sig(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
             average_attn_weights=True, is_causal=False, module=None, weights=(), biases=()):
    return None


def _heads(ctx: Ctx, x: Value, w: Any, b: Any, heads: int) -> Value:
    """[B, T, E_in] -> projected and split into [B, heads, T, E / heads]."""
    bsz, t = x.type.shape[:2]
    w, b = static_tensor(w, "projection weight"), static_tensor(b, "projection bias")
    y = ctx.emit(ops.FullyConnected, input=x, weights=ctx.const(w), bias=ctx.const(b))
    y = reshape(ctx, y, (bsz, t, heads, w.shape[0] // heads))
    return ctx.emit(ops.Transpose, x=y, perm=(0, 2, 1, 3))


def _batch_major(ctx: Ctx, x: Value, batch_first: bool) -> Value:
    if x.type.rank != 3:
        raise Refuse(f"expected batched [.., .., E] inputs, got {x.type.shape}")
    if batch_first:
        return x
    if x.type.shape[1] == 1:
        return reshape(ctx, x, (1, x.type.shape[0], x.type.shape[2]))
    return ctx.emit(ops.Transpose, x=x, perm=(1, 0, 2))


@converter(sig=_mha_sig, modules={nn.MultiheadAttention: _mha_module})
def multihead_attention(ctx: Ctx, a: dict) -> Any:
    m: nn.MultiheadAttention = a["module"]
    heads, bf = m.num_heads, m.batch_first
    q_in, k_in, v_in = (_batch_major(ctx, value(a[n], n), bf) for n in ("query", "key", "value"))
    bsz, length, s = q_in.type.shape[0], q_in.type.shape[1], k_in.type.shape[1]
    q, k, v = (_heads(ctx, x, w, b, heads)
               for x, w, b in zip((q_in, k_in, v_in), a["weights"], a["biases"], strict=True))
    mask = _additive(a["attn_mask"], "attn_mask", true_masks=True)
    if isinstance(mask, Value) or isinstance(a["key_padding_mask"], Value):
        raise Refuse("run-time attention masks are not supported (constant masks are)")
    if mask is not None and mask.dim() == 3:  # [B * heads, L, S]
        mask = mask.reshape(bsz, heads, length, s)
    kpm = _additive(a["key_padding_mask"], "key_padding_mask", true_masks=True)
    if kpm is not None:
        kpm = kpm.reshape(bsz, 1, 1, s)
        mask = kpm if mask is None else mask + kpm
    causal = bool(a["is_causal"]) and mask is None
    out, probs = attention(ctx, q, k, v, mask, causal)  # [B, heads, L, D], [B, heads, L, S]
    out = reshape(ctx, ctx.emit(ops.Transpose, x=out, perm=(0, 2, 1, 3)), (bsz * length, m.embed_dim))
    w_o, b_o = static_tensor(m.out_proj.weight, "out_proj weight"), m.out_proj.bias
    b_o = static_tensor(b_o, "out_proj bias") if b_o is not None else torch.zeros(m.embed_dim)
    out = ctx.emit(ops.FullyConnected, input=out, weights=ctx.const(w_o), bias=ctx.const(b_o))
    out = reshape(ctx, out, (bsz, length, m.embed_dim))
    if not bf:
        out = (reshape(ctx, out, (length, 1, m.embed_dim)) if bsz == 1
               else ctx.emit(ops.Transpose, x=out, perm=(1, 0, 2)))
    if not a["need_weights"]:
        return out, None
    if a["average_attn_weights"]:
        probs = ctx.emit(ops.Mean, x=probs, axes=(1,), keep_dims=False)
    return out, probs
