"""Rewrite a PT2E-quantized export graph (Q/DQ around float ops) into calls on quantized tensors.

``convert_pt2e`` leaves ``dequantize_per_tensor -> op -> [relu] -> quantize_per_tensor``
patterns whose meaning is "run ``op`` in float on dequantized inputs, quantize the result".
This pass folds each pattern into one node the converters lower to a quantized NNAPI op:

- data movement, pools and ReLU whose output keeps the input's parameters run directly on the
  quantized tensor (as eager-mode quantized models do);
- everything else becomes ``quantized_call(op, post, scale, zero_point, dtype, *args)``, whose
  eager meaning is exactly that reference: dequantize, run ``op`` (and ``post``), quantize;
- int8 weights (per tensor or per channel) become quantized tensor constants;
- leftover quantize/dequantize nodes become ``quantize`` / ``torch.dequantize``.

Every rewritten node computes what the PT2E reference computes, so the example values recorded
on the graph afterwards are the reference's.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx

# torch's own registration of the quantized_decomposed ops that convert_pt2e emits (not torchao).
from torch.ao.quantization.fx._decomposed import quantized_decomposed_lib  # noqa: F401
from torch.fx import Node
from torch.utils import _pytree as pytree

from .capture import Captured, Dialect, _input_names, _record_examples
from .inline import inline_higher_order

_decomposed = torch.ops.quantized_decomposed
aten = torch.ops.aten

QUANT_DTYPES = {torch.uint8: torch.quint8, torch.int8: torch.qint8}
_RANGES = {torch.uint8: (0, 255), torch.int8: (-128, 127)}
# Ops that keep their input's scale and zero point on a quantized tensor (checked in eager).
PASS_THROUGH = {
    aten.max_pool2d.default, aten.avg_pool2d.default, aten.adaptive_avg_pool2d.default,
    aten.mean.dim, aten.flatten.using_ints, aten.view.default, aten.reshape.default,
    aten.permute.default, aten.transpose.int, aten.contiguous.default, aten.clone.default,
    aten.squeeze.dim, aten.unsqueeze.default, aten.dropout.default, aten.dropout_.default,
    aten.relu.default,
    aten.relu_.default, aten.hardtanh.default, aten.hardtanh_.default,
    aten.upsample_nearest2d.vec, aten.constant_pad_nd.default, aten.cat.default,
    aten.chunk.default, aten.split.Tensor, aten.split_with_sizes.default, aten.unbind.int,
    operator.getitem,
}
# In-place spellings run out of place on quantized tensors: the reference mutated a
# dequantized copy, never the quantized value other consumers read.
_OUT_OF_PLACE = {aten.relu_.default: aten.relu.default, aten.hardtanh_.default: aten.hardtanh.default,
                 aten.dropout_.default: aten.dropout.default}
# ReLU / ReLU6 that NNAPI fuses into the op before them.
FUSABLE_POST = {aten.relu.default, aten.relu_.default, aten.hardtanh.default, aten.hardtanh_.default}


def _targets(*names: str) -> set[Any]:
    return {getattr(_decomposed, n).default for n in names if hasattr(_decomposed, n)}


Q = _targets("quantize_per_tensor")
DQ = _targets("dequantize_per_tensor")
DQ_CHANNEL = _targets("dequantize_per_channel")


def has_qdq(model: Any) -> bool:
    """Is ``model`` an fx graph with PT2E quantize/dequantize nodes (convert_pt2e output)?"""
    if not isinstance(model, torch.fx.GraphModule):
        return False
    return any(n.op == "call_function" and n.target in Q | DQ | DQ_CHANNEL for n in model.graph.nodes)


def quantized_call(fn: Callable[..., Any], post: Callable[..., Any] | None, scale: float,
                   zero_point: int, dtype: torch.dtype, *args: Any, **kwargs: Any) -> torch.Tensor:
    """The PT2E reference of one quantized op: dequantize inputs, ``fn``, ``post``, quantize."""

    def deq(t: Any) -> Any:
        return t.dequantize() if isinstance(t, torch.Tensor) and t.is_quantized else t

    y = fn(*pytree.tree_map(deq, args), **pytree.tree_map(deq, kwargs))
    if post is not None:
        y = post(y, 0.0, 6.0) if post in (aten.hardtanh.default, aten.hardtanh_.default) else post(y)
    return torch.quantize_per_tensor(y, scale, zero_point, dtype)


def quantize(x: torch.Tensor, scale: float, zero_point: int, dtype: torch.dtype) -> torch.Tensor:
    """A leftover quantize node (uint8 or, from Android 11, int8 activations)."""
    return torch.quantize_per_tensor(x, scale, zero_point, dtype)


def _qparams(n: Node) -> tuple[float, int, torch.dtype] | None:
    """(scale, zero point, quantized dtype) of a full-range per-tensor Q or DQ node."""
    if len(n.args) < 6 or not isinstance(n.args[1], float | int) or n.args[5] not in QUANT_DTYPES:
        return None
    if (n.args[3], n.args[4]) != _RANGES[n.args[5]]:
        return None  # a restricted range clamps where NNAPI's 8-bit ops would not
    return float(n.args[1]), int(n.args[2]), QUANT_DTYPES[n.args[5]]


def _same(a: tuple[float, int, torch.dtype] | None, b: tuple[float, int, torch.dtype] | None) -> bool:
    if a is None or b is None:
        return False
    f32 = torch.tensor([a[0], b[0]], dtype=torch.float32)
    return bool(f32[0] == f32[1]) and a[1:] == b[1:]


class _Rewriter:
    """One pass over a graph copy: fold Q/DQ patterns in order, then the leftovers."""

    def __init__(self, gm: torch.fx.GraphModule) -> None:
        self.gm = gm
        self.g = gm.graph
        self.consts: dict[Node, Node] = {}

    def _attr(self, n: Node) -> torch.Tensor | None:
        if n.op != "get_attr":
            return None
        obj: Any = self.gm
        for part in str(n.target).split("."):
            obj = getattr(obj, part)
        return obj if isinstance(obj, torch.Tensor) else None

    def quantized_const(self, dq: Node) -> Node | None:
        """A get_attr of the quantized tensor an int8/uint8 weight's DQ node stands for."""
        if dq in self.consts:
            return self.consts[dq]
        ints = self._attr(dq.args[0]) if isinstance(dq.args[0], Node) else None
        if ints is None or ints.dtype not in QUANT_DTYPES:
            return None
        if dq.target in DQ:
            qp = _qparams(dq) or (float(dq.args[1]), int(dq.args[2]), QUANT_DTYPES[ints.dtype])
            q = torch._make_per_tensor_quantized_tensor(ints, qp[0], qp[1])
        else:
            scales, zps = (self._attr(a) if isinstance(a, Node) else None for a in dq.args[1:3])
            if scales is None or zps is None:
                return None
            q = torch._make_per_channel_quantized_tensor(ints, scales.double(), zps.long(),
                                                         int(dq.args[3]))
        name = f"_nnc_qweight{len(self.consts)}"
        self.gm.register_buffer(name, q)
        with self.g.inserting_before(dq):
            self.consts[dq] = self.g.get_attr(name)
        return self.consts[dq]

    def _act_source(self, a: Any) -> Node | None:
        """The quantized producer behind an activation DQ argument (None if ``a`` is not one)."""
        if isinstance(a, Node) and a.target in DQ and isinstance(a.args[0], Node) \
                and self._attr(a.args[0]) is None and _qparams(a) is not None:
            return a.args[0]
        return None

    def _has_dq_input(self, n: Node) -> bool:
        return n.op == "call_function" and any(self._act_source(a) is not None
                                               for a in pytree.tree_leaves((n.args, n.kwargs)))

    def _map_args(self, n: Node) -> tuple[tuple, dict]:
        def swap(a: Any) -> Any:
            if not isinstance(a, Node):
                return a
            src = self._act_source(a)
            if src is not None:
                return src
            if a.target in DQ | DQ_CHANNEL:
                return self.quantized_const(a) or a
            return a

        return pytree.tree_map(swap, n.args), pytree.tree_map(swap, n.kwargs)

    def fuse(self, q: Node) -> bool:
        """Fold ``dq -> op [-> relu/relu6] -> q`` into one node; False if ``q`` is no such end."""
        qp = _qparams(q)
        src = q.args[0]
        if qp is None or not isinstance(src, Node) or len(src.users) != 1:
            return False
        op, post = src, None
        if not self._has_dq_input(src) and src.target in FUSABLE_POST and is_relu_or_relu6(src):
            op, post = src.args[0], src
            if not isinstance(op, Node) or len(op.users) != 1:
                return False
        if not self._has_dq_input(op):
            return False
        args, kwargs = self._map_args(op)
        with self.g.inserting_before(q):
            if post is None and op.target in PASS_THROUGH and self._shares(op, qp):
                new = self.g.call_function(_OUT_OF_PLACE.get(op.target, op.target), args, kwargs)
            else:
                new = self.g.call_function(quantized_call, (op.target, post.target if post else None,
                                                            *qp, *args), kwargs)
        new.meta.update({k: v for k, v in op.meta.items() if k in ("stack_trace", "nn_module_stack")})
        q.replace_all_uses_with(new)
        name = op.name
        for n in (q, post, op):
            if n is not None and not n.users:
                self.g.erase_node(n)
        if op.graph is not self.g or op not in self.g.nodes:
            new._rename(name)  # refusals, warnings and explain() name the user's op
        return True

    def _shares(self, op: Node, qp: tuple[float, int, torch.dtype]) -> bool:
        srcs = [a for a in pytree.tree_leaves((op.args, op.kwargs)) if isinstance(a, Node)]
        return all(a.target in DQ and self._act_source(a) is not None and _same(_qparams(a), qp)
                   for a in srcs)

    def fuse_multi_output(self, op: Node) -> bool:
        """chunk/split/unbind whose every ``getitem`` ends in a Q sharing the input's params."""
        if op.target not in PASS_THROUGH or not self._has_dq_input(op):
            return False
        qs = []
        for u in op.users:
            if u.target is not operator.getitem or len(u.users) != 1:
                return False
            q = next(iter(u.users))
            qp = _qparams(q) if q.target in Q else None
            if qp is None or not self._shares(op, qp):
                return False
            qs.append(q)
        args, kwargs = self._map_args(op)
        op.args, op.kwargs = args, kwargs
        for q in qs:
            q.replace_all_uses_with(q.args[0])
            self.g.erase_node(q)
        return True

    def run(self) -> None:
        for n in list(self.g.nodes):
            if n.op != "call_function" or n.graph is not self.g:
                continue
            if n.target in Q:
                self.fuse(n)
            elif any(u.target is operator.getitem for u in n.users):
                self.fuse_multi_output(n)
        self._leftovers()
        self.g.eliminate_dead_code()
        self.g.lint()
        self.gm.recompile()

    def _leftovers(self) -> None:
        """Remaining Q nodes quantize; DQ nodes of computed values dequantize."""
        for n in list(self.g.nodes):
            if n.target in Q and _qparams(n) is not None:
                scale, zp, dtype = _qparams(n)  # type: ignore[misc]
                with self.g.inserting_before(n):
                    new = self.g.call_function(quantize, (n.args[0], scale, zp, dtype))
            elif self._act_source(n) is not None:
                with self.g.inserting_before(n):
                    new = self.g.call_function(torch.dequantize, (n.args[0],))
            else:
                continue
            new.meta.update(n.meta)
            n.replace_all_uses_with(new)
            self.g.erase_node(n)


def is_relu_or_relu6(n: Node) -> bool:
    """ReLU, or hardtanh clamping to [0, 6] (ReLU6): the activations NNAPI ops fuse."""
    if n.target in (aten.relu.default, aten.relu_.default):
        return True
    lo = n.args[1] if len(n.args) > 1 else n.kwargs.get("min_val", -1.0)
    hi = n.args[2] if len(n.args) > 2 else n.kwargs.get("max_val", 1.0)
    return float(lo) == 0.0 and float(hi) == 6.0


def rewrite(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of ``gm`` with its Q/DQ patterns folded (``gm`` itself is left unchanged)."""
    new = torch.fx.GraphModule(gm, copy.deepcopy(gm.graph))
    new.meta.update(gm.meta)
    _Rewriter(new).run()
    return new


def capture_pt2e(gm: torch.fx.GraphModule, inputs: tuple) -> Captured:
    """Capture a convert_pt2e graph as it is (no retracing): rewrite, then record examples."""
    new = rewrite(gm)
    inline_higher_order(new)
    _record_examples(new, inputs)
    out = next(n for n in new.graph.nodes if n.op == "output").args[0]
    info = getattr(new.graph._codegen, "pytree_info", None)
    if info is not None and info.out_spec is not None:
        leaves, spec = list(out), info.out_spec
    else:
        leaves, spec = pytree.tree_flatten(out)
    return Captured(new, Dialect.EXPORT, _input_names(new, len(inputs)), spec, leaves)


def graph_module_of(model: Any) -> Any:
    """An ExportedProgram's GraphModule (``model`` itself for anything else)."""
    return model.module() if isinstance(model, torch.export.ExportedProgram) else model
