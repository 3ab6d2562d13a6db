"""Emit the shippable TorchScript module from the model level (``ir.model.ModelGraph``).

The wrapper's ``forward`` keeps the original signature and output structure, validates inputs
before NNAPI sees anything, then walks the host block: segment calls (NNAPI, or the CPU twin when
``use_cpu()`` was called), host calls, and the output structure. Values live in PyTorch's logical
layout; an NHWC segment output becomes a channels_last view (``permute``, no copy) and an NHWC
segment input is permuted back (no copy for a channels_last tensor). The source is generated
(registered with ``linecache`` so TorchScript can read it, as torch.fx does) and scripted; the
result saves with ``torch.jit.save`` and ``_save_for_lite_interpreter``.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable
from typing import Any

import attrs
import torch
from torch.utils import _pytree as pytree

from ..ir.codes import PreferenceCode
from ..ir.model import Leaf, LeafKind, ModelGraph, Placement, SegmentCall
from ..ir.ops.host import HostOp
from ..ir.types import DimOrder, TensorType, Value
from .dynamic_io import check_src, cpu_segment, out_shapes_src
from .flatten import NnapiSegment, flatten
from .generated import define_class
from .host_call import host_module, returned_type
from .segment_module import OUT_FLOAT32, OUT_INT32, OUT_QUINT8, NnapiSegmentModule

_DTYPE_SRC = {torch.float32: "torch.float32", torch.quint8: "torch.quint8", torch.int32: "torch.int32",
              torch.int64: "torch.int64"}


def quiet_jit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a TorchScript API without its deprecation warnings.

    torch 2.14 deprecates TorchScript and the lite interpreter, but they are exactly what the
    PyTorch Mobile runtime in shipped apps loads; the warning is about our internals, not the
    user's code (docs/user_guide.md says why once).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*(TorchScript|torch.jit|lite interpreter).*")
        return fn(*args, **kwargs)


def _out_kind(t: TensorType) -> int:
    return {"f32": OUT_FLOAT32, "i32": OUT_INT32, "u8": OUT_QUINT8}[str(t).split("[")[0]]


def segment_module(seg: NnapiSegment, preference: int, relax: bool) -> NnapiSegmentModule:
    outs = [v.type for v in seg.program.outputs]
    return NnapiSegmentModule(
        ser_model=seg.ser_model,
        weights=list(seg.weights),
        out_shapes=[[0 if d is None else d for d in t.shape] for t in outs],  # 0: dynamic
        out_kinds=[_out_kind(t) for t in outs],
        out_scales=[t.quant.scale if t.quant else 0.0 for t in outs],
        out_zero_points=[t.quant.zero_point if t.quant else 0 for t in outs],
        preference=preference,
        relax_f32_to_f16=relax,
    )


def _check_src(name: str, dtype: torch.dtype, shape: tuple[int, ...], t: Any) -> str:
    dt = _DTYPE_SRC[dtype]
    quant = ""
    if isinstance(t, TensorType) and t.quant is not None:  # the runtime reads them off the tensor
        s, zp = t.quant.scale, t.quant.zero_point
        quant = textwrap.dedent(f"""\
            if abs({name}.q_scale() - {s!r}) > {s!r} * 1e-6 or {name}.q_zero_point() != {zp}:
                raise ValueError("input '{name}' must be quantized with scale {s!r} and zero point {zp}")
        """)
    return textwrap.dedent(f"""\
        if {name}.dtype != {dt}:
            raise ValueError("input '{name}' must have dtype {dtype}")
        if {name}.dim() != {len(shape)}:
            raise ValueError("input '{name}' must have rank {len(shape)}, got " + str({name}.dim()))
        if {name}.size() != {list(shape)}:
            raise ValueError("input '{name}' must have shape {list(shape)}, got " + str({name}.size()))
    """) + quant + (_narrow_src(name) if dtype == torch.int64 else "")


def _narrow_src(name: str) -> str:
    """int64 indices to the int32 NNAPI carries, refusing values that would wrap around."""
    return textwrap.dedent(f"""\
        _{name}_i32 = {name}.to(torch.int32)
        if not torch.equal(_{name}_i32.to(torch.int64), {name}):
            raise ValueError("input '{name}' has values outside the int32 range")
        {name} = _{name}_i32
    """)


def _structure_src(spec: pytree.TreeSpec, leaves: list[str]) -> str:
    """Source rebuilding the output structure (tensor, tuple, list, dict, nested) from leaves."""
    it = iter(leaves)

    def build(s: pytree.TreeSpec) -> str:
        if s.is_leaf():
            return next(it)
        kids = [build(c) for c in s.children()]
        if issubclass(s.type, tuple):
            return "(" + ", ".join(kids) + ("," if len(kids) == 1 else "") + ")"
        if issubclass(s.type, list):
            return "[" + ", ".join(kids) + "]"
        if issubclass(s.type, dict):
            return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(s.context, kids, strict=True)) + "}"
        raise TypeError(f"output container {s.type.__name__} is not supported")

    return build(spec)


@attrs.define(eq=False)
class _Emitter:
    """Generates the wrapper's forward from the host block."""

    graph: ModelGraph
    cpu_twins: bool
    dynamic: Any = None  # nnapi_compiler.dynamic.DynamicModel, for dynamic input dims
    names: dict[int, str] = attrs.field(factory=dict)
    lines: list[str] = attrs.field(factory=list)
    nhwc_views: set[int] = attrs.field(factory=set)  # values that are channels_last views

    def __attrs_post_init__(self) -> None:
        self.names.update({v.id: n for v, n in zip(self.graph.inputs, self.graph.io.input_names,
                                                   strict=True)})
        self.names.update({vid: f"self.c{vid}" for vid in self.graph.consts})

    def name(self, v: Value) -> str:
        return self.names.setdefault(v.id, f"v{v.id}")

    def to_segment(self, v: Value) -> str:
        """A segment argument in NNAPI's physical layout."""
        if v.type.dim_order is DimOrder.NHWC:
            return f"{self.name(v)}.permute(0, 2, 3, 1).contiguous()"
        return f"{self.name(v)}.contiguous()"

    def segment(self, step: SegmentCall) -> None:
        seg = self.graph.segments[step.index]
        args = "[" + ", ".join(self.to_segment(v) for v in step.args) + "]"
        nnapi, cpu = f"self.segment{step.index}({args})", f"self.cpu_segment{step.index}({args})"
        shapes = out_shapes_src(step, self.graph, self.dynamic) if self.dynamic else None
        if shapes is not None and seg.placement is Placement.NNAPI:
            nnapi = f"self.segment{step.index}.run_sized({args}, {shapes})"
        if seg.placement is Placement.CPU:
            self.lines.append(f"_outs = {cpu}")
        elif self.cpu_twins:
            self.lines += ["if self.cpu:", f"    _outs = {cpu}", "else:", f"    _outs = {nnapi}"]
        else:
            self.lines.append(f"_outs = {nnapi}")
        for j, r in enumerate(step.results):
            view = ".permute(0, 3, 1, 2)" if r.type.dim_order is DimOrder.NHWC else ""
            if view:
                self.nhwc_views.add(r.id)
            self.lines.append(f"{self.name(r)} = _outs[{j}]{view}")

    def host(self, op: HostOp, k: int) -> None:
        # ``view`` needs PyTorch's contiguous strides, which an NHWC segment output (a
        # channels_last view) lacks: eager ran it on a contiguous tensor.
        target = op.call.target if op.call is not None else None
        view = target == "view" or getattr(target, "_qualified_op_name", "") == "aten::view"
        args = ", ".join(self.name(v) + (".contiguous()" if view and v.type.dim_order is DimOrder.NHWC
                                         else "") for v in op.args)
        self.lines.append(f"{self.name(op.result)} = self.host{k}({args})")

    def leaf(self, leaf: Leaf) -> str:
        if leaf.kind is LeafKind.CONST:
            return repr(leaf.value)
        src = self.name(leaf.value)
        if leaf.value.id in self.nhwc_views:  # eager's memory format: see channels_last_flag
            src = f"({src} if _channels_last else {src}.contiguous())"
        if leaf.cast is not None:
            src = f"{src}.to({leaf.cast})"
        return f"{src}.reshape([])" if leaf.scalar else src

    def channels_last_flag(self) -> None:
        """``_channels_last``: an image input arrived channels_last (PyTorch then returns
        channels_last images, so NHWC outputs stay views); otherwise outputs are made contiguous,
        as eager returns them."""
        io = self.graph.io
        self.lines.append("_channels_last = False")
        for n, s in zip(io.input_names, io.input_shapes, strict=True):
            if len(s) == 4:
                self.lines += [f"if {n}.is_contiguous(memory_format=torch.channels_last) and "
                               f"not {n}.is_contiguous():", "    _channels_last = True"]

    def forward(self) -> str:
        io = self.graph.io
        if io.input_dims is not None:
            self.lines += check_src(self.graph)
        for n, d, s, v in zip(io.input_names, io.input_dtypes, io.input_shapes, self.graph.inputs,
                              strict=True):
            if io.input_dims is None:
                self.lines += _check_src(n, d, s, v.type).splitlines()
        hosts = 0
        for step in self.graph.block:
            if isinstance(step, SegmentCall):
                self.segment(step)
            else:
                self.host(step, hosts)
                hosts += 1
        if any(lf.kind is not LeafKind.CONST and lf.value.id in self.nhwc_views
               for lf in io.leaves):
            self.channels_last_flag()
        self.lines.append(f"return {_structure_src(io.out_spec, [self.leaf(lf) for lf in io.leaves])}")
        params = ", ".join(f"{n}: torch.Tensor" for n in io.input_names)
        return f"def forward(self, {params}):\n" + textwrap.indent("\n".join(self.lines), "    ")


_CLASS = '''import torch


class NnapiCompiledModel(torch.nn.Module):
    cpu: bool

    def __init__(self, parts, consts, cpu: bool) -> None:
        super().__init__()
        for name, module in parts.items():
            setattr(self, name, module)
        for name, tensor in consts.items():
            self.register_buffer(name, tensor)
        self.cpu = cpu

    @torch.jit.export
    def use_cpu(self) -> None:
        """Run every segment on the CPU from now on (call it when NNAPI fails to initialize)."""
{use_cpu}

    @torch.jit.export
    def init_nnapi(self) -> None:
        """Create every NNAPI compilation now (raises if NNAPI is unavailable)."""
{init}

'''


def wrapper_source(graph: ModelGraph, cpu_twins: bool, nested: tuple[str, ...] = (),
                   dynamic: Any = None) -> str:
    """The wrapper class; ``nested`` are paths of host-call modules that hold compiled artifacts
    of their own (compiled ``torch.cond`` branches), which ``use_cpu``/``init_nnapi`` reach too."""
    nnapi = graph.nnapi_segments()
    use_cpu = ("        self.cpu = True" if cpu_twins or not nnapi else
               '        raise RuntimeError("compiled with cpu_fallback=False: no CPU path")')
    use_cpu += "".join(f"\n        self.{p}.use_cpu()" for p in nested)
    init = "\n".join([f"        self.segment{i}.init()" for i in nnapi]
                     + [f"        self.{p}.init_nnapi()" for p in nested]) or "        pass"
    head = _CLASS.format(use_cpu=use_cpu, init=init)
    return head + textwrap.indent(_Emitter(graph, cpu_twins, dynamic).forward(), "    ") + "\n"


@attrs.frozen
class Artifact:
    """The scripted wrapper plus the NNAPI segments it serialized (for tools and tests)."""

    script_module: torch.jit.ScriptModule
    segments: tuple[NnapiSegment, ...]  # one per graph segment, NNAPI or CPU


def build_artifact(graph: ModelGraph,
                   preference: int = PreferenceCode.PREFER_SUSTAINED_SPEED,
                   relax: bool = False, cpu_fallback: bool = True, dynamic: Any = None) -> Artifact:
    """Serialize every segment and script the wrapper around them.

    ``dynamic`` (``nnapi_compiler.dynamic.DynamicModel``): the graph has dynamic input dims.
    """
    pool: dict[str, torch.Tensor] = {}
    pools: list[dict[str, torch.Tensor]] = [pool] + [{} for _ in (dynamic.samples[1:] if dynamic else ())]
    parts: dict[str, torch.nn.Module] = {}
    flat = tuple(flatten(s.program, pool) for s in graph.segments)
    for i, (seg, fl) in enumerate(zip(graph.segments, flat, strict=True)):
        if seg.placement is Placement.NNAPI:
            parts[f"segment{i}"] = segment_module(fl, int(preference), relax)
        if seg.placement is Placement.CPU or cpu_fallback:
            from .cpu_segment import build_cpu_segment

            parts[f"cpu_segment{i}"] = (cpu_segment(i, dynamic, pools) if dynamic else
                                        build_cpu_segment(fl))
    returns: dict[int, Any] = {}  # value id -> TorchScript type a host call returned
    nested: list[str] = []
    for k, op in enumerate(graph.host_ops()):
        scripted = quiet_jit(torch.jit.script, host_module(op, returns))
        returns[op.result.id] = returned_type(scripted)
        parts[f"host{k}"] = scripted
        module = op.call.module if op.call else None
        if module is not None and hasattr(module, "use_cpu") and hasattr(module, "init_nnapi"):
            nested.append(f"host{k}.m")
    consts = {f"c{vid}": t.contiguous() for vid, t in graph.consts.items()}
    cpu_twins = cpu_fallback and bool(graph.nnapi_segments())
    src = wrapper_source(graph, cpu_twins, tuple(nested), dynamic)
    wrapper = define_class(src, "NnapiCompiledModel")(parts, consts, not graph.nnapi_segments())
    return Artifact(quiet_jit(torch.jit.script, wrapper), flat)

