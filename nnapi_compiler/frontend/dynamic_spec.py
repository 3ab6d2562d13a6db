"""Dynamic input dimensions: parse the user's declaration and pick the sizes compiled at.

``compile(..., dynamic_shapes=...)`` takes torch.export's convention: per input, a dict from dim
index to ``torch.export.Dim(name, min=, max=)`` (or a tuple/list with one entry per dim, None for
static dims), given as a tuple/list in input order or a dict keyed by input name. For migration
from torch's prototype converter (``torch.backends._nnapi``), a size-0 dim in an example input
also marks a dynamic dimension (range [1, unbounded), compiled at ``DEFAULT_SIZE``).

The compiler needs concrete sizes to run the example, so it picks *samples*: the example itself
and two more input tuples whose dynamic dims take other sizes in the declared range. Lowering
the model at every sample and comparing the programs (``nnapi_compiler/dynamic.py``) says which
operand dims vary and which constants bake a size.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from ..errors import ConversionError

#: The size a prototype-style size-0 dim is compiled at (the example must hold real data).
DEFAULT_SIZE = 16


def _candidates(n: int) -> list[int]:
    """Other sizes to compile at, best first: n+1 (the other parity) and 2n+1 (every
    floor/ceil division by a small stride changes), then nearer sizes when the range is narrow."""
    return [n + 1, 2 * n + 1, n + 7, n - 1, n // 2 + 1, n - 7, n + 2, n + 3, n - 2, n - 3]


@attrs.frozen
class DimSpec:
    """One dynamic dimension: its name (dims with one name have one size) and inclusive range."""

    name: str
    min: int
    max: int | None  # None: unbounded
    #: No range was declared (a prototype-style size-0 dim, or ``Dim.AUTO``): the model's own
    #: shape constraints narrow it. A declared range the model cannot run is refused instead.
    implicit: bool = False

    def contains(self, n: int) -> bool:
        return n >= self.min and (self.max is None or n <= self.max)

    def __str__(self) -> str:
        hi = "inf" if self.max is None else str(self.max)
        return f"{self.name} in [{self.min}, {hi}]"


@attrs.frozen
class Dynamic:
    """The parsed declaration: per input, per dim, a DimSpec or None (static); and the samples."""

    dims: tuple[tuple[DimSpec | None, ...], ...]
    samples: tuple[tuple[Any, ...], ...]  # samples[0] is the example the model is compiled at

    def dynamic_dims(self) -> list[tuple[int, int, DimSpec]]:
        return [(i, d, s) for i, dims in enumerate(self.dims) for d, s in enumerate(dims) if s]


def _bound(v: Any, default: int | None) -> int | None:
    try:
        n = int(v)
    except Exception:  # torch's int_oo (unbounded) does not convert
        return default
    return n if abs(n) < 2**62 else default


def _dim_spec(obj: Any, where: str) -> DimSpec | None:
    if obj is None:
        return None
    hint = getattr(torch.export, "Dim", None)
    if hint is not None and type(obj).__name__ == "_DimHint":  # Dim.AUTO / Dim.DYNAMIC / Dim.STATIC
        if "STATIC" in str(obj):
            return None
        return DimSpec(where, 1, None, implicit=True)
    name = getattr(obj, "__name__", None)
    if name is None or not hasattr(obj, "min"):
        raise ConversionError(f"dynamic_shapes{where}: expected torch.export.Dim(...) or None, got "
                              f"{obj!r}")
    lo = max(1, _bound(obj.min, 1) or 1)  # NNAPI has no empty tensors: a dim is at least 1
    hi = _bound(getattr(obj, "max", None), None)
    if hi is not None and hi < lo:
        raise ConversionError(f"dynamic_shapes{where}: Dim {name!r} has max {hi} < min {lo}")
    return DimSpec(str(name), lo, hi)


def _per_input(spec: Any, x: torch.Tensor, where: str) -> list[DimSpec | None]:
    out: list[DimSpec | None] = [None] * x.dim()
    if spec is None:
        return out
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, list | tuple):
        if len(spec) != x.dim():
            raise ConversionError(f"dynamic_shapes{where}: {len(spec)} entries for an input of "
                                  f"rank {x.dim()}")
        items = list(enumerate(spec))
    else:
        raise ConversionError(f"dynamic_shapes{where}: expected a dict {{dim: Dim}} or a tuple, "
                              f"got {type(spec).__name__}")
    for d, dim in items:
        if not isinstance(d, int) or not -x.dim() <= d < x.dim():
            raise ConversionError(f"dynamic_shapes{where}: dim {d!r} is not a dim of an input of "
                                  f"rank {x.dim()}")
        out[d % x.dim()] = _dim_spec(dim, f"{where}[{d}]")
    return out


def parse_dynamic(inputs: tuple, names: list[str], dynamic_shapes: Any) -> Dynamic | None:
    """The declared dynamic dims (plus size-0 dims of the examples), or None if there are none."""
    if isinstance(dynamic_shapes, dict):
        unknown = set(dynamic_shapes) - set(names)
        if unknown:
            raise ConversionError(f"dynamic_shapes names {sorted(unknown)}, which are not inputs "
                                  f"of forward ({', '.join(names)})")
        per = [dynamic_shapes.get(n) for n in names]
    elif isinstance(dynamic_shapes, list | tuple):
        if len(dynamic_shapes) != len(inputs):
            raise ConversionError(f"dynamic_shapes has {len(dynamic_shapes)} entries for "
                                  f"{len(inputs)} inputs")
        per = list(dynamic_shapes)
    elif dynamic_shapes is None:
        per = [None] * len(inputs)
    else:
        raise ConversionError("dynamic_shapes must be a tuple/list (one entry per input) or a dict "
                              f"keyed by input name, got {type(dynamic_shapes).__name__}")
    dims: list[tuple[DimSpec | None, ...]] = []
    for i, (x, spec) in enumerate(zip(inputs, per, strict=True)):
        if not isinstance(x, torch.Tensor):
            if spec is not None:
                raise ConversionError(f"dynamic_shapes[{i}] is given for a non-tensor input")
            dims.append(())
            continue
        ds = _per_input(spec, x, f"[{names[i]!r}]")
        for d, n in enumerate(x.shape):
            if n == 0 and ds[d] is None:  # torch.backends._nnapi's convention
                ds[d] = DimSpec(f"{names[i]}_dim{d}", 1, None, implicit=True)
        dims.append(tuple(ds))
    if not any(s for ds in dims for s in ds):
        return None
    return Dynamic(tuple(dims), _samples(inputs, dims, names))


def _sizes(dims: list[tuple[DimSpec | None, ...]], inputs: tuple) -> dict[str, list[int]]:
    """Per dim name: [example size, two other sizes in range] (fewer if the range is small)."""
    first: dict[str, int] = {}
    specs: dict[str, DimSpec] = {}
    for x, ds in zip(inputs, dims, strict=True):
        for d, s in enumerate(ds):
            if s is None:
                continue
            n = int(x.shape[d]) or DEFAULT_SIZE
            if s.name in specs and (specs[s.name] != s or first[s.name] != n):
                raise ConversionError(f"dims named {s.name!r} must have one range and one example "
                                      f"size, got {specs[s.name]} (size {first[s.name]}) and {s} "
                                      f"(size {n})")
            if not s.contains(n):
                raise ConversionError(f"example size {n} of dynamic dim {s} is outside its range")
            first[s.name], specs[s.name] = n, s
    out = {}
    for name, n in first.items():
        others = [k for k in _candidates(n) if k != n and specs[name].contains(k)]
        out[name] = [n, *list(dict.fromkeys(others))[:2]]
    return out


def _samples(inputs: tuple, dims: list[tuple[DimSpec | None, ...]], names: list[str]
             ) -> tuple[tuple[Any, ...], ...]:
    sizes = _sizes(dims, inputs)
    count = max(len(v) for v in sizes.values())
    samples = []
    for k in range(count):
        sample = []
        for x, ds in zip(inputs, dims, strict=True):
            if not isinstance(x, torch.Tensor) or not any(ds):
                sample.append(x)
                continue
            shape = [sizes[s.name][min(k, len(sizes[s.name]) - 1)] if s else n
                     for n, s in zip(x.shape, ds, strict=True)]
            if k == 0 and list(shape) == list(x.shape):
                sample.append(x)
            else:
                gen = torch.Generator().manual_seed(k)
                sample.append(_like(x, shape, gen))
        samples.append(tuple(sample))
    return tuple(samples)


def _like(x: torch.Tensor, shape: list[int], gen: torch.Generator) -> torch.Tensor:
    """A tensor of ``x``'s dtype (and quantization) with ``shape``: random data in x's range."""
    if x.is_quantized:
        f = torch.rand(shape, generator=gen)
        return torch.quantize_per_tensor(f, x.q_scale(), x.q_zero_point(), x.dtype)
    if x.is_floating_point():
        return torch.randn(shape, generator=gen).to(x.dtype)
    hi = int(x.max()) + 1 if x.numel() else 2
    lo = int(x.min()) if x.numel() else 0
    return torch.randint(lo, max(hi, lo + 1), shape, generator=gen, dtype=x.dtype)
