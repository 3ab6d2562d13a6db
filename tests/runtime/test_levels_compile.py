"""Rank > 4 at a model's edge (issue 9): a rank-5 input flattened by nn.Flatten, or a result
viewed as rank 5, compiles into a model the device accepts at every level: the RESHAPE that
NNAPI cannot take runs on the CPU, with the rank rule as the reason, and the numbers match."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nnapi_compiler as nc


class FlattenIn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(2 * 3 * 4 * 5, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.flat(x)))


class ViewOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 120)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x))).view(1, 2, 3, 4, 5)


@pytest.mark.parametrize("level", [3, 4, 8])
@pytest.mark.parametrize(("cls", "shape"), [(FlattenIn, (1, 2, 3, 4, 5)), (ViewOut, (1, 8))])
def test_rank5_edges_compile_to_a_legal_model(cls: type, shape: tuple[int, ...], level: int) -> None:
    torch.manual_seed(0)
    model, x = cls().eval(), torch.randn(*shape)
    report = str(nc.explain(model, (x,), target=level))
    assert "rank 5" in report  # the reason: the rank rule
    with pytest.warns(UserWarning, match="rank 5"):
        cm = nc.compile(model, (x,), target=level)
    assert cm.stats["segments"] >= 1  # the rest still runs on NNAPI
    with nc.virtual_device(feature_level=level) as dev:
        got = cm(x)
    assert not dev.errors, dev.errors  # nothing the device refused
    torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)
    for seg_model in dev.finished_models:
        for d in seg_model.operands:
            assert len(d.dims) <= 4
