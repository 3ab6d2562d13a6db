"""The converter registry: one entry per op family member, keyed by every spelling of the op.

A converter is registered once for all of an op's spellings: the functional form (``F.relu``),
the torch function (``torch.relu``, ``torch.relu_``), the tensor method (``"relu"``, ``"relu_"``),
the module class (``nn.ReLU``) and the ATen overloads torch.export emits (``aten.relu.default``).
Arguments of every spelling are bound to one canonical signature, so a converter is written once
for both capture dialects. "Can this node be lowered?" is the same code as "lower it": a converter
refuses by raising ``Refuse``, and the user sees every refusal at once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs
import torch

Key = Any  # a callable, a method name (str) or an nn.Module subclass


class Refuse(Exception):
    """Raised by a converter that cannot lower this node (the message is the reason)."""


class Misuse(Refuse):
    """A refusal that is the model's mistake (a layer left in training mode), not a missing
    lowering: it is reported as an error even where other refusals would run on the CPU."""


@attrs.frozen
class Entry:
    """One registered converter and the canonical signature its spellings bind to."""

    name: str
    fn: Callable[..., Any]
    signature: inspect.Signature
    module_args: dict[type, Callable[[torch.nn.Module], dict[str, Any]]]
    #: Checks its inputs' NNAPI types itself, so it may read int32 / bool tensors; other
    #: converters (written for float and quantized data) never see one.
    typed: bool = False

    def bind(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Bind a call's args to the canonical parameter names (``self`` aliases the first)."""
        params = list(self.signature.parameters)
        kwargs = dict(kwargs)
        if "self" in kwargs and "self" not in params:
            kwargs[params[0]] = kwargs.pop("self")
        if "inplace" not in params:
            kwargs.pop("inplace", None)  # in-place-ness is handled by the lowering loop
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise Refuse(f"unexpected arguments for {self.name}: {e}") from None
        bound.apply_defaults()
        return dict(bound.arguments)


REGISTRY: dict[Key, Entry] = {}


def converter(
    *keys: Key,
    sig: Callable[..., Any],
    modules: dict[type, Callable[[Any], dict[str, Any]]] | None = None,
    typed: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(ctx, args) -> value`` under every key and module class; returns ``fn``.

    ``sig`` is a function whose signature is the canonical one (its body is never called).
    ``modules`` maps a module class to a function giving the module's configuration as
    canonical keyword arguments (weights, stride, ...); the call's own args bind first.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        entry = Entry(fn.__name__, fn, inspect.signature(sig), dict(modules or {}), typed)
        # The same object may be reachable under two names (F.conv2d is torch.conv2d).
        unique = list(dict.fromkeys((*keys, *(modules or {}))))
        for key in unique:
            if key in REGISTRY:
                raise ValueError(f"converter for {key!r} registered twice "
                                 f"({REGISTRY[key].name} and {fn.__name__})")
            REGISTRY[key] = entry
        return fn

    return deco


def _public_names() -> dict[int, str]:
    """id(object) -> its public spelling (``F.relu``, ``torch.add``, ``nn.ReLU``, ``operator.add``)."""
    import operator

    import torch.nn.functional as F

    names: dict[int, str] = {}
    for prefix, ns in (("operator", operator), ("torch", torch), ("F", F), ("nn", torch.nn)):
        for n, obj in vars(ns).items():
            if not n.startswith("__") and (callable(obj) or isinstance(obj, type)):
                names.setdefault(id(obj), f"{prefix}.{n}")
    return names


_NAMES: dict[int, str] = {}


def key_name(key: Key) -> str:
    """Readable name of a registry key for docs and error messages."""
    if isinstance(key, str):
        return f"Tensor.{key}"
    if isinstance(key, torch._ops.OpOverload):
        return f"aten.{key._schema.name.split('::')[-1]}.{key._overloadname}"
    if not _NAMES:
        _NAMES.update(_public_names())
    if id(key) in _NAMES:
        return _NAMES[id(key)]
    if isinstance(key, type):
        return f"{key.__module__}.{key.__qualname__}"
    mod = getattr(key, "__module__", "") or ""
    name = getattr(key, "__qualname__", getattr(key, "__name__", repr(key)))
    mod = {"torch.nn.functional": "F", "_operator": "operator", "torch._C._nn": "F",
           "torch._C._VariableFunctions": "torch"}.get(mod, mod)
    return f"{mod}.{name}" if mod else name
