"""Lower a captured fx graph to an IR program, node by node, through the converter registry.

Shapes are static (specialized on the example inputs), so shape queries (``x.size()``,
``x.shape[-1]``, arithmetic on them) and anything computed only from constants are folded to
their example values. In-place spellings are lowered as their out-of-place op and the mutated
node is rebound to the result. Every refusal is collected; all of them are reported at once.
"""

from __future__ import annotations

import operator
from typing import Any

import attrs
import torch
import torch.fx
from torch.utils import _pytree as pytree

from ..errors import ConversionError, Refusal, UnsupportedError
from ..ir.builder import Builder
from ..ir.codes import OperandCode
from ..ir.ops.base import Loc, Op
from ..ir.program import Program
from ..ir.types import DimOrder, Quant, TensorType, Value, float_type
from .capture import EXAMPLE, Captured, source_of
from .patterns import fuse_channel_shuffle
from .registry import REGISTRY, Entry, Key, Refuse, key_name

_SHAPE_ATTRS = {"shape", "ndim", "dtype", "device", "is_quantized"}
_SHAPE_METHODS = {"size", "dim", "numel", "ndimension", "nelement"}
_INPLACE_OPERATORS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}


class _Poison:
    """Stands for the result of a refused node; its users are skipped, not reported again."""


POISON = _Poison()


@attrs.frozen
class Leaf:
    """Where one flattened model output comes from: an NNAPI output, an input, or a constant."""

    kind: str  # "out" | "in" | "const"
    index: int = 0
    value: Any = None
    scalar: bool = False  # a 0-d PyTorch tensor, carried as shape [1] through NNAPI


@attrs.frozen
class IOSpec:
    """The original model's calling convention, kept so the artifact can reproduce it."""

    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    input_dtypes: tuple[torch.dtype, ...]
    out_spec: pytree.TreeSpec = attrs.field(eq=False)
    leaves: tuple[Leaf, ...]


@attrs.define(eq=False)
class Ctx:
    """What every converter gets: the builder, the target level and the current node."""

    b: Builder
    level: int
    gm: torch.fx.GraphModule
    node: torch.fx.Node | None = None

    def emit(self, cls: type[Op], **fields: Any) -> Value:
        return self.b.emit(cls, **fields)

    def const(self, t: torch.Tensor) -> Value:
        return self.b.const(t)

    def tensor(self, x: Any, like: Value | None = None) -> Value:
        """A Value for ``x``: IR values pass through, tensors and numbers become constants."""
        if isinstance(x, Value):
            return x
        if isinstance(x, torch.Tensor):
            if x.dtype not in (torch.float32, torch.float64, torch.float16):
                raise Refuse(f"constant tensor of dtype {x.dtype} is not supported")
            return self.const(x.float())
        if isinstance(x, bool | int | float):
            return self.const(torch.tensor([float(x)], dtype=torch.float32))
        raise Refuse(f"expected a tensor, got {type(x).__name__}")

    @property
    def example(self) -> Any:
        """The current node's example output."""
        assert self.node is not None
        return self.node.meta.get(EXAMPLE)

    def module(self) -> torch.nn.Module:
        assert self.node is not None
        return self.gm.get_submodule(str(self.node.target))


def _is_inplace(node: torch.fx.Node, mod: torch.nn.Module | None) -> bool:
    if node.kwargs.get("inplace") is True:
        return True
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.endswith("__")
    if node.op == "call_module":
        return bool(getattr(mod, "inplace", False))
    t = node.target
    if t in _INPLACE_OPERATORS:
        return True
    if isinstance(t, torch._ops.OpOverload):
        return t._schema.name.endswith("_")
    name = getattr(t, "__name__", "")
    return name.endswith("_") and not name.endswith("__")


def _lookup(node: torch.fx.Node, gm: torch.fx.GraphModule) -> tuple[Key, Entry | None]:
    if node.op == "call_module":
        key: Key = type(gm.get_submodule(str(node.target)))
    else:
        key = node.target
    return key, REGISTRY.get(key)


def _static(node: torch.fx.Node, static: set[torch.fx.Node]) -> bool:
    """Is this node's value fixed at compile time (constant or shape-derived)?"""
    if node.op == "get_attr":
        return True
    if node.op == "placeholder":
        return False
    if node.op == "call_function" and node.target is getattr and node.args[1] in _SHAPE_ATTRS:
        return True
    if node.op == "call_method" and node.target in _SHAPE_METHODS:
        return True
    if node.op not in ("call_function", "call_method"):
        return False
    return all(n in static for n in node.all_input_nodes)


def _target_str(node: torch.fx.Node, key: Key) -> str:
    return key_name(key) if node.op != "call_method" else f"Tensor.{node.target}"


def lower(cap: Captured, level: int) -> tuple[Program, IOSpec]:
    """Lower ``cap`` at feature ``level``; raises UnsupportedError listing every refused node."""
    fuse_channel_shuffle(cap.gm)
    b = Builder(level=level)
    ctx = Ctx(b=b, level=level, gm=cap.gm)
    env: dict[torch.fx.Node, Any] = {}
    static: set[torch.fx.Node] = set()
    refusals: list[Refusal] = []
    inputs: list[Value] = []
    in_shapes, in_dtypes = [], []
    for node in cap.gm.graph.nodes:
        if node.op == "output":
            continue
        ex = node.meta.get(EXAMPLE)
        if node.op == "placeholder":
            if not isinstance(ex, torch.Tensor):
                raise ConversionError(f"input {node.name!r} is a {type(ex).__name__}; only tensors "
                                      "are supported as model inputs")
            v = b.input(input_type(node.name, ex))
            inputs.append(v)
            in_shapes.append(tuple(ex.shape))
            in_dtypes.append(ex.dtype)
            env[node] = v
            continue
        if node.op == "call_module" and str(node.target) == "_guards_fn":
            env[node] = None  # torch.export's shape guard: shapes are checked by the artifact
            continue
        if _static(node, static):
            static.add(node)
            env[node] = ex
            continue
        args = torch.fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
        if any(a is POISON for a in pytree.tree_leaves((args, kwargs))):
            env[node] = POISON
            continue
        key, entry = _lookup(node, cap.gm)
        ctx.node = node
        b.loc = Loc(node.name, _target_str(node, key), source_of(node))
        try:
            if entry is None:
                raise Refuse("no NNAPI lowering for this op")
            mod = None
            if node.op == "call_module":
                mod = ctx.module()
                kwargs = {**kwargs, **entry.module_args[type(mod)](mod)}
            bound = entry.bind(tuple(args), dict(kwargs))
            result = entry.fn(ctx, bound)
            _check_result(node, result, ex)
        except Refuse as r:
            refusals.append(Refusal(node.name, _target_str(node, key), str(r), source_of(node)))
            env[node] = POISON
            continue
        env[node] = result
        if _is_inplace(node, mod) and node.args and isinstance(node.args[0], torch.fx.Node):
            env[node.args[0]] = result
    if refusals:
        raise UnsupportedError(refusals)
    program, leaves = _outputs(b, cap, env, inputs)
    io = IOSpec(tuple(cap.input_names), tuple(in_shapes), tuple(in_dtypes), cap.out_spec, leaves)
    return program, io


def input_type(name: str, ex: torch.Tensor) -> TensorType:
    """IR type of a model input: float32, or quint8 with the example's scale and zero point."""
    if ex.dtype == torch.float32:
        return float_type(tuple(ex.shape), DimOrder.CONTIGUOUS)
    if ex.dtype == torch.quint8 and ex.qscheme() == torch.per_tensor_affine:
        return TensorType(OperandCode.TENSOR_QUANT8_ASYMM, tuple(ex.shape),
                          Quant(ex.q_scale(), ex.q_zero_point()))
    raise ConversionError(f"input {name!r} has dtype {ex.dtype}; float32 and per-tensor quint8 "
                          "inputs are supported")


def _same_quant(t: TensorType, ex: torch.Tensor) -> bool:
    if t.quant is None:
        return False
    f32 = torch.tensor([t.quant.scale, ex.q_scale()], dtype=torch.float32)
    return bool(f32[0] == f32[1]) and t.quant.zero_point == ex.q_zero_point()


def _check_result(node: torch.fx.Node, result: Any, ex: Any) -> None:
    """A lowering must reproduce the example's shape exactly; anything else is our bug."""
    if isinstance(result, Value):
        if not isinstance(ex, torch.Tensor):
            raise Refuse(f"produces a {type(ex).__name__}, not a tensor")
        if ex.dtype == torch.quint8:
            if not _same_quant(result.type, ex):
                raise Refuse(f"PyTorch's output quantization (scale {ex.q_scale():.6g}, zero point "
                             f"{ex.q_zero_point()}) differs from what NNAPI's op produces "
                             f"({result.type})")
        elif ex.dtype != torch.float32:
            raise Refuse(f"produces dtype {ex.dtype}; only float32 and quint8 tensors are supported")
        # NNAPI has no 0-d tensors: a PyTorch scalar tensor is carried as shape [1].
        if tuple(result.type.logical_shape) != (tuple(ex.shape) or (1,)):
            raise ConversionError(
                f"internal error lowering {node.name}: IR shape {result.type.logical_shape} "
                f"!= eager shape {tuple(ex.shape)}"
            )


def _outputs(
    b: Builder, cap: Captured, env: dict[torch.fx.Node, Any], inputs: list[Value]
) -> tuple[Program, tuple[Leaf, ...]]:
    outs: list[Value] = []
    leaves = []
    for leaf in cap.out_leaves:
        val = env[leaf] if isinstance(leaf, torch.fx.Node) else leaf
        if isinstance(val, Value):
            if val in inputs:
                leaves.append(Leaf("in", inputs.index(val)))
                continue
            if val.id in {c.results[0].id for c in b.ops if not c.inputs() and c.mnemonic == "constant"}:
                raise ConversionError("a model output is a constant tensor; nothing to compile")
            if val not in outs:
                outs.append(val)
            ex = leaf.meta.get(EXAMPLE) if isinstance(leaf, torch.fx.Node) else None
            scalar = isinstance(ex, torch.Tensor) and ex.dim() == 0
            leaves.append(Leaf("out", outs.index(val), scalar=scalar))
        elif isinstance(val, torch.Tensor):
            raise ConversionError("a model output does not depend on the inputs; nothing to compile")
        else:
            leaves.append(Leaf("const", value=val))
    if not outs:
        raise ConversionError("the model computes no tensor from its inputs")
    return b.finish(outs), tuple(leaves)
