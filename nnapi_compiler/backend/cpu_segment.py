"""The CPU path of one NNAPI segment: TorchScript generated from its flat model, calling the
scriptable reference kernels the virtual device runs, op by op, on the segment's own weights.

Why generated source rather than a data-driven loop over an op table: every kernel has its own
typed signature (lists, tuples, dtypes, flags), which TorchScript can only call statically; a
table-driven interpreter would need the arguments boxed in containers TorchScript cannot type.
The generated ``forward`` instead is one straight-line call per NNAPI op with its hyper-parameters
as literals, bound at build time by the same binders the interpreter uses, so it reads like the
model and each line is registered with ``linecache`` for TorchScript's error messages.

Weights are read from ``self.weights``, the very tensor objects of ``NnapiSegment.weights``, so a
module holding this and the NNAPI segment stores each weight once; immediate tensors (<= 128
bytes in the ser_model) are kept in ``self.consts``. The result of ``forward(args)`` is what
``NnapiSegmentModule.forward(args)`` returns: NNAPI shapes (NHWC), float32 / int32 tensors, and
quantized outputs as torch.quint8 with the output operand's scale and zero point. A relaxed
(``relax_f32_to_f16``) segment is computed in float32 here, which NNAPI itself allows.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch

from ..ir.codes import OpCode, OperandCode
from ..ir.flat import FlatModel, schedule
from ..reference import KERNELS, KernelCall
from ..reference.common import TORCH_DTYPES
from ..reference.decode import decode_value
from ..reference.registry import In
from .flatten import NnapiSegment
from .generated import define_class
from .ser_model import BufferRef, read_refs

_QUANT8 = frozenset({OperandCode.TENSOR_QUANT8_ASYMM, OperandCode.TENSOR_QUANT8_ASYMM_SIGNED})


def _literal(v: Any) -> str:
    """TorchScript source for a static kernel argument."""
    if isinstance(v, bool | str):
        return repr(v)
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else f'float("{v}")'
    if isinstance(v, torch.dtype):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + "".join(_literal(x) + ", " for x in v) + ")"
    raise TypeError(f"cannot emit {v!r} as a TorchScript literal")


def _fn_name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__.rsplit('.', 1)[-1]}_{fn.__name__}"


@attrs.define(eq=False)
class _Gen:
    """Source of one segment's ``forward``, built operand by operand."""

    model: FlatModel
    refs: dict[int, BufferRef]
    weights: Sequence[torch.Tensor]
    consts: list[torch.Tensor] = attrs.field(factory=list)
    exprs: dict[int, str] = attrs.field(factory=dict)  # operand -> TorchScript expression
    lines: list[str] = attrs.field(factory=list)
    fns: dict[str, Callable[..., Any]] = attrs.field(factory=dict)

    def _weight(self, k: int) -> tuple[str, torch.Tensor]:
        """Expression and value of operand ``k`` read from its weight buffer, without a copy."""
        desc, ref = self.model.operands[k], self.refs[k]
        w, dtype, dims = self.weights[ref.buffer], TORCH_DTYPES[desc.code], list(desc.dims)
        src = f"self.weights[{ref.buffer}]"
        whole = ref.offset == 0 and ref.length == w.numel() * w.element_size()
        if w.dtype == dtype and whole:
            value = w if list(w.shape) == dims else w.reshape(dims)
            return (src if list(w.shape) == dims else f"{src}.reshape({dims})"), value
        size = w.element_size()
        if w.dtype != dtype or ref.offset % size or ref.length != size * math.prod(dims):
            # TorchScript cannot reinterpret bytes (Tensor.view(dtype) is not scriptable).
            what = f"operand {k} {desc.describe()}"
            raise ValueError(f"{what} is not a {dtype} range of weight buffer {ref.buffer}")
        start, end = ref.offset // size, (ref.offset + ref.length) // size
        value = w.reshape(-1)[start:end].reshape(dims)
        return f"{src}.reshape(-1)[{start}:{end}].reshape({dims})", value

    def bind_value(self, k: int) -> Any:
        """What the binder sees for operand ``k``: its constant value, or a meta tensor of its
        declared type when it is computed at run time (binders read only its shape and dtype)."""
        desc = self.model.operands[k]
        if k in self.refs:
            return self._weight(k)[1]
        if k in self.model.values:
            return decode_value(desc, self.model.values[k])
        if not desc.is_tensor:
            raise ValueError(f"scalar operand {k} has no value")
        if any(d == 0 for d in desc.dims):
            raise ValueError(f"operand {k} {desc.describe()}: the CPU path needs static shapes")
        return torch.empty(list(desc.dims), dtype=TORCH_DTYPES[desc.code], device="meta")

    def expr(self, k: int) -> str:
        """TorchScript expression of operand ``k``; constants become locals on first use."""
        if k in self.exprs:
            return self.exprs[k]
        if k in self.refs:
            src = self._weight(k)[0]
        elif k in self.model.values:
            value = decode_value(self.model.operands[k], self.model.values[k])
            if not isinstance(value, torch.Tensor):
                return _literal(value)
            self.consts.append(value)
            src = f"self.consts[{len(self.consts) - 1}]"
        else:
            raise ValueError(f"operand {k} is read before it is written")
        self.lines.append(f"c{k} = {src}")
        self.exprs[k] = f"c{k}"
        return self.exprs[k]

    def arg(self, a: Any, inputs: tuple[int, ...]) -> str:
        if isinstance(a, In):
            return self.expr(inputs[a.index])
        if isinstance(a, list) and any(isinstance(x, In) for x in a):
            return "[" + ", ".join(self.arg(x, inputs) for x in a) + "]"
        return _literal(a)

    def operation(self, i: int) -> None:
        op = self.model.operations[i]
        name = OpCode(op.code).name
        if op.code not in KERNELS:
            raise ValueError(f"op #{i} {name}: no reference kernel")
        call = KernelCall(
            op=op.code,
            inputs=tuple(self.bind_value(k) for k in op.inputs),
            input_descs=tuple(self.model.operands[k] for k in op.inputs),
            output_descs=tuple(self.model.operands[k] for k in op.outputs),
        )
        try:
            b = KERNELS[op.code].fn(call)
        except Exception as e:
            raise ValueError(f"op #{i} {name}: cannot bind for the CPU path: {e}") from e
        fname = _fn_name(b.fn)
        self.fns[fname] = b.fn
        call_src = f"{fname}({', '.join(self.arg(a, op.inputs) for a in b.args)})"
        self.lines.append(f"# op #{i} {name}")
        results = [f"_r{i}[{j}]" for j in range(len(op.outputs))] if b.multi else [call_src]
        if b.multi:
            self.lines.append(f"_r{i} = {call_src}")
        for k, r in zip(op.outputs, results, strict=True):
            cast = ".to(torch.float16)" if self.model.operands[k].code == OperandCode.TENSOR_FLOAT16 else ""
            self.lines.append(f"v{k} = {r}{cast}.contiguous()")
            self.exprs[k] = f"v{k}"


def cpu_source(
    model: FlatModel,
    refs: dict[int, BufferRef],
    weights: Sequence[torch.Tensor],
    out_quant: Sequence[tuple[float, int] | None],
    cls_name: str,
) -> tuple[str, list[torch.Tensor], dict[str, Callable[..., Any]]]:
    """(module source, immediate tensors for ``consts``, kernel functions it calls by name)."""
    g = _Gen(model, refs, weights)
    n = len(model.inputs)
    g.lines.append(f"if len(args) != {n}:")
    g.lines.append(f'    raise ValueError("the segment takes {n} inputs, got " + str(len(args)))')
    for i, k in enumerate(model.inputs):
        quant = model.operands[k].code in _QUANT8
        g.lines.append(f"v{k} = args[{i}]" + (".int_repr()" if quant else ""))
        g.exprs[k] = f"v{k}"
    for i in schedule(model, set(refs)):
        g.operation(i)
    outs = []
    for k, q in zip(model.outputs, out_quant, strict=True):
        e = g.expr(k)
        outs.append(e if q is None else f"torch._make_per_tensor_quantized_tensor({e}, {q[0]!r}, {q[1]})")
    g.lines.append(f"return [{', '.join(outs)}]")
    src = (
        "import torch\nfrom typing import List\n\n\n"
        f"class {cls_name}(torch.nn.Module):\n"
        "    weights: List[torch.Tensor]\n"
        "    consts: List[torch.Tensor]\n\n"
        "    def __init__(self, weights: List[torch.Tensor], consts: List[torch.Tensor]) -> None:\n"
        "        super().__init__()\n"
        "        self.weights = weights\n"
        "        self.consts = consts\n\n"
        "    def forward(self, args: List[torch.Tensor]) -> List[torch.Tensor]:\n"
        + textwrap.indent("\n".join(g.lines) + "\n", " " * 8)
    )
    return src, g.consts, g.fns


def build_cpu_module(
    model: FlatModel,
    refs: dict[int, BufferRef],
    weights: Sequence[torch.Tensor],
    out_quant: Sequence[tuple[float, int] | None] | None = None,
) -> torch.nn.Module:
    """The (unscripted, scriptable) CPU module of a flat model as a device receives it.

    ``refs`` says which operands are read from ``weights``; other constants are in
    ``model.values``. ``out_quant`` gives each output's (scale, zero point) for quantized outputs;
    by default the output operands' own.
    """
    if out_quant is None:
        out_quant = [
            (d.scale, d.zero_point) if d.code in _QUANT8 else None
            for d in (model.operands[k] for k in model.outputs)
        ]
    cls_name = "NnapiCpuSegment"
    src, consts, fns = cpu_source(model, refs, weights, out_quant, cls_name)
    return define_class(src, cls_name, dict(fns))(list(weights), consts)


def _out_quant(seg: NnapiSegment, model: FlatModel) -> list[tuple[float, int] | None]:
    """Output quantization exactly as the NNAPI segment module allocates its outputs."""
    out: list[tuple[float, int] | None] = []
    for k, v in zip(model.outputs, seg.program.outputs, strict=True):
        q = v.type.quant
        out.append((q.scale, q.zero_point) if model.operands[k].code in _QUANT8 and q else None)
    return out


def build_cpu_segment(seg: NnapiSegment) -> torch.nn.Module:
    """A scriptable module whose ``forward(args: List[Tensor]) -> List[Tensor]`` computes what
    the NNAPI segment module computes, on the CPU, holding ``seg.weights`` (not copies)."""
    model, refs = read_refs(seg.ser_model, list(seg.weights))
    return build_cpu_module(model, refs, seg.weights, _out_quant(seg, model))
