"""Smooth functions NNAPI lacks: erf, exact (erf) and tanh GELU, Softplus, Mish, LogSigmoid,
Tanhshrink and GLU.

NNAPI has no ERF and no LOG1P, so both are built from FL3 arithmetic, accurate to float32
rounding rather than loose approximations (measured errors below and
in docs/user_guide.md):

- ``erf(x)`` is ``x * P(x^2)`` for ``|x| <= 1`` and ``sign(x) * (1 - exp(-x^2) * R(1/|x|))``
  for ``1 <= |x| <= 4`` (beyond 4, erf is +-1 in float32), both polynomials fitted by us (see
  ``_ERF_SMALL``). The pieces are joined by an exact select built from FLOOR and MINIMUM (NNAPI's
  SELECT would need boolean tensors). Measured in float32 on 4M points of [-7, 7], the result
  is within 1.5e-7 of erf (1.8e-7 of ``torch.erf``'s float32 result), a one-piece rational
  form evaluated in float32 was at 4.3e-7. Exact GELU built on it is within 4.5e-7 of a float64
  GELU, where PyTorch's own float32 GELU is within 1.2e-6. It costs 50 NNAPI ops per GELU.
- ``log1p(u)`` for ``u`` in [0, 1] is ``2 * atanh(s)`` with ``s = u / (2 + u)`` in [0, 1/3],
  summed to ``s^15``: relative error below 2.2e-7 for every normal ``u`` (``log(1 + u)`` would
  lose all relative precision for small ``u``). Softplus is ``relu(z) + log1p(exp(-|z|))``,
  which never overflows, and Mish is ``x * tanh(softplus(x))``.

Every piece is one NNAPI op (MUL, ADD, SUB, DIV, EXP, ABS, NEG, FLOOR, TANH, RELU, MINIMUM,
MAXIMUM), so a model using them stays in one NNAPI segment at Android 10.
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
from ..registry import Refuse, converter
from ._util import axis, value
from .activation import _aten, quant_aware, unary

# erf in two pieces, each a fit of ours (float64 weighted least squares on Chebyshev nodes,
# relative error weighting) that stays well-conditioned in float32:
#: |x| <= 1: erf(x) = x * P(x^2), degree 6 in x^2 (Horner order).
_ERF_SMALL = (7.898210214781605e-05, -0.000802435413247371, 0.005190053578495653,
              -0.026854808537723592, 0.1128361242826105, -0.3761262884332692, 1.1283791665100524)
#: 1 <= t <= 4: erfc(t) = exp(-t^2) * R(1 / t), degree 8 in 1/t (beyond 4, erf is 1 in float32).
_ERFC_TAIL = (-0.010075769855269253, 0.03165554393714054, 0.017212812731511047,
              -0.23427069610969165, 0.49155047538982405, -0.4692513672235404,
              0.041355109829850835, 0.5591439190501802, 0.00026352710842181466)
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
    """erf(x) to within 1.5e-7 (module docstring): both pieces on clamped inputs, then an
    exact select by the 0/1 mask min(floor(|x|), 1), as (1 - m) * small + m * tail."""
    def clamp(v: Value, lo: float, hi: float) -> Value:
        v = ctx.emit(ops.Maximum, a=v, b=ctx.tensor(lo))
        return ctx.emit(ops.Minimum, a=v, b=ctx.tensor(hi))

    # |x| <= 1: c * P(c^2), odd, on c = clamp(x, -1, 1)
    c = clamp(x, -1.0, 1.0)
    small = ctx.emit(ops.Mul, a=_horner(ctx, ctx.emit(ops.Mul, a=c, b=c), _ERF_SMALL), b=c)
    # |x| >= 1: sign(x) * (1 - exp(-t^2) * R(1/t)) on t = clamp(|x|, 1, 4)
    t_abs = ctx.emit(ops.Abs, x=x)
    t = clamp(t_abs, 1.0, 4.0)
    r = _horner(ctx, ctx.emit(ops.Div, a=ctx.tensor(1.0), b=t), _ERFC_TAIL)
    e = ctx.emit(ops.Exp, x=ctx.emit(ops.Neg, x=ctx.emit(ops.Mul, a=t, b=t)))
    tail = ctx.emit(ops.Sub, a=ctx.tensor(1.0), b=ctx.emit(ops.Mul, a=e, b=r))
    sign = clamp(ctx.emit(ops.Mul, a=x, b=ctx.tensor(1e30)), -1.0, 1.0)  # exactly +-1 for |x| >= 1
    tail = ctx.emit(ops.Mul, a=sign, b=tail)
    # mask m = 1 where |x| >= 1, else 0; products with an exact 0 or 1 are exact
    m = ctx.emit(ops.Minimum, a=ctx.emit(ops.Floor, x=t_abs), b=ctx.tensor(1.0))
    keep = ctx.emit(ops.Sub, a=ctx.tensor(1.0), b=m)
    return ctx.emit(ops.Add, a=ctx.emit(ops.Mul, a=keep, b=small), b=ctx.emit(ops.Mul, a=m, b=tail))


def log1p_unit(ctx: Ctx, u: Value) -> Value:
    """log(1 + u) for u in [0, 1], accurate relative to the result (module docstring)."""
    s = ctx.emit(ops.Div, a=u, b=ctx.emit(ops.Add, a=u, b=ctx.tensor(2.0)))
    p = _horner(ctx, ctx.emit(ops.Mul, a=s, b=s), _ATANH)
    return ctx.emit(ops.Mul, a=ctx.emit(ops.Add, a=s, b=s), b=p)


def softplus_value(ctx: Ctx, z: Value) -> Value:
    """log(1 + exp(z)) as relu(z) + log1p(exp(-|z|)): exact in float32, never overflows."""
    u = ctx.emit(ops.Exp, x=ctx.emit(ops.Neg, x=ctx.emit(ops.Abs, x=z)))
    return ctx.emit(ops.Add, a=ctx.emit(ops.Relu, x=z), b=log1p_unit(ctx, u))


@converter(*unary("erf"), torch.special.erf, *_aten("erf.default", "special_erf.default"),
           sig=lambda input: None)
def erf_(ctx: Ctx, a: dict) -> Any:
    return quant_aware(ctx, a["input"], lambda x: erf(ctx, x))


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


@converter(F.logsigmoid, *_aten("log_sigmoid.default"), sig=lambda input: None,
           modules={nn.LogSigmoid: lambda m: {}})
def logsigmoid(ctx: Ctx, a: dict) -> Any:
    """log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|)), as PyTorch computes it."""
    def f(x: Value) -> Value:
        u = ctx.emit(ops.Exp, x=ctx.emit(ops.Neg, x=ctx.emit(ops.Abs, x=x)))
        lo = ctx.emit(ops.Minimum, a=x, b=ctx.tensor(0.0))
        return ctx.emit(ops.Sub, a=lo, b=log1p_unit(ctx, u))

    return quant_aware(ctx, a["input"], f)


@converter(F.tanhshrink, sig=lambda input: None, modules={nn.Tanhshrink: lambda m: {}})
def tanhshrink(ctx: Ctx, a: dict) -> Any:
    return quant_aware(ctx, a["input"], lambda x: ctx.emit(ops.Sub, a=x, b=ctx.emit(ops.Tanh, x=x)))


@converter(F.glu, *_aten("glu.default"), sig=lambda input, dim=-1: None,
           modules={nn.GLU: lambda m: {"dim": m.dim}})
def glu(ctx: Ctx, a: dict) -> Any:
    """First half times sigmoid of the second half along ``dim`` (two STRIDED_SLICEs)."""
    x = value(a["input"])
    d = axis(a["dim"], x.type.rank)
    n = x.type.shape[d]
    if n % 2:
        raise Refuse(f"GLU needs an even size along dim {d}, got {n}")

    def half(i: int) -> Value:
        begin = [0] * x.type.rank
        end = list(x.type.shape)
        begin[d], end[d] = i * n // 2, (i + 1) * n // 2
        return ctx.emit(ops.StridedSlice, x=x, begin=tuple(begin), end=tuple(end),
                        strides=(1,) * x.type.rank)

    if x.type.quant is not None:
        raise Refuse("quantized GLU is not supported")
    return ctx.emit(ops.Mul, a=half(0), b=ctx.emit(ops.Logistic, x=half(1)))
