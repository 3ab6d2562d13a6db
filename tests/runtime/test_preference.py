"""``compile(preference=...)`` reaches ``ANeuralNetworksCompilation_setPreference`` unchanged,
by every spelling; a bad value is a ConversionError before anything is built; and the virtual
driver refuses an unknown code as a real one does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.ir.codes import PreferenceCode

P = PreferenceCode


def _model() -> tuple[nn.Module, torch.Tensor]:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval(), torch.randn(1, 3, 8, 8)


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        (P.PREFER_LOW_POWER, 0), (P.PREFER_FAST_SINGLE_ANSWER, 1), (P.PREFER_SUSTAINED_SPEED, 2),
        (0, 0), (1, 1), (2, 2),
        ("low_power", 0), ("fast-single-answer", 1), ("PREFER_SUSTAINED_SPEED", 2),
    ],
)
def test_preference_reaches_nnapi(spelling: object, code: int) -> None:
    model, x = _model()
    cm = nc.compile(model, (x,), preference=spelling)
    with nc.virtual_device() as dev:
        y = cm(x)
    torch.testing.assert_close(y, model(x))
    assert dev.calls["Compilation_setPreference"] == 1
    assert [(c.preference, c.relaxed) for c in dev.compilations] == [(code, False)]


def test_default_is_sustained_speed() -> None:
    model, x = _model()
    cm = nc.compile(model, (x,))
    with nc.virtual_device() as dev:
        cm(x)
    assert [c.preference for c in dev.compilations] == [P.PREFER_SUSTAINED_SPEED]


def test_preference_survives_save_and_load(tmp_path: object) -> None:
    from torch.jit.mobile import _load_for_lite_interpreter

    model, x = _model()
    path = nc.compile(model, (x,), preference="low_power").save(tmp_path / "m.ptl")  # type: ignore[operator]
    with nc.virtual_device() as dev:
        _load_for_lite_interpreter(str(path))(x)
    assert [c.preference for c in dev.compilations] == [P.PREFER_LOW_POWER]


@pytest.mark.parametrize("bad", [3, -1, True, "fastest", 1.0, None])
def test_bad_preference_is_a_clear_error(bad: object) -> None:
    model, x = _model()
    with pytest.raises(nc.ConversionError, match="preference must be one of"):
        nc.compile(model, (x,), preference=bad)
    with pytest.raises(nc.ConversionError, match="preference must be one of"):
        nc.explain(model, (x,), preference=bad)


def test_bad_relax_flag_is_a_clear_error() -> None:
    model, x = _model()
    with pytest.raises(nc.ConversionError, match="relax_f32_to_f16 must be a bool"):
        nc.compile(model, (x,), relax_f32_to_f16="yes")


def test_driver_refuses_unknown_preference() -> None:
    """A hand-edited artifact with preference 7: the driver answers BAD_DATA at setPreference,
    and torch's init2 raises (the CPU path is what the app falls back to)."""
    model, x = _model()
    cm = nc.compile(model, (x,), cpu_fallback=False)
    seg = cm.script_module.segment0
    seg.preference = 7
    with nc.virtual_device() as dev, pytest.raises(nc.NnapiRuntimeError):
        cm(x)
    assert any("Compilation_setPreference: unknown preference 7" in e for e in dev.errors)
    assert dev.compilations == []
