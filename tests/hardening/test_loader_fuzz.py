"""Malformed ser_model bytes and weights through torch's real NNAPI runtime and our reader."""

from __future__ import annotations

import copy
import gc
import struct
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nnapi_compiler as nc
from nnapi_compiler.backend.ser_model import write_ser_model
from nnapi_compiler.ir.codes import OpCode, ResultCode
from nnapi_compiler.runtime.device import live_handles

from ..fuzz.profiles import examples
from .loader import feed, memory_cap, read_outcome
from .malformed import CRASHING_HEADER_WORDS, Seed, as_tensor, mutations, negative_header, seeds

SEEDS = seeds()
STATS: Counter[str] = Counter()  # what the runs below tried; docs/fuzzing.md quotes the totals


@pytest.fixture(scope="module", autouse=True)
def _memory_cap() -> object:
    """A model that slips past the driver's size limits fails its test (shrunk by hypothesis)
    instead of driving the machine out of memory (the nightly run once reached 22.5 GB)."""
    with memory_cap() as cap:
        yield cap


@pytest.fixture(scope="module", autouse=True)
def _no_leaks() -> object:
    """Every rejected model, compilation and execution is freed again."""
    gc.collect()
    before = live_handles()
    yield
    gc.collect()
    assert live_handles() == before
    print(f"\nmalformed-input totals: {dict(STATS)}")


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        assert feed(as_tensor(seed.raw), seed.weights, Counter()) == "accepted, ran"
        assert read_outcome(seed.raw, seed.weights) == "parsed"


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
def test_structured_mutations_fail_cleanly(seed: Seed) -> None:
    outcomes: Counter[str] = Counter()
    for m in mutations(seed):
        outcome = feed(m.ser, m.weights, STATS)
        outcomes[outcome] += 1
        ours = read_outcome(m.ser, m.weights)
        if outcome == "loader":  # read_ser_model is at least as strict as torch's own loader
            assert ours == "rejected", f"{m.what}: torch's loader refuses it, read_ser_model parsed it"
    assert outcomes["loader"] and outcomes["device"], outcomes  # both defence layers were exercised
    assert sum(outcomes.values()) > 300


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
def test_reader_rejects_what_crashes_torch(seed: Seed) -> None:
    """Negative operand/value/operation counts crash torch's own loader (reported upstream);
    read_ser_model refuses every one of them with SerModelError."""
    for word in CRASHING_HEADER_WORDS:
        for v in (-1, -1000, -(2**23), -(2**31)):
            b = bytearray(seed.raw)
            struct.pack_into("<i", b, 4 * word, v)
            assert read_outcome(bytes(b), seed.weights) == "rejected"
            STATS["reader only"] += 1


@settings(max_examples=examples(10.0))
@given(seed_index=st.integers(0, len(SEEDS) - 1),
       flips=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), min_size=1, max_size=8))
def test_random_byte_flips_fail_cleanly(seed_index: int, flips: list[tuple[int, int]]) -> None:
    seed = SEEDS[seed_index]
    b = bytearray(seed.raw)
    for pos, value in flips:
        b[pos % len(b)] = value
    raw = bytes(b)
    ours = read_outcome(raw, seed.weights)
    if negative_header(raw):
        assert ours == "rejected"
        STATS["reader only"] += 1
        return
    if feed(as_tensor(raw), seed.weights, STATS) == "loader":
        assert ours == "rejected", "torch's loader refuses it, read_ser_model parsed it"


@settings(max_examples=examples(3.0))
@given(counts=st.tuples(*[st.integers(0, 8)] * 5), body=st.binary(max_size=512),
       weights=st.lists(st.binary(min_size=1, max_size=64), max_size=2))
def test_random_bodies_behind_a_valid_header_fail_cleanly(
    counts: tuple[int, ...], body: bytes, weights: list[bytes]
) -> None:
    raw = struct.pack("<6i", 1, *counts) + body
    w = tuple(torch.frombuffer(bytearray(x), dtype=torch.uint8) for x in weights)
    ours = read_outcome(raw, w)
    if feed(as_tensor(raw), w, STATS) == "loader":
        assert ours == "rejected", "torch's loader refuses it, read_ser_model parsed it"


@pytest.mark.parametrize("pad", [2**14, 2**16 + 3])
def test_a_huge_padding_is_refused_before_allocating(pad: int) -> None:
    """Regression (nightly OOM at 22.5 GB): a damaged depthwise-conv padding made the driver pad a
    4x4 input to gigabytes. Model_finish now refuses it with OUT_OF_MEMORY, allocating nothing."""
    model = copy.deepcopy(SEEDS[2].model)
    conv = next(op for op in model.operations if op.code == OpCode.DEPTHWISE_CONV_2D)
    model.values[conv.inputs[3]] = struct.pack("<i", pad)  # left padding
    oom = f"Model_finish ?failed with error {int(ResultCode.OUT_OF_MEMORY)}"
    with nc.virtual_device() as dev:
        with pytest.raises(RuntimeError, match=oom):
            torch.classes._nnapi.Compilation().init2(write_ser_model(model), [], 1, False)
        assert "beyond the device's limit" in dev.errors[-1]
