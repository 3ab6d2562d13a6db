"""The README's main job: ``python -m nnapi_compiler compile ... --verify``."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnapi_compiler.__main__ import main


def test_compile_and_verify_writes_ptl(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "mlp.ptl"
    rc = main(["compile", "tests.e2e.test_models:VGGish", "--input-shape", "1,3,32,32",
               "-o", str(out), "--verify"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert out.stat().st_size > 0
    assert "NNAPI ops:" in text and "-> OK" in text


def test_torchvision_model_main_job(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "resnet18.ptl"
    rc = main(["compile", "torchvision.models:resnet18", "--input-shape", "1,3,64,64",
               "-o", str(out), "--verify"])
    assert rc == 0, capsys.readouterr().out


def test_unsupported_model_exits_with_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["compile", "torch.nn:Softsign", "--input-shape", "1,3", "-o", str(tmp_path / "x.ptl"),
               "--fallback", "error"])
    assert rc == 2
    assert "error:" in capsys.readouterr().err


def test_unsupported_node_runs_on_the_cpu_by_default(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    rc = main(["compile", "tests.partition.models:TwoStacks", "--input-shape", "1,3,8,8",
               "-o", str(tmp_path / "x.ptl"), "--verify"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "segments: 2" in text and "host ops: 4" in text and "-> OK" in text


def test_explain_prints_the_table_and_writes_dot(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    dot = tmp_path / "g.dot"
    rc = main(["explain", "tests.partition.models:TwoStacks", "--input-shape", "1,3,8,8",
               "--dot", str(dot)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "CPU (host code)" in text and "NNAPI segment 1" in text
    assert dot.read_text().startswith("digraph partition {")


def test_dynamic_batch_compiles_once_and_verifies_min_and_max(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "dyn.ptl"
    rc = main(["compile", "tests.e2e.test_models:VGGish", "--input-shape", "2,3,32,32",
               "--dynamic", "batch=0.0:1:5", "-o", str(out), "--verify"])
    text = capsys.readouterr().out
    assert rc == 0, text
    for sizes in ("2x3x32x32", "1x3x32x32", "5x3x32x32"):
        assert f"at {sizes} on the virtual NNAPI device" in text, text
    assert text.count("-> OK") == 3


@pytest.mark.parametrize("spec", ["batch=0:1:5", "batch=1.0:1:5", "0.0:1:5"])
def test_bad_dynamic_spec_is_a_usage_error(spec: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--dynamic"):
        main(["compile", "tests.e2e.test_models:VGGish", "--input-shape", "2,3,32,32",
              "--dynamic", spec, "-o", str(tmp_path / "x.ptl")])
