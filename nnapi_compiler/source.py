"""Where a model node came from: the user's ``file:line: code``, from its recorded stack trace.

A leaf module of its own, so that errors (which any layer may raise) and the frontend share one
implementation without importing each other.
"""

from __future__ import annotations

import os
from typing import Any

import torch

_TORCH_DIR = os.path.dirname(torch.__file__)


def source_of(node: Any) -> str:
    """``file:line: code`` of the user's line that created ``node`` (innermost frame)."""
    trace = node.stack_trace or node.meta.get("stack_trace") or ""
    lines = [ln for ln in trace.strip().splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        ln = lines[i].strip()
        if ln.startswith('File "'):
            try:
                path = ln.split('"')[1]
                if path.startswith(_TORCH_DIR):
                    continue  # torch's own frames say nothing about the user's model
                lineno = ln.split("line ")[1].split(",")[0]
            except IndexError:
                continue
            code = lines[i + 1].strip() if i + 1 < len(lines) else ""
            return f"{path}:{lineno}: {code}"
    return ""
