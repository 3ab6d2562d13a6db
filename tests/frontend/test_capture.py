"""Capture: torch.export fallback for shape-reading Python, output structures, clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnapi_compiler as nc
from nnapi_compiler.frontend.capture import capture

from ..conftest import Fn


class ShapeReader(nn.Module):
    """``b, c, h, w = x.size()`` and a Python branch on a shape: symbolic tracing fails."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.size()  # noqa: RUF059 - the pattern under test
        y = F.relu(self.conv(x))
        if x.shape[-1] < 16:
            y = F.interpolate(y, scale_factor=2)
        return y.view(b, 8, -1).mean(-1)


class MultiOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        a = self.conv(x)
        return {"sum": a + y, "pair": (a.relu(), [a.sigmoid(), x]), "n": 3}


def test_shape_reading_model_uses_export(check) -> None:
    model = ShapeReader().eval()
    assert capture(model, (torch.randn(2, 3, 10, 10),)).dialect == "export"
    check(model, torch.randn(2, 3, 10, 10))


def test_export_takes_other_branch_for_other_shape(check) -> None:
    check(ShapeReader().eval(), torch.randn(1, 3, 20, 20))


def test_nested_output_structure_and_two_inputs(check) -> None:
    cm = check(MultiOut().eval(), torch.randn(2, 3, 5, 5), torch.randn(2, 4, 5, 5))
    names = [a.name for a in cm.script_module.forward.schema.arguments]
    assert names == ["self", "x", "y"]


@pytest.mark.parametrize("container", [tuple, list])
def test_sequence_outputs(container, check) -> None:
    check(Fn(lambda x: container([x.relu(), x * 2])), torch.randn(1, 2, 3, 3))


def test_unsupported_ops_are_all_listed_with_source_lines() -> None:
    class Bad(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.cumsum(x, 1)
            z = torch.atan(x)  # erf has a lowering since issue 10
            return y + z

    with pytest.raises(nc.UnsupportedError) as e:
        nc.compile(Bad().eval(), (torch.randn(1, 3),), fallback="error")
    msg = str(e.value)
    assert "cumsum" in msg and "atan" in msg
    assert "test_capture.py" in msg and "torch.cumsum(x, 1)" in msg
    assert len(e.value.refusals) == 2


def test_train_mode_is_refused() -> None:
    with pytest.raises(nc.ConversionError, match="training mode"):
        nc.compile(nn.Conv2d(1, 1, 1), (torch.randn(1, 1, 2, 2),))


def test_old_target_compiles_cpu_only_with_a_clear_warning() -> None:
    x = torch.randn(2, 3)
    with pytest.warns(UserWarning, match="Android 10 \\(API 29\\).*entirely on the CPU"):
        cm = nc.compile(nn.ReLU().eval(), (x,), target="android-9")
    assert cm.stats["segments"] == 0 and cm.stats["cpu_segments"] == 1
    torch.testing.assert_close(cm(x), x.relu())  # no NNAPI library (and no virtual device) needed


def test_non_float_input_is_refused() -> None:
    with pytest.raises(nc.ConversionError, match="float32"):
        nc.compile(nn.ReLU().eval(), (torch.ones(2, dtype=torch.int16),))  # int64: indices


def test_negative_alpha_elu_is_refused_not_miscomputed() -> None:
    with pytest.raises(nc.UnsupportedError, match="negative alpha"):
        nc.compile(nn.ELU(-0.5).eval(), (torch.randn(2, 3),), fallback="error")
    report = nc.explain(nn.ELU(-0.5).eval(), (torch.randn(2, 3),))
    assert "negative alpha" in str(report)  # with the default fallback it runs on the CPU


def test_bad_target_raises_our_error() -> None:
    with pytest.raises(nc.ConversionError, match="unknown target"):
        nc.compile(nn.ReLU().eval(), (torch.randn(2),), target="android-99")


def test_explain_lists_each_node_and_refusals() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    rows = {r.node: r for r in nc.explain(model, (torch.randn(1, 3, 8, 8),)).rows}
    assert rows["_0"].where == "NNAPI segment 0" and rows["_0"].detail == "CONV_2D"
    assert rows["_2"].where == "folded away"
    refused = str(nc.explain(Fn(lambda x: torch.cumsum(x, 1)).eval(), (torch.randn(1, 3),)))
    assert "CPU (host code)" in refused and "cumsum" in refused and "no NNAPI lowering" in refused


def test_compile_time_input_mistakes_raise_our_errors() -> None:
    model = nn.ReLU().eval()
    with pytest.raises(nc.CaptureError, match="takes 1 positional inputs"):
        nc.compile(model, (torch.randn(2), torch.randn(2)))
    with pytest.raises(nc.ConversionError, match="target must be"):
        nc.compile(model, (torch.randn(2),), target=None)  # type: ignore[arg-type]
    with pytest.raises(nc.ConversionError, match="rank 0"):
        nc.compile(model, (torch.tensor(1.0),))
    # A size-0 dim is torch.backends._nnapi's mark of a dynamic dim (issue 9), not a mistake.
    cm = nc.compile(model, (torch.randn(0, 3),))
    with nc.virtual_device():
        x = torch.randn(5, 3)
        assert torch.equal(cm(x), torch.relu(x))


def test_fc_after_rank_one_value_keeps_its_reshape(check) -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(1, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.mean((1, 2, 3)).unsqueeze(1))

    check(M().eval(), torch.randn(2, 3, 4, 4))


def test_export_captured_same_padding_conv(check) -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding="same")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, c, h, w = x.shape  # noqa: RUF059 - forces torch.export
            return self.conv(x).view(b, 4, -1)

    check(M().eval(), torch.randn(2, 3, 5, 5))
