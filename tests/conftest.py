"""Shared test helpers: compile a model, run it on the virtual device, compare with eager."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils import _pytree as pytree

import nnapi_compiler as nc


class Fn(torch.nn.Module):
    """Wrap a function as a module so each spelling can be tested on its own."""

    def __init__(self, f: Callable[..., Any]) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: torch.Tensor) -> Any:
        return self.f(x)


def assert_close_scaled(got: Any, ref: Any, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """Float32 comparison with atol scaled to the output magnitude, structure included."""
    g_leaves, g_spec = pytree.tree_flatten(got)
    r_leaves, r_spec = pytree.tree_flatten(ref)
    assert g_spec == r_spec, f"output structure {g_spec} != {r_spec}"
    for g, r in zip(g_leaves, r_leaves, strict=True):
        if not isinstance(r, torch.Tensor):
            assert g == r
            continue
        assert g.shape == r.shape and g.dtype == r.dtype
        floating = r.is_floating_point()  # bool / int results must match exactly
        scale = max(1.0, r.abs().max().item()) if r.numel() and floating else 1.0
        torch.testing.assert_close(g, r, rtol=rtol, atol=atol * scale)


def run_compiled(model: torch.nn.Module, *inputs: torch.Tensor, target: str = "android-10",
                 **kw: Any) -> tuple[nc.CompiledModel, Any, Any]:
    """Compile ``model``, run it through the virtual device; return (compiled, got, eager)."""
    model = model.eval()
    with torch.no_grad():
        ref = model(*[i.clone() for i in inputs])
    kw.setdefault("verify_each_pass", True)  # the verifier runs between every pass in tests
    cm = nc.compile(model, tuple(i.clone() for i in inputs), target=target, **kw)
    with nc.virtual_device():
        got = cm(*[i.clone() for i in inputs])
    return cm, got, ref


class Exported(nn.Module):
    """Runs ``inner``, but reads an input's shape in Python control flow so that symbolic tracing
    fails and capture takes torch.export's ATen spellings."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *xs: torch.Tensor) -> Any:
        if xs[0].shape[0] > 0:
            return self.inner(*xs)
        return self.inner(*xs)


def in_dialect(model: nn.Module, dialect: str) -> nn.Module:
    """``model`` as it is ("fx") or wrapped so that only torch.export captures it ("export")."""
    return Exported(model) if dialect == "export" else model


def compile_whole(model: nn.Module, *xs: torch.Tensor, dialect: str = "fx",
                  target: str = "android-10", **kw: Any) -> nc.CompiledModel:
    """Compile in ``dialect`` at ``target`` (``cpu_fallback=False`` unless ``kw`` says
    otherwise); assert one NNAPI segment, no CPU segment, no host op, and the eager result."""
    from nnapi_compiler.frontend.capture import capture

    model = in_dialect(model.eval(), dialect)
    kw.setdefault("cpu_fallback", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. PyTorch's implicit softmax dim
        assert capture(model, tuple(x.clone() for x in xs)).dialect == dialect
        cm, got, ref = run_compiled(model, *xs, target=target, **kw)
    stats = cm.stats
    assert (stats["segments"], stats["cpu_segments"], stats["host_ops"]) == (1, 0, 0), stats
    assert_close_scaled(got, ref)
    return cm


def timm_whole(name: str, size: int, target: str, tmp_path: Any, kwargs: dict[str, Any] | None = None,
               **compile_kw: Any) -> nc.CompiledModel:
    """A timm model (random init, nothing downloaded) compiled at ``target`` from a
    ``[1, 3, size, size]`` input: assert one NNAPI segment, no CPU segment and no host op, then
    save, reload with the lite interpreter and match eager on a device of the compiled level."""
    import timm
    from torch.jit.mobile import _load_for_lite_interpreter

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **(kwargs or {})).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ref = model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x,), target=target, **compile_kw)
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / f"{name}.ptl")))
    with nc.virtual_device(feature_level=cm.level):
        got = mod(x)
    assert_close_scaled(got, ref)
    return cm


@pytest.fixture(autouse=True)
def _deterministic() -> Any:
    """Every test starts from the same global RNG state, and leaves the quantized engine (a
    process-wide setting some tests switch to qnnpack) as it found it."""
    torch.manual_seed(0)
    engine = torch.backends.quantized.engine
    yield
    torch.backends.quantized.engine = engine


@pytest.fixture
def check() -> Callable[..., nc.CompiledModel]:
    def _check(model: torch.nn.Module, *inputs: torch.Tensor, **kw: Any) -> nc.CompiledModel:
        cm, got, ref = run_compiled(model, *inputs, **kw)
        assert_close_scaled(got, ref)
        return cm

    return _check
