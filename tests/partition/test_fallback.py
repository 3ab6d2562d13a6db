"""The CPU path: use_cpu(), automatic fallback, Android 8.1/9 artifacts, segment trimming.

Each path is checked against eager PyTorch, in Python and through the lite interpreter (what an
app runs), with NNAPI present (the virtual device), absent, or unavailable.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc
from nnapi_compiler.ir.model import Placement
from tests.conftest import assert_close_scaled
from tests.zoo.models import build

from . import models as M

X = torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(11))


def _compile(model: nn.Module, *xs: torch.Tensor, **kw: object) -> nc.CompiledModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nc.compile(model.eval(), xs, **kw)


def _eager(model: nn.Module, *xs: torch.Tensor) -> object:
    with torch.no_grad():
        return model.eval()(*[x.clone() for x in xs])


@pytest.fixture(scope="module")
def two_stacks() -> tuple[nn.Module, nc.CompiledModel]:
    torch.manual_seed(0)
    model = M.TwoStacks().eval()
    return model, _compile(model, X)


def test_use_cpu_runs_without_any_nnapi(two_stacks: tuple[nn.Module, nc.CompiledModel]) -> None:
    model, _ = two_stacks
    cm = _compile(model, X)
    cm.use_cpu()
    assert_close_scaled(cm(X.clone()), _eager(model, X))  # no virtual device: no NNAPI at all


def test_unavailable_nnapi_falls_back_once_with_a_warning(
        two_stacks: tuple[nn.Module, nc.CompiledModel]) -> None:
    model, _ = two_stacks
    cm = _compile(model, X)
    with nc.virtual_device(available=False) as dev:
        with pytest.warns(RuntimeWarning, match="NNAPI is unavailable.*running on the CPU"):
            got = cm(X.clone())
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once: the second call is silent
            again = cm(X.clone())
    assert dev.calls["Model_create"] >= 1
    assert_close_scaled(got, _eager(model, X))
    assert_close_scaled(again, got)


def test_without_cpu_fallback_unavailable_nnapi_raises(
        two_stacks: tuple[nn.Module, nc.CompiledModel]) -> None:
    model, _ = two_stacks
    cm = _compile(model, X, cpu_fallback=False)
    with nc.virtual_device(available=False), pytest.raises(nc.NnapiRuntimeError,
                                                           match="initialization failed"):
        cm(X.clone())
    with pytest.raises(nc.NnapiRuntimeError, match="cpu_fallback=False"):
        cm.use_cpu()


def test_app_flow_through_the_lite_interpreter(two_stacks: tuple[nn.Module, nc.CompiledModel],
                                               tmp_path: Path) -> None:
    """What the README's Java snippet does: init_nnapi(), and use_cpu() when it throws."""
    model, cm = two_stacks
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "m.ptl")))
    ref = _eager(model, X)
    with nc.virtual_device():
        mod.run_method("init_nnapi")
        assert_close_scaled(mod(X.clone()), ref)
    fresh = _load_for_lite_interpreter(str(tmp_path / "m.ptl"))
    with nc.virtual_device(available=False), pytest.raises(RuntimeError):
        fresh.run_method("init_nnapi")
    fresh.run_method("use_cpu")
    assert_close_scaled(fresh(X.clone()), ref)


@pytest.mark.parametrize("target", ["android-8.1", "android-9"])
def test_old_android_gets_a_cpu_only_artifact(target: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = M.TwoStacks().eval()
    with pytest.warns(UserWarning, match="Android 10 \\(API 29\\)"):
        cm = nc.compile(model, (X,), target=target)
    assert cm.stats["segments"] == 0 and cm.stats["cpu_segments"] == 2
    names = {n for n, _ in cm.script_module.named_children()}
    assert not any(n.startswith("segment") for n in names)  # nothing that would load NNAPI
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "old.ptl")))
    assert_close_scaled(mod(X.clone()), _eager(model, X))  # no NNAPI library anywhere


def test_max_segments_keeps_the_largest_on_nnapi(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = M.TwoStacks().eval()
    model.b = M.stack(8, 8, 3)  # the second stack is now the larger
    cm = _compile(model, X, max_segments=1)
    placements = [s.placement for s in cm.graph.segments]
    assert placements == [Placement.CPU, Placement.NNAPI]
    assert "max_segments" in cm.graph.segments[0].reason
    ref = _eager(model, X)
    with nc.virtual_device():
        assert_close_scaled(cm(X.clone()), ref)
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "m.ptl")))
    with nc.virtual_device():
        assert_close_scaled(mod(X.clone()), ref)


def test_min_segment_ops_moves_small_segments_to_the_cpu() -> None:
    torch.manual_seed(3)
    model = M.TwoStacks().eval()
    cm = _compile(model, X, min_segment_ops=3)
    assert cm.stats["segments"] == 0 and cm.stats["cpu_segments"] == 2
    assert all("min_segment_ops=3" in s.reason for s in cm.graph.segments)
    assert_close_scaled(cm(X.clone()), _eager(model, X))
    whole = _compile(nn.ReLU(), X, min_segment_ops=5)  # the whole model is one op: still NNAPI
    assert whole.stats["segments"] == 1


@pytest.mark.parametrize("kw", [{"fallback": "maybe"}, {"max_segments": -1},
                                {"min_segment_ops": "2"}])
def test_bad_partition_options_raise_our_error(kw: dict) -> None:
    with pytest.raises(nc.ConversionError):
        nc.compile(nn.ReLU().eval(), (X,), **kw)


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_cpu_fallback_costs_little_size_and_matches(name: str, tmp_path: Path) -> None:
    model, x = build(name), torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    cm = _compile(model, x)
    lean = _compile(model, x, cpu_fallback=False)
    full = cm.save(tmp_path / "full.ptl").stat().st_size
    bare = lean.save(tmp_path / "bare.ptl").stat().st_size
    assert full <= 1.15 * bare, (full, bare)
    mod = _load_for_lite_interpreter(str(tmp_path / "full.ptl"))
    mod.run_method("use_cpu")
    ref = _eager(model, x)
    got = mod(x.clone())
    err = (got - ref).abs().max().item()
    assert err <= 1e-4 * max(1.0, ref.abs().max().item())
