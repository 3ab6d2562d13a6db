"""nnapi_compiler: compile PyTorch models to Android NNAPI artifacts for stock PyTorch Mobile.

The compiler (``compile``, ``explain``, ``CompiledModel``) is imported on first use, so that
``import nnapi_compiler.runtime`` (the virtual NNAPI device) needs only torch and attrs and
works on the older torch an app ships (PyTorch Mobile 2.1; see docs/user_guide.md).
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    CaptureError,
    ConversionError,
    InputError,
    InternalError,
    NnapiCompilerError,
    NnapiRuntimeError,
    QuantizationError,
    SerModelError,
    UnsupportedError,
    VerificationError,
    VirtualDeviceError,
)
from .runtime.device import virtual_device

if TYPE_CHECKING:
    from .api import compile, explain
    from .compiled import CompiledModel

__all__ = [
    "CaptureError", "CompiledModel", "ConversionError", "InputError", "InternalError",
    "NnapiCompilerError",
    "NnapiRuntimeError", "QuantizationError", "SerModelError", "UnsupportedError",
    "VerificationError", "VirtualDeviceError", "compile", "explain", "virtual_device",
]

_LAZY = {"compile": "api", "explain": "api", "CompiledModel": "compiled"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
