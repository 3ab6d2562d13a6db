"""Helpers of the beyond-CNN tests (``compile_whole`` and ``in_dialect`` live in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

from ..conftest import compile_whole, in_dialect  # noqa: F401 - the beyond tests import them here


def op_counts(cm: Any) -> dict[str, int]:
    """NNAPI op mnemonics of a compiled model and how often each occurs."""
    counts: dict[str, int] = {}
    for line in cm.ir().splitlines():
        if "=" in line:
            name = line.split("=", 1)[1].strip().split(" ")[0]
            if name != "constant":
                counts[name] = counts.get(name, 0) + 1
    return counts
