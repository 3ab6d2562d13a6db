"""Models that cannot be captured: script the module, compile its capturable children.

When neither torch.fx nor torch.export can capture a module (``if y.mean() > 0`` on tensor values,
loops whose count comes from data), its ``forward`` becomes TorchScript host code
(``torch.jit.script``) and each direct child is compiled on its own, recursively: a child that
cannot be captured either is treated the same way, all the way down. The compiled children are
swapped into a shallow copy of the module before it is scripted, so the NNAPI segments run where
the children ran. A child is compiled only when every call of it sees tensors of the same shapes
(the artifact is specialized on them); the others stay TorchScript as they are. Children that
only other branches call are found by also running variations of the example inputs (negated,
scaled, zero); a child no run reaches stays TorchScript, and explain() says so.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import attrs
import torch
from torch.utils import _pytree as pytree

from .backend.generated import define_class
from .errors import CaptureError, NnapiCompilerError
from .flops import counter
from .nested import dispatch_module, script, switch_methods


@attrs.frozen
class Scripted:
    """What happened to one module on the way: compiled (and how) or left as TorchScript."""

    path: str
    compiled: bool
    reason: str


@attrs.frozen
class Opaque:
    """A scripted module: the artifact's root, its compiled children and what happened to each."""

    script_module: torch.jit.ScriptModule
    children: tuple[tuple[str, Any], ...]  # (path, CompiledModel)
    log: tuple[Scripted, ...]
    nnapi_flops: int = 0  # FLOPs of the compiled children on the example inputs
    total_flops: int = 0


@attrs.define(eq=False)
class _Calls:
    args: list[tuple[Any, ...]] = attrs.field(factory=list)
    kwargs: bool = False


def _signature(args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Shapes and dtypes of a call made only of tensors (None if anything else is passed)."""
    if not all(isinstance(a, torch.Tensor) for a in args):
        return None
    return tuple((tuple(a.shape), a.dtype) for a in args)


def record_child_calls(model: torch.nn.Module, inputs: tuple) -> list[dict[str, _Calls]]:
    """Run ``model`` on the example inputs and on variations of them; per run, the positional
    arguments each direct child was called with."""
    runs: list[dict[str, _Calls]] = []
    hooks: list[Any] = []
    for name, child in _callables(model):
        def hook(_m: torch.nn.Module, args: tuple, kwargs: dict, name: str = name) -> None:
            c = runs[-1].setdefault(name, _Calls())
            c.args.append(tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a
                                for a in args))
            c.kwargs = c.kwargs or bool(kwargs)
        hooks.append(child.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            for i, probe in enumerate([inputs, *_probes(inputs)]):
                runs.append({})
                try:
                    model(*probe)
                except Exception:  # a variation the model rejects teaches nothing
                    if i == 0:
                        raise
                    runs.pop()
    finally:
        for h in hooks:
            h.remove()
    return runs


def _probes(inputs: tuple) -> list[tuple]:
    """Variations of the example inputs (negated, scaled, zero) that may take other branches of
    data-dependent control flow, so children called only there are found and compiled too."""
    def vary(f: Callable[[torch.Tensor], torch.Tensor]) -> tuple:
        return tuple(pytree.tree_map(lambda t: f(t) if isinstance(t, torch.Tensor)
                                     and t.is_floating_point() else t, x) for x in inputs)
    return [vary(lambda t: -t), vary(lambda t: t * 4.0), vary(torch.zeros_like)]


def compile_opaque(model: torch.nn.Module, inputs: tuple, capture_error: CaptureError,
                   compile_child: Callable[[torch.nn.Module, tuple], Any]) -> Opaque:
    """Script ``model`` with its capturable children compiled (``compile_child``, recursively)."""
    try:
        with torch.no_grad():
            model(*inputs)
    except Exception as e:  # the model does not run on its example inputs: nothing to script
        raise capture_error from e
    try:
        batch = {t.shape[0] for t in pytree.tree_leaves(inputs) if isinstance(t, torch.Tensor)
                 and t.dim() > 0}
        scripted, leaves, log = _open(model, inputs, compile_child, "", batch)
    except _Unscriptable as e:
        raise CaptureError(f"{capture_error}\n  torch.jit.script (to run it as host code): {e}") from e
    pick = _output_index(model, scripted, inputs)
    root = _root(scripted, [p for p, _ in leaves], pick)
    on_nnapi = [p for p, cm in leaves if cm.stats.get("segments")]
    return Opaque(root, tuple(leaves), tuple(log), *_flops(model, inputs, on_nnapi))


def _flops(model: torch.nn.Module, inputs: tuple, paths: list[str]) -> tuple[int, int]:
    """(FLOPs inside the compiled children, all FLOPs), as torch.utils.flop_counter counts them."""
    with torch.no_grad(), counter() as flops:
        model(*inputs)
    counts = {k: sum(v.values()) for k, v in flops.get_flop_counts().items()}
    modules = {re.sub(r"\.v\d+$", "", p) for p in paths}  # shape variants of one child
    root = type(model).__name__
    return sum(counts.get(f"{root}.{p}", 0) for p in modules), counts.get("Global", 0)


_CONTAINERS = (torch.nn.ModuleList, torch.nn.ModuleDict)


def _callables(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The submodules ``model`` calls directly: its children, with the elements of a ModuleList
    or ModuleDict (containers that are indexed, never called) in their place."""
    out = []
    for name, child in model.named_children():
        if isinstance(child, _CONTAINERS):
            out += [(f"{name}.{n}", c) for n, c in _callables(child)]
        else:
            out.append((name, child))
    return out


def _shallow(m: torch.nn.Module) -> torch.nn.Module:
    copied = copy.copy(m)
    copied._modules = dict(m._modules)  # children are swapped in the copy only
    return copied


def _swap(shell: torch.nn.Module, path: str, new: torch.nn.Module) -> None:
    """Put ``new`` at ``path`` in ``shell``, copying the containers on the way."""
    *dirs, last = path.split(".")
    node = shell
    for d in dirs:
        node._modules[d] = _shallow(node._modules[d])
        node = node._modules[d]
    node._modules[last] = new


def script_path(path: str) -> str:
    """``a.0.b`` as TorchScript reaches it: ``a[0].b`` (ModuleList elements are indexed)."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", path)


class _Unscriptable(Exception):
    """TorchScript cannot compile a module's forward (message: TorchScript's first line)."""


def _open(model: torch.nn.Module, inputs: tuple, compile_child: Callable[[torch.nn.Module, tuple], Any],
          prefix: str, batch: set[int]) -> tuple[torch.jit.ScriptModule, list[tuple[str, Any]],
                                                  list[Scripted]]:
    """Script a copy of ``model`` whose children are compiled where they can be.

    Returns the scripted copy, the compiled artifacts inside it by dotted path, and the log.
    """
    runs = record_child_calls(model, inputs)
    shell = _shallow(model)
    leaves: list[tuple[str, Any]] = []
    log: list[Scripted] = []
    for name, child in _callables(model):
        path = prefix + name
        swapped, why = _child(child, [r.get(name, _Calls()) for r in runs], compile_child, path,
                              leaves, log, batch)
        if swapped is not None:
            _swap(shell, name, swapped)
        log.append(Scripted(path, swapped is not None, why))
    try:
        return script(shell), leaves, log
    except Exception as e:  # TorchScript reports unscriptable Python in many exception types
        raise _Unscriptable(f"{type(e).__name__}: {str(e).strip().splitlines()[0]}") from e


def _counts_rows(signatures: frozenset, batch: set[int]) -> bool:
    """Does a child see inputs whose leading dim is a count (> 1, and not the model inputs'
    batch) rather than a batch?

    Inside code that could not be captured, such a dim usually comes from the data (detections
    after NMS), and the artifact is specialized on shapes: a different count would not run.
    """
    return any(shape and shape[0] > 1 and shape[0] not in batch
               for sig in signatures for shape, _ in sig)


def _child(child: torch.nn.Module, calls: list[_Calls], compile_child: Callable[..., Any], path: str,
           leaves: list[tuple[str, Any]], log: list[Scripted], batch: set[int]) -> tuple[Any, str]:
    """What replaces one child (None: it stays as it is) and why."""
    first = next((c.args[0] for c in calls if c.args), None)
    if first is None:
        return None, "never called on the example inputs (or their variations)"
    per_run = [frozenset(_signature(a) for a in c.args) for c in calls if c.args]
    tensors_only = not any(c.kwargs for c in calls) and None not in per_run[0]
    if tensors_only and _counts_rows(per_run[0], batch):
        return None, ("its leading dim (a count of boxes or rows) may depend on the data; it "
                      "stays on the CPU until dynamic shapes are supported")
    if tensors_only and len(set(per_run)) == 1:  # the same shapes whatever the data
        examples: dict[Any, tuple] = {}
        for c in calls:  # the example inputs' own call first: variations are only probes
            for a in c.args:
                examples.setdefault(_signature(a), a)
        try:
            variants = [compile_child(child, examples[sig]) for sig in sorted(examples, key=repr)]
        except NnapiCompilerError as e:
            return None, f"{type(e).__name__}: {str(e).splitlines()[0]}"
        for v in variants[:1]:  # a child scripted in turn: report its parts under its path
            log += [Scripted(f"{path}.{p}", ok, why) for p, ok, why in v.stats.get("scripted", ())]
        if len(variants) == 1:  # even with no NNAPI op, the artifact is scriptable host code
            leaves.append((path, variants[0]))
            return variants[0].script_module, f"{variants[0].stats['segments']} NNAPI segment(s)"
        leaves += [(f"{path}.v{i}", v) for i, v in enumerate(variants)]
        return dispatch_module([v.script_module for v in variants],
                               sorted(examples, key=repr)), f"{len(variants)} shape variants"
    if not tensors_only and next(child.children(), None) is not None:
        try:  # non-tensor arguments (an ImageList, a dict): open it up in turn
            scripted, inner, inner_log = _open(child, first, compile_child, path + ".", batch)
        except _Unscriptable as e:
            return None, f"not scriptable: {e}"
        log += inner_log
        if not inner:
            return None, "none of its children runs on NNAPI"
        leaves += inner
        return scripted, f"scripted; {len(inner)} compiled part(s) inside"
    return None, ("its input shapes depend on the data (dynamic shapes are not supported yet)"
                  if tensors_only else "called with keyword or non-tensor arguments")


def _output_index(model: torch.nn.Module, scripted: torch.jit.ScriptModule,
                  inputs: tuple) -> int | None:
    """Where eager's output sits in the scripted one, when scripting changes the structure.

    torchvision's detectors return ``detections`` in eager mode but ``(losses, detections)`` when
    scripted; the artifact must return what the original model returns.
    """
    with torch.no_grad():
        eager = model(*inputs)
        if not isinstance(scripted.forward.schema.returns[0].type, torch.TupleType) \
                or isinstance(eager, tuple):
            return None
        got = script(model)(*inputs)  # the model as is (its children need no NNAPI to run)
    want = pytree.tree_structure(eager)
    if pytree.tree_structure(got) == want:
        return None
    if isinstance(got, tuple):
        hits = [i for i, g in enumerate(got) if pytree.tree_structure(g) == want]
        if len(hits) == 1:
            return hits[0]
    raise CaptureError(f"the scripted {type(model).__name__} returns {pytree.tree_structure(got)}, "
                       f"not eager's {want}")


def _root(scripted: torch.jit.ScriptModule, compiled: list[str], pick: int | None) -> Any:
    """A wrapper with the original signature, the output structure and the CPU switches."""
    schema = scripted.forward.schema
    params = list(schema.arguments)[1:]  # after the module itself, whatever it is named
    sig = ", ".join(f"{a.name}: {a.type.annotation_str}"
                    + (f" = {a.default_value!r}" if a.has_default_value() else "") for a in params)
    call = f"self.model({', '.join(a.name for a in params)})"
    if pick is not None:
        call += f"[{pick}]"
    src = (
        "import torch\n"
        "from typing import Dict, List, Optional, Tuple\n"
        "from torch import Tensor\n\n\n"
        "class ScriptedModel(torch.nn.Module):\n"
        "    def __init__(self, model) -> None:\n"
        "        super().__init__()\n"
        "        self.model = model\n\n"
        f"    def forward(self, {sig}):\n"
        f"        return {call}\n\n"
        + switch_methods([script_path(f"model.{p}") for p in compiled])
    )
    return script(define_class(src, "ScriptedModel")(scripted))
