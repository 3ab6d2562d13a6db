"""Nothing but NnapiCompilerError escapes compile(), explain() or a compiled model's call, whatever
the model, the example inputs, the target or the run-time inputs; internal failures become
InternalError naming the pass, the node and its source line, the original chained."""

from __future__ import annotations

import warnings
from typing import Any

import attrs
import pytest
import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.passes.base import PASSES

from .profiles import examples
from .strategies import FuzzCase, fuzz_cases

TARGETS = st.sampled_from(["android-10", "android-11", "android-15", "fl4", 3, 8, "android-99", "ios",
                           "", 0, -1, 2.5, None])


@st.composite
def _inputs(draw: st.DrawFn, x: torch.Tensor) -> tuple[Any, ...]:
    """The right input, or a mistake a user makes: other shape, dtype, rank, count or type."""
    kind = draw(st.sampled_from(["same", "same", "shape", "dtype", "rank", "extra", "none",
                                 "list", "scalar", "empty", "nan"]))
    if kind == "same":
        return (x.clone(),)
    if kind == "shape":
        return (torch.randn(*x.shape[:-1], x.shape[-1] + draw(st.integers(1, 3))),)
    if kind == "dtype":
        return (x.to(draw(st.sampled_from([torch.float64, torch.int64, torch.float16, torch.bool]))),)
    if kind == "rank":
        return (x.unsqueeze(0),)
    if kind == "extra":
        return (x.clone(), x.clone())
    if kind == "none":
        return ()
    if kind == "list":
        return ([x.clone()],)
    if kind == "scalar":
        return (draw(st.sampled_from([1.0, 3, "x", None])),)
    if kind == "empty":
        return (x[:0],)
    return (torch.full_like(x, float("nan")),)


def _only_ours(fn: Any, *args: Any, **kw: Any) -> Any:
    """Call ``fn``; any exception that is not an NnapiCompilerError fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kw)
    except nc.NnapiCompilerError as e:
        note(f"{type(e).__name__}: {str(e)[:300]}")
        assert not isinstance(e, nc.InternalError), f"an internal error: {e}"
        return None


@settings(max_examples=examples(0.5))
@given(case=fuzz_cases(max_layers=4), data=st.data())
def test_only_our_errors_escape(case: FuzzCase, data: st.DataObject) -> None:
    net, x = case.build()
    example = data.draw(_inputs(x), label="example inputs")
    target = data.draw(TARGETS, label="target")
    _only_ours(nc.explain, net, example, target)
    cm = _only_ours(nc.compile, net, example, target)
    if cm is None:
        return
    run_with = data.draw(_inputs(example[0]), label="run-time inputs")
    device = data.draw(st.sampled_from(["ok", "unavailable", "fl3"]), label="device")
    with nc.virtual_device(feature_level=3 if device == "fl3" else 8, available=device != "unavailable"):
        _only_ours(cm, *run_with)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def test_a_failing_pass_is_an_internal_error_naming_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(self: Any, program: Any) -> Any:  # a pass's run() with a bug
        raise KeyError("boom")

    monkeypatch.setattr(PASSES["fold-bn"], "run", run)
    with pytest.raises(nc.InternalError, match="pass fold-bn") as info:
        nc.compile(_Net().eval(), (torch.randn(1, 3, 6, 6),))
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.pass_name == "fold-bn"


def test_a_failing_converter_is_an_internal_error_naming_the_node_and_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nnapi_compiler.frontend.registry import REGISTRY

    entry = REGISTRY[torch.relu]

    def broken(ctx: Any, bound: Any) -> Any:
        raise IndexError("boom")

    monkeypatch.setitem(REGISTRY, torch.relu, attrs.evolve(entry, fn=broken))
    with pytest.raises(nc.InternalError, match="node relu") as info:
        nc.compile(_Net().eval(), (torch.randn(1, 3, 6, 6),))
    assert isinstance(info.value.__cause__, IndexError)
    assert "test_error_hierarchy.py" in info.value.source  # the user's line: return torch.relu(...)
