"""Define a class from generated Python source in a way TorchScript can script it.

TorchScript reads a method's source back through ``inspect``, so generated code must be
registered with ``linecache`` under a unique file name (as torch.fx does), and compiled without
inheriting this package's ``from __future__ import annotations`` (string annotations would not
resolve in the generated namespace). The wrapper, the CPU segments and the control-flow glue all
define their classes here.
"""

from __future__ import annotations

import itertools
import linecache
from typing import Any

_serial = itertools.count(1)


def define_class(src: str, name: str, namespace: dict[str, Any] | None = None) -> type:
    """Execute ``src`` (with ``namespace`` as its globals) and return its class ``name``."""
    filename = f"<nnapi_compiler-{name}-{next(_serial)}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)
    scope: dict[str, Any] = dict(namespace or {})
    exec(compile(src, filename, "exec", dont_inherit=True), scope)
    return scope[name]
