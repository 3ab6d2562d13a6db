"""Finds an identical earlier constant without hashing weights: candidates by type and sample first.

Sharing identical constants (one buffer per distinct content) must not cost a pass over every
weight byte. Candidates are grouped by dtype, shape and a few sampled elements; only tensors that
agree on all of those are compared byte by byte, and comparison stops at the first difference.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

import attrs
import torch

T = TypeVar("T")
SAMPLES = 16  # elements sampled, evenly spaced, into each tensor's group key


def raw_bytes(t: torch.Tensor) -> torch.Tensor:
    """``t``'s storage bytes as a flat uint8 tensor (a view when ``t`` is contiguous)."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and bytes (so -0.0 differs from 0.0 and a NaN equals itself)."""
    if a is b:
        return True
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(raw_bytes(a), raw_bytes(b))


def group_key(t: torch.Tensor) -> tuple[Hashable, ...]:
    """Cheap key that identical tensors share: dtype, shape and sampled elements.

    Sampled values compare as numbers (0.0 == -0.0, NaN != NaN): the key may only split tensors
    that differ in bytes or hold NaN, which then are simply not shared; ``same_bytes`` decides.
    """
    flat = t.detach().reshape(-1)
    sample = flat[:: max(1, flat.numel() // SAMPLES)][:SAMPLES].tolist()
    return (t.dtype, tuple(t.shape), tuple(sample))


@attrs.define(eq=False)
class ConstPool(Generic[T]):
    """Items (values, buffer indices, ...) indexed by the tensor they stand for."""

    _groups: dict[Hashable, list[tuple[torch.Tensor, T]]] = attrs.field(factory=dict)

    def find(self, data: torch.Tensor, extra: Hashable = ()) -> T | None:
        """The item added for the same bytes (and ``extra``, e.g. a type), if any."""
        for other, item in self._groups.get((extra, group_key(data)), ()):
            if same_bytes(data, other):
                return item
        return None

    def add(self, data: torch.Tensor, item: T, extra: Hashable = ()) -> None:
        self._groups.setdefault((extra, group_key(data)), []).append((data, item))

    def remove(self, data: torch.Tensor, item: T, extra: Hashable = ()) -> None:
        group = self._groups.get((extra, group_key(data)), [])
        group[:] = [(d, i) for d, i in group if i != item]
