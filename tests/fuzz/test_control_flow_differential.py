"""Differential fuzzing of data-dependent control flow: random models that branch on tensor
values (neither torch.fx nor torch.export captures them) are scripted with their capturable
parts compiled, and must match eager on both branches, on NNAPI and on the CPU path."""

from __future__ import annotations

import warnings

import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st
from torch import nn

import nnapi_compiler as nc

from ..conftest import assert_close_scaled
from .profiles import examples
from .strategies import FuzzCase, fuzz_cases


def _branch(shape: tuple[int, ...], kind: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if len(shape) == 4:
        c = shape[1]
        act = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "none": nn.Identity()}[kind]
        return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), act)
    return nn.Sequential(nn.Linear(shape[-1], shape[-1]), nn.Sigmoid() if kind == "tanh" else nn.ReLU())


class Branchy(nn.Module):
    """prefix -> if (statistic of the data) > threshold: then-branch else: else-branch -> loop
    counted by the input's shape."""

    def __init__(self, case: FuzzCase, kinds: tuple[str, str], stat: str, threshold: float) -> None:
        super().__init__()
        self.prefix, _ = case.build()
        shape = self.prefix.out_shape
        self.then_ = _branch(shape, kinds[0], case.seed + 2)
        self.else_ = _branch(shape, kinds[1], case.seed + 3)
        self.stat, self.threshold = stat, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.prefix(x)
        s = x.mean() if self.stat == "mean" else x.amax() + x.amin()
        y = self.then_(y) if s > self.threshold else self.else_(y) * 0.5
        for _ in range(x.shape[-1] % 3):
            y = y - 0.125
        return y


@st.composite
def branchy_cases(draw: st.DrawFn) -> tuple[FuzzCase, tuple[str, str], str, float]:
    case = draw(fuzz_cases(max_layers=4).filter(
        lambda c: not any(type(s).__name__ == "Tap" for s in c.specs)))
    kinds = (draw(st.sampled_from(["relu", "tanh", "none"])), draw(st.sampled_from(["relu", "tanh", "none"])))
    return case, kinds, draw(st.sampled_from(["mean", "range"])), draw(st.sampled_from([0.0, 0.05]))


@settings(max_examples=examples(0.15), deadline=None)
@given(branchy_cases())
def test_data_dependent_branches_match_eager(data: tuple) -> None:
    case, kinds, stat, threshold = data
    model = Branchy(case, kinds, stat, threshold).eval()
    _, x = case.build()
    try:
        torch.export.export(model, (x,), strict=False)
        captured = True
    except Exception:
        captured = False
    note(f"torch.export captured it: {captured}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = nc.compile(model, (x.clone(),), target=case.target)
    for sign in (1.0, -1.0):  # both branches (the statistic changes sign with the input)
        xs = x.clone() * sign
        with torch.no_grad():
            ref = model(xs.clone())
        with nc.virtual_device():
            assert_close_scaled(cm(xs.clone()), ref)
    cm.use_cpu()
    with torch.no_grad():
        ref = model(x.clone())
    assert_close_scaled(cm(x.clone()), ref)
