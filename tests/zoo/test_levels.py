"""The level matrix: float zoo models compiled for feature levels 3..8, each run on a virtual
device of its own level and matched against eager; and artifacts run on a device one level too
old, which must fail cleanly or fall back to the CPU, never give wrong numbers.

CI runs a sample of the zoo at every level and the whole zoo at FL8 (android-13..15); FL3 is
test_torchvision.py's. ``NNC_LEVEL_MATRIX=full`` runs the whole zoo at every level.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc
from nnapi_compiler.errors import NnapiCompilerError

from .models import CLASSIFICATION, SEGMENTATION, build, example_input

LEVELS = range(3, 9)
SAMPLE = ["mobilenet_v3_small", "squeezenet1_1"]
FULL = os.environ.get("NNC_LEVEL_MATRIX") == "full"
CASES = [(n, lv) for n in (CLASSIFICATION + SEGMENTATION if FULL else SAMPLE) for lv in LEVELS]
# deeplabv3 (20 s) is left to the full run: lraspp covers the same backbone and resize at FL8.
CASES += [(n, 8) for n in CLASSIFICATION + SEGMENTATION[:1] if (n, 8) not in CASES]


def _outputs(y: object) -> dict[str, torch.Tensor]:
    return dict(y) if isinstance(y, dict) else {"out": y}  # type: ignore[dict-item]


def _assert_matches(got: object, ref: object, what: str) -> None:
    g, r = _outputs(got), _outputs(ref)
    assert g.keys() == r.keys()
    for k in r:
        mag = r[k].abs().max().item()
        err = (g[k] - r[k]).abs().max().item()
        assert g[k].shape == r[k].shape
        assert err <= 1e-4 * max(1.0, mag), f"{what}[{k}]: max error {err:.3g}, max |out| {mag:.3g}"


@pytest.mark.parametrize(("name", "level"), CASES, ids=[f"{n}-fl{lv}" for n, lv in CASES])
def test_zoo_at_each_level(name: str, level: int, tmp_path: Path) -> None:
    model, x = build(name), example_input(name)
    with torch.no_grad():
        ref = model(x)
    cm = nc.compile(model, (x,), target=f"fl{level}")
    assert cm.level == level
    assert (cm.stats["segments"], cm.stats["cpu_segments"], cm.stats["host_ops"]) == (1, 0, 0)
    names = {op.mnemonic for op in cm.program.ops}
    uses_hardswish = any(isinstance(m, nn.Hardswish) for m in model.modules())
    assert ("hard_swish" in names) == (uses_hardswish and level >= 4)
    path = cm.save(tmp_path / f"{name}.ptl")
    with nc.virtual_device(feature_level=level) as dev:
        got = _load_for_lite_interpreter(str(path))(x)
    assert not dev.errors
    _assert_matches(got, ref, f"{name}@fl{level}")


class _HardSwishNet(nn.Module):
    """Small, and uses HARD_SWISH from FL4: what an FL4 artifact has that FL3 lacks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.hardswish(self.conv(x))
        return self.fc(y.mean((2, 3)))


@pytest.fixture(scope="module")
def hardswish_net() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = _HardSwishNet().eval()
    x = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        return model, x, model(x)


def test_newer_artifact_falls_back_to_cpu_once_on_an_older_device(hardswish_net) -> None:
    model, x, ref = hardswish_net
    cm = nc.compile(model, (x,), target="android-11")
    assert "hard_swish" in {op.mnemonic for op in cm.program.ops}
    with nc.virtual_device(feature_level=3) as dev:
        with pytest.warns(RuntimeWarning, match="running on the CPU"):
            first = cm(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once: the second call is silent
            second = cm(x)
    assert any("HARD_SWISH" in e for e in dev.errors)
    _assert_matches(first, ref, "fl4 on fl3 (cpu)")
    _assert_matches(second, ref, "fl4 on fl3 (cpu, again)")


def test_newer_artifact_without_fallback_fails_cleanly(hardswish_net, tmp_path: Path) -> None:
    model, x, _ = hardswish_net
    cm = nc.compile(model, (x,), target="android-11", cpu_fallback=False)
    with nc.virtual_device(feature_level=3) as dev, pytest.raises(NnapiCompilerError) as e:
        cm(x)
    assert "NNAPI returned error: 4" in str(e.value)  # ANEURALNETWORKS_BAD_DATA
    assert any("HARD_SWISH) needs feature level 4" in m for m in dev.errors), dev.errors
    path = cm.save(tmp_path / "fl4.ptl")  # the app's view: torch's runtime raises, no numbers
    with nc.virtual_device(feature_level=3), pytest.raises(RuntimeError):
        _load_for_lite_interpreter(str(path))(x)


@pytest.mark.parametrize("level", range(3, 8))
def test_artifact_one_level_too_new_never_gives_wrong_numbers(level: int, hardswish_net) -> None:
    """Compiled for level+1 and run at level: right numbers (through NNAPI when nothing in it
    needs the newer level, else through the CPU path with a warning)."""
    model, x, ref = hardswish_net
    cm = nc.compile(model, (x,), target=level + 1)
    with warnings.catch_warnings(record=True) as caught, nc.virtual_device(feature_level=level):
        warnings.simplefilter("always")
        got = cm(x)
    fell_back = any("running on the CPU" in str(w.message) for w in caught)
    assert fell_back == (level == 3)  # only FL4 adds something this model uses (HARD_SWISH)
    _assert_matches(got, ref, f"fl{level + 1} on fl{level}")
