"""Smooth activations NNAPI lacks: exact (erf) and tanh GELU, Softplus and Mish.

NNAPI has no ERF and no LOG1P, so both are built from FL3 arithmetic, accurate to float32
rounding rather than loose approximations (measured errors are in docs/op_support_notes.md):

- ``erf(x)`` is the rational minimax form ``x * P(x^2) / Q(x^2)`` on ``x`` clamped to [-4, 4]
  (beyond that erf is +-1 in float32), degree 13 over 8, as Eigen and XLA evaluate float erf.
  The approximation itself is within 6.5e-8 of erf; evaluated in float32 the result is within
  4.3e-7 of erf (a few units in the last place), and GELU built on it is within 1.4e-6 of a
  float64 GELU, where PyTorch's own float32 GELU is within 1.2e-6.
- ``log1p(u)`` for ``u`` in [0, 1] is ``2 * atanh(s)`` with ``s = u / (2 + u)`` in [0, 1/3],
  summed to ``s^15``: relative error below 2.2e-7 for every normal ``u`` (``log(1 + u)`` would
  lose all relative precision for small ``u``). Softplus is ``relu(z) + log1p(exp(-|z|))``,
  which never overflows, and Mish is ``x * tanh(softplus(x))``.

Every piece is one NNAPI op (MUL, ADD, DIV, EXP, ABS, NEG, TANH, RELU, MINIMUM, MAXIMUM), so a
model using them stays in one NNAPI segment at Android 10.
"""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import nn

from ...ir import ops
from ...ir.types import Value
from ..lower import Ctx
from ..registry import Refuse, converter
from ._util import value
from .activation import _aten, quant_aware, unary

# Rational erf on [-4, 4]: numerator odd (alpha_13 .. alpha_1), denominator even (beta_8 .. beta_0).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02)
#: atanh series coefficients 1/15, 1/13, ..., 1/3, 1 (Horner order).
_ATANH = tuple(1.0 / (2 * k + 1) for k in range(7, -1, -1))


def _horner(ctx: Ctx, t: Value, coeffs: tuple[float, ...]) -> Value:
    """c0 * t^n + ... + cn, evaluated as ((c0 * t + c1) * t + ...) + cn."""
    acc = ctx.emit(ops.Mul, a=t, b=ctx.tensor(coeffs[0]))
    for i, c in enumerate(coeffs[1:]):
        acc = ctx.emit(ops.Add, a=acc, b=ctx.tensor(c))
        if i < len(coeffs) - 2:
            acc = ctx.emit(ops.Mul, a=acc, b=t)
    return acc


def erf(ctx: Ctx, x: Value) -> Value:
    """erf(x) to float32 rounding (see the module docstring), 21 NNAPI ops."""
    x = ctx.emit(ops.Minimum, a=x, b=ctx.tensor(4.0))
    x = ctx.emit(ops.Maximum, a=x, b=ctx.tensor(-4.0))
    x2 = ctx.emit(ops.Mul, a=x, b=x)
    p = ctx.emit(ops.Mul, a=_horner(ctx, x2, _ERF_P), b=x)
    return ctx.emit(ops.Div, a=p, b=_horner(ctx, x2, _ERF_Q))


def log1p_unit(ctx: Ctx, u: Value) -> Value:
    """log(1 + u) for u in [0, 1], accurate relative to the result (module docstring)."""
    s = ctx.emit(ops.Div, a=u, b=ctx.emit(ops.Add, a=u, b=ctx.tensor(2.0)))
    p = _horner(ctx, ctx.emit(ops.Mul, a=s, b=s), _ATANH)
    return ctx.emit(ops.Mul, a=ctx.emit(ops.Add, a=s, b=s), b=p)


def softplus_value(ctx: Ctx, z: Value) -> Value:
    """log(1 + exp(z)) as relu(z) + log1p(exp(-|z|)): exact in float32, never overflows."""
    u = ctx.emit(ops.Exp, x=ctx.emit(ops.Neg, x=ctx.emit(ops.Abs, x=z)))
    return ctx.emit(ops.Add, a=ctx.emit(ops.Relu, x=z), b=log1p_unit(ctx, u))


def _gelu_module(m: nn.GELU) -> dict[str, Any]:
    return {"approximate": m.approximate}


@converter(*unary("gelu"), sig=lambda input, approximate="none": None,
           modules={nn.GELU: _gelu_module})
def gelu(ctx: Ctx, a: dict) -> Any:
    approx = a["approximate"]
    if approx not in ("none", "tanh"):
        raise Refuse(f"GELU approximate={approx!r} is not a PyTorch mode")

    def f(x: Value) -> Value:
        if approx == "tanh":
            # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), PyTorch's order
            x3 = ctx.emit(ops.Mul, a=ctx.emit(ops.Mul, a=x, b=x), b=x)
            inner = ctx.emit(ops.Add, a=x, b=ctx.emit(ops.Mul, a=x3, b=ctx.tensor(0.044715)))
            inner = ctx.emit(ops.Mul, a=inner, b=ctx.tensor(math.sqrt(2.0 / math.pi)))
            t = ctx.emit(ops.Tanh, x=inner)
        else:
            # x * 0.5 * (1 + erf(x / sqrt(2)))
            t = erf(ctx, ctx.emit(ops.Mul, a=x, b=ctx.tensor(math.sqrt(0.5))))
        half_x = ctx.emit(ops.Mul, a=x, b=ctx.tensor(0.5))
        return ctx.emit(ops.Mul, a=half_x, b=ctx.emit(ops.Add, a=t, b=ctx.tensor(1.0)))

    return quant_aware(ctx, a["input"], f)


def _softplus_module(m: nn.Softplus) -> dict[str, Any]:
    return {"beta": m.beta, "threshold": m.threshold}


#: Above this threshold softplus(z) and z agree to float32 rounding (log1p(e^-15)/15 < 2e-8),
#: so PyTorch's switch to the identity changes nothing a float32 result can show.
_MIN_THRESHOLD = 15.0


@converter(F.softplus, "softplus", *_aten("softplus.default"),
           sig=lambda input, beta=1.0, threshold=20.0: None,
           modules={nn.Softplus: _softplus_module})
def softplus(ctx: Ctx, a: dict) -> Any:
    beta, threshold = float(a["beta"]), float(a["threshold"])
    if beta <= 0:
        raise Refuse("softplus with beta <= 0 is not supported")
    if threshold < _MIN_THRESHOLD:
        raise Refuse(f"softplus threshold {threshold} < {_MIN_THRESHOLD}: PyTorch's switch to "
                     "the identity there changes the function, and NNAPI has no exact select "
                     "for float inputs in this compiler yet")

    def f(x: Value) -> Value:
        z = x if beta == 1.0 else ctx.emit(ops.Mul, a=x, b=ctx.tensor(beta))
        y = softplus_value(ctx, z)
        return y if beta == 1.0 else ctx.emit(ops.Div, a=y, b=ctx.tensor(beta))

    return quant_aware(ctx, a["input"], f)


@converter(*unary("mish"), sig=lambda input, inplace=False: None, modules={nn.Mish: lambda m: {}})
def mish(ctx: Ctx, a: dict) -> Any:
    def f(x: Value) -> Value:
        return ctx.emit(ops.Mul, a=x, b=ctx.emit(ops.Tanh, x=softplus_value(ctx, x)))

    return quant_aware(ctx, value(a["input"]), f)
