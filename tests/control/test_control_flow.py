"""Control flow: uncapturable modules scripted with compiled children, and torch.cond."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc
from tests.conftest import assert_close_scaled

from . import models as M

X = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))


def _compile(model: torch.nn.Module, x: torch.Tensor, **kw: object) -> nc.CompiledModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nc.compile(model, (x,), **kw)


def _eager(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x.clone())


@pytest.fixture(scope="module")
def data_dependent() -> tuple[torch.nn.Module, nc.CompiledModel]:
    torch.manual_seed(0)
    model = M.DataDependent().eval()
    return model, _compile(model, X)


def test_data_dependent_model_is_scripted_with_every_stack_on_nnapi(data_dependent: tuple) -> None:
    _, cm = data_dependent
    assert cm.stats["capture"] == "scripted"
    compiled = {path for path, ok, _ in cm.stats["scripted"] if ok}
    assert compiled == {"a", "b", "pos", "neg", "c"}  # the branch not taken by X is found too
    assert cm.stats["segments"] == 5


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_both_branches_match_eager_on_nnapi_and_reloaded(data_dependent: tuple, sign: float,
                                                         tmp_path: Path) -> None:
    model, cm = data_dependent
    x = X * sign
    ref = _eager(model, x)
    with nc.virtual_device():
        assert_close_scaled(cm(x.clone()), ref)
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "cf.ptl")))
    with nc.virtual_device():
        assert_close_scaled(mod(x.clone()), ref)


def test_use_cpu_reaches_every_compiled_child(data_dependent: tuple, tmp_path: Path) -> None:
    model, cm = data_dependent
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "cf.ptl")))
    mod.run_method("use_cpu")
    for sign in (1.0, -1.0):  # no virtual device: any NNAPI call would fail
        assert_close_scaled(mod(X.clone() * sign), _eager(model, X * sign))
    with nc.virtual_device(available=False), pytest.warns(RuntimeWarning, match="on the CPU"):
        got = _compile(model, X)(X.clone())
    assert_close_scaled(got, _eager(model, X))


def test_nested_uncapturable_modules_are_opened_all_the_way_down() -> None:
    torch.manual_seed(1)
    model = M.Nested().eval()
    cm = _compile(model, X)
    compiled = {path for path, ok, _ in cm.stats["scripted"] if ok}
    assert {"inner.a", "inner.pos", "inner.neg", "inner.c", "head"} <= compiled
    for sign in (1.0, -1.0):
        with nc.virtual_device():
            assert_close_scaled(cm(X.clone() * sign), _eager(model, X * sign))


def test_explain_names_scripted_modules_and_why() -> None:
    torch.manual_seed(0)
    report = nc.explain(M.DataDependent().eval(), (X,))
    text = str(report)
    assert "scripted as TorchScript host code" in text and "torch.export" in text
    rows = {r.node: r for r in report.rows}
    assert rows["pos"].where == "NNAPI (compiled)" and "1 NNAPI segment" in rows["pos"].detail
    assert report.flops_share == pytest.approx(1.0)  # every convolution runs on NNAPI
    dot = report.to_dot()
    assert '"model" -> "pos"' in dot and "NNAPI (compiled)" in dot


def test_fallback_error_keeps_the_capture_error() -> None:
    with pytest.raises(nc.CaptureError, match=r"torch\.export"):
        nc.compile(M.DataDependent().eval(), (X,), fallback="error")


@pytest.fixture(scope="module")
def cond() -> tuple[torch.nn.Module, nc.CompiledModel]:
    torch.manual_seed(2)
    model = M.Cond().eval()
    return model, _compile(model, X)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_torch_cond_branches_run_their_own_segments(cond: tuple, sign: float,
                                                    tmp_path: Path) -> None:
    model, cm = cond
    assert cm.stats["capture"] == "export"
    assert cm.stats["segments"] == 4  # before, then-branch, else-branch, after
    x = X * sign
    ref = _eager(model, x)
    with nc.virtual_device():
        assert_close_scaled(cm(x.clone()), ref)
    mod = _load_for_lite_interpreter(str(cm.save(tmp_path / "cond.ptl")))
    with nc.virtual_device():
        assert_close_scaled(mod(x.clone()), ref)
    mod.run_method("use_cpu")  # the switch reaches the branches inside the host call
    assert_close_scaled(mod(x.clone()), ref)
