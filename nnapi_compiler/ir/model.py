"""The model level above ``Program``: the host block that calls NNAPI segments and CPU code.

A ``Program`` is the body of one NNAPI compilation. A whole compiled model is one more level,
deliberately only one: its signature (the original forward's inputs and output structure), a
flat SSA *host block* of segment calls and host ops in execution order, and the segments it
calls. The backend turns the host block into the wrapper's TorchScript ``forward``; partitioning
is what builds it from one optimized mixed program.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs
import torch
from torch.utils import _pytree as pytree

from .ops.host import HostOp
from .program import Program
from .types import Value


class LeafKind(enum.Enum):
    """Where one flattened model output comes from."""

    VALUE = "value"  # an IR value computed by the host block (or a model input)
    CONST = "const"  # a Python constant the original model returns as is


@attrs.frozen
class Leaf:
    """One flattened output of the original model."""

    kind: LeafKind
    value: Any = None  # the Value for VALUE leaves, the constant for CONST leaves
    scalar: bool = False  # a 0-d PyTorch tensor, carried as shape [1] through NNAPI
    #: PyTorch dtype the wrapper casts the value to: int64 (argmax) and bool results travel
    #: as NNAPI int32, one of the runtime's output types; None = no cast.
    cast: torch.dtype | None = None


@attrs.frozen
class IOSpec:
    """The original model's calling convention, kept so the artifact reproduces it exactly."""

    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int | None, ...], ...]  # None: a dynamic dim (see input_dims)
    input_dtypes: tuple[torch.dtype, ...]
    out_spec: pytree.TreeSpec = attrs.field(eq=False)
    leaves: tuple[Leaf, ...]
    #: Per input, per dim: a ``frontend.dynamic_spec.DimSpec`` (name and range) or None (static).
    input_dims: tuple[tuple[Any, ...], ...] | None = None

    def output_values(self) -> tuple[Value, ...]:
        """The distinct IR values the outputs read, in first-use order."""
        seen: dict[int, Value] = {}
        for leaf in self.leaves:
            if leaf.kind is LeafKind.VALUE:
                seen.setdefault(leaf.value.id, leaf.value)
        return tuple(seen.values())

    def map_values(self, f: Any) -> IOSpec:
        """The same spec with every VALUE leaf's value replaced by ``f(value)``."""
        leaves = tuple(attrs.evolve(lf, value=f(lf.value)) if lf.kind is LeafKind.VALUE else lf
                       for lf in self.leaves)
        return attrs.evolve(self, leaves=leaves)


class Placement(enum.Enum):
    """Where a segment runs."""

    NNAPI = "nnapi"  # its own NNAPI compilation (with a CPU twin for the fallback path)
    CPU = "cpu"  # the reference kernels on the CPU (too small, over max_segments, or illegal)


@attrs.frozen
class Segment:
    """One convex group of NNAPI-IR ops, cut out of the mixed program."""

    program: Program
    placement: Placement = Placement.NNAPI
    reason: str = ""  # why a segment of NNAPI ops runs on the CPU

    @property
    def size(self) -> int:
        return len(self.program.compute_ops())


@attrs.frozen
class SegmentCall:
    """A host-block step: run segment ``index`` on ``args``; its outputs are ``results``."""

    index: int
    args: tuple[Value, ...] = attrs.field(converter=tuple)
    results: tuple[Value, ...] = attrs.field(converter=tuple)


Step = SegmentCall | HostOp


@attrs.frozen
class ModelGraph:
    """A whole compiled model: signature, host block and segments (see the module docstring).

    ``inputs`` are the model inputs as values; ``consts`` are constants that host code or the
    outputs read directly (logical layout, keyed by value id).
    """

    io: IOSpec
    inputs: tuple[Value, ...] = attrs.field(converter=tuple)
    block: tuple[Step, ...] = attrs.field(converter=tuple)
    segments: tuple[Segment, ...] = attrs.field(converter=tuple)
    consts: dict[int, torch.Tensor] = attrs.field(factory=dict, eq=False)
    level: int = 3

    def host_ops(self) -> list[HostOp]:
        return [s for s in self.block if isinstance(s, HostOp)]

    def nnapi_segments(self) -> list[int]:
        return [i for i, s in enumerate(self.segments) if s.placement is Placement.NNAPI]
