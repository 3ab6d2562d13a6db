"""Artifacts compiled with this torch run on torch 2.1's lite interpreter, the PyTorch Mobile
release apps ship: float, eager-quantized, multi-segment (host code between NNAPI segments),
relaxed, and on the CPU path (``use_cpu()``). torch 2.1 runs in a side environment (a
subprocess); it compares nothing itself. Here its outputs are checked against this torch's
eager outputs and against the same artifacts run by this torch on the virtual device.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
from torch import nn
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc

from ..partition.models import TwoStacks
from ..quant.helpers import output_scale
from ..zoo.models import build, example_input
from ..zoo.quant_models import build_quantized, quant_input
from .conftest import ROOT

pytestmark = pytest.mark.compat


@attrs.frozen
class Case:
    name: str
    artifact: str  # several cases may run one artifact (NNAPI path, then CPU path)
    cpu: bool = False
    kind: str = "float"  # float | quant | relaxed | refused


CASES = [
    Case("resnet18", "resnet18"),
    Case("mobilenet_v3_large", "mobilenet_v3_large"),
    Case("mobilenet_v2_quant", "mobilenet_v2_quant", kind="quant"),
    Case("two_segments", "two_segments"),
    Case("resnet18_cpu", "resnet18", cpu=True),
    Case("mobilenet_v2_quant_cpu", "mobilenet_v2_quant", cpu=True, kind="quant"),
    Case("two_segments_cpu", "two_segments", cpu=True),
    Case("relaxed_low_power", "relaxed_low_power", kind="relaxed"),
    Case("rms_norm_unchecked", "rms_norm_unchecked", kind="refused"),
]


class RmsNorm(nn.Module):
    """conv, F.rms_norm (aten::rms_norm, new in torch 2.4: host code), conv."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return self.b(torch.nn.functional.rms_norm(y, [y.shape[-1]]))


@attrs.define
class Artifact:
    model: nn.Module
    x: torch.Tensor
    path: Path
    eager: torch.Tensor
    here: torch.Tensor  # the .ptl run by this torch on the virtual device


def _artifacts(tmp: Path) -> dict[str, Artifact]:
    unchecked = {"check_runtime": False}
    models: dict[str, tuple[nn.Module, torch.Tensor, dict[str, Any]]] = {
        "resnet18": (build("resnet18"), example_input("resnet18"), {}),
        "mobilenet_v3_large": (build("mobilenet_v3_large"), example_input("mobilenet_v3_large"), {}),
        "mobilenet_v2_quant": (build_quantized("mobilenet_v2"), quant_input(), {}),
        "two_segments": (TwoStacks().eval(), torch.randn(1, 3, 16, 16), {}),
        "relaxed_low_power": (TwoStacks().eval(), torch.randn(1, 3, 16, 16),
                              {"relax_f32_to_f16": True, "preference": "low_power"}),
        "rms_norm_unchecked": (RmsNorm().eval(), torch.randn(1, 3, 16, 16), unchecked),
    }
    out = {}
    for name, (model, x, kw) in models.items():
        save_kw = {k: kw.pop(k) for k in list(kw) if k == "check_runtime"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the host-code notices of two_segments
            cm = nc.compile(model, (x,), **kw)
        path = cm.save(tmp / f"{name}.ptl", **save_kw)
        with torch.no_grad():
            eager = model(x)
        with nc.virtual_device():
            here = _load_for_lite_interpreter(str(path))(x)
        out[name] = Artifact(model, x, path, eager, here)
    return out


@pytest.fixture(scope="module")
def runs(compat_python: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    tmp = tmp_path_factory.mktemp("compat")
    arts = _artifacts(tmp)
    manifest = []
    for case in CASES:
        art = arts[case.artifact]
        inputs = tmp / f"{case.artifact}.inputs.pt"
        torch.save([art.x], inputs)
        manifest.append({"name": case.name, "ptl": str(art.path), "inputs": str(inputs),
                         "level": 3, "cpu": case.cpu})
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [str(compat_python), str(Path(__file__).with_name("run_on_runtime.py")),
         str(tmp / "manifest.json"), str(tmp / "results.pt")],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return arts, torch.load(tmp / "results.pt", weights_only=False)  # written by the runner


def test_side_runtime_is_torch_21(runs: tuple[dict, dict]) -> None:
    _, results = runs
    assert results["torch"].startswith("2.1.0")
    # The virtual device works without the compiler: the runtime never imports it.
    assert "nnapi_compiler.runtime.device" in results["modules"]
    assert "nnapi_compiler.api" not in results["modules"]
    assert "nnapi_compiler.frontend" not in results["modules"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_runs_on_torch_21(case: Case, runs: tuple[dict, dict]) -> None:
    arts, results = runs
    art, res = arts[case.artifact], results["cases"][case.name]
    if case.kind == "refused":
        # What save() refuses without check_runtime=False: torch 2.1 cannot load it either.
        assert "error" in res and "rms_norm" in res["error"], res
        return
    assert "error" not in res, res.get("error")
    got = res["out"]
    assert isinstance(got, torch.Tensor) and got.shape == art.eager.shape
    nnapi_calls = sum(res["calls"].values())
    if case.cpu:
        assert nnapi_calls == 0, res["calls"]  # use_cpu(): not a single NNAPI call
    else:
        assert res["calls"]["Execution_compute"] >= 1 and not res["errors"], res["errors"]
    if case.kind == "quant":
        # Integer-exact kernels: bit-identical to this torch's run, and close to eager.
        assert torch.equal(got, art.here)
        quanta = ((got - art.eager).abs() / output_scale(art.model, art.x)).max().item()
        assert quanta <= 2 + 1e-4, f"{quanta:.2f} quanta from eager"
        return
    mag = art.eager.abs().max().item()
    err = (got - art.eager).abs().max().item()
    if case.kind == "relaxed":
        assert res["compilations"] == [(0, True)] * 2  # PREFER_LOW_POWER, relaxed; 2 segments
        assert torch.equal(got, got.half().float())  # computed in float16
        assert 0 < err <= 1e-2 * max(1.0, mag)  # fp16-sized (test_relaxed has the exact bound)
        return
    assert err <= 1e-4 * max(1.0, mag), f"max error {err:.3g}, max |out| {mag:.3g}"
    if not case.cpu:
        assert res["compilations"] == [(2, False)] * len(res["compilations"])  # sustained speed
