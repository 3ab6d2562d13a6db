"""Public entry points: ``compile`` (capture → lower → passes → backend) and ``explain``.

``compile`` returns a CompiledModel that is called like the original model, exposes the
TorchScript artifact that ships to the phone, and saves it for PyTorch Mobile's lite interpreter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from .backend.artifact import build_script_module
from .backend.flatten import NnapiSegment, flatten
from .errors import ConversionError, InputError, NnapiRuntimeError, UnsupportedError
from .frontend import converters  # noqa: F401 - registers every converter
from .frontend.capture import capture
from .frontend.lower import IOSpec, lower
from .ir.codes import MIN_RUNTIME_LEVEL, PreferenceCode, parse_target
from .ir.flat import layout_conversions
from .ir.printer import print_program
from .ir.program import Program
from .ir.types import Value
from .ir.verifier import verify
from .passes.pipeline import DEFAULT_PIPELINE, default_pipeline


@attrs.define(eq=False)
class CompiledModel:
    """A compiled model: call it like the original; ``script_module`` is the artifact."""

    script_module: torch.jit.ScriptModule
    io: IOSpec
    program: Program
    segment: NnapiSegment
    level: int
    stats: dict[str, Any] = attrs.field(factory=dict)

    def check_inputs(self, args: Sequence[Any]) -> None:
        """Raise InputError for a wrong count, type, dtype, rank or shape (before any NNAPI call)."""
        io = self.io
        if len(args) != len(io.input_names):
            raise InputError(f"expected {len(io.input_names)} inputs "
                             f"({', '.join(io.input_names)}), got {len(args)}")
        for name, x, dt, shape, v in zip(io.input_names, args, io.input_dtypes, io.input_shapes,
                                         self.program.inputs, strict=True):
            if not isinstance(x, torch.Tensor):
                raise InputError(f"input {name!r} must be a tensor, got {type(x).__name__}")
            if x.dtype != dt:
                raise InputError(f"input {name!r} must have dtype {dt}, got {x.dtype}")
            if tuple(x.shape) != tuple(shape):
                raise InputError(f"input {name!r} must have shape {list(shape)} (the compiled "
                                 f"example shape), got {list(x.shape)}")
            q = v.type.quant
            if q is not None and (abs(x.q_scale() - q.scale) > q.scale * 1e-6
                                  or x.q_zero_point() != q.zero_point):
                raise InputError(f"input {name!r} must be quantized with scale {q.scale} and "
                                 f"zero point {q.zero_point}, got {x.q_scale()} and "
                                 f"{x.q_zero_point()}")

    def __call__(self, *args: Any) -> Any:
        self.check_inputs(args)
        try:
            return self.script_module(*args)
        except torch.jit.Error as e:
            raise NnapiRuntimeError(f"running the compiled model failed: {_short(e)}") from e
        except RuntimeError as e:
            raise NnapiRuntimeError(f"NNAPI call failed: {_short(e)}") from e

    def save(self, path: str | Path) -> Path:
        """Write a PyTorch Mobile lite-interpreter file (``.ptl``)."""
        path = Path(path)
        self.script_module.segment0.release()  # a live NNAPI compilation cannot be serialized
        self.script_module._save_for_lite_interpreter(str(path))
        return path

    def ir(self) -> str:
        return print_program(self.program)


def normalize_outputs(p: Program, io: IOSpec) -> tuple[Program, IOSpec]:
    """Passes may turn an output into a model input (an identity resize) or into a value that
    is already an output; NNAPI outputs must be distinct computed operands, so such leaves
    are served by the wrapper instead."""
    inputs = {v.id: i for i, v in enumerate(p.inputs)}
    consts = p.constants()
    outs: list[Value] = []
    leaves = []
    for leaf in io.leaves:
        if leaf.kind != "out":
            leaves.append(leaf)
            continue
        v = p.outputs[leaf.index]
        if v.id in inputs:
            leaves.append(attrs.evolve(leaf, kind="in", index=inputs[v.id]))
            continue
        if v.id in consts:
            raise ConversionError("a model output became a constant; nothing to compile")
        if v not in outs:
            outs.append(v)
        leaves.append(attrs.evolve(leaf, index=outs.index(v)))
    if not outs:
        raise ConversionError("after optimization the model computes nothing on NNAPI")
    return attrs.evolve(p, outputs=tuple(outs)), attrs.evolve(io, leaves=tuple(leaves))


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


def compile(
    model: torch.nn.Module,
    example_inputs: Any,
    target: str | int = "android-10",
    *,
    preference: int = PreferenceCode.PREFER_SUSTAINED_SPEED,
    relax_f32_to_f16: bool = False,
    pipeline: str = DEFAULT_PIPELINE,
    verify_each_pass: bool = False,
) -> CompiledModel:
    """Compile ``model`` for NNAPI at ``target`` (an Android version or ``"flN"``).

    Shapes are specialized on ``example_inputs``; the artifact checks them at run time.
    Raises UnsupportedError listing every node that has no NNAPI lowering at the target.
    """
    t0 = time.perf_counter()
    example_inputs = _prepare(model, example_inputs)
    level = _level(target)
    if level < MIN_RUNTIME_LEVEL:
        raise ConversionError(
            f"target {target!r} is feature level {level}; PyTorch Mobile's NNAPI runtime needs "
            f"Android 10 (feature level {MIN_RUNTIME_LEVEL}) or newer"
        )
    cap = capture(model, example_inputs)
    program, io = lower(cap, level)
    program = default_pipeline(verify_each_pass, pipeline).run(program)
    program, io = normalize_outputs(program, io)
    verify(program)
    seg = flatten(program)
    script = build_script_module(io, seg, preference, relax_f32_to_f16)
    stats = {
        "capture": cap.dialect,
        "nnapi_ops": len(seg.flat.operations),
        "segments": 1,
        "layout_conversions": layout_conversions(seg.flat),
        "ser_model_bytes": seg.ser_model.numel() * 4,
        "weight_bytes": sum(w.numel() * w.element_size() for w in seg.weights),
        "compile_seconds": time.perf_counter() - t0,
    }
    return CompiledModel(script, io, program, seg, level, stats)


def explain(model: torch.nn.Module, example_inputs: Any, target: str | int = "android-10") -> str:
    """Say where each node would run and why: lowered to NNAPI, or refused with the reason."""
    example_inputs = _prepare(model, example_inputs)
    level = _level(target)
    cap = capture(model, example_inputs)
    try:
        program, _ = lower(cap, level)
    except UnsupportedError as e:
        return f"captured with {cap.dialect}; not compilable at feature level {level}:\n{e}"
    program = default_pipeline().run(program)
    per_node: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for op in program.compute_ops():
        key = op.loc.node if op.loc else "(inserted by passes)"
        per_node.setdefault(key, []).append(op.mnemonic.upper())
        if op.loc:
            where[key] = f"{op.loc.target}" + (f" at {op.loc.source}" if op.loc.source else "")
    lines = [f"captured with {cap.dialect}; every node runs on NNAPI at feature level {level} "
             f"({len(program.compute_ops())} NNAPI ops):"]
    for node in cap.gm.graph.nodes:
        if node.name in per_node:
            lines.append(f"  {node.name} [{where[node.name]}] -> {', '.join(per_node.pop(node.name))}")
        elif node.op in ("call_module", "call_function", "call_method"):
            lines.append(f"  {node.name}: folded away (shape arithmetic, identity, or fused "
                         "into a neighbour)")
    lines += [f"  {k} -> {', '.join(v)}" for k, v in per_node.items()]
    return "\n".join(lines)
