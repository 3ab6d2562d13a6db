"""Comparisons, logic, where / masked_fill and argmax / argmin (issue 10): eager vs the compiled
artifact on the virtual device, in both capture dialects (fx symbolic trace and torch.export
ATen), each compiled whole to NNAPI with no host op. Bool and int64 results come back as bool
and int64 (carried as NNAPI int32, cast by the wrapper) and must match exactly."""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ..conftest import Fn, compile_whole
from .test_converters_ops import IMG, SEQ


def _floors(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.floor(x * 2), torch.floor(x.roll(1, -1) * 2)  # many equal pairs


def _pair(t: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    return t[0], t[1]


class ArgmaxHead(nn.Module):
    """A segmentation head's per-pixel class (argmax over channels of an NHWC conv output)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 5, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).argmax(1)


CASES: dict[str, tuple] = {
    # comparisons: tensors, broadcast tensors, Python scalars on either side
    "gt-scalar": (lambda: Fn(lambda x: x > 0.25), IMG),
    "compare-all": (lambda: Fn(lambda x: (
        _floors(x)[0] == _floors(x)[1], _floors(x)[0] != _floors(x)[1], x < x[:, :1],
        x <= 0.5, x[..., :1] >= x, 0.1 < x)), IMG),  # noqa: SIM300  (the reflected spelling)
    "compare-functions": (lambda: Fn(lambda x: (
        torch.eq(*_floors(x)), torch.ne(x, 0.0), torch.lt(x, x.roll(2, 1)), torch.le(x, 1),
        torch.gt(x, -x), torch.ge(x, x.relu()), torch.greater(x, 0.5), x.less_equal(x * 2))), SEQ),
    "compare-methods": (lambda: Fn(lambda x: (x.eq(x.floor()), x.ne(1.0), x.lt(0), x.le(x.roll(1, 0)),
                                              x.gt(x.abs()), x.ge(-0.5))), SEQ),
    # logic
    "logical-operators": (lambda: Fn(lambda x: ((x > 0) & (x < 1)) | ~(x > -0.5)), IMG),
    "logical-functions": (lambda: Fn(lambda x: torch.logical_or(
        torch.logical_and(x > 0, x[:, :1] < 0.5), torch.logical_not(x < -1))), SEQ),
    "logical-methods": (lambda: Fn(lambda x: (x > 0).logical_and(x < 1).logical_or(x > 2)
                                   .logical_not()), SEQ),
    # where / masked_fill
    "where": (lambda: Fn(lambda x: torch.where(x > 0, x, x * 0.1)), IMG),
    "where-scalars": (lambda: Fn(lambda x: torch.where(x < 0, 0.0, x) + torch.where(x > 1, x, -2.0)),
                      IMG),
    "where-broadcast": (lambda: Fn(lambda x: torch.where(x[:, :1] > 0, x, x[..., :1])), IMG),
    "where-method": (lambda: Fn(lambda x: x.where(x.abs() < 1, x * 0.5)), SEQ),
    "where-logic": (lambda: Fn(lambda x: torch.where((x > -1) & (x < 1), x.relu(), -x)), SEQ),
    "masked-fill": (lambda: Fn(lambda x: x.masked_fill(x < -0.5, -1e4)), SEQ),
    "masked-fill-broadcast": (lambda: Fn(lambda x: x.masked_fill(x[:, :1] > 0, float("-inf"))
                                         .softmax(-1)), SEQ),
    "masked-fill-tensor": (lambda: Fn(lambda x: torch.masked_fill(x, x > 1, torch.tensor(3.0))), IMG),
    # argmax / argmin (int64 in PyTorch, int32 in NNAPI)
    "argmax-dim": (lambda: Fn(lambda x: torch.argmax(x, 1)), IMG),
    "argmax-keepdim": (lambda: Fn(lambda x: x.argmax(dim=-1, keepdim=True)), SEQ),
    "argmax-all-keepdim": (lambda: Fn(lambda x: torch.argmax(x, keepdim=True)), IMG),
    "argmax-all": (lambda: Fn(lambda x: x.argmax()), SEQ),
    "argmin": (lambda: Fn(lambda x: (torch.argmin(x, 2), x.argmin(-1, True))), IMG),
    "argmin-all": (lambda: Fn(lambda x: torch.argmin(x)), IMG),
    "argmax-head": (ArgmaxHead, IMG),
    "argmax-compare": (lambda: Fn(lambda x: (x.argmax(-1) == 3, x.argmax(-1) > x.argmin(-1))), SEQ),
    "argmax-ties": (lambda: Fn(lambda x: F.relu(x).argmax(1)), IMG),  # zeros tie: first index
    # topk (TOPK_V2 on the last dim; indices int64 in PyTorch)
    "topk": (lambda: Fn(lambda x: _pair(torch.topk(x, 3))), SEQ),
    "topk-fields": (lambda: Fn(lambda x: (x.topk(4, -1).values * 2, torch.topk(x, 2, dim=3).indices)), IMG),
    "topk-smallest": (lambda: Fn(lambda x: _pair(x.topk(5, largest=False))), SEQ),
    "topk-all": (lambda: Fn(lambda x: (x.topk(12)[0] - x, x.topk(12)[1] == 0)), SEQ),
    # index_select with a constant index (GATHER with immediate indices)
    "index-select-const": (lambda: Fn(lambda x: x.index_select(1, torch.tensor([3, 0, 0, 2]))), IMG),
    "index-select-fn": (lambda: Fn(lambda x: torch.index_select(x, -1, torch.tensor([4, 1]))), SEQ),
}


class Lookup(nn.Module):
    """Token ids (int64 model input) through an embedding, then a reduction and a gather of
    embedding rows chosen by the data (GATHER with run-time int32 indices)."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(11, 6, padding_idx=0)
        self.table = nn.Parameter(torch.randn(7, 3))
        self.functional = functional

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = F.embedding(ids, self.emb.weight) if self.functional else self.emb(ids)
        pick = e.sum(-1).argmax(-1)  # int64 in PyTorch: one row of ``table`` per batch item
        return e * 2, self.table.index_select(0, pick) if self.functional else F.embedding(pick, self.table)


@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_converter(name: str, dialect: str) -> None:
    factory, shape = CASES[name]
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    compile_whole(factory(), torch.randn(*shape), dialect=dialect, cpu_fallback=True)


def test_bool_and_int64_outputs_keep_their_dtypes() -> None:
    from ..conftest import run_compiled

    _, got, ref = run_compiled(Fn(lambda x: (x > 0, x.argmax(-1), x.argmax())), torch.randn(*SEQ))
    assert [g.dtype for g in got] == [torch.bool, torch.int64, torch.int64]
    assert got[2].shape == ()
    for g, r in zip(got, ref, strict=True):
        assert torch.equal(g, r)


@pytest.mark.parametrize("dialect", ["fx", "export"])
@pytest.mark.parametrize("functional", [False, True])
def test_embedding_of_int64_ids(dialect: str, functional: bool) -> None:
    torch.manual_seed(3)
    ids = torch.randint(0, 11, (2, 5))
    compile_whole(Lookup(functional), ids, dialect=dialect, cpu_fallback=True)


def test_int64_ids_outside_int32_are_refused_not_wrapped() -> None:
    import nnapi_compiler as nc

    from ..conftest import run_compiled

    cm, _, _ = run_compiled(Lookup(False).eval(), torch.randint(0, 11, (2, 5)))
    with nc.virtual_device(), pytest.raises(Exception, match="outside the int32 range"):
        cm(torch.full((2, 5), 2**32 + 1))  # would wrap to id 1


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ["bool-to-float", "bool-mask-index", "int64-arith"])
def test_bool_and_int64_values_reach_host_code_with_their_dtypes(name: str) -> None:
    """Ops with no int / bool lowering run on the host and see PyTorch's dtypes: bool crosses the
    NNAPI boundary as int32 0 / 1 and int64 as int32, cast back before the torch call."""
    from ..conftest import run_compiled

    f = {"bool-to-float": lambda x: (x > 0).cumsum(-1).float() * x,
         "bool-mask-index": lambda x: x[x.argmax(-1) > 3],
         "int64-arith": lambda x: (x.argmax(-1) * 2, x.argmax(-1).float())}[name]
    cm, got, ref = run_compiled(Fn(f), torch.randn(2, 5, 6))
    assert cm.stats["host_ops"] >= 1
    for g, r in zip(*(v if isinstance(v, tuple) else (v,) for v in (got, ref)), strict=True):
        assert g.dtype == r.dtype and torch.equal(g, r)


def test_artifacts_with_casts_load_on_torch_21(tmp_path: Path) -> None:
    """The wrapper's int64 narrowing check and bool / int64 casts use only operators PyTorch
    Mobile 2.1 has (``save`` checks the .ptl against its operator list)."""
    import nnapi_compiler as nc

    cm = nc.compile(Lookup(True).eval(), (torch.randint(0, 11, (2, 5)),))
    cm.save(tmp_path / "lookup.ptl")
    model = Fn(lambda x: (x.topk(3)[1], x > 0, x.argmax(-1), (x > 0).float())).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # (x > 0).float() runs on the host
        cm = nc.compile(model, (torch.randn(2, 5, 6),))
    cm.save(tmp_path / "logic.ptl")


class ConvArgmin(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv, self.dim = nn.Conv2d(4, 5, 3, padding=1), dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).argmin(self.dim)


@pytest.mark.parametrize(("dim", "conversions"), [(1, 0), (2, 1), (3, 1), (0, 1)])
def test_argmin_of_an_nhwc_image(dim: int, conversions: int) -> None:
    """Over channels ARGMIN reads NHWC data directly (axis 3; N, H, W keep their order); over
    another axis the remaining dims would be out of PyTorch's order, so it reads NCHW."""
    from ..conftest import run_compiled

    torch.manual_seed(dim)
    cm, got, ref = run_compiled(ConvArgmin(dim).eval(), torch.randn(2, 4, 7, 9))
    assert torch.equal(got, ref)
    assert cm.stats["layout_conversions"] == conversions
