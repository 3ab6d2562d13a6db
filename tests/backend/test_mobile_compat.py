"""Saving checks the artifact against PyTorch Mobile 2.1: bytecode version (backported when
newer than 2.1 reads) and operators (torch21_ops.txt). tests/compat runs artifacts on 2.1 itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.jit.mobile import (
    _export_operator_list,
    _get_model_bytecode_version,
    _load_for_lite_interpreter,
)

import nnapi_compiler as nc
from nnapi_compiler.backend import mobile_compat


class Net(nn.Module):
    def __init__(self, rms: bool = False) -> None:
        super().__init__()
        self.rms = rms
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if self.rms:  # aten::rms_norm is newer than torch 2.1; it runs as host code
            y = F.rms_norm(y, [y.shape[-1]])
        return self.b(y)


def test_operator_list_is_torch_21() -> None:
    text = mobile_compat.OPS_FILE.read_text()
    assert text.startswith("# The operators of torch 2.1.0")
    ops = mobile_compat.runtime_ops()
    assert {"aten::conv2d", "aten::add.Tensor", "aten::_empty_affine_quantized", "prim::min.self_int",
            "quantized::conv2d.new"} <= ops
    assert "aten::rms_norm" not in ops  # added in torch 2.4
    assert mobile_compat.missing_ops({"aten::conv2d", "aten::rms_norm"}) == ["aten::rms_norm"]


def test_saved_artifact_is_checked(tmp_path: Path) -> None:
    x = torch.randn(1, 3, 16, 16)
    path = nc.compile(Net().eval(), (x,)).save(tmp_path / "net.ptl")
    assert _get_model_bytecode_version(str(path)) <= mobile_compat.MAX_BYTECODE_VERSION
    ops = _export_operator_list(_load_for_lite_interpreter(str(path)))
    assert "aten::conv2d" in ops  # the CPU twin's kernels are operators too
    assert mobile_compat.missing_ops(ops) == []


def test_operator_missing_in_21_is_refused(tmp_path: Path) -> None:
    model, x = Net(rms=True).eval(), torch.randn(1, 3, 16, 16)
    with pytest.warns(UserWarning, match="run on the CPU"):
        cm = nc.compile(model, (x,))
    with pytest.raises(nc.ConversionError, match=r"PyTorch Mobile 2\.1\.0 does not have: aten::rms_norm"):
        cm.save(tmp_path / "rms.ptl")
    assert not (tmp_path / "rms.ptl").exists()
    path = cm.save(tmp_path / "rms.ptl", check_runtime=False)  # for apps on a newer runtime
    with nc.virtual_device():
        got = _load_for_lite_interpreter(str(path))(x)
    with torch.no_grad():
        torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)


def test_newer_bytecode_is_backported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the compiling torch writes a bytecode version the oldest runtime cannot read, save()
    backports the file; exercised by pretending that runtime reads at most version 7."""
    model, x = Net().eval(), torch.randn(1, 3, 16, 16)
    cm = nc.compile(model, (x,))
    produced = _get_model_bytecode_version(str(cm.save(tmp_path / "new.ptl")))
    monkeypatch.setattr(mobile_compat, "MAX_BYTECODE_VERSION", produced - 1)
    path = cm.save(tmp_path / "old.ptl")
    assert _get_model_bytecode_version(str(path)) == produced - 1
    with nc.virtual_device():
        got = _load_for_lite_interpreter(str(path))(x)
    with torch.no_grad():
        torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)
