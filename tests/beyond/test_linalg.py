"""matmul / bmm / mm / @ / einsum: whole NNAPI at FL3 (FC, MUL+REDUCE_SUM, unrolled FC) and FL6
(BATCH_MATMUL), in both capture dialects, vs eager on the virtual device."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnapi_compiler.frontend.converters import linalg

from ..conftest import Fn
from .helpers import compile_whole, op_counts


class ConstRight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.w)


class EinsumWeight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bnd,dk->bnk", x, self.w)


class AddmmConst(nn.Module):
    """``torch.addmm`` with a constant bias and weight (what a traced linear layer can be)."""

    def __init__(self, beta: float, alpha: float) -> None:
        super().__init__()
        self.beta, self.alpha = beta, alpha
        self.register_buffer("w", torch.randn(6, 5))
        self.register_buffer("b", torch.randn(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b, x, self.w, beta=self.beta, alpha=self.alpha)


def _ab(*shapes: tuple[int, ...]) -> list[torch.Tensor]:
    return [torch.randn(*s) for s in shapes]


CASES = {
    "matmul-2d": (lambda: Fn(lambda a: torch.matmul(a, a.t())), [(4, 6)]),
    "matmul-3d": (lambda: Fn(lambda a: a @ a.transpose(1, 2)), [(2, 4, 6)]),
    "matmul-4d-heads": (lambda: Fn(lambda a: torch.matmul(a, a.transpose(-2, -1)) @ a), [(2, 3, 5, 4)]),
    "matmul-method": (lambda: Fn(lambda a: a.matmul(a.permute(0, 2, 1).relu())), [(3, 4, 6)]),
    "matmul-batch-vs-matrix": (lambda: Fn(lambda a: a @ a[0].t()[:, :3].relu()), [(2, 4, 6)]),
    "matmul-matrix-vs-batch": (lambda: Fn(lambda a: a[0, :, :3].t().relu() @ a), [(2, 4, 6)]),
    "matmul-vector": (lambda: Fn(lambda a: torch.matmul(a, a[0, 0])), [(2, 4, 6)]),
    "matmul-const-weight": (ConstRight, [(2, 4, 6)]),
    "bmm": (lambda: Fn(lambda a: torch.bmm(a, a.transpose(1, 2).tanh())), [(3, 4, 5)]),
    "mm": (lambda: Fn(lambda a: torch.mm(a, a.t().sigmoid())), [(4, 5)]),
    "einsum-bmm": (lambda: Fn(lambda a: torch.einsum("bij,bjk->bik", a, a.transpose(1, 2))), [(2, 4, 5)]),
    "einsum-qk": (lambda: Fn(lambda a: torch.einsum("bhqd,bhkd->bhqk", a, a * 2)), [(1, 2, 5, 4)]),
    "einsum-transpose": (lambda: Fn(lambda a: torch.einsum("ij->ji", a) + 1), [(4, 5)]),
    "einsum-sum": (lambda: Fn(lambda a: torch.einsum("bij->bj", a)), [(2, 4, 5)]),
    "einsum-outer": (lambda: Fn(lambda a: torch.einsum("i,j->ij", a[0], a[1])), [(2, 5)]),
    "einsum-mul-sum": (lambda: Fn(lambda a: torch.einsum("bnc,bnc->bn", a, a.tanh())), [(2, 4, 5)]),
    "einsum-weight": (EinsumWeight, [(2, 4, 6)]),
    "sum-dim": (lambda: Fn(lambda a: a.sum(1, True) + torch.sum(a, dim=(0, 2), keepdim=True)), [(2, 4, 6)]),
    "sum-all": (lambda: Fn(lambda a: a * a.sum()), [(2, 3, 4, 5)]),
    "linear-run-time-weight": (lambda: Fn(lambda a: F.linear(a, a[0].tanh(), a[1, :, 0])), [(2, 4, 4)]),
    "addmm-const": (lambda: AddmmConst(1.0, 1.0), [(3, 6)]),
    "addmm-scaled": (lambda: AddmmConst(0.5, -2.0), [(3, 6)]),
    "addmm-run-time": (lambda: Fn(lambda a: torch.addmm(a[0], a, a.t().tanh(), beta=2.0, alpha=0.5)),
                       [(4, 4)]),
}


@pytest.mark.parametrize("target", ["android-10", "fl6"])
@pytest.mark.parametrize("name", list(CASES))
def test_linalg_fx(name: str, target: str) -> None:
    make, shapes = CASES[name]
    compile_whole(make(), *_ab(*shapes), target=target)


@pytest.mark.parametrize("target", ["android-10", "fl6"])
@pytest.mark.parametrize("name", ["matmul-4d-heads", "bmm", "mm", "einsum-qk", "matmul-const-weight",
                                  "matmul-vector", "einsum-weight", "sum-dim", "sum-all",
                                  "linear-run-time-weight", "addmm-const", "addmm-scaled",
                                  "addmm-run-time"])
def test_linalg_export(name: str, target: str) -> None:
    make, shapes = CASES[name]
    compile_whole(make(), *_ab(*shapes), dialect="export", target=target)


def test_fl6_reads_transposed_operands_through_adj_flags() -> None:
    cm = compile_whole(Fn(lambda a: (a.transpose(1, 2) @ a.relu()) @ a.transpose(1, 2)), torch.randn(2, 4, 6),
                       target="fl6")
    counts = op_counts(cm)
    assert counts.get("batch_matmul") == 2 and "transpose" not in counts, counts


def test_fl3_one_batch_is_one_fully_connected_with_run_time_weights() -> None:
    cm = compile_whole(Fn(lambda a: a @ a.t()), torch.randn(4, 6))
    assert op_counts(cm) == {"fully_connected": 1}


def test_addmm_of_a_constant_weight_and_bias_is_one_fully_connected() -> None:
    cm = compile_whole(AddmmConst(1.0, 1.0), torch.randn(3, 6))
    assert op_counts(cm) == {"fully_connected": 1}


def test_fl3_large_batches_unroll_to_fully_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linalg, "BROADCAST_LIMIT", 0)
    cm = compile_whole(Fn(lambda a: a @ a.transpose(1, 2)), torch.randn(3, 4, 6))
    counts = op_counts(cm)
    assert counts["fully_connected"] == 3 and counts["concatenation"] == 1 and "mul" not in counts


def test_matmul_broadcasting_both_batches_runs_on_cpu() -> None:
    """Batch dims that broadcast against each other are refused (host code), not miscompiled."""
    from ..conftest import assert_close_scaled, run_compiled

    with pytest.warns(UserWarning):
        model = Fn(lambda a: a[:, None] @ a[None].transpose(-1, -2))
        cm, got, ref = run_compiled(model, torch.randn(2, 3, 4))
    assert_close_scaled(got, ref)
    assert cm.stats["host_ops"] >= 1
