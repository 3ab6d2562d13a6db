"""The artifact's own ser_model check: at least as strict as the bounds-checked reader, plus a
checksum, so a corrupted ``.ptl`` fails with a clear error before torch's loader reads it."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc
from nnapi_compiler.backend.ser_check import check_structure, ser_checksum
from nnapi_compiler.backend.ser_model import read_ser_model
from nnapi_compiler.errors import SerModelError

from ..fuzz.profiles import examples, register
from ..hardening.malformed import SEEDS_FOR_TESTS as SEEDS
from ..hardening.malformed import as_tensor, structured

register()


def _sizes(weights: Sequence[torch.Tensor]) -> list[int]:
    return [w.numel() * w.element_size() for w in weights]


def _reader_parses(raw: bytes, weights: Sequence[torch.Tensor]) -> bool:
    try:
        read_ser_model(raw, weights)
    except SerModelError:
        return False
    return True


def _agrees(raw: bytes, weights: Sequence[torch.Tensor]) -> None:
    """Whatever the in-artifact check accepts, the bounds-checked reader parses."""
    if len(raw) % 4 or not raw or not all(w.is_contiguous() for w in weights):
        return  # the artifact holds int32 words and contiguous weights (torch refuses others)
    t = as_tensor(raw)
    if check_structure(t, _sizes(weights)) == "":
        assert _reader_parses(raw, weights), "the artifact's check accepts what the reader refuses"


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
def test_check_is_at_least_as_strict_as_the_reader(seed) -> None:
    assert check_structure(as_tensor(seed.raw), _sizes(seed.weights)) == ""
    rejected = 0
    for _, raw, weights in structured(seed):
        _agrees(raw, weights)
        rejected += len(raw) % 4 == 0 and bool(raw) and check_structure(as_tensor(raw), _sizes(weights)) != ""
    assert rejected > 100


@settings(max_examples=examples(2.0))
@given(seed_index=st.integers(0, len(SEEDS) - 1),
       flips=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), min_size=1, max_size=4))
def test_random_flips_pass_the_check_only_when_the_reader_parses(
    seed_index: int, flips: list[tuple[int, int]]
) -> None:
    seed = SEEDS[seed_index]
    b = bytearray(seed.raw)
    for pos, value in flips:
        b[pos % len(b)] = value
    _agrees(bytes(b), seed.weights)
    if bytes(b) != seed.raw:
        assert ser_checksum(as_tensor(bytes(b))) != ser_checksum(as_tensor(seed.raw))


def test_checksum_sees_truncation_swaps_and_single_words() -> None:
    t = torch.arange(1, 200, dtype=torch.int32) * 7919
    base = ser_checksum(t)
    assert ser_checksum(t[:-1]) != base
    swapped = t.clone()
    swapped[[3, 4]] = swapped[[4, 3]]
    assert ser_checksum(swapped) != base
    for i in range(0, len(t), 17):
        for delta in (1, -1, 2**31 - 2, 2**16):
            u = t.clone()
            u[i] = (int(u[i]) + delta + 2**31) % 2**32 - 2**31  # int32 wrap-around
            assert ser_checksum(u) != base, (i, delta)


def _corrupt(path: Path, ser: torch.Tensor, word: int, value: int) -> None:
    """Overwrite one int32 word of the serialized ser_model inside a saved file."""
    data = bytearray(path.read_bytes())
    raw = ser.numpy().tobytes()
    at = data.find(raw)
    assert at >= 0 and data.find(raw, at + 1) < 0, "the ser_model storage is not found exactly once"
    struct.pack_into("<i", data, at + 4 * word, value)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("where", "value", "match"), [
    ("operation count", 2**20, "truncated"),
    ("last word", 2**31 - 1, "names operand"),
    ("a dim", 12345, "checksum mismatch"),
])
def test_a_corrupted_ptl_fails_cleanly_before_any_nnapi_call(
    tmp_path: Path, where: str, value: int, match: str
) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    x = torch.randn(1, 3, 6, 6)
    cm = nc.compile(model, (x,))
    ser = cm.script_module.segment0.ser_model
    path = cm.save(tmp_path / "model.ptl")
    n_opd = int(ser[1])
    word = {"operation count": 3, "last word": len(ser) - 1,
            "a dim": 6 + 4 * n_opd + 3 * int(ser[2]) + 3 * int(ser[3])}[where]
    _corrupt(Path(path), ser, word, value)
    lite = _load_for_lite_interpreter(str(path))
    with nc.virtual_device() as dev, pytest.raises(torch.jit.Error, match=match):
        lite(x)
    assert not dev.calls  # refused before torch's loader made any NNAPI call
