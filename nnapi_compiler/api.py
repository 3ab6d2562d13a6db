"""Public entry points: ``compile`` (capture → lower → passes → partition → backend).

``compile`` returns a CompiledModel that is called like the original model, exposes the
TorchScript artifact that ships to the phone, and saves it for PyTorch Mobile's lite interpreter.
Nodes NNAPI cannot run at the target become host code on the CPU between NNAPI segments; the
artifact also carries a CPU twin of every segment, selected by ``use_cpu()``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import attrs
import torch

from .backend.artifact import build_artifact
from .compiled import CompiledModel
from .cond import compile_conds
from .dynamic import DynamicModel, lower_dynamic
from .errors import CaptureError, ConversionError, guarded
from .frontend import converters  # noqa: F401 - registers every converter
from .frontend.capture import FLOPS, Captured, _input_names, capture
from .frontend.dynamic_spec import parse_dynamic
from .frontend.lower import lower
from .frontend.qdq import capture_pt2e, graph_module_of, has_qdq  # PT2E (issue 11)
from .ir.codes import MIN_RUNTIME_LEVEL, PreferenceCode, parse_target
from .ir.flat import layout_conversions
from .ir.model import ModelGraph, Placement
from .ir.program import Program
from .ir.verifier import verify
from .opaque import Opaque, compile_opaque
from .passes.partition import Partition
from .passes.pipeline import DEFAULT_PIPELINE, default_pipeline
from .report import Report

#: Default ``min_segment_ops``: a segment of a single op (a lone ADD or RESHAPE between two host
#: calls) pays a whole NNAPI execution (input and output copies, a driver round trip) for one op;
#: it runs on the CPU instead, unless it is the whole model.
MIN_SEGMENT_OPS = 2
FALLBACKS = ("cpu", "error")


def _level(target: str | int) -> int:
    if not isinstance(target, str | int) or isinstance(target, bool):
        raise ConversionError(f"target must be a string like 'android-10' or an int, got {target!r}")
    try:
        return parse_target(target)
    except ValueError as e:
        raise ConversionError(str(e)) from None


def _prepare(model: torch.nn.Module, example_inputs: Any) -> tuple:
    if not isinstance(model, torch.nn.Module):
        raise ConversionError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    if model.training and not has_qdq(model):  # PT2E: convert_pt2e output is marked training
        raise ConversionError("the model is in training mode; call model.eval() before compiling")
    for i, x in enumerate(example_inputs):
        if isinstance(x, torch.Tensor) and x.dim() == 0:
            raise ConversionError(
                f"example input {i} has shape {list(x.shape)}: NNAPI reads rank 0 as 'unknown', "
                "so the model could never run; use a tensor of rank >= 1 (a size-0 dim marks a "
                "dynamic dim, as in torch.backends._nnapi)")
    return example_inputs


def parse_preference(value: PreferenceCode | int | str) -> int:
    """NNAPI's execution preference (``Compilation_setPreference``) from a PreferenceCode, its
    int value, or its name (``"low_power"``, ``"fast_single_answer"``, ``"sustained_speed"``,
    with or without ``PREFER_``, any case)."""
    names = {p.name.removeprefix("PREFER_").lower(): int(p) for p in PreferenceCode}
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "_").removeprefix("prefer_")
        if key in names:
            return names[key]
    elif isinstance(value, int) and not isinstance(value, bool) and value in names.values():
        return int(value)
    raise ConversionError(f"preference must be one of {sorted(names)} (or PreferenceCode / "
                          f"{sorted(names.values())}), got {value!r}")


@attrs.frozen
class Options:
    """Everything that shapes what compile() produces (explain() takes the same)."""

    target: str | int = "android-10"
    fallback: str = "cpu"
    max_segments: int | None = None
    min_segment_ops: int = MIN_SEGMENT_OPS
    cpu_fallback: bool = True
    preference: int = attrs.field(default=int(PreferenceCode.PREFER_SUSTAINED_SPEED),
                                  converter=parse_preference)
    relax_f32_to_f16: bool = False
    pipeline: str = DEFAULT_PIPELINE
    verify_each_pass: bool = False
    dynamic_shapes: Any = attrs.field(default=None, eq=False)  # torch.export's convention

    def __attrs_post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ConversionError(f"fallback must be one of {FALLBACKS}, got {self.fallback!r}")
        if self.max_segments is not None and (not isinstance(self.max_segments, int)
                                              or self.max_segments < 0):
            raise ConversionError(f"max_segments must be None or an int >= 0, got "
                                  f"{self.max_segments!r}")
        if not isinstance(self.min_segment_ops, int) or self.min_segment_ops < 0:
            raise ConversionError(f"min_segment_ops must be an int >= 0, got {self.min_segment_ops!r}")
        if not isinstance(self.relax_f32_to_f16, bool):
            raise ConversionError(f"relax_f32_to_f16 must be a bool, got {self.relax_f32_to_f16!r}")


@attrs.frozen
class Lowered:
    """The compiler's state just before the backend: what compile() and explain() share."""

    cap: Captured
    program: Program
    graph: ModelGraph
    level: int
    cpu_only: bool
    children: tuple[tuple[str, CompiledModel], ...] = ()  # compiled torch.cond branches
    dynamic: DynamicModel | None = None  # dynamic dims: the samples' graphs and symbolic sizes


def _levels(opts: Options) -> tuple[int, bool]:
    """(the IR's feature level, whether the artifact is CPU-only) for ``opts.target``."""
    level = _level(opts.target)
    if level >= MIN_RUNTIME_LEVEL:
        return level, False
    warnings.warn(
        f"target {opts.target!r} is feature level {level}: PyTorch Mobile's NNAPI runtime calls "
        f"Android 10 (API 29) functions, so this artifact runs entirely on the CPU",
        UserWarning, stacklevel=4)
    return MIN_RUNTIME_LEVEL, True  # the IR the CPU kernels run; no NNAPI call is ever made


def _child_compiler(opts: Options) -> Any:
    """compile() for a submodule or a cond branch, with the same options, warnings kept quiet
    (the parent reports what runs where)."""
    def child(module: torch.nn.Module, inputs: tuple) -> CompiledModel:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _compile(module.eval(), inputs, attrs.evolve(opts, dynamic_shapes=None))
    return child


def lower_and_partition(model: torch.nn.Module, example_inputs: Any, opts: Options) -> Lowered:
    model = graph_module_of(model)  # PT2E: accept an ExportedProgram
    example_inputs = _prepare(model, example_inputs)
    level, cpu_only = _levels(opts)
    dyn = parse_dynamic(example_inputs, _input_names(model, len(example_inputs)),
                        opts.dynamic_shapes)
    if dyn is not None:
        return _lower_dynamic(model, dyn, opts, level, cpu_only)
    cap = capture_pt2e(model, example_inputs) if has_qdq(model) else capture(model, example_inputs)  # PT2E
    branches = [(f"cond_branch{i}", cm)
                for i, cm in enumerate(compile_conds(cap, _child_compiler(opts)))]
    raw, io = lower(cap, level, opts.fallback)
    program = default_pipeline(opts.verify_each_pass, opts.pipeline).run(raw)
    verify(program, check_level=False)
    renamed = dict(zip([v.id for v in io.output_values()], program.outputs, strict=True))
    inputs = {v.id: v for v in program.inputs}
    io = io.map_values(lambda v: renamed.get(v.id, inputs.get(v.id, v)))
    part = Partition(min_segment_ops=opts.min_segment_ops, max_segments=opts.max_segments,
                     nnapi=not cpu_only)
    graph = part.run(program, io)
    for seg in graph.segments:
        if seg.placement is Placement.NNAPI:
            verify(seg.program)
    return Lowered(cap, program, graph, level, cpu_only, tuple(branches))


def _lower_dynamic(model: torch.nn.Module, dyn: Any, opts: Options, level: int,
                   cpu_only: bool) -> Lowered:
    """lower_and_partition for a model with dynamic dims (see ``nnapi_compiler/dynamic.py``)."""
    cap = capture_pt2e(model, dyn.samples[0]) if has_qdq(model) else capture(model, dyn.samples[0], dyn)
    part = Partition(min_segment_ops=opts.min_segment_ops, max_segments=opts.max_segments,
                     nnapi=not cpu_only)
    pipe = default_pipeline(opts.verify_each_pass, opts.pipeline)
    program, graph, dm = lower_dynamic(cap, dyn, level, opts.fallback, pipe, part, cpu_only)
    return Lowered(cap, program, graph, level, cpu_only, (), dm)


def node_flops(cap: Captured, graph: ModelGraph) -> tuple[int, int]:
    """(FLOPs of nodes that run on NNAPI, FLOPs of all nodes) on the example inputs."""
    on_cpu = {op.loc.node for op in graph.host_ops() if op.loc}
    for seg in graph.segments:
        if seg.placement is Placement.CPU:
            on_cpu |= {op.loc.node for op in seg.program.compute_ops() if op.loc}
    total = nnapi = 0
    for node in cap.gm.graph.nodes:
        f = int(node.meta.get(FLOPS, 0))
        total += f
        nnapi += f if node.name not in on_cpu else 0
    return nnapi, total


@guarded
def compile(
    model: torch.nn.Module,
    example_inputs: Any,
    target: str | int = "android-10",
    *,
    fallback: str = "cpu",
    max_segments: int | None = None,
    min_segment_ops: int = MIN_SEGMENT_OPS,
    cpu_fallback: bool = True,
    preference: PreferenceCode | int | str = PreferenceCode.PREFER_SUSTAINED_SPEED,
    relax_f32_to_f16: bool = False,
    pipeline: str = DEFAULT_PIPELINE,
    verify_each_pass: bool = False,
    dynamic_shapes: Any = None,
) -> CompiledModel:
    """Compile ``model`` for NNAPI at ``target`` (an Android version or ``"flN"``).

    Shapes are specialized on ``example_inputs``; the artifact checks them at run time. With
    ``fallback="cpu"`` (default) nodes NNAPI cannot run become CPU host code (a warning lists
    them), and a model that cannot be captured at all is scripted with its capturable children
    compiled; ``fallback="error"`` raises UnsupportedError listing every such node instead.
    ``max_segments`` keeps only the largest NNAPI segments; ``min_segment_ops`` runs smaller
    segments on the CPU; ``cpu_fallback`` embeds the CPU path behind ``use_cpu()``.
    ``preference`` is passed to NNAPI's ``Compilation_setPreference`` ("low_power",
    "fast_single_answer" or "sustained_speed", the default); ``relax_f32_to_f16=True`` lets NNAPI
    compute float32 ops with float16 range and precision
    (``Model_relaxComputationFloat32toFloat16``).
    ``dynamic_shapes`` declares dynamic dims as torch.export does (per input, a dict from dim
    index to ``torch.export.Dim(name, min=, max=)``); a size-0 dim in an example input also
    marks one (docs/user_guide.md, "Dynamic shapes").
    """
    opts = Options(target, fallback, max_segments, min_segment_ops, cpu_fallback, preference,
                   relax_f32_to_f16, pipeline, verify_each_pass, dynamic_shapes)
    return _compile(model, example_inputs, opts)


def _compile(model: torch.nn.Module, example_inputs: Any, opts: Options) -> CompiledModel:
    t0 = time.perf_counter()
    model = graph_module_of(model)  # PT2E: accept an ExportedProgram
    try:
        low = lower_and_partition(model, example_inputs, opts)
    except CaptureError as e:
        if opts.fallback != "cpu" or isinstance(model, torch.fx.GraphModule):
            raise
        _no_dynamic_scripting(opts, example_inputs, e)
        inputs = _prepare(model, example_inputs)
        level, _ = _levels(opts)
        return _scripted(compile_opaque(model, inputs, e, _child_compiler(opts)), level, t0)
    graph = low.graph
    fallback = opts.cpu_fallback or low.cpu_only
    art = build_artifact(graph, opts.preference, opts.relax_f32_to_f16, fallback, low.dynamic)
    nnapi = graph.nnapi_segments()
    flat_nnapi = [art.segments[i].flat for i in nnapi]
    weights = {id(w): w for seg in art.segments for w in seg.weights}
    flops, total = node_flops(low.cap, graph)
    kids = [cm.stats for _, cm in low.children]
    stats = {
        "capture": low.cap.dialect.value,
        "segments": len(nnapi) + sum(k["segments"] for k in kids),
        "cpu_segments": len(graph.segments) - len(nnapi) + sum(k["cpu_segments"] for k in kids),
        "host_ops": len(graph.host_ops()) + sum(k["host_ops"] for k in kids),
        "nnapi_ops": sum(len(f.operations) for f in flat_nnapi) + sum(k["nnapi_ops"] for k in kids),
        "nnapi_flops_share": flops / total if total else 1.0,
        "layout_conversions": sum(layout_conversions(f) for f in flat_nnapi),
        "ser_model_bytes": sum(art.segments[i].ser_model.numel() * 4 for i in nnapi),
        "weight_bytes": sum(w.numel() * w.element_size() for w in weights.values()),
        "cpu_fallback": fallback,
        "compile_seconds": time.perf_counter() - t0,
    }
    _warn_cpu(graph)
    return CompiledModel(art.script_module, graph, low.program, art.segments, low.level, stats,
                         low.children)


def _no_dynamic_scripting(opts: Options, example_inputs: Any, e: CaptureError) -> None:
    """A scripted model's compiled children are static: refuse rather than ignore dynamic dims."""
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else example_inputs
    size0 = any(isinstance(x, torch.Tensor) and 0 in x.shape for x in inputs)
    if opts.dynamic_shapes is not None or size0:
        raise CaptureError(f"{e}\n  dynamic dims need a captured model; a scripted model's "
                           "compiled parts are static") from e


def _scripted(op: Opaque, level: int, t0: float) -> CompiledModel:
    """The CompiledModel of a scripted (uncapturable) model, its counts summed over children."""
    kids = [cm.stats for _, cm in op.children]
    stats = {
        "capture": "scripted",
        "segments": sum(k["segments"] for k in kids),
        "cpu_segments": sum(k["cpu_segments"] for k in kids),
        "host_ops": sum(k["host_ops"] for k in kids),
        "nnapi_ops": sum(k["nnapi_ops"] for k in kids),
        "nnapi_flops_share": op.nnapi_flops / op.total_flops if op.total_flops else 1.0,
        "layout_conversions": sum(k["layout_conversions"] for k in kids),
        "cpu_fallback": all(k["cpu_fallback"] for k in kids),
        "scripted": [(s.path, s.compiled, s.reason) for s in op.log],
        "compile_seconds": time.perf_counter() - t0,
    }
    warnings.warn(f"{len(op.log) - len(op.children)} of {len(op.log)} submodule(s) run as "
                  "TorchScript on the CPU: the model could not be captured whole",
                  UserWarning, stacklevel=3)
    return CompiledModel(op.script_module, None, None, (), level, stats, op.children)


def _warn_cpu(graph: ModelGraph) -> None:
    """One warning listing what runs on the CPU and why."""
    lines = [f"  - {op.loc or op.fn}: {op.reason}" for op in graph.host_ops()]
    lines += [f"  - segment {i} ({s.size} NNAPI-IR ops) on the CPU: {s.reason}"
              for i, s in enumerate(graph.segments) if s.placement is Placement.CPU]
    if lines and graph.nnapi_segments():
        warnings.warn(f"{len(lines)} part(s) of the model run on the CPU:\n" + "\n".join(lines),
                      UserWarning, stacklevel=3)


@guarded
def explain(model: torch.nn.Module, example_inputs: Any, target: str | int = "android-10",
            **options: Any) -> Report:
    """Say where each node runs (its NNAPI ops, or the CPU and why), with a summary.

    Takes compile()'s options; returns a Report (``str()`` is a table; ``to_dot()`` a graph). A
    model that cannot be captured is reported module by module: which children were compiled,
    and why the others stay TorchScript.
    """
    opts = Options(target, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            low = lower_and_partition(model, example_inputs, opts)
        except CaptureError as e:
            if opts.fallback != "cpu":
                raise
            _no_dynamic_scripting(opts, example_inputs, e)
            inputs = _prepare(model, example_inputs)
            op = compile_opaque(model, inputs, e, _child_compiler(opts))
            return Report.scripted(op, _levels(opts)[0], str(e))
    return Report.build(low.cap, low.graph, low.level, node_flops(low.cap, low.graph))
