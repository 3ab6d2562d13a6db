"""Lower a captured fx graph to an IR program, node by node, through the converter registry.

Shapes are static (specialized on the example inputs), so shape queries (``x.size()``,
``x.shape[-1]``, arithmetic on them) and anything computed only from constants are folded to
their example values. In-place spellings are lowered as their out-of-place op and the mutated
node is rebound to the result.

Lowering never stops at a refusal: what the refused converter emitted is rolled back and the node
becomes a ``HostOp`` that calls the original torch code on the CPU (partitioning later puts it in
host code between NNAPI segments). With ``fallback="error"`` every refusal is reported at once.
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
from ..ir.model import IOSpec, Leaf, LeafKind
from ..ir.ops.base import Loc, Op
from ..ir.ops.host import ArgRef, CallKind, HostCall, HostOp
from ..ir.ops.logic import Select
from ..ir.program import Program
from ..ir.types import DimOrder, HostType, Quant, TensorType, Value, float_type, int_type
from .capture import EXAMPLE, Captured, source_of
from .patterns import rewrite
from .registry import REGISTRY, Entry, Key, Misuse, Refuse, key_name

_SHAPE_ATTRS = {"shape", "ndim", "dtype", "device", "is_quantized"}
_SHAPE_METHODS = {"size", "dim", "numel", "ndimension", "nelement"}
HOST_INPUT = "reads a value only the CPU can hold (computed by host code)"
_INPLACE_OPERATORS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}
RUNTIME_SIZE = "reads the size of a dynamic dimension: computed at run time on the CPU"
SIZE_DEPENDENT = "its NNAPI form depends on the size of a dynamic dimension"


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
            # NNAPI reads rank 0 as "unknown shape"; a 0-d constant (``weights[i]`` of a
            # parameter) is a one-element tensor, as a Python number is just below.
            return self.const(x.float().reshape(1) if x.dim() == 0 else x.float())
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
    if node.op == "call_function" and node.target is torch.ops.aten.sym_size.int:
        return True
    if node.op not in ("call_function", "call_method", "call_module"):
        return False
    # A module applied to constants (EdgeNeXt's Fourier position encoding, XCiT's conv of a
    # constant grid) is a constant too, as a function call would be: its parameters are
    # constants and the model is in eval mode, so its example output is its value.
    return all(n in static for n in node.all_input_nodes)


def _target_str(node: torch.fx.Node, key: Key) -> str:
    return key_name(key) if node.op != "call_method" else f"Tensor.{node.target}"


def lower(cap: Captured, level: int, fallback: str = "cpu", runtime: frozenset[str] = frozenset(),
          host: frozenset[str] = frozenset()) -> tuple[Program, IOSpec]:
    """Lower ``cap`` at feature ``level`` into one mixed program (NNAPI ops and host ops).

    ``fallback="error"`` raises UnsupportedError listing every refused node instead. With
    dynamic dims (``nnapi_compiler/dynamic.py``), nodes named in ``runtime`` compute a size at run
    time (never folded) and nodes in ``host`` run on the CPU because their NNAPI form bakes a size.
    """
    rewrite(cap)
    live = _live(cap.gm) if runtime else set()
    b = Builder(level=level)
    ctx = Ctx(b=b, level=level, gm=cap.gm)
    env: dict[torch.fx.Node, Any] = {}
    static: set[torch.fx.Node] = set()
    refusals: list[Refusal] = []
    misuses: list[Refusal] = []  # the model's own mistakes: errors whatever the fallback
    inputs: list[Value] = []
    in_shapes, in_dtypes = [], []
    for node in cap.gm.graph.nodes:
        if node.op == "output":
            continue
        ex = node.meta.get(EXAMPLE)
        if node.op == "placeholder" and len(inputs) == len(cap.input_names):
            static.add(node)  # a forward parameter left at its default (specialized on it)
            env[node] = ex
            continue
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
        if node.name in runtime and node not in live:  # a size read left dead by a rewrite
            env[node] = ex
            continue
        if _static(node, static) and node.name not in runtime:
            static.add(node)
            env[node] = ex
            continue
        args = torch.fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
        key, entry = _lookup(node, cap.gm)
        ctx.node = node
        b.loc = Loc(node.name, _target_str(node, key), source_of(node))
        mod = cap.gm.get_submodule(str(node.target)) if node.op == "call_module" else None
        mark = b.mark()
        try:
            if any(isinstance(a, Value) and isinstance(a.type, HostType)
                   for a in pytree.tree_leaves((args, kwargs))):
                raise Refuse(HOST_INPUT)
            if node.name in runtime or node.name in host:
                raise Refuse(RUNTIME_SIZE if node.name in runtime else SIZE_DEPENDENT)
            if entry is None:
                raise Refuse("no NNAPI lowering for this op")
            picks = node.target is operator.getitem and args and isinstance(args[0], tuple)
            if not entry.typed and not picks and any(  # (an element of a result tuple is fine)
                    _int_or_bool(a) for a in pytree.tree_leaves((args, kwargs))):
                raise Refuse("this lowering takes float or quantized tensors, not int or bool ones")
            if mod is not None:
                kwargs = {**kwargs, **entry.module_args[type(mod)](mod)}
            bound = entry.bind(tuple(args), dict(kwargs))
            result = entry.fn(ctx, bound)
            _check_result(node, result, ex)
        except Refuse as r:
            b.rollback(mark)
            refusal = Refusal(node.name, _target_str(node, key), str(r), source_of(node))
            (misuses if isinstance(r, Misuse) else refusals).append(refusal)
            result = _host_op(ctx, node, mod, str(r), env)
        env[node] = result
        if _is_inplace(node, mod) and node.args and isinstance(node.args[0], torch.fx.Node):
            env[node.args[0]] = result
    if misuses:
        raise UnsupportedError(misuses)
    if refusals and fallback == "error":  # a node refused only for its host input says nothing new
        raise UnsupportedError([r for r in refusals if r.reason != HOST_INPUT] or refusals)
    leaves = _outputs(b, cap, env, inputs)
    io = IOSpec(tuple(cap.input_names), tuple(in_shapes), tuple(in_dtypes), cap.out_spec, leaves)
    return b.finish(io.output_values()), io


def _int_or_bool(a: Any) -> bool:
    return isinstance(a, Value) and isinstance(a.type, TensorType) and a.type.code in (
        OperandCode.TENSOR_INT32, OperandCode.TENSOR_BOOL8)


def _live(gm: torch.fx.GraphModule) -> set[torch.fx.Node]:
    """Nodes the output depends on."""
    stack = [n for n in gm.graph.nodes if n.op == "output"]
    live: set[torch.fx.Node] = set()
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(n.all_input_nodes)
    return live


def host_type(ex: Any) -> TensorType | HostType:
    """The IR type of a value host code computes, from its example.

    Tensors an NNAPI operand can hold keep their NNAPI type (so NNAPI ops can read them); anything
    else (int64 tensors, 0-d tensors, tuples, Python numbers) is a HostType.
    """
    if isinstance(ex, torch.Tensor) and ex.dim() > 0:
        if ex.dtype == torch.float32:
            return float_type(tuple(ex.shape))
        if ex.dtype == torch.int32:
            return int_type(tuple(ex.shape))
        if ex.dtype == torch.quint8 and ex.qscheme() == torch.per_tensor_affine:
            return TensorType(OperandCode.TENSOR_QUANT8_ASYMM, tuple(ex.shape),
                              Quant(ex.q_scale(), ex.q_zero_point()))
    if isinstance(ex, torch.Tensor):
        return HostType(f"{str(ex.dtype).removeprefix('torch.')}{list(ex.shape)}")
    return HostType(type(ex).__name__)


def _tuple_fields(t: tuple) -> tuple[str, ...]:
    """Field names, in order, of a namedtuple or of torch's structseq ``torch.return_types``."""
    if hasattr(t, "_fields"):
        return tuple(t._fields)
    names = [n for n in dir(type(t)) if not n.startswith(("_", "n_")) and n not in ("count", "index")]
    by_pos = {next((i for i, x in enumerate(t) if x is getattr(t, n)), -1): n for n in names}
    return tuple(by_pos.get(i, "") for i in range(len(t)))


def _host_op(ctx: Ctx, node: torch.fx.Node, mod: torch.nn.Module | None, reason: str,
             env: dict[torch.fx.Node, Any]) -> Value:
    """Emit a HostOp that calls ``node``'s original torch code on the CPU."""
    values: list[Value] = []
    examples: list[Any] = []

    def template(n: torch.fx.Node) -> Any:
        got = env[n]
        if isinstance(got, Value) and isinstance(got.type, TensorType) and (
                got.type.code == OperandCode.TENSOR_BOOL8):
            got = _bool_as_int(ctx.b, got)  # NNAPI returns no bool tensors; the call casts back
        if isinstance(got, Value):
            values.append(got)
            examples.append(n.meta.get(EXAMPLE))
            return ArgRef(len(values) - 1)
        return got

    args = torch.fx.node.map_arg(node.args, template)
    kwargs = torch.fx.node.map_arg(node.kwargs, template)
    target = node.target
    if target is getattr and examples and isinstance(examples[0], tuple):
        # A named field of a returned tuple (``torch.sort(x).values``): TorchScript sees a plain
        # tuple, so read the field by its index.
        fields = _tuple_fields(examples[0])
        if args[1] in fields:
            target, args = operator.getitem, (args[0], fields.index(args[1]))
    if isinstance(target, torch._ops.OpOverload):
        target = target.overloadpacket  # TorchScript calls aten ops by packet, not overload
    call = HostCall(kind=CallKind(node.op), target=target, args=tuple(args), kwargs=dict(kwargs),
                    module=mod, examples=tuple(examples), inplace=_is_inplace(node, mod))
    ex = node.meta.get(EXAMPLE)
    fn = ctx.b.loc.target if ctx.b.loc else str(target)
    op = ctx.b.op(HostOp, fn=fn, args=tuple(values), result_types=(host_type(ex),),
                  reason=reason, call=call)
    return op.result


def input_type(name: str, ex: torch.Tensor) -> TensorType:
    """IR type of a model input: float32, or quint8 with the example's scale and zero point."""
    if ex.dtype == torch.float32:
        return float_type(tuple(ex.shape), DimOrder.CONTIGUOUS)
    if ex.dtype == torch.quint8 and ex.qscheme() == torch.per_tensor_affine:
        return TensorType(OperandCode.TENSOR_QUANT8_ASYMM, tuple(ex.shape),
                          Quant(ex.q_scale(), ex.q_zero_point()))
    if ex.dtype == torch.int64 and ex.dim() > 0:  # indices: the wrapper casts (range-checked)
        return int_type(tuple(ex.shape))
    raise ConversionError(f"input {name!r} has dtype {ex.dtype}; float32, per-tensor quint8 and "
                          "int64 (indices) inputs are supported")


def _same_quant(t: TensorType, ex: torch.Tensor) -> bool:
    if t.quant is None:
        return False
    f32 = torch.tensor([t.quant.scale, ex.q_scale()], dtype=torch.float32)
    return bool(f32[0] == f32[1]) and t.quant.zero_point == ex.q_zero_point()


#: The NNAPI tensor type that carries each PyTorch dtype (int64 indices travel as int32).
_CARRIED = {torch.float32: OperandCode.TENSOR_FLOAT32, torch.bool: OperandCode.TENSOR_BOOL8,
            torch.int32: OperandCode.TENSOR_INT32, torch.int64: OperandCode.TENSOR_INT32}


def _check_result(node: torch.fx.Node, result: Any, ex: Any) -> None:
    """A lowering must reproduce the example's shape exactly; anything else is our bug."""
    if isinstance(result, Value):
        if not isinstance(ex, torch.Tensor):
            raise Refuse(f"produces a {type(ex).__name__}, not a tensor")
        if ex.dtype in (torch.quint8, torch.qint8):  # qint8: PT2E signed activations, FL4 (issue 11)
            if not _same_quant(result.type, ex):
                raise Refuse(f"PyTorch's output quantization (scale {ex.q_scale():.6g}, zero point "
                             f"{ex.q_zero_point()}) differs from what NNAPI's op produces "
                             f"({result.type})")
        elif _CARRIED.get(ex.dtype) != result.type.code:
            raise Refuse(f"produces dtype {ex.dtype}; NNAPI's op gives {result.type}")
        # NNAPI has no 0-d tensors: a PyTorch scalar tensor is carried as shape [1].
        if tuple(result.type.logical_shape) != (tuple(ex.shape) or (1,)):
            raise ConversionError(
                f"internal error lowering {node.name}: IR shape {result.type.logical_shape} "
                f"!= eager shape {tuple(ex.shape)}"
            )


def _outputs(
    b: Builder, cap: Captured, env: dict[torch.fx.Node, Any], inputs: list[Value]
) -> tuple[Leaf, ...]:
    consts = {c.results[0].id for c in b.ops if not c.inputs() and c.mnemonic == "constant"}
    leaves = []
    for leaf in cap.out_leaves:
        val = env[leaf] if isinstance(leaf, torch.fx.Node) else leaf
        if isinstance(val, Value):
            if val.id in consts:
                raise ConversionError("a model output is a constant tensor; nothing to compile")
            ex = leaf.meta.get(EXAMPLE) if isinstance(leaf, torch.fx.Node) else None
            scalar = isinstance(ex, torch.Tensor) and ex.dim() == 0
            cast = None
            if isinstance(val.type, TensorType) and val.type.code == OperandCode.TENSOR_BOOL8:
                val, cast = _bool_as_int(b, val), torch.bool  # the runtime returns no bool tensors
            elif isinstance(ex, torch.Tensor) and ex.dtype == torch.int64:
                cast = torch.int64  # carried as int32
            leaves.append(Leaf(LeafKind.VALUE, val, scalar=scalar, cast=cast))
        elif isinstance(val, torch.Tensor):
            raise ConversionError("a model output does not depend on the inputs; nothing to compile")
        else:
            leaves.append(Leaf(LeafKind.CONST, val))
    if not any(lf.kind is LeafKind.VALUE and lf.value not in inputs for lf in leaves):
        raise ConversionError("the model computes no tensor from its inputs")
    return tuple(leaves)


def _bool_as_int(b: Builder, v: Value) -> Value:
    """A BOOL8 value as int32 0 / 1 (SELECT between constants): the runtime returns no bool
    tensors, so the wrapper casts this back to bool."""
    shape = v.type.shape
    ones = b.const(torch.ones(shape, dtype=torch.int32))
    zeros = b.const(torch.zeros(shape, dtype=torch.int32))
    return b.emit(Select, cond=v, x=ones, y=zeros)
