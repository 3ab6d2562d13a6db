"""Check each dynamic dim's range at its ends, where the samples do not look.

``nnapi_compiler/dynamic.py`` compiles at the example and two nearby sizes. A model can behave
differently near the ends of a range: ``t[:, 1:5:2]`` yields two elements only when the dim is at
least 5, and a 3x3 convolution without padding needs at least 3. An artifact that accepted such a
size would fail on the phone or size an output wrongly. So before lowering, the model runs with
each dynamic dim at its minimum (and at its maximum, when that is bounded and affordable), and
every tensor's symbolic shape is checked there as at the samples.

When an end fails, torch's symbolic shape propagation usually knows why: the range it recorded
for the dim's symbol (``c >= 5``). If the model runs at that bound, a declared range
(``torch.export.Dim``) is refused with the range to declare, as torch.export does; an undeclared
one (a prototype-style size-0 dim) is narrowed to it, and the artifact's input checks then refuse
the sizes outside it. The recorded range alone is not trusted: torch also records conditions that
only choose a kernel (``batch < 16``), which is why every end is run before it is believed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import sympy
import torch

from ..errors import ConversionError
from .dynamic_spec import DimSpec, Dynamic, _like
from .symbolic import Symbols, check_sample

#: The largest input (elements, all inputs together) a range's maximum is probed at.
MAX_PROBE_ELEMENTS = 1 << 24


def fit_ranges(gm: torch.fx.GraphModule, syms: Symbols, dyn: Dynamic,
               record: Callable[[tuple], None]) -> Dynamic:
    """``dyn`` with every dynamic dim's range checked at its ends (narrowed if undeclared);
    ``record(sample)`` runs the model on a sample, raising ConversionError if it fails."""
    specs = {s.name: s for _, _, s in dyn.dynamic_dims()}
    # Dims the model forces equal (``x + y``: torch's shape environment replaced one symbol by
    # the other) move together, or the probe would test a model that cannot run.
    groups: dict[str, set[str]] = {}
    for sym, (i, d) in syms.inputs.items():
        spec = dyn.dims[i][d]
        assert spec is not None
        groups.setdefault(str(syms.expr(sym)), set()).add(spec.name)
    fitted: dict[str, DimSpec] = {}
    try:
        for names in groups.values():
            for name in sorted(names):
                fitted[name] = _fit(gm, syms, dyn, specs[name], frozenset(names), record)
    finally:
        record(dyn.samples[0])  # node examples stay the example's
    if all(fitted[n] == s for n, s in specs.items()):
        return dyn
    dims = tuple(tuple(fitted[s.name] if s else None for s in ds) for ds in dyn.dims)
    return attrs.evolve(dyn, dims=dims)


def _fit(gm: torch.fx.GraphModule, syms: Symbols, dyn: Dynamic, spec: DimSpec,
         group: frozenset[str], record: Callable[[tuple], None]) -> DimSpec:
    lo, hi = spec.min, spec.max
    allowed = _allowed(syms, dyn, group)
    error = _probe(gm, syms, dyn, group, lo, record)
    if error is not None:
        lo = _bound(allowed.lower, lo) if allowed is not None else lo
        if lo == spec.min or (hi is not None and lo > hi) or _probe(gm, syms, dyn, group, lo,
                                                                    record) is not None:
            raise ConversionError(f"dynamic dim {spec}: the model does not run at size {spec.min}: "
                                  f"{error}")
    if hi is not None and _affordable(dyn, group, hi):
        error = _probe(gm, syms, dyn, group, hi, record)
        if error is not None:
            cap = _bound(allowed.upper, None) if allowed is not None else None
            if cap is None or cap >= hi or cap < lo or _probe(gm, syms, dyn, group, cap,
                                                              record) is not None:
                raise ConversionError(f"dynamic dim {spec}: the model does not run at size "
                                      f"{spec.max}: {error}")
            hi = cap
    if (lo, hi) == (spec.min, spec.max):
        return spec
    if not spec.implicit:
        raise ConversionError(
            f"dynamic dim {spec}: the model only runs with sizes in [{lo}, "
            f"{'inf' if hi is None else hi}] ({_guards(syms, dyn, group)}); declare "
            f"Dim({spec.name!r}, min={lo}{'' if hi is None else f', max={hi}'})")
    return attrs.evolve(spec, min=lo, max=hi)


def _sample(dyn: Dynamic, names: frozenset[str], size: int) -> tuple[Any, ...]:
    """The example with every dim named in ``names`` at ``size``."""
    gen = torch.Generator().manual_seed(size)
    out = []
    for x, ds in zip(dyn.samples[0], dyn.dims, strict=True):
        if not isinstance(x, torch.Tensor) or not any(s and s.name in names for s in ds):
            out.append(x)
            continue
        shape = [size if s and s.name in names else n for n, s in zip(x.shape, ds, strict=True)]
        out.append(_like(x, shape, gen))
    return tuple(out)


def _probe(gm: torch.fx.GraphModule, syms: Symbols, dyn: Dynamic, names: frozenset[str], size: int,
           record: Callable[[tuple], None]) -> str | None:
    """None if the model runs at ``size`` and every shape follows its symbolic rule; else why."""
    sample = _sample(dyn, names, size)
    try:
        record(sample)
        sizes = {(i, d): int(sample[i].shape[d]) for i, d, _ in dyn.dynamic_dims()}
        check_sample(gm, syms, sizes)
    except ConversionError as e:
        return str(e).splitlines()[0]
    return None


def _allowed(syms: Symbols, dyn: Dynamic, names: frozenset[str]) -> Any:
    """The intersection of the ranges torch recorded for the symbols of dims in ``names``."""
    ranges = [syms.env.var_to_range.get(s) for s, (i, d) in syms.inputs.items()
              if (spec := dyn.dims[i][d]) is not None and spec.name in names]
    ranges = [r for r in ranges if r is not None]
    if not ranges:
        return None
    out = ranges[0]
    for r in ranges[1:]:
        out = out & r
    return out


def _guards(syms: Symbols, dyn: Dynamic, names: frozenset[str]) -> str:
    """The shape conditions torch recorded on the dims in ``names``, in the dims' names."""
    named = {s: sympy.Symbol(spec.name) for s, (i, d) in syms.inputs.items()
             if (spec := dyn.dims[i][d]) is not None}
    mine = {s for s, v in named.items() if str(v) in names}
    found = [str(g.expr.xreplace(named)) for g in syms.env.guards if g.expr.free_symbols & mine]
    return "its shape conditions: " + "; ".join(found) if found else "found by running its ends"


def _affordable(dyn: Dynamic, names: frozenset[str], size: int) -> bool:
    total = sum(shape.numel() for shape in _shapes(dyn, names, size))
    return total <= MAX_PROBE_ELEMENTS


def _shapes(dyn: Dynamic, names: frozenset[str], size: int) -> list[torch.Size]:
    out = []
    for x, ds in zip(dyn.samples[0], dyn.dims, strict=True):
        if isinstance(x, torch.Tensor):
            out.append(torch.Size([size if s and s.name in names else n
                                   for n, s in zip(x.shape, ds, strict=True)]))
    return out


def _bound(v: Any, default: int | None) -> int | None:
    try:
        n = int(v)
    except Exception:  # sympy's and torch's infinities do not convert
        return default
    return n if abs(n) < 2**62 else default
