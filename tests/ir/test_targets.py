"""``target=``: Android versions 8.1..15, "fl1".."fl8", plain levels and the NDK's feature-level
codes all name a feature level; anything else is a ConversionError naming the choices."""

from __future__ import annotations

import pytest
import torch

import nnapi_compiler as nc
from nnapi_compiler.api import _level
from nnapi_compiler.errors import ConversionError
from nnapi_compiler.ir.codes import ANDROID_LEVELS, FEATURE_LEVEL_CODES, parse_target
from nnapi_compiler.runtime.device_state import api_level

EXPECTED = {"android-8.1": 1, "android-9": 2, "android-10": 3, "android-11": 4, "android-12": 5,
            "android-13": 8, "android-14": 8, "android-15": 8}


@pytest.mark.parametrize(("target", "level"), sorted(EXPECTED.items()))
def test_android_versions(target: str, level: int) -> None:
    assert parse_target(target) == level == _level(target.upper())


@pytest.mark.parametrize("level", range(1, 9))
def test_fl_names_ints_and_ndk_codes(level: int) -> None:
    code = api_level(level)  # what ANeuralNetworksDevice_getFeatureLevel reports
    assert code == (26 + level if level <= 5 else 1_000_000 + level)
    assert parse_target(f"fl{level}") == parse_target(f"FL{level}") == parse_target(level) == level
    assert parse_target(code) == level and FEATURE_LEVEL_CODES[code] == level


@pytest.mark.parametrize("bad", ["android-16", "android-7", "fl9", "fl0", 0, 9, 32, 1000009, "13", 3.0,
                                 True, None])
def test_unknown_targets_are_conversion_errors(bad: object) -> None:
    with pytest.raises(ConversionError):
        _level(bad)  # type: ignore[arg-type]


def test_every_android_entry_is_documented() -> None:
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "user_guide.md").read_text()
    for name in ANDROID_LEVELS:
        assert f'`"{name}"`' in guide, name


def test_compile_accepts_android_15() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Hardswish()).eval()
    x = torch.randn(2, 4)
    cm = nc.compile(model, (x,), target="android-15")
    assert cm.level == 8
    with nc.virtual_device(feature_level=8):
        torch.testing.assert_close(cm(x), model(x), rtol=1e-5, atol=1e-5)
