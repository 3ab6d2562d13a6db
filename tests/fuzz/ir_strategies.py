"""Hypothesis strategies drawing random valid IR program recipes (see ``ir_recipes``)."""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st

from nnapi_compiler.ir import ops
from nnapi_compiler.ir.builder import Builder
from nnapi_compiler.ir.types import Value, float_type

from .ir_recipes import ANY_RANK, BINARY, CONST_OPS, POSITIVE, SPATIAL, TERMINAL, UNARY, Recipe, Step, apply

LEVELS = (3, 4, 5, 8)


def _fits(size: int, k: int, d: int, lo: int, hi: int) -> bool:
    return size + lo + hi >= (k - 1) * d + 1


@st.composite
def _window(draw: st.DrawFn, h: int, w: int, pool: bool, dil: bool) -> dict[str, Any]:
    """Kernel, stride, dilation and explicit padding (top, bottom, left, right) that fit."""
    k, s, d, pad = [], [], [], []
    for size in (h, w):
        kk = draw(st.integers(1, 4))
        dd = draw(st.integers(1, 2)) if dil else 1
        lo = draw(st.integers(0, kk - 1 if pool else 2))
        hi = draw(st.integers(0, kk - 1 if pool else 2))
        while not _fits(size, kk, dd, lo, hi):
            kk, dd = max(1, kk - 1), 1
        k.append(kk)
        d.append(dd)
        s.append(draw(st.integers(1, 3)))
        pad += [lo, hi]
    return {"k": tuple(k), "stride": tuple(s), "dil": tuple(d), "pad": tuple(pad)}


def _const_shape(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    options = [(1,), shape, (shape[-1],)]
    if len(shape) == 4:
        options.append((shape[1], 1, 1))
    return draw(st.sampled_from(options))


@st.composite
def _params(draw: st.DrawFn, kind: str, x: Value, others: list[int], pool: list[Value],
            reshaped_from: tuple[int, ...] | None = None) -> Any:
    """(params dict, extra arg indices) for ``kind`` applied to ``x``; None if not applicable.

    ``reshaped_from`` is the source shape when ``x`` is a RESHAPE result.
    """
    shape, rank = x.type.shape, x.type.rank
    # Mostly unfused (a uniform draw left 75% of producers fused, so fusion and BN folding
    # hardly ever had anything to do).
    fuse = 0 if draw(st.integers(0, 2)) else draw(st.integers(1, 3))
    if kind in ("conv_bn", "conv_act"):
        kind = "conv"
    if kind == "fc_act":
        kind = "fc"
    if kind == "hard_swish":
        return {}, []
    if kind in ("conv", "dwconv", "gconv", "tconv"):
        _, c, h, w = shape
        win = draw(_window(h, w, pool=False, dil=kind in ("conv", "dwconv")))
        p = {**win, "fuse": fuse, "cout": draw(st.integers(1, 5))}
        if kind == "dwconv":
            p["mult"] = draw(st.integers(1, 2))
        if kind == "gconv":
            divisors = [g for g in range(1, c + 1) if c % g == 0]
            p["groups"] = draw(st.sampled_from(divisors))
            p["cout"] = p["groups"] * draw(st.integers(1, 2))
        if kind == "tconv":  # out = (in - 1) * s + k - pads must stay >= 1
            kh, kw = p["k"]
            t, b_, le, r = p["pad"]
            p["pad"] = (min(t, kh - 1), min(b_, kh - 1 - min(t, kh - 1)),
                        min(le, kw - 1), min(r, kw - 1 - min(le, kw - 1)))
        return p, []
    if kind in ("maxpool", "avgpool"):
        return {**draw(_window(shape[2], shape[3], pool=True, dil=False)), "fuse": fuse}, []
    if kind == "resize":
        flags = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
        return {"out": (draw(st.integers(1, 7)), draw(st.integers(1, 7))), "ac": flags[0],
                "hp": flags[1]}, []
    if kind == "bn":
        return {"fuse": fuse}, []
    if kind == "unary":
        return {"op": draw(st.sampled_from(list(UNARY)))}, []
    if kind == "interp":
        mode = draw(st.sampled_from(["nearest", "bilinear", "nearest-exact", "area"]))
        return {"mode": mode, "out": (draw(st.integers(1, 9)), draw(st.integers(1, 9))),
                "ac": mode == "bilinear" and draw(st.booleans())}, []
    if kind == "const_expr":
        return {"op": draw(st.sampled_from(sorted(CONST_OPS))), "relu": draw(st.booleans())}, []
    if kind == "qfc":
        # float32-exact scales: ser_model stores float32, and the round-trip tests compare exactly
        pick = {"in_scale": [1 / 32, 0.046875, 0.09375], "in_zp": [0, 100, 128],
                "w_scale": [1 / 256, 1 / 128], "out_scale": [0.0625, 0.25, 1.0], "out_zp": [0, 128]}
        chosen = {k: draw(st.sampled_from(v)) for k, v in pick.items()}
        return {"units": draw(st.integers(1, 6)), **chosen}, []
    if kind == "positive":
        return {"op": draw(st.sampled_from(sorted(POSITIVE)))}, []
    if kind == "exp":
        return {}, []
    if kind == "elu":
        return {"alpha": draw(st.sampled_from([0.0, 0.5, 1.0, 1.7]))}, []
    if kind == "prelu":
        return {"shape": _const_shape(draw, shape)}, []
    if kind == "binary_const":
        return {"op": draw(st.sampled_from(sorted(BINARY))), "shape": _const_shape(draw, shape),
                "swap": draw(st.booleans()), "fuse": fuse}, []
    if kind == "binary_value":
        same = [i for i in others if pool[i].type.shape == shape]
        if not same:
            return None
        op = draw(st.sampled_from(["add", "sub", "mul", "max", "min"]))
        return {"op": op, "fuse": fuse}, [draw(st.sampled_from(same))]
    if kind == "softmax":
        return {"log": draw(st.booleans()), "axis": draw(st.integers(0, rank - 1)),
                "beta": draw(st.sampled_from([1.0, 0.5, 2.0]))}, []
    if kind == "mean":
        axes = draw(st.sets(st.integers(0, rank - 1), min_size=1))
        return {"axes": tuple(sorted(axes)), "keep": draw(st.booleans())}, []
    if kind == "transpose":
        return {"perm": tuple(draw(st.permutations(range(rank))))}, []
    if kind == "concat":
        axis = draw(st.integers(0, rank - 1))
        match = [i for i in others if pool[i].type.rank == rank and all(
            a == b for j, (a, b) in enumerate(zip(pool[i].type.shape, shape, strict=True)) if j != axis)]
        return {"axis": axis}, draw(st.lists(st.sampled_from(match), min_size=1, max_size=2))
    if kind == "slice":
        begin, end, strides, shrink = [], [], [], 0
        for d, size in enumerate(shape):
            b0 = draw(st.integers(0, size - 1))
            begin.append(b0)
            end.append(draw(st.integers(b0 + 1, size)))
            strides.append(draw(st.integers(1, 3)))
            if rank > 1 and end[-1] == b0 + 1 and draw(st.booleans()) and shrink.bit_count() < rank - 1:
                shrink |= 1 << d
        return {"begin": tuple(begin), "end": tuple(end), "strides": tuple(strides),
                "shrink": shrink}, []
    if kind == "pad":
        pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
        return {"pads": pads, "value": draw(st.sampled_from([0.0, 0.0, -1.5, 2.0]))}, []
    if kind == "fc":
        return {"units": draw(st.integers(1, 6)), "flat": rank != 2,
                "fuse": fuse}, []
    if kind == "reshape":
        n = x.type.numel
        options = [(n,), (shape[0], n // shape[0])]
        if rank == 4:
            options.append((shape[0], shape[1], shape[2] * shape[3]))
        if rank == 2 and n % 2 == 0:
            options.append((1, 2, 1, n // 2))
        if reshaped_from is not None:
            options.append(reshaped_from)  # a reshape chain back to where it started
        return {"shape": draw(st.sampled_from(options))}, []
    if kind == "dup_const":
        return {}, []
    raise ValueError(kind)


def _input_shape(draw: st.DrawFn) -> tuple[int, ...]:
    if draw(st.integers(0, 3)):
        return (draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 6)),
                draw(st.integers(1, 6)))
    return (draw(st.integers(1, 3)), draw(st.integers(1, 8)))


@st.composite
def recipes(draw: st.DrawFn, levels: tuple[int, ...] = LEVELS, max_steps: int = 8) -> Recipe:
    """A random valid program: inputs, 1..max_steps steps over a value pool, some outputs."""
    level, seed = draw(st.sampled_from(levels)), draw(st.integers(0, 2**16))
    first = _input_shape(draw)
    inputs = [first] + ([first] if draw(st.booleans()) else [])
    b = Builder(level=level)
    pool = [b.input(float_type(s)) for s in inputs]
    steps: list[Step] = []
    terminal: set[int] = set()  # pool indices no later step may read
    for i in range(draw(st.integers(1, max_steps))):
        # Mostly extend the newest value, so patterns (conv -> bn -> relu) chain up.
        open_ = [j for j in range(len(pool)) if j not in terminal]
        xi = open_[-1] if draw(st.integers(0, 2)) else draw(st.sampled_from(open_))
        x = pool[xi]
        spatial = x.type.rank == 4 and draw(st.booleans())
        kind = draw(st.sampled_from(SPATIAL if spatial else ANY_RANK))
        src = next((op.x.type.shape for op in b.ops if isinstance(op, ops.Reshape) and op.result == x),
                   None)
        drawn = draw(_params(kind, x, open_, pool, src))
        if drawn is None:
            kind, drawn = "unary", draw(_params("unary", x, [], pool))
        p, extra = drawn
        step = Step(kind, (xi, *extra), tuple(sorted(p.items())))
        pool.append(apply(b, step, [pool[a] for a in step.args],
                          torch.Generator().manual_seed(seed * 1000 + i)))
        steps.append(step)
        if kind in TERMINAL:
            terminal.add(len(pool) - 1)
    computed = list(range(len(inputs), len(pool)))
    outs = draw(st.lists(st.sampled_from(computed), min_size=1, max_size=3, unique=True))
    return Recipe(level, seed, tuple(inputs), tuple(steps), tuple(outs))
