"""The torch 2.1 side environment (tools/compat_env.py): its python, or a skip outside CI."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compat_env_module():  # tools/ is not a package
    spec = importlib.util.spec_from_file_location("compat_env", ROOT / "tools" / "compat_env.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def compat_python() -> Path:
    """The side environment's python. CI creates it first (.ci/run), so there a missing one is a
    failure; elsewhere the tests are skipped with the command that creates it."""
    env = _compat_env_module()
    where = env.env_dir()
    if env.ready(where):
        return env.python_of(where)
    message = f"no torch {env.TORCH} side environment at {where}: run `python tools/compat_env.py`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
