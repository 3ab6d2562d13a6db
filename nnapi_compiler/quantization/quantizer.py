"""NnapiQuantizer: annotates an exported graph with what NNAPI runs quantized at a target."""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
from torch.fx import GraphModule, Node
from torchao.quantization.pt2e.quantizer import (
    QuantizationAnnotation,
    QuantizationSpecBase,
    Quantizer,
    SharedQuantizationSpec,
)
from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY

from ..frontend.qdq import is_relu_or_relu6
from ..ir.codes import MIN_RUNTIME_LEVEL, parse_target
from .specs import NnapiSpecs

aten = torch.ops.aten

CONV = {aten.conv2d.default, aten.conv_transpose2d.input, aten.linear.default}
BATCH_NORM = {aten.batch_norm.default}  # still in the graph under prepare_qat_pt2e
BINARY = {aten.add.Tensor, aten.add_.Tensor, aten.mul.Tensor, aten.mul_.Tensor}
# Activations NNAPI fuses into CONV_2D / FULLY_CONNECTED / ADD / MUL (ReLU, ReLU6).
FUSED_ACT = {aten.relu.default, aten.relu_.default, aten.hardtanh.default, aten.hardtanh_.default}
FIXED = {aten.sigmoid.default: "logistic", aten.sigmoid_.default: "logistic",
         aten.tanh.default: "tanh", aten.tanh_.default: "tanh",
         aten.softmax.int: "softmax", aten._softmax.default: "softmax"}
# Ops whose quantized output must keep the input's scale and zero point in NNAPI (or does
# so for free: data movement, max, average).
SHARED = {
    aten.max_pool2d.default, aten.avg_pool2d.default, aten.adaptive_avg_pool2d.default,
    aten.mean.dim, aten.flatten.using_ints, aten.view.default, aten.reshape.default,
    aten.permute.default, aten.transpose.int, aten.contiguous.default, aten.clone.default,
    aten.squeeze.dim, aten.unsqueeze.default, aten.dropout.default, aten.dropout_.default,
    aten.relu.default, aten.relu_.default, aten.hardtanh.default, aten.hardtanh_.default,
    aten.upsample_nearest2d.vec, aten.pad.default, aten.constant_pad_nd.default,
}
MULTI_OUT = {aten.chunk.default, aten.split.Tensor, aten.split_with_sizes.default,
             aten.unbind.int}
CAT = {aten.cat.default, aten.concat.default}
SILU = {aten.silu.default, aten.silu_.default}
# Activations with their own output range (integer HARD_SWISH at FL4, float islands else).
FREE = {aten.hardswish.default, aten.hardswish_.default, aten.hardsigmoid.default,
        aten.hardsigmoid_.default, aten.leaky_relu.default, aten.leaky_relu_.default, aten.gelu.default}


def _annotated(n: Node) -> bool:
    ann = n.meta.get(Q_ANNOTATION_KEY)
    return ann is not None and ann._annotated


def _mark(n: Node, inputs: dict[Node, QuantizationSpecBase | None] | None = None,
          output: QuantizationSpecBase | None = None) -> None:
    n.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(input_qspec_map=inputs or {},
                                                      output_qspec=output, _annotated=True)


def _sole_user(n: Node, targets: set) -> Node | None:
    users = list(n.users)
    if len(users) == 1 and users[0].op == "call_function" and users[0].target in targets \
            and not _annotated(users[0]):
        return users[0]
    return None


def _tensor_inputs(n: Node) -> list[Node]:
    args = n.args[0] if n.target in CAT else n.args
    return [a for a in args if isinstance(a, Node) and isinstance(a.meta.get("val"), torch.Tensor)
            and a.meta["val"].is_floating_point()]


class NnapiQuantizer(Quantizer):
    """Annotates conv/transposed conv/linear, add/mul, concatenation, pools, data movement and activations
    the way NNAPI runs them quantized at ``target`` (an Android version or feature level).

    Activations are asymmetric 8-bit per tensor (uint8; int8 allowed from Android 11 / FL4),
    weights symmetric int8 per tensor (PyTorch Mobile's runtime cannot pass per-channel
    parameters), bias int32 at input_scale x weight_scale. Concatenation, pools and data
    movement share their input's parameters; LOGISTIC, TANH and SOFTMAX get NNAPI's fixed ones.
    ``is_qat=True`` uses fake quantizers for ``prepare_qat_pt2e``.
    """

    def __init__(self, target: str | int = "android-10", *, is_qat: bool = False,
                 activation_dtype: torch.dtype = torch.uint8) -> None:
        super().__init__()
        self.level = parse_target(target)
        if self.level < MIN_RUNTIME_LEVEL:
            raise ValueError(f"target {target!r} has no NNAPI runtime (Android 10 or newer needed)")
        if activation_dtype not in (torch.uint8, torch.int8):
            raise ValueError(f"activation_dtype must be torch.uint8 or torch.int8, got {activation_dtype}")
        if activation_dtype == torch.int8 and self.level < 4:
            raise ValueError("signed int8 activations (QUANT8_ASYMM_SIGNED) need Android 11 (FL4)")
        self.specs = NnapiSpecs(activation_dtype, is_qat)

    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        """SiLU as x * sigmoid(x): LOGISTIC and MUL run in 8 bits; SiLU would be a float island."""
        g = model.graph
        for n in list(g.nodes):
            if n.op != "call_function" or n.target not in SILU or not isinstance(n.args[0], Node):
                continue
            x = n.args[0]
            if n.target is aten.silu_.default and len(x.users) > 1:
                continue  # in place: other users of x must see the result; leave it
            with g.inserting_before(n):
                sig = g.call_function(aten.sigmoid.default, (x,))
                mul = g.call_function(aten.mul.Tensor, (x, sig))
            sig.meta.update(n.meta)
            mul.meta.update(n.meta)
            n.replace_all_uses_with(mul)
            g.erase_node(n)
        model.recompile()
        return model

    def annotate(self, model: GraphModule) -> GraphModule:
        rules: list[tuple[set, Callable[[Node], None]]] = [
            (CONV, self._conv), (BINARY, self._binary), (CAT, self._cat),
            (set(FIXED), self._fixed), (FREE, self._free), (MULTI_OUT, self._multi),
            (SHARED, self._shared),
        ]
        for n in model.graph.nodes:
            if n.op != "call_function" or _annotated(n) or not _tensor_inputs(n):
                continue
            for targets, rule in rules:
                if n.target in targets:
                    rule(n)
                    break
        return model

    def validate(self, model: GraphModule) -> None:
        return None

    def _act_in(self, a: Node) -> QuantizationSpecBase:
        """An input edge reuses its producer's output parameters when those are annotated
        (fixed LOGISTIC output feeding MUL, ...): a fresh observer would requantize."""
        ann = a.meta.get(Q_ANNOTATION_KEY)
        if ann is not None and ann.output_qspec is not None:
            return SharedQuantizationSpec(a)
        return self.specs.act()

    def _tail(self, n: Node) -> Node:
        """The last node of ``n`` [-> batch_norm] [-> relu/relu6] that NNAPI runs as one op."""
        last = n
        bn = _sole_user(last, BATCH_NORM) if n.target in CONV else None
        if bn is not None:
            _mark(bn)
            last = bn
        act = _sole_user(last, FUSED_ACT)
        if act is not None and is_relu_or_relu6(act):
            _mark(act)
            last = act
        return last

    def _conv(self, n: Node) -> None:
        x, w = n.args[0], n.args[1]
        if not isinstance(w, Node) or w.meta.get("val") is None or w.meta["val"].dim() not in (2, 4):
            return
        s = self.specs
        inputs: dict[Node, QuantizationSpecBase | None] = {x: self._act_in(x), w: s.weight()}
        bias = n.args[2] if len(n.args) > 2 else None
        if isinstance(bias, Node):
            inputs[bias] = s.bias(x, w, n)
        last = self._tail(n)
        _mark(n, inputs, s.act() if last is n else None)
        if last is not n:
            _mark(last, output=s.act())

    def _binary(self, n: Node) -> None:
        ins = _tensor_inputs(n)
        last = self._tail(n)
        _mark(n, {a: self._act_in(a) for a in ins}, self.specs.act() if last is n else None)
        if last is not n:
            _mark(last, output=self.specs.act())

    def _cat(self, n: Node) -> None:
        ins = _tensor_inputs(n)
        first = ins[0]
        shared = SharedQuantizationSpec((first, n))
        # An input repeated (torch.cat([x, x])) keeps its first spec: sharing it with itself
        # would be a cycle, which torchao's prepare follows until RecursionError.
        _mark(n, {first: self._act_in(first), **{a: shared for a in ins[1:] if a is not first}},
              shared)

    def _fixed(self, n: Node) -> None:
        x = _tensor_inputs(n)[0]
        _mark(n, {x: self._act_in(x)}, self.specs.fixed(FIXED[n.target]))

    def _free(self, n: Node) -> None:
        x = _tensor_inputs(n)[0]
        _mark(n, {x: self._act_in(x)}, self.specs.act())

    def _shared(self, n: Node) -> None:
        x = _tensor_inputs(n)[0]
        _mark(n, {x: self._act_in(x)}, SharedQuantizationSpec((x, n)))

    def _multi(self, n: Node) -> None:
        """chunk / split / unbind: each ``getitem`` output shares the input's parameters."""
        x = _tensor_inputs(n)[0]
        _mark(n, {x: self._act_in(x)})
        for u in n.users:
            if u.op == "call_function" and u.target is operator.getitem:
                _mark(u, output=SharedQuantizationSpec((x, n)))
