"""Base classes of IR operations: typed fields, generic operand walking, type inference hooks.

An op is a frozen attrs class. Its tensor inputs are the fields holding ``Value`` (or tuples of
them); everything else is a typed attribute. NNAPI ops name their ``code`` once and give their
positional NNAPI operand list in ``nnapi_operands``; the minimum feature level comes from the spec
table plus whatever optional features (layout flag, dilation, ...) an instance uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import torch

from ..codes import OP_SPECS, OpCode
from ..constpool import same_bytes
from ..types import Operand, TensorType, Value, tensor_digest


@attrs.frozen
class Loc:
    """Where an op came from: the fx node name, its target and the user's source line."""

    node: str
    target: str = ""
    source: str = ""

    def __str__(self) -> str:
        return f"{self.node} ({self.target})" + (f" at {self.source}" if self.source else "")


class Op:
    """Base of every IR operation (declared as ``@attrs.frozen(kw_only=True)`` subclasses)."""

    mnemonic: ClassVar[str] = "op"
    results: tuple[Value, ...]
    loc: Loc | None

    # -- traits: facts passes ask of an op class, declared once on the class ---------------
    #: Has an NNAPI fuse-code operand: a RELU / RELU1 / RELU6 reading it can become that code.
    fusable: ClassVar[bool] = False
    #: Works on the H and W axes of an image: prefers NHWC storage (NNAPI's native layout).
    spatial: ClassVar[bool] = False
    #: Computes the same in either storage order once its axes are remapped: follows its inputs.
    layout_follows: ClassVar[bool] = False
    #: (field holding the constant weights, axis of that tensor that indexes output channels).
    weighted: ClassVar[tuple[str, int] | None] = None
    #: Its NNAPI operand list may carry the layout flag: the first BOOL operand, true = NCHW.
    nchw_flag: ClassVar[bool] = False

    # -- generic structure ---------------------------------------------------------------
    def input_fields(self) -> list[str]:
        return [name for name in _field_names(type(self)) if _holds_values(getattr(self, name))]

    def inputs(self) -> tuple[Value, ...]:
        """Tensor values this op reads, in field order (for SSA and data-flow analysis)."""
        out: list[Value] = []
        for name in self.input_fields():
            v = getattr(self, name)
            out.extend(v if isinstance(v, tuple) else (v,))
        return tuple(out)

    def attributes(self) -> dict[str, Any]:
        """Non-value fields (the op's typed attributes), for printing and comparison."""
        skip = {"results", "loc", *self.input_fields()}
        return {f.name: getattr(self, f.name) for f in attrs.fields(type(self)) if f.name not in skip}

    def map_inputs(self, f: Callable[[Value], Value]) -> Op:
        """The same op reading ``f(v)`` for every input value ``v``."""
        changes = {}
        for name in self.input_fields():
            v = getattr(self, name)
            changes[name] = tuple(f(x) for x in v) if isinstance(v, tuple) else f(v)
        return attrs.evolve(self, **changes)  # type: ignore[misc]

    @property
    def result(self) -> Value:
        if len(self.results) != 1:
            raise ValueError(f"{self.mnemonic} has {len(self.results)} results")
        return self.results[0]

    # -- semantics hooks -----------------------------------------------------------------
    def infer(self) -> tuple[TensorType, ...]:
        """Result types computed from the inputs and attributes (the verifier re-checks them)."""
        raise NotImplementedError(type(self).__name__)

    def check(self) -> list[str]:
        """Op-specific well-formedness problems beyond type inference (empty list = fine)."""
        return []


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """Fields that may hold input values (declared with ``Value`` in their type, other than
    results and loc), computed once per class: walking every field of every op is hot."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in attrs.fields(cls) if f.name not in ("results", "loc")
                      and (f.type is None or "Value" in str(f.type)))
        _FIELD_NAMES[cls] = names
    return names


def _holds_values(v: object) -> bool:
    return isinstance(v, Value) or (
        isinstance(v, tuple) and len(v) > 0 and all(isinstance(x, Value) for x in v)
    )


class NnapiOp(Op):
    """An op that becomes exactly one NNAPI operation."""

    code: ClassVar[OpCode]
    #: Position (in ``inputs()``) of the input whose type the spec's type column names.
    typed_input: ClassVar[int] = 0

    @classmethod
    def spec_level(cls) -> int:
        return OP_SPECS[cls.code].min_level

    def required_level(self) -> int:
        """Lowest feature level at which this instance (with its optional inputs) is legal."""
        return self.spec_level()

    def nnapi_operands(self) -> list[Operand]:
        """The positional NNAPI input operand list, exactly as ``addOperation`` receives it."""
        raise NotImplementedError(type(self).__name__)


@attrs.frozen(kw_only=True)
class Constant(Op):
    """A constant tensor (weights, biases, broadcast scalars).

    Two constants are equal when their bytes are; no content hash is computed unless asked for
    (``digest``, for printing): hashing every weight would dominate compile time.
    """

    mnemonic: ClassVar[str] = "constant"
    results: tuple[Value, ...]
    data: torch.Tensor = attrs.field(eq=attrs.cmp_using(eq=same_bytes), hash=False, repr=False)
    loc: Loc | None = attrs.field(default=None, eq=False)

    @property
    def digest(self) -> str:
        """Content hash of the data (dtype, shape, bytes), computed on demand."""
        return tensor_digest(self.data)

    def infer(self) -> tuple[TensorType, ...]:
        return (self.results[0].type,)

    def check(self) -> list[str]:
        t = self.results[0].type
        if tuple(self.data.shape) != t.shape:
            return [f"constant data shape {tuple(self.data.shape)} != type shape {t.shape}"]
        if self.data.dtype != t.torch_dtype:
            return [f"constant dtype {self.data.dtype} != {t.torch_dtype}"]
        return []
