"""Malformed ser_model / weights inputs: valid seed models and structured mutations of them."""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.backend.ser_model import read_ser_model, write_ser_model
from nnapi_compiler.ir.codes import OpCode, OperandCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes

Weights = tuple[torch.Tensor, ...]
HEADER_WORDS = 6
#: Header words whose negative values make torch's own loader (nnapi_model_loader.cpp) read
#: before the buffer: operand_count, value_count, operation_count. Reported as a torch bug; our
#: reader rejects them, and they are not fed to the real runtime in-process.
CRASHING_HEADER_WORDS = (1, 2, 3)
BIG = (2**24 - 1, 2**24, 2**31 - 1)
U32_EDGES = (2**31, 2**32 - 1, 2**32 - 4, 2**30, 65536)
#: Scalar parameters that ask for huge work (a padding of 2**14 pads a 4x4 input to 1 GB).
SCALAR_EDGES = (-1, 2**14, 2**16 + 3, 2**24, 2**31 - 1)


@dataclass(frozen=True)
class Seed:
    """A valid serialized model: its bytes, weights and the layout of its records."""

    name: str
    raw: bytes
    weights: tuple[torch.Tensor, ...]
    model: FlatModel

    @property
    def counts(self) -> tuple[int, ...]:
        return struct.unpack_from("<6i", self.raw)


@dataclass(frozen=True)
class Malformed:
    what: str
    ser: torch.Tensor
    weights: tuple[torch.Tensor, ...]


def _add_model() -> FlatModel:
    t = OperandDesc(OperandCode.TENSOR_FLOAT32, (2, 3))
    return FlatModel([t, t, OperandDesc(OperandCode.INT32), t], {2: scalar_bytes(OperandCode.INT32, 0)},
                     [OperationDesc(OpCode.ADD, (0, 1, 2), (3,))], [0, 1], [3])


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1, groups=3)
        self.fc = nn.Linear(6 * 2 * 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.max_pool2d(nn.functional.hardswish(self.conv(x)), 2, ceil_mode=True)
        return torch.softmax(self.fc(y.flatten(1)), dim=1)


def seeds() -> list[Seed]:
    """Three valid models: immediate values only, and one compiled net with weight buffers at
    FL3 (hardswish decomposed) and FL4 (HARD_SWISH)."""
    torch.manual_seed(0)
    out = [Seed("add", bytes(write_ser_model(_add_model()).numpy().tobytes()), (), _add_model())]
    for name, target in (("net-fl3", "android-10"), ("net-fl4", "android-11")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            cm = nc.compile(_Net().eval(), (torch.randn(1, 3, 4, 4),), target=target)
        raw = bytes(cm.segment.ser_model.numpy().tobytes())
        out.append(Seed(name, raw, tuple(cm.segment.weights), read_ser_model(raw, cm.segment.weights)))
    return out


def __getattr__(name: str) -> object:
    if name == "SEEDS_FOR_TESTS":  # built on first use: compiling the seeds takes a second
        globals()[name] = seeds()
        return globals()[name]
    raise AttributeError(name)


def as_tensor(raw: bytes) -> torch.Tensor:
    """int32 when the length allows (as the runtime's writer emits), else uint8 (also accepted)."""
    dtype = torch.int32 if len(raw) % 4 == 0 and raw else torch.uint8
    return torch.frombuffer(bytearray(raw), dtype=dtype).clone() if raw else torch.empty(0, dtype=torch.int32)


def negative_header(raw: bytes) -> bool:
    words = struct.unpack_from("<6i", raw) if len(raw) >= 24 else (0,) * 6
    return any(words[i] < 0 for i in CRASHING_HEADER_WORDS)


def _put(raw: bytes, offset: int, fmt: str, value: int | float) -> bytes:
    b = bytearray(raw)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def _offsets(seed: Seed) -> dict[str, list[int]]:
    """Byte offsets of every record kind in ``seed.raw`` (parsed the way the loader does)."""
    n_opd, n_val, n_op, n_in, n_out = seed.counts[1:]
    pos = HEADER_WORDS * 4
    off: dict[str, list[int]] = {"operand": [], "value": [], "operation": [], "dims": [], "payload": [],
                                 "args": [], "io": []}
    for name, count in (("operand", n_opd), ("value", n_val), ("operation", n_op)):
        for _ in range(count):
            off[name].append(pos)
            pos += 16 if name == "operand" else 12
    for o in off["operand"]:
        off["dims"] += [pos + 4 * i for i in range(struct.unpack_from("<I", seed.raw, o + 4)[0])]
        pos += 4 * struct.unpack_from("<I", seed.raw, o + 4)[0]
    for v in off["value"]:
        off["payload"].append(pos)
        length = struct.unpack_from("<I", seed.raw, v + 8)[0]
        pos += length + (-length % 4)
    off["args"] = list(range(pos, pos + 4 * sum(
        sum(struct.unpack_from("<II", seed.raw, o + 4)) for o in off["operation"]), 4))
    pos = off["args"][-1] + 4 if off["args"] else pos
    off["io"] = list(range(pos, pos + 4 * (n_in + n_out), 4))
    return off


def structured(seed: Seed) -> Iterator[tuple[str, bytes, Weights]]:
    """Every structured mutation of ``seed``: (description, bytes, weights)."""
    raw, w = seed.raw, seed.weights
    n_opd = seed.counts[1]
    for cut in range(0, len(raw), 4 if len(raw) < 2000 else 12):
        yield f"truncated to {cut}", raw[:cut], w
    yield "one byte short", raw[:-1], w
    yield "trailing word", raw + b"\0\0\0\0", w
    for v in (0, 2, -1, 2**31 - 1):
        yield f"version {v}", _put(raw, 0, "<i", v), w
    for i in range(1, HEADER_WORDS):
        for v in (seed.counts[i] + 1, max(seed.counts[i] - 1, 0), *BIG):
            yield f"header word {i} = {v}", _put(raw, 4 * i, "<i", v), w
    off = _offsets(seed)
    codes = (-1, 10, 11, 10000, 2**31 - 1, *range(0, 16))
    for o in off["operand"]:
        for c in codes:
            yield f"operand@{o} type {c}", _put(raw, o, "<i", c), w
        for n in (9, 2**30, 2**32 - 1, 2**31):
            yield f"operand@{o} dim_count {n}", _put(raw, o + 4, "<I", n), w
        for s in (float("nan"), float("inf"), -1.0, 1e-45, 0.5):
            yield f"operand@{o} scale {s}", _put(raw, o + 8, "<f", s), w
        for z in (-1, 256, 2**31 - 1):
            yield f"operand@{o} zero_point {z}", _put(raw, o + 12, "<i", z), w
    for d in off["dims"]:
        for v in (0, *U32_EDGES):
            yield f"dim@{d} = {v}", _put(raw, d, "<I", v), w
    for o in off["value"]:
        for idx in (-1, n_opd, 2**31 - 1):
            yield f"value@{o} index {idx}", _put(raw, o, "<i", idx), w
        for src in (-1, 1, 3, 4):
            yield f"value@{o} source {src}", _put(raw, o + 4, "<i", src), w
        length = struct.unpack_from("<I", raw, o + 8)[0]
        for n in (0, length + 1, max(length - 1, 0), 0xFFFFFFFD, 0xFFFFFFFF, 2**31):
            yield f"value@{o} length {n}", _put(raw, o + 8, "<I", n), w
    for v, p in zip(off["value"], off["payload"], strict=True):
        if struct.unpack_from("<iI", raw, v + 4) == (0, 4):  # a scalar: padding, stride, size, ...
            for val in SCALAR_EDGES:
                yield f"scalar@{p} = {val}", _put(raw, p, "<i", val), w
        if struct.unpack_from("<iI", raw, v + 4) == (2, 12):
            for k, vals in enumerate(((len(w), 2**32 - 1), (2**32 - 4, 2**31, 10**6), (2**32 - 1, 10**6))):
                for val in vals:
                    yield f"buffer ref@{p} word {k} = {val}", _put(raw, p + 4 * k, "<I", val), w
    for o in off["operation"]:
        for c in (-1, 10000, *range(0, 102, 7)):
            yield f"operation@{o} code {c}", _put(raw, o, "<i", c), w
        n_in, n_out = struct.unpack_from("<II", raw, o + 4)
        for a, b in ((n_in + 1, n_out), (n_in - 1, n_out), (n_in, 0), (n_in, n_out + 1), (2**30, n_out),
                     (2**30 + 1, 2**32 - 2**30 - 1)):
            yield f"operation@{o} counts {a},{b}", _put(_put(raw, o + 4, "<I", a), o + 8, "<I", b), w
    for a in off["args"] + off["io"]:
        for v in (n_opd, 2**32 - 1, 0, 1, 2, 3):
            yield f"operand index@{a} = {v}", _put(raw, a, "<I", v), w
    yield from _weight_mutations(raw, w)


def _weight_mutations(raw: bytes, w: Weights) -> Iterator[tuple[str, bytes, Weights]]:
    if not w:
        yield "unexpected weight", raw, (torch.zeros(4),)
        return
    yield "no weights", raw, ()
    yield "extra weight", raw, (*w, torch.zeros(3))
    for i, t in enumerate(w):
        rest = (*w[:i], *w[i + 1 :])
        yield f"weight {i} dropped", raw, rest
        flat = t.reshape(-1)
        for what, new in (("empty", t[:0]), ("truncated", flat[:-1]), ("halved", flat[: t.numel() // 2]),
                          ("int8 view", t.contiguous().view(torch.int8)), ("float64", t.double()),
                          ("non-contiguous", flat.repeat(2)[::2])):
            yield f"weight {i} {what}", raw, (*w[:i], new, *w[i + 1 :])


def tensor_variants(seed: Seed) -> Iterator[Malformed]:
    """The ser_model tensor itself in the wrong dtype, shape or memory layout."""
    t = as_tensor(seed.raw)
    w = seed.weights
    yield Malformed("empty int32", torch.empty(0, dtype=torch.int32), w)
    yield Malformed("float32 view", t.view(torch.float32), w)
    yield Malformed("int64", t.to(torch.int64), w)
    yield Malformed("uint8 bytes", t.view(torch.uint8), w)  # valid: the runtime accepts uint8
    yield Malformed("non-contiguous", t.repeat_interleave(2)[::2], w)
    yield Malformed("2-d", t.reshape(2, -1) if t.numel() % 2 == 0 else t.reshape(1, -1), w)


def mutations(seed: Seed) -> Iterator[Malformed]:
    for what, raw, w in structured(seed):
        yield Malformed(f"{seed.name}: {what}", as_tensor(raw), w)
    yield from tensor_variants(seed)
