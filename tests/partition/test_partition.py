"""Partial delegation end to end: host code between NNAPI segments, on the virtual device."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

import nnapi_compiler as nc
from nnapi_compiler.ir.model import Placement
from tests.conftest import assert_close_scaled, run_compiled

from . import models as M


def _eager(model: torch.nn.Module, *xs: torch.Tensor) -> object:
    with torch.no_grad():
        return model.eval()(*[x.clone() for x in xs])


def _reloaded(cm: nc.CompiledModel, tmp_path: Path, *xs: torch.Tensor) -> object:
    path = cm.save(tmp_path / "m.ptl")
    mod = _load_for_lite_interpreter(str(path))
    with nc.virtual_device(feature_level=cm.level):
        return mod(*xs)


def test_two_stacks_become_two_segments_with_host_code_between(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, x = M.TwoStacks(), torch.randn(1, 3, 12, 12)
    with pytest.warns(UserWarning, match="4 part\\(s\\) of the model run on the CPU"):
        cm, got, ref = run_compiled(model, x)
    assert_close_scaled(got, ref)
    assert cm.stats["segments"] == 2 and cm.stats["host_ops"] == 4  # sort's .values is a host call too
    assert cm.stats["layout_conversions"] == 0  # boundaries are host views, never TRANSPOSE
    assert [s.size for s in cm.graph.segments] == [2, 2]  # conv+BN+ReLU folds to one CONV_2D
    assert_close_scaled(_reloaded(cm, tmp_path, x), ref)


def test_fallback_error_lists_every_refused_node() -> None:
    with pytest.raises(nc.UnsupportedError) as e:
        nc.compile(M.TwoStacks().eval(), (torch.randn(1, 3, 8, 8),), fallback="error")
    assert {r.node for r in e.value.refusals} == {"cumsum", "flip", "sort"}
    assert "models.py" in str(e.value)  # each refusal names the user's source line


def test_weights_shared_between_segments_are_stored_once(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model, x = M.SharedWeights(), torch.randn(1, 8, 8, 8)
    cm, got, ref = run_compiled(model, x, cpu_fallback=False)
    assert_close_scaled(got, ref)
    a, b = (cm.segments[i].weights for i in cm.graph.nnapi_segments())
    assert a and all(any(w is v for v in b) for w in a)  # the very same tensor objects
    weights = sum(w.numel() * w.element_size() for w in a)
    size = cm.save(tmp_path / "m.ptl").stat().st_size
    assert size < 1.5 * weights + 60_000, (size, weights)


def test_inplace_host_op_does_not_leak_into_other_readers() -> None:
    torch.manual_seed(2)
    x = torch.randn(1, 3, 8, 8)
    cm, got, ref = run_compiled(M.InplaceHost(), x)
    assert cm.stats["host_ops"] == 1
    assert_close_scaled(got, ref)


def test_host_module_with_tuple_output() -> None:
    torch.manual_seed(3)
    x = torch.randn(1, 1, 8, 10)
    def projected(i: int, h: int, batch_first: bool) -> torch.nn.Module:
        # An LSTM with proj_size has no NNAPI lowering: the module runs as host code.
        return torch.nn.LSTM(i, 2 * h, batch_first=batch_first, proj_size=h)

    cm, got, ref = run_compiled(M.GruHead(projected), x)
    assert_close_scaled(got, ref)
    assert any(op.fn == "nn.LSTM" for op in cm.graph.host_ops())
    assert cm.stats["segments"] >= 2


def test_gru_head_runs_whole_on_nnapi() -> None:
    torch.manual_seed(3)
    x = torch.randn(1, 1, 8, 10)
    cm, got, ref = run_compiled(M.GruHead(), x, cpu_fallback=False)
    assert_close_scaled(got, ref)
    assert cm.stats["segments"] == 1 and cm.stats["host_ops"] == 0


def test_export_dialect_host_ops_call_aten() -> None:
    torch.manual_seed(4)
    x = torch.randn(1, 3, 8, 8)
    cm, got, ref = run_compiled(M.ShapeReader(), x)
    assert cm.stats["capture"] == "export" and cm.stats["host_ops"] == 1
    assert_close_scaled(got, ref)


def test_default_forward_argument_keeps_its_default() -> None:
    torch.manual_seed(5)
    x = torch.randn(1, 3, 8, 8)
    cm, got, ref = run_compiled(M.Masked(), x)
    assert cm.io.input_names == ("x",)
    assert cm.stats["host_ops"] == 0
    assert_close_scaled(got, ref)


@pytest.mark.parametrize("model", [M.Encoder, M.Attention])
def test_composite_torch_modules_are_traced_through(model: type[torch.nn.Module]) -> None:
    torch.manual_seed(6)
    x = torch.randn(1, 5, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm, got, ref = run_compiled(model(), x)
    assert_close_scaled(got, ref)
    assert cm.stats["segments"] >= 1  # the projections run on NNAPI, not one opaque host call
    opaque = torch.nn.TransformerEncoderLayer | torch.nn.MultiheadAttention
    assert not any(op.call and isinstance(op.call.module, opaque) for op in cm.graph.host_ops())


def test_explain_report_table_summary_and_dot(tmp_path: Path) -> None:
    report = nc.explain(M.TwoStacks().eval(), (torch.randn(1, 3, 8, 8),))
    text = str(report)
    assert "2 NNAPI segment(s)" in text and "4 host op(s)" in text
    rows = {r.node: r for r in report.rows}
    assert rows["cumsum"].where == "CPU (host code)" and "no NNAPI lowering" in rows["cumsum"].detail
    assert rows["cumsum"].source.endswith("y = torch.cumsum(y, dim=1)")
    assert rows["a_0"].where == "NNAPI segment 0" and "CONV_2D" in rows["a_0"].detail
    assert report.flops_share == pytest.approx(1.0)  # the convolutions carry every FLOP
    dot = report.to_dot(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == dot
    assert '"segment0" -> "host' in dot and dot.count("->") >= 5


def test_explain_and_partition_agree_on_every_op() -> None:
    """The one predicate: what explain() calls CPU is exactly what partitioning left off NNAPI."""
    model, x = M.TwoStacks().eval(), torch.randn(1, 3, 8, 8)
    report = nc.explain(model, (x,))
    cm = nc.compile(model, (x,), cpu_fallback=False)
    cpu_nodes = {r.node for r in report.rows if r.where.startswith("CPU")}
    host_nodes = {op.loc.node for op in cm.graph.host_ops()}
    assert cpu_nodes == host_nodes
    for i in cm.graph.nnapi_segments():
        assert cm.graph.segments[i].placement is Placement.NNAPI


@pytest.mark.parametrize(("model", "shape"), [
    (M.Cumsum, (1, 3, 16, 16)),
])
def test_cumsum_model_runs_with_cpu_islands(model: type[torch.nn.Module],
                                                          shape: tuple[int, ...],
                                                          tmp_path: Path) -> None:
    torch.manual_seed(7)
    x = torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm, got, ref = run_compiled(model(), x)
    assert_close_scaled(got, ref)
    assert cm.stats["segments"] >= 1 and cm.stats["host_ops"] >= 1
    assert_close_scaled(_reloaded(cm, tmp_path, x), ref)
