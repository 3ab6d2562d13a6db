"""Emit the shippable TorchScript module: the original forward signature and output structure,
input validation before NNAPI sees anything, and the NNAPI segment as a submodule.

The wrapper's ``forward`` is generated as Python source (registered with ``linecache`` so
TorchScript can read it, as torch.fx does) and scripted; the result saves with ``torch.jit.save``
and ``_save_for_lite_interpreter``.
"""

from __future__ import annotations

import linecache
import textwrap
from typing import Any

import torch
from torch.utils import _pytree as pytree

from ..frontend.lower import IOSpec, Leaf
from ..ir.codes import PreferenceCode
from ..ir.program import Program
from ..ir.types import DimOrder, TensorType
from .flatten import NnapiSegment
from .segment_module import OUT_FLOAT32, OUT_INT32, OUT_QUINT8, NnapiSegmentModule

_DTYPE_SRC = {torch.float32: "torch.float32", torch.quint8: "torch.quint8", torch.int32: "torch.int32"}
_counter = 0


def _out_kind(t: TensorType) -> int:
    return {"f32": OUT_FLOAT32, "i32": OUT_INT32, "u8": OUT_QUINT8}[str(t).split("[")[0]]


def segment_module(seg: NnapiSegment, preference: int, relax: bool) -> NnapiSegmentModule:
    outs = [v.type for v in seg.program.outputs]
    return NnapiSegmentModule(
        ser_model=seg.ser_model,
        weights=list(seg.weights),
        out_shapes=[list(t.shape) for t in outs],  # type: ignore[arg-type]
        out_kinds=[_out_kind(t) for t in outs],
        out_scales=[t.quant.scale if t.quant else 0.0 for t in outs],
        out_zero_points=[t.quant.zero_point if t.quant else 0 for t in outs],
        preference=preference,
        relax_f32_to_f16=relax,
    )


def _check_src(name: str, dtype: torch.dtype, shape: tuple[int, ...], t: TensorType) -> str:
    dt = _DTYPE_SRC[dtype]
    quant = ""
    if t.quant is not None:  # the runtime takes scale/zero point from the tensor: check them
        s, zp = t.quant.scale, t.quant.zero_point
        quant = textwrap.dedent(f"""\
            if abs({name}.q_scale() - {s!r}) > {s!r} * 1e-6 or {name}.q_zero_point() != {zp}:
                raise ValueError("input '{name}' must be quantized with scale {s!r} and zero point {zp}")
        """)
    return quant + textwrap.dedent(f"""\
        if {name}.dtype != {dt}:
            raise ValueError("input '{name}' must have dtype {dtype}")
        if {name}.dim() != {len(shape)}:
            raise ValueError("input '{name}' must have rank {len(shape)}, got " + str({name}.dim()))
        if {name}.size() != {list(shape)}:
            raise ValueError("input '{name}' must have shape {list(shape)}, got " + str({name}.size()))
    """)


def _leaf_src(leaf: Leaf, names: tuple[str, ...], nhwc_out: set[int]) -> str:
    if leaf.kind == "out":
        if leaf.scalar:
            return f"_nnapi_outs[{leaf.index}].reshape([])"
        if leaf.index in nhwc_out:  # a channels_last view: no copy
            return f"_nnapi_outs[{leaf.index}].permute(0, 3, 1, 2)"
        return f"_nnapi_outs[{leaf.index}]"
    if leaf.kind == "in":
        return names[leaf.index]
    return repr(leaf.value)


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


def wrapper_source(io: IOSpec, cls_name: str, program: Program) -> str:
    names = io.input_names
    params = ", ".join(f"{n}: torch.Tensor" for n in names)
    checks = "".join(_check_src(n, d, s, v.type) for n, d, s, v in zip(
        names, io.input_dtypes, io.input_shapes, program.inputs, strict=True))
    # NHWC inputs: free for channels_last tensors, one host copy for NCHW ones.
    args = ", ".join(
        f"{n}.permute(0, 2, 3, 1).contiguous()" if v.type.dim_order is DimOrder.NHWC
        else f"{n}.contiguous()"
        for n, v in zip(names, program.inputs, strict=True)
    )
    nhwc_out = {i for i, v in enumerate(program.outputs) if v.type.dim_order is DimOrder.NHWC}
    ret = _structure_src(io.out_spec, [_leaf_src(leaf, names, nhwc_out) for leaf in io.leaves])
    body = checks + f"_nnapi_outs = self.segment0([{args}])\nreturn {ret}\n"
    return (
        "import torch\n\n\n"
        f"class {cls_name}(torch.nn.Module):\n"
        "    def __init__(self, segment0: torch.nn.Module) -> None:\n"
        "        super().__init__()\n"
        "        self.segment0 = segment0\n\n"
        f"    def forward(self, {params}):\n"
        + textwrap.indent(body, " " * 8)
    )


def build_script_module(io: IOSpec, seg: NnapiSegment,
                        preference: int = PreferenceCode.PREFER_SUSTAINED_SPEED,
                        relax: bool = False) -> torch.jit.ScriptModule:
    """Script the wrapper around the segment module."""
    global _counter
    _counter += 1
    cls_name = "NnapiCompiledModel"
    src = wrapper_source(io, cls_name, seg.program)
    filename = f"<nnapi_compiler-wrapper-{_counter}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(src, filename, "exec"), namespace)
    wrapper = namespace[cls_name](segment_module(seg, int(preference), relax))
    return torch.jit.script(wrapper)
