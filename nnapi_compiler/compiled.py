"""What compile() returns: the artifact, called like the original model, with its CPU fallback."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from .backend.artifact import quiet_jit
from .backend.flatten import NnapiSegment
from .backend.mobile_compat import check_lite_file
from .errors import ConversionError, InputError, NnapiRuntimeError, guarded
from .ir.model import IOSpec, ModelGraph
from .ir.printer import print_program
from .ir.program import Program
from .ir.types import TensorType


@attrs.define(eq=False)
class CompiledModel:
    """A compiled model: call it like the original; ``script_module`` is the artifact."""

    script_module: torch.jit.ScriptModule
    graph: ModelGraph | None  # None for a scripted (uncapturable) model: see ``children``
    program: Program | None  # the optimized mixed program, before partitioning
    segments: tuple[NnapiSegment, ...]
    level: int
    stats: dict[str, Any] = attrs.field(factory=dict)
    #: Compiled artifacts inside this one's host code: a scripted model's children, or the
    #: branches of a ``torch.cond`` (path or name, CompiledModel).
    children: tuple[tuple[str, CompiledModel], ...] = ()
    _started: bool = False

    @property
    def io(self) -> IOSpec:
        if self.graph is None:
            raise ValueError("a scripted model keeps its own calling convention (no IOSpec)")
        return self.graph.io

    def nnapi_segments(self) -> list[int]:
        return self.graph.nnapi_segments() if self.graph is not None else []

    @property
    def segment(self) -> NnapiSegment:
        """The NNAPI segment of a model that compiled to exactly one."""
        nnapi = self.nnapi_segments()
        if len(nnapi) != 1:
            raise ValueError(f"the model has {len(nnapi)} NNAPI segments; use .segments")
        return self.segments[nnapi[0]]

    def check_inputs(self, args: Sequence[Any]) -> None:
        """Raise InputError for a wrong count, type, dtype, rank or shape (before any NNAPI call)."""
        if self.graph is None:
            return  # TorchScript checks a scripted model's argument types itself
        io = self.io
        if len(args) != len(io.input_names):
            raise InputError(f"expected {len(io.input_names)} inputs "
                             f"({', '.join(io.input_names)}), got {len(args)}")
        sizes: dict[str, int] = {}  # dynamic dim name -> its size in this call
        for name, x, dt, shape, v in zip(io.input_names, args, io.input_dtypes, io.input_shapes,
                                         self.graph.inputs, strict=True):
            if not isinstance(x, torch.Tensor):
                raise InputError(f"input {name!r} must be a tensor, got {type(x).__name__}")
            if x.dtype != dt:
                raise InputError(f"input {name!r} must have dtype {dt}, got {x.dtype}")
            if io.input_dims is not None:
                _check_dynamic(name, x, shape, io.input_dims[io.input_names.index(name)], sizes)
            elif tuple(x.shape) != tuple(shape):
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
        if not self.stats.get("segments"):
            return
        try:
            self.script_module.init_nnapi()
        except (torch.jit.Error, RuntimeError) as e:
            if not self.stats.get("cpu_fallback"):
                raise NnapiRuntimeError(f"NNAPI initialization failed: {_short(e)}") from e
            warnings.warn(f"NNAPI is unavailable ({_short(e)}); running on the CPU instead",
                          RuntimeWarning, stacklevel=3)
            self.script_module.use_cpu()

    @guarded
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

    def save(self, path: str | Path, *, check_runtime: bool = True) -> Path:
        """Write a PyTorch Mobile lite-interpreter file (``.ptl``), or with a ``.pt`` suffix a
        full TorchScript file (PyTorch Mobile's full-JIT runtime, ``Module.load``).

        A ``.ptl`` is then checked against the oldest runtime apps ship, PyTorch Mobile 2.1: its
        bytecode version (backported if needed) and its operators (``backend/mobile_compat.py``);
        a file that runtime could not load is a ConversionError, and is deleted.
        ``check_runtime=False`` skips the check, for apps that all ship a newer runtime."""
        path = Path(path)
        self.release()
        if path.suffix == ".pt":
            quiet_jit(torch.jit.save, self.script_module, str(path))
            return path
        try:
            quiet_jit(self.script_module._save_for_lite_interpreter, str(path))
        except RuntimeError as e:
            if "lite interpreter" not in str(e):
                raise
            raise ConversionError(
                f"the lite interpreter cannot hold this model ({_short(e)}); torchvision's "
                "detectors pass class objects (ImageList) between modules. Save it with a .pt "
                "suffix for PyTorch Mobile's full-JIT runtime instead") from e
        if check_runtime:
            try:
                check_lite_file(path)
            except ConversionError:
                path.unlink(missing_ok=True)
                raise
        return path

    def release(self) -> None:
        """Drop every live NNAPI compilation (they cannot be serialized); the next call redoes them."""
        for i in self.nnapi_segments():
            getattr(self.script_module, f"segment{i}").release()
        for _, child in self.children:
            child.release()
        self._started = False

    def ir(self) -> str:
        if self.program is None:
            raise ValueError("a scripted model has no IR of its own; see .children")
        return print_program(self.program)


def _short(e: Exception) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    tail = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (tail[-1] if tail else lines[-1] if lines else type(e).__name__).strip()


def _check_dynamic(name: str, x: torch.Tensor, shape: Sequence[Any], dims: Sequence[Any],
                   sizes: dict[str, int]) -> None:
    """An input with dynamic dims: static dims exact, dynamic dims within their ranges, and
    dims sharing a name equal (``sizes`` collects them over the inputs)."""
    if x.dim() != len(shape):
        raise InputError(f"input {name!r} must have rank {len(shape)}, got shape {list(x.shape)}")
    for d, (n, spec) in enumerate(zip(shape, dims, strict=True)):
        if spec is None and x.shape[d] != n:
            raise InputError(f"input {name!r} must have size {n} in dim {d} (static), got shape "
                             f"{list(x.shape)}")
        if spec is not None and not spec.contains(int(x.shape[d])):
            raise InputError(f"input {name!r} dim {d} is {x.shape[d]}, outside its dynamic "
                             f"range ({spec})")
        if spec is not None and sizes.setdefault(spec.name, int(x.shape[d])) != x.shape[d]:
            raise InputError(f"input {name!r} dim {d} is {x.shape[d]}, but it must equal the other "
                             f"dims named {spec.name!r} ({sizes[spec.name]})")
