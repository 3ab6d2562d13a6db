"""The CPU segment computes what the NNAPI segment computes on the virtual device (quantized
models bit for bit, float ones within the zoo's bound against eager), after a save and reload
through the lite interpreter; next to the NNAPI segment it stores no second copy of the weights,
and on its own it runs where NNAPI is unavailable."""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc
from nnapi_compiler.backend.artifact import segment_module
from nnapi_compiler.backend.cpu_segment import build_cpu_segment
from nnapi_compiler.backend.flatten import NnapiSegment
from nnapi_compiler.ir.types import DimOrder

from ..quant.helpers import Wrapped, quantize_model
from ..zoo.models import build, example_input
from ..zoo.quant_models import QUANT_MODELS, build_quantized, quant_input

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

# One float model per op family the zoo uses: resnet18 (conv, max pool, add, mean, FC),
# mobilenet_v2 (depthwise), mobilenet_v3_small (hard-swish as mul/div, squeeze-excitation),
# shufflenet_v2 (channel shuffle, strided slice, concatenation), squeezenet1_1 (reshape,
# concatenation of branches), lraspp_mobilenet_v3_large at android-11 (logistic, resize bilinear).
FLOAT_MODELS = [
    ("mobilenet_v2", "android-10"),
    ("resnet18", "android-10"),
    ("mobilenet_v3_small", "android-10"),
    ("shufflenet_v2_x1_0", "android-10"),
    ("squeezenet1_1", "android-10"),
    ("lraspp_mobilenet_v3_large", "android-11"),
]
# Quantized: resnet18 (conv, max and average pool, add, FC), shufflenet_v2 (depthwise, channel
# shuffle, strided slice, requantizing concatenation, mean), mobilenet_v3_large (quantized mul of
# squeeze-excitation, hard-swish). mobilenet_v2 adds no op family to these.
QUANT_SUBSET = ["resnet18", "shufflenet_v2_x1_0", "mobilenet_v3_large"]


SIZE = 96  # smaller than the zoo tests' images: the same ops, a fraction of the time


@functools.cache
def _compiled(name: str, target: str = "android-10") -> tuple[nc.CompiledModel, torch.Tensor]:
    if name.startswith("q_"):
        model, x = build_quantized(name[2:], size=SIZE), quant_input(SIZE)
    else:
        model, x = build(name), example_input(name)[..., :SIZE, :SIZE].contiguous()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return nc.compile(model, (x,), target=target), x


def segment_args(seg: NnapiSegment, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """The segment's arguments, as the wrapper passes them (NHWC where the program wants it)."""
    return [
        x.permute(0, 2, 3, 1).contiguous() if v.type.dim_order is DimOrder.NHWC else x.contiguous()
        for x, v in zip(inputs, seg.program.inputs, strict=True)
    ]


def _nnapi(cm: nc.CompiledModel) -> torch.jit.ScriptModule:
    return torch.jit.script(segment_module(cm.segment, 0, False))


def _lite(module: nn.Module, path: Path) -> Any:
    torch.jit.script(module)._save_for_lite_interpreter(str(path))
    return _load_for_lite_interpreter(str(path))


def _run_both(cm: nc.CompiledModel, args: list[torch.Tensor], tmp_path: Path) -> tuple[list, list]:
    with nc.virtual_device(feature_level=cm.level):
        want = _nnapi(cm)(args)
    got = _lite(build_cpu_segment(cm.segment), tmp_path / "cpu.ptl")(args)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
    return got, want


@pytest.mark.parametrize(("name", "target"), FLOAT_MODELS)
def test_float_zoo_model_matches_the_virtual_device(name: str, target: str, tmp_path: Path) -> None:
    cm, x = _compiled(name, target)
    got, want = _run_both(cm, segment_args(cm.segment, x), tmp_path)
    for g, w in zip(got, want, strict=True):
        mag = w.abs().max().item()
        err = (g - w).abs().max().item()
        assert err <= 1e-4 * max(1.0, mag), f"{name}: max error {err:.3g}, max |out| {mag:.3g}"
        assert err <= 1e-3 * mag, f"{name}: relative error {err / mag:.3g}"


@pytest.mark.parametrize("name", QUANT_SUBSET)
def test_quantized_zoo_model_is_bit_exact(name: str, tmp_path: Path) -> None:
    assert name in QUANT_MODELS
    cm, x = _compiled("q_" + name)
    got, want = _run_both(cm, segment_args(cm.segment, x), tmp_path)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w), f"{name}: max difference {(g - w).abs().max().item():.3g}"


def test_quint8_inputs_and_outputs_keep_scale_and_zero_point(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = quantize_model(Wrapped(nn.Conv2d(3, 4, 3)), [torch.randn(1, 3, 8, 8) for _ in range(3)])
    xq = torch.quantize_per_tensor(torch.randn(1, 3, 8, 8), 0.05, 120, torch.quint8)
    cm = nc.compile(model.body.eval(), (xq,))
    got, want = _run_both(cm, segment_args(cm.segment, xq), tmp_path)
    assert got[0].dtype == torch.quint8
    assert (got[0].q_scale(), got[0].q_zero_point()) == (want[0].q_scale(), want[0].q_zero_point())
    assert torch.equal(got[0].int_repr(), want[0].int_repr())


class _BothPaths(nn.Module):
    """What an artifact with a CPU fallback holds: the NNAPI segment and its CPU path."""

    def __init__(self, nnapi: nn.Module, fallback: nn.Module) -> None:
        super().__init__()
        self.nnapi, self.fallback = nnapi, fallback
        self.use_cpu = False

    def forward(self, args: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.fallback(args) if self.use_cpu else self.nnapi(args)


class _NnapiOnly(nn.Module):
    def __init__(self, nnapi: nn.Module) -> None:
        super().__init__()
        self.nnapi = nnapi

    def forward(self, args: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.nnapi(args)


def _sizes(module: nn.Module) -> tuple[int, int]:
    """(torch.jit.save bytes, _save_for_lite_interpreter bytes)."""
    s = torch.jit.script(module)
    buf = io.BytesIO()
    torch.jit.save(s, buf)
    return len(buf.getvalue()), len(s._save_to_buffer_for_lite_interpreter())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "q_resnet18"])
def test_weights_are_stored_once(name: str) -> None:
    cm, _ = _compiled(name)
    nnapi_only = _sizes(_NnapiOnly(segment_module(cm.segment, 0, False)))
    both = _sizes(_BothPaths(segment_module(cm.segment, 0, False), build_cpu_segment(cm.segment)))
    weight_bytes = sum(w.numel() * w.element_size() for w in cm.segment.weights)
    assert min(nnapi_only) >= weight_bytes  # the comparison is about the weights
    for alone, with_cpu in zip(nnapi_only, both, strict=True):
        assert with_cpu <= 1.15 * alone, f"{name}: {with_cpu} bytes with the CPU path, {alone} without"


def test_cpu_only_artifact_runs_without_nnapi(tmp_path: Path) -> None:
    cm, x = _compiled("q_resnet18")
    args = segment_args(cm.segment, x)
    with nc.virtual_device(feature_level=cm.level):
        want = _nnapi(cm)(args)
    cpu = build_cpu_segment(cm.segment)
    with nc.virtual_device(available=False):
        with pytest.raises(RuntimeError):
            _nnapi(cm)(args)
        got = _lite(cpu, tmp_path / "cpu_only.ptl")(args)
    assert torch.equal(got[0], want[0])
    weight_bytes = sum(w.numel() * w.element_size() for w in cm.segment.weights)
    assert (tmp_path / "cpu_only.ptl").stat().st_size >= weight_bytes  # it holds the weights itself


@pytest.mark.parametrize("packing", ["one buffer", "flat buffers", "bytes"])
def test_operands_read_from_any_place_in_a_weight_buffer(packing: str, tmp_path: Path) -> None:
    """A buffer reference may point into a shared buffer at an offset, or at a tensor of another
    shape: the CPU path reads the operand from there without copying the weights. Bytes of
    another dtype are refused at build time (TorchScript cannot reinterpret them)."""
    from nnapi_compiler.backend.cpu_segment import build_cpu_module
    from nnapi_compiler.backend.ser_model import BufferRef
    from nnapi_compiler.ir.codes import OpCode
    from nnapi_compiler.runtime.interpreter import execute

    from ..runtime.kernel_helpers import In, one_op

    g = torch.Generator().manual_seed(0)
    filt, b = torch.randn(4, 3, 3, 2, generator=g), torch.randn(4, generator=g)
    x = torch.randn(1, 5, 5, 2, generator=g)
    built = one_op(OpCode.CONV_2D, [In(x), filt, b, 1, 1, 1, 0], (1, 5, 5, 4))
    model = built.model
    want = execute(model, [x], 4)
    k_filt, k_bias = model.operations[0].inputs[1:3]
    if packing in ("one buffer", "bytes"):
        packed = torch.cat([filt.reshape(-1), b])
        weights = [packed.view(torch.uint8) if packing == "bytes" else packed]
        refs = {k_filt: BufferRef(0, 0, filt.numel() * 4), k_bias: BufferRef(0, filt.numel() * 4, 16)}
    else:
        weights = [filt.reshape(-1), b.reshape(2, 2)]
        refs = {k_filt: BufferRef(0, 0, filt.numel() * 4), k_bias: BufferRef(1, 0, 16)}
    for k in refs:
        del model.values[k]
    if packing == "bytes":
        with pytest.raises(ValueError, match=r"is not a torch\.float32 range of weight buffer 0"):
            build_cpu_module(model, refs, weights)
        return
    module = build_cpu_module(model, refs, weights)
    assert all(w is v for w, v in zip(module.weights, weights, strict=True))
    got = _lite(module, tmp_path / "packed.ptl")([x])
    assert torch.equal(got[0], want[0])
