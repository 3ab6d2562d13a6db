"""Public entry points: ``compile`` (capture → lower → passes → partition → backend).

``compile`` returns a CompiledModel that is called like the original model, exposes the
TorchScript artifact that ships to the phone, and saves it for PyTorch Mobile's lite interpreter.
Nodes NNAPI cannot run at the target become host code on the CPU between NNAPI segments; the
artifact also carries a CPU twin of every segment, selected by ``use_cpu()``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from .backend.artifact import build_artifact, quiet_jit
from .backend.flatten import NnapiSegment
from .errors import ConversionError, InputError, NnapiRuntimeError
from .frontend import converters  # noqa: F401 - registers every converter
from .frontend.capture import FLOPS, Captured, capture
from .frontend.lower import lower
from .ir.codes import MIN_RUNTIME_LEVEL, PreferenceCode, parse_target
from .ir.flat import layout_conversions
from .ir.model import IOSpec, ModelGraph, Placement
from .ir.printer import print_program
from .ir.program import Program
from .ir.types import TensorType
from .ir.verifier import verify
from .passes.partition import Partition
from .passes.pipeline import DEFAULT_PIPELINE, default_pipeline
from .report import Report

#: Default ``min_segment_ops``: a segment of a single op (a lone ADD or RESHAPE between two host
#: calls) pays a whole NNAPI execution (input and output copies, a driver round trip) for one op;
#: it runs on the CPU instead, unless it is the whole model.
MIN_SEGMENT_OPS = 2
FALLBACKS = ("cpu", "error")


@attrs.define(eq=False)
class CompiledModel:
    """A compiled model: call it like the original; ``script_module`` is the artifact."""

    script_module: torch.jit.ScriptModule
    graph: ModelGraph
    program: Program  # the optimized mixed program, before partitioning
    segments: tuple[NnapiSegment, ...]
    level: int
    stats: dict[str, Any] = attrs.field(factory=dict)
    _started: bool = False

    @property
    def io(self) -> IOSpec:
        return self.graph.io

    @property
    def segment(self) -> NnapiSegment:
        """The NNAPI segment of a model that compiled to exactly one."""
        nnapi = self.graph.nnapi_segments()
        if len(nnapi) != 1:
            raise ValueError(f"the model has {len(nnapi)} NNAPI segments; use .segments")
        return self.segments[nnapi[0]]

    def check_inputs(self, args: Sequence[Any]) -> None:
        """Raise InputError for a wrong count, type, dtype, rank or shape (before any NNAPI call)."""
        io = self.io
        if len(args) != len(io.input_names):
            raise InputError(f"expected {len(io.input_names)} inputs "
                             f"({', '.join(io.input_names)}), got {len(args)}")
        for name, x, dt, shape, v in zip(io.input_names, args, io.input_dtypes, io.input_shapes,
                                         self.graph.inputs, strict=True):
            if not isinstance(x, torch.Tensor):
                raise InputError(f"input {name!r} must be a tensor, got {type(x).__name__}")
            if x.dtype != dt:
                raise InputError(f"input {name!r} must have dtype {dt}, got {x.dtype}")
            if tuple(x.shape) != tuple(shape):
                raise InputError(f"input {name!r} must have shape {list(shape)} (the compiled "
                                 f"example shape), got {list(x.shape)}")
            q = v.type.quant if isinstance(v.type, TensorType) else None
            if q is not None and (abs(x.q_scale() - q.scale) > q.scale * 1e-6
                                  or x.q_zero_point() != q.zero_point):
                raise InputError(f"input {name!r} must be quantized with scale {q.scale} and "
                                 f"zero point {q.zero_point}, got {x.q_scale()} and "
                                 f"{x.q_zero_point()}")

    def _start(self) -> None:
        """Create the NNAPI compilations; if NNAPI fails, switch to the CPU path (once, warned)."""
        self._started = True
        if not self.graph.nnapi_segments():
            return
        try:
            self.script_module.init_nnapi()
        except (torch.jit.Error, RuntimeError) as e:
            if not self.stats.get("cpu_fallback"):
                raise NnapiRuntimeError(f"NNAPI initialization failed: {_short(e)}") from e
            warnings.warn(f"NNAPI is unavailable ({_short(e)}); running on the CPU instead",
                          RuntimeWarning, stacklevel=3)
            self.script_module.use_cpu()

    def __call__(self, *args: Any) -> Any:
        self.check_inputs(args)
        if not self._started:
            self._start()
        try:
            return self.script_module(*args)
        except torch.jit.Error as e:
            raise NnapiRuntimeError(f"running the compiled model failed: {_short(e)}") from e
        except RuntimeError as e:
            raise NnapiRuntimeError(f"NNAPI call failed: {_short(e)}") from e

    def use_cpu(self) -> None:
        """Run on the CPU path from now on (what an app does after NNAPI fails)."""
        self._started = True
        try:
            self.script_module.use_cpu()
        except (torch.jit.Error, RuntimeError) as e:
            raise NnapiRuntimeError(_short(e)) from e

    def save(self, path: str | Path) -> Path:
        """Write a PyTorch Mobile lite-interpreter file (``.ptl``)."""
        path = Path(path)
        for i in self.graph.nnapi_segments():  # a live NNAPI compilation cannot be serialized
            getattr(self.script_module, f"segment{i}").release()
        self._started = False
        quiet_jit(self.script_module._save_for_lite_interpreter, str(path))
        return path

    def ir(self) -> str:
        return print_program(self.program)


def _short(e: Exception) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    tail = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (tail[-1] if tail else lines[-1] if lines else type(e).__name__).strip()


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
    if model.training:
        raise ConversionError("the model is in training mode; call model.eval() before compiling")
    for i, x in enumerate(example_inputs):
        if isinstance(x, torch.Tensor) and (x.dim() == 0 or 0 in x.shape):
            raise ConversionError(
                f"example input {i} has shape {list(x.shape)}: NNAPI reads a 0 dim or rank 0 as "
                "'unknown', so the model could never run; use a non-empty tensor of rank >= 1")
    return example_inputs


@attrs.frozen
class Options:
    """Everything that shapes what compile() produces (explain() takes the same)."""

    target: str | int = "android-10"
    fallback: str = "cpu"
    max_segments: int | None = None
    min_segment_ops: int = MIN_SEGMENT_OPS
    cpu_fallback: bool = True
    preference: int = PreferenceCode.PREFER_SUSTAINED_SPEED
    relax_f32_to_f16: bool = False
    pipeline: str = DEFAULT_PIPELINE
    verify_each_pass: bool = False

    def __attrs_post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ConversionError(f"fallback must be one of {FALLBACKS}, got {self.fallback!r}")
        if self.max_segments is not None and (not isinstance(self.max_segments, int)
                                              or self.max_segments < 0):
            raise ConversionError(f"max_segments must be None or an int >= 0, got "
                                  f"{self.max_segments!r}")
        if not isinstance(self.min_segment_ops, int) or self.min_segment_ops < 0:
            raise ConversionError(f"min_segment_ops must be an int >= 0, got {self.min_segment_ops!r}")


@attrs.frozen
class Lowered:
    """The compiler's state just before the backend: what compile() and explain() share."""

    cap: Captured
    program: Program
    graph: ModelGraph
    level: int
    cpu_only: bool


def lower_and_partition(model: torch.nn.Module, example_inputs: Any, opts: Options) -> Lowered:
    example_inputs = _prepare(model, example_inputs)
    level = _level(opts.target)
    cpu_only = level < MIN_RUNTIME_LEVEL
    if cpu_only:
        warnings.warn(
            f"target {opts.target!r} is feature level {level}: PyTorch Mobile's NNAPI runtime calls "
            f"Android 10 (API 29) functions, so this artifact runs entirely on the CPU",
            UserWarning, stacklevel=3)
        level = MIN_RUNTIME_LEVEL  # the IR the CPU kernels run; no NNAPI call is ever made
    cap = capture(model, example_inputs)
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
    return Lowered(cap, program, graph, level, cpu_only)


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


def compile(
    model: torch.nn.Module,
    example_inputs: Any,
    target: str | int = "android-10",
    *,
    fallback: str = "cpu",
    max_segments: int | None = None,
    min_segment_ops: int = MIN_SEGMENT_OPS,
    cpu_fallback: bool = True,
    preference: int = PreferenceCode.PREFER_SUSTAINED_SPEED,
    relax_f32_to_f16: bool = False,
    pipeline: str = DEFAULT_PIPELINE,
    verify_each_pass: bool = False,
) -> CompiledModel:
    """Compile ``model`` for NNAPI at ``target`` (an Android version or ``"flN"``).

    Shapes are specialized on ``example_inputs``; the artifact checks them at run time. With
    ``fallback="cpu"`` (default) nodes NNAPI cannot run become CPU host code (a warning lists
    them); ``fallback="error"`` raises UnsupportedError listing every such node instead.
    ``max_segments`` keeps only the largest NNAPI segments; ``min_segment_ops`` runs smaller
    segments on the CPU; ``cpu_fallback`` embeds the CPU path behind ``use_cpu()``.
    """
    t0 = time.perf_counter()
    opts = Options(target, fallback, max_segments, min_segment_ops, cpu_fallback, preference,
                   relax_f32_to_f16, pipeline, verify_each_pass)
    low = lower_and_partition(model, example_inputs, opts)
    graph = low.graph
    art = build_artifact(graph, preference, relax_f32_to_f16, cpu_fallback or low.cpu_only)
    nnapi = graph.nnapi_segments()
    flat_nnapi = [art.segments[i].flat for i in nnapi]
    weights = {id(w): w for seg in art.segments for w in seg.weights}
    flops, total = node_flops(low.cap, graph)
    stats = {
        "capture": low.cap.dialect.value,
        "segments": len(nnapi),
        "cpu_segments": len(graph.segments) - len(nnapi),
        "host_ops": len(graph.host_ops()),
        "nnapi_ops": sum(len(f.operations) for f in flat_nnapi),
        "nnapi_flops_share": flops / total if total else 1.0,
        "layout_conversions": sum(layout_conversions(f) for f in flat_nnapi),
        "ser_model_bytes": sum(art.segments[i].ser_model.numel() * 4 for i in nnapi),
        "weight_bytes": sum(w.numel() * w.element_size() for w in weights.values()),
        "cpu_fallback": cpu_fallback or low.cpu_only,
        "compile_seconds": time.perf_counter() - t0,
    }
    _warn_cpu(graph)
    return CompiledModel(art.script_module, graph, low.program, art.segments, low.level, stats)


def _warn_cpu(graph: ModelGraph) -> None:
    """One warning listing what runs on the CPU and why."""
    lines = [f"  - {op.loc or op.fn}: {op.reason}" for op in graph.host_ops()]
    lines += [f"  - segment {i} ({s.size} NNAPI-IR ops) on the CPU: {s.reason}"
              for i, s in enumerate(graph.segments) if s.placement is Placement.CPU]
    if lines and graph.nnapi_segments():
        warnings.warn(f"{len(lines)} part(s) of the model run on the CPU:\n" + "\n".join(lines),
                      UserWarning, stacklevel=3)


def explain(model: torch.nn.Module, example_inputs: Any, target: str | int = "android-10",
            **options: Any) -> Report:
    """Say where each node runs (its NNAPI ops, or the CPU and why), with a summary.

    Takes compile()'s options; returns a Report (``str()`` is a table; ``to_dot()`` a graph).
    """
    opts = Options(target, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low = lower_and_partition(model, example_inputs, opts)
    return Report.build(low.cap, low.graph, low.level, node_flops(low.cap, low.graph))
