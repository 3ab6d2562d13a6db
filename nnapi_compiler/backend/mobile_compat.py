"""What the saved artifact asks of the oldest PyTorch Mobile runtime we support (2.1).

The last PyTorch Mobile release for Android is 2.1 (``pytorch_android_lite`` 2.1.0), so an
artifact must load in that lite interpreter even though it is produced by a newer torch. After
``_save_for_lite_interpreter`` this module checks the file as that runtime would see it:

- its bytecode version is one torch 2.1's loader reads (4..9; a newer file is backported with
  ``torch.jit.mobile._backport_for_mobile``);
- every root operator it calls (``torch.jit.mobile._export_operator_list``) exists in torch 2.1,
  whose operator list ships beside this module (``torch21_ops.txt``, written from a real torch
  2.1.0 by ``tools/compat_env.py --write-ops``).

Anything else is a ConversionError naming the problem, raised before the file reaches a phone.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch.jit.mobile import (
    _backport_for_mobile,
    _export_operator_list,
    _get_model_bytecode_version,
    _load_for_lite_interpreter,
)

from ..errors import ConversionError

#: The oldest runtime the artifacts target: the last PyTorch Mobile release for Android.
OLDEST_RUNTIME = "2.1.0"
#: The newest lite-interpreter bytecode version torch 2.1's loader accepts: its message is "The
#: model version must be between 4 and 9" (measured with tools/compat_env.py's side environment).
MAX_BYTECODE_VERSION = 9
OPS_FILE = Path(__file__).with_name("torch21_ops.txt")


@functools.cache
def runtime_ops() -> frozenset[str]:
    """Operators of torch 2.1 as ``namespace::name`` or ``namespace::name.overload``."""
    ops: set[str] = set()
    for line in OPS_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, *overloads = line.split()
        ops.update(name if o == "." else f"{name}.{o}" for o in overloads)
    return frozenset(ops)


def missing_ops(ops: set[str] | frozenset[str]) -> list[str]:
    """The operators in ``ops`` that torch 2.1's runtime lacks."""
    return sorted(set(ops) - runtime_ops())


def check_lite_file(path: Path) -> None:
    """Make the lite-interpreter file at ``path`` loadable by torch 2.1, or raise ConversionError."""
    version = _get_model_bytecode_version(str(path))
    if version > MAX_BYTECODE_VERSION:
        old = path.with_name(path.name + ".backport")
        try:  # not in place: the backport reads its input while writing its output
            ok = _backport_for_mobile(str(path), str(old), MAX_BYTECODE_VERSION)
            ok = ok and _get_model_bytecode_version(str(old)) <= MAX_BYTECODE_VERSION
        except RuntimeError:
            ok = False
        if ok:
            old.replace(path)
        else:
            old.unlink(missing_ok=True)
            raise ConversionError(
                f"torch {torch.__version__} wrote bytecode version {version}, and it cannot be "
                f"backported to {MAX_BYTECODE_VERSION}, the newest that PyTorch Mobile "
                f"{OLDEST_RUNTIME} reads")
    missing = missing_ops(_export_operator_list(_load_for_lite_interpreter(str(path))))
    if missing:
        raise ConversionError(
            f"the artifact calls operator(s) that PyTorch Mobile {OLDEST_RUNTIME} does not have: "
            f"{', '.join(missing)}. Apps on that runtime cannot load it; save with "
            "check_runtime=False only if every app ships a newer PyTorch Mobile")
