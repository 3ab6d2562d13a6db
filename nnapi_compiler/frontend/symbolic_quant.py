"""Symbolic shapes through eager-mode quantized nodes, computed on a float twin.

torch's fake tensors cannot hold quantized tensors, so ``frontend/symbolic.py`` runs an
eager-quantized model (QuantStub/DeQuantStub, ``torch.ao.nn.quantized`` modules, the
``quantized::`` ops a QFunctional becomes) with *float* fake tensors in place of quantized ones.
Shape-polymorphic ops (flatten, pooling, mean, relu, ...) run on them as they are. A node that
only accepts quantized tensors (its kernel or module fails on the float twin) takes the shape
rule of its float counterpart here: a quantized conv is ``F.conv2d`` with a weight of its shape,
``quantized::add`` broadcasts like ``torch.add``, a Quantize is the identity, and so on. A
PT2E-quantized graph, once ``frontend/qdq.py`` has folded its Q/DQ patterns, runs its
``quantized_call`` nodes' float op on the float twins.

A quantized node with no rule here is an error naming it (never a guessed shape). The shapes
found this way are also checked against every concrete sample (``dynamic.py``), so a wrong rule
cannot go unnoticed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.ao.nn.intrinsic.quantized as nniq
import torch.ao.nn.quantized as nnq
import torch.fx
import torch.nn.functional as F
from torch.utils import _pytree as pytree

from . import qdq

_HARDTANH = (torch.ops.aten.hardtanh.default, torch.ops.aten.hardtanh_.default)

#: Quantized modules whose output has the shape of their (first) input.
_SAME_SHAPE = (nnq.Quantize, nnq.DeQuantize, nnq.ReLU6, nnq.Hardswish, nnq.ELU, nnq.LeakyReLU,
               nnq.Sigmoid, nnq.Softmax, nnq.BatchNorm2d, nnq.BatchNorm3d, nnq.LayerNorm,
               nnq.GroupNorm, nnq.InstanceNorm1d, nnq.InstanceNorm2d, nnq.InstanceNorm3d,
               nnq.Dropout, nnq.PReLU, nniq.BNReLU2d, nniq.BNReLU3d)
_CONV = {nnq.Conv1d: F.conv1d, nnq.Conv2d: F.conv2d, nnq.Conv3d: F.conv3d}
_TCONV = {nnq.ConvTranspose1d: F.conv_transpose1d, nnq.ConvTranspose2d: F.conv_transpose2d,
          nnq.ConvTranspose3d: F.conv_transpose3d}
_LINEAR = (nnq.Linear, nniq.LinearReLU, nniq.LinearLeakyReLU, nniq.LinearTanh)

#: ``quantized::`` ops (what QFunctional calls become): elementwise on two tensors, or unary
#: with scalar arguments.
_BINARY = {"add", "add_relu", "mul", "mul_relu", "add_out", "mul_out"}
_UNARY = {"add_scalar", "add_scalar_relu", "mul_scalar", "mul_scalar_relu", "relu6", "hardswish",
          "sigmoid", "leaky_relu", "elu", "hardtanh", "clamp", "threshold", "celu", "gelu",
          "softmax", "layer_norm", "group_norm", "instance_norm", "batch_norm2d",
          "batch_norm2d_relu", "prelu"}


def _module(m: torch.nn.Module, args: tuple) -> Any:
    """The float-twin result of quantized module ``m`` (weights of its shape, from its
    attributes: unpacking a packed weight would make a quantized tensor under the fake mode)."""
    x = args[0]
    if isinstance(m, _SAME_SHAPE):
        return x
    for cls, fn in _CONV.items():
        if isinstance(m, cls):  # intrinsic ConvReLU / ConvAdd subclass the plain conv
            w = torch.zeros(m.out_channels, m.in_channels // m.groups, *m.kernel_size)
            pad = m.padding if isinstance(m.padding, str) else tuple(m.padding)
            return fn(x, w, None, m.stride, pad, m.dilation, m.groups)
    for cls, fn in _TCONV.items():
        if isinstance(m, cls):
            w = torch.zeros(m.in_channels, m.out_channels // m.groups, *m.kernel_size)
            return fn(x, w, None, m.stride, m.padding, m.output_padding, m.groups, m.dilation)
    if isinstance(m, _LINEAR):
        return F.linear(x, torch.zeros(m.out_features, m.in_features))
    return None


def _quantized_op(name: str, args: tuple, kwargs: dict) -> Any:
    if name in _BINARY:
        return torch.add(args[0], args[1])
    if name in _UNARY:
        return args[0]
    if name == "cat":
        return torch.cat(list(args[0]), kwargs.get("dim", args[1] if len(args) > 1 else 0))
    return None


def float_twin(gm: torch.fx.GraphModule, n: torch.fx.Node, args: tuple, kwargs: dict) -> Any:
    """The float-twin result of node ``n`` (fake tensors stand for quantized ones), or None."""
    if n.op == "call_module":
        return _module(gm.get_submodule(str(n.target)), args)
    if n.op == "call_method" and n.target == "dequantize":
        return args[0]
    if n.op != "call_function":
        return None
    if n.target is qdq.quantized_call:  # PT2E: fn (and post) on dequantized inputs, quantized
        fn, post = args[0], args[1]
        y = fn(*pytree.tree_map(_twin, args[5:]), **pytree.tree_map(_twin, kwargs))
        return y if post is None else post(y) if post not in _HARDTANH else post(y, 0.0, 6.0)
    if n.target is qdq.quantize:
        return args[0]
    if n.target in (torch.quantize_per_tensor, torch.quantize_per_channel):
        return args[0]
    if n.target is torch.dequantize:
        return args[0]
    if isinstance(n.target, torch._ops.OpOverload):
        packet = n.target.overloadpacket
    elif isinstance(n.target, torch._ops.OpOverloadPacket):
        packet = n.target
    else:
        return None
    ns, _, name = packet._qualified_op_name.partition("::")
    return _quantized_op(name, args, kwargs) if ns == "quantized" else None


def _twin(t: Any) -> Any:
    """A float fake tensor for a real quantized one (a PT2E weight); anything else as it is."""
    return torch.zeros(t.shape) if isinstance(t, torch.Tensor) and t.is_quantized else t


def float_input(x: torch.Tensor) -> torch.Tensor:
    """The float tensor of ``x``'s shape standing for a quantized model input."""
    return torch.zeros(x.shape) if x.is_quantized else x
