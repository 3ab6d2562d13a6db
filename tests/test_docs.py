"""The generated op-support table matches the converter registry (run tools/gen_op_table.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _generator() -> ModuleType:
    # tools/ is not a package; load the script by path.
    spec = importlib.util.spec_from_file_location("gen_op_table", ROOT / "tools" / "gen_op_table.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_op_support_table_is_current() -> None:
    gen = _generator()
    path = ROOT / "docs" / "op_support.md"
    assert path.is_file(), f"{path} is missing; run `{gen.COMMAND}`"
    assert path.read_text() == gen.generate(), f"{path} is stale; run `{gen.COMMAND}`"


def test_check_mode_agrees(tmp_path: Path) -> None:
    gen = _generator()
    assert gen.main(["--check"]) == 0
    stale = tmp_path / "op_support.md"
    stale.write_text("stale\n")
    assert gen.main(["--check", "-o", str(stale)]) == 1
    assert gen.main(["--check", "-o", str(tmp_path / "missing.md")]) == 1
